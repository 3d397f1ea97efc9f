//! Sample kernels built by hand with [`Builder`]: a vector add, a u3 → f16 dequantization with
//! funnel shifts, a 16×8×16 mma tile, one mma per [`MmaKind`] and the ldmatrix variants.
//!
//! They are shared by this crate's tests (emulator semantics, IR snapshots) and by the PTX
//! backend's tests, so that the backend compiles exactly what the emulator was checked on; they
//! also serve as examples of the builder. This module knows nothing about how they are tested.

use crate::*;

/// out[i] = x[i] + y[i] with 16-byte vector accesses; n is a multiple of 4·128.
pub fn vector_add() -> Kernel {
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

/// Each thread dequantizes `tiles` groups of 32 packed u3 values (three 32-bit words, elements
/// straddling word boundaries) to f16: bits by funnel shift, then `(v | 0x6400) - 0x6400` in f16.
pub fn dequant_u3() -> Kernel {
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

/// One warp computes D[16×8] = A[16×16]·B[16×8] (f16 → f32): A and Bᵀ are staged to shared
/// memory with cp.async, loaded with ldmatrix.x4 / .x2 and multiplied with one mma.sync.
pub fn mma_tile() -> Kernel {
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

/// One warp: lane l loads A (16 B), B (8 B), C (16 B) fragments at l·size, runs mma, stores D.
pub fn mma_kernel(kind: MmaKind) -> Kernel {
    let mut b = Builder::new("mma_frag", [32, 1, 1]);
    let pa = b.param("a", Type::GLOBAL_PTR, 16);
    let pb = b.param("b", Type::GLOBAL_PTR, 16);
    let pc = b.param("c", Type::GLOBAL_PTR, 16);
    let pd = b.param("d", Type::GLOBAL_PTR, 16);
    let lane = b.lane_id();
    let s16 = b.i32(16);
    let s8 = b.i32(8);
    let o16 = b.mul(lane, s16);
    let o8 = b.mul(lane, s8);
    let aa = b.ptr_add(pa, o16);
    let ab = b.ptr_add(pb, o8);
    let ac = b.ptr_add(pc, o16);
    let ad = b.ptr_add(pd, o16);
    let fa = b.load(Space::Global, Type::vector(Scalar::I32, 4), aa, None);
    let fb = b.load(Space::Global, Type::vector(Scalar::I32, 2), ab, None);
    let fc = b.load(Space::Global, kind.acc_type(), ac, None);
    let d = b.mma(kind, fa, fb, fc);
    b.store(Space::Global, ad, d, None);
    b.finish()
}

/// Stages 4 matrices (8 rows × 16 B each) into shared memory with cp.async, then ldmatrix.
/// Lane l addresses logical row l%8 of matrix l/8, stored at physical row (3·(l%8)) % 8.
pub fn ldmatrix_kernel(num: u8, trans: bool) -> Kernel {
    let mut b = Builder::new("ldm", [32, 1, 1]);
    let src = b.param("src", Type::GLOBAL_PTR, 16);
    let out = b.param("out", Type::GLOBAL_PTR, 16);
    b.set_shared_bytes(512);
    let lane = b.lane_id();
    let c16 = b.i32(16);
    let off = b.mul(lane, c16);
    let g = b.ptr_add(src, off);
    let s = b.shared_addr(off);
    b.cp_async(s, g, 16, None);
    b.cp_async_commit();
    b.cp_async_wait(0);
    b.barrier();
    let c8 = b.i32(8);
    let m = b.binary(BinaryOp::DivU, lane, c8);
    let r = b.binary(BinaryOp::RemU, lane, c8);
    let c3 = b.i32(3);
    let r3 = b.mul(r, c3);
    let pr = b.binary(BinaryOp::RemU, r3, c8);
    let c128 = b.i32(128);
    let mo = b.mul(m, c128);
    let ro = b.mul(pr, c16);
    let rowoff = b.add(mo, ro);
    let addr = b.shared_addr(rowoff);
    let v = b.ldmatrix(num, trans, addr);
    let o = b.ptr_add(out, off);
    b.store(Space::Global, o, v, None);
    b.finish()
}
