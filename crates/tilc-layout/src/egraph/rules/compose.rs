//! Rules of the product: associativity, units, merging neighbouring primitives of one kind,
//! and the commutation of a spatial with a local factor on disjoint dimensions.

use super::{LayoutRewrite, MergePrims, is_unit_for, spatial_local_disjoint};
use egg::rewrite as rw;

/// The product's rules.
#[rustfmt::skip]
pub fn rules() -> Vec<LayoutRewrite> {
    vec![
        rw!("assoc-left";            "(* ?a (* ?b ?c))" => "(* (* ?a ?b) ?c)"),
        rw!("assoc-right";           "(* (* ?a ?b) ?c)" => "(* ?a (* ?b ?c))"),
        rw!("unit-left";             "(* ?p ?a)"        => "?a" if is_unit_for("?p", "?a")),
        rw!("unit-right";            "(* ?a ?p)"        => "?a" if is_unit_for("?p", "?a")),
        rw!("merge-prims";           "(* ?a ?b)"        => { MergePrims { a: "?a", b: "?b" } }),
        rw!("commute-spatial-local"; "(* ?a ?b)"        => "(* ?b ?a)" if spatial_local_disjoint("?a", "?b")),
        rw!("commute-local-spatial"; "(* ?a ?b)"        => "(* ?b ?a)" if spatial_local_disjoint("?b", "?a")),
    ]
}
