//! `tilc-ptx`: the PTX backend. SIMT kernels ([`tilc_simt::Kernel`]) become LLVM IR through
//! inkwell (LLVM 22), LLVM's NVPTX backend prints PTX for sm_90a, sm_100a or sm_120a, and
//! [`assemble`] runs ptxas on it and reads its resource report.
//!
//! - [`target`]: the targets, their PTX versions (checked before LLVM sees them: a bad pair makes
//!   LLVM exit the process) and feature gates;
//! - [`compile`]: verify the SIMT kernels, check every instruction against the target
//!   ([`check_features`]) and the block against its limits ([`check_resources`]: threads, shared
//!   memory), unroll as hinted, lower to one LLVM module (`codegen`), verify it, optimise it,
//!   print PTX. All of a kernel's shared memory is the dynamic `extern .shared` window
//!   [`SHARED_SYMBOL`], so a launch passes the kernel's `shared_bytes` as its dynamic size (and
//!   above 48 KiB first raises the function's dynamic shared memory limit);
//! - [`ptxas`]: find and run ptxas, parse `-v` into a [`Report`], print it as a table.
//!
//! This crate must not know the VM, layouts, the language or how kernels are launched; it takes
//! SIMT kernels and returns text and bytes.

mod codegen;
pub mod error;
mod metadata;
pub mod ptxas;
pub mod target;

use std::sync::Once;

use inkwell::OptimizationLevel;
use inkwell::context::Context;
use inkwell::module::Module;
use inkwell::passes::PassBuilderOptions;
use inkwell::targets::{
    CodeModel, FileType, InitializationConfig, RelocMode, TargetMachine, TargetTriple,
};
use tilc_simt::{HalfFormat, HalfOp, InstKind, Kernel, MmaKind};

pub use codegen::SHARED_SYMBOL;
pub use error::PtxError;
pub use ptxas::{KernelResources, Report, assemble, assemble_with, find_ptxas};
pub use target::{Feature, PtxVersion, Target};

/// How hard LLVM optimises.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum OptLevel {
    /// No middle-end optimisation except SROA, which keeps register arrays in registers.
    O0,
    /// `default<O1>`.
    O1,
    /// `default<O2>`.
    O2,
    /// `default<O3>` (the default).
    #[default]
    O3,
}

impl OptLevel {
    fn pipeline(self) -> &'static str {
        match self {
            OptLevel::O0 => "sroa",
            OptLevel::O1 => "default<O1>",
            OptLevel::O2 => "default<O2>",
            OptLevel::O3 => "default<O3>",
        }
    }

    fn codegen(self) -> OptimizationLevel {
        match self {
            OptLevel::O0 => OptimizationLevel::None,
            OptLevel::O1 => OptimizationLevel::Less,
            OptLevel::O2 => OptimizationLevel::Default,
            OptLevel::O3 => OptimizationLevel::Aggressive,
        }
    }
}

/// What to compile for and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Options {
    /// The GPU architecture.
    pub target: Target,
    /// LLVM's optimisation level.
    pub opt_level: OptLevel,
    /// The PTX ISA version to print; `None` takes the oldest that has the target
    /// ([`Target::min_ptx`]) and every feature the kernels use ([`Feature::min_ptx`]).
    pub ptx_version: Option<PtxVersion>,
    /// `.minnctapersm`: the fewest blocks ptxas must fit on one SM. `None` leaves the
    /// register budget to ptxas's occupancy heuristic (see [`compile_and_assemble`]).
    pub min_blocks_per_sm: Option<u32>,
}

impl Options {
    /// Default options for `target`: O3 and the target's minimum PTX version.
    pub fn new(target: Target) -> Options {
        Options {
            target,
            opt_level: OptLevel::O3,
            ptx_version: None,
            min_blocks_per_sm: None,
        }
    }
}

/// The result of [`compile`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// The LLVM IR as lowered (before optimisation), verified.
    pub llvm_ir: String,
    /// The PTX text.
    pub ptx: String,
}

/// Compiles `kernels` and assembles them with `ptxas`, keeping ptxas's register choice unless
/// it spills: ptxas's occupancy heuristic sometimes caps a kernel's registers and spills a few
/// bytes rather than use more (gemm_a8w: 72 registers and 8 bytes of spills on sm_90a). Then
/// the module is rebuilt with `.minnctapersm 1`, which lifts the cap (122 registers, none),
/// and the build that spills fewer bytes is returned — PTX, cubin and report belong together.
pub fn compile_and_assemble(
    kernels: &[Kernel],
    options: &Options,
    ptxas: &std::path::Path,
) -> Result<(Output, Vec<u8>, Report), PtxError> {
    let out = compile(kernels, options)?;
    let (cubin, report) = assemble_with(ptxas, &out.ptx, options.target)?;
    let spilled = |r: &Report| r.kernels.iter().map(|k| u64::from(k.spill_stores) + u64::from(k.spill_loads)).sum::<u64>();
    if spilled(&report) == 0 || options.min_blocks_per_sm.is_some() {
        return Ok((out, cubin, report));
    }
    let relaxed = Options { min_blocks_per_sm: Some(1), ..*options };
    let out2 = compile(kernels, &relaxed)?;
    let (cubin2, report2) = assemble_with(ptxas, &out2.ptx, options.target)?;
    Ok(if spilled(&report2) < spilled(&report) { (out2, cubin2, report2) } else { (out, cubin, report) })
}

/// Compiles `kernels` into one PTX module.
///
/// Each kernel is verified; instructions its target lacks are an [`PtxError::Unsupported`]; a
/// copy is unrolled as its loop hints ask (`tilc_simt::passes::unroll`; hints it cannot honour
/// become LLVM loop metadata). The LLVM module is verified before optimisation and code
/// generation, so a lowering bug is an error with LLVM's message, not a crash.
pub fn compile(kernels: &[Kernel], options: &Options) -> Result<Output, PtxError> {
    let target = options.target;
    let mut needed = target.min_ptx();
    let mut prepared = Vec::with_capacity(kernels.len());
    for k in kernels {
        tilc_simt::verify(k).map_err(|e| PtxError::InvalidKernel {
            kernel: k.name.clone(),
            message: e.to_string(),
        })?;
        check_resources(k, target)?;
        for feature in check_features(k, target)? {
            needed = needed.max(feature.min_ptx());
        }
        let mut k = k.clone();
        tilc_simt::passes::unroll(&mut k);
        prepared.push(k);
    }
    let ptx_version = options.ptx_version.unwrap_or(needed);
    target.check_ptx(ptx_version)?;
    if ptx_version < needed {
        return Err(PtxError::BadPtxVersion {
            target,
            version: ptx_version,
            reason: format!("the kernels use instructions that need PTX {needed}"),
        });
    }

    let machine = target_machine(target, ptx_version, options.opt_level)?;
    let ctx = Context::create();
    let module = ctx.create_module("tilc");
    module.set_triple(&machine.get_triple());
    module.set_data_layout(&machine.get_target_data().get_data_layout());
    let mut hinted = 0;
    for k in &prepared {
        codegen::lower_kernel(&ctx, &module, k, options.min_blocks_per_sm, &mut hinted)?;
    }
    let llvm_ir = module.print_to_string().to_string();
    module.verify().map_err(|e| PtxError::Llvm {
        stage: "verify",
        message: e.to_string(),
    })?;
    optimize(&module, &machine, options.opt_level)?;
    let buffer = machine
        .write_to_memory_buffer(&module, FileType::Assembly)
        .map_err(|e| PtxError::Llvm {
            stage: "codegen",
            message: e.to_string(),
        })?;
    let ptx = String::from_utf8_lossy(buffer.as_slice())
        .trim_end_matches('\0')
        .to_string();
    Ok(Output { llvm_ir, ptx })
}

/// Verifies a module and runs the optimisation pipeline on it.
fn optimize(module: &Module<'_>, machine: &TargetMachine, level: OptLevel) -> Result<(), PtxError> {
    module
        .run_passes(level.pipeline(), machine, PassBuilderOptions::create())
        .map_err(|e| PtxError::Llvm {
            stage: "optimize",
            message: e.to_string(),
        })
}

/// Checks an LLVM module the way [`compile`] does before code generation.
pub fn verify_module(module: &Module<'_>) -> Result<(), PtxError> {
    module.verify().map_err(|e| PtxError::Llvm {
        stage: "verify",
        message: e.to_string(),
    })
}

/// The feature an instruction needs beyond plain SIMT arithmetic, with its PTX spelling.
pub fn required_feature(kind: &InstKind) -> Option<(Feature, &'static str)> {
    match kind {
        InstKind::Mma(MmaKind::Fp8F32(_), ..) => Some((Feature::Fp8Mma, "mma.sync.m16n8k32 (fp8)")),
        InstKind::Mma(..) => Some((Feature::MmaSync, "mma.sync")),
        InstKind::Wgmma { .. } => Some((Feature::Wgmma, "wgmma.mma_async")),
        InstKind::TmemAlloc { .. } => Some((Feature::Tcgen05, "tcgen05.alloc")),
        InstKind::TmemDealloc { .. } => Some((Feature::Tcgen05, "tcgen05.dealloc")),
        InstKind::TmemLoad { .. } => Some((Feature::Tcgen05, "tcgen05.ld")),
        InstKind::TmemStore { .. } => Some((Feature::Tcgen05, "tcgen05.st")),
        InstKind::Tcgen05Mma { .. } => Some((Feature::Tcgen05, "tcgen05.mma")),
        InstKind::Tcgen05Commit { .. } => Some((Feature::Tcgen05, "tcgen05.commit")),
        InstKind::Tcgen05Fence { .. } => Some((Feature::Tcgen05, "tcgen05.fence")),
        InstKind::F32x2ToFp8x2(..) => Some((Feature::Fp8, "cvt.rn.satfinite.f8x2.f32")),
        InstKind::Fp8x2ToF16x2(..) => Some((Feature::Fp8, "cvt.rn.f16x2.f8x2")),
        InstKind::Ldmatrix { .. } => Some((Feature::Ldmatrix, "ldmatrix")),
        InstKind::CpAsync { .. } | InstKind::CpAsyncCommit | InstKind::CpAsyncWait(_) => {
            Some((Feature::CpAsync, "cp.async"))
        }
        InstKind::Half(HalfOp::Add | HalfOp::Sub | HalfOp::Mul, HalfFormat::BF16, ..)
        | InstKind::HalfFma(HalfFormat::BF16, ..) => {
            Some((Feature::Bf16Arith, "bf16 add/sub/mul/fma"))
        }
        _ => None,
    }
}

/// Checks every instruction of `kernel` against `target`'s features; returns the features used.
pub fn check_features(kernel: &Kernel, target: Target) -> Result<Vec<Feature>, PtxError> {
    let mut result = Ok(Vec::new());
    kernel.walk(&mut |i| {
        if let (Ok(used), Some((feature, name))) =
            (&mut result, required_feature(&kernel.insts[i].kind))
        {
            match target.require(feature, name) {
                Ok(()) if !used.contains(&feature) => used.push(feature),
                Ok(()) => {}
                Err(e) => result = Err(e),
            }
        }
    });
    result
}

/// Checks that `kernel`'s block fits `target`: at most [`Target::max_threads_per_block`] threads
/// and [`Target::max_shared_bytes_per_block`] bytes of shared memory. (All of a kernel's shared
/// memory is the dynamic `tilc_smem` window, so the launch passes `shared_bytes` as its dynamic
/// size.)
pub fn check_resources(kernel: &Kernel, target: Target) -> Result<(), PtxError> {
    let fail = |message: String| PtxError::Resources {
        kernel: kernel.name.clone(),
        target,
        message,
    };
    let threads = kernel.threads_per_block();
    if threads > target.max_threads_per_block() {
        return Err(fail(format!(
            "its block has {threads} threads; {target} allows at most {}",
            target.max_threads_per_block()
        )));
    }
    if kernel.shared_bytes > target.max_shared_bytes_per_block() {
        return Err(fail(format!(
            "it needs {} bytes of shared memory per block; {target} allows at most {}",
            kernel.shared_bytes,
            target.max_shared_bytes_per_block()
        )));
    }
    Ok(())
}

static LLVM_INIT: Once = Once::new();

/// Initialises LLVM's NVPTX target once per process, with 32-bit shared-memory pointers
/// (`-nvptx-short-ptr`, as clang's `-fcuda-short-ptr`): SIMT shared pointers are 32-bit offsets,
/// and 64-bit shared addresses would cost a register pair each.
fn init_llvm() {
    LLVM_INIT.call_once(|| {
        inkwell::targets::Target::initialize_nvptx(&InitializationConfig::default());
        let args: [&std::ffi::CStr; 2] = [c"tilc", c"-nvptx-short-ptr"];
        let argv: Vec<*const std::ffi::c_char> = args.iter().map(|a| a.as_ptr()).collect();
        // SAFETY: argv holds two NUL-terminated strings that live for the call; the option is
        // registered by the NVPTX target linked into this binary, so parsing cannot fail (a
        // failure would exit the process, which is why the option list is fixed here).
        unsafe {
            inkwell::llvm_sys::support::LLVMParseCommandLineOptions(
                argv.len() as i32,
                argv.as_ptr(),
                c"".as_ptr(),
            );
        }
    });
}

/// The NVPTX target machine for a target and a PTX version already checked against it.
fn target_machine(
    target: Target,
    ptx: PtxVersion,
    level: OptLevel,
) -> Result<TargetMachine, PtxError> {
    target.check_ptx(ptx)?;
    init_llvm();
    let triple = TargetTriple::create("nvptx64-nvidia-cuda");
    let llvm_target =
        inkwell::targets::Target::from_triple(&triple).map_err(|e| PtxError::Llvm {
            stage: "target",
            message: e.to_string(),
        })?;
    llvm_target
        .create_target_machine(
            &triple,
            target.name(),
            &ptx.llvm_feature(),
            level.codegen(),
            RelocMode::Default,
            CodeModel::Default,
        )
        .ok_or_else(|| PtxError::Llvm {
            stage: "target",
            message: format!("no target machine for {target}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module LLVM must reject (a block without a terminator) is an error value that carries
    /// LLVM's message.
    #[test]
    fn an_invalid_module_is_an_error_with_llvms_message() {
        let ctx = Context::create();
        let module = ctx.create_module("bad");
        let f = module.add_function("f", ctx.void_type().fn_type(&[], false), None);
        ctx.append_basic_block(f, "entry");
        let err = verify_module(&module).unwrap_err();
        let PtxError::Llvm { stage, message } = &err else {
            panic!("{err}")
        };
        assert_eq!(*stage, "verify");
        assert!(message.contains("terminator"), "{message}");
    }
}
