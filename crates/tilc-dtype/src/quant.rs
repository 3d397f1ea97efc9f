//! Host quantizers and dequantizers for 2-D f32 tensors: integer formats of 1..=8 bits
//! (symmetric, or asymmetric with a zero point) per tensor, per channel or per group; any float
//! format with a per-group scale; OCP MX (MXFP8/6/4, MXINT8); NVFP4. Knows the formats and the
//! packing of this crate and nothing else of tilc.
//!
//! # Layouts
//!
//! The input is a row-major `[rows, cols]` f32 matrix. Every result is a [`Quantized`]:
//!
//! * `codes`: the element codes, packed by [`crate::pack`] as one little-endian bit stream of
//!   `element.bits()` bits per element in row-major order (element (r, c) is stream element
//!   `r·cols + c`).
//! * Blocks: the matrix is cut into `block = [bh, bw]` tiles; each block has one scale (and one
//!   zero point). `scale_shape = [rows / bh, cols / bw]`, row-major; element (r, c) uses scale
//!   `(r / bh)·(cols / bw) + c / bw`. [`Granularity`] picks the block: per tensor
//!   `[rows, cols]` (scale shape `[1, 1]`); per channel along axis 0 `[rows, 1]` (one scale per
//!   column, shape `[1, cols]`: the usual per-output-channel scale of a `[k, n]` weight) or along
//!   axis 1 `[1, cols]` (one per row, shape `[rows, 1]`); per group of G along axis 0 `[G, 1]`
//!   (shape `[rows / G, cols]`, the `w: u3[k, n]`, `w_scale: f16[k / G, n]` layout) or along
//!   axis 1 `[1, G]` (shape `[rows, cols / G]`). MX uses `[1, 32]` and NVFP4 `[1, 16]` (blocks
//!   along the last axis, as `scale: e8m0[rows, cols / 32]`).
//! * `scales`: the scale codes of `scale_dtype`, packed the same way in `scale_shape` order
//!   (f16/bf16: two bytes each little-endian; e8m0/ue4m3: one byte each).
//! * `zero_points` (asymmetric int only): codes of the element type (`u{bits}`) packed in
//!   `scale_shape` order.
//! * `tensor_scale` (NVFP4 only): the f32 per-tensor scale.
//!
//! # Rules
//!
//! * Int symmetric, `i{b}` with b in 2..=8: `s = absmax / (2^(b−1) − 1)`, rounded up to the
//!   scale type; `q = round(x / s)` in [−(2^(b−1) − 1), 2^(b−1) − 1]; `x' = q·s`.
//! * Int asymmetric, `u{b}` with b in 1..=8: the range [min(min, 0), max(max, 0)] (so zero is
//!   exact), `s = (hi − lo) / (2^b − 1)` rounded up to the scale type, `z = round(−lo / s)`,
//!   `q = clamp(round(x / s) + z, 0, 2^b − 1)`; `x' = (q − z)·s`.
//! * Float groups: `s = absmax / max_finite(element)` rounded up to the scale type;
//!   `q = encode(x / s)` saturating; `x' = decode(q)·s`.
//! * Rounding the scale up means the grid always covers the block, so every element's error is
//!   at most half a step of the format at that element (int: s/2). A block whose values are all
//!   zero gets the scale 1.
//! * OCP MX v1.0: per block of 32, `X = 2^(floor(log2(amax)) − emax_elem)` with emax_elem the
//!   exponent of the element format's largest normal (e4m3 8, e5m2 15, e3m2 4, e2m3 2, e2m1 2,
//!   int8 0), the exponent clamped to [−127, 127] (an all-zero block gets 2^−127), stored as
//!   e8m0; a block holding NaN or Inf gets the NaN scale 0xFF. Elements are `V / X` rounded to
//!   nearest even and saturated to the element's max (values above max·X clip, as the
//!   specification's rule accepts). MXINT8 elements are i8 codes of `V / X · 64` (value
//!   `code · 2^−6`), saturated to [−128, 127].
//! * NVFP4: `t = amax_tensor / (6 · 448)` (f32; 1 when the tensor is all zero); per block of
//!   16, scale `sb = ue4m3(amax_block / (6 · t))` rounded to nearest even and saturating; elements
//!   `e2m1(x / (sb · t))`; `x' = e2m1 · sb · t`. Arithmetic is in f64.
//! * Stochastic rounding of elements uses index `r·cols + c` (row-major element index).

use crate::pack::{self, offset_rounding};
use crate::{DType, FloatFormat, Overflow, Rounding};
use std::fmt;

/// Which elements share a scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Granularity {
    /// One scale for the whole tensor.
    PerTensor,
    /// One scale per line along `axis` (0: per column, 1: per row).
    PerChannel { axis: usize },
    /// One scale per `size` consecutive elements along `axis`.
    PerGroup { axis: usize, size: usize },
}

/// How a [`Quantized`] tensor was made, which says how to dequantize it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Integer codes times a scale; asymmetric ones subtract a zero point first.
    Int { symmetric: bool },
    /// Float codes times a scale.
    Float,
    /// OCP MX: float or int8 codes times a power-of-two e8m0 scale per 32.
    Mx(MxElement),
    /// NVFP4: e2m1 codes times a ue4m3 scale per 16 times an f32 tensor scale.
    Nvfp4,
}

/// The element formats of OCP MX v1.0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MxElement {
    /// MXFP8 with e4m3 elements.
    Fp8E4M3,
    /// MXFP8 with e5m2 elements.
    Fp8E5M2,
    /// MXFP6 with e3m2 elements.
    Fp6E3M2,
    /// MXFP6 with e2m3 elements.
    Fp6E2M3,
    /// MXFP4 with e2m1 elements.
    Fp4E2M1,
    /// MXINT8: i8 codes with an implicit 2^−6.
    Int8,
}

impl MxElement {
    /// The element type of the codes.
    pub fn dtype(self) -> DType {
        DType::Float(match self {
            MxElement::Fp8E4M3 => FloatFormat::F8E4M3,
            MxElement::Fp8E5M2 => FloatFormat::F8E5M2,
            MxElement::Fp6E3M2 => FloatFormat::F6E3M2,
            MxElement::Fp6E2M3 => FloatFormat::F6E2M3,
            MxElement::Fp4E2M1 => FloatFormat::F4E2M1,
            MxElement::Int8 => return DType::Int(8),
        })
    }

    /// The exponent of the largest normal element value (`emax_elem` of the specification).
    pub fn emax(self) -> i32 {
        match self {
            MxElement::Int8 => 0,
            other => other.dtype().max_finite().log2().floor() as i32,
        }
    }
}

/// A quantized 2-D tensor (layouts in the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct Quantized {
    /// How to dequantize.
    pub scheme: Scheme,
    /// `[rows, cols]`.
    pub shape: [usize; 2],
    /// Element type of `codes`.
    pub element: DType,
    /// Packed element codes, row-major.
    pub codes: Vec<u8>,
    /// `[bh, bw]`: the elements sharing one scale.
    pub block: [usize; 2],
    /// `[rows / bh, cols / bw]`.
    pub scale_shape: [usize; 2],
    /// Type of the scale codes.
    pub scale_dtype: DType,
    /// Packed scale codes, row-major over `scale_shape`.
    pub scales: Vec<u8>,
    /// Packed zero-point codes (type `element`), row-major over `scale_shape`.
    pub zero_points: Option<Vec<u8>>,
    /// NVFP4's per-tensor scale.
    pub tensor_scale: Option<f32>,
}

/// Why a tensor cannot be quantized as asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QuantError {
    /// The data length is not rows × cols.
    ShapeMismatch { len: usize, shape: [usize; 2] },
    /// An axis other than 0 or 1.
    BadAxis(usize),
    /// The block size does not divide the tensor's extent along its axis (or is 0).
    BlockDoesNotDivide {
        axis: usize,
        size: usize,
        extent: usize,
    },
    /// An integer width the scheme does not support.
    BadBits { bits: u32, supported: &'static str },
    /// A type that must be a float is not.
    NotAFloat(DType),
}

impl fmt::Display for QuantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuantError::ShapeMismatch { len, shape } => write!(
                f,
                "{len} values do not form a [{}, {}] matrix ({} values)",
                shape[0],
                shape[1],
                shape[0] * shape[1]
            ),
            QuantError::BadAxis(axis) => write!(f, "axis {axis} does not exist (use 0 or 1)"),
            QuantError::BlockDoesNotDivide { axis, size, extent } => write!(
                f,
                "a block of {size} along axis {axis} does not divide its extent {extent}"
            ),
            QuantError::BadBits { bits, supported } => {
                write!(
                    f,
                    "{bits}-bit codes are not supported here (supported: {supported})"
                )
            }
            QuantError::NotAFloat(d) => write!(f, "`{d}` is not a float type"),
        }
    }
}

impl std::error::Error for QuantError {}

/// Settings of [`quantize_int`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IntConfig {
    /// Code width: 2..=8 symmetric, 1..=8 asymmetric.
    pub bits: u32,
    /// Symmetric (`i{bits}`, no zero point) or asymmetric (`u{bits}` with a zero point).
    pub symmetric: bool,
    /// Which elements share a scale.
    pub granularity: Granularity,
    /// Type of the scales (f32, f16, bf16 or any float).
    pub scale_dtype: DType,
    /// Rounding of the elements.
    pub rounding: Rounding,
}

impl IntConfig {
    /// Round-to-nearest-even int quantization with f16 scales.
    pub fn new(bits: u32, symmetric: bool, granularity: Granularity) -> IntConfig {
        IntConfig {
            bits,
            symmetric,
            granularity,
            scale_dtype: DType::F16,
            rounding: Rounding::NearestEven,
        }
    }
}

fn check_shape(x: &[f32], shape: [usize; 2]) -> Result<(), QuantError> {
    if x.len() != shape[0] * shape[1] {
        return Err(QuantError::ShapeMismatch {
            len: x.len(),
            shape,
        });
    }
    Ok(())
}

fn block_of(granularity: Granularity, shape: [usize; 2]) -> Result<[usize; 2], QuantError> {
    let [rows, cols] = shape;
    let block = match granularity {
        Granularity::PerTensor => [rows, cols],
        Granularity::PerChannel { axis: 0 } => [rows, 1],
        Granularity::PerChannel { axis: 1 } => [1, cols],
        Granularity::PerGroup { axis: 0, size } => [size, 1],
        Granularity::PerGroup { axis: 1, size } => [1, size],
        Granularity::PerChannel { axis } | Granularity::PerGroup { axis, .. } => {
            return Err(QuantError::BadAxis(axis));
        }
    };
    for axis in 0..2 {
        let (size, extent) = (block[axis], shape[axis]);
        if extent > 0 && (size == 0 || extent % size != 0) {
            return Err(QuantError::BlockDoesNotDivide { axis, size, extent });
        }
    }
    Ok(block)
}

/// Calls `visit(block index, first flat element index, run of elements)` for every run of
/// consecutive elements of one row inside one block, in row-major order.
fn for_each_run(
    x: &[f32],
    shape: [usize; 2],
    block: [usize; 2],
    mut visit: impl FnMut(usize, usize, &[f32]),
) {
    let [rows, cols] = shape;
    if rows == 0 || cols == 0 {
        return;
    }
    let blocks_per_row = cols / block[1];
    for r in 0..rows {
        let base = (r / block[0]) * blocks_per_row;
        let row = &x[r * cols..(r + 1) * cols];
        for (j, run) in row.chunks(block[1]).enumerate() {
            visit(base + j, r * cols + j * block[1], run);
        }
    }
}

fn scale_shape(shape: [usize; 2], block: [usize; 2]) -> [usize; 2] {
    [
        shape[0].checked_div(block[0]).unwrap_or(0),
        shape[1].checked_div(block[1]).unwrap_or(0),
    ]
}

/// Per-block minimum, maximum and absolute maximum (NaN-propagating for the absmax).
fn block_stats(x: &[f32], shape: [usize; 2], block: [usize; 2]) -> Vec<(f32, f32, f32)> {
    let [sr, sc] = scale_shape(shape, block);
    let mut stats = vec![(f32::INFINITY, f32::NEG_INFINITY, 0f32); sr * sc];
    for_each_run(x, shape, block, |b, _, run| {
        let (mut lo, mut hi, mut amax) = stats[b];
        for &v in run {
            lo = lo.min(v);
            hi = hi.max(v);
            amax = if v.is_nan() || amax.is_nan() {
                f32::NAN
            } else {
                amax.max(v.abs())
            };
        }
        stats[b] = (lo, hi, amax);
    });
    stats
}

/// Packs codes as they come, in chunks whose length is a multiple of 8 (so each chunk starts
/// at a byte boundary) without holding every code at once.
struct CodeSink {
    bits: u32,
    bytes: Vec<u8>,
    pending: Vec<u64>,
    written: usize,
}

impl CodeSink {
    const CHUNK: usize = 1 << 13;

    fn new(bits: u32, n: usize) -> CodeSink {
        CodeSink {
            bits,
            bytes: vec![0; pack::packed_len(n, bits)],
            pending: Vec::with_capacity(Self::CHUNK + 64),
            written: 0,
        }
    }

    fn push(&mut self, code: u64) {
        self.pending.push(code);
        if self.pending.len() >= Self::CHUNK {
            self.flush(Self::CHUNK);
        }
    }

    fn flush(&mut self, count: usize) {
        let start = self.written * self.bits as usize / 8;
        let len = pack::packed_len(count, self.bits);
        pack::pack_into(
            &self.pending[..count],
            self.bits,
            &mut self.bytes[start..start + len],
        );
        self.pending.drain(..count);
        self.written += count;
    }

    fn finish(mut self) -> Vec<u8> {
        self.flush(self.pending.len());
        self.bytes
    }
}

/// The smallest value of `scale_dtype` at or above `s` (saturating), and its code. A zero or
/// non-finite `s` becomes 1.
fn scale_up(s: f64, scale_dtype: &DType) -> (u64, f64) {
    let s = if s > 0.0 && s.is_finite() { s } else { 1.0 };
    let code = scale_dtype.encode(s, Rounding::TowardPositive, Overflow::Saturate);
    (code, scale_dtype.decode(code))
}

/// Integer quantization (rules and layouts in the module docs).
pub fn quantize_int(
    x: &[f32],
    shape: [usize; 2],
    config: &IntConfig,
) -> Result<Quantized, QuantError> {
    check_shape(x, shape)?;
    let bits = config.bits;
    if config.symmetric && !(2..=8).contains(&bits) {
        return Err(QuantError::BadBits {
            bits,
            supported: "2..=8 for symmetric int",
        });
    }
    if !config.symmetric && !(1..=8).contains(&bits) {
        return Err(QuantError::BadBits {
            bits,
            supported: "1..=8 for asymmetric int",
        });
    }
    if !config.scale_dtype.is_float() {
        return Err(QuantError::NotAFloat(config.scale_dtype));
    }
    let block = block_of(config.granularity, shape)?;
    let stats = block_stats(x, shape, block);
    let element = if config.symmetric {
        DType::Int(bits as u8)
    } else {
        DType::UInt(bits as u8)
    };
    let qmax = if config.symmetric {
        (1u64 << (bits - 1)) - 1
    } else {
        (1u64 << bits) - 1
    } as f64;
    let mut scale_codes = Vec::with_capacity(stats.len());
    let mut zero_codes = Vec::with_capacity(stats.len());
    let mut params = Vec::with_capacity(stats.len());
    for &(lo, hi, amax) in &stats {
        let (lo, hi) = (f64::from(lo.min(0.0)), f64::from(hi.max(0.0)));
        let wanted = if config.symmetric {
            f64::from(amax) / qmax
        } else {
            (hi - lo) / qmax
        };
        let (code, s) = scale_up(wanted, &config.scale_dtype);
        let z = if config.symmetric {
            0.0
        } else {
            (-lo / s).round_ties_even().clamp(0.0, qmax)
        };
        scale_codes.push(code);
        zero_codes.push(z as u64);
        params.push((s, z));
    }
    let mut sink = CodeSink::new(bits, x.len());
    let (lo, hi) = (element.min_finite(), element.max_finite());
    let code_mask = element.code_mask();
    for_each_run(x, shape, block, |b, first, run| {
        let (s, z) = params[b];
        if config.rounding == Rounding::NearestEven {
            // The same as `element.encode(.., NearestEven, Saturate)`, inlined for speed (NaN
            // clamps to NaN and converts to 0, as `encode` gives).
            for &v in run {
                let y = crate::int::round_ties_even(f64::from(v) / s + z).clamp(lo, hi);
                sink.push(y as i64 as u64 & code_mask);
            }
            return;
        }
        for (i, &v) in run.iter().enumerate() {
            let rounding = offset_rounding(config.rounding, (first + i) as u64);
            sink.push(element.encode(f64::from(v) / s + z, rounding, Overflow::Saturate));
        }
    });
    Ok(Quantized {
        scheme: Scheme::Int {
            symmetric: config.symmetric,
        },
        shape,
        element,
        codes: sink.finish(),
        block,
        scale_shape: scale_shape(shape, block),
        scale_dtype: config.scale_dtype,
        scales: pack_any(&scale_codes, &config.scale_dtype),
        zero_points: (!config.symmetric).then(|| pack::pack(&zero_codes, bits)),
        tensor_scale: None,
    })
}

/// Float-format quantization with one scale per block (rules and layouts in the module docs).
pub fn quantize_float(
    x: &[f32],
    shape: [usize; 2],
    element: DType,
    granularity: Granularity,
    scale_dtype: DType,
    rounding: Rounding,
) -> Result<Quantized, QuantError> {
    check_shape(x, shape)?;
    let format = element
        .float_format()
        .ok_or(QuantError::NotAFloat(element))?;
    if !scale_dtype.is_float() {
        return Err(QuantError::NotAFloat(scale_dtype));
    }
    if format.bits() > 32 {
        return Err(QuantError::BadBits {
            bits: format.bits(),
            supported: "1..=32-bit element formats",
        });
    }
    let block = block_of(granularity, shape)?;
    let stats = block_stats(x, shape, block);
    let max = format.max_finite();
    let (scale_codes, scales): (Vec<u64>, Vec<f64>) = stats
        .iter()
        .map(|&(_, _, amax)| scale_up(f64::from(amax) / max, &scale_dtype))
        .unzip();
    let mut sink = CodeSink::new(format.bits(), x.len());
    for_each_run(x, shape, block, |b, first, run| {
        let s = scales[b];
        for (i, &v) in run.iter().enumerate() {
            let rounding = offset_rounding(rounding, (first + i) as u64);
            sink.push(format.encode(f64::from(v) / s, rounding, Overflow::Saturate));
        }
    });
    Ok(Quantized {
        scheme: Scheme::Float,
        shape,
        element,
        codes: sink.finish(),
        block,
        scale_shape: scale_shape(shape, block),
        scale_dtype,
        scales: pack_any(&scale_codes, &scale_dtype),
        zero_points: None,
        tensor_scale: None,
    })
}

/// The e8m0 code of an MX block's shared scale under the OCP MX v1.0 rule.
pub fn mx_scale_code(amax: f32, element: MxElement) -> u64 {
    if !amax.is_finite() {
        return 0xFF;
    }
    if amax == 0.0 {
        return 0;
    }
    let exponent = floor_log2(f64::from(amax)) - element.emax();
    (exponent.clamp(-127, 127) + 127) as u64
}

/// floor(log2(x)) of a positive finite x, exactly.
fn floor_log2(x: f64) -> i32 {
    let bits = x.to_bits();
    let exp_field = (bits >> 52) as i32;
    if exp_field == 0 {
        let significand = bits & ((1u64 << 52) - 1);
        63 - significand.leading_zeros() as i32 - 1074
    } else {
        exp_field - 1023
    }
}

/// OCP MX quantization: blocks of 32 along the last axis (rules in the module docs).
pub fn quantize_mx(
    x: &[f32],
    shape: [usize; 2],
    element: MxElement,
) -> Result<Quantized, QuantError> {
    check_shape(x, shape)?;
    let block = block_of(Granularity::PerGroup { axis: 1, size: 32 }, shape)?;
    let stats = block_stats(x, shape, block);
    let scale_codes: Vec<u64> = stats
        .iter()
        .map(|&(_, _, amax)| mx_scale_code(amax, element))
        .collect();
    let e8m0 = DType::Float(FloatFormat::E8M0);
    let dtype = element.dtype();
    // Dividing by a power of two is exact; MXINT8 folds in its implicit 2^−6.
    let inverse: Vec<f64> = scale_codes
        .iter()
        .map(|&c| {
            let unit = if element == MxElement::Int8 {
                64.0
            } else {
                1.0
            };
            unit / e8m0.decode(c)
        })
        .collect();
    let mut sink = CodeSink::new(dtype.bits(), x.len());
    for_each_run(x, shape, block, |b, _, run| {
        for &v in run {
            sink.push(dtype.encode(
                f64::from(v) * inverse[b],
                Rounding::NearestEven,
                Overflow::Saturate,
            ));
        }
    });
    Ok(Quantized {
        scheme: Scheme::Mx(element),
        shape,
        element: dtype,
        codes: sink.finish(),
        block,
        scale_shape: scale_shape(shape, block),
        scale_dtype: e8m0,
        scales: pack::pack(&scale_codes, 8),
        zero_points: None,
        tensor_scale: None,
    })
}

/// NVFP4 quantization: blocks of 16 along the last axis (rules in the module docs).
pub fn quantize_nvfp4(x: &[f32], shape: [usize; 2]) -> Result<Quantized, QuantError> {
    check_shape(x, shape)?;
    let block = block_of(Granularity::PerGroup { axis: 1, size: 16 }, shape)?;
    let stats = block_stats(x, shape, block);
    let amax = stats.iter().fold(0f32, |m, s| m.max(s.2));
    let t = amax / (6.0 * 448.0);
    let t = if t > 0.0 && t.is_finite() { t } else { 1.0 };
    let ue4m3 = DType::Float(FloatFormat::UE4M3);
    let fp4 = FloatFormat::F4E2M1;
    let scale_codes: Vec<u64> = stats
        .iter()
        .map(|&(_, _, a)| {
            ue4m3.encode(
                f64::from(a) / (6.0 * f64::from(t)),
                Rounding::NearestEven,
                Overflow::Saturate,
            )
        })
        .collect();
    let steps: Vec<f64> = scale_codes
        .iter()
        .map(|&c| ue4m3.decode(c) * f64::from(t))
        .collect();
    let mut sink = CodeSink::new(4, x.len());
    for_each_run(x, shape, block, |b, _, run| {
        let step = steps[b];
        for &v in run {
            let code = if step > 0.0 && step.is_finite() {
                fp4.encode(
                    f64::from(v) / step,
                    Rounding::NearestEven,
                    Overflow::Saturate,
                )
            } else {
                0
            };
            sink.push(code);
        }
    });
    Ok(Quantized {
        scheme: Scheme::Nvfp4,
        shape,
        element: DType::Float(fp4),
        codes: sink.finish(),
        block,
        scale_shape: scale_shape(shape, block),
        scale_dtype: ue4m3,
        scales: pack::pack(&scale_codes, 8),
        zero_points: None,
        tensor_scale: Some(t),
    })
}

fn pack_any(codes: &[u64], dtype: &DType) -> Vec<u8> {
    if dtype.bits() > 32 {
        codes.iter().flat_map(|c| c.to_le_bytes()).collect()
    } else {
        pack::pack(codes, dtype.bits())
    }
}

impl Quantized {
    /// Number of scales.
    pub fn num_scales(&self) -> usize {
        self.scale_shape[0] * self.scale_shape[1]
    }

    /// The element codes, unpacked.
    pub fn element_codes(&self) -> Vec<u64> {
        pack::unpack(
            &self.codes,
            self.element.bits(),
            self.shape[0] * self.shape[1],
        )
    }

    /// The scales' exact values, row-major over `scale_shape`.
    pub fn scale_values(&self) -> Vec<f64> {
        pack::unpack_to_f64(&self.scales, &self.scale_dtype, self.num_scales())
    }

    /// The zero points (asymmetric int only), row-major over `scale_shape`.
    pub fn zero_point_values(&self) -> Option<Vec<u64>> {
        let zeros = self.zero_points.as_ref()?;
        Some(pack::unpack(zeros, self.element.bits(), self.num_scales()))
    }

    /// The dequantized tensor, row-major.
    pub fn dequantize(&self) -> Vec<f32> {
        let n = self.shape[0] * self.shape[1];
        let mut values = pack::unpack_to_f32(&self.codes, &self.element, n);
        let scales = self.scale_values();
        let zeros = self.zero_point_values();
        let unit = match self.scheme {
            Scheme::Mx(MxElement::Int8) => 1.0 / 64.0,
            Scheme::Nvfp4 => f64::from(self.tensor_scale.unwrap_or(1.0)),
            _ => 1.0,
        };
        let [rows, cols] = self.shape;
        if rows == 0 || cols == 0 {
            return values;
        }
        let blocks_per_row = cols / self.block[1];
        for r in 0..rows {
            let base = (r / self.block[0]) * blocks_per_row;
            let row = &mut values[r * cols..(r + 1) * cols];
            for (j, run) in row.chunks_mut(self.block[1]).enumerate() {
                let b = base + j;
                let step = scales[b] * unit;
                let z = zeros.as_ref().map_or(0.0, |z| z[b] as f64);
                for v in run {
                    *v = ((f64::from(*v) - z) * step) as f32;
                }
            }
        }
        values
    }
}
