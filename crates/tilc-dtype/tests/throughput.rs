//! Quick throughput figures (ignored by default: timing belongs to a quiet machine). Run with
//! `cargo test -p tilc-dtype --test throughput -- --ignored --nocapture`; the criterion bench
//! `benches/dtype.rs` measures the same operations more carefully.

use std::hint::black_box;
use std::time::Instant;
use tilc_dtype::pack;
use tilc_dtype::quant::{Granularity, IntConfig, MxElement, quantize_int, quantize_mx};
use tilc_dtype::{DType, Rounding};

/// Best of `reps` runs, in seconds.
fn best(reps: usize, mut f: impl FnMut()) -> f64 {
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

#[test]
#[ignore = "timing; run explicitly"]
fn unpack_to_f32_is_at_least_one_gigabyte_per_second() {
    let n = 1 << 24;
    let gb = |bytes: usize, s: f64| bytes as f64 / s / 1e9;

    let src = vec![1u8; 256 << 20];
    let mut dst = vec![0u8; 256 << 20];
    let copy = best(5, || dst.copy_from_slice(black_box(&src)));
    println!(
        "memcpy 256 MiB: {:.2} GB/s copied ({:.2} GB/s read + write)",
        gb(src.len(), copy),
        2.0 * gb(src.len(), copy)
    );
    drop((src, dst));

    let mut out = vec![0f32; n];
    let mut u3_rate = 0.0;
    for bits in [3u32, 4, 6] {
        let d = DType::UInt(bits as u8);
        let codes: Vec<u64> = (0..n as u64)
            .map(|i| ((i * 2_654_435_761) >> 7) & ((1 << bits) - 1))
            .collect();
        let packed = pack::pack(&codes, bits);
        let t = best(5, || {
            pack::unpack_to_f32_into(black_box(&packed), &d, &mut out)
        });
        let rate = gb(n * 4, t);
        println!(
            "unpack u{bits} -> f32: {:.2} GB/s of f32 output ({:.0} M elements/s)",
            rate,
            n as f64 / t / 1e6
        );
        if bits == 3 {
            u3_rate = rate;
        }
        let t = best(3, || {
            black_box(pack::pack(black_box(&codes), bits));
        });
        println!("pack u{bits} codes: {:.0} M elements/s", n as f64 / t / 1e6);
    }

    let (rows, cols) = (4096, 4096);
    let x: Vec<f32> = (0..rows * cols)
        .map(|i| ((i as f32) * 0.001).sin())
        .collect();
    let config = IntConfig {
        scale_dtype: DType::F16,
        ..IntConfig::new(4, false, Granularity::PerGroup { axis: 1, size: 128 })
    };
    let t = best(1, || {
        black_box(quantize_int(&x, [rows, cols], &config).unwrap());
    });
    println!(
        "quantize 4096x4096 f32 -> u4 g128: {:.3} s, {:.2} GB/s of f32 input",
        t,
        gb(rows * cols * 4, t)
    );
    let t = best(1, || {
        black_box(quantize_mx(&x, [rows, cols], MxElement::Fp4E2M1).unwrap());
    });
    println!(
        "quantize 4096x4096 f32 -> MXFP4: {:.3} s, {:.2} GB/s of f32 input",
        t,
        gb(rows * cols * 4, t)
    );
    let _ = Rounding::NearestEven;
    assert!(
        u3_rate >= 1.0,
        "u3 -> f32 unpack at {u3_rate:.2} GB/s is below 1 GB/s"
    );
}
