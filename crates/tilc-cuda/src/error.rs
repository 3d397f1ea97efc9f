//! [`CudaError`]: every way the CUDA runtime can fail, worded for the person running tilc.
//!
//! Driver failures keep the driver's own name for the code (`CUDA_ERROR_INVALID_PTX`), its
//! description, what tilc was doing at the time, and for the codes that have a usual cause, a
//! hint saying what to do about it. This module must not call anything that could fail: building
//! an error never touches the device except to ask the driver for the name of a code.

use cudarc::driver::{DriverError, sys::CUresult};

/// An error from the CUDA runtime.
#[derive(Debug, thiserror::Error)]
pub enum CudaError {
    /// `libcuda.so` (the NVIDIA driver's user-space library) could not be loaded, so no CUDA
    /// work is possible on this machine. Tests that need a GPU skip on this error.
    #[error(
        "no CUDA driver found: libcuda.so could not be loaded; install the NVIDIA driver, or add \
         the folder that holds libcuda.so.1 to LD_LIBRARY_PATH{}",
        detail_suffix(detail)
    )]
    NoDriver {
        /// What the loader reported, when it said anything.
        detail: Option<String>,
    },

    /// The driver loaded, but there is no device with this ordinal (often: a machine with the
    /// driver library installed but no GPU, or `CUDA_VISIBLE_DEVICES` hiding it).
    #[error(
        "no CUDA device {ordinal}: the driver reports {count} device(s){}",
        if *count == 0 { "; check that a GPU is attached and CUDA_VISIBLE_DEVICES does not hide it" } else { "" }
    )]
    NoDevice { ordinal: usize, count: usize },

    /// A driver call failed.
    #[error(
        "CUDA driver error while {action}: {name}: {description}{}",
        hint_suffix(hint)
    )]
    Driver {
        /// What tilc was doing, as a phrase: "allocating 4096 bytes".
        action: String,
        /// The numeric `CUresult`.
        code: u32,
        /// The driver's name for the code, such as `CUDA_ERROR_OUT_OF_MEMORY`.
        name: String,
        /// The driver's description of the code.
        description: String,
        /// What usually causes this code and what to do, where that is known.
        hint: Option<&'static str>,
    },

    /// A call into the driver library panicked inside cudarc (for example, the driver is older
    /// than a function tilc asked for). Caught so that it reaches the user as an error.
    #[error("the CUDA driver library failed while {action}: {message}")]
    DriverPanic { action: String, message: String },

    /// PTX is passed to the driver as a C string, so it cannot contain a NUL byte.
    #[error("the PTX text contains a NUL byte at offset {offset}; PTX must be plain text")]
    PtxContainsNul { offset: usize },

    /// Bytes given as a cubin are neither an ELF cubin nor a fatbin.
    #[error("not a cubin or fatbin ({len} bytes): {reason}")]
    NotACubin { len: usize, reason: String },

    /// The driver refused to load a module; `log` is the JIT compiler's error log, if any.
    #[error(
        "the CUDA driver could not load the {kind} module: {name}: {description}{}{}",
        hint_suffix(hint),
        log_suffix(log)
    )]
    ModuleLoad {
        /// `"PTX"` or `"cubin"`.
        kind: &'static str,
        code: u32,
        name: String,
        description: String,
        hint: Option<&'static str>,
        log: String,
    },

    /// `Module::function` was asked for a kernel the module does not define.
    #[error("kernel `{name}` not found in the module; {}", list_kernels(available))]
    KernelNotFound {
        name: String,
        /// The kernels the module does define; `None` where they could not be listed (a cubin
        /// on a driver older than CUDA 12.4).
        available: Option<Vec<String>>,
    },

    /// A launch that cannot run as specified (zero or too many threads, too much shared memory).
    #[error("cannot launch kernel `{kernel}`: {reason}")]
    InvalidLaunch { kernel: String, reason: String },

    /// The arguments do not match the kernel's parameters.
    #[error("wrong arguments for kernel `{kernel}`: {reason}")]
    ArgumentMismatch { kernel: String, reason: String },

    /// A buffer or tensor from one device was used with another.
    #[error("{what} belongs to another CUDA device or context than the one it is used with")]
    WrongDevice { what: String },

    /// A copy whose source and destination differ in size.
    #[error("{what}: expected {expected} bytes, got {found}")]
    LengthMismatch {
        what: String,
        expected: usize,
        found: usize,
    },

    /// A tensor whose shape or byte size cannot be represented.
    #[error("invalid device tensor: {reason}")]
    InvalidTensor { reason: String },

    /// A timing request that cannot produce a measurement.
    #[error("invalid timing request: {reason}")]
    InvalidTiming { reason: String },
}

impl CudaError {
    /// Wraps a driver error with what tilc was doing when it happened.
    pub(crate) fn driver(action: impl Into<String>, err: DriverError) -> Self {
        let (name, description) = describe(err);
        CudaError::Driver {
            action: action.into(),
            code: err.0 as u32,
            name,
            description,
            hint: hint(err.0),
        }
    }

    /// The driver's numeric code, for driver and module-load errors.
    pub fn driver_code(&self) -> Option<u32> {
        match self {
            CudaError::Driver { code, .. } | CudaError::ModuleLoad { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether this error means "no GPU here" (no driver library, or no such device), the case
    /// in which GPU tests skip instead of failing.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            CudaError::NoDriver { .. } | CudaError::NoDevice { .. }
        )
    }
}

/// The driver's name and description for a code. Both fall back to the numeric code when the
/// driver cannot name it (a code newer than the driver).
pub(crate) fn describe(err: DriverError) -> (String, String) {
    let name = err
        .error_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|_| format!("CUresult {}", err.0 as u32));
    let description = err
        .error_string()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown error".to_owned());
    (name, description)
}

/// What usually causes a driver code, for the codes whose raw description does not say.
pub(crate) fn hint(code: CUresult) -> Option<&'static str> {
    use CUresult::*;
    Some(match code {
        CUDA_ERROR_OUT_OF_MEMORY => {
            "the device is out of memory; free buffers or use smaller shapes"
        }
        CUDA_ERROR_ILLEGAL_ADDRESS
        | CUDA_ERROR_LAUNCH_FAILED
        | CUDA_ERROR_ILLEGAL_INSTRUCTION
        | CUDA_ERROR_MISALIGNED_ADDRESS
        | CUDA_ERROR_INVALID_ADDRESS_SPACE
        | CUDA_ERROR_INVALID_PC
        | CUDA_ERROR_HARDWARE_STACK_ERROR => {
            "a kernel faulted; the CUDA context is now unusable and every later call in this \
             process fails; check the kernel's indexing against the sizes of the buffers passed to it"
        }
        CUDA_ERROR_LAUNCH_TIMEOUT => {
            "the kernel ran longer than the display watchdog allows; run it on a GPU without a display"
        }
        CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES => {
            "the block needs more registers or shared memory than one SM has; use fewer threads per block"
        }
        CUDA_ERROR_UNSUPPORTED_PTX_VERSION => {
            "the PTX's .version is newer than this driver understands; update the NVIDIA driver \
             or build for an older PTX version"
        }
        CUDA_ERROR_NO_BINARY_FOR_GPU => {
            "the module holds no code for this GPU's architecture; build it for this device's sm_XY \
             (see DeviceInfo::arch) or ship PTX"
        }
        CUDA_ERROR_INVALID_PTX => {
            "the PTX did not compile for this GPU; the JIT log below says why"
        }
        CUDA_ERROR_INVALID_IMAGE => "the bytes are not a valid cubin for this driver",
        CUDA_ERROR_NOT_INITIALIZED | CUDA_ERROR_DEINITIALIZED => {
            "the driver is not initialised; open the device with Device::open first"
        }
        CUDA_ERROR_INVALID_DEVICE => "the device ordinal is out of range",
        _ => return None,
    })
}

fn detail_suffix(detail: &Option<String>) -> String {
    detail
        .as_ref()
        .map(|d| format!(" ({d})"))
        .unwrap_or_default()
}

fn hint_suffix(hint: &Option<&'static str>) -> String {
    hint.map(|h| format!("\n  hint: {h}")).unwrap_or_default()
}

fn log_suffix(log: &str) -> String {
    let log = log.trim();
    if log.is_empty() {
        String::new()
    } else {
        format!("\n  JIT log:\n{}", indent(log, "    "))
    }
}

fn indent(text: &str, prefix: &str) -> String {
    text.lines()
        .map(|l| format!("{prefix}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn list_kernels(available: &Option<Vec<String>>) -> String {
    match available {
        None => {
            "the driver is too old to list the kernels a cubin defines (CUDA 12.4 can)".to_owned()
        }
        Some(names) if names.is_empty() => "the module defines no kernels".to_owned(),
        Some(names) => {
            let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            format!("the module defines {}", quoted.join(", "))
        }
    }
}
