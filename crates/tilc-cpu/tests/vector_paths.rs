//! The CPU backend's vector paths against the interpreter: `f16`/`bf16` ↔ `f32` casts four at
//! a time (every half code decoded; encoding at every rounding midpoint, its neighbours and
//! the specials; saturating or not), integer elementwise operations and casts in `i32x4` and `i8x16` lanes, and
//! sub-byte loads spread word-at-a-time.

mod common;
use common::*;
use tilc_dtype::DType;
use tilc_vm::{ArgValue, HostTensor, SplitMix64};

fn tensor(dtype: DType, shape: Vec<usize>, codes: Vec<u64>) -> ArgValue {
    ArgValue::Tensor(HostTensor { dtype, shape, codes })
}

const HALVES: &str = r#"
kernel halves<H: type = f16, BN = 64>(
    n: i32, x: global f32[n], h: global H[n],
    enc: out global H[n], enc_wrap: out global H[n], dec: out global f32[n], dec_wrap: out global f32[n],
) grid [cdiv(n, BN)] warps 1 {
    let o = block.x * BN;
    let xs = load x[o] : [BN];
    let hs = load h[o] : [BN];
    store enc[o] = cast<H>(xs);
    store enc_wrap[o] = cast<H>(xs, sat = false);
    store dec[o] = cast<f32>(hs);
    store dec_wrap[o] = cast<f32>(hs, sat = false);
}
"#;

/// f32 codes around every rounding decision of `h` (a 16-bit format whose codes are ordered
/// by magnitude): for each half code, the exact midpoint to the next code, one f32 ulp either
/// side, and the code's own value; then the specials and random bit patterns.
fn encode_probes(h: DType, rng: &mut SplitMix64) -> Vec<u64> {
    let mut out = Vec::new();
    for c in 0..0x8000u64 {
        let (v, next) = (h.decode(c), h.decode(c + 1));
        if !v.is_finite() {
            continue;
        }
        let mid = if next.is_finite() { (v + next) / 2.0 } else { v * 1.000_5 };
        let m = u64::from((mid as f32).to_bits());
        let sign = if c % 2 == 0 { 0 } else { 0x8000_0000 };
        out.extend([m | sign, (m + 1) | sign, m.saturating_sub(1) | sign, u64::from((v as f32).to_bits()) | sign]);
    }
    out.extend([0, 0x8000_0000, 0x7F80_0000, 0xFF80_0000, 0x7FC0_0000, 0xFFC0_0001, 0x7F80_0001, 0x0000_0001, 0x8080_0000, 0x7F7F_FFFF, 0x477F_F000, 0x477F_EFFF, 0x3300_0000, 0x3300_0001]);
    for _ in 0..4096 {
        out.push(rng.next_u64() & 0xFFFF_FFFF);
    }
    out.resize(out.len().div_ceil(64) * 64, 0x3F80_0000);
    out
}

#[test]
fn half_casts_agree_on_every_code_and_rounding_midpoint() {
    let seed = base_seed();
    let mut rng = SplitMix64(seed);
    for name in ["f16", "bf16"] {
        let h = dt(name);
        let k = kernel(HALVES, "halves", &[&format!("H={name}")]);
        let cpu = compile(&k);
        let x = encode_probes(h, &mut rng);
        let n = x.len();
        let codes: Vec<u64> = (0..n as u64).map(|i| i & 0xFFFF).collect();
        let args = vec![ArgValue::Int(n as i64), tensor(DType::F32, vec![n], x), tensor(h, vec![n], codes), tensor(h, vec![n], vec![0; n]), tensor(h, vec![n], vec![0; n]), tensor(DType::F32, vec![n], vec![0; n]), tensor(DType::F32, vec![n], vec![0; n])];
        agree(&k, &cpu, &args, &format!("{name} casts, seed={seed}"));
    }
}

const INTS: &str = r#"
kernel ints<T: type = u3, U: type = i8, BM = 4, BN = 32>(
    m: i32, n: i32, s: i32,
    x: global T[m, n], y: global U[m, n], r: global U[m, 1],
    o1: out global U[m, n], o2: out global U[m, n], o3: out global U[m, n],
    o4: out global U[m, n], o5: out global U[m, n], o6: out global U[m, n],
) grid [cdiv(m, BM), cdiv(n, BN)] warps 1 {
    let om = block.x * BM;
    let on = block.y * BN;
    let a = cast<U>(load x[om, on] : [BM, BN]);
    let b = load y[om, on] : [BM, BN];
    let c = load r[om, 0] : [BM, 1];
    store o1[om, on] = a;
    store o2[om, on] = a + b;
    store o3[om, on] = a - 4;
    store o4[om, on] = (b & a) ^ c | b;
    store o5[om, on] = a * b - c;
    store o6[om, on] = cast<U>(cast<i32>(b) * 77 + cast<i32>(a), sat = true);
}
"#;

#[test]
fn integer_vector_operations_and_casts_agree() {
    let seed = base_seed();
    // Byte lanes (both one-byte types, widening and narrowing casts, signed sources that need
    // sign extension fall back to i32 lanes), i32 lanes (two-byte and four-byte containers).
    let cases = [("u3", "i8"), ("i3", "i8"), ("i8", "u5"), ("u8", "i4"), ("i4", "i16"), ("u6", "u16"), ("i8", "i32"), ("u16", "u32"), ("i32", "i8")];
    for (case, (t, u)) in cases.iter().enumerate() {
        let k = kernel(INTS, "ints", &[&format!("T={t}"), &format!("U={u}")]);
        let cpu = compile(&k);
        for (m, n) in [(4i64, 32i64), (7, 50)] {
            let s = seed.wrapping_add((case * 10) as u64 + m as u64);
            let args = random_args(&k, &[("m", ArgValue::Int(m)), ("n", ArgValue::Int(n)), ("s", ArgValue::Int(3))], s);
            agree(&k, &cpu, &args, &format!("ints T={t} U={u} m={m} n={n} seed={s}"));
        }
    }
}

const UNPACK: &str = r#"
kernel unpack<T: type = u3, BN = 64>(m: i32, n: i32, x: global T[m, n], y: out global i32[m, n])
grid [cdiv(n, BN)] warps 1 {
    let on = block.x * BN;
    for i in range(0, m, 1) {
        store y[i, on] = cast<i32>(load x[i, on] : [1, BN]);
    }
}
"#;

#[test]
fn sub_byte_words_spread_like_the_interpreter() {
    let seed = base_seed();
    for (case, t) in ["u1", "u2", "i3", "u4", "i5", "u6", "i7"].iter().enumerate() {
        let k = kernel(UNPACK, "unpack", &[&format!("T={t}")]);
        let cpu = compile(&k);
        // Odd row lengths start rows at every bit offset; ragged edges use the scalar tail.
        for n in [64i64, 100, 129] {
            let s = seed.wrapping_add((case * 7) as u64 + n as u64);
            let args = random_args(&k, &[("m", ArgValue::Int(3)), ("n", ArgValue::Int(n))], s);
            agree(&k, &cpu, &args, &format!("unpack T={t} n={n} seed={s}"));
        }
    }
}
