//! `tilc_simt::codec` against tilc-dtype, bit for bit: kernels of many threads that each
//! decode, encode or convert one element read from a global buffer run in the emulator, and
//! every result is compared with tilc-dtype's `decode` / `encode` (with the VM interpreter's
//! 64-bit-integer rules where they apply).
mod common;
use common::Rng;
use tilc_dtype::{DType, Overflow, Rounding};
use tilc_simt::codec::{self, SimtRounding};
use tilc_simt::*;

const BLOCK: u32 = 256;
const SEED_PARAM: u64 = 0x0123_4567_89ab_cdef;

/// Runs a kernel in which element `i` reads `inputs[i]` (raw bits of `in_ty`), computes
/// `f(builder, x, i as i64, seed)` and writes the raw bits of the result; returns them.
fn run_map(
    in_ty: Type,
    inputs: &[u64],
    f: impl FnOnce(&mut Builder, Value, Value, Value) -> Value,
) -> Vec<u64> {
    let mut b = Builder::new("map", [BLOCK, 1, 1]);
    let src = b.param("src", Type::GLOBAL_PTR, 8);
    let dst = b.param("dst", Type::GLOBAL_PTR, 8);
    let seed = b.param("seed", Type::I64, 1);
    let t = b.tid_x();
    let blk = b.ctaid_x();
    let bs = b.i32(BLOCK as i32);
    let base = b.mul(blk, bs);
    let i = b.add(base, t);
    let in_size = in_ty.bytes().unwrap();
    let isz = b.i32(in_size as i32);
    let off = b.mul(i, isz);
    let p = b.ptr_add(src, off);
    let x = b.load(Space::Global, in_ty, p, None);
    let i64v = b.cast(CastOp::SExt, i, Type::I64);
    let y = f(&mut b, x, i64v, seed);
    let out_ty = b.kernel().ty(y);
    let out_size = out_ty.bytes().unwrap();
    let osz = b.i32(out_size as i32);
    let off = b.mul(i, osz);
    let q = b.ptr_add(dst, off);
    b.store(Space::Global, q, y, None);
    let k = b.finish();
    let n = inputs.len().div_ceil(BLOCK as usize) * BLOCK as usize;
    let mut bytes = Vec::with_capacity(n * in_size as usize);
    for e in 0..n {
        let v = inputs.get(e).copied().unwrap_or(0);
        bytes.extend_from_slice(&v.to_le_bytes()[..in_size as usize]);
    }
    let mut args = [Arg::Buffer(bytes), Arg::Buffer(vec![0; n * out_size as usize]), Arg::Scalar(SEED_PARAM)];
    let launch = Launch { grid: [(n / BLOCK as usize) as u32, 1, 1], parallel: true };
    run(&k, launch, &mut args).unwrap_or_else(|e| panic!("{e}"));
    let Arg::Buffer(out) = &args[1] else { unreachable!() };
    out.chunks(out_size as usize)
        .take(inputs.len())
        .map(|c| {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            u64::from_le_bytes(w)
        })
        .collect()
}

/// A type by name; `i64` is the interpreter's 64-bit index type, which has no tilc-dtype name.
fn dt(name: &str) -> DType {
    if name == "i64" {
        return DType::Int(64);
    }
    DType::parse(name).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Every float format of at most `max_bits` bits that tilc-dtype names (signed `fNeEmM`,
/// f16, bf16, unsigned `ue*` and `e8m0`).
fn float_formats(max_bits: u32) -> Vec<DType> {
    let mut out = Vec::new();
    for e in 1..=8u32 {
        for m in 0..=23u32 {
            if 1 + e + m <= max_bits {
                if let Ok(d) = DType::parse(&format!("f{}e{e}m{m}", 1 + e + m)) {
                    if !out.contains(&d) {
                        out.push(d);
                    }
                }
            }
            if (7..=8).contains(&(e + m)) && max_bits >= 8 {
                if let Ok(d) = DType::parse(&format!("ue{e}m{m}")) {
                    if !out.contains(&d) {
                        out.push(d);
                    }
                }
            }
        }
    }
    for d in [DType::F16, DType::BF16, dt("e8m0")] {
        if !out.contains(&d) && d.bits() <= max_bits {
            out.push(d);
        }
    }
    out
}

/// A carrier's raw bits as the value it carries.
fn carried(d: DType, bits: u64) -> f64 {
    match codec::carrier(d) {
        Type::I32 if d.is_signed() => bits as u32 as i32 as f64,
        Type::I32 => bits as u32 as f64,
        Type::I64 => bits as i64 as f64,
        Type::F32 => f32::from_bits(bits as u32) as f64,
        _ => f64::from_bits(bits),
    }
}

fn same(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        a.is_nan() && b.is_nan() && a.is_sign_negative() == b.is_sign_negative()
    } else {
        a.to_bits() == b.to_bits()
    }
}

/// Decodes every code, then encodes the decoded value again: the value must be tilc-dtype's
/// decode and the code must come back (NaN codes come back as the canonical NaN of their sign).
fn check_every_code(d: DType) {
    let n = 1u64 << d.bits();
    let codes: Vec<u64> = (0..n).collect();
    let decoded = run_map(Type::I32, &codes, |b, c, _, _| codec::decode(b, d, c));
    let roundtrip = run_map(Type::I32, &codes, |b, c, _, _| {
        let x = codec::decode(b, d, c);
        codec::encode(b, d, x)
    });
    for &c in &codes {
        let want = d.decode(c);
        let have = carried(d, decoded[c as usize]);
        assert!(same(have, want), "{d}: decode({c:#x}) = {have:?} (bits {:#x}), want {want:?}", decoded[c as usize]);
        let want_code = if want.is_nan() { d.encode(want, Rounding::NearestEven, Overflow::NonSaturating) } else { c };
        assert_eq!(roundtrip[c as usize], want_code, "{d}: encode(decode({c:#x}))");
    }
}

#[test]
fn decode_and_encode_every_code_of_every_narrow_format() {
    let mut formats: Vec<DType> = (1..=16).flat_map(|b| [DType::UInt(b), DType::Int(b)]).collect();
    formats.extend(float_formats(12));
    formats.extend([DType::F16, DType::BF16, dt("f16e6m9"), dt("f14e4m9"), dt("f16e8m7")]);
    for d in formats {
        check_every_code(d);
    }
}

#[test]
fn encode_of_wide_codes_round_trips() {
    let mut rng = Rng::new(7);
    for d in [DType::F32, DType::Int(32), DType::UInt(32), dt("f24e8m15"), dt("f20e6m13")] {
        let mut codes: Vec<u64> = (0..2048).map(|_| rng.next_u32() as u64 & d.code_mask()).collect();
        codes.extend([0, 1, d.code_mask(), d.code_mask() >> 1, (d.code_mask() >> 1) + 1]);
        let decoded = run_map(Type::I32, &codes, |b, c, _, _| codec::decode(b, d, c));
        let back = run_map(Type::I32, &codes, |b, c, _, _| {
            let x = codec::decode(b, d, c);
            codec::encode(b, d, x)
        });
        for (k, &c) in codes.iter().enumerate() {
            let want = d.decode(c);
            assert!(same(carried(d, decoded[k]), want), "{d}: decode({c:#x})");
            let want_code = if want.is_nan() { d.encode(want, Rounding::NearestEven, Overflow::NonSaturating) } else { c };
            assert_eq!(back[k], want_code, "{d}: encode(decode({c:#x}))");
        }
    }
}

const MODES: [&str; 5] = ["ne", "tz", "tp", "tn", "st"];

fn host_rounding(mode: usize, index: u64) -> Rounding {
    match mode {
        0 => Rounding::NearestEven,
        1 => Rounding::TowardZero,
        2 => Rounding::TowardPositive,
        3 => Rounding::TowardNegative,
        _ => Rounding::Stochastic { seed: SEED_PARAM, index },
    }
}

fn simt_rounding(mode: usize, seed: Value, index: Value) -> SimtRounding {
    match mode {
        0 => SimtRounding::NearestEven,
        1 => SimtRounding::TowardZero,
        2 => SimtRounding::TowardPositive,
        3 => SimtRounding::TowardNegative,
        _ => SimtRounding::Stochastic { seed, index },
    }
}

/// The interpreter's `cast_value` of the exact value `x` to `to`.
fn host_cast(to: DType, x: f64, r: Rounding, ov: Overflow) -> u64 {
    if to.is_int() && to.bits() == 64 {
        return x as i64 as u64;
    }
    to.encode(x, r, ov)
}

/// Edge values for a destination: zeros, specials, its max finite and neighbours, midpoints
/// around small codes, its smallest subnormal and half of it, f32 subnormals, ties.
fn edge_values(to: DType) -> Vec<f64> {
    let mut v = vec![
        0.0, -0.0, f64::NAN, -f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.5, 1.5, 2.5, -2.5, -0.5, 1.0, -1.0, 3.0,
        f32::MIN_POSITIVE as f64, f32::from_bits(1) as f64, -(f32::from_bits(3) as f64), f32::MAX as f64, -(f32::MAX as f64),
        1e-30, -1e-30, 1e30, 2147483647.5, -2147483648.5, 4294967295.5, 65535.5, 255.5, 127.5, -128.5, 7.5, -8.5,
    ];
    let max = to.max_finite();
    for m in [max, -max] {
        let f = m as f32;
        v.extend([f as f64, f32::from_bits(f.to_bits() + 1) as f64, f32::from_bits(f.to_bits() - 1) as f64]);
    }
    if let Some(f) = to.float_format() {
        if let Some(sub) = f.min_subnormal() {
            v.extend([sub, sub / 2.0, sub * 1.5, -sub / 2.0, sub * 0.75, -sub * 1.25]);
        }
        let mn = f.min_normal();
        v.extend([mn, mn * 0.999, -mn * 1.0001]);
        // max + ½ ulp(max) is the nearest-even overflow threshold.
        let code = f.max_magnitude_code();
        let below = f.decode(code - 1);
        v.extend([max + (max - below) / 2.0, max + (max - below) / 4.0, -(max + (max - below) / 2.0)]);
        // Midpoints of the first codes and a few around 1.
        for c in 0..6u64.min(f.max_magnitude_code()) {
            let (a, b) = (f.decode(c), f.decode(c + 1));
            v.extend([(a + b) / 2.0, -(a + b) / 2.0]);
        }
    }
    v.into_iter().map(|x| x as f32 as f64).collect()
}

/// Random f32 values across all exponents, near the destination's range, and near its codes.
fn random_f32s(rng: &mut Rng, to: DType, n: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(n);
    for k in 0..n {
        let x = match k % 3 {
            0 => f32::from_bits(rng.next_u32()),
            1 => {
                let max = to.max_finite().min(1e38) as f32;
                let e = rng.range_f64(-30.0, (max as f64).log2() + 2.0);
                let s = if rng.next_u32() & 1 == 1 { -1.0 } else { 1.0 };
                (s * rng.range_f64(1.0, 2.0) * e.exp2()) as f32
            }
            _ => {
                let code = rng.next_u64() & to.code_mask();
                let base = to.decode(code);
                let base = if base.is_finite() { base } else { 1.0 };
                let jitter = rng.range_f64(-1.0, 1.0) * base.abs().max(1e-3) * 0.2;
                (base + jitter) as f32
            }
        };
        out.push(x);
    }
    out
}

/// `convert` of f32 values to `to` in every mode and overflow vs tilc-dtype.
fn check_f32_to(to: DType, rng: &mut Rng, seed: u64) {
    let mut xs: Vec<f32> = edge_values(to).into_iter().map(|x| x as f32).collect();
    xs.extend(random_f32s(rng, to, 192));
    let bits: Vec<u64> = xs.iter().map(|x| x.to_bits() as u64).collect();
    for ov in [Overflow::Saturate, Overflow::NonSaturating] {
        for mode in 0..5 {
            let codes = run_map(Type::I32, &bits, |b, x, i, s| {
                let x = b.cast(CastOp::Bitcast, x, Type::F32);
                let y = codec::convert(b, DType::F32, to, x, simt_rounding(mode, s, i), ov);
                codec::encode(b, to, y)
            });
            for (k, &x) in xs.iter().enumerate() {
                let want = host_cast(to, x as f64, host_rounding(mode, k as u64), ov);
                assert_eq!(
                    codes[k] & to.code_mask(),
                    want,
                    "seed {seed}: f32 {x:e} ({:#010x}) -> {to} {} {ov:?}",
                    x.to_bits(),
                    MODES[mode]
                );
            }
        }
    }
}

#[test]
fn convert_from_f32_matches_tilc_dtype_in_every_mode() {
    let seed = 0x5eed_0001;
    let mut rng = Rng::new(seed);
    for name in [
        "u1", "u3", "u4", "i3", "i4", "i8", "u8", "i16", "i32", "u32", "f4e2m1", "f6e3m2", "f6e2m3", "f8e4m3", "f8e5m2",
        "f16", "bf16", "e8m0", "ue4m3", "ue5m3", "f32", "f3e1m1", "f5e3m1", "f7e1m5", "f12e8m3", "f20e6m13", "f8e6m1",
        "f2e1m0",
    ] {
        check_f32_to(dt(name), &mut rng, seed);
    }
}

/// `convert` from a source given as raw carrier bits to `to` vs the interpreter's `Cast`.
fn check_convert(from: DType, to: DType, inputs: &[u64], seed: u64) {
    let in_ty = codec::carrier(from);
    for ov in [Overflow::Saturate, Overflow::NonSaturating] {
        for mode in 0..5 {
            let out = run_map(in_ty, inputs, |b, x, i, s| {
                let y = codec::convert(b, from, to, x, simt_rounding(mode, s, i), ov);
                codec::encode(b, to, y)
            });
            for (k, &raw) in inputs.iter().enumerate() {
                let r = host_rounding(mode, k as u64);
                let want = if from.is_int() && from.bits() == 64 {
                    let a = raw as i64;
                    if to.is_int() { (a as u64) & to.code_mask() } else { host_cast(to, a as f64, r, ov) }
                } else {
                    host_cast(to, carried(from, raw), r, ov)
                };
                assert_eq!(
                    out[k] & to.code_mask(),
                    want & to.code_mask(),
                    "seed {seed}: {from} {:?} (raw {raw:#x}) -> {to} {} {ov:?}",
                    carried(from, raw),
                    MODES[mode]
                );
            }
        }
    }
}

#[test]
fn convert_from_integers_matches_the_interpreter() {
    let seed = 0x5eed_0002;
    let mut rng = Rng::new(seed);
    let mut i32s: Vec<u64> = (0..160).map(|_| rng.next_u32() as u64).collect();
    i32s.extend([0, 1, u32::MAX as u64, 0x7fff_ffff, 0x8000_0000, 0x0100_0001, 0x00ff_ffff, 255, 256, 0xffff_ff00, 16777217, 33554435]);
    i32s.extend((0..64).map(|_| (rng.next_u32() >> (rng.next_u32() % 32)) as u64));
    for to in ["f32", "f16", "bf16", "f8e4m3", "f4e2m1", "e8m0", "ue4m3", "i8", "u8", "i4", "u32", "i32", "i16", "f64"] {
        check_convert(DType::Int(32), dt(to), &i32s, seed);
        check_convert(DType::UInt(32), dt(to), &i32s, seed);
    }
    // Carriers hold i8 sign-extended.
    let i8s: Vec<u64> = (-128i32..128).map(|v| v as u32 as u64).collect();
    for to in ["f4e2m1", "f8e4m3", "u4", "i3", "u8", "i16", "f16", "e8m0"] {
        check_convert(DType::Int(8), dt(to), &i8s, seed);
    }
    let u4s: Vec<u64> = (0..16).collect();
    for to in ["i3", "u2", "f3e1m1", "i32"] {
        check_convert(DType::UInt(4), dt(to), &u4s, seed);
    }
    // Every code of a type whose values all fit the target (the carrier is returned as is).
    for (from, to) in [("u3", "i8"), ("i4", "i8"), ("u8", "i16"), ("u7", "u8"), ("i16", "i32"), ("u16", "i32"), ("u1", "i2")] {
        let f = dt(from);
        let carriers: Vec<u64> = (0..1u64 << f.bits()).map(|c| (f.decode(c) as i64) as u32 as u64).collect();
        check_convert(f, dt(to), &carriers, seed);
    }
    // 64-bit integers: to a narrower integer they wrap; to a float they round to f64 first.
    let mut i64s: Vec<u64> = (0..128).map(|_| rng.next_u64() >> (rng.next_u32() % 64)).collect();
    i64s.extend([0, 1, u64::MAX, i64::MIN as u64, i64::MAX as u64, (1 << 53) + 1, (1 << 60) + (1 << 36) + 1, (-5i64) as u64]);
    for to in ["f32", "f16", "i8", "u16", "i32", "f64", "f8e5m2"] {
        check_convert(DType::Int(64), dt(to), &i64s, seed);
    }
    // And to a 64-bit integer: exact.
    check_convert(DType::Int(32), DType::Int(64), &i32s, seed);
    check_convert(DType::UInt(32), DType::Int(64), &i32s, seed);
}

#[test]
fn convert_from_narrow_floats_and_f64_matches_the_interpreter() {
    let seed = 0x5eed_0003;
    let mut rng = Rng::new(seed);
    // Narrow float sources: every code, carried as its exact f32.
    for (from, tos) in [
        ("f8e4m3", &["f4e2m1", "i4", "u8", "f8e5m2", "f16", "e8m0", "i64"][..]),
        ("f16", &["f8e4m3", "bf16", "i8", "f32", "f64", "ue4m3"][..]),
        ("e8m0", &["f8e5m2", "u8", "f32"][..]),
    ] {
        let from = dt(from);
        // Every code of the 8-bit formats; for f16 every 61st code plus its specials and
        // subnormals (the decode test covers all of them).
        let codes: Vec<u64> = if from.bits() <= 8 {
            (0..1u64 << from.bits()).collect()
        } else {
            (0..1u64 << from.bits()).filter(|c| c % 61 == 0 || c & 0x7fff >= 0x7bf0 || c & 0x7fff < 16).collect()
        };
        let carriers = run_map(Type::I32, &codes, |b, c, _, _| codec::decode(b, from, c));
        for to in tos {
            check_convert(from, dt(to), &carriers, seed);
        }
    }
    // f64 sources: random bit patterns, values near the destination, and edges.
    for to in ["f32", "f16", "bf16", "f8e4m3", "f6e2m3", "e8m0", "i8", "u32", "i32", "i64", "f64", "ue4m3", "f12e8m3"] {
        let to = dt(to);
        let mut xs: Vec<f64> = edge_values(to);
        xs.extend([f64::MIN_POSITIVE, 5e-324, -5e-324, 1e300, -1e300, f64::MAX, 9.3e18, -9.3e18, 4294967296.5, 1e20 + 3.0]);
        for k in 0..160 {
            xs.push(match k % 3 {
                0 => f64::from_bits(rng.next_u64()),
                1 => rng.range_f64(-1.0, 1.0) * rng.range_f64(-40.0, 40.0).exp2(),
                _ => {
                    // Just off a value of the destination: the rounding decision depends on
                    // bits far below f32's precision.
                    let base = to.decode(rng.next_u64() & to.code_mask());
                    let base = if base.is_finite() { base } else { 3.0 };
                    base * (1.0 + rng.range_f64(-1e-12, 1e-12))
                }
            });
        }
        let raw: Vec<u64> = xs.iter().map(|x| x.to_bits()).collect();
        check_convert(DType::F64, to, &raw, seed);
    }
}

#[test]
fn round_value_is_the_interpreters_round_float() {
    let seed = 0x5eed_0004;
    let mut rng = Rng::new(seed);
    for name in ["f32", "f64", "f16", "bf16", "f8e4m3", "f8e5m2", "f4e2m1", "e8m0", "ue4m3", "f6e3m2"] {
        let d = dt(name);
        let mut xs = edge_values(d);
        xs.extend((0..128).map(|_| rng.range_f64(-1.0, 1.0) * rng.range_f64(-30.0, 30.0).exp2()));
        for wide in [false, true] {
            let (ty, raw): (Type, Vec<u64>) = if wide {
                (Type::F64, xs.iter().map(|x| x.to_bits()).collect())
            } else {
                (Type::F32, xs.iter().map(|&x| (x as f32).to_bits() as u64).collect())
            };
            let out = run_map(ty, &raw, |b, x, _, _| {
                let y = codec::round_value(b, d, x);
                assert_eq!(b.kernel().ty(y), codec::carrier(d));
                codec::encode(b, d, y)
            });
            for (k, &r) in raw.iter().enumerate() {
                let x = if wide { f64::from_bits(r) } else { f32::from_bits(r as u32) as f64 };
                // round_float, then the interpreter's encode_float of the result.
                let want = if d == DType::F32 && !x.is_nan() {
                    (x as f32).to_bits() as u64
                } else {
                    d.encode(x, Rounding::NearestEven, Overflow::NonSaturating)
                };
                assert_eq!(out[k] & d.code_mask(), want, "seed {seed}: round_value({name}, {x:e}) from {ty}");
            }
        }
    }
}

#[test]
fn wrap_int_keeps_the_low_bits_with_the_right_extension() {
    let xs: Vec<u64> = [0u32, 1, 5, 0x7f, 0x80, 0xff, 0x1234_5678, 0x8000_0000, u32::MAX].iter().map(|&x| x as u64).collect();
    for d in [DType::Int(1), DType::UInt(1), DType::Int(7), DType::UInt(7), DType::Int(16), DType::UInt(31), DType::Int(32)] {
        let out = run_map(Type::I32, &xs, |b, x, _, _| codec::wrap_int(b, d, x));
        for (k, &x) in xs.iter().enumerate() {
            let bits = d.bits();
            let low = x & d.code_mask();
            let want = if d.is_signed() && bits < 64 && (low >> (bits - 1)) & 1 == 1 { low | !d.code_mask() } else { low };
            assert_eq!(out[k] as u32, want as u32, "wrap_int({d}, {x:#x})");
        }
    }
    // On an i64 too.
    let ys = [u64::MAX, 0x1_0000_0080, 0x7f];
    let out = run_map(Type::I64, &ys, |b, x, _, _| codec::wrap_int(b, DType::Int(8), x));
    assert_eq!(out, [u64::MAX, (-128i64) as u64, 0x7f]);
}

#[test]
fn philox_and_stochastic_bits_match_tilc_dtype() {
    let seed = 0x5eed_0005;
    let mut rng = Rng::new(seed);
    // Philox: counter and key words come from four loaded i32s (two lanes of a 16-byte load).
    let inputs: Vec<u64> = (0..512).map(|_| rng.next_u64()).collect();
    let keys = [0u32, 0xdead_beef];
    for word in 0..4 {
        let out = run_map(Type::I64, &inputs, |b, x, _, _| {
            let c32 = b.i64(32);
            let hi = b.shr_u(x, c32);
            let lo = b.cast(CastOp::Trunc, x, Type::I32);
            let hi = b.cast(CastOp::Trunc, hi, Type::I32);
            let k0 = b.i32(keys[0] as i32);
            let k1 = b.i32(keys[1] as i32);
            let w = codec::philox4x32_10(b, [lo, hi, hi, lo], [k0, k1]);
            w[word]
        });
        for (k, &x) in inputs.iter().enumerate() {
            let (lo, hi) = (x as u32, (x >> 32) as u32);
            let want = tilc_dtype::philox4x32_10([lo, hi, hi, lo], keys)[word];
            assert_eq!(out[k] as u32, want, "seed {seed}: philox word {word} of {x:#x}");
        }
    }
    // Stochastic bits: the element index is the input (large ones included), the seed the
    // kernel's i64 parameter.
    let mut idx: Vec<u64> = (0..256).map(|k| k as u64).collect();
    idx.extend((0..256).map(|_| rng.next_u64() >> (rng.next_u32() % 64)));
    idx.extend([1 << 34, (1 << 34) + 3, u64::MAX]);
    let out = run_map(Type::I64, &idx, |b, x, _, s| codec::stochastic_bits(b, s, x));
    for (k, &i) in idx.iter().enumerate() {
        assert_eq!(out[k] as u32, tilc_dtype::stochastic_bits(SEED_PARAM, i), "seed {seed}: stochastic_bits index {i}");
    }
}

#[test]
fn carriers_and_code_types_follow_the_widths() {
    assert_eq!(codec::carrier(DType::UInt(1)), Type::I32);
    assert_eq!(codec::carrier(DType::Int(64)), Type::I64);
    assert_eq!(codec::carrier(dt("f4e2m1")), Type::F32);
    assert_eq!(codec::carrier(DType::F64), Type::F64);
    assert_eq!(codec::code_type(DType::F64), Type::I64);
    assert_eq!(codec::code_type(dt("ue4m3")), Type::I32);
}

/// The exact-embedding fast path of `convert` (dequantization: small integers and narrow
/// floats to f16/bf16/fp8/f32) gives the interpreter's values for every source code, in every
/// mode; and the embedding test itself agrees with decoding every code on the host.
#[test]
fn exact_embeddings_convert_every_code_like_the_interpreter() {
    let seed = 0x5eed_0004;
    let ints = ["u1", "u2", "u3", "u4", "i4", "u5", "u6", "i6", "u8", "i8", "u11", "i12"];
    let floats = ["f4e2m1", "f6e2m3", "f6e3m2", "f8e4m3", "f8e5m2", "ue4m3", "f16", "bf16"];
    let tos = ["f16", "bf16", "f8e4m3", "f8e5m2", "f6e3m2", "f32"];
    let mut fast = 0;
    for from in ints.iter().chain(&floats) {
        let from = dt(from);
        for to in tos {
            let to = dt(to);
            let exact = codec::exactly_representable(from, to);
            // The host's view: every code's value survives the round trip through `to`.
            let codes: Vec<u64> = (0..1u64 << from.bits()).collect();
            let host_exact = codes.iter().all(|&c| {
                let v = from.decode(c);
                v.is_nan() && to.is_float() && to.decode(to.encode(v, tilc_dtype::Rounding::NearestEven, Overflow::NonSaturating)).is_nan()
                    || to.decode(to.encode(v, tilc_dtype::Rounding::NearestEven, Overflow::NonSaturating)) == v
            });
            if exact {
                assert!(host_exact, "{from} → {to} is called exact but some value changes");
                fast += 1;
            }
            let carriers = run_map(Type::I32, &codes, |b, c, _, _| codec::decode(b, from, c));
            if from.bits() <= 8 || exact {
                check_convert(from, to, &carriers, seed);
            }
        }
    }
    assert!(fast >= 20, "only {fast} pairs take the fast path");
    // What the library's dequantizers rely on.
    for (from, to) in [("u4", "f16"), ("i4", "bf16"), ("u8", "f16"), ("i8", "bf16"), ("f8e4m3", "f16"), ("f6e3m2", "bf16"), ("f4e2m1", "f16")] {
        assert!(codec::exactly_representable(dt(from), dt(to)), "{from} → {to}");
    }
    for (from, to) in [("u16", "f16"), ("i12", "bf16"), ("f16", "bf16"), ("bf16", "f16"), ("f8e5m2", "f8e4m3"), ("i4", "ue4m3")] {
        assert!(!codec::exactly_representable(dt(from), dt(to)), "{from} → {to}");
    }
}

/// `encode_operand` (tensor-core operands): for f16 and bf16, a value just decoded from a code
/// gives that code back for all 65 536 codes (NaN payloads included — any NaN is fine for an
/// operand), and any other value gives `encode`'s code except that NaNs only need to stay NaN.
#[test]
fn encode_operand_returns_decoded_codes_and_agrees_with_encode() {
    for name in ["f16", "bf16"] {
        let d = dt(name);
        let codes: Vec<u64> = (0..1u64 << 16).collect();
        let out = run_map(Type::I32, &codes, |b, x, _, _| {
            let v = codec::decode(b, d, x);
            codec::encode_operand(b, d, v)
        });
        for (&c, &o) in codes.iter().zip(&out) {
            assert_eq!(o & 0xffff, c, "{name}: code {c:#06x} decoded and encoded as an operand");
        }
        // Values that were computed, not decoded: f32 values of the format (every code's value,
        // through an f32 bit pattern the builder cannot trace back to a code).
        let bits: Vec<u64> = codes.iter().map(|&c| (d.decode(c) as f32).to_bits() as u64).collect();
        let out = run_map(Type::I32, &bits, |b, x, _, _| {
            let v = b.cast(CastOp::Bitcast, x, Type::F32);
            codec::encode_operand(b, d, v)
        });
        for (&c, &o) in codes.iter().zip(&out) {
            let want = d.decode(c);
            let have = d.decode(o & 0xffff);
            assert!(have == want || (want.is_nan() && have.is_nan()), "{name}: value of {c:#06x}: operand code {o:#06x}");
        }
    }
}

/// `encode_operand` of `convert`'s f32 → f16/bf16 results (nearest-even, saturating or not)
/// reads the code off the conversion with integer operations: it must give `encode`'s code for
/// every non-NaN input — overflow, ±Inf and the values around the largest finite one included.
#[test]
fn encode_operand_of_converted_halves_matches_encode() {
    let seed = 0x5eed_0007;
    let mut rng = Rng::new(seed);
    for name in ["f16", "bf16"] {
        let d = dt(name);
        let mut xs: Vec<f32> = edge_values(d).into_iter().map(|x| x as f32).collect();
        xs.extend(random_f32s(&mut rng, d, 256));
        xs.extend([f32::INFINITY, f32::NEG_INFINITY, f32::MAX, -f32::MAX, 65504.0, 65519.0, 65520.0, -65520.0, 1e30, -1e-30, 0.0, -0.0]);
        let bits: Vec<u64> = xs.iter().map(|x| x.to_bits() as u64).collect();
        for ov in [Overflow::Saturate, Overflow::NonSaturating] {
            let run = |operand: bool| {
                run_map(Type::I32, &bits, |b, x, _, _| {
                    let x = b.cast(CastOp::Bitcast, x, Type::F32);
                    let y = codec::convert(b, DType::F32, d, x, codec::SimtRounding::NearestEven, ov);
                    if operand { codec::encode_operand(b, d, y) } else { codec::encode(b, d, y) }
                })
            };
            let (have, want) = (run(true), run(false));
            for (k, x) in xs.iter().enumerate() {
                if x.is_nan() {
                    assert!(d.decode(have[k] & 0xffff).is_nan(), "seed {seed}: {name} {ov:?}: NaN became {:#06x}", have[k]);
                } else {
                    assert_eq!(have[k] & 0xffff, want[k] & 0xffff, "seed {seed}: {name} {ov:?}: {x:e} ({:#010x})", x.to_bits());
                }
            }
        }
    }
}
