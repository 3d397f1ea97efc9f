//! Common subexpression elimination over structured regions.
//!
//! A pure single-result instruction (constants and special registers included) that repeats an
//! earlier one with the same operands, visible at this point (earlier in the same region or in
//! an enclosing region), is replaced by the earlier result. Scopes follow the region tree, so a
//! value computed inside one `if` branch is never reused in the other or after the `if`; values
//! computed before a loop are reused inside it.
//!
//! What it cannot do: merge loads (memory may change in between), register-array reads,
//! shuffles or any other impure instruction; recognise commuted operands (`a+b` vs `b+a`);
//! hoist loop-invariant code out of loops.

use super::Rewriter;
use crate::ir::*;
use std::collections::HashMap;

/// Runs CSE; returns whether anything was merged.
pub fn cse(k: &mut Kernel) -> bool {
    let mut rw = Rewriter::default();
    let mut scopes: Vec<HashMap<InstKind, Value>> = vec![HashMap::new()];
    let body = k.body;
    let mut changed = false;
    cse_region(k, body, &mut rw, &mut scopes, &mut changed);
    rw.apply(k);
    changed
}

fn lookup(scopes: &[HashMap<InstKind, Value>], key: &InstKind) -> Option<Value> {
    scopes.iter().rev().find_map(|s| s.get(key).copied())
}

fn cse_region(k: &mut Kernel, r: Region, rw: &mut Rewriter, scopes: &mut Vec<HashMap<InstKind, Value>>, changed: &mut bool) {
    let old = std::mem::take(&mut k.regions[r].insts);
    let mut out = Vec::with_capacity(old.len());
    for i in old {
        k.insts[i].kind.map_operands(|v| rw.resolve(v));
        let kind = k.insts[i].kind.clone();
        if kind.is_pure() && k.insts[i].results.len() == 1 {
            let res = k.insts[i].results[0];
            // Types are part of the key through the operands, except for constants and casts,
            // which carry their result type in the kind itself.
            if let Some(prev) = lookup(scopes, &kind) {
                if k.ty(prev) == k.ty(res) {
                    rw.replace(res, prev);
                    *changed = true;
                    continue;
                }
            }
            scopes.last_mut().expect("a scope is always open").insert(kind, res);
        } else {
            for sub in kind.regions() {
                scopes.push(HashMap::new());
                cse_region(k, sub, rw, scopes, changed);
                scopes.pop();
            }
        }
        out.push(i);
    }
    k.regions[r].insts = out;
}
