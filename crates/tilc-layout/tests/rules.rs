//! Every rewrite rule shown firing alone (start ⇒ goal, egg's `test_fn!` shape), a negative
//! case per family that must not prove, and a property test that runs each rule alone on random
//! terms and checks the analysis never sees two different layouts joined.

mod common;

use common::{SEED, config, prim, product};
use egg::{RecExpr, Runner};
use proptest::prelude::*;
use tilc_layout::egraph::rules::{LayoutRewrite, rules};
use tilc_layout::egraph::{LayoutAnalysis, LayoutTerm, Saturated, to_term};

fn only(name: &str) -> Vec<LayoutRewrite> {
    let picked: Vec<LayoutRewrite> = rules().into_iter().filter(|r| r.name.as_str() == name).collect();
    assert_eq!(picked.len(), 1, "no rule named {name}");
    picked
}

/// Runs `rule` alone from `start` and checks that `goal` is in the start's class.
fn fires(rule: &str, start: &str, goal: &str) {
    let start: RecExpr<LayoutTerm> = start.parse().unwrap();
    let goal: RecExpr<LayoutTerm> = goal.parse().unwrap();
    let runner = Runner::<LayoutTerm, LayoutAnalysis>::default().with_iter_limit(8).with_expr(&start).run(&only(rule));
    let root = runner.egraph.find(runner.roots[0]);
    assert_eq!(runner.egraph.lookup_expr(&goal), Some(root), "{rule}: {start} did not reach {goal}");
    assert!(runner.egraph.analysis.conflicts.is_empty(), "{rule}: {:?}", runner.egraph.analysis.conflicts);
}

/// With all rules, `start` and `goal` must stay apart.
fn never(start: &str, goal: &str) {
    let s = Saturated::run(&[start.parse().unwrap(), goal.parse().unwrap()]);
    assert_ne!(s.root(0), s.root(1), "{start} was proved equal to {goal}");
}

macro_rules! fires {
    ($($test:ident: $rule:literal, $start:literal => $goal:literal;)*) => {
        $(#[test] fn $test() { fires($rule, $start, $goal); })*
        /// Every rule of the tables has a firing test above.
        #[test]
        fn every_rule_has_a_firing_test() {
            let tested = [$($rule),*];
            for r in rules() {
                assert!(tested.contains(&r.name.as_str()), "rule {} has no firing test", r.name);
            }
        }
    };
}

fires! {
    assoc_left:            "assoc-left",            "(* spatial[2,1] (* local[1,2] spatial[4,1]))" => "(* (* spatial[2,1] local[1,2]) spatial[4,1])";
    assoc_right:           "assoc-right",           "(* (* spatial[2,1] local[1,2]) spatial[4,1])" => "(* spatial[2,1] (* local[1,2] spatial[4,1]))";
    unit_left:             "unit-left",             "(* one spatial[8,4])"                         => "spatial[8,4]";
    unit_right:            "unit-right",            "(* spatial[8,4] local[1,1])"                  => "spatial[8,4]";
    merge_prims_1d:        "merge-prims",           "(* spatial[2,1] spatial[3,1])"                => "spatial[6,1]";
    merge_prims_rows:      "merge-prims",           "(* spatial[2,1] spatial[1,3])"                => "spatial[2,3]";
    merge_prims_columns:   "merge-prims",           "(* local[1,2] local[2,1])"                    => "column_local[2,2]";
    merge_prims_replicas:  "merge-prims",           "(* replicated[2] replicated[3])"              => "replicated[6]";
    commute_spatial_local: "commute-spatial-local", "(* spatial[1,4] local[2,1])"                  => "(* local[2,1] spatial[1,4])";
    commute_local_spatial: "commute-local-spatial", "(* local[2,1] spatial[1,4])"                  => "(* spatial[1,4] local[2,1])";
    div_cancel:            "div-cancel",            "(/ (* spatial[2,1] local[1,2]) local[1,2])"   => "spatial[2,1]";
    div_by_product:        "div-by-product",        "(/ spatial[8,4] (* spatial[2,1] spatial[2,2]))" => "(/ (/ spatial[8,4] spatial[2,2]) spatial[2,1])";
    div_through:           "div-through",           "(/ (* local[2,1] spatial[16,4]) spatial[8,4])" => "(* local[2,1] (/ spatial[16,4] spatial[8,4]))";
    div_prims:             "div-prims",             "(/ spatial[32,4] spatial[8,4])"               => "spatial[4,1]";
    split_divisor:         "split-divisor",         "(/ spatial[8,4] column_local[2,2])"           => "(/ spatial[8,4] (* local[1,2] local[2,1]))";
    split_ldivisor:        "split-ldivisor",        "(ldiv spatial[8,4] spatial[2,2])"             => "(ldiv spatial[8,4] (* spatial[2,1] spatial[1,2]))";
    ldiv_cancel:           "ldiv-cancel",           "(ldiv (* spatial[2,1] local[1,2]) spatial[2,1])" => "local[1,2]";
    ldiv_by_product:       "ldiv-by-product",       "(ldiv spatial[8,4] (* spatial[2,1] spatial[2,2]))" => "(ldiv (ldiv spatial[8,4] spatial[2,1]) spatial[2,2])";
    ldiv_through:          "ldiv-through",          "(ldiv (* spatial[16,4] local[2,1]) spatial[2,1])" => "(* (ldiv spatial[16,4] spatial[2,1]) local[2,1])";
    ldiv_prims:            "ldiv-prims",            "(ldiv spatial[32,4] spatial[4,1])"            => "spatial[8,4]";
    permute_distribute:    "permute-distribute",    "(permute (* local[2,1] spatial[8,4]) [1,0])"  => "(* (permute local[2,1] [1,0]) (permute spatial[8,4] [1,0]))";
    permute_identity:      "permute-identity",      "(permute spatial[8,4] [0,1])"                 => "spatial[8,4]";
    permute_prim:          "permute-prim",          "(permute spatial[8,4] [1,0])"                 => "column_spatial[4,8]";
    reduce_distribute:     "reduce-distribute",     "(reduce (* local[2,1] spatial[8,4]) [1])"     => "(* (reduce local[2,1] [1]) (reduce spatial[8,4] [1]))";
    reduce_nothing:        "reduce-nothing",        "(reduce spatial[8,1] [1])"                    => "spatial[8,1]";
    reduce_prim:           "reduce-prim",           "(reduce spatial[3,4] [0])"                    => "(* replicated[3] spatial[1,4])";
}

#[test]
fn same_kind_factors_on_shared_dims_do_not_merge() {
    never("(* spatial[2,2] spatial[2,2])", "spatial[4,4]");
}

#[test]
fn same_kind_factors_on_disjoint_dims_do_not_commute() {
    never("(* spatial[2,1] spatial[1,3])", "(* spatial[1,3] spatial[2,1])");
}

#[test]
fn spatial_and_local_on_one_dim_do_not_commute() {
    never("(* spatial[2,1] local[2,1])", "(* local[2,1] spatial[2,1])");
}

#[test]
fn a_quotient_that_does_not_exist_is_never_a_product() {
    let s = Saturated::run(&["(/ spatial[8,4] column_spatial[2,2])".parse().unwrap()]);
    assert!(s.best_expr(0).is_none());
}

/// Random terms on which every rule has something to match.
fn term() -> impl Strategy<Value = String> {
    (product(3), product(2), prim(), 0usize..2).prop_map(|(a, b, p, d)| {
        let (a, b, p) = (to_term(&a), to_term(&b), to_term(&p));
        format!("(* (/ (* {a} {b}) {b}) (* (ldiv (* {p} {a}) {p}) (* (permute (* {a} {p}) [1,0]) (reduce (* {b} {p}) [{d}]))))")
    })
}

proptest! {
    #![proptest_config(config(24))]

    /// Each rule alone, a few iterations on random terms: no union joins different layouts.
    #[test]
    fn every_rule_preserves_the_mapping(t in term()) {
        let start: RecExpr<LayoutTerm> = t.parse().unwrap();
        for rule in rules() {
            let name = rule.name;
            let runner = Runner::<LayoutTerm, LayoutAnalysis>::default()
                .with_iter_limit(3)
                .with_node_limit(5_000)
                .with_expr(&start)
                .run(&[rule]);
            prop_assert!(runner.egraph.analysis.conflicts.is_empty(), "seed {}: rule {} on {}: {:?}", SEED, name, t, runner.egraph.analysis.conflicts);
        }
    }
}
