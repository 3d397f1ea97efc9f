//! Host quantizers: layouts, the half-step error bound of group quantization, and the OCP MX
//! and NVFP4 scale rules on worked examples.

mod common;

use common::Rng;
use tilc_dtype::quant::{
    Granularity, IntConfig, MxElement, QuantError, Scheme, mx_scale_code, quantize_float,
    quantize_int, quantize_mx, quantize_nvfp4,
};
use tilc_dtype::{DType, Rounding};

fn matrix(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng(seed);
    (0..rows * cols)
        .map(|i| {
            // Mostly normal values with a few outliers and an offset on some rows.
            let v = rng.normal() * if i % 97 == 0 { 8.0 } else { 1.0 };
            (v + if (i / cols).is_multiple_of(3) {
                0.5
            } else {
                0.0
            }) as f32
        })
        .collect()
}

/// The scale index of element (r, c) per the documented layout.
fn scale_index(q: &tilc_dtype::quant::Quantized, r: usize, c: usize) -> usize {
    (r / q.block[0]) * (q.shape[1] / q.block[1]) + c / q.block[1]
}

#[test]
fn int_group_quantization_is_within_half_a_step() {
    let (rows, cols) = (64, 256);
    let seed = 0x9e0u64;
    let x = matrix(rows, cols, seed);
    let granularities = [
        Granularity::PerTensor,
        Granularity::PerChannel { axis: 0 },
        Granularity::PerChannel { axis: 1 },
        Granularity::PerGroup { axis: 1, size: 32 },
        Granularity::PerGroup { axis: 1, size: 128 },
        Granularity::PerGroup { axis: 0, size: 64 },
        Granularity::PerGroup { axis: 0, size: 16 },
    ];
    for bits in 1..=8u32 {
        for symmetric in [true, false] {
            if symmetric && bits == 1 {
                continue;
            }
            for granularity in granularities {
                for scale_dtype in [DType::F32, DType::F16, DType::BF16] {
                    let config = IntConfig {
                        bits,
                        symmetric,
                        granularity,
                        scale_dtype,
                        rounding: Rounding::NearestEven,
                    };
                    let q = quantize_int(&x, [rows, cols], &config).expect("quantizes");
                    let what = format!("{config:?} (seed {seed:#x})");
                    assert_eq!(
                        q.codes.len(),
                        (rows * cols * bits as usize).div_ceil(8),
                        "{what}"
                    );
                    assert_eq!(
                        q.element,
                        if symmetric {
                            DType::Int(bits as u8)
                        } else {
                            DType::UInt(bits as u8)
                        }
                    );
                    let scales = q.scale_values();
                    assert_eq!(scales.len(), q.scale_shape[0] * q.scale_shape[1]);
                    let zeros = q.zero_point_values();
                    assert_eq!(zeros.is_none(), symmetric);
                    let codes = q.element_codes();
                    let back = q.dequantize();
                    for r in 0..rows {
                        for c in 0..cols {
                            let k = r * cols + c;
                            let b = scale_index(&q, r, c);
                            let s = scales[b];
                            let z = zeros.as_ref().map_or(0.0, |z| z[b] as f64);
                            let value = q.element.decode(codes[k]);
                            if symmetric {
                                assert!(value.abs() <= ((1 << (bits - 1)) - 1) as f64, "{what}");
                            }
                            let recon = (value - z) * s;
                            assert!(
                                (f64::from(back[k]) - recon).abs() <= recon.abs() * 1e-6 + 1e-30,
                                "{what}: layout"
                            );
                            let err = (f64::from(x[k]) - recon).abs();
                            assert!(
                                err <= s * 0.5 * (1.0 + 1e-6),
                                "{what}: ({r}, {c}) x = {} back {recon} step {s}",
                                x[k]
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn float_group_quantization_is_within_half_a_step_of_the_format() {
    let (rows, cols) = (32, 128);
    let x = matrix(rows, cols, 0xf10a7);
    for name in [
        "f4e2m1", "f6e3m2", "f6e2m3", "f8e4m3", "f8e5m2", "f5e2m2", "f3e1m1",
    ] {
        let d = DType::parse(name).unwrap();
        let mut grid: Vec<f64> = (0..1u64 << d.bits())
            .map(|c| d.decode(c))
            .filter(|v| v.is_finite())
            .collect();
        grid.sort_by(f64::total_cmp);
        for granularity in [
            Granularity::PerGroup { axis: 1, size: 32 },
            Granularity::PerChannel { axis: 0 },
        ] {
            let q = quantize_float(
                &x,
                [rows, cols],
                d,
                granularity,
                DType::F16,
                Rounding::NearestEven,
            )
            .unwrap();
            let scales = q.scale_values();
            let back = q.dequantize();
            for r in 0..rows {
                for c in 0..cols {
                    let k = r * cols + c;
                    let s = scales[scale_index(&q, r, c)];
                    let y = f64::from(x[k]) / s;
                    let hi = grid.partition_point(|&g| g < y).min(grid.len() - 1);
                    let lo = hi.saturating_sub(1);
                    let gap = (grid[hi] - grid[lo]).max(f64::MIN_POSITIVE);
                    let err = (f64::from(back[k]) - f64::from(x[k])).abs();
                    assert!(
                        err <= gap * s * 0.5 * (1.0 + 1e-6),
                        "{name} {granularity:?} ({r}, {c}): {} -> {}",
                        x[k],
                        back[k]
                    );
                }
            }
        }
    }
}

#[test]
fn mx_shared_scale_follows_the_ocp_rule() {
    // X = 2^(floor(log2(amax)) − emax_elem), stored as e8m0 (127 = 2^0).
    assert_eq!(mx_scale_code(6.0, MxElement::Fp4E2M1), 127);
    assert_eq!(mx_scale_code(7.0, MxElement::Fp4E2M1), 127);
    assert_eq!(mx_scale_code(8.0, MxElement::Fp4E2M1), 128);
    assert_eq!(
        mx_scale_code(0.3, MxElement::Fp4E2M1),
        123,
        "floor(log2 0.3) = -2, minus 2"
    );
    assert_eq!(mx_scale_code(448.0, MxElement::Fp8E4M3), 127);
    assert_eq!(mx_scale_code(1000.0, MxElement::Fp8E4M3), 128);
    assert_eq!(mx_scale_code(57344.0, MxElement::Fp8E5M2), 127);
    assert_eq!(mx_scale_code(28.0, MxElement::Fp6E3M2), 127);
    assert_eq!(mx_scale_code(7.5, MxElement::Fp6E2M3), 127);
    assert_eq!(mx_scale_code(1.0, MxElement::Int8), 127);
    assert_eq!(mx_scale_code(3.0, MxElement::Int8), 128);
    assert_eq!(
        mx_scale_code(0.0, MxElement::Fp4E2M1),
        0,
        "all-zero block: 2^-127"
    );
    assert_eq!(mx_scale_code(f32::NAN, MxElement::Fp4E2M1), 0xFF);
    assert_eq!(mx_scale_code(f32::INFINITY, MxElement::Fp8E4M3), 0xFF);
    assert_eq!(mx_scale_code(f32::MAX, MxElement::Fp4E2M1), 127 + 125);
    assert_eq!(
        mx_scale_code(1e-45, MxElement::Fp8E5M2),
        0,
        "clamped to 2^-127"
    );
}

#[test]
fn mxfp4_and_mxint8_blocks_quantize_as_worked_by_hand() {
    // Block 0: amax 6 → X = 1, every e2m1 value exact. Block 1: amax 7 → X = 1 and 7 clips to 6.
    // Block 2: amax 0.3 → X = 2^-4: 0.3 → 4.8 → 4 (0.25), 0.1 → 1.6 → 1.5 (0.09375).
    let mut x = vec![0f32; 96];
    x[..8].copy_from_slice(&[0.0, 0.5, 1.0, 1.5, -2.0, 3.0, -4.0, 6.0]);
    x[32] = 7.0;
    x[33] = -2.5;
    x[64] = 0.3;
    x[65] = -0.1;
    let q = quantize_mx(&x, [1, 96], MxElement::Fp4E2M1).unwrap();
    assert_eq!(q.scheme, Scheme::Mx(MxElement::Fp4E2M1));
    assert_eq!(q.scale_shape, [1, 3]);
    assert_eq!(q.scales, vec![127, 127, 123]);
    let codes = q.element_codes();
    assert_eq!(&codes[..8], &[0, 1, 2, 3, 0xC, 5, 0xE, 7]);
    assert_eq!(
        (codes[32], codes[33]),
        (7, 0xC),
        "7 saturates to 6; -2.5 ties to -2"
    );
    assert_eq!((codes[64], codes[65]), (6, 0xB));
    let back = q.dequantize();
    assert_eq!(&back[..8], &x[..8]);
    assert_eq!((back[32], back[64], back[65]), (6.0, 0.25, -0.09375));

    let y: Vec<f32> = (0..32)
        .map(|i| [1.0, 0.5, -1.0, 0.0078125, 3.0 / 128.0][i % 5])
        .collect();
    let q = quantize_mx(&y, [1, 32], MxElement::Int8).unwrap();
    assert_eq!(q.scales, vec![127]);
    assert_eq!(
        &q.element_codes()[..5],
        &[64, 32, 0xC0, 0, 2],
        "1.5 ties to even 2"
    );
    let mut big = y.clone();
    big[0] = 3.0;
    let q = quantize_mx(&big, [1, 32], MxElement::Int8).unwrap();
    assert_eq!(q.scales, vec![128]);
    assert_eq!(q.element_codes()[0], 96);

    let z = vec![1000.0f32; 32];
    let q = quantize_mx(&z, [1, 32], MxElement::Fp8E4M3).unwrap();
    assert_eq!(
        (q.scales[0], q.element_codes()[0]),
        (128, 0x7E),
        "500 saturates to 448"
    );
}

#[test]
fn mx_round_trip_error_is_bounded_when_nothing_clips() {
    let (rows, cols) = (16, 128);
    let x = matrix(rows, cols, 0x3c);
    for element in [
        MxElement::Fp8E4M3,
        MxElement::Fp8E5M2,
        MxElement::Fp6E3M2,
        MxElement::Fp6E2M3,
        MxElement::Fp4E2M1,
        MxElement::Int8,
    ] {
        let q = quantize_mx(&x, [rows, cols], element).unwrap();
        let back = q.dequantize();
        let scales = q.scale_values();
        let d = element.dtype();
        let max = if element == MxElement::Int8 {
            127.0 / 64.0
        } else {
            d.max_finite()
        };
        for (k, (&a, &b)) in x.iter().zip(&back).enumerate() {
            let s = scales[k / 32];
            let y = f64::from(a) / s;
            if y.abs() <= max {
                // Relative half-step of the element format, plus its subnormal quantum.
                let rel = match element {
                    MxElement::Int8 => 0.0,
                    _ => 2f64.powi(-(d.float_format().unwrap().man_bits() as i32) - 1),
                };
                let quantum = match element {
                    MxElement::Int8 => 1.0 / 128.0,
                    _ => d.float_format().unwrap().min_subnormal().unwrap() / 2.0,
                };
                let bound = (y.abs() * rel + quantum) * s;
                assert!(
                    (f64::from(b) - f64::from(a)).abs() <= bound * (1.0 + 1e-9),
                    "{element:?} {k}: {a} -> {b}"
                );
            }
        }
    }
}

#[test]
fn nvfp4_uses_a_tensor_scale_and_ue4m3_block_scales() {
    // amax 2688 = 6 · 448 → tensor scale 1. Block 0 (amax 6): scale 1.0 (ue4m3 0x38).
    // Block 1 (amax 12): scale 2.0 (0x40). Block 2 (amax 0.1): 0.1/6 rounds to 0.017578125 (0x09).
    // Block 3 holds 2688: scale 448 (0x7E).
    let mut x = vec![0f32; 64];
    x[0] = 6.0;
    x[1] = -1.5;
    x[16] = 12.0;
    x[17] = 3.0;
    x[32] = 0.1;
    x[48] = 2688.0;
    let q = quantize_nvfp4(&x, [1, 64]).unwrap();
    assert_eq!(q.tensor_scale, Some(1.0));
    assert_eq!(q.scale_dtype.to_string(), "ue4m3");
    assert_eq!(q.scales, vec![0x38, 0x40, 0x09, 0x7E]);
    let codes = q.element_codes();
    assert_eq!(
        (codes[0], codes[1], codes[16], codes[17], codes[48]),
        (7, 0xB, 7, 3, 7)
    );
    // 0.1 / 0.017578125 = 5.69 → 6.
    assert_eq!(codes[32], 7);
    let back = q.dequantize();
    assert_eq!(
        (back[0], back[1], back[16], back[17], back[48]),
        (6.0, -1.5, 12.0, 3.0, 2688.0)
    );
    assert_eq!(back[32], (6.0 * 0.017578125) as f32);

    let halved: Vec<f32> = x.iter().map(|v| v / 2.0).collect();
    let q = quantize_nvfp4(&halved, [1, 64]).unwrap();
    assert_eq!(q.tensor_scale, Some(0.5));
    assert_eq!(
        q.scales,
        vec![0x38, 0x40, 0x09, 0x7E],
        "block scales are relative to the tensor scale"
    );
}

#[test]
fn stochastic_quantization_is_reproducible() {
    let x = matrix(8, 64, 5);
    let config = IntConfig {
        bits: 3,
        symmetric: false,
        granularity: Granularity::PerGroup { axis: 1, size: 32 },
        scale_dtype: DType::F16,
        rounding: Rounding::Stochastic { seed: 11, index: 0 },
    };
    let a = quantize_int(&x, [8, 64], &config).unwrap();
    let b = quantize_int(&x, [8, 64], &config).unwrap();
    assert_eq!(a, b);
    let rne = quantize_int(
        &x,
        [8, 64],
        &IntConfig {
            rounding: Rounding::NearestEven,
            ..config
        },
    )
    .unwrap();
    assert_ne!(a.codes, rne.codes);
    assert_eq!(a.scales, rne.scales);
}

#[test]
fn bad_requests_are_errors() {
    let x = vec![0f32; 12];
    let cfg = |bits, symmetric, granularity| IntConfig::new(bits, symmetric, granularity);
    assert_eq!(
        quantize_int(&x, [3, 5], &cfg(4, true, Granularity::PerTensor)),
        Err(QuantError::ShapeMismatch {
            len: 12,
            shape: [3, 5]
        })
    );
    assert_eq!(
        quantize_int(
            &x,
            [3, 4],
            &cfg(4, true, Granularity::PerGroup { axis: 1, size: 3 })
        ),
        Err(QuantError::BlockDoesNotDivide {
            axis: 1,
            size: 3,
            extent: 4
        })
    );
    assert!(matches!(
        quantize_int(&x, [3, 4], &cfg(9, false, Granularity::PerTensor)),
        Err(QuantError::BadBits { .. })
    ));
    assert!(matches!(
        quantize_int(&x, [3, 4], &cfg(1, true, Granularity::PerTensor)),
        Err(QuantError::BadBits { .. })
    ));
    assert_eq!(
        quantize_int(
            &x,
            [3, 4],
            &cfg(4, true, Granularity::PerChannel { axis: 2 })
        ),
        Err(QuantError::BadAxis(2))
    );
    assert!(quantize_mx(&x, [3, 4], MxElement::Fp4E2M1).is_err());
    assert_eq!(
        quantize_float(
            &x,
            [3, 4],
            DType::UInt(4),
            Granularity::PerTensor,
            DType::F16,
            Rounding::NearestEven
        ),
        Err(QuantError::NotAFloat(DType::UInt(4)))
    );
    let message = QuantError::BlockDoesNotDivide {
        axis: 1,
        size: 3,
        extent: 4,
    }
    .to_string();
    assert!(message.contains("does not divide"), "{message}");
}
