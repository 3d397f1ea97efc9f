//! Loop unrolling as the `for` hints ask.
//!
//! - `unroll full` with constant `lo`, `hi`, `step`: the loop is replaced by one copy of its body
//!   per iteration, the induction variable becoming a constant in each copy and the carried
//!   values threaded from copy to copy. This is what turns register-array indices and pipeline
//!   stage numbers into constants (Tilus's `range(..., unroll=stages)`).
//! - `unroll N` with a constant trip count divisible by `N`: the body is repeated `N` times inside
//!   a loop whose step is `N·step`; copy `j` uses `iv + j·step`.
//! - Inner loops are unrolled before outer ones, so a fully unrolled nest is straight-line code.
//!
//! What it cannot do (the loop is left as it is, hint included, for the backend to see): bounds
//! that are not constants, a trip count not divisible by the factor (no remainder loop is made),
//! or a full unroll that would exceed [`MAX_UNROLLED_INSTS`] instructions.

use super::{clone_region_body, set_regions};
use crate::ir::*;
use crate::types::Type;
use std::collections::HashMap;

/// The largest number of instructions one full unroll may produce.
pub const MAX_UNROLLED_INSTS: usize = 200_000;

/// Unrolls every hinted loop it can; returns whether anything changed.
pub fn unroll(k: &mut Kernel) -> bool {
    let body = k.body;
    unroll_region(k, body)
}

fn count(k: &Kernel, r: Region) -> usize {
    let mut n = 0;
    k.walk_region(r, &mut |_| n += 1);
    n
}

fn unroll_region(k: &mut Kernel, r: Region) -> bool {
    let mut changed = false;
    let old = k.regions[r].insts.clone();
    let mut out = Vec::with_capacity(old.len());
    for i in old {
        for sub in k.insts[i].kind.regions() {
            changed |= unroll_region(k, sub);
        }
        let InstKind::For { lo, hi, step, init, body, unroll } = k.insts[i].kind.clone() else {
            out.push(i);
            continue;
        };
        let bounds = (k.const_int(lo), k.const_int(hi), k.const_int(step));
        let (Some(l), Some(h), Some(s)) = bounds else {
            out.push(i);
            continue;
        };
        if s <= 0 {
            out.push(i);
            continue;
        }
        let trips = if h > l { ((h - l) + s - 1) / s } else { 0 };
        match unroll {
            Unroll::Full if (trips as usize).saturating_mul(count(k, body)) <= MAX_UNROLLED_INSTS => {
                let args = k.regions[body].args.clone();
                let mut carried = init.clone();
                for t in 0..trips {
                    let iv = (l + t * s) as i32;
                    let c = k.make_inst(InstKind::Const { ty: Type::I32, bits: iv as u32 as u64 }, &[Type::I32]);
                    out.push(c);
                    let mut map = HashMap::new();
                    map.insert(args[0], k.insts[c].results[0]);
                    for (a, v) in args[1..].iter().zip(&carried) {
                        map.insert(*a, *v);
                    }
                    let (insts, yielded) = clone_region_body(k, body, &mut map);
                    out.extend(insts);
                    carried = yielded;
                }
                // Results are used after the loop: rewrite those uses to the last carried values.
                let mut rw = super::Rewriter::default();
                for (res, v) in k.insts[i].results.clone().into_iter().zip(carried) {
                    rw.replace(res, v);
                }
                pending_rewrites(k, rw);
                changed = true;
            }
            Unroll::Factor(f) if f > 1 && trips % f as i64 == 0 && trips > 0 => {
                let f = f as i64;
                let args = k.regions[body].args.clone();
                let new_body = k.regions.push(RegionData::default());
                let iv = k.add_region_arg(new_body, Type::I32);
                let mut carried: Vec<Value> = args[1..].iter().map(|a| {
                    let ty = k.ty(*a);
                    k.add_region_arg(new_body, ty)
                }).collect();
                let mut insts = Vec::new();
                for j in 0..f {
                    let ivj = if j == 0 {
                        iv
                    } else {
                        let c = k.make_inst(InstKind::Const { ty: Type::I32, bits: ((j * s) as i32) as u32 as u64 }, &[Type::I32]);
                        insts.push(c);
                        let cv = k.insts[c].results[0];
                        let add = k.make_inst(InstKind::Binary(BinaryOp::Add, iv, cv), &[Type::I32]);
                        insts.push(add);
                        k.insts[add].results[0]
                    };
                    let mut map = HashMap::new();
                    map.insert(args[0], ivj);
                    for (a, v) in args[1..].iter().zip(&carried) {
                        map.insert(*a, *v);
                    }
                    let (copy, yielded) = clone_region_body(k, body, &mut map);
                    insts.extend(copy);
                    carried = yielded;
                }
                let y = k.make_inst(InstKind::Yield(carried), &[]);
                insts.push(y);
                k.regions[new_body].insts = insts;
                let sc = k.make_inst(InstKind::Const { ty: Type::I32, bits: ((s * f) as i32) as u32 as u64 }, &[Type::I32]);
                out.push(sc);
                let mut kind = InstKind::For { lo, hi, step: k.insts[sc].results[0], init, body, unroll: Unroll::None };
                set_regions(&mut kind, &[new_body]);
                k.insts[i].kind = kind;
                out.push(i);
                changed = true;
            }
            _ => out.push(i),
        }
    }
    k.regions[r].insts = out;
    changed
}

/// Applies a rewrite of loop results to the whole kernel.
fn pending_rewrites(k: &mut Kernel, rw: super::Rewriter) {
    // Every use of a loop result is dominated by the loop, i.e. it lies later in this region or
    // in an enclosing one; rewriting all reachable instructions plus the rest of this region's
    // original list covers them. Instructions of the enclosing regions are reachable already;
    // the ones later in this region are still in `old` (not yet in the region list), so rewrite
    // every instruction in the arena instead: unreachable ones are harmless to touch.
    let all: Vec<Inst> = k.insts.keys().collect();
    for i in all {
        k.insts[i].kind.map_operands(|v| rw.resolve(v));
    }
}
