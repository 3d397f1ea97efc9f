//! Criterion benches of the CPU backend at LLM shapes, through the public `tilc` API:
//!
//! - W4A16 GEMV (`lang/gemv.tl`, `gemv_a16w`, i4 weights, f16 scales per 128 rows, f16 x; BN =
//!   64 and, reading whole cache lines of W per row, BN = 256) and
//!   W3A8 GEMV (`examples/gemm_w3a8.tl` at m = 1) at k = 4096, n = 4096 and 14336;
//! - W4A16 GEMM (`lang/gemm_a16w.tl`) and W3A8 GEMM (`gemm_w3a8`) at m = 16 and 256 (one to
//!   a few seconds per m = 256 launch on a 2-core machine, ten samples each; `TILC_BENCH_M=16`
//!   restricts the m axis);
//! - an f32 GEMM baseline (`matrixmultiply::sgemm`, one thread) on the same shapes;
//! - JIT compile time (elaboration + Cranelift, verifier off) of every library kernel at its
//!   default configuration, and of `gemm_w3a8`.
//!
//! Throughput is bytes of *weight traffic* (packed codes + scales), so criterion's GB/s compares
//! directly with the machine's memory bandwidth. `TILC_BENCH_N=4096` restricts the n axis.
//! Results and load conditions: benches/RESULTS.md.

use criterion::{BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main};
use std::time::Duration;
use tilc::{Compiler, DType, Kernel, Target, Tensor, arg, arg_mut};

const K: usize = 4096;
const GROUP: usize = 128;

fn root(rel: &str) -> String {
    format!("{}/{rel}", env!("CARGO_MANIFEST_DIR"))
}

fn ns() -> Vec<usize> {
    match std::env::var("TILC_BENCH_N").ok().and_then(|v| v.parse().ok()) {
        Some(n) => vec![n],
        None => vec![4096, 14336],
    }
}

fn ms() -> Vec<usize> {
    match std::env::var("TILC_BENCH_M").ok().and_then(|v| v.parse().ok()) {
        Some(m) => vec![m],
        None => vec![16, 256],
    }
}

fn compile(path: &str, kernel: &str, defines: &[(&str, &str)]) -> Kernel {
    let c = defines.iter().fold(Compiler::new(Target::Cpu).no_cache(), |c, (n, v)| c.define(n, v));
    c.compile_file(root(path), kernel).unwrap_or_else(|e| panic!("{e}"))
}

/// Weights, scales and zero points of the a16w kernels (i4 codes, f16 scales).
struct A16w {
    w: Tensor,
    scale: Tensor,
    zero: Tensor,
}

impl A16w {
    fn new(n: usize) -> A16w {
        A16w {
            w: Tensor::random(DType::Int(4), &[K, n], 1).unwrap(),
            scale: Tensor::random(DType::F16, &[K / GROUP, n], 2).unwrap(),
            zero: Tensor::zeros(DType::Int(4), &[K / GROUP, n]).unwrap(),
        }
    }

    fn bytes(&self) -> u64 {
        (self.w.packed().len() + self.scale.packed().len()) as u64
    }

    fn run(&self, kernel: &Kernel, x: &Tensor, y: &mut Tensor) {
        let (m, n) = (x.shape()[0], self.w.shape()[1]);
        kernel.launch(&mut [arg(m), arg(n), arg(K), arg(GROUP), arg(x), arg(&self.w), arg(&self.scale), arg(&self.zero), arg_mut(y)]).unwrap();
    }
}

/// Weights and scales of gemm_w3a8 (u3 codes, f16 scales).
struct W3a8 {
    w: Tensor,
    scale: Tensor,
}

impl W3a8 {
    fn new(n: usize) -> W3a8 {
        W3a8 { w: Tensor::random(DType::UInt(3), &[K, n], 3).unwrap(), scale: Tensor::random(DType::F16, &[K / GROUP, n], 4).unwrap() }
    }

    fn bytes(&self) -> u64 {
        (self.w.packed().len() + self.scale.packed().len()) as u64
    }

    fn run(&self, kernel: &Kernel, a: &Tensor, a_scale: &Tensor, c: &mut Tensor) {
        let (m, n) = (a.shape()[0], self.w.shape()[1]);
        kernel.launch(&mut [arg(m), arg(n), arg(K), arg(a), arg(a_scale), arg(&self.w), arg(&self.scale), arg_mut(c)]).unwrap();
    }
}

fn gemv(c: &mut Criterion) {
    let w4 = compile("lang/gemv.tl", "gemv_a16w", &[("BN", "64"), ("BK", "64")]);
    // Whole 128-byte cache lines of W per row read (BN = 256 i4 codes), a quarter of the blocks.
    let w4_wide = compile("lang/gemv.tl", "gemv_a16w", &[("BN", "256"), ("BK", "64")]);
    let w3 = compile("examples/gemm_w3a8.tl", "gemm_w3a8", &[("BM", "32")]);
    let mut group = c.benchmark_group("gemv_m1");
    group.sample_size(10);
    for n in ns() {
        let wts = A16w::new(n);
        let x = Tensor::random(DType::F16, &[1, K], 5).unwrap();
        let mut y = Tensor::zeros(DType::F16, &[1, n]).unwrap();
        group.throughput(Throughput::Bytes(wts.bytes()));
        group.bench_function(BenchmarkId::new("w4a16", format!("k{K}_n{n}")), |b| b.iter(|| wts.run(&w4, black_box(&x), &mut y)));
        group.bench_function(BenchmarkId::new("w4a16_bn256", format!("k{K}_n{n}")), |b| b.iter(|| wts.run(&w4_wide, black_box(&x), &mut y)));

        let wts = W3a8::new(n);
        let a = Tensor::random(DType::Int(8), &[1, K], 6).unwrap();
        let a_scale = Tensor::random(DType::F32, &[1], 7).unwrap();
        let mut out = Tensor::zeros(DType::F16, &[1, n]).unwrap();
        group.throughput(Throughput::Bytes(wts.bytes()));
        group.bench_function(BenchmarkId::new("w3a8", format!("k{K}_n{n}")), |b| b.iter(|| wts.run(&w3, black_box(&a), &a_scale, &mut out)));
    }
    group.finish();
}

fn gemm(c: &mut Criterion) {
    let w4 = compile("lang/gemm_a16w.tl", "gemm_a16w", &[]);
    let w3 = compile("examples/gemm_w3a8.tl", "gemm_w3a8", &[("BM", "32")]);
    let mut group = c.benchmark_group("gemm");
    group.sample_size(10);
    for n in ns() {
        for m in ms() {
            let wts = A16w::new(n);
            let x = Tensor::random(DType::F16, &[m, K], 5).unwrap();
            let mut y = Tensor::zeros(DType::F16, &[m, n]).unwrap();
            group.throughput(Throughput::Bytes(wts.bytes()));
            group.bench_function(BenchmarkId::new("w4a16", format!("m{m}_k{K}_n{n}")), |b| b.iter(|| wts.run(&w4, black_box(&x), &mut y)));

            let wts = W3a8::new(n);
            let a = Tensor::random(DType::Int(8), &[m, K], 6).unwrap();
            let a_scale = Tensor::random(DType::F32, &[m], 7).unwrap();
            let mut out = Tensor::zeros(DType::F16, &[m, n]).unwrap();
            group.throughput(Throughput::Bytes(wts.bytes()));
            group.bench_function(BenchmarkId::new("w3a8", format!("m{m}_k{K}_n{n}")), |b| b.iter(|| wts.run(&w3, black_box(&a), &a_scale, &mut out)));
        }
    }
    group.finish();
}

fn f32_baseline(c: &mut Criterion) {
    let mut group = c.benchmark_group("sgemm_f32_matrixmultiply");
    group.sample_size(10);
    for n in ns() {
        for m in std::iter::once(1).chain(ms()) {
            let a = vec![0.5f32; m * K];
            let b = vec![0.25f32; K * n];
            let mut out = vec![0f32; m * n];
            // Weight traffic of the same matrix in f32.
            group.throughput(Throughput::Bytes((K * n * 4) as u64));
            group.bench_function(BenchmarkId::from_parameter(format!("m{m}_k{K}_n{n}")), |bench| {
                bench.iter(|| {
                    // SAFETY: the pointers and strides describe the three live row-major buffers
                    // of m×k, k×n and m×n elements.
                    unsafe {
                        matrixmultiply::sgemm(m, K, n, 1.0, a.as_ptr(), K as isize, 1, b.as_ptr(), n as isize, 1, 0.0, out.as_mut_ptr(), n as isize, 1);
                    }
                    black_box(&out);
                })
            });
        }
    }
    group.finish();
}

fn compile_time(c: &mut Criterion) {
    let mut group = c.benchmark_group("jit_compile");
    group.sample_size(10);
    let mut sources = vec![root("examples/gemm_w3a8.tl")];
    let mut lang: Vec<String> = std::fs::read_dir(root("lang"))
        .unwrap()
        .flatten()
        .map(|e| e.path().display().to_string())
        .filter(|p| p.ends_with(".tl"))
        .collect();
    lang.sort();
    sources.extend(lang);
    let options = tilc_cpu::Options { optimize: true, verify: false };
    for path in sources {
        let text = std::fs::read_to_string(&path).unwrap();
        let file = tilc_base::SourceFile::new(path.clone(), text);
        let (ast, _) = tilc_syntax::parse(&file);
        for k in &ast.kernels {
            let name = k.name.name.clone();
            // Kernels whose parameters need values (no defaults) are skipped.
            let Ok(vm) = tilc_vm::elaborate_source(&file, Some(&name), &[]) else { continue };
            if tilc_cpu::CpuKernel::compile(&vm, &options).is_err() {
                continue;
            }
            group.bench_function(BenchmarkId::from_parameter(&name), |b| {
                b.iter(|| {
                    let vm = tilc_vm::elaborate_source(&file, Some(&name), &[]).unwrap();
                    tilc_cpu::CpuKernel::compile(&vm, &options).unwrap()
                })
            });
        }
    }
    group.finish();
}

fn short() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).configure_from_args()
}

criterion_group! {
    name = benches;
    config = short();
    targets = compile_time, gemv, gemm, f32_baseline
}
criterion_main!(benches);
