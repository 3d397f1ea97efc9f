//! `tilc build` (not implemented yet).

use std::process::ExitCode;

/// Not implemented yet.
#[derive(clap::Args)]
pub struct BuildArgs {}

/// Runs `tilc build`.
pub fn run(_args: BuildArgs) -> ExitCode {
    eprintln!("tilc build: not implemented yet");
    ExitCode::from(2)
}
