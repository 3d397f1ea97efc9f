//! Strength reduction of index arithmetic.
//!
//! On scalar integers, with a constant power-of-two operand `2^s`:
//! - `x * 2^s` (either side) → `x << s`;
//! - unsigned `x / 2^s` → `x >> s` (logical), `x % 2^s` → `x & (2^s - 1)`;
//! - signed `x / 2^s` → `(x + ((x >>a (w-1)) >>u (w-s))) >>a s` (rounds toward zero like
//!   `div.s`), and signed `x % 2^s` → `x - ((x / 2^s) << s)`, both exact for every `x`.
//!
//! What it cannot do: other constants (no multiply-by-shift-and-add, no magic-number division),
//! vectors, or divisions by non-constant powers of two. Multiplications and divisions by 1 and
//! 0 are [`super::fold_constants`]'s business.

use crate::ir::*;
use crate::types::Type;

/// Runs strength reduction; returns whether anything changed.
pub fn strength_reduce(k: &mut Kernel) -> bool {
    let mut changed = false;
    for r in super::reachable_regions(k) {
        let old = std::mem::take(&mut k.regions[r].insts);
        let mut out = Vec::with_capacity(old.len());
        for i in old {
            reduce(k, i, &mut out, &mut changed);
            out.push(i);
        }
        k.regions[r].insts = out;
    }
    changed
}

fn pow2(k: &Kernel, v: Value) -> Option<u32> {
    let b = k.const_bits(v)?;
    let w = k.ty(v).bits();
    (b.is_power_of_two() && b.trailing_zeros() < w - 1).then(|| b.trailing_zeros())
}

fn emit(k: &mut Kernel, kind: InstKind, ty: Type, out: &mut Vec<Inst>) -> Value {
    let i = k.make_inst(kind, &[ty]);
    out.push(i);
    k.insts[i].results[0]
}

fn konst(k: &mut Kernel, ty: Type, x: u64, out: &mut Vec<Inst>) -> Value {
    emit(k, InstKind::Const { ty, bits: x & (u64::MAX >> (64 - ty.bits())) }, ty, out)
}

fn reduce(k: &mut Kernel, i: Inst, out: &mut Vec<Inst>, changed: &mut bool) {
    use BinaryOp::*;
    let InstKind::Binary(op, a, b) = k.insts[i].kind.clone() else { return };
    let ty = k.ty(a);
    if !ty.is_int_scalar() {
        return;
    }
    let w = ty.bits();
    let new = match op {
        Mul => {
            let (x, s) = match (pow2(k, b), pow2(k, a)) {
                (Some(s), _) => (a, s),
                (None, Some(s)) => (b, s),
                _ => return,
            };
            if s == 0 {
                return;
            }
            let sv = konst(k, ty, s as u64, out);
            InstKind::Binary(Shl, x, sv)
        }
        DivU => {
            let Some(s) = pow2(k, b) else { return };
            let sv = konst(k, ty, s as u64, out);
            InstKind::Binary(ShrU, a, sv)
        }
        RemU => {
            let Some(s) = pow2(k, b) else { return };
            let m = konst(k, ty, (1u64 << s) - 1, out);
            InstKind::Binary(And, a, m)
        }
        DivS | RemS => {
            let Some(s) = pow2(k, b) else { return };
            if s == 0 {
                return;
            }
            let wm1 = konst(k, ty, (w - 1) as u64, out);
            let sign = emit(k, InstKind::Binary(ShrS, a, wm1), ty, out);
            let ws = konst(k, ty, (w - s) as u64, out);
            let bias = emit(k, InstKind::Binary(ShrU, sign, ws), ty, out);
            let biased = emit(k, InstKind::Binary(Add, a, bias), ty, out);
            let sv = konst(k, ty, s as u64, out);
            if op == DivS {
                InstKind::Binary(ShrS, biased, sv)
            } else {
                let q = emit(k, InstKind::Binary(ShrS, biased, sv), ty, out);
                let back = emit(k, InstKind::Binary(Shl, q, sv), ty, out);
                InstKind::Binary(Sub, a, back)
            }
        }
        _ => return,
    };
    k.insts[i].kind = new;
    *changed = true;
}
