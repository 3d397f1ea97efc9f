//! [`Target`]: where a kernel runs. Knows which targets exist and which this build supports; it
//! asks `tilc-cuda` about a GPU only when the GPU path exists.

use std::fmt;
use std::str::FromStr;

/// Where a compiled kernel runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// The VM interpreter: the reference semantics, slow, runs anything.
    Interp,
    /// Native code for this CPU through Cranelift, blocks in parallel on all cores;
    /// bit-identical to [`Target::Interp`].
    Cpu,
    /// NVIDIA Hopper (`sm_90a`).
    Sm90a,
    /// NVIDIA Blackwell data-centre parts (`sm_100a`).
    Sm100a,
    /// NVIDIA Blackwell consumer parts (`sm_120a`).
    Sm120a,
}

/// Whether kernels can be compiled for and launched on GPUs yet. They cannot until the VM →
/// SIMT lowering lands; [`Target::detect`] then starts asking the driver.
const GPU_PATH_SUPPORTED: bool = false;

/// The message every GPU target gives until then.
pub(crate) const GPU_NOT_YET: &str = "not yet supported: the GPU path lands with the SIMT lowering";

impl Target {
    /// Every target, in the order `--target` lists them.
    pub const ALL: [Target; 5] = [Target::Interp, Target::Cpu, Target::Sm90a, Target::Sm100a, Target::Sm120a];

    /// The best target of this machine: the GPU when a CUDA driver and a supported GPU exist and
    /// this build can compile for it, else [`Target::Cpu`]. Today that is always the CPU (the GPU
    /// path is not written yet), and no driver is loaded to find out.
    pub fn detect() -> Target {
        if GPU_PATH_SUPPORTED && let Some(gpu) = Target::gpu() {
            return gpu;
        }
        Target::Cpu
    }

    /// The GPU target matching device 0, when a CUDA driver and a device exist (this opens the
    /// driver, which takes a moment); `None` without a driver, a device, or a matching
    /// architecture.
    pub fn gpu() -> Option<Target> {
        let info = tilc_cuda::Device::available().ok()?;
        match info.compute_capability {
            (9, 0) => Some(Target::Sm90a),
            (10, 0) => Some(Target::Sm100a),
            (12, 0) => Some(Target::Sm120a),
            _ => None,
        }
    }

    /// The name `--target` and [`FromStr`] accept: `interp`, `cpu`, `sm_90a`, `sm_100a`, `sm_120a`.
    pub fn name(self) -> &'static str {
        match self {
            Target::Interp => "interp",
            Target::Cpu => "cpu",
            Target::Sm90a => "sm_90a",
            Target::Sm100a => "sm_100a",
            Target::Sm120a => "sm_120a",
        }
    }

    /// True for the NVIDIA targets.
    pub fn is_gpu(self) -> bool {
        matches!(self, Target::Sm90a | Target::Sm100a | Target::Sm120a)
    }

    /// True when this build can compile and launch kernels for the target.
    pub fn is_supported(self) -> bool {
        !self.is_gpu() || GPU_PATH_SUPPORTED
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Target, String> {
        let norm = s.trim().to_ascii_lowercase().replace('_', "");
        Target::ALL.into_iter().find(|t| t.name().replace('_', "") == norm).ok_or_else(|| {
            let names: Vec<&str> = Target::ALL.iter().map(|t| t.name()).collect();
            format!("unknown target `{s}` (targets: {})", names.join(", "))
        })
    }
}
