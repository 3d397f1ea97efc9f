//! Every instruction kind the interpreter supports, on small kernels written in the language,
//! run on seeded random inputs at ragged shapes: the CPU backend must give exactly the
//! interpreter's outputs.

mod common;
use common::*;
use tilc_vm::ArgValue;

/// Runs kernel `name` of `src` for each define set and each (m, n), with extra scalars.
fn sweep(src: &str, name: &str, define_sets: &[Vec<String>], sizes: &[(i64, i64)], extra: &[(&str, ArgValue)]) {
    let seed = base_seed();
    for (d, defines) in define_sets.iter().enumerate() {
        let defs: Vec<&str> = defines.iter().map(String::as_str).collect();
        let k = kernel(src, name, &defs);
        let cpu = compile(&k);
        for (c, &(m, n)) in sizes.iter().enumerate() {
            let s = seed + 100 * d as u64 + c as u64;
            let mut scalars = vec![("m", ArgValue::Int(m)), ("n", ArgValue::Int(n))];
            scalars.extend(extra.iter().cloned());
            let args = random_args(&k, &scalars, s);
            agree(&k, &cpu, &args, &format!("{name} {defines:?} m={m} n={n} seed={s}"));
        }
    }
}

fn types(ts: &[&str]) -> Vec<Vec<String>> {
    ts.iter().map(|t| vec![format!("T={t}")]).collect()
}

const SIZES: &[(i64, i64)] = &[(1, 16), (5, 19), (8, 16), (13, 40)];

const INT_OPS: &str = r#"
kernel int_ops<T: type = i8, BM = 4, BN = 16>(
    m: i32, n: i32,
    a: global T[m, n], b: global T[m, n], bcol: global T[m, 1],
    o1: out global T[m, n], o2: out global T[m, n], o3: out global T[m, n], o4: out global T[m, n],
    o5: out global T[m, n], o6: out global T[m, n], o7: out global T[m, n], o8: out global T[m, n],
    o9: out global T[m, n], o10: out global T[m, n],
    c1: out global u1[m, n], c2: out global u1[m, n], c3: out global u1[m, n],
) grid [cdiv(m, BM), cdiv(n, BN)] warps 1 {
    let om = block.x * BM;
    let on = block.y * BN;
    let x = load a[om, on] : [BM, BN];
    let y = load b[om, on] : [BM, BN];
    let yc = load bcol[om, 0] : [BM, 1];
    store o1[om, on] = x + y;
    store o2[om, on] = x - yc;
    store o3[om, on] = x * y;
    store o4[om, on] = min(x, y) + max(x, yc);
    store o5[om, on] = (x & y) | (x ^ yc);
    store o6[om, on] = -x;
    store o7[om, on] = abs(y);
    store o8[om, on] = ~x;
    store o9[om, on] = where(x > y, x, y);
    store o10[om, on] = where(x == yc, y, x);
    store c1[om, on] = x < y;
    store c2[om, on] = (x <= yc) & (x != y);
    store c3[om, on] = !(x >= y);
}
"#;

#[test]
fn integer_elementwise_ops_agree() {
    sweep(INT_OPS, "int_ops", &types(&["i8", "u8", "i32", "u4", "i3", "u16", "i1"]), SIZES, &[]);
}

const INT_DIV: &str = r#"
kernel int_div<T: type = i32, BM = 4, BN = 16>(
    m: i32, n: i32,
    a: global T[m, n], b: global T[m, n], s: global u8[m, n],
    o1: out global T[m, n], o2: out global T[m, n], o3: out global T[m, n],
    o4: out global T[m, n], o5: out global T[m, n],
) grid [cdiv(m, BM), cdiv(n, BN)] warps 1 {
    let om = block.x * BM;
    let on = block.y * BN;
    let x = load a[om, on] : [BM, BN];
    let y = load b[om, on] : [BM, BN] | 1;
    let sh = cast<T>(load s[om, on] : [BM, BN] & 15);
    store o1[om, on] = x / y;
    store o2[om, on] = x % y;
    store o3[om, on] = cdiv(x, y);
    store o4[om, on] = x << sh;
    store o5[om, on] = x >> sh;
}
"#;

#[test]
fn integer_division_and_shifts_agree() {
    sweep(INT_DIV, "int_div", &types(&["i32", "i8", "u8", "u16"]), SIZES, &[]);
}

const FLOAT_OPS: &str = r#"
kernel float_ops<T: type = f32, BM = 4, BN = 16>(
    m: i32, n: i32, alpha: f32,
    a: global T[m, n], b: global T[m, n], brow: global T[1, n],
    o1: out global T[m, n], o2: out global T[m, n], o3: out global T[m, n], o4: out global T[m, n],
    o5: out global T[m, n], o6: out global T[m, n], o7: out global T[m, n], o8: out global T[m, n],
    o9: out global T[m, n], o10: out global T[m, n], o11: out global T[m, n],
    c1: out global u1[m, n], c2: out global u1[m, n],
) grid [cdiv(m, BM), cdiv(n, BN)] warps 1 {
    let om = block.x * BM;
    let on = block.y * BN;
    let x = load a[om, on] : [BM, BN];
    let y = load b[om, on] : [BM, BN];
    let yr = load brow[0, on] : [1, BN];
    store o1[om, on] = x + y * yr;
    store o2[om, on] = (x - y) / yr;
    store o3[om, on] = min(x, y) - max(x, yr);
    store o4[om, on] = sqrt(abs(x)) + -y;
    store o5[om, on] = exp(x) + exp2(y);
    store o6[om, on] = log(abs(x)) - log2(abs(yr));
    store o7[om, on] = rsqrt(abs(y));
    store o8[om, on] = floor(x * 8.0) + ceil(y * 8.0) + trunc(x * 5.0) + round(y * 3.0);
    store o9[om, on] = x % yr;
    store o10[om, on] = where(x > y, x, yr);
    store o11[om, on] = x * cast<T>(alpha);
    store c1[om, on] = (x < y) | (x == yr);
    store c2[om, on] = (x >= y) & (x != yr);
}
"#;

#[test]
fn float_elementwise_ops_agree() {
    sweep(FLOAT_OPS, "float_ops", &types(&["f32", "f16", "bf16", "f8e4m3"]), SIZES, &[("alpha", ArgValue::Float(0.3))]);
}

const CASTS: &str = r#"
kernel casts<BM = 4, BN = 16>(
    m: i32, n: i32, seed: i64,
    a: global f32[m, n], w: global i8[m, n], u: global u4[m, n], ix: global i32[m, n],
    o1: out global i8[m, n], o2: out global u4[m, n], o3: out global f16[m, n], o4: out global bf16[m, n],
    o5: out global f8e5m2[m, n], o6: out global f4e2m1[m, n], o7: out global e8m0[m, n], o8: out global f32[m, n],
    o9: out global f32[m, n], o10: out global u4[m, n], o11: out global i8[m, n], o12: out global f6e2m3[m, n],
    o13: out global f4e2m1[m, n], o14: out global i8[m, n], o15: out global ue4m3[m, n], o16: out global f32[m, n],
) grid [cdiv(m, BM), cdiv(n, BN)] warps 1 {
    let om = block.x * BM;
    let on = block.y * BN;
    let x = load a[om, on] : [BM, BN] * 100.0;
    let y = load w[om, on] : [BM, BN];
    let z = load u[om, on] : [BM, BN];
    store o1[om, on] = cast<i8>(x);
    store o2[om, on] = cast<u4>(x);
    store o3[om, on] = cast<f16>(x);
    store o4[om, on] = cast<bf16>(x, round = rtz);
    store o5[om, on] = cast<f8e5m2>(x, round = rup);
    store o6[om, on] = cast<f4e2m1>(x / 16.0, round = stochastic(seed));
    store o7[om, on] = cast<e8m0>(abs(x));
    store o8[om, on] = cast<f32>(cast<f16>(x, round = rdown)) + cast<f32>(y) + cast<f32>(z);
    store o9[om, on] = cast<f32>(cast<f8e4m3>(x));
    store o10[om, on] = cast<u4>(y);
    store o11[om, on] = cast<i8>(y * y, sat = true);
    store o12[om, on] = cast<f6e2m3>(x / 20.0, round = stochastic(seed), saturate = false);
    let idx = load ix[om, on] : [BM, BN];
    store o13[om, on] = cast<f4e2m1>(x / 16.0, round = stochastic(7, idx));
    store o14[om, on] = cast<i8>(x, round = rtz, sat = false);
    store o15[om, on] = cast<ue4m3>(x, round = stochastic(seed));
    store o16[om, on] = cast<f32>(cast<i32>(x * 1000000.0, round = rup) + 3);
}
"#;

#[test]
fn casts_agree() {
    sweep(CASTS, "casts", &[vec![]], SIZES, &[("seed", ArgValue::Int(99))]);
}

const REDUCE: &str = r#"
kernel reduce<T: type = f32, BM = 4, BN = 16>(
    m: i32, n: i32,
    a: global T[m, n],
    s0: out global T[1, n], s1: out global T[m, 1], mx: out global T[m], mn: out global T[m],
    am: out global T[m], mx0: out global T[1, n],
) grid [cdiv(m, BM), 1] warps 1 {
    let om = block.x * BM;
    let x = load a[om, 0] : [BM, BN];
    if block.x == 0 {
        store s0[0, 0] = sum(x, axis = 0, keepdim = true);
        store mx0[0, 0] = reshape(max(x, axis = 0), [1, BN]);
    }
    store s1[om, 0] = sum(x, axis = 1, keepdim = true);
    store mx[om] = max(x, axis = 1);
    store mn[om] = min(x, axis = 1);
    store am[om] = absmax(x, axis = 1);
}
"#;

#[test]
fn reductions_agree() {
    let sets: Vec<Vec<String>> = ["f32", "f16", "i8", "u8", "i32"].iter().map(|t| vec![format!("T={t}"), "BN=16".into()]).collect();
    sweep(REDUCE, "reduce", &sets, &[(1, 16), (7, 16), (8, 16)], &[]);
}

const MOVES: &str = r#"
kernel moves<BM = 4, BN = 16>(
    m: i32, n: i32, fill: i32,
    a: global f16[m, n], q: global u8[m, n],
    t: out global f16[n, m], r: out global f16[m, n], bc: out global f16[m, n],
    v1: out global u4[m, n * 2], v2: out global i16[m, n], io: out global i32[m, n], fl: out global i32[m, n],
    t3: out global f16[m, n],
) grid [cdiv(m, BM), cdiv(n, BN)] warps 1 {
    let om = block.x * BM;
    let on = block.y * BN;
    let x = load a[om, on] : [BM, BN];
    store t[on, om] = transpose(x);
    store r[om, on] = reshape(reshape(x, [BN, BM]), [BM, BN]);
    store bc[om, on] = broadcast(load a[om, on] : [1, BN], [BM, BN]);
    let bytes = load q[om, on] : [BM, BN];
    store v1[om, on * 2] = view<u4>(bytes);
    store v2[om, on] = view<i16, [BM, BN]>(x);
    store io[om, on] = full<i32>[BM, BN](block.y);
    store fl[om, on] = full<i32>[BM, BN](fill + block.x);
    let x3 = reshape(x, [2, BM / 2, BN]);
    store t3[om, on] = reshape(transpose(transpose(x3, [2, 0, 1]), [1, 2, 0]), [BM, BN]);
}
"#;

#[test]
fn data_movement_agrees() {
    sweep(MOVES, "moves", &[vec![]], SIZES, &[("fill", ArgValue::Int(-7))]);
}

const DOTS: &str = r#"
kernel dots<TA: type = f16, TB: type = f16, BM = 4, BN = 16, BK = 8>(
    m: i32, n: i32,
    a: global TA[m, BK], b: global TB[BK, n], c: global f32[m, n],
    o: out global f32[m, n],
) grid [cdiv(m, BM), cdiv(n, BN)] warps 1 {
    let om = block.x * BM;
    let on = block.y * BN;
    let x = load a[om, 0] : [BM, BK];
    let y = load b[0, on] : [BK, BN];
    store o[om, on] = dot(x, y, load c[om, on] : [BM, BN]);
}

kernel idots<TA: type = i8, TB: type = i8, BM = 4, BN = 16, BK = 8>(
    m: i32, n: i32,
    a: global TA[m, BK], b: global TB[BK, n], c: global i32[m, n],
    o: out global i32[m, n],
) grid [cdiv(m, BM), cdiv(n, BN)] warps 1 {
    let om = block.x * BM;
    let on = block.y * BN;
    let x = load a[om, 0] : [BM, BK];
    let y = load b[0, on] : [BK, BN];
    store o[om, on] = dot(x, y, load c[om, on] : [BM, BN]);
}
"#;

#[test]
fn dots_agree() {
    let f: Vec<Vec<String>> = [("f16", "f16", 16), ("f32", "f32", 16), ("bf16", "f32", 6), ("f8e4m3", "f16", 15)]
        .iter()
        .map(|(a, b, bn)| vec![format!("TA={a}"), format!("TB={b}"), format!("BN={bn}"), "BK=24".into()])
        .collect();
    sweep(DOTS, "dots", &f, SIZES, &[]);
    let i: Vec<Vec<String>> = [("i8", "i8", 16), ("u4", "i8", 16), ("i8", "u8", 7), ("i4", "i2", 13)]
        .iter()
        .map(|(a, b, bn)| vec![format!("TA={a}"), format!("TB={b}"), format!("BN={bn}"), "BK=40".into()])
        .collect();
    sweep(DOTS, "idots", &i, SIZES, &[]);
}

const CONTROL: &str = r#"
kernel control<BM = 4, BN = 16, BK = 8>(
    m: i32, n: i32, k: i32, alpha: f32, big: i64,
    a: global f32[m, k], o: out global f32[m, n], cnt: out global i32[m, n],
) grid [cdiv(m, BM), cdiv(n, BN)] warps 1 {
    assume(k % BK == 0);
    let om = block.x * BM;
    let on = block.y * BN;
    let s = shared f32[2, BM, BK];
    let mut acc = zeros<f32>[BM, BN];
    let mut steps = 0;
    copy_async s[0, 0, 0] = a[om, 0] : [1, BM, BK];
    wait(0);
    sync;
    for kk in range(0, k, BK) {
        let st = (kk / BK) % 2;
        if kk + BK < k {
            copy_async s[1 - st, 0, 0] = a[om, kk + BK] : [1, BM, BK];
        }
        let t = reshape(load s[st, 0, 0] : [1, BM, BK], [BM, BK]);
        let col = sum(t, axis = 1, keepdim = true);
        acc = acc + col * alpha;
        steps = steps + 1;
        wait(0);
        sync;
    }
    let mut i = 0;
    while i * i < steps + 3 {
        i = i + 1;
    }
    let half = cast<f32>(cast<i32>(big % 1000) - i) * 0.5;
    store o[om, on] = acc + half;
    store s[0, 0, 0] = zeros<f32>[1, BM, BK];
    let back = load s[0, 1, 2] : [1, 2, 3];
    store cnt[om, on] = full<i32>[BM, BN](steps * 10 + i) + cast<i32>(sum(sum(back, axis = 2), axis = 1, keepdim = true));
}
"#;

#[test]
fn control_flow_shared_and_scalars_agree() {
    let seed = base_seed();
    let k = kernel(CONTROL, "control", &[]);
    let cpu = compile(&k);
    for (c, &(m, n, kk)) in [(1, 16, 8), (5, 19, 24), (9, 40, 40)].iter().enumerate() {
        let s = seed + c as u64;
        let scalars = [("m", ArgValue::Int(m)), ("n", ArgValue::Int(n)), ("k", ArgValue::Int(kk)), ("alpha", ArgValue::Float(0.1)), ("big", ArgValue::Int(123_456_789_012))];
        let args = random_args(&k, &scalars, s);
        agree(&k, &cpu, &args, &format!("control m={m} n={n} k={kk} seed={s}"));
    }
    // A failing assume and a non-multiple k fail in the same block at the same instruction.
    let scalars = [("m", ArgValue::Int(5)), ("n", ArgValue::Int(19)), ("k", ArgValue::Int(12)), ("alpha", ArgValue::Float(0.1)), ("big", ArgValue::Int(1))];
    let args = random_args(&k, &scalars, seed);
    agree(&k, &cpu, &args, "control with k % BK != 0");
}

const ERRORS: &str = r#"
kernel div0<BM = 4, BN = 16>(m: i32, n: i32, a: global i32[m, n], b: global u2[m, n], o: out global i32[m, n]) grid [cdiv(m, BM), cdiv(n, BN)] warps 1 {
    let om = block.x * BM;
    let on = block.y * BN;
    store o[om, on] = load a[om, on] : [BM, BN] / cast<i32>(load b[om, on] : [BM, BN]);
}
"#;

#[test]
fn run_time_errors_agree() {
    let seed = base_seed();
    let k = kernel(ERRORS, "div0", &[]);
    let cpu = compile(&k);
    let args = random_args(&k, &[("m", ArgValue::Int(9)), ("n", ArgValue::Int(40))], seed);
    let mut got = args.clone();
    let err = cpu.launch(&mut got).expect_err("u2 divisors include zeros");
    assert!(err.message.contains("division by zero"), "{err}");
    agree(&k, &cpu, &args, "division by zero");
}

#[test]
fn argument_errors_are_the_interpreters() {
    let k = kernel(ERRORS, "div0", &[]);
    let cpu = compile(&k);
    let mut args = random_args(&k, &[("m", ArgValue::Int(9)), ("n", ArgValue::Int(40))], 1);
    args[0] = ArgValue::Int(10);
    let want = tilc_vm::run(&k, &mut args.clone()).expect_err("wrong shape");
    let got = cpu.launch(&mut args).expect_err("wrong shape");
    assert_eq!(want, got);
}

/// `iota`, built in the IR directly (the parser accepts it too; this pins the backend alone).
#[test]
fn iota_agrees() {
    use tilc_base::Span;
    use tilc_vm::{InstKind, Kernel, SymExpr};
    for (dtype, shape, axis) in [("i32", vec![3, 5], 0), ("u4", vec![3, 17], 1), ("i8", vec![2, 3, 4], 1)] {
        let d = dt(dtype);
        let mut k = Kernel::new("iota");
        let dims: Vec<SymExpr> = shape.iter().map(|&e| SymExpr::Const(e as i64)).collect();
        let g = k.add_global_param("o", d, dims, true, Span::default());
        let mut body = Vec::new();
        let (i, v) = k.build(InstKind::Iota { dtype: d, shape: shape.clone(), axis }, Span::new(0, 1)).expect("iota types");
        body.push(i);
        let mut offsets = Vec::new();
        for _ in &shape {
            let c = k.add_inst(InstKind::Const(tilc_vm::ScalarConst::Int(0)), Some(tilc_vm::Type::Scalar(dt("i32"))), Span::default());
            body.push(c);
            offsets.push(k.insts[c].result.expect("a result"));
        }
        let (st, _) = k.build(InstKind::StoreGlobal { global: g, offsets, value: v.expect("a result") }, Span::new(1, 2)).expect("store types");
        body.push(st);
        k.body = body;
        tilc_vm::verify(&k).expect("a valid kernel");
        let cpu = compile(&k);
        let args = random_args(&k, &[], 3);
        agree(&k, &cpu, &args, &format!("iota {dtype} {shape:?} axis {axis}"));
    }
}

/// Signed zeros, infinities, NaN and subnormals in every pair, through the float kernel: the
/// NaN rules of min/max, the sign of zero results and NaN encodings must match too.
#[test]
fn float_specials_agree() {
    let specials = [0.0, -0.0, 1.0, -1.5, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 1e-40, -3.0e38, 0.25];
    let n = specials.len();
    for ty in ["f32", "f16", "bf16"] {
        let k = kernel(FLOAT_OPS, "float_ops", &[&format!("T={ty}")]);
        let cpu = compile(&k);
        let d = dt(ty);
        let mut args = random_args(&k, &[("m", ArgValue::Int(n as i64)), ("n", ArgValue::Int(n as i64)), ("alpha", ArgValue::Float(-0.0))], 5);
        let rows: Vec<f64> = (0..n * n).map(|e| specials[e / n]).collect();
        let cols: Vec<f64> = (0..n * n).map(|e| specials[e % n]).collect();
        let enc = |v: &[f64], shape: Vec<usize>| {
            let codes = v.iter().map(|&x| d.encode(x, tilc_dtype::Rounding::NearestEven, tilc_dtype::Overflow::NonSaturating)).collect();
            ArgValue::Tensor(tilc_vm::HostTensor { dtype: d, shape, codes })
        };
        args[3] = enc(&rows, vec![n, n]);
        args[4] = enc(&cols, vec![n, n]);
        args[5] = enc(&specials, vec![1, n]);
        agree(&k, &cpu, &args, &format!("float specials {ty}"));
    }
}
