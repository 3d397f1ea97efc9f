//! The CPU backend's `dot` forms against the interpreter, on the values where a wrong lane
//! operation would show: integers of at most 8 bits multiplied as `i16` pairs (`pmaddwd`) —
//! every signed and unsigned width's extremes, accumulators that wrap around `i32`, column
//! counts with and without a trailing half group of four — and `f16` × `f16` in `f32` lanes
//! (codes over the whole range, subnormal to 65504, per-step rounding, overflow, ±0, Inf and
//! NaN), `bf16` operands whose products are inexact in `f32` (which must stay in f64), and
//! `f32` b read directly when at most two rows of `a` are live.

mod common;
use common::*;
use tilc_dtype::DType;
use tilc_vm::{ArgValue, HostTensor, SplitMix64};

fn tensor(dtype: DType, shape: Vec<usize>, codes: Vec<u64>) -> ArgValue {
    ArgValue::Tensor(HostTensor { dtype, shape, codes })
}

const DOT_INT: &str = r#"
kernel dot_int<TA: type = i8, TB: type = i8, M = 4, K = 32, N = 24>(
    a: global TA[M, K], b: global TB[K, N], c: global i32[M, N], o: out global i32[M, N],
) grid [1] warps 1 {
    store o[0, 0] = dot(load a[0, 0] : [M, K], load b[0, 0] : [K, N], load c[0, 0] : [M, N]);
}
"#;

/// Codes of integer type `d`: mostly its minimum, maximum, 0, ±1 and the values next to the
/// extremes, the rest random.
fn int_codes(d: DType, n: usize, rng: &mut SplitMix64) -> Vec<u64> {
    let bits = d.bits();
    let m = d.code_mask();
    let (lo, hi): (i64, i64) = if d.is_signed() { (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) } else { (0, (1 << bits) - 1) };
    let pool: Vec<u64> = [lo, lo + 1, hi, hi - 1, 0, 1, -1].iter().filter(|&&v| (lo..=hi).contains(&v)).map(|&v| v as u64 & m).collect();
    (0..n)
        .map(|_| {
            let r = rng.next_u64();
            if r.is_multiple_of(3) { (r >> 8) & m } else { pool[(r >> 8) as usize % pool.len()] }
        })
        .collect()
}

#[test]
fn int_pairs_agree_on_extremes_and_wrapping_accumulators() {
    let seed = base_seed();
    let mut rng = SplitMix64(seed);
    let pairs = [("i8", "i8"), ("u8", "u8"), ("i8", "u8"), ("u8", "i8"), ("i4", "u3"), ("u1", "i2"), ("i3", "i7"), ("u4", "i4"), ("i8", "u3"), ("u7", "i5")];
    // (M, K, N): N = 8q (whole groups), 8q + 4 (a trailing half group), K a multiple of 16.
    let shapes = [(3, 32, 24), (2, 16, 12), (5, 48, 36), (1, 16, 4), (2, 128, 128)];
    for (t, &(ta, tb)) in pairs.iter().enumerate() {
        for (s, &(m, kk, n)) in shapes.iter().enumerate() {
            let defines = [format!("TA={ta}"), format!("TB={tb}"), format!("M={m}"), format!("K={kk}"), format!("N={n}")];
            let defines: Vec<&str> = defines.iter().map(String::as_str).collect();
            let k = kernel(DOT_INT, "dot_int", &defines);
            let cpu = compile(&k);
            let (da, db) = (dt(ta), dt(tb));
            let mut a = int_codes(da, m * kk, &mut rng);
            // One row of zeros when there are several (the skipped-row path beside live ones).
            if m > 1 {
                a[kk..2 * kk].fill(0);
            }
            let b = int_codes(db, kk * n, &mut rng);
            // Accumulators next to both ends of i32, so that the sums wrap, and random ones.
            let c: Vec<u64> = (0..m * n)
                .map(|e| {
                    let r = rng.next_u64();
                    let v = match e % 3 {
                        0 => i32::MAX - (r % 1000) as i32,
                        1 => i32::MIN + (r % 1000) as i32,
                        _ => r as i32,
                    };
                    u64::from(v as u32)
                })
                .collect();
            let args = vec![tensor(da, vec![m, kk], a), tensor(db, vec![kk, n], b), tensor(DType::Int(32), vec![m, n], c), tensor(DType::Int(32), vec![m, n], vec![0; m * n])];
            agree(&k, &cpu, &args, &format!("dot_int case {t}.{s} {ta}×{tb} M={m} K={kk} N={n} seed={seed}"));
        }
    }
}

const DOT_FLOAT: &str = r#"
kernel dot_float<TA: type = f16, TB: type = f16, M = 4, K = 32, N = 24>(
    a: global TA[M, K], b: global TB[K, N], c: global f32[M, N], o: out global f32[M, N],
) grid [1] warps 1 {
    store o[0, 0] = dot(load a[0, 0] : [M, K], load b[0, 0] : [K, N], load c[0, 0] : [M, N]);
}
"#;

/// Random finite `f16` codes of every magnitude (subnormals to 65504), both signs.
fn f16_codes(n: usize, rng: &mut SplitMix64) -> Vec<u64> {
    (0..n)
        .map(|_| loop {
            let c = rng.next_u64() & 0xFFFF;
            if c & 0x7C00 != 0x7C00 {
                break c;
            }
        })
        .collect()
}

#[test]
fn f16_dot_in_f32_lanes_agrees_over_the_whole_range() {
    let seed = base_seed();
    let mut rng = SplitMix64(seed);
    let f16 = DType::F16;
    for (s, &(m, kk, n)) in [(3, 32, 24), (2, 64, 40), (16, 16, 16), (1, 32, 128)].iter().enumerate() {
        let defines = [format!("M={m}"), format!("K={kk}"), format!("N={n}")];
        let defines: Vec<&str> = defines.iter().map(String::as_str).collect();
        let k = kernel(DOT_FLOAT, "dot_float", &defines);
        let cpu = compile(&k);
        for case in 0..4 {
            let mut a = f16_codes(m * kk, &mut rng);
            let mut b = f16_codes(kk * n, &mut rng);
            // Case 1: +Inf and −Inf in b (0·Inf and Inf − Inf make the one default NaN);
            // case 2: +NaN codes in a (one NaN sign, so that meeting NaNs cannot differ).
            if case == 1 {
                for _ in 0..kk * n / 16 {
                    let e = (rng.next_u64() % (kk * n) as u64) as usize;
                    b[e] = [0x7C00, 0xFC00][e % 2];
                }
            }
            if case == 2 {
                for _ in 0..m {
                    let e = (rng.next_u64() % (m * kk) as u64) as usize;
                    a[e] = 0x7E00;
                }
            }
            if m > 1 {
                a[kk..2 * kk].fill(0);
            }
            // Accumulators: ±0, near ±f32::MAX (so that a sum overflows), 1.0 (where products
            // of small f16 round away) and random f32 bits of moderate size.
            let c: Vec<u64> = (0..m * n)
                .map(|_| {
                    let r = rng.next_u64();
                    match r % 6 {
                        0 => 0,
                        1 => 0x8000_0000,
                        2 => 0x7F7F_FFF0 | (r >> 32 & 0x8000_0000),
                        3 => 0x3F80_0000,
                        _ => u64::from((((r >> 8) % 2000) as f32 - 1000.0).to_bits()),
                    }
                })
                .collect();
            let args = vec![tensor(f16, vec![m, kk], a), tensor(f16, vec![kk, n], b), tensor(DType::F32, vec![m, n], c), tensor(DType::F32, vec![m, n], vec![0; m * n])];
            agree(&k, &cpu, &args, &format!("dot_float f16 case {s}.{case} M={m} K={kk} N={n} seed={seed}"));
        }
    }
}

/// `bf16` (and `bf16` × `f16`) products can be inexact in `f32` — below its normal range — so
/// these must keep the f64 form: 2⁻⁷⁵ · 2⁻⁷⁵ = 2⁻¹⁵⁰ added to the smallest subnormal 2⁻¹⁴⁹ is a
/// tie that rounds up to 2⁻¹⁴⁸ exactly, while an f32 product would round to 0 first.
#[test]
fn bf16_products_below_f32_range_keep_the_f64_form() {
    let seed = base_seed();
    let mut rng = SplitMix64(seed);
    let (m, kk, n) = (2usize, 16usize, 8usize);
    for (ta, tb) in [("bf16", "bf16"), ("bf16", "f16"), ("f16", "bf16")] {
        let k = kernel(DOT_FLOAT, "dot_float", &[&format!("TA={ta}"), &format!("TB={tb}"), "M=2", "K=16", "N=8"]);
        let cpu = compile(&k);
        let (da, db) = (dt(ta), dt(tb));
        // 2⁻⁷⁵ in bf16 (biased exponent 52); f16 has no 2⁻⁷⁵, so its side uses its smallest
        // subnormal 2⁻²⁴ and the bf16 side 2⁻¹²⁶ (the product is 2⁻¹⁵⁰ either way).
        let code = |d: DType, other_is_f16: bool| if d == DType::F16 { 0x0001u64 } else if other_is_f16 { 0x0080 } else { 52 << 7 };
        let (ca, cb) = (code(da, db == DType::F16), code(db, da == DType::F16));
        let mut a = vec![0u64; m * kk];
        let mut b = vec![0u64; kk * n];
        // One product per output: a[r, r] · b[r, j].
        for r in 0..m {
            a[r * kk + r] = ca;
            for j in 0..n {
                b[r * n + j] = cb;
            }
        }
        // Other rows of b random, met only by zeros of a.
        for (e, x) in b.iter_mut().enumerate().skip(m * n) {
            *x = rng.next_u64() & 0x3FFF | (e as u64 & 1) << 15;
        }
        let c = vec![1u64; m * n];
        let args = vec![tensor(da, vec![m, kk], a), tensor(db, vec![kk, n], b), tensor(DType::F32, vec![m, n], c), tensor(DType::F32, vec![m, n], vec![0; m * n])];
        let mut want = args.clone();
        tilc_vm::run(&k, &mut want).expect("the interpreter runs");
        let ArgValue::Tensor(o) = &want[3] else { unreachable!() };
        assert!(o.codes.iter().all(|&c| c == 2), "{ta}×{tb}: the interpreter's sums are not 2⁻¹⁴⁸: {:?}", &o.codes[..4]);
        agree(&k, &cpu, &args, &format!("dot_float {ta}×{tb} seed={seed}"));
    }
}

/// `f32` × `f32` where at most two rows of `a` are nonzero reads b's f32 codes directly (else it
/// converts b to f64 first): 1, 2 and 3 live rows among zero ones, values of mixed magnitudes
/// so that every step rounds, columns 24 (a block of 16 and a rest of 8).
#[test]
fn f32_dot_reads_b_directly_for_few_live_rows() {
    let seed = base_seed();
    let mut rng = SplitMix64(seed);
    let (m, kk, n) = (8usize, 16usize, 24usize);
    let k = kernel(DOT_FLOAT, "dot_float", &["TA=f32", "TB=f32", "M=8", "K=16", "N=24"]);
    let cpu = compile(&k);
    let mut value = |scale: f64| u64::from((((rng.next_f64() * 2.0 - 1.0) * scale) as f32).to_bits());
    for live in [1usize, 2, 3] {
        let mut a = vec![0u64; m * kk];
        for r in 0..live {
            let row = (r * 3 + 1) % m;
            for p in 0..kk {
                a[row * kk + p] = value([1e-3, 1.0, 1e4][p % 3]);
            }
        }
        let b: Vec<u64> = (0..kk * n).map(|e| value([1.0, 1e-5, 3e3][e % 3])).collect();
        let c: Vec<u64> = (0..m * n).map(|_| value(100.0)).collect();
        let args = vec![tensor(DType::F32, vec![m, kk], a), tensor(DType::F32, vec![kk, n], b), tensor(DType::F32, vec![m, n], c), tensor(DType::F32, vec![m, n], vec![0; m * n])];
        agree(&k, &cpu, &args, &format!("dot_float f32 live rows {live} seed={seed}"));
    }
}
