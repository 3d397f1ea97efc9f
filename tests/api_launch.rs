//! The embedding API: compile, launch on packed host tensors, argument checking, tensors.
//!
//! Numerical checks compare the CPU backend with the interpreter bit for bit and both with an
//! f64 reference computed here; inputs are seeded (the seed is in every assertion message).

use tilc::{Arg, Compiler, DType, Error, Target, Tensor, arg, arg_mut};

const GEMM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/gemm_w3a8.tl");

/// A one-kernel source for the error tests: z = alpha · x + y over n elements.
const AXPY: &str = "
kernel axpy<B in [16, 32, 64] = 32>(n: i32, alpha: f32, x: global f32[n], y: global bf16[n], z: out global f32[n])
    grid [cdiv(n, B)] warps 1 {
    assume(n > 0);
    let o = block.x * B;
    store z[o] = alpha * load x[o] : [B] + cast<f32>(load y[o] : [B]);
}";

fn axpy(target: Target) -> tilc::Kernel {
    Compiler::new(target).no_cache().compile_source("axpy.tl", AXPY, "axpy").unwrap_or_else(|e| panic!("{e}"))
}

fn gemm_inputs(m: usize, n: usize, k: usize, seed: u64) -> [Tensor; 4] {
    [
        Tensor::random(DType::Int(8), &[m, k], seed).unwrap(),
        Tensor::random(DType::F32, &[m], seed + 1).unwrap(),
        Tensor::random(DType::UInt(3), &[k, n], seed + 2).unwrap(),
        Tensor::random(DType::F16, &[k / 128, n], seed + 3).unwrap(),
    ]
}

#[test]
fn gemm_w3a8_cpu_matches_interpreter_and_f64_reference() {
    let (m, n, k, seed) = (33, 96, 256, 7);
    let [a, a_scale, w, w_scale] = gemm_inputs(m, n, k, seed);
    let mut outs = Vec::new();
    for target in [Target::Cpu, Target::Interp] {
        let kernel = Compiler::new(target).no_cache().define("BM", 32).define("BN", 64).compile_file(GEMM, "gemm_w3a8").unwrap();
        assert_eq!(kernel.values().iter().find(|(n, _)| n == "BM").map(|(_, v)| v.as_str()), Some("32"));
        // Poison the output so that unwritten elements show.
        let mut c = Tensor::from_codes(DType::F16, &[m, n], &vec![0x7E00; m * n]).unwrap();
        let launched = kernel.launch(&mut [arg(m), arg(n), arg(k), arg(&a), arg(&a_scale), arg(&w), arg(&w_scale), arg_mut(&mut c)]).unwrap();
        assert_eq!(launched.grid, [2, 2, 1]);
        outs.push(c);
    }
    assert_eq!(outs[0].codes(), outs[1].codes(), "CPU and interpreter differ (seed {seed})");
    let (av, asv, wv, wsv, got) = (a.to_f64_vec(), a_scale.to_f64_vec(), w.to_f64_vec(), w_scale.to_f64_vec(), outs[0].to_f64_vec());
    for i in 0..m {
        for j in 0..n {
            let want: f64 = (0..k).map(|kk| av[i * k + kk] * (wv[kk * n + j] - 4.0) * wsv[(kk / 128) * n + j] * asv[i]).sum();
            let g = got[i * n + j];
            // f16 rounding of the result (half an ulp, relative 2^-11) plus the f32 steps.
            let bound = want.abs() * 2f64.powi(-10) + 1e-6 * want.abs().max(1.0) * k as f64;
            assert!((g - want).abs() <= bound || (g.is_infinite() && want.abs() > 65504.0), "c[{i}, {j}] = {g}, want {want} (seed {seed})");
        }
    }
}

#[test]
fn cpu_matches_interpreter_on_a_small_kernel() {
    let n = 50;
    let x = Tensor::random(DType::F32, &[n], 11).unwrap();
    let y = Tensor::random(DType::BF16, &[n], 12).unwrap();
    let mut results = Vec::new();
    for target in [Target::Cpu, Target::Interp] {
        let mut z = Tensor::zeros(DType::F32, &[n]).unwrap();
        axpy(target).launch(&mut [arg(n as i32), arg(-1.5f32), arg(&x), arg(&y), arg_mut(&mut z)]).unwrap();
        results.push(z);
    }
    assert_eq!(results[0], results[1]);
    let (xv, yv, zv) = (x.to_f64_vec(), y.to_f64_vec(), results[0].to_f64_vec());
    for i in 0..n {
        // alpha·x is rounded to f32, then the sum is rounded to f32.
        let want = f64::from((f64::from((-1.5 * xv[i]) as f32) + yv[i]) as f32);
        assert_eq!(zv[i], want, "element {i}");
    }
}

fn launch_err(args: &mut [Arg<'_>]) -> Error {
    axpy(Target::Cpu).launch(args).unwrap_err()
}

#[test]
fn bad_arguments_are_errors_that_name_the_parameter() {
    let n = 8;
    let x = Tensor::zeros(DType::F32, &[n]).unwrap();
    let x_short = Tensor::zeros(DType::F32, &[n - 1]).unwrap();
    let x_f16 = Tensor::zeros(DType::F16, &[n]).unwrap();
    let y = Tensor::zeros(DType::BF16, &[n]).unwrap();
    let mut z = Tensor::zeros(DType::F32, &[n]).unwrap();
    let z_ro = Tensor::zeros(DType::F32, &[n]).unwrap();

    let e = launch_err(&mut [arg(n), arg(1.0), arg(&x), arg(&y)]);
    assert!(matches!(e, Error::Argument { .. }));
    assert_eq!(e.to_string(), "bad arguments to `axpy`: it takes 5 arguments (n, alpha, x, y, z), 4 given");

    let e = launch_err(&mut [arg(n), arg(1.0), arg(&x_short), arg(&y), arg_mut(&mut z)]);
    assert_eq!(e.to_string(), "bad arguments to `axpy`: `x` has shape [7], the kernel expects [n] = [8]");
    // The diagnostic points at the parameter's declaration.
    let d = e.diagnostics();
    let span = d[0].primary_span().expect("a span");
    assert_eq!(&AXPY[span.range()], "x: global f32[n]", "{d:?}");
    assert!(e.render(tilc::base::RenderStyle::Plain).contains("parameter declared here"));

    let e = launch_err(&mut [arg(n), arg(1.0), arg(&x_f16), arg(&y), arg_mut(&mut z)]);
    assert!(e.to_string().contains("`x` holds `f16` elements, the kernel takes `f32`"), "{e}");

    let e = launch_err(&mut [arg(n), arg(1.0), arg(&x), arg(&y), arg(&z_ro)]);
    assert!(e.to_string().contains("`z` is an output: pass it writable, with `arg_mut(&mut z)`"), "{e}");

    let e = launch_err(&mut [arg(1u64 << 40), arg(1.0), arg(&x), arg(&y), arg_mut(&mut z)]);
    assert!(e.to_string().contains("`n` = 1099511627776 does not fit `i32`"), "{e}");

    let e = launch_err(&mut [arg(2.5), arg(1.0), arg(&x), arg(&y), arg_mut(&mut z)]);
    assert!(e.to_string().contains("`n` is an integer `i32`, a float was given"), "{e}");

    let e = launch_err(&mut [arg(n), arg(&x), arg(&x), arg(&y), arg_mut(&mut z)]);
    assert!(e.to_string().contains("`alpha` is a scalar `f32`, a tensor was given"), "{e}");

    let e = launch_err(&mut [arg(n), arg(1.0), arg(3), arg(&y), arg_mut(&mut z)]);
    assert!(e.to_string().contains("`x` is a tensor `x: global f32[n]`, a scalar was given"), "{e}");

    // An integer for a float scalar is fine; nothing was written by the failed launches.
    assert!(z.to_f64_vec().iter().all(|&v| v == 0.0));
    axpy(Target::Cpu).launch(&mut [arg(n), arg(1), arg(&x), arg(&y), arg_mut(&mut z)]).unwrap();
}

#[test]
fn run_time_check_failures_carry_the_span() {
    let x = Tensor::zeros(DType::F32, &[0]).unwrap();
    let y = Tensor::zeros(DType::BF16, &[0]).unwrap();
    let mut z = Tensor::zeros(DType::F32, &[0]).unwrap();
    for target in [Target::Cpu, Target::Interp] {
        // n = 0 gives an empty grid: nothing runs, so no assumption is checked.
        axpy(target).launch(&mut [arg(0), arg(1.0), arg(&x), arg(&y), arg_mut(&mut z)]).unwrap();
    }
    let src = AXPY.replace("grid [cdiv(n, B)]", "grid [1]");
    for target in [Target::Cpu, Target::Interp] {
        let k = Compiler::new(target).no_cache().compile_source("axpy1.tl", &src, "axpy").unwrap();
        let e = k.launch(&mut [arg(0), arg(1.0), arg(&x), arg(&y), arg_mut(&mut z)]).unwrap_err();
        let Error::Run { error, .. } = &e else { panic!("{target}: {e:?}") };
        let span = error.span.expect("span");
        assert_eq!(&src[span.range()], "assume(n > 0);", "{target}");
    }
}

#[test]
fn compile_errors_and_gpu_targets() {
    let e = Compiler::new(Target::Cpu).no_cache().compile_source("bad.tl", "kernel k() grid [1] warps 1 { let x = y; }", "k").unwrap_err();
    let Error::Compile { diagnostics, .. } = &e else { panic!("{e:?}") };
    assert!(diagnostics.iter().any(|d| d.is_error()));
    assert!(e.to_string().starts_with("`bad.tl` does not compile (1 error):"), "{e}");

    let e = Compiler::new(Target::Cpu).no_cache().define("NOPE", 3).compile_source("axpy.tl", AXPY, "axpy").unwrap_err();
    assert!(e.to_string().contains("kernel `axpy` has no compile-time parameter `NOPE`"), "{e}");

    let e = Compiler::new(Target::Cpu).no_cache().compile_source("axpy.tl", AXPY, "nope").unwrap_err();
    assert!(e.to_string().contains("no kernel named `nope`"), "{e}");

    // The GPU targets compile without a GPU (tests/gpu_library.rs launches them where one is).
    for gpu in [Target::Sm90a, Target::Sm100a, Target::Sm120a] {
        let k = Compiler::new(gpu).no_cache().compile_source("axpy.tl", AXPY, "axpy").unwrap_or_else(|e| panic!("{gpu}: {e}"));
        assert!(gpu.is_gpu() && gpu.is_supported());
        assert!(k.ptx().is_some_and(|p| p.contains(&format!(".target {gpu}")) && p.contains(".entry axpy(")), "{gpu}");
    }
    assert_eq!(Target::detect(), Target::gpu().unwrap_or(Target::Cpu));
    for t in Target::ALL {
        assert_eq!(t.name().parse::<Target>(), Ok(t));
    }
    assert_eq!("SM90A".parse::<Target>(), Ok(Target::Sm90a));
    assert!("tpu".parse::<Target>().unwrap_err().contains("unknown target `tpu`"));
}

#[test]
fn kernels_describe_themselves_and_are_memoised() {
    let c = Compiler::new(Target::Cpu).no_cache();
    let k1 = c.compile_source("axpy.tl", AXPY, "axpy").unwrap();
    assert_eq!(k1.signature(), "axpy(n: i32, alpha: f32, x: global f32[n], y: global bf16[n], z: out global f32[n])");
    let k2 = c.clone().compile_source("axpy.tl", AXPY, "axpy").unwrap();
    assert_eq!(k1.compile_time(), k2.compile_time(), "the second compile is the memoised first");
    let k3 = c.define("B", 16).compile_source("axpy.tl", AXPY, "axpy").unwrap();
    assert_eq!(k3.values(), vec![("B".to_string(), "16".to_string())]);
}

#[test]
fn kernels_and_compilers_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<tilc::Kernel>();
    send_sync::<Compiler>();
    send_sync::<Tensor>();
    // One kernel launched from several threads at once, each on its own tensors.
    let kernel = axpy(Target::Cpu);
    std::thread::scope(|s| {
        for t in 0..3u64 {
            let kernel = &kernel;
            s.spawn(move || {
                let n = 40 + t as usize;
                let x = Tensor::random(DType::F32, &[n], t).unwrap();
                let y = Tensor::zeros(DType::BF16, &[n]).unwrap();
                let mut z = Tensor::zeros(DType::F32, &[n]).unwrap();
                kernel.launch(&mut [arg(n), arg(1.0), arg(&x), arg(&y), arg_mut(&mut z)]).unwrap();
                assert_eq!(z, x, "thread {t}");
            });
        }
    });
}
