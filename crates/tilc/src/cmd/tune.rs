//! `tilc tune`: autotunes a kernel's candidate compile-time values on real or random arguments
//! through `tilc::Compiler::autotune`, prints every configuration's time and keeps the best in
//! the cache. Arguments are bound like `tilc run`'s.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tilc::{Arg, Compiler, Target, Tensor, TuneOptions};
use tilc_vm::{Param, SymExpr};

/// Time every combination of a kernel's candidate values (`BM in [32, 64, 128]`) and keep the
/// fastest per shape bucket in the cache.
///
/// Arguments are bound as in `tilc run`: `--arg NAME=VALUE` for scalars, `--arg NAME=@FILE.npy`
/// for tensors (scalars that a tensor's shape determines are read off it), `--random SEED` for
/// every input tensor not given; outputs start as zeros. `-D` pins a parameter (its candidates
/// are then not tried). A later `tune` of the same kernel, values and shape bucket reuses the
/// cached choice unless `--force` is given.
#[derive(clap::Args)]
#[command(after_help = "Example:\n  tilc tune examples/gemm_w3a8.tl --random 1 --arg m=16 --arg n=1024 --arg k=1024")]
pub struct TuneArgs {
    /// The `.tl` file.
    pub file: PathBuf,
    /// The kernel to tune (needed when the file defines several).
    #[arg(long)]
    pub kernel: Option<String>,
    /// Pin a compile-time parameter, e.g. `-D G=128`.
    #[arg(short = 'D', value_name = "NAME=VALUE")]
    pub defines: Vec<String>,
    /// Bind a parameter: `NAME=VALUE` for scalars, `NAME=@FILE.npy` for tensors.
    #[arg(long = "arg", value_name = "NAME=VALUE|NAME=@FILE")]
    pub args: Vec<String>,
    /// Fill every input tensor not given with seeded random values.
    #[arg(long, value_name = "SEED")]
    pub random: Option<u64>,
    /// Where to run: `cpu` or `interp`.
    #[arg(long, default_value = "cpu")]
    pub target: String,
    /// Time every configuration even when the cache has a choice for this bucket.
    #[arg(long)]
    pub force: bool,
    /// Repeat each configuration for at least this many milliseconds.
    #[arg(long, default_value_t = 50)]
    pub min_time_ms: u64,
}

/// Runs `tilc tune`.
pub fn run(args: TuneArgs) -> ExitCode {
    match run_inner(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(2)
        }
        Err(Failure::Tilc(e)) => {
            let style = if std::io::IsTerminal::is_terminal(&std::io::stderr()) { tilc_base::RenderStyle::Color } else { tilc_base::RenderStyle::Plain };
            eprint!("{}", e.render(style));
            ExitCode::from(1)
        }
    }
}

enum Failure {
    Usage(String),
    Tilc(tilc::Error),
}

impl From<tilc::Error> for Failure {
    fn from(e: tilc::Error) -> Failure {
        Failure::Tilc(e)
    }
}

/// A bound argument before borrowing: a scalar or an owned tensor.
enum Bound {
    Int(i64),
    Float(f64),
    Tensor(Tensor),
}

fn run_inner(args: &TuneArgs) -> Result<(), Failure> {
    let target: Target = args.target.parse().map_err(Failure::Usage)?;
    let mut compiler = Compiler::new(target);
    for d in &args.defines {
        let (n, v) = d.split_once('=').ok_or_else(|| Failure::Usage(format!("-D `{d}` is not NAME=VALUE")))?;
        compiler = compiler.define(n.trim(), v.trim());
    }
    let text = std::fs::read_to_string(&args.file).map_err(|e| Failure::Usage(format!("cannot read `{}`: {e}", args.file.display())))?;
    let name = args.file.display().to_string();
    let kernel_name = match &args.kernel {
        Some(k) => k.clone(),
        None => {
            let (ast, _) = tilc_syntax::parse(&tilc_base::SourceFile::new(name.clone(), text.clone()));
            match ast.kernels.as_slice() {
                [k] => k.name.name.clone(),
                ks => {
                    let names: Vec<&str> = ks.iter().map(|k| k.name.name.as_str()).collect();
                    return Err(Failure::Usage(format!("say which kernel with --kernel (kernels: {})", names.join(", "))));
                }
            }
        }
    };
    // The default configuration gives the signature the arguments are bound to.
    let probe = compiler.clone().no_cache().compile_source(&name, &text, &kernel_name)?;
    let k = probe.vm();
    let names: Vec<String> = k.params.iter().map(|p| k.param_name(*p).to_string()).collect();
    let mut bound: Vec<Option<Bound>> = (0..k.params.len()).map(|_| None).collect();
    for a in &args.args {
        let (n, v) = a.split_once('=').ok_or_else(|| Failure::Usage(format!("--arg `{a}` is not NAME=VALUE")))?;
        let (n, v) = (n.trim(), v.trim());
        let i = names.iter().position(|x| x == n).ok_or_else(|| Failure::Usage(format!("`{kernel_name}` has no parameter `{n}` (parameters: {})", names.join(", "))))?;
        bound[i] = Some(match k.params[i] {
            Param::Scalar(val) => {
                let d = k.ty(val).dtype();
                let parsed = if d.is_float() {
                    v.parse::<f64>().ok().map(Bound::Float)
                } else {
                    match v {
                        "true" => Some(Bound::Int(1)),
                        "false" => Some(Bound::Int(0)),
                        _ => v.parse::<i64>().ok().map(Bound::Int),
                    }
                };
                parsed.ok_or_else(|| Failure::Usage(format!("--arg {n}={v}: expected a `{d}` value")))?
            }
            Param::Tensor(g) => {
                let path = v.strip_prefix('@').ok_or_else(|| Failure::Usage(format!("--arg {n}={v}: a tensor is given as {n}=@FILE.npy")))?;
                Bound::Tensor(Tensor::load_npy(path, k.globals[g].dtype)?)
            }
        });
    }
    // Scalars read off the tensors' shapes.
    for (i, p) in k.params.iter().enumerate() {
        let (Param::Tensor(g), Some(Bound::Tensor(t))) = (p, &bound[i]) else { continue };
        let shape = t.shape().to_vec();
        for (e, &extent) in k.globals[*g].shape.iter().zip(&shape) {
            if let Some(v) = e.as_param()
                && let Some(pi) = k.param_index(v)
                && bound[pi].is_none()
            {
                bound[pi] = Some(Bound::Int(extent as i64));
            }
        }
    }
    if let Some(i) = (0..k.params.len()).find(|&i| matches!(k.params[i], Param::Scalar(_)) && bound[i].is_none()) {
        return Err(Failure::Usage(format!("no value for scalar `{}`: pass --arg {}=VALUE", names[i], names[i])));
    }
    let ints: Vec<Option<i64>> = bound.iter().map(|b| if let Some(Bound::Int(x)) = b { Some(*x) } else { None }).collect();
    let scalar = |v: tilc_vm::Value| -> Option<i64> { ints[k.param_index(v)?] };
    for (i, p) in k.params.iter().enumerate() {
        let Param::Tensor(g) = *p else { continue };
        if bound[i].is_some() {
            continue;
        }
        let gd = &k.globals[g];
        let shape = gd
            .shape
            .iter()
            .map(|e: &SymExpr| e.eval(&scalar).and_then(|x| usize::try_from(x).ok()))
            .collect::<Option<Vec<usize>>>()
            .ok_or_else(|| Failure::Usage(format!("the shape of `{}` is not defined for these scalar arguments", gd.name)))?;
        let t = if gd.out {
            Tensor::zeros(gd.dtype, &shape)?
        } else if let Some(seed) = args.random {
            Tensor::random(gd.dtype, &shape, seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(i as u64))?
        } else {
            return Err(Failure::Usage(format!("no value for tensor `{}`: pass --arg {}=@FILE.npy or --random SEED", gd.name, gd.name)));
        };
        bound[i] = Some(Bound::Tensor(t));
    }
    let mut launch_args: Vec<Arg<'_>> = bound
        .iter_mut()
        .map(|b| match b.as_mut().expect("every parameter is bound") {
            Bound::Int(i) => Arg::Int(*i),
            Bound::Float(x) => Arg::Float(*x),
            Bound::Tensor(t) => Arg::TensorMut(t),
        })
        .collect();
    let options = TuneOptions { min_time: Duration::from_millis(args.min_time_ms), force: args.force, ..TuneOptions::default() };
    let tuned = compiler.autotune_source(&name, &text, &kernel_name, &mut launch_args, &options)?;
    let shown = |v: &[(String, String)]| v.iter().map(|(n, x)| format!("{n}={x}")).collect::<Vec<_>>().join(" ");
    if tuned.from_cache {
        println!("{kernel_name} on {target}, bucket [{}]: best {} (from the cache; --force to time again)", tuned.bucket, shown(&tuned.best));
        return Ok(());
    }
    let mut trials = tuned.trials.clone();
    trials.sort_by_key(|t| t.time.clone().unwrap_or(Duration::MAX));
    for t in &trials {
        match &t.time {
            Ok(d) => println!("  {:<40} {:>10.3} ms", shown(&t.values), d.as_secs_f64() * 1e3),
            Err(m) => println!("  {:<40} failed: {}", shown(&t.values), m.lines().next().unwrap_or("")),
        }
    }
    println!(
        "{kernel_name} on {target}, bucket [{}]: best {} at {:.3} ms ({} configurations)",
        tuned.bucket,
        shown(&tuned.best),
        tuned.time.unwrap_or_default().as_secs_f64() * 1e3,
        tuned.trials.len()
    );
    Ok(())
}
