//! Rough timings (ignored by default; run with `--ignored --nocapture`): the JIT compile time of
//! `gemm_w3a8` and its W3A8 GEMM at m = 16, k = n = 1024 against the interpreter; the W4A16 and
//! W3A8 GEMV (`gemv_report`) and GEMM (`gemm_report`, any m) at k = 4096.

mod common;
use common::*;
use std::time::Instant;
use tilc_cpu::{CpuKernel, Options};
use tilc_vm::ArgValue;

#[test]
#[ignore = "timing report, not a check"]
fn perf_report() {
    let k = example("gemm_w3a8.tl", "gemm_w3a8", &[]);
    for verify in [false, true] {
        let options = Options { optimize: true, verify };
        let times: Vec<f64> = (0..5)
            .map(|_| CpuKernel::compile(&k, &options).expect("compiles").compile_time().as_secs_f64() * 1e3)
            .collect();
        eprintln!("gemm_w3a8 JIT compile (verifier {verify}): {times:.1?} ms");
    }
    let cpu = compile(&k);
    eprintln!("scratch per block: {} bytes", cpu.scratch_bytes());
    let (m, n, kk) = (16, 1024, 1024);
    let args = random_args(&k, &[("m", ArgValue::Int(m)), ("n", ArgValue::Int(n)), ("k", ArgValue::Int(kk))], 7);
    let mut got = args.clone();
    cpu.launch(&mut got).expect("runs");
    let t = Instant::now();
    let reps = 5;
    for _ in 0..reps {
        cpu.launch(&mut got).expect("runs");
    }
    let cpu_ms = t.elapsed().as_secs_f64() * 1e3 / reps as f64;
    let mut packed: Vec<tilc_cpu::PackedArg> = args
        .iter()
        .map(|a| match a {
            ArgValue::Int(i) => tilc_cpu::PackedArg::Int(*i),
            ArgValue::Float(x) => tilc_cpu::PackedArg::Float(*x),
            ArgValue::Tensor(t) => tilc_cpu::PackedArg::Tensor(tilc_cpu::PackedTensor::from_host(t)),
        })
        .collect();
    let t = Instant::now();
    for _ in 0..reps {
        cpu.launch_packed(&mut packed).expect("runs");
    }
    let packed_ms = t.elapsed().as_secs_f64() * 1e3 / reps as f64;
    let mut want = args.clone();
    let t = Instant::now();
    tilc_vm::run(&k, &mut want).expect("runs");
    let int_ms = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(want, got, "the timed runs agree");
    eprintln!("W3A8 GEMM m={m} k={kk} n={n}: cpu {cpu_ms:.1} ms (launch with packing), {packed_ms:.1} ms (launch_packed); interpreter {int_ms:.0} ms; {} threads", rayon::current_num_threads());
}

/// Reads a kernel of the repository's `lang/` library.
fn library(file: &str, name: &str, defines: &[&str]) -> tilc_vm::Kernel {
    let path = format!("{}/../../lang/{file}", env!("CARGO_MANIFEST_DIR"));
    let src = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    kernel(&src, name, defines)
}

/// The median and the fastest of `reps` launches of `cpu` on `args` (packed once), in
/// milliseconds (on a shared machine the fastest is the least disturbed).
fn time_launch(cpu: &CpuKernel, args: &[ArgValue], reps: usize) -> (f64, f64) {
    let mut packed: Vec<tilc_cpu::PackedArg> = args
        .iter()
        .map(|a| match a {
            ArgValue::Int(i) => tilc_cpu::PackedArg::Int(*i),
            ArgValue::Float(x) => tilc_cpu::PackedArg::Float(*x),
            ArgValue::Tensor(t) => tilc_cpu::PackedArg::Tensor(tilc_cpu::PackedTensor::from_host(t)),
        })
        .collect();
    let mut times: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            cpu.launch_packed(&mut packed).expect("runs");
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[reps / 2], times[0])
}

/// `TILC_PERF_<name>` as an integer, or `default`.
fn env_int(name: &str, default: i64) -> i64 {
    std::env::var(format!("TILC_PERF_{name}")).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// W4A16 (`gemv_a16w`, BK = 64, BN = `TILC_PERF_BN` or 64) and W3A8 (`gemm_w3a8`, BM = 32) GEMV
/// at m = 1, k = 4096:
/// `TILC_PERF_N` (default 4096) columns, `TILC_PERF_REPS` launches (default 5); GB/s of weight
/// traffic (packed codes + f16 scales) at the median.
#[test]
#[ignore = "timing report, not a check"]
fn gemv_report() {
    let (n, kk, reps) = (env_int("N", 4096), 4096, env_int("REPS", 5) as usize);
    let bn = format!("BN={}", env_int("BN", 64));
    let w4 = library("gemv.tl", "gemv_a16w", &[&bn, "BK=64"]);
    let cpu = compile(&w4);
    let args = random_args(&w4, &[("m", ArgValue::Int(1)), ("n", ArgValue::Int(n)), ("k", ArgValue::Int(kk)), ("group", ArgValue::Int(128))], 11);
    let (ms, best) = time_launch(&cpu, &args, reps);
    let bytes = (kk * n / 2 + kk / 128 * n * 2) as f64;
    eprintln!("W4A16 GEMV m=1 k={kk} n={n} {bn}: {ms:.1} ms (fastest {best:.1}) = {:.3} GB/s of weights", bytes / ms / 1e6);
    let w3 = example("gemm_w3a8.tl", "gemm_w3a8", &["BM=32"]);
    let cpu = compile(&w3);
    let args = random_args(&w3, &[("m", ArgValue::Int(1)), ("n", ArgValue::Int(n)), ("k", ArgValue::Int(kk))], 12);
    let (ms, best) = time_launch(&cpu, &args, reps);
    let bytes = (kk * n * 3 / 8 + kk / 128 * n * 2) as f64;
    eprintln!("W3A8 GEMV m=1 k={kk} n={n}: {ms:.1} ms (fastest {best:.1}) = {:.3} GB/s of weights; {} threads", bytes / ms / 1e6, rayon::current_num_threads());
}

/// W4A16 (`gemm_a16w`, default tiles BM = 32, BN = 64, BK = 32, i4 weights) and W3A8
/// (`gemm_w3a8`, BM = 32) GEMM at k = 4096: `TILC_PERF_M` rows (default 16), `TILC_PERF_N`
/// columns (default 4096), `TILC_PERF_REPS` launches (default 3; the median and the fastest are printed).
#[test]
#[ignore = "timing report, not a check"]
fn gemm_report() {
    let (m, n, kk, reps) = (env_int("M", 16), env_int("N", 4096), 4096, env_int("REPS", 3) as usize);
    let flops = 2.0 * (m * n * kk) as f64;
    let w4 = library("gemm_a16w.tl", "gemm_a16w", &[]);
    let cpu = compile(&w4);
    let args = random_args(&w4, &[("m", ArgValue::Int(m)), ("n", ArgValue::Int(n)), ("k", ArgValue::Int(kk)), ("group", ArgValue::Int(128))], 13);
    let (ms, best) = time_launch(&cpu, &args, reps);
    let bytes = (kk * n / 2 + kk / 128 * n * 2) as f64;
    eprintln!("W4A16 GEMM m={m} k={kk} n={n}: {ms:.1} ms (fastest {best:.1}) = {:.3} GB/s of weights, {:.2} GFLOP/s", bytes / ms / 1e6, flops / ms / 1e6);
    let w3 = example("gemm_w3a8.tl", "gemm_w3a8", &["BM=32"]);
    let cpu = compile(&w3);
    let args = random_args(&w3, &[("m", ArgValue::Int(m)), ("n", ArgValue::Int(n)), ("k", ArgValue::Int(kk))], 14);
    let (ms, best) = time_launch(&cpu, &args, reps);
    let bytes = (kk * n * 3 / 8 + kk / 128 * n * 2) as f64;
    eprintln!("W3A8 GEMM m={m} k={kk} n={n}: {ms:.1} ms (fastest {best:.1}) = {:.3} GB/s of weights, {:.2} GFLOP/s; {} threads", bytes / ms / 1e6, flops / ms / 1e6, rayon::current_num_threads());
}

/// Writes the Cranelift IR of the GEMV kernels to `$TILC_CLIF_DIR` (for reading hot loops).
#[test]
#[ignore = "debugging aid, not a check"]
fn dump_gemv_clif() {
    let Ok(dir) = std::env::var("TILC_CLIF_DIR") else { return };
    let w4 = library("gemv.tl", "gemv_a16w", &["BN=64", "BK=64"]);
    std::fs::write(format!("{dir}/gemv_a16w.clif"), tilc_cpu::emit_clif(&w4).expect("lowers")).expect("writes");
    let w3 = example("gemm_w3a8.tl", "gemm_w3a8", &["BM=32"]);
    std::fs::write(format!("{dir}/gemm_w3a8.clif"), tilc_cpu::emit_clif(&w3).expect("lowers")).expect("writes");
}

/// Writes the machine code of the GEMV kernels' block functions to `$TILC_CODE_DIR`, found
/// through the perf map Cranelift's JIT writes (`objdump -D -b binary -m i386:x86-64`).
#[test]
#[ignore = "debugging aid, not a check"]
fn dump_gemv_code() {
    let Ok(dir) = std::env::var("TILC_CODE_DIR") else { return };
    let w4 = library("gemv.tl", "gemv_a16w", &["BN=64", "BK=64"]);
    let w3 = example("gemm_w3a8.tl", "gemm_w3a8", &["BM=32"]);
    let kernels = [compile(&w4), compile(&w3)];
    let map = std::fs::read_to_string(format!("/tmp/perf-{}.map", std::process::id())).expect("a perf map (run under perf)");
    for line in map.lines() {
        let mut f = line.split_whitespace();
        let (Some(addr), Some(size), Some(name)) = (f.next(), f.next(), f.next()) else { continue };
        let (addr, size) = (usize::from_str_radix(addr, 16).expect("hex"), usize::from_str_radix(size, 16).expect("hex"));
        // SAFETY: the map names code of the kernels compiled above, still alive.
        let bytes = unsafe { std::slice::from_raw_parts(addr as *const u8, size) };
        std::fs::write(format!("{dir}/{name}.bin"), bytes).expect("writes");
    }
    drop(kernels);
}
