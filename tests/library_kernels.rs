//! The kernel library (`lang/*.tl`) on the VM interpreter, against references computed here:
//! f64 sums for the GEMMs, GEMVs and the Hadamard transform (float results within bounds derived
//! from the formats), tilc-dtype's host quantizers for quantize, dequantize and the fused
//! Hadamard quantizers (bit for bit, stochastic rounding included), and the repack kernel
//! against its inverse and an independent permutation. Every type a kernel claims is run, on
//! seeded random inputs at several shapes (m = 1, sizes not divisible by the tile); failures
//! name the seed. The format lists below are the single source of `lang/README.md`'s table,
//! which `library_readme_table_is_current` regenerates and compares.

use std::path::Path;
use tilc_base::SourceFile;
use tilc_dtype::quant::{self, Granularity, IntConfig, MxElement, Quantized};
use tilc_dtype::{DType, Overflow, Rounding};
use tilc_vm::{ArgValue, Define, HostTensor, Kernel, Param, SplitMix64, elaborate_source, print_kernel, random_tensor, run};

// ---------------------------------------------------------------------------------------------
// The supported formats: what the tests run and what the README table shows.

const UINTS: &[&str] = &["u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8"];
const SINTS: &[&str] = &["i2", "i3", "i4", "i5", "i6", "i7", "i8"];
const FLOATS: &[&str] = &["f3e1m1", "f4e2m1", "f5e2m2", "f6e2m3", "f6e3m2", "f7e3m3", "f8e4m3", "f8e5m2"];
const A8_UINTS: &[&str] = &["u2", "u3", "u4", "u5", "u6", "u7", "u8"];
const FP8: &[&str] = &["f8e4m3", "f8e5m2"];
const FP8_W: &[&str] = &["f8e4m3", "f8e5m2", "f6e3m2", "f6e2m3", "f4e2m1"];
const MX_ELEMENTS: &[&str] = &["f8e4m3", "f8e5m2", "f6e3m2", "f6e2m3", "f4e2m1"];
const HADAMARD_SIZES: std::ops::RangeInclusive<u32> = 1..=15;

/// One row of the README table: kernel, source, formats, scaling, checked how.
struct Row {
    kernel: &'static str,
    file: &'static str,
    formats: String,
    scaling: &'static str,
    check: &'static str,
}

fn list(xs: &[&str]) -> String {
    xs.iter().map(|x| format!("`{x}`")).collect::<Vec<_>>().join(" ")
}

fn coverage() -> Vec<Row> {
    let w = |p: &str, xs: &[&str]| format!("{p}{}", list(xs));
    vec![
        Row {
            kernel: "gemm_a16w",
            file: "gemm_a16w.tl",
            formats: format!("A `f16` `bf16`; W {} (zero points), {}, {}", list(UINTS), list(SINTS), list(FLOATS)),
            scaling: "`f16`/`bf16`/`f32` per group of 32, 64, 128 or per channel",
            check: "f64, bound",
        },
        Row {
            kernel: "gemv_a16w",
            file: "gemv.tl",
            formats: format!("x `f16` `bf16`, m = 1..ROWS (ROWS ≤ 16; `-D ROWS=1 -D BN=256` for one token); W {} (zero points), {}, {}", list(UINTS), list(SINTS), list(FLOATS)),
            scaling: "as gemm_a16w",
            check: "f64, bound",
        },
        Row {
            kernel: "gemm_a8w",
            file: "gemm_a8w.tl",
            formats: format!("A `i8`; W {} (offset binary), {}", list(A8_UINTS), list(SINTS)),
            scaling: "A per row `f32`; W per group or channel",
            check: "f64, bound (i32 sums exact)",
        },
        Row { kernel: "gemm_fp8", file: "gemm_fp8.tl", formats: format!("A {}; W {}", list(FP8), list(FP8_W)), scaling: "`f32` per row of A, per column of W", check: "f64, bound" },
        Row {
            kernel: "gemm_block_scaled",
            file: "gemm_mx.tl",
            formats: format!("MX: {} × same; NVFP4: `f4e2m1` × `f4e2m1`", list(MX_ELEMENTS)),
            scaling: "`e8m0` per 32 along k; NVFP4 `ue4m3` per 16 and `f32` per tensor",
            check: "f64, bound",
        },
        Row {
            kernel: "quantize_int",
            file: "quantize.tl",
            formats: format!("`f32` `f16` `bf16` → {} (asymmetric), {} (symmetric)", list(UINTS), list(SINTS)),
            scaling: "`f16`/`bf16` per tensor, channel (either axis), group (either axis); nearest-even or stochastic",
            check: "bit-identical to `quantize_int` (stochastic: see notes)",
        },
        Row {
            kernel: "quantize_float",
            file: "quantize.tl",
            formats: format!("`f32` `f16` `bf16` → {} `f16` `bf16`", list(FLOATS)),
            scaling: "as quantize_int",
            check: "bit-identical to `quantize_float` (stochastic: see notes)",
        },
        Row { kernel: "quantize_mx", file: "quantize.tl", formats: format!("→ {} `i8` (MXINT8)", list(MX_ELEMENTS)), scaling: "`e8m0` per 32", check: "bit-identical to `quantize_mx`" },
        Row { kernel: "quantize_nvfp4", file: "quantize.tl", formats: "→ `f4e2m1`".into(), scaling: "`ue4m3` per 16, `f32` per tensor", check: "bit-identical to `quantize_nvfp4`, also at rounding midpoints" },
        Row {
            kernel: "dequantize",
            file: "dequantize.tl",
            formats: "every output of the quantizers above, NaN included → `f32` `f16` `bf16`".into(),
            scaling: "all of the above",
            check: "bit-identical to `Quantized::dequantize` (f16/bf16: rounded once more)",
        },
        Row { kernel: "hadamard", file: "hadamard.tl", formats: format!("`f32` `f16` `bf16`, N = 2^{}..2^{}", HADAMARD_SIZES.start(), HADAMARD_SIZES.end()), scaling: "orthonormal", check: "f64, bound" },
        Row {
            kernel: "hadamard_quant_mx",
            file: "hadamard_quant.tl",
            formats: w("→ ", MX_ELEMENTS),
            scaling: "`e8m0` per 32; nearest-even or stochastic",
            check: "bit-identical to `quantize_mx` of the rotation",
        },
        Row { kernel: "hadamard_quant_nvfp4", file: "hadamard_quant.tl", formats: "→ `f4e2m1`".into(), scaling: "`ue4m3` per 16, `f32` per tensor", check: "bit-identical to `quantize_nvfp4` of the rotation" },
        Row { kernel: "hadamard_quant_int", file: "hadamard_quant.tl", formats: w("→ ", SINTS), scaling: "`f16`/`bf16` per group of 16..128", check: "bit-identical to `quantize_int` of the rotation" },
        Row {
            kernel: "repack / unrepack",
            file: "repack.tl",
            formats: format!("{} {} {}", list(UINTS), list(SINTS), list(FLOATS)),
            scaling: "—",
            check: "inverse, and an independent permutation",
        },
    ]
}

fn readme_table() -> String {
    let mut s = String::from("| kernel | source | formats | scaling | checked against |\n|---|---|---|---|---|\n");
    for r in coverage() {
        s.push_str(&format!("| `{}` | `{}` | {} | {} | {} |\n", r.kernel, r.file, r.formats, r.scaling, r.check));
    }
    s
}

const TABLE_BEGIN: &str = "<!-- BEGIN GENERATED TABLE (tests/library_kernels.rs) -->\n";
const TABLE_END: &str = "<!-- END GENERATED TABLE -->";

#[test]
fn library_readme_table_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("lang/README.md");
    let text = std::fs::read_to_string(&path).expect("lang/README.md exists");
    let (Some(b), Some(e)) = (text.find(TABLE_BEGIN), text.find(TABLE_END)) else {
        panic!("lang/README.md lacks the generated-table markers");
    };
    let want = format!("{}{}{}{}", &text[..b], TABLE_BEGIN, readme_table(), &text[e..]);
    if want != text {
        if std::env::var_os("UPDATE_LIBRARY_README").is_some() {
            std::fs::write(&path, want).expect("writable");
        } else {
            panic!("lang/README.md's table is out of date; regenerate it with\n  UPDATE_LIBRARY_README=1 cargo test --test library_kernels library_readme_table_is_current");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Driving kernels

fn kernel(file: &str, name: &str, defines: &[(String, String)]) -> Kernel {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("lang").join(file);
    let src = SourceFile::new(format!("lang/{file}"), std::fs::read_to_string(path).expect("library file"));
    let defs: Vec<Define> = defines.iter().map(|(n, v)| Define { name: n.clone(), value: v.clone() }).collect();
    elaborate_source(&src, Some(name), &defs).unwrap_or_else(|d| panic!("{name} {defines:?}:\n{}", tilc_base::render(&src, &d, tilc_base::RenderStyle::Plain)))
}

/// `-D` definitions from names and values.
fn d(pairs: &[(&str, &dyn ToString)]) -> Vec<(String, String)> {
    pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
}

/// Runs `k` with the named inputs (scalars and tensors); outputs get all-ones codes first so
/// unwritten elements show. Returns the arguments after the run.
fn call(k: &Kernel, inputs: Vec<(&str, ArgValue)>, outputs: &[(&str, Vec<usize>)], what: &str) -> Vec<ArgValue> {
    let mut args: Vec<ArgValue> = k
        .params
        .iter()
        .map(|p| {
            let name = k.param_name(*p);
            if let Param::Tensor(g) = p
                && k.globals[*g].out
            {
                let shape = outputs.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("no shape for output {name}")).1.clone();
                return ArgValue::Tensor(HostTensor::filled(k.globals[*g].dtype, shape, u64::MAX));
            }
            inputs.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("no input {name}")).1.clone()
        })
        .collect();
    run(k, &mut args).unwrap_or_else(|e| panic!("{what}: {e}"));
    args
}

fn out<'a>(k: &Kernel, args: &'a [ArgValue], name: &str) -> &'a HostTensor {
    let i = k.params.iter().position(|p| k.param_name(*p) == name).expect("parameter exists");
    match &args[i] {
        ArgValue::Tensor(t) => t,
        _ => panic!("{name} is not a tensor"),
    }
}

fn int(v: usize) -> ArgValue {
    ArgValue::Int(v as i64)
}

fn t(x: &HostTensor) -> ArgValue {
    ArgValue::Tensor(x.clone())
}

fn dt(name: &str) -> DType {
    DType::parse(name).expect("a known type")
}

/// Random codes of `dtype`, uniform over its finite codes.
fn random_codes(dtype: DType, shape: Vec<usize>, seed: u64) -> HostTensor {
    let mut rng = SplitMix64(seed);
    let n: usize = shape.iter().product();
    let codes = (0..n)
        .map(|_| loop {
            let c = rng.next_u64() & dtype.code_mask();
            if dtype.decode(c).is_finite() {
                break c;
            }
        })
        .collect();
    HostTensor { dtype, shape, codes }
}

/// Half an ulp relative to the value, 2^-(M+1), for the output formats.
fn half_ulp(d: DType) -> f64 {
    2f64.powi(-(d.float_format().expect("a float").man_bits() as i32 + 1))
}

fn min_subnormal(d: DType) -> f64 {
    d.float_format().and_then(|f| f.min_subnormal()).unwrap_or(0.0)
}

fn f32s(x: &HostTensor) -> Vec<f32> {
    x.to_f64().iter().map(|&v| v as f32).collect()
}

// ---------------------------------------------------------------------------------------------
// GEMM and GEMV with 16-bit activations

/// The weights of one A16·W case: codes, scales, zero points (zeros when symmetric), and the
/// dequantized values (w − z) · s.
struct Weights {
    w: HostTensor,
    scale: HostTensor,
    zero: HostTensor,
    deq: Vec<f64>,
}

/// Scales uniform in ±[0, 1] / `magnitude`, so that sums of dequantized products stay well
/// inside the output format whatever the code range.
fn scales(ts: DType, shape: Vec<usize>, magnitude: f64, seed: u64) -> HostTensor {
    let mut rng = SplitMix64(seed);
    let n: usize = shape.iter().product();
    let values: Vec<f64> = (0..n).map(|_| (rng.next_f64() * 2.0 - 1.0) / magnitude).collect();
    HostTensor::from_f64(ts, shape, &values)
}

fn weights(tw: DType, ts: DType, k: usize, n: usize, group: usize, zp: bool, seed: u64) -> Weights {
    let w = random_codes(tw, vec![k, n], seed);
    let scale = scales(ts, vec![k / group, n], tw.max_finite().max(1.0), seed + 1);
    let zero = if zp { random_codes(tw, vec![k / group, n], seed + 2) } else { HostTensor::zeros(tw, vec![k / group, n]) };
    let (wv, sv, zv) = (w.to_f64(), scale.to_f64(), zero.to_f64());
    let deq = (0..k * n).map(|i| (wv[i] - zv[(i / n / group) * n + i % n]) * sv[(i / n / group) * n + i % n]).collect();
    Weights { w, scale, zero, deq }
}

fn check_a16(kname: &str, file: &str, ta: &str, tw: &str, ts: &str, (m, n, kd, group): (usize, usize, usize, usize), tiles: &[(&str, usize)], seed: u64) {
    let zp = tw.starts_with('u');
    let (tad, twd, tsd) = (dt(ta), dt(tw), dt(ts));
    let mut defs = d(&[("TA", &ta), ("TW", &tw), ("TS", &ts), ("ZP", &zp)]);
    defs.extend(tiles.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    let k = kernel(file, kname, &defs);
    let wt = weights(twd, tsd, kd, n, group, zp, seed * 7 + 1);
    let a = random_tensor(tad, vec![m, kd], seed * 7 + 5);
    let (aname, cname) = if kname == "gemv_a16w" { ("x", "y") } else { ("a", "c") };
    let args = call(
        &k,
        vec![("m", int(m)), ("n", int(n)), ("k", int(kd)), ("group", int(group)), (aname, t(&a)), ("w", t(&wt.w)), ("w_scale", t(&wt.scale)), ("w_zero", t(&wt.zero))],
        &[(cname, vec![m, n])],
        &format!("{kname} seed {seed}"),
    );
    let c = out(&k, &args, cname).to_f64();
    let av = a.to_f64();
    // The GEMM rounds each dequantized weight to TA (its tensor-core operand); the GEMV keeps f32.
    let w_op: Vec<f64> = if kname == "gemm_a16w" { wt.deq.iter().map(|&x| tad.decode(tad.encode(x, Rounding::NearestEven, Overflow::Saturate))).collect() } else { wt.deq.clone() };
    for i in 0..m {
        for j in 0..n {
            let (mut want, mut mag) = (0.0, 0.0);
            for p in 0..kd {
                want += av[i * kd + p] * w_op[p * n + j];
                mag += (av[i * kd + p] * w_op[p * n + j]).abs();
            }
            let bound = want.abs() * half_ulp(tad) + (kd as f64 + 2.0) * 2f64.powi(-24) * mag + min_subnormal(tad);
            let got = c[i * n + j];
            assert!((got - want).abs() <= bound, "{kname} TA={ta} TW={tw} TS={ts} seed {seed} (m, n, k, group) = {:?}: c[{i}, {j}] = {got}, want {want} ± {bound}", (m, n, kd, group));
        }
    }
}

fn a16_weight_types() -> Vec<&'static str> {
    UINTS.iter().chain(SINTS).chain(FLOATS).copied().collect()
}

#[test]
fn gemm_a16w_matches_f64_for_every_weight_type() {
    let shapes = [(1, 40, 128, 32), (33, 70, 128, 64), (17, 64, 256, 128), (5, 96, 64, 64)];
    for (i, tw) in a16_weight_types().into_iter().enumerate() {
        let ta = ["f16", "bf16"][i % 2];
        let ts = ["f16", "bf16", "f32"][i % 3];
        let (m, n, kd, g) = shapes[i % shapes.len()];
        // Per channel (group = k) on every fourth type.
        let g = if i % 4 == 3 { kd } else { g };
        check_a16("gemm_a16w", "gemm_a16w.tl", ta, tw, ts, (m, n, kd, g), &[("BM", 32), ("BN", 64), ("BK", 32)], 100 + i as u64);
        check_a16("gemm_a16w", "gemm_a16w.tl", ta, tw, "f16", (1, 33, 64, 32), &[("BM", 16), ("BN", 32), ("BK", 16)], 200 + i as u64);
    }
}

#[test]
fn gemv_a16w_matches_f64_for_every_weight_type() {
    for (i, tw) in a16_weight_types().into_iter().enumerate() {
        let ta = ["bf16", "f16"][i % 2];
        let m = [1, 16, 5, 9][i % 4];
        let (n, kd, g) = [(70, 128, 64), (64, 256, 256), (33, 128, 128)][i % 3];
        check_a16("gemv_a16w", "gemv.tl", ta, tw, ["f16", "f32", "bf16"][i % 3], (m, n, kd, g), &[("BN", 64), ("BK", 64)], 300 + i as u64);
    }
}

// ---------------------------------------------------------------------------------------------
// W·A8, fp8 and block-scaled GEMMs

#[test]
fn gemm_a8w_matches_f64_for_every_weight_type() {
    let types: Vec<&str> = A8_UINTS.iter().chain(SINTS).copied().collect();
    for (i, tw) in types.into_iter().enumerate() {
        let twd = dt(tw);
        let offset = if twd.is_signed() { 0 } else { 1i64 << (twd.bits() - 1) };
        let (m, n, kd, g) = [(1, 64, 128, 32), (33, 70, 256, 128), (20, 40, 128, 128), (3, 130, 128, 64)][i % 4];
        let ts = ["f16", "bf16"][i % 2];
        let seed = 400 + i as u64;
        let k = kernel("gemm_a8w.tl", "gemm_a8w", &d(&[("TW", &tw), ("OFFSET", &offset), ("TS", &ts), ("BM", &32), ("BN", &64), ("BK", &32)]));
        let a = random_tensor(DType::Int(8), vec![m, kd], seed * 5);
        let sa = random_tensor(DType::F32, vec![m], seed * 5 + 1);
        let w = random_codes(twd, vec![kd, n], seed * 5 + 2);
        let ws = scales(dt(ts), vec![kd / g, n], 128.0 * (1u64 << (twd.bits() - 1)) as f64, seed * 5 + 3);
        let args = call(
            &k,
            vec![("m", int(m)), ("n", int(n)), ("k", int(kd)), ("group", int(g)), ("a", t(&a)), ("a_scale", t(&sa)), ("w", t(&w)), ("w_scale", t(&ws))],
            &[("c", vec![m, n])],
            &format!("gemm_a8w seed {seed}"),
        );
        let c = out(&k, &args, "c").to_f64();
        let (av, sav, wv, wsv) = (a.to_f64(), sa.to_f64(), w.to_f64(), ws.to_f64());
        for r in 0..m {
            for j in 0..n {
                let (mut sum, mut mag) = (0.0, 0.0);
                for gi in 0..kd / g {
                    let part: i64 = (gi * g..(gi + 1) * g).map(|p| av[r * kd + p] as i64 * (wv[p * n + j] as i64 - offset)).sum();
                    sum += part as f64 * wsv[gi * n + j];
                    mag += (part as f64 * wsv[gi * n + j]).abs();
                }
                let want = sum * sav[r];
                let bound = want.abs() * half_ulp(DType::F16) + ((kd / g) as f64 + 3.0) * 2f64.powi(-23) * mag * sav[r].abs() + 2f64.powi(-24);
                let got = c[r * n + j];
                assert!((got - want).abs() <= bound, "gemm_a8w TW={tw} seed {seed}: c[{r}, {j}] = {got}, want {want} ± {bound}");
            }
        }
    }
}

#[test]
fn gemm_fp8_matches_f64_for_every_type_pair() {
    let mut i = 0;
    for ta in FP8 {
        for tw in FP8_W {
            let (m, n, kd) = [(1, 40, 64), (33, 70, 96), (17, 64, 128)][i % 3];
            let tc = ["f16", "bf16", "f32"][i % 3];
            let seed = 500 + i as u64;
            i += 1;
            let k = kernel("gemm_fp8.tl", "gemm_fp8", &d(&[("TA", ta), ("TW", tw), ("TC", &tc), ("BM", &32), ("BN", &64), ("BK", &32)]));
            let a = random_tensor(dt(ta), vec![m, kd], seed * 5);
            let sa = random_tensor(DType::F32, vec![m], seed * 5 + 1);
            let w = random_tensor(dt(tw), vec![kd, n], seed * 5 + 2);
            let sw = random_tensor(DType::F32, vec![n], seed * 5 + 3);
            let args = call(&k, vec![("m", int(m)), ("n", int(n)), ("k", int(kd)), ("a", t(&a)), ("a_scale", t(&sa)), ("w", t(&w)), ("w_scale", t(&sw))], &[("c", vec![m, n])], &format!("gemm_fp8 seed {seed}"));
            let c = out(&k, &args, "c").to_f64();
            let (av, sav, wv, swv) = (a.to_f64(), sa.to_f64(), w.to_f64(), sw.to_f64());
            for r in 0..m {
                for j in 0..n {
                    let sum: f64 = (0..kd).map(|p| av[r * kd + p] * wv[p * n + j]).sum();
                    let mag: f64 = (0..kd).map(|p| (av[r * kd + p] * wv[p * n + j]).abs()).sum();
                    let scale = sav[r] * swv[j];
                    let want = sum * scale;
                    let bound = want.abs() * half_ulp(dt(tc)) + (kd as f64 + 3.0) * 2f64.powi(-24) * mag * scale.abs() + min_subnormal(dt(tc));
                    let got = c[r * n + j];
                    assert!((got - want).abs() <= bound, "gemm_fp8 {ta}×{tw}→{tc} seed {seed}: c[{r}, {j}] = {got}, want {want} ± {bound}");
                }
            }
        }
    }
}

#[test]
fn gemm_block_scaled_matches_f64_for_mx_and_nvfp4() {
    let cases: Vec<(&str, &str, usize)> = MX_ELEMENTS.iter().map(|e| (*e, "e8m0", 32)).chain([("f4e2m1", "ue4m3", 16)]).collect();
    for (i, (te, ts, block)) in cases.into_iter().enumerate() {
        let (m, n, kd) = [(1, 40, 64), (33, 20, 96), (17, 48, 128)][i % 3];
        let seed = 600 + i as u64;
        let k = kernel("gemm_mx.tl", "gemm_block_scaled", &d(&[("TE", &te), ("TS", &ts), ("BLOCK", &block), ("TC", &"f32"), ("BM", &32), ("BN", &32)]));
        let a = random_tensor(dt(te), vec![m, kd], seed * 7);
        let w = random_tensor(dt(te), vec![n, kd], seed * 7 + 1);
        // e8m0 scales 2^-4..2^4 (codes 123..131); ue4m3 scales from random_tensor (2^u, |u| ≤ 4).
        let scales = |rows: usize, s: u64| {
            if ts == "e8m0" {
                let mut rng = SplitMix64(s);
                HostTensor { dtype: dt(ts), shape: vec![rows, kd / block], codes: (0..rows * (kd / block)).map(|_| 123 + rng.next_u64() % 9).collect() }
            } else {
                random_tensor(dt(ts), vec![rows, kd / block], s)
            }
        };
        let (sa, sw) = (scales(m, seed * 7 + 2), scales(n, seed * 7 + 3));
        let (ta_s, tw_s) = if ts == "e8m0" { (1.0, 1.0) } else { (0.375, 1.25) };
        let args = call(
            &k,
            vec![
                ("m", int(m)),
                ("n", int(n)),
                ("k", int(kd)),
                ("a", t(&a)),
                ("a_scale", t(&sa)),
                ("a_tensor_scale", ArgValue::Float(ta_s)),
                ("w", t(&w)),
                ("w_scale", t(&sw)),
                ("w_tensor_scale", ArgValue::Float(tw_s)),
            ],
            &[("c", vec![m, n])],
            &format!("gemm_block_scaled seed {seed}"),
        );
        let c = out(&k, &args, "c").to_f64();
        let (av, wv, sav, swv) = (a.to_f64(), w.to_f64(), sa.to_f64(), sw.to_f64());
        let nb = kd / block;
        for r in 0..m {
            for j in 0..n {
                let (mut want, mut mag) = (0.0, 0.0);
                for b in 0..nb {
                    let s = sav[r * nb + b] * swv[j * nb + b] * ta_s * tw_s;
                    for p in b * block..(b + 1) * block {
                        want += av[r * kd + p] * wv[j * kd + p] * s;
                        mag += (av[r * kd + p] * wv[j * kd + p] * s).abs();
                    }
                }
                let bound = (block as f64 + 2.0 * nb as f64 + 4.0) * 2f64.powi(-24) * mag + 2f64.powi(-140);
                let got = c[r * n + j];
                assert!((got - want).abs() <= bound, "gemm_block_scaled {te}/{ts} seed {seed}: c[{r}, {j}] = {got}, want {want} ± {bound}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Quantize and dequantize, bit for bit against tilc-dtype

/// Random f32 data in [-1, 1] of type `t` (so f16/bf16 inputs are exact in f32), with one block
/// of zeros at the start (the all-zero rule).
fn quant_input(tin: &str, rows: usize, cols: usize, seed: u64) -> HostTensor {
    let mut x = random_tensor(dt(tin), vec![rows, cols], seed);
    for c in x.codes.iter_mut().take(cols.min(8)) {
        *c = 0;
    }
    x
}

/// (granularity, bh, bw, TR, TC) for a [rows, cols] tensor (rows and cols multiples of 32);
/// the tiles have 128, 8, 32, 16 and 16 elements.
fn granularities(rows: usize, cols: usize) -> Vec<(Granularity, usize, usize, usize, usize)> {
    vec![
        (Granularity::PerTensor, rows, cols, 4, 32),
        (Granularity::PerChannel { axis: 0 }, rows, 1, 8, 1),
        (Granularity::PerChannel { axis: 1 }, 1, cols, 1, 32),
        (Granularity::PerGroup { axis: 0, size: 32 }, 32, 1, 16, 1),
        (Granularity::PerGroup { axis: 1, size: 32 }, 1, 32, 1, 16),
    ]
}

/// A seed that differs from run to run (`TILC_SEED=n` repeats one); every failure message that
/// uses it names it.
fn fresh_seed() -> u64 {
    if let Some(s) = std::env::var("TILC_SEED").ok().and_then(|s| s.parse().ok()) {
        return s;
    }
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    SplitMix64(nanos).next_u64() % 1_000_000_007
}

/// The elements where the kernels' stochastic rounding may differ from the host's: the kernel
/// draws with the top 31 bits of the exact 32-bit fraction f of |y| / step (the host: all 32,
/// from the f64 quotient), so the two can differ only when the Philox word r is within a unit or
/// two of 2^32 − f. Marked here when |f − (2^32 − r)| < 4 by an f64 estimate of f (accurate to
/// 2^-10 of a unit); about 8 · 2^-32 of the elements.
fn stochastic_exceptions(x: &[f32], host: &Quantized, seed: u64) -> Vec<bool> {
    let [_, cols] = host.shape;
    let [bh, bw] = host.block;
    let scales = host.scale_values();
    let zeros = host.zero_point_values();
    let e = host.element;
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            let b = (i / cols / bh) * (cols / bw) + (i % cols) / bw;
            let z = zeros.as_ref().map_or(0.0, |z| z[b] as f64);
            let y = (f64::from(v) / scales[b] + z).abs();
            if !y.is_finite() {
                return false;
            }
            let (g, step) = if e.is_int() {
                (y.floor(), 1.0)
            } else {
                let c = e.encode(y, Rounding::TowardZero, Overflow::Saturate);
                if c >= e.encode(f64::MAX, Rounding::NearestEven, Overflow::Saturate) {
                    return false;
                }
                (e.decode(c), e.decode(c + 1) - e.decode(c))
            };
            let f = (y - g) / step * 4_294_967_296.0;
            let r = f64::from(tilc_dtype::stochastic_bits(seed, i as u64));
            (f - (4_294_967_296.0 - r)).abs() < 4.0
        })
        .collect()
}

/// Kernel codes against the host's: equal everywhere outside `exceptions`.
fn assert_codes(got: &[u64], want: &[u64], exceptions: Option<&[bool]>, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: code count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if g != w && !exceptions.is_some_and(|e| e[i]) {
            panic!("{what}: code {i} is {g:#x}, want {w:#x}");
        }
    }
}

fn codes_of(q: &Quantized) -> (Vec<u64>, Vec<u64>) {
    (q.element_codes(), tilc_dtype::pack::unpack(&q.scales, q.scale_dtype.bits(), q.num_scales()))
}

#[test]
fn quantize_int_is_bit_identical_to_the_host() {
    let types: Vec<&str> = UINTS.iter().chain(SINTS).copied().collect();
    let (rows, cols) = (64, 32);
    let base = fresh_seed();
    let mut case = 0u64;
    for tq in &types {
        let tqd = dt(tq);
        for gi in 0..5 {
            // Stochastic rounding on two of the five granularities, cycling with the type.
            let stochastic = (gi + case as usize) % 5 < 2;
            let (gran, bh, bw, tr, tc) = granularities(rows, cols)[gi];
            let tin = ["f32", "bf16", "f16"][gi % 3];
            let ts = ["f16", "bf16"][(gi + case as usize) % 2];
            let seed = base + case * 10 + gi as u64;
            let x = quant_input(tin, rows, cols, seed);
            let rounding = if stochastic { Rounding::Stochastic { seed, index: 0 } } else { Rounding::NearestEven };
            let cfg = IntConfig { bits: tqd.bits(), symmetric: tqd.is_signed(), granularity: gran, scale_dtype: dt(ts), rounding };
            let host = quant::quantize_int(&f32s(&x), [rows, cols], &cfg).expect("host quantizes");
            let k = kernel("quantize.tl", "quantize_int", &d(&[("T", &tin), ("TQ", tq), ("TS", &ts), ("STOCHASTIC", &stochastic), ("TR", &tr), ("TC", &tc)]));
            let args = call(
                &k,
                vec![("rows", int(rows)), ("cols", int(cols)), ("bh", int(bh)), ("bw", int(bw)), ("seed", ArgValue::Int(seed as i64)), ("x", t(&x))],
                &[("q", vec![rows, cols]), ("scale", vec![rows / bh, cols / bw]), ("zero", vec![rows / bh, cols / bw])],
                &format!("quantize_int seed {seed}"),
            );
            let what = format!("quantize_int {tin}→{tq} scale {ts} {gran:?} TR×TC = {tr}×{tc} stochastic={stochastic} seed {seed}");
            let (hq, hs) = codes_of(&host);
            assert_eq!(out(&k, &args, "scale").codes, hs, "{what}: scales");
            let hz = host.zero_point_values().unwrap_or_else(|| vec![0; host.num_scales()]);
            assert_eq!(out(&k, &args, "zero").codes, hz, "{what}: zero points");
            let exceptions = stochastic.then(|| stochastic_exceptions(&f32s(&x), &host, seed));
            assert_codes(&out(&k, &args, "q").codes, &hq, exceptions.as_deref(), &what);
        }
        case += 1;
    }
}

#[test]
fn quantize_float_is_bit_identical_to_the_host() {
    let (rows, cols) = (64, 32);
    let base = fresh_seed();
    for (i, tq) in FLOATS.iter().chain(&["f16", "bf16"]).enumerate() {
        for gi in 0..5 {
            let stochastic = (gi + i) % 5 < 2;
            let (gran, bh, bw, tr, tc) = granularities(rows, cols)[gi];
            let tin = ["f32", "bf16", "f16"][(gi + i) % 3];
            let ts = ["f16", "bf16"][(gi + i) % 2];
            let seed = base + i as u64 * 10 + gi as u64;
            let x = quant_input(tin, rows, cols, seed);
            let rounding = if stochastic { Rounding::Stochastic { seed, index: 0 } } else { Rounding::NearestEven };
            let host = quant::quantize_float(&f32s(&x), [rows, cols], dt(tq), gran, dt(ts), rounding).expect("host quantizes");
            let k = kernel("quantize.tl", "quantize_float", &d(&[("T", &tin), ("TQ", tq), ("TS", &ts), ("STOCHASTIC", &stochastic), ("TR", &tr), ("TC", &tc)]));
            let args = call(
                &k,
                vec![("rows", int(rows)), ("cols", int(cols)), ("bh", int(bh)), ("bw", int(bw)), ("seed", ArgValue::Int(seed as i64)), ("x", t(&x))],
                &[("q", vec![rows, cols]), ("scale", vec![rows / bh, cols / bw])],
                &format!("quantize_float seed {seed}"),
            );
            let what = format!("quantize_float {tin}→{tq} scale {ts} {gran:?} TR×TC = {tr}×{tc} stochastic={stochastic} seed {seed}");
            let (hq, hs) = codes_of(&host);
            assert_eq!(out(&k, &args, "scale").codes, hs, "{what}: scales");
            let exceptions = stochastic.then(|| stochastic_exceptions(&f32s(&x), &host, seed));
            assert_codes(&out(&k, &args, "q").codes, &hq, exceptions.as_deref(), &what);
        }
    }
}

fn mx_element(name: &str) -> MxElement {
    match name {
        "f8e4m3" => MxElement::Fp8E4M3,
        "f8e5m2" => MxElement::Fp8E5M2,
        "f6e3m2" => MxElement::Fp6E3M2,
        "f6e2m3" => MxElement::Fp6E2M3,
        "f4e2m1" => MxElement::Fp4E2M1,
        _ => MxElement::Int8,
    }
}

#[test]
fn quantize_mx_is_bit_identical_to_the_host() {
    for (i, tq) in MX_ELEMENTS.iter().chain(&["i8"]).enumerate() {
        let (rows, cols, tr, tc) = [(5, 96, 4, 64), (1, 32, 4, 32), (9, 128, 2, 128)][i % 3];
        let tin = ["f32", "bf16"][i % 2];
        let seed = 1100 + i as u64;
        let mut x = quant_input(tin, rows, cols, seed);
        // Large and tiny blocks exercise the exponent clamps.
        if rows > 1 {
            for (j, c) in x.codes[cols..cols + 32].iter_mut().enumerate() {
                *c = dt(tin).encode((j as f64 - 16.0) * 1e30, Rounding::NearestEven, Overflow::Saturate);
            }
            for (j, c) in x.codes[cols + 32..cols + 64].iter_mut().enumerate() {
                *c = dt(tin).encode((j as f64 - 16.0) * 1e-39, Rounding::NearestEven, Overflow::Saturate);
            }
        }
        let host = quant::quantize_mx(&f32s(&x), [rows, cols], mx_element(tq)).expect("host quantizes");
        let k = kernel("quantize.tl", "quantize_mx", &d(&[("T", &tin), ("TQ", tq), ("TR", &tr), ("TC", &tc)]));
        let args = call(&k, vec![("rows", int(rows)), ("cols", int(cols)), ("x", t(&x))], &[("q", vec![rows, cols]), ("scale", vec![rows, cols / 32])], &format!("quantize_mx seed {seed}"));
        let (hq, hs) = codes_of(&host);
        assert_eq!(out(&k, &args, "scale").codes, hs, "quantize_mx {tin}→{tq} seed {seed}: scales");
        assert_eq!(out(&k, &args, "q").codes, hq, "quantize_mx {tin}→{tq} seed {seed}: codes");
    }
}

fn check_nvfp4(host: &Quantized, k: &Kernel, args: &[ArgValue], what: &str) {
    let (hq, hs) = codes_of(host);
    assert_eq!(out(k, args, "tensor_scale").to_f64()[0] as f32, host.tensor_scale.expect("nvfp4 has a tensor scale"), "{what}: tensor scale");
    assert_eq!(out(k, args, "scale").codes, hs, "{what}: scales");
    assert_eq!(out(k, args, "q").codes, hq, "{what}: codes");
}

#[test]
fn quantize_nvfp4_is_bit_identical_to_the_host() {
    let base = fresh_seed();
    for (i, (tin, rows, cols, tr, tc)) in [("f32", 5usize, 48usize, 4usize, 32usize), ("bf16", 1, 16, 4, 16), ("f16", 8, 128, 4, 64)].into_iter().enumerate() {
        let seed = base + i as u64;
        let x = quant_input(tin, rows, cols, seed);
        let host = quant::quantize_nvfp4(&f32s(&x), [rows, cols]).expect("host quantizes");
        let k = kernel("quantize.tl", "quantize_nvfp4", &d(&[("T", &tin), ("TR", &tr), ("TC", &tc)]));
        let args = call(&k, vec![("rows", int(rows)), ("cols", int(cols)), ("x", t(&x))], &[("q", vec![rows, cols]), ("scale", vec![rows, cols / 16]), ("tensor_scale", vec![1])], &format!("quantize_nvfp4 seed {seed}"));
        check_nvfp4(&host, &k, &args, &format!("quantize_nvfp4 {tin} seed {seed}"));
    }
}

/// NVFP4 inputs placed on and next to the rounding boundaries (block amax at 6 t times a ue4m3
/// midpoint, elements at sb · t times an e2m1 midpoint, each ± one f32 ulp), with a tensor scale
/// t of 24 significant bits so that 6 t and sb · t are inexact in f32: the kernel's exact
/// decisions against the host's f64 ones.
#[test]
fn quantize_nvfp4_decides_the_roundings_next_to_midpoints_exactly() {
    let seed = fresh_seed();
    let mut rng = SplitMix64(seed);
    let (rows, cols) = (4, 64);
    let ue4m3 = dt("ue4m3");
    let fp4 = dt("f4e2m1");
    let nudge = |v: f32, k: u64| match k % 3 {
        0 => v,
        1 => f32::from_bits(v.to_bits() + 1),
        _ => f32::from_bits(v.to_bits() - 1),
    };
    for case in 0..4 {
        let t0 = (1.0 + rng.next_f64()) * 2f64.powi(case * 7 - 12);
        let mut x = vec![0f32; rows * cols];
        x[0] = (2688.0 * t0) as f32;
        let ts = x[0] / 2688.0;
        for b in 1..rows * cols / 16 {
            // A ue4m3 midpoint between codes 8..125 (normal scales below 448).
            let c = 8 + rng.next_u64() % 118;
            let ms = (ue4m3.decode(c) + ue4m3.decode(c + 1)) / 2.0;
            let a = nudge((6.0 * f64::from(ts) * ms) as f32, rng.next_u64());
            let sb = ue4m3.decode(ue4m3.encode(f64::from(a) / (6.0 * f64::from(ts)), Rounding::NearestEven, Overflow::Saturate));
            x[b * 16] = if rng.next_u64() % 2 == 0 { a } else { -a };
            for j in 1..16 {
                let fc = rng.next_u64() % 7;
                let mid = (fp4.decode(fc) + fp4.decode(fc + 1)) / 2.0;
                let v = nudge((mid * sb * f64::from(ts)) as f32, rng.next_u64());
                x[b * 16 + j] = if rng.next_u64() % 2 == 0 { v.min(a) } else { -v.min(a) };
            }
        }
        let host = quant::quantize_nvfp4(&x, [rows, cols]).expect("host quantizes");
        let k = kernel("quantize.tl", "quantize_nvfp4", &d(&[("T", &"f32"), ("TR", &4), ("TC", &32)]));
        let xt = HostTensor { dtype: DType::F32, shape: vec![rows, cols], codes: x.iter().map(|v| u64::from(v.to_bits())).collect() };
        let args = call(&k, vec![("rows", int(rows)), ("cols", int(cols)), ("x", t(&xt))], &[("q", vec![rows, cols]), ("scale", vec![rows, cols / 16]), ("tensor_scale", vec![1])], "quantize_nvfp4 midpoints");
        check_nvfp4(&host, &k, &args, &format!("quantize_nvfp4 at midpoints, case {case}, seed {seed}"));
    }
}

/// Runs `dequantize` on a host-quantized tensor and compares with `Quantized::dequantize`: bit
/// for bit for `TO = f32`; for f16 and bf16 the host's f32 rounded to nearest even once more
/// (the kernel's documented rule). NaN matches any NaN.
fn check_dequantize(host: &Quantized, tile: (usize, usize), unit: f64, to: &str, what: &str) {
    let [rows, cols] = host.shape;
    let [bh, bw] = host.block;
    let zp = host.zero_points.is_some();
    let k = kernel("dequantize.tl", "dequantize", &d(&[("TQ", &host.element), ("TS", &host.scale_dtype), ("TO", &to), ("ZP", &zp), ("UNIT", &unit), ("TR", &tile.0), ("TC", &tile.1)]));
    let q = HostTensor { dtype: host.element, shape: vec![rows, cols], codes: host.element_codes() };
    let ss = vec![rows / bh, cols / bw];
    let scale = HostTensor { dtype: host.scale_dtype, shape: ss.clone(), codes: codes_of(host).1 };
    let zero = HostTensor { dtype: host.element, shape: ss, codes: host.zero_point_values().unwrap_or_else(|| vec![0; host.num_scales()]) };
    let ts = f64::from(host.tensor_scale.unwrap_or(1.0));
    let args = call(
        &k,
        vec![("rows", int(rows)), ("cols", int(cols)), ("bh", int(bh)), ("bw", int(bw)), ("tensor_scale", ArgValue::Float(ts)), ("q", t(&q)), ("scale", t(&scale)), ("zero", t(&zero))],
        &[("x", vec![rows, cols])],
        what,
    );
    let tod = dt(to);
    let got = &out(&k, &args, "x").codes;
    for (i, v) in host.dequantize().iter().enumerate() {
        let want = tod.encode(f64::from(*v), Rounding::NearestEven, Overflow::Saturate);
        let ok = if v.is_nan() { tod.decode(got[i]).is_nan() } else { got[i] == want };
        assert!(ok, "{what} → {to}: element {i} is {:#x} ({}), want {want:#x} ({v})", got[i], tod.decode(got[i]));
    }
}

#[test]
fn dequantize_is_bit_identical_to_the_host_for_every_scheme() {
    let (rows, cols) = (64, 32);
    let x = f32s(&quant_input("f32", rows, cols, 1300));
    for (i, tq) in UINTS.iter().chain(SINTS).enumerate() {
        let tqd = dt(tq);
        let (gran, _, _, tr, tc) = granularities(rows, cols)[i % 5];
        let cfg = IntConfig { bits: tqd.bits(), symmetric: tqd.is_signed(), granularity: gran, scale_dtype: dt(["f16", "bf16", "f32"][i % 3]), rounding: Rounding::NearestEven };
        let to = ["f32", "f16", "bf16"][i % 3];
        check_dequantize(&quant::quantize_int(&x, [rows, cols], &cfg).expect("quantizes"), (tr, tc), 1.0, to, &format!("dequantize {tq} {gran:?} scale {}", cfg.scale_dtype));
    }
    for (i, tq) in FLOATS.iter().enumerate() {
        let (gran, _, _, tr, tc) = granularities(rows, cols)[i % 5];
        let ts = ["f16", "bf16", "f32"][i % 3];
        let host = quant::quantize_float(&x, [rows, cols], dt(tq), gran, dt(ts), Rounding::NearestEven).expect("quantizes");
        check_dequantize(&host, (tr, tc), 1.0, ["bf16", "f32", "f16"][i % 3], &format!("dequantize {tq} {gran:?} scale {ts}"));
    }
    for tq in MX_ELEMENTS.iter().chain(&["i8"]) {
        let unit = if *tq == "i8" { 0.015625 } else { 1.0 };
        for to in ["f32", "f16", "bf16"] {
            check_dequantize(&quant::quantize_mx(&x, [rows, cols], mx_element(tq)).expect("quantizes"), (1, 32), unit, to, &format!("dequantize MX {tq}"));
        }
    }
    for to in ["f32", "f16", "bf16"] {
        check_dequantize(&quant::quantize_nvfp4(&x, [rows, cols]).expect("quantizes"), (1, 16), 1.0, to, "dequantize NVFP4");
    }
}

/// `x` with NaN at a few places: inside an otherwise finite block, and a whole row.
fn with_nans(tin: &str, rows: usize, cols: usize, seed: u64) -> HostTensor {
    let mut x = quant_input(tin, rows, cols, seed);
    let nan = dt(tin).encode(f64::NAN, Rounding::NearestEven, Overflow::Saturate);
    for i in [3 * cols + 5, 7 * cols + 31, 20 * cols + 16].into_iter().chain(40 * cols..41 * cols) {
        x.codes[i] = nan;
    }
    x
}

/// NaN inputs: every quantizer gives the host's scales and codes (the host's range ignores NaN,
/// its absmax does not: a symmetric or float block holding NaN gets the scale 1, an MX block the
/// NaN scale, an NVFP4 block the NaN scale and codes 0; a NaN element becomes integer code 0 or
/// the float format's NaN), and `dequantize` maps the NaN codes back to NaN.
#[test]
fn nan_inputs_quantize_and_dequantize_as_on_the_host() {
    let (rows, cols) = (64, 32);
    let base = fresh_seed();
    for (i, (tq, stochastic)) in [("i4", false), ("u3", false), ("i8", true), ("u8", true)].into_iter().enumerate() {
        let tqd = dt(tq);
        let (gran, bh, bw, tr, tc) = granularities(rows, cols)[[0, 3, 4, 1][i]];
        let seed = base + i as u64;
        let x = with_nans("f32", rows, cols, seed);
        let rounding = if stochastic { Rounding::Stochastic { seed, index: 0 } } else { Rounding::NearestEven };
        let cfg = IntConfig { bits: tqd.bits(), symmetric: tqd.is_signed(), granularity: gran, scale_dtype: DType::F16, rounding };
        let host = quant::quantize_int(&f32s(&x), [rows, cols], &cfg).expect("host quantizes");
        let k = kernel("quantize.tl", "quantize_int", &d(&[("TQ", &tq), ("STOCHASTIC", &stochastic), ("TR", &tr), ("TC", &tc)]));
        let args = call(
            &k,
            vec![("rows", int(rows)), ("cols", int(cols)), ("bh", int(bh)), ("bw", int(bw)), ("seed", ArgValue::Int(seed as i64)), ("x", t(&x))],
            &[("q", vec![rows, cols]), ("scale", vec![rows / bh, cols / bw]), ("zero", vec![rows / bh, cols / bw])],
            &format!("quantize_int NaN seed {seed}"),
        );
        let what = format!("quantize_int NaN → {tq} {gran:?} stochastic={stochastic} seed {seed}");
        let (hq, hs) = codes_of(&host);
        assert_eq!(out(&k, &args, "scale").codes, hs, "{what}: scales");
        let exceptions = stochastic.then(|| stochastic_exceptions(&f32s(&x), &host, seed));
        assert_codes(&out(&k, &args, "q").codes, &hq, exceptions.as_deref(), &what);
        check_dequantize(&host, (tr, tc), 1.0, "f32", &what);
    }
    for (i, (tq, stochastic)) in [("f8e4m3", false), ("f4e2m1", true), ("f8e5m2", true), ("f6e3m2", false)].into_iter().enumerate() {
        let (gran, bh, bw, tr, tc) = granularities(rows, cols)[[0, 3, 4, 1][i]];
        let seed = base + 10 + i as u64;
        let x = with_nans("bf16", rows, cols, seed);
        let rounding = if stochastic { Rounding::Stochastic { seed, index: 0 } } else { Rounding::NearestEven };
        let host = quant::quantize_float(&f32s(&x), [rows, cols], dt(tq), gran, DType::BF16, rounding).expect("host quantizes");
        let k = kernel("quantize.tl", "quantize_float", &d(&[("T", &"bf16"), ("TQ", &tq), ("TS", &"bf16"), ("STOCHASTIC", &stochastic), ("TR", &tr), ("TC", &tc)]));
        let args = call(
            &k,
            vec![("rows", int(rows)), ("cols", int(cols)), ("bh", int(bh)), ("bw", int(bw)), ("seed", ArgValue::Int(seed as i64)), ("x", t(&x))],
            &[("q", vec![rows, cols]), ("scale", vec![rows / bh, cols / bw])],
            &format!("quantize_float NaN seed {seed}"),
        );
        let what = format!("quantize_float NaN → {tq} {gran:?} stochastic={stochastic} seed {seed}");
        let (hq, hs) = codes_of(&host);
        assert_eq!(out(&k, &args, "scale").codes, hs, "{what}: scales");
        let exceptions = stochastic.then(|| stochastic_exceptions(&f32s(&x), &host, seed));
        assert_codes(&out(&k, &args, "q").codes, &hq, exceptions.as_deref(), &what);
        check_dequantize(&host, (tr, tc), 1.0, "f16", &what);
    }
    for tq in ["f8e4m3", "f4e2m1", "i8"] {
        let x = with_nans("f32", rows, cols, base + 20);
        let host = quant::quantize_mx(&f32s(&x), [rows, cols], mx_element(tq)).expect("host quantizes");
        let k = kernel("quantize.tl", "quantize_mx", &d(&[("TQ", &tq), ("TR", &4), ("TC", &32)]));
        let args = call(&k, vec![("rows", int(rows)), ("cols", int(cols)), ("x", t(&x))], &[("q", vec![rows, cols]), ("scale", vec![rows, cols / 32])], "quantize_mx NaN");
        let (hq, hs) = codes_of(&host);
        assert_eq!(out(&k, &args, "scale").codes, hs, "quantize_mx NaN → {tq}: scales");
        assert_eq!(out(&k, &args, "q").codes, hq, "quantize_mx NaN → {tq}: codes");
        check_dequantize(&host, (1, 32), if tq == "i8" { 0.015625 } else { 1.0 }, "f32", &format!("dequantize MX {tq} NaN"));
    }
    let x = with_nans("f16", rows, cols, base + 30);
    let host = quant::quantize_nvfp4(&f32s(&x), [rows, cols]).expect("host quantizes");
    let k = kernel("quantize.tl", "quantize_nvfp4", &d(&[("T", &"f16"), ("TR", &4), ("TC", &32)]));
    let args = call(&k, vec![("rows", int(rows)), ("cols", int(cols)), ("x", t(&x))], &[("q", vec![rows, cols]), ("scale", vec![rows, cols / 16]), ("tensor_scale", vec![1])], "quantize_nvfp4 NaN");
    check_nvfp4(&host, &k, &args, &format!("quantize_nvfp4 NaN seed {}", base + 30));
    check_dequantize(&host, (1, 16), 1.0, "bf16", "dequantize NVFP4 NaN");
}

// ---------------------------------------------------------------------------------------------
// Hadamard, alone and fused with quantization

/// H_N · x by the recursive definition H_2n x = [H_n x₁ + H_n x₂, H_n x₁ − H_n x₂].
fn hadamard_ref(x: &[f64]) -> Vec<f64> {
    if x.len() == 1 {
        return x.to_vec();
    }
    let (lo, hi) = x.split_at(x.len() / 2);
    let (a, b) = (hadamard_ref(lo), hadamard_ref(hi));
    a.iter().zip(&b).map(|(p, q)| p + q).chain(a.iter().zip(&b).map(|(p, q)| p - q)).collect()
}

#[test]
fn hadamard_reference_agrees_with_the_sylvester_matrix() {
    let x: Vec<f64> = (0..32).map(|i| (i * i % 11) as f64 - 4.0).collect();
    for (i, hi) in hadamard_ref(&x).iter().enumerate() {
        let want: f64 = (0..32).map(|j| if (i & j).count_ones() % 2 == 0 { x[j] } else { -x[j] }).sum();
        assert_eq!(*hi, want);
    }
}

#[test]
fn hadamard_matches_f64_at_every_size() {
    for log in HADAMARD_SIZES {
        let nn = 1usize << log;
        // Small sizes broadly (several rows, rows not a multiple of ROWS); the largest once.
        let (rows, rpb) = if log >= 13 { (1, 1) } else { ([3, 5, 2][log as usize % 3], [2, 1, 4][log as usize % 3]) };
        let ty = ["f32", "bf16", "f16"][log as usize % 3];
        let seed = 1400 + u64::from(log);
        let k = kernel("hadamard.tl", "hadamard", &d(&[("T", &ty), ("N", &nn), ("ROWS", &rpb)]));
        let x = random_tensor(dt(ty), vec![rows, nn], seed);
        let args = call(&k, vec![("rows", int(rows)), ("x", t(&x))], &[("y", vec![rows, nn])], &format!("hadamard seed {seed}"));
        let (xv, y) = (x.to_f64(), out(&k, &args, "y").to_f64());
        let scale = 1.0 / (nn as f64).sqrt();
        for r in 0..rows {
            let h = hadamard_ref(&xv[r * nn..(r + 1) * nn]);
            let mag: f64 = xv[r * nn..(r + 1) * nn].iter().map(|v| v.abs()).sum::<f64>() * scale;
            for (j, hv) in h.iter().enumerate() {
                let want = hv * scale;
                // f32 rounding of H·x, of the scale and of the product, then one rounding to T.
                let bound = want.abs() * half_ulp(dt(ty)) + 4.0 * 2f64.powi(-24) * mag + min_subnormal(dt(ty));
                let got = y[r * nn + j];
                assert!((got - want).abs() <= bound, "hadamard T={ty} N={nn} seed {seed}: y[{r}, {j}] = {got}, want {want} ± {bound}");
            }
        }
    }
}

/// The rotation the fused kernels quantize: per tile of N columns, f32(H·x) times f32(1/sqrt N),
/// rounded to f32, as the VM defines `hadamard(t) * rsqrt(N)`.
fn rotated(x: &HostTensor, nn: usize) -> Vec<f32> {
    let (rows, cols) = (x.shape[0], x.shape[1]);
    let xv = x.to_f64();
    let rs = f64::from((1.0 / (nn as f64).sqrt()) as f32);
    let mut y = vec![0f32; rows * cols];
    for r in 0..rows {
        for c0 in (0..cols).step_by(nn) {
            for (j, h) in hadamard_ref(&xv[r * cols + c0..r * cols + c0 + nn]).iter().enumerate() {
                y[r * cols + c0 + j] = (f64::from(*h as f32) * rs) as f32;
            }
        }
    }
    y
}

#[test]
fn hadamard_quant_mx_is_bit_identical_to_quantize_mx_of_the_rotation() {
    let base = fresh_seed();
    for (i, tq) in MX_ELEMENTS.iter().enumerate() {
        for stochastic in [false, true] {
            let (rows, cols, nn, rpb) = [(5, 64, 32, 4), (3, 256, 256, 2), (1, 128, 64, 16)][(i + usize::from(stochastic)) % 3];
            let seed = base + i as u64 * 2 + u64::from(stochastic);
            let x = quant_input("bf16", rows, cols, seed);
            let y = rotated(&x, nn);
            let host = quant::quantize_mx(&y, [rows, cols], mx_element(tq)).expect("host quantizes");
            let k = kernel("hadamard_quant.tl", "hadamard_quant_mx", &d(&[("T", &"bf16"), ("TQ", tq), ("N", &nn), ("ROWS", &rpb), ("STOCHASTIC", &stochastic)]));
            let args = call(
                &k,
                vec![("rows", int(rows)), ("cols", int(cols)), ("seed", ArgValue::Int(seed as i64)), ("x", t(&x))],
                &[("q", vec![rows, cols]), ("scale", vec![rows, cols / 32])],
                &format!("hadamard_quant_mx seed {seed}"),
            );
            let what = format!("hadamard_quant_mx {tq} N={nn} stochastic={stochastic} seed {seed}");
            let (mut hq, hs) = codes_of(&host);
            if stochastic {
                // The same scales; the elements y / X (exact) rounded by tilc-dtype's stochastic rule.
                let e8m0 = dt("e8m0");
                for (idx, code) in hq.iter_mut().enumerate() {
                    let xs = e8m0.decode(hs[idx / 32]);
                    *code = dt(tq).encode(f64::from(y[idx]) / xs, Rounding::Stochastic { seed, index: idx as u64 }, Overflow::Saturate);
                }
            }
            assert_eq!(out(&k, &args, "scale").codes, hs, "{what}: scales");
            assert_eq!(out(&k, &args, "q").codes, hq, "{what}: codes");
        }
    }
}

#[test]
fn hadamard_quant_nvfp4_is_bit_identical_to_quantize_nvfp4_of_the_rotation() {
    for (i, (rows, cols, nn, rpb)) in [(5usize, 64usize, 32usize, 4usize), (2, 256, 256, 1), (9, 32, 16, 4)].into_iter().enumerate() {
        let seed = 1600 + i as u64;
        let x = quant_input("bf16", rows, cols, seed);
        let host = quant::quantize_nvfp4(&rotated(&x, nn), [rows, cols]).expect("host quantizes");
        let k = kernel("hadamard_quant.tl", "hadamard_quant_nvfp4", &d(&[("T", &"bf16"), ("N", &nn), ("ROWS", &rpb)]));
        let args = call(&k, vec![("rows", int(rows)), ("cols", int(cols)), ("x", t(&x))], &[("q", vec![rows, cols]), ("scale", vec![rows, cols / 16]), ("tensor_scale", vec![1])], &format!("hadamard_quant_nvfp4 seed {seed}"));
        check_nvfp4(&host, &k, &args, &format!("hadamard_quant_nvfp4 N={nn} seed {seed}"));
    }
}

#[test]
fn hadamard_quant_int_is_bit_identical_to_quantize_int_of_the_rotation() {
    for (i, tq) in SINTS.iter().enumerate() {
        let (rows, cols, nn, rpb, g) = [(5, 64, 32, 4, 32), (3, 256, 128, 2, 64), (17, 64, 64, 16, 16), (1, 256, 256, 1, 128)][i % 4];
        let ts = ["f16", "bf16"][i % 2];
        let seed = 1700 + i as u64;
        let x = quant_input("bf16", rows, cols, seed);
        let cfg = IntConfig { bits: dt(tq).bits(), symmetric: true, granularity: Granularity::PerGroup { axis: 1, size: g }, scale_dtype: dt(ts), rounding: Rounding::NearestEven };
        let host = quant::quantize_int(&rotated(&x, nn), [rows, cols], &cfg).expect("host quantizes");
        let k = kernel("hadamard_quant.tl", "hadamard_quant_int", &d(&[("T", &"bf16"), ("TQ", tq), ("TS", &ts), ("N", &nn), ("ROWS", &rpb), ("G", &g)]));
        let args = call(&k, vec![("rows", int(rows)), ("cols", int(cols)), ("x", t(&x))], &[("q", vec![rows, cols]), ("scale", vec![rows, cols / g])], &format!("hadamard_quant_int seed {seed}"));
        let (hq, hs) = codes_of(&host);
        let what = format!("hadamard_quant_int {tq} scale {ts} N={nn} G={g} seed {seed}");
        assert_eq!(out(&k, &args, "scale").codes, hs, "{what}: scales");
        assert_eq!(out(&k, &args, "q").codes, hq, "{what}: codes");
    }
}

// ---------------------------------------------------------------------------------------------
// Repacking

/// The packed tiles computed here from tilus.md §4.5: lane 4·nl + kq holds, in slot order
/// (nt, kh, kl), element (8·kh + 2·kq + kl, 8·nt + nl) of each 16 × 16 tile; a lane's 8·bits bits
/// are its `bits` bytes, stored as [outer, lane, inner] with inner = gcd(bits, 16).
fn repack_ref(w: &HostTensor) -> Vec<u64> {
    let (kd, n, bits) = (w.shape[0], w.shape[1], w.dtype.bits() as usize);
    let inner = 1usize << bits.trailing_zeros();
    let outer = bits / inner;
    let mut outb = Vec::new();
    for bk in 0..kd / 16 {
        for bn in 0..n / 16 {
            let mut lanes = vec![Vec::new(); 32];
            for (lane, codes) in lanes.iter_mut().enumerate() {
                let (nl, kq) = (lane / 4, lane % 4);
                for nt in 0..2 {
                    for kh in 0..2 {
                        for kl in 0..2 {
                            codes.push(w.codes[(bk * 16 + 8 * kh + 2 * kq + kl) * n + bn * 16 + 8 * nt + nl]);
                        }
                    }
                }
            }
            let bytes: Vec<Vec<u8>> = lanes.iter().map(|c| tilc_dtype::pack::pack(c, bits as u32)).collect();
            for o in 0..outer {
                for lane_bytes in &bytes {
                    outb.extend(lane_bytes[o * inner..(o + 1) * inner].iter().map(|&b| u64::from(b)));
                }
            }
        }
    }
    outb
}

#[test]
fn repack_matches_the_fragment_order_and_unrepack_inverts_it() {
    for (i, tw) in UINTS.iter().chain(SINTS).chain(FLOATS).enumerate() {
        let twd = dt(tw);
        let bits = twd.bits();
        let (kd, n) = [(32, 48), (16, 16), (48, 32)][i % 3];
        let seed = 1800 + i as u64;
        let mut rng = SplitMix64(seed);
        let w = HostTensor { dtype: twd, shape: vec![kd, n], codes: (0..kd * n).map(|_| rng.next_u64() & twd.code_mask()).collect() };
        let pk = kernel("repack.tl", "repack", &d(&[("TW", tw), ("BITS", &bits)]));
        let args = call(&pk, vec![("k", int(kd)), ("n", int(n)), ("w", t(&w))], &[("p", vec![kd / 16, n / 16, 32 * bits as usize])], &format!("repack seed {seed}"));
        let p = out(&pk, &args, "p").clone();
        assert_eq!(p.codes, repack_ref(&w), "repack {tw} seed {seed}");
        let uk = kernel("repack.tl", "unrepack", &d(&[("TW", tw), ("BITS", &bits)]));
        let back = call(&uk, vec![("k", int(kd)), ("n", int(n)), ("p", t(&p))], &[("w", vec![kd, n])], &format!("unrepack seed {seed}"));
        assert_eq!(out(&uk, &back, "w").codes, w.codes, "unrepack ∘ repack {tw} seed {seed}");
    }
}

// ---------------------------------------------------------------------------------------------
// IR snapshots and the W3A8 timing

const KERNELS: &[(&str, &str)] = &[
    ("gemm_a16w.tl", "gemm_a16w"),
    ("gemv.tl", "gemv_a16w"),
    ("gemm_a8w.tl", "gemm_a8w"),
    ("gemm_fp8.tl", "gemm_fp8"),
    ("gemm_mx.tl", "gemm_block_scaled"),
    ("quantize.tl", "quantize_int"),
    ("quantize.tl", "quantize_float"),
    ("quantize.tl", "quantize_mx"),
    ("quantize.tl", "quantize_nvfp4"),
    ("dequantize.tl", "dequantize"),
    ("hadamard.tl", "hadamard"),
    ("hadamard_quant.tl", "hadamard_quant_mx"),
    ("hadamard_quant.tl", "hadamard_quant_nvfp4"),
    ("hadamard_quant.tl", "hadamard_quant_int"),
    ("repack.tl", "repack"),
    ("repack.tl", "unrepack"),
];

#[test]
fn library_vm_ir_at_default_configuration() {
    let names: Vec<&str> = coverage().iter().flat_map(|r| r.kernel.split(" / ")).collect();
    for (file, name) in KERNELS {
        assert!(names.contains(name), "{name} is missing from the README table");
        insta::assert_snapshot!(format!("library_ir__{name}"), print_kernel(&kernel(file, name, &[])));
    }
}

/// The interpreter's time for the W3A8 GEMM at m = 16, k = n = 1024 (run with `--ignored`).
#[test]
#[ignore]
fn time_w3a8_gemm_m16_k1024_n1024() {
    let (m, n, kd, g) = (16, 1024, 1024, 128);
    let k = kernel("gemm_a8w.tl", "gemm_a8w", &d(&[("TW", &"u3"), ("OFFSET", &4), ("BM", &16), ("BN", &128), ("BK", &32)]));
    let inputs = vec![
        ("m", int(m)),
        ("n", int(n)),
        ("k", int(kd)),
        ("group", int(g)),
        ("a", t(&random_tensor(DType::Int(8), vec![m, kd], 1))),
        ("a_scale", t(&random_tensor(DType::F32, vec![m], 2))),
        ("w", t(&random_tensor(dt("u3"), vec![kd, n], 3))),
        ("w_scale", t(&random_tensor(DType::F16, vec![kd / g, n], 4))),
    ];
    let start = std::time::Instant::now();
    call(&k, inputs, &[("c", vec![m, n])], "W3A8 timing");
    println!("W3A8 GEMM m={m} n={n} k={kd} on the interpreter: {:.3} s", start.elapsed().as_secs_f64());
}
