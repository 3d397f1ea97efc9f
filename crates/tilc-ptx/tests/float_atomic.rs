//! The rounding and transcendental float instructions (f32, f64 and f32x2) and the atomics print
//! as the PTX instructions the codegen docs promise, and ptxas accepts them for every target.
mod common;
use common::*;
use tilc_ptx::{Options, Target, assemble_with, compile};
use tilc_simt::*;

const OPS: [UnaryOp; 9] = [
    UnaryOp::FFloor,
    UnaryOp::FCeil,
    UnaryOp::FTrunc,
    UnaryOp::FRound,
    UnaryOp::FExp,
    UnaryOp::FExp2,
    UnaryOp::FLog,
    UnaryOp::FLog2,
    UnaryOp::FRsqrt,
];

/// Every new unary op on an f32, an f64 and an f32x2 loaded per thread, the results stored;
/// then every atomic op on a shared and a global word.
fn new_ops_kernel() -> Kernel {
    let mut b = Builder::new("new_ops", [128, 1, 1]);
    let src = b.param("src", Type::GLOBAL_PTR, 16);
    let dst = b.param("dst", Type::GLOBAL_PTR, 16);
    let words = b.param("words", Type::GLOBAL_PTR, 4);
    b.set_shared_bytes(4);
    let t = b.tid_x();
    let c16 = b.i32(16);
    let off = b.mul(t, c16);
    let p = b.ptr_add(src, off);
    let x32 = b.load(Space::Global, Type::F32, p, None);
    let x64 = b.cast(CastOp::FConvert, x32, Type::F64);
    let c8 = b.i32(8);
    let p8 = b.ptr_add(p, c8);
    let xv = b.load(Space::Global, Type::vector(Scalar::F32, 2), p8, None);
    let c_row = b.i32(16 * 9);
    let row = b.mul(t, c_row);
    for (j, op) in OPS.into_iter().enumerate() {
        let a = b.unary(op, x32);
        let d = b.unary(op, x64);
        let v = b.unary(op, xv);
        let d32 = b.cast(CastOp::FConvert, d, Type::F32);
        let s = b.binary(BinaryOp::FAdd, a, d32);
        let l0 = b.extract(v, 0);
        let s = b.binary(BinaryOp::FAdd, s, l0);
        let cj = b.i32(16 * j as i32);
        let o = b.add(row, cj);
        let q = b.ptr_add(dst, o);
        b.store(Space::Global, q, s, None);
    }
    let z = b.i32(0);
    let shared_word = b.shared_addr(z);
    let one = b.i32(1);
    let mut sum = b.i32(0);
    for op in [AtomicOp::And, AtomicOp::Or, AtomicOp::Xor, AtomicOp::Add, AtomicOp::MaxS, AtomicOp::MinS] {
        let s = b.atomic(op, Space::Shared, shared_word, t);
        let g = b.atomic(op, Space::Global, words, one);
        let both = b.add(s, g);
        sum = b.add(sum, both);
    }
    b.barrier();
    let c4 = b.i32(4);
    let wo = b.mul(t, c4);
    let c8b = b.i32(8);
    let wo = b.add(wo, c8b);
    let q = b.ptr_add(words, wo);
    b.store(Space::Global, q, sum, None);
    b.finish()
}

#[test]
fn new_float_ops_and_atomics_print_and_assemble() {
    let k = new_ops_kernel();
    verify(&k).unwrap_or_else(|e| panic!("{e}"));
    let ptxas = ptxas_or_skip("new_float_ops_and_atomics_print_and_assemble");
    for target in Target::ALL {
        let out = compile(std::slice::from_ref(&k), &Options::new(target)).unwrap_or_else(|e| panic!("{target}: {e}"));
        let ptx = &out.ptx;
        for needle in [
            "cvt.rmi.f32.f32",
            "cvt.rpi.f32.f32",
            "cvt.rzi.f32.f32",
            "cvt.rni.f32.f32",
            "cvt.rmi.f64.f64",
            "cvt.rni.f64.f64",
            "ex2.approx",
            "lg2.approx",
            "sqrt.rn.f32",
            "sqrt.rn.f64",
            "atom.shared.and.b32",
            "atom.shared.or.b32",
            "atom.shared.xor.b32",
            "atom.shared.add.u32",
            "atom.shared.max.s32",
            "atom.shared.min.s32",
            "atom.global.or.b32",
            "atom.global.add.u32",
            "atom.global.max.s32",
        ] {
            assert!(ptx.contains(needle), "{target}: no `{needle}` in\n{ptx}");
        }
        let Some(ptxas) = &ptxas else { continue };
        let (cubin, report) = assemble_with(ptxas, ptx, target).unwrap_or_else(|e| panic!("{target}: {e}"));
        assert_eq!(&cubin[..4], b"\x7fELF", "{target}");
        let r = report.kernel("new_ops").unwrap_or_else(|| panic!("{target}: {report:?}"));
        assert_eq!((r.spill_stores, r.spill_loads), (0, 0), "{target}: {r:?}");
    }
}
