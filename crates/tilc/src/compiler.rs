//! [`Compiler`], [`Kernel`] and [`Arg`]: compile a `.tl` kernel for a [`Target`] and launch it on
//! host [`Tensor`]s (or, for the GPU targets, on tensors already in device memory).
//!
//! A launch checks every argument against the kernel's signature before anything runs — count,
//! scalar or tensor, element type, shape (evaluated from the scalar arguments), integer range,
//! and that every `out` tensor is passed writable — and reports the first mismatch as
//! [`Error::Argument`], pointing at the parameter's declaration. Rust's borrows make the rest
//! safe: an output is a `&mut Tensor`, so no tensor can be read and written by one launch
//! through two arguments, and the CPU backend reads and writes the tensors' packed storage in
//! place, with no copies.
//!
//! The GPU targets compile through the SIMT lowering, PTX and ptxas and launch through the CUDA
//! driver ([`gpu`]); their code is kept in the disk cache, so that another process loads it
//! instead of compiling again.

pub mod gpu;

use crate::cache::{Cache, KeyParts, defines_text};
use crate::{Error, Result, Target, Tensor};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tilc_base::SourceFile;
use tilc_cpu::{BufferArg, CpuKernel};
use tilc_vm::{ArgValue, Define, Param, SymExpr, SymOp};

/// Where compiled kernels are remembered on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
enum CachePolicy {
    /// `$TILC_CACHE_DIR` or the user's cache folder.
    Default,
    /// This folder.
    At(Cache),
    /// Nothing is read or written.
    Off,
}

/// Compiles kernels for one target with a set of compile-time values.
///
/// Cheap to clone; clones share the in-process memo of compiled kernels, so compiling the same
/// source, kernel and values twice returns the first result.
#[derive(Clone, Debug)]
pub struct Compiler {
    target: Target,
    defines: Vec<(String, String)>,
    cache: CachePolicy,
    pub(crate) progress: bool,
    /// [`Compiler::async_tensor_cores`].
    async_tensor_cores: bool,
    memo: Arc<Mutex<HashMap<String, Kernel>>>,
}

impl Compiler {
    /// A compiler for `target` with every compile-time parameter at its default, using the
    /// disk cache of [`Cache::default_dir`].
    pub fn new(target: Target) -> Compiler {
        Compiler { target, defines: Vec::new(), cache: CachePolicy::Default, progress: true, async_tensor_cores: false, memo: Arc::default() }
    }

    /// Sets compile-time parameter `name` (`BM` to `64`, `TW` to `u4`, `ZP` to `true`),
    /// replacing an earlier value.
    pub fn define(mut self, name: &str, value: impl std::fmt::Display) -> Compiler {
        let value = value.to_string();
        match self.defines.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => self.defines.push((name.to_string(), value)),
        }
        self
    }

    /// Uses the cache in `dir` instead of the default folder.
    pub fn cache_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Compiler {
        self.cache = CachePolicy::At(Cache::at(dir));
        self
    }

    /// Reads and writes no cache (tuning then always times every candidate).
    pub fn no_cache(mut self) -> Compiler {
        self.cache = CachePolicy::Off;
        self
    }

    /// Shows (`true`, the default) or hides the autotuner's progress bar (it is drawn on
    /// stderr, and only when stderr is a terminal).
    pub fn progress(mut self, show: bool) -> Compiler {
        self.progress = show;
        self
    }

    /// Lets `dot` run on the target's asynchronous tensor cores where its tile fits: warpgroup
    /// `wgmma` on sm_90a (64-row tiles), `tcgen05.mma` with the accumulator in tensor memory on
    /// sm_100a (128-row tiles; e.g. `define("BM", 128)`); other tiles and targets keep
    /// `mma.sync`. Off by default: both are checked by the SIMT emulator and ptxas but have not
    /// yet run on a Hopper or Blackwell GPU. Part of the cache key.
    pub fn async_tensor_cores(mut self, on: bool) -> Compiler {
        self.async_tensor_cores = on;
        self
    }

    /// The defines plus the options that change the generated code, as the cache keys them.
    pub(crate) fn key_defines(&self) -> Vec<(String, String)> {
        let mut d = self.defines.clone();
        if self.async_tensor_cores {
            d.push(("tilc.async_tensor_cores".into(), "true".into()));
        }
        d
    }

    /// The target.
    pub fn target(&self) -> Target {
        self.target
    }

    /// The compile-time values given with [`Compiler::define`], in order.
    pub fn defines(&self) -> &[(String, String)] {
        &self.defines
    }

    /// The disk cache in use, if any.
    pub fn cache(&self) -> Option<Cache> {
        match &self.cache {
            CachePolicy::Default => Cache::open_default().ok(),
            CachePolicy::At(c) => Some(c.clone()),
            CachePolicy::Off => None,
        }
    }

    /// Compiles kernel `kernel` of the `.tl` file at `path`.
    pub fn compile_file(&self, path: impl AsRef<Path>, kernel: &str) -> Result<Kernel> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        self.compile_source(&path.display().to_string(), &text, kernel)
    }

    /// Compiles kernel `kernel` of `source`; `name` is the file name diagnostics show.
    pub fn compile_source(&self, name: &str, source: &str, kernel: &str) -> Result<Kernel> {
        self.compile_shared(&Arc::new(SourceFile::new(name, source)), kernel)
    }

    pub(crate) fn compile_shared(&self, file: &Arc<SourceFile>, kernel: &str) -> Result<Kernel> {
        let key_defines = self.key_defines();
        let parts = KeyParts { source: &file.text, kernel, defines: &key_defines, target: self.target };
        let key = parts.key(None);
        if let Some(k) = self.memo.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(k.clone());
        }
        let start = Instant::now();
        let defines: Vec<Define> = self
            .defines
            .iter()
            .map(|(n, v)| {
                if n.trim().is_empty() || v.trim().is_empty() || n.contains('=') {
                    Err(Error::BadDefine(format!("`{n}` = `{v}`: a define needs a parameter name and a value")))
                } else {
                    Ok(Define { name: n.trim().to_string(), value: v.trim().to_string() })
                }
            })
            .collect::<Result<_>>()?;
        let vm = tilc_vm::elaborate_source(file, Some(kernel), &defines).map_err(|diagnostics| Error::Compile { file: file.clone(), diagnostics })?;
        let cache = self.cache();
        let consts: Vec<(String, String)> = vm.consts.iter().map(|(n, v)| (n.clone(), v.to_string())).collect();
        let fields = [
            ("kernel", kernel.to_string()),
            ("source", file.name.clone()),
            ("target", self.target.name().to_string()),
            ("defines", defines_text(&key_defines)),
            ("values", defines_text(&consts)),
            ("compiler", crate::cache::compiler_id().to_string()),
        ];
        let backend = match self.target {
            Target::Interp => Backend::Interp,
            Target::Cpu => Backend::Cpu(CpuKernel::compile(&vm, &tilc_cpu::Options::default()).map_err(|e| match e {
                tilc_cpu::CpuError::Unsupported(reason) => Error::Unsupported { target: Target::Cpu, reason },
                tilc_cpu::CpuError::Codegen(message) => Error::Codegen { target: Target::Cpu, message },
            })?),
            Target::Sm90a | Target::Sm100a | Target::Sm120a => {
                match cache.as_ref().and_then(|c| gpu::load(c, &key, &vm, self.target)) {
                    Some(code) => Backend::Gpu(code),
                    None => {
                        let code = gpu::compile(&vm, file, self.target, self.async_tensor_cores)?;
                        if let Some(cache) = &cache {
                            // A cache that cannot be written costs the next process a compile;
                            // it must not fail this one.
                            let _ = gpu::store(cache, &key, &fields, &tilc_vm::print_kernel(&vm), &code);
                        }
                        Backend::Gpu(code)
                    }
                }
            }
        };
        let compiled = Kernel { inner: Arc::new(KernelInner { vm, file: file.clone(), target: self.target, backend, compile_time: start.elapsed() }) };
        if let Some(cache) = &cache
            && !self.target.is_gpu()
        {
            // The record is for inspection only; a cache that cannot be written must not fail
            // a compile.
            let _ = cache.record_kernel(&key, &fields, &tilc_vm::print_kernel(&compiled.inner.vm));
        }
        self.memo.lock().unwrap_or_else(|p| p.into_inner()).insert(key, compiled.clone());
        Ok(compiled)
    }
}

enum Backend {
    Interp,
    Cpu(CpuKernel),
    Gpu(gpu::GpuCode),
}

struct KernelInner {
    vm: tilc_vm::Kernel,
    file: Arc<SourceFile>,
    target: Target,
    backend: Backend,
    compile_time: Duration,
}

/// A compiled kernel, ready to launch. Cheap to clone (shared), `Send + Sync`.
#[derive(Clone)]
pub struct Kernel {
    inner: Arc<KernelInner>,
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kernel({} on {})", self.signature(), self.inner.target)
    }
}

/// One launch argument; build them with [`arg`] and [`arg_mut`].
#[derive(Debug)]
pub enum Arg<'a> {
    /// An integer (or `bool`) scalar.
    Int(i64),
    /// A float scalar (rounded to the parameter's type).
    Float(f64),
    /// A tensor the kernel reads.
    Tensor(&'a Tensor),
    /// A tensor the kernel may write: required for `out` parameters.
    TensorMut(&'a mut Tensor),
    /// A tensor in device memory (GPU targets only), read or written in place; make one with
    /// [`Kernel::upload`].
    Device(&'a tilc_cuda::DeviceTensor),
}

/// A launch argument: an integer, `bool` or float scalar, or `&Tensor` for an input.
pub fn arg<'a>(value: impl Into<Arg<'a>>) -> Arg<'a> {
    value.into()
}

/// A launch argument for an output tensor, which the kernel writes in place.
pub fn arg_mut(tensor: &mut Tensor) -> Arg<'_> {
    Arg::TensorMut(tensor)
}

macro_rules! int_arg {
    ($($t:ty),*) => {$(
        impl From<$t> for Arg<'_> {
            fn from(x: $t) -> Self {
                Arg::Int(i64::from(x))
            }
        }
    )*};
}
int_arg!(i8, i16, i32, i64, u8, u16, u32, bool);

impl From<usize> for Arg<'_> {
    /// Values above `i64::MAX` become `i64::MAX`, which no parameter type accepts, so the launch
    /// reports them.
    fn from(x: usize) -> Self {
        Arg::Int(i64::try_from(x).unwrap_or(i64::MAX))
    }
}

impl From<u64> for Arg<'_> {
    fn from(x: u64) -> Self {
        Arg::Int(i64::try_from(x).unwrap_or(i64::MAX))
    }
}

impl From<f32> for Arg<'_> {
    fn from(x: f32) -> Self {
        Arg::Float(f64::from(x))
    }
}

impl From<f64> for Arg<'_> {
    fn from(x: f64) -> Self {
        Arg::Float(x)
    }
}

impl<'a> From<&'a Tensor> for Arg<'a> {
    fn from(t: &'a Tensor) -> Self {
        Arg::Tensor(t)
    }
}

impl<'a> From<&'a mut Tensor> for Arg<'a> {
    fn from(t: &'a mut Tensor) -> Self {
        Arg::TensorMut(t)
    }
}

impl<'a> From<&'a tilc_cuda::DeviceTensor> for Arg<'a> {
    fn from(t: &'a tilc_cuda::DeviceTensor) -> Self {
        Arg::Device(t)
    }
}

/// What the signature check needs to know of an argument.
enum ArgView<'a> {
    Int(i64),
    Float,
    Tensor { dtype: tilc_dtype::DType, shape: &'a [usize], writable: bool },
}

impl Arg<'_> {
    fn view(&self) -> ArgView<'_> {
        match self {
            Arg::Int(i) => ArgView::Int(*i),
            Arg::Float(_) => ArgView::Float,
            Arg::Tensor(t) => ArgView::Tensor { dtype: t.dtype(), shape: t.shape(), writable: false },
            Arg::TensorMut(t) => ArgView::Tensor { dtype: t.dtype(), shape: t.shape(), writable: true },
            Arg::Device(t) => ArgView::Tensor { dtype: t.dtype(), shape: t.shape(), writable: true },
        }
    }
}

/// What a launch did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Launched {
    /// The grid that ran, padded with 1s.
    pub grid: [u32; 3],
    /// Wall time of the launch (argument checks included).
    pub elapsed: Duration,
}

impl Kernel {
    /// The kernel's name.
    pub fn name(&self) -> &str {
        &self.inner.vm.name
    }

    /// The target it was compiled for.
    pub fn target(&self) -> Target {
        self.inner.target
    }

    /// How long elaboration and code generation took.
    pub fn compile_time(&self) -> Duration {
        self.inner.compile_time
    }

    /// The compile-time values it was compiled with (every parameter, defaults included).
    pub fn values(&self) -> Vec<(String, String)> {
        self.inner.vm.consts.iter().map(|(n, v)| (n.clone(), v.to_string())).collect()
    }

    /// The runtime signature, e.g. `gemm_w3a8(m: i32, …, c: out global f16[m, n])`.
    pub fn signature(&self) -> String {
        let k = &self.inner.vm;
        let params: Vec<String> = k.params.iter().map(|p| param_text(k, *p)).collect();
        format!("{}({})", k.name, params.join(", "))
    }

    /// The elaborated VM program.
    pub fn vm(&self) -> &tilc_vm::Kernel {
        &self.inner.vm
    }

    /// The source it was compiled from.
    pub fn source(&self) -> &SourceFile {
        &self.inner.file
    }

    /// The GPU code (PTX, cubin, launch description) of a kernel compiled for a GPU target.
    pub fn gpu_code(&self) -> Option<&gpu::GpuCode> {
        match &self.inner.backend {
            Backend::Gpu(code) => Some(code),
            _ => None,
        }
    }

    /// The PTX of a kernel compiled for a GPU target.
    pub fn ptx(&self) -> Option<&str> {
        self.gpu_code().map(|c| c.ptx.as_str())
    }

    /// The device a GPU kernel launches on: CUDA device 0, opened once per process and shared
    /// by every kernel. [`Error::Unsupported`] without a CUDA driver ('no CUDA driver found'),
    /// without a device, or when the device's architecture is not the kernel's target.
    pub fn gpu_device(&self) -> Result<tilc_cuda::Device> {
        self.require_gpu()?;
        gpu::device_for(self.inner.target)
    }

    /// Copies a host tensor to [`Kernel::gpu_device`], padded as the kernel's loads need, for
    /// launches that keep their data on the device (pass it with [`arg`]).
    pub fn upload(&self, tensor: &Tensor) -> Result<tilc_cuda::DeviceTensor> {
        let device = self.gpu_device()?;
        gpu::upload(&device, tensor).map_err(|e| gpu::device_error(self.inner.target, Some(&self.inner.file), e))
    }

    /// Copies a device tensor back to the host (after the work queued before it has finished).
    pub fn download(&self, tensor: &tilc_cuda::DeviceTensor) -> Result<Tensor> {
        self.require_gpu()?;
        let bytes = tensor.to_packed().map_err(|e| gpu::device_error(self.inner.target, Some(&self.inner.file), e))?;
        Tensor::from_packed(tensor.dtype(), tensor.shape(), &bytes)
    }

    fn require_gpu(&self) -> Result<()> {
        if self.inner.target.is_gpu() {
            Ok(())
        } else {
            Err(Error::Unsupported { target: self.inner.target, reason: "device memory is for kernels compiled for a GPU target".into() })
        }
    }

    /// Runs the kernel over its grid. `args` follow the signature; outputs are written in place.
    ///
    /// Every argument is checked first ([`Error::Argument`] when one does not fit, and then
    /// nothing has run); a failed run-time check of the kernel is [`Error::Run`].
    ///
    /// On a GPU target, host tensors are copied to the device and outputs back, and the call
    /// returns when the kernel has finished; when every tensor argument is already on the device
    /// ([`Kernel::upload`]), the launch is only queued (errors then surface at the next
    /// [`Kernel::download`]). Without a CUDA driver the launch is [`Error::Unsupported`] ('no
    /// CUDA driver found'); a kernel that faults is [`Error::Run`].
    pub fn launch(&self, args: &mut [Arg<'_>]) -> Result<Launched> {
        let start = Instant::now();
        let grid = self.check(args)?;
        let inner = &*self.inner;
        if !inner.target.is_gpu()
            && let Some(i) = args.iter().position(|a| matches!(a, Arg::Device(_)))
        {
            let name = inner.vm.param_name(inner.vm.params[i]).to_string();
            return Err(Error::Argument {
                kernel: inner.vm.name.clone(),
                message: format!("`{name}` is a device tensor; a kernel compiled for `{}` takes host tensors", inner.target),
                at: None,
            });
        }
        let run_error = |error: tilc_vm::RunError| match error.span {
            Some(_) => Error::Run { file: inner.file.clone(), error },
            None => Error::Argument { kernel: inner.vm.name.clone(), message: error.message, at: None },
        };
        match &inner.backend {
            Backend::Cpu(cpu) => {
                let mut buffers: Vec<BufferArg<'_>> = args
                    .iter_mut()
                    .map(|a| match a {
                        Arg::Int(i) => BufferArg::Int(*i),
                        Arg::Float(x) => BufferArg::Float(*x),
                        Arg::Tensor(t) => BufferArg::Input { dtype: t.dtype(), shape: t.shape(), bytes: t.buffer() },
                        Arg::TensorMut(t) => {
                            let dtype = t.dtype();
                            let (shape, bytes) = t.shape_and_buffer_mut();
                            BufferArg::Output { dtype, shape, bytes }
                        }
                        Arg::Device(_) => unreachable!("refused above"),
                    })
                    .collect();
                cpu.launch_buffers(&mut buffers).map_err(run_error)?;
            }
            Backend::Interp => {
                let mut values: Vec<ArgValue> = args
                    .iter()
                    .map(|a| match a {
                        Arg::Int(i) => ArgValue::Int(*i),
                        Arg::Float(x) => ArgValue::Float(*x),
                        Arg::Tensor(t) => ArgValue::Tensor(t.to_host()),
                        Arg::TensorMut(t) => ArgValue::Tensor(t.to_host()),
                        Arg::Device(_) => unreachable!("refused above"),
                    })
                    .collect();
                tilc_vm::run(&inner.vm, &mut values).map_err(run_error)?;
                for (a, v) in args.iter_mut().zip(&values) {
                    if let (Arg::TensorMut(t), ArgValue::Tensor(h)) = (a, v) {
                        t.set_from_host(h);
                    }
                }
            }
            Backend::Gpu(code) => gpu::launch(code, &inner.vm.name, &inner.file, grid, args)?,
        }
        Ok(Launched { grid, elapsed: start.elapsed() })
    }

    /// Checks `args` against the signature and returns the grid.
    fn check(&self, args: &[Arg<'_>]) -> Result<[u32; 3]> {
        let k = &self.inner.vm;
        let file = &self.inner.file;
        let fail = |message: String, at: Option<tilc_base::Span>| Error::Argument { kernel: k.name.clone(), message, at: at.map(|s| (file.clone(), s)) };
        if args.len() != k.params.len() {
            let names: Vec<&str> = k.params.iter().map(|p| k.param_name(*p)).collect();
            return Err(fail(format!("it takes {} arguments ({}), {} given", k.params.len(), names.join(", "), args.len()), None));
        }
        let views: Vec<ArgView<'_>> = args.iter().map(Arg::view).collect();
        let scalar = |v: tilc_vm::Value| -> Option<i64> {
            match views.get(k.param_index(v)?)? {
                ArgView::Int(i) => Some(*i),
                _ => None,
            }
        };
        // Scalars first: shapes are evaluated from them.
        for (p, a) in k.params.iter().zip(&views) {
            let Param::Scalar(v) = p else { continue };
            let name = k.param_name(*p);
            let d = k.ty(*v).dtype();
            match a {
                ArgView::Tensor { .. } => return Err(fail(format!("`{name}` is a scalar `{d}`, a tensor was given"), None)),
                ArgView::Float if !d.is_float() => return Err(fail(format!("`{name}` is an integer `{d}`, a float was given"), None)),
                ArgView::Int(i) if d.is_int() && d.bits() < 64 && !(d.min_finite()..=d.max_finite()).contains(&(*i as f64)) => {
                    return Err(fail(format!("`{name}` = {i} does not fit `{d}` ({}..={})", d.min_finite(), d.max_finite()), None));
                }
                _ => {}
            }
        }
        for (p, a) in k.params.iter().zip(&views) {
            let Param::Tensor(g) = p else { continue };
            let gd = &k.globals[*g];
            let name = &gd.name;
            let (dtype, shape) = match a {
                ArgView::Int(_) | ArgView::Float => return Err(fail(format!("`{name}` is a tensor `{}`, a scalar was given", param_text(k, *p)), Some(gd.span))),
                ArgView::Tensor { writable: false, .. } if gd.out => {
                    return Err(fail(format!("`{name}` is an output: pass it writable, with `arg_mut(&mut {name})`"), Some(gd.span)));
                }
                ArgView::Tensor { dtype, shape, .. } => (*dtype, *shape),
            };
            if dtype != gd.dtype {
                return Err(fail(format!("`{name}` holds `{dtype}` elements, the kernel takes `{}`", gd.dtype), Some(gd.span)));
            }
            let want: Option<Vec<i64>> = gd.shape.iter().map(|e| e.eval(&scalar)).collect();
            let symbolic: Vec<String> = gd.shape.iter().map(|e| sym_text(k, e)).collect();
            let Some(want) = want else {
                return Err(fail(format!("the shape [{}] of `{name}` is undefined for these scalars (division by zero?)", symbolic.join(", ")), Some(gd.span)));
            };
            let have: Vec<i64> = shape.iter().map(|&d| i64::try_from(d).unwrap_or(i64::MAX)).collect();
            if want != have {
                return Err(fail(format!("`{name}` has shape {have:?}, the kernel expects [{}] = {want:?}", symbolic.join(", ")), Some(gd.span)));
            }
        }
        let mut grid = [1u32; 3];
        for (i, e) in k.grid.iter().enumerate() {
            let shown = sym_text(k, e);
            let n = e.eval(&scalar).ok_or_else(|| fail(format!("the grid extent `{shown}` is undefined for these scalars"), None))?;
            grid[i] = u32::try_from(n).map_err(|_| fail(format!("the grid extent `{shown}` is {n}, outside 0..2^32"), None))?;
        }
        Ok(grid)
    }
}

/// `name: type` of a parameter as the source writes it.
fn param_text(k: &tilc_vm::Kernel, p: Param) -> String {
    match p {
        Param::Scalar(v) => format!("{}: {}", k.param_name(p), k.ty(v)),
        Param::Tensor(g) => {
            let gd = &k.globals[g];
            let shape: Vec<String> = gd.shape.iter().map(|e| sym_text(k, e)).collect();
            format!("{}: {}global {}[{}]", gd.name, if gd.out { "out " } else { "" }, gd.dtype, shape.join(", "))
        }
    }
}

/// A shape or grid expression with parameter names, as the source writes it (`k / G` shows as
/// `k / 128` once `G` is bound).
fn sym_text(k: &tilc_vm::Kernel, e: &SymExpr) -> String {
    fn go(k: &tilc_vm::Kernel, e: &SymExpr, top: bool) -> String {
        match e {
            SymExpr::Const(c) => c.to_string(),
            SymExpr::Param(v) => k.values[*v].name.clone().unwrap_or_else(|| v.to_string()),
            SymExpr::Bin(op, a, b) => {
                let call = |name: &str| format!("{name}({}, {})", go(k, a, true), go(k, b, true));
                let infix = |sym: &str| {
                    let t = format!("{} {sym} {}", go(k, a, false), go(k, b, false));
                    if top { t } else { format!("({t})") }
                };
                match op {
                    SymOp::CeilDiv => call("cdiv"),
                    SymOp::Min => call("min"),
                    SymOp::Max => call("max"),
                    SymOp::Add => infix("+"),
                    SymOp::Sub => infix("-"),
                    SymOp::Mul => infix("*"),
                    SymOp::Div => infix("/"),
                    SymOp::Rem => infix("%"),
                }
            }
        }
    }
    go(k, e, true)
}
