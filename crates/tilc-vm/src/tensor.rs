//! Host tensors: what a kernel's global parameters are bound to when it runs on the host.
//!
//! A [`HostTensor`] holds one code per element (the low `dtype.bits()` bits of a `u64`), in
//! row-major order. That is the unpacked form; [`HostTensor::to_packed`] and
//! [`HostTensor::from_packed`] convert to and from the packed little-endian bit stream that is
//! the tensor's global-memory image (see `tilc_dtype::pack`). File formats live in the root crate.

use tilc_dtype::{DType, Overflow, Rounding};

/// A tensor on the host: element type, shape and one code per element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostTensor {
    /// Element type.
    pub dtype: DType,
    /// Extents, outermost first (empty for a 0-d tensor holding one element).
    pub shape: Vec<usize>,
    /// Row-major codes. Invariant: `codes.len() == shape.iter().product()` and every code fits
    /// in `dtype.bits()` bits.
    pub codes: Vec<u64>,
}

impl HostTensor {
    /// A tensor of all-zero codes.
    pub fn zeros(dtype: DType, shape: Vec<usize>) -> HostTensor {
        let n = shape.iter().product();
        HostTensor { dtype, shape, codes: vec![0; n] }
    }

    /// A tensor with every element the same code.
    pub fn filled(dtype: DType, shape: Vec<usize>, code: u64) -> HostTensor {
        let n = shape.iter().product();
        HostTensor { dtype, shape, codes: vec![code & dtype.code_mask(); n] }
    }

    /// A tensor of `values` rounded to `dtype` (nearest-even, saturating).
    pub fn from_f64(dtype: DType, shape: Vec<usize>, values: &[f64]) -> HostTensor {
        let codes = values.iter().map(|&x| dtype.encode(x, Rounding::NearestEven, Overflow::Saturate)).collect();
        HostTensor { dtype, shape, codes }
    }

    /// The exact value of every element.
    pub fn to_f64(&self) -> Vec<f64> {
        self.codes.iter().map(|&c| self.dtype.decode(c)).collect()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The packed global-memory image (little-endian bit stream, zero-padded last byte).
    pub fn to_packed(&self) -> Vec<u8> {
        tilc_dtype::pack::pack(&self.codes, self.dtype.bits())
    }

    /// A tensor from its packed image; `None` when `bytes` is too short.
    pub fn from_packed(dtype: DType, shape: Vec<usize>, bytes: &[u8]) -> Option<HostTensor> {
        let n: usize = shape.iter().product();
        let need = (n * dtype.bits() as usize).div_ceil(8);
        if bytes.len() < need {
            return None;
        }
        let codes = tilc_dtype::pack::unpack(bytes, dtype.bits(), n);
        Some(HostTensor { dtype, shape, codes })
    }
}

/// A value bound to one kernel parameter.
#[derive(Clone, Debug, PartialEq)]
pub enum ArgValue {
    /// An integer scalar (also `u1`: 0 or 1).
    Int(i64),
    /// A float scalar.
    Float(f64),
    /// A global tensor.
    Tensor(HostTensor),
}

/// A deterministic generator for test and `--random` inputs (SplitMix64): the same seed gives
/// the same numbers on every machine.
#[derive(Clone, Debug)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A random tensor for testing: integers uniform over the type's whole range; signed floats
/// uniform in [−1, 1] rounded to nearest; unsigned floats (scales) 2^u with u uniform in [−4, 4]
/// rounded to nearest. Reproducible from `seed`.
pub fn random_tensor(dtype: DType, shape: Vec<usize>, seed: u64) -> HostTensor {
    let mut rng = SplitMix64(seed);
    let n: usize = shape.iter().product();
    let codes = (0..n)
        .map(|_| match dtype {
            DType::UInt(_) | DType::Int(_) => rng.next_u64() & dtype.code_mask(),
            DType::Float(_) => {
                let x = if dtype.is_signed() { rng.next_f64() * 2.0 - 1.0 } else { (rng.next_f64() * 8.0 - 4.0).exp2() };
                dtype.encode(x, Rounding::NearestEven, Overflow::Saturate)
            }
        })
        .collect();
    HostTensor { dtype, shape, codes }
}
