//! Evaluation of one *pure* instruction for one thread, given its operands' bits.
//!
//! Shared by the emulator (every lane of every warp) and by constant folding, so that a folded
//! constant is exactly what the program would have computed. Knows nothing of memory, warps or
//! blocks: `Special` registers are the caller's business.

use crate::ir::{CastOp, InstKind, Kernel, Value};
use crate::semantics as sem;
use crate::types::Type;

/// Why a pure instruction could not be evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvalError {
    /// Integer division or remainder by zero.
    DivByZero,
    /// The instruction is not pure (or is `Special`, which needs the thread's context).
    NotPure,
}

/// Evaluates a pure instruction of `k`; `get` returns an operand's bits, `result_ty` is the
/// type of its (single) result. `SharedAddr(o)` evaluates to `o` and `PtrAdd` to the sum,
/// since pointers are plain addresses here.
pub fn eval_pure(k: &Kernel, kind: &InstKind, result_ty: Type, get: &dyn Fn(Value) -> u128) -> Result<u128, EvalError> {
    use InstKind::*;
    Ok(match kind {
        Const { bits, .. } => *bits as u128,
        Unary(op, a) => sem::unary(*op, k.ty(*a), get(*a)),
        Binary(op, a, b) => sem::binary(*op, k.ty(*a), get(*a), get(*b)).map_err(|_| EvalError::DivByZero)?,
        Fma(a, b, c) => sem::fma(k.ty(*a), get(*a), get(*b), get(*c)),
        Cmp(op, a, b) => sem::cmp(*op, k.ty(*a), get(*a), get(*b)) as u128,
        Select(c, a, b) => {
            if get(*c) & 1 == 1 {
                get(*a)
            } else {
                get(*b)
            }
        }
        Cast(op, a, to) => sem::cast(*op, k.ty(*a), *to, get(*a)),
        Half(op, fmt, a, b) => sem::half_vec(k.ty(*a), get(*a), get(*b), 0, |x, y, _| sem::half_op(*op, *fmt, x, y)),
        HalfFma(fmt, a, b, c) => sem::half_vec(k.ty(*a), get(*a), get(*b), get(*c), |x, y, z| sem::half_fma(*fmt, x, y, z)),
        F32x2ToFp8x2(fmt, hi, lo) => {
            sem::f32x2_to_fp8x2(*fmt, f32::from_bits(get(*hi) as u32), f32::from_bits(get(*lo) as u32)) as u128
        }
        Fp8x2ToF16x2(fmt, a) => sem::fp8x2_to_f16x2(*fmt, get(*a) as u16) as u128,
        Extract(v, l) => {
            let w = k.ty(*v).elem().bits();
            sem::lane(get(*v), w, *l as u32)
        }
        Insert(v, l, x) => {
            let w = k.ty(*v).elem().bits();
            sem::set_lane(get(*v), w, *l as u32, get(*x))
        }
        Build(vs) => {
            let w = vs.first().map(|v| k.ty(*v).bits()).unwrap_or(32);
            vs.iter().enumerate().fold(0, |acc, (j, v)| sem::set_lane(acc, w, j as u32, get(*v)))
        }
        Shf(d, m, lo, hi, n) => sem::shf(*d, *m, get(*lo) as u32, get(*hi) as u32, get(*n) as u32) as u128,
        Prmt(a, b, s) => sem::prmt(get(*a) as u32, get(*b) as u32, get(*s) as u32) as u128,
        Lop3(a, b, c, lut) => sem::lop3(get(*a) as u32, get(*b) as u32, get(*c) as u32, *lut) as u128,
        Bfe { signed, a, pos, len } => sem::bfe(*signed, get(*a) as u32, get(*pos) as u32, get(*len) as u32) as u128,
        SharedAddr(o) => get(*o) & 0xffff_ffff,
        PtrAdd(b, o) => {
            let off = if k.ty(*o) == Type::I32 {
                sem::cast(CastOp::SExt, Type::I32, Type::I64, get(*o))
            } else {
                get(*o)
            };
            let w = result_ty.bits();
            get(*b).wrapping_add(off) & sem::mask(w)
        }
        _ => return Err(EvalError::NotPure),
    })
}
