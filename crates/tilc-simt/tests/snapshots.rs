//! Printed IR of hand-built kernels (insta snapshots), each also run in the emulator and checked
//! against a host reference so that the snapshot shows a kernel known to be right.
mod common;
use common::*;
use tilc_simt::samples::*;
use tilc_simt::*;

fn buffer(args: &[Arg], i: usize) -> &[u8] {
    match &args[i] {
        Arg::Buffer(b) => b,
        Arg::Scalar(_) => panic!("argument {i} is not a buffer"),
    }
}

#[test]
fn snapshot_vector_add() {
    let mut k = vector_add();
    passes::optimize(&mut k);
    let n = 1024;
    let xs: Vec<f32> = (0..n).map(|i| i as f32).collect();
    let ys: Vec<f32> = (0..n).map(|i| 0.25 * i as f32).collect();
    let mut args = vec![Arg::Buffer(f32s_to_bytes(&xs)), Arg::Buffer(f32s_to_bytes(&ys)), Arg::Buffer(vec![0; n * 4])];
    run(&k, Launch { grid: [2, 1, 1], parallel: true }, &mut args).unwrap();
    let o = bytes_to_f32s(buffer(&args, 2));
    assert!((0..n).all(|i| o[i] == xs[i] + ys[i]));
    insta::assert_snapshot!(write_kernel(&k));
}

#[test]
fn snapshot_dequant_u3() {
    let mut k = dequant_u3();
    passes::optimize(&mut k);
    let tiles = 2;
    let groups = 32 * tiles;
    let mut rng = Rng::new(7);
    let vals: Vec<u8> = (0..groups * 32).map(|_| rng.below(8) as u8).collect();
    // Pack as a little-endian bit stream, 3 bits per element.
    let mut packed = vec![0u8; groups * 12];
    for (i, &v) in vals.iter().enumerate() {
        for b in 0..3 {
            if v >> b & 1 == 1 {
                let bit = 3 * i + b;
                packed[bit / 8] |= 1 << (bit % 8);
            }
        }
    }
    let mut args = vec![Arg::Buffer(packed), Arg::Buffer(vec![0xff; groups * 64]), Arg::Scalar(tiles as u64)];
    run(&k, Launch { grid: [1, 1, 1], parallel: false }, &mut args).unwrap();
    let out = buffer(&args, 1);
    for (i, &v) in vals.iter().enumerate() {
        let h = u16::from_le_bytes([out[2 * i], out[2 * i + 1]]);
        assert_eq!(half::f16::from_bits(h).to_f32(), v as f32, "element {i}");
    }
    insta::assert_snapshot!(write_kernel(&k));
}

#[test]
fn snapshot_mma_tile() {
    let mut k = mma_tile();
    passes::optimize(&mut k);
    let mut rng = Rng::new(5);
    let a: Vec<half::f16> = (0..256).map(|_| half::f16::from_f64(rng.range_f64(-2.0, 2.0))).collect();
    let bm: Vec<half::f16> = (0..128).map(|_| half::f16::from_f64(rng.range_f64(-2.0, 2.0))).collect(); // B[k][n]
    let bt: Vec<half::f16> = (0..128).map(|i| bm[(i % 16) * 8 + i / 16]).collect(); // Bᵀ[n][k]
    let bytes = |v: &[half::f16]| v.iter().flat_map(|h| h.to_bits().to_le_bytes()).collect::<Vec<u8>>();
    let mut args = vec![Arg::Buffer(bytes(&a)), Arg::Buffer(bytes(&bt)), Arg::Buffer(vec![0xff; 512])];
    run(&k, Launch { grid: [1, 1, 1], parallel: false }, &mut args).unwrap();
    let d = bytes_to_f32s(buffer(&args, 2));
    for m in 0..16 {
        for n in 0..8 {
            let want: f64 = (0..16).map(|kk| a[m * 16 + kk].to_f64() * bm[kk * 8 + n].to_f64()).sum();
            assert!((d[m * 8 + n] as f64 - want).abs() < 1e-5, "D[{m}][{n}] = {}, want {want}", d[m * 8 + n]);
        }
    }
    insta::assert_snapshot!(write_kernel(&k));
}
