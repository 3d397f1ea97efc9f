//! Kernel launch: a [`LaunchSpec`] (grid, block, dynamic shared memory) and a slice of
//! [`KernelArg`]s, checked against the kernel and the device before the driver sees them.
//!
//! The checks turn the driver's bare `CUDA_ERROR_INVALID_VALUE` into a sentence: which
//! dimension is out of range, how much shared memory was asked for against how much there is,
//! which argument has the wrong size (where the driver can report parameter sizes). Dynamic
//! shared memory above the 48 KiB default is opted into here, per kernel, on demand.

use std::ffi::c_void;

use cudarc::driver::result;
use cudarc::driver::sys::CUfunction_attribute as FnAttr;

use crate::error::CudaError;
use crate::memory::DeviceBuffer;
use crate::module::Function;

/// How to launch a kernel: blocks in the grid, threads in a block, and dynamic shared memory
/// per block in bytes (on top of the kernel's static shared memory).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LaunchSpec {
    pub grid: [u32; 3],
    pub block: [u32; 3],
    pub shared_bytes: u32,
}

impl LaunchSpec {
    /// A one-dimensional launch of `grid` blocks of `block` threads, without dynamic shared memory.
    pub fn linear(grid: u32, block: u32) -> LaunchSpec {
        LaunchSpec {
            grid: [grid, 1, 1],
            block: [block, 1, 1],
            shared_bytes: 0,
        }
    }

    pub fn with_shared_bytes(self, shared_bytes: u32) -> LaunchSpec {
        LaunchSpec {
            shared_bytes,
            ..self
        }
    }

    pub fn threads_per_block(&self) -> u64 {
        self.block.iter().map(|&d| u64::from(d)).product()
    }

    /// Checks the limits every CUDA device since compute capability 3.0 shares: no zero
    /// dimension, a block of at most 1024 × 1024 × 64 and 1024 threads, a grid of at most
    /// (2³¹ − 1) × 65535 × 65535 blocks. Device- and kernel-specific limits are checked at launch.
    pub fn check(&self) -> Result<(), String> {
        const AXES: [&str; 3] = ["x", "y", "z"];
        const MAX_BLOCK: [u32; 3] = [1024, 1024, 64];
        const MAX_GRID: [u32; 3] = [i32::MAX as u32, 65535, 65535];
        for axis in 0..3 {
            if self.grid[axis] == 0 || self.block[axis] == 0 {
                return Err(format!(
                    "grid {:?} and block {:?} must have no zero dimension",
                    self.grid, self.block
                ));
            }
            if self.block[axis] > MAX_BLOCK[axis] {
                return Err(format!(
                    "block.{} = {} exceeds the limit of {}",
                    AXES[axis], self.block[axis], MAX_BLOCK[axis]
                ));
            }
            if self.grid[axis] > MAX_GRID[axis] {
                return Err(format!(
                    "grid.{} = {} exceeds the limit of {}",
                    AXES[axis], self.grid[axis], MAX_GRID[axis]
                ));
            }
        }
        if self.threads_per_block() > 1024 {
            return Err(format!(
                "block {:?} has {} threads; a block has at most 1024",
                self.block,
                self.threads_per_block()
            ));
        }
        Ok(())
    }
}

/// One kernel argument, passed by value as the kernel's parameter of the same size.
#[derive(Clone, Copy, Debug)]
pub enum KernelArg<'a> {
    I32(i32),
    I64(i64),
    U32(u32),
    U64(u64),
    F32(f32),
    F64(f64),
    /// The device address of a buffer (a `.u64` / pointer parameter).
    Ptr(&'a DeviceBuffer),
}

impl KernelArg<'_> {
    /// The size the kernel's parameter must have.
    pub fn size_bytes(&self) -> usize {
        match self {
            KernelArg::I32(_) | KernelArg::U32(_) | KernelArg::F32(_) => 4,
            KernelArg::I64(_) | KernelArg::U64(_) | KernelArg::F64(_) | KernelArg::Ptr(_) => 8,
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            KernelArg::I32(_) => "i32",
            KernelArg::I64(_) => "i64",
            KernelArg::U32(_) => "u32",
            KernelArg::U64(_) => "u64",
            KernelArg::F32(_) => "f32",
            KernelArg::F64(_) => "f64",
            KernelArg::Ptr(_) => "pointer",
        }
    }

    /// The bytes the driver copies into the parameter, in an 8-byte slot (the first
    /// `size_bytes` are used).
    fn slot(&self) -> [u8; 8] {
        let mut slot = [0u8; 8];
        let bytes: &[u8] = match self {
            KernelArg::I32(v) => &v.to_ne_bytes(),
            KernelArg::I64(v) => &v.to_ne_bytes(),
            KernelArg::U32(v) => &v.to_ne_bytes(),
            KernelArg::U64(v) => &v.to_ne_bytes(),
            KernelArg::F32(v) => &v.to_ne_bytes(),
            KernelArg::F64(v) => &v.to_ne_bytes(),
            KernelArg::Ptr(buffer) => &buffer.device_address().to_ne_bytes(),
        };
        slot[..bytes.len()].copy_from_slice(bytes);
        slot
    }
}

impl Function {
    /// Queues the kernel on its device's stream. Returns once the launch is queued; errors the
    /// kernel itself raises (a fault) surface at the next synchronising call, such as
    /// [`crate::Device::synchronize`] or a download.
    ///
    /// This is safe in the Rust sense, though the runtime cannot check what the kernel does
    /// with its pointers: kernels only see device memory, so a wrong kernel can corrupt device
    /// buffers or fault (and a fault leaves the device unusable for this process), but it
    /// cannot touch host memory. Every pointer argument must be a buffer of this function's
    /// own [`crate::Device`] handle, which keeps its memory alive until the kernel is done.
    pub fn launch(&self, spec: &LaunchSpec, args: &[KernelArg<'_>]) -> Result<(), CudaError> {
        let kernel = self.name();
        let invalid = |reason: String| CudaError::InvalidLaunch {
            kernel: kernel.to_owned(),
            reason,
        };
        spec.check().map_err(invalid)?;

        let attributes = self.attributes()?;
        if spec.threads_per_block() > u64::from(attributes.max_threads_per_block) {
            return Err(invalid(format!(
                "block {:?} has {} threads, but this kernel allows at most {} per block \
                 (it uses {} registers per thread)",
                spec.block,
                spec.threads_per_block(),
                attributes.max_threads_per_block,
                attributes.registers_per_thread
            )));
        }
        let device_limit = self.device().info().max_shared_bytes_per_block;
        let total_shared = u64::from(spec.shared_bytes) + u64::from(attributes.static_shared_bytes);
        if total_shared > u64::from(device_limit) {
            return Err(invalid(format!(
                "it needs {} bytes of shared memory per block ({} dynamic + {} static), \
                 but this device allows at most {device_limit}",
                total_shared, spec.shared_bytes, attributes.static_shared_bytes
            )));
        }
        self.check_args(args)?;
        self.allow_dynamic_shared(spec.shared_bytes)?;

        let slots: Vec<[u8; 8]> = args.iter().map(KernelArg::slot).collect();
        // The driver reads each parameter through a pointer; it never writes through them.
        let mut params: Vec<*mut c_void> = slots
            .iter()
            .map(|slot| slot.as_ptr().cast_mut().cast())
            .collect();
        let device = self.device();
        device.bind()?;
        let [gx, gy, gz] = spec.grid;
        let [bx, by, bz] = spec.block;
        // SAFETY: `params` holds one pointer per kernel parameter, each to a slot at least as
        // large as the parameter (checked against the driver's parameter sizes where it
        // reports them), alive until `cuLaunchKernel` has copied them, which it does before
        // returning. Pointer arguments are device addresses of buffers that belong to this
        // device handle (checked in `check_args`); their memory is freed in stream order, after
        // this kernel. The dimensions and shared memory were checked against the limits above.
        unsafe {
            result::launch_kernel(
                self.inner.raw,
                (gx, gy, gz),
                (bx, by, bz),
                spec.shared_bytes,
                device.stream().cu_stream(),
                &mut params,
            )
        }
        .map_err(|e| {
            CudaError::driver(
                format!(
                    "launching kernel `{kernel}` with grid {:?}, block {:?}",
                    spec.grid, spec.block
                ),
                e,
            )
        })
    }

    fn check_args(&self, args: &[KernelArg<'_>]) -> Result<(), CudaError> {
        let kernel = self.name();
        let mismatch = |reason: String| CudaError::ArgumentMismatch {
            kernel: kernel.to_owned(),
            reason,
        };
        for (index, arg) in args.iter().enumerate() {
            if let KernelArg::Ptr(buffer) = arg
                && !buffer.device().is_same(self.device())
            {
                return Err(CudaError::WrongDevice {
                    what: format!("argument {index} of kernel `{kernel}`"),
                });
            }
        }
        let Some(sizes) = self.param_sizes() else {
            return Ok(());
        };
        if sizes.len() != args.len() {
            return Err(mismatch(format!(
                "it takes {} parameters, but {} arguments were given",
                sizes.len(),
                args.len()
            )));
        }
        for (index, (arg, &size)) in args.iter().zip(sizes).enumerate() {
            if arg.size_bytes() != size {
                return Err(mismatch(format!(
                    "argument {index} is {} ({} bytes), but parameter {index} takes {size} bytes",
                    arg.type_name(),
                    arg.size_bytes()
                )));
            }
        }
        Ok(())
    }

    /// Raises the kernel's dynamic shared memory limit to `bytes` when it is above the current
    /// limit (48 KiB unless raised before). Only ever raises, under a lock, so that two threads
    /// launching with different sizes cannot lower the limit under each other.
    fn allow_dynamic_shared(&self, bytes: u32) -> Result<(), CudaError> {
        let mut limit = self
            .inner
            .dynamic_shared_limit
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if bytes > *limit {
            self.set_attribute(
                FnAttr::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                bytes,
            )?;
            *limit = bytes;
        }
        Ok(())
    }
}
