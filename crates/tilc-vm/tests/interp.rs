//! Interpreter tests, one or more per instruction, on kernels built directly in the IR (so the
//! front end is not involved). Expected values come from hand-written references in this file.

use tilc_base::Span;
use tilc_dtype::{DType, Overflow, Rounding};
use tilc_vm::*;

fn d(name: &str) -> DType {
    DType::parse(name).unwrap()
}

/// A kernel under construction: instructions go into the top-level body in order.
struct B {
    k: Kernel,
    body: Vec<Inst>,
}

impl B {
    fn new() -> B {
        B { k: Kernel::new("t"), body: Vec::new() }
    }
    fn span(n: usize) -> Span {
        Span::new(n, n + 1)
    }
    fn op(&mut self, kind: InstKind) -> Value {
        let n = self.k.insts.len();
        let (i, v) = self.k.build(kind, B::span(n)).unwrap_or_else(|e| panic!("{e:?}"));
        self.body.push(i);
        v.unwrap()
    }
    fn eff(&mut self, kind: InstKind) -> Inst {
        let n = self.k.insts.len();
        let (i, _) = self.k.build(kind, B::span(n)).unwrap_or_else(|e| panic!("{e:?}"));
        self.body.push(i);
        i
    }
    fn ci(&mut self, dt: DType, x: i64) -> Value {
        let n = self.k.insts.len();
        let i = self.k.add_inst(InstKind::Const(ScalarConst::Int(x)), Some(Type::Scalar(dt)), B::span(n));
        self.body.push(i);
        self.k.insts[i].result.unwrap()
    }
    fn cf(&mut self, dt: DType, x: f64) -> Value {
        let i = self.k.add_inst(InstKind::Const(ScalarConst::Float(x)), Some(Type::Scalar(dt)), Span::default());
        self.body.push(i);
        self.k.insts[i].result.unwrap()
    }
    fn i32(&mut self, x: i64) -> Value {
        self.ci(DType::Int(32), x)
    }
    fn finish(mut self) -> Kernel {
        self.k.body = std::mem::take(&mut self.body);
        verify(&self.k).unwrap_or_else(|e| panic!("{e}\n{}", print_kernel(&self.k)));
        self.k
    }
}

fn tensor(dt: DType, shape: &[usize], vals: &[f64]) -> HostTensor {
    HostTensor::from_f64(dt, shape.to_vec(), vals)
}

fn out_of(args: &[ArgValue], i: usize) -> Vec<f64> {
    match &args[i] {
        ArgValue::Tensor(t) => t.to_f64(),
        _ => panic!("not a tensor"),
    }
}

/// `y[m, n] = x[m, n]` copied in [4, 4] tiles over a grid; out-of-range parts are masked.
fn copy_kernel(dt: DType) -> Kernel {
    let mut b = B::new();
    let m = b.k.add_scalar_param("m", DType::Int(32));
    let n = b.k.add_scalar_param("n", DType::Int(32));
    let x = b.k.add_global_param("x", dt, vec![SymExpr::Param(m), SymExpr::Param(n)], false, Span::default());
    let y = b.k.add_global_param("y", dt, vec![SymExpr::Param(m), SymExpr::Param(n)], true, Span::default());
    b.k.grid = vec![
        SymExpr::bin(SymOp::CeilDiv, SymExpr::Param(m), SymExpr::Const(4)),
        SymExpr::bin(SymOp::CeilDiv, SymExpr::Param(n), SymExpr::Const(4)),
    ];
    let bx = b.op(InstKind::BlockIdx { axis: 0 });
    let by = b.op(InstKind::BlockIdx { axis: 1 });
    let four = b.i32(4);
    let om = b.op(InstKind::Binary { op: BinaryOp::Mul, a: bx, b: four });
    let on = b.op(InstKind::Binary { op: BinaryOp::Mul, a: by, b: four });
    let t = b.op(InstKind::LoadGlobal { global: x, offsets: vec![om, on], shape: vec![4, 4] });
    b.eff(InstKind::StoreGlobal { global: y, offsets: vec![om, on], value: t });
    b.finish()
}

#[test]
fn load_store_cover_ragged_edges_exactly() {
    for (m, n) in [(1usize, 1usize), (5, 6), (8, 8), (3, 9)] {
        let dt = d("f6e3m2");
        let k = copy_kernel(dt);
        let vals: Vec<f64> = (0..m * n).map(|i| (i % 7) as f64 - 3.0).collect();
        let poison = HostTensor::filled(dt, vec![m, n], 0b011111);
        let mut args = vec![ArgValue::Int(m as i64), ArgValue::Int(n as i64), ArgValue::Tensor(tensor(dt, &[m, n], &vals)), ArgValue::Tensor(poison)];
        let s = run(&k, &mut args).unwrap();
        assert_eq!(s.grid, [m.div_ceil(4) as u32, n.div_ceil(4) as u32, 1]);
        assert_eq!(out_of(&args, 3), vals, "m={m} n={n}");
    }
}

#[test]
fn masked_load_reads_zero_and_masked_store_skips() {
    // z[4, 4] (out) = the [4, 4] tile of x[3, 3] at offset (-1, 1): row 0 and column 3 are outside.
    let mut b = B::new();
    let x = b.k.add_global_param("x", DType::Int(8), vec![SymExpr::Const(3), SymExpr::Const(3)], false, Span::default());
    let z = b.k.add_global_param("z", DType::Int(8), vec![SymExpr::Const(4), SymExpr::Const(4)], true, Span::default());
    let w = b.k.add_global_param("w", DType::Int(8), vec![SymExpr::Const(2), SymExpr::Const(2)], true, Span::default());
    let (mone, one, zero) = (b.i32(-1), b.i32(1), b.i32(0));
    let t = b.op(InstKind::LoadGlobal { global: x, offsets: vec![mone, one], shape: vec![4, 4] });
    b.eff(InstKind::StoreGlobal { global: z, offsets: vec![zero, zero], value: t });
    // Storing the [4, 4] tile at (1, 1) of a [2, 2] tensor writes only its top-left element.
    b.eff(InstKind::StoreGlobal { global: w, offsets: vec![one, one], value: t });
    let k = b.finish();
    let xv: Vec<f64> = (1..=9).map(f64::from).collect();
    let mut args = vec![
        ArgValue::Tensor(tensor(DType::Int(8), &[3, 3], &xv)),
        ArgValue::Tensor(HostTensor::filled(DType::Int(8), vec![4, 4], 0x55)),
        ArgValue::Tensor(HostTensor::filled(DType::Int(8), vec![2, 2], 0x55)),
    ];
    run(&k, &mut args).unwrap();
    #[rustfmt::skip]
    let want = [0., 0., 0., 0.,
                2., 3., 0., 0.,
                5., 6., 0., 0.,
                8., 9., 0., 0.];
    assert_eq!(out_of(&args, 1), want);
    assert_eq!(out_of(&args, 2), [85., 85., 85., 0.]);
}

fn binary_kernel(dt: DType, op: BinaryOp, n: usize) -> Kernel {
    let mut b = B::new();
    let x = b.k.add_global_param("x", dt, vec![SymExpr::Const(n as i64)], false, Span::default());
    let y = b.k.add_global_param("y", dt, vec![SymExpr::Const(n as i64)], false, Span::default());
    let rt = if op.is_comparison() { d("u1") } else { dt };
    let z = b.k.add_global_param("z", rt, vec![SymExpr::Const(n as i64)], true, Span::default());
    let zero = b.i32(0);
    let a = b.op(InstKind::LoadGlobal { global: x, offsets: vec![zero], shape: vec![n] });
    let c = b.op(InstKind::LoadGlobal { global: y, offsets: vec![zero], shape: vec![n] });
    let r = b.op(InstKind::Binary { op, a, b: c });
    b.eff(InstKind::StoreGlobal { global: z, offsets: vec![zero], value: r });
    b.finish()
}

fn run_binary(dt: DType, op: BinaryOp, a: &[f64], bv: &[f64]) -> Result<Vec<f64>, RunError> {
    let n = a.len();
    let k = binary_kernel(dt, op, n);
    let rt = if op.is_comparison() { d("u1") } else { dt };
    let mut args = vec![
        ArgValue::Tensor(tensor(dt, &[n], a)),
        ArgValue::Tensor(tensor(dt, &[n], bv)),
        ArgValue::Tensor(HostTensor::zeros(rt, vec![n])),
    ];
    run(&k, &mut args)?;
    Ok(out_of(&args, 2))
}

#[test]
fn integer_arithmetic_wraps_in_the_width() {
    assert_eq!(run_binary(d("i8"), BinaryOp::Add, &[100., -128., 5.], &[100., -1., -7.]).unwrap(), [-56., 127., -2.]);
    assert_eq!(run_binary(d("u3"), BinaryOp::Add, &[7., 3.], &[1., 2.]).unwrap(), [0., 5.]);
    assert_eq!(run_binary(d("i8"), BinaryOp::Mul, &[16., -3.], &[16., 50.]).unwrap(), [0., 106.]);
    assert_eq!(run_binary(d("i32"), BinaryOp::Div, &[7., -7., 7.], &[2., 2., -2.]).unwrap(), [3., -3., -3.]);
    assert_eq!(run_binary(d("i32"), BinaryOp::Rem, &[7., -7.], &[3., 3.]).unwrap(), [1., -1.]);
    assert_eq!(run_binary(d("i8"), BinaryOp::Shr, &[-16., 64.], &[2., 9.]).unwrap(), [-4., 0.]);
    assert_eq!(run_binary(d("u8"), BinaryOp::Shl, &[3., 1.], &[7., 8.]).unwrap(), [128., 0.]);
    assert_eq!(run_binary(d("i8"), BinaryOp::Lt, &[1., 2.], &[2., 2.]).unwrap(), [1., 0.]);
    assert_eq!(run_binary(d("u4"), BinaryOp::Xor, &[12.], &[10.]).unwrap(), [6.]);
}

#[test]
fn integer_division_by_zero_is_an_error_with_a_span() {
    let e = run_binary(d("i32"), BinaryOp::Div, &[1., 2.], &[1., 0.]).unwrap_err();
    assert!(e.message.contains("division"), "{e}");
    assert!(e.span.is_some() && e.block == Some([0, 0, 0]));
}

#[test]
fn f32_arithmetic_is_ieee_binary32() {
    let mut rng = SplitMix64(7);
    let a: Vec<f32> = (0..64).map(|_| (rng.next_f64() * 200.0 - 100.0) as f32).collect();
    let b: Vec<f32> = (0..64).map(|_| (rng.next_f64() * 2.0 - 1.0) as f32).collect();
    let af: Vec<f64> = a.iter().map(|&x| f64::from(x)).collect();
    let bf: Vec<f64> = b.iter().map(|&x| f64::from(x)).collect();
    for (op, f) in [
        (BinaryOp::Add, (|x, y| x + y) as fn(f32, f32) -> f32),
        (BinaryOp::Sub, |x, y| x - y),
        (BinaryOp::Mul, |x, y| x * y),
        (BinaryOp::Div, |x, y| x / y),
    ] {
        let got = run_binary(DType::F32, op, &af, &bf).unwrap();
        let want: Vec<f64> = a.iter().zip(&b).map(|(&x, &y)| f64::from(f(x, y))).collect();
        assert_eq!(got, want, "{op:?}");
    }
}

#[test]
fn f16_addition_rounds_to_nearest_even() {
    // 1 + 2^-11 is a tie between 1 and 1 + 2^-10: even is 1. 1 + 3·2^-11 ties to 1 + 2^-9.
    let got = run_binary(DType::F16, BinaryOp::Add, &[1.0, 1.0, 65504.0], &[2f64.powi(-11), 3.0 * 2f64.powi(-11), 65504.0]).unwrap();
    assert_eq!(got, [1.0, 1.0 + 2f64.powi(-9), f64::INFINITY]);
}

fn cast_kernel(src: DType, dst: DType, n: usize, rounding: Option<&str>, overflow: CastOverflow) -> Kernel {
    let mut b = B::new();
    let seed = b.k.add_scalar_param("seed", DType::Int(64));
    let x = b.k.add_global_param("x", src, vec![SymExpr::Const(n as i64)], false, Span::default());
    let y = b.k.add_global_param("y", dst, vec![SymExpr::Const(n as i64)], true, Span::default());
    b.k.grid = vec![SymExpr::Const(2)];
    let zero = b.i32(0);
    let t = b.op(InstKind::LoadGlobal { global: x, offsets: vec![zero], shape: vec![n] });
    let rounding = match rounding {
        None | Some("rne") => CastRounding::NearestEven,
        Some("rtz") => CastRounding::TowardZero,
        Some("rup") => CastRounding::TowardPositive,
        Some("rdown") => CastRounding::TowardNegative,
        Some(_) => CastRounding::Stochastic { seed, index: None },
    };
    let c = b.op(InstKind::Cast { x: t, dtype: dst, rounding, overflow });
    // Only block 0 stores, so the two blocks do not race; block 1 exercises the key's block term.
    let bx = b.op(InstKind::BlockIdx { axis: 0 });
    let is0 = b.op(InstKind::Binary { op: BinaryOp::Eq, a: bx, b: zero });
    let n_insts = b.k.insts.len();
    let (st, _) = b.k.build(InstKind::StoreGlobal { global: y, offsets: vec![zero], value: c }, B::span(n_insts)).unwrap();
    b.eff(InstKind::If { cond: is0, then_body: vec![st], else_body: vec![] });
    b.finish()
}

fn run_cast(src: DType, dst: DType, vals: &[f64], rounding: Option<&str>, overflow: CastOverflow, seed: i64) -> Vec<f64> {
    let k = cast_kernel(src, dst, vals.len(), rounding, overflow);
    let mut args = vec![
        ArgValue::Int(seed),
        ArgValue::Tensor(tensor(src, &[vals.len()], vals)),
        ArgValue::Tensor(HostTensor::zeros(dst, vec![vals.len()])),
    ];
    run(&k, &mut args).unwrap();
    out_of(&args, 2)
}

#[test]
fn cast_to_int_in_every_deterministic_rounding_mode() {
    let x = [2.5, -2.5, 1.7, -1.7, 3.5, 300.0, -300.0];
    let sat = CastOverflow::Saturate;
    assert_eq!(run_cast(DType::F32, d("i8"), &x, Some("rne"), sat, 0), [2., -2., 2., -2., 4., 127., -128.]);
    assert_eq!(run_cast(DType::F32, d("i8"), &x, Some("rtz"), sat, 0), [2., -2., 1., -1., 3., 127., -128.]);
    assert_eq!(run_cast(DType::F32, d("i8"), &x, Some("rup"), sat, 0), [3., -2., 2., -1., 4., 127., -128.]);
    assert_eq!(run_cast(DType::F32, d("i8"), &x, Some("rdown"), sat, 0), [2., -3., 1., -2., 3., 127., -128.]);
    // Integer to integer wraps by default (two's complement truncation).
    assert_eq!(run_cast(d("i32"), d("i8"), &[300., -129., 5.], None, CastOverflow::Wrap, 0), [44., 127., 5.]);
    assert_eq!(run_cast(d("i32"), d("u3"), &[9., -1.], None, CastOverflow::Wrap, 0), [1., 7.]);
}

#[test]
fn cast_to_fp4_rounds_ties_to_even_and_saturates() {
    // f4e2m1 values: 0 0.5 1 1.5 2 3 4 6.
    let x = [5.0, 2.5, 0.25, 0.75, 100.0, -7.0, 1.25];
    let got = run_cast(DType::F32, d("f4e2m1"), &x, None, CastOverflow::Saturate, 0);
    assert_eq!(got, [4.0, 2.0, 0.0, 1.0, 6.0, -6.0, 1.0]);
    let got = run_cast(DType::F32, d("f4e2m1"), &x, Some("rtz"), CastOverflow::Saturate, 0);
    assert_eq!(got, [4.0, 2.0, 0.0, 0.5, 6.0, -6.0, 1.0]);
}

#[test]
fn stochastic_cast_is_keyed_by_seed_and_element_index() {
    let n = 512;
    let x: Vec<f64> = (0..n).map(|i| 1.0 + 0.25 * (i % 4) as f64 / 1.0 + 0.125).collect();
    let seed = 0x1234_5678_9abc;
    let got = run_cast(DType::F32, d("f4e2m1"), &x, Some("stochastic"), CastOverflow::Saturate, seed);
    for (i, (&g, &v)) in got.iter().zip(&x).enumerate() {
        // Block 0 stores: key = 0 · n + i.
        let want = d("f4e2m1").decode(d("f4e2m1").encode(v, Rounding::Stochastic { seed: seed as u64, index: i as u64 }, Overflow::Saturate));
        assert_eq!(g, want, "element {i}");
        assert!(g == (v * 2.0).floor() / 2.0 || g == (v * 2.0).ceil() / 2.0, "{v} -> {g}");
    }
    // Unbiased on average: x = 1.125 rounds to 1.0 or 1.5, mean ≈ 1.125.
    let ones: Vec<f64> = got.iter().zip(&x).filter(|(_, v)| **v == 1.125).map(|(g, _)| *g).collect();
    let mean = ones.iter().sum::<f64>() / ones.len() as f64;
    assert!((mean - 1.125).abs() < 0.06, "mean {mean}");
    let other = run_cast(DType::F32, d("f4e2m1"), &x, Some("stochastic"), CastOverflow::Saturate, seed + 1);
    assert_ne!(got, other, "a different seed gives different roundings");
}

#[test]
fn view_reinterprets_the_row_major_bit_stream() {
    // u8[3] -> u3[8]: element k of the u3 view is bits [3k, 3k+3) of the little-endian stream.
    let mut b = B::new();
    let x = b.k.add_global_param("x", d("u8"), vec![SymExpr::Const(3)], false, Span::default());
    let y = b.k.add_global_param("y", d("u3"), vec![SymExpr::Const(2), SymExpr::Const(4)], true, Span::default());
    let zero = b.i32(0);
    let t = b.op(InstKind::LoadGlobal { global: x, offsets: vec![zero], shape: vec![3] });
    let v = b.op(InstKind::View { x: t, dtype: d("u3"), shape: vec![2, 4] });
    b.eff(InstKind::StoreGlobal { global: y, offsets: vec![zero, zero], value: v });
    let k = b.finish();
    let bytes = [0b1000_1000u8, 0b1100_0110, 0b1111_1010];
    let mut args = vec![
        ArgValue::Tensor(tensor(d("u8"), &[3], &bytes.map(f64::from))),
        ArgValue::Tensor(HostTensor::zeros(d("u3"), vec![2, 4])),
    ];
    run(&k, &mut args).unwrap();
    let stream: u32 = bytes.iter().enumerate().map(|(i, &b)| u32::from(b) << (8 * i)).sum();
    let want: Vec<f64> = (0..8).map(|k| f64::from((stream >> (3 * k)) & 7)).collect();
    assert_eq!(out_of(&args, 1), want);
}

#[test]
fn view_with_different_bit_counts_is_a_type_error() {
    let mut b = B::new();
    let zero = b.ci(d("u8"), 0);
    let t = b.op(InstKind::Full { value: zero, shape: vec![3] });
    let e = b.k.build(InstKind::View { x: t, dtype: d("u3"), shape: vec![7] }, Span::default()).unwrap_err();
    assert!(e.message.contains("24 bits") && e.message.contains("21"), "{}", e.message);
}

fn dot_kernel(da: DType, db: DType, dc: DType, m: usize, kk: usize, n: usize) -> Kernel {
    let mut b = B::new();
    let a = b.k.add_global_param("a", da, vec![SymExpr::Const(m as i64), SymExpr::Const(kk as i64)], false, Span::default());
    let bb = b.k.add_global_param("b", db, vec![SymExpr::Const(kk as i64), SymExpr::Const(n as i64)], false, Span::default());
    let c = b.k.add_global_param("c", dc, vec![SymExpr::Const(m as i64), SymExpr::Const(n as i64)], false, Span::default());
    let out = b.k.add_global_param("d", dc, vec![SymExpr::Const(m as i64), SymExpr::Const(n as i64)], true, Span::default());
    let zero = b.i32(0);
    let ta = b.op(InstKind::LoadGlobal { global: a, offsets: vec![zero, zero], shape: vec![m, kk] });
    let tb = b.op(InstKind::LoadGlobal { global: bb, offsets: vec![zero, zero], shape: vec![kk, n] });
    let tc = b.op(InstKind::LoadGlobal { global: c, offsets: vec![zero, zero], shape: vec![m, n] });
    let r = b.op(InstKind::Dot { a: ta, b: tb, c: tc });
    b.eff(InstKind::StoreGlobal { global: out, offsets: vec![zero, zero], value: r });
    b.finish()
}

#[test]
fn dot_i8_accumulates_exactly_in_i32() {
    let (m, kk, n) = (3, 37, 5);
    let a = random_tensor(d("i8"), vec![m, kk], 1);
    let bt = random_tensor(d("i8"), vec![kk, n], 2);
    let c = random_tensor(d("i16"), vec![m, n], 3);
    let c = HostTensor::from_f64(d("i32"), vec![m, n], &c.to_f64());
    let k = dot_kernel(d("i8"), d("i8"), d("i32"), m, kk, n);
    let mut args = vec![ArgValue::Tensor(a.clone()), ArgValue::Tensor(bt.clone()), ArgValue::Tensor(c.clone()), ArgValue::Tensor(HostTensor::zeros(d("i32"), vec![m, n]))];
    run(&k, &mut args).unwrap();
    let (av, bv, cv) = (a.to_f64(), bt.to_f64(), c.to_f64());
    let want: Vec<f64> = (0..m * n).map(|e| cv[e] + (0..kk).map(|p| av[(e / n) * kk + p] * bv[p * n + e % n]).sum::<f64>()).collect();
    assert_eq!(out_of(&args, 3), want);
}

#[test]
fn dot_f16_accumulates_in_f32_in_k_order() {
    let (m, kk, n) = (2, 64, 3);
    let a = random_tensor(DType::F16, vec![m, kk], 4);
    let bt = random_tensor(d("f8e4m3"), vec![kk, n], 5);
    let c = random_tensor(DType::F32, vec![m, n], 6);
    let k = dot_kernel(DType::F16, d("f8e4m3"), DType::F32, m, kk, n);
    let mut args = vec![ArgValue::Tensor(a.clone()), ArgValue::Tensor(bt.clone()), ArgValue::Tensor(c.clone()), ArgValue::Tensor(HostTensor::zeros(DType::F32, vec![m, n]))];
    run(&k, &mut args).unwrap();
    let (av, bv, cv) = (a.to_f64(), bt.to_f64(), c.to_f64());
    let want: Vec<f64> = (0..m * n)
        .map(|e| {
            let mut s = cv[e] as f32;
            for p in 0..kk {
                s = (f64::from(s) + av[(e / n) * kk + p] * bv[p * n + e % n]) as f32;
            }
            f64::from(s)
        })
        .collect();
    assert_eq!(out_of(&args, 3), want);
}

#[test]
fn dot_shape_mismatch_names_both_shapes() {
    let mut b = B::new();
    let z = b.cf(DType::F16, 0.0);
    let zf = b.cf(DType::F32, 0.0);
    let a = b.op(InstKind::Full { value: z, shape: vec![4, 8] });
    let bb = b.op(InstKind::Full { value: z, shape: vec![16, 2] });
    let c = b.op(InstKind::Full { value: zf, shape: vec![4, 2] });
    let e = b.k.build(InstKind::Dot { a, b: bb, c }, Span::default()).unwrap_err();
    assert!(e.message.contains("[4, 8]") && e.message.contains("[16, 2]"), "{}", e.message);
}

fn unary_tile_kernel(dt: DType, shape: Vec<usize>, out_shape: Vec<usize>, f: impl FnOnce(&mut B, Value) -> Value) -> Kernel {
    let mut b = B::new();
    let x = b.k.add_global_param("x", dt, shape.iter().map(|&s| SymExpr::Const(s as i64)).collect(), false, Span::default());
    let rt = dt;
    let y = b.k.add_global_param("y", rt, out_shape.iter().map(|&s| SymExpr::Const(s as i64)).collect(), true, Span::default());
    let zero = b.i32(0);
    let offs = vec![zero; shape.len()];
    let t = b.op(InstKind::LoadGlobal { global: x, offsets: offs, shape: shape.clone() });
    let r = f(&mut b, t);
    b.eff(InstKind::StoreGlobal { global: y, offsets: vec![zero; out_shape.len()], value: r });
    b.finish()
}

fn run_unary(dt: DType, shape: &[usize], out_shape: &[usize], vals: &[f64], f: impl FnOnce(&mut B, Value) -> Value) -> Vec<f64> {
    let k = unary_tile_kernel(dt, shape.to_vec(), out_shape.to_vec(), f);
    let mut args = vec![ArgValue::Tensor(tensor(dt, shape, vals)), ArgValue::Tensor(HostTensor::zeros(dt, out_shape.to_vec()))];
    run(&k, &mut args).unwrap();
    out_of(&args, 1)
}

#[test]
fn reductions_over_each_axis() {
    let x = [1., -5., 3., 4., 2., -6.];
    let r = |op, axis, keep: bool, out: &[usize]| run_unary(DType::F32, &[2, 3], out, &x, |b, t| b.op(InstKind::Reduce { op, x: t, axis, keepdim: keep }));
    assert_eq!(r(ReduceOp::Sum, 1, false, &[2]), [-1., 0.]);
    assert_eq!(r(ReduceOp::Sum, 0, true, &[1, 3]), [5., -3., -3.]);
    assert_eq!(r(ReduceOp::Max, 1, true, &[2, 1]), [3., 4.]);
    assert_eq!(r(ReduceOp::Min, 0, false, &[3]), [1., -5., -6.]);
    assert_eq!(r(ReduceOp::AbsMax, 1, false, &[2]), [5., 6.]);
    let ri = run_unary(d("i8"), &[2, 3], &[2], &[100., 100., 100., -1., -2., -3.], |b, t| b.op(InstKind::Reduce { op: ReduceOp::Sum, x: t, axis: 1, keepdim: false }));
    assert_eq!(ri, [44., -6.], "integer sums wrap");
}

#[test]
fn transpose_reshape_broadcast_move_elements() {
    let x: Vec<f64> = (0..6).map(f64::from).collect();
    let t = run_unary(d("i8"), &[2, 3], &[3, 2], &x, |b, t| b.op(InstKind::Transpose { x: t, perm: vec![1, 0] }));
    assert_eq!(t, [0., 3., 1., 4., 2., 5.]);
    let r = run_unary(d("i8"), &[2, 3], &[3, 2], &x, |b, t| b.op(InstKind::Reshape { x: t, shape: vec![3, 2] }));
    assert_eq!(r, x);
    let bc = run_unary(d("i8"), &[1, 3], &[2, 3], &x[..3], |b, t| b.op(InstKind::Broadcast { x: t, shape: vec![2, 3] }));
    assert_eq!(bc, [0., 1., 2., 0., 1., 2.]);
    // Broadcasting in a binary op: [2, 3] + [2, 1].
    let s = run_unary(d("i8"), &[2, 3], &[2, 3], &x, |b, t| {
        let col = b.op(InstKind::Reduce { op: ReduceOp::Max, x: t, axis: 1, keepdim: true });
        b.op(InstKind::Binary { op: BinaryOp::Sub, a: t, b: col })
    });
    assert_eq!(s, [-2., -1., 0., -2., -1., 0.]);
}

/// H_n by Sylvester's construction, as a dense matrix.
fn sylvester(n: usize) -> Vec<Vec<f64>> {
    let mut h = vec![vec![1.0]];
    while h.len() < n {
        let m = h.len();
        let mut g = vec![vec![0.0; 2 * m]; 2 * m];
        for i in 0..m {
            for j in 0..m {
                g[i][j] = h[i][j];
                g[i][j + m] = h[i][j];
                g[i + m][j] = h[i][j];
                g[i + m][j + m] = -h[i][j];
            }
        }
        h = g;
    }
    h
}

#[test]
fn hadamard_is_sylvester_order_along_the_axis() {
    for n in [2usize, 8, 32] {
        let rows = 3;
        let x: Vec<f64> = (0..rows * n).map(|i| ((i * 37) % 11) as f64 - 5.0).collect();
        let got = run_unary(DType::F32, &[rows, n], &[rows, n], &x, |b, t| b.op(InstKind::Hadamard { x: t, axis: 1 }));
        let h = sylvester(n);
        for r in 0..rows {
            for i in 0..n {
                let want: f64 = (0..n).map(|j| h[i][j] * x[r * n + j]).sum();
                assert_eq!(got[r * n + i], want, "n={n} row {r} col {i}");
            }
        }
        // Along axis 0 of the transposed layout gives the same numbers.
        let got0 = run_unary(DType::F32, &[n, 1], &[n, 1], &x[..n], |b, t| b.op(InstKind::Hadamard { x: t, axis: 0 }));
        assert_eq!(&got0[..], &got[..n]);
    }
}

#[test]
fn unary_math_and_where_and_iota() {
    let x = [4.0, 0.25, -2.5, 9.0];
    assert_eq!(run_unary(DType::F32, &[4], &[4], &x, |b, t| b.op(InstKind::Unary { op: UnaryOp::Abs, x: t })), [4.0, 0.25, 2.5, 9.0]);
    assert_eq!(run_unary(DType::F32, &[4], &[4], &x, |b, t| b.op(InstKind::Unary { op: UnaryOp::Floor, x: t })), [4.0, 0.0, -3.0, 9.0]);
    assert_eq!(run_unary(DType::F32, &[4], &[4], &x, |b, t| b.op(InstKind::Unary { op: UnaryOp::Round, x: t })), [4.0, 0.0, -2.0, 9.0]);
    let sq = run_unary(DType::F32, &[4], &[4], &[4.0, 0.25, 2.0, 9.0], |b, t| b.op(InstKind::Unary { op: UnaryOp::Sqrt, x: t }));
    assert_eq!(sq, [2.0, 0.5, f64::from(2f32.sqrt()), 3.0]);
    let l = run_unary(DType::F32, &[4], &[4], &[8.0, 0.25, 1.0, 1024.0], |b, t| b.op(InstKind::Unary { op: UnaryOp::Log2, x: t }));
    assert_eq!(l, [3.0, -2.0, 0.0, 10.0]);
    let w = run_unary(DType::F32, &[4], &[4], &x, |b, t| {
        let z = b.cf(DType::F32, 0.0);
        let pos = b.op(InstKind::Binary { op: BinaryOp::Gt, a: t, b: z });
        b.op(InstKind::Select { cond: pos, a: t, b: z })
    });
    assert_eq!(w, [4.0, 0.25, 0.0, 9.0]);
    let io = run_unary(d("i32"), &[2, 3], &[2, 3], &[0.0; 6], |b, _| b.op(InstKind::Iota { dtype: DType::Int(32), shape: vec![2, 3], axis: 1 }));
    assert_eq!(io, [0., 1., 2., 0., 1., 2.]);
}

#[test]
fn shared_memory_round_trip_and_errors() {
    // Store a tile into shared at (1, 0) of a [3, 4] buffer and load it back.
    let build = |load_row: i64, store: bool| {
        let mut b = B::new();
        let x = b.k.add_global_param("x", DType::F32, vec![SymExpr::Const(2), SymExpr::Const(4)], false, Span::default());
        let y = b.k.add_global_param("y", DType::F32, vec![SymExpr::Const(2), SymExpr::Const(4)], true, Span::default());
        let (zero, one, lr) = (b.i32(0), b.i32(1), b.i32(load_row));
        let s = b.op(InstKind::AllocShared { tile: TileType::new(DType::F32, vec![3, 4]) });
        let t = b.op(InstKind::LoadGlobal { global: x, offsets: vec![zero, zero], shape: vec![2, 4] });
        if store {
            b.eff(InstKind::StoreShared { shared: s, offsets: vec![one, zero], value: t });
        }
        b.eff(InstKind::Sync);
        let u = b.op(InstKind::LoadShared { shared: s, offsets: vec![lr, zero], shape: vec![2, 4] });
        b.eff(InstKind::StoreGlobal { global: y, offsets: vec![zero, zero], value: u });
        b.finish()
    };
    let x: Vec<f64> = (0..8).map(f64::from).collect();
    let mk = || vec![ArgValue::Tensor(tensor(DType::F32, &[2, 4], &x)), ArgValue::Tensor(HostTensor::zeros(DType::F32, vec![2, 4]))];
    let mut args = mk();
    run(&build(1, true), &mut args).unwrap();
    assert_eq!(out_of(&args, 1), x);
    let e = run(&build(0, true), &mut mk()).unwrap_err();
    assert!(e.message.contains("uninitialised") && e.message.contains("[0, 0]"), "{e}");
    let e = run(&build(2, true), &mut mk()).unwrap_err();
    assert!(e.message.contains("out of bounds"), "{e}");
}

#[test]
fn copy_async_lands_only_at_wait() {
    let build = |wait_before_load: bool| {
        let mut b = B::new();
        let x = b.k.add_global_param("x", DType::F16, vec![SymExpr::Const(4)], false, Span::default());
        let y = b.k.add_global_param("y", DType::F16, vec![SymExpr::Const(2), SymExpr::Const(4)], true, Span::default());
        let (zero, one, two) = (b.i32(0), b.i32(1), b.i32(2));
        let s = b.op(InstKind::AllocShared { tile: TileType::new(DType::F16, vec![2, 4]) });
        // Stage 1 gets x[2..6] (half out of range: zeros), stage 0 gets x[0..4].
        b.eff(InstKind::CopyAsync { global: x, offsets: vec![two], shared: s, shared_offsets: vec![one, zero], shape: vec![4] });
        b.eff(InstKind::CopyAsync { global: x, offsets: vec![zero], shared: s, shared_offsets: vec![zero, zero], shape: vec![4] });
        b.eff(InstKind::CopyAsyncCommit);
        if wait_before_load {
            b.eff(InstKind::CopyAsyncWait { pending: 0 });
        }
        let u = b.op(InstKind::LoadShared { shared: s, offsets: vec![zero, zero], shape: vec![2, 4] });
        b.eff(InstKind::StoreGlobal { global: y, offsets: vec![zero, zero], value: u });
        b.finish()
    };
    let mk = || vec![ArgValue::Tensor(tensor(DType::F16, &[4], &[1., 2., 3., 4.])), ArgValue::Tensor(HostTensor::zeros(DType::F16, vec![2, 4]))];
    let mut args = mk();
    run(&build(true), &mut args).unwrap();
    assert_eq!(out_of(&args, 1), [1., 2., 3., 4., 3., 4., 0., 0.]);
    let e = run(&build(false), &mut mk()).unwrap_err();
    assert!(e.message.contains("uninitialised"), "{e}");
}

#[test]
fn loops_branches_and_variables() {
    // acc = Σ_{i in range(1, 10, 2)} i, then if acc > 20 { acc = acc * 2 }; while acc < 100 { acc += 7 }.
    let mut b = B::new();
    let y = b.k.add_global_param("y", DType::Int(32), vec![SymExpr::Const(1)], true, Span::default());
    let i32t = DType::Int(32);
    let acc = b.k.add_var(Type::Scalar(i32t), Some("acc"));
    let zero = b.i32(0);
    b.eff(InstKind::Assign { var: acc, value: zero });
    let (one, ten, two) = (b.i32(1), b.i32(10), b.i32(2));
    let var = b.k.values.push(ValueData { ty: Type::Scalar(i32t), def: ValueDef::Var, name: Some("i".into()) });
    let (add, _) = b.k.build(InstKind::Binary { op: BinaryOp::Add, a: acc, b: var }, Span::default()).unwrap();
    let sum = b.k.insts[add].result.unwrap();
    let (asg, _) = b.k.build(InstKind::Assign { var: acc, value: sum }, Span::default()).unwrap();
    let f = b.k.add_inst(InstKind::For { var, start: one, end: ten, step: two, body: vec![add, asg], unroll: None }, None, Span::default());
    b.k.values[var].def = ValueDef::LoopVar(f);
    b.body.push(f);
    let twenty = b.i32(20);
    let gt = b.op(InstKind::Binary { op: BinaryOp::Gt, a: acc, b: twenty });
    let (dbl, _) = b.k.build(InstKind::Binary { op: BinaryOp::Mul, a: acc, b: two }, Span::default()).unwrap();
    let dv = b.k.insts[dbl].result.unwrap();
    let (a2, _) = b.k.build(InstKind::Assign { var: acc, value: dv }, Span::default()).unwrap();
    b.eff(InstKind::If { cond: gt, then_body: vec![dbl, a2], else_body: vec![] });
    let hundred = b.i32(100);
    let seven = b.i32(7);
    let (lt, _) = b.k.build(InstKind::Binary { op: BinaryOp::Lt, a: acc, b: hundred }, Span::default()).unwrap();
    let ltv = b.k.insts[lt].result.unwrap();
    let (inc, _) = b.k.build(InstKind::Binary { op: BinaryOp::Add, a: acc, b: seven }, Span::default()).unwrap();
    let incv = b.k.insts[inc].result.unwrap();
    let (a3, _) = b.k.build(InstKind::Assign { var: acc, value: incv }, Span::default()).unwrap();
    b.eff(InstKind::While { cond_body: vec![lt], cond: ltv, body: vec![inc, a3] });
    let t = b.op(InstKind::Full { value: acc, shape: vec![1] });
    b.eff(InstKind::StoreGlobal { global: y, offsets: vec![zero], value: t });
    let k = b.finish();
    let mut args = vec![ArgValue::Tensor(HostTensor::zeros(DType::Int(32), vec![1]))];
    run(&k, &mut args).unwrap();
    // 1+3+5+7+9 = 25 > 20 → 50 → 57 64 … 106.
    assert_eq!(out_of(&args, 0), [106.]);
    let text = print_kernel(&k);
    assert!(text.contains("for v") && text.contains("while {") && text.contains("} test v"), "{text}");
}

#[test]
fn reading_an_unassigned_variable_is_an_error() {
    let mut b = B::new();
    let acc = b.k.add_var(Type::Scalar(DType::Int(32)), Some("acc"));
    let one = b.i32(1);
    b.op(InstKind::Binary { op: BinaryOp::Add, a: acc, b: one });
    let k = b.finish();
    let e = run(&k, &mut []).unwrap_err();
    assert!(e.message.contains("`acc`") && e.message.contains("before it is assigned"), "{e}");
}

#[test]
fn two_blocks_storing_one_element_is_a_race() {
    let mut b = B::new();
    let y = b.k.add_global_param("y", DType::F32, vec![SymExpr::Const(4)], true, Span::default());
    b.k.grid = vec![SymExpr::Const(2)];
    let zero = b.i32(0);
    let v = b.cf(DType::F32, 1.0);
    let t = b.op(InstKind::Full { value: v, shape: vec![4] });
    b.eff(InstKind::StoreGlobal { global: y, offsets: vec![zero], value: t });
    let k = b.finish();
    let e = run(&k, &mut [ArgValue::Tensor(HostTensor::zeros(DType::F32, vec![4]))]).unwrap_err();
    assert!(e.message.contains("two blocks") && e.message.contains("`y`"), "{e}");
}

#[test]
fn a_false_assume_is_reported() {
    let mut b = B::new();
    let n = b.k.add_scalar_param("n", DType::Int(32));
    let z = b.i32(0);
    let (c64, _) = (b.i32(64), ());
    let r = b.op(InstKind::Binary { op: BinaryOp::Rem, a: n, b: c64 });
    let eq = b.op(InstKind::Binary { op: BinaryOp::Eq, a: r, b: z });
    b.eff(InstKind::Assume { cond: eq });
    let k = b.finish();
    run(&k, &mut [ArgValue::Int(128)]).unwrap();
    let e = run(&k, &mut [ArgValue::Int(100)]).unwrap_err();
    assert!(e.message.contains("assume"), "{e}");
}

#[test]
fn argument_shapes_are_checked_against_symbolic_shapes() {
    let k = copy_kernel(DType::F32);
    let mut args = vec![
        ArgValue::Int(4),
        ArgValue::Int(5),
        ArgValue::Tensor(HostTensor::zeros(DType::F32, vec![4, 6])),
        ArgValue::Tensor(HostTensor::zeros(DType::F32, vec![4, 5])),
    ];
    let e = run(&k, &mut args).unwrap_err();
    assert!(e.message.contains("`x`") && e.message.contains("[4, 6]") && e.message.contains("[4, 5]") && e.message.contains("[m, n]"), "{e}");
    args[2] = ArgValue::Tensor(HostTensor::zeros(DType::F16, vec![4, 5]));
    let e = run(&k, &mut args).unwrap_err();
    assert!(e.message.contains("f16") && e.message.contains("f32"), "{e}");
}

#[test]
fn verifier_rejects_use_before_definition_and_wrong_types() {
    let mut b = B::new();
    let one = b.i32(1);
    let s = b.op(InstKind::Binary { op: BinaryOp::Add, a: one, b: one });
    let mut k = b.finish();
    k.body.reverse();
    let e = verify(&k).unwrap_err();
    assert!(e.message.contains("before its definition"), "{e}");
    k.body.reverse();
    k.values[s].ty = Type::Scalar(DType::F32);
    assert!(verify(&k).unwrap_err().message.contains("result type"));
}

#[test]
fn printer_output_is_stable() {
    let k = copy_kernel(d("u3"));
    insta::assert_snapshot!("copy_kernel_u3", print_kernel(&k));
}
