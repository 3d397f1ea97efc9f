//! SIMT code for tilc-dtype's scalar types: how one value of a [`DType`] lives in a register
//! (its *carrier*), and builders that emit the instructions that decode codes, encode values,
//! convert between types with every rounding and overflow mode, and draw the Philox bits of
//! stochastic rounding.
//!
//! The meaning is the VM interpreter's, bit for bit: [`convert`] is its `Cast`
//! (`tilc_dtype::DType::encode` of the exact value, with the interpreter's 64-bit-integer
//! special cases), [`round_value`] its `round_float`, [`wrap_int`] its `wrap_int`. So a kernel
//! built from these functions and run in the emulator agrees with the interpreter exactly, and
//! on a GPU too (the instructions used here are all exact: integer ops, `cvt.rn`, `cvt.rzi`,
//! `cvt.rni` … and f32 multiplies whose results are representable).
//!
//! The general float encoder works on the f64 bit pattern with `i64` integer operations —
//! sign, exponent, significand, the first 64 discarded bits and a sticky bit, the rounding
//! increment of the mode, the target's subnormals, then overflow to Inf, NaN or saturation — a
//! transcription of `FloatFormat::encode`. Fast paths are used only where they are the same
//! function: the identity to `f32` from a narrower float, `cvt.rn.f32.f64`, `cvt.rn.f16.f32` /
//! `cvt.rn.bf16.f32` for nearest-even non-saturating casts from an f32 carrier.
//!
//! NaN: carriers of NaN keep their sign; payloads are not part of the meaning (decoding a NaN
//! code of a format narrower than f32 gives the canonical quiet NaN with the code's sign, as the
//! interpreter's `decode` does; f32 and f64 codes are bit-cast, so their payloads are kept) and
//! [`encode`] canonicalises every NaN to the format's NaN code with the sign, which is what the
//! interpreter's `encode_float` stores.
//!
//! This module knows tilc-dtype's formats and the SIMT IR; it knows nothing of the VM, layouts
//! or PTX text.

use crate::builder::Builder;
use crate::ir::{BinaryOp, CastOp, CmpOp, InstKind, UnaryOp, Value};
use crate::types::{HalfFormat, Type};
use tilc_dtype::{DType, FloatFamily, FloatFormat, Overflow};

/// A rounding mode whose stochastic variant carries SIMT values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimtRounding {
    /// To nearest, ties to even.
    NearestEven,
    /// Toward zero.
    TowardZero,
    /// Toward +∞.
    TowardPositive,
    /// Toward −∞.
    TowardNegative,
    /// tilc-dtype's stochastic rounding with the random bits of element `index` of stream
    /// `seed` (both `i64`; an `i32` is sign-extended, as the interpreter widens an index).
    Stochastic {
        /// The stream (`i64`).
        seed: Value,
        /// The element index (`i64`).
        index: Value,
    },
}

/// The SIMT type that carries one value of `d` in a register: integers of ≤ 32 bits (u1
/// included) → `i32` holding the value sign-extended (signed) or zero-extended (unsigned);
/// 64-bit integers → `i64`; every float format of ≤ 32 bits → `f32` holding the exact value;
/// f64 → `f64`.
pub fn carrier(d: DType) -> Type {
    match d {
        DType::Float(f) if f == FloatFormat::F64 => Type::F64,
        DType::Float(_) => Type::F32,
        _ if d.bits() > 32 => Type::I64,
        _ => Type::I32,
    }
}

/// Type of a code: `i32` for `d.bits() ≤ 32`, else `i64`.
pub fn code_type(d: DType) -> Type {
    if d.bits() <= 32 { Type::I32 } else { Type::I64 }
}

// ----- small emitters -----

fn c32(b: &mut Builder, x: u32) -> Value {
    b.constant(Type::I32, x as u64)
}

fn c64(b: &mut Builder, x: u64) -> Value {
    b.constant(Type::I64, x)
}

fn cf64(b: &mut Builder, x: f64) -> Value {
    b.constant(Type::F64, x.to_bits())
}

fn cpred(b: &mut Builder, x: bool) -> Value {
    b.pred(x)
}

fn bin(b: &mut Builder, op: BinaryOp, x: Value, y: Value) -> Value {
    b.binary(op, x, y)
}

fn not(b: &mut Builder, p: Value) -> Value {
    b.unary(UnaryOp::Not, p)
}

/// 2^k as an f32, for a normal exponent (−126 ≤ k ≤ 127).
fn pow2_f32(k: i32) -> f32 {
    f32::from_bits(((k + 127) as u32) << 23)
}

fn mask(bits: u32) -> u64 {
    if bits >= 64 { u64::MAX } else { (1u64 << bits) - 1 }
}

fn ty(b: &Builder, v: Value) -> Type {
    b.kernel().ty(v)
}

/// `x` as an `i64` (sign-extending an `i32`).
fn as_i64(b: &mut Builder, x: Value) -> Value {
    if ty(b, x) == Type::I64 { x } else { b.cast(CastOp::SExt, x, Type::I64) }
}

fn is_f32_carried(d: DType) -> bool {
    d.is_float() && carrier(d) == Type::F32
}

/// The interpreter's `wrap_int(d, ·)` on an `i32` (or `i64`) value: keep the low `d.bits()`
/// bits, sign-extend (signed `d`) or zero-extend. The result has `x`'s type.
pub fn wrap_int(b: &mut Builder, d: DType, x: Value) -> Value {
    let t = ty(b, x);
    let w = t.bits();
    let bits = d.bits();
    if bits >= w {
        return x;
    }
    let shift = b.constant(t, (w - bits) as u64);
    if d.is_signed() {
        let up = bin(b, BinaryOp::Shl, x, shift);
        bin(b, BinaryOp::ShrS, up, shift)
    } else {
        let m = b.constant(t, mask(bits));
        bin(b, BinaryOp::And, x, m)
    }
}

// ----- decode -----

/// The carrier value of `code` (of type `code_type(d)`; bits above `d.bits()` are ignored).
/// Exact; a NaN code gives a NaN with the code's sign (see the module docs for payloads).
pub fn decode(b: &mut Builder, d: DType, code: Value) -> Value {
    match d {
        DType::UInt(_) | DType::Int(_) => wrap_int(b, d, code),
        DType::Float(f) if f == FloatFormat::F64 => b.cast(CastOp::Bitcast, code, Type::F64),
        DType::Float(f) if f == FloatFormat::F32 => b.cast(CastOp::Bitcast, code, Type::F32),
        DType::Float(f) if f == FloatFormat::F16 || f == FloatFormat::BF16 => {
            let fmt = if f == FloatFormat::F16 { HalfFormat::F16 } else { HalfFormat::BF16 };
            let h = b.cast(CastOp::Trunc, code, Type::I16);
            b.cast(CastOp::HalfToF(fmt), h, Type::F32)
        }
        DType::Float(f) => {
            let v = decode_small(b, f, code);
            b.note_decoded(v, d, code);
            v
        }
    }
}

/// Any float format of ≤ 32 bits other than f32/f16/bf16 → its exact value as an f32 (every
/// such value is an f32: E ≤ 8 and M ≤ 23).
fn decode_small(b: &mut Builder, f: FloatFormat, code: Value) -> Value {
    let (e_bits, m_bits, bias) = (f.exp_bits(), f.man_bits(), f.bias());
    let mag_mask = mask(e_bits + m_bits) as u32;
    let cm = c32(b, mag_mask);
    let mag = bin(b, BinaryOp::And, code, cm);
    let sm = c32(b, m_bits);
    let e = bin(b, BinaryOp::ShrU, mag, sm);
    let mm = c32(b, mask(m_bits) as u32);
    let m = bin(b, BinaryOp::And, mag, mm);
    let zero = c32(b, 0);
    let e_is_zero = b.cmp(CmpOp::Eq, e, zero);
    let c23 = c32(b, 23);
    let mut bits = if f.family() == FloatFamily::PowerOfTwo {
        // 2^(e − bias): an f32 exponent field e − bias + 127, or f32's subnormal 2^−127 when
        // that field would be 0 (e8m0's code 0).
        let off = c32(b, (127 - bias) as u32);
        let fe = b.add(e, off);
        let normal = b.shl(fe, c23);
        if bias == 127 {
            let sub = c32(b, 0x0040_0000);
            b.select(e_is_zero, sub, normal)
        } else {
            normal
        }
    } else if e_bits == 8 {
        // Same bias and subnormal range as f32: the code's magnitude bits shifted into place.
        let s = c32(b, 23 - m_bits);
        b.shl(mag, s)
    } else {
        // The magnitude bits placed where f32's go (exponent field e, mantissa at the top), read
        // as an f32, are the value times 2^(bias − 127) — subnormal codes included, which land
        // on f32 subnormals — so one shift and one exact multiply decode every finite code
        // (tilus.md §4.4; the multiply must keep f32 subnormals, as PTX's `mul.rn.f32` does).
        let s = c32(b, 23 - m_bits);
        let placed = b.shl(mag, s);
        let small = b.cast(CastOp::Bitcast, placed, Type::F32);
        let scale = b.f32(pow2_f32(127 - bias));
        let v = b.binary(BinaryOp::FMul, small, scale);
        b.cast(CastOp::Bitcast, v, Type::I32)
    };
    let nan = c32(b, 0x7fc0_0000);
    match f.family() {
        FloatFamily::Ieee => {
            let all = c32(b, mask(e_bits) as u32);
            let special = b.cmp(CmpOp::Eq, e, all);
            let m_zero = b.cmp(CmpOp::Eq, m, zero);
            let inf = c32(b, 0x7f80_0000);
            let sp = b.select(m_zero, inf, nan);
            bits = b.select(special, sp, bits);
        }
        FloatFamily::FiniteNan | FloatFamily::PowerOfTwo => {
            let is_nan = b.cmp(CmpOp::Eq, mag, cm);
            bits = b.select(is_nan, nan, bits);
        }
        FloatFamily::Finite => {}
    }
    if f.signed() {
        let s = c32(b, e_bits + m_bits);
        let sign = b.shr_u(code, s);
        let c31 = c32(b, 31);
        let sign = b.shl(sign, c31);
        bits = b.or(bits, sign);
    } else {
        // Unsigned formats read a byte; a set bit above the magnitude is NaN.
        let high = c32(b, 0xff & !mag_mask);
        let h = b.and(code, high);
        let bad = b.cmp(CmpOp::Ne, h, zero);
        bits = b.select(bad, nan, bits);
    }
    b.cast(CastOp::Bitcast, bits, Type::F32)
}

// ----- encode of exactly representable values -----

/// The code (`code_type(d)`, bits above `d.bits()` zero) of a carrier value exactly
/// representable in `d` (as produced by [`decode`], [`convert`] or [`round_value`]); NaN → what
/// `d.encode(NaN, NearestEven, NonSaturating)` gives (the interpreter's `encode_float`).
pub fn encode(b: &mut Builder, d: DType, x: Value) -> Value {
    match d {
        DType::UInt(_) | DType::Int(_) => {
            if d.bits() >= ty(b, x).bits() {
                x
            } else {
                let m = b.constant(ty(b, x), mask(d.bits()));
                b.and(x, m)
            }
        }
        DType::Float(f) if f == FloatFormat::F64 => {
            let bits = b.cast(CastOp::Bitcast, x, Type::I64);
            let sm = c64(b, 1 << 63);
            let sign = b.and(bits, sm);
            let qnan = c64(b, f64::NAN.to_bits() & !(1 << 63));
            let nan = b.or(sign, qnan);
            let is_nan = b.cmp(CmpOp::FNe, x, x);
            b.select(is_nan, nan, bits)
        }
        DType::Float(f) => {
            let bits = b.cast(CastOp::Bitcast, x, Type::I32);
            let is_nan = b.cmp(CmpOp::FNe, x, x);
            let zero = c32(b, 0);
            let negative = b.cmp(CmpOp::Slt, bits, zero);
            let nan = nan_code_i32(b, f, negative);
            let code = if f == FloatFormat::F32 {
                bits
            } else if f == FloatFormat::F16 || f == FloatFormat::BF16 {
                let fmt = if f == FloatFormat::F16 { HalfFormat::F16 } else { HalfFormat::BF16 };
                let h = b.cast(CastOp::FToHalf(fmt), x, Type::I16);
                b.cast(CastOp::ZExt, h, Type::I32)
            } else {
                encode_small_exact(b, f, x, bits)
            };
            b.select(is_nan, nan, code)
        }
    }
}

/// The code of `x` (exactly representable in `d`, as for [`encode`]) as a tensor-core operand:
/// [`encode`] except that a NaN may get any NaN code — a NaN operand makes every product it
/// enters NaN whatever its bits, and the accumulator's NaN is the tensor core's own. A value
/// [`decode`] just made from a code of `d` gives that code back (masked to `d`'s width); for
/// f16/bf16 any other value is one conversion.
pub fn encode_operand(b: &mut Builder, d: DType, x: Value) -> Value {
    if let Some((from, code)) = b.decoded_from(x)
        && from == d
        && ty(b, code) == Type::I32
    {
        let m = c32(b, mask(d.bits()) as u32);
        return b.and(code, m);
    }
    let half = match d {
        DType::Float(FloatFormat::F16) => Some(HalfFormat::F16),
        DType::Float(FloatFormat::BF16) => Some(HalfFormat::BF16),
        _ => None,
    };
    let Some(fmt) = half else { return encode(b, d, x) };
    if let Some(code) = rounded_half_code(b, fmt, x) {
        return code;
    }
    let h = b.cast(CastOp::FToHalf(fmt), x, Type::I16);
    b.cast(CastOp::ZExt, h, Type::I32)
}

/// The `i32` code of `x` when it is one of the shapes [`decode`] and [`convert`] give a
/// half-precision value — `HalfToF(h)`, that under the saturation select (`±Inf → ±max`), and
/// that under the NaN select (which only chooses which NaN) — computed from `h` with integer
/// operations instead of converting `x` back; `None` for any other value.
fn rounded_half_code(b: &mut Builder, fmt: HalfFormat, x: Value) -> Option<Value> {
    let k = b.kernel();
    let kind = |v: Value| k.def_inst(v).map(|i| k.insts[i].kind.clone());
    let format = if fmt == HalfFormat::F16 { FloatFormat::F16 } else { FloatFormat::BF16 };
    let inf_code = format.inf_code().expect("f16 and bf16 have infinities") as u32;
    // The largest finite magnitude sits just below the infinity.
    let max_code = inf_code - 1;
    match kind(x)? {
        InstKind::Cast(CastOp::HalfToF(f), h, _) if f == fmt => Some(b.cast(CastOp::ZExt, h, Type::I32)),
        // select(x != x, x, r): a NaN either way.
        InstKind::Select(c, p, r) if matches!(kind(c), Some(InstKind::Cmp(CmpOp::FNe, a, a2)) if a == p && a2 == p) => rounded_half_code(b, fmt, r),
        // select(|r0| == inf, ±max, r0) with r0 = HalfToF(h): `saturate_inf` to the format's max.
        InstKind::Select(c, m, r0) => {
            let Some(InstKind::Cmp(CmpOp::FEq, abs, inf)) = kind(c) else { return None };
            let Some(InstKind::Unary(UnaryOp::FAbs, a)) = kind(abs) else { return None };
            let Some(InstKind::Select(_, neg_max, pos_max)) = kind(m) else { return None };
            let max = f64::from(f32::from_bits(k.const_bits(pos_max)? as u32));
            let saturating = a == r0
                && k.const_bits(inf)? as u32 == f32::INFINITY.to_bits()
                && max == format.max_finite()
                && f64::from(f32::from_bits(k.const_bits(neg_max)? as u32)) == -max;
            let Some(InstKind::Cast(CastOp::HalfToF(f), h, _)) = kind(r0) else { return None };
            if !saturating || f != fmt {
                return None;
            }
            let code = b.cast(CastOp::ZExt, h, Type::I32);
            let mag_mask = c32(b, 0x7fff);
            let mag = b.and(code, mag_mask);
            let inf = c32(b, inf_code);
            let is_inf = b.cmp(CmpOp::Eq, mag, inf);
            let sign_mask = c32(b, 0x8000);
            let sign = b.and(code, sign_mask);
            let maxc = c32(b, max_code);
            let sat = b.or(sign, maxc);
            Some(b.select(is_inf, sat, code))
        }
        _ => None,
    }
}

/// The NaN code of `f` with the sign of `negative` (unsigned formats: positive), `i32`; 0 for
/// formats without NaN (what `encode` gives them).
fn nan_code_i32(b: &mut Builder, f: FloatFormat, negative: Value) -> Value {
    match (f.nan_code(false), f.nan_code(true)) {
        (Some(pos), Some(neg)) if f.signed() => {
            let p = c32(b, pos as u32);
            let n = c32(b, neg as u32);
            b.select(negative, n, p)
        }
        (Some(pos), _) => c32(b, pos as u32),
        _ => c32(b, 0),
    }
}

/// The code of an exactly representable f32 value `x` (bits `bits`) in a format other than
/// f32/f16/bf16; NaN is handled by the caller.
fn encode_small_exact(b: &mut Builder, f: FloatFormat, x: Value, bits: Value) -> Value {
    let (e_bits, m_bits, bias) = (f.exp_bits(), f.man_bits(), f.bias());
    let absm = c32(b, 0x7fff_ffff);
    let abs = b.and(bits, absm);
    let c23 = c32(b, 23);
    let mut mag = if f.family() == FloatFamily::PowerOfTwo {
        // 2^k has the f32 exponent field k + 127 (2^−127 is f32's subnormal 0x00400000, field 0).
        let fe = b.shr_u(abs, c23);
        let off = c32(b, (bias - 127) as u32);
        b.add(fe, off)
    } else if e_bits == 8 {
        let s = c32(b, 23 - m_bits);
        b.shr_u(abs, s)
    } else {
        let fe = b.shr_u(abs, c23);
        let off = c32(b, (bias - 127) as u32);
        let e = b.add(fe, off);
        let sm = c32(b, m_bits);
        let hi = b.shl(e, sm);
        let fm = c32(b, 0x007f_ffff);
        let man = b.and(abs, fm);
        let s = c32(b, 23 - m_bits);
        let lo = b.shr_u(man, s);
        let normal = b.or(hi, lo);
        // Below the format's normal range (zero included): the subnormal significand
        // |x| · 2^(bias − 1 + M), an exact small integer.
        let ax = b.unary(UnaryOp::FAbs, x);
        let scale = b.f32(pow2_f32(bias - 1 + m_bits as i32));
        let scaled = b.binary(BinaryOp::FMul, ax, scale);
        let sub = b.cast(CastOp::FToU, scaled, Type::I32);
        let min_normal_field = c32(b, (128 - bias) as u32);
        let is_normal = b.cmp(CmpOp::Uge, fe, min_normal_field);
        b.select(is_normal, normal, sub)
    };
    if let Some(inf) = f.inf_code() {
        let finf = c32(b, 0x7f80_0000);
        let is_inf = b.cmp(CmpOp::Eq, abs, finf);
        let ic = c32(b, inf as u32);
        mag = b.select(is_inf, ic, mag);
    }
    if f.signed() {
        let c31 = c32(b, 31);
        let sign = b.shr_u(bits, c31);
        let s = c32(b, e_bits + m_bits);
        let sign = b.shl(sign, s);
        mag = b.or(mag, sign);
    }
    mag
}

// ----- rounding encoders on f64 -----

/// The random bits for stochastic rounding as an `i64` in 0..2^32.
fn random_i64(b: &mut Builder, seed: Value, index: Value) -> Value {
    let r = stochastic_bits(b, seed, index);
    b.cast(CastOp::ZExt, r, Type::I64)
}

/// `FloatFormat::encode(x)` for an `f64` value `x` and a format other than f64: the code as an
/// `i64`.
fn encode_float_f64(b: &mut Builder, f: FloatFormat, x: Value, rounding: SimtRounding, overflow: Overflow) -> Value {
    let (m_bits, signed) = (f.man_bits(), f.signed());
    let pow2 = f.family() == FloatFamily::PowerOfTwo;
    let emin: i64 = if pow2 { -(f.bias() as i64) } else { 1 - f.bias() as i64 };
    let xb = b.cast(CastOp::Bitcast, x, Type::I64);
    let zero = c64(b, 0);
    let negative = b.cmp(CmpOp::Slt, xb, zero);
    let absm = c64(b, !(1u64 << 63));
    let abs = b.and(xb, absm);
    let inf_bits = c64(b, 0x7ff0_0000_0000_0000);
    let is_nan = b.cmp(CmpOp::Ugt, abs, inf_bits);
    let is_inf = b.cmp(CmpOp::Eq, abs, inf_bits);
    let is_zero = b.cmp(CmpOp::Eq, abs, zero);
    // |x| = significand · 2^exp2 exactly.
    let c52 = c64(b, 52);
    let ef = b.shr_u(abs, c52);
    let m52 = c64(b, mask(52));
    let frac = b.and(abs, m52);
    let ef_zero = b.cmp(CmpOp::Eq, ef, zero);
    let hidden = c64(b, 1 << 52);
    let with_hidden = b.or(frac, hidden);
    let sig = b.select(ef_zero, frac, with_hidden);
    let c1075 = c64(b, 1075);
    let e_norm = b.sub(ef, c1075);
    let e_sub = c64(b, (-1074i64) as u64);
    let exp2 = b.select(ef_zero, e_sub, e_norm);
    let clz = b.unary(UnaryOp::Clz, sig);
    let c63 = c64(b, 63);
    let top = b.sub(c63, clz);
    let log2 = b.add(top, exp2);
    let cemin = c64(b, emin as u64);
    let binade = b.binary(BinaryOp::MaxS, log2, cemin);
    // |x| / ulp = sig · 2^−s with s = binade − M − exp2. s ≥ 1 for every input (finite inputs
    // have at least 52 − M ≥ 29 bits below the target's ulp; zero, Inf and NaN are replaced
    // below), so the integer part is sig >> s and the discarded bits are sig's low s bits.
    let cm = c64(b, m_bits as u64);
    let t = b.sub(binade, cm);
    let s = b.sub(t, exp2);
    let q = b.shr_u(sig, s);
    let c64v = c64(b, 64);
    let le64 = b.cmp(CmpOp::Sle, s, c64v);
    let up_shift = b.sub(c64v, s);
    let fr_lo = b.shl(sig, up_shift);
    let drop = b.sub(s, c64v);
    let fr_hi = b.shr_u(sig, drop);
    // The first 64 discarded bits, left-aligned, and whether any bit beyond them is set.
    let fraction = b.select(le64, fr_lo, fr_hi);
    let kept = b.shl(fr_hi, drop);
    let lost = b.sub(sig, kept);
    let lost_nz = b.cmp(CmpOp::Ne, lost, zero);
    let f_false = cpred(b, false);
    let sticky = b.select(le64, f_false, lost_nz);
    let steps = b.sub(binade, cemin);
    let low_code = if pow2 {
        let s1 = b.add(steps, q);
        let one = c64(b, 1);
        b.sub(s1, one)
    } else {
        let sh = b.shl(steps, cm);
        b.add(sh, q)
    };
    let fr_nz = b.cmp(CmpOp::Ne, fraction, zero);
    let inexact = b.or(fr_nz, sticky);
    let positive = not(b, negative);
    let round_up = match rounding {
        SimtRounding::NearestEven => {
            let half = c64(b, 1 << 63);
            let gt = b.cmp(CmpOp::Ugt, fraction, half);
            let eq = b.cmp(CmpOp::Eq, fraction, half);
            let one = c64(b, 1);
            let ql = b.and(q, one);
            let odd = b.cmp(CmpOp::Ne, ql, zero);
            let tie_up = b.or(sticky, odd);
            let tie = b.and(eq, tie_up);
            b.or(gt, tie)
        }
        SimtRounding::TowardZero => cpred(b, false),
        SimtRounding::TowardPositive => b.and(positive, inexact),
        SimtRounding::TowardNegative => b.and(negative, inexact),
        SimtRounding::Stochastic { seed, index } => {
            let r = random_i64(b, seed, index);
            let c32v = c64(b, 32);
            let top32 = b.shr_u(fraction, c32v);
            let sum = b.add(top32, r);
            let carry = c64(b, 1 << 32);
            b.cmp(CmpOp::Uge, sum, carry)
        }
    };
    let up = b.cast(CastOp::ZExt, round_up, Type::I64);
    let rounded = b.add(low_code, up);
    let mag_code = b.binary(BinaryOp::MaxS, rounded, zero);
    let max_mag = c64(b, f.max_magnitude_code());
    let overflowed = b.cmp(CmpOp::Sgt, mag_code, max_mag);
    let sign_code = if signed {
        let sm = c64(b, f.sign_mask());
        b.select(negative, sm, zero)
    } else {
        zero
    };
    // The format's NaN with the input's sign (unsigned formats: positive).
    let nan = match (f.nan_code(false), f.nan_code(true)) {
        (Some(p), Some(n)) if signed => {
            let p = c64(b, p);
            let n = c64(b, n);
            Some(b.select(negative, n, p))
        }
        (Some(p), _) => Some(c64(b, p)),
        _ => None,
    };
    let max = b.or(sign_code, max_mag);
    // What overflow gives when the mode rounds the magnitude up (`toward_zero` false).
    let overflow_up = match (overflow, f.family()) {
        (Overflow::Saturate, _) | (_, FloatFamily::Finite) => max,
        (Overflow::NonSaturating, FloatFamily::Ieee) => {
            let inf = c64(b, f.inf_code().unwrap_or(0));
            b.or(sign_code, inf)
        }
        (Overflow::NonSaturating, _) => nan.unwrap_or(max),
    };
    let overflow_rounded = match rounding {
        SimtRounding::TowardZero => max,
        SimtRounding::TowardPositive => b.select(negative, max, overflow_up),
        SimtRounding::TowardNegative => b.select(negative, overflow_up, max),
        SimtRounding::NearestEven | SimtRounding::Stochastic { .. } => overflow_up,
    };
    let in_range = b.or(sign_code, mag_code);
    let mut code = b.select(overflowed, overflow_rounded, in_range);
    code = b.select(is_inf, overflow_up, code);
    let zero_code = if pow2 && overflow == Overflow::NonSaturating {
        c64(b, mask(f.exp_bits() + f.man_bits()))
    } else {
        sign_code
    };
    code = b.select(is_zero, zero_code, code);
    if !signed {
        let nonzero = not(b, is_zero);
        let neg_nonzero = b.and(negative, nonzero);
        let neg_code = match overflow {
            Overflow::Saturate => zero,
            Overflow::NonSaturating => nan.unwrap_or(zero),
        };
        code = b.select(neg_nonzero, neg_code, code);
    }
    let nan_code = nan.unwrap_or(zero);
    b.select(is_nan, nan_code, code)
}

/// `int::encode(x)` for an `f64` value `x` and an integer of ≤ 32 bits: the code as an `i64`
/// (bits above `bits` zero).
fn encode_int_f64(b: &mut Builder, bits: u32, signed: bool, x: Value, rounding: SimtRounding, overflow: Overflow) -> Value {
    let (min, max): (i64, i64) = if signed {
        (-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1)
    } else {
        (0, mask(bits) as i64)
    };
    let code_mask = c64(b, mask(bits));
    let zero = c64(b, 0);
    let fzero = cf64(b, 0.0);
    let is_nan = b.cmp(CmpOp::FNe, x, x);
    let ax = b.unary(UnaryOp::FAbs, x);
    let finf = cf64(b, f64::INFINITY);
    let is_inf = b.cmp(CmpOp::FEq, ax, finf);
    let below_zero = b.cmp(CmpOp::FLt, x, fzero);
    let rounded = match rounding {
        SimtRounding::NearestEven => b.unary(UnaryOp::FRound, x),
        SimtRounding::TowardZero => b.unary(UnaryOp::FTrunc, x),
        SimtRounding::TowardPositive => b.unary(UnaryOp::FCeil, x),
        SimtRounding::TowardNegative => b.unary(UnaryOp::FFloor, x),
        SimtRounding::Stochastic { seed, index } => {
            let whole = b.unary(UnaryOp::FTrunc, ax);
            let fraction = b.binary(BinaryOp::FSub, ax, whole);
            // floor(fraction · 2^32): the scaling is exact, the conversion truncates.
            let scale = cf64(b, 4_294_967_296.0);
            let scaled = b.binary(BinaryOp::FMul, fraction, scale);
            let t = b.cast(CastOp::FToU, scaled, Type::I64);
            let r = random_i64(b, seed, index);
            let sum = b.add(t, r);
            let carry = c64(b, 1 << 32);
            let up = b.cmp(CmpOp::Uge, sum, carry);
            let one = cf64(b, 1.0);
            let inc = b.select(up, one, fzero);
            let mag = b.binary(BinaryOp::FAdd, whole, inc);
            let neg = b.unary(UnaryOp::FNeg, mag);
            b.select(below_zero, neg, mag)
        }
    };
    let code = match overflow {
        Overflow::Saturate => {
            let i = b.cast(CastOp::FToS, rounded, Type::I64);
            let lo = c64(b, min as u64);
            let hi = c64(b, max as u64);
            let c = b.binary(BinaryOp::MaxS, i, lo);
            b.binary(BinaryOp::MinS, c, hi)
        }
        Overflow::NonSaturating => {
            // The low 64 bits of the integer: its significand shifted by its exponent (0 for
            // ±0, whose shift is past the width; 0 when every low bit is zero), negated for a
            // negative value.
            let rb = b.cast(CastOp::Bitcast, rounded, Type::I64);
            let absm = c64(b, !(1u64 << 63));
            let rabs = b.and(rb, absm);
            let c52 = c64(b, 52);
            let ef = b.shr_u(rabs, c52);
            let m52 = c64(b, mask(52));
            let fr = b.and(rabs, m52);
            let hidden = c64(b, 1 << 52);
            let sig = b.or(fr, hidden);
            let c1075 = c64(b, 1075);
            let left = b.sub(ef, c1075);
            let right = b.sub(c1075, ef);
            let big = b.cmp(CmpOp::Sge, ef, c1075);
            let l = b.shl(sig, left);
            let r = b.shr_u(sig, right);
            let mag = b.select(big, l, r);
            let rz = b.cmp(CmpOp::Eq, rabs, zero);
            let mag = b.select(rz, zero, mag);
            let neg = b.sub(zero, mag);
            let is_neg = b.cmp(CmpOp::Slt, rb, zero);
            b.select(is_neg, neg, mag)
        }
    };
    let code = b.and(code, code_mask);
    let cmin = c64(b, min as u64 & mask(bits));
    let cmax = c64(b, max as u64);
    let inf_code = b.select(below_zero, cmin, cmax);
    let code = b.select(is_inf, inf_code, code);
    b.select(is_nan, zero, code)
}

// ----- conversions -----

/// The exact value of carrier `x` of `from` as an `f64`, as the interpreter sees it (a 64-bit
/// integer rounds to nearest even, `a as f64`).
fn to_f64(b: &mut Builder, from: DType, x: Value) -> Value {
    match ty(b, x) {
        Type::F64 => x,
        Type::F32 => b.cast(CastOp::FConvert, x, Type::F64),
        _ if from.is_signed() => b.cast(CastOp::SToF, x, Type::F64),
        _ => b.cast(CastOp::UToF, x, Type::F64),
    }
}

/// `±max` of f32/f64 in place of `±Inf` (saturating overflow of an exact value).
fn saturate_inf(b: &mut Builder, x: Value, max: f64) -> Value {
    let t = ty(b, x);
    let ax = b.unary(UnaryOp::FAbs, x);
    let (inf, pmax, nmax) = if t == Type::F32 {
        (b.f32(f32::INFINITY), b.f32(max as f32), b.f32(-(max as f32)))
    } else {
        (cf64(b, f64::INFINITY), cf64(b, max), cf64(b, -max))
    };
    let is_inf = b.cmp(CmpOp::FEq, ax, inf);
    let zero = b.constant(t, 0);
    let neg = b.cmp(CmpOp::FLt, x, zero);
    let m = b.select(neg, nmax, pmax);
    b.select(is_inf, m, x)
}

/// The interpreter's `Cast`: the exact value of `x` (carrier of `from`) converted to `to` with
/// the rounding and overflow rules of `DType::encode` (`cast_value`: a 64-bit integer
/// destination truncates toward zero and saturates, NaN → 0, whatever the mode; a 64-bit
/// integer source to an integer wraps; a 64-bit integer source to a float first rounds to f64),
/// returned as a carrier of `to`.
pub fn convert(b: &mut Builder, from: DType, to: DType, x: Value, rounding: SimtRounding, overflow: Overflow) -> Value {
    let wide = |d: DType| d.is_int() && d.bits() > 32;
    let ne_nonsat = rounding == SimtRounding::NearestEven && overflow == Overflow::NonSaturating;
    if from.is_int() && to.is_int() {
        if wide(from) {
            if wide(to) {
                return x;
            }
            let t = b.cast(CastOp::Trunc, x, Type::I32);
            return wrap_int(b, to, t);
        }
        let ext = if from.is_signed() { CastOp::SExt } else { CastOp::ZExt };
        if wide(to) {
            return b.cast(ext, x, Type::I64);
        }
        // Every value of `from` is one of `to` (u3 → i8, i4 → i16 …): the carrier already holds
        // it, and neither wrapping nor saturation can change it.
        if to.min_finite() <= from.min_finite() && from.max_finite() <= to.max_finite() {
            return x;
        }
        return match overflow {
            Overflow::NonSaturating => wrap_int(b, to, x),
            Overflow::Saturate => {
                let x64 = b.cast(ext, x, Type::I64);
                let lo = c64(b, to.min_finite() as i64 as u64);
                let hi = c64(b, to.max_finite() as i64 as u64);
                let c = b.binary(BinaryOp::MaxS, x64, lo);
                let c = b.binary(BinaryOp::MinS, c, hi);
                b.cast(CastOp::Trunc, c, Type::I32)
            }
        };
    }
    // Fast paths, each the same function as the general one below.
    if to == DType::F64 {
        // Every value of every source is an f64 (64-bit integers round as `a as f64`); the
        // mode does not matter and only ±Inf can saturate.
        let v = to_f64(b, from, x);
        return match overflow {
            Overflow::NonSaturating => v,
            Overflow::Saturate => saturate_inf(b, v, f64::MAX),
        };
    }
    let saturates_inf = overflow == Overflow::Saturate && matches!(from, DType::Float(f) if f.has_inf());
    if to != DType::F64 && to.is_float() && !saturates_inf && exactly_representable(from, to) {
        // Dequantization's fast path (u4/i4/u8/i8 → f16/bf16, fp4/fp6/fp8 → f16/bf16 …):
        // every value of `from` is a value of `to`, so no mode rounds and nothing overflows
        // (saturation only turns an infinity into the largest finite value).
        // Floats already hold the value in their f32 carrier; integers need one exact
        // integer-to-f32 conversion. No per-element rounding sequence is emitted.
        return if from.is_float() {
            x
        } else {
            let op = if from.is_signed() { CastOp::SToF } else { CastOp::UToF };
            b.cast(op, x, Type::F32)
        };
    }
    if to == DType::F32 && is_f32_carried(from) {
        // The value is already exact in f32.
        return match overflow {
            Overflow::NonSaturating => x,
            Overflow::Saturate => saturate_inf(b, x, f32::MAX as f64),
        };
    }
    if rounding == SimtRounding::NearestEven && (to == DType::F16 || to == DType::BF16) && is_f32_carried(from) {
        // One `cvt.rn` rounds the exact f32 value to nearest-even; saturation then only has to
        // turn the infinities it produced (or was given) into the largest finite value, since a
        // value rounds to infinity exactly when it lies beyond the largest finite one.
        let fmt = if to == DType::F16 { HalfFormat::F16 } else { HalfFormat::BF16 };
        let h = b.cast(CastOp::FToHalf(fmt), x, Type::I16);
        let mut r = b.cast(CastOp::HalfToF(fmt), h, Type::F32);
        if overflow == Overflow::Saturate {
            r = saturate_inf(b, r, to.max_finite());
        }
        // `cvt.rn` makes every NaN positive; the interpreter keeps the sign.
        let is_nan = b.cmp(CmpOp::FNe, x, x);
        return b.select(is_nan, x, r);
    }
    if rounding == SimtRounding::NearestEven && to == DType::F32 && from.is_int() && !wide(from) {
        // One `cvt.rn.f32.s32/u32`; no integer of 32 bits reaches f32's largest value, so
        // saturation never applies.
        let op = if from.is_signed() { CastOp::SToF } else { CastOp::UToF };
        return b.cast(op, x, Type::F32);
    }
    if ne_nonsat && to == DType::F32 && from == DType::F64 {
        return b.cast(CastOp::FConvert, x, Type::F32);
    }
    if from == to && overflow == Overflow::NonSaturating && from.is_float() {
        return x;
    }
    let v = to_f64(b, from, x);
    match to {
        DType::UInt(_) | DType::Int(_) if wide(to) => b.cast(CastOp::FToS, v, Type::I64),
        DType::UInt(bits) | DType::Int(bits) => {
            let code = encode_int_f64(b, bits as u32, to.is_signed(), v, rounding, overflow);
            let c = b.cast(CastOp::Trunc, code, Type::I32);
            wrap_int(b, to, c)
        }
        DType::Float(f) => {
            let code = encode_float_f64(b, f, v, rounding, overflow);
            let c = b.cast(CastOp::Trunc, code, Type::I32);
            decode(b, to, c)
        }
    }
}

/// Whether every value of `from` (an integer of at most 32 bits or an f32-carried float) is a
/// value of the float type `to` — and every NaN or infinity of `from` has one in `to` — so that
/// converting never rounds or saturates. A float is `M · 2^E` with `M` below `2^(m + 1)` and `E`
/// at least its subnormal unit: representable in `to` when `to` has at least as many mantissa
/// bits, a unit no larger and a largest value no smaller.
pub fn exactly_representable(from: DType, to: DType) -> bool {
    let DType::Float(t) = to else { return false };
    if t == FloatFormat::F64 {
        return false;
    }
    let t_unit = t.min_subnormal().unwrap_or_else(|| t.min_normal() / 2f64.powi(t.man_bits() as i32));
    match from {
        DType::UInt(bits) | DType::Int(bits) => {
            let signed = from.is_signed();
            if bits > 24 || (signed && !t.signed()) {
                return false;
            }
            // Magnitudes up to 2^bits − 1 (unsigned) or 2^(bits − 1) (signed; −2^(bits−1) is a
            // power of two, the others need bits − 1 significant bits).
            let significant = if signed { bits - 1 } else { bits };
            let largest = if signed { 2f64.powi(bits as i32 - 1) } else { 2f64.powi(bits as i32) - 1.0 };
            u32::from(significant) <= t.man_bits() + 1 && largest <= t.max_finite() && t_unit <= 1.0
        }
        DType::Float(f) => {
            if f == FloatFormat::F64 || f.family() == FloatFamily::PowerOfTwo || t.family() == FloatFamily::PowerOfTwo {
                return false;
            }
            let f_unit = f.min_subnormal().unwrap_or_else(|| f.min_normal() / 2f64.powi(f.man_bits() as i32));
            f.man_bits() <= t.man_bits()
                && f_unit >= t_unit
                && (f_unit / t_unit).log2().fract() == 0.0
                && f.max_finite() <= t.max_finite()
                && (!f.signed() || t.signed())
                && (!f.has_nan() || t.has_nan())
                && (!f.has_inf() || t.has_inf())
        }
    }
}

/// The interpreter's `round_float(d, ·)` applied to an `f32` or `f64` value: the nearest-even
/// value of float type `d`, non-saturating (±Inf/NaN where `d` has them; finite-only formats
/// saturate), as a carrier of `d`. What the interpreter does after every float arithmetic op.
pub fn round_value(b: &mut Builder, d: DType, x: Value) -> Value {
    let from = if ty(b, x) == Type::F32 { DType::F32 } else { DType::F64 };
    convert(b, from, d, x, SimtRounding::NearestEven, Overflow::NonSaturating)
}

// ----- Philox -----

/// Philox4x32-10 as in `tilc_dtype::philox4x32_10` (all operands `i32`).
pub fn philox4x32_10(b: &mut Builder, counter: [Value; 4], key: [Value; 2]) -> [Value; 4] {
    let m0 = c32(b, 0xD251_1F53);
    let m1 = c32(b, 0xCD9E_8D57);
    let w0 = c32(b, 0x9E37_79B9);
    let w1 = c32(b, 0xBB67_AE85);
    let mut c = counter;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k = [b.add(k[0], w0), b.add(k[1], w1)];
        }
        let hi0 = b.binary(BinaryOp::MulHiU, m0, c[0]);
        let lo0 = b.mul(m0, c[0]);
        let hi1 = b.binary(BinaryOp::MulHiU, m1, c[2]);
        let lo1 = b.mul(m1, c[2]);
        let x0 = b.binary(BinaryOp::Xor, hi1, c[1]);
        let x0 = b.binary(BinaryOp::Xor, x0, k[0]);
        let x2 = b.binary(BinaryOp::Xor, hi0, c[3]);
        let x2 = b.binary(BinaryOp::Xor, x2, k[1]);
        c = [x0, lo1, x2, lo0];
    }
    c
}

/// The 32 random bits (`i32`) tilc-dtype's stochastic rounding uses for (`seed`, `index`) (its
/// `stochastic_bits`): word `index & 3` of Philox of counter `[index >> 2, index >> 34, 0, 0]`
/// and key `[seed, seed >> 32]`. `seed` and `index` are `i64` (an `i32` is sign-extended).
pub fn stochastic_bits(b: &mut Builder, seed: Value, index: Value) -> Value {
    let seed = as_i64(b, seed);
    let index = as_i64(b, index);
    let two = c64(b, 2);
    let block = b.shr_u(index, two);
    let c32v = c64(b, 32);
    let block_hi = b.shr_u(block, c32v);
    let seed_hi = b.shr_u(seed, c32v);
    let c0 = b.cast(CastOp::Trunc, block, Type::I32);
    let c1 = b.cast(CastOp::Trunc, block_hi, Type::I32);
    let k0 = b.cast(CastOp::Trunc, seed, Type::I32);
    let k1 = b.cast(CastOp::Trunc, seed_hi, Type::I32);
    let zero = c32(b, 0);
    let w = philox4x32_10(b, [c0, c1, zero, zero], [k0, k1]);
    let three = c64(b, 3);
    let lane = b.and(index, three);
    let lane = b.cast(CastOp::Trunc, lane, Type::I32);
    let one = c32(b, 1);
    let two32 = c32(b, 2);
    let is0 = b.cmp(CmpOp::Eq, lane, zero);
    let is1 = b.cmp(CmpOp::Eq, lane, one);
    let is2 = b.cmp(CmpOp::Eq, lane, two32);
    let r = b.select(is2, w[2], w[3]);
    let r = b.select(is1, w[1], r);
    b.select(is0, w[0], r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carriers_and_code_types() {
        assert_eq!(carrier(DType::UInt(1)), Type::I32);
        assert_eq!(carrier(DType::Int(32)), Type::I32);
        assert_eq!(carrier(DType::Int(64)), Type::I64);
        assert_eq!(carrier(DType::parse("e8m0").unwrap()), Type::F32);
        assert_eq!(carrier(DType::F64), Type::F64);
        assert_eq!(code_type(DType::F64), Type::I64);
        assert_eq!(code_type(DType::parse("ue4m3").unwrap()), Type::I32);
    }
}
