//! `tilc check` (not implemented yet).

use std::process::ExitCode;

/// Not implemented yet.
#[derive(clap::Args)]
pub struct CheckArgs {}

/// Runs `tilc check`.
pub fn run(_args: CheckArgs) -> ExitCode {
    eprintln!("tilc check: not implemented yet");
    ExitCode::from(2)
}
