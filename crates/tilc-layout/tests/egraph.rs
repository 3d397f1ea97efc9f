//! The e-graph's questions on the library's layouts: `factor` recovers `outer` from
//! `outer * atom` for every fragment atom, also when the product is written differently;
//! `equivalent` and `canonical_expr` agree with the numeric canonical form. Saturation times are
//! printed (run with `--nocapture`), never asserted.

mod common;

use common::{SEED, config, product};
use proptest::prelude::*;
use std::time::Instant;
use tilc_layout::egraph::{Saturated, canonical_expr, equivalent, factor, to_term};
use tilc_layout::{LayoutExpr, compose, divide, fragments, parse_layout_expr, to_expr};

fn e(s: &str) -> LayoutExpr {
    parse_layout_expr(s).unwrap()
}

/// The forms of `outer * atom` that `factor` must see through: as written, and as the
/// numeric canonical form written back as a product (merges across the boundary included).
fn forms(outer: &LayoutExpr, atom: &LayoutExpr) -> Vec<LayoutExpr> {
    let written = LayoutExpr::compose(outer.clone(), atom.clone());
    let canonical = to_expr(&written.eval()).expect("products stay products");
    vec![written, canonical]
}

fn check_factor(outer: &LayoutExpr, atom: &LayoutExpr) -> Result<(), TestCaseError> {
    for form in forms(outer, atom) {
        let got = factor(&form, atom);
        let got = got.ok_or_else(|| TestCaseError::fail(format!("seed {SEED}: no factor of {form} by {atom}")))?;
        prop_assert_eq!(compose(&got.eval(), &atom.eval()), form.eval());
        prop_assert_eq!(got.eval(), divide(&form.eval(), &atom.eval()).unwrap(), "seed {}", SEED);
    }
    Ok(())
}

#[test]
fn factor_recovers_warp_tilings_of_every_fragment() {
    let outers = ["local(2, 1).spatial(1, 4)", "column_spatial(2, 2).local(2, 2)"];
    let mut worst = 0.0f64;
    for (name, atom) in fragments::all() {
        for outer in outers {
            let start = Instant::now();
            check_factor(&e(outer), &atom).unwrap_or_else(|err| panic!("{name}: {err}"));
            worst = worst.max(start.elapsed().as_secs_f64());
        }
    }
    println!("slowest factor query (2 forms) on a fragment: {:.1} ms", worst * 1e3);
}

#[test]
fn factor_says_none_when_there_is_no_quotient() {
    let a = fragments::mma(fragments::MmaKind::M16N8K16F16);
    // The B fragment is not a tiling of the A fragment, nor is a transposed layout.
    assert!(factor(&LayoutExpr::compose(e("spatial(2, 2)"), a.b.clone()), &a.a).is_none());
    assert!(factor(&e("spatial(16, 8)"), &e("column_spatial(8, 4)")).is_none());
}

#[test]
fn factor_sees_through_commuted_and_merged_forms() {
    let c = fragments::mma(fragments::MmaKind::M16N8K16F16).c;
    // outer = spatial(1, 2): written with the outer spatial factor moved past the atom's local.
    let written = e("local(2, 1).spatial(1, 2).spatial(8, 4).local(1, 2)");
    assert_eq!(factor(&written, &c).unwrap().eval(), e("spatial(1, 2)").eval());
    // outer = local(2, 1).spatial(2, 1) against an ldmatrix atom, merged into spatial(16, 4).
    let ld = fragments::ldmatrix(fragments::MatrixCount::X1, false);
    let merged = e("local(2, 1).spatial(16, 4).local(1, 2)");
    assert_eq!(factor(&merged, &ld).unwrap().to_string(), "local(2, 1).spatial(2, 1)");
}

#[test]
fn equivalence_and_canonical_forms_agree_with_the_numbers() {
    let a = e("column_local(2, 2).spatial(8, 4).local(1, 2)");
    let b = e("local(1, 2).local(2, 1).spatial(8, 4).local(1, 2)");
    assert!(equivalent(&a, &b));
    assert_eq!(canonical_expr(&b).to_string(), "column_local(2, 2).spatial(8, 4).local(1, 2)");
    assert!(!equivalent(&a, &fragments::mma(fragments::MmaKind::M16N8K16F16).c));
}

#[test]
fn saturation_times_on_the_library() {
    for (name, atom) in fragments::all() {
        let tiled = LayoutExpr::compose(e("local(2, 2).spatial(2, 2)"), atom.clone());
        let q = format!("(/ {} {})", to_term(&tiled), to_term(&atom));
        let s = Saturated::run(&[q.parse().unwrap()]);
        assert!(s.egraph().analysis.conflicts.is_empty());
        println!(
            "{name:28} saturated={} iterations={} nodes={} time={:.1} ms",
            s.saturated(),
            s.runner.iterations.len(),
            s.egraph().total_number_of_nodes(),
            s.time().as_secs_f64() * 1e3
        );
    }
}

proptest! {
    #![proptest_config(config(6))]

    /// Random outers times every fragment atom, in both forms.
    #[test]
    fn factor_recovers_random_outers(outer in product(2), k in 0usize..64) {
        let atoms = fragments::all();
        let (_, atom) = &atoms[k % atoms.len()];
        check_factor(&outer, atom)?;
    }

    /// The extracted normal form denotes the same layout, and is proved equal to the input.
    #[test]
    fn canonical_expr_preserves_the_mapping(a in product(3)) {
        let c = canonical_expr(&a);
        prop_assert_eq!(c.eval(), a.eval(), "seed {}: {} → {}", SEED, a, c);
        prop_assert!(equivalent(&a, &c));
    }
}
