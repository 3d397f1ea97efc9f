//! [`Device`]: one GPU's primary context and the one stream every tilc operation on it runs in,
//! opened so that a machine without a driver gets [`CudaError::NoDriver`] instead of a panic.
//!
//! cudarc loads `libcuda.so` lazily and panics when it is missing, so [`Device::open`] first asks
//! whether the library can be loaded at all, then runs the initialisation inside
//! `catch_unwind` as a second guard. Everything else in this crate needs a `Device`, so nothing
//! else can reach the driver before this check has passed.

use std::any::Any;
use std::ffi::c_int;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use cudarc::driver::sys::{self, CUdevice_attribute as Attr};
use cudarc::driver::{CudaContext, CudaStream, DriverError, result};

use crate::error::CudaError;

/// What a device is and what it can do, read once when it is opened.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceInfo {
    pub ordinal: usize,
    /// The marketing name, such as `NVIDIA H100 80GB HBM3`.
    pub name: String,
    /// (major, minor), such as (9, 0) for Hopper.
    pub compute_capability: (u32, u32),
    /// Streaming multiprocessors.
    pub sm_count: u32,
    pub total_memory_bytes: u64,
    /// Peak DRAM bandwidth from the memory clock and bus width (2 transfers per clock), where
    /// the driver reports both; the measured bandwidth is lower.
    pub memory_bandwidth_bytes_per_s: Option<f64>,
    pub l2_cache_bytes: u64,
    /// Shared memory one block may use after opting in (dynamic plus static).
    pub max_shared_bytes_per_block: u32,
    pub max_threads_per_block: u32,
    /// The SM clock in kHz, where the driver reports it.
    pub sm_clock_khz: Option<u32>,
    /// The CUDA version the driver supports, as (major, minor), such as (12, 8).
    pub driver_version: (u32, u32),
}

impl DeviceInfo {
    /// The architecture name ptxas and tilc use for this device: `sm_90`, `sm_100`, `sm_120`.
    pub fn arch(&self) -> String {
        format!(
            "sm_{}{}",
            self.compute_capability.0, self.compute_capability.1
        )
    }
}

impl std::fmt::Display for DeviceInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let gib = self.total_memory_bytes as f64 / (1u64 << 30) as f64;
        write!(
            f,
            "device {}: {} ({}), {} SMs, {:.1} GiB, L2 {} MiB",
            self.ordinal,
            self.name,
            self.arch(),
            self.sm_count,
            gib,
            self.l2_cache_bytes >> 20
        )?;
        if let Some(bw) = self.memory_bandwidth_bytes_per_s {
            write!(f, ", peak DRAM {:.0} GB/s", bw / 1e9)?;
        }
        write!(
            f,
            ", driver CUDA {}.{}",
            self.driver_version.0, self.driver_version.1
        )
    }
}

/// An opened GPU: its primary context, a stream, and its [`DeviceInfo`].
///
/// Cloning is cheap and clones share the stream, so work submitted through any clone runs in
/// submission order. Buffers, modules and launches all go through this one stream, which is why
/// the context's cross-stream event tracking is turned off.
#[derive(Clone)]
pub struct Device {
    pub(crate) inner: Arc<DeviceInner>,
}

pub(crate) struct DeviceInner {
    pub(crate) ctx: Arc<CudaContext>,
    pub(crate) stream: Arc<CudaStream>,
    pub(crate) info: DeviceInfo,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("info", &self.inner.info)
            .finish()
    }
}

impl Device {
    /// Opens device `ordinal`: [`CudaError::NoDriver`] where no driver library exists,
    /// [`CudaError::NoDevice`] where the driver has no such device.
    pub fn open(ordinal: usize) -> Result<Device, CudaError> {
        ensure_driver_library()?;
        guarded("initialising the CUDA driver", || open_unguarded(ordinal))?
    }

    /// Opens device 0 and describes it; the quickest way to ask "is there a GPU here?".
    pub fn available() -> Result<DeviceInfo, CudaError> {
        Ok(Device::open(0)?.info().clone())
    }

    /// How many CUDA devices the driver sees; [`CudaError::NoDriver`] where there is no driver.
    pub fn count() -> Result<usize, CudaError> {
        ensure_driver_library()?;
        guarded("counting CUDA devices", || {
            result::init().map_err(|e| CudaError::driver("initialising the CUDA driver", e))?;
            device_count()
        })?
    }

    pub fn info(&self) -> &DeviceInfo {
        &self.inner.info
    }

    /// Waits until all work submitted to this device's stream has finished, and reports any
    /// error an earlier asynchronous launch or copy raised.
    pub fn synchronize(&self) -> Result<(), CudaError> {
        self.inner
            .stream
            .synchronize()
            .map_err(|e| CudaError::driver("waiting for the device to finish", e))?;
        self.inner
            .ctx
            .check_err()
            .map_err(|e| CudaError::driver("releasing device resources", e))
    }

    /// Free and total device memory in bytes, as the driver reports them now.
    pub fn memory_info(&self) -> Result<(u64, u64), CudaError> {
        let (free, total) = self
            .inner
            .ctx
            .mem_get_info()
            .map_err(|e| CudaError::driver("querying device memory", e))?;
        Ok((free as u64, total as u64))
    }

    pub(crate) fn stream(&self) -> &Arc<CudaStream> {
        &self.inner.stream
    }

    pub(crate) fn ctx(&self) -> &Arc<CudaContext> {
        &self.inner.ctx
    }

    /// Makes this device's context current on the calling thread; every raw driver call needs it.
    pub(crate) fn bind(&self) -> Result<(), CudaError> {
        self.inner
            .ctx
            .bind_to_thread()
            .map_err(|e| CudaError::driver("making the CUDA context current", e))
    }

    /// Whether two handles are the same opened device (one is a clone of the other). Two
    /// `Device::open(0)` calls share the driver's context but not the stream, and a buffer
    /// used on another stream than its own could be freed while a kernel still reads it, so
    /// buffers and functions of one launch must all come from one handle.
    pub fn is_same(&self, other: &Device) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

/// [`CudaError::NoDriver`] unless `libcuda` can be loaded. This is the check that keeps cudarc
/// from panicking: cudarc's loader panics on the first driver call when the library is missing.
fn ensure_driver_library() -> Result<(), CudaError> {
    // SAFETY: `is_culib_present` only tries to dlopen the candidate library names and closes
    // them again; loading the NVIDIA driver library runs no initialisation that could misbehave.
    let present = catch_unwind(|| unsafe { sys::is_culib_present() }).unwrap_or(false);
    if present {
        Ok(())
    } else {
        Err(CudaError::NoDriver { detail: None })
    }
}

/// Runs `f`, turning a panic inside cudarc into an error. A missing library becomes
/// [`CudaError::NoDriver`]; any other panic (a symbol the installed driver lacks) becomes
/// [`CudaError::DriverPanic`].
pub(crate) fn guarded<T>(action: &str, f: impl FnOnce() -> T) -> Result<T, CudaError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let message = panic_message(&payload);
        if message.contains("Unable to dynamically load") {
            CudaError::NoDriver {
                detail: Some(message),
            }
        } else {
            CudaError::DriverPanic {
                action: action.to_owned(),
                message,
            }
        }
    })
}

fn panic_message(payload: &Box<dyn Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

fn device_count() -> Result<usize, CudaError> {
    let count =
        result::device::get_count().map_err(|e| CudaError::driver("counting CUDA devices", e))?;
    Ok(usize::try_from(count).unwrap_or(0))
}

fn open_unguarded(ordinal: usize) -> Result<Device, CudaError> {
    match result::init() {
        Ok(()) => {}
        Err(e) if e.0 == sys::CUresult::CUDA_ERROR_NO_DEVICE => {
            return Err(CudaError::NoDevice { ordinal, count: 0 });
        }
        Err(e) => return Err(CudaError::driver("initialising the CUDA driver", e)),
    }
    let count = device_count()?;
    if ordinal >= count {
        return Err(CudaError::NoDevice { ordinal, count });
    }
    let ctx = CudaContext::new(ordinal)
        .map_err(|e| CudaError::driver(format!("creating a context on device {ordinal}"), e))?;
    // SAFETY: every buffer, copy and launch of a `Device` goes through its single stream, so
    // stream order alone keeps uses and frees ordered; cudarc's per-buffer events are only
    // needed when one buffer is shared between streams, which this crate never does.
    unsafe { ctx.disable_event_tracking() };
    let stream = ctx
        .new_stream()
        .map_err(|e| CudaError::driver(format!("creating a stream on device {ordinal}"), e))?;
    let info = read_info(&ctx, ordinal)?;
    Ok(Device {
        inner: Arc::new(DeviceInner { ctx, stream, info }),
    })
}

fn read_info(ctx: &Arc<CudaContext>, ordinal: usize) -> Result<DeviceInfo, CudaError> {
    let attr = |a: Attr| -> Result<i32, CudaError> {
        ctx.attribute(a)
            .map_err(|e| CudaError::driver(format!("reading device attribute {a:?}"), e))
    };
    // Attributes that a driver may report as 0 ("unknown") or no longer support.
    let optional_attr = |a: Attr| -> Option<u32> {
        ctx.attribute(a)
            .ok()
            .and_then(|v| u32::try_from(v).ok())
            .filter(|&v| v > 0)
    };
    let to_u32 = |v: i32| u32::try_from(v).unwrap_or(0);

    let name = ctx
        .name()
        .map_err(|e| CudaError::driver("reading the device name", e))?;
    let total_memory_bytes =
        ctx.total_mem()
            .map_err(|e| CudaError::driver("reading the device memory size", e))? as u64;
    let major = to_u32(attr(Attr::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?);
    let minor = to_u32(attr(Attr::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?);
    let sm_count = to_u32(attr(Attr::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?);
    let l2_cache_bytes = u64::from(to_u32(attr(Attr::CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE)?));
    let max_shared_bytes_per_block = to_u32(attr(
        Attr::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN,
    )?);
    let max_threads_per_block = to_u32(attr(Attr::CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK)?);
    let memory_clock_khz = optional_attr(Attr::CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE);
    let bus_width_bits = optional_attr(Attr::CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH);
    let memory_bandwidth_bytes_per_s = match (memory_clock_khz, bus_width_bits) {
        (Some(khz), Some(bits)) => Some(peak_bandwidth_bytes_per_s(khz, bits)),
        _ => None,
    };
    let sm_clock_khz = optional_attr(Attr::CU_DEVICE_ATTRIBUTE_CLOCK_RATE);
    let driver_version = driver_version()?;
    Ok(DeviceInfo {
        ordinal,
        name,
        compute_capability: (major, minor),
        sm_count,
        total_memory_bytes,
        memory_bandwidth_bytes_per_s,
        l2_cache_bytes,
        max_shared_bytes_per_block,
        max_threads_per_block,
        sm_clock_khz,
        driver_version,
    })
}

/// Peak DRAM bandwidth: the reported memory clock is the base clock and data moves on both
/// edges (DDR, and HBM likewise), so bytes/s = 2 × clock × bus width / 8.
pub fn peak_bandwidth_bytes_per_s(memory_clock_khz: u32, bus_width_bits: u32) -> f64 {
    2.0 * f64::from(memory_clock_khz) * 1e3 * f64::from(bus_width_bits) / 8.0
}

/// The CUDA version the driver supports, decoded from `cuDriverGetVersion` (12080 → (12, 8)).
fn driver_version() -> Result<(u32, u32), CudaError> {
    let mut version: c_int = 0;
    // SAFETY: `cuDriverGetVersion` writes one int through the pointer it is given.
    unsafe { sys::cuDriverGetVersion(&mut version) }
        .result()
        .map_err(|e: DriverError| CudaError::driver("reading the driver version", e))?;
    let version = u32::try_from(version).unwrap_or(0);
    Ok((version / 1000, (version % 1000) / 10))
}

/// Whether the loaded driver library exports `symbol`. cudarc resolves driver functions lazily
/// and panics on a missing one, so functions newer than the oldest supported driver are called
/// only after this says yes. Only call this after [`Device::open`] succeeded.
pub(crate) fn driver_has(symbol: &str) -> bool {
    // SAFETY: `culib` returns the library `Device::open` already loaded; looking a symbol up
    // reads the library's export table and runs no code from it. The symbol is not called here.
    catch_unwind(|| unsafe {
        sys::culib()
            .get::<unsafe extern "C" fn()>(symbol.as_bytes())
            .is_ok()
    })
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_inside_cudarc_become_errors() {
        // The message cudarc panics with when libcuda.so is missing becomes NoDriver.
        let err = guarded("opening", || -> () {
            panic!("Unable to dynamically load the \"cuda\" shared library - searched for library names: [\"libcuda.so\"]")
        })
        .unwrap_err();
        assert!(
            matches!(err, CudaError::NoDriver { detail: Some(ref d) } if d.contains("libcuda.so")),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("no CUDA driver found: libcuda.so could not be loaded; "),
            "{err}"
        );
        // Any other panic, such as a symbol an old driver lacks, becomes DriverPanic.
        let err = guarded("launching", || -> () {
            panic!("Missing symbol cuFuncGetParamInfo")
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the CUDA driver library failed while launching: Missing symbol cuFuncGetParamInfo"
        );
        assert_eq!(guarded("adding", || 2 + 2).unwrap(), 4);
    }

    #[test]
    fn peak_bandwidth_of_known_gpus() {
        // H100 SXM: HBM3 at 2619 MHz on a 5120-bit bus, 3.35 TB/s by NVIDIA's data sheet.
        let h100 = peak_bandwidth_bytes_per_s(2_619_000, 5120);
        assert!((h100 / 1e12 - 3.352).abs() < 0.001, "{h100}");
        // RTX 4090: GDDR6X reported at 10501 MHz on 384 bits, 1008 GB/s by the data sheet.
        let rtx4090 = peak_bandwidth_bytes_per_s(10_501_000, 384);
        assert!((rtx4090 / 1e9 - 1008.1).abs() < 0.1, "{rtx4090}");
    }
}
