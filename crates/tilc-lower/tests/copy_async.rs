//! `copy_async` lowered to `cp.async` (16- or 4-byte pieces when a block-uniform test shows the
//! runs aligned, else a synchronous copy), commit and wait groups: the emulator, which lands a
//! `cp.async` only at the wait that retires its group, must give the interpreter's bits for
//! aligned, unaligned, ragged and sub-byte tiles, and must catch a read before the wait.

mod common;

use common::{check, counts, elaborate};

const CASES: &str = "crates/tilc-lower/tests/cases/copy_async.tl";

#[test]
fn two_stage_pipeline_matches_the_interpreter() {
    // f16 rows: 16-byte pieces (runs of 8), else 4-byte pieces (runs of 2), else synchronous.
    for (m, k) in [(20, 96), (16, 80), (16, 70), (5, 33), (16, 32)] {
        let c = check(CASES, "pipeline", &[], &[("m", m), ("k", k)]);
        // Two copy statements, each with a 16-byte version (one run of 8 per thread of 64) and a
        // 4-byte version (four runs of 2).
        assert_eq!((c.cp_async, c.commits, c.waits), ([8, 0, 2], 2, 2), "{c:?}");
    }
    // u3: runs of 32 elements are 12 bytes, three 4-byte pieces; no 16-byte version.
    for (m, k) in [(16, 96), (9, 64), (16, 40)] {
        let c = check(CASES, "pipeline", &[("T", "u3")], &[("m", m), ("k", k)]);
        assert_eq!(c.cp_async, [6, 0, 0], "{c:?}");
    }
    for (m, k) in [(17, 64), (16, 36)] {
        check(CASES, "pipeline", &[("T", "f32"), ("BK", "16"), ("BM", "32")], &[("m", m), ("k", k)]);
    }
    check(CASES, "pipeline", &[("T", "u4")], &[("m", 16), ("k", 128)]);
}

#[test]
fn copies_at_a_shared_column_offset() {
    // Column offsets 0 and 32: 16-byte pieces; 2: 4-byte pieces; 1: synchronous.
    for col in [0, 32, 2, 1] {
        for m in [8, 13] {
            check(CASES, "offset_copy", &[], &[("m", m), ("col", col)]);
        }
    }
}

#[test]
fn rows_outside_the_tensor_arrive_as_zeros() {
    for m in [20, 16, 3] {
        let c = check(CASES, "column_sums", &[], &[("m", m)]);
        assert_eq!(c.cp_async[2], 2, "{c:?}");
        check(CASES, "column_sums", &[("T", "u4")], &[("m", m)]);
        check(CASES, "column_sums", &[("T", "i8"), ("BK", "48")], &[("m", m)]);
    }
}

#[test]
fn the_emulator_catches_a_read_before_the_wait() {
    let k = elaborate(CASES, "early_read", &[]);
    let lowered = tilc_lower::lower(&k, &tilc_lower::Options::default()).expect("lowers");
    assert!(counts(&lowered).cp_async[2] > 0);
    let a = tilc_vm::random_tensor(tilc_dtype::DType::F32, vec![8, 32], 1);
    let y = tilc_vm::HostTensor::filled(tilc_dtype::DType::F32, vec![8, 32], 0);
    let mut args = vec![tilc_vm::ArgValue::Int(8), tilc_vm::ArgValue::Tensor(a), tilc_vm::ArgValue::Tensor(y)];
    let e = tilc_lower::run(&k, &lowered, &mut args).expect_err("a read of in-flight bytes");
    assert!(e.message.contains("cp.async"), "{}", e.message);
}
