//! A vector add end to end: build, verify, print, emulate.
mod common;
use common::*;
use tilc_simt::*;

#[test]
fn vector_add_runs() {
    let mut b = Builder::new("vadd", [64, 1, 1]);
    let x = b.param("x", Type::GLOBAL_PTR, 16);
    let y = b.param("y", Type::GLOBAL_PTR, 16);
    let out = b.param("out", Type::GLOBAL_PTR, 16);
    let n = b.param("n", Type::I32, 1);
    let tid = b.tid_x();
    let bid = b.ctaid_x();
    let bs = b.i32(64);
    let base = b.mul(bid, bs);
    let i = b.add(base, tid);
    let inb = b.cmp(CmpOp::Slt, i, n);
    let four = b.i32(4);
    let off = b.mul(i, four);
    let px = b.ptr_add(x, off);
    let py = b.ptr_add(y, off);
    let po = b.ptr_add(out, off);
    let vx = b.load(Space::Global, Type::F32, px, Some(inb));
    let vy = b.load(Space::Global, Type::F32, py, Some(inb));
    let s = b.binary(BinaryOp::FAdd, vx, vy);
    b.store(Space::Global, po, s, Some(inb));
    let k = b.finish();
    verify(&k).unwrap();
    let n = 100usize;
    let xs: Vec<f32> = (0..n).map(|i| i as f32 * 0.5).collect();
    let ys: Vec<f32> = (0..n).map(|i| 1.0 - i as f32).collect();
    let mut args = vec![
        Arg::Buffer(f32s_to_bytes(&xs)),
        Arg::Buffer(f32s_to_bytes(&ys)),
        Arg::Buffer(vec![0; n * 4]),
        Arg::Scalar(n as u64),
    ];
    let stats = run(&k, Launch { grid: [2, 1, 1], parallel: true }, &mut args).unwrap();
    let Arg::Buffer(o) = &args[2] else { panic!() };
    let o = bytes_to_f32s(o);
    for i in 0..n {
        assert_eq!(o[i], xs[i] + ys[i], "element {i}");
    }
    assert!(stats.thread_insts > 0);
    println!("{k}");
}
