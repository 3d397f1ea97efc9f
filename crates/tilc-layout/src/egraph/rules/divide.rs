//! Rules of division: `(/ l a)` is the `q` with `l = q * a`, `(ldiv l a)` the `q` with
//! `l = a * q`. They push a division through products until it cancels or meets primitives.

use super::{DividePrims, LayoutRewrite, SplitPrim, divisible, left_divisible, rank_at_least};
use egg::rewrite as rw;

/// Division's rules.
#[rustfmt::skip]
pub fn rules() -> Vec<LayoutRewrite> {
    vec![
        rw!("div-cancel";       "(/ (* ?a ?b) ?b)"    => "?a" if rank_at_least("?a", "?b")),
        rw!("div-by-product";   "(/ ?l (* ?a ?b))"    => "(/ (/ ?l ?b) ?a)"),
        rw!("div-through";      "(/ (* ?a ?b) ?c)"    => "(* ?a (/ ?b ?c))" if divisible("?b", "?c")),
        rw!("div-prims";        "(/ ?a ?b)"           => { DividePrims { a: "?a", b: "?b", left: false } }),
        rw!("split-divisor";    "(/ ?l ?a)"           => { SplitPrim { a: "?a" } }),
        rw!("ldiv-cancel";      "(ldiv (* ?a ?b) ?a)" => "?b" if rank_at_least("?b", "?a")),
        rw!("ldiv-by-product";  "(ldiv ?l (* ?a ?b))" => "(ldiv (ldiv ?l ?a) ?b)"),
        rw!("ldiv-through";     "(ldiv (* ?a ?b) ?c)" => "(* (ldiv ?a ?c) ?b)" if left_divisible("?a", "?c")),
        rw!("ldiv-prims";       "(ldiv ?a ?b)"        => { DividePrims { a: "?a", b: "?b", left: true } }),
        rw!("split-ldivisor";   "(ldiv ?l ?a)"        => { SplitPrim { a: "?a" } }),
    ]
}
