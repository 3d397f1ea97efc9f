//! `tilc layout EXPR [--svg FILE] [--divide ATOM]`: draws a register layout given in the layout
//! syntax as a grid of `thread:slot` cells (optionally as an SVG image), or divides it by an
//! atom and prints the quotient or why there is none. The algebra lives in `tilc-layout`; this
//! module only parses arguments, renders errors and writes the file.

use std::process::ExitCode;
use tilc_base::{Diagnostic, RenderStyle, SourceFile, Span, render_one};
use tilc_layout::{LayoutExpr, draw, egraph, parse_layout_expr};

/// Draw a register layout: which thread holds which element of a tile, in which slot.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  tilc layout \"column_local(2, 2).spatial(8, 4).local(1, 2)\"   # the mma.m16n8k16 A fragment\n  tilc layout \"local(2, 1).spatial(16, 4).local(1, 2)\" --divide \"spatial(8, 4).local(1, 2)\"\n  tilc layout \"spatial(4, 8)\" --svg layout.svg\n\nThe syntax (see lang/LAYOUTS.md): local, spatial, column_local, column_spatial, replicated,\nauto_local_spatial; `a.b(..)` and `a * b(..)` are the product.")]
pub struct LayoutArgs {
    /// The layout expression, e.g. "spatial(8, 4).local(1, 2)".
    pub expr: String,
    /// Also write the drawing as an SVG image (one colour per warp) to this file.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<std::path::PathBuf>,
    /// Divide the layout by this atom: print `outer` with EXPR = outer * ATOM, or why none exists.
    #[arg(long, value_name = "ATOM")]
    pub divide: Option<String>,
}

fn parse(text: &str, what: &str) -> Result<LayoutExpr, String> {
    parse_layout_expr(text).map_err(|e| {
        let file = SourceFile::new(what, text);
        let diag = Diagnostic::error("invalid layout expression", Span::new(e.span.start, e.span.end), e.message);
        render_one(&file, &diag, RenderStyle::Plain)
    })
}

/// Runs `tilc layout`.
pub fn run(args: LayoutArgs) -> ExitCode {
    let expr = match parse(&args.expr, "EXPR") {
        Ok(e) => e,
        Err(msg) => {
            eprint!("{msg}");
            return ExitCode::from(1);
        }
    };
    let layout = expr.eval();
    let Some(atom_text) = &args.divide else {
        print!("{}", draw::draw_text(&layout, &expr.to_string()));
        if let Some(path) = &args.svg {
            if let Err(e) = std::fs::write(path, draw::draw_svg(&layout, &expr.to_string())) {
                eprintln!("error: cannot write {}: {e}", path.display());
                return ExitCode::from(1);
            }
        }
        return ExitCode::SUCCESS;
    };
    let atom = match parse(atom_text, "ATOM") {
        Ok(e) => e,
        Err(msg) => {
            eprint!("{msg}");
            return ExitCode::from(1);
        }
    };
    match tilc_layout::divide(&layout, &atom.eval()) {
        Ok(quotient) => {
            // Prefer the e-graph's expression for the quotient; the numeric quotient is the same
            // layout (the e-graph checks it) and is printed as fields when it is no product.
            let outer = egraph::factor(&expr, &atom).or_else(|| tilc_layout::to_expr(&quotient));
            match outer {
                Some(o) => println!("{expr} = {o} * {atom}"),
                None => println!("{expr} = ({quotient}) * {atom}"),
            }
            print!("{}", draw::draw_text(&quotient, "quotient"));
            if let Some(path) = &args.svg {
                if let Err(e) = std::fs::write(path, draw::draw_svg(&quotient, "quotient")) {
                    eprintln!("error: cannot write {}: {e}", path.display());
                    return ExitCode::from(1);
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {expr} is not a multiple of {atom}");
            eprintln!("  = note: {e}");
            ExitCode::from(1)
        }
    }
}
