//! [`Tensor`]: a host tensor of any element type, stored packed — `u3` takes 3 bits per
//! element, `f4e2m1` 4 — in the same little-endian bit stream as a kernel's global memory
//! (`tilc_dtype::pack`), so that the CPU backend reads and writes it in place.
//!
//! Conversions go through exact values: [`Tensor::from_f32`] / [`Tensor::from_f64`] /
//! [`Tensor::from_array`] round each value to the element type (nearest-even, saturating at the
//! type's largest finite value; NaN becomes 0 in integer types), and [`Tensor::to_f64_vec`] /
//! [`Tensor::to_array`] decode exactly (`to_f32_vec` then rounds to f32, which is exact for every
//! type of at most 24 significant bits). `.npy` files use [`crate::io`]'s conventions.

use crate::{Error, Result};
use ndarray::{ArrayBase, ArrayD, Data, Dimension, IxDyn};
use std::fmt;
use std::path::Path;
use tilc_dtype::{DType, Overflow, Rounding};
use tilc_vm::HostTensor;

/// Bytes after the packed image: compiled code reads whole 64-bit words around sub-byte
/// elements.
const PADDING: usize = tilc_cpu::TENSOR_PADDING;

/// A tensor on the host: element type, shape (row-major) and packed storage.
#[derive(Clone, PartialEq, Eq)]
pub struct Tensor {
    dtype: DType,
    shape: Vec<usize>,
    /// The packed image followed by `PADDING` zero bytes. Invariant: the length is
    /// `packed_len(numel, bits) + PADDING` and the bits past the last element are zero.
    data: Vec<u8>,
}

/// An element type of host arrays that tensors convert from and to (`f32`, `f64`).
pub trait HostScalar: Copy + 'static {
    /// The exact value as f64.
    fn to_f64(self) -> f64;
    /// `x` rounded to this type (nearest-even).
    fn from_f64(x: f64) -> Self;
}

impl HostScalar for f32 {
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    fn from_f64(x: f64) -> f32 {
        x as f32
    }
}

impl HostScalar for f64 {
    fn to_f64(self) -> f64 {
        self
    }
    fn from_f64(x: f64) -> f64 {
        x
    }
}

/// Elements and packed bytes of `shape` in `dtype`, or an error when they overflow `usize`.
fn sizes(dtype: DType, shape: &[usize]) -> Result<(usize, usize)> {
    let numel = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    let bytes = numel.and_then(|n| n.checked_mul(dtype.bits() as usize)).map(|b| b.div_ceil(8)).filter(|b| b.checked_add(PADDING).is_some());
    match (numel, bytes) {
        (Some(n), Some(b)) => Ok((n, b)),
        _ => Err(Error::Tensor(format!("a `{dtype}` tensor of shape {shape:?} is too large to address"))),
    }
}

impl Tensor {
    /// A tensor of all-zero codes (the value 0 for every type that has it).
    pub fn zeros(dtype: DType, shape: &[usize]) -> Result<Tensor> {
        let (_, bytes) = sizes(dtype, shape)?;
        Ok(Tensor { dtype, shape: shape.to_vec(), data: vec![0; bytes + PADDING] })
    }

    /// A tensor from one code per element (the low `dtype.bits()` bits of each `u64`); a code
    /// with higher bits set is an error.
    pub fn from_codes(dtype: DType, shape: &[usize], codes: &[u64]) -> Result<Tensor> {
        let (numel, bytes) = sizes(dtype, shape)?;
        if codes.len() != numel {
            return Err(Error::Tensor(format!("{} codes do not fill shape {shape:?} ({numel} elements)", codes.len())));
        }
        if let Some(i) = codes.iter().position(|&c| c & !dtype.code_mask() != 0) {
            return Err(Error::Tensor(format!("code {:#x} at element {i} does not fit `{dtype}` ({} bits)", codes[i], dtype.bits())));
        }
        let mut data = vec![0; bytes + PADDING];
        tilc_dtype::pack::pack_into(codes, dtype.bits(), &mut data[..bytes]);
        Ok(Tensor { dtype, shape: shape.to_vec(), data })
    }

    /// A tensor from its packed image (tilc's bit stream); `bytes` must be exactly as long as
    /// the shape needs.
    pub fn from_packed(dtype: DType, shape: &[usize], bytes: &[u8]) -> Result<Tensor> {
        let (numel, need) = sizes(dtype, shape)?;
        if bytes.len() != need {
            return Err(Error::Tensor(format!("{} packed bytes for a `{dtype}` tensor of shape {shape:?}, which takes {need}", bytes.len())));
        }
        // Clear the bits past the last element so that equal tensors compare equal.
        let codes = tilc_dtype::pack::unpack(bytes, dtype.bits(), numel);
        Tensor::from_codes(dtype, shape, &codes)
    }

    /// `values` (row-major) rounded to `dtype`.
    pub fn from_f32(dtype: DType, shape: &[usize], values: &[f32]) -> Result<Tensor> {
        Tensor::from_values(dtype, shape, values)
    }

    /// `values` (row-major) rounded to `dtype`.
    pub fn from_f64(dtype: DType, shape: &[usize], values: &[f64]) -> Result<Tensor> {
        Tensor::from_values(dtype, shape, values)
    }

    fn from_values<T: HostScalar>(dtype: DType, shape: &[usize], values: &[T]) -> Result<Tensor> {
        let (numel, _) = sizes(dtype, shape)?;
        if values.len() != numel {
            return Err(Error::Tensor(format!("{} values do not fill shape {shape:?} ({numel} elements)", values.len())));
        }
        let codes: Vec<u64> = values.iter().map(|v| dtype.encode(v.to_f64(), Rounding::NearestEven, Overflow::Saturate)).collect();
        Tensor::from_codes(dtype, shape, &codes)
    }

    /// An n-dimensional array (any layout, any rank) rounded to `dtype`.
    pub fn from_array<T: HostScalar, S: Data<Elem = T>, D: Dimension>(dtype: DType, array: &ArrayBase<S, D>) -> Result<Tensor> {
        let values: Vec<T> = array.iter().copied().collect();
        Tensor::from_values(dtype, array.shape(), &values)
    }

    /// Seeded random values: integers uniform over the type's range, signed floats uniform in
    /// [−1, 1], unsigned floats (scales) 2^u with u uniform in [−4, 4] — the inputs of
    /// `tilc run --random`.
    pub fn random(dtype: DType, shape: &[usize], seed: u64) -> Result<Tensor> {
        sizes(dtype, shape)?;
        Ok(Tensor::from_host(&tilc_vm::random_tensor(dtype, shape.to_vec(), seed)))
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The extents, outermost first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The packed image: `ceil(numel · bits / 8)` bytes.
    pub fn packed(&self) -> &[u8] {
        &self.data[..self.data.len() - PADDING]
    }

    /// The code of every element, row-major.
    pub fn codes(&self) -> Vec<u64> {
        tilc_dtype::pack::unpack(self.packed(), self.dtype.bits(), self.numel())
    }

    /// The code of element `index` (row-major position), if it exists.
    pub fn code(&self, index: usize) -> Option<u64> {
        if index >= self.numel() {
            return None;
        }
        let bits = self.dtype.bits() as usize;
        let first = index * bits;
        let mut word = [0u8; 8];
        // A code of at most 32 bits starting anywhere in a byte fits in the 8 bytes from that
        // byte on (the padding makes them exist).
        word.copy_from_slice(&self.data[first / 8..first / 8 + 8]);
        Some((u64::from_le_bytes(word) >> (first % 8)) & self.dtype.code_mask())
    }

    /// The exact value of element `[i, j, …]`, if the index is inside the tensor.
    pub fn get(&self, index: &[usize]) -> Option<f64> {
        if index.len() != self.shape.len() || index.iter().zip(&self.shape).any(|(i, d)| i >= d) {
            return None;
        }
        let flat = index.iter().zip(&self.shape).fold(0, |acc, (i, d)| acc * d + i);
        self.code(flat).map(|c| self.dtype.decode(c))
    }

    /// Every element's exact value, row-major.
    pub fn to_f64_vec(&self) -> Vec<f64> {
        self.codes().into_iter().map(|c| self.dtype.decode(c)).collect()
    }

    /// Every element's value rounded to f32 (exact for types of at most 24 significant bits).
    pub fn to_f32_vec(&self) -> Vec<f32> {
        self.codes().into_iter().map(|c| self.dtype.decode(c) as f32).collect()
    }

    /// The values as an n-dimensional array of f32 or f64.
    pub fn to_array<T: HostScalar>(&self) -> ArrayD<T> {
        let values: Vec<T> = self.codes().into_iter().map(|c| T::from_f64(self.dtype.decode(c))).collect();
        ArrayD::from_shape_vec(IxDyn(&self.shape), values).expect("the shape holds numel values")
    }

    /// The same elements read as another shape with the same number of elements.
    pub fn reshape(mut self, shape: &[usize]) -> Result<Tensor> {
        let (numel, _) = sizes(self.dtype, shape)?;
        if numel != self.numel() {
            return Err(Error::Tensor(format!("cannot reshape {:?} ({} elements) to {shape:?} ({numel})", self.shape, self.numel())));
        }
        self.shape = shape.to_vec();
        Ok(self)
    }

    /// Reads a `.npy` file as a tensor of `dtype`: a file of that type is taken as is, any
    /// other numeric file value by value when every value is exactly representable (a `u3`
    /// tensor loads from the `uint8` file `save_npy` writes).
    pub fn load_npy(path: impl AsRef<Path>, dtype: DType) -> Result<Tensor> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let raw = crate::io::read_npy(&bytes).map_err(|m| Error::Tensor(format!("`{}`: {m}", path.display())))?;
        let host = crate::io::to_tensor(&raw, dtype, false, None).map_err(|m| Error::Tensor(format!("`{}`: {m}", path.display())))?;
        Ok(Tensor::from_host(&host))
    }

    /// Writes a `.npy` file: natively for types NumPy has (`i8`…, `f16`, `f32`, `f64`, `bool`),
    /// else the exact values in the smallest NumPy type that holds them (`u3` as `uint8`,
    /// `f6e3m2` as `float32`).
    pub fn save_npy(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        std::fs::write(path, crate::io::write_npy(&self.to_host(), false)).map_err(|e| Error::io(path, e))
    }

    /// The interpreter's unpacked form.
    pub fn to_host(&self) -> HostTensor {
        HostTensor { dtype: self.dtype, shape: self.shape.clone(), codes: self.codes() }
    }

    /// From the interpreter's unpacked form.
    pub fn from_host(t: &HostTensor) -> Tensor {
        let n = tilc_dtype::pack::packed_len(t.codes.len(), t.dtype.bits());
        let mut data = vec![0u8; n + PADDING];
        tilc_dtype::pack::pack_into(&t.codes, t.dtype.bits(), &mut data[..n]);
        Tensor { dtype: t.dtype, shape: t.shape.clone(), data }
    }

    /// The storage with its padding, for the CPU backend.
    pub(crate) fn buffer(&self) -> &[u8] {
        &self.data
    }

    /// The shape, and the storage with its padding, for the CPU backend.
    pub(crate) fn shape_and_buffer_mut(&mut self) -> (&[usize], &mut [u8]) {
        (&self.shape, &mut self.data)
    }

    /// Replaces the codes after an interpreter run (same dtype and shape).
    pub(crate) fn set_from_host(&mut self, t: &HostTensor) {
        *self = Tensor::from_host(t);
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.numel();
        let shown: Vec<String> = (0..n.min(8)).filter_map(|i| self.code(i)).map(|c| format!("{}", self.dtype.decode(c))).collect();
        write!(f, "Tensor<{}>{:?} [{}{}]", self.dtype, self.shape, shown.join(", "), if n > 8 { ", …" } else { "" })
    }
}
