//! Printed IR of hand-built kernels (insta snapshots), each also run in the emulator and checked
//! against a host reference so that the snapshot shows a kernel known to be right.
mod common;
use common::*;
use tilc_simt::*;

fn buffer(args: &[Arg], i: usize) -> &[u8] {
    match &args[i] {
        Arg::Buffer(b) => b,
        Arg::Scalar(_) => panic!("argument {i} is not a buffer"),
    }
}

/// out[i] = x[i] + y[i] with 16-byte vector accesses; n is a multiple of 4·128.
fn vector_add() -> Kernel {
    let mut b = Builder::new("vector_add_f32x4", [128, 1, 1]);
    let x = b.param("x", Type::GLOBAL_PTR, 16);
    let y = b.param("y", Type::GLOBAL_PTR, 16);
    let out = b.param("out", Type::GLOBAL_PTR, 16);
    let tid = b.tid_x();
    let bid = b.ctaid_x();
    let c128 = b.i32(128);
    let blk = b.mul(bid, c128);
    let i = b.add(blk, tid);
    let c16 = b.i32(16);
    let off = b.mul(i, c16);
    let v4 = Type::vector(Scalar::F32, 4);
    let px = b.ptr_add(x, off);
    let vx = b.load(Space::Global, v4, px, None);
    let py = b.ptr_add(y, off);
    let vy = b.load(Space::Global, v4, py, None);
    let s = b.binary(BinaryOp::FAdd, vx, vy);
    let po = b.ptr_add(out, off);
    b.store(Space::Global, po, s, None);
    b.finish()
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

/// Each thread dequantizes `tiles` groups of 32 packed u3 values (three 32-bit words, elements
/// straddling word boundaries) to f16: bits by funnel shift, then `(v | 0x6400) - 0x6400` in f16.
fn dequant_u3() -> Kernel {
    let mut b = Builder::new("dequant_u3_f16", [32, 1, 1]);
    let packed = b.param("packed", Type::GLOBAL_PTR, 16);
    let out = b.param("out", Type::GLOBAL_PTR, 16);
    let tiles = b.param("tiles", Type::I32, 1);
    let words = b.array("words", Type::I32, 3);
    let tid = b.tid_x();
    let c0 = b.i32(0);
    let c1 = b.i32(1);
    b.for_loop(c0, tiles, c1, &[], Unroll::None, |b, tile, _| {
        // Group g = tile·32 + tid: 12 bytes of input, 64 bytes of output.
        let c32 = b.i32(32);
        let tb = b.mul(tile, c32);
        let g = b.add(tb, tid);
        let c12 = b.i32(12);
        let inoff = b.mul(g, c12);
        for w in 0..3 {
            let wo = b.i32(4 * w);
            let o = b.add(inoff, wo);
            let p = b.ptr_add(packed, o);
            let v = b.load(Space::Global, Type::I32, p, None);
            b.array_set(words, w as u32, v);
        }
        let c64 = b.i32(64);
        let outoff = b.mul(g, c64);
        let magic = b.i16(0x6400);
        let seven = b.i32(7);
        for j in 0..32u32 {
            let (word, bit) = (3 * j / 32, 3 * j % 32);
            let lo = b.array_get(words, word);
            let shifted = if bit + 3 > 32 {
                let hi = b.array_get(words, word + 1);
                let n = b.i32(bit as i32);
                b.shf(ShfDir::Right, ShfMode::Clamp, lo, hi, n)
            } else {
                let n = b.i32(bit as i32);
                b.shr_u(lo, n)
            };
            let v = b.and(shifted, seven);
            let v16 = b.cast(CastOp::Trunc, v, Type::I16);
            let biased = b.binary(BinaryOp::Or, v16, magic);
            let h = b.half(HalfOp::Sub, HalfFormat::F16, biased, magic);
            let jo = b.i32(2 * j as i32);
            let o = b.add(outoff, jo);
            let p = b.ptr_add(out, o);
            b.store(Space::Global, p, h, None);
        }
        vec![]
    });
    b.finish()
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

/// One warp computes D[16×8] = A[16×16]·B[16×8] (f16 → f32): A and Bᵀ are staged to shared
/// memory with cp.async, loaded with ldmatrix.x4 / .x2 and multiplied with one mma.sync.
fn mma_tile() -> Kernel {
    let mut b = Builder::new("mma_16x8x16", [32, 1, 1]);
    let pa = b.param("a", Type::GLOBAL_PTR, 16);
    let pbt = b.param("b_t", Type::GLOBAL_PTR, 16);
    let pd = b.param("d", Type::GLOBAL_PTR, 16);
    b.set_shared_bytes(768);
    let lane = b.lane_id();
    let c16 = b.i32(16);
    let chunk = b.mul(lane, c16);
    let ga = b.ptr_add(pa, chunk);
    let sa = b.shared_addr(chunk);
    b.cp_async(sa, ga, 16, None);
    let lt16 = b.cmp(CmpOp::Ult, lane, c16);
    b.if_then(lt16, |b| {
        let gb = b.ptr_add(pbt, chunk);
        let c512 = b.i32(512);
        let so = b.add(chunk, c512);
        let sb = b.shared_addr(so);
        b.cp_async(sb, gb, 16, None);
    });
    b.cp_async_commit();
    b.cp_async_wait(0);
    b.barrier();
    // ldmatrix addresses: lane l gives row l%8 of matrix l/8.
    let c8 = b.i32(8);
    let c32 = b.i32(32);
    let r = b.binary(BinaryOp::RemU, lane, c8);
    let m = b.binary(BinaryOp::DivU, lane, c8);
    let c2 = b.i32(2);
    let m_lo = b.binary(BinaryOp::RemU, m, c2); // +8 rows
    let m_hi = b.binary(BinaryOp::DivU, m, c2); // +8 columns
    let row_a = b.mul(m_lo, c8);
    let row_a = b.add(row_a, r);
    let a_off = b.mul(row_a, c32);
    let col_a = b.mul(m_hi, c16);
    let a_off = b.add(a_off, col_a);
    let a_addr = b.shared_addr(a_off);
    let fa = b.ldmatrix(4, false, a_addr);
    let b_row = b.mul(r, c32);
    let b_col = b.mul(m_lo, c16);
    let b_off = b.add(b_row, b_col);
    let c512 = b.i32(512);
    let b_off = b.add(b_off, c512);
    let b_addr = b.shared_addr(b_off);
    let fb = b.ldmatrix(2, false, b_addr);
    let z = b.f32(0.0);
    let zc = b.build(&[z, z, z, z]);
    let d = b.mma(MmaKind::F16F32, fa, fb, zc);
    // Lane (g, t) holds D[g][2t..2t+2] and D[g+8][2t..2t+2].
    let c4 = b.i32(4);
    let g = b.binary(BinaryOp::DivU, lane, c4);
    let t = b.binary(BinaryOp::RemU, lane, c4);
    for half in 0..2u8 {
        let d0 = b.extract(d, 2 * half);
        let d1 = b.extract(d, 2 * half + 1);
        let pair = b.build(&[d0, d1]);
        let rows = b.i32(8 * half as i32);
        let row = b.add(g, rows);
        let row8 = b.mul(row, c8);
        let t2 = b.mul(t, c2);
        let e = b.add(row8, t2);
        let off = b.mul(e, c4);
        let p = b.ptr_add(pd, off);
        b.store(Space::Global, p, pair, None);
    }
    b.finish()
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
