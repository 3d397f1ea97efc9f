//! Integer codecs: rounding an `f64` to an integer of 1..=32 bits with saturation or
//! two's-complement wrap, and sign extension. Knows nothing of floats' formats or packing.

use crate::{Overflow, Rounding, mask, stochastic_bits};

/// Sign-extends the low `bits` bits of `code`.
pub(crate) fn sign_extend(code: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((code << shift) as i64) >> shift
}

/// Rounds `x` to an integer of `bits` bits (rules in the crate docs) and returns its code.
pub(crate) fn encode(
    x: f64,
    bits: u32,
    signed: bool,
    rounding: Rounding,
    overflow: Overflow,
) -> u64 {
    let code_mask = mask(bits);
    let (min, max) = if signed {
        (-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1)
    } else {
        (0, code_mask as i64)
    };
    if x.is_nan() {
        return 0;
    }
    if x.is_infinite() {
        return (if x > 0.0 { max } else { min }) as u64 & code_mask;
    }
    let rounded = round_to_integer(x, rounding);
    match overflow {
        Overflow::Saturate => (rounded.clamp(min as f64, max as f64) as i64) as u64 & code_mask,
        Overflow::NonSaturating => wrap(rounded) & code_mask,
    }
}

/// `x` rounded to an integer-valued f64 by the rounding mode.
fn round_to_integer(x: f64, rounding: Rounding) -> f64 {
    match rounding {
        Rounding::NearestEven => round_ties_even(x),
        Rounding::TowardZero => x.trunc(),
        Rounding::TowardPositive => x.ceil(),
        Rounding::TowardNegative => x.floor(),
        Rounding::Stochastic { seed, index } => {
            let magnitude = x.abs();
            let whole = magnitude.trunc();
            // The fraction is exact (same binade as `magnitude`); scaling by 2^64 is exact and
            // the conversion truncates to its first 64 bits.
            let fraction = ((magnitude - whole) * 18_446_744_073_709_551_616.0) as u64;
            let random = u64::from(stochastic_bits(seed, index));
            let up = (fraction >> 32) + random >= 1 << 32;
            let rounded = whole + f64::from(u8::from(up));
            if x < 0.0 { -rounded } else { rounded }
        }
    }
}

/// The low 64 bits of the two's-complement representation of an integer-valued finite f64.
fn wrap(v: f64) -> u64 {
    if v.abs() < 1.7e38 {
        // |v| < 2^127: exact in i128.
        (v as i128) as u64
    } else {
        // v = significand · 2^k with k ≥ 75: every low 64 bits are zero.
        0
    }
}

/// `x.round_ties_even()` without a libm call: baseline x86-64 has no rounding instruction, so
/// `round_ties_even` calls `rint`. Adding and subtracting 2^52 rounds to an integer in the
/// default (nearest-even) mode for |x| < 2^52; larger values are already integers.
#[inline(always)]
pub(crate) fn round_ties_even(x: f64) -> f64 {
    const TWO52: f64 = 4_503_599_627_370_496.0;
    if x.abs() < TWO52 {
        let r = (x.abs() + TWO52) - TWO52;
        r.copysign(x)
    } else {
        x
    }
}
