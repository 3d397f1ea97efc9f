//! Unit tests of the parser driver: recovery, the cascade filter, the delimiter check.

use crate::ast::*;
use tilc_base::{Diagnostic, SourceFile};

fn parse(text: &str) -> (File, Vec<Diagnostic>) {
    crate::parse(&SourceFile::new("t.tl", text))
}

/// The 1-based line of each error.
fn error_lines(text: &str) -> Vec<usize> {
    let file = SourceFile::new("t.tl", text);
    let (_, diags) = crate::parse(&file);
    diags.iter().filter(|d| d.is_error()).map(|d| file.line_col(d.primary_span().expect("located").start).0).collect()
}

#[test]
fn one_error_per_broken_statement_and_recovery_in_between() {
    let text = "kernel k(n: i32, x: global f32[n]) grid [1] warps 1 {\n    let a = n + * 2;\n    let b = max(a,, 3);\n    store x[0] = ;\n    let ok = a + b;\n}\n";
    assert_eq!(error_lines(text), vec![2, 3, 4]);
    let (file, _) = parse(text);
    let stmts = &file.kernels[0].body.stmts;
    // The statement after the errors is parsed normally.
    assert!(matches!(&stmts.last().expect("stmts").kind, StmtKind::Let(l) if l.name.name == "ok"));
}

#[test]
fn a_broken_if_header_does_not_unbalance_the_braces() {
    let text = "kernel k(n: i32) grid [1] warps 1 {\n    if n = 1 {\n        let a = n;\n    }\n    let b = n;\n}\n";
    assert_eq!(error_lines(text), vec![2]);
    let (file, _) = parse(text);
    assert_eq!(file.kernels.len(), 1);
}

#[test]
fn errors_in_two_kernels_are_both_reported() {
    let text = "kernel a(n: i32) grid [1] warps 1 {\n    let = 1;\n}\n\nkernel b(n: u0) grid [1] warps 1 {\n    let c = ;\n}\n";
    assert_eq!(error_lines(text), vec![2, 5, 6]);
}

#[test]
fn an_unclosed_brace_still_yields_the_kernel() {
    let text = "kernel k(n: i32) grid [1] warps 1 {\n    let a = n;\n";
    let (file, diags) = parse(text);
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert!(diags[0].message.contains("unclosed `{`"), "{}", diags[0].message);
    assert_eq!(file.kernels.len(), 1);
}

#[test]
fn a_mismatched_closer_is_one_error() {
    let text = "kernel k(n: i32) grid [1] warps 1 {\n    let a = max(n, 4];\n}\n";
    let (_, diags) = parse(text);
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert!(diags[0].message.contains("mismatched"), "{}", diags[0].message);
}

#[test]
fn an_unterminated_string_does_not_also_report_its_parenthesis() {
    let text = "kernel k(n: i32) grid [1] warps 1 {\n    static_assert(n > 0, \"oops);\n}\n";
    let (_, diags) = parse(text);
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert!(diags[0].message.contains("unterminated string"));
}

#[test]
fn precedence_follows_rust() {
    let (file, diags) = parse("kernel k(n: i32) grid [1] warps 1 {\n    let a = n & n - 1 == 0 || !n < 2 * 3 + 1;\n}\n");
    assert!(diags.is_empty(), "{diags:?}");
    let StmtKind::Let(l) = &file.kernels[0].body.stmts[0].kind else { panic!("not a let") };
    assert_eq!(crate::print_expr(&l.init), "(n & (n - 1)) == 0 || !n < 2 * 3 + 1");
    let ExprKind::Binary { op: BinaryOp::Or, lhs, rhs } = &l.init.kind else { panic!("not ||") };
    assert!(matches!(lhs.kind, ExprKind::Binary { op: BinaryOp::Eq, .. }));
    assert!(matches!(rhs.kind, ExprKind::Binary { op: BinaryOp::Lt, .. }));
}

#[test]
fn doc_comments_attach_to_kernels_only() {
    let text = "/// stray\n\n// plain\n/// Doc one.\n/// Doc two.\nkernel k(n: i32) grid [1] warps 1 {\n    /// inner\n    let a = n;\n}\n";
    let (file, diags) = parse(text);
    assert_eq!(file.kernels[0].doc_text(), "Doc one.\nDoc two.");
    let warnings: Vec<_> = diags.iter().filter(|d| !d.is_error()).collect();
    assert_eq!(warnings.len(), 2, "{diags:?}");
    let texts: Vec<&str> = file.comments.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(texts, vec!["/// stray", "// plain", "/// inner"]);
}

#[test]
fn layouts_parse_with_chains_products_and_parentheses() {
    let (l, diags) = crate::parse_layout(&SourceFile::new("l", "local(2, 1) * (spatial(8, 4).local(1, 2))"));
    assert!(diags.is_empty(), "{diags:?}");
    let l = l.expect("a layout");
    assert_eq!(crate::print_layout(&l), "local(2, 1) * spatial(8, 4).local(1, 2)");
    let LayoutKind::Product { rhs, .. } = &l.kind else { panic!("not a product") };
    assert!(matches!(rhs.kind, LayoutKind::Chain { .. }));
    let (bad, diags) = crate::parse_layout(&SourceFile::new("l", "spatial(8, 4) + local(2)"));
    assert!(bad.is_none());
    assert_eq!(diags.len(), 1);
}

#[test]
fn scalar_only_types_are_not_element_types() {
    let ok = "kernel k(a: i64, b: bool, x: global u3[a]) grid [1] warps 1 {\n    let n: i64 = cast<i64>(a);\n}\n";
    assert!(parse(ok).1.is_empty(), "{:?}", parse(ok).1);
    let bad = "kernel k(a: i32, x: global i64[a]) grid [1] warps 1 {\n    let t = zeros<bool>[4];\n}\n";
    assert_eq!(error_lines(bad), vec![1, 2]);
}
