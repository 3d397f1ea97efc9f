//! Autotuning: try every combination of a kernel's candidate compile-time values
//! (`BM in [32, 64, 128] = 64`), time each on the caller's arguments, keep the fastest.
//!
//! The candidates of parameters the [`Compiler`] already defines are not tried (a define pins
//! its parameter). All configurations compile in parallel (rayon); timing is sequential, each
//! configuration launched once to warm up and then repeated until about [`TuneOptions::min_time`]
//! has passed (at least once, at most [`TuneOptions::max_reps`] times), keeping the fastest
//! launch, which is the least disturbed by other work on the machine. A configuration that does
//! not compile (a `static_assert`), does not accept the arguments or fails at run time is
//! reported as such and skipped.
//!
//! The winner is stored in the disk cache per *shape bucket* — the integer scalar arguments,
//! each rounded up to a power of two (or, for kernels without integer scalars, the tensors'
//! extents rounded the same way) — so a later tuning call for similar shapes compiles the
//! cached choice and times nothing. Outputs hold the result of the last launch (every
//! configuration computes the same function; float results may differ in rounding when the
//! tiling changes the order of sums).

use crate::cache::{KeyParts, defines_text, parse_defines_text};
use crate::compiler::{Arg, Compiler, Kernel};
use crate::{Error, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tilc_base::SourceFile;
use tilc_syntax::ast;

/// How much time tuning spends per configuration.
#[derive(Clone, Debug)]
pub struct TuneOptions {
    /// Repeat each configuration's launch until this much time has passed.
    pub min_time: Duration,
    /// The most timed launches per configuration.
    pub max_reps: usize,
    /// Ignore a cached choice and time every configuration again.
    pub force: bool,
    /// The most configurations tried; more is an error (narrow the candidates with defines).
    pub max_configs: usize,
}

impl Default for TuneOptions {
    fn default() -> TuneOptions {
        TuneOptions { min_time: Duration::from_millis(50), max_reps: 20, force: false, max_configs: 256 }
    }
}

/// One configuration tried.
#[derive(Clone, Debug)]
pub struct Trial {
    /// The tuned parameters' values.
    pub values: Vec<(String, String)>,
    /// The fastest launch, or why the configuration was skipped.
    pub time: Result<Duration, String>,
}

/// The result of [`Compiler::autotune`].
#[derive(Clone, Debug)]
pub struct Tuned {
    /// The fastest configuration, compiled.
    pub kernel: Kernel,
    /// Its values of the tuned parameters.
    pub best: Vec<(String, String)>,
    /// Its fastest launch (`None` when the choice came from the cache and was not timed).
    pub time: Option<Duration>,
    /// The shape bucket the choice is kept for, e.g. `m=16 n=4096 k=4096`.
    pub bucket: String,
    /// Every configuration tried (empty when the choice came from the cache).
    pub trials: Vec<Trial>,
    /// True when the choice came from the disk cache.
    pub from_cache: bool,
}

/// The candidate lists of the kernel's parameters that `pinned` does not fix, as source text.
fn candidates(file: &SourceFile, kernel: &str, pinned: &[(String, String)]) -> Result<Vec<(String, Vec<String>)>> {
    let (ast, diags) = tilc_syntax::parse(file);
    if diags.iter().any(|d| d.is_error()) {
        return Err(Error::Compile { file: Arc::new(file.clone()), diagnostics: diags });
    }
    let Some(k) = ast.kernels.iter().find(|k| k.name.name == kernel) else {
        let names: Vec<&str> = ast.kernels.iter().map(|k| k.name.name.as_str()).collect();
        return Err(Error::Tune(format!("`{}` has no kernel `{kernel}` (kernels: {})", file.name, names.join(", "))));
    };
    Ok(k.ct_params
        .iter()
        .filter(|p| !pinned.iter().any(|(n, _)| *n == p.name.name))
        .filter_map(|p| {
            let c = p.candidates.as_ref()?;
            let values = c
                .values
                .iter()
                .map(|v| match v {
                    ast::CtValue::Type(t) => t.name.clone(),
                    ast::CtValue::Expr(e) => file.slice(e.span).trim().to_string(),
                })
                .collect();
            Some((p.name.name.clone(), values))
        })
        .collect())
}

/// Every combination of the candidate lists, the first parameter varying slowest.
fn combinations(lists: &[(String, Vec<String>)]) -> Vec<Vec<(String, String)>> {
    let mut out = vec![Vec::new()];
    for (name, values) in lists {
        out = out.into_iter().flat_map(|prefix: Vec<(String, String)>| values.iter().map(move |v| {
            let mut c = prefix.clone();
            c.push((name.clone(), v.clone()));
            c
        })).collect();
    }
    out
}

/// The shape bucket of a launch (see the module docs).
pub(crate) fn bucket(vm: &tilc_vm::Kernel, args: &[Arg<'_>]) -> String {
    let round = |x: i64| -> i64 { if x <= 0 { x } else { (x as u64).next_power_of_two() as i64 } };
    let mut parts = Vec::new();
    for (p, a) in vm.params.iter().zip(args) {
        if let (tilc_vm::Param::Scalar(_), Arg::Int(i)) = (p, a) {
            parts.push(format!("{}={}", vm.param_name(*p), round(*i)));
        }
    }
    if parts.is_empty() {
        for (p, a) in vm.params.iter().zip(args) {
            let shape = match a {
                Arg::Tensor(t) => t.shape(),
                Arg::TensorMut(t) => t.shape(),
                _ => continue,
            };
            let dims: Vec<String> = shape.iter().map(|&d| round(d as i64).to_string()).collect();
            parts.push(format!("{}=[{}]", vm.param_name(*p), dims.join(",")));
        }
    }
    parts.join(" ")
}

/// Times `kernel` on `args`: one warm-up launch, then the fastest of the repeats.
fn time_kernel(kernel: &Kernel, args: &mut [Arg<'_>], options: &TuneOptions) -> Result<Duration> {
    kernel.launch(args)?;
    let mut best = Duration::MAX;
    let start = Instant::now();
    for _ in 0..options.max_reps.max(1) {
        let t = Instant::now();
        kernel.launch(args)?;
        best = best.min(t.elapsed());
        if start.elapsed() >= options.min_time {
            break;
        }
    }
    Ok(best)
}

impl Compiler {
    /// Tunes kernel `kernel` of the `.tl` file at `path` on `args` (see [`crate::tune`]).
    pub fn autotune(&self, path: impl AsRef<Path>, kernel: &str, args: &mut [Arg<'_>]) -> Result<Tuned> {
        self.autotune_with(path, kernel, args, &TuneOptions::default())
    }

    /// [`Compiler::autotune`] with explicit options.
    pub fn autotune_with(&self, path: impl AsRef<Path>, kernel: &str, args: &mut [Arg<'_>], options: &TuneOptions) -> Result<Tuned> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        self.autotune_source(&path.display().to_string(), &text, kernel, args, options)
    }

    /// Tunes kernel `kernel` of `source` (`name` is the file name diagnostics show).
    pub fn autotune_source(&self, name: &str, source: &str, kernel: &str, args: &mut [Arg<'_>], options: &TuneOptions) -> Result<Tuned> {
        let file = Arc::new(SourceFile::new(name, source));
        let lists = candidates(&file, kernel, self.defines())?;
        let configs = combinations(&lists);
        if configs.len() > options.max_configs {
            return Err(Error::Tune(format!(
                "`{kernel}` has {} candidate configurations, more than the limit of {}: pin some parameters with defines",
                configs.len(),
                options.max_configs
            )));
        }
        let with = |values: &[(String, String)]| values.iter().fold(self.clone(), |c, (n, v)| c.define(n, v));

        // The bucket needs the signature: compile the default configuration's front end once.
        let probe = with(&configs[0]).compile_shared(&file, kernel);
        let bucket = match &probe {
            Ok(k) => bucket(k.vm(), args),
            Err(_) => String::new(),
        };
        let key_defines = self.key_defines();
        let parts = KeyParts { source: &file.text, kernel, defines: &key_defines, target: self.target() };
        let key = parts.key(Some(&bucket));
        let cache = self.cache();
        if !options.force
            && let Some(entry) = cache.as_ref().and_then(|c| c.tuning(&key))
            && let Some(best) = entry.field("best").and_then(parse_defines_text)
            && let Ok(kernel) = with(&best).compile_shared(&file, kernel)
        {
            return Ok(Tuned { kernel, best, time: None, bucket, trials: Vec::new(), from_cache: true });
        }

        let bar = if self.progress { ProgressBar::with_draw_target(Some(2 * configs.len() as u64), ProgressDrawTarget::stderr()) } else { ProgressBar::hidden() };
        bar.set_style(ProgressStyle::with_template("{spinner} tuning {prefix} [{bar:30}] {pos}/{len} {msg}").expect("a valid template").progress_chars("=> "));
        bar.set_prefix(kernel.to_string());
        bar.set_message("compiling");
        let compiled: Vec<Result<Kernel>> = configs
            .par_iter()
            .map(|values| {
                let r = with(values).compile_shared(&file, kernel);
                bar.inc(1);
                r
            })
            .collect();
        let mut trials = Vec::with_capacity(configs.len());
        let mut best: Option<(Duration, usize)> = None;
        let mut argument_error = None;
        for (i, (values, k)) in configs.iter().zip(&compiled).enumerate() {
            bar.set_message(defines_text(values));
            let time = match k {
                Ok(k) => match time_kernel(k, args, options) {
                    Ok(t) => Ok(t),
                    Err(e) => {
                        if matches!(e, Error::Argument { .. }) {
                            argument_error.get_or_insert_with(|| e.to_string());
                        }
                        Err(e.to_string())
                    }
                },
                Err(e) => Err(e.to_string()),
            };
            if let Ok(t) = time
                && best.is_none_or(|(b, _)| t < b)
            {
                best = Some((t, i));
            }
            trials.push(Trial { values: values.clone(), time });
            bar.inc(1);
        }
        bar.finish_and_clear();
        let Some((time, i)) = best else {
            let first = trials.iter().find_map(|t| t.time.clone().err()).unwrap_or_default();
            return Err(match (argument_error, probe) {
                (_, Err(e)) if configs.len() == 1 => e,
                (Some(m), _) => Error::Tune(format!("no configuration of `{kernel}` accepts these arguments: {m}")),
                _ => Error::Tune(format!("no configuration of `{kernel}` ran; the first failure: {first}")),
            });
        };
        let kernel_best = compiled[i].as_ref().expect("the fastest configuration compiled").clone();
        let best_values = configs[i].clone();
        if let Some(cache) = &cache {
            let mut body = String::new();
            for t in &trials {
                let shown = match &t.time {
                    Ok(d) => format!("{:.1} us", d.as_secs_f64() * 1e6),
                    Err(m) => format!("failed: {}", m.lines().next().unwrap_or("")),
                };
                body.push_str(&format!("{}  {shown}\n", defines_text(&t.values)));
            }
            let fields = [
                ("kernel", kernel.to_string()),
                ("source", file.name.clone()),
                ("target", self.target().name().to_string()),
                ("defines", defines_text(&key_defines)),
                ("bucket", bucket.clone()),
                ("best", defines_text(&best_values)),
                ("time_us", format!("{:.1}", time.as_secs_f64() * 1e6)),
                ("compiler", crate::cache::compiler_id().to_string()),
            ];
            // Tuning still succeeded when its result cannot be kept.
            let _ = cache.store_tuning(&key, &fields, &body);
        }
        Ok(Tuned { kernel: kernel_best, best: best_values, time: Some(time), bucket, trials, from_cache: false })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combinations_enumerate_the_product_in_order() {
        let lists = vec![("A".to_string(), vec!["1".to_string(), "2".to_string()]), ("B".to_string(), vec!["x".to_string(), "y".to_string(), "z".to_string()])];
        let c = combinations(&lists);
        assert_eq!(c.len(), 6);
        assert_eq!(defines_text(&c[0]), "A=1,B=x");
        assert_eq!(defines_text(&c[5]), "A=2,B=z");
        assert_eq!(combinations(&[]), vec![Vec::<(String, String)>::new()]);
    }
}
