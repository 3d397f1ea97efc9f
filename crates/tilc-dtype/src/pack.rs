//! Bit packing of codes of any width 1..=32 as a little-endian bit stream: element k occupies
//! bits [k·w, (k+1)·w) counted from bit 0 (the least significant bit) of byte 0, elements may
//! straddle bytes, and the unused high bits of the last byte are zero. Eight elements fill
//! exactly w bytes, so the fast paths move 8 elements per step through one 64- or 128-bit word.
//! Knows nothing of what the codes mean except in the typed helpers (`unpack_to_f32`, `pack_f32`).
//!
//! Preconditions (programming errors, not data errors, so they panic): `bits` in 1..=32 and an
//! input byte slice of at least [`packed_len`]`(n, bits)` bytes.

use crate::{DType, FloatFormat, Overflow, Rounding, mask};

/// Bytes needed for `n` codes of `bits` bits.
pub fn packed_len(n: usize, bits: u32) -> usize {
    (n * bits as usize).div_ceil(8)
}

fn check_bits(bits: u32) {
    assert!(
        (1..=32).contains(&bits),
        "bit width {bits} is not in 1..=32"
    );
}

/// Packs the low `bits` bits of each code (higher bits are ignored).
pub fn pack(codes: &[u64], bits: u32) -> Vec<u8> {
    let mut out = vec![0u8; packed_len(codes.len(), bits)];
    pack_into(codes, bits, &mut out);
    out
}

/// [`pack`] into `out`, which must hold exactly [`packed_len`] bytes; every byte is written.
pub fn pack_into(codes: &[u64], bits: u32, out: &mut [u8]) {
    check_bits(bits);
    assert_eq!(out.len(), packed_len(codes.len(), bits), "output length");
    macro_rules! arms {
        ($($w:literal => $f:ident),*) => {
            match bits {
                $($w => $f::<$w>(codes, out),)*
                _ => pack_generic(codes, bits, out, 0),
            }
        };
    }
    arms!(1 => pack_small, 2 => pack_small, 3 => pack_small, 4 => pack_small,
          5 => pack_small, 6 => pack_small, 7 => pack_small, 8 => pack_small,
          9 => pack_medium, 10 => pack_medium, 11 => pack_medium, 12 => pack_medium,
          13 => pack_medium, 14 => pack_medium, 15 => pack_medium, 16 => pack_medium)
}

fn pack_small<const W: usize>(codes: &[u64], out: &mut [u8]) {
    let m = mask(W as u32);
    let full = codes.len() / 8;
    for (chunk, dst) in codes.chunks_exact(8).zip(out.chunks_exact_mut(W)) {
        let mut word = 0u64;
        for (j, &c) in chunk.iter().enumerate() {
            word |= (c & m) << (j * W);
        }
        dst.copy_from_slice(&word.to_le_bytes()[..W]);
    }
    pack_generic(&codes[full * 8..], W as u32, &mut out[full * W..], 0);
}

fn pack_medium<const W: usize>(codes: &[u64], out: &mut [u8]) {
    let m = u128::from(mask(W as u32));
    let full = codes.len() / 8;
    for (chunk, dst) in codes.chunks_exact(8).zip(out.chunks_exact_mut(W)) {
        let mut word = 0u128;
        for (j, &c) in chunk.iter().enumerate() {
            word |= (u128::from(c) & m) << (j * W);
        }
        dst.copy_from_slice(&word.to_le_bytes()[..W]);
    }
    pack_generic(&codes[full * 8..], W as u32, &mut out[full * W..], 0);
}

/// Word-at-a-time packing through a 64-bit accumulator; `out` starts at a byte boundary with
/// `start_bits` (< 8) bits already taken by earlier elements (0 here).
fn pack_generic(codes: &[u64], bits: u32, out: &mut [u8], start_bits: u32) {
    let m = mask(bits);
    let mut acc = 0u64;
    let mut filled = start_bits;
    let mut pos = 0;
    for &c in codes {
        acc |= (c & m) << filled;
        filled += bits;
        if filled >= 32 {
            out[pos..pos + 4].copy_from_slice(&(acc as u32).to_le_bytes());
            pos += 4;
            acc >>= 32;
            filled -= 32;
        }
    }
    let tail = filled.div_ceil(8) as usize;
    out[pos..pos + tail].copy_from_slice(&acc.to_le_bytes()[..tail]);
}

/// The code of element `k`.
pub fn get(bytes: &[u8], bits: u32, k: usize) -> u64 {
    check_bits(bits);
    let bit = k * bits as usize;
    (read_window(bytes, bit / 8) >> (bit % 8)) & mask(bits)
}

/// Overwrites the code of element `k` with the low `bits` bits of `code`.
pub fn set(bytes: &mut [u8], bits: u32, k: usize, code: u64) {
    check_bits(bits);
    let bit = k * bits as usize;
    let (first, offset) = (bit / 8, bit % 8);
    let span = (offset + bits as usize).div_ceil(8);
    let field = mask(bits) << offset;
    let mut window = read_window(bytes, first);
    window = (window & !field) | ((code << offset) & field);
    bytes[first..first + span].copy_from_slice(&window.to_le_bytes()[..span]);
}

/// Eight bytes from `first` on, zero past the end of `bytes`.
#[inline(always)]
fn read_window(bytes: &[u8], first: usize) -> u64 {
    match bytes.get(first..first + 8) {
        Some(window) => u64::from_le_bytes(window.try_into().expect("8 bytes")),
        None => {
            let mut buf = [0u8; 8];
            let rest = &bytes[first.min(bytes.len())..];
            buf[..rest.len()].copy_from_slice(rest);
            u64::from_le_bytes(buf)
        }
    }
}

/// Unpacks `n` codes of `bits` bits.
pub fn unpack(bytes: &[u8], bits: u32, n: usize) -> Vec<u64> {
    let mut out = vec![0u64; n];
    unpack_into(bytes, bits, &mut out);
    out
}

/// [`unpack`] into `out` (`out.len()` codes).
pub fn unpack_into(bytes: &[u8], bits: u32, out: &mut [u64]) {
    unpack_map(bytes, bits, out, |c| c);
}

/// Unpacks `out.len()` codes and stores `map(code)` for each; the fast paths are monomorphized
/// per width so the per-element work is a shift, a mask and `map`.
#[inline(always)]
fn unpack_map<T: Copy>(bytes: &[u8], bits: u32, out: &mut [T], map: impl Fn(u64) -> T) {
    check_bits(bits);
    assert!(
        bytes.len() >= packed_len(out.len(), bits),
        "packed input too short"
    );
    macro_rules! arms {
        ($($w:literal => $f:ident),*) => {
            match bits {
                $($w => $f::<$w, T>(bytes, out, &map),)*
                _ => unpack_generic(bytes, bits, out, 0, &map),
            }
        };
    }
    arms!(1 => unpack_small, 2 => unpack_small, 3 => unpack_small, 4 => unpack_small,
          5 => unpack_small, 6 => unpack_small, 7 => unpack_small, 8 => unpack_small,
          9 => unpack_medium, 10 => unpack_medium, 11 => unpack_medium, 12 => unpack_medium,
          13 => unpack_medium, 14 => unpack_medium, 15 => unpack_medium, 16 => unpack_medium)
}

#[inline(always)]
fn unpack_small<const W: usize, T: Copy>(bytes: &[u8], out: &mut [T], map: &impl Fn(u64) -> T) {
    let m = mask(W as u32);
    let full = out.len() / 8;
    // Chunks whose whole 8-byte window lies inside `bytes` load it unaligned in one go.
    let fast = if bytes.len() >= 8 {
        ((bytes.len() - 8) / W + 1).min(full)
    } else {
        0
    };
    for (i, dst) in out[..fast * 8].chunks_exact_mut(8).enumerate() {
        let window: [u8; 8] = bytes[i * W..i * W + 8].try_into().expect("8 bytes");
        let word = u64::from_le_bytes(window);
        for (j, d) in dst.iter_mut().enumerate() {
            *d = map((word >> (j * W)) & m);
        }
    }
    for (i, dst) in out[fast * 8..full * 8].chunks_exact_mut(8).enumerate() {
        let start = (fast + i) * W;
        let mut buf = [0u8; 8];
        buf[..W].copy_from_slice(&bytes[start..start + W]);
        let word = u64::from_le_bytes(buf);
        for (j, d) in dst.iter_mut().enumerate() {
            *d = map((word >> (j * W)) & m);
        }
    }
    unpack_generic(bytes, W as u32, &mut out[full * 8..], full * 8, map);
}

#[inline(always)]
fn unpack_medium<const W: usize, T: Copy>(bytes: &[u8], out: &mut [T], map: &impl Fn(u64) -> T) {
    let m = mask(W as u32);
    let full = out.len() / 8;
    for (dst, src) in out.chunks_exact_mut(8).zip(bytes.chunks_exact(W)) {
        let mut buf = [0u8; 16];
        buf[..W].copy_from_slice(src);
        let word = u128::from_le_bytes(buf);
        for (j, d) in dst.iter_mut().enumerate() {
            *d = map((word >> (j * W)) as u64 & m);
        }
    }
    unpack_generic(bytes, W as u32, &mut out[full * 8..], full * 8, map);
}

/// One 64-bit window read per element; `first` is the index of `out[0]` in the stream.
#[inline(always)]
fn unpack_generic<T: Copy>(
    bytes: &[u8],
    bits: u32,
    out: &mut [T],
    first: usize,
    map: &impl Fn(u64) -> T,
) {
    let m = mask(bits);
    for (i, d) in out.iter_mut().enumerate() {
        let bit = (first + i) * bits as usize;
        *d = map((read_window(bytes, bit / 8) >> (bit % 8)) & m);
    }
}

/// Unpacks `n` elements of `dtype` and decodes them to f32 (exact for every float format
/// except `f64`, and for integers up to 2^24 in magnitude; otherwise rounded to nearest).
pub fn unpack_to_f32(bytes: &[u8], dtype: &DType, n: usize) -> Vec<f32> {
    let mut out = vec![0f32; n];
    unpack_to_f32_into(bytes, dtype, &mut out);
    out
}

/// [`unpack_to_f32`] into `out` (`out.len()` elements).
pub fn unpack_to_f32_into(bytes: &[u8], dtype: &DType, out: &mut [f32]) {
    let bits = dtype.bits();
    // Integers convert arithmetically (vectorizable); other small types go through a table.
    match *dtype {
        DType::UInt(b) if b <= 24 => return unpack_map(bytes, bits, out, |c| c as u32 as f32),
        DType::Int(b) if b <= 24 => {
            let shift = 32 - u32::from(b);
            return unpack_map(bytes, bits, out, |c| {
                (((c as u32) << shift) as i32 >> shift) as f32
            });
        }
        _ => {}
    }
    if bits <= 8 {
        let mut table = [0f32; 256];
        for (code, v) in table.iter_mut().enumerate().take(1 << bits) {
            *v = dtype.decode(code as u64) as f32;
        }
        unpack_map(bytes, bits, out, |c| table[c as u8 as usize]);
    } else if bits <= 16 && out.len() >= 1 << 14 {
        // Worth a 65536-entry table only when it is reused enough.
        let table: Vec<f32> = (0..1u64 << 16).map(|c| dtype.decode(c) as f32).collect();
        let table: &[f32; 1 << 16] = table.as_slice().try_into().expect("65536 entries");
        unpack_map(bytes, bits, out, |c| table[c as u16 as usize]);
    } else if *dtype == DType::Float(FloatFormat::F32) {
        unpack_map(bytes, bits, out, |c| f32::from_bits(c as u32));
    } else if bits <= 32 {
        let d = *dtype;
        // Per element through `decode` (wide types, or 9..=16-bit types on short inputs).
        unpack_map(bytes, bits, out, |c| d.decode(c) as f32);
    } else {
        // f64: 64-bit codes, eight bytes each.
        for (d, src) in out.iter_mut().zip(bytes.chunks_exact(8)) {
            *d = f64::from_le_bytes(src.try_into().expect("8 bytes")) as f32;
        }
    }
}

/// Unpacks `n` elements of `dtype` and decodes them exactly to f64.
pub fn unpack_to_f64(bytes: &[u8], dtype: &DType, n: usize) -> Vec<f64> {
    if dtype.bits() > 32 {
        return bytes
            .chunks_exact(8)
            .take(n)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect();
    }
    let mut out = vec![0f64; n];
    let d = *dtype;
    unpack_map(bytes, d.bits(), &mut out, |c| d.decode(c));
    out
}

/// Encodes each value to `dtype` and packs the codes. With [`Rounding::Stochastic`], element i
/// uses index `index + i` (so a tensor encoded in pieces draws the same bits as in one piece).
pub fn pack_f32(values: &[f32], dtype: &DType, rounding: Rounding, overflow: Overflow) -> Vec<u8> {
    let codes: Vec<u64> = values
        .iter()
        .enumerate()
        .map(|(i, &x)| dtype.encode(f64::from(x), offset_rounding(rounding, i as u64), overflow))
        .collect();
    pack_codes_of(&codes, dtype)
}

/// Like [`pack_f32`] for f64 inputs.
pub fn pack_f64(values: &[f64], dtype: &DType, rounding: Rounding, overflow: Overflow) -> Vec<u8> {
    let codes: Vec<u64> = values
        .iter()
        .enumerate()
        .map(|(i, &x)| dtype.encode(x, offset_rounding(rounding, i as u64), overflow))
        .collect();
    pack_codes_of(&codes, dtype)
}

fn pack_codes_of(codes: &[u64], dtype: &DType) -> Vec<u8> {
    if dtype.bits() > 32 {
        codes.iter().flat_map(|c| c.to_le_bytes()).collect()
    } else {
        pack(codes, dtype.bits())
    }
}

/// `rounding` with a stochastic index advanced by `offset`.
pub(crate) fn offset_rounding(rounding: Rounding, offset: u64) -> Rounding {
    match rounding {
        Rounding::Stochastic { seed, index } => Rounding::Stochastic {
            seed,
            index: index.wrapping_add(offset),
        },
        other => other,
    }
}
