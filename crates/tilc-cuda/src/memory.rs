//! Device memory: [`DeviceBuffer`] (bytes with a length) and [`DeviceTensor`] (a buffer with a
//! dtype and a shape, stored packed: n elements of a w-bit type take ⌈n·w/8⌉ bytes, element k
//! at bits [k·w, (k+1)·w) of the little-endian bit stream, as `tilc_dtype::pack` lays them out).
//!
//! Copies are byte copies; this module must not interpret element values, so a tensor's bytes
//! go to and from the device exactly as the host packed them.

use cudarc::driver::sys::CUdeviceptr;
use cudarc::driver::{CudaSlice, DevicePtr};
use tilc_dtype::DType;

use crate::device::Device;
use crate::error::CudaError;
use crate::launch::KernelArg;

/// A run of device memory with a length in bytes, freed when dropped (in stream order, after
/// every kernel and copy already queued on its device).
pub struct DeviceBuffer {
    device: Device,
    slice: CudaSlice<u8>,
}

impl DeviceBuffer {
    /// Allocates `len` bytes whose contents are unspecified until written.
    pub fn alloc(device: &Device, len: usize) -> Result<DeviceBuffer, CudaError> {
        let stream = device.stream();
        let slice = if len == 0 {
            stream.null::<u8>()
        } else {
            // SAFETY: the memory is uninitialised, but it is device memory that host code only
            // ever reads by copying it out as bytes, where any bit pattern is a valid u8.
            unsafe { stream.alloc::<u8>(len) }
        }
        .map_err(|e| CudaError::driver(format!("allocating {len} bytes of device memory"), e))?;
        Ok(DeviceBuffer {
            device: device.clone(),
            slice,
        })
    }

    /// Allocates `len` bytes set to zero.
    pub fn zeroed(device: &Device, len: usize) -> Result<DeviceBuffer, CudaError> {
        let mut buffer = DeviceBuffer::alloc(device, len)?;
        if len > 0 {
            device
                .stream()
                .memset_zeros(&mut buffer.slice)
                .map_err(|e| {
                    CudaError::driver(format!("zeroing {len} bytes of device memory"), e)
                })?;
        }
        Ok(buffer)
    }

    /// Allocates a buffer holding a copy of `bytes`.
    pub fn from_bytes(device: &Device, bytes: &[u8]) -> Result<DeviceBuffer, CudaError> {
        let mut buffer = DeviceBuffer::alloc(device, bytes.len())?;
        buffer.upload(bytes)?;
        Ok(buffer)
    }

    /// Overwrites the whole buffer with `bytes`, which must be exactly as long as it.
    pub fn upload(&mut self, bytes: &[u8]) -> Result<(), CudaError> {
        if bytes.len() != self.len() {
            return Err(CudaError::LengthMismatch {
                what: "uploading into a device buffer".to_owned(),
                expected: self.len(),
                found: bytes.len(),
            });
        }
        if bytes.is_empty() {
            return Ok(());
        }
        // The copy from pageable host memory has read `bytes` by the time it returns, so the
        // borrow may end here even though the transfer to the device is asynchronous.
        self.device
            .stream()
            .memcpy_htod(bytes, &mut self.slice)
            .map_err(|e| {
                CudaError::driver(format!("copying {} bytes to the device", bytes.len()), e)
            })
    }

    /// Copies the buffer to the host, after all work queued before it has finished; an error a
    /// kernel raised earlier is reported here.
    pub fn download(&self) -> Result<Vec<u8>, CudaError> {
        if self.is_empty() {
            self.device.synchronize()?;
            return Ok(Vec::new());
        }
        let bytes = self.device.stream().clone_dtoh(&self.slice).map_err(|e| {
            CudaError::driver(format!("copying {} bytes from the device", self.len()), e)
        })?;
        self.device.synchronize()?;
        Ok(bytes)
    }

    /// Copies all of `source`, which must have the same length, into this buffer on the device.
    pub fn copy_from(&mut self, source: &DeviceBuffer) -> Result<(), CudaError> {
        if !source.device.is_same(&self.device) {
            return Err(CudaError::WrongDevice {
                what: "the source of a device-to-device copy".to_owned(),
            });
        }
        if source.len() != self.len() {
            return Err(CudaError::LengthMismatch {
                what: "copying between device buffers".to_owned(),
                expected: self.len(),
                found: source.len(),
            });
        }
        if self.is_empty() {
            return Ok(());
        }
        self.device
            .stream()
            .memcpy_dtod(&source.slice, &mut self.slice)
            .map_err(|e| {
                CudaError::driver(format!("copying {} bytes on the device", self.len()), e)
            })
    }

    pub fn len(&self) -> usize {
        self.slice.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// This buffer as a pointer argument of a kernel.
    pub fn arg(&self) -> KernelArg<'_> {
        KernelArg::Ptr(self)
    }

    /// The device address of the first byte.
    pub(crate) fn device_address(&self) -> CUdeviceptr {
        // With event tracking off (see `Device::open`) the guard records nothing.
        let (address, _guard) = self.slice.device_ptr(self.device.stream());
        address
    }
}

impl std::fmt::Debug for DeviceBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceBuffer")
            .field("len", &self.len())
            .finish()
    }
}

/// Bytes that `count` packed elements of `dtype` occupy: ⌈count · bits / 8⌉; `None` on overflow.
pub fn packed_byte_len(dtype: DType, count: usize) -> Option<usize> {
    let bits = usize::try_from(dtype.bits()).ok()?;
    Some(count.checked_mul(bits)?.div_ceil(8))
}

/// A tensor in device memory: a [`DeviceBuffer`] of packed elements, their dtype, and a shape
/// (row-major, as the host tensors of tilc are).
///
/// The buffer may be longer than the packed elements: [`DeviceTensor::from_packed_padded`] and
/// [`DeviceTensor::zeros_padded`] round it up with zero bytes, because compiled kernels read
/// whole words (up to 16 bytes) around the last elements. Copies to and from the host move the
/// packed bytes only ([`DeviceTensor::byte_len`]); the padding stays as it was.
pub struct DeviceTensor {
    buffer: DeviceBuffer,
    dtype: DType,
    shape: Vec<usize>,
    /// Bytes of packed elements at the start of `buffer`.
    packed_len: usize,
}

/// The buffer length for `packed_len` bytes padded to a multiple of `pad_to` (at least one
/// `pad_to`; `pad_to` 0 or 1 means no padding).
fn padded_len(packed_len: usize, pad_to: usize) -> Option<usize> {
    if pad_to <= 1 {
        return Some(packed_len);
    }
    packed_len.div_ceil(pad_to).max(1).checked_mul(pad_to)
}

impl DeviceTensor {
    /// A tensor of zero bytes (for integers, all zeros; for floats, +0.0).
    pub fn zeros(
        device: &Device,
        dtype: DType,
        shape: &[usize],
    ) -> Result<DeviceTensor, CudaError> {
        DeviceTensor::zeros_padded(device, dtype, shape, 1)
    }

    /// A tensor of zero bytes whose buffer is padded with zero bytes to a multiple of `pad_to`
    /// bytes (at least `pad_to`), as kernels that read whole words past the last element need.
    pub fn zeros_padded(
        device: &Device,
        dtype: DType,
        shape: &[usize],
        pad_to: usize,
    ) -> Result<DeviceTensor, CudaError> {
        let packed_len = byte_len_of(dtype, shape)?;
        let len = padded_len(packed_len, pad_to).ok_or_else(|| too_large(dtype, shape))?;
        Ok(DeviceTensor {
            buffer: DeviceBuffer::zeroed(device, len)?,
            dtype,
            shape: shape.to_vec(),
            packed_len,
        })
    }

    /// A tensor holding `bytes`, which must be the packed elements: exactly
    /// [`packed_byte_len`]`(dtype, elements of shape)` bytes.
    pub fn from_packed(
        device: &Device,
        dtype: DType,
        shape: &[usize],
        bytes: &[u8],
    ) -> Result<DeviceTensor, CudaError> {
        DeviceTensor::from_packed_padded(device, dtype, shape, bytes, 1)
    }

    /// Like [`DeviceTensor::from_packed`], with the buffer padded with zero bytes to a multiple
    /// of `pad_to` bytes (at least `pad_to`): the layout tilc's compiled kernels expect
    /// (`pad_to` = 16).
    pub fn from_packed_padded(
        device: &Device,
        dtype: DType,
        shape: &[usize],
        bytes: &[u8],
        pad_to: usize,
    ) -> Result<DeviceTensor, CudaError> {
        let packed_len = byte_len_of(dtype, shape)?;
        if bytes.len() != packed_len {
            return Err(CudaError::LengthMismatch {
                what: format!("packed bytes of a {dtype} tensor of shape {shape:?}"),
                expected: packed_len,
                found: bytes.len(),
            });
        }
        let len = padded_len(packed_len, pad_to).ok_or_else(|| too_large(dtype, shape))?;
        let buffer = if len == packed_len {
            DeviceBuffer::from_bytes(device, bytes)?
        } else {
            let mut padded = Vec::with_capacity(len);
            padded.extend_from_slice(bytes);
            padded.resize(len, 0);
            DeviceBuffer::from_bytes(device, &padded)?
        };
        Ok(DeviceTensor {
            buffer,
            dtype,
            shape: shape.to_vec(),
            packed_len,
        })
    }

    /// Overwrites the tensor with packed bytes of its own dtype and shape (the padding, if
    /// any, becomes zero bytes again).
    pub fn upload_packed(&mut self, bytes: &[u8]) -> Result<(), CudaError> {
        if bytes.len() != self.packed_len {
            return Err(CudaError::LengthMismatch {
                what: format!(
                    "packed bytes of a {} tensor of shape {:?}",
                    self.dtype, self.shape
                ),
                expected: self.packed_len,
                found: bytes.len(),
            });
        }
        if self.buffer.len() == bytes.len() {
            self.buffer.upload(bytes)
        } else {
            let mut padded = bytes.to_vec();
            padded.resize(self.buffer.len(), 0);
            self.buffer.upload(&padded)
        }
    }

    /// The packed elements, copied to the host (without the padding).
    pub fn to_packed(&self) -> Result<Vec<u8>, CudaError> {
        let mut bytes = self.buffer.download()?;
        bytes.truncate(self.packed_len);
        Ok(bytes)
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn numel(&self) -> usize {
        // Checked when the tensor was made.
        self.shape.iter().product()
    }

    /// Bytes of packed elements: ⌈numel · bits / 8⌉. The buffer ([`DeviceTensor::buffer`]) may
    /// be longer by its padding.
    pub fn byte_len(&self) -> usize {
        self.packed_len
    }

    pub fn buffer(&self) -> &DeviceBuffer {
        &self.buffer
    }

    pub fn buffer_mut(&mut self) -> &mut DeviceBuffer {
        &mut self.buffer
    }

    /// This tensor's data as a pointer argument of a kernel.
    pub fn arg(&self) -> KernelArg<'_> {
        KernelArg::Ptr(&self.buffer)
    }
}

impl std::fmt::Debug for DeviceTensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceTensor")
            .field("dtype", &format_args!("{}", self.dtype))
            .field("shape", &self.shape)
            .field("bytes", &self.buffer.len())
            .finish()
    }
}

fn too_large(dtype: DType, shape: &[usize]) -> CudaError {
    CudaError::InvalidTensor {
        reason: format!(
            "a {dtype} tensor of shape {shape:?} has more bytes than this machine can address"
        ),
    }
}

/// The byte size of a tensor, or why it has none.
fn byte_len_of(dtype: DType, shape: &[usize]) -> Result<usize, CudaError> {
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| too_large(dtype, shape))?;
    packed_byte_len(dtype, count).ok_or_else(|| too_large(dtype, shape))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_byte_len_rounds_up_to_whole_bytes() {
        let u3 = DType::UInt(3);
        // 8 elements of 3 bits fill exactly 3 bytes; one more needs a 4th byte.
        assert_eq!(packed_byte_len(u3, 8), Some(3));
        assert_eq!(packed_byte_len(u3, 9), Some(4));
        assert_eq!(packed_byte_len(u3, 1), Some(1));
        assert_eq!(packed_byte_len(u3, 0), Some(0));
        assert_eq!(packed_byte_len(DType::Int(32), 5), Some(20));
        assert_eq!(packed_byte_len(DType::UInt(1), 17), Some(3));
        assert_eq!(packed_byte_len(DType::UInt(7), usize::MAX), None);
    }

    #[test]
    fn packed_byte_len_matches_the_host_packer() {
        // The host packer is the oracle: the device tensor must be exactly as long as the bytes
        // `tilc_dtype::pack` produces, for every width and a range of counts.
        for bits in 1..=32u32 {
            for count in [0usize, 1, 2, 7, 8, 9, 63, 64, 65, 1000] {
                let codes = vec![0u64; count];
                let expected = tilc_dtype::pack::pack(&codes, bits).len();
                assert_eq!(
                    packed_byte_len(DType::UInt(bits as u8), count),
                    Some(expected),
                    "u{bits} × {count}"
                );
            }
        }
    }

    #[test]
    fn padding_rounds_up_to_whole_units_of_at_least_one() {
        assert_eq!(padded_len(0, 16), Some(16));
        assert_eq!(padded_len(1, 16), Some(16));
        assert_eq!(padded_len(16, 16), Some(16));
        assert_eq!(padded_len(17, 16), Some(32));
        assert_eq!(padded_len(17, 1), Some(17));
        assert_eq!(padded_len(17, 0), Some(17));
        assert_eq!(padded_len(usize::MAX, 16), None);
    }

    #[test]
    fn tensor_byte_len_rejects_overflowing_shapes() {
        let err = byte_len_of(DType::UInt(4), &[usize::MAX, 2]).unwrap_err();
        assert!(
            err.to_string()
                .contains("more bytes than this machine can address"),
            "{err}"
        );
        assert_eq!(byte_len_of(DType::UInt(4), &[3, 5]).unwrap(), 8);
        assert_eq!(
            byte_len_of(DType::UInt(4), &[]).unwrap(),
            1,
            "a scalar is one element"
        );
    }
}
