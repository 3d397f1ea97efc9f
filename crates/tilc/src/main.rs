//! The `tilc` command-line tool: one subcommand per job, each in its own module under `cmd/`.
//!
//! Every subcommand returns an [`ExitCode`]: 0 on success, 1 when the input has errors (all of
//! them printed as diagnostics), 2 for bad usage (clap's own convention).

mod cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// tilc — a compiler and virtual machine for tile kernels over tensors of any bit width.
#[derive(Parser)]
#[command(name = "tilc", version, about, long_about = None, arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Check(cmd::check::CheckArgs),
    Fmt(cmd::fmt::FmtArgs),
    Dtype(cmd::dtype::DtypeArgs),
    Layout(cmd::layout::LayoutArgs),
    Run(cmd::run::RunArgs),
    Build(cmd::build::BuildArgs),
    Tune(cmd::tune::TuneArgs),
    Cache(cmd::cache::CacheArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(args) => cmd::check::run(args),
        Command::Fmt(args) => cmd::fmt::run(args),
        Command::Dtype(args) => cmd::dtype::run(args),
        Command::Layout(args) => cmd::layout::run(args),
        Command::Run(args) => cmd::run::run(args),
        Command::Build(args) => cmd::build::run(args),
        Command::Tune(args) => cmd::tune::run(args),
        Command::Cache(args) => cmd::cache::run(args),
    }
}
