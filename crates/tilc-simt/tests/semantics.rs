//! Per-instruction semantics against independent expectations: truth tables, hand-computed
//! values, the `half` crate's rounding, and formulas written differently from the crate's.
mod common;
use common::Rng;
use tilc_simt::ir::*;
use tilc_simt::semantics as sem;
use tilc_simt::types::{Fp8Format, HalfFormat, Scalar, Type};

#[test]
fn prmt_selects_bytes_and_replicates_signs() {
    let (a, b) = (0x3322_1100u32, 0x7766_5544u32);
    assert_eq!(sem::prmt(a, b, 0x5410), 0x5544_1100);
    assert_eq!(sem::prmt(a, b, 0x7632), 0x7766_3322);
    assert_eq!(sem::prmt(a, b, 0x0123), 0x0011_2233);
    // Bit 3 of a selector replicates the selected byte's sign bit.
    assert_eq!(sem::prmt(0x0000_0080, 0, 0x8880), 0xffff_ff80);
    assert_eq!(sem::prmt(0x0000_007f, 0, 0x8888), 0);
    // Random: an independent byte-array model.
    let seed = 11;
    let mut rng = Rng::new(seed);
    for _ in 0..2000 {
        let (a, b, s) = (rng.next_u32(), rng.next_u32(), rng.next_u32() & 0xffff);
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&a.to_le_bytes());
        bytes[4..].copy_from_slice(&b.to_le_bytes());
        let mut want = [0u8; 4];
        for (i, w) in want.iter_mut().enumerate() {
            let sel = (s >> (4 * i)) as usize & 0xf;
            let byte = bytes[sel % 8];
            *w = if sel >= 8 { ((byte as i8) >> 7) as u8 } else { byte };
        }
        assert_eq!(sem::prmt(a, b, s), u32::from_le_bytes(want), "seed {seed} a={a:#x} b={b:#x} s={s:#x}");
    }
}

#[test]
fn lop3_truth_tables() {
    let mut rng = Rng::new(3);
    for _ in 0..500 {
        let (a, b, c) = (rng.next_u32(), rng.next_u32(), rng.next_u32());
        assert_eq!(sem::lop3(a, b, c, 0xf0), a);
        assert_eq!(sem::lop3(a, b, c, 0xcc), b);
        assert_eq!(sem::lop3(a, b, c, 0xaa), c);
        assert_eq!(sem::lop3(a, b, c, 0xf0 & 0xcc | 0xaa), (a & b) | c);
        assert_eq!(sem::lop3(a, b, c, 0xf0 ^ 0xcc ^ 0xaa), a ^ b ^ c);
        assert_eq!(sem::lop3(a, b, c, !0xf0u8 & 0xcc), !a & b);
        assert_eq!(sem::lop3(a, b, c, 0), 0);
        assert_eq!(sem::lop3(a, b, c, 0xff), u32::MAX);
    }
    // Each of the 8 input combinations picks its LUT bit.
    for lut in [0x01u8, 0x80, 0x5a, 0xe8] {
        for idx in 0..8u32 {
            let (a, b, c) = ((idx >> 2) & 1, (idx >> 1) & 1, idx & 1);
            assert_eq!(sem::lop3(a, b, c, lut) & 1, ((lut >> idx) & 1) as u32, "lut {lut:#x} idx {idx}");
        }
    }
}

#[test]
fn funnel_shifts() {
    let (lo, hi) = (0x89ab_cdefu32, 0x0123_4567u32);
    for n in 0..=40u32 {
        let wide = ((hi as u64) << 32) | lo as u64;
        let nc = n.min(32);
        // shf.l: the high word of (hi:lo) << n; shf.r: the low word of (hi:lo) >> n.
        let left = if nc == 32 { lo } else if nc == 0 { hi } else { (hi << nc) | (lo >> (32 - nc)) };
        let right = if nc == 32 { hi } else if nc == 0 { lo } else { (lo >> nc) | (hi << (32 - nc)) };
        assert_eq!(sem::shf(ShfDir::Left, ShfMode::Clamp, lo, hi, n), left, "l.clamp {n}");
        assert_eq!(sem::shf(ShfDir::Right, ShfMode::Clamp, lo, hi, n), right, "r.clamp {n}");
        let nw = n & 31;
        assert_eq!(sem::shf(ShfDir::Left, ShfMode::Wrap, lo, hi, n), ((wide << nw) >> 32) as u32, "l.wrap {n}");
        assert_eq!(sem::shf(ShfDir::Right, ShfMode::Wrap, lo, hi, n), (wide >> nw) as u32, "r.wrap {n}");
    }
}

#[test]
fn bfe_extracts_fields() {
    assert_eq!(sem::bfe(false, 0xabcd_1234, 4, 8), 0x23);
    assert_eq!(sem::bfe(true, 0x0000_0f00, 8, 4), 0xffff_ffff);
    assert_eq!(sem::bfe(true, 0x0000_0700, 8, 4), 7);
    assert_eq!(sem::bfe(false, 0xffff_ffff, 30, 8), 3); // field runs off the top
    assert_eq!(sem::bfe(false, 0x1234, 0, 0), 0);
    let mut rng = Rng::new(5);
    for _ in 0..1000 {
        let a = rng.next_u32();
        let pos = rng.below(32) as u32;
        let len = 1 + rng.below(32 - pos as u64) as u32;
        let field = ((a as u64 >> pos) & ((1u64 << len) - 1)) as u32;
        assert_eq!(sem::bfe(false, a, pos, len), field);
        let signed = ((field << (32 - len)) as i32 >> (32 - len)) as u32;
        assert_eq!(sem::bfe(true, a, pos, len), signed);
    }
}

#[test]
fn shuffle_sources_follow_the_ptx_pseudocode() {
    for lane in 0..32u32 {
        for b in 0..32u32 {
            // Whole-warp conventions: c = 0x1f for idx/down/bfly, 0 for up.
            assert_eq!(sem::shfl_source(ShflMode::Idx, lane, b, 0x1f).0, b);
            assert_eq!(sem::shfl_source(ShflMode::Bfly, lane, b, 0x1f).0, lane ^ b);
            let down = if lane + b <= 31 { lane + b } else { lane };
            assert_eq!(sem::shfl_source(ShflMode::Down, lane, b, 0x1f).0, down);
            let up = if lane >= b { lane - b } else { lane };
            assert_eq!(sem::shfl_source(ShflMode::Up, lane, b, 0).0, up);
            // Segments of 8 lanes: c = ((32 - 8) << 8) | 0x1f for down/idx/bfly, (32-8)<<8 for up.
            let seg = lane & !7;
            let c = (24 << 8) | 0x1f;
            let down8 = if (lane & 7) + b <= 7 { lane + b } else { lane };
            assert_eq!(sem::shfl_source(ShflMode::Down, lane, b, c).0, down8, "down8 lane {lane} b {b}");
            assert_eq!(sem::shfl_source(ShflMode::Idx, lane, b, c).0, seg | (b & 7), "idx8");
            let up8 = if (lane & 7) >= b { lane - b } else { lane };
            assert_eq!(sem::shfl_source(ShflMode::Up, lane, b, 24 << 8).0, up8, "up8 lane {lane} b {b}");
        }
    }
}

#[test]
fn f32_to_f16_and_bf16_round_like_the_half_crate() {
    let known = [(1.0f32, 0x3c00u16), (65504.0, 0x7bff), (65520.0, 0x7c00), (2f32.powi(-24), 0x0001), (2f32.powi(-25), 0), (3.0 * 2f32.powi(-26), 0x0001), (-0.0, 0x8000), (f32::INFINITY, 0x7c00)];
    for (x, h) in known {
        assert_eq!(sem::f32_to_half(x, HalfFormat::F16), h, "{x}");
    }
    assert_eq!(sem::f32_to_half(f32::NAN, HalfFormat::F16), 0x7fff);
    assert_eq!(sem::f32_to_half(f32::from_bits(0x3f80_8000), HalfFormat::BF16), 0x3f80); // tie → even
    assert_eq!(sem::f32_to_half(f32::from_bits(0x3f81_8000), HalfFormat::BF16), 0x3f82); // tie → even (up)
    assert_eq!(sem::f32_to_half(f32::from_bits(0x3f80_8001), HalfFormat::BF16), 0x3f81);
    let seed = 17;
    let mut rng = Rng::new(seed);
    for n in 0..200_000 {
        // Mix raw bit patterns (all ranges) with values near the f16 range.
        let x = if n % 2 == 0 { f32::from_bits(rng.next_u32()) } else { rng.range_f64(-70000.0, 70000.0) as f32 * 2f32.powi(-(rng.below(30) as i32)) };
        if x.is_nan() {
            continue;
        }
        assert_eq!(sem::f32_to_half(x, HalfFormat::F16), half::f16::from_f32(x).to_bits(), "seed {seed}: f16 of {x:e} ({:#x})", x.to_bits());
        assert_eq!(sem::f32_to_half(x, HalfFormat::BF16), half::bf16::from_f32(x).to_bits(), "seed {seed}: bf16 of {x:e} ({:#x})", x.to_bits());
    }
    // Decoding is exact for every bit pattern.
    for h in 0..=u16::MAX {
        let want = half::f16::from_bits(h).to_f64();
        let got = sem::half_to_f64(h, HalfFormat::F16);
        assert!(got == want || (got.is_nan() && want.is_nan()), "f16 {h:#x}");
        let want = half::bf16::from_bits(h).to_f64();
        let got = sem::half_to_f64(h, HalfFormat::BF16);
        assert!(got == want || (got.is_nan() && want.is_nan()), "bf16 {h:#x}");
    }
}

/// The value of an OCP fp8 code, written from the format tables.
fn fp8_value(b: u8, e4m3: bool) -> f64 {
    let s = if b & 0x80 != 0 { -1.0 } else { 1.0 };
    let (eb, mb, bias) = if e4m3 { (4, 3, 7) } else { (5, 2, 15) };
    let e = ((b & 0x7f) >> mb) as i32;
    let m = (b & ((1 << mb) - 1)) as f64;
    if e4m3 && b & 0x7f == 0x7f {
        return f64::NAN;
    }
    if !e4m3 && e == (1 << eb) - 1 {
        return if m == 0.0 { s * f64::INFINITY } else { f64::NAN };
    }
    if e == 0 { s * m / (1 << mb) as f64 * 2f64.powi(1 - bias) } else { s * (1.0 + m / (1 << mb) as f64) * 2f64.powi(e - bias) }
}

#[test]
fn fp8_conversions_saturate_and_round_to_even() {
    for (fmt, e4) in [(Fp8Format::E4M3, true), (Fp8Format::E5M2, false)] {
        let max = if e4 { 448.0 } else { 57344.0 };
        assert_eq!(sem::f32_to_fp8(max, fmt), if e4 { 0x7e } else { 0x7b });
        assert_eq!(sem::f32_to_fp8(1e9, fmt), if e4 { 0x7e } else { 0x7b });
        assert_eq!(sem::f32_to_fp8(f32::NEG_INFINITY, fmt), if e4 { 0xfe } else { 0xfb });
        assert_eq!(sem::f32_to_fp8(f32::NAN, fmt), 0x7f);
        assert_eq!(sem::f32_to_fp8(1.0, fmt), if e4 { 0x38 } else { 0x3c });
        // Every finite code decodes to the table value and encodes back to itself; every midpoint
        // between neighbours rounds to the even code.
        let finite: Vec<u8> = (0u8..0x80).filter(|&b| fp8_value(b, e4).is_finite()).collect();
        for &b in &finite {
            let v = fp8_value(b, e4);
            assert_eq!(sem::fp8_to_f64(b, fmt), v, "{fmt:?} {b:#x}");
            assert_eq!(sem::f32_to_fp8(v as f32, fmt), b, "{fmt:?} {b:#x}");
            assert_eq!(sem::f32_to_fp8(-v as f32, fmt), b | 0x80, "{fmt:?} -{b:#x}");
        }
        for w in finite.windows(2) {
            let mid = (fp8_value(w[0], e4) + fp8_value(w[1], e4)) / 2.0;
            let even = if w[0] % 2 == 0 { w[0] } else { w[1] };
            assert_eq!(sem::f32_to_fp8(mid as f32, fmt), even, "{fmt:?} midpoint {mid}");
        }
        // The x2 forms: `hi` to the upper byte; f16x2 decode keeps order.
        let packed = sem::f32x2_to_fp8x2(fmt, 2.0, -0.5);
        assert_eq!(packed, ((sem::f32_to_fp8(2.0, fmt) as u16) << 8) | sem::f32_to_fp8(-0.5, fmt) as u16);
        let h = sem::fp8x2_to_f16x2(fmt, packed);
        assert_eq!(half::f16::from_bits(h as u16).to_f32(), -0.5);
        assert_eq!(half::f16::from_bits((h >> 16) as u16).to_f32(), 2.0);
    }
}

#[test]
fn half_arithmetic_rounds_once() {
    let seed = 23;
    let mut rng = Rng::new(seed);
    for _ in 0..50_000 {
        // Magnitudes in [2^-4, 2^4): every sum and a*b + c is exact in f64, so rounding the f64
        // result once with the half crate is the correctly rounded answer.
        let pick = |rng: &mut Rng| {
            let x = rng.range_f64(1.0, 2.0) * 2f64.powi(rng.below(8) as i32 - 4) * if rng.below(2) == 0 { 1.0 } else { -1.0 };
            half::f16::from_f64(x)
        };
        let (a, b, c) = (pick(&mut rng), pick(&mut rng), pick(&mut rng));
        let (x, y, z) = (a.to_f64(), b.to_f64(), c.to_f64());
        let f = HalfFormat::F16;
        assert_eq!(sem::half_op(HalfOp::Add, f, a.to_bits(), b.to_bits()), half::f16::from_f64(x + y).to_bits(), "seed {seed}: {x} + {y}");
        assert_eq!(sem::half_op(HalfOp::Sub, f, a.to_bits(), b.to_bits()), half::f16::from_f64(x - y).to_bits());
        assert_eq!(sem::half_op(HalfOp::Mul, f, a.to_bits(), b.to_bits()), half::f16::from_f64(x * y).to_bits());
        assert_eq!(sem::half_fma(f, a.to_bits(), b.to_bits(), c.to_bits()), half::f16::from_f64(x * y + z).to_bits(), "seed {seed}: {x}*{y}+{z}");
        let (ab, bb, cb) = (half::bf16::from_f64(x), half::bf16::from_f64(y), half::bf16::from_f64(z));
        let (x, y, z) = (ab.to_f64(), bb.to_f64(), cb.to_f64());
        let g = HalfFormat::BF16;
        assert_eq!(sem::half_op(HalfOp::Add, g, ab.to_bits(), bb.to_bits()), half::bf16::from_f64(x + y).to_bits());
        assert_eq!(sem::half_fma(g, ab.to_bits(), bb.to_bits(), cb.to_bits()), half::bf16::from_f64(x * y + z).to_bits());
    }
    // The u8 → f16 trick from Tilus: 0x64XX - 0x6400 = XX exactly.
    for x in 0..256u16 {
        let r = sem::half_op(HalfOp::Sub, HalfFormat::F16, 0x6400 | x, 0x6400);
        assert_eq!(half::f16::from_bits(r).to_f32(), x as f32);
    }
    // min/max: NaN yields the other operand.
    assert_eq!(sem::half_op(HalfOp::Max, HalfFormat::F16, 0x7e00, 0x3c00), 0x3c00);
    assert_eq!(sem::half_op(HalfOp::Min, HalfFormat::F16, 0x3c00, 0xbc00), 0xbc00);
}

#[test]
fn integer_ops_wrap_and_clamp_like_ptx() {
    let i32t = Type::I32;
    let b = |op, x: i32, y: i32| sem::binary(op, i32t, x as u32 as u128, y as u32 as u128).unwrap() as u32 as i32;
    assert_eq!(b(BinaryOp::Add, i32::MAX, 1), i32::MIN);
    assert_eq!(b(BinaryOp::DivS, -7, 2), -3);
    assert_eq!(b(BinaryOp::RemS, -7, 2), -1);
    assert_eq!(b(BinaryOp::DivS, i32::MIN, -1), i32::MIN);
    assert_eq!(b(BinaryOp::Shl, 1, 32), 0);
    assert_eq!(b(BinaryOp::ShrS, -8, 40), -1);
    assert_eq!(b(BinaryOp::ShrU, -8, 28), 15);
    assert_eq!(b(BinaryOp::MulHiS, -2, 3), -1);
    assert_eq!(b(BinaryOp::MulHiU, -1, 2), 1);
    assert!(sem::binary(BinaryOp::DivU, i32t, 1, 0).is_err());
    // Vectors are lane-wise.
    let v = Type::vector(Scalar::I16, 2);
    let r = sem::binary(BinaryOp::Add, v, 0x0001_ffff, 0x0001_0001).unwrap();
    assert_eq!(r, 0x0002_0000);
    // Float → int saturates, NaN → 0.
    let c = |x: f32| sem::cast(CastOp::FToS, Type::F32, Type::I32, x.to_bits() as u128) as u32 as i32;
    assert_eq!(c(3.9), 3);
    assert_eq!(c(-3.9), -3);
    assert_eq!(c(1e20), i32::MAX);
    assert_eq!(c(f32::NAN), 0);
    assert_eq!(sem::cast(CastOp::FToU, Type::F32, Type::I8, (-5.0f32).to_bits() as u128), 0);
    // i64 → f32 rounds once (2^60 + 2^36 + 1 would round twice through f64).
    let x: i64 = (1 << 60) + (1 << 36) + 1;
    let got = f32::from_bits(sem::cast(CastOp::SToF, Type::I64, Type::F32, x as u64 as u128) as u32);
    // 2^36 + 1 is just above half an f32 ulp (2^37) at 2^60: rounds up to 2^60 + 2^37.
    assert_eq!(got.to_bits(), ((60 + 127) << 23) | 1);
}
