//! Tests that run kernels on a GPU; each prints 'skipped: no CUDA driver' and passes where
//! there is none (or fails, with `TILC_REQUIRE_GPU` set). Every result is compared exactly
//! against a host-side oracle.

mod common;

use common::{
    KERNEL_NAMES, KERNELS_PTX, SplitMix64, assemble, bytes_to_f32s, bytes_to_u32s, device_or_skip,
    f32s_to_bytes, ptxas,
};
use tilc_cuda::{CudaError, Device, DeviceBuffer, DeviceTensor, KernelArg, LaunchSpec, Module};
use tilc_dtype::DType;

fn load_kernels(device: &Device) -> Module {
    device
        .load_ptx(KERNELS_PTX)
        .unwrap_or_else(|e| panic!("loading the test PTX failed: {e}"))
}

/// Launches `vadd_f32` over `n` seeded random floats on `module` and checks every sum.
fn check_vadd(device: &Device, module: &Module, n: usize, seed: u64) {
    let mut rng = SplitMix64(seed);
    let a: Vec<f32> = (0..n).map(|_| rng.small_f32()).collect();
    let b: Vec<f32> = (0..n).map(|_| rng.small_f32()).collect();
    let da = DeviceBuffer::from_bytes(device, &f32s_to_bytes(&a)).unwrap();
    let db = DeviceBuffer::from_bytes(device, &f32s_to_bytes(&b)).unwrap();
    let dc = DeviceBuffer::zeroed(device, 4 * n).unwrap();
    let vadd = module.function("vadd_f32").unwrap();
    let block = 128u32;
    let grid = (n as u32).div_ceil(block);
    vadd.launch(
        &LaunchSpec::linear(grid, block),
        &[da.arg(), db.arg(), dc.arg(), KernelArg::U32(n as u32)],
    )
    .unwrap();
    let c = bytes_to_f32s(&dc.download().unwrap());
    for i in 0..n {
        // Values have 12 significant bits, so the f32 sum is exact and equality is the oracle.
        assert_eq!(c[i], a[i] + b[i], "element {i} of {n} (seed {seed:#x})");
    }
}

#[test]
fn device_info_is_plausible() {
    let Some(device) = device_or_skip("device_info_is_plausible") else {
        return;
    };
    let info = device.info();
    println!("{info}");
    assert!(info.compute_capability.0 >= 3, "{info:?}");
    assert!(
        info.sm_count > 0 && info.max_threads_per_block >= 1024,
        "{info:?}"
    );
    assert!(info.max_shared_bytes_per_block >= 48 * 1024, "{info:?}");
    assert!(info.driver_version.0 >= 11, "{info:?}");
    let (free, total) = device.memory_info().unwrap();
    assert!(
        free <= total && total == info.total_memory_bytes,
        "free {free}, total {total}, {info:?}"
    );
    if let Some(bw) = info.memory_bandwidth_bytes_per_s {
        // Every CUDA GPU since 2012 has between 50 GB/s and 20 TB/s of DRAM bandwidth.
        assert!(
            (50e9..20e12).contains(&bw),
            "implausible bandwidth {bw} in {info:?}"
        );
    }
}

#[test]
fn vector_add_matches_the_host() {
    let Some(device) = device_or_skip("vector_add_matches_the_host") else {
        return;
    };
    let module = load_kernels(&device);
    // A multiple of the block, a ragged tail, and one element.
    for (n, seed) in [(4096, 1), (1000, 2), (1, 3)] {
        check_vadd(&device, &module, n, seed);
    }
}

#[test]
fn thread_and_block_ids_cover_a_2d_launch() {
    let Some(device) = device_or_skip("thread_and_block_ids_cover_a_2d_launch") else {
        return;
    };
    let module = load_kernels(&device);
    let spec = LaunchSpec {
        grid: [3, 2, 1],
        block: [8, 4, 1],
        shared_bytes: 0,
    };
    let threads = 3 * 2 * 8 * 4;
    let out = DeviceBuffer::zeroed(&device, threads * 16).unwrap();
    module
        .function("thread_ids")
        .unwrap()
        .launch(&spec, &[out.arg()])
        .unwrap();
    let got = bytes_to_u32s(&out.download().unwrap());
    let mut expected = Vec::with_capacity(threads * 4);
    for by in 0..2 {
        for bx in 0..3 {
            for ty in 0..4 {
                for tx in 0..8 {
                    expected.extend_from_slice(&[tx, ty, bx, by]);
                }
            }
        }
    }
    assert_eq!(got, expected);
}

#[test]
fn scalar_arguments_reach_the_kernel_bit_for_bit() {
    let Some(device) = device_or_skip("scalar_arguments_reach_the_kernel_bit_for_bit") else {
        return;
    };
    let module = load_kernels(&device);
    let out = DeviceBuffer::zeroed(&device, 40).unwrap();
    let (a, b, c, d, e, f) = (
        -1.5e-3f32,
        -123_456_789i32,
        0xDEAD_BEEFu32,
        -0x0123_4567_89AB_CDEFi64,
        u64::MAX - 5,
        1.0f64 / 3.0,
    );
    let args = [
        out.arg(),
        KernelArg::F32(a),
        KernelArg::I32(b),
        KernelArg::U32(c),
        KernelArg::I64(d),
        KernelArg::U64(e),
        KernelArg::F64(f),
    ];
    module
        .function("echo_params")
        .unwrap()
        .launch(&LaunchSpec::linear(1, 1), &args)
        .unwrap();
    let mut expected = Vec::new();
    expected.extend_from_slice(&a.to_le_bytes());
    expected.extend_from_slice(&b.to_le_bytes());
    expected.extend_from_slice(&c.to_le_bytes());
    expected.extend_from_slice(&[0; 4]);
    expected.extend_from_slice(&d.to_le_bytes());
    expected.extend_from_slice(&e.to_le_bytes());
    expected.extend_from_slice(&f.to_le_bytes());
    assert_eq!(out.download().unwrap(), expected);
}

#[test]
fn dynamic_shared_memory_past_48_kib_is_opted_into() {
    let Some(device) = device_or_skip("dynamic_shared_memory_past_48_kib_is_opted_into") else {
        return;
    };
    let module = load_kernels(&device);
    let kernel = module.function("smem_reverse").unwrap();
    let threads = 256u32;
    let limit = device.info().max_shared_bytes_per_block;
    // 48 KiB (no opt-in), 72 KiB, and the device's whole opt-in limit.
    for shared_bytes in [48 * 1024, 72 * 1024, limit / 16 * 16] {
        let out = DeviceBuffer::zeroed(&device, 4 * threads as usize).unwrap();
        let spec = LaunchSpec::linear(1, threads).with_shared_bytes(shared_bytes);
        kernel
            .launch(&spec, &[out.arg(), KernelArg::U32(shared_bytes / 4)])
            .unwrap();
        let expected: Vec<u32> = (0..threads).rev().collect();
        assert_eq!(
            bytes_to_u32s(&out.download().unwrap()),
            expected,
            "{shared_bytes} bytes of shared memory"
        );
    }
    let err = kernel
        .launch(
            &LaunchSpec::linear(1, threads).with_shared_bytes(limit + 16),
            &[
                DeviceBuffer::zeroed(&device, 1024).unwrap().arg(),
                KernelArg::U32(1),
            ],
        )
        .expect_err("more shared memory than the device has");
    assert!(
        err.to_string().contains("bytes of shared memory per block"),
        "{err}"
    );
}

#[test]
fn packed_u3_tensor_round_trips_and_unpacks_on_the_device() {
    let Some(device) = device_or_skip("packed_u3_tensor_round_trips_and_unpacks_on_the_device")
    else {
        return;
    };
    let module = load_kernels(&device);
    let unpack = module.function("unpack_bits").unwrap();
    for (bits, shape, seed) in [
        (3u32, vec![7usize, 13], 11u64),
        (3, vec![1], 12),
        (1, vec![100], 13),
        (5, vec![3, 3, 3], 14),
        (7, vec![64], 15),
    ] {
        let dtype = DType::UInt(bits as u8);
        let n: usize = shape.iter().product();
        let mut rng = SplitMix64(seed);
        let codes: Vec<u64> = (0..n).map(|_| rng.next_u64() & ((1 << bits) - 1)).collect();
        let packed = tilc_dtype::pack::pack(&codes, bits);
        assert_eq!(packed.len(), (n * bits as usize).div_ceil(8));

        let tensor = DeviceTensor::from_packed(&device, dtype, &shape, &packed).unwrap();
        assert_eq!((tensor.numel(), tensor.byte_len()), (n, packed.len()));
        assert_eq!(
            tensor.to_packed().unwrap(),
            packed,
            "u{bits} {shape:?} bytes changed on the round trip (seed {seed})"
        );

        // The device reads element k at bits [k·w, (k+1)·w): the same layout as the host packer.
        let out = DeviceBuffer::zeroed(&device, 4 * n).unwrap();
        let args = [
            out.arg(),
            tensor.arg(),
            KernelArg::U32(n as u32),
            KernelArg::U32(packed.len() as u32),
            KernelArg::U32(bits),
        ];
        unpack
            .launch(&LaunchSpec::linear((n as u32).div_ceil(64), 64), &args)
            .unwrap();
        let got: Vec<u64> = bytes_to_u32s(&out.download().unwrap())
            .into_iter()
            .map(u64::from)
            .collect();
        assert_eq!(got, codes, "u{bits} {shape:?} (seed {seed})");
    }
    // Bytes of the wrong length for the dtype and shape are refused.
    let err = DeviceTensor::from_packed(&device, DType::UInt(3), &[9], &[0; 3]).unwrap_err();
    assert!(
        matches!(
            err,
            CudaError::LengthMismatch {
                expected: 4,
                found: 3,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn event_timing_returns_positive_times() {
    let Some(device) = device_or_skip("event_timing_returns_positive_times") else {
        return;
    };
    let module = load_kernels(&device);
    let vadd = module.function("vadd_f32").unwrap();
    let n = 1 << 22;
    let a = DeviceBuffer::zeroed(&device, 4 * n).unwrap();
    let b = DeviceBuffer::zeroed(&device, 4 * n).unwrap();
    let c = DeviceBuffer::zeroed(&device, 4 * n).unwrap();
    let spec = LaunchSpec::linear((n as u32).div_ceil(256), 256);
    let args = [a.arg(), b.arg(), c.arg(), KernelArg::U32(n as u32)];
    let mut runs = 0;
    let timing = device
        .time(3, 20, |_| {
            runs += 1;
            vadd.launch(&spec, &args)
        })
        .unwrap();
    assert_eq!(runs, 23, "3 warm-up runs and 20 timed runs");
    assert_eq!(timing.samples_ms.len(), 20);
    assert!(
        timing.samples_ms.iter().all(|&t| t > 0.0 && t < 1000.0),
        "{:?}",
        timing.samples_ms
    );
    let median = timing.median_ms();
    // 48 MiB moved per run.
    let gbps = 3.0 * 4.0 * n as f64 / (f64::from(median) * 1e-3) / 1e9;
    println!(
        "vadd_f32 over {n} floats: median {median:.4} ms, min {:.4} ms, {gbps:.0} GB/s",
        timing.min_ms()
    );
    assert!(timing.min_ms() <= median && median <= timing.max_ms());
    let err = device.time(0, 0, |_| Ok(())).unwrap_err();
    assert!(matches!(err, CudaError::InvalidTiming { .. }), "{err}");
}

#[test]
fn cubin_from_ptxas_loads_and_runs() {
    let Some(device) = device_or_skip("cubin_from_ptxas_loads_and_runs") else {
        return;
    };
    let arch = device.info().arch();
    // A cubin from ptxas here, else one the GPU check script assembled ahead of time.
    let cubin = if let Some(ptxas) = ptxas() {
        assemble(&ptxas, KERNELS_PTX, &arch, "gpu").unwrap_or_else(|e| panic!("{e}"))
    } else if let Some(dir) = std::env::var_os("TILC_TEST_CUBIN_DIR")
        && let Ok(bytes) =
            std::fs::read(std::path::Path::new(&dir).join(format!("kernels.{arch}.cubin")))
    {
        bytes
    } else {
        println!(
            "skipped: no ptxas and no prepared kernels.{arch}.cubin (set TILC_PTXAS or TILC_TEST_CUBIN_DIR)"
        );
        return;
    };
    let module = match device.load_cubin(&cubin) {
        Ok(module) => module,
        // ptxas 13 writes cubins a CUDA 12 driver may not read.
        Err(err) if device.info().driver_version.0 < 13 => {
            println!(
                "skipped: the {arch} cubin from this ptxas does not load on a CUDA {:?} driver: {err}",
                device.info().driver_version
            );
            return;
        }
        Err(err) => panic!("loading the {arch} cubin failed: {err}"),
    };
    check_vadd(&device, &module, 777, 21);
    if let Some(names) = module.kernel_names() {
        assert_eq!(names, KERNEL_NAMES);
    }
}

#[test]
fn errors_name_what_went_wrong() {
    let Some(device) = device_or_skip("errors_name_what_went_wrong") else {
        return;
    };
    let module = load_kernels(&device);

    // A kernel that does not exist: the error lists the ones that do.
    let err = module.function("vadd_f16").unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with(
            "kernel `vadd_f16` not found in the module; the module defines `echo_params`"
        ),
        "{message}"
    );
    for name in KERNEL_NAMES {
        assert!(message.contains(&format!("`{name}`")), "{message}");
    }

    // PTX that does not compile: the error carries the JIT log, which names the bad register.
    let broken = KERNELS_PTX.replace(
        "add.rn.f32 \t%f3, %f1, %f2;",
        "add.rn.f32 \t%f3, %f1, %nope;",
    );
    let err = device.load_ptx(&broken).unwrap_err();
    assert!(
        matches!(err, CudaError::ModuleLoad { kind: "PTX", .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("nope"),
        "the JIT log should name the undefined register: {err}"
    );

    // PTX with a NUL byte never reaches the driver.
    let err = device.load_ptx("\0").unwrap_err();
    assert!(
        matches!(err, CudaError::PtxContainsNul { offset: 0 }),
        "{err:?}"
    );

    // Too many threads for a block.
    let vadd = module.function("vadd_f32").unwrap();
    let buffer = DeviceBuffer::zeroed(&device, 64).unwrap();
    let err = vadd
        .launch(
            &LaunchSpec::linear(1, 2048),
            &[buffer.arg(), buffer.arg(), buffer.arg(), KernelArg::U32(1)],
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot launch kernel `vadd_f32`: block.x = 2048 exceeds the limit of 1024"),
        "{err}"
    );

    // Arguments that do not fit the parameters, where the driver reports parameter sizes.
    if let Some(sizes) = vadd.param_sizes() {
        assert_eq!(sizes, [8, 8, 8, 4]);
        let err = vadd
            .launch(&LaunchSpec::linear(1, 32), &[buffer.arg(), buffer.arg()])
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("it takes 4 parameters, but 2 arguments were given"),
            "{err}"
        );
        let err = vadd
            .launch(
                &LaunchSpec::linear(1, 32),
                &[buffer.arg(), buffer.arg(), buffer.arg(), KernelArg::I64(1)],
            )
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("argument 3 is i64 (8 bytes), but parameter 3 takes 4 bytes"),
            "{err}"
        );
    } else {
        println!(
            "note: this driver cannot report parameter sizes (needs CUDA 12.4); argument checks skipped"
        );
    }

    // A buffer of another opened device handle.
    let other = Device::open(0).unwrap();
    let foreign = DeviceBuffer::zeroed(&other, 64).unwrap();
    let err = vadd
        .launch(
            &LaunchSpec::linear(1, 1),
            &[foreign.arg(), buffer.arg(), buffer.arg(), KernelArg::U32(1)],
        )
        .unwrap_err();
    assert!(matches!(err, CudaError::WrongDevice { .. }), "{err}");

    // The device is still healthy after all of the above.
    check_vadd(&device, &module, 300, 31);
}

#[test]
fn buffers_copy_exactly_and_refuse_wrong_lengths() {
    let Some(device) = device_or_skip("buffers_copy_exactly_and_refuse_wrong_lengths") else {
        return;
    };
    let mut rng = SplitMix64(41);
    let bytes: Vec<u8> = (0..100_003).map(|_| rng.next_u64() as u8).collect();
    let source = DeviceBuffer::from_bytes(&device, &bytes).unwrap();
    assert_eq!(source.download().unwrap(), bytes);
    let mut copy = DeviceBuffer::alloc(&device, bytes.len()).unwrap();
    copy.copy_from(&source).unwrap();
    assert_eq!(copy.download().unwrap(), bytes);
    assert!(
        DeviceBuffer::zeroed(&device, 4097)
            .unwrap()
            .download()
            .unwrap()
            .iter()
            .all(|&b| b == 0)
    );
    let empty = DeviceBuffer::from_bytes(&device, &[]).unwrap();
    assert!(empty.is_empty() && empty.download().unwrap().is_empty());
    let err = copy.upload(&bytes[1..]).unwrap_err();
    assert!(
        matches!(
            err,
            CudaError::LengthMismatch {
                expected: 100_003,
                found: 100_002,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn padded_tensors_keep_zero_padding_and_move_only_their_elements() {
    let Some(device) =
        device_or_skip("padded_tensors_keep_zero_padding_and_move_only_their_elements")
    else {
        return;
    };
    let mut rng = SplitMix64(21);
    // 9 u3 elements: 27 bits in 4 bytes, padded to 16; 40 u5 elements: 25 bytes, padded to 32.
    for (bits, n, padded) in [
        (3u32, 9usize, 16usize),
        (5, 40, 32),
        (8, 16, 16),
        (4, 0, 16),
    ] {
        let dtype = DType::UInt(bits as u8);
        let codes: Vec<u64> = (0..n).map(|_| rng.next_u64() & ((1 << bits) - 1)).collect();
        let packed = tilc_dtype::pack::pack(&codes, bits);
        let mut tensor =
            DeviceTensor::from_packed_padded(&device, dtype, &[n], &packed, 16).unwrap();
        assert_eq!(
            (tensor.byte_len(), tensor.buffer().len()),
            (packed.len(), padded),
            "u{bits} × {n}"
        );
        assert_eq!(tensor.to_packed().unwrap(), packed);
        let whole = tensor.buffer().download().unwrap();
        assert_eq!(&whole[..packed.len()], &packed[..]);
        assert!(
            whole[packed.len()..].iter().all(|&b| b == 0),
            "the padding is zero"
        );
        // Uploading again keeps the padding zero and the length.
        let ones = vec![0xFFu8; packed.len()];
        tensor.upload_packed(&ones).unwrap();
        let whole = tensor.buffer().download().unwrap();
        assert_eq!((&whole[..ones.len()], whole.len()), (&ones[..], padded));
        assert!(whole[ones.len()..].iter().all(|&b| b == 0));
        let zeros = DeviceTensor::zeros_padded(&device, dtype, &[n], 16).unwrap();
        assert_eq!(zeros.buffer().len(), padded);
    }
}
