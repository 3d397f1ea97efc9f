//! [`Module`] and [`Function`]: code loaded into a device, from PTX text (JIT-compiled by the
//! driver for the device it runs on) or from a cubin/fatbin image, and the kernels in it.
//!
//! Modules are loaded with `cuModuleLoadDataEx` directly, not through cudarc, so that a module
//! the driver rejects comes back with the JIT compiler's error log, and so that the module
//! handle is at hand to list the kernels it defines when a lookup fails.
//!
//! This module must not know what the kernels compute; launching lives in `launch.rs`.

use std::ffi::{CStr, CString, c_char, c_int, c_uint, c_void};
use std::ptr;
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::driver::DriverError;
use cudarc::driver::sys::{self, CUfunction_attribute as FnAttr, CUjit_option as Jit, CUresult};

use crate::device::{Device, driver_has};
use crate::error::{CudaError, describe, hint};

/// Bytes of JIT log kept per module load; PTX errors are a few lines each.
const JIT_LOG_BYTES: usize = 64 * 1024;

/// Code loaded into one device.
#[derive(Clone)]
pub struct Module {
    pub(crate) inner: Arc<ModuleInner>,
}

pub(crate) struct ModuleInner {
    pub(crate) device: Device,
    raw: sys::CUmodule,
    /// The `.entry` names found in the PTX text, for listing kernels when the driver cannot.
    ptx_entries: Option<Vec<String>>,
    /// What the JIT compiler reported while loading (empty for most cubins).
    info_log: String,
}

// SAFETY: a CUmodule is a driver handle valid in any thread once its context is current, and
// every use below makes the module's context current first; the driver serialises access.
unsafe impl Send for ModuleInner {}
// SAFETY: as for Send; `ModuleInner` has no interior mutability of its own.
unsafe impl Sync for ModuleInner {}

impl Drop for ModuleInner {
    fn drop(&mut self) {
        // A failure here cannot be reported from `drop`; cudarc records it in the context,
        // where `Device::synchronize` reports it.
        if self.device.bind().is_ok() {
            // SAFETY: `raw` came from a successful load and is unloaded exactly once, here.
            let status = unsafe { sys::cuModuleUnload(self.raw) };
            self.device.ctx().record_err(status.result());
        }
    }
}

impl Module {
    /// Loads PTX text; the driver JIT-compiles it for this device. The PTX's `.target` must not
    /// be newer than the device and its `.version` must be one the driver knows.
    pub fn load_ptx(device: &Device, ptx: &str) -> Result<Module, CudaError> {
        let text = CString::new(ptx).map_err(|e| CudaError::PtxContainsNul {
            offset: e.nul_position(),
        })?;
        let entries = ptx_entry_names(ptx);
        load(device, text.as_ptr().cast(), "PTX", Some(entries))
    }

    /// Loads a cubin (ELF) or fatbin image. The bytes are checked to be one of those, complete,
    /// before the driver sees them: the driver takes a bare pointer and trusts the image's own
    /// header for its size.
    pub fn load_cubin(device: &Device, image: &[u8]) -> Result<Module, CudaError> {
        check_image(image)?;
        // Copied into 8-byte-aligned storage: the driver reads the ELF headers in place.
        let mut aligned = vec![0u64; image.len().div_ceil(8)];
        // SAFETY: `aligned` has at least `image.len()` bytes and does not overlap `image`.
        unsafe {
            ptr::copy_nonoverlapping(
                image.as_ptr(),
                aligned.as_mut_ptr().cast::<u8>(),
                image.len(),
            )
        };
        load(device, aligned.as_ptr().cast(), "cubin", None)
    }

    pub fn device(&self) -> &Device {
        &self.inner.device
    }

    /// What the driver's JIT compiler reported while loading the module (often empty).
    pub fn jit_info_log(&self) -> &str {
        &self.inner.info_log
    }

    /// Looks up kernel `name`; [`CudaError::KernelNotFound`] lists the kernels there are.
    pub fn function(&self, name: &str) -> Result<Function, CudaError> {
        let not_found = || CudaError::KernelNotFound {
            name: name.to_owned(),
            available: self.kernel_names(),
        };
        let Ok(c_name) = CString::new(name) else {
            return Err(not_found());
        };
        self.inner.device.bind()?;
        let mut raw: sys::CUfunction = ptr::null_mut();
        // SAFETY: the module handle is live (held by `self`) and its context is current;
        // `c_name` is NUL-terminated and outlives the call.
        let status = unsafe { sys::cuModuleGetFunction(&mut raw, self.inner.raw, c_name.as_ptr()) };
        match status {
            CUresult::CUDA_SUCCESS => Ok(Function {
                inner: Arc::new(FunctionInner {
                    module: self.inner.clone(),
                    raw,
                    name: name.to_owned(),
                    dynamic_shared_limit: Mutex::new(DEFAULT_DYNAMIC_SHARED_LIMIT),
                    param_sizes: OnceLock::new(),
                }),
            }),
            CUresult::CUDA_ERROR_NOT_FOUND => Err(not_found()),
            other => Err(CudaError::driver(
                format!("looking up kernel `{name}`"),
                DriverError(other),
            )),
        }
    }

    /// The kernels this module defines, sorted: from the driver where it can enumerate them
    /// (CUDA 12.4 and later), else from the PTX text; `None` for a cubin on an older driver.
    pub fn kernel_names(&self) -> Option<Vec<String>> {
        self.enumerate_kernels()
            .or_else(|| self.inner.ptx_entries.clone())
    }

    fn enumerate_kernels(&self) -> Option<Vec<String>> {
        if !(driver_has("cuModuleGetFunctionCount")
            && driver_has("cuModuleEnumerateFunctions")
            && driver_has("cuFuncGetName"))
        {
            return None;
        }
        self.inner.device.bind().ok()?;
        let mut count: c_uint = 0;
        // SAFETY: the symbols exist (checked above); the module is live and its context current.
        unsafe { sys::cuModuleGetFunctionCount(&mut count, self.inner.raw) }
            .result()
            .ok()?;
        let mut handles: Vec<sys::CUfunction> = vec![ptr::null_mut(); count as usize];
        // SAFETY: `handles` has room for exactly `count` handles.
        unsafe { sys::cuModuleEnumerateFunctions(handles.as_mut_ptr(), count, self.inner.raw) }
            .result()
            .ok()?;
        let mut names = Vec::with_capacity(handles.len());
        for handle in handles {
            let mut name: *const c_char = ptr::null();
            // SAFETY: `handle` came from the enumeration above; the driver returns a pointer to
            // a NUL-terminated name it owns for the module's lifetime, copied out at once.
            unsafe { sys::cuFuncGetName(&mut name, handle) }
                .result()
                .ok()?;
            if name.is_null() {
                return None;
            }
            // SAFETY: non-null and NUL-terminated, as `cuFuncGetName` promises.
            names.push(
                unsafe { CStr::from_ptr(name) }
                    .to_string_lossy()
                    .into_owned(),
            );
        }
        names.sort();
        Some(names)
    }
}

fn load(
    device: &Device,
    image: *const c_void,
    kind: &'static str,
    ptx_entries: Option<Vec<String>>,
) -> Result<Module, CudaError> {
    device.bind()?;
    let mut error_log = vec![0u8; JIT_LOG_BYTES];
    let mut info_log = vec![0u8; JIT_LOG_BYTES];
    let mut options = [
        Jit::CU_JIT_ERROR_LOG_BUFFER,
        Jit::CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES,
        Jit::CU_JIT_INFO_LOG_BUFFER,
        Jit::CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES,
    ];
    // Sizes are passed by value in the pointer-sized option slots, as the driver API specifies.
    let mut values: [*mut c_void; 4] = [
        error_log.as_mut_ptr().cast(),
        ptr::without_provenance_mut(JIT_LOG_BYTES),
        info_log.as_mut_ptr().cast(),
        ptr::without_provenance_mut(JIT_LOG_BYTES),
    ];
    let mut raw: sys::CUmodule = ptr::null_mut();
    // SAFETY: `image` points to a NUL-terminated PTX string or a cubin/fatbin image that
    // `check_image` found complete; both log buffers are JIT_LOG_BYTES long as declared and
    // live past the call; `options` and `values` have the same length, given as the count.
    let status = unsafe {
        sys::cuModuleLoadDataEx(
            &mut raw,
            image,
            options.len() as c_uint,
            options.as_mut_ptr(),
            values.as_mut_ptr(),
        )
    };
    let error_log = c_buffer_to_string(&error_log);
    let info_log = c_buffer_to_string(&info_log);
    if status != CUresult::CUDA_SUCCESS {
        let err = DriverError(status);
        let (name, description) = describe(err);
        let log = if error_log.trim().is_empty() {
            info_log
        } else {
            error_log
        };
        return Err(CudaError::ModuleLoad {
            kind,
            code: status as u32,
            name,
            description,
            hint: hint(status),
            log,
        });
    }
    Ok(Module {
        inner: Arc::new(ModuleInner {
            device: device.clone(),
            raw,
            ptx_entries,
            info_log,
        }),
    })
}

fn c_buffer_to_string(buffer: &[u8]) -> String {
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    String::from_utf8_lossy(&buffer[..end]).into_owned()
}

/// The names after `.entry` in PTX text, sorted, ignoring `//` comments.
pub fn ptx_entry_names(ptx: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in ptx.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut tokens = code
            .split(|c: char| c.is_whitespace() || c == '(')
            .filter(|t| !t.is_empty());
        while let Some(token) = tokens.next() {
            if token == ".entry"
                && let Some(name) = tokens.next()
            {
                names.push(name.to_owned());
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

const ELF_MAGIC: [u8; 4] = [0x7f, b'E', b'L', b'F'];
const FATBIN_MAGIC: u32 = 0xBA55_ED50;
/// ELF section type of sections that occupy no bytes in the file (`.bss`, `.nv.shared.*`).
const SHT_NOBITS: u32 = 8;

/// Checks that `image` is a complete 64-bit little-endian ELF cubin or a complete fatbin: every
/// header table and section it declares lies inside the bytes given.
pub fn check_image(image: &[u8]) -> Result<(), CudaError> {
    let bad = |reason: String| CudaError::NotACubin {
        len: image.len(),
        reason,
    };
    if image.starts_with(&ELF_MAGIC) {
        check_elf(image).map_err(bad)
    } else if read_u32(image, 0) == Some(FATBIN_MAGIC) {
        let header_size =
            read_u16(image, 6).ok_or_else(|| bad("truncated fatbin header".into()))?;
        let body_size = read_u64(image, 8).ok_or_else(|| bad("truncated fatbin header".into()))?;
        let end = u64::from(header_size).checked_add(body_size);
        if end.is_none_or(|end| end > image.len() as u64) {
            return Err(bad(format!(
                "the fatbin header declares {header_size} + {body_size} bytes"
            )));
        }
        Ok(())
    } else if image.is_empty() {
        Err(bad("the image is empty".into()))
    } else if String::from_utf8_lossy(&image[..image.len().min(4096)]).contains(".version") {
        Err(bad(
            "this looks like PTX text; load it with Module::load_ptx".into(),
        ))
    } else {
        Err(bad(
            "it starts with neither the ELF nor the fatbin magic number".into(),
        ))
    }
}

fn check_elf(image: &[u8]) -> Result<(), String> {
    const HEADER_BYTES: usize = 64;
    if image.len() < HEADER_BYTES {
        return Err("truncated ELF header".into());
    }
    if image[4] != 2 {
        return Err("not a 64-bit ELF file".into());
    }
    if image[5] != 1 {
        return Err("not a little-endian ELF file".into());
    }
    let len = image.len() as u64;
    let table = |offset_at: usize,
                 entry_size_at: usize,
                 count_at: usize,
                 what: &str|
     -> Result<(u64, u64, u64), String> {
        let offset = read_u64(image, offset_at).unwrap_or(u64::MAX);
        let entry_size = u64::from(read_u16(image, entry_size_at).unwrap_or(0));
        let count = u64::from(read_u16(image, count_at).unwrap_or(0));
        if count > 0 {
            let end = entry_size
                .checked_mul(count)
                .and_then(|bytes| bytes.checked_add(offset));
            if end.is_none_or(|end| end > len) {
                return Err(format!(
                    "the {what} table ({count} entries at offset {offset}) runs past the end"
                ));
            }
        }
        Ok((offset, entry_size, count))
    };
    table(0x20, 0x36, 0x38, "program header")?;
    let (sections_at, section_size, section_count) = table(0x28, 0x3A, 0x3C, "section header")?;
    if section_count > 0 && section_size < 64 {
        return Err(format!(
            "section headers of {section_size} bytes are too small"
        ));
    }
    for index in 0..section_count {
        let at = (sections_at + index * section_size) as usize;
        let kind = read_u32(image, at + 4).unwrap_or(0);
        let offset = read_u64(image, at + 0x18).unwrap_or(u64::MAX);
        let size = read_u64(image, at + 0x20).unwrap_or(u64::MAX);
        if kind != SHT_NOBITS && size > 0 && offset.checked_add(size).is_none_or(|end| end > len) {
            return Err(format!(
                "section {index} ({size} bytes at offset {offset}) runs past the end"
            ));
        }
    }
    Ok(())
}

fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        bytes.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        bytes.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        bytes.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// Dynamic shared memory every kernel may use without opting in.
pub(crate) const DEFAULT_DYNAMIC_SHARED_LIMIT: u32 = 48 * 1024;

/// One kernel of a loaded [`Module`]; launch it with [`Function::launch`].
#[derive(Clone)]
pub struct Function {
    pub(crate) inner: Arc<FunctionInner>,
}

pub(crate) struct FunctionInner {
    pub(crate) module: Arc<ModuleInner>,
    pub(crate) raw: sys::CUfunction,
    pub(crate) name: String,
    /// The kernel's current `MAX_DYNAMIC_SHARED_SIZE_BYTES`, raised on demand by launches.
    pub(crate) dynamic_shared_limit: Mutex<u32>,
    /// Byte size of each parameter, where the driver can say (CUDA 12.4 and later).
    pub(crate) param_sizes: OnceLock<Option<Vec<usize>>>,
}

// SAFETY: a CUfunction is a driver handle usable from any thread with its context current,
// which every use below ensures; the mutable state is behind a Mutex or a OnceLock.
unsafe impl Send for FunctionInner {}
// SAFETY: as for Send.
unsafe impl Sync for FunctionInner {}

/// Resources a compiled kernel uses, as the driver reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FunctionAttributes {
    pub registers_per_thread: u32,
    /// Local memory per thread (spills and stack), in bytes.
    pub local_bytes_per_thread: u32,
    pub static_shared_bytes: u32,
    pub const_bytes: u32,
    /// The most threads a block of this kernel may have (registers may limit it below 1024).
    pub max_threads_per_block: u32,
    /// The PTX ISA and binary architecture versions, as the driver encodes them (90 = 9.0).
    pub ptx_version: u32,
    pub binary_version: u32,
}

impl Function {
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn device(&self) -> &Device {
        &self.inner.module.device
    }

    pub fn attributes(&self) -> Result<FunctionAttributes, CudaError> {
        Ok(FunctionAttributes {
            registers_per_thread: self.attribute(FnAttr::CU_FUNC_ATTRIBUTE_NUM_REGS)?,
            local_bytes_per_thread: self.attribute(FnAttr::CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES)?,
            static_shared_bytes: self.attribute(FnAttr::CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES)?,
            const_bytes: self.attribute(FnAttr::CU_FUNC_ATTRIBUTE_CONST_SIZE_BYTES)?,
            max_threads_per_block: self
                .attribute(FnAttr::CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK)?,
            ptx_version: self.attribute(FnAttr::CU_FUNC_ATTRIBUTE_PTX_VERSION)?,
            binary_version: self.attribute(FnAttr::CU_FUNC_ATTRIBUTE_BINARY_VERSION)?,
        })
    }

    pub(crate) fn attribute(&self, attribute: FnAttr) -> Result<u32, CudaError> {
        self.device().bind()?;
        let mut value: c_int = 0;
        // SAFETY: the function handle is live (its module is held) and its context current.
        unsafe { sys::cuFuncGetAttribute(&mut value, attribute, self.inner.raw) }
            .result()
            .map_err(|e| {
                CudaError::driver(
                    format!("reading {attribute:?} of kernel `{}`", self.name()),
                    e,
                )
            })?;
        Ok(u32::try_from(value).unwrap_or(0))
    }

    pub(crate) fn set_attribute(&self, attribute: FnAttr, value: u32) -> Result<(), CudaError> {
        self.device().bind()?;
        let action = || {
            format!(
                "setting {attribute:?} of kernel `{}` to {value}",
                self.name()
            )
        };
        let value = c_int::try_from(value).map_err(|_| CudaError::InvalidLaunch {
            kernel: self.name().to_owned(),
            reason: format!("{value} does not fit the driver's attribute type"),
        })?;
        // SAFETY: as in `attribute`.
        unsafe { sys::cuFuncSetAttribute(self.inner.raw, attribute, value) }
            .result()
            .map_err(|e| CudaError::driver(action(), e))
    }

    /// The byte size of each kernel parameter, where the driver can report them
    /// (`cuFuncGetParamInfo`, CUDA 12.4 and later); `None` on older drivers.
    pub fn param_sizes(&self) -> Option<&[usize]> {
        self.inner
            .param_sizes
            .get_or_init(|| self.query_param_sizes())
            .as_deref()
    }

    fn query_param_sizes(&self) -> Option<Vec<usize>> {
        if !driver_has("cuFuncGetParamInfo") {
            return None;
        }
        self.device().bind().ok()?;
        let mut sizes = Vec::new();
        // CUDA allows at most 32 764 bytes of parameters, so at most that many parameters.
        for index in 0..32_764usize {
            let (mut offset, mut size) = (0usize, 0usize);
            // SAFETY: the symbol exists (checked above); the function is live, its context is
            // current, and both out-pointers are valid for one usize each.
            let status =
                unsafe { sys::cuFuncGetParamInfo(self.inner.raw, index, &mut offset, &mut size) };
            match status {
                CUresult::CUDA_SUCCESS => sizes.push(size),
                // Past the last parameter.
                CUresult::CUDA_ERROR_INVALID_VALUE => return Some(sizes),
                _ => return None,
            }
        }
        None
    }
}

impl std::fmt::Debug for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Function")
            .field("name", &self.inner.name)
            .finish()
    }
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module")
            .field("ptx_entries", &self.inner.ptx_entries)
            .finish()
    }
}
