//! Criterion benches of `tilc-dtype`: unpacking u3/u4/u6 codes to f32 and packing them back, and
//! quantizing a 4096×4096 f32 matrix to u4 with groups of 128 and to MXFP4. Throughput is in
//! bytes of f32 (output for unpack, input for pack and quantize). Results: benches/RESULTS.md.
//!
//! Needs `[[bench]] name = "dtype" harness = false` in the root Cargo.toml.

use criterion::{BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main};
use tilc_dtype::pack;
use tilc_dtype::quant::{Granularity, IntConfig, MxElement, quantize_int, quantize_mx};
use tilc_dtype::{DType, Overflow, Rounding};

const N: usize = 1 << 22;

fn codes(bits: u32) -> Vec<u64> {
    (0..N as u64)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) & ((1 << bits) - 1))
        .collect()
}

fn unpack_and_pack(c: &mut Criterion) {
    let mut group = c.benchmark_group("unpack_to_f32");
    group.throughput(Throughput::Bytes((N * 4) as u64));
    for bits in [3u32, 4, 6] {
        let d = DType::UInt(bits as u8);
        let packed = pack::pack(&codes(bits), bits);
        let mut out = vec![0f32; N];
        group.bench_with_input(BenchmarkId::from_parameter(d), &packed, |b, packed| {
            b.iter(|| pack::unpack_to_f32_into(black_box(packed), &d, &mut out));
        });
    }
    group.finish();

    let mut group = c.benchmark_group("pack_from_f32");
    group.throughput(Throughput::Bytes((N * 4) as u64));
    for bits in [3u32, 4, 6] {
        let d = DType::UInt(bits as u8);
        let values: Vec<f32> = codes(bits).iter().map(|&c| c as f32).collect();
        group.bench_with_input(BenchmarkId::from_parameter(d), &values, |b, values| {
            b.iter(|| {
                pack::pack_f32(
                    black_box(values),
                    &d,
                    Rounding::NearestEven,
                    Overflow::Saturate,
                )
            });
        });
    }
    group.finish();
}

fn quantize(c: &mut Criterion) {
    let (rows, cols) = (4096, 4096);
    let x: Vec<f32> = (0..rows * cols)
        .map(|i| ((i as f32) * 0.001).sin())
        .collect();
    let mut group = c.benchmark_group("quantize_4096x4096");
    group.sample_size(10);
    group.throughput(Throughput::Bytes((rows * cols * 4) as u64));
    let config = IntConfig::new(4, false, Granularity::PerGroup { axis: 1, size: 128 });
    group.bench_function("u4_g128", |b| {
        b.iter(|| quantize_int(black_box(&x), [rows, cols], &config).unwrap())
    });
    group.bench_function("mxfp4", |b| {
        b.iter(|| quantize_mx(black_box(&x), [rows, cols], MxElement::Fp4E2M1).unwrap())
    });
    group.finish();
}

criterion_group!(benches, unpack_and_pack, quantize);
criterion_main!(benches);
