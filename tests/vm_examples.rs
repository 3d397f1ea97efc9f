//! The three examples on the VM interpreter against references computed here in f64, on fresh
//! seeded random inputs at several shapes (m = 1, sizes not divisible by the tile, the largest
//! Hadamard size), plus a snapshot of each example's VM IR at its default configuration.
//!
//! Each reference is written from the kernel's doc comment, not from the interpreter; bounds are
//! derived from the formats' precisions. Outputs are poisoned before the run so unwritten
//! elements show.

use std::path::Path;
use tilc_base::SourceFile;
use tilc_dtype::DType;
use tilc_vm::{ArgValue, Define, HostTensor, Kernel, Param, elaborate_source, print_kernel, random_tensor, run};

fn example(name: &str, defines: &[(&str, &str)]) -> Kernel {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(format!("{name}.tl"));
    let file = SourceFile::new(format!("examples/{name}.tl"), std::fs::read_to_string(path).unwrap());
    let defs: Vec<Define> = defines.iter().map(|(n, v)| Define { name: n.to_string(), value: v.to_string() }).collect();
    elaborate_source(&file, None, &defs).unwrap_or_else(|d| panic!("{}", tilc_base::render(&file, &d, tilc_base::RenderStyle::Plain)))
}

/// Arguments in parameter order: scalars from `scalars`, tensors random (inputs, seeded from
/// `seed` and the position) or poisoned with all-ones codes (outputs).
fn args(k: &Kernel, scalars: &[(&str, i64)], shapes: &[(&str, Vec<usize>)], seed: u64) -> Vec<ArgValue> {
    k.params
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let name = k.param_name(*p);
            match p {
                Param::Scalar(_) => ArgValue::Int(scalars.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("no scalar {name}")).1),
                Param::Tensor(g) => {
                    let gd = &k.globals[*g];
                    let shape = shapes.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("no shape {name}")).1.clone();
                    if gd.out {
                        ArgValue::Tensor(HostTensor::filled(gd.dtype, shape, u64::MAX))
                    } else {
                        ArgValue::Tensor(random_tensor(gd.dtype, shape, seed * 1000 + i as u64))
                    }
                }
            }
        })
        .collect()
}

fn tensor<'a>(args: &'a [ArgValue], k: &Kernel, name: &str) -> &'a HostTensor {
    let i = k.params.iter().position(|p| k.param_name(*p) == name).unwrap();
    match &args[i] {
        ArgValue::Tensor(t) => t,
        _ => panic!("{name} is not a tensor"),
    }
}

fn ulp_rel(d: DType) -> f64 {
    // Half an ulp relative to the value, for a format with M mantissa bits: 2^-(M+1).
    let m = match d.to_string().as_str() {
        "f16" => 10,
        "bf16" => 7,
        "f32" => 23,
        other => panic!("no precision for {other}"),
    };
    2f64.powi(-(m + 1))
}

#[test]
fn gemm_w3a8_matches_the_f64_reference() {
    for (seed, m, n, kdim, bm, bn, g) in [(1u64, 33usize, 96usize, 256usize, "32", "128", 128usize), (2, 1, 64, 128, "32", "64", 64), (3, 70, 130, 128, "64", "64", 32)] {
        let gs = g.to_string();
        let k = example("gemm_w3a8", &[("BM", bm), ("BN", bn), ("G", &gs)]);
        let mut a = args(
            &k,
            &[("m", m as i64), ("n", n as i64), ("k", kdim as i64)],
            &[("a", vec![m, kdim]), ("a_scale", vec![m]), ("w", vec![kdim, n]), ("w_scale", vec![kdim / g, n]), ("c", vec![m, n])],
            seed,
        );
        run(&k, &mut a).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let av = tensor(&a, &k, "a").to_f64();
        let sa = tensor(&a, &k, "a_scale").to_f64();
        let wv = tensor(&a, &k, "w").to_f64();
        let ws = tensor(&a, &k, "w_scale").to_f64();
        let c = tensor(&a, &k, "c").to_f64();
        let groups = kdim / g;
        for i in 0..m {
            for j in 0..n {
                let mut sum = 0.0;
                let mut mag = 0.0;
                for gi in 0..groups {
                    // Integer part: exact.
                    let part: f64 = (gi * g..(gi + 1) * g).map(|p| av[i * kdim + p] * (wv[p * n + j] - 4.0)).sum();
                    sum += part * ws[gi * n + j];
                    mag += (part * ws[gi * n + j]).abs();
                }
                let want = sum * sa[i];
                // f32 accumulation: a few roundings of 2^-24 per group on the running magnitude,
                // then one f16 rounding of the result (plus f16's smallest subnormal).
                let bound = want.abs() * ulp_rel(DType::F16) + (groups as f64 + 3.0) * 2f64.powi(-23) * mag * sa[i].abs() + 2f64.powi(-24);
                let got = c[i * n + j];
                assert!((got - want).abs() <= bound, "seed {seed} m={m} n={n} k={kdim}: c[{i}, {j}] = {got}, want {want} ± {bound}");
            }
        }
    }
}

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
    // The reference itself, against the explicit matrix entry H[i][j] = (-1)^popcount(i & j).
    let x: Vec<f64> = (0..16).map(|i| (i * i % 7) as f64 - 2.0).collect();
    let h = hadamard_ref(&x);
    for (i, hi) in h.iter().enumerate() {
        let want: f64 = (0..16).map(|j| if (i & j).count_ones() % 2 == 0 { x[j] } else { -x[j] }).sum();
        assert_eq!(*hi, want);
    }
}

#[test]
fn hadamard_rows_matches_the_f64_reference() {
    for (seed, t, nn, rows, rows_per_block) in [(1u64, "f32", 2usize, 3usize, "1"), (2, "bf16", 64, 5, "2"), (3, "f16", 256, 1, "1"), (4, "bf16", 32768, 2, "1")] {
        let ns = nn.to_string();
        let k = example("hadamard_rows", &[("T", t), ("N", &ns), ("ROWS", rows_per_block)]);
        let mut a = args(&k, &[("rows", rows as i64)], &[("x", vec![rows, nn]), ("y", vec![rows, nn])], seed);
        run(&k, &mut a).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let d = DType::parse(t).unwrap();
        let x = tensor(&a, &k, "x").to_f64();
        let y = tensor(&a, &k, "y").to_f64();
        let scale = 1.0 / (nn as f64).sqrt();
        for r in 0..rows {
            let h = hadamard_ref(&x[r * nn..(r + 1) * nn]);
            let mag: f64 = x[r * nn..(r + 1) * nn].iter().map(|v| v.abs()).sum::<f64>() * scale;
            for (j, hv) in h.iter().enumerate() {
                let want = hv * scale;
                let bound = want.abs() * ulp_rel(d) + 4.0 * 2f64.powi(-24) * mag + 2f64.powi(-133);
                let got = y[r * nn + j];
                assert!((got - want).abs() <= bound, "seed {seed} T={t} N={nn}: y[{r}, {j}] = {got}, want {want} ± {bound}");
            }
        }
    }
}

/// The f4e2m1 values, for checking that a code lies next to the exact value.
const FP4: [f64; 8] = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0];

fn fp4_neighbours(y: f64) -> (f64, f64) {
    let a = y.abs().min(6.0);
    let lo = FP4.iter().copied().filter(|v| *v <= a).fold(0.0, f64::max);
    let hi = FP4.iter().copied().filter(|v| *v >= a).fold(6.0, f64::min);
    if y < 0.0 { (-hi, -lo) } else { (lo, hi) }
}

fn run_mxfp4(nn: usize, rows_per_block: &str, rows: usize, cols: usize, seed: u64, rseed: i64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let ns = nn.to_string();
    let k = example("hadamard_quant_mxfp4", &[("N", &ns), ("ROWS", rows_per_block)]);
    let mut a = args(
        &k,
        &[("rows", rows as i64), ("cols", cols as i64), ("seed", rseed)],
        &[("x", vec![rows, cols]), ("q", vec![rows, cols]), ("scale", vec![rows, cols / 32])],
        seed,
    );
    // One row of zeros exercises the amax = 0 rule.
    let i = k.params.iter().position(|p| k.param_name(*p) == "x").unwrap();
    if let ArgValue::Tensor(t) = &mut a[i] {
        for c in &mut t.codes[..cols] {
            *c = 0;
        }
    }
    run(&k, &mut a).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    (tensor(&a, &k, "x").to_f64(), tensor(&a, &k, "q").to_f64(), tensor(&a, &k, "scale").to_f64())
}

#[test]
fn hadamard_quant_mxfp4_matches_the_f64_reference() {
    for (seed, nn, rpb, rows, cols) in [(1u64, 32usize, "16", 3usize, 64usize), (2, 64, "4", 9, 96), (3, 256, "2", 2, 256)] {
        let (x, q, scale) = run_mxfp4(nn, rpb, rows, cols, seed, 77);
        let mut diffs = Vec::new();
        for r in 0..rows {
            // Tiles of N columns; the last one may be partial (zeros beyond `cols`).
            for c0 in (0..cols).step_by(nn) {
                let mut tile = vec![0.0; nn];
                for j in 0..nn {
                    if c0 + j < cols {
                        tile[j] = x[r * cols + c0 + j];
                    }
                }
                let h: Vec<f64> = hadamard_ref(&tile).iter().map(|v| v / (nn as f64).sqrt()).collect();
                for b in 0..nn / 32 {
                    let col = c0 + 32 * b;
                    if col >= cols {
                        continue;
                    }
                    let blk = &h[32 * b..32 * b + 32];
                    let amax = blk.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                    let e = if amax == 0.0 { -127 } else { (amax.log2().floor() as i32 - 2).max(-127) };
                    // Skip blocks whose amax sits within f32 rounding of a power of two.
                    let near_boundary = amax > 0.0 && ((amax.log2() - amax.log2().round()).abs() < 1e-6);
                    let s = scale[r * (cols / 32) + col / 32];
                    if !near_boundary {
                        assert_eq!(s, 2f64.powi(e), "seed {seed} row {r} block {}: amax {amax}", col / 32);
                    }
                    for j in 0..32 {
                        let y = blk[j] / s;
                        let got = q[r * cols + col + j];
                        let (lo, hi) = fp4_neighbours(y);
                        let slack = 1e-5 * y.abs().max(1.0);
                        assert!(got >= lo - slack && got <= hi + slack, "seed {seed} q[{r}, {}] = {got}, exact {y}, neighbours {lo} {hi}", col + j);
                        if y.abs() <= 6.0 {
                            diffs.push(got - y);
                        }
                    }
                }
            }
        }
        // Stochastic rounding is unbiased: the mean error is far below the grid spacing.
        let mean = diffs.iter().sum::<f64>() / diffs.len() as f64;
        assert!(mean.abs() < 0.1, "seed {seed}: mean rounding error {mean}");
        assert!(q[..cols].iter().all(|v| *v == 0.0), "the zero row quantizes to zeros");
    }
}

#[test]
fn hadamard_quant_mxfp4_is_reproducible_per_seed() {
    let (_, q1, s1) = run_mxfp4(64, "4", 5, 128, 9, 5);
    let (_, q2, s2) = run_mxfp4(64, "4", 5, 128, 9, 5);
    let (_, q3, _) = run_mxfp4(64, "4", 5, 128, 9, 6);
    assert_eq!((q1.clone(), s1), (q2, s2));
    assert_ne!(q1, q3, "another Philox seed rounds some element differently");
}

#[test]
fn vm_ir_of_each_example_at_its_default_configuration() {
    for name in ["gemm_w3a8", "hadamard_rows", "hadamard_quant_mxfp4"] {
        insta::assert_snapshot!(name, print_kernel(&example(name, &[])));
    }
}
