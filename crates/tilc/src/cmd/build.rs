//! `tilc build`: compiles one kernel of a `.tl` file and prints the requested stage.
//!
//! Stages today: the VM IR (`--emit vm`, any target), the per-thread SIMT program (`--emit simt`,
//! the lowering that the GPU path and the SIMT emulator share) and, for `--target cpu`,
//! Cranelift IR (`--emit clif`) and a native object file (`--emit obj`, the default for `cpu`).
//! LLVM IR, PTX and cubins for the GPU targets (`sm_90a`, `sm_100a`, `sm_120a`) answer with a
//! clear "not yet supported" error until the PTX build path is wired.

use std::path::PathBuf;
use std::process::ExitCode;

use super::run::{load_kernel, parse_defines, print_diags};

/// Compile a kernel and print its intermediate form.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  tilc build examples/gemm_w3a8.tl -D BM=32 --emit vm\n  tilc build examples/gemm_w3a8.tl --emit simt\n  tilc build examples/gemm_w3a8.tl --target cpu --emit clif\n  tilc build examples/gemm_w3a8.tl --target cpu -o gemm_w3a8.o")]
pub struct BuildArgs {
    /// The `.tl` file.
    pub file: PathBuf,
    /// The kernel to build (needed when the file defines several).
    #[arg(long)]
    pub kernel: Option<String>,
    /// Override a compile-time parameter, e.g. `-D BM=32` or `-D T=f16`.
    #[arg(short = 'D', value_name = "NAME=VALUE")]
    pub defines: Vec<String>,
    /// What to produce: `vm` (the block-level VM IR), `simt` (the lowered per-thread program,
    /// with the layouts and access widths chosen as a comment header), `clif` (Cranelift IR,
    /// `--target cpu`) or `obj` (a native object file, `--target cpu`). Default: `vm`, or `obj`
    /// for `--target cpu`. `llvm`, `ptx`, `cubin` and `c` are accepted and reported as not yet
    /// supported.
    #[arg(long, value_parser = ["vm", "clif", "obj", "simt", "llvm", "ptx", "cubin", "c"])]
    pub emit: Option<String>,
    /// The target: `interp` (the VM only) or `cpu`. The GPU targets `sm_90a`, `sm_100a` and
    /// `sm_120a` are accepted and reported as not yet supported.
    #[arg(long, default_value = "interp", value_parser = ["interp", "cpu", "sm_90a", "sm_100a", "sm_120a"])]
    pub target: String,
    /// Write the output to this file instead of stdout.
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
}

/// Runs `tilc build`.
pub fn run(args: BuildArgs) -> ExitCode {
    let emit = args.emit.clone().unwrap_or_else(|| if args.target == "cpu" { "obj".into() } else { "vm".into() });
    if args.target.starts_with("sm_") && emit != "simt" && emit != "vm" {
        eprintln!(
            "error: target `{}` is not yet supported: the VM → SIMT lowering that feeds the PTX backend is not written yet",
            args.target
        );
        eprintln!("  = hint: `--emit simt` shows the lowered GPU program; `--target cpu` runs natively");
        return ExitCode::from(1);
    }
    if ["llvm", "ptx", "cubin", "c"].contains(&emit.as_str()) {
        eprintln!("error: `--emit {emit}` is not yet supported: the PTX build path is not wired to the lowering yet");
        eprintln!("  = hint: `--emit simt` prints the lowered GPU program; `--target cpu --emit clif` the CPU one");
        return ExitCode::from(1);
    }
    if emit != "vm" && emit != "simt" && args.target != "cpu" {
        eprintln!("error: `--emit {emit}` needs `--target cpu`");
        return ExitCode::from(2);
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
    let bytes = match emit.as_str() {
        "vm" => tilc_vm::print_kernel(&kernel).into_bytes(),
        "simt" => match tilc_lower::lower(&kernel, &tilc_lower::Options::default()) {
            Ok(l) => simt_listing(&l).into_bytes(),
            Err(e) => {
                print_diags(Some(&file), &[e.to_diagnostic()]);
                return ExitCode::from(1);
            }
        },
        "clif" => match tilc_cpu::emit_clif(&kernel) {
            Ok(text) => text.into_bytes(),
            Err(e) => {
                eprintln!("error: cannot compile `{}` for the CPU: {e}", kernel.name);
                return ExitCode::from(1);
            }
        },
        _ => {
            let Some(path) = &args.output else {
                eprintln!("error: an object file is binary; give `-o FILE.o`");
                return ExitCode::from(2);
            };
            match tilc_cpu::emit_object(&kernel, &tilc_cpu::Options::default()) {
                Ok(obj) => {
                    if let Err(e) = std::fs::write(path, &obj) {
                        eprintln!("error: cannot write {}: {e}", path.display());
                        return ExitCode::from(1);
                    }
                    eprintln!("wrote {} ({} bytes, exports tilc_{}_block)", path.display(), obj.len(), kernel.name);
                    return ExitCode::SUCCESS;
                }
                Err(e) => {
                    eprintln!("error: cannot compile `{}` for the CPU: {e}", kernel.name);
                    return ExitCode::from(1);
                }
            }
        }
    };
    match &args.output {
        Some(p) => {
            if let Err(e) = std::fs::write(p, bytes) {
                eprintln!("error: cannot write {}: {e}", p.display());
                return ExitCode::from(1);
            }
        }
        None => {
            use std::io::Write;
            let _ = std::io::stdout().write_all(&bytes);
        }
    }
    ExitCode::SUCCESS
}

/// The SIMT program with what the lowering decided as a comment header.
fn simt_listing(l: &tilc_lower::Lowered) -> String {
    let i = &l.info;
    let mut out = format!(
        "; {} threads per block; shared memory: {} bytes of tensors + {} bytes of scratch\n",
        i.threads, i.shared_user_bytes, i.shared_scratch_bytes
    );
    for d in &i.dots {
        out.push_str(&format!("; {d}\n"));
    }
    for g in &i.global_loads {
        out.push_str(&format!("; load {g}\n"));
    }
    for t in &i.layouts {
        out.push_str(&format!("; layout {t}\n"));
    }
    out.push_str(&tilc_simt::write_kernel(&l.kernel));
    out
}
