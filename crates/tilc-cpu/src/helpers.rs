//! The Rust functions compiled code calls for operations that are complex and not hot: encoding
//! to and decoding from float formats other than `f32`, stochastic rounding, libm functions, the
//! Hadamard transform, `view` between widths and sub-byte global stores. Each one computes
//! exactly what the interpreter computes, through the same `tilc_dtype` functions, so the
//! results are bit-identical by construction.
//!
//! Element types cross the boundary as a `u64` descriptor ([`desc`] / [`undesc`]) rather than a
//! pointer, so an object file needs no data relocations for them. Tile buffers hold one code per
//! element in a container of 1, 2 or 4 bytes ([`container_bytes`]).

use std::sync::atomic::{AtomicU8, Ordering};
use tilc_dtype::{DType, FloatFamily, FloatFormat, Overflow, Rounding};

/// The descriptor of an element type: bits 0..2 the kind (0 unsigned, 1 signed, 2 float), bits
/// 8..16 the integer width (integers) or the exponent width (floats), bits 16..24 the mantissa
/// width, bit 24 signedness and bits 25..27 the family (floats).
pub(crate) fn desc(d: DType) -> i64 {
    let v: u64 = match d {
        DType::UInt(b) => u64::from(b) << 8,
        DType::Int(b) => 1 | (u64::from(b) << 8),
        DType::Float(f) => {
            let family = match f.family() {
                FloatFamily::Ieee => 0u64,
                FloatFamily::FiniteNan => 1,
                FloatFamily::Finite => 2,
                FloatFamily::PowerOfTwo => 3,
            };
            2 | (u64::from(f.exp_bits()) << 8) | (u64::from(f.man_bits()) << 16) | (u64::from(f.signed()) << 24) | (family << 25)
        }
    };
    v as i64
}

/// The element type of a descriptor made by [`desc`] (i64 for an integer width of 64).
pub(crate) fn undesc(v: i64) -> DType {
    let v = v as u64;
    let a = ((v >> 8) & 0xff) as u8;
    match v & 3 {
        0 => DType::UInt(a),
        1 => DType::Int(a),
        _ => {
            let family = match (v >> 25) & 3 {
                0 => FloatFamily::Ieee,
                1 => FloatFamily::FiniteNan,
                2 => FloatFamily::Finite,
                _ => FloatFamily::PowerOfTwo,
            };
            let f = FloatFormat::new(u32::from(a), ((v >> 16) & 0xff) as u32, (v >> 24) & 1 == 1, family)
                .expect("descriptors are made from valid formats");
            DType::Float(f)
        }
    }
}

/// Bytes of the container a tile element of `d` is kept in.
pub(crate) fn container_bytes(d: DType) -> usize {
    match d.bits() {
        0..=8 => 1,
        9..=16 => 2,
        _ => 4,
    }
}

/// Rounding modes as passed to helpers.
pub(crate) const MODE_RNE: i64 = 0;
pub(crate) const MODE_RTZ: i64 = 1;
pub(crate) const MODE_RUP: i64 = 2;
pub(crate) const MODE_RDOWN: i64 = 3;
pub(crate) const MODE_STOCHASTIC: i64 = 4;

fn rounding(mode: i64, seed: i64, index: i64) -> Rounding {
    match mode {
        MODE_RTZ => Rounding::TowardZero,
        MODE_RUP => Rounding::TowardPositive,
        MODE_RDOWN => Rounding::TowardNegative,
        MODE_STOCHASTIC => Rounding::Stochastic { seed: seed as u64, index: index as u64 },
        _ => Rounding::NearestEven,
    }
}

fn overflow(sat: i64) -> Overflow {
    if sat != 0 { Overflow::Saturate } else { Overflow::NonSaturating }
}

/// The interpreter's `cast_value`: the code of `x` in `dst`.
fn cast_value(dst: DType, x: f64, mode: Rounding, ov: Overflow) -> u64 {
    if dst.is_int() && dst.bits() == 64 {
        return x as i64 as u64;
    }
    dst.encode(x, mode, ov)
}

/// The exact value of `code` of type `desc`.
pub(crate) extern "C" fn tilc_cpu_decode(desc: i64, code: i64) -> f64 {
    undesc(desc).decode(code as u64)
}

/// The code of `x` in type `desc` (the interpreter's `cast_value`).
pub(crate) extern "C" fn tilc_cpu_encode(desc: i64, x: f64, mode: i64, seed: i64, index: i64, sat: i64) -> i64 {
    cast_value(undesc(desc), x, rounding(mode, seed, index), overflow(sat)) as i64
}

/// `x` rounded to float type `desc` nearest-even (Inf/NaN where the format has them): the
/// interpreter's `round_float` for formats other than `f32` and `f64`.
pub(crate) extern "C" fn tilc_cpu_round(desc: i64, x: f64) -> f64 {
    let d = undesc(desc);
    d.decode(d.encode(x, Rounding::NearestEven, Overflow::NonSaturating))
}

/// Unary float functions by number: 0 `exp`, 1 `exp2`, 2 `ln`, 3 `log2`, 4 `1/sqrt`, 5 `%`
/// with `b` (the interpreter's f64 library calls).
pub(crate) extern "C" fn tilc_cpu_libm(op: i64, a: f64, b: f64) -> f64 {
    match op {
        0 => a.exp(),
        1 => a.exp2(),
        2 => a.ln(),
        3 => a.log2(),
        4 => 1.0 / a.sqrt(),
        _ => a % b,
    }
}

/// # Safety
/// `p` points at `n` containers of `bytes` bytes.
unsafe fn read_codes(p: *const u8, bytes: usize, n: usize) -> Vec<u64> {
    (0..n)
        .map(|i| {
            // SAFETY: the caller guarantees `n` containers at `p`.
            unsafe {
                match bytes {
                    1 => u64::from(*p.add(i)),
                    2 => u64::from(p.cast::<u16>().add(i).read_unaligned()),
                    _ => u64::from(p.cast::<u32>().add(i).read_unaligned()),
                }
            }
        })
        .collect()
}

/// # Safety
/// `p` points at `codes.len()` writable containers of `bytes` bytes.
unsafe fn write_codes(p: *mut u8, bytes: usize, codes: &[u64]) {
    for (i, &c) in codes.iter().enumerate() {
        // SAFETY: the caller guarantees the containers.
        unsafe {
            match bytes {
                1 => *p.add(i) = c as u8,
                2 => p.cast::<u16>().add(i).write_unaligned(c as u16),
                _ => p.cast::<u32>().add(i).write_unaligned(c as u32),
            }
        }
    }
}

/// The unnormalised Walsh–Hadamard transform along the middle axis of `[outer, len, inner]`,
/// from `src` to `dst` (tiles of float type `desc`), exactly as the interpreter computes it.
///
/// # Safety
/// `src` and `dst` hold `outer · len · inner` containers of the type.
pub(crate) unsafe extern "C" fn tilc_cpu_hadamard(src: *const u8, dst: *mut u8, desc: i64, outer: i64, len: i64, inner: i64) {
    let d = undesc(desc);
    let (outer, len, inner) = (outer as usize, len as usize, inner as usize);
    let bytes = container_bytes(d);
    // SAFETY: forwarded from the caller.
    let codes = unsafe { read_codes(src, bytes, outer * len * inner) };
    let mut v: Vec<f64> = codes.iter().map(|&c| d.decode(c)).collect();
    tilc_vm::hadamard_in_place(&mut v, outer, len, inner);
    let out: Vec<u64> = v.iter().map(|&x| encode_float(d, x)).collect();
    // SAFETY: forwarded from the caller.
    unsafe { write_codes(dst, bytes, &out) };
}

/// The interpreter's `encode_float`.
fn encode_float(d: DType, x: f64) -> u64 {
    if d == DType::F32 && !x.is_nan() {
        u64::from((x as f32).to_bits())
    } else {
        d.encode(x, Rounding::NearestEven, Overflow::NonSaturating)
    }
}

/// `view`: the row-major bit stream of `n_src` codes of `src_bits` bits read back as `n_dst`
/// codes of `dst_bits` bits.
///
/// # Safety
/// `src` holds `n_src` containers for `src_bits`, `dst` has room for `n_dst` for `dst_bits`.
pub(crate) unsafe extern "C" fn tilc_cpu_view(src: *const u8, src_bits: i64, n_src: i64, dst: *mut u8, dst_bits: i64, n_dst: i64) {
    let cb = |bits: i64| match bits {
        0..=8 => 1,
        9..=16 => 2,
        _ => 4,
    };
    // SAFETY: forwarded from the caller.
    let codes = unsafe { read_codes(src, cb(src_bits), n_src as usize) };
    let bytes = tilc_dtype::pack::pack(&codes, src_bits as u32);
    let out = tilc_dtype::pack::unpack(&bytes, dst_bits as u32, n_dst as usize);
    // SAFETY: forwarded from the caller.
    unsafe { write_codes(dst, cb(dst_bits), &out) };
}

/// Writes the `bits`-bit `code` at element `index` of the packed stream at `base`, atomically
/// per byte so that blocks writing neighbouring elements of one byte do not race.
///
/// # Safety
/// `base` is a packed tensor buffer holding element `index`.
pub(crate) unsafe extern "C" fn tilc_cpu_store_bits(base: *mut u8, index: i64, bits: i64, code: i64) {
    let bit = index as u64 * bits as u64;
    let mut byte = (bit / 8) as usize;
    let mut shift = (bit % 8) as u32;
    let mut remaining = bits as u32;
    let mut code = code as u64;
    while remaining > 0 {
        let take = (8 - shift).min(remaining);
        let mask = (((1u32 << take) - 1) << shift) as u8;
        let val = (((code as u32) << shift) as u8) & mask;
        // SAFETY: the caller guarantees the byte is inside the buffer; AtomicU8 has the
        // layout of u8 and every access to output bytes during a launch is atomic or disjoint.
        let cell = unsafe { AtomicU8::from_ptr(base.add(byte)) };
        cell.fetch_and(!mask, Ordering::Relaxed);
        cell.fetch_or(val, Ordering::Relaxed);
        code >>= take;
        remaining -= take;
        shift = 0;
        byte += 1;
    }
}

/// The helpers by symbol name, for the JIT's symbol table.
pub(crate) fn symbols() -> Vec<(&'static str, *const u8)> {
    vec![
        ("tilc_cpu_decode", tilc_cpu_decode as *const u8),
        ("tilc_cpu_encode", tilc_cpu_encode as *const u8),
        ("tilc_cpu_round", tilc_cpu_round as *const u8),
        ("tilc_cpu_libm", tilc_cpu_libm as *const u8),
        ("tilc_cpu_hadamard", tilc_cpu_hadamard as *const u8),
        ("tilc_cpu_view", tilc_cpu_view as *const u8),
        ("tilc_cpu_store_bits", tilc_cpu_store_bits as *const u8),
    ]
}
