//! What the tilc-ptx tests share: the hand-built SIMT kernels, a seeded RNG, buffer helpers and
//! finding ptxas.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::PathBuf;

pub use tilc_simt::samples::*;
use tilc_simt::*;

/// xorshift64*: small, seeded, reproducible.
pub struct Rng(pub u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    pub fn range_f64(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

pub fn u32s_to_bytes(xs: &[u32]) -> Vec<u8> {
    xs.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn bytes_to_u32s(b: &[u8]) -> Vec<u32> {
    b.chunks(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

pub fn f32s_to_bytes(xs: &[f32]) -> Vec<u8> {
    xs.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The ptxas the tests use: `$TILC_PTXAS`, else the repository's `.tools` copy; `None` (after
/// printing 'skipped: no ptxas') when neither exists.
pub fn ptxas_or_skip(test: &str) -> Option<PathBuf> {
    let path = match std::env::var_os("TILC_PTXAS") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(tilc_ptx::ptxas::BUNDLED_PTXAS),
    };
    if path.is_file() {
        Some(path)
    } else {
        println!("skipped: no ptxas ({test}; looked at {})", path.display());
        None
    }
}

/// A warp shuffle of `t·7` in `mode` with operand `bval` over two warps (tilc-simt's
/// `shuffles_exchange_values_within_the_warp`).
pub fn shfl_kernel(mode: ShflMode, bval: i32) -> Kernel {
    let mut b = Builder::new(&format!("shfl_{mode:?}").to_lowercase(), [64, 1, 1]);
    let out = b.param("out", Type::GLOBAL_PTR, 4);
    let t = b.tid_x();
    let c7 = b.i32(7);
    let v = b.mul(t, c7);
    let lanev = b.i32(bval);
    let r = b.shfl(mode, v, lanev);
    let c4 = b.i32(4);
    let off = b.mul(t, c4);
    let p = b.ptr_add(out, off);
    b.store(Space::Global, p, r, None);
    b.finish()
}

/// cp.async of 4 bytes per thread into shared memory, wait, read back and store (tilc-simt's
/// `cp_async_data_is_visible_only_after_wait`, the correct order).
pub fn cp_async_kernel() -> Kernel {
    let mut b = Builder::new("cp_async_roundtrip", [32, 1, 1]);
    let src = b.param("src", Type::GLOBAL_PTR, 16);
    let out = b.param("out", Type::GLOBAL_PTR, 16);
    b.set_shared_bytes(128);
    let t = b.tid_x();
    let c4 = b.i32(4);
    let off = b.mul(t, c4);
    let g = b.ptr_add(src, off);
    let s = b.shared_addr(off);
    b.cp_async(s, g, 4, None);
    b.cp_async_commit();
    b.cp_async_wait(0);
    let v = b.load(Space::Shared, Type::I32, s, None);
    let o = b.ptr_add(out, off);
    b.store(Space::Global, o, v, None);
    b.finish()
}

/// Block-wide reversal through shared memory across a barrier: out[t] = in[63 - t].
pub fn barrier_reverse_kernel() -> Kernel {
    let mut b = Builder::new("barrier_reverse", [64, 1, 1]);
    let src = b.param("src", Type::GLOBAL_PTR, 4);
    let out = b.param("out", Type::GLOBAL_PTR, 4);
    b.set_shared_bytes(256);
    let t = b.tid_x();
    let c4 = b.i32(4);
    let off = b.mul(t, c4);
    let g = b.ptr_add(src, off);
    let v = b.load(Space::Global, Type::I32, g, None);
    let s = b.shared_addr(off);
    b.store(Space::Shared, s, v, None);
    b.barrier();
    let c63 = b.i32(63);
    let r = b.sub(c63, t);
    let roff = b.mul(r, c4);
    let rs = b.shared_addr(roff);
    let w = b.load(Space::Shared, Type::I32, rs, None);
    let o = b.ptr_add(out, off);
    b.store(Space::Global, o, w, None);
    b.finish()
}

/// How a result word of [`ops_kernel`] is compared between the emulator and a GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Word {
    /// Bit for bit.
    Exact,
    /// An f32: bit for bit, except that any two NaNs are equal (payloads differ by platform).
    F32,
    /// Two f16/bf16 lanes: bit for bit per lane, NaNs equal.
    Half2(HalfFormat),
}

/// Threads per block and blocks of [`ops_kernel`].
pub const OPS_BLOCK: u32 = 64;
pub const OPS_GRID: u32 = 2;

/// A kernel that runs most SIMT instructions once per thread: thread `gid` reads `x[gid]`,
/// `y[gid]` (u32) and `f[gid]`, `g[gid]` (f32), and writes one u32 word per result to
/// `out[gid·words ..]`, where `words` is the length of the returned kinds. Then a hinted loop to
/// `n` with carried values, an `if` with results, masked loads and stores and a register array.
pub fn ops_kernel() -> (Kernel, Vec<Word>) {
    let mut b = Builder::new("ops", [OPS_BLOCK, 1, 1]);
    let px = b.param("x", Type::GLOBAL_PTR, 4);
    let py = b.param("y", Type::GLOBAL_PTR, 4);
    let pf = b.param("f", Type::GLOBAL_PTR, 4);
    let pg = b.param("g", Type::GLOBAL_PTR, 4);
    let pout = b.param("out", Type::GLOBAL_PTR, 4);
    let n = b.param("n", Type::I32, 1);
    let regs = b.array("regs", Type::I32, 4);
    let t = b.tid_x();
    let bid = b.ctaid_x();
    let cblock = b.i32(OPS_BLOCK as i32);
    let base = b.mul(bid, cblock);
    let gid = b.add(base, t);
    let c4 = b.i32(4);
    let off4 = b.mul(gid, c4);
    let ax = b.ptr_add(px, off4);
    let x = b.load(Space::Global, Type::I32, ax, None);
    let ay = b.ptr_add(py, off4);
    let y = b.load(Space::Global, Type::I32, ay, None);
    let af = b.ptr_add(pf, off4);
    let f = b.load(Space::Global, Type::F32, af, None);
    let ag = b.ptr_add(pg, off4);
    let g = b.load(Space::Global, Type::F32, ag, None);

    let mut outs: Vec<(Value, Word)> = Vec::new();
    let exact = |outs: &mut Vec<(Value, Word)>, v| outs.push((v, Word::Exact));
    use BinaryOp as B;
    for op in [
        B::Add,
        B::Sub,
        B::Mul,
        B::MulHiS,
        B::MulHiU,
        B::And,
        B::Or,
        B::Xor,
        B::MinS,
        B::MaxS,
        B::MinU,
        B::MaxU,
    ] {
        let r = b.binary(op, x, y);
        exact(&mut outs, r);
    }
    let cff = b.i32(0xff);
    let c1 = b.i32(1);
    let ylow = b.and(y, cff);
    let y1 = b.or(ylow, c1);
    for op in [B::DivS, B::DivU, B::RemS, B::RemU] {
        let r = b.binary(op, x, y1);
        exact(&mut outs, r);
    }
    let c63 = b.i32(63);
    let s = b.and(y, c63);
    for op in [B::Shl, B::ShrU, B::ShrS] {
        let r = b.binary(op, x, s);
        exact(&mut outs, r);
    }
    for op in [UnaryOp::Popc, UnaryOp::Clz, UnaryOp::Not, UnaryOp::Neg] {
        let r = b.unary(op, x);
        exact(&mut outs, r);
    }
    for dir in [ShfDir::Left, ShfDir::Right] {
        for mode in [ShfMode::Clamp, ShfMode::Wrap] {
            let r = b.shf(dir, mode, x, y, s);
            exact(&mut outs, r);
        }
    }
    let r = b.prmt(x, y, y);
    exact(&mut outs, r);
    for lut in [0xe8u8, 0x96, 0x1e] {
        let r = b.lop3(x, y, s, lut);
        exact(&mut outs, r);
    }
    let c8 = b.i32(8);
    let yhi = b.shr_u(y, c8);
    let len = b.and(yhi, c63);
    for signed in [false, true] {
        let r = b.bfe(signed, x, s, len);
        exact(&mut outs, r);
    }
    // Narrow and wide integers.
    let x16 = b.cast(CastOp::Trunc, x, Type::I16);
    let y16 = b.cast(CastOp::Trunc, y, Type::I16);
    let m16 = b.mul(x16, y16);
    let s16 = b.cast(CastOp::Trunc, s, Type::I16);
    let sh16 = b.binary(B::ShrS, m16, s16);
    let r = b.cast(CastOp::SExt, sh16, Type::I32);
    exact(&mut outs, r);
    let x8 = b.cast(CastOp::Trunc, x, Type::I8);
    let y8 = b.cast(CastOp::Trunc, y, Type::I8);
    let d8 = b.binary(B::MaxS, x8, y8);
    let r = b.cast(CastOp::ZExt, d8, Type::I32);
    exact(&mut outs, r);
    let xl = b.cast(CastOp::SExt, x, Type::I64);
    let yl = b.cast(CastOp::ZExt, y, Type::I64);
    let pl = b.mul(xl, yl);
    let hl = b.binary(B::MulHiS, pl, yl);
    let r = b.cast(CastOp::Trunc, hl, Type::I32);
    exact(&mut outs, r);
    let c32l = b.i64(32);
    let plh = b.shr_u(pl, c32l);
    let r = b.cast(CastOp::Trunc, plh, Type::I32);
    exact(&mut outs, r);
    // Comparisons and select.
    let lt = b.cmp(CmpOp::Slt, x, y);
    let sel = b.select(lt, x, y);
    exact(&mut outs, sel);
    let ult = b.cmp(CmpOp::Ult, x, y);
    let r = b.cast(CastOp::ZExt, ult, Type::I32);
    exact(&mut outs, r);

    // f32 arithmetic and conversions.
    let float = |outs: &mut Vec<(Value, Word)>, b: &mut Builder, v: Value| {
        let bits = b.cast(CastOp::Bitcast, v, Type::I32);
        outs.push((bits, Word::F32));
    };
    for op in [B::FAdd, B::FSub, B::FMul, B::FDiv, B::FMin, B::FMax] {
        let r = b.binary(op, f, g);
        float(&mut outs, &mut b, r);
    }
    let r = b.fma(f, g, g);
    float(&mut outs, &mut b, r);
    let af_ = b.unary(UnaryOp::FAbs, f);
    float(&mut outs, &mut b, af_);
    let r = b.unary(UnaryOp::FSqrt, af_);
    float(&mut outs, &mut b, r);
    let r = b.unary(UnaryOp::FNeg, g);
    float(&mut outs, &mut b, r);
    for op in [CastOp::FToS, CastOp::FToU] {
        let r = b.cast(op, f, Type::I32);
        exact(&mut outs, r);
    }
    let r = b.cast(CastOp::FToS, g, Type::I16);
    let r = b.cast(CastOp::SExt, r, Type::I32);
    exact(&mut outs, r);
    for op in [CastOp::SToF, CastOp::UToF] {
        let r = b.cast(op, x, Type::F32);
        float(&mut outs, &mut b, r);
    }
    let r = b.cast(CastOp::SToF, pl, Type::F32);
    float(&mut outs, &mut b, r);
    let fd = b.cast(CastOp::FConvert, f, Type::F64);
    let gd = b.cast(CastOp::FConvert, g, Type::F64);
    let pd = b.binary(B::FMul, fd, gd);
    let r = b.cast(CastOp::FConvert, pd, Type::F32);
    float(&mut outs, &mut b, r);
    let flt = b.cmp(CmpOp::FLt, f, g);
    let r = b.cast(CastOp::ZExt, flt, Type::I32);
    exact(&mut outs, r);
    let fne = b.cmp(CmpOp::FNe, f, g);
    let r = b.cast(CastOp::ZExt, fne, Type::I32);
    exact(&mut outs, r);

    // Half precision, packed pairs.
    let fg = b.build(&[f, g]);
    let gf = b.build(&[g, f]);
    let h2 = Type::vector(Scalar::I16, 2);
    for fmt in [HalfFormat::F16, HalfFormat::BF16] {
        let half = |outs: &mut Vec<(Value, Word)>, b: &mut Builder, v: Value| {
            let bits = b.cast(CastOp::Bitcast, v, Type::I32);
            outs.push((bits, Word::Half2(fmt)));
        };
        let a = b.cast(CastOp::FToHalf(fmt), fg, h2);
        half(&mut outs, &mut b, a);
        let c = b.cast(CastOp::FToHalf(fmt), gf, h2);
        for op in [
            HalfOp::Add,
            HalfOp::Sub,
            HalfOp::Mul,
            HalfOp::Min,
            HalfOp::Max,
        ] {
            let r = b.half(op, fmt, a, c);
            half(&mut outs, &mut b, r);
        }
        let r = b.half_fma(fmt, a, c, a);
        half(&mut outs, &mut b, r);
        let back = b.cast(CastOp::HalfToF(fmt), a, Type::vector(Scalar::F32, 2));
        let lane1 = b.extract(back, 1);
        float(&mut outs, &mut b, lane1);
        let a0 = b.extract(a, 0);
        let single = b.cast(CastOp::HalfToF(fmt), a0, Type::F32);
        float(&mut outs, &mut b, single);
    }
    for fmt in [Fp8Format::E4M3, Fp8Format::E5M2] {
        let q = b.f32x2_to_fp8x2(fmt, f, g);
        let r = b.cast(CastOp::ZExt, q, Type::I32);
        exact(&mut outs, r);
        let hq = b.fp8x2_to_f16x2(fmt, q);
        let r = b.cast(CastOp::Bitcast, hq, Type::I32);
        outs.push((r, Word::Half2(HalfFormat::F16)));
    }

    // A loop to `n` (not a constant: its unroll hint becomes LLVM metadata) carrying an integer
    // and a float.
    let c0 = b.i32(0);
    let zero = b.f32(0.0);
    let half_ = b.f32(0.5);
    let carried = b.for_loop(c0, n, c1, &[x, zero], Unroll::Factor(2), |b, iv, c| {
        let c3 = b.i32(3);
        let m = b.mul(c[0], c3);
        let a = b.add(m, iv);
        let acc = b.binary(BinaryOp::Xor, a, y);
        let facc = b.fma(c[1], half_, f);
        vec![acc, facc]
    });
    exact(&mut outs, carried[0]);
    float(&mut outs, &mut b, carried[1]);
    // Register array written straight-line and inside an `if` with results.
    for j in 0..4u32 {
        let cj = b.i32(j as i32 + 1);
        let v = b.mul(x, cj);
        b.array_set(regs, j, v);
    }
    let chosen = b.if_else(
        lt,
        &[Type::I32],
        |b| {
            let c2 = b.i32(2);
            let v = b.mul(x, c2);
            b.array_set(regs, 1, y);
            vec![v]
        },
        |b| {
            let c7 = b.i32(7);
            vec![b.add(y, c7)]
        },
    );
    exact(&mut outs, chosen[0]);
    let mut sum = b.array_get(regs, 0);
    for j in 1..4 {
        let r = b.array_get(regs, j);
        sum = b.binary(BinaryOp::Xor, sum, r);
    }
    exact(&mut outs, sum);
    // Masked accesses: a load masked off reads 0.
    let c1_ = b.i32(1);
    let xbit = b.and(x, c1_);
    let even = b.cmp(CmpOp::Eq, xbit, c0);
    let masked = b.load(Space::Global, Type::I32, ay, Some(even));
    exact(&mut outs, masked);

    let words = outs.len() as i32 + 1;
    let cw = b.i32(words);
    let row = b.mul(gid, cw);
    for (j, &(v, _)) in outs.iter().enumerate() {
        let cj = b.i32(j as i32);
        let e = b.add(row, cj);
        let o = b.mul(e, c4);
        let p = b.ptr_add(pout, o);
        b.store(Space::Global, p, v, None);
    }
    // The last word is written only where y is odd; elsewhere it keeps the buffer's fill.
    let ybit = b.and(y, c1_);
    let odd = b.cmp(CmpOp::Ne, ybit, c0);
    let clast = b.i32(words - 1);
    let e = b.add(row, clast);
    let o = b.mul(e, c4);
    let p = b.ptr_add(pout, o);
    b.store(Space::Global, p, gid, Some(odd));
    let mut kinds: Vec<Word> = outs.iter().map(|&(_, w)| w).collect();
    kinds.push(Word::Exact);
    (b.finish(), kinds)
}

/// Inputs of [`ops_kernel`]: x, y, f, g (as bytes) and n, seeded.
pub fn ops_inputs(seed: u64) -> [Vec<u8>; 4] {
    let threads = (OPS_BLOCK * OPS_GRID) as usize;
    let mut rng = Rng::new(seed);
    let special = [0u32, 1, 0x8000_0000, 0x7fff_ffff, 0xffff_ffff, 31, 32, 33];
    let int = |rng: &mut Rng, i: usize| {
        if i < special.len() {
            special[i]
        } else {
            rng.next_u32()
        }
    };
    let x: Vec<u32> = (0..threads).map(|i| int(&mut rng, i)).collect();
    let y: Vec<u32> = (0..threads)
        .map(|i| int(&mut rng, (i + 3) % threads))
        .collect();
    // Finite floats over a wide range of exponents: subnormals, values that overflow f16, zeros
    // of both signs.
    let float = |rng: &mut Rng, i: usize| -> f32 {
        match i % 16 {
            0 => 0.0,
            1 => -0.0,
            2 => f32::from_bits(rng.next_u32() & 0x807f_ffff), // subnormal
            _ => {
                let e = rng.below(180) as i32 - 140;
                let m = rng.range_f64(1.0, 2.0) * if rng.below(2) == 0 { 1.0 } else { -1.0 };
                (m * 2f64.powi(e)) as f32
            }
        }
    };
    let f: Vec<f32> = (0..threads).map(|i| float(&mut rng, i)).collect();
    let g: Vec<f32> = (0..threads).map(|i| float(&mut rng, i + 5)).collect();
    [
        u32s_to_bytes(&x),
        u32s_to_bytes(&y),
        f32s_to_bytes(&f),
        f32s_to_bytes(&g),
    ]
}

/// Whether two result words agree under `kind`.
pub fn words_agree(kind: Word, a: u32, b: u32) -> bool {
    match kind {
        Word::Exact => a == b,
        Word::F32 => a == b || (f32::from_bits(a).is_nan() && f32::from_bits(b).is_nan()),
        Word::Half2(fmt) => (0..2).all(|l| {
            let (x, y) = ((a >> (16 * l)) as u16, (b >> (16 * l)) as u16);
            let nan = |h: u16| match fmt {
                HalfFormat::F16 => h & 0x7c00 == 0x7c00 && h & 0x3ff != 0,
                HalfFormat::BF16 => h & 0x7f80 == 0x7f80 && h & 0x7f != 0,
            };
            x == y || (nan(x) && nan(y))
        }),
    }
}

/// Every hand-built kernel the tests compile, by a unique name.
pub fn all_kernels() -> Vec<Kernel> {
    let mut ks = vec![
        vector_add(),
        dequant_u3(),
        mma_tile(),
        cp_async_kernel(),
        barrier_reverse_kernel(),
        ops_kernel().0,
    ];
    for (kind, name) in [
        (MmaKind::F16F32, "mma_f16"),
        (MmaKind::Bf16F32, "mma_bf16"),
        (MmaKind::S8S32, "mma_s8"),
        (MmaKind::Fp8F32(Fp8Format::E4M3), "mma_e4m3"),
        (MmaKind::Fp8F32(Fp8Format::E5M2), "mma_e5m2"),
    ] {
        let mut k = mma_kernel(kind);
        k.name = name.to_string();
        ks.push(k);
    }
    for num in [1u8, 2, 4] {
        for trans in [false, true] {
            let mut k = ldmatrix_kernel(num, trans);
            k.name = format!("ldmatrix_x{num}{}", if trans { "_trans" } else { "" });
            ks.push(k);
        }
    }
    for (mode, bval) in [
        (ShflMode::Bfly, 5),
        (ShflMode::Down, 3),
        (ShflMode::Up, 2),
        (ShflMode::Idx, 9),
    ] {
        ks.push(shfl_kernel(mode, bval));
    }
    ks
}
