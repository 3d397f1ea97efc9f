//! `tilc build`: compiles one kernel of a `.tl` file and prints the requested stage.
//!
//! Today the only stage is the VM IR (`--emit vm`); later stages (layouts, SIMT, PTX, CPU
//! objects) and targets answer with a clear "not yet supported" diagnostic.

use std::path::PathBuf;
use std::process::ExitCode;

use super::run::{load_kernel, parse_defines, print_diags};

/// Compile a kernel and print its intermediate form.
#[derive(clap::Args)]
#[command(after_help = "Example:\n  tilc build examples/gemm_w3a8.tl -D BM=32 --emit vm")]
pub struct BuildArgs {
    /// The `.tl` file.
    pub file: PathBuf,
    /// The kernel to build (needed when the file defines several).
    #[arg(long)]
    pub kernel: Option<String>,
    /// Override a compile-time parameter, e.g. `-D BM=32` or `-D T=f16`.
    #[arg(short = 'D', value_name = "NAME=VALUE")]
    pub defines: Vec<String>,
    /// What to print: `vm` (the block-level VM IR).
    #[arg(long, default_value = "vm")]
    pub emit: String,
    /// The target (`interp` today).
    #[arg(long, default_value = "interp")]
    pub target: String,
    /// Write the output to this file instead of stdout.
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
}

/// Runs `tilc build`.
pub fn run(args: BuildArgs) -> ExitCode {
    if args.emit != "vm" {
        eprintln!("error: `--emit {}` is not yet supported (supported: vm)", args.emit);
        return ExitCode::from(1);
    }
    if args.target != "interp" {
        eprintln!("error: target `{}` is not yet supported (supported: interp)", args.target);
        return ExitCode::from(1);
    }
    let defines = match parse_defines(&args.defines) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let (file, kernel) = match load_kernel(&args.file, args.kernel.as_deref(), &defines) {
        Ok(x) => x,
        Err((file, diags)) => {
            print_diags(file.as_ref(), &diags);
            return ExitCode::from(1);
        }
    };
    let _ = file;
    let text = tilc_vm::print_kernel(&kernel);
    match &args.output {
        Some(p) => {
            if let Err(e) = std::fs::write(p, text) {
                eprintln!("error: cannot write {}: {e}", p.display());
                return ExitCode::from(1);
            }
        }
        None => print!("{text}"),
    }
    ExitCode::SUCCESS
}
