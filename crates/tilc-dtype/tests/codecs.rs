//! Exhaustive and rule-by-rule checks of the codecs against formulas written independently here.

mod common;

use common::{Rng, small_float_names, small_int_types};
use tilc_dtype::{DType, FloatFamily, FloatFormat, Overflow, Rounding};

const MODES: [Rounding; 5] = [
    Rounding::NearestEven,
    Rounding::TowardZero,
    Rounding::TowardPositive,
    Rounding::TowardNegative,
    Rounding::Stochastic { seed: 7, index: 3 },
];

/// The value of a code, from the textbook formula.
fn oracle(e: u32, m: u32, signed: bool, family: &str, code: u64) -> f64 {
    if !signed && code >> (e + m) != 0 {
        return f64::NAN;
    }
    let negative = signed && (code >> (e + m)) & 1 == 1;
    let ef = (code >> m) & ((1 << e) - 1);
    let mf = code & ((1 << m) - 1);
    let all_e = (1u64 << e) - 1;
    let all_m = (1u64 << m) - 1;
    let bias = (1i32 << (e - 1)) - 1;
    let magnitude = match family {
        "ieee" if ef == all_e => {
            if mf == 0 {
                f64::INFINITY
            } else {
                f64::NAN
            }
        }
        "finite-nan" if ef == all_e && mf == all_m => f64::NAN,
        "power-of-two" if ef == all_e => f64::NAN,
        "power-of-two" => 2f64.powi(ef as i32 - bias),
        _ if ef == 0 => mf as f64 / 2f64.powi(m as i32) * 2f64.powi(1 - bias),
        _ => (1.0 + mf as f64 / 2f64.powi(m as i32)) * 2f64.powi(ef as i32 - bias),
    };
    if negative { -magnitude } else { magnitude }
}

fn same(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

#[test]
fn every_code_of_every_float_up_to_16_bits_decodes_to_the_formula() {
    for (name, e, m, signed, family) in small_float_names() {
        let d = DType::parse(&name).unwrap_or_else(|err| panic!("{name}: {err}"));
        let f = d.float_format().expect("float");
        assert_eq!(
            (f.exp_bits(), f.man_bits(), f.signed()),
            (e, m, signed),
            "{name}"
        );
        for code in 0..1u64 << d.bits() {
            let want = oracle(e, m, signed, family, code);
            let got = d.decode(code);
            assert!(
                same(got, want),
                "{name} code {code:#x}: got {got:e}, want {want:e}"
            );
        }
    }
}

#[test]
fn every_code_of_every_int_up_to_16_bits_decodes_to_the_formula() {
    for d in small_int_types() {
        let b = d.bits();
        for code in 0..1u64 << b {
            let want = if d.is_signed() && code >= 1 << (b - 1) {
                code as f64 - 2f64.powi(b as i32)
            } else {
                code as f64
            };
            assert_eq!(d.decode(code), want, "{d} code {code:#x}");
            for mode in MODES {
                for overflow in [Overflow::Saturate, Overflow::NonSaturating] {
                    assert_eq!(d.encode(want, mode, overflow), code, "{d} {want} {mode:?}");
                }
            }
        }
    }
}

#[test]
fn every_non_nan_float_code_round_trips_in_every_mode() {
    for (name, ..) in small_float_names() {
        let d = DType::parse(&name).expect("parses");
        for code in 0..1u64 << d.bits() {
            let v = d.decode(code);
            if v.is_nan() {
                continue;
            }
            for mode in MODES {
                for overflow in [Overflow::Saturate, Overflow::NonSaturating] {
                    let back = d.encode(v, mode, overflow);
                    let saturated_inf = overflow == Overflow::Saturate && v.is_infinite();
                    if saturated_inf {
                        assert_eq!(d.decode(back).abs(), d.max_finite(), "{name} {v}");
                    } else {
                        assert_eq!(
                            back, code,
                            "{name} code {code:#x} value {v:e} {mode:?} {overflow:?}"
                        );
                    }
                }
            }
        }
    }
}

/// Sorted non-negative finite values of a format with their codes.
fn positive_values(d: &DType) -> Vec<(f64, u64)> {
    let mut v: Vec<(f64, u64)> = (0..1u64 << d.bits())
        .map(|c| (d.decode(c), c))
        .filter(|(x, _)| x.is_finite() && x.is_sign_positive())
        .collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    v
}

#[test]
fn ties_round_to_even_and_directed_modes_pick_the_right_neighbour() {
    for (name, _, m, signed, _) in small_float_names() {
        let d = DType::parse(&name).expect("parses");
        let values = positive_values(&d);
        let sign = if signed { 1u64 << (d.bits() - 1) } else { 0 };
        for pair in values.windows(2) {
            let ((a, ca), (b, cb)) = (pair[0], pair[1]);
            let mid = (a + b) / 2.0;
            // The even significand: for M ≥ 1 the even code; with M = 0 only zero is even.
            let even = if m >= 1 {
                if ca % 2 == 0 { ca } else { cb }
            } else if a == 0.0 {
                ca
            } else {
                cb
            };
            let enc = |x: f64, r: Rounding| d.encode(x, r, Overflow::Saturate);
            assert_eq!(enc(mid, Rounding::NearestEven), even, "{name} tie {a} {b}");
            assert_eq!(enc(mid, Rounding::TowardZero), ca, "{name} rtz {a} {b}");
            assert_eq!(enc(mid, Rounding::TowardPositive), cb, "{name} up {a} {b}");
            assert_eq!(
                enc(mid, Rounding::TowardNegative),
                ca,
                "{name} down {a} {b}"
            );
            let below = mid - (b - a) / 1024.0;
            let above = mid + (b - a) / 1024.0;
            assert_eq!(
                enc(below, Rounding::NearestEven),
                ca,
                "{name} below {a} {b}"
            );
            assert_eq!(
                enc(above, Rounding::NearestEven),
                cb,
                "{name} above {a} {b}"
            );
            if signed {
                assert_eq!(
                    enc(-mid, Rounding::NearestEven),
                    sign | even,
                    "{name} -tie {a} {b}"
                );
                assert_eq!(
                    enc(-mid, Rounding::TowardPositive),
                    sign | ca,
                    "{name} -up {a} {b}"
                );
                assert_eq!(
                    enc(-mid, Rounding::TowardNegative),
                    sign | cb,
                    "{name} -down {a} {b}"
                );
            }
        }
    }
}

#[test]
fn encode_is_monotone() {
    let mut rng = Rng(0x5eed_0001);
    for (name, ..) in small_float_names().into_iter().filter(|f| f.0.len() < 8) {
        let d = DType::parse(&name).expect("parses");
        let mut xs = Vec::new();
        for (v, _) in positive_values(&d) {
            for x in [
                v,
                v * (1.0 + 1e-9),
                v * (1.0 - 1e-9),
                v * 1.25,
                v * 1.5,
                v * 0.75,
            ] {
                xs.push(x);
                xs.push(-x);
            }
        }
        for _ in 0..2000 {
            let x = (rng.unit() * 2.0 - 1.0) * d.max_finite() * 1.5;
            xs.push(x);
        }
        xs.sort_by(f64::total_cmp);
        for mode in MODES {
            let mut last = f64::NEG_INFINITY;
            for &x in &xs {
                let y = d.decode(d.encode(x, mode, Overflow::Saturate));
                assert!(
                    y >= last,
                    "{name} {mode:?}: encode({x:e}) = {y:e} < {last:e} (seed 0x5eed_0001)"
                );
                last = y;
            }
        }
    }
}

#[test]
fn named_formats_have_their_specified_facts() {
    let facts = [
        // name, bits, max, min normal, min subnormal
        ("f4e2m1", 4, 6.0, 1.0, Some(0.5)),
        ("f6e2m3", 6, 7.5, 1.0, Some(0.125)),
        ("f6e3m2", 6, 28.0, 0.25, Some(0.0625)),
        ("f8e4m3", 8, 448.0, 2f64.powi(-6), Some(2f64.powi(-9))),
        ("f8e5m2", 8, 57344.0, 2f64.powi(-14), Some(2f64.powi(-16))),
        ("f16", 16, 65504.0, 2f64.powi(-14), Some(2f64.powi(-24))),
        (
            "bf16",
            16,
            3.3895313892515355e38,
            2f64.powi(-126),
            Some(2f64.powi(-133)),
        ),
        (
            "f32",
            32,
            f32::MAX as f64,
            2f64.powi(-126),
            Some(2f64.powi(-149)),
        ),
        (
            "f64",
            64,
            f64::MAX,
            f64::MIN_POSITIVE,
            Some(2f64.powi(-1074)),
        ),
        ("e8m0", 8, 2f64.powi(127), 2f64.powi(-127), None),
        ("ue4m3", 8, 448.0, 2f64.powi(-6), Some(2f64.powi(-9))),
        ("ue5m3", 8, 114688.0, 2f64.powi(-14), Some(2f64.powi(-17))),
    ];
    for (name, bits, max, min_normal, min_sub) in facts {
        let d = DType::parse(name).expect("parses");
        let f = d.float_format().expect("float");
        assert_eq!(d.bits(), bits, "{name}");
        assert_eq!(d.max_finite(), max, "{name}");
        assert_eq!(f.min_normal(), min_normal, "{name}");
        assert_eq!(f.min_subnormal(), min_sub, "{name}");
        assert_eq!(d.to_string(), name);
    }
    assert_eq!(
        DType::parse("f8e4m3")
            .unwrap()
            .float_format()
            .unwrap()
            .family(),
        FloatFamily::FiniteNan
    );
    assert_eq!(
        DType::parse("f8e5m2")
            .unwrap()
            .float_format()
            .unwrap()
            .family(),
        FloatFamily::Ieee
    );
    assert_eq!(
        DType::parse("f6e3m2")
            .unwrap()
            .float_format()
            .unwrap()
            .family(),
        FloatFamily::Finite
    );
    assert_eq!(DType::parse("e8m0").unwrap().min_finite(), 2f64.powi(-127));
    assert_eq!(DType::parse("f6e3m2").unwrap().min_finite(), -28.0);
    assert_eq!(DType::parse("ue4m3").unwrap().min_finite(), 0.0);
    assert_eq!(
        (DType::Int(6).min_finite(), DType::Int(6).max_finite()),
        (-32.0, 31.0)
    );
    assert_eq!(
        (DType::UInt(3).min_finite(), DType::UInt(3).max_finite()),
        (0.0, 7.0)
    );
    assert_eq!(
        (DType::Int(32).min_finite(), DType::UInt(32).max_finite()),
        (-2147483648.0, 4294967295.0)
    );
}

#[test]
fn f4e2m1_values_and_rules() {
    let d = DType::parse("f4e2m1").unwrap();
    let want = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0];
    for (c, w) in want.iter().enumerate() {
        assert_eq!(d.decode(c as u64), *w);
        assert_eq!(d.decode(c as u64 | 8), -*w);
    }
    let rne = |x: f64| d.encode(x, Rounding::NearestEven, Overflow::NonSaturating);
    assert_eq!(rne(5.0), 6, "5 ties to 4 (even code 6)");
    assert_eq!(rne(2.5), 4, "2.5 ties to 2");
    assert_eq!(rne(0.25), 0, "0.25 ties to 0");
    assert_eq!(rne(0.75), 2, "0.75 ties to 1.0");
    assert_eq!(rne(1e9), 7, "finite-only formats saturate");
    assert_eq!(rne(f64::NEG_INFINITY), 15);
    assert_eq!(rne(f64::NAN), 0, "NaN has no code: +0");
    assert_eq!(rne(-0.0), 8, "signed zero");
    assert_eq!(rne(-1e-30), 8, "underflow keeps the sign");
}

#[test]
fn overflow_and_specials_follow_each_family() {
    use Overflow::{NonSaturating as Ns, Saturate as Sat};
    use Rounding::*;
    let e4m3 = DType::parse("f8e4m3").unwrap();
    assert_eq!(e4m3.encode(464.0, NearestEven, Ns), 0x7E, "464 ties to 448");
    assert_eq!(e4m3.encode(464.1, NearestEven, Ns), 0x7F, "beyond: NaN");
    assert_eq!(e4m3.encode(464.1, NearestEven, Sat), 0x7E);
    assert_eq!(e4m3.encode(f64::INFINITY, NearestEven, Ns), 0x7F);
    assert_eq!(e4m3.encode(f64::NEG_INFINITY, NearestEven, Ns), 0xFF);
    assert_eq!(e4m3.encode(f64::NEG_INFINITY, NearestEven, Sat), 0xFE);
    assert_eq!(
        e4m3.encode(1e6, TowardZero, Ns),
        0x7E,
        "toward zero never overflows"
    );
    assert_eq!(e4m3.encode(f64::NAN, NearestEven, Sat), 0x7F);
    assert_eq!(
        e4m3.encode(2f64.powi(-10), NearestEven, Ns),
        0x00,
        "half the smallest subnormal ties to 0"
    );
    assert_eq!(e4m3.encode(2f64.powi(-10) * 1.001, NearestEven, Ns), 0x01);
    assert!(e4m3.decode(0x7F).is_nan() && e4m3.decode(0xFF).is_nan());

    let e5m2 = DType::parse("f8e5m2").unwrap();
    assert_eq!(
        e5m2.encode(61440.0, NearestEven, Ns),
        0x7C,
        "tie above max goes to Inf"
    );
    assert_eq!(e5m2.encode(61439.0, NearestEven, Ns), 0x7B);
    assert_eq!(e5m2.encode(1e6, TowardZero, Ns), 0x7B);
    assert_eq!(e5m2.encode(-1e6, TowardPositive, Ns), 0xFB);
    assert_eq!(e5m2.encode(-1e6, TowardNegative, Ns), 0xFC);
    assert_eq!(e5m2.encode(1e6, TowardPositive, Ns), 0x7C);
    assert_eq!(e5m2.encode(f64::INFINITY, NearestEven, Sat), 0x7B);
    assert_eq!(e5m2.encode(f64::NAN, NearestEven, Ns), 0x7E);

    let f16 = DType::F16;
    assert_eq!(f16.encode(65520.0, NearestEven, Ns), 0x7C00);
    assert_eq!(f16.encode(65519.99, NearestEven, Ns), 0x7BFF);
    assert_eq!(f16.encode(65520.0, NearestEven, Sat), 0x7BFF);
    assert_eq!(f16.encode(-0.0, NearestEven, Ns), 0x8000);
    assert_eq!(f16.encode(2f64.powi(-25), NearestEven, Ns), 0x0000);
    assert_eq!(
        f16.encode(2f64.powi(-25) * 3.0, NearestEven, Ns),
        0x0002,
        "subnormal tie to even"
    );
    assert_eq!(f16.encode(1.0 / 3.0, NearestEven, Ns), 0x3555);
    let bf16 = DType::BF16;
    assert_eq!(
        bf16.encode(f64::from(f32::from_bits(0x3F80_8000)), NearestEven, Ns),
        0x3F80
    );
    assert_eq!(
        bf16.encode(f64::from(f32::from_bits(0x3F81_8000)), NearestEven, Ns),
        0x3F82
    );
    assert_eq!(
        bf16.encode(f64::from(f32::from_bits(0x3F80_8001)), NearestEven, Ns),
        0x3F81
    );
    let f32t = DType::F32;
    for bits in [0u32, 1, 0x7F7F_FFFF, 0x8000_0001, 0x3EAA_AAAB, 0x0080_0000] {
        assert_eq!(
            f32t.encode(f64::from(f32::from_bits(bits)), NearestEven, Ns),
            u64::from(bits)
        );
    }
    assert_eq!(
        f32t.encode(1.0 + 2f64.powi(-24), NearestEven, Ns),
        0x3F80_0000
    );
    assert_eq!(
        f32t.encode(1.0 + 3.0 * 2f64.powi(-24), NearestEven, Ns),
        0x3F80_0002
    );
    assert_eq!(DType::F64.encode(0.1, NearestEven, Ns), 0.1f64.to_bits());
    assert_eq!(DType::F64.decode(0.1f64.to_bits()), 0.1);

    let e8m0 = DType::parse("e8m0").unwrap();
    assert_eq!(e8m0.encode(1.0, NearestEven, Ns), 127);
    assert_eq!(
        e8m0.encode(3.0, NearestEven, Ns),
        129,
        "ties round up (as ml_dtypes)"
    );
    assert_eq!(e8m0.encode(2.9, NearestEven, Ns), 128);
    assert_eq!(e8m0.encode(0.0, NearestEven, Ns), 0xFF, "no zero");
    assert_eq!(e8m0.encode(0.0, NearestEven, Sat), 0);
    assert_eq!(e8m0.encode(-1.0, NearestEven, Ns), 0xFF);
    assert_eq!(e8m0.encode(-1.0, NearestEven, Sat), 0);
    assert_eq!(e8m0.encode(2f64.powi(127), NearestEven, Ns), 254);
    assert_eq!(e8m0.encode(2f64.powi(128), NearestEven, Ns), 0xFF);
    assert_eq!(e8m0.encode(2f64.powi(128), NearestEven, Sat), 254);
    assert_eq!(
        e8m0.encode(2f64.powi(-140), NearestEven, Ns),
        0,
        "underflow clamps to 2^-127"
    );
    assert_eq!(e8m0.decode(0), 2f64.powi(-127));

    let ue4m3 = DType::parse("ue4m3").unwrap();
    assert_eq!(ue4m3.encode(448.0, NearestEven, Ns), 0x7E);
    assert_eq!(ue4m3.encode(500.0, NearestEven, Ns), 0x7F);
    assert_eq!(ue4m3.encode(-1.0, NearestEven, Sat), 0);
    assert_eq!(ue4m3.encode(-1.0, NearestEven, Ns), 0x7F);
    assert_eq!(ue4m3.encode(-0.0, NearestEven, Ns), 0);
    assert!(ue4m3.decode(0x80).is_nan(), "the padding bit must be zero");
}

#[test]
fn integer_casts_wrap_or_saturate() {
    use Overflow::{NonSaturating as Wrap, Saturate as Sat};
    use Rounding::*;
    let u3 = DType::UInt(3);
    assert_eq!(u3.encode(7.5, NearestEven, Sat), 7);
    assert_eq!(u3.encode(7.5, NearestEven, Wrap), 0);
    assert_eq!(u3.encode(6.5, NearestEven, Sat), 6);
    assert_eq!(u3.encode(-1.0, NearestEven, Sat), 0);
    assert_eq!(u3.encode(-1.0, NearestEven, Wrap), 7);
    assert_eq!(u3.encode(2.7, TowardZero, Sat), 2);
    assert_eq!(u3.encode(2.2, TowardPositive, Sat), 3);
    let i3 = DType::Int(3);
    assert_eq!(i3.decode(4), -4.0);
    assert_eq!(i3.encode(-4.5, NearestEven, Sat), 4);
    assert_eq!(i3.encode(-5.0, NearestEven, Sat), 4);
    assert_eq!(i3.encode(-5.0, NearestEven, Wrap), 3);
    assert_eq!(i3.encode(4.0, NearestEven, Wrap), 4);
    assert_eq!(i3.encode(-2.5, TowardZero, Sat), 6);
    assert_eq!(i3.encode(-2.5, TowardNegative, Sat), 5);
    assert_eq!(i3.encode(-2.5, TowardPositive, Sat), 6);
    assert_eq!(DType::UInt(8).encode(-1.0, NearestEven, Wrap), 255);
    assert_eq!(
        DType::Int(32).encode(2f64.powi(31), NearestEven, Wrap),
        0x8000_0000
    );
    assert_eq!(
        DType::Int(32).encode(2f64.powi(31), NearestEven, Sat),
        0x7FFF_FFFF
    );
    assert_eq!(
        DType::UInt(32).encode(2f64.powi(40) + 5.0, NearestEven, Wrap),
        5
    );
    assert_eq!(DType::Int(16).encode(1e300, NearestEven, Wrap), 0);
    assert_eq!(
        DType::Int(16).encode(f64::INFINITY, NearestEven, Wrap),
        0x7FFF
    );
    assert_eq!(
        DType::Int(16).encode(f64::NEG_INFINITY, NearestEven, Sat),
        0x8000
    );
    assert_eq!(DType::Int(16).encode(f64::NAN, NearestEven, Sat), 0);
    // Converting between types decodes exactly and re-encodes.
    let e4m3 = DType::parse("f8e4m3").unwrap();
    assert_eq!(e4m3.convert(0x7E, &DType::Int(8), NearestEven, Sat), 127);
    assert_eq!(e4m3.convert(0x7E, &DType::Int(16), NearestEven, Sat), 448);
}

#[test]
fn names_parse_print_and_explain_errors() {
    let mut names: Vec<String> = small_float_names().into_iter().map(|f| f.0).collect();
    names.extend((1..=32).flat_map(|b| [format!("u{b}"), format!("i{b}")]));
    names.extend(["f16", "bf16", "f32", "f64", "f20e8m11", "f24e8m15"].map(String::from));
    for name in &names {
        let d = DType::parse(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        let printed = d.to_string();
        assert_eq!(DType::parse(&printed), Ok(d), "{name} prints as {printed}");
    }
    for (alias, canonical) in [
        ("f16e5m10", "f16"),
        ("f16e8m7", "bf16"),
        ("f32e8m23", "f32"),
        ("f64e11m52", "f64"),
        ("ue8m0", "e8m0"),
    ] {
        assert_eq!(DType::parse(alias).unwrap().to_string(), canonical);
    }
    assert_eq!(DType::parse("u3"), Ok(DType::UInt(3)));
    assert_eq!(DType::parse("i6"), Ok(DType::Int(6)));
    assert_eq!(
        DType::parse("f8e4m3"),
        Ok(DType::Float(FloatFormat::F8E4M3))
    );
    for bad in [
        "u0", "u33", "i64", "f8e4m4", "f12e9m2", "fp8", "", "u", "ue3m3", "f9e1m7", "f33e8m24",
        "int8", "u+3", "f8e4m3x",
    ] {
        let err = DType::parse(bad).expect_err(bad).to_string();
        assert!(err.contains("supported"), "{bad}: {err}");
        assert!(err.contains('`'), "{bad}: error names the input: {err}");
    }
}

#[test]
fn formats_built_by_hand_are_checked_and_named_honestly() {
    let odd = FloatFormat::new(4, 3, true, FloatFamily::Ieee).unwrap();
    assert_eq!(odd.to_string(), "f8e4m3<Ieee>");
    assert!(
        DType::parse(&odd.to_string()).is_err(),
        "no name parses to a different format"
    );
    assert_eq!(
        odd.max_finite(),
        240.0,
        "IEEE-like e4m3 reserves the top binade"
    );
    assert_eq!(
        FloatFormat::new(4, 3, true, FloatFamily::FiniteNan),
        Ok(FloatFormat::F8E4M3)
    );
    assert_eq!(
        FloatFormat::new(5, 3, false, FloatFamily::FiniteNan)
            .unwrap()
            .to_string(),
        "ue5m3"
    );
    assert_eq!(
        FloatFormat::new(3, 2, false, FloatFamily::Finite)
            .unwrap()
            .to_string(),
        "ue3m2<Finite>"
    );
    assert!(FloatFormat::new(9, 2, true, FloatFamily::Ieee).is_err());
    assert!(FloatFormat::new(5, 24, true, FloatFamily::Ieee).is_err());
    assert!(
        FloatFormat::new(5, 4, false, FloatFamily::FiniteNan).is_err(),
        "unsigned must fit a byte"
    );
    assert!(FloatFormat::new(8, 1, false, FloatFamily::PowerOfTwo).is_err());
    assert!(FloatFormat::new(1, 3, true, FloatFamily::Ieee).is_err());
}
