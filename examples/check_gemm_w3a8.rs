//! Runs `examples/gemm_w3a8.tl` on the VM interpreter with seeded random inputs and compares
//! the result with a reference computed here in f64, independently of tilc:
//!
//! `C[m, n] = (A[m, k] · (W[k, n] − 4)) · a_scale[m] · w_scale[k / G, n]`
//!
//! Usage: `cargo run --example check_gemm_w3a8 -- [SEED] [M N K]` (defaults: 1, 33 96 256).
//! Prints the largest error and exits with status 1 when any element is outside the bound that
//! the formats allow (f32 accumulation per group, one f16 rounding of the result).

use std::process::ExitCode;
use tilc_base::{RenderStyle, SourceFile, render};
use tilc_vm::{ArgValue, Define, HostTensor, Param, elaborate_source, random_tensor, run};

fn main() -> ExitCode {
    let argv: Vec<u64> = match std::env::args().skip(1).map(|a| a.parse::<u64>()).collect() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: arguments must be non-negative integers ({e}); usage: check_gemm_w3a8 [SEED] [M N K]");
            return ExitCode::from(2);
        }
    };
    let seed = argv.first().copied().unwrap_or(1);
    let (m, n, k) = match argv.len() {
        0 | 1 => (33, 96, 256),
        4 => (argv[1] as usize, argv[2] as usize, argv[3] as usize),
        _ => {
            eprintln!("usage: check_gemm_w3a8 [SEED] [M N K]");
            return ExitCode::from(2);
        }
    };
    let g = 128;
    if k % g != 0 || m == 0 || n == 0 {
        eprintln!("error: k must be a positive multiple of the group size {g}, and m, n positive");
        return ExitCode::from(2);
    }

    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/gemm_w3a8.tl");
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let file = SourceFile::new("examples/gemm_w3a8.tl", text);
    let defines = [Define { name: "BM".into(), value: "32".into() }];
    let kernel = match elaborate_source(&file, Some("gemm_w3a8"), &defines) {
        Ok(kernel) => kernel,
        Err(diags) => {
            eprint!("{}", render(&file, &diags, RenderStyle::Plain));
            return ExitCode::FAILURE;
        }
    };

    // Arguments in parameter order: scalars by name, inputs random, the output poisoned.
    let shapes = |name: &str| match name {
        "a" => vec![m, k],
        "a_scale" => vec![m],
        "w" => vec![k, n],
        "w_scale" => vec![k / g, n],
        _ => vec![m, n],
    };
    let mut args: Vec<ArgValue> = kernel
        .params
        .iter()
        .enumerate()
        .map(|(i, p)| match p {
            Param::Scalar(_) => ArgValue::Int(match kernel.param_name(*p) {
                "m" => m as i64,
                "n" => n as i64,
                _ => k as i64,
            }),
            Param::Tensor(gid) => {
                let global = &kernel.globals[*gid];
                let shape = shapes(kernel.param_name(*p));
                if global.out {
                    ArgValue::Tensor(HostTensor::filled(global.dtype, shape, u64::MAX))
                } else {
                    ArgValue::Tensor(random_tensor(global.dtype, shape, seed * 1000 + i as u64))
                }
            }
        })
        .collect();
    let start = std::time::Instant::now();
    let summary = match run(&kernel, &mut args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let value = |name: &str| -> Vec<f64> {
        let i = kernel.params.iter().position(|p| kernel.param_name(*p) == name).expect("parameter exists");
        match &args[i] {
            ArgValue::Tensor(t) => t.to_f64(),
            _ => unreachable!("{name} is a tensor parameter"),
        }
    };
    let (a, sa, w, ws, c) = (value("a"), value("a_scale"), value("w"), value("w_scale"), value("c"));

    let (mut max_abs, mut max_rel, mut bad) = (0f64, 0f64, 0usize);
    for i in 0..m {
        for j in 0..n {
            let (mut sum, mut mag) = (0.0, 0.0);
            for gi in 0..k / g {
                let part: f64 = (gi * g..(gi + 1) * g).map(|p| a[i * k + p] * (w[p * n + j] - 4.0)).sum();
                sum += part * ws[gi * n + j];
                mag += (part * ws[gi * n + j]).abs();
            }
            let want = sum * sa[i];
            let bound = want.abs() * 2f64.powi(-11) + ((k / g) as f64 + 3.0) * 2f64.powi(-23) * mag * sa[i].abs() + 2f64.powi(-24);
            let err = (c[i * n + j] - want).abs();
            max_abs = max_abs.max(err);
            if want != 0.0 {
                max_rel = max_rel.max(err / want.abs());
            }
            if err > bound {
                bad += 1;
            }
        }
    }
    println!(
        "gemm_w3a8 on the interpreter: m={m} n={n} k={k} seed={seed}, grid {:?}, {:.1} ms; max abs error {max_abs:.3e}, max rel error {max_rel:.3e} against the f64 reference; {bad} of {} elements outside the format bound",
        summary.grid,
        start.elapsed().as_secs_f64() * 1e3,
        m * n
    );
    if bad == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
