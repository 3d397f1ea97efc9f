//! `tilc layout` (not implemented yet).

use std::process::ExitCode;

/// Not implemented yet.
#[derive(clap::Args)]
pub struct LayoutArgs {}

/// Runs `tilc layout`.
pub fn run(_args: LayoutArgs) -> ExitCode {
    eprintln!("tilc layout: not implemented yet");
    ExitCode::from(2)
}
