//! `tilc-dtype`: the arithmetic truth of every element type tilc knows.
//!
//! This crate owns every scalar format — unsigned and two's-complement integers of 1..=32 bits,
//! floats with any exponent/mantissa split (IEEE-like, finite-with-NaN, finite-only, unsigned
//! scale formats) — with exact decoding, correctly rounded encoding in every rounding mode
//! (including a reproducible stochastic mode), bit packing of any width, and host-side quantizers
//! (per-tensor, per-channel, per-group int and float, OCP MX, NVFP4). It knows nothing about the
//! rest of tilc: no IR, no spans, no kernels, and it has no dependencies, so a user can quantize
//! weights with it alone.
//!
//! # Names
//!
//! [`DType::parse`] accepts, and [`DType`]'s `Display` prints, these names:
//!
//! | name | meaning |
//! |---|---|
//! | `u1` … `u32` | unsigned integer |
//! | `i1` … `i32` | two's-complement integer |
//! | `f16`, `bf16`, `f32`, `f64` | IEEE binary16, bfloat16, binary32, binary64 |
//! | `f{1+E+M}e{E}m{M}` | signed float, E in 1..=8, M in 0..=23 (`f8e4m3`, `f6e3m2`, `f4e2m1`, `f5e2m2` …) |
//! | `e8m0` (alias `ue8m0`) | OCP MX scale: 2^(c−127), no zero, no sign, 0xFF = NaN |
//! | `ue{E}m{M}` with E+M = 7 or 8 | unsigned float stored in one byte (`ue4m3` NVFP4 scale, `ue5m3`) |
//!
//! The family of a signed `f{N}e{E}m{M}` follows from its width (see [`FloatFamily`]):
//! N ≤ 7 is finite-only (every code a number: `f6e3m2`, `f6e2m3`, `f4e2m1`, `f3e1m1` …);
//! N = 8 with E ≤ 4 has no Inf and one NaN code per sign, all ones (OCP `f8e4m3`, max 448);
//! N = 8 with E ≥ 5 and N ≥ 9 are IEEE-like with Inf and NaN (`f8e5m2`, `f16`, `bf16`;
//! these need E ≥ 2 and M ≥ 1, so `f8e7m0` or `f9e1m7` do not exist).
//! Unsigned `ue*` formats have no Inf and one NaN code (all ones), like `f8e4m3`.
//! A name that spells an existing format another way (`f16e5m10`, `f32e8m23`, `f16e8m7`)
//! parses to that format and prints under its short name.
//!
//! ```
//! use tilc_dtype::{DType, Overflow, Rounding, pack};
//!
//! let fp4 = DType::parse("f4e2m1").unwrap();
//! assert_eq!(fp4.to_string(), "f4e2m1");
//! assert_eq!(fp4.decode(0b0111), 6.0);
//! // 5.0 is halfway between 4 (code 6) and 6 (code 7): ties go to the even code.
//! assert_eq!(fp4.encode(5.0, Rounding::NearestEven, Overflow::Saturate), 6);
//!
//! // Eight u3 codes fill three bytes, element 0 in the lowest bits of byte 0.
//! let bytes = pack::pack(&[1, 2, 3, 4, 5, 6, 7, 0], 3);
//! assert_eq!(bytes, [0b1101_0001, 0b0101_1000, 0b0001_1111]);
//! assert_eq!(pack::unpack_to_f32(&bytes, &DType::UInt(3), 8), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 0.0]);
//! ```
//!
//! # Encoding
//!
//! [`DType::encode`] rounds an `f64` to the format with a [`Rounding`] mode and handles values
//! beyond the largest finite one with an [`Overflow`] mode:
//!
//! * Floats are rounded exactly (no double rounding): the input's exact binary value is compared
//!   with the two neighbouring representable values, subnormals included. Signed zero is kept.
//! * Overflow, [`Overflow::Saturate`]: the result is ±max finite, for infinite inputs too.
//! * Overflow, [`Overflow::NonSaturating`]: IEEE-like formats give ±Inf, except that a rounding
//!   mode that rounds the magnitude down (toward zero, or the directed mode pointing at zero for
//!   that sign) gives ±max, as IEEE 754 requires; formats with a NaN code and no Inf
//!   (`f8e4m3`, `ue4m3`) give NaN in the same cases; finite-only formats saturate (they have
//!   nothing else to give). Round-to-nearest rounds to the overflow value only when the input is
//!   at least max + ½ulp(max) (ties go to even, and max's mantissa is odd when all ones).
//!   An infinite input is not rounded: it stays ±Inf (IEEE-like) or becomes NaN (`f8e4m3`-like)
//!   in every rounding mode.
//! * `f64` is its own identity: encoding returns the input's bits (NaN made quiet, and ±Inf
//!   turned into ±max when saturating). [`DType::encode_f32`] takes an `f32` input exactly.
//! * NaN input: the format's NaN (sign kept where the format is signed); finite-only formats
//!   have no NaN and give +0; integers give 0.
//! * Unsigned float formats: a negative input (other than −0) gives 0 (`e8m0`: its smallest
//!   value) when saturating and NaN when not. `e8m0` has no zero: ±0 gives NaN when not
//!   saturating and 2^−127 when saturating; positive inputs below 2^−127 round as usual and
//!   then clamp to 2^−127.
//! * Ties go to the even significand; for formats without mantissa bits (`e8m0`) every
//!   significand is 1, so ties round up in magnitude (as `ml_dtypes` does).
//! * Integers: the input is rounded to an integer by the rounding mode, then saturated to
//!   [min, max] or wrapped modulo 2^bits (two's complement). ±Inf saturate in both modes.
//!
//! # Stochastic rounding
//!
//! [`Rounding::Stochastic`] `{ seed, index }` draws 32 random bits `r` from Philox4x32-10
//! ([`philox4x32_10`], the Random123 generator) with
//!
//! ```text
//! key     = [seed as u32, (seed >> 32) as u32]
//! counter = [(index >> 2) as u32, (index >> 34) as u32, 0, 0]
//! r       = philox4x32_10(counter, key)[index & 3]
//! ```
//!
//! so one Philox call serves four consecutive element indices ([`stochastic_bits`]). The
//! rounding works on the magnitude |x|: let `lo` be the largest representable magnitude ≤ |x| in
//! the target (for floats at |x|'s exponent, or the subnormal quantum; for integers the integer
//! part), `ulp` the step to the next one, and `t = floor((|x| − lo) / ulp · 2^32)` the first 32
//! bits of the discarded fraction. The magnitude rounds up to `lo + ulp` iff `t + r ≥ 2^32`
//! (the carry out of a 32-bit add of the random bits into the discarded bits), otherwise it
//! stays `lo`; then the sign is applied and overflow is handled as above. The probability of
//! rounding up is t/2^32, which equals the exact fraction whenever it has at most 32 bits (every
//! f32 → format cast except deep into the target's subnormals) and is below it by less than
//! 2^−32 otherwise. An exactly representable input never changes. A GPU kernel reproduces the
//! CPU bit for bit by computing the same `r` for the same (seed, index).
//!
//! # Packing
//!
//! [`pack`] stores codes of any width w in 1..=32 as a little-endian bit stream: element k
//! occupies bits [k·w, (k+1)·w) counted from bit 0 (the least significant) of byte 0; elements
//! may straddle bytes; the last byte is zero-padded. Eight elements always fill exactly w bytes.
//!
//! # Quantizers
//!
//! [`quant`] holds the host quantizers; their output layouts are documented there.

mod float;
pub(crate) mod int;
pub mod pack;
mod philox;
pub mod quant;

use std::fmt;

pub use float::{FloatFamily, FloatFormat};
pub use philox::{philox4x32_10, stochastic_bits};

/// An element type: an integer of 1..=32 bits or a float format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// Unsigned integer of this many bits (1..=32).
    UInt(u8),
    /// Two's-complement integer of this many bits (1..=32).
    Int(u8),
    /// A float format.
    Float(FloatFormat),
}

/// How a value between two representable ones is rounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rounding {
    /// To the nearest representable value; ties to the one with an even last bit.
    NearestEven,
    /// Toward zero (truncation).
    TowardZero,
    /// Toward +∞.
    TowardPositive,
    /// Toward −∞.
    TowardNegative,
    /// Up or down in magnitude with probability proportional to proximity, using the random bits
    /// of element `index` of stream `seed` (see the crate docs for the exact rule).
    Stochastic { seed: u64, index: u64 },
}

/// What happens to values beyond the largest finite one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Overflow {
    /// Clamp to ±max finite (integers: to [min, max]).
    Saturate,
    /// Inf or NaN per the format's rules (finite-only formats still saturate); integers wrap.
    NonSaturating,
}

/// Why a name or a format description is not a supported element type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DTypeError {
    /// The name is not any supported spelling.
    UnknownName(String),
    /// The name has the right shape but a width out of range or inconsistent.
    BadWidth { name: String, reason: String },
    /// A float format whose exponent/mantissa/family combination does not exist.
    BadFormat(String),
}

/// The supported spellings, for error messages and `--help`.
pub const SUPPORTED_NAMES: &str = "u1..u32, i1..i32, f16, bf16, f32, f64, \
f{1+E+M}e{E}m{M} with E in 1..=8 and M in 0..=23 (e.g. f8e4m3, f8e5m2, f6e3m2, f6e2m3, f4e2m1, \
f5e2m2, f3e1m1), e8m0, and ue{E}m{M} with E+M = 7 or 8 (e.g. ue4m3, ue5m3)";

impl fmt::Display for DTypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DTypeError::UnknownName(name) => {
                write!(
                    f,
                    "unknown element type `{name}`; supported: {SUPPORTED_NAMES}"
                )
            }
            DTypeError::BadWidth { name, reason } => {
                write!(
                    f,
                    "element type `{name}`: {reason}; supported: {SUPPORTED_NAMES}"
                )
            }
            DTypeError::BadFormat(reason) => write!(f, "unsupported float format: {reason}"),
        }
    }
}

impl std::error::Error for DTypeError {}

impl DType {
    /// IEEE binary16.
    pub const F16: DType = DType::Float(FloatFormat::F16);
    /// bfloat16.
    pub const BF16: DType = DType::Float(FloatFormat::BF16);
    /// IEEE binary32.
    pub const F32: DType = DType::Float(FloatFormat::F32);
    /// IEEE binary64.
    pub const F64: DType = DType::Float(FloatFormat::F64);

    /// Parses a type name (see the crate docs for the accepted spellings).
    pub fn parse(name: &str) -> Result<DType, DTypeError> {
        let unknown = || DTypeError::UnknownName(name.to_string());
        let bad = |reason: String| DTypeError::BadWidth {
            name: name.to_string(),
            reason,
        };
        match name {
            "f16" => return Ok(DType::F16),
            "bf16" => return Ok(DType::BF16),
            "f32" => return Ok(DType::F32),
            "f64" => return Ok(DType::F64),
            "e8m0" | "ue8m0" => return Ok(DType::Float(FloatFormat::E8M0)),
            _ => {}
        }
        let digits = |s: &str| -> Option<u32> {
            if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        };
        if let Some(rest) = name.strip_prefix('u').filter(|r| !r.starts_with('e')) {
            let bits = digits(rest).ok_or_else(unknown)?;
            return int_width(bits).map(DType::UInt).map_err(bad);
        }
        if let Some(rest) = name.strip_prefix('i') {
            let bits = digits(rest).ok_or_else(unknown)?;
            return int_width(bits).map(DType::Int).map_err(bad);
        }
        // `ue{E}m{M}`: unsigned byte formats.
        if let Some(rest) = name.strip_prefix("ue") {
            let (e, m) = rest.split_once('m').ok_or_else(unknown)?;
            let (e, m) = (
                digits(e).ok_or_else(unknown)?,
                digits(m).ok_or_else(unknown)?,
            );
            if !(7..=8).contains(&(e + m)) || e == 0 || e > 8 {
                return Err(bad(format!(
                    "unsigned floats are stored in one byte and need E+M = 7 or 8 with 1 <= E <= 8, got E = {e}, M = {m}"
                )));
            }
            return FloatFormat::new(e, m, false, FloatFamily::FiniteNan)
                .map(DType::Float)
                .map_err(|err| bad(err.to_string()));
        }
        // `f{N}e{E}m{M}`.
        if let Some(rest) = name.strip_prefix('f') {
            let (n, rest) = rest.split_once('e').ok_or_else(unknown)?;
            let (e, m) = rest.split_once('m').ok_or_else(unknown)?;
            let n = digits(n).ok_or_else(unknown)?;
            let (e, m) = (
                digits(e).ok_or_else(unknown)?,
                digits(m).ok_or_else(unknown)?,
            );
            if n != 1 + e + m {
                return Err(bad(format!(
                    "the width must be 1 + E + M = {}, not {n}",
                    1 + e + m
                )));
            }
            if e == 11 && m == 52 {
                return Ok(DType::F64);
            }
            if !(1..=8).contains(&e) || m > 23 {
                return Err(bad(format!(
                    "floats need 1 <= E <= 8 and M <= 23, got E = {e}, M = {m}"
                )));
            }
            let family = FloatFamily::for_signed_width(n, e);
            return FloatFormat::new(e, m, true, family)
                .map(DType::Float)
                .map_err(|err| bad(err.to_string()));
        }
        Err(unknown())
    }

    /// Width of a code in bits.
    pub fn bits(&self) -> u32 {
        match self {
            DType::UInt(b) | DType::Int(b) => u32::from(*b),
            DType::Float(f) => f.bits(),
        }
    }

    /// Whether this is a float format.
    pub fn is_float(&self) -> bool {
        matches!(self, DType::Float(_))
    }

    /// Whether this is an integer type.
    pub fn is_int(&self) -> bool {
        matches!(self, DType::UInt(_) | DType::Int(_))
    }

    /// Whether negative values are representable.
    pub fn is_signed(&self) -> bool {
        match self {
            DType::UInt(_) => false,
            DType::Int(_) => true,
            DType::Float(f) => f.signed(),
        }
    }

    /// The float format, if this is a float.
    pub fn float_format(&self) -> Option<FloatFormat> {
        match self {
            DType::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// Mask of the low `bits()` bits.
    pub fn code_mask(&self) -> u64 {
        mask(self.bits())
    }

    /// The exact value of a code (only the low `bits()` bits are read). Integers are
    /// sign-extended; float specials decode to ±Inf and NaN.
    pub fn decode(&self, code: u64) -> f64 {
        match self {
            DType::UInt(b) => (code & mask(u32::from(*b))) as f64,
            DType::Int(b) => int::sign_extend(code, u32::from(*b)) as f64,
            DType::Float(f) => f.decode(code),
        }
    }

    /// Rounds `x` to this type; the code is in the low `bits()` bits (see the crate docs for
    /// every rule).
    pub fn encode(&self, x: f64, rounding: Rounding, overflow: Overflow) -> u64 {
        match self {
            DType::UInt(b) => int::encode(x, u32::from(*b), false, rounding, overflow),
            DType::Int(b) => int::encode(x, u32::from(*b), true, rounding, overflow),
            DType::Float(f) => f.encode(x, rounding, overflow),
        }
    }

    /// [`DType::encode`] of an `f32` (exact widening, so the same result).
    pub fn encode_f32(&self, x: f32, rounding: Rounding, overflow: Overflow) -> u64 {
        self.encode(f64::from(x), rounding, overflow)
    }

    /// The largest finite value.
    pub fn max_finite(&self) -> f64 {
        match self {
            DType::UInt(b) => mask(u32::from(*b)) as f64,
            DType::Int(b) => (mask(u32::from(*b)) >> 1) as f64,
            DType::Float(f) => f.max_finite(),
        }
    }

    /// The smallest (most negative) finite value: −max for signed floats, 0 for unsigned
    /// formats, 2^−127 for `e8m0`, −2^(b−1) for `i{b}`.
    pub fn min_finite(&self) -> f64 {
        match self {
            DType::UInt(_) => 0.0,
            DType::Int(b) => -((1u64 << (b - 1)) as f64),
            DType::Float(f) => f.min_finite(),
        }
    }

    /// Converts a code of this type to a code of `to` (decode exactly, then encode).
    pub fn convert(&self, code: u64, to: &DType, rounding: Rounding, overflow: Overflow) -> u64 {
        to.encode(self.decode(code), rounding, overflow)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DType::UInt(b) => write!(f, "u{b}"),
            DType::Int(b) => write!(f, "i{b}"),
            DType::Float(format) => write!(f, "{format}"),
        }
    }
}

impl std::str::FromStr for DType {
    type Err = DTypeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DType::parse(s)
    }
}

fn int_width(bits: u32) -> Result<u8, String> {
    if (1..=32).contains(&bits) {
        Ok(bits as u8)
    } else {
        Err(format!("integers have 1..=32 bits, not {bits}"))
    }
}

/// Mask of the low `bits` bits (`bits` ≤ 64).
pub(crate) fn mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// 2^k as an f64, exact for −1074 ≤ k ≤ 1023.
pub(crate) fn pow2(k: i32) -> f64 {
    if k >= -1022 {
        f64::from_bits(((k + 1023) as u64) << 52)
    } else {
        f64::from_bits(1u64 << (k + 1074))
    }
}
