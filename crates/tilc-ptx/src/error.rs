//! [`PtxError`]: everything that can go wrong between a SIMT kernel and a cubin, as values.

use std::fmt;

use crate::target::{Feature, PtxVersion, Target};

/// An error of the PTX backend. Each variant's text says what went wrong in the user's terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PtxError {
    /// A target name that is not one of `sm_90a`, `sm_100a`, `sm_120a`.
    UnknownTarget(String),
    /// A PTX version LLVM does not know or the target cannot use.
    BadPtxVersion {
        /// The target asked for.
        target: Target,
        /// The version asked for.
        version: PtxVersion,
        /// Why it cannot be used.
        reason: String,
    },
    /// The kernel uses an instruction the target does not have.
    Unsupported {
        /// The instruction, as PTX spells it.
        instruction: String,
        /// The feature it needs.
        feature: Feature,
        /// The target that lacks it.
        target: Target,
    },
    /// The kernel needs more of a per-block resource (threads, shared memory) than the target
    /// has.
    Resources {
        /// Kernel name.
        kernel: String,
        /// The target.
        target: Target,
        /// What it needs and what the target allows.
        message: String,
    },
    /// The SIMT kernel failed verification (a bug in whatever produced it).
    InvalidKernel {
        /// Kernel name.
        kernel: String,
        /// The verifier's report.
        message: String,
    },
    /// Something in the kernel this backend cannot lower (a gap in the backend).
    Lowering {
        /// Kernel name.
        kernel: String,
        /// What could not be lowered.
        message: String,
    },
    /// LLVM rejected the module it was given (a bug in this backend) or failed to run.
    Llvm {
        /// Which step failed: "verify", "optimize", "codegen", "target".
        stage: &'static str,
        /// LLVM's message.
        message: String,
    },
    /// No ptxas was found.
    NoPtxas(String),
    /// ptxas could not be run, or it rejected the PTX.
    Ptxas {
        /// The target assembled for.
        target: Target,
        /// ptxas's exit status and output.
        message: String,
    },
}

impl fmt::Display for PtxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PtxError::UnknownTarget(s) => {
                write!(
                    f,
                    "unknown target `{s}`; the targets are sm_90a, sm_100a and sm_120a"
                )
            }
            PtxError::BadPtxVersion {
                target,
                version,
                reason,
            } => {
                write!(
                    f,
                    "PTX version {version} cannot be used for {target}: {reason}"
                )
            }
            PtxError::Unsupported {
                instruction,
                feature,
                target,
            } => write!(
                f,
                "`{instruction}` needs {feature}, which {target} does not have{}",
                match feature {
                    Feature::Wgmma => " (wgmma exists only on sm_90a)",
                    Feature::Tcgen05 => " (tcgen05 exists only on sm_100a)",
                    _ => "",
                }
            ),
            PtxError::Resources {
                kernel,
                target,
                message,
            } => write!(f, "kernel `{kernel}` cannot run on {target}: {message}"),
            PtxError::InvalidKernel { kernel, message } => {
                write!(f, "kernel `{kernel}` is not valid SIMT IR:\n{message}")
            }
            PtxError::Lowering { kernel, message } => {
                write!(f, "cannot lower kernel `{kernel}` to LLVM IR: {message}")
            }
            PtxError::Llvm { stage, message } => write!(f, "LLVM {stage} failed: {message}"),
            PtxError::NoPtxas(why) => write!(f, "no ptxas: {why}"),
            PtxError::Ptxas { target, message } => write!(f, "ptxas ({target}) failed: {message}"),
        }
    }
}

impl std::error::Error for PtxError {}
