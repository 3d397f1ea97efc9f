//! Value types of the SIMT IR: scalars, short vectors and the two pointer kinds.
//!
//! Every value of one thread fits in 128 bits (the widest vector access is 16 bytes), which is
//! what lets the emulator keep one `u128` per value per lane. Half-precision floats have no type
//! of their own: an f16 or bf16 is an `i16` bit pattern and `f16x2` is `i16x2`; the instructions
//! that do half arithmetic name the format ([`HalfFormat`]).
//!
//! This module knows nothing of instructions.

use std::fmt;

/// A scalar type. Floats are IEEE binary32/binary64; integers have no signedness (operations say
/// how they read their bits, as in PTX's `.b32` registers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scalar {
    /// A predicate (`.pred`), one bit; stored as 0 or 1.
    Pred,
    /// 8-bit integer.
    I8,
    /// 16-bit integer; also the carrier of one f16 or bf16.
    I16,
    /// 32-bit integer.
    I32,
    /// 64-bit integer.
    I64,
    /// IEEE binary32.
    F32,
    /// IEEE binary64.
    F64,
}

impl Scalar {
    /// Width in bits (1 for a predicate).
    pub fn bits(self) -> u32 {
        match self {
            Scalar::Pred => 1,
            Scalar::I8 => 8,
            Scalar::I16 => 16,
            Scalar::I32 | Scalar::F32 => 32,
            Scalar::I64 | Scalar::F64 => 64,
        }
    }

    /// Size in bytes when stored in memory (a predicate cannot be stored: `None`).
    pub fn bytes(self) -> Option<u32> {
        match self {
            Scalar::Pred => None,
            s => Some(s.bits() / 8),
        }
    }

    /// True for the integer types (not predicates, not floats).
    pub fn is_int(self) -> bool {
        matches!(self, Scalar::I8 | Scalar::I16 | Scalar::I32 | Scalar::I64)
    }

    /// True for f32 and f64.
    pub fn is_float(self) -> bool {
        matches!(self, Scalar::F32 | Scalar::F64)
    }

    /// The mask of the low `bits()` bits.
    pub fn mask(self) -> u128 {
        (1u128 << self.bits()) - 1
    }

    fn name(self) -> &'static str {
        match self {
            Scalar::Pred => "pred",
            Scalar::I8 => "i8",
            Scalar::I16 => "i16",
            Scalar::I32 => "i32",
            Scalar::I64 => "i64",
            Scalar::F32 => "f32",
            Scalar::F64 => "f64",
        }
    }
}

/// Which address space a pointer points into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Space {
    /// Device global memory; pointers are 64-bit byte addresses.
    Global,
    /// The block's shared memory; pointers are 32-bit byte offsets from the block's shared
    /// window, which starts 128-byte aligned.
    Shared,
}

impl fmt::Display for Space {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Space::Global => "global",
            Space::Shared => "shared",
        })
    }
}

/// The type of an SSA value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    /// A scalar.
    Scalar(Scalar),
    /// A vector of 2 or 4 lanes of a non-predicate scalar, at most 128 bits in all.
    Vector(Scalar, u8),
    /// A pointer into global (64-bit) or shared (32-bit) memory.
    Ptr(Space),
}

/// Short names for the common types.
impl Type {
    /// `pred`.
    pub const PRED: Type = Type::Scalar(Scalar::Pred);
    /// `i8`.
    pub const I8: Type = Type::Scalar(Scalar::I8);
    /// `i16`.
    pub const I16: Type = Type::Scalar(Scalar::I16);
    /// `i32`.
    pub const I32: Type = Type::Scalar(Scalar::I32);
    /// `i64`.
    pub const I64: Type = Type::Scalar(Scalar::I64);
    /// `f32`.
    pub const F32: Type = Type::Scalar(Scalar::F32);
    /// `f64`.
    pub const F64: Type = Type::Scalar(Scalar::F64);
    /// `ptr.global`.
    pub const GLOBAL_PTR: Type = Type::Ptr(Space::Global);
    /// `ptr.shared`.
    pub const SHARED_PTR: Type = Type::Ptr(Space::Shared);

    /// A vector type `elem x lanes`.
    pub fn vector(elem: Scalar, lanes: u8) -> Type {
        Type::Vector(elem, lanes)
    }

    /// The element (lane) scalar type; pointers count as their integer width.
    pub fn elem(self) -> Scalar {
        match self {
            Type::Scalar(s) | Type::Vector(s, _) => s,
            Type::Ptr(Space::Global) => Scalar::I64,
            Type::Ptr(Space::Shared) => Scalar::I32,
        }
    }

    /// Number of lanes (1 for scalars and pointers).
    pub fn lanes(self) -> u32 {
        match self {
            Type::Vector(_, n) => n as u32,
            _ => 1,
        }
    }

    /// Total width in bits.
    pub fn bits(self) -> u32 {
        self.elem().bits() * self.lanes()
    }

    /// Size in bytes when loaded or stored (`None` for predicates).
    pub fn bytes(self) -> Option<u32> {
        match self {
            Type::Scalar(Scalar::Pred) | Type::Vector(Scalar::Pred, _) => None,
            t => Some(t.bits() / 8),
        }
    }

    /// True for a scalar integer type or a pointer (things usable as integers in address math).
    pub fn is_int_scalar(self) -> bool {
        matches!(self, Type::Scalar(s) if s.is_int())
    }

    /// Whether the type is well formed: vectors have 2 or 4 non-predicate lanes and fit 128 bits.
    pub fn is_valid(self) -> bool {
        match self {
            Type::Vector(s, n) => s != Scalar::Pred && (n == 2 || n == 4) && s.bits() * n as u32 <= 128,
            _ => true,
        }
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Scalar(s) => write!(f, "{s}"),
            Type::Vector(s, n) => write!(f, "{s}x{n}"),
            Type::Ptr(space) => write!(f, "ptr.{space}"),
        }
    }
}

/// The 16-bit float format that half-precision instructions read from `i16` lanes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HalfFormat {
    /// IEEE binary16 (1-5-10).
    F16,
    /// bfloat16 (1-8-7).
    BF16,
}

impl fmt::Display for HalfFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HalfFormat::F16 => "f16",
            HalfFormat::BF16 => "bf16",
        })
    }
}

/// The 8-bit float format of the fp8 conversions and the fp8 `mma`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fp8Format {
    /// OCP E4M3 ("fn": no infinities, NaN only at S.1111.111, max 448).
    E4M3,
    /// OCP E5M2 (IEEE-like: infinities and NaNs, max 57344).
    E5M2,
}

impl fmt::Display for Fp8Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fp8Format::E4M3 => "e4m3",
            Fp8Format::E5M2 => "e5m2",
        })
    }
}
