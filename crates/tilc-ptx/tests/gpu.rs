//! The same hand-built SIMT kernels on the SIMT emulator and on a GPU (through tilc-cuda),
//! compared: bit for bit for integer and data-movement kernels and for the IEEE-exact float
//! operations (any NaN equals any NaN), within a tolerance for float `mma` (the hardware sums in
//! its own order).
//!
//! Without a driver each test still runs the emulator half, then prints 'skipped: no CUDA
//! driver'. With `TILC_REQUIRE_GPU` set (crates/tilc-ptx/gpu-check.sh sets it) a missing GPU
//! fails instead. The PTX is loaded through the driver's JIT; if the driver is too old for the
//! PTX version, a cubin prepared by `gpu-check.sh --prepare` from the same PTX is used instead.
mod common;
use common::*;
use tilc_cuda::{CudaError, Device, DeviceBuffer, KernelArg, LaunchSpec, Module};
use tilc_ptx::{Options, Target, compile};
use tilc_simt::*;

/// Device 0, or `None` after printing why the GPU half is skipped.
fn device_or_skip(test: &str) -> Option<Device> {
    match Device::open(0) {
        Ok(d) => Some(d),
        Err(e) if e.is_unavailable() => {
            assert!(
                std::env::var_os("TILC_REQUIRE_GPU").is_none(),
                "TILC_REQUIRE_GPU is set, but: {e}"
            );
            let why = if matches!(e, CudaError::NoDriver { .. }) {
                "no CUDA driver"
            } else {
                "no CUDA device"
            };
            println!("skipped: {why} ({test})");
            None
        }
        Err(e) => panic!("opening CUDA device 0: {e}"),
    }
}

fn target_of(device: &Device) -> Option<Target> {
    match device.info().compute_capability {
        (9, 0) => Some(Target::Sm90a),
        (10, 0) => Some(Target::Sm100a),
        (12, 0) => Some(Target::Sm120a),
        _ => None,
    }
}

/// Where `gpu-check.sh --prepare` puts cubins: `$TILC_PTX_CUBIN_DIR/<group>.<target>.{ptx,cubin}`.
fn prepared_cubin(group: &str, target: Target, ptx: &str) -> Option<Vec<u8>> {
    let dir = std::path::PathBuf::from(std::env::var_os("TILC_PTX_CUBIN_DIR")?);
    let saved = std::fs::read_to_string(dir.join(format!("{group}.{target}.ptx"))).ok()?;
    if saved != ptx {
        println!(
            "the prepared {group}.{target}.ptx differs from this build's PTX; not using its cubin"
        );
        return None;
    }
    std::fs::read(dir.join(format!("{group}.{target}.cubin"))).ok()
}

/// Loads the PTX of `kernels` (driver JIT), falling back to a prepared cubin.
fn load(device: &Device, group: &str, kernels: &[Kernel], target: Target) -> Module {
    let out = compile(kernels, &Options::new(target)).unwrap_or_else(|e| panic!("{e}"));
    match device.load_ptx(&out.ptx) {
        Ok(m) => {
            println!("{group}: loaded PTX for {target} through the driver's JIT");
            m
        }
        Err(jit) => {
            let cubin = prepared_cubin(group, target, &out.ptx).unwrap_or_else(|| {
                panic!("{group}: the driver rejected the PTX ({jit}) and no prepared cubin matches")
            });
            println!("{group}: the driver rejected the PTX ({jit}); loaded the prepared cubin");
            device
                .load_cubin(&cubin)
                .unwrap_or_else(|e| panic!("{group}: loading the cubin: {e}"))
        }
    }
}

/// Runs `k` on the emulator over `grid` blocks with `args`; returns the arguments afterwards.
fn emulate(k: &Kernel, grid: u32, mut args: Vec<Arg>) -> Vec<Arg> {
    run(
        k,
        Launch {
            grid: [grid, 1, 1],
            parallel: false,
        },
        &mut args,
    )
    .unwrap_or_else(|e| panic!("{}: {e}", k.name));
    args
}

/// Runs `k` from `module` on the GPU with the same initial `args`; returns each buffer argument's
/// bytes afterwards (scalars give empty vectors).
fn on_gpu(device: &Device, module: &Module, k: &Kernel, grid: u32, args: &[Arg]) -> Vec<Vec<u8>> {
    let f = module.function(&k.name).unwrap_or_else(|e| panic!("{e}"));
    let buffers: Vec<Option<DeviceBuffer>> = args
        .iter()
        .map(|a| match a {
            Arg::Buffer(b) => {
                Some(DeviceBuffer::from_bytes(device, b).unwrap_or_else(|e| panic!("{e}")))
            }
            Arg::Scalar(_) => None,
        })
        .collect();
    let kargs: Vec<KernelArg> = args
        .iter()
        .zip(&buffers)
        .zip(&k.params)
        .map(|((a, buf), p)| match (a, buf) {
            (_, Some(b)) => KernelArg::Ptr(b),
            (Arg::Scalar(bits), None) => match p.ty {
                Type::I64 => KernelArg::I64(*bits as i64),
                Type::F32 => KernelArg::F32(f32::from_bits(*bits as u32)),
                Type::F64 => KernelArg::F64(f64::from_bits(*bits)),
                _ => KernelArg::I32(*bits as i32),
            },
            (Arg::Buffer(_), None) => unreachable!("every buffer was uploaded"),
        })
        .collect();
    let spec = LaunchSpec {
        grid: [grid, 1, 1],
        block: k.block_dim,
        shared_bytes: k.shared_bytes,
    };
    f.launch(&spec, &kargs)
        .unwrap_or_else(|e| panic!("{}: {e}", k.name));
    device
        .synchronize()
        .unwrap_or_else(|e| panic!("{}: {e}", k.name));
    buffers
        .iter()
        .map(|b| {
            b.as_ref()
                .map(|b| b.download().unwrap())
                .unwrap_or_default()
        })
        .collect()
}

fn buffer(args: &[Arg], i: usize) -> &[u8] {
    match &args[i] {
        Arg::Buffer(b) => b,
        Arg::Scalar(_) => panic!("argument {i} is not a buffer"),
    }
}

/// Emulator and GPU agree bit for bit on the buffer arguments listed.
fn assert_same_bytes(name: &str, emu: &[Arg], gpu: &[Vec<u8>], outputs: &[usize]) {
    for &i in outputs {
        let (e, g) = (buffer(emu, i), &gpu[i]);
        if let Some(at) = e.iter().zip(g.iter()).position(|(a, b)| a != b) {
            panic!(
                "{name}: argument {i} differs first at byte {at}: emulator {:#04x}, GPU {:#04x}",
                e[at], g[at]
            );
        }
        assert_eq!(e.len(), g.len());
    }
}

/// The kernels whose results must match bit for bit, each with its arguments and outputs.
fn exact_cases() -> Vec<(Kernel, u32, Vec<Arg>, Vec<usize>)> {
    let mut rng = Rng::new(11);
    let mut cases = Vec::new();
    let f32s = |rng: &mut Rng, n: usize| {
        f32s_to_bytes(
            &(0..n)
                .map(|_| rng.range_f64(-1e3, 1e3) as f32)
                .collect::<Vec<_>>(),
        )
    };
    let n = 1024;
    cases.push((
        vector_add(),
        2,
        vec![
            Arg::Buffer(f32s(&mut rng, n)),
            Arg::Buffer(f32s(&mut rng, n)),
            Arg::Buffer(vec![0xff; n * 4]),
        ],
        vec![2],
    ));
    let tiles = 2;
    let packed: Vec<u8> = (0..32 * tiles * 12).map(|_| rng.next_u32() as u8).collect();
    for optimize in [false, true] {
        let mut k = dequant_u3();
        if optimize {
            passes::optimize(&mut k);
            k.name = "dequant_u3_f16_opt".into();
        }
        cases.push((
            k,
            1,
            vec![
                Arg::Buffer(packed.clone()),
                Arg::Buffer(vec![0xff; 32 * tiles * 64]),
                Arg::Scalar(tiles as u64),
            ],
            vec![1],
        ));
    }
    let words: Vec<u32> = (0..128).map(|_| rng.next_u32()).collect();
    cases.push((
        cp_async_kernel(),
        1,
        vec![
            Arg::Buffer(u32s_to_bytes(&words[..32])),
            Arg::Buffer(vec![0; 128]),
        ],
        vec![1],
    ));
    cases.push((
        barrier_reverse_kernel(),
        1,
        vec![
            Arg::Buffer(u32s_to_bytes(&words[..64])),
            Arg::Buffer(vec![0; 256]),
        ],
        vec![1],
    ));
    let src: Vec<u8> = (0..512).map(|_| rng.next_u32() as u8).collect();
    for num in [1u8, 2, 4] {
        for trans in [false, true] {
            let mut k = ldmatrix_kernel(num, trans);
            k.name = format!("ldmatrix_x{num}{}", if trans { "_trans" } else { "" });
            cases.push((
                k,
                1,
                vec![Arg::Buffer(src.clone()), Arg::Buffer(vec![0; 512])],
                vec![1],
            ));
        }
    }
    for (mode, bval) in [
        (ShflMode::Bfly, 5),
        (ShflMode::Down, 3),
        (ShflMode::Up, 2),
        (ShflMode::Idx, 9),
    ] {
        cases.push((
            shfl_kernel(mode, bval),
            1,
            vec![Arg::Buffer(vec![0; 256])],
            vec![0],
        ));
    }
    let mut k = mma_kernel(MmaKind::S8S32);
    k.name = "mma_s8".into();
    let a: Vec<u8> = (0..512).map(|_| rng.next_u32() as u8).collect();
    let b: Vec<u8> = (0..256).map(|_| rng.next_u32() as u8).collect();
    let c = u32s_to_bytes(
        &(0..128)
            .map(|i| {
                if i % 5 == 0 {
                    i32::MAX as u32 - 1000
                } else {
                    rng.next_u32()
                }
            })
            .collect::<Vec<_>>(),
    );
    cases.push((
        k,
        1,
        vec![
            Arg::Buffer(a),
            Arg::Buffer(b),
            Arg::Buffer(c),
            Arg::Buffer(vec![0; 512]),
        ],
        vec![3],
    ));
    cases
}

#[test]
fn integer_and_data_movement_kernels_match_the_emulator_bit_for_bit() {
    let cases = exact_cases();
    let results: Vec<Vec<Arg>> = cases
        .iter()
        .map(|(k, grid, args, _)| emulate(k, *grid, args.clone()))
        .collect();
    let Some(device) =
        device_or_skip("integer_and_data_movement_kernels_match_the_emulator_bit_for_bit")
    else {
        return;
    };
    let Some(target) = target_of(&device) else {
        println!("skipped: {} has no tilc target", device.info());
        return;
    };
    let kernels: Vec<Kernel> = cases.iter().map(|c| c.0.clone()).collect();
    let module = load(&device, "exact", &kernels, target);
    for ((k, grid, args, outputs), emu) in cases.iter().zip(&results) {
        let gpu = on_gpu(&device, &module, k, *grid, args);
        assert_same_bytes(&k.name, emu, &gpu, outputs);
        println!("{}: {target} matches the emulator bit for bit", k.name);
    }
}

#[test]
fn the_instruction_mix_matches_the_emulator() {
    let (k, kinds) = ops_kernel();
    let threads = (OPS_BLOCK * OPS_GRID) as usize;
    let mut mismatches = Vec::new();
    let results: Vec<(u64, Vec<Arg>, Vec<Arg>)> = [21u64, 22]
        .into_iter()
        .map(|seed| {
            let [x, y, f, g] = ops_inputs(seed);
            let args = vec![
                Arg::Buffer(x),
                Arg::Buffer(y),
                Arg::Buffer(f),
                Arg::Buffer(g),
                Arg::Buffer(vec![0xa5; threads * kinds.len() * 4]),
                Arg::Scalar(5),
            ];
            (seed, args.clone(), emulate(&k, OPS_GRID, args))
        })
        .collect();
    let Some(device) = device_or_skip("the_instruction_mix_matches_the_emulator") else {
        return;
    };
    let Some(target) = target_of(&device) else {
        return;
    };
    let module = load(&device, "ops", std::slice::from_ref(&k), target);
    for (seed, args, emu) in &results {
        let gpu = on_gpu(&device, &module, &k, OPS_GRID, args);
        let (e, g) = (bytes_to_u32s(buffer(emu, 4)), bytes_to_u32s(&gpu[4]));
        for (i, (&a, &b)) in e.iter().zip(&g).enumerate() {
            let (thread, word) = (i / kinds.len(), i % kinds.len());
            if !words_agree(kinds[word], a, b) {
                mismatches.push(format!("seed {seed} thread {thread} word {word} ({:?}): emulator {a:#010x}, GPU {b:#010x}", kinds[word]));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches[..mismatches.len().min(40)].join("\n")
    );
    println!(
        "ops: {target}: {} words × 2 seeds match the emulator",
        threads * kinds.len()
    );
}

#[test]
fn float_mma_matches_the_emulator_within_tolerance() {
    let mut rng = Rng::new(31);
    let mut cases = Vec::new();
    for (kind, name) in [
        (MmaKind::F16F32, "mma_f16"),
        (MmaKind::Bf16F32, "mma_bf16"),
        (MmaKind::Fp8F32(Fp8Format::E4M3), "mma_e4m3"),
        (MmaKind::Fp8F32(Fp8Format::E5M2), "mma_e5m2"),
    ] {
        let mut k = mma_kernel(kind);
        k.name = name.to_string();
        // Operand codes: finite values of moderate size in every format.
        let code = |rng: &mut Rng| -> u32 {
            let x = rng.range_f64(-4.0, 4.0);
            match kind {
                MmaKind::F16F32 => half::f16::from_f64(x).to_bits() as u32,
                MmaKind::Bf16F32 => half::bf16::from_f64(x).to_bits() as u32,
                MmaKind::Fp8F32(f) => tilc_simt::semantics::f32_to_fp8(x as f32, f) as u32,
                MmaKind::S8S32 => unreachable!(),
            }
        };
        let bits = if matches!(kind, MmaKind::Fp8F32(_)) {
            8
        } else {
            16
        };
        let word = |rng: &mut Rng| (0..32 / bits).fold(0u32, |w, e| w | code(rng) << (e * bits));
        let a: Vec<u32> = (0..128).map(|_| word(&mut rng)).collect();
        let b: Vec<u32> = (0..64).map(|_| word(&mut rng)).collect();
        let c: Vec<f32> = (0..128)
            .map(|_| rng.range_f64(-10.0, 10.0) as f32)
            .collect();
        let args = vec![
            Arg::Buffer(u32s_to_bytes(&a)),
            Arg::Buffer(u32s_to_bytes(&b)),
            Arg::Buffer(f32s_to_bytes(&c)),
            Arg::Buffer(vec![0; 512]),
        ];
        let emu = emulate(&k, 1, args.clone());
        cases.push((k, args, emu));
    }
    let mut k = mma_tile();
    passes::optimize(&mut k);
    let a: Vec<u8> = (0..256)
        .flat_map(|_| {
            half::f16::from_f64(rng.range_f64(-2.0, 2.0))
                .to_bits()
                .to_le_bytes()
        })
        .collect();
    let bt: Vec<u8> = (0..128)
        .flat_map(|_| {
            half::f16::from_f64(rng.range_f64(-2.0, 2.0))
                .to_bits()
                .to_le_bytes()
        })
        .collect();
    let args = vec![Arg::Buffer(a), Arg::Buffer(bt), Arg::Buffer(vec![0; 512])];
    let emu = emulate(&k, 1, args.clone());
    cases.push((k, args, emu));

    let Some(device) = device_or_skip("float_mma_matches_the_emulator_within_tolerance") else {
        return;
    };
    let Some(target) = target_of(&device) else {
        return;
    };
    let kernels: Vec<Kernel> = cases.iter().map(|c| c.0.clone()).collect();
    let module = load(&device, "mma", &kernels, target);
    for (k, args, emu) in &cases {
        let out = args.len() - 1;
        let gpu = on_gpu(&device, &module, k, 1, args);
        let e = bytes_to_u32s(buffer(emu, out));
        let g = bytes_to_u32s(&gpu[out]);
        let mut worst = 0f64;
        for (i, (&x, &y)) in e.iter().zip(&g).enumerate() {
            let (x, y) = (f32::from_bits(x) as f64, f32::from_bits(y) as f64);
            let err = (x - y).abs() / x.abs().max(1.0);
            worst = worst.max(err);
            assert!(
                err <= 1e-5,
                "{}: element {i}: emulator {x}, GPU {y}",
                k.name
            );
        }
        println!(
            "{}: {target} within {worst:.2e} (relative) of the emulator",
            k.name
        );
    }
}

/// Writes the PTX and the cubin of every group above for every target into
/// `$TILC_PTX_PREPARE_DIR`, for a GPU machine whose driver cannot JIT the PTX version (run by
/// `gpu-check.sh --prepare`; needs ptxas).
#[test]
#[ignore = "run by crates/tilc-ptx/gpu-check.sh --prepare"]
fn prepare_cubins() {
    let dir = std::path::PathBuf::from(
        std::env::var_os("TILC_PTX_PREPARE_DIR").expect("TILC_PTX_PREPARE_DIR"),
    );
    let ptxas = ptxas_or_skip("prepare_cubins").expect("ptxas");
    let mut mma: Vec<Kernel> = Vec::new();
    for (kind, name) in [
        (MmaKind::F16F32, "mma_f16"),
        (MmaKind::Bf16F32, "mma_bf16"),
        (MmaKind::Fp8F32(Fp8Format::E4M3), "mma_e4m3"),
        (MmaKind::Fp8F32(Fp8Format::E5M2), "mma_e5m2"),
    ] {
        let mut k = mma_kernel(kind);
        k.name = name.to_string();
        mma.push(k);
    }
    let mut tile = mma_tile();
    passes::optimize(&mut tile);
    mma.push(tile);
    let groups = [
        (
            "exact",
            exact_cases().into_iter().map(|c| c.0).collect::<Vec<_>>(),
        ),
        ("ops", vec![ops_kernel().0]),
        ("mma", mma),
    ];
    for (group, kernels) in &groups {
        for target in Target::ALL {
            let out = compile(kernels, &Options::new(target)).unwrap();
            let (cubin, _) = tilc_ptx::assemble_with(&ptxas, &out.ptx, target).unwrap();
            std::fs::write(dir.join(format!("{group}.{target}.ptx")), &out.ptx).unwrap();
            std::fs::write(dir.join(format!("{group}.{target}.cubin")), cubin).unwrap();
        }
    }
}
