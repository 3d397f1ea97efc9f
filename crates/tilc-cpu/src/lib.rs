//! `tilc-cpu`: the CPU backend. A VM [`Kernel`] becomes one Cranelift function — the program of
//! one block — that is JIT-compiled to native code ([`CpuKernel::compile`]) or written to an
//! object file ([`emit_object`]); [`emit_clif`] prints its Cranelift IR. A launch runs the
//! blocks of the grid in parallel on rayon's pool, each with its own scratch memory.
//!
//! **Semantics.** The compiled code agrees with the interpreter (`tilc_vm::interp`) bit for
//! bit: integers and every quantized output (stochastic rounding included) exactly, and floats
//! exactly too, because each operation is computed in the interpreter's order and precision
//! (f64 arithmetic rounded once to the element type; `dot` accumulates in f32 per step through
//! f64). The `lower` module says which operations are native and which call Rust helpers
//! that use `tilc_dtype`.
//!
//! **Where it differs from the interpreter** (kernels that trip these are wrong on a GPU too):
//! two blocks storing the same global element is not detected (the last write wins); a block
//! that loads an `out` tensor another block stores to may see that store; reads of unassigned
//! variables and uninitialised shared memory are not detected; `copy_async` lands at once
//! (correct unless the kernel touches a destination while its copy is in flight). Run-time
//! checks (division by zero, negative shifts and loop steps, `assume`, shared bounds) give a
//! `RunError` with the instruction's span and the first failing block, like the interpreter.
//!
//! This crate knows no syntax and does no file IO; the CLI and the public API sit above it.

mod helpers;
mod lower;

use cranelift_codegen::ir::UserFuncName;
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{Linkage, Module, default_libcall_names};
use cranelift_object::{ObjectBuilder, ObjectModule};
use rayon::prelude::*;
use std::time::{Duration, Instant};
use tilc_dtype::{DType, Overflow, Rounding};
use tilc_vm::interp::{Launch, check_args};
use tilc_vm::{ArgValue, HostTensor, Kernel, Param, RunError, RunSummary, SymDisplay};

pub use lower::Layout;

/// Bytes of zero padding after every packed tensor, so that compiled code can read a whole
/// 64-bit word around any sub-byte element.
pub const TENSOR_PADDING: usize = 8;

/// Compilation options.
#[derive(Clone, Debug)]
pub struct Options {
    /// Let Cranelift optimise (`opt_level = speed`); off gives faster compiles.
    pub optimize: bool,
    /// Run Cranelift's IR verifier (catches backend bugs; costs compile time).
    pub verify: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options { optimize: true, verify: cfg!(debug_assertions) }
    }
}

/// Why a kernel could not be compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CpuError {
    /// The kernel uses something this backend does not implement.
    Unsupported(String),
    /// Cranelift failed (a bug in this backend, or a host it does not support).
    Codegen(String),
}

impl std::fmt::Display for CpuError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CpuError::Unsupported(m) => write!(f, "the CPU backend does not support this kernel: {m}"),
            CpuError::Codegen(m) => write!(f, "CPU code generation failed: {m}"),
        }
    }
}

impl std::error::Error for CpuError {}

impl From<lower::LowerError> for CpuError {
    fn from(e: lower::LowerError) -> CpuError {
        match e {
            lower::LowerError::Unsupported(m) => CpuError::Unsupported(m),
            lower::LowerError::Module(m) => CpuError::Codegen(m),
        }
    }
}

fn codegen<E: std::fmt::Display>(e: E) -> CpuError {
    CpuError::Codegen(e.to_string())
}

/// The host ISA with our flags.
fn host_isa(options: &Options, pic: bool) -> Result<OwnedTargetIsa, CpuError> {
    let mut flags = settings::builder();
    let set = |f: &mut settings::Builder, k: &str, v: &str| f.set(k, v).map_err(codegen);
    set(&mut flags, "opt_level", if options.optimize { "speed" } else { "none" })?;
    set(&mut flags, "enable_verifier", if options.verify { "true" } else { "false" })?;
    set(&mut flags, "is_pic", if pic { "true" } else { "false" })?;
    let isa = cranelift_native::builder().map_err(|m| CpuError::Codegen(format!("this host is not supported by Cranelift: {m}")))?;
    isa.finish(settings::Flags::new(flags)).map_err(codegen)
}

/// The block function's signature as Rust sees it.
type BlockFn = unsafe extern "C" fn(env: *const u64, scratch: *mut u8, bx: i64, by: i64, bz: i64, linear: i64) -> i64;

/// The JIT module that owns the compiled code.
struct CodeOwner(#[allow(dead_code)] JITModule);

// SAFETY: after `finalize_definitions` the module is never touched again; it is kept only so
// that the executable memory it owns stays mapped, and dropping it from any thread is fine.
unsafe impl Send for CodeOwner {}
// SAFETY: as above, no method of the module is called through a shared reference.
unsafe impl Sync for CodeOwner {}

/// A kernel compiled for this CPU.
pub struct CpuKernel {
    kernel: Kernel,
    layout: Layout,
    func: BlockFn,
    compile_time: Duration,
    _code: CodeOwner,
}

impl std::fmt::Debug for CpuKernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuKernel").field("kernel", &self.kernel.name).field("scratch_bytes", &self.layout.scratch_bytes).finish()
    }
}

/// A tensor in its packed global-memory image (the layout compiled code reads and writes),
/// followed by [`TENSOR_PADDING`] zero bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedTensor {
    /// Element type.
    pub dtype: DType,
    /// Extents, outermost first.
    pub shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl PackedTensor {
    /// The packed image of a host tensor.
    pub fn from_host(t: &HostTensor) -> PackedTensor {
        let n = tilc_dtype::pack::packed_len(t.codes.len(), t.dtype.bits());
        let mut bytes = vec![0u8; n + TENSOR_PADDING];
        tilc_dtype::pack::pack_into(&t.codes, t.dtype.bits(), &mut bytes[..n]);
        PackedTensor { dtype: t.dtype, shape: t.shape.clone(), bytes }
    }

    /// A tensor from its packed image; `None` when `packed` is shorter than the shape needs.
    pub fn from_packed(dtype: DType, shape: Vec<usize>, packed: &[u8]) -> Option<PackedTensor> {
        let n = tilc_dtype::pack::packed_len(shape.iter().product(), dtype.bits());
        let mut bytes = packed.get(..n)?.to_vec();
        bytes.resize(n + TENSOR_PADDING, 0);
        Some(PackedTensor { dtype, shape, bytes })
    }

    /// The packed image (without the padding).
    pub fn packed(&self) -> &[u8] {
        &self.bytes[..self.bytes.len() - TENSOR_PADDING]
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The codes, unpacked.
    pub fn to_host(&self) -> HostTensor {
        HostTensor { dtype: self.dtype, shape: self.shape.clone(), codes: tilc_dtype::pack::unpack(self.packed(), self.dtype.bits(), self.numel()) }
    }
}

/// A value bound to one parameter of a packed launch.
#[derive(Clone, Debug, PartialEq)]
pub enum PackedArg {
    /// An integer scalar.
    Int(i64),
    /// A float scalar.
    Float(f64),
    /// A global tensor.
    Tensor(PackedTensor),
}

/// A value bound to one parameter of a launch over borrowed buffers
/// ([`CpuKernel::launch_buffers`]).
#[derive(Debug)]
pub enum BufferArg<'a> {
    /// An integer scalar.
    Int(i64),
    /// A float scalar.
    Float(f64),
    /// A tensor the kernel only reads: its packed image followed by at least
    /// [`TENSOR_PADDING`] bytes.
    Input {
        /// Element type.
        dtype: DType,
        /// Extents, outermost first.
        shape: &'a [usize],
        /// The packed image and its padding.
        bytes: &'a [u8],
    },
    /// A tensor the kernel may write (required for `out` parameters), laid out like `Input`.
    Output {
        /// Element type.
        dtype: DType,
        /// Extents, outermost first.
        shape: &'a [usize],
        /// The packed image and its padding.
        bytes: &'a mut [u8],
    },
}

/// One argument as the launch sees it: scalars, or a tensor's address, length and shape.
enum ArgView<'a> {
    Int(i64),
    Float(f64),
    Tensor { dtype: DType, shape: &'a [usize], ptr: *mut u8, len: usize, writable: bool },
}

/// Pointers into the launch's buffers, shared by the worker threads.
struct Env(Vec<u64>);

// SAFETY: the words are only read during a launch; the tensor memory they point at is written
// by compiled code at disjoint elements (bytes shared by sub-byte elements are updated
// atomically), as for any data-race-free kernel.
unsafe impl Sync for Env {}

impl CpuKernel {
    /// JIT-compiles `kernel` for this machine.
    pub fn compile(kernel: &Kernel, options: &Options) -> Result<CpuKernel, CpuError> {
        let start = Instant::now();
        let mut jb = JITBuilder::with_isa(host_isa(options, false)?, default_libcall_names());
        for (name, ptr) in helpers::symbols() {
            jb.symbol(name, ptr);
        }
        let mut module = JITModule::new(jb);
        let (mut func, layout) = lower::lower(&mut module, kernel)?;
        let id = module.declare_function(&format!("tilc_{}_block", kernel.name), Linkage::Export, &func.signature).map_err(codegen)?;
        func.name = UserFuncName::user(0, id.as_u32());
        let mut ctx = module.make_context();
        ctx.func = func;
        module.define_function(id, &mut ctx).map_err(|e| CpuError::Codegen(format!("{e:?}")))?;
        module.finalize_definitions().map_err(codegen)?;
        let ptr = module.get_finalized_function(id);
        // SAFETY: `ptr` is the function just defined with `block_signature`, which is this
        // type under the host's default calling convention (System V / Win64 = extern "C").
        let func = unsafe { std::mem::transmute::<*const u8, BlockFn>(ptr) };
        Ok(CpuKernel { kernel: kernel.clone(), layout, func, compile_time: start.elapsed(), _code: CodeOwner(module) })
    }

    /// The kernel this was compiled from.
    pub fn kernel(&self) -> &Kernel {
        &self.kernel
    }

    /// How long [`CpuKernel::compile`] took (lowering, Cranelift and linking).
    pub fn compile_time(&self) -> Duration {
        self.compile_time
    }

    /// Bytes of scratch memory each block uses.
    pub fn scratch_bytes(&self) -> usize {
        self.layout.scratch_bytes
    }

    /// Runs the kernel over its grid on the interpreter's argument representation: `args`
    /// follow the kernel's parameters, and the tensors of `out` parameters are updated in
    /// place with every element the kernel stored. Argument errors are the interpreter's.
    pub fn launch(&self, args: &mut [ArgValue]) -> Result<RunSummary, RunError> {
        // The interpreter's checks first, so that argument errors read the same on both targets.
        check_args(&self.kernel, args)?;
        let mut packed: Vec<PackedArg> = args
            .iter()
            .map(|a| match a {
                ArgValue::Int(i) => PackedArg::Int(*i),
                ArgValue::Float(x) => PackedArg::Float(*x),
                ArgValue::Tensor(t) => PackedArg::Tensor(PackedTensor::from_host(t)),
            })
            .collect();
        let summary = self.launch_packed(&mut packed)?;
        for (i, p) in self.kernel.params.iter().enumerate() {
            if let (Param::Tensor(g), PackedArg::Tensor(t)) = (p, &packed[i])
                && self.kernel.globals[*g].out
            {
                args[i] = ArgValue::Tensor(t.to_host());
            }
        }
        Ok(summary)
    }

    /// Runs the kernel on packed tensors (no conversion of the tensors' storage).
    pub fn launch_packed(&self, args: &mut [PackedArg]) -> Result<RunSummary, RunError> {
        let views: Vec<ArgView<'_>> = args
            .iter_mut()
            .map(|a| match a {
                PackedArg::Int(i) => ArgView::Int(*i),
                PackedArg::Float(x) => ArgView::Float(*x),
                PackedArg::Tensor(t) => ArgView::Tensor { dtype: t.dtype, shape: &t.shape, ptr: t.bytes.as_mut_ptr(), len: t.bytes.len(), writable: true },
            })
            .collect();
        let launch = self.check_views(&views)?;
        self.run(&launch, &views)
    }

    /// Runs the kernel on borrowed packed buffers, without copying them: the zero-copy path of
    /// the embedding API. Each buffer is a tensor's packed image followed by at least
    /// [`TENSOR_PADDING`] bytes (whose contents do not matter); `out` parameters must be
    /// [`BufferArg::Output`]. Every argument is checked (kind, dtype, shape, buffer length)
    /// before any code runs.
    pub fn launch_buffers(&self, args: &mut [BufferArg<'_>]) -> Result<RunSummary, RunError> {
        let views: Vec<ArgView<'_>> = args
            .iter_mut()
            .map(|a| match a {
                BufferArg::Int(i) => ArgView::Int(*i),
                BufferArg::Float(x) => ArgView::Float(*x),
                // The kernel never stores to a parameter that is not `out` (the VM verifier
                // rejects such a store), and `check_views` makes every `out` parameter an
                // `Output`, so compiled code only reads through this pointer.
                BufferArg::Input { dtype, shape, bytes } => ArgView::Tensor { dtype: *dtype, shape, ptr: bytes.as_ptr().cast_mut(), len: bytes.len(), writable: false },
                BufferArg::Output { dtype, shape, bytes } => ArgView::Tensor { dtype: *dtype, shape, ptr: bytes.as_mut_ptr(), len: bytes.len(), writable: true },
            })
            .collect();
        let launch = self.check_views(&views)?;
        self.run(&launch, &views)
    }

    fn check_views(&self, args: &[ArgView<'_>]) -> Result<Launch, RunError> {
        let k = &self.kernel;
        let err = |m: String| RunError { message: m, span: None, block: None };
        if args.len() != k.params.len() {
            return Err(err(format!("`{}` takes {} arguments, {} given", k.name, k.params.len(), args.len())));
        }
        let scalar = |v: tilc_vm::Value| -> Option<i64> {
            match args.get(k.param_index(v)?)? {
                ArgView::Int(i) => Some(*i),
                _ => None,
            }
        };
        let mut shapes = vec![Vec::new(); k.globals.len()];
        for (p, a) in k.params.iter().zip(args) {
            let name = k.param_name(*p);
            match (p, a) {
                (Param::Tensor(g), ArgView::Tensor { dtype, shape, len, writable, .. }) => {
                    let gd = &k.globals[*g];
                    if *dtype != gd.dtype {
                        return Err(err(format!("argument `{name}` has element type `{dtype}`, the kernel expects `{}`", gd.dtype)));
                    }
                    let want: Option<Vec<i64>> = gd.shape.iter().map(|e| e.eval(&scalar)).collect();
                    let want = want.ok_or_else(|| err(format!("the shape of `{name}` cannot be evaluated (division by zero?)")))?;
                    let have: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
                    if want != have {
                        return Err(err(format!("argument `{name}` has shape {have:?}, the kernel expects {want:?}")));
                    }
                    if gd.out && !writable {
                        return Err(err(format!("argument `{name}` is an output of the kernel and must be passed writable")));
                    }
                    let numel = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
                    let need = numel.and_then(|n| n.checked_mul(dtype.bits() as usize)).map(|b| b.div_ceil(8) + TENSOR_PADDING);
                    if need.is_none_or(|need| *len < need) {
                        return Err(err(format!("the buffer of `{name}` holds {len} bytes, fewer than its packed image and {TENSOR_PADDING} bytes of padding")));
                    }
                    shapes[g.as_u32() as usize] = shape.to_vec();
                }
                (Param::Tensor(_), _) => return Err(err(format!("argument `{name}` must be a tensor, not a scalar"))),
                (Param::Scalar(_), ArgView::Tensor { .. }) => return Err(err(format!("argument `{name}` must be a scalar, not a tensor"))),
                (Param::Scalar(v), ArgView::Int(i)) => {
                    let d = k.ty(*v).dtype();
                    if d.is_int() && d.bits() < 64 && !(d.min_finite()..=d.max_finite()).contains(&(*i as f64)) {
                        return Err(err(format!("argument `{name}` = {i} does not fit `{d}`")));
                    }
                }
                (Param::Scalar(v), ArgView::Float(_)) => {
                    if !k.ty(*v).dtype().is_float() {
                        return Err(err(format!("argument `{name}` must be an integer (`{}`)", k.ty(*v))));
                    }
                }
            }
        }
        let mut grid = [1u32; 3];
        for (i, e) in k.grid.iter().enumerate() {
            let n = e.eval(&scalar).ok_or_else(|| err("the grid cannot be evaluated (division by zero?)".into()))?;
            grid[i] = u32::try_from(n).map_err(|_| err(format!("grid extent {} is {n}, not in 0..2^32", SymDisplay { expr: e })))?;
        }
        Ok(Launch { grid, shapes })
    }

    /// Runs every block; `args` are checked against the kernel.
    fn run(&self, launch: &Launch, args: &[ArgView<'_>]) -> Result<RunSummary, RunError> {
        let k = &self.kernel;
        let mut env = vec![0u64; self.layout.env_words];
        for (i, (p, a)) in k.params.iter().zip(args).enumerate() {
            let w = self.layout.param_slot[i];
            match (p, a) {
                (Param::Scalar(v), a) => {
                    let d = k.ty(*v).dtype();
                    env[w] = match a {
                        ArgView::Int(x) if d.is_float() => round_float(d, *x as f64).to_bits(),
                        ArgView::Int(x) => *x as u64,
                        ArgView::Float(x) => round_float(d, *x).to_bits(),
                        ArgView::Tensor { .. } => 0,
                    };
                }
                (Param::Tensor(_), ArgView::Tensor { shape, ptr, len, .. }) => {
                    env[w] = *ptr as u64;
                    env[w + 1] = *len as u64;
                    for (j, &d) in shape.iter().enumerate() {
                        env[w + 2 + j] = d as u64;
                    }
                }
                (Param::Tensor(_), _) => unreachable!("arguments were checked"),
            }
        }
        let env = Env(env);
        let [gx, gy, gz] = launch.grid;
        let nblocks = u64::from(gx) * u64::from(gy) * u64::from(gz);
        let scratch_len = self.layout.scratch_bytes.max(16);
        let func = self.func;
        let env = &env;
        let first_error = (0..nblocks)
            .into_par_iter()
            .map_init(
                || vec![0u128; scratch_len.div_ceil(16)],
                |scratch, b| {
                    let bx = (b % u64::from(gx)) as i64;
                    let by = ((b / u64::from(gx)) % u64::from(gy)) as i64;
                    let bz = (b / (u64::from(gx) * u64::from(gy))) as i64;
                    // SAFETY: `env` holds the words the function was compiled to read (scalars,
                    // and pointers to live tensors with their lengths and shapes, checked
                    // against the kernel), `scratch` is 16-byte aligned and as long as the
                    // layout asks, and the function only touches memory inside those.
                    let status = unsafe { func(env.0.as_ptr(), scratch.as_mut_ptr().cast::<u8>(), bx, by, bz, b as i64) };
                    (status != 0).then_some((b, status))
                },
            )
            .flatten()
            .min_by_key(|&(b, _)| b);
        if let Some((b, status)) = first_error {
            let (message, span) = self.layout.errors[(status - 1) as usize].clone();
            let block = [(b % u64::from(gx)) as u32, ((b / u64::from(gx)) % u64::from(gy)) as u32, (b / (u64::from(gx) * u64::from(gy))) as u32];
            return Err(RunError { message, span: Some(span), block: Some(block) });
        }
        Ok(RunSummary { grid: launch.grid })
    }
}

/// The interpreter's rounding of a float scalar argument to its type.
fn round_float(d: DType, x: f64) -> f64 {
    if d == DType::F64 {
        x
    } else if d == DType::F32 {
        f64::from(x as f32)
    } else {
        d.decode(d.encode(x, Rounding::NearestEven, Overflow::NonSaturating))
    }
}

/// The Cranelift IR of `kernel`'s block function, before optimisation (`tilc build --emit clif`).
pub fn emit_clif(kernel: &Kernel) -> Result<String, CpuError> {
    let options = Options { optimize: false, verify: false };
    let mut jb = JITBuilder::with_isa(host_isa(&options, false)?, default_libcall_names());
    for (name, ptr) in helpers::symbols() {
        jb.symbol(name, ptr);
    }
    let mut module = JITModule::new(jb);
    let (func, layout) = lower::lower(&mut module, kernel)?;
    let mut text = format!(
        "; tilc CPU block function of `{}`: fn(env, scratch, bx, by, bz, linear) -> status\n; env words: {}, scratch bytes per block: {}\n",
        kernel.name, layout.env_words, layout.scratch_bytes
    );
    text.push_str(&func.display().to_string());
    Ok(text)
}

/// A relocatable object file for this host holding `kernel`'s block function as the exported
/// symbol `tilc_<name>_block` (`tilc build --target cpu`); it imports the `tilc_cpu_*` helpers.
pub fn emit_object(kernel: &Kernel, options: &Options) -> Result<Vec<u8>, CpuError> {
    let builder = ObjectBuilder::new(host_isa(options, true)?, kernel.name.as_bytes().to_vec(), default_libcall_names()).map_err(codegen)?;
    let mut module = ObjectModule::new(builder);
    let (mut func, _) = lower::lower(&mut module, kernel)?;
    let id = module.declare_function(&format!("tilc_{}_block", kernel.name), Linkage::Export, &func.signature).map_err(codegen)?;
    func.name = UserFuncName::user(0, id.as_u32());
    let mut ctx = module.make_context();
    ctx.func = func;
    module.define_function(id, &mut ctx).map_err(|e| CpuError::Codegen(format!("{e:?}")))?;
    module.finish().emit().map_err(codegen)
}
