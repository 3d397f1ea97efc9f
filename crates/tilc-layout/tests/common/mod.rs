//! Generators shared by the property tests: random primitives and products of them, all of
//! rank 2 with small extents, so that brute-force enumeration stays cheap.

#![allow(dead_code)]

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use tilc_layout::{LayoutExpr, PrimKind, Primitive};

/// The seed of every property test (printed in each failure message).
pub const SEED: u64 = 0x7113_c0de;

/// A seeded configuration with `cases` cases and no regression files.
pub fn config(cases: u32) -> Config {
    Config { cases, rng_seed: RngSeed::Fixed(SEED), failure_persistence: None, ..Config::default() }
}

/// A random rank-2 primitive (or a replication).
pub fn prim() -> impl Strategy<Value = LayoutExpr> {
    let kind = prop_oneof![
        Just(PrimKind::Local),
        Just(PrimKind::Spatial),
        Just(PrimKind::ColumnLocal),
        Just(PrimKind::ColumnSpatial)
    ];
    prop_oneof![
        8 => (kind, 1usize..=4, 1usize..=4).prop_map(|(k, a, b)| LayoutExpr::Prim(Primitive::Modes(k, vec![a, b]))),
        1 => (2usize..=3).prop_map(|w| LayoutExpr::Prim(Primitive::Replicate(w))),
    ]
}

/// A product of 1..=max primitives, of rank 2.
pub fn product(max: usize) -> impl Strategy<Value = LayoutExpr> {
    proptest::collection::vec(prim(), 1..=max).prop_map(|ps| {
        // Keep rank 2 even when every factor is a replication.
        let rank2 = LayoutExpr::Prim(Primitive::Modes(PrimKind::Local, vec![1, 1]));
        LayoutExpr::product(ps.into_iter().chain([rank2]))
    })
}
