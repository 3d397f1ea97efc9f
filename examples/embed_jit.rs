//! Embedding tilc as a JIT: quantize a random f32 weight matrix to 3-bit codes with one f16
//! scale per group of 128 rows (`tilc-dtype`'s host quantizer), quantize the activations to
//! int8 with one f32 scale per row, compile `examples/gemm_w3a8.tl` for this CPU through the
//! `tilc` API, run it, and compare with an f64 reference computed here.
//!
//! `cargo run --example embed_jit` (a few seconds in a debug build). Exits with status 1 when
//! the kernel disagrees with the reference by more than the f16 output rounding allows.

use std::process::ExitCode;
use std::time::Instant;
use tilc::{Compiler, DType, Target, Tensor, arg, arg_mut};
use tilc_dtype::quant::{Granularity, IntConfig, quantize_int};

const M: usize = 16;
const K: usize = 2048;
const N: usize = 1024;
const GROUP: usize = 128;

/// Uniform in [−1, 1) from a seeded SplitMix64 stream.
fn random_matrix(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = tilc_vm::SplitMix64(seed);
    (0..len).map(|_| (rng.next_f64() * 2.0 - 1.0) as f32).collect()
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn run() -> Result<bool, Box<dyn std::error::Error>> {
    let x = random_matrix(M * K, 1);
    let w = random_matrix(K * N, 2);

    // Weights: symmetric 3-bit codes q in [−3, 3] with an f16 scale per 128 rows of a column;
    // the kernel takes them as u3 in offset binary (q + 4).
    let start = Instant::now();
    let wq = quantize_int(&w, [K, N], &IntConfig::new(3, true, Granularity::PerGroup { axis: 0, size: GROUP }))?;
    let i3 = DType::Int(3);
    let w_codes: Vec<u64> = wq.element_codes().iter().map(|&c| (i3.decode(c) + 4.0) as u64).collect();
    let w_t = Tensor::from_codes(DType::UInt(3), &[K, N], &w_codes)?;
    let w_scale = Tensor::from_packed(DType::F16, &[K / GROUP, N], &wq.scales)?;
    // Activations: int8 per row with an f32 scale.
    let xq = quantize_int(&x, [M, K], &IntConfig { scale_dtype: DType::F32, ..IntConfig::new(8, true, Granularity::PerChannel { axis: 1 }) })?;
    let a = Tensor::from_packed(DType::Int(8), &[M, K], &xq.codes)?;
    let a_scale = Tensor::from_packed(DType::F32, &[M], &xq.scales)?;
    println!(
        "quantized W [{K}, {N}] f32 → u3 + f16 scales per {GROUP} rows ({} KiB packed, {:.1}× smaller) and x [{M}, {K}] → i8 in {:.0} ms",
        w_t.packed().len() / 1024,
        (K * N * 4) as f64 / w_t.packed().len() as f64,
        start.elapsed().as_secs_f64() * 1e3
    );

    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/gemm_w3a8.tl");
    println!("best target of this machine: {}", Target::detect());
    let kernel = Compiler::new(Target::Cpu).define("BM", 32).compile_file(path, "gemm_w3a8")?;
    println!("compiled {} for the CPU in {:.1} ms", kernel.signature(), kernel.compile_time().as_secs_f64() * 1e3);

    let mut c = Tensor::zeros(DType::F16, &[M, N])?;
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let launched = kernel.launch(&mut [arg(M), arg(N), arg(K), arg(&a), arg(&a_scale), arg(&w_t), arg(&w_scale), arg_mut(&mut c)])?;
        best = best.min(launched.elapsed.as_secs_f64());
    }
    println!(
        "ran gemm_w3a8 m = {M}, n = {N}, k = {K}: {:.2} ms (best of 5) = {:.2} GFLOP/s",
        best * 1e3,
        2.0 * (M * N * K) as f64 / best / 1e9
    );

    // The reference: the same quantized operands, multiplied in f64.
    let (a_v, as_v, w_v, ws_v) = (a.to_f64_vec(), a_scale.to_f64_vec(), w_t.to_f64_vec(), w_scale.to_f64_vec());
    let got = c.to_f64_vec();
    let (mut max_err, mut max_ref, mut bad) = (0.0f64, 0.0f64, 0usize);
    let mut unquantized_err = 0.0f64;
    for i in 0..M {
        for j in 0..N {
            let mut sum = 0.0;
            let mut exact = 0.0;
            for kk in 0..K {
                sum += a_v[i * K + kk] * as_v[i] * (w_v[kk * N + j] - 4.0) * ws_v[(kk / GROUP) * N + j];
                exact += f64::from(x[i * K + kk]) * f64::from(w[kk * N + j]);
            }
            let err = (got[i * N + j] - sum).abs();
            // f16 output: half an ulp of the result, plus f32 accumulation.
            let bound = sum.abs() * 2f64.powi(-11) + 2f64.powi(-24) * 1e-3 + K as f64 * 2f64.powi(-23) * sum.abs().max(1.0);
            bad += usize::from(err > bound);
            max_err = max_err.max(err);
            max_ref = max_ref.max(sum.abs());
            unquantized_err = unquantized_err.max((got[i * N + j] - exact).abs());
        }
    }
    println!("max |error| vs the f64 reference of the quantized product: {max_err:.3e} (max |C| {max_ref:.2}; {bad} elements beyond the f16 bound)");
    println!("max |error| vs the unquantized f32 product (3-bit quantization error): {unquantized_err:.3e}");
    Ok(bad == 0)
}
