//! Rough timings (ignored by default; run with `--ignored --nocapture`): the JIT compile time of
//! `gemm_w3a8` and its W3A8 GEMM at m = 16, k = n = 1024 against the interpreter.

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
