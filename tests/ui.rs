//! Bad programs and their diagnostics: every `tests/ui/*.tl` file must be rejected with at
//! least one error, each error must point at `file:line:col` and carry a hint, and the whole
//! plain rendering is an insta snapshot (`tests/snapshots/ui__<name>.snap`). The first line of
//! each file is a comment saying what is wrong with it. The `tilc check` binary must exit 1 on
//! each file and never panic.

use std::path::{Path, PathBuf};
use std::process::Command;
use tilc_base::{RenderStyle, SourceFile, render};

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/ui exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "tl"))
        .collect();
    out.sort();
    out
}

fn load(path: &Path) -> SourceFile {
    let name = format!("tests/ui/{}", path.file_name().expect("a file").to_string_lossy());
    SourceFile::new(name, std::fs::read_to_string(path).expect("readable"))
}

/// Whether `text` contains `name:LINE:COL` with LINE and COL positive numbers.
fn has_file_line_col(text: &str, name: &str) -> bool {
    text.match_indices(&format!("{name}:")).any(|(i, m)| {
        let rest = &text[i + m.len()..];
        let mut parts = rest.splitn(3, ':');
        let line = parts.next().unwrap_or("");
        let col: String = parts.next().unwrap_or("").chars().take_while(|c| c.is_ascii_digit()).collect();
        !line.is_empty() && line.chars().all(|c| c.is_ascii_digit()) && !col.is_empty()
    })
}

#[test]
fn there_are_at_least_25_bad_programs() {
    assert!(cases().len() >= 25, "only {} cases", cases().len());
}

#[test]
fn every_bad_program_has_located_hinted_errors() {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_snapshot_path("snapshots");
    settings.bind(|| {
        for path in cases() {
            let file = load(&path);
            let (_, diags) = tilc_syntax::parse(&file);
            assert!(diags.iter().any(|d| d.is_error()), "{}: no error reported", file.name);
            for d in &diags {
                assert!(d.primary_span().is_some(), "{}: `{}` points nowhere", file.name, d.message);
                assert!(d.hint.as_deref().is_some_and(|h| !h.is_empty()), "{}: `{}` has no hint", file.name, d.message);
                let one = tilc_base::render_one(&file, d, RenderStyle::Plain);
                assert!(has_file_line_col(&one, &file.name), "{}: no file:line:col in\n{one}", file.name);
            }
            let text = render(&file, &diags, RenderStyle::Plain);
            let first_line = file.text.lines().next().unwrap_or("");
            let stem = path.file_stem().expect("a stem").to_string_lossy().into_owned();
            insta::with_settings!({ description => first_line.to_string() }, {
                insta::assert_snapshot!(format!("ui__{stem}"), text);
            });
        }
    });
}

#[test]
fn tilc_check_exits_1_with_file_line_col_and_no_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for path in cases() {
        let rel = path.strip_prefix(root).expect("under the root");
        let out = Command::new(env!("CARGO_BIN_EXE_tilc"))
            .current_dir(root)
            .arg("check")
            .arg(rel)
            .output()
            .expect("tilc runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: exit status {:?}\n{stderr}", rel.display(), out.status);
        assert!(!stderr.contains("panicked"), "{}: panicked\n{stderr}", rel.display());
        assert!(has_file_line_col(&stderr, &rel.display().to_string()), "{}: no file:line:col\n{stderr}", rel.display());
    }
}

#[test]
fn tilc_check_reports_all_files_and_errors_in_one_run() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO_BIN_EXE_tilc"))
        .current_dir(root)
        .args(["check", "tests/ui/several_errors.tl", "examples/gemm_w3a8.tl", "tests/ui/unknown_type_u0.tl"])
        .output()
        .expect("tilc runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    // several_errors.tl has three statements with an error each; u0 is one more.
    let errors = stderr.lines().filter(|l| l.starts_with("error")).count();
    assert!(errors >= 4, "{errors} errors:\n{stderr}");
    assert!(stderr.contains("tests/ui/several_errors.tl:3:"), "{stderr}");
    assert!(stderr.contains("tests/ui/several_errors.tl:4:"), "{stderr}");
    assert!(stderr.contains("tests/ui/several_errors.tl:5:"), "{stderr}");
    assert!(stderr.contains("tests/ui/unknown_type_u0.tl:2:"), "{stderr}");
}

#[test]
fn examples_check_clean_and_list_their_kernels() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO_BIN_EXE_tilc"))
        .current_dir(root)
        .args(["check", "--list", "examples/gemm_w3a8.tl", "examples/hadamard_rows.tl", "examples/hadamard_quant_mxfp4.tl"])
        .output()
        .expect("tilc runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    for k in ["kernel gemm_w3a8<", "kernel hadamard_rows<", "kernel hadamard_quant_mxfp4<"] {
        assert!(stdout.contains(k), "{k} not listed:\n{stdout}");
    }
    assert!(stdout.contains("    C[m, n] = (A[m, k] · (W[k, n] − 4))"), "doc comment not listed:\n{stdout}");
}

#[test]
fn fmt_check_passes_on_examples_and_write_fixes_a_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tilc = env!("CARGO_BIN_EXE_tilc");
    let out = Command::new(tilc)
        .current_dir(root)
        .args(["fmt", "--check", "examples/gemm_w3a8.tl", "examples/hadamard_rows.tl", "examples/hadamard_quant_mxfp4.tl"])
        .output()
        .expect("tilc runs");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));

    let dir = std::env::temp_dir().join(format!("tilc-fmt-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let messy = dir.join("messy.tl");
    std::fs::write(&messy, "kernel  k( n:i32 )grid[1]warps 1{let a=(n+1)*2;// two\n\n\n  store_it(a);}\n").expect("write");
    let check = Command::new(tilc).args(["fmt", "--check"]).arg(&messy).output().expect("tilc runs");
    assert_eq!(check.status.code(), Some(1));
    let write = Command::new(tilc).args(["fmt", "--write"]).arg(&messy).output().expect("tilc runs");
    assert_eq!(write.status.code(), Some(0), "{}", String::from_utf8_lossy(&write.stderr));
    let formatted = std::fs::read_to_string(&messy).expect("read");
    assert_eq!(
        formatted,
        "kernel k(n: i32) grid [1] warps 1 {\n    let a = (n + 1) * 2; // two\n\n    store_it(a);\n}\n"
    );
    let again = Command::new(tilc).args(["fmt", "--check"]).arg(&messy).output().expect("tilc runs");
    assert_eq!(again.status.code(), Some(0));
    let leftovers: Vec<_> = std::fs::read_dir(&dir).expect("dir").flatten().map(|e| e.file_name()).collect();
    assert_eq!(leftovers.len(), 1, "temporary files left behind: {leftovers:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
