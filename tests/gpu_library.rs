//! Every kernel of `lang/` and `examples/` through the GPU path of the embedding API.
//!
//! - Without a GPU (CI): each kernel compiles for `sm_90a` through `tilc::Compiler` — SIMT
//!   lowering, PTX, and the cubin where ptxas is installed — and its launch description matches
//!   its signature; GPU kernels check their arguments before touching a driver; a launch
//!   without a driver is the error 'no CUDA driver found'; the compiled code round-trips
//!   through the disk cache.
//! - With a GPU: each configuration is launched at two or more shapes (ragged edges included)
//!   on fresh seeded inputs and its outputs compared with the VM interpreter's, bit for bit
//!   (NaNs equal NaNs); float outputs of kernels that sum float products on tensor cores may
//!   differ in the last place, as in `crates/tilc-lower/tests/library_simt.rs`. Seeds are
//!   printed on failure (`TILC_SEED` fixes one).
//!
//! GPU tests print 'skipped: no CUDA driver found …' and pass where there is no GPU, and fail
//! instead with `TILC_REQUIRE_GPU=1` (benches/gpu/run.sh sets it). Each configuration compiles
//! once per process: the tests share one memoising [`Compiler`] per target.
//!
//! The kernel files are found under `$TILC_REPO_ROOT`, else the repository this test was built
//! in, else the working directory, so that a test binary built elsewhere runs from a copy of the
//! repository (benches/gpu/prepare.sh).

use std::path::PathBuf;
use std::sync::OnceLock;
use tilc::{Arg, Compiler, DType, Error, Kernel, Target, Tensor, arg, arg_mut};
use tilc_vm::Param;

/// One configuration: file, kernel, `-D` defines, and the shapes (scalar arguments by name) to
/// launch it at.
struct Case {
    file: &'static str,
    kernel: &'static str,
    defines: &'static [(&'static str, &'static str)],
    shapes: &'static [&'static [(&'static str, f64)]],
}

const fn case(file: &'static str, kernel: &'static str, defines: &'static [(&'static str, &'static str)], shapes: &'static [&'static [(&'static str, f64)]]) -> Case {
    Case { file, kernel, defines, shapes }
}

const W3A8: &str = "examples/gemm_w3a8.tl";
const A16W: &str = "lang/gemm_a16w.tl";
const A8W: &str = "lang/gemm_a8w.tl";
const FP8: &str = "lang/gemm_fp8.tl";
const MX: &str = "lang/gemm_mx.tl";
const GEMV: &str = "lang/gemv.tl";
const HADAMARD: &str = "lang/hadamard.tl";
const HQ: &str = "lang/hadamard_quant.tl";
const QUANT: &str = "lang/quantize.tl";
const DEQUANT: &str = "lang/dequantize.tl";
const REPACK: &str = "lang/repack.tl";

/// Every library configuration, by test.
fn families() -> Vec<(&'static str, Vec<Case>)> {
    vec![
        (
            "gemm_w3a8",
            vec![
                case(W3A8, "gemm_w3a8", &[], &[&[("m", 33.0), ("n", 128.0), ("k", 256.0)], &[("m", 70.0), ("n", 200.0), ("k", 384.0)]]),
                case(W3A8, "gemm_w3a8", &[("BM", "32"), ("BN", "64"), ("G", "32")], &[&[("m", 5.0), ("n", 70.0), ("k", 64.0)], &[("m", 40.0), ("n", 130.0), ("k", 96.0)]]),
            ],
        ),
        (
            "gemm_a16w",
            vec![
                case(A16W, "gemm_a16w", &[], &[&[("m", 3.0), ("n", 70.0), ("k", 96.0), ("group", 32.0)], &[("m", 40.0), ("n", 130.0), ("k", 128.0), ("group", 64.0)]]),
                case(
                    A16W,
                    "gemm_a16w",
                    &[("TA", "bf16"), ("TW", "u3"), ("ZP", "true"), ("TS", "bf16"), ("BM", "16"), ("BN", "32")],
                    &[&[("m", 17.0), ("n", 64.0), ("k", 64.0), ("group", 64.0)], &[("m", 5.0), ("n", 100.0), ("k", 128.0), ("group", 64.0)]],
                ),
                case(A16W, "gemm_a16w", &[("TW", "f6e3m2"), ("TS", "f32")], &[&[("m", 1.0), ("n", 64.0), ("k", 64.0), ("group", 32.0)], &[("m", 20.0), ("n", 70.0), ("k", 96.0), ("group", 32.0)]]),
            ],
        ),
        (
            "gemm_a8w",
            vec![
                case(A8W, "gemm_a8w", &[], &[&[("m", 5.0), ("n", 64.0), ("k", 64.0), ("group", 32.0)], &[("m", 33.0), ("n", 100.0), ("k", 128.0), ("group", 64.0)]]),
                case(A8W, "gemm_a8w", &[("TW", "i4"), ("OFFSET", "0"), ("BM", "16")], &[&[("m", 33.0), ("n", 40.0), ("k", 96.0), ("group", 96.0)], &[("m", 7.0), ("n", 64.0), ("k", 192.0), ("group", 96.0)]]),
            ],
        ),
        (
            "gemm_fp8",
            vec![
                case(FP8, "gemm_fp8", &[], &[&[("m", 7.0), ("n", 64.0), ("k", 64.0)], &[("m", 40.0), ("n", 100.0), ("k", 96.0)]]),
                case(FP8, "gemm_fp8", &[("TW", "f4e2m1"), ("TC", "f32"), ("BM", "16")], &[&[("m", 16.0), ("n", 33.0), ("k", 32.0)], &[("m", 5.0), ("n", 70.0), ("k", 64.0)]]),
            ],
        ),
        (
            "gemm_block_scaled",
            vec![
                case(
                    MX,
                    "gemm_block_scaled",
                    &[],
                    &[
                        &[("m", 7.0), ("n", 33.0), ("k", 64.0), ("a_tensor_scale", 1.0), ("w_tensor_scale", 1.0)],
                        &[("m", 40.0), ("n", 70.0), ("k", 128.0), ("a_tensor_scale", 0.5), ("w_tensor_scale", 2.0)],
                    ],
                ),
                case(
                    MX,
                    "gemm_block_scaled",
                    &[("TS", "ue4m3"), ("BLOCK", "16"), ("BM", "16"), ("BN", "16")],
                    &[
                        &[("m", 16.0), ("n", 20.0), ("k", 32.0), ("a_tensor_scale", 0.5), ("w_tensor_scale", 2.0)],
                        &[("m", 3.0), ("n", 40.0), ("k", 64.0), ("a_tensor_scale", 1.0), ("w_tensor_scale", 1.0)],
                    ],
                ),
            ],
        ),
        (
            "gemv_a16w",
            vec![
                case(GEMV, "gemv_a16w", &[], &[&[("m", 1.0), ("n", 70.0), ("k", 128.0), ("group", 64.0)], &[("m", 3.0), ("n", 100.0), ("k", 256.0), ("group", 128.0)]]),
                case(GEMV, "gemv_a16w", &[("TW", "u5"), ("ZP", "true"), ("BN", "32"), ("BK", "32")], &[&[("m", 4.0), ("n", 40.0), ("k", 64.0), ("group", 64.0)], &[("m", 16.0), ("n", 70.0), ("k", 128.0), ("group", 32.0)]]),
                case(GEMV, "gemv_a16w", &[("ROWS", "1"), ("BN", "256")], &[&[("m", 1.0), ("n", 300.0), ("k", 128.0), ("group", 64.0)], &[("m", 1.0), ("n", 4096.0), ("k", 256.0), ("group", 128.0)]]),
            ],
        ),
        (
            "hadamard",
            vec![
                case(HADAMARD, "hadamard", &[], &[&[("rows", 2.0)], &[("rows", 3.0)]]),
                case(HADAMARD, "hadamard", &[("T", "f32"), ("N", "64"), ("ROWS", "4")], &[&[("rows", 5.0)], &[("rows", 2.0)]]),
                case(HADAMARD, "hadamard", &[("T", "f16"), ("N", "32768")], &[&[("rows", 1.0)], &[("rows", 2.0)]]),
            ],
        ),
        (
            "hadamard_quant",
            vec![
                case(HQ, "hadamard_quant_mx", &[], &[&[("rows", 17.0), ("cols", 64.0), ("seed", 11.0)], &[("rows", 3.0), ("cols", 128.0), ("seed", 2.0)]]),
                case(HQ, "hadamard_quant_mx", &[("STOCHASTIC", "true"), ("TQ", "f6e2m3"), ("T", "f32")], &[&[("rows", 16.0), ("cols", 64.0), ("seed", 5.0)], &[("rows", 5.0), ("cols", 96.0), ("seed", 7.0)]]),
                case(HQ, "hadamard_quant_nvfp4", &[], &[&[("rows", 16.0), ("cols", 64.0)], &[("rows", 7.0), ("cols", 96.0)]]),
                case(HQ, "hadamard_quant_int", &[], &[&[("rows", 16.0), ("cols", 64.0)], &[("rows", 5.0), ("cols", 96.0)]]),
                case(HQ, "hadamard_quant_int", &[("TQ", "i3"), ("G", "16")], &[&[("rows", 5.0), ("cols", 32.0)], &[("rows", 18.0), ("cols", 64.0)]]),
            ],
        ),
        (
            "quantize",
            vec![
                case(QUANT, "quantize_int", &[], &[&[("rows", 4.0), ("cols", 64.0), ("bh", 1.0), ("bw", 32.0), ("seed", 1.0)], &[("rows", 5.0), ("cols", 80.0), ("bh", 1.0), ("bw", 80.0), ("seed", 3.0)]]),
                case(
                    QUANT,
                    "quantize_int",
                    &[("TQ", "u3"), ("STOCHASTIC", "true")],
                    &[&[("rows", 3.0), ("cols", 64.0), ("bh", 1.0), ("bw", 64.0), ("seed", 9.0)], &[("rows", 6.0), ("cols", 40.0), ("bh", 2.0), ("bw", 40.0), ("seed", 4.0)]],
                ),
                case(QUANT, "quantize_float", &[], &[&[("rows", 2.0), ("cols", 64.0), ("bh", 1.0), ("bw", 32.0), ("seed", 1.0)], &[("rows", 5.0), ("cols", 96.0), ("bh", 5.0), ("bw", 32.0), ("seed", 2.0)]]),
                case(
                    QUANT,
                    "quantize_float",
                    &[("TQ", "f8e4m3"), ("T", "bf16")],
                    &[&[("rows", 2.0), ("cols", 64.0), ("bh", 2.0), ("bw", 64.0), ("seed", 1.0)], &[("rows", 3.0), ("cols", 70.0), ("bh", 3.0), ("bw", 70.0), ("seed", 5.0)]],
                ),
                case(QUANT, "quantize_mx", &[], &[&[("rows", 5.0), ("cols", 96.0)], &[("rows", 2.0), ("cols", 32.0)]]),
                case(QUANT, "quantize_mx", &[("TQ", "i8"), ("T", "bf16")], &[&[("rows", 4.0), ("cols", 64.0)], &[("rows", 7.0), ("cols", 160.0)]]),
                case(QUANT, "quantize_nvfp4", &[], &[&[("rows", 5.0), ("cols", 64.0)], &[("rows", 6.0), ("cols", 48.0)]]),
            ],
        ),
        (
            "dequantize",
            vec![
                case(
                    DEQUANT,
                    "dequantize",
                    &[],
                    &[&[("rows", 2.0), ("cols", 64.0), ("bh", 1.0), ("bw", 32.0), ("tensor_scale", 1.0)], &[("rows", 3.0), ("cols", 80.0), ("bh", 3.0), ("bw", 80.0), ("tensor_scale", 0.5)]],
                ),
                case(
                    DEQUANT,
                    "dequantize",
                    &[("TQ", "u4"), ("ZP", "true"), ("TO", "f16")],
                    &[&[("rows", 3.0), ("cols", 64.0), ("bh", 1.0), ("bw", 64.0), ("tensor_scale", 1.0)], &[("rows", 4.0), ("cols", 96.0), ("bh", 2.0), ("bw", 32.0), ("tensor_scale", 2.0)]],
                ),
            ],
        ),
        (
            "repack",
            vec![
                case(REPACK, "repack", &[], &[&[("k", 32.0), ("n", 32.0)], &[("k", 48.0), ("n", 64.0)]]),
                case(REPACK, "repack", &[("TW", "u3"), ("BITS", "3")], &[&[("k", 16.0), ("n", 32.0)], &[("k", 32.0), ("n", 48.0)]]),
                case(REPACK, "unrepack", &[], &[&[("k", 32.0), ("n", 16.0)], &[("k", 48.0), ("n", 32.0)]]),
                case(REPACK, "unrepack", &[("TW", "f6e3m2"), ("BITS", "6")], &[&[("k", 16.0), ("n", 16.0)], &[("k", 32.0), ("n", 48.0)]]),
            ],
        ),
        (
            "examples",
            vec![
                case("examples/hadamard_quant_mxfp4.tl", "hadamard_quant_mxfp4", &[], &[&[("rows", 16.0), ("cols", 64.0), ("seed", 3.0)], &[("rows", 5.0), ("cols", 96.0), ("seed", 8.0)]]),
                case("examples/hadamard_rows.tl", "hadamard_rows", &[], &[&[("rows", 1.0)], &[("rows", 3.0)]]),
                case("examples/hadamard_rows.tl", "hadamard_rows", &[("N", "128"), ("T", "f32"), ("ROWS", "2")], &[&[("rows", 3.0)], &[("rows", 4.0)]]),
            ],
        ),
    ]
}

fn cases(family: &str) -> Vec<Case> {
    families().into_iter().find(|(f, _)| *f == family).map(|(_, c)| c).unwrap_or_else(|| panic!("no family `{family}`"))
}

/// The repository: `$TILC_REPO_ROOT`, else the one this test was built in, else the working
/// directory.
fn root() -> PathBuf {
    if let Some(dir) = std::env::var_os("TILC_REPO_ROOT") {
        return PathBuf::from(dir);
    }
    let built = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if built.join("lang").is_dir() { built } else { std::env::current_dir().expect("a working directory") }
}

/// One memoising compiler per target, shared by every test of this binary, without the disk
/// cache (the tests compile what they check).
fn compiler(target: Target) -> Compiler {
    static COMPILERS: OnceLock<Vec<Compiler>> = OnceLock::new();
    let all = COMPILERS.get_or_init(|| Target::ALL.iter().map(|&t| Compiler::new(t).no_cache().progress(false)).collect());
    all[Target::ALL.iter().position(|&t| t == target).expect("a known target")].clone()
}

fn compile(c: &Case, target: Target) -> Kernel {
    let source = std::fs::read_to_string(root().join(c.file)).unwrap_or_else(|e| panic!("{}: {e} (set TILC_REPO_ROOT to the repository)", c.file));
    let compiler = c.defines.iter().fold(compiler(target), |comp, (n, v)| comp.define(n, v));
    compiler.compile_source(c.file, &source, c.kernel).unwrap_or_else(|e| panic!("{} {:?} for {target}: {e}", c.kernel, c.defines))
}

fn fresh_seed() -> u64 {
    std::env::var("TILC_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        (t as u64) ^ 0x9E37_79B9_7F4A_7C15
    })
}

/// A launch's values: scalars from the shape, seeded random inputs, outputs poisoned with
/// all-ones codes so that unwritten elements show.
enum Value {
    Int(i64),
    Float(f64),
    Tensor(Tensor),
}

fn arguments(k: &Kernel, shape: &[(&str, f64)], seed: u64) -> Vec<Value> {
    let vm = k.vm();
    let scalar_of = |name: &str| shape.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
    let ints = |v: tilc_vm::Value| -> Option<i64> { scalar_of(vm.values[v].name.as_deref()?).map(|x| x as i64) };
    vm.params
        .iter()
        .enumerate()
        .map(|(i, p)| match p {
            Param::Scalar(v) => {
                let name = vm.param_name(*p);
                let x = scalar_of(name).unwrap_or_else(|| panic!("{}: no value for scalar `{name}`", vm.name));
                if vm.ty(*v).dtype().is_float() { Value::Float(x) } else { Value::Int(x as i64) }
            }
            Param::Tensor(g) => {
                let gd = &vm.globals[*g];
                let dims: Vec<usize> = gd.shape.iter().map(|e| e.eval(&ints).expect("shape evaluates") as usize).collect();
                let n: usize = dims.iter().product();
                Value::Tensor(if gd.out {
                    Tensor::from_codes(gd.dtype, &dims, &vec![gd.dtype.code_mask(); n]).expect("poisoned output")
                } else {
                    Tensor::random(gd.dtype, &dims, seed.wrapping_add(i as u64 * 7919)).expect("random input")
                })
            }
        })
        .collect()
}

/// Launches `k` on `values`; outputs are written back into them.
fn launch(k: &Kernel, values: &mut [Value]) -> Result<(), Error> {
    let vm = k.vm();
    let outs: Vec<bool> = vm.params.iter().map(|p| matches!(p, Param::Tensor(g) if vm.globals[*g].out)).collect();
    let mut args: Vec<Arg<'_>> = values
        .iter_mut()
        .zip(&outs)
        .map(|(v, &out)| match v {
            Value::Int(i) => arg(*i),
            Value::Float(x) => arg(*x),
            Value::Tensor(t) => {
                if out {
                    arg_mut(t)
                } else {
                    arg(&*t)
                }
            }
        })
        .collect();
    k.launch(&mut args).map(|_| ())
}

fn same_code(d: DType, a: u64, b: u64) -> bool {
    a == b || (d.is_float() && d.decode(a).is_nan() && d.decode(b).is_nan())
}

/// The position of a float code on the number line, so that neighbouring values have
/// neighbouring ordinals.
fn ordinal(d: DType, c: u64) -> i64 {
    let sign = 1u64 << (d.bits() - 1);
    if d.is_signed() && c & sign != 0 { -((c & !sign) as i64) } else { c as i64 }
}

/// The device's target, or `None` after printing why the test is skipped; with
/// `TILC_REQUIRE_GPU` set, a missing GPU fails the test instead.
fn gpu_or_skip(test: &str) -> Option<Target> {
    match Target::for_device() {
        Ok(t) => Some(t),
        Err(reason) => {
            assert!(std::env::var_os("TILC_REQUIRE_GPU").is_none(), "TILC_REQUIRE_GPU is set, but: {reason}");
            println!("skipped: {reason} ({test})");
            None
        }
    }
}

/// Runs every configuration of `family` on the GPU and on the interpreter at each of its
/// shapes and compares the outputs.
fn check_family(family: &str) {
    let Some(target) = gpu_or_skip(family) else { return };
    for c in cases(family) {
        let gpu = compile(&c, target);
        let interp = compile(&c, Target::Interp);
        compare(&c, &gpu, &interp, target);
    }
}

/// Launches `gpu` and `interp` (the same configuration) at each of `c`'s shapes on the same
/// fresh inputs and compares the outputs.
fn compare(c: &Case, gpu: &Kernel, interp: &Kernel, target: Target) {
    {
        let code = gpu.gpu_code().expect("GPU code");
        for shape in c.shapes {
            let seed = fresh_seed();
            let what = format!("{} {:?} {:?} on {target} seed {seed} (TILC_SEED={seed} reproduces)", c.kernel, c.defines, shape);
            let mut want = arguments(interp, shape, seed);
            let mut have = arguments(gpu, shape, seed);
            launch(interp, &mut want).unwrap_or_else(|e| panic!("{what}: interpreter: {e}"));
            launch(gpu, &mut have).unwrap_or_else(|e| panic!("{what}: GPU: {e}"));
            let vm = gpu.vm();
            for (i, p) in vm.params.iter().enumerate() {
                let (Param::Tensor(g), Value::Tensor(w), Value::Tensor(h)) = (p, &want[i], &have[i]) else { continue };
                if !vm.globals[*g].out {
                    continue;
                }
                let d = w.dtype();
                let slack = match (d.is_float() && code.has_float_mma(), d.bits()) {
                    (false, _) => 0,
                    (true, 32) => 64,
                    (true, _) => 1,
                };
                let (wc, hc) = (w.codes(), h.codes());
                // As in library_simt.rs: the VM allows tensor cores K·2⁻²³·Σ|a·b| per element,
                // more than an ulp near cancellation; 2⁻¹² of the largest output covers it.
                let largest = if slack > 0 { wc.iter().map(|&c| d.decode(c).abs()).filter(|x| x.is_finite()).fold(0.0, f64::max) } else { 0.0 };
                let bad: Vec<usize> = (0..wc.len())
                    .filter(|&e| {
                        !same_code(d, wc[e], hc[e])
                            && (ordinal(d, wc[e]) - ordinal(d, hc[e])).abs() > slack
                            && !(slack > 0 && (d.decode(wc[e]) - d.decode(hc[e])).abs() <= largest * 2f64.powi(-12))
                    })
                    .collect();
                if let Some(&e) = bad.first() {
                    panic!(
                        "{what}: output `{}` differs in {} of {} elements; first at {e}: interpreter {:#x} ({}), GPU {:#x} ({})",
                        vm.globals[*g].name,
                        bad.len(),
                        wc.len(),
                        wc[e],
                        d.decode(wc[e]),
                        hc[e],
                        d.decode(hc[e])
                    );
                }
            }
        }
        println!("{} {:?}: {} shapes match the interpreter on {target}", c.kernel, c.defines, c.shapes.len());
    }
}

macro_rules! gpu_tests {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            check_family(stringify!($name));
        }
    )*};
}

gpu_tests!(gemm_w3a8, gemm_a16w, gemm_a8w, gemm_fp8, gemm_block_scaled, gemv_a16w, hadamard, hadamard_quant, quantize, dequantize, repack, examples);

/// With a GPU: the asynchronous tensor cores of `Compiler::async_tensor_cores` — `wgmma` on an
/// sm_90a device, `tcgen05` on an sm_100a one — give the interpreter's results (the same
/// configurations as the emulator tests in `crates/tilc-lower/tests/library_simt.rs`). This is
/// the hardware check both wait for before they become the default.
#[test]
fn async_tensor_cores_match_the_interpreter() {
    let Some(target) = gpu_or_skip("async_tensor_cores_match_the_interpreter") else { return };
    const SHAPE_W3A8: &[&[(&str, f64)]] = &[&[("m", 70.0), ("n", 200.0), ("k", 256.0)], &[("m", 128.0), ("n", 128.0), ("k", 128.0)]];
    let (engine, cases) = match target {
        Target::Sm90a => (
            "wgmma",
            vec![
                case(W3A8, "gemm_w3a8", &[], SHAPE_W3A8),
                case(W3A8, "gemm_w3a8", &[("WARPS", "4"), ("G", "64")], &[&[("m", 64.0), ("n", 128.0), ("k", 128.0)]]),
                case(A16W, "gemm_a16w", &[("TW", "u4"), ("BM", "64"), ("BN", "64")], &[&[("m", 65.0), ("n", 96.0), ("k", 128.0), ("group", 64.0)]]),
                case(FP8, "gemm_fp8", &[("BM", "64")], &[&[("m", 64.0), ("n", 64.0), ("k", 64.0)]]),
                case(MX, "gemm_block_scaled", &[("BM", "64")], &[&[("m", 64.0), ("n", 40.0), ("k", 64.0), ("a_tensor_scale", 1.0), ("w_tensor_scale", 1.0)]]),
            ],
        ),
        Target::Sm100a => (
            "tcgen05",
            vec![
                case(W3A8, "gemm_w3a8", &[("BM", "128")], SHAPE_W3A8),
                case(W3A8, "gemm_w3a8", &[("BM", "128"), ("BN", "64"), ("WARPS", "4"), ("G", "64")], &[&[("m", 128.0), ("n", 64.0), ("k", 128.0)]]),
                case(A16W, "gemm_a16w", &[("TW", "u4"), ("BM", "128"), ("BN", "48")], &[&[("m", 129.0), ("n", 96.0), ("k", 128.0), ("group", 64.0)]]),
                case(FP8, "gemm_fp8", &[("BM", "128")], &[&[("m", 128.0), ("n", 64.0), ("k", 64.0)]]),
                case(MX, "gemm_block_scaled", &[("BM", "128")], &[&[("m", 128.0), ("n", 40.0), ("k", 64.0), ("a_tensor_scale", 1.0), ("w_tensor_scale", 1.0)]]),
            ],
        ),
        other => {
            println!("skipped: {other} has neither wgmma nor tcgen05 (async_tensor_cores_match_the_interpreter)");
            return;
        }
    };
    for c in &cases {
        let source = std::fs::read_to_string(root().join(c.file)).unwrap_or_else(|e| panic!("{}: {e}", c.file));
        let fast = c.defines.iter().fold(Compiler::new(target).no_cache().async_tensor_cores(true), |comp, (n, v)| comp.define(n, v));
        let gpu = fast.compile_source(c.file, &source, c.kernel).unwrap_or_else(|e| panic!("{} {:?}: {e}", c.kernel, c.defines));
        let dots = &gpu.gpu_code().expect("GPU code").dots;
        assert!(dots.iter().any(|d| d.contains(engine)), "{} {:?} did not take {engine}: {dots:?}", c.kernel, c.defines);
        let interp = compile(c, Target::Interp);
        compare(c, &gpu, &interp, target);
    }
}

/// No GPU needed: every configuration compiles for sm_90a, and its PTX and launch description
/// say what the signature says.
#[test]
fn every_library_kernel_compiles_to_ptx_with_its_launch_description() {
    use rayon::prelude::*;
    let target = Target::Sm90a;
    let ptxas = tilc_ptx::find_ptxas();
    let all: Vec<Case> = families().into_iter().flat_map(|(_, f)| f).collect();
    // Compile in parallel (LLVM and ptxas dominate); check in order.
    let kernels: Vec<Kernel> = all.par_iter().map(|c| compile(c, target)).collect();
    let mut count = 0;
    for (c, k) in all.iter().zip(kernels) {
        {
            let what = format!("{} {:?}", c.kernel, c.defines);
            let code = k.gpu_code().unwrap_or_else(|| panic!("{what}: no GPU code"));
            assert_eq!(code.target, target);
            assert!(k.ptx().is_some_and(|p| p.contains(".target sm_90a") && p.contains(&format!(".entry {}(", c.kernel))), "{what}: PTX without the entry");
            let vm = k.vm();
            assert_eq!(code.params.len(), vm.params.len(), "{what}");
            for (p, gp) in vm.params.iter().zip(&code.params) {
                assert_eq!(gp.name, vm.param_name(*p), "{what}");
                match p {
                    Param::Scalar(v) => {
                        let d = vm.ty(*v).dtype();
                        assert!(!gp.is_tensor && gp.dtype == d, "{what}: {gp:?}");
                        let want = match (d.is_float(), d.bits()) {
                            (true, 64) => "f64",
                            (true, _) => "f32",
                            (false, b) if b <= 32 => "i32",
                            (false, _) => "i64",
                        };
                        assert_eq!(gp.abi.name(), want, "{what}: scalar `{}` of type {d}", gp.name);
                    }
                    Param::Tensor(g) => {
                        let gd = &vm.globals[*g];
                        assert!(gp.is_tensor && gp.dtype == gd.dtype && gp.out == gd.out && gp.abi.name() == "ptr", "{what}: {gp:?}");
                    }
                }
            }
            assert_eq!(code.block, [vm.warps * 32, 1, 1], "{what}");
            assert!(code.shared_bytes <= 227 * 1024, "{what}: {} bytes of shared memory", code.shared_bytes);
            if code.dots.iter().any(|d| d.contains(": mma ")) {
                assert!(k.ptx().is_some_and(|p| p.contains("mma.sync")), "{what}: a tensor-core dot without mma.sync in the PTX");
            }
            if ptxas.is_some() {
                let cubin = code.cubin.as_deref().unwrap_or_else(|| panic!("{what}: ptxas is installed but no cubin"));
                assert_eq!(&cubin[..4], b"\x7fELF", "{what}");
                let r = code.resources.as_ref().unwrap_or_else(|| panic!("{what}: no ptxas report"));
                assert!(r.name == c.kernel && r.registers > 0 && r.dynamic_shared_bytes == code.shared_bytes, "{what}: {r:?}");
            }
            count += 1;
        }
    }
    assert!(count >= 35, "only {count} configurations");
    if ptxas.is_none() {
        println!("note: no ptxas found (TILC_PTXAS, .tools/); compiled PTX only");
    }
}

/// A small kernel for the API tests: y = alpha · x (f32) + w (u4), over n elements.
const SCALE_ADD: &str = "
kernel scale_add<B = 64>(n: i32, alpha: f32, x: global f32[n], w: global u4[n], y: out global f32[n])
    grid [cdiv(n, B)] warps 2 {
    let o = block.x * B;
    store y[o] = alpha * load x[o] : [B] + cast<f32>(load w[o] : [B]);
}";

/// GPU kernels check their arguments before any driver is involved; without a driver a launch
/// with good arguments is the error 'no CUDA driver found', never a panic; device memory is
/// refused by the host targets.
#[test]
fn gpu_kernels_check_arguments_and_say_when_there_is_no_driver() {
    let k = Compiler::new(Target::Sm90a).no_cache().compile_source("scale_add.tl", SCALE_ADD, "scale_add").unwrap_or_else(|e| panic!("{e}"));
    let code = k.gpu_code().expect("GPU code");
    assert_eq!(code.block, [64, 1, 1]);
    assert_eq!(code.params.iter().map(|p| p.abi.name()).collect::<Vec<_>>(), ["i32", "f32", "ptr", "ptr", "ptr"]);
    let n = 100;
    let x = Tensor::random(DType::F32, &[n], 1).unwrap();
    let w = Tensor::random(DType::UInt(4), &[n], 2).unwrap();
    let mut y = Tensor::zeros(DType::F32, &[n]).unwrap();
    let e = k.launch(&mut [arg(n), arg(2.0f32), arg(&x), arg(&w), arg(&y)]).unwrap_err();
    assert!(matches!(e, Error::Argument { .. }) && e.to_string().contains("`y` is an output"), "{e}");
    let e = k.launch(&mut [arg(n + 1), arg(2.0f32), arg(&x), arg(&w), arg_mut(&mut y)]).unwrap_err();
    assert!(e.to_string().contains("`x` has shape [100], the kernel expects [n] = [101]"), "{e}");
    let e = k.launch(&mut [arg(n), arg(2.0f32), arg(&w), arg(&x), arg_mut(&mut y)]).unwrap_err();
    assert!(e.to_string().contains("`x` holds `u4` elements, the kernel takes `f32`"), "{e}");
    let e = k.launch(&mut [arg(n), arg(&x), arg(&x), arg(&w), arg_mut(&mut y)]).unwrap_err();
    assert!(e.to_string().contains("`alpha` is a scalar `f32`, a tensor was given"), "{e}");
    match tilc_cuda::Device::open(0) {
        Err(no_gpu) if no_gpu.is_unavailable() => {
            let e = k.launch(&mut [arg(n), arg(2.0f32), arg(&x), arg(&w), arg_mut(&mut y)]).unwrap_err();
            assert!(matches!(e, Error::Unsupported { target: Target::Sm90a, .. }), "{e:?}");
            assert!(e.to_string().starts_with("target `sm_90a`: no CUDA driver found") || e.to_string().contains("no CUDA device"), "{e}");
            assert!(k.upload(&x).unwrap_err().to_string().contains(&no_gpu.to_string()));
            assert_eq!(y, Tensor::zeros(DType::F32, &[n]).unwrap(), "nothing was written");
            assert!(Target::for_device().unwrap_err().contains(&no_gpu.to_string()));
            assert_eq!(Target::gpu(), None);
            assert_eq!(Target::detect(), Target::Cpu);
        }
        _ => {
            // With a GPU the same launch runs (on an sm_90a device) and y = 2x + w exactly:
            // alpha·x is rounded to f32 once, the sum once.
            if Target::gpu() == Some(Target::Sm90a) {
                k.launch(&mut [arg(n), arg(2.0f32), arg(&x), arg(&w), arg_mut(&mut y)]).unwrap_or_else(|e| panic!("{e}"));
                let (xv, wv, yv) = (x.to_f64_vec(), w.to_f64_vec(), y.to_f64_vec());
                for i in 0..n {
                    assert_eq!(yv[i], f64::from((2.0 * xv[i]) as f32 + wv[i] as f32), "element {i}");
                }
            }
        }
    }
    // Device tensors go to GPU kernels only.
    let cpu = Compiler::new(Target::Cpu).no_cache().compile_source("scale_add.tl", SCALE_ADD, "scale_add").unwrap();
    assert!(cpu.upload(&x).unwrap_err().to_string().contains("device memory is for kernels compiled for a GPU target"));
}

/// The compiled PTX and cubin go into the disk cache; a compiler with a fresh memo (another
/// process) loads them instead of compiling, and a damaged file is a miss that is repaired.
#[test]
fn gpu_code_round_trips_through_the_disk_cache() {
    let dir = tempfile::tempdir().unwrap();
    let compile = || Compiler::new(Target::Sm100a).cache_dir(dir.path()).define("B", 128).compile_source("scale_add.tl", SCALE_ADD, "scale_add").unwrap_or_else(|e| panic!("{e}"));
    let first = compile();
    let code = first.gpu_code().unwrap();
    assert!(!code.from_cache);
    let second = compile();
    let cached = second.gpu_code().unwrap();
    assert!(cached.from_cache, "the second compiler did not load the cached code");
    assert_eq!(cached.ptx, code.ptx);
    assert!(cached.ptx.contains(".target sm_100a"));
    assert_eq!(cached.cubin, code.cubin);
    assert_eq!(cached.params, code.params);
    assert_eq!((cached.block, cached.shared_bytes), ([64, 1, 1], code.shared_bytes));
    assert_eq!(cached.dots, code.dots);
    assert_eq!(cached.resources, code.resources);
    assert_eq!(second.signature(), first.signature());
    // Another define, another entry.
    let other = Compiler::new(Target::Sm100a).cache_dir(dir.path()).define("B", 64).compile_source("scale_add.tl", SCALE_ADD, "scale_add").unwrap();
    assert!(!other.gpu_code().unwrap().from_cache);
    assert_eq!(other.gpu_code().unwrap().block, [64, 1, 1]);
    // `cache list` sees two kernel entries and nothing unreadable.
    let (entries, broken) = tilc::Cache::at(dir.path()).entries().unwrap();
    assert_eq!((entries.len(), broken.len()), (2, 0), "{entries:?}");
    assert!(entries.iter().all(|e| e.field("target") == Some("sm_100a") && e.field("file.ptx").is_some()));
    // Damage the PTX: the next compiler compiles again and stores a good copy.
    let ptx_file = std::fs::read_dir(dir.path().join("v1/kernels")).unwrap().flatten().map(|e| e.path()).find(|p| p.extension().is_some_and(|x| x == "ptx")).unwrap();
    let mut text = std::fs::read_to_string(&ptx_file).unwrap();
    text.push_str("// damaged\n");
    std::fs::write(&ptx_file, text).unwrap();
    let recompiled = [compile(), Compiler::new(Target::Sm100a).cache_dir(dir.path()).define("B", 64).compile_source("scale_add.tl", SCALE_ADD, "scale_add").unwrap()];
    assert_eq!(recompiled.iter().filter(|k| k.gpu_code().unwrap().from_cache).count(), 1, "exactly the damaged entry was compiled again");
    assert!(compile().gpu_code().unwrap().from_cache, "the entry was repaired");
}

/// `tilc run --target cuda` goes through the API; without a driver it is a diagnostic and a
/// non-zero exit, before any input is read.
#[test]
fn cli_run_on_cuda_without_a_driver_is_a_clear_error() {
    if tilc_cuda::Device::open(0).is_ok() {
        println!("skipped: a GPU is present; benches/gpu/run.sh runs `tilc run --target cuda` there");
        return;
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tilc"))
        .current_dir(root())
        .args(["run", "examples/gemm_w3a8.tl", "--random", "1", "--arg", "m=33", "--arg", "n=96", "--arg", "k=256", "--target", "cuda"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("error: cannot run on `cuda`: no CUDA driver found") || stderr.contains("no CUDA device"), "{stderr}");
    assert!(stderr.contains("--target simt"), "the hint names the emulator: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `Compiler::async_tensor_cores`: `dot` becomes `tcgen05.mma` on sm_100a (128-row tiles) and
/// `wgmma` on sm_90a (64-row tiles), plain `mma.sync` without it; the option is part of the
/// cache key, so the two builds do not share an entry.
#[test]
fn async_tensor_cores_select_tcgen05_and_wgmma() {
    let dir = tempfile::tempdir().unwrap();
    let file = root().join("examples/gemm_w3a8.tl");
    let build = |target: Target, on: bool| {
        Compiler::new(target).cache_dir(dir.path()).define("BM", if target == Target::Sm100a { 128 } else { 64 }).define("BN", 64).async_tensor_cores(on).compile_file(&file, "gemm_w3a8").unwrap_or_else(|e| panic!("{target} {on}: {e}"))
    };
    let plain = build(Target::Sm100a, false);
    let fast = build(Target::Sm100a, true);
    assert!(!fast.gpu_code().unwrap().from_cache, "the async build reused the plain build's cache entry");
    assert!(plain.ptx().unwrap().contains("mma.sync.aligned.m16n8k32") && !plain.ptx().unwrap().contains("tcgen05"));
    assert!(fast.ptx().unwrap().contains("tcgen05.mma.cta_group::1.kind::i8"), "no tcgen05.mma");
    assert!(fast.gpu_code().unwrap().dots.iter().any(|d| d.contains("tcgen05")), "{:?}", fast.gpu_code().unwrap().dots);
    let hopper = build(Target::Sm90a, true);
    assert!(hopper.ptx().unwrap().contains("wgmma.mma_async.sync.aligned.m64n32k32.s32.s8.s8"), "no wgmma");
    // sm_120a has neither: the option changes nothing there.
    let consumer = build(Target::Sm120a, true);
    assert!(consumer.ptx().unwrap().contains("mma.sync.aligned.m16n8k32"));
}
