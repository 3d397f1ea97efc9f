//! `tilc dtype` (not implemented yet).

use std::process::ExitCode;

/// Not implemented yet.
#[derive(clap::Args)]
pub struct DtypeArgs {}

/// Runs `tilc dtype`.
pub fn run(_args: DtypeArgs) -> ExitCode {
    eprintln!("tilc dtype: not implemented yet");
    ExitCode::from(2)
}
