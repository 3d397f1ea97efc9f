//! The rounding and transcendental float instructions against Rust's std on edge values, and
//! atomics in the emulator: their results, that atomics of many threads on one word are not
//! races, and that an atomic and a plain access of one shared word are.
mod common;
use tilc_simt::semantics as sem;
use tilc_simt::*;

const F32_EDGES: [f32; 20] = [
    0.0, -0.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 2.5, -2.5, 3.5, -0.5, 0.5, 1.5, 1e-45, -1e-45,
    1.17549435e-38, 8388609.0, -8388607.5, 1e30, 0.25, 2.0, -7.0,
];

fn f32_std(op: UnaryOp, x: f32) -> f32 {
    match op {
        UnaryOp::FFloor => x.floor(),
        UnaryOp::FCeil => x.ceil(),
        UnaryOp::FTrunc => x.trunc(),
        UnaryOp::FRound => x.round_ties_even(),
        UnaryOp::FExp => (x as f64).exp() as f32,
        UnaryOp::FExp2 => (x as f64).exp2() as f32,
        UnaryOp::FLog => (x as f64).ln() as f32,
        UnaryOp::FLog2 => (x as f64).log2() as f32,
        UnaryOp::FRsqrt => (1.0 / (x as f64).sqrt()) as f32,
        _ => unreachable!(),
    }
}

fn f64_std(op: UnaryOp, x: f64) -> f64 {
    match op {
        UnaryOp::FFloor => x.floor(),
        UnaryOp::FCeil => x.ceil(),
        UnaryOp::FTrunc => x.trunc(),
        UnaryOp::FRound => x.round_ties_even(),
        UnaryOp::FExp => x.exp(),
        UnaryOp::FExp2 => x.exp2(),
        UnaryOp::FLog => x.ln(),
        UnaryOp::FLog2 => x.log2(),
        UnaryOp::FRsqrt => 1.0 / x.sqrt(),
        _ => unreachable!(),
    }
}

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

fn same32(a: f32, b: f32) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

#[test]
fn float_unary_ops_are_rusts_on_edge_values() {
    for op in OPS {
        for &x in &F32_EDGES {
            let have = f32::from_bits(sem::unary(op, Type::F32, x.to_bits() as u128) as u32);
            assert!(same32(have, f32_std(op, x)), "{op:?}({x:e}) = {have:e}");
            let y = x as f64 * 1.000_000_1;
            let have = f64::from_bits(sem::unary(op, Type::F64, y.to_bits() as u128) as u64);
            let want = f64_std(op, y);
            assert!((have.is_nan() && want.is_nan()) || have.to_bits() == want.to_bits(), "{op:?}(f64 {y:e})");
        }
        // Lane-wise on a vector.
        let (a, b) = (2.5f32, -1e-45f32);
        let v = (a.to_bits() as u128) | ((b.to_bits() as u128) << 32);
        let r = sem::unary(op, Type::vector(Scalar::F32, 2), v);
        assert!(same32(f32::from_bits(r as u32), f32_std(op, a)), "{op:?} lane 0");
        assert!(same32(f32::from_bits((r >> 32) as u32), f32_std(op, b)), "{op:?} lane 1");
    }
    // The rounding ones: the facts that distinguish them.
    let r = |op, x: f32| f32::from_bits(sem::unary(op, Type::F32, x.to_bits() as u128) as u32);
    assert_eq!(r(UnaryOp::FRound, 2.5), 2.0);
    assert_eq!(r(UnaryOp::FRound, -2.5), -2.0);
    assert_eq!(r(UnaryOp::FRound, 3.5), 4.0);
    assert_eq!(r(UnaryOp::FFloor, -0.5), -1.0);
    assert_eq!(r(UnaryOp::FCeil, -0.5).to_bits(), (-0.0f32).to_bits());
    assert_eq!(r(UnaryOp::FTrunc, -2.5), -2.0);
    assert_eq!(r(UnaryOp::FLog2, 0.0), f32::NEG_INFINITY);
    assert_eq!(r(UnaryOp::FRsqrt, 0.25), 2.0);
}

#[test]
fn float_unary_ops_run_in_the_emulator_and_print() {
    let mut b = Builder::new("unary", [32, 1, 1]);
    let src = b.param("src", Type::GLOBAL_PTR, 4);
    let dst = b.param("dst", Type::GLOBAL_PTR, 4);
    let t = b.tid_x();
    let c4 = b.i32(4);
    let off = b.mul(t, c4);
    let p = b.ptr_add(src, off);
    let x = b.load(Space::Global, Type::F32, p, None);
    let mut acc = Vec::new();
    for op in OPS {
        acc.push(b.unary(op, x));
    }
    let c36 = b.i32(36);
    let row = b.mul(t, c36);
    for (j, v) in acc.iter().enumerate() {
        let cj = b.i32(4 * j as i32);
        let o = b.add(row, cj);
        let q = b.ptr_add(dst, o);
        b.store(Space::Global, q, *v, None);
    }
    let k = b.finish();
    let text = write_kernel(&k);
    for name in ["ffloor", "fceil", "ftrunc", "fround", "fexp ", "fexp2", "flog ", "flog2", "frsqrt"] {
        assert!(text.contains(name), "{name} not printed:\n{text}");
    }
    let xs: Vec<f32> = F32_EDGES.iter().copied().chain([9.0; 12]).collect();
    let mut args = [Arg::Buffer(common::f32s_to_bytes(&xs)), Arg::Buffer(vec![0; 32 * 36])];
    run(&k, Launch { grid: [1, 1, 1], parallel: false }, &mut args).unwrap();
    let Arg::Buffer(out) = &args[1] else { unreachable!() };
    let out = common::bytes_to_u32s(out);
    for (t, &x) in xs.iter().enumerate() {
        for (j, op) in OPS.iter().enumerate() {
            assert!(same32(f32::from_bits(out[t * 9 + j]), f32_std(*op, x)), "{op:?}({x:e}) in the emulator");
        }
    }
}

#[test]
fn atomic_operations_combine_as_documented() {
    assert_eq!(sem::atomic(AtomicOp::And, 0b1100, 0b1010), 0b1000);
    assert_eq!(sem::atomic(AtomicOp::Or, 0b1100, 0b1010), 0b1110);
    assert_eq!(sem::atomic(AtomicOp::Xor, 0b1100, 0b1010), 0b0110);
    assert_eq!(sem::atomic(AtomicOp::Add, u32::MAX, 2), 1);
    assert_eq!(sem::atomic(AtomicOp::MaxS, (-5i32) as u32, 3), 3);
    assert_eq!(sem::atomic(AtomicOp::MinS, (-5i32) as u32, 3), (-5i32) as u32);
}

/// 128 threads per block `or` their bit (t mod 32) into one shared word and one global word,
/// `add` 1 to a shared counter (whose old values must be 0..128 in some order) and `add` t to a
/// global sum over four blocks running in parallel; `max`/`min` of t into global words.
#[test]
fn atomics_of_many_threads_on_one_word_combine_without_races() {
    let mut b = Builder::new("atomics", [128, 1, 1]);
    let out = b.param("out", Type::GLOBAL_PTR, 4);
    let olds = b.param("olds", Type::GLOBAL_PTR, 4);
    b.set_shared_bytes(8);
    let t = b.tid_x();
    let blk = b.ctaid_x();
    let c31 = b.i32(31);
    let lane = b.and(t, c31);
    let one = b.i32(1);
    let bit = b.shl(one, lane);
    let z = b.i32(0);
    let word = b.shared_addr(z);
    b.atomic(AtomicOp::Or, Space::Shared, word, bit);
    let c4 = b.i32(4);
    let counter = b.shared_addr(c4);
    let old = b.atomic(AtomicOp::Add, Space::Shared, counter, one);
    // olds[blk*128 + t] = old
    let c128 = b.i32(128);
    let base = b.mul(blk, c128);
    let i = b.add(base, t);
    let off = b.mul(i, c4);
    let p = b.ptr_add(olds, off);
    b.store(Space::Global, p, old, None);
    // Global: out[0] |= bit, out[1] += t, out[2] = max(.., t - 64), out[3] = min(.., t - 64).
    b.atomic(AtomicOp::Or, Space::Global, out, bit);
    let g1 = b.ptr_add(out, c4);
    b.atomic(AtomicOp::Add, Space::Global, g1, t);
    let c64 = b.i32(64);
    let centered = b.sub(t, c64);
    let c8 = b.i32(8);
    let g2 = b.ptr_add(out, c8);
    b.atomic(AtomicOp::MaxS, Space::Global, g2, centered);
    let c12 = b.i32(12);
    let g3 = b.ptr_add(out, c12);
    b.atomic(AtomicOp::MinS, Space::Global, g3, centered);
    b.barrier();
    // After the barrier thread 0 reads the shared word with a plain load: no race.
    let is0 = b.cmp(CmpOp::Eq, t, z);
    b.if_then(is0, |b| {
        let z = b.i32(0);
        let w = b.shared_addr(z);
        let v = b.load(Space::Shared, Type::I32, w, None);
        let c16 = b.i32(16);
        let c4 = b.i32(4);
        let blk = b.ctaid_x();
        let o = b.mul(blk, c4);
        let o = b.add(o, c16);
        let out = b.kernel().regions[b.kernel().body].args[0];
        let q = b.ptr_add(out, o);
        b.store(Space::Global, q, v, None);
    });
    let k = b.finish();
    let text = write_kernel(&k);
    assert!(text.contains("atom.shared.or"), "{text}");
    assert!(text.contains("atom.global.maxs"), "{text}");
    let mut init = vec![0u32; 8];
    init[2] = i32::MIN as u32;
    init[3] = i32::MAX as u32;
    let mut args = [Arg::Buffer(common::u32s_to_bytes(&init)), Arg::Buffer(vec![0; 4 * 512])];
    run(&k, Launch { grid: [4, 1, 1], parallel: true }, &mut args).unwrap_or_else(|e| panic!("{e}"));
    let Arg::Buffer(o) = &args[0] else { unreachable!() };
    let o = common::bytes_to_u32s(o);
    assert_eq!(o[0], u32::MAX, "global or of every bit");
    assert_eq!(o[1], 4 * (0..128).sum::<u32>(), "global sum over four blocks");
    assert_eq!(o[2] as i32, 63);
    assert_eq!(o[3] as i32, -64);
    assert_eq!(&o[4..8], &[u32::MAX; 4], "each block's shared word");
    let Arg::Buffer(olds) = &args[1] else { unreachable!() };
    let olds = common::bytes_to_u32s(olds);
    for blk in 0..4 {
        let mut seen: Vec<u32> = olds[blk * 128..(blk + 1) * 128].to_vec();
        seen.sort();
        assert_eq!(seen, (0..128).collect::<Vec<u32>>(), "block {blk}: atomic add returns each old value once");
    }
    // Not pure: optimisation keeps every atomic even when results are unused.
    let mut k2 = k.clone();
    passes::optimize(&mut k2);
    let count = |k: &Kernel| {
        let mut n = 0;
        k.walk(&mut |i| n += matches!(k.insts[i].kind, InstKind::Atomic { .. }) as u32);
        n
    };
    assert_eq!(count(&k2), count(&k));
}

/// A planted race: thread 33 (another warp) atomically `or`s the word thread 0 stored plainly,
/// with no barrier between; and the reverse order, plain load after another thread's atomic.
#[test]
fn an_atomic_and_a_plain_access_of_one_shared_word_race() {
    for plain_first in [true, false] {
        let mut b = Builder::new("racy", [64, 1, 1]);
        b.set_shared_bytes(4);
        let t = b.tid_x();
        let z = b.i32(0);
        let w = b.shared_addr(z);
        let c0 = b.i32(0);
        let c33 = b.i32(33);
        let is0 = b.cmp(CmpOp::Eq, t, c0);
        let is33 = b.cmp(CmpOp::Eq, t, c33);
        let (first, second) = if plain_first { (is0, is33) } else { (is33, is0) };
        b.if_then(first, |b| {
            if plain_first {
                let v = b.i32(5);
                b.store(Space::Shared, w, v, None);
            } else {
                let v = b.i32(2);
                b.atomic(AtomicOp::Or, Space::Shared, w, v);
            }
        });
        b.if_then(second, |b| {
            if plain_first {
                let v = b.i32(2);
                b.atomic(AtomicOp::Or, Space::Shared, w, v);
            } else {
                b.load(Space::Shared, Type::I32, w, None);
            }
        });
        let k = b.finish();
        let err = run(&k, Launch { grid: [1, 1, 1], parallel: false }, &mut []).unwrap_err();
        assert!(matches!(err.kind, EmuErrorKind::SharedRace { .. }), "plain_first {plain_first}: {err}");
    }
}

#[test]
fn atomics_are_verified() {
    let mut b = Builder::new("bad_atomic", [32, 1, 1]);
    let out = b.param("out", Type::GLOBAL_PTR, 4);
    let x = b.f32(1.0);
    b.atomic(AtomicOp::Add, Space::Global, out, x);
    let c2 = b.i32(2);
    let p = b.ptr_add(out, c2);
    let one = b.i32(1);
    b.atomic(AtomicOp::Add, Space::Shared, p, one);
    let errs = verify(&b.finish()).unwrap_err();
    let text = errs.to_string();
    assert!(text.contains("expected i32"), "{text}");
    assert!(text.contains("expected ptr.shared"), "{text}");
}
