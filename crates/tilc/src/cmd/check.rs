//! `tilc check`: parse `.tl` files and report every diagnostic, or list their kernels.
//!
//! Reads the files (the CLI is the only place that does file IO) and hands the text to
//! `tilc_syntax::parse`; it must not know the grammar.

use std::io::IsTerminal;
use std::process::ExitCode;
use tilc_base::{Diagnostic, RenderStyle, SourceFile, render};
use tilc_syntax::ast;

/// Check .tl files for errors, or list their kernels.
///
/// Every file is read and checked; every error in every file is printed (file:line:col, the
/// source line, a caret under the span and a hint). Exits 0 when all files are clean, 1 when
/// any has an error (warnings do not fail).
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  tilc check examples/*.tl\n  tilc check --list examples/gemm_w3a8.tl")]
pub struct CheckArgs {
    /// The .tl files to check.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<std::path::PathBuf>,
    /// List each kernel (name, parameters, grid, warps) with its doc comment.
    #[arg(long)]
    pub list: bool,
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
        let (ast, diags) = tilc_syntax::parse(&file);
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
