//! What the tilc-cuda tests share: the hand-written PTX kernels, opening the device or saying
//! why not, and finding ptxas.

#![allow(dead_code)] // Each test binary uses a different part of this module.

use std::path::PathBuf;

use tilc_cuda::{CudaError, Device};

/// The test kernels: PTX ISA 8.0 for sm_90 (see the file for what each computes).
pub const KERNELS_PTX: &str = include_str!("kernels.ptx");

/// The kernels `KERNELS_PTX` defines, sorted.
pub const KERNEL_NAMES: [&str; 5] = [
    "echo_params",
    "smem_reverse",
    "thread_ids",
    "unpack_bits",
    "vadd_f32",
];

/// Device 0, or `None` after printing why the test is skipped. A machine without a driver (or
/// without a GPU) skips; any other failure to open fails the test. With `TILC_REQUIRE_GPU` set
/// (the GPU check script sets it) a missing GPU fails instead of skipping, so that a GPU run
/// cannot pass by skipping everything.
pub fn device_or_skip(test: &str) -> Option<Device> {
    match Device::open(0) {
        Ok(device) => Some(device),
        Err(err) if err.is_unavailable() => {
            assert!(
                std::env::var_os("TILC_REQUIRE_GPU").is_none(),
                "TILC_REQUIRE_GPU is set, but: {err}"
            );
            let reason = match err {
                CudaError::NoDriver { .. } => "no CUDA driver",
                _ => "no CUDA device",
            };
            println!("skipped: {reason} ({test}): {err}");
            None
        }
        Err(err) => panic!("opening CUDA device 0 failed: {err}"),
    }
}

/// The ptxas to check PTX with: `$TILC_PTXAS`, else the copy the repository's set-up installs
/// under `.tools/`, else `None`.
pub fn ptxas() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("TILC_PTXAS") {
        return Some(PathBuf::from(path));
    }
    let bundled =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.tools/nvcc/nvidia/cu13/bin/ptxas");
    bundled.is_file().then_some(bundled)
}

/// Assembles `ptx` for `arch` with ptxas into a cubin, returning its bytes, or ptxas's
/// complaint.
pub fn assemble(
    ptxas: &std::path::Path,
    ptx: &str,
    arch: &str,
    tag: &str,
) -> Result<Vec<u8>, String> {
    let dir = std::env::temp_dir().join(format!("tilc-cuda-test-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let source = dir.join("kernels.ptx");
    let cubin = dir.join(format!("kernels.{arch}.cubin"));
    std::fs::write(&source, ptx).map_err(|e| e.to_string())?;
    let output = std::process::Command::new(ptxas)
        .arg(format!("-arch={arch}"))
        .arg(&source)
        .arg("-o")
        .arg(&cubin)
        .output()
        .map_err(|e| format!("running {}: {e}", ptxas.display()))?;
    let result = if output.status.success() {
        std::fs::read(&cubin).map_err(|e| e.to_string())
    } else {
        Err(format!(
            "ptxas -arch={arch} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    };
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// A small deterministic generator (SplitMix64), so that test data is reproducible from a seed.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A float in [-8, 8) with 12 significant bits, so sums are exact in f32.
    pub fn small_f32(&mut self) -> f32 {
        ((self.next_u64() >> 52) as f32 - 2048.0) / 256.0
    }
}

pub fn f32s_to_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub fn bytes_to_f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

pub fn bytes_to_u32s(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}
