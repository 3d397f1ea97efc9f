//! Tests that need no GPU: opening a device where there may be no driver, the launch checks
//! done on the host, the cubin checks, and the test PTX itself (assembled with ptxas when
//! there is one).

mod common;

use common::{KERNEL_NAMES, KERNELS_PTX, assemble, ptxas};
use tilc_cuda::{CudaError, Device, LaunchSpec, check_image, ptx_entry_names};

#[test]
fn opening_without_a_driver_is_an_error_not_a_panic() {
    // On a machine without libcuda.so every entry point answers NoDriver; with a driver, device
    // 0 opens or is reported missing. Run from several threads at once: the driver guard must
    // hold under concurrent first use, which is how `cargo test` meets it.
    let handles: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| {
                (
                    Device::open(0).map(|d| d.info().clone()),
                    Device::count(),
                    Device::available(),
                )
            })
        })
        .collect();
    for handle in handles {
        let (opened, count, available) = handle.join().expect("opening a device panicked");
        match opened {
            Ok(info) => {
                assert!(
                    !info.name.is_empty() && info.sm_count > 0 && info.total_memory_bytes > 0,
                    "{info:?}"
                );
                assert!(count.expect("count with a driver") >= 1);
                assert_eq!(available.expect("available with a device").name, info.name);
            }
            Err(CudaError::NoDriver { .. }) => {
                let message = Device::open(0).unwrap_err().to_string();
                assert!(
                    message.starts_with("no CUDA driver found: libcuda.so could not be loaded; "),
                    "unexpected message: {message}"
                );
                assert!(
                    matches!(count, Err(CudaError::NoDriver { .. })),
                    "{count:?}"
                );
                assert!(
                    matches!(available, Err(CudaError::NoDriver { .. })),
                    "{available:?}"
                );
                println!("skipped: no CUDA driver (the GPU half of this test): {message}");
            }
            Err(err @ CudaError::NoDevice { .. }) => {
                assert!(
                    err.to_string()
                        .starts_with("no CUDA device 0: the driver reports"),
                    "{err}"
                );
                assert!(err.is_unavailable());
            }
            Err(other) => panic!("opening device 0 failed unexpectedly: {other}"),
        }
    }
}

#[test]
fn an_ordinal_past_the_last_device_is_no_device() {
    match Device::open(4096) {
        Err(CudaError::NoDevice { ordinal, count }) => {
            assert_eq!(ordinal, 4096);
            assert!(count < 4096);
        }
        Err(CudaError::NoDriver { .. }) => println!("skipped: no CUDA driver"),
        other => panic!("expected NoDevice, got {other:?}"),
    }
}

#[test]
fn launch_specs_are_checked_on_the_host() {
    assert_eq!(LaunchSpec::linear(4, 256).check(), Ok(()));
    let max = LaunchSpec {
        grid: [i32::MAX as u32, 65535, 65535],
        block: [1024, 1, 1],
        shared_bytes: 0,
    };
    assert_eq!(max.check(), Ok(()));
    let cases = [
        (LaunchSpec::linear(0, 32), "must have no zero dimension"),
        (
            LaunchSpec {
                grid: [1, 1, 1],
                block: [32, 0, 1],
                shared_bytes: 0,
            },
            "must have no zero dimension",
        ),
        (
            LaunchSpec::linear(1, 2048),
            "block.x = 2048 exceeds the limit of 1024",
        ),
        (
            LaunchSpec {
                grid: [1, 1, 1],
                block: [1, 1, 65],
                shared_bytes: 0,
            },
            "block.z = 65 exceeds the limit of 64",
        ),
        (
            LaunchSpec {
                grid: [1, 1, 1],
                block: [64, 32, 1],
                shared_bytes: 0,
            },
            "has 2048 threads; a block has at most 1024",
        ),
        (
            LaunchSpec {
                grid: [1, 65536, 1],
                block: [1, 1, 1],
                shared_bytes: 0,
            },
            "grid.y = 65536 exceeds the limit of 65535",
        ),
        (
            LaunchSpec {
                grid: [1u32 << 31, 1, 1],
                block: [1, 1, 1],
                shared_bytes: 0,
            },
            "grid.x = 2147483648 exceeds",
        ),
    ];
    for (spec, expected) in cases {
        let err = spec
            .check()
            .expect_err(&format!("{spec:?} should be rejected"));
        assert!(err.contains(expected), "{spec:?}: {err}");
    }
}

#[test]
fn ptx_entry_names_are_read_from_the_text() {
    assert_eq!(ptx_entry_names(KERNELS_PTX), KERNEL_NAMES);
    let commented = ".visible .entry a(\n// .entry not_me\n.entry b ( .param .u32 x )";
    assert_eq!(ptx_entry_names(commented), ["a", "b"]);
}

#[test]
fn the_test_ptx_assembles_for_hopper_and_blackwell() {
    let Some(ptxas) = ptxas() else {
        println!("skipped: no ptxas (set TILC_PTXAS to check the test PTX)");
        return;
    };
    for arch in ["sm_90", "sm_100", "sm_120"] {
        let cubin = assemble(&ptxas, KERNELS_PTX, arch, "host").unwrap_or_else(|e| panic!("{e}"));
        check_image(&cubin)
            .unwrap_or_else(|e| panic!("ptxas's {arch} cubin fails the image check: {e}"));
    }
}

#[test]
fn ptxas_rejects_broken_ptx_so_the_check_above_can_fail() {
    let Some(ptxas) = ptxas() else {
        println!("skipped: no ptxas");
        return;
    };
    let broken = KERNELS_PTX.replace(
        "add.rn.f32 \t%f3, %f1, %f2;",
        "add.rn.f32 \t%f3, %f1, %nope;",
    );
    assert_ne!(broken, KERNELS_PTX, "the edit must change the PTX");
    let err = assemble(&ptxas, &broken, "sm_90", "broken")
        .expect_err("ptxas accepted an undefined register");
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn cubin_images_are_checked_before_the_driver_sees_them() {
    let not_cubin = |bytes: &[u8], expected: &str| {
        let err = check_image(bytes).expect_err("should be rejected");
        assert!(matches!(err, CudaError::NotACubin { .. }), "{err:?}");
        assert!(err.to_string().contains(expected), "{err}");
    };
    not_cubin(b"", "the image is empty");
    not_cubin(
        KERNELS_PTX.as_bytes(),
        "looks like PTX text; load it with Module::load_ptx",
    );
    not_cubin(b"\x7fELF\x02\x01", "truncated ELF header");
    not_cubin(&[0u8; 100], "neither the ELF nor the fatbin magic");
    // A fatbin header that claims more bytes than there are.
    let mut fatbin = vec![0x50, 0xED, 0x55, 0xBA, 1, 0, 16, 0];
    fatbin.extend_from_slice(&1000u64.to_le_bytes());
    fatbin.extend_from_slice(&[0u8; 100]);
    not_cubin(&fatbin, "the fatbin header declares 16 + 1000 bytes");

    let Some(ptxas) = ptxas() else {
        println!("skipped: no ptxas (the truncated-cubin half of this test)");
        return;
    };
    let cubin =
        assemble(&ptxas, KERNELS_PTX, "sm_90", "truncate").unwrap_or_else(|e| panic!("{e}"));
    check_image(&cubin).expect("a whole cubin passes");
    // Every cut through the section data or the section header table is caught (ptxas puts
    // the section headers last, so any cut past the ELF header loses some of them).
    for cut in [64, cubin.len() / 2, cubin.len() - 1] {
        let err =
            check_image(&cubin[..cut]).expect_err(&format!("a cubin cut to {cut} bytes passed"));
        assert!(
            err.to_string().contains("runs past the end"),
            "cut {cut}: {err}"
        );
    }
}
