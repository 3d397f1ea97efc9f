//! Sinking: moves every instruction that only computes (and every load that may move) down to
//! just before its first use in the same region, so that the values of a tile operation live
//! one slot at a time instead of a whole tile at a time.
//!
//! The lowering emits a tile operation slot by slot for the whole tile before the next one
//! starts (128 loads, then 128 decodes, then 128 casts …), which keeps a whole tile of every
//! intermediate alive; after sinking, each element's chain runs right before the instruction
//! that consumes it. A load may pass only instructions that neither write memory nor
//! synchronise (pure ones, other loads, shuffles, `mma`); pure instructions may pass anything.
//! Nothing moves into or out of a region. The program's meaning does not change; only live
//! ranges do (which is what ptxas's register count and spills measure).

use std::collections::HashSet;
use tilc_simt::{InstKind, Kernel, Region, Value};

/// Sinks instructions in every region of `k`.
pub fn sink(k: &mut Kernel) {
    let regions: Vec<Region> = k.regions.keys().collect();
    for r in regions {
        sink_region(k, r);
    }
}

/// The values an instruction reads, including those read inside its regions.
fn uses_deep(k: &Kernel, i: tilc_simt::Inst, out: &mut HashSet<Value>) {
    k.insts[i].kind.for_each_operand(|v| {
        out.insert(v);
    });
    for r in k.insts[i].kind.regions() {
        for &j in &k.regions[r].insts {
            uses_deep(k, j, out);
        }
    }
}

fn movable(kind: &InstKind) -> Option<bool> {
    // Some(true): pure, may pass anything; Some(false): a load, may pass only non-writers.
    if kind.is_pure() {
        return Some(true);
    }
    match kind {
        InstKind::Load { .. } | InstKind::ArrayGet(..) => Some(false),
        _ => None,
    }
}

/// Whether a load may move past `kind`.
fn load_may_pass(kind: &InstKind) -> bool {
    kind.is_pure() || matches!(kind, InstKind::Load { .. } | InstKind::Shfl { .. } | InstKind::Mma(..) | InstKind::Ldmatrix { .. })
}

fn sink_region(k: &mut Kernel, r: Region) {
    let mut insts = k.regions[r].insts.clone();
    if insts.len() < 3 {
        return;
    }
    // What each instruction of the region reads (deeply).
    let mut reads: Vec<HashSet<Value>> = insts
        .iter()
        .map(|&i| {
            let mut s = HashSet::new();
            uses_deep(k, i, &mut s);
            s
        })
        .collect();
    let mut idx = insts.len();
    while idx > 0 {
        idx -= 1;
        let inst = insts[idx];
        let Some(pure) = movable(&k.insts[inst].kind) else { continue };
        let results = k.insts[inst].results.clone();
        if results.is_empty() {
            continue;
        }
        // The first later instruction that reads a result.
        let Some(first) = (idx + 1..insts.len()).find(|&j| results.iter().any(|v| reads[j].contains(v))) else { continue };
        if first == idx + 1 {
            continue;
        }
        let target = if pure {
            first
        } else {
            // A load stops before the first instruction it may not pass.
            match (idx + 1..first).find(|&j| !load_may_pass(&k.insts[insts[j]].kind)) {
                Some(stop) => stop,
                None => first,
            }
        };
        if target <= idx + 1 {
            continue;
        }
        let moved_inst = insts.remove(idx);
        let moved_reads = reads.remove(idx);
        insts.insert(target - 1, moved_inst);
        reads.insert(target - 1, moved_reads);
    }
    k.regions[r].insts = insts;
}
