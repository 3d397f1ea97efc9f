//! The subcommands of the `tilc` binary, one module each. Each module defines its clap
//! arguments (`XxxArgs`, whose doc comment is the subcommand's `--help`) and `run`.

pub mod build;
pub mod cache;
pub mod check;
pub mod dtype;
pub mod fmt;
pub mod layout;
pub mod run;
pub mod tune;
