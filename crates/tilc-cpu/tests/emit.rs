//! `emit_clif` and `emit_object`: the text is Cranelift IR of the block function, and the object
//! file is one for this host exporting `tilc_<name>_block`.

mod common;
use common::*;
use tilc_cpu::{Options, emit_clif, emit_object};

#[test]
fn clif_text_is_the_block_function() {
    let k = example("gemm_w3a8.tl", "gemm_w3a8", &[]);
    let text = emit_clif(&k).expect("lowers");
    assert!(text.starts_with("; tilc CPU block function of `gemm_w3a8`"), "{}", &text[..200.min(text.len())]);
    assert!(text.contains("function u0:0(i64, i64, i64, i64, i64, i64) -> i64"), "signature missing");
    assert!(text.contains("i32x4"), "the integer dot should be vectorised");
    assert!(text.contains("f32x4"), "the f16 casts should run four at a time");
    assert!(!text.contains("call fn"), "every operation of gemm_w3a8 is native, f16 encoding included");
}

#[test]
fn object_file_exports_the_block_function() {
    let k = example("hadamard_rows.tl", "hadamard_rows", &["T=f32", "N=64"]);
    let obj = emit_object(&k, &Options::default()).expect("emits");
    if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        assert_eq!(&obj[..4], b"\x7fELF", "an ELF object");
    }
    let has = |needle: &[u8]| obj.windows(needle.len()).any(|w| w == needle);
    assert!(has(b"tilc_hadamard_rows_block"), "exported symbol missing");
    assert!(has(b"tilc_cpu_hadamard"), "helper import missing");
}
