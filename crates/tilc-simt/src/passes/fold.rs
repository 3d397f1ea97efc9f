//! Constant folding and algebraic simplification.
//!
//! What it does, in one program-order walk:
//! - evaluates every pure instruction whose operands are all constants and whose result is a
//!   scalar, with the emulator's own semantics ([`crate::eval`]), so folding never changes a
//!   result bit; division by a constant zero is left alone (the emulator reports it);
//! - identities: `x+0`, `x-0`, `x*1`, `x*0`, `x&0`, `x&~0`, `x|0`, `x^0`, shifts by 0, `x/1`,
//!   `x%1`, `select` on a constant or of two equal arms, `ptr_add p, 0`;
//! - reassociates constant offsets: `(x + c1) + c2 → x + (c1+c2)` and
//!   `ptr_add (ptr_add p, c1), c2 → ptr_add p, (c1+c2)` (same offset type), which turns unrolled
//!   index math into one base plus constant offsets;
//! - `if` on a constant condition is replaced by the taken branch; a `for` whose constant bounds
//!   give no iteration is replaced by its initial values.
//!
//! What it cannot do: fold vector-typed results (there are no vector constants; `build` of
//! constants stays), fold through memory or register arrays, or reassociate anything but
//! constant offsets. Replaced instructions are left for [`super::dce`] to delete.

use super::Rewriter;
use crate::eval::eval_pure;
use crate::ir::*;
use crate::types::Type;

/// Runs constant folding; returns whether anything changed.
pub fn fold_constants(k: &mut Kernel) -> bool {
    let mut rw = Rewriter::default();
    let mut changed = false;
    let body = k.body;
    fold_region(k, body, &mut rw, &mut changed);
    rw.apply(k);
    changed || !rw.is_empty()
}

fn fold_region(k: &mut Kernel, r: Region, rw: &mut Rewriter, changed: &mut bool) {
    let old = std::mem::take(&mut k.regions[r].insts);
    let mut out = Vec::with_capacity(old.len());
    for i in old {
        k.insts[i].kind.map_operands(|v| rw.resolve(v));
        match k.insts[i].kind.clone() {
            InstKind::If { cond, then_region, else_region } if k.const_bits(cond).is_some() => {
                let taken = if k.const_bits(cond) == Some(1) { then_region } else { else_region };
                fold_region(k, taken, rw, changed);
                let mut insts = k.regions[taken].insts.clone();
                let yielded = match insts.pop().map(|y| k.insts[y].kind.clone()) {
                    Some(InstKind::Yield(vs)) => vs,
                    _ => Vec::new(),
                };
                for (res, y) in k.insts[i].results.clone().into_iter().zip(yielded) {
                    rw.replace(res, y);
                }
                out.extend(insts);
                *changed = true;
                continue;
            }
            InstKind::For { lo, hi, init, .. }
                if matches!((k.const_int(lo), k.const_int(hi)), (Some(a), Some(b)) if a >= b) =>
            {
                for (res, v) in k.insts[i].results.clone().into_iter().zip(init) {
                    rw.replace(res, v);
                }
                *changed = true;
                continue;
            }
            kind => {
                for sub in kind.regions() {
                    fold_region(k, sub, rw, changed);
                }
            }
        }
        fold_inst(k, i, rw, &mut out, changed);
        out.push(i);
    }
    k.regions[r].insts = out;
}

fn is_const(k: &Kernel, v: Value) -> bool {
    k.const_bits(v).is_some()
}

fn all_ones(k: &Kernel, v: Value) -> bool {
    let t = k.ty(v);
    k.const_bits(v).is_some_and(|b| t.bits() <= 64 && b as u128 == crate::semantics::mask(t.bits()))
}

/// Creates a constant instruction placed in `out` (before the instruction being folded).
fn new_const(k: &mut Kernel, ty: Type, bits: u64, out: &mut Vec<Inst>) -> Value {
    let i = k.make_inst(InstKind::Const { ty, bits }, &[ty]);
    out.push(i);
    k.insts[i].results[0]
}

fn fold_inst(k: &mut Kernel, i: Inst, rw: &mut Rewriter, out: &mut Vec<Inst>, changed: &mut bool) {
    use BinaryOp::*;
    let kind = k.insts[i].kind.clone();
    let Some(&res) = k.insts[i].results.first() else { return };
    let ty = k.ty(res);
    if !kind.is_pure() || matches!(kind, InstKind::Const { .. } | InstKind::Special(_)) {
        return;
    }
    // Full evaluation.
    if matches!(ty, Type::Scalar(_) | Type::Ptr(_)) && !matches!(kind, InstKind::SharedAddr(_)) {
        let ops = kind.operands();
        if !ops.is_empty() && ops.iter().all(|&v| is_const(k, v)) && !matches!(ty, Type::Ptr(_)) {
            let get = |v: Value| k.const_bits(v).map(|b| b as u128).unwrap_or(0);
            if let Ok(bits) = eval_pure(k, &kind, ty, &get) {
                k.insts[i].kind = InstKind::Const { ty, bits: bits as u64 };
                *changed = true;
                return;
            }
        }
    }
    let c = |v: Value| k.const_bits(v);
    let alias = match &kind {
        InstKind::Binary(op, a, b) => {
            let (a, b) = (*a, *b);
            match op {
                Add | Or | Xor if c(b) == Some(0) => Some(a),
                Add | Or | Xor if c(a) == Some(0) => Some(b),
                Sub | Shl | ShrU | ShrS if c(b) == Some(0) => Some(a),
                Mul if c(b) == Some(1) => Some(a),
                Mul if c(a) == Some(1) => Some(b),
                DivU | DivS if c(b) == Some(1) => Some(a),
                And if all_ones(k, b) => Some(a),
                And if all_ones(k, a) => Some(b),
                Mul | And if (c(a) == Some(0) || c(b) == Some(0)) && matches!(ty, Type::Scalar(_)) => {
                    k.insts[i].kind = InstKind::Const { ty, bits: 0 };
                    *changed = true;
                    return;
                }
                RemU | RemS if c(b) == Some(1) && matches!(ty, Type::Scalar(_)) => {
                    k.insts[i].kind = InstKind::Const { ty, bits: 0 };
                    *changed = true;
                    return;
                }
                Add if is_const(k, b) && matches!(ty, Type::Scalar(_)) => {
                    // (x + c1) + c2 → x + (c1 + c2)
                    if let Some(InstKind::Binary(Add, x, c1)) = k.def_inst(a).map(|d| k.insts[d].kind.clone()) {
                        if let (Some(c1), Some(c2)) = (c(c1), c(b)) {
                            let sum = (c1.wrapping_add(c2) as u128 & crate::semantics::mask(ty.bits())) as u64;
                            let nc = new_const(k, ty, sum, out);
                            k.insts[i].kind = InstKind::Binary(Add, x, nc);
                            *changed = true;
                        }
                    }
                    None
                }
                _ => None,
            }
        }
        InstKind::Select(cond, a, b) => match c(*cond) {
            Some(1) => Some(*a),
            Some(_) => Some(*b),
            None if a == b => Some(*a),
            None => None,
        },
        InstKind::PtrAdd(p, off) => {
            if c(*off) == Some(0) {
                Some(*p)
            } else {
                if let (Some(c2), Some(InstKind::PtrAdd(base, o1))) = (c(*off), k.def_inst(*p).map(|d| k.insts[d].kind.clone())) {
                    if let Some(c1) = c(o1) {
                        if k.ty(o1) == k.ty(*off) {
                            let oty = k.ty(*off);
                            let sum = (c1.wrapping_add(c2) as u128 & crate::semantics::mask(oty.bits())) as u64;
                            let nc = new_const(k, oty, sum, out);
                            k.insts[i].kind = InstKind::PtrAdd(base, nc);
                            *changed = true;
                        }
                    }
                }
                None
            }
        }
        _ => None,
    };
    if let Some(v) = alias {
        rw.replace(res, v);
        *changed = true;
    }
}
