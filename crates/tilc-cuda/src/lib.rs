//! `tilc-cuda`: the CUDA runtime of tilc, over the driver API through cudarc with dynamic
//! loading, and the only tilc crate that touches a GPU driver.
//!
//! - [`Device`]: opens a GPU (its primary context and one stream) and describes it
//!   ([`DeviceInfo`]); on a machine without `libcuda.so` it returns [`CudaError::NoDriver`],
//!   never a panic, so everything here builds and runs its tests without a GPU;
//! - [`Module`] and [`Function`]: code loaded from PTX (JIT-compiled by the driver) or from a
//!   cubin/fatbin, and its kernels, with the JIT log in the error when loading fails and the
//!   module's kernel names when a lookup fails;
//! - [`Function::launch`] with a [`LaunchSpec`] and [`KernelArg`]s, checked against the device's
//!   and the kernel's limits, opting into more than 48 KiB of dynamic shared memory on demand;
//! - [`DeviceBuffer`] (bytes) and [`DeviceTensor`] (packed elements of any [`tilc_dtype::DType`]);
//! - [`Device::time`]: GPU time of queued work from CUDA events, with the median.
//!
//! This crate must not know the tilc IRs, how kernels are compiled, or what an element's bits
//! mean: it moves bytes and launches what it is given.

mod device;
mod error;
mod launch;
mod memory;
mod module;
mod timing;

pub use device::{Device, DeviceInfo, peak_bandwidth_bytes_per_s};
pub use error::CudaError;
pub use launch::{KernelArg, LaunchSpec};
pub use memory::{DeviceBuffer, DeviceTensor, packed_byte_len};
pub use module::{Function, FunctionAttributes, Module, check_image, ptx_entry_names};
pub use timing::{Timing, median};

impl Device {
    /// Loads PTX text into this device; see [`Module::load_ptx`].
    pub fn load_ptx(&self, ptx: &str) -> Result<Module, CudaError> {
        Module::load_ptx(self, ptx)
    }

    /// Loads a cubin or fatbin image into this device; see [`Module::load_cubin`].
    pub fn load_cubin(&self, image: &[u8]) -> Result<Module, CudaError> {
        Module::load_cubin(self, image)
    }
}
