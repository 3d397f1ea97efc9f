//! Elaboration errors: every `tests/ui_vm/*.tl` is a bad program; its plain-rendered
//! diagnostics are an insta snapshot (`tests/snapshots/vm_ui__<name>.snap`).
//!
//! A first line `// ... (run with -D NAME=VALUE)` passes that override.

use std::path::Path;
use tilc_base::{RenderStyle, SourceFile, render};
use tilc_vm::{Define, elaborate_source};

#[test]
fn every_bad_program_gets_its_diagnostics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui_vm");
    let mut paths: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "tl")).collect();
    paths.sort();
    assert!(paths.len() >= 20, "expected at least 20 bad programs, found {}", paths.len());
    for path in paths {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let defines: Vec<Define> = text
            .lines()
            .next()
            .and_then(|l| l.split_once("(run with -D ").map(|(_, r)| r.trim_end_matches(')').to_string()))
            .map(|d| vec![Define::parse(&d).unwrap()])
            .unwrap_or_default();
        let file = SourceFile::new(format!("tests/ui_vm/{name}.tl"), text);
        let diags = match elaborate_source(&file, None, &defines) {
            Ok(k) => panic!("{name}: expected an error, got\n{}", tilc_vm::print_kernel(&k)),
            Err(d) => d,
        };
        assert!(diags.iter().any(|d| d.is_error()), "{name}: no error");
        let rendered = render(&file, &diags, RenderStyle::Plain);
        insta::assert_snapshot!(name.as_str(), rendered);
    }
}
