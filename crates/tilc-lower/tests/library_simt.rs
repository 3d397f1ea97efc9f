//! Every kernel of `lang/` and `examples/`, at its default configuration and at least one other,
//! lowered to SIMT and run in the emulator on fresh random inputs at several shapes (ragged
//! edges included): the outputs must equal the VM interpreter's bit for bit (NaNs compare equal
//! to NaNs). The interpreter is the oracle; it shares no code with the lowering.
//!
//! Seeds are fresh per run (`TILC_SEED` fixes one) and printed on failure.

use std::path::Path;
use tilc_base::SourceFile;
use tilc_dtype::DType;
use tilc_vm::{ArgValue, Define, HostTensor, Kernel, Param, elaborate_source, random_tensor};

/// One configuration: file, kernel, `-D` defines, scalar arguments by name.
struct Case {
    file: &'static str,
    kernel: &'static str,
    defines: &'static [(&'static str, &'static str)],
    scalars: &'static [(&'static str, f64)],
}

const fn case(file: &'static str, kernel: &'static str, defines: &'static [(&'static str, &'static str)], scalars: &'static [(&'static str, f64)]) -> Case {
    Case { file, kernel, defines, scalars }
}

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn elaborate(c: &Case) -> Kernel {
    let path = root().join(c.file);
    let src = SourceFile::new(c.file.to_string(), std::fs::read_to_string(&path).expect("kernel source"));
    let defs: Vec<Define> = c.defines.iter().map(|(n, v)| Define { name: n.to_string(), value: v.to_string() }).collect();
    elaborate_source(&src, Some(c.kernel), &defs)
        .unwrap_or_else(|d| panic!("{} {:?}:\n{}", c.kernel, c.defines, tilc_base::render(&src, &d, tilc_base::RenderStyle::Plain)))
}

fn seed() -> u64 {
    std::env::var("TILC_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        (t as u64) ^ 0x9E37_79B9_7F4A_7C15
    })
}

/// Arguments for `k`: scalars from the case, random input tensors, poisoned outputs.
fn arguments(k: &Kernel, c: &Case, seed: u64) -> Vec<ArgValue> {
    let scalar_of = |name: &str| c.scalars.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
    let ints = |v: tilc_vm::Value| -> Option<i64> { scalar_of(k.values[v].name.as_deref()?).map(|x| x as i64) };
    k.params
        .iter()
        .enumerate()
        .map(|(i, p)| match p {
            Param::Scalar(v) => {
                let name = k.param_name(*p);
                let x = scalar_of(name).unwrap_or_else(|| panic!("{}: no value for scalar `{name}`", c.kernel));
                if k.ty(*v).dtype().is_float() { ArgValue::Float(x) } else { ArgValue::Int(x as i64) }
            }
            Param::Tensor(g) => {
                let gd = &k.globals[*g];
                let shape: Vec<usize> = gd.shape.iter().map(|e| e.eval(&ints).expect("shape evaluates") as usize).collect();
                if gd.out {
                    ArgValue::Tensor(HostTensor::filled(gd.dtype, shape, u64::MAX & gd.dtype.code_mask()))
                } else {
                    ArgValue::Tensor(random_tensor(gd.dtype, shape, seed.wrapping_add(i as u64 * 7919)))
                }
            }
        })
        .collect()
}

fn same_code(d: DType, a: u64, b: u64) -> bool {
    a == b || (d.is_float() && d.decode(a).is_nan() && d.decode(b).is_nan())
}

/// The position of a float code on the number line (sign-magnitude to two's complement), so
/// that neighbouring values have neighbouring ordinals.
fn ordinal(d: DType, c: u64) -> i64 {
    let sign = 1u64 << (d.bits() - 1);
    if d.is_signed() && c & sign != 0 { -((c & !sign) as i64) } else { c as i64 }
}

/// Whether the kernel sums float products on tensor cores, whose order differs from the VM's
/// sequential one (the VM allows `K · 2⁻²³ · Σ|a·b|`): its float outputs may then differ from
/// the interpreter's in the last place.
fn has_float_mma(lowered: &tilc_lower::Lowered) -> bool {
    lowered.info.dots.iter().any(|d| d.contains("mma F16F32") || d.contains("mma Bf16F32") || d.contains("mma Fp8F32"))
}

fn check(c: &Case) {
    check_with(c, &tilc_lower::Options::default());
}

fn check_with(c: &Case, opts: &tilc_lower::Options) {
    let k = elaborate(c);
    let lowered = tilc_lower::lower(&k, opts).unwrap_or_else(|e| panic!("{} {:?}: lowering failed: {}", c.kernel, c.defines, e.message));
    if let Err(errors) = tilc_simt::verify(&lowered.kernel) {
        panic!("{} {:?}: the lowered kernel does not verify: {errors}", c.kernel, c.defines);
    }
    let s = seed();
    let mut want = arguments(&k, c, s);
    let mut have = want.clone();
    tilc_vm::run(&k, &mut want).unwrap_or_else(|e| panic!("{} {:?} seed {s}: interpreter: {}", c.kernel, c.defines, e.message));
    tilc_lower::run(&k, &lowered, &mut have).unwrap_or_else(|e| panic!("{} {:?} seed {s}: emulator: {}", c.kernel, c.defines, e.message));
    for (i, p) in k.params.iter().enumerate() {
        let (Param::Tensor(g), ArgValue::Tensor(w), ArgValue::Tensor(h)) = (p, &want[i], &have[i]) else { continue };
        if !k.globals[*g].out {
            continue;
        }
        let d = w.dtype;
        let slack = match (d.is_float() && has_float_mma(&lowered), d.bits()) {
            (false, _) => 0,
            (true, 32) => 64,
            (true, _) => 1,
        };
        // Tensor cores sum in their own order: the VM allows K·2⁻²³·Σ|a·b| per element, which
        // near cancellation is more than an ulp of a small result. With random inputs Σ|a·b| is
        // about √K times the largest output; 2⁻¹² of the largest output covers K up to ~500.
        let largest = if slack > 0 { (0..w.codes.len()).map(|e| d.decode(w.codes[e]).abs()).filter(|x| x.is_finite()).fold(0.0, f64::max) } else { 0.0 };
        let bad: Vec<usize> = (0..w.codes.len())
            .filter(|&e| {
                !same_code(d, w.codes[e], h.codes[e])
                    && (ordinal(d, w.codes[e]) - ordinal(d, h.codes[e])).abs() > slack
                    && !(slack > 0 && (d.decode(w.codes[e]) - d.decode(h.codes[e])).abs() <= largest * 2f64.powi(-12))
            })
            .collect();
        if let Some(&e) = bad.first() {
            panic!(
                "{} {:?} {:?} seed {s} (TILC_SEED={s} reproduces): output `{}` differs in {} of {} elements; first at {e}: interpreter {:#x} ({}), emulator {:#x} ({})",
                c.kernel,
                c.defines,
                c.scalars,
                k.globals[*g].name,
                bad.len(),
                w.codes.len(),
                w.codes[e],
                d.decode(w.codes[e]),
                h.codes[e],
                d.decode(h.codes[e]),
            );
        }
    }
}

macro_rules! simt_cases {
    ($($name:ident: [$($case:expr),+ $(,)?];)*) => {$(
        #[test]
        fn $name() {
            for c in [$($case),+] {
                check(&c);
            }
        }
    )*};
}

simt_cases! {
    gemm_w3a8: [
        case("examples/gemm_w3a8.tl", "gemm_w3a8", &[], &[("m", 33.0), ("n", 128.0), ("k", 256.0)]),
        case("examples/gemm_w3a8.tl", "gemm_w3a8", &[], &[("m", 16.0), ("n", 96.0), ("k", 128.0)]),
        case("examples/gemm_w3a8.tl", "gemm_w3a8", &[("BM", "32"), ("BN", "64"), ("G", "32")], &[("m", 5.0), ("n", 70.0), ("k", 64.0)]),
        case("examples/gemm_w3a8.tl", "gemm_w3a8", &[("WARPS", "4"), ("G", "64")], &[("m", 65.0), ("n", 130.0), ("k", 128.0)]),
    ];
    gemm_a16w: [
        case("lang/gemm_a16w.tl", "gemm_a16w", &[], &[("m", 3.0), ("n", 70.0), ("k", 96.0), ("group", 32.0)]),
        case("lang/gemm_a16w.tl", "gemm_a16w", &[("TA", "bf16"), ("TW", "u3"), ("ZP", "true"), ("TS", "bf16"), ("BM", "16"), ("BN", "32")], &[("m", 17.0), ("n", 64.0), ("k", 64.0), ("group", 64.0)]),
        case("lang/gemm_a16w.tl", "gemm_a16w", &[("TW", "f6e3m2"), ("TS", "f32")], &[("m", 1.0), ("n", 64.0), ("k", 64.0), ("group", 32.0)]),
    ];
    gemm_a8w: [
        case("lang/gemm_a8w.tl", "gemm_a8w", &[], &[("m", 5.0), ("n", 64.0), ("k", 64.0), ("group", 32.0)]),
        case("lang/gemm_a8w.tl", "gemm_a8w", &[("TW", "i4"), ("OFFSET", "0"), ("BM", "16")], &[("m", 33.0), ("n", 40.0), ("k", 96.0), ("group", 96.0)]),
    ];
    gemm_fp8: [
        case("lang/gemm_fp8.tl", "gemm_fp8", &[], &[("m", 7.0), ("n", 64.0), ("k", 64.0)]),
        case("lang/gemm_fp8.tl", "gemm_fp8", &[("TW", "f4e2m1"), ("TC", "f32"), ("BM", "16")], &[("m", 16.0), ("n", 33.0), ("k", 32.0)]),
    ];
    gemm_block_scaled: [
        case("lang/gemm_mx.tl", "gemm_block_scaled", &[], &[("m", 7.0), ("n", 33.0), ("k", 64.0), ("a_tensor_scale", 1.0), ("w_tensor_scale", 1.0)]),
        case("lang/gemm_mx.tl", "gemm_block_scaled", &[("TS", "ue4m3"), ("BLOCK", "16"), ("BM", "16"), ("BN", "16")], &[("m", 16.0), ("n", 20.0), ("k", 32.0), ("a_tensor_scale", 0.5), ("w_tensor_scale", 2.0)]),
        // fp6 operands on f16 atoms (exact: every product and every 32-term sum fits f32).
        case("lang/gemm_mx.tl", "gemm_block_scaled", &[("TE", "f6e3m2"), ("TC", "f32"), ("BM", "64")], &[("m", 70.0), ("n", 40.0), ("k", 64.0), ("a_tensor_scale", 1.0), ("w_tensor_scale", 0.25)]),
        case("lang/gemm_mx.tl", "gemm_block_scaled", &[("TE", "f6e2m3"), ("TC", "bf16")], &[("m", 9.0), ("n", 32.0), ("k", 96.0), ("a_tensor_scale", 3.0), ("w_tensor_scale", 1.0)]),
    ];
    gemv_a16w: [
        case("lang/gemv.tl", "gemv_a16w", &[], &[("m", 1.0), ("n", 70.0), ("k", 128.0), ("group", 64.0)]),
        case("lang/gemv.tl", "gemv_a16w", &[("TW", "u5"), ("ZP", "true"), ("BN", "32"), ("BK", "32")], &[("m", 4.0), ("n", 40.0), ("k", 64.0), ("group", 64.0)]),
        case("lang/gemv.tl", "gemv_a16w", &[("ROWS", "1"), ("BN", "256")], &[("m", 1.0), ("n", 300.0), ("k", 128.0), ("group", 64.0)]),
    ];
    hadamard: [
        case("lang/hadamard.tl", "hadamard", &[], &[("rows", 2.0)]),
        case("lang/hadamard.tl", "hadamard", &[("T", "f32"), ("N", "64"), ("ROWS", "4")], &[("rows", 5.0)]),
    ];
    hadamard_largest: [
        case("lang/hadamard.tl", "hadamard", &[("T", "f16"), ("N", "32768")], &[("rows", 1.0)]),
    ];
    hadamard_quant: [
        case("lang/hadamard_quant.tl", "hadamard_quant_mx", &[], &[("rows", 17.0), ("cols", 64.0), ("seed", 11.0)]),
        case("lang/hadamard_quant.tl", "hadamard_quant_mx", &[("STOCHASTIC", "true"), ("TQ", "f6e2m3"), ("T", "f32")], &[("rows", 16.0), ("cols", 64.0), ("seed", 5.0)]),
        case("lang/hadamard_quant.tl", "hadamard_quant_nvfp4", &[], &[("rows", 16.0), ("cols", 64.0)]),
        case("lang/hadamard_quant.tl", "hadamard_quant_int", &[], &[("rows", 16.0), ("cols", 64.0)]),
        case("lang/hadamard_quant.tl", "hadamard_quant_int", &[("TQ", "i3"), ("G", "16")], &[("rows", 5.0), ("cols", 32.0)]),
    ];
    quantize: [
        case("lang/quantize.tl", "quantize_int", &[], &[("rows", 4.0), ("cols", 64.0), ("bh", 1.0), ("bw", 32.0), ("seed", 1.0)]),
        case("lang/quantize.tl", "quantize_int", &[("TQ", "u3"), ("STOCHASTIC", "true")], &[("rows", 3.0), ("cols", 64.0), ("bh", 1.0), ("bw", 64.0), ("seed", 9.0)]),
        case("lang/quantize.tl", "quantize_float", &[], &[("rows", 2.0), ("cols", 64.0), ("bh", 1.0), ("bw", 32.0), ("seed", 1.0)]),
        case("lang/quantize.tl", "quantize_float", &[("TQ", "f8e4m3"), ("T", "bf16")], &[("rows", 2.0), ("cols", 64.0), ("bh", 2.0), ("bw", 64.0), ("seed", 1.0)]),
        case("lang/quantize.tl", "quantize_mx", &[], &[("rows", 5.0), ("cols", 96.0)]),
        case("lang/quantize.tl", "quantize_mx", &[("TQ", "i8"), ("T", "bf16")], &[("rows", 4.0), ("cols", 64.0)]),
        case("lang/quantize.tl", "quantize_nvfp4", &[], &[("rows", 5.0), ("cols", 64.0)]),
    ];
    dequantize: [
        case("lang/dequantize.tl", "dequantize", &[], &[("rows", 2.0), ("cols", 64.0), ("bh", 1.0), ("bw", 32.0), ("tensor_scale", 1.0)]),
        case("lang/dequantize.tl", "dequantize", &[("TQ", "u4"), ("ZP", "true"), ("TO", "f16")], &[("rows", 3.0), ("cols", 64.0), ("bh", 1.0), ("bw", 64.0), ("tensor_scale", 1.0)]),
    ];
    repack: [
        case("lang/repack.tl", "repack", &[], &[("k", 32.0), ("n", 32.0)]),
        case("lang/repack.tl", "repack", &[("TW", "u3"), ("BITS", "3")], &[("k", 16.0), ("n", 32.0)]),
        case("lang/repack.tl", "unrepack", &[], &[("k", 32.0), ("n", 16.0)]),
        case("lang/repack.tl", "unrepack", &[("TW", "f6e3m2"), ("BITS", "6")], &[("k", 16.0), ("n", 16.0)]),
    ];
    examples: [
        case("examples/hadamard_quant_mxfp4.tl", "hadamard_quant_mxfp4", &[], &[("rows", 16.0), ("cols", 64.0), ("seed", 3.0)]),
        case("examples/hadamard_rows.tl", "hadamard_rows", &[], &[("rows", 1.0)]),
        case("examples/hadamard_rows.tl", "hadamard_rows", &[("N", "128"), ("T", "f32"), ("ROWS", "2")], &[("rows", 3.0)]),
    ];
}

/// The lowered SIMT IR of representative kernels at small configurations (the printer's text,
/// stable across runs), so that changes to the lowering show up in review.
#[test]
fn simt_ir_snapshots() {
    let cases = [
        ("repack_u4", case("lang/repack.tl", "repack", &[], &[])),
        ("hadamard_f32_n32", case("lang/hadamard.tl", "hadamard", &[("T", "f32"), ("N", "32")], &[])),
        ("dequantize_i4", case("lang/dequantize.tl", "dequantize", &[], &[])),
        ("gemm_w3a8_small", case("examples/gemm_w3a8.tl", "gemm_w3a8", &[("BM", "32"), ("BN", "64"), ("G", "32")], &[])),
    ];
    for (name, c) in cases {
        let k = elaborate(&c);
        let lowered = tilc_lower::lower(&k, &tilc_lower::Options::default()).expect("lowers");
        let mut text = String::new();
        for d in &lowered.info.dots {
            text.push_str(&format!("; {d}\n"));
        }
        for g in &lowered.info.global_loads {
            text.push_str(&format!("; load {g}\n"));
        }
        text.push_str(&tilc_simt::write_kernel(&lowered.kernel));
        insta::assert_snapshot!(format!("simt_{name}"), text);
    }
}

/// `let x @ layout = …` pins a layout: inference keeps it (for a value and for a variable), and
/// the lowered kernel still computes the interpreter's result.
#[test]
fn pinned_layouts_are_respected() {
    let c = case("crates/tilc-lower/tests/cases/pinned_layout.tl", "pin", &[], &[("n", 200.0)]);
    check(&c);
    let k = elaborate(&c);
    let lowered = tilc_lower::lower(&k, &tilc_lower::Options::default()).expect("lowers");
    let layouts = lowered.info.layouts.join("\n");
    assert!(layouts.contains("f32[128] = spatial(128)"), "{layouts}");
    assert!(layouts.contains("f32[128] = replicated(2).local(2).spatial(64)"), "{layouts}");
}

/// Global loads whose runs do not start on a word (odd column offsets, a row length that is
/// no multiple of the run, a negative offset): out-of-bounds elements must read as zero.
#[test]
fn ragged_loads_read_zero_outside() {
    let file = "crates/tilc-lower/tests/cases/ragged_loads.tl";
    for defines in [&[("T", "u3")][..], &[("T", "u4")], &[("T", "i8")], &[("T", "u6"), ("C", "32")], &[("T", "f16"), ("S", "f32")]] {
        for scalars in [&[("m", 20.0), ("n", 77.0), ("off", 5.0)][..], &[("m", 9.0), ("n", 64.0), ("off", 40.0)], &[("m", 8.0), ("n", 50.0), ("off", -3.0)]] {
            check(&case(file, "ragged", defines, scalars));
        }
    }
}

/// Staged mma operands are swizzled: the emulator counts fewer shared-memory wavefronts than
/// with plain rows, the results are the same, and the figures are printed for the notes.
#[test]
fn swizzled_staging_removes_bank_conflicts() {
    for c in [
        case("examples/gemm_w3a8.tl", "gemm_w3a8", &[], &[("m", 64.0), ("n", 128.0), ("k", 256.0)]),
        case("lang/gemm_a16w.tl", "gemm_a16w", &[("TW", "u4")], &[("m", 32.0), ("n", 64.0), ("k", 128.0), ("group", 64.0)]),
        case("lang/gemm_mx.tl", "gemm_block_scaled", &[], &[("m", 32.0), ("n", 32.0), ("k", 64.0), ("a_tensor_scale", 1.0), ("w_tensor_scale", 1.0)]),
    ] {
        let k = elaborate(&c);
        let s = seed();
        let args = arguments(&k, &c, s);
        let mut out = Vec::new();
        for swizzle in [false, true] {
            let lowered = tilc_lower::lower(&k, &tilc_lower::Options { swizzle, ..Default::default() }).expect("lowers");
            let mut have = args.clone();
            let summary = tilc_lower::run(&k, &lowered, &mut have).unwrap_or_else(|e| panic!("{} seed {s}: {}", c.kernel, e.message));
            let factor = summary.shared_wavefronts as f64 / summary.shared_ideal_wavefronts as f64;
            eprintln!("{} {:?} swizzle {swizzle}: {} shared wavefronts for {} ideal ({factor:.2}x)", c.kernel, c.defines, summary.shared_wavefronts, summary.shared_ideal_wavefronts);
            out.push((summary.shared_wavefronts, have));
        }
        assert!(out[1].0 < out[0].0, "{}: the swizzle saves no wavefronts ({} vs {})", c.kernel, out[1].0, out[0].0);
        assert!(out[0].1 == out[1].1, "{} seed {s}: results differ with the swizzle", c.kernel);
    }
}

/// With `Options::wgmma`, dots on 64-row tiles run as warpgroup `wgmma` k-steps over operands
/// staged in the canonical K-major layout: the emulator agrees with the interpreter (float
/// outputs within the tensor cores' rounding, as for `mma.sync`), for one and two warpgroups.
#[test]
fn wgmma_dots_match_the_interpreter() {
    let cases = [
        case("examples/gemm_w3a8.tl", "gemm_w3a8", &[], &[("m", 70.0), ("n", 200.0), ("k", 256.0)]),
        case("examples/gemm_w3a8.tl", "gemm_w3a8", &[("WARPS", "4"), ("G", "64")], &[("m", 64.0), ("n", 128.0), ("k", 128.0)]),
        case("lang/gemm_a16w.tl", "gemm_a16w", &[("TW", "u4"), ("BM", "64"), ("BN", "64")], &[("m", 65.0), ("n", 96.0), ("k", 128.0), ("group", 64.0)]),
        case("lang/gemm_fp8.tl", "gemm_fp8", &[("BM", "64")], &[("m", 64.0), ("n", 64.0), ("k", 64.0)]),
        case("lang/gemm_mx.tl", "gemm_block_scaled", &[("BM", "64")], &[("m", 64.0), ("n", 40.0), ("k", 64.0), ("a_tensor_scale", 1.0), ("w_tensor_scale", 1.0)]),
    ];
    check_engine(&cases, &tilc_lower::Options { wgmma: true, ..Default::default() }, "wgmma");
}

/// Checks that every case's dot runs on `engine` under `opts` and agrees with the interpreter.
fn check_engine(cases: &[Case], opts: &tilc_lower::Options, engine: &str) {
    for c in cases {
        let lowered = tilc_lower::lower(&elaborate(c), opts).unwrap_or_else(|e| panic!("{} {:?}: {}", c.kernel, c.defines, e.message));
        assert!(lowered.info.dots.iter().any(|d| d.contains(engine)), "{} {:?} did not take {engine}: {:?}", c.kernel, c.defines, lowered.info.dots);
        check_with(c, opts);
    }
}

/// With `Options::tcgen05`, dots on 128-row tiles run as `tcgen05.mma` k-steps issued by one
/// thread into tensor memory, committed to an mbarrier and read back with `tcgen05.ld`: the
/// emulator (which models tensor memory, its allocation, the per-warp lane quarters and
/// in-flight columns) agrees with the interpreter, for one and two warpgroups.
#[test]
fn tcgen05_dots_match_the_interpreter() {
    let cases = [
        case("examples/gemm_w3a8.tl", "gemm_w3a8", &[("BM", "128")], &[("m", 130.0), ("n", 200.0), ("k", 256.0)]),
        case("examples/gemm_w3a8.tl", "gemm_w3a8", &[("BM", "128"), ("BN", "64"), ("WARPS", "4"), ("G", "64")], &[("m", 128.0), ("n", 64.0), ("k", 128.0)]),
        case("lang/gemm_a16w.tl", "gemm_a16w", &[("TW", "u4"), ("BM", "128"), ("BN", "48")], &[("m", 129.0), ("n", 96.0), ("k", 128.0), ("group", 64.0)]),
        case("lang/gemm_fp8.tl", "gemm_fp8", &[("BM", "128")], &[("m", 128.0), ("n", 64.0), ("k", 64.0)]),
        case("lang/gemm_mx.tl", "gemm_block_scaled", &[("BM", "128")], &[("m", 128.0), ("n", 40.0), ("k", 64.0), ("a_tensor_scale", 1.0), ("w_tensor_scale", 1.0)]),
    ];
    check_engine(&cases, &tilc_lower::Options { tcgen05: true, ..Default::default() }, "tcgen05");
}

/// The emulator catches the tcgen05 protocol errors a GPU would hide or hang on: reading the
/// accumulator back before waiting for the mbarrier phase, waiting for a phase that never
/// completes, and leaving tensor memory allocated.
#[test]
fn tcgen05_protocol_errors_are_caught() {
    let c = case("examples/gemm_w3a8.tl", "gemm_w3a8", &[("BM", "128"), ("BN", "64"), ("WARPS", "4"), ("G", "64")], &[("m", 128.0), ("n", 64.0), ("k", 128.0)]);
    let k = elaborate(&c);
    let opts = tilc_lower::Options { tcgen05: true, ..Default::default() };
    let lowered = tilc_lower::lower(&k, &opts).expect("lowers");
    let args = arguments(&k, &c, seed());
    let mutate = |f: &dyn Fn(&mut tilc_simt::Kernel) -> bool| {
        let mut bad = lowered.clone();
        assert!(f(&mut bad.kernel), "the mutation found its instruction");
        let mut have = args.clone();
        tilc_lower::run(&k, &bad, &mut have).err().map(|e| e.message).unwrap_or_default()
    };
    let all_insts = |k: &tilc_simt::Kernel| k.insts.keys().collect::<Vec<_>>();
    // No wait: the mbarrier wait becomes a fence.
    let no_wait = mutate(&|k| {
        let waits: Vec<_> = all_insts(k).into_iter().filter(|&i| matches!(k.insts[i].kind, tilc_simt::InstKind::MbarrierWait { .. })).collect();
        waits.iter().for_each(|&i| k.insts[i].kind = tilc_simt::InstKind::Tcgen05Fence { after: true });
        !waits.is_empty()
    });
    assert!(no_wait.contains("whose completion no thread has waited for"), "{no_wait}");
    // Waiting on the wrong parity: the phase never completes.
    let wrong_parity = mutate(&|k| {
        let commits: Vec<_> = all_insts(k).into_iter().filter(|&i| matches!(k.insts[i].kind, tilc_simt::InstKind::Tcgen05Commit { .. })).collect();
        commits.iter().for_each(|&i| k.insts[i].kind = tilc_simt::InstKind::Tcgen05Fence { after: false });
        !commits.is_empty()
    });
    assert!(wrong_parity.contains("would never complete"), "{wrong_parity}");
    // No dealloc.
    let leak = mutate(&|k| {
        let frees: Vec<_> = all_insts(k).into_iter().filter(|&i| matches!(k.insts[i].kind, tilc_simt::InstKind::TmemDealloc { .. })).collect();
        frees.iter().for_each(|&i| k.insts[i].kind = tilc_simt::InstKind::Tcgen05Fence { after: true });
        !frees.is_empty()
    });
    assert!(leak.contains("still allocated when the block exits"), "{leak}");
}

/// Shared tensors: a `copy_async` stage, a sub-byte shared tensor written by many threads (its
/// words by atomics), and two tensors with disjoint lifetimes that the planner overlays.
#[test]
fn shared_tensors_stage_and_reuse() {
    let file = "crates/tilc-lower/tests/cases/shared_stages.tl";
    check(&case(file, "stage", &[], &[("m", 20.0), ("k", 64.0)]));
    check(&case(file, "stage", &[], &[("m", 16.0), ("k", 70.0)]));
    check(&case(file, "stage", &[], &[("m", 1.0), ("k", 64.0)]));
    let k = elaborate(&case("crates/tilc-lower/tests/cases/shared_stages.tl", "stage", &[], &[]));
    let lowered = tilc_lower::lower(&k, &tilc_lower::Options::default()).expect("lowers");
    // f16[2, 16, 64] = 4096 bytes (+4, rounded to 16) and u3[16, 64] = 384 bytes: overlaid.
    assert_eq!(lowered.info.shared_user_bytes, 4112, "the second tensor reuses the first one's bytes");
}
