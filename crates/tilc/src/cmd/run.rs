//! `tilc run` (not implemented yet).

use std::process::ExitCode;

/// Not implemented yet.
#[derive(clap::Args)]
pub struct RunArgs {}

/// Runs `tilc run`.
pub fn run(_args: RunArgs) -> ExitCode {
    eprintln!("tilc run: not implemented yet");
    ExitCode::from(2)
}
