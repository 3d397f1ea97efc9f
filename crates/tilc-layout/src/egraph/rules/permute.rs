//! Rules of `permute`: it distributes over the product and, on a primitive, gives the
//! primitive with permuted extents and dimension order (`column_spatial(a, b) =
//! permute(spatial(b, a), [1, 0])`).

use super::{AxisOpOnPrim, LayoutRewrite, is_identity_permutation, ranks_fit};
use egg::rewrite as rw;

/// Permutation's rules.
#[rustfmt::skip]
pub fn rules() -> Vec<LayoutRewrite> {
    vec![
        rw!("permute-distribute"; "(permute (* ?a ?b) ?p)" => "(* (permute ?a ?p) (permute ?b ?p))" if ranks_fit("?a", "?b", "?p")),
        rw!("permute-identity";   "(permute ?a ?p)"        => "?a" if is_identity_permutation("?p")),
        rw!("permute-prim";       "(permute ?a ?p)"        => { AxisOpOnPrim { a: "?a" } }),
    ]
}
