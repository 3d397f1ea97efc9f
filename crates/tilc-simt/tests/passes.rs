//! Each pass's effect on small kernels, and — on seeded random programs — that every pass keeps
//! the kernel valid and the emulated results bit-identical.
mod common;
use common::*;
use tilc_simt::passes::*;
use tilc_simt::*;

fn count(k: &Kernel, pred: impl Fn(&InstKind) -> bool) -> usize {
    let mut n = 0;
    k.walk(&mut |i| {
        if pred(&k.insts[i].kind) {
            n += 1
        }
    });
    n
}

/// Runs a one-block, 64-thread kernel with params (in: i32[64], out: i32[64]).
fn emulate(k: &Kernel, input: &[u32]) -> Result<Vec<u32>, EmuError> {
    let mut args = vec![Arg::Buffer(u32s_to_bytes(input)), Arg::Buffer(vec![0xee; 64 * 4])];
    run(k, Launch { grid: [1, 1, 1], parallel: false }, &mut args)?;
    let Arg::Buffer(out) = &args[1] else { unreachable!("out is a buffer") };
    Ok(bytes_to_u32s(out))
}

/// A kernel skeleton: x = in[tid]; out[tid] = body(x).
fn per_thread(name: &str, body: impl FnOnce(&mut Builder, Value, Value) -> Value) -> Kernel {
    let mut b = Builder::new(name, [64, 1, 1]);
    let pin = b.param("in", Type::GLOBAL_PTR, 16);
    let pout = b.param("out", Type::GLOBAL_PTR, 16);
    let t = b.tid_x();
    let c4 = b.i32(4);
    let off = b.mul(t, c4);
    let pi = b.ptr_add(pin, off);
    let x = b.load(Space::Global, Type::I32, pi, None);
    let r = body(&mut b, x, t);
    let po = b.ptr_add(pout, off);
    b.store(Space::Global, po, r, None);
    b.finish()
}

fn signed_inputs() -> Vec<u32> {
    (0..64).map(|i: i32| ((i - 32) * 37 + i * i) as u32).collect()
}

#[test]
fn fold_evaluates_constants_and_identities() {
    let mut k = per_thread("fold", |b, x, _| {
        let two = b.i32(2);
        let three = b.i32(3);
        let five = b.add(two, three);
        let zero = b.i32(0);
        let y = b.add(x, zero); // x
        let one = b.i32(1);
        let z = b.mul(y, one); // x
        let w = b.add(z, five);
        let c7 = b.i32(7);
        b.add(w, c7) // x + 12 after reassociation
    });
    let before = emulate(&k, &signed_inputs()).unwrap();
    fold_constants(&mut k);
    dce(&mut k);
    verify(&k).unwrap();
    assert_eq!(emulate(&k, &signed_inputs()).unwrap(), before);
    let text = write_kernel(&k);
    assert!(text.contains("const 12"), "{text}");
    // Left: the offset multiply and the single add of 12.
    assert_eq!(count(&k, |i| matches!(i, InstKind::Binary(BinaryOp::Add, ..))), 1, "{text}");
}

#[test]
fn fold_inlines_constant_ifs_and_empty_loops() {
    let mut k = per_thread("fold_cf", |b, x, _| {
        let t = b.pred(true);
        let r = b.if_else(t, &[Type::I32], |b| vec![b.add(x, x)], |b| vec![b.mul(x, x)]);
        let c0 = b.i32(0);
        let c1 = b.i32(1);
        let l = b.for_loop(c1, c0, c1, &[r[0]], Unroll::None, |b, iv, c| vec![b.add(c[0], iv)]);
        l[0]
    });
    let before = emulate(&k, &signed_inputs()).unwrap();
    fold_constants(&mut k);
    dce(&mut k);
    verify(&k).unwrap();
    assert_eq!(count(&k, |i| matches!(i, InstKind::If { .. } | InstKind::For { .. })), 0, "{k}");
    assert_eq!(emulate(&k, &signed_inputs()).unwrap(), before);
}

#[test]
fn strength_reduction_turns_powers_of_two_into_shifts_and_masks() {
    let mut k = per_thread("strength", |b, x, _| {
        let c8 = b.i32(8);
        let c16 = b.i32(16);
        let a = b.mul(x, c8);
        let d = b.binary(BinaryOp::DivS, x, c16);
        let m = b.binary(BinaryOp::RemS, x, c16);
        let du = b.binary(BinaryOp::DivU, x, c16);
        let mu = b.binary(BinaryOp::RemU, x, c8);
        let s1 = b.add(a, d);
        let s2 = b.binary(BinaryOp::Xor, m, du);
        let s3 = b.add(s1, s2);
        b.add(s3, mu)
    });
    let input = signed_inputs();
    let before = emulate(&k, &input).unwrap();
    assert!(strength_reduce(&mut k));
    verify(&k).unwrap();
    let divs = count(&k, |i| matches!(i, InstKind::Binary(BinaryOp::DivS | BinaryOp::DivU | BinaryOp::RemS | BinaryOp::RemU, ..)));
    assert_eq!(divs, 0, "{k}");
    // The only multiply left is none: the offset multiply by 4 became a shift too.
    assert_eq!(count(&k, |i| matches!(i, InstKind::Binary(BinaryOp::Mul, ..))), 0, "{k}");
    assert_eq!(emulate(&k, &input).unwrap(), before);
    // Extreme values too.
    let edge: Vec<u32> = (0..64).map(|i| [i32::MIN, i32::MIN + 1, -1, 0, 1, i32::MAX, -15, -17][i % 8] as u32).collect();
    let mut k2 = per_thread("strength2", |b, x, _| {
        let c16 = b.i32(16);
        let d = b.binary(BinaryOp::DivS, x, c16);
        let m = b.binary(BinaryOp::RemS, x, c16);
        b.binary(BinaryOp::Xor, d, m)
    });
    let before = emulate(&k2, &edge).unwrap();
    strength_reduce(&mut k2);
    assert_eq!(emulate(&k2, &edge).unwrap(), before);
}

#[test]
fn cse_merges_repeated_pure_expressions_but_not_loads() {
    let mut k = per_thread("cse", |b, x, _| {
        let c3 = b.i32(3);
        let a1 = b.mul(x, c3);
        let c3b = b.i32(3);
        let a2 = b.mul(x, c3b); // same as a1 after constants merge
        let t2 = b.tid_x(); // same special register
        let s = b.add(a1, a2);
        b.add(s, t2)
    });
    let before = emulate(&k, &signed_inputs()).unwrap();
    let muls = count(&k, |i| matches!(i, InstKind::Binary(BinaryOp::Mul, ..)));
    assert!(cse(&mut k));
    dce(&mut k);
    verify(&k).unwrap();
    assert_eq!(count(&k, |i| matches!(i, InstKind::Binary(BinaryOp::Mul, ..))), muls - 1, "{k}");
    assert_eq!(count(&k, |i| matches!(i, InstKind::Special(_))), 1, "{k}");
    assert_eq!(emulate(&k, &signed_inputs()).unwrap(), before);
}

#[test]
fn dce_removes_unused_code_and_dead_arrays() {
    let mut k = per_thread("dce", |b, x, _| {
        let c5 = b.i32(5);
        b.mul(x, c5); // unused
        let arr = b.array("dead", Type::I32, 2);
        b.array_set(arr, 0, x); // never read
        let c1 = b.i32(1);
        let c4 = b.i32(4);
        b.for_loop(c1, c4, c1, &[x], Unroll::None, |b, iv, c| vec![b.add(c[0], iv)]); // unused
        b.add(x, c1)
    });
    let before = emulate(&k, &signed_inputs()).unwrap();
    assert!(dce(&mut k));
    compact(&mut k);
    verify(&k).unwrap();
    assert_eq!(count(&k, |i| matches!(i, InstKind::For { .. } | InstKind::ArraySet(..))), 0, "{k}");
    assert!(k.arrays.is_empty());
    assert_eq!(emulate(&k, &signed_inputs()).unwrap(), before);
}

#[test]
fn unroll_full_and_by_factor() {
    let build = |hint| {
        per_thread("unroll", move |b, x, _| {
            let arr = b.array("acc", Type::I32, 8);
            let c0 = b.i32(0);
            let c8 = b.i32(8);
            let c1 = b.i32(1);
            let r = b.for_loop(c0, c8, c1, &[x], hint, |b, iv, c| {
                let y = b.mul(c[0], iv);
                let z = b.add(y, c1);
                vec![z]
            });
            b.array_set(arr, 3, r[0]);
            b.array_get(arr, 3)
        })
    };
    let input = signed_inputs();
    let mut full = build(Unroll::Full);
    let before = emulate(&full, &input).unwrap();
    assert!(unroll(&mut full));
    verify(&full).unwrap();
    assert_eq!(count(&full, |i| matches!(i, InstKind::For { .. })), 0);
    assert_eq!(count(&full, |i| matches!(i, InstKind::Binary(BinaryOp::Mul, ..))), 8 + 1);
    assert_eq!(emulate(&full, &input).unwrap(), before);
    let mut by2 = build(Unroll::Factor(2));
    assert!(unroll(&mut by2));
    verify(&by2).unwrap();
    assert_eq!(count(&by2, |i| matches!(i, InstKind::For { unroll: Unroll::None, .. })), 1);
    assert_eq!(count(&by2, |i| matches!(i, InstKind::Binary(BinaryOp::Mul, ..))), 2 + 1);
    assert_eq!(emulate(&by2, &input).unwrap(), before);
    // A factor that does not divide the trip count leaves the loop alone.
    let mut by3 = build(Unroll::Factor(3));
    assert!(!unroll(&mut by3));
}

/// A seeded random per-thread program over i32 values: arithmetic, bit tricks, selects,
/// loops with unroll hints, ifs with results, register arrays, repeated subexpressions.
fn random_program(seed: u64) -> Kernel {
    let mut rng = Rng::new(seed);
    per_thread("random", move |b, x, t| {
        let mut vals = vec![x, t];
        let arr = b.array("regs", Type::I32, 4);
        for n in 0..4 {
            b.array_set(arr, n, x);
        }
        gen_block(b, &mut rng, &mut vals, arr, 2);
        let mut acc = vals[vals.len() - 1];
        for &v in vals.iter().rev().take(6) {
            acc = b.binary(BinaryOp::Xor, acc, v);
        }
        acc
    })
}

fn pick(rng: &mut Rng, vals: &[Value]) -> Value {
    // Prefer recent values so expressions chain.
    let n = vals.len();
    let back = (rng.below(6) as usize).min(n - 1);
    if rng.below(4) == 0 { vals[rng.below(n as u64) as usize] } else { vals[n - 1 - back] }
}

fn gen_block(b: &mut Builder, rng: &mut Rng, vals: &mut Vec<Value>, arr: Array, depth: u32) {
    let steps = 6 + rng.below(10);
    for _ in 0..steps {
        let a = pick(rng, vals);
        let c = pick(rng, vals);
        let v = match rng.below(16) {
            0 => b.add(a, c),
            1 => b.sub(a, c),
            2 => {
                let k = b.i32([2, 4, 8, 16, 3, 1, 0, -4][rng.below(8) as usize]);
                b.mul(a, k)
            }
            3 => {
                let op = [BinaryOp::DivS, BinaryOp::DivU, BinaryOp::RemS, BinaryOp::RemU][rng.below(4) as usize];
                let k = b.i32([1, 2, 8, 32, 3, 7][rng.below(6) as usize]);
                b.binary(op, a, k)
            }
            4 => {
                let s = b.i32(rng.below(33) as i32);
                let op = [BinaryOp::Shl, BinaryOp::ShrU, BinaryOp::ShrS][rng.below(3) as usize];
                b.binary(op, a, s)
            }
            5 => b.binary([BinaryOp::And, BinaryOp::Or, BinaryOp::Xor, BinaryOp::MinS, BinaryOp::MaxU][rng.below(5) as usize], a, c),
            6 => {
                let op = [CmpOp::Slt, CmpOp::Ult, CmpOp::Eq, CmpOp::Sge][rng.below(4) as usize];
                let p = b.cmp(op, a, c);
                b.select(p, a, c)
            }
            7 => {
                let n = b.i32(rng.below(32) as i32);
                let dir = if rng.below(2) == 0 { ShfDir::Left } else { ShfDir::Right };
                b.shf(dir, ShfMode::Clamp, a, c, n)
            }
            8 => {
                let s = b.i32((rng.next_u32() & 0xffff) as i32);
                b.prmt(a, c, s)
            }
            9 => {
                let d = pick(rng, vals);
                b.lop3(a, c, d, rng.below(256) as u8)
            }
            10 => {
                let pos = b.i32(rng.below(32) as i32);
                let len = b.i32(rng.below(12) as i32);
                b.bfe(rng.below(2) == 0, a, pos, len)
            }
            11 => {
                // A repeated expression, for CSE.
                let k = b.i32(12345);
                let e1 = b.add(a, k);
                let k2 = b.i32(12345);
                let e2 = b.add(a, k2);
                b.binary(BinaryOp::Xor, e1, e2)
            }
            12 => {
                let idx = rng.below(4) as u32;
                if rng.below(2) == 0 {
                    b.array_set(arr, idx, a);
                    a
                } else {
                    b.array_get(arr, idx)
                }
            }
            13 if depth > 0 => {
                let lo = b.i32(rng.below(3) as i32);
                let hi = b.i32(rng.below(6) as i32);
                let step = b.i32(1 + rng.below(2) as i32);
                let hint = [Unroll::None, Unroll::Full, Unroll::Factor(2)][rng.below(3) as usize];
                let init = [a, c];
                let mut sub = Rng::new(rng.next_u64());
                let r = b.for_loop(lo, hi, step, &init, hint, |b, iv, carried| {
                    let mut inner = vals.clone();
                    inner.extend([iv, carried[0], carried[1]]);
                    gen_block(b, &mut sub, &mut inner, arr, depth - 1);
                    let n = inner.len();
                    vec![inner[n - 1], inner[n - 2]]
                });
                b.binary(BinaryOp::Xor, r[0], r[1])
            }
            14 if depth > 0 => {
                let p = b.cmp(CmpOp::Slt, a, c);
                let (mut s1, mut s2) = (Rng::new(rng.next_u64()), Rng::new(rng.next_u64()));
                let base = vals.clone();
                let r = b.if_else(
                    p,
                    &[Type::I32],
                    |b| {
                        let mut inner = base.clone();
                        gen_block(b, &mut s1, &mut inner, arr, depth - 1);
                        vec![*inner.last().expect("non-empty")]
                    },
                    |b| {
                        let mut inner = base.clone();
                        gen_block(b, &mut s2, &mut inner, arr, depth - 1);
                        vec![*inner.last().expect("non-empty")]
                    },
                );
                r[0]
            }
            _ => {
                let k = b.i32(rng.next_u32() as i32);
                b.add(a, k)
            }
        };
        vals.push(v);
    }
}

#[test]
fn every_pass_preserves_emulated_results_on_random_programs() {
    let mut rng_in = Rng::new(99);
    let input: Vec<u32> = (0..64).map(|i| if i < 8 { [0, 1, u32::MAX, 0x8000_0000, 0x7fff_ffff, 2, 3, 16][i] } else { rng_in.next_u32() }).collect();
    let passes: [(&str, fn(&mut Kernel) -> bool); 5] =
        [("unroll", unroll), ("fold", fold_constants), ("strength", strength_reduce), ("cse", cse), ("dce", dce)];
    let (mut shrunk, mut ran) = (0, 0);
    for seed in 0..60u64 {
        let k = random_program(seed);
        verify(&k).unwrap_or_else(|e| panic!("seed {seed}: generator made an invalid kernel:\n{e}\n{k}"));
        let want = emulate(&k, &input);
        let Ok(want) = want else {
            // Register arrays may be read before written in a skipped loop: the emulator says so.
            continue;
        };
        ran += 1;
        for (name, pass) in passes {
            let mut p = k.clone();
            pass(&mut p);
            verify(&p).unwrap_or_else(|e| panic!("seed {seed}: {name} broke the kernel:\n{e}\n{p}"));
            assert_eq!(emulate(&p, &input).unwrap(), want, "seed {seed}: {name} changed results");
        }
        let mut o = k.clone();
        optimize(&mut o);
        verify(&o).unwrap_or_else(|e| panic!("seed {seed}: optimize broke the kernel:\n{e}\n{o}"));
        assert_eq!(emulate(&o, &input).unwrap(), want, "seed {seed}: optimize changed results\n{o}");
        let mut rolled = k.clone();
        for r in rolled.insts.values_mut() {
            if let InstKind::For { unroll, .. } = &mut r.kind {
                *unroll = Unroll::None;
            }
        }
        optimize(&mut rolled);
        if rolled.inst_count() < k.inst_count() {
            shrunk += 1;
        }
    }
    assert!(ran >= 45, "only {ran} of 60 random programs ran without an emulator error");
    assert!(shrunk * 3 > ran * 2, "optimize shrank only {shrunk} of {ran} programs");
}
