//! `tilc run`: elaborates a kernel, binds its arguments from the command line and files, runs it
//! on a target (the VM interpreter, the CPU backend, the SIMT emulator, or the GPU through the
//! CUDA driver) and writes the requested outputs.
//!
//! This module does the file IO and argument handling; the VM (`tilc_vm`), the backends and,
//! for `--target cuda`, the embedding API (`tilc::Compiler`, with its kernel cache) do the rest.

pub mod tensor_io;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;
use tilc_base::{Diagnostic, RenderStyle, SourceFile, render};
use tilc_vm::{ArgValue, Define, HostTensor, Kernel, Param, SymExpr};

/// Run a kernel over its grid on host tensors.
///
/// Scalars come from `--arg NAME=VALUE` or from the shapes of tensor arguments (`m` in
/// `a: global i8[m, k]` is read off `a`'s file). Tensors come from `--arg NAME=@FILE` (`.npy`, or
/// `.safetensors` holding a tensor called NAME; `@FILE.safetensors:KEY` picks another key), or
/// with `--random SEED` from a seeded generator. Outputs start as zeros unless given. A
/// parameter of a sub-byte or exotic type (`u3`, `f6e3m2`, `e8m0`…) accepts a plain `.npy` of
/// its values and is written the same way, unless `--packed` asks for raw packed bytes.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  tilc run examples/gemm_w3a8.tl --random 1 -D BM=32 --arg m=33 --arg n=96 --arg k=256 --out c=c.npy\n  tilc run examples/gemm_w3a8.tl --random 1 --arg m=33 --arg n=96 --arg k=256 --target cuda --expect c=c.npy")]
pub struct RunArgs {
    /// The `.tl` file.
    pub file: PathBuf,
    /// The kernel to run (needed when the file defines several).
    #[arg(long)]
    pub kernel: Option<String>,
    /// Override a compile-time parameter, e.g. `-D BM=32` or `-D T=f16`.
    #[arg(short = 'D', value_name = "NAME=VALUE")]
    pub defines: Vec<String>,
    /// Bind a parameter: `NAME=VALUE` for scalars, `NAME=@FILE` for tensors (.npy/.safetensors).
    #[arg(long = "arg", value_name = "NAME=VALUE|NAME=@FILE")]
    pub args: Vec<String>,
    /// Write a tensor parameter after the run: `NAME=FILE.npy`, or `FILE.safetensors` for all
    /// `out` tensors in one file.
    #[arg(long = "out", value_name = "NAME=FILE|FILE.safetensors")]
    pub outs: Vec<String>,
    /// Fill every input tensor not given with seeded random values (integers over their whole
    /// range, signed floats in [-1, 1], scale formats in [2^-4, 2^4]).
    #[arg(long, value_name = "SEED")]
    pub random: Option<u64>,
    /// Write every input tensor (and `scalars.txt`) into this directory so the run can be
    /// reproduced elsewhere.
    #[arg(long, value_name = "DIR")]
    pub save_inputs: Option<PathBuf>,
    /// Read and write sub-byte tensors as raw packed bytes (a u8 array) instead of values.
    #[arg(long)]
    pub packed: bool,
    /// Compare an output with a reference: `NAME=FILE.npy`; prints the largest errors and fails
    /// when an element differs by more than `--tol`.
    #[arg(long = "expect", value_name = "NAME=FILE")]
    pub expects: Vec<String>,
    /// Tolerance of `--expect`: |got - want| <= tol * max(1, |want|).
    #[arg(long, default_value_t = 0.0)]
    pub tol: f64,
    /// Where to run: `interp` (the VM interpreter, the reference) or `cpu` (native code through
    /// Cranelift, JIT-compiled; bit-identical to the interpreter), `simt` (the per-thread GPU
    /// program run in the SIMT emulator: every thread of every block, with race and bounds
    /// checks), `cuda` (the same program compiled to PTX for the architecture of CUDA device 0 —
    /// sm_90a, sm_100a or sm_120a — and launched through the CUDA driver; the compiled code is
    /// kept in the kernel cache).
    #[arg(long, default_value = "interp", value_parser = ["interp", "cpu", "simt", "cuda"])]
    pub target: String,
}

/// Renders diagnostics to stderr (in colour on a terminal).
pub fn print_diags(file: Option<&SourceFile>, diags: &[Diagnostic]) {
    let style = if std::io::stderr().is_terminal() { RenderStyle::Color } else { RenderStyle::Plain };
    let empty = SourceFile::new("", "");
    eprint!("{}", render(file.unwrap_or(&empty), diags, style));
}

/// Parses `-D NAME=VALUE` flags.
pub fn parse_defines(defs: &[String]) -> Result<Vec<Define>, String> {
    defs.iter().map(|d| Define::parse(d).map_err(|e| format!("-D {e}"))).collect()
}

/// Reads `path` and elaborates the kernel; on failure returns the file (if read) and diagnostics.
pub fn load_kernel(path: &Path, kernel: Option<&str>, defines: &[Define]) -> Result<(SourceFile, Kernel), (Option<SourceFile>, Vec<Diagnostic>)> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| (None, vec![Diagnostic::error_nowhere(format!("cannot read `{name}`: {e}"))]))?;
    let file = SourceFile::new(name, text);
    match tilc_vm::elaborate_source(&file, kernel, defines) {
        Ok(k) => Ok((file, k)),
        Err(d) => Err((Some(file), d)),
    }
}

/// Runs `tilc run`.
pub fn run(args: RunArgs) -> ExitCode {
    match run_inner(&args) {
        Ok(code) => code,
        Err(Failure::Usage(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(2)
        }
        Err(Failure::Diags(file, diags)) => {
            print_diags(file.as_ref(), &diags);
            ExitCode::from(1)
        }
        Err(Failure::Msg(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(1)
        }
    }
}

enum Failure {
    Usage(String),
    Diags(Option<SourceFile>, Vec<Diagnostic>),
    Msg(String),
}

fn split_kv(s: &str, flag: &str) -> Result<(String, String), Failure> {
    let (k, v) = s.split_once('=').ok_or_else(|| Failure::Usage(format!("{flag} `{s}` is not NAME=VALUE")))?;
    Ok((k.trim().to_string(), v.trim().to_string()))
}

fn read_file(path: &str) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::Msg(format!("cannot read `{path}`: {e}")))
}

fn is_safetensors(path: &str) -> bool {
    path.ends_with(".safetensors")
}

/// The GPU target of the machine's device for `--target cuda`, or a diagnostic saying why there
/// is none (no driver, no device, another architecture).
fn cuda_target() -> Result<tilc::Target, Failure> {
    tilc::Target::for_device().map_err(|reason| {
        Failure::Diags(
            None,
            vec![
                Diagnostic::error_nowhere(format!("cannot run on `cuda`: {reason}"))
                    .with_hint("`--target simt` runs the same GPU program in the SIMT emulator; `--target interp` or `cpu` run it on this machine"),
            ],
        )
    })
}

/// Compiles `k` (elaborated from `args.file`) for `target` through the embedding API and runs it
/// on `values`; `out` tensors are replaced by the results.
fn run_cuda(args: &RunArgs, file: &SourceFile, k: &Kernel, target: tilc::Target, values: &mut [ArgValue]) -> Result<tilc_vm::RunSummary, Failure> {
    let failure = |e: tilc::Error| match e.source_file() {
        Some(f) => Failure::Diags(Some(f.clone()), e.diagnostics()),
        None => Failure::Diags(Some(file.clone()), e.diagnostics()),
    };
    let start = Instant::now();
    let mut compiler = tilc::Compiler::new(target).progress(false);
    for d in parse_defines(&args.defines).map_err(Failure::Usage)? {
        compiler = compiler.define(&d.name, &d.value);
    }
    let kernel = compiler.compile_source(&file.name, &file.text, &k.name).map_err(failure)?;
    let code = kernel.gpu_code().expect("a GPU target compiles to GPU code");
    eprintln!(
        "{} {} for {target} in {:.1} ms ({} threads per block, {} bytes of shared memory{})",
        if code.from_cache { "loaded" } else { "compiled" },
        k.name,
        start.elapsed().as_secs_f64() * 1e3,
        code.threads(),
        code.shared_bytes,
        if code.cubin.is_some() { "" } else { "; no ptxas, the driver compiles the PTX" }
    );
    let mut tensors: Vec<Option<tilc::Tensor>> = values.iter().map(|v| if let ArgValue::Tensor(t) = v { Some(tilc::Tensor::from_host(t)) } else { None }).collect();
    let outs: Vec<bool> = k.params.iter().map(|p| matches!(p, Param::Tensor(g) if k.globals[*g].out)).collect();
    let mut api_args: Vec<tilc::Arg<'_>> = values
        .iter()
        .zip(tensors.iter_mut())
        .zip(&outs)
        .map(|((v, t), &out)| match (v, t) {
            (ArgValue::Int(i), _) => tilc::Arg::Int(*i),
            (ArgValue::Float(x), _) => tilc::Arg::Float(*x),
            (_, Some(t)) => {
                if out {
                    tilc::Arg::TensorMut(t)
                } else {
                    tilc::Arg::Tensor(t)
                }
            }
            (ArgValue::Tensor(_), None) => unreachable!("every tensor value was converted"),
        })
        .collect();
    let launched = kernel.launch(&mut api_args).map_err(failure)?;
    drop(api_args);
    for ((v, t), &out) in values.iter_mut().zip(tensors).zip(&outs) {
        if out && let Some(t) = t {
            *v = ArgValue::Tensor(t.to_host());
        }
    }
    Ok(tilc_vm::RunSummary { grid: launched.grid })
}

fn run_inner(args: &RunArgs) -> Result<ExitCode, Failure> {
    // Without a usable GPU, say so before reading any input.
    let cuda = if args.target == "cuda" { Some(cuda_target()?) } else { None };
    let defines = parse_defines(&args.defines).map_err(Failure::Usage)?;
    let (file, k) = load_kernel(&args.file, args.kernel.as_deref(), &defines).map_err(|(f, d)| Failure::Diags(f, d))?;
    let _ = &file;
    let pname = |p: &Param| k.param_name(*p).to_string();
    let names: Vec<String> = k.params.iter().map(pname).collect();
    let find = |n: &str| -> Result<usize, Failure> {
        names.iter().position(|x| x == n).ok_or_else(|| Failure::Usage(format!("`{}` has no parameter `{n}` (parameters: {})", k.name, names.join(", "))))
    };

    // Bind what the command line gives.
    let mut bound: Vec<Option<ArgValue>> = vec![None; k.params.len()];
    let mut raws: BTreeMap<usize, tensor_io::RawArray> = BTreeMap::new();
    for a in &args.args {
        let (name, val) = split_kv(a, "--arg")?;
        let i = find(&name)?;
        match k.params[i] {
            Param::Scalar(v) => {
                let d = k.ty(v).dtype();
                let parsed = if d.is_float() {
                    val.parse::<f64>().ok().map(ArgValue::Float)
                } else {
                    match val.as_str() {
                        "true" => Some(ArgValue::Int(1)),
                        "false" => Some(ArgValue::Int(0)),
                        _ => val.parse::<i64>().ok().map(ArgValue::Int),
                    }
                };
                bound[i] = Some(parsed.ok_or_else(|| Failure::Usage(format!("--arg {name}={val}: expected a `{d}` value")))?);
            }
            Param::Tensor(_) => {
                let path = val.strip_prefix('@').ok_or_else(|| Failure::Usage(format!("--arg {name}={val}: a tensor is given as {name}=@FILE")))?;
                let raw = if is_safetensors(path) || path.contains(".safetensors:") {
                    let (p, key) = match path.rsplit_once(".safetensors:") {
                        Some((p, key)) => (format!("{p}.safetensors"), key.to_string()),
                        None => (path.to_string(), name.clone()),
                    };
                    let mut all = tensor_io::read_safetensors(&read_file(&p)?).map_err(|e| Failure::Msg(format!("`{p}`: {e}")))?;
                    all.remove(&key).ok_or_else(|| Failure::Msg(format!("`{p}` holds no tensor `{key}`")))?
                } else {
                    tensor_io::read_npy(&read_file(path)?).map_err(|e| Failure::Msg(format!("`{path}`: {e}")))?
                };
                raws.insert(i, raw);
            }
        }
    }

    // Scalars that a tensor's shape determines (`m` in `a: global i8[m, k]`).
    if !args.packed {
        for (&i, raw) in &raws {
            let Param::Tensor(g) = k.params[i] else { continue };
            let gd = &k.globals[g];
            if gd.shape.len() != raw.shape.len() {
                return Err(Failure::Msg(format!("`{}` has rank {}, the file holds an array of shape {:?}", gd.name, gd.shape.len(), raw.shape)));
            }
            for (e, &n) in gd.shape.iter().zip(&raw.shape) {
                if let Some(v) = e.as_param()
                    && let Some(pi) = k.param_index(v)
                {
                    match &bound[pi] {
                        None => bound[pi] = Some(ArgValue::Int(n as i64)),
                        Some(ArgValue::Int(x)) if *x == n as i64 => {}
                        Some(other) => {
                            return Err(Failure::Msg(format!(
                                "`{}` = {other:?} but `{}` has extent {n} along that axis",
                                names[pi], gd.name
                            )));
                        }
                    }
                }
            }
        }
    }
    let missing: Vec<&str> = k.params.iter().enumerate().filter(|(i, p)| matches!(p, Param::Scalar(_)) && bound[*i].is_none()).map(|(i, _)| names[i].as_str()).collect();
    if let Some(m) = missing.first() {
        return Err(Failure::Usage(format!("no value for scalar `{m}`: pass --arg {m}=VALUE (missing: {})", missing.join(", "))));
    }
    let ints: Vec<Option<i64>> = bound.iter().map(|b| if let Some(ArgValue::Int(x)) = b { Some(*x) } else { None }).collect();
    let scalar = |v: tilc_vm::Value| -> Option<i64> { ints[k.param_index(v)?] };
    let shape_of = |g: tilc_vm::Global| -> Result<Vec<usize>, Failure> {
        k.globals[g]
            .shape
            .iter()
            .map(|e: &SymExpr| e.eval(&scalar).and_then(|x| usize::try_from(x).ok()))
            .collect::<Option<Vec<usize>>>()
            .ok_or_else(|| Failure::Msg(format!("the shape of `{}` is not defined for these scalar arguments", k.globals[g].name)))
    };

    // Tensors: from files, random, or zeros for outputs.
    let mut random_filled = Vec::new();
    for (i, p) in k.params.iter().enumerate() {
        let Param::Tensor(g) = *p else { continue };
        let gd = &k.globals[g];
        let shape = shape_of(g)?;
        let t = if let Some(raw) = raws.get(&i) {
            tensor_io::to_tensor(raw, gd.dtype, args.packed, Some(&shape)).map_err(|e| Failure::Msg(format!("argument `{}`: {e}", gd.name)))?
        } else if gd.out {
            HostTensor::zeros(gd.dtype, shape)
        } else if let Some(seed) = args.random {
            random_filled.push(i);
            tilc_vm::random_tensor(gd.dtype, shape, seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(i as u64))
        } else {
            return Err(Failure::Usage(format!("no value for tensor `{}`: pass --arg {}=@FILE.npy or --random SEED", gd.name, gd.name)));
        };
        bound[i] = Some(ArgValue::Tensor(t));
    }
    let mut values: Vec<ArgValue> = bound.into_iter().map(|b| b.expect("every parameter is bound")).collect();

    if let Some(dir) = &args.save_inputs {
        std::fs::create_dir_all(dir).map_err(|e| Failure::Msg(format!("cannot create `{}`: {e}", dir.display())))?;
        let mut scalars = String::new();
        let mut flags = Vec::new();
        for (i, p) in k.params.iter().enumerate() {
            match (p, &values[i]) {
                (Param::Tensor(g), ArgValue::Tensor(t)) if !k.globals[*g].out => {
                    let path = dir.join(format!("{}.npy", names[i]));
                    std::fs::write(&path, tensor_io::write_npy(t, args.packed)).map_err(|e| Failure::Msg(format!("cannot write `{}`: {e}", path.display())))?;
                    flags.push(format!("--arg {}=@{}", names[i], path.display()));
                }
                (Param::Scalar(_), ArgValue::Int(x)) => {
                    scalars.push_str(&format!("{}={x}\n", names[i]));
                    flags.push(format!("--arg {}={x}", names[i]));
                }
                (Param::Scalar(_), ArgValue::Float(x)) => {
                    scalars.push_str(&format!("{}={x:?}\n", names[i]));
                    flags.push(format!("--arg {}={x:?}", names[i]));
                }
                _ => {}
            }
        }
        let path = dir.join("scalars.txt");
        std::fs::write(&path, scalars).map_err(|e| Failure::Msg(format!("cannot write `{}`: {e}", path.display())))?;
        eprintln!("inputs saved; reproduce with: {}", flags.join(" "));
    }

    let start = Instant::now();
    let summary = if args.target == "cpu" {
        let cpu = tilc_cpu::CpuKernel::compile(&k, &tilc_cpu::Options::default())
            .map_err(|e| Failure::Msg(format!("cannot compile `{}` for the CPU: {e}", k.name)))?;
        eprintln!("compiled {} for the CPU in {:.1} ms", k.name, start.elapsed().as_secs_f64() * 1e3);
        let start = Instant::now();
        let summary = cpu.launch(&mut values).map_err(|e| Failure::Diags(Some(file.clone()), vec![e.to_diagnostic()]))?;
        (summary, start.elapsed())
    } else if args.target == "simt" {
        let lowered = tilc_lower::lower(&k, &tilc_lower::Options::default()).map_err(|e| Failure::Diags(Some(file.clone()), vec![e.to_diagnostic()]))?;
        eprintln!(
            "lowered {} to SIMT in {:.1} ms ({} instructions per thread, {} bytes of shared memory)",
            k.name,
            start.elapsed().as_secs_f64() * 1e3,
            lowered.kernel.inst_count(),
            lowered.kernel.shared_bytes
        );
        let start = Instant::now();
        let summary = tilc_lower::run(&k, &lowered, &mut values).map_err(|e| Failure::Diags(Some(file.clone()), vec![e.to_diagnostic()]))?;
        eprintln!("emulated {} warp instructions ({} thread instructions)", summary.warp_insts, summary.thread_insts);
        (tilc_vm::RunSummary { grid: summary.grid }, start.elapsed())
    } else if let Some(target) = cuda {
        let summary = run_cuda(args, &file, &k, target, &mut values)?;
        (summary, start.elapsed())
    } else {
        let summary = tilc_vm::run(&k, &mut values).map_err(|e| Failure::Diags(Some(file.clone()), vec![e.to_diagnostic()]))?;
        (summary, start.elapsed())
    };
    let (summary, elapsed) = summary;
    let consts: Vec<String> = k.consts.iter().map(|(n, v)| format!("{n}={v}")).collect();
    let [gx, gy, gz] = summary.grid;
    println!(
        "{}{} on {}: grid [{gx}, {gy}, {gz}] ({} blocks) x {} warps, {:.3} ms",
        k.name,
        if consts.is_empty() { String::new() } else { format!("<{}>", consts.join(", ")) },
        cuda.map_or_else(|| args.target.clone(), |t| format!("cuda ({t})")),
        u64::from(gx) * u64::from(gy) * u64::from(gz),
        k.warps,
        elapsed.as_secs_f64() * 1e3
    );

    // Outputs.
    let tensor_named = |n: &str| -> Result<(usize, &HostTensor), Failure> {
        let i = find(n)?;
        match &values[i] {
            ArgValue::Tensor(t) => Ok((i, t)),
            _ => Err(Failure::Usage(format!("`{n}` is a scalar, not a tensor"))),
        }
    };
    for o in &args.outs {
        if !o.contains('=') && is_safetensors(o) {
            let all: Vec<(String, HostTensor)> = k
                .params
                .iter()
                .enumerate()
                .filter(|(_, p)| matches!(p, Param::Tensor(g) if k.globals[*g].out))
                .filter_map(|(i, _)| match &values[i] {
                    ArgValue::Tensor(t) => Some((names[i].clone(), t.clone())),
                    _ => None,
                })
                .collect();
            std::fs::write(o, tensor_io::write_safetensors(&all)).map_err(|e| Failure::Msg(format!("cannot write `{o}`: {e}")))?;
            continue;
        }
        let (name, path) = split_kv(o, "--out")?;
        let (_, t) = tensor_named(&name)?;
        let bytes = if is_safetensors(&path) { tensor_io::write_safetensors(&[(name.clone(), t.clone())]) } else { tensor_io::write_npy(t, args.packed) };
        std::fs::write(&path, bytes).map_err(|e| Failure::Msg(format!("cannot write `{path}`: {e}")))?;
    }
    let mut failed = false;
    for e in &args.expects {
        let (name, path) = split_kv(e, "--expect")?;
        let (_, t) = tensor_named(&name)?;
        let raw = tensor_io::read_npy(&read_file(&path)?).map_err(|e| Failure::Msg(format!("`{path}`: {e}")))?;
        if raw.shape != t.shape {
            return Err(Failure::Msg(format!("`{path}` has shape {:?}, `{name}` has {:?}", raw.shape, t.shape)));
        }
        let want: Vec<f64> = raw.codes.iter().map(|&c| match raw.kind {
            tensor_io::FileType::Native(d) => d.decode(c),
            tensor_io::FileType::I64 => c as i64 as f64,
            tensor_io::FileType::U64 => c as f64,
        }).collect();
        let got = t.to_f64();
        let (mut max_abs, mut max_rel, mut worst) = (0.0f64, 0.0f64, 0usize);
        let mut bad = 0usize;
        for (j, (&g, &w)) in got.iter().zip(&want).enumerate() {
            let err = if g == w || (g.is_nan() && w.is_nan()) { 0.0 } else { (g - w).abs() };
            let rel = err / w.abs().max(1e-30);
            if err > max_abs || err.is_nan() {
                max_abs = err;
                worst = j;
            }
            max_rel = max_rel.max(rel);
            if !(err <= args.tol * w.abs().max(1.0)) {
                bad += 1;
            }
        }
        println!("{name}: max abs error {max_abs:.3e} (element {worst}), max rel error {max_rel:.3e}, {bad} of {} beyond tol {}", got.len(), args.tol);
        failed |= bad > 0;
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
