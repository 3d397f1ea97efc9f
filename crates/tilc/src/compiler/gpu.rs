//! The GPU half of [`crate::Compiler`] and [`crate::Kernel`]: a VM kernel becomes SIMT
//! (`tilc_lower`), PTX (`tilc_ptx`) and, where ptxas is installed, a cubin; [`GpuCode`] keeps
//! them with what a launch needs; [`GpuCode`]s round-trip through the disk cache; launches go
//! through `tilc_cuda` on one process-wide device.
//!
//! **Launch contract** (tilc-lower's, the same that `tilc build`'s manifest spells out):
//! parameters in signature order; a tensor is a device pointer to its packed bit stream,
//! zero-padded to a multiple of [`BUFFER_PADDING`] bytes (at least that many); integer scalars
//! of up to 32 bits travel as `i32` (two's complement; booleans 0 or 1), wider ones as `i64`;
//! float scalars as `f32` holding the value rounded to their dtype (`f64` as `f64`); all shared
//! memory is dynamic, passed at launch.
//!
//! This module must not know how kernels are lowered or printed; it calls the crates that do.

use super::Arg;
use crate::cache::Cache;
use crate::{Error, Result, Target, Tensor};
use std::sync::{Arc, Mutex};
use tilc_base::{Diagnostic, SourceFile};
use tilc_cuda::{CudaError, Device, DeviceTensor, Function, KernelArg, LaunchSpec};
use tilc_dtype::{DType, Overflow, Rounding};
use tilc_ptx::KernelResources;
use tilc_vm::Param;

/// Tensor buffers are zero-padded to a multiple of this many bytes: kernels load whole 16-byte
/// vectors around the last elements.
pub const BUFFER_PADDING: usize = 16;

/// How one parameter travels in the kernel's parameter space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamAbi {
    /// 4-byte two's-complement integer.
    I32,
    /// 8-byte two's-complement integer.
    I64,
    /// IEEE binary32.
    F32,
    /// IEEE binary64.
    F64,
    /// A device pointer to a padded tensor buffer aligned to `align` bytes.
    Ptr {
        /// The alignment the kernel assumes, in bytes.
        align: u32,
    },
}

impl ParamAbi {
    /// `i32`, `i64`, `f32`, `f64` or `ptr`, as the manifest of `tilc build` names them.
    pub fn name(self) -> &'static str {
        match self {
            ParamAbi::I32 => "i32",
            ParamAbi::I64 => "i64",
            ParamAbi::F32 => "f32",
            ParamAbi::F64 => "f64",
            ParamAbi::Ptr { .. } => "ptr",
        }
    }

    /// The cache's spelling: the name, and `ptr/ALIGN` for pointers.
    fn to_text(self) -> String {
        match self {
            ParamAbi::Ptr { align } => format!("ptr/{align}"),
            other => other.name().to_string(),
        }
    }

    fn from_text(s: &str) -> Option<ParamAbi> {
        Some(match s {
            "i32" => ParamAbi::I32,
            "i64" => ParamAbi::I64,
            "f32" => ParamAbi::F32,
            "f64" => ParamAbi::F64,
            _ => ParamAbi::Ptr { align: s.strip_prefix("ptr/")?.parse().ok()? },
        })
    }
}

/// One parameter of a GPU kernel.
#[derive(Clone, Debug, PartialEq)]
pub struct GpuParam {
    /// Its name in the source.
    pub name: String,
    /// Element type (tensors) or type (scalars).
    pub dtype: DType,
    /// A global tensor (else a scalar).
    pub is_tensor: bool,
    /// An `out` tensor.
    pub out: bool,
    /// How it is passed.
    pub abi: ParamAbi,
}

/// A kernel compiled for a GPU: PTX, the cubin when ptxas was found, and what a launch needs
/// besides the arguments (the grid comes from the VM's grid expressions, evaluated over the
/// scalar arguments as for every target).
pub struct GpuCode {
    /// The target it was compiled for.
    pub target: Target,
    /// The PTX module (one `.entry`, named as the kernel).
    pub ptx: String,
    /// The cubin ptxas assembled from `ptx`, when ptxas was found (`TILC_PTXAS`, the bundled
    /// copy, or `PATH`); without one the driver JIT-compiles the PTX at load time.
    pub cubin: Option<Vec<u8>>,
    /// Parameters in signature order.
    pub params: Vec<GpuParam>,
    /// Threads per block in x, y, z.
    pub block: [u32; 3],
    /// Dynamic shared memory per block, in bytes.
    pub shared_bytes: u32,
    /// How each `dot` was lowered (`mma Bf16F32 (m16n8k16) …` or a generic loop), in order.
    pub dots: Vec<String>,
    /// ptxas's resource report (registers, spills), when ptxas ran.
    pub resources: Option<KernelResources>,
    /// Whether this code was read from the disk cache instead of compiled.
    pub from_cache: bool,
    /// The code loaded into a device, kept for later launches on the same device handle.
    loaded: Mutex<Option<Function>>,
}

impl std::fmt::Debug for GpuCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuCode")
            .field("target", &self.target)
            .field("ptx_bytes", &self.ptx.len())
            .field("cubin_bytes", &self.cubin.as_ref().map(Vec::len))
            .field("block", &self.block)
            .field("shared_bytes", &self.shared_bytes)
            .field("from_cache", &self.from_cache)
            .finish()
    }
}

impl GpuCode {
    /// Threads per block.
    pub fn threads(&self) -> u32 {
        self.block.iter().product()
    }

    /// Whether a `dot` runs on tensor cores with float inputs (f16, bf16, fp8), whose summation
    /// order differs from the VM's sequential one: float outputs may then differ from the
    /// interpreter's in the last place.
    pub fn has_float_mma(&self) -> bool {
        self.dots.iter().any(|d| d.contains("mma F16F32") || d.contains("mma Bf16F32") || d.contains("mma Fp8F32"))
    }

    /// The module loaded into `device` and its kernel `name` (once per device handle): the
    /// cubin when there is one, else the PTX.
    pub fn function(&self, device: &Device, name: &str) -> std::result::Result<Function, CudaError> {
        let mut slot = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = slot.as_ref()
            && f.device().is_same(device)
        {
            return Ok(f.clone());
        }
        let module = match &self.cubin {
            Some(cubin) => device.load_cubin(cubin)?,
            None => device.load_ptx(&self.ptx)?,
        };
        let f = module.function(name)?;
        *slot = Some(f.clone());
        Ok(f)
    }
}

fn ptx_target(target: Target) -> tilc_ptx::Target {
    match target {
        Target::Sm90a => tilc_ptx::Target::Sm90a,
        Target::Sm100a => tilc_ptx::Target::Sm100a,
        Target::Sm120a => tilc_ptx::Target::Sm120a,
        Target::Interp | Target::Cpu => unreachable!("only GPU targets reach the GPU compiler"),
    }
}

/// Compiles `vm` for `target`: lowering, the target's resource and feature checks, PTX, and the
/// cubin when ptxas is installed. `async_tensor_cores`: `wgmma` on sm_90a, `tcgen05` on sm_100a
/// where tiles fit ([`crate::Compiler::async_tensor_cores`]).
pub(crate) fn compile(vm: &tilc_vm::Kernel, file: &Arc<SourceFile>, target: Target, async_tensor_cores: bool) -> Result<GpuCode> {
    let ptx_target = ptx_target(target);
    let compile_error = |d: Diagnostic| Error::Compile { file: file.clone(), diagnostics: vec![d] };
    let options = tilc_lower::Options {
        wgmma: async_tensor_cores && target == Target::Sm90a,
        tcgen05: async_tensor_cores && target == Target::Sm100a,
        ..Default::default()
    };
    let lowered = tilc_lower::lower(vm, &options).map_err(|e| compile_error(e.to_diagnostic()))?;
    let simt = &lowered.kernel;
    let checked = tilc_ptx::check_resources(simt, ptx_target).and_then(|()| tilc_ptx::check_features(simt, ptx_target).map(|_| ()));
    if let Err(e) = checked {
        let mut d = Diagnostic::error(format!("kernel `{}` cannot be built for {target}: {e}", vm.name), vm.span, "this kernel");
        if let tilc_ptx::PtxError::Unsupported { feature, .. } = &e {
            let able: Vec<&str> = tilc_ptx::Target::ALL.iter().filter(|t| t.supports(*feature)).map(|t| t.name()).collect();
            d = d.with_hint(if able.is_empty() { "no GPU target has it yet".to_string() } else { format!("targets that have it: {}", able.join(", ")) });
        } else {
            d = d.with_hint("use smaller tiles (fewer warps or smaller shared tensors) through defines");
        }
        return Err(compile_error(d));
    }
    let codegen = |message: String| Error::Codegen { target, message };
    let params = params(vm, simt).map_err(codegen)?;
    let options = tilc_ptx::Options::new(ptx_target);
    // With ptxas: the build `tilc build` makes (rebuilt without ptxas's register cap where that
    // removes spills), so the PTX and the cubin agree.
    let (out, cubin, resources) = match tilc_ptx::find_ptxas() {
        Some(ptxas) => {
            let (out, cubin, report) = tilc_ptx::compile_and_assemble(std::slice::from_ref(simt), &options, &ptxas).map_err(|e| codegen(e.to_string()))?;
            let report = report.with_dynamic_shared(std::slice::from_ref(simt));
            let resources = report.kernel(&vm.name).cloned();
            (out, Some(cubin), resources)
        }
        None => (tilc_ptx::compile(std::slice::from_ref(simt), &options).map_err(|e| codegen(e.to_string()))?, None, None),
    };
    Ok(GpuCode {
        target,
        ptx: out.ptx,
        cubin,
        params,
        block: simt.block_dim,
        shared_bytes: simt.shared_bytes,
        dots: lowered.info.dots.clone(),
        resources,
        from_cache: false,
        loaded: Mutex::new(None),
    })
}

/// The parameters of `vm` with the carriers its SIMT program `simt` gives them; an error names
/// what does not line up (a lowering bug).
fn params(vm: &tilc_vm::Kernel, simt: &tilc_simt::Kernel) -> std::result::Result<Vec<GpuParam>, String> {
    use tilc_simt::{Scalar, Type};
    if vm.params.len() != simt.params.len() {
        return Err(format!("kernel `{}` has {} parameters but its SIMT program {}", vm.name, vm.params.len(), simt.params.len()));
    }
    vm.params
        .iter()
        .zip(&simt.params)
        .map(|(p, sp)| {
            let name = vm.param_name(*p).to_string();
            Ok(match (p, sp.ty) {
                (Param::Scalar(v), Type::Scalar(s)) => {
                    let abi = match s {
                        Scalar::I32 => ParamAbi::I32,
                        Scalar::I64 => ParamAbi::I64,
                        Scalar::F32 => ParamAbi::F32,
                        Scalar::F64 => ParamAbi::F64,
                        other => return Err(format!("scalar parameter `{name}` is passed as {other:?}, which has no launch ABI")),
                    };
                    GpuParam { name, dtype: vm.ty(*v).dtype(), is_tensor: false, out: false, abi }
                }
                (Param::Tensor(g), Type::Ptr(_)) => {
                    let gd = &vm.globals[*g];
                    GpuParam { name, dtype: gd.dtype, is_tensor: true, out: gd.out, abi: ParamAbi::Ptr { align: sp.align.max(1) } }
                }
                (_, ty) => return Err(format!("parameter `{name}` is passed as {ty:?}, which does not match its declaration")),
            })
        })
        .collect()
}

/// Companion files of a cached GPU kernel, by extension.
const PTX_FILE: &str = "ptx";
const CUBIN_FILE: &str = "cubin";

/// Writes `code` into the cache under `key`, beside the kernel's record (`fields`, `vm_text`).
pub(crate) fn store(cache: &Cache, key: &str, fields: &[(&str, String)], vm_text: &str, code: &GpuCode) -> Result<()> {
    let mut fields: Vec<(&str, String)> = fields.to_vec();
    fields.push(("params", code.params.iter().map(|p| p.abi.to_text()).collect::<Vec<_>>().join(" ")));
    fields.push(("block", code.block.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")));
    fields.push(("shared_bytes", code.shared_bytes.to_string()));
    for d in &code.dots {
        fields.push(("dot", d.clone()));
    }
    if let Some(r) = &code.resources {
        fields.push((
            "resources",
            format!("{} {} {} {} {} {}", r.registers, r.spill_stores, r.spill_loads, r.stack_frame, r.shared_bytes, r.barriers),
        ));
    }
    let mut files: Vec<(&str, &[u8])> = vec![(PTX_FILE, code.ptx.as_bytes())];
    if let Some(cubin) = &code.cubin {
        files.push((CUBIN_FILE, cubin));
    }
    cache.store_kernel_files(key, &fields, vm_text, &files)
}

/// The GPU code cached under `key` for `vm`, if there is a complete, intact entry whose launch
/// description matches `vm`'s signature.
pub(crate) fn load(cache: &Cache, key: &str, vm: &tilc_vm::Kernel, target: Target) -> Option<GpuCode> {
    let (entry, mut files) = cache.kernel_files(key)?;
    if entry.field("target") != Some(target.name()) {
        return None;
    }
    let ptx = String::from_utf8(files.remove(PTX_FILE)?).ok()?;
    let cubin = files.remove(CUBIN_FILE);
    let abis: Vec<ParamAbi> = entry.field("params")?.split_whitespace().map(ParamAbi::from_text).collect::<Option<_>>()?;
    if abis.len() != vm.params.len() {
        return None;
    }
    let mut params = Vec::with_capacity(abis.len());
    for (p, abi) in vm.params.iter().zip(abis) {
        let name = vm.param_name(*p).to_string();
        params.push(match (p, abi) {
            (Param::Scalar(v), ParamAbi::I32 | ParamAbi::I64 | ParamAbi::F32 | ParamAbi::F64) => {
                GpuParam { name, dtype: vm.ty(*v).dtype(), is_tensor: false, out: false, abi }
            }
            (Param::Tensor(g), ParamAbi::Ptr { .. }) => GpuParam { name, dtype: vm.globals[*g].dtype, is_tensor: true, out: vm.globals[*g].out, abi },
            _ => return None,
        });
    }
    let block: Vec<u32> = entry.field("block")?.split_whitespace().map(|b| b.parse().ok()).collect::<Option<_>>()?;
    let block: [u32; 3] = block.try_into().ok()?;
    let shared_bytes = entry.field("shared_bytes")?.parse().ok()?;
    let dots = entry.fields.iter().filter(|(n, _)| n == "dot").map(|(_, v)| v.clone()).collect();
    let resources = entry.field("resources").and_then(|r| {
        let n: Vec<u32> = r.split_whitespace().map(|x| x.parse().ok()).collect::<Option<_>>()?;
        let [registers, spill_stores, spill_loads, stack_frame, shared, barriers] = n.try_into().ok()?;
        Some(KernelResources {
            name: vm.name.clone(),
            registers,
            spill_stores,
            spill_loads,
            stack_frame,
            shared_bytes: shared,
            dynamic_shared_bytes: shared_bytes,
            barriers,
        })
    });
    Some(GpuCode { target, ptx, cubin, params, block, shared_bytes, dots, resources, from_cache: true, loaded: Mutex::new(None) })
}

/// The process's device: CUDA device 0 (as `CUDA_VISIBLE_DEVICES` numbers them), opened once.
/// Every GPU kernel launches on it, so buffers and modules share one stream.
pub(crate) fn shared_device() -> std::result::Result<Device, CudaError> {
    static DEVICE: Mutex<Option<Device>> = Mutex::new(None);
    let mut slot = DEVICE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(d) = slot.as_ref() {
        return Ok(d.clone());
    }
    let device = Device::open(0)?;
    *slot = Some(device.clone());
    Ok(device)
}

/// The target of a device's architecture, if tilc compiles for it.
pub(crate) fn target_of(info: &tilc_cuda::DeviceInfo) -> Option<Target> {
    match info.compute_capability {
        (9, 0) => Some(Target::Sm90a),
        (10, 0) => Some(Target::Sm100a),
        (12, 0) => Some(Target::Sm120a),
        _ => None,
    }
}

/// The shared device, checked to run code compiled for `target`; errors are values that say
/// what is missing ('no CUDA driver found', another architecture).
pub(crate) fn device_for(target: Target) -> Result<Device> {
    let device = shared_device().map_err(|e| device_error(target, None, e))?;
    let info = device.info();
    if target_of(info) != Some(target) {
        return Err(Error::Unsupported {
            target,
            reason: format!("device {} is {} ({}), which cannot run code compiled for {target}", info.ordinal, info.name, info.arch()),
        });
    }
    Ok(device)
}

/// A CUDA error as a tilc error: no driver or device → [`Error::Unsupported`]; code the driver
/// will not load → [`Error::Codegen`]; anything else (a launch that fails, a kernel that
/// faults) → [`Error::Run`] when the source is known.
pub(crate) fn device_error(target: Target, file: Option<&Arc<SourceFile>>, e: CudaError) -> Error {
    match (&e, file) {
        (e, _) if e.is_unavailable() => Error::Unsupported { target, reason: e.to_string() },
        (CudaError::ModuleLoad { .. } | CudaError::NotACubin { .. } | CudaError::PtxContainsNul { .. } | CudaError::KernelNotFound { .. }, _) => {
            Error::Codegen { target, message: e.to_string() }
        }
        (_, Some(file)) => Error::Run { file: file.clone(), error: tilc_vm::RunError { message: format!("on the GPU: {e}"), span: None, block: None } },
        (_, None) => Error::Unsupported { target, reason: e.to_string() },
    }
}

/// The raw bits a scalar argument travels as, rounded as the interpreter rounds it.
fn scalar_arg(p: &GpuParam, a: &Arg<'_>) -> KernelArg<'static> {
    let float = |x: f64| -> f64 {
        if p.dtype.bits() == 64 {
            x
        } else {
            p.dtype.decode(p.dtype.encode(x, Rounding::NearestEven, Overflow::NonSaturating))
        }
    };
    let (int, value) = match a {
        Arg::Int(i) => (*i, *i as f64),
        Arg::Float(x) => (*x as i64, *x),
        _ => (0, 0.0),
    };
    match p.abi {
        ParamAbi::I32 => KernelArg::I32(int as i32),
        ParamAbi::I64 => KernelArg::I64(int),
        ParamAbi::F32 => KernelArg::F32(float(value) as f32),
        ParamAbi::F64 => KernelArg::F64(float(value)),
        ParamAbi::Ptr { .. } => unreachable!("tensors are not scalars"),
    }
}

/// Uploads a host tensor into a padded device tensor on `device`.
pub(crate) fn upload(device: &Device, t: &Tensor) -> std::result::Result<DeviceTensor, CudaError> {
    DeviceTensor::from_packed_padded(device, t.dtype(), t.shape(), t.packed(), BUFFER_PADDING)
}

/// Whether a device tensor's buffer is padded as the launch contract requires.
pub(crate) fn is_padded(t: &DeviceTensor) -> bool {
    t.buffer().len() >= t.byte_len().div_ceil(BUFFER_PADDING).max(1) * BUFFER_PADDING
}

/// Launches `code` (kernel `name`) over `grid` with `args`, already checked against the
/// signature. Host tensors are uploaded (outputs too: a kernel may leave elements unwritten or
/// update packed words in place), outputs copied back, and the call returns when the kernel
/// has finished. With only device tensors the launch is queued and the call returns at once;
/// errors of the kernel then surface at the next download or synchronisation.
pub(crate) fn launch(code: &GpuCode, name: &str, file: &Arc<SourceFile>, grid: [u32; 3], args: &mut [Arg<'_>]) -> Result<()> {
    let target = code.target;
    let fail = |e: CudaError| device_error(target, Some(file), e);
    let device = device_for(target)?;
    for (p, a) in code.params.iter().zip(args.iter()) {
        if let Arg::Device(t) = a {
            if !t.buffer().device().is_same(&device) {
                return Err(Error::Argument { kernel: name.to_string(), message: format!("device tensor `{}` belongs to another device handle than the one tilc launches on; create it with `Kernel::upload`", p.name), at: None });
            }
            if !is_padded(t) {
                return Err(Error::Argument {
                    kernel: name.to_string(),
                    message: format!("device tensor `{}` must be zero-padded to a multiple of {BUFFER_PADDING} bytes; create it with `Kernel::upload` or `DeviceTensor::from_packed_padded`", p.name),
                    at: None,
                });
            }
        }
    }
    if grid.contains(&0) {
        return Ok(());
    }
    let function = code.function(&device, name).map_err(fail)?;
    // Host tensors travel in buffers of their own, kept alive until the results are read.
    let mut uploaded: Vec<Option<DeviceTensor>> = Vec::with_capacity(args.len());
    for a in args.iter() {
        uploaded.push(match a {
            Arg::Tensor(t) => Some(upload(&device, t).map_err(fail)?),
            Arg::TensorMut(t) => Some(upload(&device, t).map_err(fail)?),
            _ => None,
        });
    }
    let kernel_args: Vec<KernelArg<'_>> = code
        .params
        .iter()
        .zip(args.iter())
        .zip(&uploaded)
        .map(|((p, a), up)| match (a, up) {
            (Arg::Device(t), _) => t.arg(),
            (_, Some(t)) => t.arg(),
            (a, None) => scalar_arg(p, a),
        })
        .collect();
    let spec = LaunchSpec { grid, block: code.block, shared_bytes: code.shared_bytes };
    function.launch(&spec, &kernel_args).map_err(fail)?;
    drop(kernel_args);
    let mut any_host = false;
    for (a, up) in args.iter_mut().zip(&uploaded) {
        match (a, up) {
            (Arg::TensorMut(t), Some(d)) => {
                let bytes = d.to_packed().map_err(fail)?;
                **t = Tensor::from_packed(t.dtype(), t.shape(), &bytes)?;
                any_host = true;
            }
            (Arg::Tensor(_), _) => any_host = true,
            _ => {}
        }
    }
    if any_host {
        device.synchronize().map_err(fail)?;
    }
    Ok(())
}
