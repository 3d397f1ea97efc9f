//! Rules of `reduce` (keeping reduced dimensions with extent 1): it distributes over the
//! product; on a primitive, local extents of reduced dimensions vanish and spatial ones become
//! replication (`reduce(spatial(3, 4), [0]) = replicated(3).spatial(1, 4)`).

use super::{AxisOpOnPrim, LayoutRewrite, reduces_nothing, same_rank};
use egg::rewrite as rw;

/// Reduction's rules.
#[rustfmt::skip]
pub fn rules() -> Vec<LayoutRewrite> {
    vec![
        rw!("reduce-distribute"; "(reduce (* ?a ?b) ?d)" => "(* (reduce ?a ?d) (reduce ?b ?d))" if same_rank("?a", "?b")),
        rw!("reduce-nothing";    "(reduce ?a ?d)"        => "?a" if reduces_nothing("?a", "?d")),
        rw!("reduce-prim";       "(reduce ?a ?d)"        => { AxisOpOnPrim { a: "?a" } }),
    ]
}
