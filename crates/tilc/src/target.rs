//! [`Target`]: where a kernel runs. Knows which targets exist and which this build supports, and
//! which GPU target the machine's device is (asking `tilc-cuda`, which answers 'no CUDA driver
//! found' rather than failing where there is none).

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

/// Whether kernels can be compiled for and launched on GPUs: through the SIMT lowering, PTX and
/// the CUDA driver. Compiling needs no GPU; launching needs a driver and a device of the
/// target's architecture.
const GPU_PATH_SUPPORTED: bool = true;

impl Target {
    /// Every target, in the order `--target` lists them.
    pub const ALL: [Target; 5] = [Target::Interp, Target::Cpu, Target::Sm90a, Target::Sm100a, Target::Sm120a];

    /// The best target of this machine: the GPU when a CUDA driver and a GPU of an architecture
    /// tilc compiles for exist, else [`Target::Cpu`]. Opens the driver (once per process).
    pub fn detect() -> Target {
        if GPU_PATH_SUPPORTED && let Some(gpu) = Target::gpu() {
            return gpu;
        }
        Target::Cpu
    }

    /// The GPU target matching device 0, when a CUDA driver and a device exist (this opens the
    /// driver, which takes a moment); `None` without a driver, a device, or a matching
    /// architecture. [`Target::for_device`] says which.
    pub fn gpu() -> Option<Target> {
        Target::for_device().ok()
    }

    /// The GPU target of device 0, or why there is none: 'no CUDA driver found: …', no device,
    /// or an architecture tilc does not compile for (it compiles for compute capability 9.0,
    /// 10.0 and 12.0 exactly: the `a` targets run only there).
    pub fn for_device() -> Result<Target, String> {
        let device = crate::compiler::gpu::shared_device().map_err(|e| e.to_string())?;
        let info = device.info();
        crate::compiler::gpu::target_of(info).ok_or_else(|| {
            format!(
                "device {} is {} ({}); tilc compiles for sm_90a (compute capability 9.0), sm_100a (10.0) and sm_120a (12.0)",
                info.ordinal,
                info.name,
                info.arch()
            )
        })
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
