//! `tilc check`: parse and elaborate `.tl` files and report every diagnostic, or list their
//! kernels.
//!
//! Reads the files (the CLI is the only place that does file IO), hands the text to
//! `tilc_syntax::parse` and, when a file parses cleanly, elaborates each of its kernels into a VM
//! program with `tilc_vm::elaborate` (types, shapes, memory spaces, compile-time parameters at
//! their defaults or `-D` values). It must not know the grammar or the typing rules.

use std::io::IsTerminal;
use std::process::ExitCode;
use tilc_base::{Diagnostic, RenderStyle, SourceFile, render};
use tilc_syntax::ast;

/// Check .tl files for errors, or list their kernels.
///
/// Every file is read, parsed and, when it parses, every kernel is elaborated (type, shape and
/// memory-space checks) with its compile-time parameters at their defaults or `-D` values; every
/// error in every file is printed (file:line:col, the source line, a caret under the span and a
/// hint). Exits 0 when all files are clean, 1 when any has an error (warnings do not fail).
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  tilc check examples/*.tl\n  tilc check --list examples/gemm_w3a8.tl\n  tilc check -D BM=32 -D G=64 examples/gemm_w3a8.tl")]
pub struct CheckArgs {
    /// The .tl files to check.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<std::path::PathBuf>,
    /// List each kernel (name, parameters, grid, warps) with its doc comment.
    #[arg(long)]
    pub list: bool,
    /// Override a compile-time parameter for the check (repeatable), e.g. `-D BM=32`; a name
    /// that a kernel does not have is ignored for that kernel.
    #[arg(short = 'D', value_name = "NAME=VALUE", value_parser = tilc_vm::Define::parse)]
    pub define: Vec<tilc_vm::Define>,
    /// Print diagnostics without colour (the default when stderr is not a terminal).
    #[arg(long)]
    pub plain: bool,
}

/// Runs `tilc check`.
pub fn run(args: CheckArgs) -> ExitCode {
    let style = if args.plain || !std::io::stderr().is_terminal() { RenderStyle::Plain } else { RenderStyle::Color };
    let mut failed = false;
    for path in &args.files {
        let name = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                let file = SourceFile::new(name.clone(), "");
                let d = Diagnostic::error_nowhere(format!("cannot read `{name}`: {e}"))
                    .with_hint("check the path; `tilc check` takes .tl source files");
                eprint!("{}", render(&file, &[d], style));
                failed = true;
                continue;
            }
        };
        let file = SourceFile::new(name, text);
        let (ast, mut diags) = tilc_syntax::parse(&file);
        // Elaborate only what parsed cleanly: a broken parse would only cascade.
        if !diags.iter().any(Diagnostic::is_error) {
            for kernel in &ast.kernels {
                let defines: Vec<tilc_vm::Define> = args
                    .define
                    .iter()
                    .filter(|d| kernel.ct_params.iter().any(|p| p.name.name == d.name))
                    .cloned()
                    .collect();
                if let Err(errs) = tilc_vm::elaborate(&ast, Some(&kernel.name.name), &defines) {
                    diags.extend(errs);
                }
            }
        }
        if !diags.is_empty() {
            eprint!("{}", render(&file, &diags, style));
        }
        failed |= diags.iter().any(Diagnostic::is_error);
        if args.list {
            print!("{}", list_kernels(&file, &ast));
        }
    }
    if failed { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

/// One paragraph per kernel: `file:line: kernel name<ct>(params) grid [..] warps n`, then the
/// doc comment, indented.
fn list_kernels(file: &SourceFile, ast: &ast::File) -> String {
    let mut out = String::new();
    for k in &ast.kernels {
        let (line, _) = file.line_col(k.span.start);
        out.push_str(&format!("{}:{line}: {}\n", file.name, tilc_syntax::kernel_signature(k)));
        for l in k.doc_text().lines() {
            if l.trim().is_empty() {
                out.push('\n');
            } else {
                out.push_str(&format!("    {l}\n"));
            }
        }
        out.push('\n');
    }
    out
}
