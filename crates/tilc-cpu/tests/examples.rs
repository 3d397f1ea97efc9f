//! The three example kernels give exactly the interpreter's results on the CPU backend, at
//! several shapes including ragged edges and m = 1.

mod common;
use common::*;
use tilc_vm::ArgValue;

#[test]
fn gemm_w3a8_agrees() {
    let seed = base_seed();
    let k = example("gemm_w3a8.tl", "gemm_w3a8", &["BM=32", "BN=64", "G=16"]);
    let cpu = compile(&k);
    for (case, &(m, n, kk)) in [(1, 64, 16), (5, 70, 48), (37, 64, 32), (16, 33, 64), (33, 129, 16)].iter().enumerate() {
        let s = seed + case as u64;
        let args = random_args(&k, &[("m", ArgValue::Int(m)), ("n", ArgValue::Int(n)), ("k", ArgValue::Int(kk))], s);
        agree(&k, &cpu, &args, &format!("gemm_w3a8 m={m} n={n} k={kk} seed={s}"));
    }
}

#[test]
fn gemm_w3a8_default_tiles_agree() {
    let seed = base_seed();
    let k = example("gemm_w3a8.tl", "gemm_w3a8", &[]);
    let cpu = compile(&k);
    let args = random_args(&k, &[("m", ArgValue::Int(3)), ("n", ArgValue::Int(130)), ("k", ArgValue::Int(128))], seed);
    agree(&k, &cpu, &args, &format!("gemm_w3a8 default tiles seed={seed}"));
}

#[test]
fn gemm_w3a8_failed_assume_agrees() {
    let k = example("gemm_w3a8.tl", "gemm_w3a8", &["BM=32", "BN=64", "G=16"]);
    let cpu = compile(&k);
    let args = random_args(&k, &[("m", ArgValue::Int(40)), ("n", ArgValue::Int(64)), ("k", ArgValue::Int(24))], 1);
    let mut got = args.clone();
    let err = cpu.launch(&mut got).expect_err("k % G != 0 must fail the assume");
    assert_eq!(err.block, Some([0, 0, 0]));
    assert_eq!(got, args, "a failed launch leaves the outputs alone");
    agree(&k, &cpu, &args, "gemm_w3a8 with a failing assume");
}

#[test]
fn hadamard_rows_agrees() {
    let seed = base_seed();
    for (t, ty) in ["f16", "bf16", "f32"].iter().enumerate() {
        let k = example("hadamard_rows.tl", "hadamard_rows", &[&format!("T={ty}"), "N=64", "ROWS=2"]);
        let cpu = compile(&k);
        for rows in [1, 3] {
            let s = seed + 10 * t as u64 + rows as u64;
            let args = random_args(&k, &[("rows", ArgValue::Int(rows))], s);
            agree(&k, &cpu, &args, &format!("hadamard_rows T={ty} rows={rows} seed={s}"));
        }
    }
}

#[test]
fn hadamard_quant_mxfp4_agrees() {
    let seed = base_seed();
    for (n, rows, cols) in [(32, 5, 64), (64, 4, 96), (64, 1, 64)] {
        let k = example("hadamard_quant_mxfp4.tl", "hadamard_quant_mxfp4", &[&format!("N={n}"), "ROWS=4"]);
        let cpu = compile(&k);
        for stream in [0i64, 12345] {
            let s = seed + (rows * cols) as u64 + stream as u64;
            let args = random_args(&k, &[("rows", ArgValue::Int(rows)), ("cols", ArgValue::Int(cols)), ("seed", ArgValue::Int(stream))], s);
            agree(&k, &cpu, &args, &format!("hadamard_quant_mxfp4 N={n} rows={rows} cols={cols} stream={stream} seed={s}"));
        }
    }
}
