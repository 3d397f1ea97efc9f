//! `tilc fmt`: print `.tl` files in canonical form, check that they are, or rewrite them.
//!
//! Reads and writes the files (atomically: a temporary file in the same folder, then a rename);
//! the canonical form itself is `tilc_syntax::print`.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use tilc_base::{Diagnostic, RenderStyle, SourceFile, render};

/// Format .tl files in the canonical style.
///
/// Without options, prints the canonical form of each file to stdout. A file with syntax errors
/// is never formatted: its diagnostics are printed and the exit code is 1.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  tilc fmt examples/gemm_w3a8.tl\n  tilc fmt --check examples/*.tl\n  tilc fmt --write examples/*.tl")]
pub struct FmtArgs {
    /// The .tl files to format.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<std::path::PathBuf>,
    /// Print nothing; exit 1 when a file is not in canonical form (and name it on stderr).
    #[arg(long, conflicts_with = "write")]
    pub check: bool,
    /// Rewrite the files in place (atomically) when they are not in canonical form.
    #[arg(long)]
    pub write: bool,
}

/// Runs `tilc fmt`.
pub fn run(args: FmtArgs) -> ExitCode {
    let style = if std::io::stderr().is_terminal() { RenderStyle::Color } else { RenderStyle::Plain };
    let mut failed = false;
    for path in &args.files {
        let name = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                let d = Diagnostic::error_nowhere(format!("cannot read `{name}`: {e}")).with_hint("check the path");
                eprint!("{}", render(&SourceFile::new(name, ""), &[d], style));
                failed = true;
                continue;
            }
        };
        let file = SourceFile::new(name.clone(), text);
        let (ast, diags) = tilc_syntax::parse(&file);
        if diags.iter().any(Diagnostic::is_error) {
            eprint!("{}", render(&file, &diags, style));
            eprintln!("{name}: not formatted because of the errors above");
            failed = true;
            continue;
        }
        let formatted = tilc_syntax::print(&ast);
        let formatted = if formatted.is_empty() { formatted } else if formatted.ends_with('\n') { formatted } else { formatted + "\n" };
        if args.check {
            if formatted != file.text {
                eprintln!("{name}: not formatted (run `tilc fmt --write {name}`)");
                failed = true;
            }
        } else if args.write {
            if formatted != file.text {
                if let Err(e) = write_atomically(path, &formatted) {
                    let d = Diagnostic::error_nowhere(format!("cannot write `{name}`: {e}"))
                        .with_hint("check that the folder is writable");
                    eprint!("{}", render(&file, &[d], style));
                    failed = true;
                }
            }
        } else {
            let mut out = std::io::stdout().lock();
            if out.write_all(formatted.as_bytes()).is_err() {
                return ExitCode::from(1);
            }
        }
    }
    if failed { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

/// Writes `text` to a temporary file next to `path`, then renames it over `path`, so that a
/// reader sees either the old or the new file, never half of one.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tilc-fmt.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        if let Ok(meta) = std::fs::metadata(path) {
            std::fs::set_permissions(&tmp, meta.permissions())?;
        }
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
