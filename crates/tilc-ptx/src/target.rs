//! The GPU targets: their LLVM cpu names, the PTX ISA versions each accepts, and which hardware
//! features each has.
//!
//! LLVM's NVPTX backend calls `exit(1)` when asked for a (cpu, PTX version) pair it rejects, so
//! every pair is checked here, against the same tables LLVM 22 uses, before a target machine is
//! made. This module knows nothing of the SIMT IR.

use std::fmt;
use std::str::FromStr;

use crate::error::PtxError;

/// A GPU architecture tilc emits PTX for. The `a` suffix selects the architecture-specific
/// instructions (wgmma on sm_90a, tcgen05 on sm_100a), so PTX for one target runs only on GPUs of
/// exactly that compute capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// Hopper (H100, H200): compute capability 9.0.
    Sm90a,
    /// Blackwell data centre (B200): compute capability 10.0.
    Sm100a,
    /// Blackwell consumer (RTX 50xx): compute capability 12.0.
    Sm120a,
}

/// A PTX ISA version, such as 8.0 (written `ptx80` in LLVM's feature strings).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PtxVersion {
    /// Major version.
    pub major: u8,
    /// Minor version.
    pub minor: u8,
}

impl PtxVersion {
    /// `major.minor`.
    pub const fn new(major: u8, minor: u8) -> PtxVersion {
        PtxVersion { major, minor }
    }

    /// The LLVM subtarget feature that selects this version, such as `+ptx86`.
    pub fn llvm_feature(self) -> String {
        format!("+ptx{}{}", self.major, self.minor)
    }
}

impl fmt::Display for PtxVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The PTX versions from 8.0 up that LLVM 22's NVPTX backend knows (`llc -mattr=help`); older
/// ones cannot express any of the targets.
pub const LLVM_PTX_VERSIONS: [PtxVersion; 10] = [
    PtxVersion::new(8, 0),
    PtxVersion::new(8, 1),
    PtxVersion::new(8, 2),
    PtxVersion::new(8, 3),
    PtxVersion::new(8, 4),
    PtxVersion::new(8, 5),
    PtxVersion::new(8, 6),
    PtxVersion::new(8, 7),
    PtxVersion::new(8, 8),
    PtxVersion::new(9, 0),
];

/// A hardware feature an instruction may need.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Feature {
    /// `mma.sync` with f16/bf16/s8 operands (sm_80+).
    MmaSync,
    /// The fp8 conversions `cvt.*.e4m3x2` / `e5m2x2` (sm_89+).
    Fp8,
    /// `mma.sync` with e4m3/e5m2 operands (sm_89+, PTX 8.4+).
    Fp8Mma,
    /// `ldmatrix` (sm_75+).
    Ldmatrix,
    /// `cp.async` (sm_80+).
    CpAsync,
    /// Half-precision bf16 `add`/`mul`/`fma` without conversion (sm_90+).
    Bf16Arith,
    /// Warp-group MMA, `wgmma.mma_async` (sm_90a only).
    Wgmma,
    /// The Tensor Memory Accelerator, `cp.async.bulk.tensor` (sm_90+).
    Tma,
    /// Thread-block clusters (sm_90+).
    Clusters,
    /// Fifth-generation tensor cores, `tcgen05.*` (sm_100a only; not sm_120a).
    Tcgen05,
}

impl Feature {
    /// Every feature, for tables and tests.
    pub const ALL: [Feature; 10] = [
        Feature::MmaSync,
        Feature::Fp8,
        Feature::Fp8Mma,
        Feature::Ldmatrix,
        Feature::CpAsync,
        Feature::Bf16Arith,
        Feature::Wgmma,
        Feature::Tma,
        Feature::Clusters,
        Feature::Tcgen05,
    ];
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Feature::MmaSync => "mma.sync",
            Feature::Fp8 => "fp8 (e4m3/e5m2) conversions",
            Feature::Fp8Mma => "fp8 (e4m3/e5m2) mma.sync",
            Feature::Ldmatrix => "ldmatrix",
            Feature::CpAsync => "cp.async",
            Feature::Bf16Arith => "bf16 arithmetic",
            Feature::Wgmma => "wgmma",
            Feature::Tma => "TMA (cp.async.bulk.tensor)",
            Feature::Clusters => "thread-block clusters",
            Feature::Tcgen05 => "tcgen05",
        })
    }
}

impl Feature {
    /// The oldest PTX version whose ISA has the feature on the targets here (ptxas rejects it
    /// in older PTX even where the hardware has it).
    pub fn min_ptx(self) -> PtxVersion {
        match self {
            Feature::Fp8Mma => PtxVersion::new(8, 4),
            Feature::Tcgen05 => PtxVersion::new(8, 6),
            _ => PtxVersion::new(8, 0),
        }
    }
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 3] = [Target::Sm90a, Target::Sm100a, Target::Sm120a];

    /// The name used by LLVM (`-mcpu`), ptxas (`-arch`) and PTX's `.target`.
    pub fn name(self) -> &'static str {
        match self {
            Target::Sm90a => "sm_90a",
            Target::Sm100a => "sm_100a",
            Target::Sm120a => "sm_120a",
        }
    }

    /// Compute capability (major, minor) of the GPUs that run this target's code.
    pub fn compute_capability(self) -> (u32, u32) {
        match self {
            Target::Sm90a => (9, 0),
            Target::Sm100a => (10, 0),
            Target::Sm120a => (12, 0),
        }
    }

    /// The most shared memory one block may use, in bytes (static and dynamic together; the
    /// CUDA programming guide's table of compute capabilities: 227 KiB on 9.0 and 10.0, 99 KiB
    /// on 12.0). Above 48 KiB the launcher must raise the kernel's
    /// `CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES` first.
    pub fn max_shared_bytes_per_block(self) -> u32 {
        match self {
            Target::Sm90a | Target::Sm100a => 227 * 1024,
            Target::Sm120a => 99 * 1024,
        }
    }

    /// The most threads one block may have (1024 on every target here).
    pub fn max_threads_per_block(self) -> u32 {
        1024
    }

    /// The oldest PTX version that can name this target (PTX ISA "Target ISA notes"; LLVM 22
    /// enforces the same minimums and exits the process on a lower one).
    pub fn min_ptx(self) -> PtxVersion {
        match self {
            Target::Sm90a => PtxVersion::new(8, 0),
            Target::Sm100a => PtxVersion::new(8, 6),
            Target::Sm120a => PtxVersion::new(8, 7),
        }
    }

    /// Checks that `version` can be used for this target with LLVM 22: known to LLVM and not
    /// below the target's minimum.
    pub fn check_ptx(self, version: PtxVersion) -> Result<(), PtxError> {
        if !LLVM_PTX_VERSIONS.contains(&version) {
            let known: Vec<String> = LLVM_PTX_VERSIONS.iter().map(|v| v.to_string()).collect();
            return Err(PtxError::BadPtxVersion {
                target: self,
                version,
                reason: format!("LLVM 22 knows PTX versions {}", known.join(", ")),
            });
        }
        if version < self.min_ptx() {
            return Err(PtxError::BadPtxVersion {
                target: self,
                version,
                reason: format!("{} needs PTX {} or newer", self.name(), self.min_ptx()),
            });
        }
        Ok(())
    }

    /// Whether this target has `feature`.
    pub fn supports(self, feature: Feature) -> bool {
        match feature {
            Feature::MmaSync
            | Feature::Fp8
            | Feature::Fp8Mma
            | Feature::Ldmatrix
            | Feature::CpAsync => true,
            Feature::Bf16Arith | Feature::Tma | Feature::Clusters => true,
            Feature::Wgmma => self == Target::Sm90a,
            Feature::Tcgen05 => self == Target::Sm100a,
        }
    }

    /// `Ok` when this target has `feature`; otherwise the error that names `instruction` and
    /// this target.
    pub fn require(self, feature: Feature, instruction: &str) -> Result<(), PtxError> {
        if self.supports(feature) {
            Ok(())
        } else {
            Err(PtxError::Unsupported {
                instruction: instruction.to_string(),
                feature,
                target: self,
            })
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Target {
    type Err = PtxError;

    /// Parses `sm_90a`, `sm_100a` or `sm_120a`.
    fn from_str(s: &str) -> Result<Target, PtxError> {
        Target::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| PtxError::UnknownTarget(s.to_string()))
    }
}
