//! Runs a lowered kernel in the SIMT emulator on host tensors, with the interpreter's argument
//! rules: the same [`ArgValue`]s, the same shape checks and grid, outputs written back.
//!
//! Tensors travel as packed bit streams padded with zero bytes to a multiple of 16 bytes (the
//! launch contract of [`crate::lower`]).

use crate::Lowered;
use tilc_dtype::{DType, Overflow, Rounding};
use tilc_simt::{Arg, Launch};
use tilc_vm::{ArgValue, HostTensor, Kernel, Param, RunError};

/// Counters of one emulated launch.
#[derive(Clone, Copy, Debug)]
pub struct EmuSummary {
    /// The grid that ran.
    pub grid: [u32; 3],
    /// Instructions issued per warp, summed.
    pub warp_insts: u64,
    /// Instructions executed per thread, summed.
    pub thread_insts: u64,
    /// Shared-memory wavefronts of loads and stores ([`tilc_simt::RunStats::shared_wavefronts`]).
    pub shared_wavefronts: u64,
    /// The same accesses' wavefronts without bank conflicts.
    pub shared_ideal_wavefronts: u64,
}

/// The bytes of a tensor as the lowered kernel reads them.
pub fn tensor_buffer(t: &HostTensor) -> Vec<u8> {
    let mut bytes = t.to_packed();
    let padded = bytes.len().div_ceil(16).max(1) * 16;
    bytes.resize(padded, 0);
    bytes
}

/// The raw bits of a scalar argument in the carrier of `d`.
fn scalar_bits(d: DType, a: &ArgValue) -> u64 {
    let as_float = |x: f64| -> u64 {
        if d.bits() == 64 {
            x.to_bits()
        } else {
            // The interpreter rounds a float scalar to its dtype; the carrier is the f32 of it.
            let code = d.encode(x, Rounding::NearestEven, Overflow::NonSaturating);
            u64::from((d.decode(code) as f32).to_bits())
        }
    };
    match a {
        ArgValue::Int(i) if d.is_float() => as_float(*i as f64),
        ArgValue::Int(i) => {
            if d.bits() == 64 {
                *i as u64
            } else {
                u64::from(*i as u32)
            }
        }
        ArgValue::Float(x) => as_float(*x),
        ArgValue::Tensor(_) => 0,
    }
}

/// Runs `lowered` (the lowering of `k`) over the grid that `args` give; `out` tensors are
/// replaced by the results. Argument errors are the interpreter's; emulator errors (out of
/// bounds, races, divergent barriers) come back as a `RunError` naming the thread.
pub fn run(k: &Kernel, lowered: &Lowered, args: &mut [ArgValue]) -> Result<EmuSummary, RunError> {
    let launch = tilc_vm::interp::check_args(k, args)?;
    let mut emu_args: Vec<Arg> = k
        .params
        .iter()
        .zip(args.iter())
        .map(|(p, a)| match (p, a) {
            (Param::Tensor(_), ArgValue::Tensor(t)) => Arg::Buffer(tensor_buffer(t)),
            (Param::Scalar(v), a) => Arg::Scalar(scalar_bits(k.ty(*v).dtype(), a)),
            (Param::Tensor(_), _) => Arg::Buffer(Vec::new()),
        })
        .collect();
    let stats = tilc_simt::run(&lowered.kernel, Launch { grid: launch.grid, parallel: true }, &mut emu_args).map_err(|e| RunError {
        message: format!("SIMT emulator: {e}"),
        span: None,
        block: e.block,
    })?;
    for (i, p) in k.params.iter().enumerate() {
        if let (Param::Tensor(g), Arg::Buffer(bytes)) = (p, &emu_args[i])
            && k.globals[*g].out
            && let ArgValue::Tensor(t) = &args[i]
        {
            let out = HostTensor::from_packed(t.dtype, t.shape.clone(), bytes).ok_or_else(|| RunError {
                message: format!("internal error: the emulator returned a short buffer for `{}`", k.globals[*g].name),
                span: None,
                block: None,
            })?;
            args[i] = ArgValue::Tensor(out);
        }
    }
    Ok(EmuSummary {
        grid: launch.grid,
        warp_insts: stats.warp_insts,
        thread_insts: stats.thread_insts,
        shared_wavefronts: stats.shared_wavefronts,
        shared_ideal_wavefronts: stats.shared_ideal_wavefronts,
    })
}
