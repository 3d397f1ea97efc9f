//! Dead code elimination.
//!
//! Deletes, until nothing more goes: pure instructions whose results are unused; `for` and `if`
//! instructions whose results are unused and whose regions contain only pure instructions (and
//! such loops/ifs); writes to register arrays that are never read.
//!
//! What it cannot do: remove unused loop-carried values of a loop that is otherwise live, or
//! dead stores to memory (memory is observable), or anything with side effects (barriers,
//! `cp.async`, shuffles: a shuffle is collective, and deleting it in one place would change
//! nothing for other lanes, but it is kept to keep warp behaviour identical).

use crate::ir::*;
use std::collections::HashSet;

/// Runs dead code elimination; returns whether anything was deleted.
pub fn dce(k: &mut Kernel) -> bool {
    let mut changed = false;
    loop {
        let uses = k.use_counts();
        let mut read_arrays = HashSet::new();
        k.walk(&mut |i| {
            if let InstKind::ArrayGet(a, _) = k.insts[i].kind {
                read_arrays.insert(a);
            }
        });
        let mut removed = false;
        for r in super::reachable_regions(k) {
            let insts = k.regions[r].insts.clone();
            let keep: Vec<Inst> = insts
                .iter()
                .copied()
                .filter(|&i| {
                    let unused = k.insts[i].results.iter().all(|&v| uses[v] == 0);
                    let dead = match &k.insts[i].kind {
                        InstKind::ArraySet(a, ..) => !read_arrays.contains(a),
                        InstKind::Yield(_) => false,
                        kind => unused && removable(k, kind),
                    };
                    !dead
                })
                .collect();
            if keep.len() != insts.len() {
                removed = true;
                k.regions[r].insts = keep;
            }
        }
        if !removed {
            return changed;
        }
        changed = true;
    }
}

fn removable(k: &Kernel, kind: &InstKind) -> bool {
    if kind.is_pure() {
        return true;
    }
    match kind {
        InstKind::For { .. } | InstKind::If { .. } => kind.regions().iter().all(|&r| {
            k.regions[r].insts.iter().all(|&i| {
                let kind = &k.insts[i].kind;
                matches!(kind, InstKind::Yield(_)) || removable(k, kind)
            })
        }),
        _ => false,
    }
}
