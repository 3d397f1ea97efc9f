//! `tilc fmt` (not implemented yet).

use std::process::ExitCode;

/// Not implemented yet.
#[derive(clap::Args)]
pub struct FmtArgs {}

/// Runs `tilc fmt`.
pub fn run(_args: FmtArgs) -> ExitCode {
    eprintln!("tilc fmt: not implemented yet");
    ExitCode::from(2)
}
