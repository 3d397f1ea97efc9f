//! The GPU benchmark of the kernel library at LLM shapes (benches/gpu/README.md): GEMV (m = 1)
//! and GEMM (m = 16, 128, 4096) with k = 4096 and n in {4096, 12288, 14336} for W4A16, W3A16,
//! W6A16 (f6e3m2), W3A8, MXFP4 and NVFP4; quantize and Hadamard at 4096 and 16384 columns.
//!
//! Each kernel is compiled through `tilc::Compiler` (the disk cache keeps the code between runs)
//! and launched through the embedding API on tensors already in device memory. Times are CUDA
//! event times of single launches after a warm-up, median of many; the inputs rotate through
//! enough copies that their total exceeds twice the L2 cache, so each launch reads from DRAM.
//! The host queues each batch of launches behind a spin kernel, so that the events time the
//! kernels and not the host's launch overhead. The table (markdown, on stdout) gives the time,
//! TFLOP/s, GB/s of the bytes the kernel must move (its inputs once, its outputs once), and
//! those as fractions of the device's measured copy bandwidth and of its tensor-core peak for
//! the kernel's mma input type.
//!
//! Without a CUDA driver it prints 'skipped: no CUDA driver found …' and exits 0 (exit 1 with
//! `TILC_REQUIRE_GPU` set, as benches/gpu/run.sh sets it).
//!
//! Options: `--filter TEXT` (rows whose kernel or format contains TEXT), `--quick` (n = 4096
//! only; m = 1 and 128), `--markdown FILE` (also write the table there). The kernel files are
//! found under `$TILC_REPO_ROOT`, else the repository it was built in, else the working
//! directory.

use rayon::prelude::*;
use std::path::PathBuf;
use std::time::Instant;
use tilc::{Arg, Compiler, DType, Kernel, Target, Tensor, arg};
use tilc_cuda::{CudaError, Device, DeviceBuffer, DeviceTensor, Function, KernelArg, LaunchSpec};
use tilc_vm::Param;

/// One row of the table.
struct Bench {
    /// `W4A16`, `MXFP4`, … or the operation.
    format: String,
    file: &'static str,
    kernel: &'static str,
    defines: Vec<(String, String)>,
    /// Scalar arguments by name.
    scalars: Vec<(&'static str, f64)>,
    /// The problem's shape, as shown.
    shape: String,
    /// Floating-point (or integer) operations of one launch; 0 where the row is not a GEMM.
    flops: f64,
    /// Compiled with `Compiler::async_tensor_cores` (wgmma on sm_90a, tcgen05 on sm_100a).
    async_tensor_cores: bool,
}

fn d(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
}

/// The rows: every format × m × n, then the quantizers and rotations; on sm_90a and sm_100a
/// also the W3A8 and W4A16 GEMMs at m ≥ 128 on the asynchronous tensor cores (wgmma,
/// tcgen05), beside their mma.sync rows.
fn plan(quick: bool, target: Target) -> Vec<Bench> {
    let k = 4096.0;
    let ms: &[f64] = if quick { &[1.0, 128.0] } else { &[1.0, 16.0, 128.0, 4096.0] };
    let ns: &[f64] = if quick { &[4096.0] } else { &[4096.0, 12288.0, 14336.0] };
    let mut rows = Vec::new();
    for &(format, tw) in &[("W4A16", "i4"), ("W3A16", "i3"), ("W6A16", "f6e3m2")] {
        for &m in ms {
            for &n in ns {
                let scalars = vec![("m", m), ("n", n), ("k", k), ("group", 128.0)];
                let (file, kernel, defines) = if m == 1.0 {
                    ("lang/gemv.tl", "gemv_a16w", d(&[("TW", tw), ("ROWS", "1"), ("BN", "256")]))
                } else if m <= 16.0 {
                    ("lang/gemm_a16w.tl", "gemm_a16w", d(&[("TW", tw), ("BM", "16")]))
                } else {
                    // 64 × 128 tiles: 127 registers, no spills, 2.3× fewer instructions than the
                    // default 32 × 64 in the emulator at m = 128.
                    ("lang/gemm_a16w.tl", "gemm_a16w", d(&[("TW", tw), ("BM", "64"), ("BN", "128")]))
                };
                rows.push(Bench { format: format.into(), file, kernel, defines, scalars, shape: format!("m={m} n={n} k={k}"), flops: 2.0 * m * n * k, async_tensor_cores: false });
            }
        }
    }
    for &m in ms {
        for &n in ns {
            let defines = if m <= 32.0 { d(&[("BM", "32")]) } else { Vec::new() };
            rows.push(Bench {
                format: "W3A8".into(),
                file: "examples/gemm_w3a8.tl",
                kernel: "gemm_w3a8",
                defines,
                scalars: vec![("m", m), ("n", n), ("k", k)],
                shape: format!("m={m} n={n} k={k}"),
                flops: 2.0 * m * n * k,
                async_tensor_cores: false,
            });
        }
    }
    for &(format, ts, block) in &[("MXFP4", "e8m0", "32"), ("NVFP4", "ue4m3", "16")] {
        for &m in ms {
            for &n in ns {
                let mut defines = d(&[("TE", "f4e2m1"), ("TS", ts), ("BLOCK", block)]);
                if m <= 16.0 {
                    defines.push(("BM".into(), "16".into()));
                } else {
                    // 64 × 64 tiles: 128 registers, no spills, 2.2× fewer instructions than the
                    // default 32 × 32 in the emulator at m = 128.
                    defines.extend(d(&[("BM", "64"), ("BN", "64")]));
                }
                rows.push(Bench {
                    format: format.into(),
                    file: "lang/gemm_mx.tl",
                    kernel: "gemm_block_scaled",
                    defines,
                    scalars: vec![("m", m), ("n", n), ("k", k), ("a_tensor_scale", 1.0), ("w_tensor_scale", 1.0)],
                    shape: format!("m={m} n={n} k={k}"),
                    flops: 2.0 * m * n * k,
                    async_tensor_cores: false,
                });
            }
        }
    }
    let engine = match target {
        Target::Sm90a => Some(("wgmma", d(&[]), d(&[("BM", "64"), ("BN", "64")]))),
        Target::Sm100a => Some(("tcgen05", d(&[("BM", "128"), ("BN", "64")]), d(&[("BM", "128")]))),
        _ => None,
    };
    if let Some((engine, w3a8, a16w)) = engine {
        for &m in ms.iter().filter(|&&m| m >= 128.0) {
            for &n in ns {
                let shape = format!("m={m} n={n} k={k}");
                let flops = 2.0 * m * n * k;
                rows.push(Bench { format: format!("W3A8 {engine}"), file: "examples/gemm_w3a8.tl", kernel: "gemm_w3a8", defines: w3a8.clone(), scalars: vec![("m", m), ("n", n), ("k", k)], shape: shape.clone(), flops, async_tensor_cores: true });
                let mut defines = a16w.clone();
                defines.push(("TW".into(), "i4".into()));
                rows.push(Bench { format: format!("W4A16 {engine}"), file: "lang/gemm_a16w.tl", kernel: "gemm_a16w", defines, scalars: vec![("m", m), ("n", n), ("k", k), ("group", 128.0)], shape, flops, async_tensor_cores: true });
            }
        }
    }
    let rows_n = 4096.0;
    for &cols in &[4096.0, 16384.0] {
        let shape = format!("rows={rows_n} cols={cols}");
        let two = |r: f64, c: f64| vec![("rows", r), ("cols", c)];
        rows.push(Bench { format: "bf16→MXFP4".into(), file: "lang/quantize.tl", kernel: "quantize_mx", defines: d(&[("T", "bf16")]), scalars: two(rows_n, cols), shape: shape.clone(), flops: 0.0, async_tensor_cores: false });
        rows.push(Bench { format: "bf16→NVFP4".into(), file: "lang/quantize.tl", kernel: "quantize_nvfp4", defines: d(&[("T", "bf16")]), scalars: two(rows_n, cols), shape: shape.clone(), flops: 0.0, async_tensor_cores: false });
        rows.push(Bench {
            format: "bf16→i4 g128".into(),
            file: "lang/quantize.tl",
            kernel: "quantize_int",
            defines: d(&[("T", "bf16")]),
            scalars: vec![("rows", rows_n), ("cols", cols), ("bh", 1.0), ("bw", 128.0), ("seed", 1.0)],
            shape: shape.clone(),
            flops: 0.0,
            async_tensor_cores: false,
        });
        let n = format!("{cols}");
        rows.push(Bench { format: "bf16 rotation".into(), file: "lang/hadamard.tl", kernel: "hadamard", defines: d(&[("T", "bf16"), ("N", &n)]), scalars: vec![("rows", rows_n)], shape: shape.clone(), flops: 0.0, async_tensor_cores: false });
        rows.push(Bench {
            format: "bf16→MXFP4 rotated".into(),
            file: "lang/hadamard_quant.tl",
            kernel: "hadamard_quant_mx",
            defines: d(&[("T", "bf16")]),
            scalars: vec![("rows", rows_n), ("cols", cols), ("seed", 1.0)],
            shape,
            flops: 0.0,
            async_tensor_cores: false,
        });
    }
    rows
}

fn root() -> PathBuf {
    if let Some(dir) = std::env::var_os("TILC_REPO_ROOT") {
        return PathBuf::from(dir);
    }
    let built = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if built.join("lang").is_dir() { built } else { std::env::current_dir().expect("a working directory") }
}

/// A spin kernel: waits `ns` nanoseconds of the global timer. Queued before a batch of timed
/// launches, it lets the host queue the whole batch before the first one starts.
const SPIN_PTX: &str = "
.version 7.0
.target sm_70
.address_size 64
.visible .entry tilc_bench_spin(.param .u64 ns)
{
    .reg .u64 %t<4>;
    .reg .pred %p;
    ld.param.u64 %t3, [ns];
    mov.u64 %t0, %globaltimer;
WAIT:
    mov.u64 %t1, %globaltimer;
    sub.u64 %t2, %t1, %t0;
    setp.lt.u64 %p, %t2, %t3;
    @%p bra WAIT;
    ret;
}
";

/// Tensor-core operations per clock per SM (dense), by compute capability major and the mma
/// input type: (16-bit floats, 8-bit types). From NVIDIA's data sheets: H100 SXM 989 TFLOP/s
/// f16 at 132 SMs × 1830 MHz; B200 2.25 PFLOP/s; RTX 5090 209.5 TFLOP/s (f32 accumulation).
fn tc_ops_per_clock_per_sm(cc_major: u32, eight_bit: bool) -> f64 {
    let f16 = match cc_major {
        9 => 4096.0,
        10 => 8192.0,
        12 => 512.0,
        _ => 1024.0,
    };
    if eight_bit { 2.0 * f16 } else { f16 }
}

/// Random values of `dtype` filling `shape`: one seeded block of `Tensor::random` codes (whole
/// bytes for any width) repeated, which is as good as fresh values for timing and quick to make
/// at a few hundred million elements.
fn fill(dtype: DType, shape: &[usize], seed: u64) -> Tensor {
    const BLOCK: usize = 32 * 1024;
    let numel: usize = shape.iter().product();
    let block = Tensor::random(dtype, &[BLOCK.min(numel.max(1))], seed).expect("a random block");
    let need = tilc_dtype::pack::packed_len(numel, dtype.bits());
    let mut bytes = Vec::with_capacity(need);
    while bytes.len() < need {
        let take = (need - bytes.len()).min(block.packed().len());
        bytes.extend_from_slice(&block.packed()[..take]);
    }
    Tensor::from_packed(dtype, shape, &bytes).expect("a packed image of the right length")
}

/// The device's copy bandwidth (bytes read + written per second), from device-to-device copies
/// of 1 GiB timed with events.
fn measure_bandwidth(device: &Device) -> Result<f64, CudaError> {
    let bytes = 1usize << 30;
    let source = DeviceBuffer::zeroed(device, bytes)?;
    let mut target = DeviceBuffer::zeroed(device, bytes)?;
    let timing = device.time(3, 20, |_| target.copy_from(&source))?;
    Ok(2.0 * bytes as f64 / (f64::from(timing.median_ms()) * 1e-3))
}

struct Row {
    bench: usize,
    config: String,
    median_ms: f64,
    bytes: f64,
    peak_ops: f64,
    registers: Option<u32>,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |f: &str| args.iter().any(|a| a == f);
    let value = |f: &str| args.iter().position(|a| a == f).and_then(|i| args.get(i + 1)).cloned();
    let target = match Target::for_device() {
        Ok(t) => t,
        Err(reason) if std::env::var_os("TILC_REQUIRE_GPU").is_some() => {
            eprintln!("error: TILC_REQUIRE_GPU is set, but: {reason}");
            std::process::exit(1);
        }
        Err(reason) => {
            println!("skipped: {reason}");
            return;
        }
    };
    if let Err(e) = run(target, flag("--quick"), value("--filter"), value("--markdown")) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(target: Target, quick: bool, filter: Option<String>, markdown: Option<String>) -> Result<(), String> {
    let mut benches = plan(quick, target);
    if let Some(f) = &filter {
        benches.retain(|b| b.kernel.contains(f.as_str()) || b.format.contains(f.as_str()));
    }
    // Compile each distinct configuration once, in parallel (the disk cache makes reruns quick).
    let start = Instant::now();
    let compiler = Compiler::new(target).progress(false);
    type Config = (&'static str, &'static str, Vec<(String, String)>, bool);
    let mut configs: Vec<Config> = Vec::new();
    for b in &benches {
        let key = (b.file, b.kernel, b.defines.clone(), b.async_tensor_cores);
        if !configs.contains(&key) {
            configs.push(key);
        }
    }
    let compiled: Vec<Result<Kernel, String>> = configs
        .par_iter()
        .map(|(file, kernel, defines, fast)| {
            let c = defines.iter().fold(compiler.clone().async_tensor_cores(*fast), |c, (n, v)| c.define(n, v));
            c.compile_file(root().join(file), kernel).map_err(|e| format!("{kernel} {defines:?}: {e}"))
        })
        .collect();
    eprintln!("compiled {} configurations for {target} in {:.1} s", configs.len(), start.elapsed().as_secs_f64());
    let kernel_of = |b: &Bench| -> Result<&Kernel, String> {
        let i = configs.iter().position(|(f, k, d, a)| *f == b.file && *k == b.kernel && *d == b.defines && *a == b.async_tensor_cores).expect("every bench has a configuration");
        compiled[i].as_ref().map_err(Clone::clone)
    };

    let first = benches.iter().find_map(|b| kernel_of(b).ok()).ok_or("no kernel compiled")?;
    let device = first.gpu_device().map_err(|e| e.to_string())?;
    let info = device.info().clone();
    let bandwidth = measure_bandwidth(&device).map_err(|e| e.to_string())?;
    let spin = device.load_ptx(SPIN_PTX).and_then(|m| m.function("tilc_bench_spin")).map_err(|e| e.to_string())?;
    let clock_hz = f64::from(info.sm_clock_khz.unwrap_or(0)) * 1e3;
    let peak_override = std::env::var("TILC_BENCH_PEAK_TFLOPS").ok().and_then(|s| s.parse::<f64>().ok()).map(|t| t * 1e12);
    let peak = |eight_bit: bool| peak_override.unwrap_or(tc_ops_per_clock_per_sm(info.compute_capability.0, eight_bit) * f64::from(info.sm_count) * clock_hz);

    let mut rows = Vec::new();
    for (i, b) in benches.iter().enumerate() {
        let kernel = match kernel_of(b) {
            Ok(k) => k,
            Err(e) => {
                eprintln!("skipping {} {} {}: {e}", b.format, b.kernel, b.shape);
                continue;
            }
        };
        match time_bench(b, kernel, &device, &spin) {
            Ok((median_ms, bytes)) => {
                let code = kernel.gpu_code().expect("GPU code");
                let eight_bit = code.dots.iter().any(|d| d.contains("mma S8S32") || d.contains("mma Fp8F32"));
                let config = kernel.values().iter().filter(|(n, _)| b.defines.iter().any(|(d, _)| d == n) || ["BM", "BN", "BK"].contains(&n.as_str())).map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join(" ");
                eprintln!("{} {} {}: {:.4} ms", b.format, b.kernel, b.shape, median_ms);
                rows.push(Row { bench: i, config, median_ms, bytes, peak_ops: peak(eight_bit), registers: code.resources.as_ref().map(|r| r.registers) });
            }
            Err(e) => eprintln!("failed {} {} {}: {e}", b.format, b.kernel, b.shape),
        }
    }

    let mut table = format!(
        "GPU: {} ({}, {} SMs, {:.0} MHz, L2 {} MiB), driver CUDA {}.{}; measured copy bandwidth {:.0} GB/s{}; tensor-core peak {:.0} TFLOP/s (16-bit), {:.0} (8-bit){}\n\n",
        info.name,
        info.arch(),
        info.sm_count,
        clock_hz / 1e6,
        info.l2_cache_bytes >> 20,
        info.driver_version.0,
        info.driver_version.1,
        bandwidth / 1e9,
        info.memory_bandwidth_bytes_per_s.map(|p| format!(" (peak {:.0})", p / 1e9)).unwrap_or_default(),
        peak(false) / 1e12,
        peak(true) / 1e12,
        if peak_override.is_some() { " (TILC_BENCH_PEAK_TFLOPS)" } else { " (data-sheet ops/clock/SM × SMs × max SM clock)" },
    );
    table.push_str("| format | kernel | shape | config | regs | time (µs) | TFLOP/s | GB/s | % of measured BW | % of TC peak |\n|---|---|---|---|---|---|---|---|---|---|\n");
    for r in &rows {
        let b = &benches[r.bench];
        let seconds = r.median_ms * 1e-3;
        let gbs = r.bytes / seconds / 1e9;
        let (tflops, tc) = if b.flops > 0.0 { (format!("{:.1}", b.flops / seconds / 1e12), format!("{:.1}", 100.0 * b.flops / seconds / r.peak_ops)) } else { ("—".into(), "—".into()) };
        table.push_str(&format!(
            "| {} | `{}` | {} | {} | {} | {:.1} | {tflops} | {gbs:.0} | {:.1} | {tc} |\n",
            b.format,
            b.kernel,
            b.shape,
            r.config,
            r.registers.map_or("—".into(), |x| x.to_string()),
            r.median_ms * 1e3,
            100.0 * gbs * 1e9 / bandwidth,
        ));
    }
    print!("{table}");
    if let Some(path) = markdown {
        std::fs::write(&path, &table).map_err(|e| format!("cannot write {path}: {e}"))?;
    }
    Ok(())
}

/// Times one row: returns the median milliseconds and the bytes one launch must move.
fn time_bench(b: &Bench, kernel: &Kernel, device: &Device, spin: &Function) -> Result<(f64, f64), String> {
    let vm = kernel.vm();
    let scalar_of = |name: &str| b.scalars.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
    let ints = |v: tilc_vm::Value| -> Option<i64> { scalar_of(vm.values[v].name.as_deref()?).map(|x| x as i64) };
    // The host tensors of one set.
    let mut host: Vec<Option<Tensor>> = Vec::new();
    let mut set_bytes = 0usize;
    for (i, p) in vm.params.iter().enumerate() {
        host.push(match p {
            Param::Scalar(_) => None,
            Param::Tensor(g) => {
                let gd = &vm.globals[*g];
                let shape: Vec<usize> = gd.shape.iter().map(|e| e.eval(&ints).map(|x| x as usize)).collect::<Option<_>>().ok_or("a shape does not evaluate")?;
                let t = if gd.out { Tensor::zeros(gd.dtype, &shape).map_err(|e| e.to_string())? } else { fill(gd.dtype, &shape, 0x5EED + i as u64) };
                set_bytes += t.packed().len();
                Some(t)
            }
        });
    }
    // Enough copies that all of them exceed twice the L2 cache, within a quarter of the memory.
    let (free, _) = device.memory_info().map_err(|e| e.to_string())?;
    let sets = (2 * device.info().l2_cache_bytes as usize).div_ceil(set_bytes.max(1)).max(2);
    let sets = sets.min((free as usize / 4 / set_bytes.max(1)).max(1));
    let device_sets: Vec<Vec<Option<DeviceTensor>>> = (0..sets)
        .map(|_| host.iter().map(|t| t.as_ref().map(|t| kernel.upload(t)).transpose()).collect::<tilc::Result<Vec<_>>>())
        .collect::<tilc::Result<_>>()
        .map_err(|e| e.to_string())?;
    drop(host);
    let launch = |i: usize| -> Result<(), CudaError> {
        let set = &device_sets[i % sets];
        let mut args: Vec<Arg<'_>> = vm
            .params
            .iter()
            .zip(set)
            .map(|(p, t)| match (p, t) {
                (_, Some(t)) => arg(t),
                (Param::Scalar(v), None) => {
                    let x = scalar_of(vm.param_name(*p)).unwrap_or(0.0);
                    if vm.ty(*v).dtype().is_float() { Arg::Float(x) } else { Arg::Int(x as i64) }
                }
                (Param::Tensor(_), None) => unreachable!("every tensor was uploaded"),
            })
            .collect();
        kernel.launch(&mut args).map(|_| ()).map_err(|e| CudaError::InvalidTiming { reason: e.to_string() })
    };
    // Warm up (and check that it runs), then estimate one launch.
    for i in 0..3 {
        launch(i).map_err(|e| e.to_string())?;
    }
    device.synchronize().map_err(|e| e.to_string())?;
    let estimate_ms = f64::from(device.time(0, 3, &launch).map_err(|e| e.to_string())?.median_ms());
    let iters = ((300.0 / estimate_ms.max(1e-3)) as usize).clamp(20, 500);
    let batch = 50usize;
    let mut samples = Vec::with_capacity(iters);
    let mut done = 0;
    while done < iters {
        let n = batch.min(iters - done);
        // Long enough for the host to queue the batch (generously 50 µs a launch).
        let spin_ns = 1_000_000u64 + 50_000 * n as u64;
        spin.launch(&LaunchSpec::linear(1, 1), &[KernelArg::U64(spin_ns)]).map_err(|e| e.to_string())?;
        let t = device.time(0, n, |j| launch(done + j)).map_err(|e| e.to_string())?;
        samples.extend(t.samples_ms);
        done += n;
    }
    Ok((f64::from(tilc_cuda::median(&samples)), set_bytes as f64))
}
