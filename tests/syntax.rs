//! Front-end snapshot and round-trip tests, driven by the files: every `.tl` file under
//! `examples/`, `lang/` and `tests/syntax/` gets an AST snapshot (`tests/snapshots/`), and the
//! print → parse round trip must give back the same AST (spans aside) and be idempotent.
//! Adding a `.tl` file adds a case.

use std::path::{Path, PathBuf};
use tilc_base::{RenderStyle, SourceFile, render};

/// The `.tl` files of the corpus, relative to the repository root, sorted.
fn corpus() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in ["examples", "lang", "tests/syntax"] {
        collect(&root.join(dir), &mut out);
    }
    out.sort();
    out.into_iter().map(|p| p.strip_prefix(root).expect("under the root").to_path_buf()).collect()
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|x| x == "tl") {
            out.push(p);
        }
    }
}

fn load(rel: &Path) -> SourceFile {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).expect("readable");
    SourceFile::new(rel.display().to_string(), text)
}

/// `{:#?}` of a value with every span (`12..34`) replaced by `_`.
fn without_spans(debug: &str) -> String {
    let b = debug.as_bytes();
    let mut out = String::with_capacity(debug.len());
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_alphanumeric()) {
            let mut j = i;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if debug[j..].starts_with("..") && b.get(j + 2).is_some_and(|c| c.is_ascii_digit()) {
                let mut k = j + 2;
                while k < b.len() && b[k].is_ascii_digit() {
                    k += 1;
                }
                out.push('_');
                i = k;
                continue;
            }
            out.push_str(&debug[i..j]);
            i = j;
            continue;
        }
        out.push(b[i] as char);
        i += 1;
    }
    out
}

fn parse_clean(file: &SourceFile) -> tilc_syntax::ast::File {
    let (ast, diags) = tilc_syntax::parse(file);
    assert!(diags.is_empty(), "{} has diagnostics:\n{}", file.name, render(file, &diags, RenderStyle::Plain));
    ast
}

#[test]
fn corpus_is_not_empty() {
    let files = corpus();
    for want in ["examples/gemm_w3a8.tl", "examples/hadamard_rows.tl", "examples/hadamard_quant_mxfp4.tl"] {
        assert!(files.iter().any(|f| f == Path::new(want)), "{want} missing from {files:?}");
    }
}

#[test]
fn ast_snapshots() {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_snapshot_path("snapshots");
    settings.bind(|| {
        for rel in corpus() {
            let file = load(&rel);
            let ast = parse_clean(&file);
            let name = format!("ast__{}", rel.display().to_string().replace(['/', '\\'], "__").trim_end_matches(".tl"));
            insta::assert_snapshot!(name, format!("{:#?}", ast.kernels));
        }
    });
}

#[test]
fn print_parse_round_trip_on_every_file() {
    for rel in corpus() {
        let file = load(&rel);
        let ast = parse_clean(&file);
        let printed = tilc_syntax::print(&ast);
        let again_file = SourceFile::new(format!("{} (printed)", file.name), printed.clone());
        let (again, diags) = tilc_syntax::parse(&again_file);
        assert!(diags.is_empty(), "printed {} does not parse:\n{}\n{printed}", file.name, render(&again_file, &diags, RenderStyle::Plain));
        assert_eq!(
            without_spans(&format!("{:#?}", ast.kernels)),
            without_spans(&format!("{:#?}", again.kernels)),
            "{}: the AST changed through print → parse",
            file.name
        );
        let texts = |f: &tilc_syntax::ast::File| f.comments.iter().map(|c| c.text.clone()).collect::<Vec<_>>();
        assert_eq!(texts(&ast), texts(&again), "{}: comments changed", file.name);
        assert_eq!(printed, tilc_syntax::print(&again), "{}: printing is not idempotent", file.name);
    }
}

#[test]
fn examples_are_formatted() {
    for rel in corpus() {
        let file = load(&rel);
        let printed = tilc_syntax::print(&parse_clean(&file));
        if printed != file.text && std::env::var_os("TILC_FMT_WRITE").is_some() {
            std::fs::write(Path::new(env!("CARGO_MANIFEST_DIR")).join(&rel), &printed).expect("writable");
            continue;
        }
        assert_eq!(printed, file.text, "{} is not in canonical form; run `tilc fmt --write {}` (or TILC_FMT_WRITE=1 on this test)", file.name, file.name);
    }
}

#[test]
fn span_eraser_erases_spans_only() {
    assert_eq!(without_spans("span: 12..345, x: 3, y..z, f8e4m3 1..2"), "span: _, x: 3, y..z, f8e4m3 _");
}

/// The ```tl blocks of lang/REFERENCE.md: whole kernels parse as files, fragments parse inside a
/// kernel body; either way without a diagnostic, so the reference never shows invalid syntax.
#[test]
fn reference_examples_parse() {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("lang/REFERENCE.md")).expect("readable");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.trim_start()) {
            (None, l) if l.starts_with("```tl") => current = Some(String::new()),
            (Some(_), l) if l.starts_with("```") => blocks.push(current.take().expect("open block")),
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(blocks.len() >= 4, "only {} tl blocks", blocks.len());
    for (i, block) in blocks.iter().enumerate() {
        let source = if block.trim_start().starts_with("kernel") || block.trim_start().starts_with("///") {
            block.clone()
        } else {
            format!("kernel snippet<T = f16>(n: i32) grid [1] warps 1 {{\n{block}}}\n")
        };
        let file = SourceFile::new(format!("REFERENCE.md block {}", i + 1), source);
        parse_clean(&file);
    }
}
