//! Every kernel of the library (`lang/`) gives exactly the interpreter's results on the CPU
//! backend, at its default configuration and another one, on fresh random inputs at shapes with
//! ragged edges and m = 1 (the same configurations the SIMT emulator is checked at).

mod common;
use common::*;
use tilc_vm::ArgValue;

fn library(file: &str, name: &str, defines: &[&str]) -> tilc_vm::Kernel {
    let path = format!("{}/../../lang/{file}", env!("CARGO_MANIFEST_DIR"));
    let src = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    kernel(&src, name, defines)
}

fn check(file: &str, name: &str, defines: &[&str], scalars: &[(&str, ArgValue)]) {
    let seed = base_seed();
    let k = library(file, name, defines);
    let cpu = compile(&k);
    let args = random_args(&k, scalars, seed);
    // The configuration must run (not fail alike on both sides, which `agree` also accepts).
    tilc_vm::run(&k, &mut args.clone()).unwrap_or_else(|e| panic!("{name} {defines:?}: the interpreter fails: {}", e.message));
    agree(&k, &cpu, &args, &format!("{name} {defines:?} seed={seed}"));
}

fn i(x: i64) -> ArgValue {
    ArgValue::Int(x)
}

#[test]
fn gemms_and_gemv_agree() {
    check("gemm_a16w.tl", "gemm_a16w", &[], &[("m", i(3)), ("n", i(70)), ("k", i(96)), ("group", i(32))]);
    check("gemm_a16w.tl", "gemm_a16w", &["TA=bf16", "TW=u3", "ZP=true", "TS=bf16", "BM=16", "BN=32"], &[("m", i(17)), ("n", i(64)), ("k", i(64)), ("group", i(64))]);
    check("gemm_a8w.tl", "gemm_a8w", &[], &[("m", i(5)), ("n", i(64)), ("k", i(64)), ("group", i(32))]);
    check("gemm_a8w.tl", "gemm_a8w", &["TW=i4", "OFFSET=0", "BM=16"], &[("m", i(33)), ("n", i(40)), ("k", i(96)), ("group", i(96))]);
    check("gemm_fp8.tl", "gemm_fp8", &[], &[("m", i(7)), ("n", i(64)), ("k", i(64))]);
    check("gemm_fp8.tl", "gemm_fp8", &["TW=f4e2m1", "TC=f32", "BM=16"], &[("m", i(16)), ("n", i(33)), ("k", i(32))]);
    let ts = |x: f64| ArgValue::Float(x);
    check("gemm_mx.tl", "gemm_block_scaled", &[], &[("m", i(7)), ("n", i(33)), ("k", i(64)), ("a_tensor_scale", ts(1.0)), ("w_tensor_scale", ts(1.0))]);
    check("gemm_mx.tl", "gemm_block_scaled", &["TS=ue4m3", "BLOCK=16", "BM=16", "BN=16"], &[("m", i(16)), ("n", i(20)), ("k", i(32)), ("a_tensor_scale", ts(0.5)), ("w_tensor_scale", ts(2.0))]);
    check("gemv.tl", "gemv_a16w", &[], &[("m", i(1)), ("n", i(70)), ("k", i(128)), ("group", i(64))]);
    check("gemv.tl", "gemv_a16w", &["TW=u5", "ZP=true", "BN=32", "BK=32"], &[("m", i(4)), ("n", i(40)), ("k", i(64)), ("group", i(64))]);
}

#[test]
fn quantizers_agree() {
    let q = |rows, cols, bh, bw| vec![("rows", i(rows)), ("cols", i(cols)), ("bh", i(bh)), ("bw", i(bw)), ("seed", i(7))];
    check("quantize.tl", "quantize_int", &[], &q(4, 64, 1, 32));
    check("quantize.tl", "quantize_int", &["TQ=u3", "STOCHASTIC=true"], &q(3, 64, 1, 64));
    check("quantize.tl", "quantize_float", &[], &q(2, 64, 1, 32));
    check("quantize.tl", "quantize_float", &["TQ=f8e4m3", "T=bf16"], &q(2, 64, 2, 64));
    check("quantize.tl", "quantize_mx", &[], &[("rows", i(5)), ("cols", i(96))]);
    check("quantize.tl", "quantize_mx", &["TQ=i8", "T=bf16"], &[("rows", i(4)), ("cols", i(64))]);
    check("quantize.tl", "quantize_nvfp4", &[], &[("rows", i(5)), ("cols", i(64))]);
    let dq = |rows, cols, bh, bw| vec![("rows", i(rows)), ("cols", i(cols)), ("bh", i(bh)), ("bw", i(bw)), ("tensor_scale", ArgValue::Float(1.0))];
    check("dequantize.tl", "dequantize", &[], &dq(2, 64, 1, 32));
    check("dequantize.tl", "dequantize", &["TQ=u4", "ZP=true", "TO=f16"], &dq(3, 64, 1, 64));
}

#[test]
fn hadamard_and_repack_agree() {
    check("hadamard.tl", "hadamard", &[], &[("rows", i(2))]);
    check("hadamard.tl", "hadamard", &["T=f32", "N=64", "ROWS=4"], &[("rows", i(5))]);
    check("hadamard_quant.tl", "hadamard_quant_mx", &[], &[("rows", i(17)), ("cols", i(64)), ("seed", i(11))]);
    check("hadamard_quant.tl", "hadamard_quant_mx", &["STOCHASTIC=true", "TQ=f6e2m3", "T=f32"], &[("rows", i(16)), ("cols", i(64)), ("seed", i(5))]);
    check("hadamard_quant.tl", "hadamard_quant_nvfp4", &[], &[("rows", i(16)), ("cols", i(64))]);
    check("hadamard_quant.tl", "hadamard_quant_int", &[], &[("rows", i(16)), ("cols", i(64))]);
    check("hadamard_quant.tl", "hadamard_quant_int", &["TQ=i3", "G=16"], &[("rows", i(5)), ("cols", i(32))]);
    check("repack.tl", "repack", &[], &[("k", i(32)), ("n", i(32))]);
    check("repack.tl", "repack", &["TW=u3", "BITS=3"], &[("k", i(16)), ("n", i(32))]);
    check("repack.tl", "unrepack", &[], &[("k", i(32)), ("n", i(16))]);
    check("repack.tl", "unrepack", &["TW=f6e3m2", "BITS=6"], &[("k", i(16)), ("n", i(16))]);
}
