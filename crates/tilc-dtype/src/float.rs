//! Float formats of any exponent/mantissa split: their facts, exact decoding and correctly
//! rounded encoding. Knows nothing of integers or packing.

use crate::{DTypeError, Overflow, Rounding, mask, pow2, stochastic_bits};
use std::fmt;

/// The encoding rules of a float format's special values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FloatFamily {
    /// IEEE 754 style: the all-ones exponent holds ±Inf (mantissa 0) and NaN (mantissa ≠ 0).
    /// `f16`, `bf16`, `f32`, `f64`, `f8e5m2`.
    Ieee,
    /// No Inf; the all-ones code (exponent and mantissa) is NaN, for each sign; the all-ones
    /// exponent otherwise holds normal numbers. OCP `f8e4m3` (max 448), `ue4m3`, `ue5m3`.
    FiniteNan,
    /// Every code is a finite number: no Inf, no NaN. OCP `f6e3m2`, `f6e2m3`, `f4e2m1` and the
    /// other sub-byte floats.
    Finite,
    /// Exponent only (`e8m0`): 2^(c − bias), no zero, no subnormals, no sign, all ones = NaN.
    PowerOfTwo,
}

impl FloatFamily {
    /// The family a signed `f{width}e{exp_bits}m*` name denotes (see the crate docs).
    pub fn for_signed_width(width: u32, exp_bits: u32) -> FloatFamily {
        match width {
            0..=7 => FloatFamily::Finite,
            8 if exp_bits <= 4 => FloatFamily::FiniteNan,
            _ => FloatFamily::Ieee,
        }
    }
}

/// A float format: exponent and mantissa widths, whether a sign bit exists, and the family
/// that says what the special codes mean. Signed formats are `1 + E + M` bits wide
/// (sign, exponent, mantissa from the most significant bit down); unsigned formats are stored
/// in one byte, the value in the low `E + M` bits and any bit above them zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FloatFormat {
    exp_bits: u8,
    man_bits: u8,
    signed: bool,
    family: FloatFamily,
}

impl FloatFormat {
    /// IEEE binary64.
    pub const F64: FloatFormat = FloatFormat::raw(11, 52, true, FloatFamily::Ieee);
    /// IEEE binary32.
    pub const F32: FloatFormat = FloatFormat::raw(8, 23, true, FloatFamily::Ieee);
    /// IEEE binary16.
    pub const F16: FloatFormat = FloatFormat::raw(5, 10, true, FloatFamily::Ieee);
    /// bfloat16.
    pub const BF16: FloatFormat = FloatFormat::raw(8, 7, true, FloatFamily::Ieee);
    /// OCP FP8 E4M3 (max 448, NaN = S.1111.111, no Inf).
    pub const F8E4M3: FloatFormat = FloatFormat::raw(4, 3, true, FloatFamily::FiniteNan);
    /// OCP FP8 E5M2 (IEEE-like).
    pub const F8E5M2: FloatFormat = FloatFormat::raw(5, 2, true, FloatFamily::Ieee);
    /// OCP FP6 E3M2 (max 28, no Inf/NaN).
    pub const F6E3M2: FloatFormat = FloatFormat::raw(3, 2, true, FloatFamily::Finite);
    /// OCP FP6 E2M3 (max 7.5, no Inf/NaN).
    pub const F6E2M3: FloatFormat = FloatFormat::raw(2, 3, true, FloatFamily::Finite);
    /// OCP FP4 E2M1 (max 6, no Inf/NaN).
    pub const F4E2M1: FloatFormat = FloatFormat::raw(2, 1, true, FloatFamily::Finite);
    /// OCP MX scale E8M0: 2^(c − 127), 0xFF = NaN.
    pub const E8M0: FloatFormat = FloatFormat::raw(8, 0, false, FloatFamily::PowerOfTwo);
    /// NVFP4 block scale: unsigned E4M3 in a byte (max 448, 0x7F = NaN).
    pub const UE4M3: FloatFormat = FloatFormat::raw(4, 3, false, FloatFamily::FiniteNan);
    /// Unsigned E5M3 scale (max 114688, 0xFF = NaN).
    pub const UE5M3: FloatFormat = FloatFormat::raw(5, 3, false, FloatFamily::FiniteNan);

    const fn raw(exp_bits: u8, man_bits: u8, signed: bool, family: FloatFamily) -> FloatFormat {
        FloatFormat {
            exp_bits,
            man_bits,
            signed,
            family,
        }
    }

    /// A format from its parts. Exponent 1..=8 bits and mantissa 0..=23 bits (or exactly
    /// binary64's 11 and 52); unsigned formats must fit a byte; IEEE-like formats need at least
    /// 2 exponent bits and 1 mantissa bit (else they have no normal numbers or no NaN);
    /// power-of-two formats are unsigned with no mantissa.
    pub fn new(
        exp_bits: u32,
        man_bits: u32,
        signed: bool,
        family: FloatFamily,
    ) -> Result<FloatFormat, DTypeError> {
        let bad = |why: &str| {
            Err(DTypeError::BadFormat(format!(
                "{why} (E = {exp_bits}, M = {man_bits}, signed = {signed}, {family:?})"
            )))
        };
        let is_f64 = exp_bits == 11 && man_bits == 52 && signed && family == FloatFamily::Ieee;
        if !is_f64 && (!(1..=8).contains(&exp_bits) || man_bits > 23) {
            return bad("exponent must have 1..=8 bits and mantissa 0..=23 bits");
        }
        if !signed && exp_bits + man_bits > 8 {
            return bad("unsigned formats are stored in one byte");
        }
        match family {
            FloatFamily::Ieee if exp_bits < 2 || man_bits < 1 => {
                return bad("IEEE-like formats need at least 2 exponent bits and 1 mantissa bit");
            }
            FloatFamily::PowerOfTwo if signed || man_bits != 0 => {
                return bad("power-of-two formats are unsigned with no mantissa");
            }
            FloatFamily::FiniteNan if exp_bits + man_bits < 2 => {
                return bad("a NaN code needs at least 2 exponent and mantissa bits");
            }
            _ => {}
        }
        Ok(FloatFormat::raw(
            exp_bits as u8,
            man_bits as u8,
            signed,
            family,
        ))
    }

    /// Exponent bits.
    pub fn exp_bits(&self) -> u32 {
        u32::from(self.exp_bits)
    }

    /// Mantissa (fraction) bits, without the implicit leading one.
    pub fn man_bits(&self) -> u32 {
        u32::from(self.man_bits)
    }

    /// Whether a sign bit exists.
    pub fn signed(&self) -> bool {
        self.signed
    }

    /// The family (meaning of the special codes).
    pub fn family(&self) -> FloatFamily {
        self.family
    }

    /// Code width: 1 + E + M when signed, 8 when unsigned.
    pub fn bits(&self) -> u32 {
        if self.signed {
            1 + self.exp_bits() + self.man_bits()
        } else {
            8
        }
    }

    /// Exponent bias, 2^(E−1) − 1.
    pub fn bias(&self) -> i32 {
        (1 << (self.exp_bits - 1)) - 1
    }

    /// Whether ±Inf exist.
    pub fn has_inf(&self) -> bool {
        self.family == FloatFamily::Ieee
    }

    /// Whether NaN codes exist.
    pub fn has_nan(&self) -> bool {
        self.family != FloatFamily::Finite
    }

    /// Whether subnormal numbers exist (exponent field 0, mantissa ≠ 0).
    pub fn has_subnormals(&self) -> bool {
        self.family != FloatFamily::PowerOfTwo && self.man_bits > 0
    }

    /// The sign bit's mask (0 for unsigned formats).
    pub fn sign_mask(&self) -> u64 {
        if self.signed {
            1u64 << (self.exp_bits() + self.man_bits())
        } else {
            0
        }
    }

    /// Mask of the exponent and mantissa bits.
    fn magnitude_mask(&self) -> u64 {
        mask(self.exp_bits() + self.man_bits())
    }

    /// Unbiased exponent of the smallest normal binade.
    fn emin(&self) -> i32 {
        match self.family {
            FloatFamily::PowerOfTwo => -self.bias(),
            _ => 1 - self.bias(),
        }
    }

    /// The magnitude bits (exponent and mantissa) of the largest finite value.
    pub fn max_magnitude_code(&self) -> u64 {
        let all = self.magnitude_mask();
        match self.family {
            FloatFamily::Ieee => {
                ((mask(self.exp_bits()) - 1) << self.man_bits()) | mask(self.man_bits())
            }
            FloatFamily::FiniteNan | FloatFamily::PowerOfTwo => all - 1,
            FloatFamily::Finite => all,
        }
    }

    /// The largest finite value.
    pub fn max_finite(&self) -> f64 {
        self.decode(self.max_magnitude_code())
    }

    /// The most negative finite value (−max; for unsigned formats the smallest value, 0 or
    /// `e8m0`'s 2^−127).
    pub fn min_finite(&self) -> f64 {
        if self.signed {
            -self.max_finite()
        } else {
            self.decode(0)
        }
    }

    /// The smallest positive normal value.
    pub fn min_normal(&self) -> f64 {
        pow2(self.emin())
    }

    /// The smallest positive subnormal value, if subnormals exist.
    pub fn min_subnormal(&self) -> Option<f64> {
        self.has_subnormals()
            .then(|| pow2(self.emin() - self.man_bits() as i32))
    }

    /// The code of NaN with the given sign (positive for unsigned formats), if NaN exists.
    pub fn nan_code(&self, negative: bool) -> Option<u64> {
        let sign = if negative { self.sign_mask() } else { 0 };
        match self.family {
            FloatFamily::Ieee => Some(
                sign | (mask(self.exp_bits()) << self.man_bits()) | (1u64 << (self.man_bits() - 1)),
            ),
            FloatFamily::FiniteNan | FloatFamily::PowerOfTwo => Some(sign | self.magnitude_mask()),
            FloatFamily::Finite => None,
        }
    }

    /// The code of +Inf, if Inf exists.
    pub fn inf_code(&self) -> Option<u64> {
        self.has_inf()
            .then(|| mask(self.exp_bits()) << self.man_bits())
    }

    /// Whether a code is a NaN.
    pub fn is_nan_code(&self, code: u64) -> bool {
        self.decode(code).is_nan()
    }

    /// The exact value of a code (low `bits()` bits read).
    pub fn decode(&self, code: u64) -> f64 {
        if *self == FloatFormat::F64 {
            return f64::from_bits(code);
        }
        let code = code & mask(self.bits());
        let magnitude = code & self.magnitude_mask();
        if !self.signed && code != magnitude {
            return f64::NAN;
        }
        let negative = code & self.sign_mask() != 0;
        let m = self.man_bits();
        let exp_field = magnitude >> m;
        let man_field = magnitude & mask(m);
        let all_ones_exp = exp_field == mask(self.exp_bits());
        let value = match self.family {
            FloatFamily::Ieee if all_ones_exp => {
                if man_field == 0 {
                    f64::INFINITY
                } else {
                    f64::NAN
                }
            }
            FloatFamily::FiniteNan | FloatFamily::PowerOfTwo
                if magnitude == self.magnitude_mask() =>
            {
                f64::NAN
            }
            FloatFamily::PowerOfTwo => pow2(exp_field as i32 - self.bias()),
            _ if exp_field == 0 => man_field as f64 * pow2(self.emin() - m as i32),
            _ => ((1u64 << m) | man_field) as f64 * pow2(exp_field as i32 - self.bias() - m as i32),
        };
        if negative { -value } else { value }
    }

    /// Rounds `x` to this format (rules in the crate docs).
    pub fn encode(&self, x: f64, rounding: Rounding, overflow: Overflow) -> u64 {
        if *self == FloatFormat::F64 {
            return encode_f64(x, overflow);
        }
        let negative = x.is_sign_negative();
        let sign = if negative { self.sign_mask() } else { 0 };
        if x.is_nan() {
            return self.nan_code(negative && self.signed).unwrap_or(0);
        }
        if !self.signed && negative && x != 0.0 {
            return match overflow {
                Overflow::Saturate => 0,
                Overflow::NonSaturating => self.nan_code(false).unwrap_or(0),
            };
        }
        let magnitude = x.abs();
        if magnitude == 0.0 {
            return match (self.family, overflow) {
                (FloatFamily::PowerOfTwo, Overflow::NonSaturating) => self.magnitude_mask(),
                _ => sign,
            };
        }
        // Whether the mode rounds this value's magnitude down (then overflow gives max, not
        // Inf or NaN, as in IEEE 754).
        let toward_zero = match rounding {
            Rounding::TowardZero => true,
            Rounding::TowardPositive => negative,
            Rounding::TowardNegative => !negative,
            Rounding::NearestEven | Rounding::Stochastic { .. } => false,
        };
        if magnitude.is_infinite() {
            // An infinity is not rounded: it stays infinite (or NaN) unless saturating.
            return self.overflow_code(sign, negative, overflow, false);
        }
        // magnitude = significand · 2^exp2 exactly, significand < 2^53.
        let bits = magnitude.to_bits();
        let exp_field = (bits >> 52) as i32;
        let (significand, exp2) = if exp_field == 0 {
            (bits & mask(52), -1074)
        } else {
            ((bits & mask(52)) | (1u64 << 52), exp_field - 1075)
        };
        let log2 = 63 - significand.leading_zeros() as i32 + exp2;
        let m = self.man_bits() as i32;
        let emin = self.emin();
        let binade = log2.max(emin);
        // magnitude / ulp = significand · 2^shift; q is its integer part.
        let shift = exp2 - (binade - m);
        let (q, fraction, sticky) = split_fraction(significand, shift);
        // Codes are linear in (binade, q) (see `decode`), so rounding up is code + 1. For the
        // power-of-two family q ∈ {0, 1}: 1 is the binade's power of two and 0 an underflow
        // below 2^emin (code −1, clamped below since there is no zero).
        let steps = i64::from(binade - emin);
        let low_code = if self.family == FloatFamily::PowerOfTwo {
            steps + q as i64 - 1
        } else {
            (steps << m) + q as i64
        };
        let inexact = fraction != 0 || sticky;
        let round_up = match rounding {
            Rounding::NearestEven => {
                // Ties go to the even significand: for M ≥ 1 that is the even code; with no
                // mantissa bits every normal significand is 1 (odd), so ties round up in
                // magnitude, as `ml_dtypes` does for e8m0.
                const HALF: u64 = 1 << 63;
                fraction > HALF || (fraction == HALF && (sticky || q & 1 == 1))
            }
            Rounding::TowardZero => false,
            Rounding::TowardPositive => !negative && inexact,
            Rounding::TowardNegative => negative && inexact,
            Rounding::Stochastic { seed, index } => {
                let random = u64::from(stochastic_bits(seed, index));
                (fraction >> 32) + random >= 1 << 32
            }
        };
        let magnitude_code = (low_code + i64::from(round_up)).max(0) as u64;
        if magnitude_code > self.max_magnitude_code() {
            return self.overflow_code(sign, negative, overflow, toward_zero);
        }
        sign | magnitude_code
    }

    fn overflow_code(
        &self,
        sign: u64,
        negative: bool,
        overflow: Overflow,
        toward_zero: bool,
    ) -> u64 {
        let max = sign | self.max_magnitude_code();
        if overflow == Overflow::Saturate || toward_zero {
            return max;
        }
        match self.family {
            FloatFamily::Ieee => sign | self.inf_code().unwrap_or(0),
            FloatFamily::FiniteNan | FloatFamily::PowerOfTwo => {
                self.nan_code(negative && self.signed).unwrap_or(max)
            }
            FloatFamily::Finite => max,
        }
    }

    /// The canonical name (`f16`, `f8e4m3`, `ue4m3`, `e8m0` …).
    pub fn name(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for FloatFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (e, m) = (self.exp_bits(), self.man_bits());
        match *self {
            FloatFormat::F64 => write!(f, "f64"),
            FloatFormat::F32 => write!(f, "f32"),
            FloatFormat::F16 => write!(f, "f16"),
            FloatFormat::BF16 => write!(f, "bf16"),
            FloatFormat::E8M0 => write!(f, "e8m0"),
            _ if !self.signed
                && self.family == FloatFamily::FiniteNan
                && (7..=8).contains(&(e + m)) =>
            {
                write!(f, "ue{e}m{m}")
            }
            _ if !self.signed => write!(f, "ue{e}m{m}<{:?}>", self.family),
            _ if self.family == FloatFamily::for_signed_width(1 + e + m, e) => {
                write!(f, "f{}e{e}m{m}", 1 + e + m)
            }
            // A format built with `FloatFormat::new` whose family differs from the one its
            // name would give: no name parses back to it, so say what it is.
            _ => write!(f, "f{}e{e}m{m}<{:?}>", 1 + e + m, self.family),
        }
    }
}

/// Splits significand · 2^shift into its integer part, the first 64 bits of its fractional part
/// (as a 0.64 fixed-point number) and whether any fractional bit beyond those is set.
/// The integer part must fit in 64 bits (callers guarantee it is below 2^54).
fn split_fraction(significand: u64, shift: i32) -> (u64, u64, bool) {
    if shift >= 0 {
        return (significand << shift, 0, false);
    }
    let s = (-shift) as u32;
    if s <= 64 {
        let wide = u128::from(significand) << (64 - s);
        ((wide >> 64) as u64, wide as u64, false)
    } else {
        let drop = s - 64;
        if drop >= 64 {
            (0, 0, significand != 0)
        } else {
            (0, significand >> drop, significand & mask(drop) != 0)
        }
    }
}

fn encode_f64(x: f64, overflow: Overflow) -> u64 {
    if x.is_infinite() && overflow == Overflow::Saturate {
        return if x < 0.0 {
            f64::MIN.to_bits()
        } else {
            f64::MAX.to_bits()
        };
    }
    if x.is_nan() {
        let sign = x.to_bits() & (1u64 << 63);
        return sign | f64::NAN.to_bits() & !(1u64 << 63);
    }
    x.to_bits()
}
