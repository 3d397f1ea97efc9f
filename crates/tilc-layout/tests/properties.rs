//! Property tests of the algebra on random layouts, against brute-force enumeration.

mod common;

use common::{SEED, config, product};
use proptest::prelude::*;
use tilc_layout::{
    IndexVar, RegisterLayout, SpatialMode, compose, divide, left_divide, permute, reduce, to_expr,
};

/// Every (thread, slot) → index pair of a layout.
fn table(l: &RegisterLayout) -> Vec<Vec<usize>> {
    let mut v = Vec::new();
    for t in 0..l.num_threads() {
        for i in 0..l.local_size() {
            v.push(l.global_index(t, i).unwrap());
        }
    }
    v
}

proptest! {
    #![proptest_config(config(128))]

    /// h(t, i) = f(t / T_g, i / m_g) ⊙ S_g + g(t mod T_g, i mod m_g).
    #[test]
    fn composition_formula(f in product(3), g in product(3)) {
        let (f, g) = (f.eval(), g.eval());
        let h = compose(&f, &g);
        prop_assert_eq!(h.num_threads(), f.num_threads() * g.num_threads());
        prop_assert_eq!(h.local_size(), f.local_size() * g.local_size());
        let (tg, mg) = (g.num_threads(), g.local_size());
        for t in 0..h.num_threads() {
            for i in 0..h.local_size() {
                let fo = f.global_index(t / tg, i / mg).unwrap();
                let gi = g.global_index(t % tg, i % mg).unwrap();
                let want: Vec<usize> = (0..2).map(|d| fo[d] * g.shape()[d] + gi[d]).collect();
                prop_assert_eq!(h.global_index(t, i).unwrap(), want, "seed {}, t {}, i {}", SEED, t, i);
            }
        }
    }

    #[test]
    fn associativity(a in product(2), b in product(2), c in product(2)) {
        let (a, b, c) = (a.eval(), b.eval(), c.eval());
        prop_assert_eq!(compose(&compose(&a, &b), &c), compose(&a, &compose(&b, &c)), "seed {}", SEED);
    }

    #[test]
    fn divide_inverts_compose(f in product(3), g in product(3)) {
        let (f, g) = (f.eval(), g.eval());
        let h = compose(&f, &g);
        prop_assert_eq!(divide(&h, &g).unwrap(), f.clone(), "seed {}", SEED);
        prop_assert_eq!(left_divide(&h, &f).unwrap(), g, "seed {}", SEED);
    }

    /// Equal canonical forms ⇔ equal tables (canonical equality is mapping equality).
    #[test]
    fn canonical_equality_is_mapping_equality(a in product(3), b in product(3)) {
        let (a, b) = (a.eval(), b.eval());
        let same_map = a.shape() == b.shape() && a.num_threads() == b.num_threads() && table(&a) == table(&b);
        prop_assert_eq!(a == b, same_map, "seed {}: {} vs {}", SEED, a, b);
    }

    /// Random (non-canonical) fields: the canonical layout maps as the fields say.
    #[test]
    fn canonicalization_preserves_the_map(
        splits in proptest::collection::vec(proptest::collection::vec(1usize..=3, 1..=3), 2),
        order in Just(()).prop_perturb(|_, mut rng| rng.random::<u64>()),
    ) {
        // Modes: dimension d is split into splits[d]; assign each mode to a list by the bits of `order`.
        let mode_shape: Vec<usize> = splits.iter().flatten().copied().collect();
        let shape: Vec<usize> = splits.iter().map(|s| s.iter().product()).collect();
        let mut spatial = Vec::new();
        let mut local = Vec::new();
        let mut ids: Vec<usize> = (0..mode_shape.len()).collect();
        let shift = (order % 5) as usize % ids.len().max(1);
        ids.rotate_left(shift);
        for (k, m) in ids.into_iter().enumerate() {
            if order >> (k + 3) & 1 == 1 { spatial.push(SpatialMode::Mode(m)) } else { local.push(m) }
        }
        if order & 4 != 0 { spatial.insert(0, SpatialMode::Replica(2)); }
        let l = RegisterLayout::new(&shape, &mode_shape, &spatial, &local).unwrap();
        // Oracle: decode straight from the fields.
        let size = |s: &SpatialMode| match s { SpatialMode::Mode(m) => mode_shape[*m], SpatialMode::Replica(k) => *k };
        let threads: usize = spatial.iter().map(size).product();
        let slots: usize = local.iter().map(|&m| mode_shape[m]).product();
        prop_assert_eq!(l.num_threads(), threads);
        prop_assert_eq!(l.local_size(), slots);
        for t in 0..threads {
            for i in 0..slots {
                let mut digit = vec![0; mode_shape.len()];
                let mut x = t;
                for s in spatial.iter().rev() { if let SpatialMode::Mode(m) = s { digit[*m] = x % mode_shape[*m]; } x /= size(s); }
                let mut y = i;
                for &m in local.iter().rev() { digit[m] = y % mode_shape[m]; y /= mode_shape[m]; }
                let mut index = vec![0; 2];
                let mut m = 0;
                for (d, s) in splits.iter().enumerate() {
                    for &extent in s { index[d] = index[d] * extent + digit[m]; m += 1; }
                }
                prop_assert_eq!(l.global_index(t, i).unwrap(), index, "seed {}", SEED);
            }
        }
    }

    /// Each element is held by exactly `replication` threads, and the inverse map agrees.
    #[test]
    fn the_map_covers_the_tile_with_the_stated_replication(a in product(4)) {
        let l = a.eval();
        let mut count = vec![0usize; l.num_elements()];
        for t in 0..l.num_threads() {
            for i in 0..l.local_size() {
                let idx = l.global_index(t, i).unwrap();
                let (threads, slot) = l.owners(&idx).unwrap();
                prop_assert_eq!(slot, i);
                prop_assert!(threads.contains(&t));
                count[idx[0] * l.shape()[1] + idx[1]] += 1;
            }
        }
        prop_assert!(count.iter().all(|&c| c == l.replication()), "seed {}: {:?}", SEED, count);
    }

    #[test]
    fn to_expr_round_trips(a in product(4)) {
        let l = a.eval();
        let e = to_expr(&l).expect("products of primitives are products of primitives");
        prop_assert_eq!(e.eval(), l, "seed {}: {} → {}", SEED, a, e);
    }

    #[test]
    fn symbolic_maps_agree_with_numeric_maps(a in product(4)) {
        let l = a.eval();
        let index = l.index_exprs();
        let (slot, thread) = (l.slot_expr(), l.thread_expr());
        for t in 0..l.num_threads() {
            for i in 0..l.local_size() {
                let env = |v: IndexVar| match v { IndexVar::Thread => t as u64, IndexVar::Slot => i as u64, _ => 0 };
                let got: Vec<usize> = index.iter().map(|e| e.eval(&env) as usize).collect();
                let want = l.global_index(t, i).unwrap();
                prop_assert_eq!(&got, &want, "seed {}", SEED);
                let (threads, s) = l.owners(&want).unwrap();
                let env2 = |v: IndexVar| match v { IndexVar::Axis(d) => want[d] as u64, _ => 0 };
                prop_assert_eq!(slot.eval(&env2) as usize, s);
                prop_assert!(threads.contains(&(thread.eval(&env2) as usize)));
            }
        }
    }

    /// Tilus ✓: permute and reduce distribute over the product.
    #[test]
    fn permute_and_reduce_distribute(a in product(2), b in product(2), d in 0usize..2) {
        let (a, b) = (a.eval(), b.eval());
        let ab = compose(&a, &b);
        prop_assert_eq!(permute(&ab, &[1, 0]).unwrap(), compose(&permute(&a, &[1, 0]).unwrap(), &permute(&b, &[1, 0]).unwrap()));
        prop_assert_eq!(reduce(&ab, &[d], true).unwrap(), compose(&reduce(&a, &[d], true).unwrap(), &reduce(&b, &[d], true).unwrap()));
    }
}
