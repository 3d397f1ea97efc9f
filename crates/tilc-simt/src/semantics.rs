//! The exact meaning of every per-thread SIMT instruction, as functions on raw bits.
//!
//! A value of one thread is a `u128` holding its bits (vector lane `j` at bits `[j·w, (j+1)·w)`).
//! The emulator and constant folding both call these functions, so a folded constant is the value
//! the emulator would have computed. The warp-collective instructions (shuffle, ldmatrix, mma)
//! have their data movement here as pure functions over the 32 lanes' operands.
//!
//! Float rules:
//! - f32/f64 arithmetic is IEEE with round-to-nearest-even (Rust's own operations; `fma` is
//!   `mul_add`, which is fused). Denormals are kept (no flush to zero), as PTX's `.rn` without
//!   `.ftz`.
//! - f16/bf16 arithmetic (`add/sub/mul/fma.rn.{f16,bf16}`) is computed exactly and rounded once:
//!   products of two halves are exact in f64; sums use an error-free two-sum so the final
//!   rounding sees the exact value's side of every halfway point.
//! - conversions: f32 → f16/bf16 round to nearest even, overflow to ±Inf, NaN to the canonical
//!   `0x7fff`; f32 → e4m3/e5m2 (`.satfinite`) saturate to ±max finite, Inf to ±max, NaN to `0x7f`.
//!
//! `mma` with f32 accumulation: every product is exact (f64), the K products of one output are
//! summed in f64 in ascending k, then added to C in f64 and rounded once to f32. Hardware sums in
//! a different order with different internal precision, so comparisons against a GPU need a
//! tolerance; integer `mma` is exact (wrapping i32) and must match bit for bit.

use crate::ir::{AtomicOp, BinaryOp, CastOp, CmpOp, HalfOp, MmaKind, ShfDir, ShfMode, ShflMode, UnaryOp};
use crate::types::{Fp8Format, HalfFormat, Scalar, Type};

/// Lane `j` of width `w` bits of `x`.
pub fn lane(x: u128, w: u32, j: u32) -> u128 {
    (x >> (w * j)) & mask(w)
}

/// `x` with lane `j` (width `w`) replaced by `v`.
pub fn set_lane(x: u128, w: u32, j: u32, v: u128) -> u128 {
    let m = mask(w) << (w * j);
    (x & !m) | ((v & mask(w)) << (w * j))
}

/// The low `w` bits set.
pub fn mask(w: u32) -> u128 {
    if w >= 128 { u128::MAX } else { (1u128 << w) - 1 }
}

fn sext(x: u128, w: u32) -> i128 {
    let s = 128 - w;
    ((x << s) as i128) >> s
}

/// Applies `f` lane-wise to the lanes of `a` (and `b`) of type `ty`.
fn lanewise2(ty: Type, a: u128, b: u128, mut f: impl FnMut(Scalar, u128, u128) -> u128) -> u128 {
    let s = ty.elem();
    let w = s.bits();
    let mut out = 0;
    for j in 0..ty.lanes() {
        out = set_lane(out, w, j, f(s, lane(a, w, j), lane(b, w, j)));
    }
    out
}

/// Result of a unary operation on a value of type `ty`.
pub fn unary(op: UnaryOp, ty: Type, a: u128) -> u128 {
    lanewise2(ty, a, 0, |s, x, _| {
        let w = s.bits();
        match op {
            UnaryOp::Not => !x & mask(w),
            UnaryOp::Neg => (0u128.wrapping_sub(x)) & mask(w),
            UnaryOp::Popc => x.count_ones() as u128,
            UnaryOp::Clz => (x.leading_zeros() - (128 - w)) as u128,
            UnaryOp::FNeg => x ^ (1u128 << (w - 1)),
            UnaryOp::FAbs => x & !(1u128 << (w - 1)),
            UnaryOp::FSqrt => float1(s, x, |v| v.sqrt(), |v| v.sqrt()),
            UnaryOp::FFloor => float1(s, x, f32::floor, f64::floor),
            UnaryOp::FCeil => float1(s, x, f32::ceil, f64::ceil),
            UnaryOp::FTrunc => float1(s, x, f32::trunc, f64::trunc),
            UnaryOp::FRound => float1(s, x, f32::round_ties_even, f64::round_ties_even),
            UnaryOp::FExp => float_via_f64(s, x, f64::exp),
            UnaryOp::FExp2 => float_via_f64(s, x, f64::exp2),
            UnaryOp::FLog => float_via_f64(s, x, f64::ln),
            UnaryOp::FLog2 => float_via_f64(s, x, f64::log2),
            UnaryOp::FRsqrt => float_via_f64(s, x, |v| 1.0 / v.sqrt()),
        }
    })
}

fn float1(s: Scalar, x: u128, f32op: impl Fn(f32) -> f32, f64op: impl Fn(f64) -> f64) -> u128 {
    match s {
        Scalar::F32 => f32op(f32::from_bits(x as u32)).to_bits() as u128,
        _ => f64op(f64::from_bits(x as u64)).to_bits() as u128,
    }
}

/// `f` on the operand widened to f64, rounded once to the operand type (what the VM
/// interpreter does for its transcendental functions).
fn float_via_f64(s: Scalar, x: u128, f: impl Fn(f64) -> f64) -> u128 {
    match s {
        Scalar::F32 => (f(f32::from_bits(x as u32) as f64) as f32).to_bits() as u128,
        _ => f(f64::from_bits(x as u64)).to_bits() as u128,
    }
}

/// The new value of a word after `atom.op` with operand `v` on old value `old`.
pub fn atomic(op: AtomicOp, old: u32, v: u32) -> u32 {
    match op {
        AtomicOp::And => old & v,
        AtomicOp::Or => old | v,
        AtomicOp::Xor => old ^ v,
        AtomicOp::Add => old.wrapping_add(v),
        AtomicOp::MaxS => (old as i32).max(v as i32) as u32,
        AtomicOp::MinS => (old as i32).min(v as i32) as u32,
    }
}

fn float2(s: Scalar, x: u128, y: u128, f32op: impl Fn(f32, f32) -> f32, f64op: impl Fn(f64, f64) -> f64) -> u128 {
    match s {
        Scalar::F32 => f32op(f32::from_bits(x as u32), f32::from_bits(y as u32)).to_bits() as u128,
        _ => f64op(f64::from_bits(x as u64), f64::from_bits(y as u64)).to_bits() as u128,
    }
}

/// IEEE minNum/maxNum as PTX `min`/`max`: a NaN operand yields the other; -0 < +0.
fn fminmax<F: Copy + PartialOrd>(a: F, b: F, is_nan: impl Fn(F) -> bool, neg: impl Fn(F) -> bool, max: bool) -> F {
    if is_nan(a) {
        return b;
    }
    if is_nan(b) {
        return a;
    }
    if a == b {
        // Equal values differ only for zeros: min prefers -0, max prefers +0.
        return if neg(a) == max { b } else { a };
    }
    if (a < b) != max { a } else { b }
}

/// An error a binary operation can raise (integer division by zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DivByZero;

/// Result of a binary operation on two values of type `ty`.
pub fn binary(op: BinaryOp, ty: Type, a: u128, b: u128) -> Result<u128, DivByZero> {
    let mut err = false;
    let r = lanewise2(ty, a, b, |s, x, y| {
        let w = s.bits();
        let m = mask(w);
        let (sx, sy) = (sext(x, w), sext(y, w));
        match op {
            BinaryOp::Add => x.wrapping_add(y) & m,
            BinaryOp::Sub => x.wrapping_sub(y) & m,
            BinaryOp::Mul => x.wrapping_mul(y) & m,
            BinaryOp::MulHiS => ((sx * sy) >> w) as u128 & m,
            BinaryOp::MulHiU => (x * y >> w) & m,
            BinaryOp::DivS | BinaryOp::RemS | BinaryOp::DivU | BinaryOp::RemU if y == 0 => {
                err = true;
                0
            }
            // i128 arithmetic cannot overflow for w ≤ 64; MIN / -1 wraps back to MIN.
            BinaryOp::DivS => (sx / sy) as u128 & m,
            BinaryOp::RemS => (sx % sy) as u128 & m,
            BinaryOp::DivU => x / y,
            BinaryOp::RemU => x % y,
            BinaryOp::And => x & y,
            BinaryOp::Or => x | y,
            BinaryOp::Xor => x ^ y,
            BinaryOp::Shl => if y >= w as u128 { 0 } else { (x << y) & m },
            BinaryOp::ShrU => if y >= w as u128 { 0 } else { x >> y },
            BinaryOp::ShrS => (sx >> (y.min(w as u128 - 1))) as u128 & m,
            BinaryOp::MinS => if sx <= sy { x } else { y },
            BinaryOp::MaxS => if sx >= sy { x } else { y },
            BinaryOp::MinU => x.min(y),
            BinaryOp::MaxU => x.max(y),
            BinaryOp::FAdd => float2(s, x, y, |a, b| a + b, |a, b| a + b),
            BinaryOp::FSub => float2(s, x, y, |a, b| a - b, |a, b| a - b),
            BinaryOp::FMul => float2(s, x, y, |a, b| a * b, |a, b| a * b),
            BinaryOp::FDiv => float2(s, x, y, |a, b| a / b, |a, b| a / b),
            BinaryOp::FMin | BinaryOp::FMax => {
                let max = op == BinaryOp::FMax;
                float2(
                    s,
                    x,
                    y,
                    |a, b| fminmax(a, b, f32::is_nan, |v| v.is_sign_negative(), max),
                    |a, b| fminmax(a, b, f64::is_nan, |v| v.is_sign_negative(), max),
                )
            }
        }
    });
    if err { Err(DivByZero) } else { Ok(r) }
}

/// `a*b + c` rounded once, lane-wise, for f32/f64 types.
pub fn fma(ty: Type, a: u128, b: u128, c: u128) -> u128 {
    let s = ty.elem();
    let w = s.bits();
    let mut out = 0;
    for j in 0..ty.lanes() {
        let (x, y, z) = (lane(a, w, j), lane(b, w, j), lane(c, w, j));
        let r = match s {
            Scalar::F32 => f32::from_bits(x as u32).mul_add(f32::from_bits(y as u32), f32::from_bits(z as u32)).to_bits() as u128,
            _ => f64::from_bits(x as u64).mul_add(f64::from_bits(y as u64), f64::from_bits(z as u64)).to_bits() as u128,
        };
        out = set_lane(out, w, j, r);
    }
    out
}

/// Comparison of two scalars of type `ty`.
pub fn cmp(op: CmpOp, ty: Type, a: u128, b: u128) -> bool {
    let w = ty.bits();
    let (sa, sb) = (sext(a, w), sext(b, w));
    let fl = |f: fn(f64, f64) -> bool| {
        let (x, y) = if ty.elem() == Scalar::F32 {
            (f32::from_bits(a as u32) as f64, f32::from_bits(b as u32) as f64)
        } else {
            (f64::from_bits(a as u64), f64::from_bits(b as u64))
        };
        f(x, y)
    };
    match op {
        CmpOp::Eq => a == b,
        CmpOp::Ne => a != b,
        CmpOp::Slt => sa < sb,
        CmpOp::Sle => sa <= sb,
        CmpOp::Sgt => sa > sb,
        CmpOp::Sge => sa >= sb,
        CmpOp::Ult => a < b,
        CmpOp::Ule => a <= b,
        CmpOp::Ugt => a > b,
        CmpOp::Uge => a >= b,
        CmpOp::FEq => fl(|x, y| x == y),
        CmpOp::FNe => fl(|x, y| x != y),
        CmpOp::FLt => fl(|x, y| x < y),
        CmpOp::FLe => fl(|x, y| x <= y),
        CmpOp::FGt => fl(|x, y| x > y),
        CmpOp::FGe => fl(|x, y| x >= y),
    }
}

/// Conversion of `a` (type `from`) to type `to`.
pub fn cast(op: CastOp, from: Type, to: Type, a: u128) -> u128 {
    let (fw, tw) = (from.elem().bits(), to.elem().bits());
    match op {
        CastOp::SExt => sext(a, fw) as u128 & mask(tw),
        CastOp::ZExt | CastOp::Trunc | CastOp::Bitcast => a & mask(to.bits()),
        CastOp::SToF => int_to_float(sext(a, fw), to.elem()),
        CastOp::UToF => int_to_float(a as i128, to.elem()),
        CastOp::FToS | CastOp::FToU => {
            let x = if from.elem() == Scalar::F32 { f32::from_bits(a as u32) as f64 } else { f64::from_bits(a as u64) };
            let signed = op == CastOp::FToS;
            let (lo, hi) = if signed { (-(1i128 << (tw - 1)), (1i128 << (tw - 1)) - 1) } else { (0, (1i128 << tw) - 1) };
            let v = if x.is_nan() {
                0
            } else {
                let t = x.trunc();
                if t <= lo as f64 { lo } else if t >= hi as f64 { hi } else { t as i128 }
            };
            v as u128 & mask(tw)
        }
        CastOp::FConvert => {
            if from.elem() == Scalar::F32 {
                (f32::from_bits(a as u32) as f64).to_bits() as u128
            } else {
                (f64::from_bits(a as u64) as f32).to_bits() as u128
            }
        }
        CastOp::FToHalf(fmt) => {
            let mut out = 0;
            for j in 0..from.lanes() {
                let x = f32::from_bits(lane(a, 32, j) as u32);
                out = set_lane(out, 16, j, f32_to_half(x, fmt) as u128);
            }
            out
        }
        CastOp::HalfToF(fmt) => {
            let mut out = 0;
            for j in 0..from.lanes() {
                let h = lane(a, 16, j) as u16;
                out = set_lane(out, 32, j, (half_to_f64(h, fmt) as f32).to_bits() as u128);
            }
            out
        }
    }
}

fn int_to_float(v: i128, to: Scalar) -> u128 {
    // i64/u64 → f32 through f64 could round twice; go through the exact rounding routine.
    let neg = v < 0;
    let mag = v.unsigned_abs();
    let spec = if to == Scalar::F32 { FloatSpec::F32 } else { FloatSpec::F64 };
    round_exact(neg, mag, 0, spec, false, 0) as u128
}

/// A binary floating-point format, for exact rounding.
#[derive(Clone, Copy, Debug)]
pub struct FloatSpec {
    /// Exponent bits.
    pub ebits: u32,
    /// Mantissa (fraction) bits.
    pub mbits: u32,
    /// IEEE-style: the all-ones exponent is Inf/NaN. When false (e4m3), only S.1111.111 is NaN
    /// and the rest of the top binade is finite.
    pub ieee: bool,
}

impl FloatSpec {
    /// binary32.
    pub const F32: FloatSpec = FloatSpec { ebits: 8, mbits: 23, ieee: true };
    /// binary64.
    pub const F64: FloatSpec = FloatSpec { ebits: 11, mbits: 52, ieee: true };
    /// binary16.
    pub const F16: FloatSpec = FloatSpec { ebits: 5, mbits: 10, ieee: true };
    /// bfloat16.
    pub const BF16: FloatSpec = FloatSpec { ebits: 8, mbits: 7, ieee: true };
    /// OCP E4M3 (fn).
    pub const E4M3: FloatSpec = FloatSpec { ebits: 4, mbits: 3, ieee: false };
    /// OCP E5M2.
    pub const E5M2: FloatSpec = FloatSpec { ebits: 5, mbits: 2, ieee: true };

    fn bias(self) -> i32 {
        (1 << (self.ebits - 1)) - 1
    }
    fn bits(self) -> u32 {
        1 + self.ebits + self.mbits
    }
    /// The largest finite magnitude's bit pattern (no sign).
    pub fn max_finite(self) -> u64 {
        let emax_field = if self.ieee { (1u64 << self.ebits) - 2 } else { (1u64 << self.ebits) - 1 };
        let mant = if self.ieee { (1u64 << self.mbits) - 1 } else { (1u64 << self.mbits) - 2 };
        (emax_field << self.mbits) | mant
    }
    fn inf(self) -> u64 {
        ((1u64 << self.ebits) - 1) << self.mbits
    }
}

/// Rounds the exact value `(-1)^neg · mag · 2^exp` (plus a sticky nudge `sticky` ∈ {-1, 0, 1}
/// below the last bit of `mag`, meaning "the true magnitude is slightly less / more") to `spec`
/// with round-to-nearest-even. Overflow gives ±Inf, or ±max finite when `saturate` (or when the
/// format has no Inf). Returns the bit pattern.
pub fn round_exact(neg: bool, mag: u128, exp: i32, spec: FloatSpec, saturate: bool, sticky: i8) -> u64 {
    let sign = (neg as u64) << (spec.bits() - 1);
    if mag == 0 {
        return sign;
    }
    // Work with 2 extra bits so the sticky nudge sits strictly below everything in `mag`.
    let (mut m, e) = (mag << 2, exp - 2);
    match sticky {
        1 => m += 1,
        -1 => m -= 1,
        _ => {}
    }
    // Normalize so m has at most 126 significant bits (room for shifts).
    let top = 127 - m.leading_zeros() as i32; // index of the highest set bit
    // Unbiased exponent of the value's leading bit.
    let lead = top + e;
    let min_normal_exp = 1 - spec.bias();
    // The exponent of the target's LSB for this value.
    let lsb_exp = lead.max(min_normal_exp) - spec.mbits as i32;
    // Shift m so that its LSB has exponent lsb_exp, rounding to nearest even.
    let shift = lsb_exp - e;
    let q: u128 = if shift <= 0 {
        m << (-shift) as u32
    } else if shift >= 128 {
        0 // value far below half an ulp: rounds to zero (m > 0 but < half of 2^lsb_exp)
    } else {
        let s = shift as u32;
        let q = m >> s;
        let rem = m & mask(s);
        let half = 1u128 << (s - 1);
        if rem > half || (rem == half && q & 1 == 1) { q + 1 } else { q }
    };
    // q is the significand in units of 2^lsb_exp; when it has its hidden bit (bit mbits) the
    // value is normal with leading exponent lsb_exp + mbits. Rounding may carry into bit mbits+1.
    let base = lsb_exp + spec.mbits as i32 + spec.bias();
    let (q, biased) = if q >> (spec.mbits + 1) != 0 { (q >> 1, base + 1) } else { (q, base) };
    // biased is the biased exponent assuming normal; subnormal when the hidden bit is absent.
    let enc: u64 = if q >> spec.mbits == 0 {
        q as u64 // subnormal (biased exponent field 0), or zero
    } else {
        ((biased as u64) << spec.mbits) | (q as u64 & ((1u64 << spec.mbits) - 1))
    };
    let overflow = if spec.ieee { enc >= spec.inf() } else { enc > spec.max_finite() };
    if overflow {
        return sign | if saturate || !spec.ieee { spec.max_finite() } else { spec.inf() };
    }
    sign | enc
}

/// Decodes a float of `spec` to f64 (exact for every format here). NaN → NaN, Inf → Inf.
pub fn decode(bits: u64, spec: FloatSpec) -> f64 {
    let neg = (bits >> (spec.bits() - 1)) & 1 == 1;
    let e = ((bits >> spec.mbits) & ((1 << spec.ebits) - 1)) as i32;
    let m = bits & ((1 << spec.mbits) - 1);
    let emax = (1 << spec.ebits) - 1;
    let v = if spec.ieee && e == emax {
        if m == 0 { f64::INFINITY } else { f64::NAN }
    } else if !spec.ieee && e == emax && m == (1 << spec.mbits) - 1 {
        f64::NAN
    } else if e == 0 {
        m as f64 * 2f64.powi(1 - spec.bias() - spec.mbits as i32)
    } else {
        (m | 1 << spec.mbits) as f64 * 2f64.powi(e - spec.bias() - spec.mbits as i32)
    };
    if neg { -v } else { v }
}

/// Splits a finite non-zero f64 into (neg, integer significand, exponent).
fn split_f64(x: f64) -> (bool, u128, i32) {
    let b = x.to_bits();
    let neg = b >> 63 == 1;
    let e = ((b >> 52) & 0x7ff) as i32;
    let m = b & ((1 << 52) - 1);
    if e == 0 { (neg, m as u128, -1074) } else { (neg, (m | 1 << 52) as u128, e - 1075) }
}

/// Rounds an f64 (with an optional sticky nudge) to `spec`. NaN → `nan`, ±Inf → Inf or max.
fn round_f64(x: f64, sticky: i8, spec: FloatSpec, saturate: bool, nan: u64) -> u64 {
    let sign = (x.is_sign_negative() as u64) << (spec.bits() - 1);
    if x.is_nan() {
        return nan;
    }
    if x.is_infinite() {
        return sign | if saturate || !spec.ieee { spec.max_finite() } else { spec.inf() };
    }
    if x == 0.0 {
        // A zero with a sticky remainder is a tiny non-zero value: it rounds to zero anyway.
        return sign;
    }
    let (neg, m, e) = split_f64(x);
    // The nudge's direction is relative to the signed value; make it relative to the magnitude.
    let st = if neg { -sticky } else { sticky };
    round_exact(neg, m, e, spec, saturate, st)
}

fn half_spec(fmt: HalfFormat) -> FloatSpec {
    match fmt {
        HalfFormat::F16 => FloatSpec::F16,
        HalfFormat::BF16 => FloatSpec::BF16,
    }
}

/// f32 → f16/bf16 bits, nearest even (`cvt.rn.f16.f32` / `cvt.rn.bf16.f32`).
pub fn f32_to_half(x: f32, fmt: HalfFormat) -> u16 {
    round_f64(x as f64, 0, half_spec(fmt), false, 0x7fff) as u16
}

/// f16/bf16 bits → f64 (exact).
pub fn half_to_f64(h: u16, fmt: HalfFormat) -> f64 {
    decode(h as u64, half_spec(fmt))
}

fn fp8_spec(fmt: Fp8Format) -> FloatSpec {
    match fmt {
        Fp8Format::E4M3 => FloatSpec::E4M3,
        Fp8Format::E5M2 => FloatSpec::E5M2,
    }
}

/// f32 → fp8 bits with `.satfinite` (nearest even; ±Inf and overflow → ±max; NaN → 0x7f).
pub fn f32_to_fp8(x: f32, fmt: Fp8Format) -> u8 {
    round_f64(x as f64, 0, fp8_spec(fmt), true, 0x7f) as u8
}

/// fp8 bits → f64 (exact).
pub fn fp8_to_f64(b: u8, fmt: Fp8Format) -> f64 {
    decode(b as u64, fp8_spec(fmt))
}

/// Exact sum `a + b` of two f64 as (rounded sum, sign of the rounding error).
fn two_sum(a: f64, b: f64) -> (f64, i8) {
    let s = a + b;
    if !s.is_finite() {
        return (s, 0);
    }
    let bb = s - a;
    let err = (a - (s - bb)) + (b - bb);
    (s, if err > 0.0 { 1 } else if err < 0.0 { -1 } else { 0 })
}

/// One lane of half-precision arithmetic.
pub fn half_op(op: HalfOp, fmt: HalfFormat, a: u16, b: u16) -> u16 {
    let (x, y) = (half_to_f64(a, fmt), half_to_f64(b, fmt));
    let spec = half_spec(fmt);
    match op {
        HalfOp::Add => {
            let (s, e) = two_sum(x, y);
            round_f64(s, e, spec, false, 0x7fff) as u16
        }
        HalfOp::Sub => {
            let (s, e) = two_sum(x, -y);
            round_f64(s, e, spec, false, 0x7fff) as u16
        }
        // Products of two halves are exact in f64 (≤ 22 significant bits, exponents in range).
        HalfOp::Mul => round_f64(x * y, 0, spec, false, 0x7fff) as u16,
        HalfOp::Min | HalfOp::Max => {
            let max = op == HalfOp::Max;
            if x.is_nan() && y.is_nan() {
                0x7fff
            } else {
                let r = fminmax(x, y, f64::is_nan, |v| v.is_sign_negative(), max);
                if r.to_bits() == x.to_bits() { a } else { b }
            }
        }
    }
}

/// One lane of half-precision `a*b + c` rounded once.
pub fn half_fma(fmt: HalfFormat, a: u16, b: u16, c: u16) -> u16 {
    let (x, y, z) = (half_to_f64(a, fmt), half_to_f64(b, fmt), half_to_f64(c, fmt));
    let (s, e) = two_sum(x * y, z);
    round_f64(s, e, half_spec(fmt), false, 0x7fff) as u16
}

/// Lane-wise half arithmetic over i16 or i16x2.
pub fn half_vec(ty: Type, a: u128, b: u128, c: u128, f: impl Fn(u16, u16, u16) -> u16) -> u128 {
    let mut out = 0;
    for j in 0..ty.lanes() {
        let r = f(lane(a, 16, j) as u16, lane(b, 16, j) as u16, lane(c, 16, j) as u16);
        out = set_lane(out, 16, j, r as u128);
    }
    out
}

/// `cvt.rn.satfinite.{e4m3,e5m2}x2.f32 d, hi, lo`.
pub fn f32x2_to_fp8x2(fmt: Fp8Format, hi: f32, lo: f32) -> u16 {
    ((f32_to_fp8(hi, fmt) as u16) << 8) | f32_to_fp8(lo, fmt) as u16
}

/// `cvt.rn.f16x2.{e4m3,e5m2}x2 d, a`: byte 0 → lane 0, byte 1 → lane 1 (exact; NaN → 0x7fff).
pub fn fp8x2_to_f16x2(fmt: Fp8Format, a: u16) -> u32 {
    let conv = |b: u8| {
        let x = fp8_to_f64(b, fmt);
        round_f64(x, 0, FloatSpec::F16, false, 0x7fff) as u32
    };
    conv(a as u8) | (conv((a >> 8) as u8) << 16)
}

/// `shf.{l,r}.{clamp,wrap}.b32 d, lo, hi, n`.
pub fn shf(dir: ShfDir, mode: ShfMode, lo: u32, hi: u32, n: u32) -> u32 {
    let n = match mode {
        ShfMode::Clamp => n.min(32),
        ShfMode::Wrap => n & 31,
    };
    let wide = ((hi as u64) << 32) | lo as u64;
    match dir {
        ShfDir::Left => ((wide << n) >> 32) as u32,
        ShfDir::Right => (wide >> n) as u32,
    }
}

/// `prmt.b32 d, a, b, sel` (default mode).
pub fn prmt(a: u32, b: u32, sel: u32) -> u32 {
    let bytes = ((b as u64) << 32) | a as u64;
    let mut d = 0u32;
    for i in 0..4 {
        let nib = (sel >> (4 * i)) & 0xf;
        let byte = ((bytes >> (8 * (nib & 7))) & 0xff) as u32;
        let out = if nib & 8 != 0 {
            if byte & 0x80 != 0 { 0xff } else { 0 }
        } else {
            byte
        };
        d |= out << (8 * i);
    }
    d
}

/// `lop3.b32 d, a, b, c, lut`.
pub fn lop3(a: u32, b: u32, c: u32, lut: u8) -> u32 {
    let mut d = 0;
    for i in 0..32 {
        let idx = (((a >> i) & 1) << 2) | (((b >> i) & 1) << 1) | ((c >> i) & 1);
        d |= (((lut >> idx) & 1) as u32) << i;
    }
    d
}

/// `bfe.{u32,s32} d, a, pos, len` (PTX: pos and len are taken modulo 256 and clamped at 32).
pub fn bfe(signed: bool, a: u32, pos: u32, len: u32) -> u32 {
    let pos = pos & 0xff;
    let len = len & 0xff;
    let msb = if signed && len > 0 {
        let top = (pos + len - 1).min(31);
        (a >> top) & 1 == 1
    } else {
        false
    };
    let mut d = 0u32;
    for i in 0..32 {
        let bit = if i < len && pos + i <= 31 { (a >> (pos + i)) & 1 == 1 } else { msb };
        d |= (bit as u32) << i;
    }
    d
}

/// The source lane and validity of `shfl.sync.mode` for `lane` with operands `b` and `c`
/// (PTX ISA pseudocode). When invalid, the lane reads its own value.
pub fn shfl_source(mode: ShflMode, lane: u32, b: u32, c: u32) -> (u32, bool) {
    let bval = b & 0x1f;
    let cval = c & 0x1f;
    let segmask = (c >> 8) & 0x1f;
    let max_lane = (lane & segmask) | (cval & !segmask);
    let min_lane = lane & segmask;
    let (j, p) = match mode {
        ShflMode::Up => {
            let j = lane as i32 - bval as i32;
            (j, j >= max_lane as i32)
        }
        ShflMode::Down => {
            let j = (lane + bval) as i32;
            (j, j <= max_lane as i32)
        }
        ShflMode::Bfly => {
            let j = (lane ^ bval) as i32;
            (j, j <= max_lane as i32)
        }
        ShflMode::Idx => {
            let j = (min_lane | (bval & !segmask)) as i32;
            (j, j <= max_lane as i32)
        }
    };
    if p { (j as u32, true) } else { (lane, false) }
}

/// `ldmatrix.m8n8.x{num}[.trans].b16`: given the 16 bytes of each row that lanes address
/// (`rows[m][r]` = row `r` of matrix `m`), the 32-bit register `m` of each lane.
/// Without `.trans`, lane `l` receives row `l/4`, columns `2(l%4)`, `+1` of each matrix; with
/// `.trans`, it receives column `l/4`, rows `2(l%4)`, `+1`.
pub fn ldmatrix_distribute(rows: &[[[u8; 16]; 8]], trans: bool) -> Vec<[u32; 4]> {
    let elem = |m: usize, r: usize, c: usize| -> u32 {
        let row = &rows[m][r];
        u16::from_le_bytes([row[2 * c], row[2 * c + 1]]) as u32
    };
    (0..32)
        .map(|l| {
            let mut regs = [0u32; 4];
            for (m, reg) in regs.iter_mut().enumerate().take(rows.len()) {
                let (g, t) = (l / 4, l % 4);
                let (lo, hi) = if trans {
                    (elem(m, 2 * t, g), elem(m, 2 * t + 1, g))
                } else {
                    (elem(m, g, 2 * t), elem(m, g, 2 * t + 1))
                };
                *reg = lo | (hi << 16);
            }
            regs
        })
        .collect()
}

/// Coordinates `(row, col)` of element `i` of lane `lane`'s A fragment (PTX ISA "Matrix
/// Fragments for mma.m16n8k16 / m16n8k32"). Elements are numbered low to high through the
/// registers: `elems_per_reg` = 2 (16-bit types) or 4 (8-bit types).
pub fn mma_a_coord(kind: MmaKind, lane: u32, i: u32) -> (u32, u32) {
    let (g, t) = (lane >> 2, lane % 4);
    let per = elems_per_reg(kind);
    // Registers: a0 (rows g, k low), a1 (rows g+8, k low), a2 (rows g, k high), a3 (g+8, k high).
    let reg = i / per;
    let row = if reg % 2 == 0 { g } else { g + 8 };
    let k_half = kind.shape().2 / 2;
    let col = t * per + (i % per) + if reg >= 2 { k_half } else { 0 };
    (row, col)
}

/// Coordinates `(k, n)` of element `i` of lane `lane`'s B fragment.
pub fn mma_b_coord(kind: MmaKind, lane: u32, i: u32) -> (u32, u32) {
    let (g, t) = (lane >> 2, lane % 4);
    let per = elems_per_reg(kind);
    let reg = i / per;
    let k_half = kind.shape().2 / 2;
    (t * per + (i % per) + if reg >= 1 { k_half } else { 0 }, g)
}

/// Coordinates `(m, n)` of accumulator element `i` (0..4) of lane `lane`.
pub fn mma_c_coord(lane: u32, i: u32) -> (u32, u32) {
    let (g, t) = (lane >> 2, lane % 4);
    (if i < 2 { g } else { g + 8 }, t * 2 + (i & 1))
}

fn elems_per_reg(kind: MmaKind) -> u32 {
    match kind {
        MmaKind::F16F32 | MmaKind::Bf16F32 => 2,
        MmaKind::S8S32 | MmaKind::Fp8F32(_) => 4,
    }
}

/// Element `i` of a fragment held in 32-bit registers `regs` as an f64 (or an integer for s8).
fn frag_elem(kind: MmaKind, frag: u128, i: u32) -> f64 {
    match kind {
        MmaKind::F16F32 => half_to_f64(lane(frag, 16, i) as u16, HalfFormat::F16),
        MmaKind::Bf16F32 => half_to_f64(lane(frag, 16, i) as u16, HalfFormat::BF16),
        MmaKind::S8S32 => lane(frag, 8, i) as u8 as i8 as f64,
        MmaKind::Fp8F32(f) => fp8_to_f64(lane(frag, 8, i) as u8, f),
    }
}

/// One warp's part of a `wgmma` k-step (see [`crate::InstKind::Wgmma`]): `a` holds the 64 rows
/// and `b` the `n` rows of the k-step (32 bytes each, row-major), `acc[j][l]` lane `l`'s C
/// fragment of columns `8j ..`; `quarter` is the warp's index in its warpgroup. The arithmetic
/// is [`mma`]'s.
pub fn wgmma(kind: MmaKind, n: usize, a: &[u8], b: &[u8], acc: &[[u128; 32]], quarter: u32) -> Vec<[u128; 32]> {
    let kk = kind.shape().2 as usize;
    let elem = |rows: &[u8], r: usize, k: usize| kstep_elem(kind, rows, r, k);
    (0..n / 8)
        .map(|j| {
            let mut d = [0u128; 32];
            for l in 0..32u32 {
                let mut out = 0u128;
                for i in 0..4 {
                    let (r, c) = mma_c_coord(l, i);
                    let (row, col) = (16 * quarter as usize + r as usize, 8 * j + c as usize);
                    let cbits = lane(acc[j][l as usize], 32, i);
                    let v = if kind == MmaKind::S8S32 {
                        let dot: i64 = (0..kk).map(|k| elem(a, row, k) as i64 * elem(b, col, k) as i64).sum();
                        (cbits as u32 as i32).wrapping_add(dot as i32) as u32 as u128
                    } else {
                        let dot: f64 = (0..kk).fold(0.0, |s, k| s + elem(a, row, k) * elem(b, col, k));
                        let cv = f32::from_bits(cbits as u32) as f64;
                        ((cv + dot) as f32).to_bits() as u128
                    };
                    out = set_lane(out, 32, i, v);
                }
                d[l as usize] = out;
            }
            d
        })
        .collect()
}

/// Element `k` of row `r` of a k-step operand held as 32 bytes per row (row-major).
fn kstep_elem(kind: MmaKind, rows: &[u8], r: usize, k: usize) -> f64 {
    let bytes = 32 / kind.shape().2 as usize;
    let at = r * 32 + k * bytes;
    let v = rows[at..at + bytes].iter().rev().fold(0u128, |x, &b| x << 8 | b as u128);
    frag_elem(kind, v, 0)
}

/// One `tcgen05.mma` k-step (see [`crate::InstKind::Tcgen05Mma`]): `a` holds the 128 rows and
/// `b` the `n` rows of the k-step (32 bytes each, row-major); `d` is the 128 × `n` accumulator
/// (row-major, 32-bit cells), replaced by `a · bᵀ` plus itself when `accumulate`. The
/// arithmetic is [`mma`]'s.
pub fn tcgen05_mma(kind: MmaKind, n: usize, a: &[u8], b: &[u8], d: &mut [u32], accumulate: bool) {
    let kk = kind.shape().2 as usize;
    for row in 0..128 {
        for col in 0..n {
            let cell = &mut d[row * n + col];
            let prior = if accumulate { *cell } else { 0 };
            *cell = if kind == MmaKind::S8S32 {
                let dot: i64 = (0..kk).map(|k| kstep_elem(kind, a, row, k) as i64 * kstep_elem(kind, b, col, k) as i64).sum();
                (prior as i32).wrapping_add(dot as i32) as u32
            } else {
                let dot: f64 = (0..kk).fold(0.0, |s, k| s + kstep_elem(kind, a, row, k) * kstep_elem(kind, b, col, k));
                ((f32::from_bits(prior) as f64 + dot) as f32).to_bits()
            };
        }
    }
}

/// The warp's `mma.sync`: `a[l]`, `b[l]`, `c[l]` are lane `l`'s fragments (i32x4, i32x2, f32x4 or
/// i32x4 as bits); returns each lane's D fragment.
pub fn mma(kind: MmaKind, a: &[u128; 32], b: &[u128; 32], c: &[u128; 32]) -> [u128; 32] {
    let (m, n, kk) = kind.shape();
    let (m, n, kk) = (m as usize, n as usize, kk as usize);
    let mut am = vec![0f64; m * kk];
    let mut bm = vec![0f64; kk * n];
    let per = elems_per_reg(kind);
    for l in 0..32u32 {
        for i in 0..4 * per {
            let (r, col) = mma_a_coord(kind, l, i);
            am[r as usize * kk + col as usize] = frag_elem(kind, a[l as usize], i);
        }
        for i in 0..2 * per {
            let (r, col) = mma_b_coord(kind, l, i);
            bm[r as usize * n + col as usize] = frag_elem(kind, b[l as usize], i);
        }
    }
    let mut d = [0u128; 32];
    for l in 0..32u32 {
        let mut out = 0u128;
        for i in 0..4 {
            let (r, col) = mma_c_coord(l, i);
            let (r, col) = (r as usize, col as usize);
            let cbits = lane(c[l as usize], 32, i);
            let v = if kind == MmaKind::S8S32 {
                // Exact integer dot product (|sum| ≤ 32·2^14), then wrapping add to C.
                let dot: i64 = (0..kk).map(|k| am[r * kk + k] as i64 * bm[k * n + col] as i64).sum();
                (cbits as u32 as i32).wrapping_add(dot as i32) as u32 as u128
            } else {
                let dot: f64 = (0..kk).fold(0.0, |s, k| s + am[r * kk + k] * bm[k * n + col]);
                let cv = f32::from_bits(cbits as u32) as f64;
                ((cv + dot) as f32).to_bits() as u128
            };
            out = set_lane(out, 32, i, v);
        }
        d[l as usize] = out;
    }
    d
}
