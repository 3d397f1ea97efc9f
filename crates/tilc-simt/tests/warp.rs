//! Warp-collective instructions through the emulator: `mma.sync` against a plain matrix multiply
//! with the operands distributed by the PTX ISA's fragment maps (written here as register tables,
//! independently of the crate), `ldmatrix` distribution, shuffles, and `cp.async` staging.
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

/// PTX register tables: A register r of lane (g = lane/4, t = lane%4) holds row g + ROW[r],
/// columns t·per + COL[r] .. + per; B register r holds rows t·per + KOFF[r] .., column g.
const A_ROW: [usize; 4] = [0, 8, 0, 8];
fn a_col(reg: usize, k: usize) -> usize {
    [0, 0, k / 2, k / 2][reg]
}
fn b_koff(reg: usize, k: usize) -> usize {
    [0, k / 2][reg]
}

/// Distributes row-major A (16×k) and col-indexed B (k×8) element codes into lane fragments.
fn distribute(a: &[u32], b: &[u32], k: usize, elem_bits: usize) -> (Vec<u8>, Vec<u8>) {
    let per = 32 / elem_bits;
    let mut fa = vec![0u32; 32 * 4];
    let mut fb = vec![0u32; 32 * 2];
    for lane in 0..32 {
        let (g, t) = (lane / 4, lane % 4);
        for reg in 0..4 {
            let mut word = 0u32;
            for e in 0..per {
                let (row, col) = (g + A_ROW[reg], t * per + a_col(reg, k) + e);
                word |= a[row * k + col] << (e * elem_bits);
            }
            fa[lane * 4 + reg] = word;
        }
        for reg in 0..2 {
            let mut word = 0u32;
            for e in 0..per {
                let (kk, n) = (t * per + b_koff(reg, k) + e, g);
                word |= b[kk * 8 + n] << (e * elem_bits);
            }
            fb[lane * 2 + reg] = word;
        }
    }
    (u32s_to_bytes(&fa), u32s_to_bytes(&fb))
}

/// C/D register r of lane (g, t) is element (g + 8·(r/2), 2t + r%2).
fn c_coord(lane: usize, reg: usize) -> (usize, usize) {
    (lane / 4 + 8 * (reg / 2), 2 * (lane % 4) + reg % 2)
}

fn check_float_mma(kind: MmaKind, seed: u64, encode: impl Fn(f64) -> u32, decode: impl Fn(u32) -> f64, elem_bits: usize) {
    let mut rng = Rng::new(seed);
    let k = kind.shape().2 as usize;
    let a: Vec<u32> = (0..16 * k).map(|_| encode(rng.range_f64(-4.0, 4.0))).collect();
    let b: Vec<u32> = (0..k * 8).map(|_| encode(rng.range_f64(-4.0, 4.0))).collect();
    let c: Vec<f32> = (0..128).map(|_| rng.range_f64(-100.0, 100.0) as f32).collect();
    let (fa, fb) = distribute(&a, &b, k, elem_bits);
    let mut fc = vec![0f32; 128];
    for lane in 0..32 {
        for r in 0..4 {
            let (m, n) = c_coord(lane, r);
            fc[lane * 4 + r] = c[m * 8 + n];
        }
    }
    let kernel = mma_kernel(kind);
    let mut args = vec![Arg::Buffer(fa), Arg::Buffer(fb), Arg::Buffer(f32s_to_bytes(&fc)), Arg::Buffer(vec![0xff; 512])];
    run(&kernel, Launch { grid: [1, 1, 1], parallel: false }, &mut args).unwrap();
    let d = bytes_to_f32s(buffer(&args, 3));
    for lane in 0..32 {
        for r in 0..4 {
            let (m, n) = c_coord(lane, r);
            let mut want = c[m * 8 + n] as f64;
            let mut scale = want.abs();
            for kk in 0..k {
                let p = decode(a[m * k + kk]) * decode(b[kk * 8 + n]);
                want += p;
                scale += p.abs();
            }
            let got = d[lane * 4 + r] as f64;
            assert!((got - want).abs() <= scale * 1e-6, "seed {seed} {kind:?}: D[{m}][{n}] = {got}, want {want}");
        }
    }
}

#[test]
fn mma_f16_and_bf16_match_a_matrix_multiply() {
    for seed in [1, 2] {
        check_float_mma(MmaKind::F16F32, seed, |x| half::f16::from_f64(x).to_bits() as u32, |b| half::f16::from_bits(b as u16).to_f64(), 16);
        check_float_mma(MmaKind::Bf16F32, seed, |x| half::bf16::from_f64(x).to_bits() as u32, |b| half::bf16::from_bits(b as u16).to_f64(), 16);
    }
}

#[test]
fn mma_fp8_matches_a_matrix_multiply() {
    use tilc_simt::semantics::{f32_to_fp8, fp8_to_f64};
    for fmt in [Fp8Format::E4M3, Fp8Format::E5M2] {
        check_float_mma(MmaKind::Fp8F32(fmt), 3, |x| f32_to_fp8(x as f32, fmt) as u32, |b| fp8_to_f64(b as u8, fmt), 8);
    }
}

#[test]
fn mma_s8_is_exact() {
    let seed = 4;
    let mut rng = Rng::new(seed);
    let a: Vec<i8> = (0..16 * 32).map(|_| rng.next_u32() as i8).collect();
    let b: Vec<i8> = (0..32 * 8).map(|_| rng.next_u32() as i8).collect();
    // Some accumulators near the top of i32 so the sum wraps.
    let c: Vec<i32> = (0..128).map(|i| if i % 5 == 0 { i32::MAX - 1000 } else { rng.next_u32() as i32 / 4 }).collect();
    let (fa, fb) = distribute(&a.iter().map(|&x| x as u8 as u32).collect::<Vec<_>>(), &b.iter().map(|&x| x as u8 as u32).collect::<Vec<_>>(), 32, 8);
    let mut fc = vec![0u32; 128];
    for lane in 0..32 {
        for r in 0..4 {
            let (m, n) = c_coord(lane, r);
            fc[lane * 4 + r] = c[m * 8 + n] as u32;
        }
    }
    let kernel = mma_kernel(MmaKind::S8S32);
    let mut args = vec![Arg::Buffer(fa), Arg::Buffer(fb), Arg::Buffer(u32s_to_bytes(&fc)), Arg::Buffer(vec![0; 512])];
    run(&kernel, Launch { grid: [1, 1, 1], parallel: false }, &mut args).unwrap();
    let d = bytes_to_u32s(buffer(&args, 3));
    for lane in 0..32 {
        for r in 0..4 {
            let (m, n) = c_coord(lane, r);
            let dot: i32 = (0..32).map(|k| a[m * 32 + k] as i32 * b[k * 8 + n] as i32).sum();
            assert_eq!(d[lane * 4 + r] as i32, c[m * 8 + n].wrapping_add(dot), "seed {seed}: D[{m}][{n}]");
        }
    }
}

#[test]
fn ldmatrix_distributes_rows_and_transposes() {
    let val = |m: usize, r: usize, c: usize| (m * 64 + r * 8 + c) as u32 + 0x100;
    let mut src = vec![0u8; 512];
    for m in 0..4 {
        for r in 0..8 {
            for c in 0..8 {
                let at = m * 128 + r * 16 + c * 2;
                src[at..at + 2].copy_from_slice(&(val(m, r, c) as u16).to_le_bytes());
            }
        }
    }
    let phys = |logical_row: usize| (3 * logical_row) % 8;
    for num in [1u8, 2, 4] {
        for trans in [false, true] {
            let k = ldmatrix_kernel(num, trans);
            let mut args = vec![Arg::Buffer(src.clone()), Arg::Buffer(vec![0; 512])];
            run(&k, Launch { grid: [1, 1, 1], parallel: false }, &mut args).unwrap();
            let out = bytes_to_u32s(buffer(&args, 1));
            let per_lane = num as usize;
            for lane in 0..32 {
                for m in 0..per_lane {
                    let (row, col) = (lane / 4, 2 * (lane % 4));
                    let want = if trans {
                        val(m, phys(col), row) | val(m, phys(col + 1), row) << 16
                    } else {
                        val(m, phys(row), col) | val(m, phys(row), col + 1) << 16
                    };
                    // Stores are 4/8/16 bytes wide; lane l's words start at l·16 bytes.
                    assert_eq!(out[lane * 4 + m], want, "x{num} trans={trans} lane {lane} reg {m}");
                }
            }
        }
    }
}

#[test]
fn shuffles_exchange_values_within_the_warp() {
    for (mode, bval) in [(ShflMode::Bfly, 5), (ShflMode::Down, 3), (ShflMode::Up, 2), (ShflMode::Idx, 9)] {
        let mut b = Builder::new("shfl", [64, 1, 1]);
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
        let k = b.finish();
        let mut args = vec![Arg::Buffer(vec![0; 256])];
        run(&k, Launch { grid: [1, 1, 1], parallel: false }, &mut args).unwrap();
        let got = bytes_to_u32s(buffer(&args, 0));
        for t in 0..64u32 {
            let (w, l) = (t / 32 * 32, t % 32);
            let b = bval as u32;
            let src = match mode {
                ShflMode::Bfly => l ^ b,
                ShflMode::Down => if l + b < 32 { l + b } else { l },
                ShflMode::Up => if l >= b { l - b } else { l },
                ShflMode::Idx => b,
            };
            assert_eq!(got[t as usize], (w + src) * 7, "{mode:?} thread {t}");
        }
    }
}

#[test]
fn cp_async_data_is_visible_only_after_wait() {
    // Thread t copies 4 bytes to shared, reads shared before the wait (error), in a second kernel
    // after the wait (its own bytes: fine).
    for early in [true, false] {
        let mut b = Builder::new("cpa", [32, 1, 1]);
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
        if !early {
            b.cp_async_wait(0);
        }
        let v = b.load(Space::Shared, Type::I32, s, None);
        if early {
            b.cp_async_wait(0);
        }
        let o = b.ptr_add(out, off);
        b.store(Space::Global, o, v, None);
        let k = b.finish();
        let data: Vec<u32> = (0..32).map(|i| i * 0x01010101).collect();
        let mut args = vec![Arg::Buffer(u32s_to_bytes(&data)), Arg::Buffer(vec![0; 128])];
        let r = run(&k, Launch { grid: [1, 1, 1], parallel: false }, &mut args);
        if early {
            let e = r.unwrap_err();
            assert!(matches!(e.kind, EmuErrorKind::CpAsyncInFlight { addr: 0 }), "{e}");
            assert_eq!(e.thread, Some(0));
        } else {
            r.unwrap();
            assert_eq!(bytes_to_u32s(buffer(&args, 1)), data);
        }
    }
}

/// The bank model: 32 banks of 32-bit words; a warp access costs as many wavefronts as the
/// most distinct words any bank serves.
#[test]
fn shared_wavefronts_count_bank_conflicts() {
    use tilc_simt::shared_wavefronts;
    let lanes = |f: &dyn Fn(u64) -> u64, size: u32| -> Vec<(u64, u32)> { (0..32).map(|l| (f(l), size)).collect() };
    // Consecutive words: one wavefront, no conflict.
    assert_eq!(shared_wavefronts(&lanes(&|l| 4 * l, 4)), (1, 1));
    // Every lane in the same word: a broadcast, one wavefront.
    assert_eq!(shared_wavefronts(&lanes(&|_| 64, 4)), (1, 1));
    // A stride of 32 words: every lane in bank 0, 32-way conflict.
    assert_eq!(shared_wavefronts(&lanes(&|l| 128 * l, 4)), (32, 1));
    // A stride of 2 words: 2-way.
    assert_eq!(shared_wavefronts(&lanes(&|l| 8 * l, 4)), (2, 1));
    // Contiguous 128-bit accesses: 512 bytes need 4 wavefronts, and take 4.
    assert_eq!(shared_wavefronts(&lanes(&|l| 16 * l, 16)), (4, 4));
    // Byte accesses of 4 lanes share one word.
    assert_eq!(shared_wavefronts(&lanes(&|l| l, 1)), (1, 1));
    // Rows of 128 bytes read 4 bytes per lane at (row = l / 4, column = l % 4): 8-way.
    assert_eq!(shared_wavefronts(&lanes(&|l| 128 * (l / 4) + 4 * (l % 4), 4)), (8, 1));
}
