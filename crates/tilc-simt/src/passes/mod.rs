//! Passes over SIMT kernels, and the default pipeline [`optimize`].
//!
//! Each pass is one module that documents what it does and what it cannot do. Every pass keeps
//! the kernel valid (the verifier passes before and after) and keeps its meaning: the emulator
//! gives the same results before and after (tests check this on random programs).
//!
//! Shared helpers live here: use replacement ([`Rewriter`]), region cloning and [`compact`].

mod compact;
mod cse;
mod dce;
mod fold;
mod strength;
mod unroll;

pub use compact::compact;
pub use cse::cse;
pub use dce::dce;
pub use fold::fold_constants;
pub use strength::strength_reduce;
pub use unroll::unroll;

use crate::ir::*;
use std::collections::HashMap;

/// The default pipeline: unroll loops as hinted, then fold, strength-reduce, CSE and remove dead
/// code until nothing changes (at most a few rounds), then renumber.
pub fn optimize(k: &mut Kernel) {
    unroll(k);
    for _ in 0..4 {
        let before = k.inst_count();
        let mut changed = fold_constants(k);
        changed |= strength_reduce(k);
        changed |= cse(k);
        changed |= dce(k);
        if !changed && k.inst_count() == before {
            break;
        }
    }
    compact(k);
}

/// Value replacement: maps a value to the value that replaces it (following chains).
#[derive(Default)]
pub(crate) struct Rewriter {
    map: HashMap<Value, Value>,
}

impl Rewriter {
    pub(crate) fn replace(&mut self, old: Value, new: Value) {
        let new = self.resolve(new);
        if old != new {
            self.map.insert(old, new);
        }
    }

    pub(crate) fn resolve(&self, mut v: Value) -> Value {
        while let Some(&n) = self.map.get(&v) {
            v = n;
        }
        v
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Rewrites every operand of every reachable instruction.
    pub(crate) fn apply(&self, k: &mut Kernel) {
        if self.map.is_empty() {
            return;
        }
        let mut all = Vec::new();
        k.walk(&mut |i| all.push(i));
        for i in all {
            k.insts[i].kind.map_operands(|v| self.resolve(v));
        }
    }
}

/// Replaces the regions an instruction owns (same order as [`InstKind::regions`]).
pub(crate) fn set_regions(kind: &mut InstKind, regions: &[Region]) {
    match kind {
        InstKind::For { body, .. } => *body = regions[0],
        InstKind::If { then_region, else_region, .. } => {
            *then_region = regions[0];
            *else_region = regions[1];
        }
        _ => {}
    }
}

/// Clones the instructions of region `src` (all but a final `yield`), mapping operands through
/// `map` (values not in it are kept) and recording new results in it. Returns the new
/// instructions and the mapped operands of the final `yield` (empty if none).
pub(crate) fn clone_region_body(k: &mut Kernel, src: Region, map: &mut HashMap<Value, Value>) -> (Vec<Inst>, Vec<Value>) {
    let insts = k.regions[src].insts.clone();
    let mut out = Vec::new();
    let mut yielded = Vec::new();
    for (n, &i) in insts.iter().enumerate() {
        if n + 1 == insts.len() {
            if let InstKind::Yield(vs) = &k.insts[i].kind {
                yielded = vs.iter().map(|v| *map.get(v).unwrap_or(v)).collect();
                break;
            }
        }
        out.push(clone_inst(k, i, map));
    }
    (out, yielded)
}

/// Clones one instruction (deeply: its regions too).
pub(crate) fn clone_inst(k: &mut Kernel, i: Inst, map: &mut HashMap<Value, Value>) -> Inst {
    let mut kind = k.insts[i].kind.clone();
    kind.map_operands(|v| *map.get(&v).unwrap_or(&v));
    let mut new_regions = Vec::new();
    for r in k.insts[i].kind.regions() {
        let nr = k.regions.push(RegionData::default());
        for a in k.regions[r].args.clone() {
            let ty = k.ty(a);
            let na = k.add_region_arg(nr, ty);
            map.insert(a, na);
        }
        let body: Vec<Inst> = k.regions[r].insts.clone().into_iter().map(|j| clone_inst(k, j, map)).collect();
        k.regions[nr].insts = body;
        new_regions.push(nr);
    }
    set_regions(&mut kind, &new_regions);
    let tys: Vec<_> = k.insts[i].results.iter().map(|&v| k.ty(v)).collect();
    let ni = k.make_inst(kind, &tys);
    for (old, new) in k.insts[i].results.clone().into_iter().zip(k.insts[ni].results.clone()) {
        map.insert(old, new);
    }
    ni
}

/// Every region reachable from the body, outer before inner.
pub(crate) fn reachable_regions(k: &Kernel) -> Vec<Region> {
    let mut out = vec![k.body];
    k.walk(&mut |i| out.extend(k.insts[i].kind.regions()));
    out
}
