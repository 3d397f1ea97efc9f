//! Lowering one VM [`Kernel`] to one Cranelift function: the program of one block.
//!
//! The function is `block(env, scratch, bx, by, bz, linear) -> status`:
//! - `env` points at the launch's words (see [`Layout`]): one per scalar parameter (an `i64`, or
//!   the bits of an `f64` already rounded to the parameter's type) and, per tensor parameter, its
//!   data pointer, its byte length and its extents;
//! - `scratch` points at this block's private memory, [`Layout::scratch_bytes`] long, where every
//!   register tile and shared tensor has a fixed place;
//! - the status is 0, or 1 + the index of the failed check in [`Layout::errors`].
//!
//! Scalars live in Cranelift variables in the interpreter's computing form: integers as `i64`
//! wrapped to their type, floats as `f64` exactly representable in theirs. A tile holds one code
//! per element, row-major, in a container of 1, 2 or 4 bytes; elementwise operations decode
//! each element to that computing form, operate exactly as the interpreter does, and encode.
//! Shapes are compile-time, so every tile operation is a nest of counted loops with constant
//! strides; `dot` is vectorised over output columns in the [`DotForm`] the operand types allow
//! (integers of at most 8 bits as `i16` pairs multiplied and summed into i32x4 by `pmaddwd`,
//! wider ones in i32x4; `f16` × `f16` in f32x4, whose products are exact; other floats in
//! f64x2 rounded to f32 after every step), each reproducing the interpreter's rule exactly.
//!
//! **Native code:** all integer arithmetic, comparisons, shifts and division (with their
//! checks); `f32`/`f64` `+ − × ÷ sqrt min max floor ceil trunc round` and comparisons; decoding
//! of every float format of at most 16 bits (`f16`, `bf16`, fp8/fp6/fp4, `e8m0`, `ue*`) and of
//! `f32`, encoding to `f32`; nearest-even casts integer → integer, integer → `f32`, float →
//! `f32` and float → integer (saturating); global loads (8/16/32-bit elements directly, sub-byte
//! elements eight per 64-bit word read, with shifts and masks) and 8/16/32-bit stores with the
//! bounds masks; shared memory, `copy_async`, `transpose reshape broadcast iota full where`,
//! reductions, control flow and `dot` (which skips rows of `a` that are all zero when that
//! provably leaves the accumulators unchanged). Four elements at a time when the tile's last
//! axis allows ([`Lower::vector_ew`], [`VecOp`] says why each is exact): `f32` `+ − × ÷`,
//! integer → `f32` casts, `f16`/`bf16` ↔ `f32` casts (integer bit operations, nearest-even,
//! saturating or not), integer `+ − × & | ^` and integer casts (sixteen at a time in byte lanes
//! for one-byte containers). `dot` converts operands four at a time and works one row of `a`
//! at a time ([`Lower::dot_rows`]), so a padded GEMV converts and multiplies one row; fills and
//! copies move 16 bytes at a time; sub-byte words are spread to bytes by halving.
//!
//! **Calls into Rust** ([`crate::helpers`], bit-identical by construction): decoding of float
//! formats wider than 16 bits other than `f32`/`f64`, and encoding to every float format but
//! `f32` (and `f16`/`bf16` from `f32` tiles, see above); casts with
//! `rtz`/`rup`/`rdown`, stochastic rounding, non-saturating float → integer and casts to float
//! formats other than `f32`; `exp exp2 log log2 rsqrt` and float `%` (the same libm the
//! interpreter calls); `hadamard`; `view` between different widths; and stores of sub-byte
//! elements (atomic per byte, as neighbouring blocks may share a byte).

use crate::helpers::{self, container_bytes, desc};
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::types::{F32, F32X4, F64, F64X2, I8, I8X16, I16X8, I32, I32X4, I64, I64X2};
use cranelift_codegen::ir::{self, AbiParam, BlockArg, FuncRef, Function, InstBuilder, MemFlagsData, Signature, UserFuncName};
use cranelift_codegen::isa::CallConv;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use cranelift_module::{Linkage, Module, ModuleError};
use std::collections::HashMap;
use tilc_base::Span;
use tilc_dtype::{DType, FloatFamily, FloatFormat};
use tilc_vm::*;

/// How a launch's arguments and a block's memory are laid out for the compiled function.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The first `env` word of each parameter, in `Kernel::params` order.
    pub param_slot: Vec<usize>,
    /// Number of `env` words.
    pub env_words: usize,
    /// Bytes of per-block scratch memory.
    pub scratch_bytes: usize,
    /// The run-time checks: what failed and where, indexed by status − 1.
    pub errors: Vec<(String, Span)>,
}

impl Layout {
    /// The layout of `k`'s parameters (scratch and errors are filled by lowering).
    pub fn for_params(k: &Kernel) -> Layout {
        let mut param_slot = Vec::with_capacity(k.params.len());
        let mut w = 0;
        for p in &k.params {
            param_slot.push(w);
            w += match p {
                Param::Scalar(_) => 1,
                Param::Tensor(g) => 2 + k.globals[*g].shape.len(),
            };
        }
        Layout { param_slot, env_words: w, scratch_bytes: 0, errors: Vec::new() }
    }
}

/// Why lowering failed.
#[derive(Debug)]
pub enum LowerError {
    /// The kernel uses something this backend does not implement.
    Unsupported(String),
    /// Cranelift's module rejected a declaration.
    Module(String),
}

/// The helpers' signatures: (name, parameter types, result types).
fn helper_sigs() -> Vec<(&'static str, Vec<ir::Type>, Vec<ir::Type>)> {
    vec![
        ("tilc_cpu_decode", vec![I64, I64], vec![F64]),
        ("tilc_cpu_encode", vec![I64, F64, I64, I64, I64, I64], vec![I64]),
        ("tilc_cpu_round", vec![I64, F64], vec![F64]),
        ("tilc_cpu_libm", vec![I64, F64, F64], vec![F64]),
        ("tilc_cpu_hadamard", vec![I64, I64, I64, I64, I64, I64], vec![]),
        ("tilc_cpu_view", vec![I64, I64, I64, I64, I64, I64], vec![]),
        ("tilc_cpu_store_bits", vec![I64, I64, I64, I64], vec![]),
    ]
}

/// The signature of a block function.
pub fn block_signature(call_conv: CallConv) -> Signature {
    let mut sig = Signature::new(call_conv);
    for _ in 0..6 {
        sig.params.push(AbiParam::new(I64));
    }
    sig.returns.push(AbiParam::new(I64));
    sig
}

/// Builds the block function of `k` (declaring the helpers it calls in `module`).
pub fn lower<M: Module>(module: &mut M, k: &Kernel) -> Result<(Function, Layout), LowerError> {
    let call_conv = module.target_config().default_call_conv;
    let mut func = Function::with_name_signature(UserFuncName::user(0, 0), block_signature(call_conv));
    let mut helper_refs = HashMap::new();
    for (name, params, rets) in helper_sigs() {
        let mut sig = Signature::new(call_conv);
        sig.params.extend(params.into_iter().map(AbiParam::new));
        sig.returns.extend(rets.into_iter().map(AbiParam::new));
        let id = module.declare_function(name, Linkage::Import, &sig).map_err(|e: ModuleError| LowerError::Module(e.to_string()))?;
        helper_refs.insert(name, module.declare_func_in_func(id, &mut func));
    }
    let mut fctx = FunctionBuilderContext::new();
    let layout = {
        let fb = FunctionBuilder::new(&mut func, &mut fctx);
        let mut l = Lower::new(k, fb, helper_refs);
        l.entry();
        l.body(&k.body)?;
        l.finish(module.target_config())
    };
    Ok((func, layout))
}

fn mf() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

/// A tile-or-scalar operand of an elementwise operation.
#[derive(Clone, Copy)]
enum Opnd {
    /// A tile at this scratch offset.
    Tile(u32),
    /// A scalar in computing form.
    Scalar(ir::Value),
}

struct Lower<'a, 'f> {
    k: &'a Kernel,
    fb: FunctionBuilder<'f>,
    helpers: HashMap<&'static str, FuncRef>,
    layout: Layout,
    env: ir::Value,
    scratch: ir::Value,
    block_idx: [ir::Value; 3],
    linear: ir::Value,
    vars: HashMap<Value, Variable>,
    bufs: HashMap<Value, u32>,
    err_block: ir::Block,
}

fn row_major_strides(shape: &[usize]) -> Vec<i64> {
    let mut s = vec![1i64; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1] as i64;
    }
    s
}

fn is_f32(d: DType) -> bool {
    d == DType::F32
}

fn is_bf16(d: DType) -> bool {
    d == DType::BF16
}

fn mask(bits: u32) -> i64 {
    if bits >= 64 { -1 } else { ((1u64 << bits) - 1) as i64 }
}

fn tile_shape(k: &Kernel, v: Value) -> Vec<usize> {
    match k.ty(v) {
        Type::Tile(t) | Type::Shared(t) => t.shape.clone(),
        Type::Scalar(_) => vec![1],
    }
}

/// Strides (in elements) that read a tile of `src` shape broadcast to `out` (NumPy rules).
fn bcast_strides(out: &[usize], src: &[usize]) -> Vec<i64> {
    let s = row_major_strides(src);
    let n = out.len();
    (0..n)
        .map(|i| {
            if i + src.len() < n {
                0
            } else {
                let j = i + src.len() - n;
                if src[j] == 1 && out[i] != 1 { 0 } else { s[j] }
            }
        })
        .collect()
}

impl<'a, 'f> Lower<'a, 'f> {
    fn new(k: &'a Kernel, mut fb: FunctionBuilder<'f>, helpers: HashMap<&'static str, FuncRef>) -> Self {
        let entry = fb.create_block();
        fb.append_block_params_for_function_params(entry);
        fb.switch_to_block(entry);
        fb.seal_block(entry);
        let p = fb.block_params(entry).to_vec();
        let err_block = fb.create_block();
        fb.append_block_param(err_block, I64);
        fb.set_cold_block(err_block);
        Lower {
            k,
            fb,
            helpers,
            layout: Layout::for_params(k),
            env: p[0],
            scratch: p[1],
            block_idx: [p[2], p[3], p[4]],
            linear: p[5],
            vars: HashMap::new(),
            bufs: HashMap::new(),
            err_block,
        }
    }

    fn finish(mut self, config: cranelift_codegen::isa::TargetFrontendConfig) -> Layout {
        let zero = self.fb.ins().iconst(I64, 0);
        self.fb.ins().return_(&[zero]);
        self.fb.switch_to_block(self.err_block);
        let code = self.fb.block_params(self.err_block)[0];
        self.fb.ins().return_(&[code]);
        self.fb.seal_all_blocks();
        self.fb.finalize(config);
        self.layout
    }

    // ---- basics ------------------------------------------------------------------------------

    fn iconst(&mut self, v: i64) -> ir::Value {
        self.fb.ins().iconst(I64, v)
    }

    fn call(&mut self, name: &str, args: &[ir::Value]) -> Option<ir::Value> {
        let f = self.helpers[name];
        let inst = self.fb.ins().call(f, args);
        self.fb.inst_results(inst).first().copied()
    }

    fn env_word(&mut self, word: usize) -> ir::Value {
        self.fb.ins().load(I64, mf(), self.env, (word * 8) as i32)
    }

    fn var(&mut self, v: Value) -> Variable {
        if let Some(x) = self.vars.get(&v) {
            return *x;
        }
        let ty = if self.k.ty(v).dtype().is_float() { F64 } else { I64 };
        let x = self.fb.declare_var(ty);
        self.vars.insert(v, x);
        x
    }

    fn scalar(&mut self, v: Value) -> ir::Value {
        let x = self.var(v);
        self.fb.use_var(x)
    }

    fn set_scalar(&mut self, v: Value, x: ir::Value) {
        let var = self.var(v);
        self.fb.def_var(var, x);
    }

    /// The scratch offset of tile or shared value `v`.
    fn buf(&mut self, v: Value) -> u32 {
        if let Some(&o) = self.bufs.get(&v) {
            return o;
        }
        let t = match self.k.ty(v) {
            Type::Tile(t) | Type::Shared(t) => t.clone(),
            Type::Scalar(d) => TileType::new(*d, vec![1]),
        };
        let o = self.alloc(t.numel() * container_bytes(t.dtype));
        self.bufs.insert(v, o);
        o
    }

    fn alloc(&mut self, bytes: usize) -> u32 {
        let o = self.layout.scratch_bytes;
        self.layout.scratch_bytes += bytes.div_ceil(16) * 16 + 16;
        o as u32
    }

    fn addr(&mut self, off: u32) -> ir::Value {
        self.fb.ins().iadd_imm_s(self.scratch, i64::from(off))
    }

    /// `base + index · bytes`.
    fn elem_addr(&mut self, base: ir::Value, index: ir::Value, bytes: usize) -> ir::Value {
        let o = if bytes == 1 { index } else { self.fb.ins().imul_imm_s(index, bytes as i64) };
        self.fb.ins().iadd(base, o)
    }

    /// The error status for a failed check here.
    fn error_code(&mut self, msg: impl Into<String>, span: Span) -> i64 {
        self.layout.errors.push((msg.into(), span));
        self.layout.errors.len() as i64
    }

    /// Continues when `ok` (an `i8` truth) holds, else returns the error.
    fn check(&mut self, ok: ir::Value, msg: impl Into<String>, span: Span) {
        let code = self.error_code(msg, span);
        let code = self.iconst(code);
        let cont = self.fb.create_block();
        self.fb.ins().brif(ok, cont, &[], self.err_block, &[BlockArg::Value(code)]);
        self.fb.switch_to_block(cont);
        self.fb.seal_block(cont);
    }

    // ---- loops -------------------------------------------------------------------------------

    /// `for i in start..end step step { body(i) }` with a positive step.
    fn loop_range(&mut self, start: ir::Value, end: ir::Value, step: ir::Value, body: &mut dyn FnMut(&mut Self, ir::Value)) {
        let iv = self.fb.declare_var(I64);
        self.fb.def_var(iv, start);
        let header = self.fb.create_block();
        let inner = self.fb.create_block();
        let exit = self.fb.create_block();
        self.fb.ins().jump(header, &[]);
        self.fb.switch_to_block(header);
        let i = self.fb.use_var(iv);
        let c = self.fb.ins().icmp(IntCC::SignedLessThan, i, end);
        self.fb.ins().brif(c, inner, &[], exit, &[]);
        self.fb.switch_to_block(inner);
        self.fb.seal_block(inner);
        body(self, i);
        let i = self.fb.use_var(iv);
        let next = self.fb.ins().iadd(i, step);
        self.fb.def_var(iv, next);
        self.fb.ins().jump(header, &[]);
        self.fb.seal_block(header);
        self.fb.switch_to_block(exit);
        self.fb.seal_block(exit);
    }

    /// `for i in 0..n { body(i) }` for a constant `n`.
    fn loop_n(&mut self, n: usize, body: &mut dyn FnMut(&mut Self, ir::Value)) {
        if n == 1 {
            let z = self.iconst(0);
            body(self, z);
            return;
        }
        let (s, e, st) = (self.iconst(0), self.iconst(n as i64), self.iconst(1));
        self.loop_range(s, e, st, body);
    }

    /// Visits every element of `shape` (row-major); `body` gets, per operand, `base + Σ idx·stride`.
    fn nd_loop(&mut self, shape: &[usize], strides: &[Vec<i64>], bases: &[ir::Value], body: &mut dyn FnMut(&mut Self, &[ir::Value])) {
        // Merge axes that are contiguous for every operand and drop extents of 1.
        let mut dims: Vec<(usize, Vec<i64>)> = Vec::new();
        for d in 0..shape.len() {
            if shape[d] == 1 {
                continue;
            }
            let st: Vec<i64> = strides.iter().map(|s| s[d]).collect();
            if let Some((n, prev)) = dims.last_mut()
                && prev.iter().zip(&st).all(|(&p, &s)| p == s * shape[d] as i64)
            {
                *n *= shape[d];
                *prev = st;
                continue;
            }
            dims.push((shape[d], st));
        }
        self.nd_rec(&dims, 0, bases.to_vec(), body);
    }

    fn nd_rec(&mut self, dims: &[(usize, Vec<i64>)], d: usize, cur: Vec<ir::Value>, body: &mut dyn FnMut(&mut Self, &[ir::Value])) {
        if d == dims.len() {
            body(self, &cur);
            return;
        }
        let (n, st) = (dims[d].0, dims[d].1.clone());
        self.loop_n(n, &mut |s: &mut Self, i| {
            let next: Vec<ir::Value> = cur
                .iter()
                .zip(&st)
                .map(|(&c, &stride)| match stride {
                    0 => c,
                    1 => s.fb.ins().iadd(c, i),
                    _ => {
                        let m = s.fb.ins().imul_imm_s(i, stride);
                        s.fb.ins().iadd(c, m)
                    }
                })
                .collect();
            s.nd_rec(dims, d + 1, next, body);
        });
    }

    // ---- codes and values --------------------------------------------------------------------

    /// The code (zero-extended `i32`) of the container at `addr`.
    fn load_code(&mut self, d: DType, addr: ir::Value) -> ir::Value {
        match container_bytes(d) {
            1 => self.fb.ins().uload8(I32, mf(), addr, 0),
            2 => self.fb.ins().uload16(I32, mf(), addr, 0),
            _ => self.fb.ins().load(I32, mf(), addr, 0),
        }
    }

    fn store_code(&mut self, d: DType, code: ir::Value, addr: ir::Value) {
        match container_bytes(d) {
            1 => self.fb.ins().istore8(mf(), code, addr, 0),
            2 => self.fb.ins().istore16(mf(), code, addr, 0),
            _ => self.fb.ins().store(mf(), code, addr, 0),
        };
    }

    /// The computing form (`i64` or `f64`) of a code of `d`.
    fn decode(&mut self, d: DType, code: ir::Value) -> ir::Value {
        if d.is_int() {
            let bits = d.bits() as i64;
            let c = self.fb.ins().uextend(I64, code);
            if d.is_signed() {
                let sh = self.fb.ins().ishl_imm_u(c, 64 - bits);
                self.fb.ins().sshr_imm_u(sh, 64 - bits)
            } else {
                c
            }
        } else if is_f32(d) {
            let f = self.fb.ins().bitcast(F32, MemFlagsData::new(), code);
            self.fb.ins().fpromote(F64, f)
        } else if is_bf16(d) {
            let sh = self.fb.ins().ishl_imm_u(code, 16);
            let f = self.fb.ins().bitcast(F32, MemFlagsData::new(), sh);
            self.fb.ins().fpromote(F64, f)
        } else if let Some(f) = d.float_format().filter(|f| f.bits() <= 16) {
            self.decode_narrow_float(f, code)
        } else {
            let c = self.fb.ins().uextend(I64, code);
            let dd = self.iconst(desc(d));
            self.call("tilc_cpu_decode", &[dd, c]).expect("decode returns")
        }
    }

    /// `FloatFormat::decode` of a format of at most 16 bits, in integer and f64 operations:
    /// a normal number's f64 bits are its exponent rebiased and its mantissa shifted up; a
    /// subnormal is `mantissa · 2^(emin − M)`, a product of exact values; then the special
    /// codes of the family (the interpreter's NaN is `f64::NAN`, negated for a set sign bit).
    fn decode_narrow_float(&mut self, f: FloatFormat, code: ir::Value) -> ir::Value {
        let (e, m) = (i64::from(f.exp_bits()), i64::from(f.man_bits()));
        let bias = i64::from(f.bias());
        let mag_mask = mask((e + m) as u32);
        let c = self.fb.ins().uextend(I64, code);
        let c = self.fb.ins().band_imm_u(c, mask(f.bits()));
        let mag = self.fb.ins().band_imm_u(c, mag_mask);
        let exp = self.fb.ins().ushr_imm_u(mag, m);
        let man = self.fb.ins().band_imm_u(mag, mask(m as u32));
        let nan = self.fb.ins().f64const(f64::NAN);
        let value = if f.family() == FloatFamily::PowerOfTwo {
            let bits = self.fb.ins().iadd_imm_s(exp, 1023 - bias);
            let bits = self.fb.ins().ishl_imm_u(bits, 52);
            let v = self.fb.ins().bitcast(F64, MemFlagsData::new(), bits);
            let all = self.fb.ins().icmp_imm_s(IntCC::Equal, mag, mag_mask);
            self.fb.ins().select(all, nan, v)
        } else {
            let bits = self.fb.ins().iadd_imm_s(exp, 1023 - bias);
            let bits = self.fb.ins().ishl_imm_u(bits, 52);
            let frac = self.fb.ins().ishl_imm_u(man, 52 - m);
            let bits = self.fb.ins().bor(bits, frac);
            let normal = self.fb.ins().bitcast(F64, MemFlagsData::new(), bits);
            let scale = self.fb.ins().f64const(f64::from_bits(((1 - bias - m + 1023) as u64) << 52));
            let manf = self.fb.ins().fcvt_from_uint(F64, man);
            let sub = self.fb.ins().fmul(manf, scale);
            let is_sub = self.fb.ins().icmp_imm_s(IntCC::Equal, exp, 0);
            let v = self.fb.ins().select(is_sub, sub, normal);
            match f.family() {
                FloatFamily::Ieee => {
                    let inf = self.fb.ins().f64const(f64::INFINITY);
                    let man_zero = self.fb.ins().icmp_imm_s(IntCC::Equal, man, 0);
                    let special = self.fb.ins().select(man_zero, inf, nan);
                    let all = self.fb.ins().icmp_imm_s(IntCC::Equal, exp, mask(e as u32));
                    self.fb.ins().select(all, special, v)
                }
                FloatFamily::FiniteNan => {
                    let all = self.fb.ins().icmp_imm_s(IntCC::Equal, mag, mag_mask);
                    self.fb.ins().select(all, nan, v)
                }
                _ => v,
            }
        };
        if f.signed() {
            let neg = self.fb.ins().band_imm_u(c, f.sign_mask() as i64);
            let negated = self.fb.ins().fneg(value);
            self.fb.ins().select(neg, negated, value)
        } else {
            // Bits above the magnitude of an unsigned format make the code a NaN.
            let high = self.fb.ins().icmp(IntCC::NotEqual, c, mag);
            self.fb.ins().select(high, nan, value)
        }
    }

    /// The code (`i32`) of a computing-form value, rounded like the interpreter's `encode_vals`
    /// (integers masked; floats nearest-even, non-saturating).
    fn encode(&mut self, d: DType, x: ir::Value) -> ir::Value {
        if d.is_int() {
            let c = self.fb.ins().ireduce(I32, x);
            if d.bits() < 32 { self.fb.ins().band_imm_u(c, mask(d.bits())) } else { c }
        } else if is_f32(d) {
            let f = self.fb.ins().fdemote(F32, x);
            let bits = self.fb.ins().bitcast(I32, MemFlagsData::new(), f);
            let sign = self.fb.ins().band_imm_u(bits, 0x8000_0000u32 as i64);
            let nan = self.fb.ins().bor_imm_u(sign, 0x7FC0_0000);
            let is_nan = self.fb.ins().fcmp(FloatCC::Unordered, x, x);
            self.fb.ins().select(is_nan, nan, bits)
        } else {
            let dd = self.iconst(desc(d));
            let z = self.iconst(0);
            let c = self.call("tilc_cpu_encode", &[dd, x, z, z, z, z]).expect("encode returns");
            self.fb.ins().ireduce(I32, c)
        }
    }

    /// The interpreter's `wrap_int`.
    fn wrap_int(&mut self, d: DType, x: ir::Value) -> ir::Value {
        let bits = d.bits() as i64;
        if bits >= 64 {
            return x;
        }
        let sh = self.fb.ins().ishl_imm_u(x, 64 - bits);
        if d.is_signed() { self.fb.ins().sshr_imm_u(sh, 64 - bits) } else { self.fb.ins().ushr_imm_u(sh, 64 - bits) }
    }

    /// The interpreter's `round_float`.
    fn round_float(&mut self, d: DType, x: ir::Value) -> ir::Value {
        if d == DType::F64 {
            x
        } else if is_f32(d) {
            let f = self.fb.ins().fdemote(F32, x);
            self.fb.ins().fpromote(F64, f)
        } else {
            let dd = self.iconst(desc(d));
            self.call("tilc_cpu_round", &[dd, x]).expect("round returns")
        }
    }

    /// The operand form of `v`: a tile's buffer or a scalar's value.
    fn opnd(&mut self, v: Value) -> Opnd {
        match self.k.ty(v) {
            Type::Scalar(_) => Opnd::Scalar(self.scalar(v)),
            _ => Opnd::Tile(self.buf(v)),
        }
    }

    /// The computing-form value of an operand at element index `idx`.
    fn opnd_value(&mut self, o: Opnd, d: DType, idx: ir::Value) -> ir::Value {
        match o {
            Opnd::Scalar(x) => x,
            Opnd::Tile(off) => {
                let base = self.addr(off);
                let a = self.elem_addr(base, idx, container_bytes(d));
                let c = self.load_code(d, a);
                self.decode(d, c)
            }
        }
    }

    /// The code of an operand at element index `idx`.
    fn opnd_code(&mut self, o: Opnd, d: DType, idx: ir::Value) -> ir::Value {
        match o {
            Opnd::Scalar(x) => self.encode(d, x),
            Opnd::Tile(off) => {
                let base = self.addr(off);
                let a = self.elem_addr(base, idx, container_bytes(d));
                self.load_code(d, a)
            }
        }
    }

    /// Writes `f(element values…, linear index)` encoded to `out_d` for every element of the
    /// result tile `out` of `shape`, reading `ins` with NumPy broadcasting.
    fn elementwise(
        &mut self,
        out: Value,
        ins: &[(Value, DType)],
        f: &mut dyn FnMut(&mut Self, &[ir::Value], ir::Value) -> ir::Value,
        mode: Ew,
    ) {
        let (in_codes, out_code) = match mode {
            Ew::Values => (false, false),
            Ew::Codes => (true, true),
            Ew::ValuesToCode => (false, true),
        };
        let out_t = self.k.ty(out).as_tile().expect("elementwise result is a tile").clone();
        let ob = self.buf(out);
        let opnds: Vec<Opnd> = ins.iter().map(|(v, _)| self.opnd(*v)).collect();
        let mut strides = vec![row_major_strides(&out_t.shape)];
        for (v, _) in ins {
            strides.push(bcast_strides(&out_t.shape, &tile_shape(self.k, *v)));
        }
        let z = self.iconst(0);
        let bases = vec![z; strides.len()];
        let ins = ins.to_vec();
        self.nd_loop(&out_t.shape, &strides, &bases, &mut |s: &mut Self, idx| {
            let vals: Vec<ir::Value> = ins
                .iter()
                .enumerate()
                .map(|(j, (_, d))| if in_codes { s.opnd_code(opnds[j], *d, idx[j + 1]) } else { s.opnd_value(opnds[j], *d, idx[j + 1]) })
                .collect();
            let r = f(s, &vals, idx[0]);
            let code = if out_code { r } else { s.encode(out_t.dtype, r) };
            let base = s.addr(ob);
            let a = s.elem_addr(base, idx[0], container_bytes(out_t.dtype));
            s.store_code(out_t.dtype, code, a);
        });
    }

    /// The elementwise `op` producing the tile `out` four elements at a time, when the last
    /// axis is a multiple of 4 long and every tile operand is read along it contiguously or
    /// broadcast (else `false`, and nothing is emitted); [`VecOp`] says which operations and
    /// types qualify and why each equals the interpreter's element-by-element result.
    fn vector_ew(&mut self, out: Value, ins: &[(Value, DType)], op: VecOp) -> bool {
        let out_t = self.k.ty(out).as_tile().expect("elementwise result is a tile").clone();
        let rank = out_t.shape.len();
        let last = out_t.shape[rank - 1];
        if !last.is_multiple_of(4) || !op.applies(ins.iter().map(|(_, d)| *d), out_t.dtype) {
            return false;
        }
        if last.is_multiple_of(16) && self.vector_bytes(out, ins, op) {
            return true;
        }
        let mut strides = vec![row_major_strides(&out_t.shape)];
        for (v, _) in ins {
            strides.push(if self.k.ty(*v).is_scalar() { vec![0; rank] } else { bcast_strides(&out_t.shape, &tile_shape(self.k, *v)) });
        }
        if strides.iter().any(|st| st[rank - 1] > 1) {
            return false;
        }
        let mut shape = out_t.shape.clone();
        shape[rank - 1] = last / 4;
        let contiguous: Vec<bool> = strides[1..].iter().map(|st| st[rank - 1] == 1).collect();
        for st in &mut strides {
            st[rank - 1] *= 4;
        }
        let opnds: Vec<Opnd> = ins.iter().map(|(v, _)| self.opnd(*v)).collect();
        let ob = self.buf(out);
        let z = self.iconst(0);
        let bases = vec![z; strides.len()];
        let ins = ins.to_vec();
        let out_d = out_t.dtype;
        self.nd_loop(&shape, &strides, &bases, &mut |s: &mut Self, idx| {
            let vals: Vec<ir::Value> = (0..ins.len()).map(|j| s.vector_operand(opnds[j], ins[j].1, idx[j + 1], contiguous[j])).collect();
            let codes = match op {
                VecOp::FBinary(o) => {
                    let r = match o {
                        BinaryOp::Add => s.fb.ins().fadd(vals[0], vals[1]),
                        BinaryOp::Sub => s.fb.ins().fsub(vals[0], vals[1]),
                        BinaryOp::Mul => s.fb.ins().fmul(vals[0], vals[1]),
                        _ => s.fb.ins().fdiv(vals[0], vals[1]),
                    };
                    s.f32x4_codes(r)
                }
                // An integer converts to a number (no NaN to make canonical).
                VecOp::ToF32 { .. } if ins[0].1.is_int() => {
                    let r = s.fb.ins().fcvt_from_sint(F32X4, vals[0]);
                    s.vcast(I32X4, r)
                }
                VecOp::ToF32 { saturate } => {
                    // A bf16 NaN keeps its payload when decoded; `encode` makes it canonical.
                    let bits = s.f32x4_codes(vals[0]);
                    if saturate {
                        // ±Inf → ±the largest f32 (`cast_code`'s saturating rule); NaN stays.
                        let abs_m = s.splat_i32(0x7FFF_FFFF);
                        let abs = s.fb.ins().band(bits, abs_m);
                        let inf = s.splat_i32(0x7F80_0000);
                        let is_inf = s.fb.ins().icmp(IntCC::Equal, abs, inf);
                        let one = s.splat_i32(1);
                        let max = s.fb.ins().isub(bits, one);
                        s.fb.ins().bitselect(is_inf, max, bits)
                    } else {
                        bits
                    }
                }
                VecOp::F32ToHalf { saturate } => s.f32x4_to_half(out_d, vals[0], saturate),
                VecOp::IBinary(o) => {
                    let r = match o {
                        BinaryOp::Add => s.fb.ins().iadd(vals[0], vals[1]),
                        BinaryOp::Sub => s.fb.ins().isub(vals[0], vals[1]),
                        BinaryOp::Mul => s.fb.ins().imul(vals[0], vals[1]),
                        BinaryOp::And => s.fb.ins().band(vals[0], vals[1]),
                        BinaryOp::Or => s.fb.ins().bor(vals[0], vals[1]),
                        _ => s.fb.ins().bxor(vals[0], vals[1]),
                    };
                    s.i32x4_mask(r, out_d.bits())
                }
                VecOp::ICast { saturate } => {
                    let v = if saturate {
                        let (lo, hi) = int_range(out_d);
                        let lo = s.splat_i32(lo);
                        let hi = s.splat_i32(hi);
                        let v = s.fb.ins().smax(vals[0], lo);
                        s.fb.ins().smin(v, hi)
                    } else {
                        vals[0]
                    };
                    s.i32x4_mask(v, out_d.bits())
                }
            };
            let base = s.addr(ob);
            let a = s.elem_addr(base, idx[0], container_bytes(out_d));
            s.store_codes_x4(codes, container_bytes(out_d), a);
        });
        true
    }

    /// Integer `+ − & | ^` and casts between types held in one-byte containers, sixteen codes
    /// at a time in `i8x16` lanes (else `false`, nothing emitted): the low `bits` bits of the
    /// result, all the code keeps, depend only on the low bits of the operands' codes. A cast
    /// qualifies when it needs no sign extension (an unsigned source, or one at least as wide
    /// as the result). The caller checked [`VecOp::applies`] and that the last axis is a
    /// multiple of 16.
    fn vector_bytes(&mut self, out: Value, ins: &[(Value, DType)], op: VecOp) -> bool {
        let out_t = self.k.ty(out).as_tile().expect("elementwise result is a tile").clone();
        let out_d = out_t.dtype;
        let byte_code = |d: DType| d.is_int() && d.bits() <= 8;
        let ok = byte_code(out_d)
            && ins.iter().all(|(_, d)| byte_code(*d))
            && match op {
                VecOp::IBinary(o) => matches!(o, BinaryOp::Add | BinaryOp::Sub | BinaryOp::And | BinaryOp::Or | BinaryOp::Xor),
                VecOp::ICast { saturate: false } => !ins[0].1.is_signed() || ins[0].1.bits() >= out_d.bits(),
                _ => false,
            };
        if !ok {
            return false;
        }
        let rank = out_t.shape.len();
        let mut strides = vec![row_major_strides(&out_t.shape)];
        for (v, _) in ins {
            strides.push(if self.k.ty(*v).is_scalar() { vec![0; rank] } else { bcast_strides(&out_t.shape, &tile_shape(self.k, *v)) });
        }
        let mut shape = out_t.shape.clone();
        shape[rank - 1] /= 16;
        let contiguous: Vec<bool> = strides[1..].iter().map(|st| st[rank - 1] == 1).collect();
        for st in &mut strides {
            st[rank - 1] *= 16;
        }
        let opnds: Vec<Opnd> = ins.iter().map(|(v, _)| self.opnd(*v)).collect();
        let ob = self.buf(out);
        let z = self.iconst(0);
        let bases = vec![z; strides.len()];
        let ins = ins.to_vec();
        self.nd_loop(&shape, &strides, &bases, &mut |s: &mut Self, idx| {
            let vals: Vec<ir::Value> = (0..ins.len())
                .map(|j| match opnds[j] {
                    Opnd::Tile(off) if contiguous[j] => {
                        let base = s.addr(off);
                        let a = s.fb.ins().iadd(base, idx[j + 1]);
                        s.fb.ins().load(I8X16, mf(), a, 0)
                    }
                    o => {
                        let c = s.opnd_code(o, ins[j].1, idx[j + 1]);
                        let c = s.fb.ins().ireduce(I8, c);
                        s.fb.ins().splat(I8X16, c)
                    }
                })
                .collect();
            let r = match op {
                VecOp::IBinary(BinaryOp::Add) => s.fb.ins().iadd(vals[0], vals[1]),
                VecOp::IBinary(BinaryOp::Sub) => s.fb.ins().isub(vals[0], vals[1]),
                VecOp::IBinary(BinaryOp::And) => s.fb.ins().band(vals[0], vals[1]),
                VecOp::IBinary(BinaryOp::Or) => s.fb.ins().bor(vals[0], vals[1]),
                VecOp::IBinary(_) => s.fb.ins().bxor(vals[0], vals[1]),
                _ => vals[0],
            };
            let r = if out_d.bits() < 8 {
                let m = s.fb.ins().iconst(I8, mask(out_d.bits()));
                let m = s.fb.ins().splat(I8X16, m);
                s.fb.ins().band(r, m)
            } else {
                r
            };
            let base = s.addr(ob);
            let a = s.fb.ins().iadd(base, idx[0]);
            s.fb.ins().store(mf(), r, a, 0);
        });
        true
    }

    fn splat_i32(&mut self, x: i64) -> ir::Value {
        let c = self.fb.ins().iconst(I32, x);
        self.fb.ins().splat(I32X4, c)
    }

    /// Reinterprets a 128-bit vector as another lane type.
    fn vcast(&mut self, ty: ir::Type, v: ir::Value) -> ir::Value {
        if self.fb.func.dfg.value_type(v) == ty {
            return v;
        }
        self.fb.ins().bitcast(ty, MemFlagsData::new().with_endianness(ir::Endianness::Little), v)
    }

    /// `v & (2^bits − 1)` lane-wise (no-op for 32 bits).
    fn i32x4_mask(&mut self, v: ir::Value, bits: u32) -> ir::Value {
        if bits >= 32 {
            return v;
        }
        let m = self.splat_i32(mask(bits));
        self.fb.ins().band(v, m)
    }

    /// The `f32` codes of four `f32` values as `encode` makes them: NaN → sign | 0x7FC00000.
    fn f32x4_codes(&mut self, r: ir::Value) -> ir::Value {
        let is_nan = self.fb.ins().fcmp(FloatCC::Unordered, r, r);
        let bits = self.vcast(I32X4, r);
        let sign_v = self.splat_i32(0x8000_0000u32 as i64);
        let qnan_v = self.splat_i32(0x7FC0_0000);
        let sign = self.fb.ins().band(bits, sign_v);
        let nan = self.fb.ins().bor(sign, qnan_v);
        let mask = self.vcast(I32X4, is_nan);
        self.fb.ins().bitselect(mask, nan, bits)
    }

    /// The `f16`/`bf16` codes (in `i32` lanes) of four `f32` values, nearest-even and
    /// non-saturating, as `FloatFormat::encode` gives them for these exact values: NaN →
    /// sign | quiet NaN, overflow → ±Inf (±max when saturating), subnormal results rounded by one `f32` addition
    /// (an exact sum rounded once by the hardware's nearest-even, the `half` crate's method).
    fn f32x4_to_half(&mut self, d: DType, v: ir::Value, saturate: bool) -> ir::Value {
        let bits = self.vcast(I32X4, v);
        let sign = self.fb.ins().ushr_imm_u(bits, 16);
        let sign_m = self.splat_i32(0x8000);
        let sign = self.fb.ins().band(sign, sign_m);
        let abs_m = self.splat_i32(0x7FFF_FFFF);
        let a = self.fb.ins().band(bits, abs_m);
        let inf32 = self.splat_i32(0x7F80_0000);
        let is_nan = self.fb.ins().icmp(IntCC::SignedGreaterThan, a, inf32);
        let one = self.splat_i32(1);
        let mag = if is_bf16(d) {
            // bf16 shares f32's exponent: round the low 16 bits away (overflow carries into Inf).
            let odd = self.fb.ins().ushr_imm_u(a, 16);
            let odd = self.fb.ins().band(odd, one);
            let bias = self.splat_i32(0x7FFF);
            let r = self.fb.ins().iadd(a, bias);
            let r = self.fb.ins().iadd(r, odd);
            let r = self.fb.ins().ushr_imm_u(r, 16);
            let r = if saturate {
                let inf = self.splat_i32(0x7F80);
                let is_inf = self.fb.ins().icmp(IntCC::Equal, r, inf);
                let max = self.splat_i32(0x7F7F);
                self.fb.ins().bitselect(is_inf, max, r)
            } else {
                r
            };
            let nan = self.splat_i32(0x7FC0);
            self.fb.ins().bitselect(is_nan, nan, r)
        } else {
            // Normal results: rebias the exponent (127 → 15) and round 13 bits off.
            let odd = self.fb.ins().ushr_imm_u(a, 13);
            let odd = self.fb.ins().band(odd, one);
            let rebias = self.splat_i32(0x3800_0000 - 0xFFF);
            let r = self.fb.ins().isub(a, rebias);
            let r = self.fb.ins().iadd(r, odd);
            let normal = self.fb.ins().ushr_imm_u(r, 13);
            // Below 2^-14: adding 0.5 puts the f16 subnormal code in the low bits, rounded.
            let half_bits = self.splat_i32(0x3F00_0000);
            let af = self.vcast(F32X4, a);
            let hf = self.vcast(F32X4, half_bits);
            let sum = self.fb.ins().fadd(af, hf);
            let sum = self.vcast(I32X4, sum);
            let sub = self.fb.ins().isub(sum, half_bits);
            let min_normal = self.splat_i32(0x3880_0000);
            let is_sub = self.fb.ins().icmp(IntCC::SignedLessThan, a, min_normal);
            let r = self.fb.ins().bitselect(is_sub, sub, normal);
            // From 65520 (the midpoint above the largest f16, 65504) up: Inf.
            let big = self.splat_i32(0x477F_F000);
            let over = self.fb.ins().icmp(IntCC::SignedGreaterThanOrEqual, a, big);
            let inf = self.splat_i32(if saturate { 0x7BFF } else { 0x7C00 });
            let r = self.fb.ins().bitselect(over, inf, r);
            let nan = self.splat_i32(0x7E00);
            self.fb.ins().bitselect(is_nan, nan, r)
        };
        self.fb.ins().bor(mag, sign)
    }

    /// Exact `f32` values of four `f16` codes (in `i32` lanes), as `decode` then `f32` gives
    /// them: the interpreter's NaN (`f64::NAN`, sign from the code) becomes sign | 0x7FC00000.
    fn half_codes_to_f32x4(&mut self, d: DType, c: ir::Value) -> ir::Value {
        if is_bf16(d) {
            let v = self.fb.ins().ishl_imm_u(c, 16);
            return self.vcast(F32X4, v);
        }
        let sign_m = self.splat_i32(0x8000);
        let sign = self.fb.ins().band(c, sign_m);
        let sign = self.fb.ins().ishl_imm_u(sign, 16);
        let mag_m = self.splat_i32(0x7FFF);
        let m = self.fb.ins().band(c, mag_m);
        let normal = self.fb.ins().ishl_imm_u(m, 13);
        let rebias = self.splat_i32(0x3800_0000);
        let normal = self.fb.ins().iadd(normal, rebias);
        // Subnormals (and zero): the mantissa times 2^-24, both exact in f32.
        let mf32 = self.fb.ins().fcvt_from_sint(F32X4, m);
        let scale_c = self.fb.ins().f32const(f32::from_bits(0x3380_0000));
        let scale = self.fb.ins().splat(F32X4, scale_c);
        let sub = self.fb.ins().fmul(mf32, scale);
        let sub = self.vcast(I32X4, sub);
        let min_normal = self.splat_i32(0x400);
        let is_sub = self.fb.ins().icmp(IntCC::SignedLessThan, m, min_normal);
        let r = self.fb.ins().bitselect(is_sub, sub, normal);
        let inf16 = self.splat_i32(0x7C00);
        let is_inf = self.fb.ins().icmp(IntCC::Equal, m, inf16);
        let inf = self.splat_i32(0x7F80_0000);
        let r = self.fb.ins().bitselect(is_inf, inf, r);
        let is_nan = self.fb.ins().icmp(IntCC::SignedGreaterThan, m, inf16);
        let nan = self.splat_i32(0x7FC0_0000);
        let r = self.fb.ins().bitselect(is_nan, nan, r);
        let r = self.fb.ins().bor(r, sign);
        self.vcast(F32X4, r)
    }

    /// Stores four codes (in `i32` lanes, each fitting its container) into containers of
    /// `bytes` bytes at `addr`.
    fn store_codes_x4(&mut self, codes: ir::Value, bytes: usize, addr: ir::Value) {
        match bytes {
            4 => {
                self.fb.ins().store(mf(), codes, addr, 0);
            }
            2 => {
                let h = self.fb.ins().unarrow(codes, codes);
                let h = self.vcast(I64X2, h);
                let w = self.fb.ins().extractlane(h, 0);
                self.fb.ins().store(mf(), w, addr, 0);
            }
            _ => {
                let h = self.fb.ins().unarrow(codes, codes);
                let b = self.fb.ins().unarrow(h, h);
                let b = self.vcast(I32X4, b);
                let w = self.fb.ins().extractlane(b, 0);
                self.fb.ins().store(mf(), w, addr, 0);
            }
        }
    }

    /// Four consecutive elements (or one broadcast) of an operand at element `idx`: `f32x4`
    /// values for `f32`, `f16` and `bf16`, `i32x4` computing values for integers of at most 32
    /// bits (a `u32` above 2^31 wraps; [`VecOp::applies`] admits it only where that is exact).
    fn vector_operand(&mut self, o: Opnd, d: DType, idx: ir::Value, contiguous: bool) -> ir::Value {
        let splat_of = |s: &mut Self, scalar: ir::Value| {
            if d.is_float() {
                let f = s.fb.ins().fdemote(F32, scalar);
                s.fb.ins().splat(F32X4, f)
            } else {
                let i = s.fb.ins().ireduce(I32, scalar);
                s.fb.ins().splat(I32X4, i)
            }
        };
        match o {
            Opnd::Scalar(x) => splat_of(self, x),
            Opnd::Tile(_) if !contiguous => {
                let v = self.opnd_value(o, d, idx);
                splat_of(self, v)
            }
            Opnd::Tile(off) => {
                let base = self.addr(off);
                let a = self.elem_addr(base, idx, container_bytes(d));
                self.load_x4(d, a)
            }
        }
    }

    /// Four consecutive elements of a tile at `a`, as [`Lower::vector_operand`] gives them.
    fn load_x4(&mut self, d: DType, a: ir::Value) -> ir::Value {
        if is_f32(d) {
            return self.fb.ins().load(F32X4, mf(), a, 0);
        }
        let v = match container_bytes(d) {
            4 => self.fb.ins().load(I32X4, mf(), a, 0),
            2 => self.fb.ins().uload16x4(mf(), a, 0),
            _ => {
                let w = self.fb.ins().load(I32, mf(), a, 0);
                let v = self.fb.ins().scalar_to_vector(I32X4, w);
                let v = self.vcast(I8X16, v);
                let v = self.fb.ins().uwiden_low(v);
                self.fb.ins().uwiden_low(v)
            }
        };
        if d.is_float() {
            return self.half_codes_to_f32x4(d, v);
        }
        let bits = d.bits() as i64;
        if d.is_signed() && bits < 32 {
            let v = self.fb.ins().ishl_imm_u(v, 32 - bits);
            self.fb.ins().sshr_imm_u(v, 32 - bits)
        } else {
            v
        }
    }

    /// Copies `bytes` bytes between scratch offsets.
    /// Sixteen at a time: every scratch buffer is followed by at least 16 bytes of slack
    /// ([`Lower::alloc`]), so the last word may run past `bytes`.
    fn copy_bytes(&mut self, from: u32, to: u32, bytes: usize) {
        let words = bytes.div_ceil(16);
        let (src, dst) = (self.addr(from), self.addr(to));
        self.loop_n(words, &mut |s: &mut Self, i| {
            let a = s.elem_addr(src, i, 16);
            let x = s.fb.ins().load(I32X4, mf(), a, 0);
            let b = s.elem_addr(dst, i, 16);
            s.fb.ins().store(mf(), x, b, 0);
        });
    }

    /// Writes `code` into the `n` containers of `d` from byte address `start`, sixteen bytes
    /// at a time (the last word may run up to 15 bytes past the end: into the buffer's slack,
    /// or into elements that the caller writes afterwards).
    fn fill_codes(&mut self, d: DType, code: ir::Value, start: ir::Value, n: ir::Value) {
        let bytes = container_bytes(d);
        let c = self.fb.ins().uextend(I64, code);
        let rep = match bytes {
            1 => 0x0101_0101_0101_0101u64 as i64,
            2 => 0x0001_0001_0001_0001,
            _ => 0x0000_0001_0000_0001,
        };
        let w = self.fb.ins().imul_imm_s(c, rep);
        let v = self.fb.ins().splat(I64X2, w);
        let len = self.fb.ins().imul_imm_s(n, bytes as i64);
        let end = self.fb.ins().iadd(start, len);
        let sixteen = self.iconst(16);
        self.loop_range(start, end, sixteen, &mut |s: &mut Self, a| {
            s.fb.ins().store(mf(), v, a, 0);
        });
    }

    // ---- element operations ------------------------------------------------------------------

    fn int_unary(&mut self, op: UnaryOp, d: DType, a: ir::Value) -> ir::Value {
        match op {
            UnaryOp::Neg => self.fb.ins().ineg(a),
            UnaryOp::Abs => self.fb.ins().iabs(a),
            UnaryOp::Not if d == DType::UInt(1) => {
                let one = self.iconst(1);
                self.fb.ins().isub(one, a)
            }
            UnaryOp::Not => self.fb.ins().bnot(a),
            _ => a,
        }
    }

    fn float_unary(&mut self, op: UnaryOp, a: ir::Value) -> ir::Value {
        let libm = |s: &mut Self, n: i64| {
            let n = s.iconst(n);
            let z = s.fb.ins().f64const(0.0);
            s.call("tilc_cpu_libm", &[n, a, z]).expect("libm returns")
        };
        match op {
            UnaryOp::Neg => self.fb.ins().fneg(a),
            UnaryOp::Abs => self.fb.ins().fabs(a),
            UnaryOp::Not => self.fb.ins().f64const(f64::NAN),
            UnaryOp::Exp => libm(self, 0),
            UnaryOp::Exp2 => libm(self, 1),
            UnaryOp::Log => libm(self, 2),
            UnaryOp::Log2 => libm(self, 3),
            UnaryOp::Sqrt => self.fb.ins().sqrt(a),
            UnaryOp::Rsqrt => libm(self, 4),
            UnaryOp::Floor => self.fb.ins().floor(a),
            UnaryOp::Ceil => self.fb.ins().ceil(a),
            UnaryOp::Trunc => self.fb.ins().trunc(a),
            UnaryOp::Round => self.fb.ins().nearest(a),
        }
    }

    /// The interpreter's `int_binary` on `i64`s, with its run-time errors as checks.
    fn int_binary(&mut self, op: BinaryOp, d: DType, a: ir::Value, b: ir::Value, span: Span) -> ir::Value {
        let bits = i64::from(d.bits());
        match op {
            BinaryOp::Add => self.fb.ins().iadd(a, b),
            BinaryOp::Sub => self.fb.ins().isub(a, b),
            BinaryOp::Mul => self.fb.ins().imul(a, b),
            BinaryOp::Div | BinaryOp::Rem | BinaryOp::CeilDiv => {
                let nz = self.fb.ins().icmp_imm_s(IntCC::NotEqual, b, 0);
                self.check(nz, "integer division by zero", span);
                // i64::MIN / −1 wraps (Rust's wrapping_div); Cranelift's sdiv would trap.
                let m1 = self.fb.ins().icmp_imm_s(IntCC::Equal, b, -1);
                let one = self.iconst(1);
                let bs = self.fb.ins().select(m1, one, b);
                let q0 = self.fb.ins().sdiv(a, bs);
                let na = self.fb.ins().ineg(a);
                let q = self.fb.ins().select(m1, na, q0);
                let r0 = self.fb.ins().srem(a, bs);
                let zero = self.iconst(0);
                let r = self.fb.ins().select(m1, zero, r0);
                match op {
                    BinaryOp::Div => q,
                    BinaryOp::Rem => r,
                    _ => {
                        let rnz = self.fb.ins().icmp_imm_s(IntCC::NotEqual, r, 0);
                        let an = self.fb.ins().icmp_imm_s(IntCC::SignedLessThan, a, 0);
                        let bn = self.fb.ins().icmp_imm_s(IntCC::SignedLessThan, b, 0);
                        let same = self.fb.ins().icmp(IntCC::Equal, an, bn);
                        let up = self.fb.ins().band(rnz, same);
                        let up = self.fb.ins().uextend(I64, up);
                        self.fb.ins().iadd(q, up)
                    }
                }
            }
            BinaryOp::Min => self.fb.ins().smin(a, b),
            BinaryOp::Max => self.fb.ins().smax(a, b),
            BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
                let cc = match op {
                    BinaryOp::Eq => IntCC::Equal,
                    BinaryOp::Ne => IntCC::NotEqual,
                    BinaryOp::Lt => IntCC::SignedLessThan,
                    BinaryOp::Le => IntCC::SignedLessThanOrEqual,
                    BinaryOp::Gt => IntCC::SignedGreaterThan,
                    _ => IntCC::SignedGreaterThanOrEqual,
                };
                let c = self.fb.ins().icmp(cc, a, b);
                self.fb.ins().uextend(I64, c)
            }
            BinaryOp::And => self.fb.ins().band(a, b),
            BinaryOp::Or => self.fb.ins().bor(a, b),
            BinaryOp::Xor => self.fb.ins().bxor(a, b),
            BinaryOp::Shl | BinaryOp::Shr => {
                let ok = self.fb.ins().icmp_imm_s(IntCC::SignedGreaterThanOrEqual, b, 0);
                self.check(ok, "shift by a negative amount", span);
                let big = self.fb.ins().icmp_imm_s(IntCC::SignedGreaterThanOrEqual, b, bits);
                let zero = self.iconst(0);
                if op == BinaryOp::Shl {
                    let r = self.fb.ins().ishl(a, b);
                    self.fb.ins().select(big, zero, r)
                } else if d.is_signed() {
                    let c63 = self.iconst(63);
                    let n = self.fb.ins().smin(b, c63);
                    self.fb.ins().sshr(a, n)
                } else {
                    let r = self.fb.ins().ushr(a, b);
                    self.fb.ins().select(big, zero, r)
                }
            }
        }
    }

    /// The interpreter's `float_binary` on `f64`s (comparisons give `i64` 0/1).
    fn float_binary(&mut self, op: BinaryOp, a: ir::Value, b: ir::Value) -> ir::Value {
        match op {
            BinaryOp::Add => self.fb.ins().fadd(a, b),
            BinaryOp::Sub => self.fb.ins().fsub(a, b),
            BinaryOp::Mul => self.fb.ins().fmul(a, b),
            BinaryOp::Div => self.fb.ins().fdiv(a, b),
            BinaryOp::Rem => {
                let n = self.iconst(5);
                self.call("tilc_cpu_libm", &[n, a, b]).expect("libm returns")
            }
            BinaryOp::Min | BinaryOp::Max => {
                // Rust's f64::min/max on x86-64 keep the first operand unless the second is
                // strictly smaller/greater (which decides the sign of a zero result).
                let cc = if op == BinaryOp::Min { FloatCC::LessThan } else { FloatCC::GreaterThan };
                let better = self.fb.ins().fcmp(cc, b, a);
                let r = self.fb.ins().select(better, b, a);
                let nan = self.fb.ins().fcmp(FloatCC::Unordered, a, b);
                let qnan = self.fb.ins().f64const(f64::NAN);
                self.fb.ins().select(nan, qnan, r)
            }
            BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
                let cc = match op {
                    BinaryOp::Eq => FloatCC::Equal,
                    BinaryOp::Ne => FloatCC::NotEqual,
                    BinaryOp::Lt => FloatCC::LessThan,
                    BinaryOp::Le => FloatCC::LessThanOrEqual,
                    BinaryOp::Gt => FloatCC::GreaterThan,
                    _ => FloatCC::GreaterThanOrEqual,
                };
                let c = self.fb.ins().fcmp(cc, a, b);
                self.fb.ins().uextend(I64, c)
            }
            _ => self.fb.ins().f64const(f64::NAN),
        }
    }

    /// The code of computing-form `x` (of `src`) cast to `dst`; `key` is the stochastic index.
    #[allow(clippy::too_many_arguments)]
    fn cast_code(&mut self, src: DType, dst: DType, x: ir::Value, mode: i64, seed: ir::Value, key: ir::Value, sat: bool) -> ir::Value {
        if src.is_int() && dst.is_int() {
            // Integers convert exactly in f64; only the overflow rule matters.
            let v = if sat {
                let (lo, hi) = if dst.is_signed() { (-(1i64 << (dst.bits() - 1)), (1i64 << (dst.bits() - 1)) - 1) } else { (0, mask(dst.bits())) };
                let (lo, hi) = (self.iconst(lo), self.iconst(hi));
                let v = self.fb.ins().smax(x, lo);
                self.fb.ins().smin(v, hi)
            } else {
                x
            };
            return self.encode(dst, v);
        }
        if mode == helpers::MODE_RNE {
            if src.is_int() && is_f32(dst) {
                let f = self.fb.ins().fcvt_from_sint(F64, x);
                return self.encode(dst, f);
            }
            if src.is_float() && src.bits() <= 32 && is_f32(dst) {
                let c = self.encode(dst, x);
                if !sat {
                    return c;
                }
                let inf = self.fb.ins().fabs(x);
                let pinf = self.fb.ins().f64const(f64::INFINITY);
                let inf = self.fb.ins().fcmp(FloatCC::Equal, inf, pinf);
                let sign = self.fb.ins().band_imm_u(c, 0x8000_0000u32 as i64);
                let max = self.fb.ins().bor_imm_u(sign, 0x7F7F_FFFF);
                return self.fb.ins().select(inf, max, c);
            }
            if src.is_float() && dst.is_int() && sat {
                let (lo, hi) = if dst.is_signed() { (-(1i64 << (dst.bits() - 1)), (1i64 << (dst.bits() - 1)) - 1) } else { (0, mask(dst.bits())) };
                let r = self.fb.ins().nearest(x);
                let (flo, fhi) = (self.fb.ins().f64const(lo as f64), self.fb.ins().f64const(hi as f64));
                let r = self.fb.ins().fmax(r, flo);
                let r = self.fb.ins().fmin(r, fhi);
                let i = self.fb.ins().fcvt_to_sint_sat(I64, r);
                return self.encode(dst, i);
            }
        }
        let xf = if src.is_int() { self.fb.ins().fcvt_from_sint(F64, x) } else { x };
        let dd = self.iconst(desc(dst));
        let m = self.iconst(mode);
        let s = self.iconst(i64::from(sat));
        let c = self.call("tilc_cpu_encode", &[dd, xf, m, seed, key, s]).expect("encode returns");
        self.fb.ins().ireduce(I32, c)
    }

    // ---- instructions ------------------------------------------------------------------------

    fn entry(&mut self) {
        let k = self.k;
        for (i, p) in k.params.iter().enumerate() {
            if let Param::Scalar(v) = p {
                let w = self.layout.param_slot[i];
                let x = if k.ty(*v).dtype().is_float() {
                    self.fb.ins().load(F64, mf(), self.env, (w * 8) as i32)
                } else {
                    self.env_word(w)
                };
                self.set_scalar(*v, x);
            }
        }
    }

    fn body(&mut self, body: &[Inst]) -> Result<(), LowerError> {
        for &i in body {
            self.inst(i)?;
        }
        Ok(())
    }

    fn inst(&mut self, i: Inst) -> Result<(), LowerError> {
        let k = self.k;
        let data = &k.insts[i];
        let span = data.span;
        let res = data.result;
        let res_ty = res.map(|r| k.ty(r).clone());
        use InstKind::*;
        match &data.kind {
            Const(c) => {
                let r = res.expect("const has a result");
                let d = k.ty(r).dtype();
                let x = match c {
                    ScalarConst::Int(x) if d.is_int() => {
                        let x = self.iconst(*x);
                        self.wrap_int(d, x)
                    }
                    ScalarConst::Int(x) => self.fb.ins().f64const(*x as f64),
                    ScalarConst::Float(x) if d.is_int() => self.iconst(*x as i64),
                    ScalarConst::Float(x) => self.fb.ins().f64const(*x),
                };
                self.set_scalar(r, x);
            }
            BlockIdx { axis } => {
                let r = res.expect("block index has a result");
                self.set_scalar(r, self.block_idx[*axis as usize]);
            }
            Iota { dtype, shape, axis } => {
                let r = res.expect("iota has a result");
                let ob = self.buf(r);
                let mut pseudo = vec![0i64; shape.len()];
                pseudo[*axis] = 1;
                let z = self.iconst(0);
                let dtype = *dtype;
                self.nd_loop(shape, &[row_major_strides(shape), pseudo], &[z, z], &mut |s: &mut Self, idx| {
                    let c = s.encode(dtype, idx[1]);
                    let base = s.addr(ob);
                    let a = s.elem_addr(base, idx[0], container_bytes(dtype));
                    s.store_code(dtype, c, a);
                });
            }
            Unary { op, x } => {
                let r = res.expect("unary has a result");
                let d = k.ty(r).dtype();
                let op = *op;
                if k.ty(*x).is_scalar() {
                    let a = self.scalar(*x);
                    let v = if d.is_int() {
                        let v = self.int_unary(op, d, a);
                        self.wrap_int(d, v)
                    } else {
                        let v = self.float_unary(op, a);
                        self.round_float(d, v)
                    };
                    self.set_scalar(r, v);
                } else {
                    self.elementwise(r, &[(*x, d)], &mut |s: &mut Self, v, _| if d.is_int() { s.int_unary(op, d, v[0]) } else { s.float_unary(op, v[0]) }, Ew::Values);
                }
            }
            Binary { op, a, b } => {
                let r = res.expect("binary has a result");
                let (d_in, d_out, op) = (k.ty(*a).dtype(), k.ty(r).dtype(), *op);
                if matches!(res_ty, Some(Type::Scalar(_))) {
                    let (x, y) = (self.scalar(*a), self.scalar(*b));
                    let v = if d_in.is_int() {
                        let v = self.int_binary(op, d_in, x, y, span);
                        self.wrap_int(d_out, v)
                    } else if op.is_comparison() {
                        self.float_binary(op, x, y)
                    } else {
                        let v = self.float_binary(op, x, y);
                        self.round_float(d_out, v)
                    };
                    self.set_scalar(r, v);
                } else if !self.vector_ew(r, &[(*a, d_in), (*b, d_in)], if d_in.is_int() { VecOp::IBinary(op) } else { VecOp::FBinary(op) }) {
                    self.elementwise(
                        r,
                        &[(*a, d_in), (*b, d_in)],
                        &mut |s: &mut Self, v, _| if d_in.is_int() { s.int_binary(op, d_in, v[0], v[1], span) } else { s.float_binary(op, v[0], v[1]) },
                        Ew::Values,
                    );
                }
            }
            Select { cond, a, b } => {
                let r = res.expect("where has a result");
                let d = k.ty(r).dtype();
                if matches!(res_ty, Some(Type::Scalar(_))) {
                    let (c, x, y) = (self.scalar(*cond), self.scalar(*a), self.scalar(*b));
                    let v = self.fb.ins().select(c, x, y);
                    self.set_scalar(r, v);
                } else {
                    self.elementwise(
                        r,
                        &[(*cond, DType::UInt(1)), (*a, d), (*b, d)],
                        &mut |s: &mut Self, v, _| s.fb.ins().select(v[0], v[1], v[2]),
                        Ew::Codes,
                    );
                }
            }
            Cast { x, dtype, rounding, overflow } => self.cast(i, *x, *dtype, rounding, *overflow)?,
            Full { value, shape } => {
                let r = res.expect("full has a result");
                let d = k.ty(*value).dtype();
                let v = self.scalar(*value);
                let code = self.encode(d, v);
                let ob = self.buf(r);
                let n: usize = shape.iter().product();
                let base = self.addr(ob);
                let n = self.iconst(n as i64);
                self.fill_codes(d, code, base, n);
            }
            LoadGlobal { global, offsets, shape } => {
                let r = res.expect("load has a result");
                let ob = self.buf(r);
                let offs: Vec<ir::Value> = offsets.iter().map(|&o| self.scalar(o)).collect();
                self.load_global(*global, &offs, shape, ob);
            }
            StoreGlobal { global, offsets, value } => {
                let offs: Vec<ir::Value> = offsets.iter().map(|&o| self.scalar(o)).collect();
                let shape = tile_shape(k, *value);
                let src = self.buf(*value);
                self.store_global(*global, &offs, &shape, src);
            }
            AllocShared { .. } => {
                let r = res.expect("alloc has a result");
                self.buf(r);
            }
            LoadShared { shared, offsets, shape } => {
                let r = res.expect("load has a result");
                let ob = self.buf(r);
                let offs: Vec<ir::Value> = offsets.iter().map(|&o| self.scalar(o)).collect();
                self.shared_copy(*shared, &offs, shape, ob, false, span);
            }
            StoreShared { shared, offsets, value } => {
                let offs: Vec<ir::Value> = offsets.iter().map(|&o| self.scalar(o)).collect();
                let shape = tile_shape(k, *value);
                let src = self.buf(*value);
                self.shared_copy(*shared, &offs, &shape, src, true, span);
            }
            CopyAsync { global, offsets, shared, shared_offsets, shape } => {
                // The copy lands at once: global inputs do not change during a launch, so this
                // differs from landing at the wait only for kernels that touch a destination
                // while its copy is in flight.
                let d = k.globals[*global].dtype;
                let n: usize = shape.iter().product();
                let tmp = self.alloc(n * container_bytes(d));
                let offs: Vec<ir::Value> = offsets.iter().map(|&o| self.scalar(o)).collect();
                let soffs: Vec<ir::Value> = shared_offsets.iter().map(|&o| self.scalar(o)).collect();
                let srank = tile_shape(k, *shared).len();
                let mut padded = vec![1usize; srank.saturating_sub(shape.len())];
                padded.extend_from_slice(shape);
                self.load_global(*global, &offs, shape, tmp);
                self.shared_copy(*shared, &soffs, &padded, tmp, true, span);
            }
            CopyAsyncCommit | CopyAsyncWait { .. } | Sync => {}
            View { x, dtype, shape } => {
                let r = res.expect("view has a result");
                let src_d = k.ty(*x).dtype();
                let n_src: usize = tile_shape(k, *x).iter().product();
                let n_dst: usize = shape.iter().product();
                let (sb, ob) = (self.buf(*x), self.buf(r));
                if src_d.bits() == dtype.bits() {
                    self.copy_bytes(sb, ob, n_src * container_bytes(src_d));
                } else {
                    let (sa, oa) = (self.addr(sb), self.addr(ob));
                    let args = [sa, self.iconst(i64::from(src_d.bits())), self.iconst(n_src as i64), oa, self.iconst(i64::from(dtype.bits())), self.iconst(n_dst as i64)];
                    self.call("tilc_cpu_view", &args);
                }
            }
            Dot { a, b, c } => self.dot(i, *a, *b, *c)?,
            Reduce { op, x, axis, .. } => self.reduce(i, *op, *x, *axis),
            Transpose { x, perm } => {
                let r = res.expect("transpose has a result");
                let d = k.ty(r).dtype();
                let in_shape = tile_shape(k, *x);
                let in_strides = row_major_strides(&in_shape);
                let out_shape: Vec<usize> = perm.iter().map(|&p| in_shape[p]).collect();
                let st_in: Vec<i64> = perm.iter().map(|&p| in_strides[p]).collect();
                self.move_codes(*x, r, d, &out_shape, st_in);
            }
            Reshape { x, .. } => {
                let r = res.expect("reshape has a result");
                let d = k.ty(r).dtype();
                let n: usize = tile_shape(k, *x).iter().product();
                let (sb, ob) = (self.buf(*x), self.buf(r));
                self.copy_bytes(sb, ob, n * container_bytes(d));
            }
            Broadcast { x, shape } => {
                let r = res.expect("broadcast has a result");
                let d = k.ty(r).dtype();
                if k.ty(*x).is_scalar() {
                    self.elementwise(r, &[(*x, d)], &mut |_, v, _| v[0], Ew::Codes);
                } else {
                    let st = bcast_strides(shape, &tile_shape(k, *x));
                    self.move_codes(*x, r, d, shape, st);
                }
            }
            Hadamard { x, axis } => {
                let r = res.expect("hadamard has a result");
                let d = k.ty(r).dtype();
                let shape = tile_shape(k, *x);
                let outer: usize = shape[..*axis].iter().product();
                let inner: usize = shape[axis + 1..].iter().product();
                let (sb, ob) = (self.buf(*x), self.buf(r));
                let (sa, oa) = (self.addr(sb), self.addr(ob));
                let args = [sa, oa, self.iconst(desc(d)), self.iconst(outer as i64), self.iconst(shape[*axis] as i64), self.iconst(inner as i64)];
                self.call("tilc_cpu_hadamard", &args);
            }
            Assign { var, value } => {
                if k.ty(*var).is_scalar() {
                    let v = self.scalar(*value);
                    self.set_scalar(*var, v);
                } else {
                    let d = k.ty(*var).dtype();
                    let n: usize = tile_shape(k, *var).iter().product();
                    let (sb, ob) = (self.buf(*value), self.buf(*var));
                    self.copy_bytes(sb, ob, n * container_bytes(d));
                }
            }
            For { var, start, end, step, body, .. } => {
                let (s, e, st) = (self.scalar(*start), self.scalar(*end), self.scalar(*step));
                let ok = self.fb.ins().icmp_imm_s(IntCC::SignedGreaterThan, st, 0);
                self.check(ok, "loop step must be positive", span);
                let d = k.ty(*var).dtype();
                let var = *var;
                let mut result = Ok(());
                self.loop_range(s, e, st, &mut |l: &mut Self, x| {
                    let w = l.wrap_int(d, x);
                    l.set_scalar(var, w);
                    if result.is_ok() {
                        result = l.body(body);
                    }
                });
                result?;
            }
            If { cond, then_body, else_body } => {
                let c = self.scalar(*cond);
                let (tb, eb, join) = (self.fb.create_block(), self.fb.create_block(), self.fb.create_block());
                self.fb.ins().brif(c, tb, &[], eb, &[]);
                self.fb.switch_to_block(tb);
                self.fb.seal_block(tb);
                self.body(then_body)?;
                self.fb.ins().jump(join, &[]);
                self.fb.switch_to_block(eb);
                self.fb.seal_block(eb);
                self.body(else_body)?;
                self.fb.ins().jump(join, &[]);
                self.fb.switch_to_block(join);
                self.fb.seal_block(join);
            }
            While { cond_body, cond, body } => {
                let (header, inner, exit) = (self.fb.create_block(), self.fb.create_block(), self.fb.create_block());
                self.fb.ins().jump(header, &[]);
                self.fb.switch_to_block(header);
                self.body(cond_body)?;
                let c = self.scalar(*cond);
                self.fb.ins().brif(c, inner, &[], exit, &[]);
                self.fb.switch_to_block(inner);
                self.fb.seal_block(inner);
                self.body(body)?;
                self.fb.ins().jump(header, &[]);
                self.fb.seal_block(header);
                self.fb.switch_to_block(exit);
                self.fb.seal_block(exit);
            }
            Assume { cond } => {
                let c = self.scalar(*cond);
                let ok = self.fb.ins().icmp_imm_s(IntCC::NotEqual, c, 0);
                self.check(ok, "an `assume` does not hold", span);
            }
        }
        Ok(())
    }

    /// Copies codes of tile `x` into result `r` of `shape`, reading `x` with `in_strides`.
    fn move_codes(&mut self, x: Value, r: Value, d: DType, shape: &[usize], in_strides: Vec<i64>) {
        let (sb, ob) = (self.buf(x), self.buf(r));
        let z = self.iconst(0);
        let bytes = container_bytes(d);
        self.nd_loop(shape, &[row_major_strides(shape), in_strides], &[z, z], &mut |s: &mut Self, idx| {
            let base = s.addr(sb);
            let a = s.elem_addr(base, idx[1], bytes);
            let c = s.load_code(d, a);
            let base = s.addr(ob);
            let a = s.elem_addr(base, idx[0], bytes);
            s.store_code(d, c, a);
        });
    }

    fn cast(&mut self, i: Inst, x: Value, dst: DType, rounding: &CastRounding, overflow: CastOverflow) -> Result<(), LowerError> {
        let k = self.k;
        let r = k.insts[i].result.expect("cast has a result");
        let src = k.ty(x).dtype();
        let sat = overflow == CastOverflow::Saturate;
        let (mode, seed, index) = match rounding {
            CastRounding::NearestEven => (helpers::MODE_RNE, None, None),
            CastRounding::TowardZero => (helpers::MODE_RTZ, None, None),
            CastRounding::TowardPositive => (helpers::MODE_RUP, None, None),
            CastRounding::TowardNegative => (helpers::MODE_RDOWN, None, None),
            CastRounding::Stochastic { seed, index } => (helpers::MODE_STOCHASTIC, Some(*seed), *index),
        };
        let seed = match seed {
            Some(s) => self.scalar(s),
            None => self.iconst(0),
        };
        if k.ty(x).is_scalar() {
            let a = self.scalar(x);
            // The interpreter: 64-bit integers to integers wrap; the rest goes through encode.
            let code = if src.is_int() && src.bits() == 64 && dst.is_int() {
                self.fb.ins().band_imm_u(a, mask(dst.bits()))
            } else {
                let linear = self.linear;
                let c = self.cast_code(src, dst, a, mode, seed, linear, sat);
                self.fb.ins().uextend(I64, c)
            };
            let v = if dst.is_int() {
                self.wrap_int(dst, code)
            } else if dst == DType::F64 {
                self.fb.ins().bitcast(F64, MemFlagsData::new(), code)
            } else {
                let c = self.fb.ins().ireduce(I32, code);
                self.decode(dst, c)
            };
            self.set_scalar(r, v);
            return Ok(());
        }
        if mode == helpers::MODE_RNE {
            let op = if dst.is_int() && src.is_int() {
                Some(VecOp::ICast { saturate: sat })
            } else if is_f32(dst) {
                Some(VecOp::ToF32 { saturate: sat })
            } else if is_f32(src) {
                Some(VecOp::F32ToHalf { saturate: sat })
            } else {
                None
            };
            if op.is_some_and(|op| self.vector_ew(r, &[(x, src)], op)) {
                return Ok(());
            }
        }
        let numel: usize = tile_shape(k, x).iter().product();
        let index_d = index.map(|ix| k.ty(ix).dtype());
        let mut ins = vec![(x, src)];
        if let (Some(ix), Some(d)) = (index, index_d) {
            ins.push((ix, d));
        }
        self.elementwise(
            r,
            &ins,
            &mut |s: &mut Self, v, e| {
                let key = if mode == helpers::MODE_STOCHASTIC {
                    match index {
                        Some(_) => v[1],
                        None => {
                            let b = s.fb.ins().imul_imm_s(s.linear, numel as i64);
                            s.fb.ins().iadd(b, e)
                        }
                    }
                } else {
                    s.iconst(0)
                };
                s.cast_code(src, dst, v[0], mode, seed, key, sat)
            },
            Ew::ValuesToCode,
        );
        Ok(())
    }

    /// Loads the tile of `g` at `offs` with `shape` into the scratch buffer `ob`, reading code 0
    /// outside the tensor.
    fn load_global(&mut self, g: Global, offs: &[ir::Value], shape: &[usize], ob: u32) {
        let d = self.k.globals[g].dtype;
        self.global_rows(g, offs, shape, &mut |s: &mut Self, trow, grow, c0, c1| {
            let last = *shape.last().expect("tiles have rank ≥ 1");
            let obase = s.addr(ob);
            let bytes = container_bytes(d);
            let zero32 = s.fb.ins().iconst(I32, 0);
            let z = s.iconst(0);
            let sl = s.iconst(last as i64);
            let one = s.iconst(1);
            // The head's spill past c0 is overwritten by the row's codes, the tail's by the
            // next row or it lands in the buffer's slack.
            let zero_fill = |s: &mut Self, from: ir::Value, to: ir::Value| {
                let e = s.fb.ins().iadd(trow, from);
                let a = s.elem_addr(obase, e, bytes);
                let count = s.fb.ins().isub(to, from);
                s.fill_codes(d, zero32, a, count);
            };
            zero_fill(s, z, c0);
            let gptr = s.global_ptr(g);
            let bits = d.bits();
            // Sub-byte codes eight at a time: the 8·bits ≤ 56 bits of eight consecutive codes
            // sit in one unaligned 64-bit word read at their first byte (the buffers' padding
            // covers a read past the last code), shifted by the first code's bit offset.
            let c0 = if bits < 8 && last >= 8 {
                let span = s.fb.ins().isub(c1, c0);
                let groups = s.fb.ins().ushr_imm_u(span, 3);
                let groups = s.fb.ins().ishl_imm_u(groups, 3);
                let end = s.fb.ins().iadd(c0, groups);
                let eight = s.iconst(8);
                s.loop_range(c0, end, eight, &mut |s: &mut Self, c| {
                    let gi = s.fb.ins().iadd(grow, c);
                    let bit = s.fb.ins().imul_imm_s(gi, i64::from(bits));
                    let byte = s.fb.ins().ushr_imm_u(bit, 3);
                    let a = s.fb.ins().iadd(gptr, byte);
                    let w = s.fb.ins().load(I64, mf(), a, 0);
                    let sh = s.fb.ins().band_imm_u(bit, 7);
                    let w = s.fb.ins().ushr(w, sh);
                    let e = s.fb.ins().iadd(trow, c);
                    let out = s.elem_addr(obase, e, bytes);
                    let spread = s.spread_codes(w, bits);
                    s.fb.ins().store(mf(), spread, out, 0);
                });
                end
            } else {
                c0
            };
            s.loop_range(c0, c1, one, &mut |s: &mut Self, c| {
                let gi = s.fb.ins().iadd(grow, c);
                let code = s.read_packed(d, gptr, gi);
                let e = s.fb.ins().iadd(trow, c);
                let a = s.elem_addr(obase, e, bytes);
                s.store_code(d, code, a);
            });
            zero_fill(s, c1, sl);
        });
    }

    /// Eight `bits`-bit codes packed at the bottom of `w` spread to one per byte (code j in
    /// byte j), by halving: codes 4..8 move up to bit 32, then 2..4 of each half to bit 16,
    /// then the odd ones to bit 8 — fifteen operations and one store instead of eight of each.
    fn spread_codes(&mut self, w: ir::Value, bits: u32) -> ir::Value {
        let b = i64::from(bits);
        let rep = |m: i64, stride: u32, count: u32| (0..count).fold(0i64, |acc, i| acc | (m << (stride * i)));
        let mut x = w;
        for (codes, target) in [(4i64, 32u32), (2, 16), (1, 8)] {
            let field = rep(mask((codes * b) as u32), target * 2, 32 / target);
            let lo = self.fb.ins().band_imm_u(x, field);
            let hi = self.fb.ins().ushr_imm_u(x, codes * b);
            let hi = self.fb.ins().band_imm_u(hi, field);
            let hi = self.fb.ins().ishl_imm_u(hi, i64::from(target));
            x = self.fb.ins().bor(lo, hi);
        }
        x
    }

    /// Writes the tile in scratch buffer `src` of `shape` into `g` at `offs`, skipping elements
    /// outside the tensor.
    fn store_global(&mut self, g: Global, offs: &[ir::Value], shape: &[usize], src: u32) {
        let d = self.k.globals[g].dtype;
        self.global_rows(g, offs, shape, &mut |s: &mut Self, trow, grow, c0, c1| {
            let sbase = s.addr(src);
            let bytes = container_bytes(d);
            let gptr = s.global_ptr(g);
            let one = s.iconst(1);
            s.loop_range(c0, c1, one, &mut |s: &mut Self, c| {
                let e = s.fb.ins().iadd(trow, c);
                let a = s.elem_addr(sbase, e, bytes);
                let code = s.load_code(d, a);
                let gi = s.fb.ins().iadd(grow, c);
                match d.bits() {
                    8 | 16 | 32 => {
                        let ga = s.elem_addr(gptr, gi, (d.bits() / 8) as usize);
                        s.store_code(d, code, ga);
                    }
                    bits => {
                        let code = s.fb.ins().uextend(I64, code);
                        let b = s.iconst(i64::from(bits));
                        s.call("tilc_cpu_store_bits", &[gptr, gi, b, code]);
                    }
                }
            });
        });
    }

    fn global_ptr(&mut self, g: Global) -> ir::Value {
        let p = self.global_param(g);
        let w = self.layout.param_slot[p];
        self.env_word(w)
    }

    fn global_param(&self, g: Global) -> usize {
        self.k.params.iter().position(|p| *p == Param::Tensor(g)).expect("every global is a parameter")
    }

    /// The code of element `gi` of the packed tensor at `ptr` (buffers have 8 bytes of padding).
    fn read_packed(&mut self, d: DType, ptr: ir::Value, gi: ir::Value) -> ir::Value {
        match d.bits() {
            8 => {
                let a = self.fb.ins().iadd(ptr, gi);
                self.fb.ins().uload8(I32, mf(), a, 0)
            }
            16 => {
                let a = self.elem_addr(ptr, gi, 2);
                self.fb.ins().uload16(I32, mf(), a, 0)
            }
            32 => {
                let a = self.elem_addr(ptr, gi, 4);
                self.fb.ins().load(I32, mf(), a, 0)
            }
            bits => {
                let bit = self.fb.ins().imul_imm_s(gi, i64::from(bits));
                let byte = self.fb.ins().ushr_imm_u(bit, 3);
                let a = self.fb.ins().iadd(ptr, byte);
                let w = self.fb.ins().load(I64, mf(), a, 0);
                let sh = self.fb.ins().band_imm_u(bit, 7);
                let w = self.fb.ins().ushr(w, sh);
                let w = self.fb.ins().band_imm_u(w, mask(bits));
                self.fb.ins().ireduce(I32, w)
            }
        }
    }

    /// Calls `row(tile_row_start, global_row_start, c0, c1)` for every row of a tile of `shape`
    /// placed at `offs` in global `g`; columns `[c0, c1)` of the row are inside the tensor
    /// (`c0 = c1 = 0` when the row is not).
    fn global_rows(&mut self, g: Global, offs: &[ir::Value], shape: &[usize], row: &mut dyn FnMut(&mut Self, ir::Value, ir::Value, ir::Value, ir::Value)) {
        let p = self.global_param(g);
        let w = self.layout.param_slot[p];
        let rank = shape.len();
        let dims: Vec<ir::Value> = (0..rank).map(|d| self.env_word(w + 2 + d)).collect();
        let tstr = row_major_strides(shape);
        let z = self.iconst(0);
        let t = self.fb.ins().iconst(I8, 1);
        self.rows_rec(0, shape, offs, &dims, &tstr, z, z, t, row);
    }

    #[allow(clippy::too_many_arguments)]
    fn rows_rec(
        &mut self,
        d: usize,
        shape: &[usize],
        offs: &[ir::Value],
        dims: &[ir::Value],
        tstr: &[i64],
        trow: ir::Value,
        grow: ir::Value,
        inside: ir::Value,
        row: &mut dyn FnMut(&mut Self, ir::Value, ir::Value, ir::Value, ir::Value),
    ) {
        let last = shape.len() - 1;
        if d == last {
            let z = self.iconst(0);
            let sl = self.iconst(shape[last] as i64);
            let o = offs[last];
            let no = self.fb.ins().ineg(o);
            let c0 = self.fb.ins().smax(no, z);
            let c0 = self.fb.ins().smin(c0, sl);
            let hi = self.fb.ins().isub(dims[last], o);
            let c1 = self.fb.ins().smax(hi, z);
            let c1 = self.fb.ins().smin(c1, sl);
            let c0 = self.fb.ins().select(inside, c0, z);
            let c1 = self.fb.ins().select(inside, c1, z);
            let g = self.fb.ins().imul(grow, dims[last]);
            let g = self.fb.ins().iadd(g, o);
            row(self, trow, g, c0, c1);
            return;
        }
        self.loop_n(shape[d], &mut |s: &mut Self, i| {
            let gi = s.fb.ins().iadd(i, offs[d]);
            let ge0 = s.fb.ins().icmp_imm_s(IntCC::SignedGreaterThanOrEqual, gi, 0);
            let lt = s.fb.ins().icmp(IntCC::SignedLessThan, gi, dims[d]);
            let ok = s.fb.ins().band(ge0, lt);
            let inside = s.fb.ins().band(inside, ok);
            let g = s.fb.ins().imul(grow, dims[d]);
            let g = s.fb.ins().iadd(g, gi);
            let tm = s.fb.ins().imul_imm_s(i, tstr[d]);
            let t = s.fb.ins().iadd(trow, tm);
            s.rows_rec(d + 1, shape, offs, dims, tstr, t, g, inside, row);
        });
    }

    /// Copies between the tile in scratch buffer `tile` of `shape` and shared `shared` at `offs`
    /// (into shared when `store`), after checking the bounds.
    fn shared_copy(&mut self, shared: Value, offs: &[ir::Value], shape: &[usize], tile: u32, store: bool, span: Span) {
        let st = self.k.ty(shared).as_shared().expect("a shared tensor").clone();
        let sb = self.buf(shared);
        let mut ok = self.fb.ins().iconst(I8, 1);
        for (dim, &o) in offs.iter().enumerate() {
            let ge = self.fb.ins().icmp_imm_s(IntCC::SignedGreaterThanOrEqual, o, 0);
            let le = self.fb.ins().icmp_imm_s(IntCC::SignedLessThanOrEqual, o, (st.shape[dim] - shape[dim]) as i64);
            let both = self.fb.ins().band(ge, le);
            ok = self.fb.ins().band(ok, both);
        }
        self.check(ok, format!("shared access out of bounds (a {} tile of a shared tensor of shape {})", ShapeDisplay(shape), ShapeDisplay(&st.shape)), span);
        let sstr = row_major_strides(&st.shape);
        let mut base = self.iconst(0);
        for (dim, &o) in offs.iter().enumerate() {
            let m = self.fb.ins().imul_imm_s(o, sstr[dim]);
            base = self.fb.ins().iadd(base, m);
        }
        let z = self.iconst(0);
        let d = st.dtype;
        let bytes = container_bytes(d);
        self.nd_loop(shape, &[row_major_strides(shape), sstr], &[z, base], &mut |s: &mut Self, idx| {
            let (tb, shb) = (s.addr(tile), s.addr(sb));
            let ta = s.elem_addr(tb, idx[0], bytes);
            let sa = s.elem_addr(shb, idx[1], bytes);
            let (from, to) = if store { (ta, sa) } else { (sa, ta) };
            let c = s.load_code(d, from);
            s.store_code(d, c, to);
        });
    }

    fn reduce(&mut self, i: Inst, op: ReduceOp, x: Value, axis: usize) {
        let k = self.k;
        let r = k.insts[i].result.expect("reduce has a result");
        let d = k.ty(x).dtype();
        let shape = tile_shape(k, x);
        let outer: usize = shape[..axis].iter().product();
        let len = shape[axis];
        let inner: usize = shape[axis + 1..].iter().product();
        let (xb, ob) = (self.buf(x), self.buf(r));
        let bytes = container_bytes(d);
        let z = self.iconst(0);
        let acc_ty = if d.is_int() { I64 } else { F64 };
        self.nd_loop(&[outer, inner], &[vec![inner as i64, 1], vec![(len * inner) as i64, 1]], &[z, z], &mut |s: &mut Self, idx| {
            let acc = s.fb.declare_var(acc_ty);
            let init = if d.is_int() {
                s.iconst(0)
            } else {
                s.fb.ins().f64const(match op {
                    ReduceOp::Sum => -0.0,
                    ReduceOp::Max => f64::NEG_INFINITY,
                    ReduceOp::Min => f64::INFINITY,
                    ReduceOp::AbsMax => 0.0,
                })
            };
            s.fb.def_var(acc, init);
            let first = s.fb.declare_var(I8);
            let t = s.fb.ins().iconst(I8, 1);
            s.fb.def_var(first, t);
            let start = idx[1];
            s.loop_n(len, &mut |s: &mut Self, j| {
                let m = s.fb.ins().imul_imm_s(j, inner as i64);
                let e = s.fb.ins().iadd(start, m);
                let base = s.addr(xb);
                let a = s.elem_addr(base, e, bytes);
                let c = s.load_code(d, a);
                let v = s.decode(d, c);
                let cur = s.fb.use_var(acc);
                let next = if d.is_int() {
                    // Integer max/min/absmax start from the first element (Iterator::max).
                    let v = if op == ReduceOp::AbsMax { s.fb.ins().iabs(v) } else { v };
                    let is_first = s.fb.use_var(first);
                    let n = match op {
                        ReduceOp::Sum => s.fb.ins().iadd(cur, v),
                        ReduceOp::Max | ReduceOp::AbsMax => s.fb.ins().smax(cur, v),
                        ReduceOp::Min => s.fb.ins().smin(cur, v),
                    };
                    if op == ReduceOp::Sum { n } else { s.fb.ins().select(is_first, v, n) }
                } else {
                    match op {
                        ReduceOp::Sum => s.fb.ins().fadd(cur, v),
                        ReduceOp::Max => s.float_binary(BinaryOp::Max, cur, v),
                        ReduceOp::Min => s.float_binary(BinaryOp::Min, cur, v),
                        ReduceOp::AbsMax => {
                            let av = s.fb.ins().fabs(v);
                            s.float_binary(BinaryOp::Max, cur, av)
                        }
                    }
                };
                s.fb.def_var(acc, next);
                let f = s.fb.ins().iconst(I8, 0);
                s.fb.def_var(first, f);
            });
            let v = s.fb.use_var(acc);
            let v = if d.is_int() { s.wrap_int(d, v) } else { v };
            let code = s.encode(d, v);
            let base = s.addr(ob);
            let a = s.elem_addr(base, idx[0], bytes);
            s.store_code(d, code, a);
        });
    }

    /// `dot` one row of `a` at a time, four elements per step, when the operands are integers
    /// of at most 32 bits or `f32`/`f16`/`bf16` (whose code 0 is +0) and rows of `a` fill whole
    /// 16-byte words (else `false`, and nothing is emitted). `b` is converted once to the
    /// [`DotForm`] the operand types allow; a row of `a` whose codes are all 0 copies its
    /// accumulator row through (exact for integers; for floats only when every `b` is finite
    /// and no accumulator of the row is −0 or NaN, see [`Lower::dot`]), so a GEMV that pads m
    /// to 16 rows converts and multiplies one row.
    #[allow(clippy::too_many_arguments)]
    fn dot_rows(&mut self, int: bool, (m, kk, n): (usize, usize, usize), (ab, da): (u32, DType), (bb, db): (u32, DType), (cb, dc): (u32, DType), ob: u32) -> bool {
        let operand_ok = |d: DType| if int { d.is_int() && d.bits() <= 32 } else { is_f32(d) || d == DType::F16 || is_bf16(d) };
        let a_row_bytes = kk * container_bytes(da);
        if !(operand_ok(da) && operand_ok(db) && a_row_bytes.is_multiple_of(16) && n.is_multiple_of(4) && kk.is_multiple_of(4)) {
            return false;
        }
        let form = DotForm::choose(da, db);
        let elem = form.elem();
        let (arow, accrow) = (self.alloc(kk * elem), self.alloc(n * elem));
        let finite = if int {
            None
        } else {
            let v = self.fb.declare_var(I32X4);
            let ones = self.splat_i32(-1);
            self.fb.def_var(v, ones);
            Some(v)
        };
        // An `f32` b met by at most two live rows (a GEMV's one row among its padding) is read
        // as it is, two f64 columns promoted per f32x4 load, instead of converted whole first.
        let direct = (form == DotForm::F64 && is_f32(db)).then(|| {
            let live = self.fb.declare_var(I64);
            let z = self.iconst(0);
            self.fb.def_var(live, z);
            self.loop_n(m, &mut |s: &mut Self, row| {
                let a_off = s.fb.ins().imul_imm_s(row, a_row_bytes as i64);
                let any = s.any_bits_x4(ab, a_off, a_row_bytes / 16);
                let nonzero = s.fb.ins().icmp_imm_s(IntCC::NotEqual, any, 0);
                let nonzero = s.fb.ins().uextend(I64, nonzero);
                let cur = s.fb.use_var(live);
                let next = s.fb.ins().iadd(cur, nonzero);
                s.fb.def_var(live, next);
            });
            let live = self.fb.use_var(live);
            self.fb.ins().icmp_imm_u(IntCC::UnsignedLessThanOrEqual, live, 2)
        });
        let bconv = if form == DotForm::I16Pairs {
            self.pairs_of_rows(bb, db, kk, n)
        } else {
            let bconv = self.alloc(kk * n * elem);
            let z = self.iconst(0);
            match direct {
                None => self.convert_x4(bb, z, db, bconv, kk * n, form == DotForm::F64, finite),
                Some(direct) => {
                    if let Some(fin) = finite {
                        self.loop_n(kk * n / 4, &mut |s: &mut Self, e| {
                            let base = s.addr(bb);
                            let a = s.elem_addr(base, e, 16);
                            let bits = s.fb.ins().load(I32X4, mf(), a, 0);
                            s.and_finite(fin, bits);
                        });
                    }
                    let (convert, done) = (self.fb.create_block(), self.fb.create_block());
                    self.fb.ins().brif(direct, done, &[], convert, &[]);
                    self.fb.switch_to_block(convert);
                    self.fb.seal_block(convert);
                    self.convert_x4(bb, z, db, bconv, kk * n, true, None);
                    self.fb.ins().jump(done, &[]);
                    self.fb.switch_to_block(done);
                    self.fb.seal_block(done);
                }
            }
            bconv
        };
        let b_finite = finite.map(|v| {
            let v = self.fb.use_var(v);
            self.fb.ins().vall_true(v)
        });
        let lanes = form.lanes();
        let vecs = if n >= 8 * lanes { 8 } else { 4 };
        let block = vecs * lanes;
        let nblocks = n / block;
        let rest_vecs = (n % block) / lanes;
        let scalar_from = nblocks * block + rest_vecs * lanes;
        self.loop_n(m, &mut |s: &mut Self, row| {
            let a_off = s.fb.ins().imul_imm_s(row, a_row_bytes as i64);
            let any = s.any_bits_x4(ab, a_off, a_row_bytes / 16);
            let a_zero = s.fb.ins().icmp_imm_s(IntCC::Equal, any, 0);
            let c_off = s.fb.ins().imul_imm_s(row, (n * 4) as i64);
            let skip = match b_finite {
                None => a_zero,
                Some(b_finite) => {
                    // The accumulator row's f32 codes: none NaN (|bits| > Inf) and none −0.
                    let ok = s.fb.declare_var(I32X4);
                    let ones = s.splat_i32(-1);
                    s.fb.def_var(ok, ones);
                    let cbase = s.addr(cb);
                    let cbase = s.fb.ins().iadd(cbase, c_off);
                    s.loop_n(n / 4, &mut |s: &mut Self, e| {
                        let a = s.elem_addr(cbase, e, 16);
                        let bits = s.fb.ins().load(I32X4, mf(), a, 0);
                        let abs_m = s.splat_i32(0x7FFF_FFFF);
                        let abs = s.fb.ins().band(bits, abs_m);
                        let inf = s.splat_i32(0x7F80_0000);
                        let not_nan = s.fb.ins().icmp(IntCC::UnsignedLessThanOrEqual, abs, inf);
                        let nz = s.splat_i32(0x8000_0000u32 as i64);
                        let neg_zero = s.fb.ins().icmp(IntCC::Equal, bits, nz);
                        let good = s.fb.ins().band_not(not_nan, neg_zero);
                        let cur = s.fb.use_var(ok);
                        let next = s.fb.ins().band(cur, good);
                        s.fb.def_var(ok, next);
                    });
                    let ok = s.fb.use_var(ok);
                    let c_ok = s.fb.ins().vall_true(ok);
                    let both = s.fb.ins().band(a_zero, b_finite);
                    s.fb.ins().band(both, c_ok)
                }
            };
            let (cbase, obase) = (s.addr(cb), s.addr(ob));
            let (crow, orow) = (s.fb.ins().iadd(cbase, c_off), s.fb.ins().iadd(obase, c_off));
            let (skip_blk, work, join) = (s.fb.create_block(), s.fb.create_block(), s.fb.create_block());
            s.fb.ins().brif(skip, skip_blk, &[], work, &[]);
            s.fb.switch_to_block(skip_blk);
            s.fb.seal_block(skip_blk);
            // The accumulator row's codes pass through (f32 bits, or i32 already masked).
            s.loop_n(n / 4, &mut |s: &mut Self, e| {
                let from = s.elem_addr(crow, e, 16);
                let v = s.fb.ins().load(I32X4, mf(), from, 0);
                let to = s.elem_addr(orow, e, 16);
                s.fb.ins().store(mf(), v, to, 0);
            });
            s.fb.ins().jump(join, &[]);
            s.fb.switch_to_block(work);
            s.fb.seal_block(work);
            if form == DotForm::I16Pairs {
                s.row_to_i16(ab, a_off, da, arow, kk);
            } else {
                let a_first = s.fb.ins().imul_imm_s(row, kk as i64);
                s.convert_x4(ab, a_first, da, arow, kk, form == DotForm::F64, None);
            }
            let c_first = s.fb.ins().imul_imm_s(row, n as i64);
            s.convert_x4(cb, c_first, dc, accrow, n, form == DotForm::F64, None);
            let row0 = s.iconst(0);
            let tiles = (vecs, block, nblocks, rest_vecs, scalar_from);
            match direct {
                None => s.dot_row(form, row0, tiles, kk, n, arow, (bconv, false), accrow),
                Some(direct) => {
                    let (from_codes, converted, done) = (s.fb.create_block(), s.fb.create_block(), s.fb.create_block());
                    s.fb.ins().brif(direct, from_codes, &[], converted, &[]);
                    for (blk, b) in [(from_codes, (bb, true)), (converted, (bconv, false))] {
                        s.fb.switch_to_block(blk);
                        s.fb.seal_block(blk);
                        s.dot_row(form, row0, tiles, kk, n, arow, b, accrow);
                        s.fb.ins().jump(done, &[]);
                    }
                    s.fb.switch_to_block(done);
                    s.fb.seal_block(done);
                }
            }
            // Back to codes: i32 masked to the accumulator's width, or f32 bits.
            let abase = s.addr(accrow);
            s.accumulators_to_codes(form, dc.bits(), abase, orow, n / 4);
            s.fb.ins().jump(join, &[]);
            s.fb.switch_to_block(join);
            s.fb.seal_block(join);
        });
        true
    }

    /// The `[kk, n]` tile at `src` of integers of at most 8 bits (one-byte containers, `kk`
    /// even) as `i16` pairs for [`DotForm::I16Pairs`]: a new scratch buffer of `kk / 2` rows of
    /// `n` 32-bit slots, slot `(q, j)` holding `b[2q, j]` in its low half and `b[2q + 1, j]` in
    /// its high half — the lanes `pmaddwd` multiplies by `(a[2q], a[2q + 1])` and sums. Eight
    /// columns per step: two 8-byte loads extended to `i16x8`, interleaved low and high.
    fn pairs_of_rows(&mut self, src: u32, d: DType, kk: usize, n: usize) -> u32 {
        let dst = self.alloc(kk * n * 2);
        let (sbase, dbase) = (self.addr(src), self.addr(dst));
        let (groups, tail) = (n / 8, n % 8 == 4);
        self.loop_n(kk / 2, &mut |s: &mut Self, q| {
            let row0 = s.fb.ins().imul_imm_s(q, 2 * n as i64);
            let row0 = s.fb.ins().iadd(sbase, row0);
            let out = s.fb.ins().imul_imm_s(q, 4 * n as i64);
            let out = s.fb.ins().iadd(dbase, out);
            let step = |s: &mut Self, g: ir::Value, both: bool| {
                let x = s.fb.ins().iadd(row0, g);
                let lo_row = s.load_i16x8(d, x, 0);
                let hi_row = s.load_i16x8(d, x, n as i32);
                let o = s.elem_addr(out, g, 4);
                let lo = s.shuffle_bytes(lo_row, hi_row, &[0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23]);
                s.fb.ins().store(mf(), lo, o, 0);
                if both {
                    let hi = s.shuffle_bytes(lo_row, hi_row, &[8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31]);
                    s.fb.ins().store(mf(), hi, o, 16);
                }
            };
            s.loop_n(groups, &mut |s: &mut Self, g| {
                let g = s.fb.ins().imul_imm_s(g, 8);
                step(s, g, true);
            });
            if tail {
                // Four columns left: the load reads four bytes past them (the next row, or the
                // slack that follows every scratch buffer), whose lanes are not stored.
                let g = s.iconst(8 * groups as i64);
                step(s, g, false);
            }
        });
        dst
    }

    /// Writes the `kk` (a multiple of 8) one-byte integers at scratch offset `src` + the byte
    /// offset `start` to `dst` as `i16` values, eight at a time: consecutive pairs are the
    /// `(a[2q], a[2q + 1])` halves of [`DotForm::I16Pairs`]' 32-bit steps.
    fn row_to_i16(&mut self, src: u32, start: ir::Value, d: DType, dst: u32, kk: usize) {
        let sbase = self.addr(src);
        let sbase = self.fb.ins().iadd(sbase, start);
        let dbase = self.addr(dst);
        self.loop_n(kk / 8, &mut |s: &mut Self, e| {
            let a = s.elem_addr(sbase, e, 8);
            let v = s.load_i16x8(d, a, 0);
            let o = s.elem_addr(dbase, e, 16);
            s.fb.ins().store(mf(), v, o, 0);
        });
    }

    /// The values of eight one-byte integer codes of `d` at `addr + offset`, as `i16x8`: sign-
    /// or zero-extended, and sign-extended from bit `bits − 1` for signed types under 8 bits.
    fn load_i16x8(&mut self, d: DType, addr: ir::Value, offset: i32) -> ir::Value {
        let bits = d.bits() as i64;
        if !d.is_signed() {
            return self.fb.ins().uload8x8(mf(), addr, offset);
        }
        let v = self.fb.ins().sload8x8(mf(), addr, offset);
        if bits == 8 {
            return v;
        }
        let v = self.fb.ins().ishl_imm_u(v, 16 - bits);
        self.fb.ins().sshr_imm_u(v, 16 - bits)
    }

    /// ANDs into `fin` (an `i32x4` lane mask) "not Inf or NaN" of four f32 bit patterns.
    fn and_finite(&mut self, fin: Variable, bits: ir::Value) {
        let abs_m = self.splat_i32(0x7FFF_FFFF);
        let abs = self.fb.ins().band(bits, abs_m);
        let inf = self.splat_i32(0x7F80_0000);
        let ok = self.fb.ins().icmp(IntCC::UnsignedLessThan, abs, inf);
        let cur = self.fb.use_var(fin);
        let next = self.fb.ins().band(cur, ok);
        self.fb.def_var(fin, next);
    }

    /// Converts `n` (a multiple of 4) elements of the tile at `src` (of `d`), from element
    /// `first`, to `dst` in the accumulation form of `dot`, four at a time: `i32` values for
    /// integers of at most 32 bits, or the exact `f32` values of `f32`, `f16`, `bf16` (decoded
    /// as [`Lower::decode`] does), promoted to f64 when `promote`. With `finite`, ANDs into it
    /// the lanes' "not Inf or NaN".
    #[allow(clippy::too_many_arguments)]
    fn convert_x4(&mut self, src: u32, first: ir::Value, d: DType, dst: u32, n: usize, promote: bool, finite: Option<Variable>) {
        let sbase = self.addr(src);
        let sbase = self.elem_addr(sbase, first, container_bytes(d));
        let dbase = self.addr(dst);
        self.loop_n(n / 4, &mut |s: &mut Self, e| {
            let a = s.elem_addr(sbase, e, 4 * container_bytes(d));
            let v = s.load_x4(d, a);
            if let Some(fin) = finite {
                let bits = s.vcast(I32X4, v);
                s.and_finite(fin, bits);
            }
            if promote {
                let o = s.elem_addr(dbase, e, 32);
                let lo = s.fb.ins().fvpromote_low(v);
                let high = s.shuffle_bytes(v, v, &[8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15]);
                let hi = s.fb.ins().fvpromote_low(high);
                s.fb.ins().store(mf(), lo, o, 0);
                s.fb.ins().store(mf(), hi, o, 16);
            } else {
                let o = s.elem_addr(dbase, e, 16);
                s.fb.ins().store(mf(), v, o, 0);
            }
        });
    }

    fn dot(&mut self, i: Inst, a: Value, b: Value, c: Value) -> Result<(), LowerError> {
        let k = self.k;
        let r = k.insts[i].result.expect("dot has a result");
        let (da, db, dc) = (k.ty(a).dtype(), k.ty(b).dtype(), k.ty(c).dtype());
        let (sa, sb) = (tile_shape(k, a), tile_shape(k, b));
        let (m, kk, n) = (sa[0], sa[1], sb[1]);
        let (ab, bb, cb, ob) = (self.buf(a), self.buf(b), self.buf(c), self.buf(r));
        let int = da.is_int();
        if int && container_bytes(dc) != 4 || !int && !is_f32(dc) {
            return Err(LowerError::Unsupported(format!("`dot` accumulating into `{dc}`")));
        }
        if self.dot_rows(int, (m, kk, n), (ab, da), (bb, db), (cb, dc), ob) {
            return Ok(());
        }
        // Operands converted once to the accumulation form (i32, or f64 holding exact values),
        // so the inner loop is loads and vector multiply-adds.
        let form = if int { DotForm::I32 } else { DotForm::F64 };
        let elem = form.elem();
        let (aconv, bconv, acc) = (self.alloc(m * kk * elem), self.alloc(kk * n * elem), self.alloc(m * n * elem));
        // Four elements at a time where every tile allows it (the checks below then read pairs).
        let vec = kk.is_multiple_of(2) && n.is_multiple_of(4) && (m * kk).is_multiple_of(4);
        let conv: &mut dyn FnMut(&mut Self, ir::Value) -> ir::Value = if int { &mut |s: &mut Self, v| s.fb.ins().ireduce(I32, v) } else { &mut |_, v| v };
        for (src, d, dst, count) in [(ab, da, aconv, m * kk), (bb, db, bconv, kk * n)] {
            if !(vec && self.convert_tile_x4(src, d, dst, count, int)) {
                self.convert_tile(src, d, dst, count, conv, elem);
            }
        }
        // The f32 accumulator decodes exactly (`round_float` to f32 of an f32 is the identity).
        if !(vec && self.convert_tile_x4(cb, dc, acc, m * n, int)) {
            if int {
                self.convert_tile(cb, dc, acc, m * n, &mut |s: &mut Self, v| s.fb.ins().ireduce(I32, v), 4);
            } else {
                self.convert_tile(cb, dc, acc, m * n, &mut |s: &mut Self, v| s.round_float(DType::F32, v), 8);
            }
        }
        // Output columns in register blocks of up to 8 vectors (independent dependency chains
        // that hide the latency of add, demote and promote); each output element still sums
        // its products in k order (which only matters for floats).
        let lanes = 16 / elem;
        let vecs = if n >= 8 * lanes { 8 } else { 4 };
        let block = vecs * lanes;
        let nblocks = n / block;
        let rest_vecs = (n % block) / lanes;
        let scalar_from = nblocks * block + rest_vecs * lanes;
        // A row of `a` that is all zero leaves its accumulators unchanged, so it is skipped
        // (GEMV kernels pad m to a tile of 16 or more rows that loads fill with zeros). For
        // integers this is exact outright (`acc + 0·b = acc`). For floats the row must be all
        // +0 codes, every `b` finite (so each product is ±0, never NaN) and no accumulator of
        // the row −0 or NaN: then `f32(acc + ±0) = acc` at every step, `+0 + −0` included.
        let b_finite = if int {
            None
        } else if vec {
            Some(self.all_x2(bconv, None, kk * n, &mut |s: &mut Self, v| {
                let ax = s.fb.ins().fabs(v);
                let inf = s.fb.ins().f64const(f64::INFINITY);
                let inf = s.fb.ins().splat(F64X2, inf);
                s.fb.ins().fcmp(FloatCC::LessThan, ax, inf)
            }))
        } else {
            Some(self.tile_all(bconv, kk * n, &mut |s: &mut Self, v| s.f64_is_finite(v)))
        };
        let zero_bits = self.iconst(0);
        self.loop_n(m, &mut |s: &mut Self, row| {
            let a_row = s.fb.ins().imul_imm_s(row, (kk * elem) as i64);
            let a_zero = if vec {
                // All elements zero ⇔ the OR of their bits is zero (i32 values or f64 +0).
                let any = s.any_bits_x4(aconv, a_row, kk * elem / 16);
                s.fb.ins().icmp_imm_s(IntCC::Equal, any, 0)
            } else {
                s.row_all(aconv, a_row, kk, elem, &mut |s: &mut Self, a| {
                    if int {
                        let v = s.fb.ins().load(I32, mf(), a, 0);
                        s.fb.ins().icmp_imm_s(IntCC::Equal, v, 0)
                    } else {
                        let v = s.fb.ins().load(I64, mf(), a, 0);
                        s.fb.ins().icmp(IntCC::Equal, v, zero_bits)
                    }
                })
            };
            let skip = match b_finite {
                None => a_zero,
                Some(b_finite) => {
                    let c_row = s.fb.ins().imul_imm_s(row, (n * elem) as i64);
                    let c_ok = if vec {
                        s.all_x2(acc, Some(c_row), n, &mut |s: &mut Self, v| {
                            let ordered = s.fb.ins().fcmp(FloatCC::Ordered, v, v);
                            let bits = s.vcast(I64X2, v);
                            let nz = s.fb.ins().iconst(I64, i64::MIN);
                            let nz = s.fb.ins().splat(I64X2, nz);
                            let neg_zero = s.fb.ins().icmp(IntCC::Equal, bits, nz);
                            s.fb.ins().band_not(ordered, neg_zero)
                        })
                    } else {
                        s.row_all(acc, c_row, n, elem, &mut |s: &mut Self, a| {
                            let v = s.fb.ins().load(F64, mf(), a, 0);
                            let ordered = s.fb.ins().fcmp(FloatCC::Ordered, v, v);
                            let bits = s.fb.ins().bitcast(I64, MemFlagsData::new(), v);
                            let not_neg_zero = s.fb.ins().icmp_imm_s(IntCC::NotEqual, bits, i64::MIN);
                            s.fb.ins().band(ordered, not_neg_zero)
                        })
                    };
                    let both = s.fb.ins().band(a_zero, b_finite);
                    s.fb.ins().band(both, c_ok)
                }
            };
            let (work, join) = (s.fb.create_block(), s.fb.create_block());
            s.fb.ins().brif(skip, join, &[], work, &[]);
            s.fb.switch_to_block(work);
            s.fb.seal_block(work);
            s.dot_row(form, row, (vecs, block, nblocks, rest_vecs, scalar_from), kk, n, aconv, (bconv, false), acc);
            s.fb.ins().jump(join, &[]);
            s.fb.switch_to_block(join);
            s.fb.seal_block(join);
        });
        // Back to codes: i32 masked to the accumulator's width, or f32 bits.
        let (abase, obase) = (self.addr(acc), self.addr(ob));
        if vec {
            self.accumulators_to_codes(form, dc.bits(), abase, obase, m * n / 4);
            return Ok(());
        }
        self.loop_n(m * n, &mut |s: &mut Self, e| {
            let a = s.elem_addr(abase, e, elem);
            let o = s.elem_addr(obase, e, 4);
            if int {
                let v = s.fb.ins().load(I32, mf(), a, 0);
                let v = if dc.bits() < 32 { s.fb.ins().band_imm_u(v, mask(dc.bits())) } else { v };
                s.fb.ins().store(mf(), v, o, 0);
            } else {
                let v = s.fb.ins().load(F64, mf(), a, 0);
                let f = s.fb.ins().fdemote(F32, v);
                s.fb.ins().store(mf(), f, o, 0);
            }
        });
        Ok(())
    }

    /// `shuffle` of the bytes of two 128-bit vectors (`0..16` from `a`, `16..32` from `b`),
    /// in `a`'s type.
    fn shuffle_bytes(&mut self, a: ir::Value, b: ir::Value, lanes: &[u8; 16]) -> ir::Value {
        let ty = self.fb.func.dfg.value_type(a);
        let (x, y) = (self.vcast(I8X16, a), self.vcast(I8X16, b));
        let mask = self.fb.func.dfg.immediates.push(ir::ConstantData::from(lanes.to_vec()));
        let r = self.fb.ins().shuffle(x, y, mask);
        self.vcast(ty, r)
    }

    /// Converts `n` (a multiple of 4) elements of the tile at `src` (of `d`) to `dst` in the
    /// accumulation form of `dot`, four at a time: `i32` values for integers, or f64 (exact)
    /// for `f32`, `f16`, `bf16` (decoded as [`Lower::decode`] does). `false` (nothing emitted)
    /// for other types.
    fn convert_tile_x4(&mut self, src: u32, d: DType, dst: u32, n: usize, int: bool) -> bool {
        let ok = if int { d.is_int() && d.bits() <= 32 } else { is_f32(d) || d == DType::F16 || is_bf16(d) };
        if !ok || !n.is_multiple_of(4) {
            return false;
        }
        let z = self.iconst(0);
        self.convert_x4(src, z, d, dst, n, !int, None);
        true
    }

    /// The OR of the `words` 128-bit words at scratch offset `buf` + the byte offset `start`,
    /// folded to an `i64`.
    fn any_bits_x4(&mut self, buf: u32, start: ir::Value, words: usize) -> ir::Value {
        let acc = self.fb.declare_var(I64X2);
        let z = self.iconst(0);
        let zv = self.fb.ins().splat(I64X2, z);
        self.fb.def_var(acc, zv);
        let base = self.addr(buf);
        let base = self.fb.ins().iadd(base, start);
        self.loop_n(words, &mut |s: &mut Self, e| {
            let a = s.elem_addr(base, e, 16);
            let v = s.fb.ins().load(I64X2, mf(), a, 0);
            let cur = s.fb.use_var(acc);
            let next = s.fb.ins().bor(cur, v);
            s.fb.def_var(acc, next);
        });
        let v = self.fb.use_var(acc);
        let lo = self.fb.ins().extractlane(v, 0);
        let hi = self.fb.ins().extractlane(v, 1);
        self.fb.ins().bor(lo, hi)
    }

    /// Whether `pred(pair)` (an `i64x2` or `f64x2` lane mask) holds for every one of the `n`
    /// (even) f64 values at scratch offset `buf` (+ the byte offset `start`), two at a time.
    fn all_x2(&mut self, buf: u32, start: Option<ir::Value>, n: usize, pred: &mut dyn FnMut(&mut Self, ir::Value) -> ir::Value) -> ir::Value {
        let acc = self.fb.declare_var(I64X2);
        let ones = self.iconst(-1);
        let ones = self.fb.ins().splat(I64X2, ones);
        self.fb.def_var(acc, ones);
        let base = self.addr(buf);
        let base = match start {
            Some(st) => self.fb.ins().iadd(base, st),
            None => base,
        };
        self.loop_n(n / 2, &mut |s: &mut Self, e| {
            let a = s.elem_addr(base, e, 16);
            let v = s.fb.ins().load(F64X2, mf(), a, 0);
            let ok = pred(s, v);
            let ok = s.vcast(I64X2, ok);
            let cur = s.fb.use_var(acc);
            let next = s.fb.ins().band(cur, ok);
            s.fb.def_var(acc, next);
        });
        let v = self.fb.use_var(acc);
        self.fb.ins().vall_true(v)
    }

    /// Whether `pred(address)` (an `i8` truth) holds for the `n` elements of `elem` bytes at
    /// scratch offset `buf` + the byte offset `start`.
    fn row_all(&mut self, buf: u32, start: ir::Value, n: usize, elem: usize, pred: &mut dyn FnMut(&mut Self, ir::Value) -> ir::Value) -> ir::Value {
        let flag = self.fb.declare_var(I8);
        let t = self.fb.ins().iconst(I8, 1);
        self.fb.def_var(flag, t);
        let base = self.addr(buf);
        let base = self.fb.ins().iadd(base, start);
        self.loop_n(n, &mut |s: &mut Self, e| {
            let a = s.elem_addr(base, e, elem);
            let ok = pred(s, a);
            let cur = s.fb.use_var(flag);
            let next = s.fb.ins().band(cur, ok);
            s.fb.def_var(flag, next);
        });
        self.fb.use_var(flag)
    }

    /// Whether `pred(value)` holds for every one of the `n` f64 values at scratch offset `buf`.
    fn tile_all(&mut self, buf: u32, n: usize, pred: &mut dyn FnMut(&mut Self, ir::Value) -> ir::Value) -> ir::Value {
        let z = self.iconst(0);
        self.row_all(buf, z, n, 8, &mut |s: &mut Self, a| {
            let v = s.fb.ins().load(F64, mf(), a, 0);
            pred(s, v)
        })
    }

    /// `|x| < ∞` (false for NaN).
    fn f64_is_finite(&mut self, x: ir::Value) -> ir::Value {
        let ax = self.fb.ins().fabs(x);
        let inf = self.fb.ins().f64const(f64::INFINITY);
        self.fb.ins().fcmp(FloatCC::LessThan, ax, inf)
    }

    /// Writes `groups` × 4 accumulators of `form` at `abase` back as codes at `obase`: i32
    /// masked to the accumulator's `bits`, f64 demoted to f32 bits, or f32 bits as they are.
    fn accumulators_to_codes(&mut self, form: DotForm, bits: u32, abase: ir::Value, obase: ir::Value, groups: usize) {
        self.loop_n(groups, &mut |s: &mut Self, e| {
            let a = s.elem_addr(abase, e, 4 * form.elem());
            let o = s.elem_addr(obase, e, 16);
            let v = match form {
                DotForm::I32 | DotForm::I16Pairs => {
                    let v = s.fb.ins().load(I32X4, mf(), a, 0);
                    s.i32x4_mask(v, bits)
                }
                DotForm::F64 => {
                    let lo = s.fb.ins().load(F64X2, mf(), a, 0);
                    let hi = s.fb.ins().load(F64X2, mf(), a, 16);
                    let lo = s.fb.ins().fvdemote(lo);
                    let hi = s.fb.ins().fvdemote(hi);
                    s.shuffle_bytes(lo, hi, &[0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23])
                }
                DotForm::F32 => s.fb.ins().load(I32X4, mf(), a, 0),
            };
            s.fb.ins().store(mf(), v, o, 0);
        });
    }

    /// One row of a `dot`: the columns in blocks of `vecs` vectors (a loop of `nblocks`), then
    /// the `rest_vecs` vectors left, then the columns from `scalar_from` one at a time. `b` is
    /// the converted operand's offset and whether it holds `f32` codes read directly (only for
    /// [`DotForm::F64`], an even number of vectors and no single columns).
    #[allow(clippy::too_many_arguments)]
    fn dot_row(&mut self, form: DotForm, row: ir::Value, (vecs, block, nblocks, rest_vecs, scalar_from): (usize, usize, usize, usize, usize), kk: usize, n: usize, aconv: u32, b: (u32, bool), acc: u32) {
        if nblocks > 0 {
            self.loop_n(nblocks, &mut |s: &mut Self, q| {
                let col0 = s.fb.ins().imul_imm_s(q, block as i64);
                s.dot_cols(form, row, col0, vecs, kk, n, aconv, b, acc);
            });
        }
        if rest_vecs > 0 {
            let col0 = self.iconst((nblocks * block) as i64);
            self.dot_cols(form, row, col0, rest_vecs, kk, n, aconv, b, acc);
        }
        for col in scalar_from..n {
            let col0 = self.iconst(col as i64);
            self.dot_cols(form, row, col0, 0, kk, n, aconv, b, acc);
        }
    }

    /// Accumulates `a[row, :] · b[:, col0 ..]` into `acc[row, col0 ..]` for `nvec` vectors of
    /// columns (or one column when `nvec` is 0, for [`DotForm::I32`] and [`DotForm::F64`]),
    /// keeping the sums in registers over k.
    #[allow(clippy::too_many_arguments)]
    fn dot_cols(&mut self, form: DotForm, row: ir::Value, col0: ir::Value, nvec: usize, kk: usize, n: usize, aconv: u32, (bconv, b_f32): (u32, bool), acc: u32) {
        let elem = form.elem() as i64;
        let (vty, sty) = match form {
            DotForm::I32 | DotForm::I16Pairs => (I32X4, I32),
            DotForm::F64 => (F64X2, F64),
            DotForm::F32 => (F32X4, F32),
        };
        debug_assert!(nvec > 0 || matches!(form, DotForm::I32 | DotForm::F64), "one column at a time only in i32 or f64");
        debug_assert!(!b_f32 || form == DotForm::F64 && nvec.is_multiple_of(2) && nvec > 0, "f32 codes of b feed pairs of f64 vectors");
        // Bytes of one column of b in memory.
        let b_elem = if b_f32 { 4 } else { elem };
        let ty = if nvec == 0 { sty } else { vty };
        let count = nvec.max(1);
        // One step takes `k_step` elements of k: a's element (an i32 holding two i16 for
        // pairs) and one row of b's slots, `elem` bytes per column.
        let steps = kk / form.k_step();
        let abase = self.addr(acc);
        let rowoff = self.fb.ins().imul_imm_s(row, n as i64);
        let e0 = self.fb.ins().iadd(rowoff, col0);
        let out = self.elem_addr(abase, e0, elem as usize);
        let vars: Vec<Variable> = (0..count)
            .map(|j| {
                let v = self.fb.declare_var(ty);
                let x = self.fb.ins().load(ty, mf(), out, (j as i64 * 16) as i32);
                self.fb.def_var(v, x);
                v
            })
            .collect();
        let arow_base = self.addr(aconv);
        let arow_off = self.fb.ins().imul_imm_s(row, steps as i64 * elem);
        let arow = self.fb.ins().iadd(arow_base, arow_off);
        let bbase = self.addr(bconv);
        let bcol_off = self.fb.ins().imul_imm_s(col0, b_elem);
        let bcol = self.fb.ins().iadd(bbase, bcol_off);
        self.loop_n(steps, &mut |s: &mut Self, p| {
            let aa = s.elem_addr(arow, p, elem as usize);
            let av = s.fb.ins().load(sty, mf(), aa, 0);
            let av = if nvec == 0 { av } else { s.fb.ins().splat(vty, av) };
            let boff = s.fb.ins().imul_imm_s(p, n as i64 * b_elem);
            let brow = s.fb.ins().iadd(bcol, boff);
            // Each b vector is loaded next to its use (Cranelift keeps instruction order, and
            // eight accumulators plus eight loaded vectors would not fit the 16 registers).
            let mut high_half = None;
            for (j, &v) in vars.iter().enumerate() {
                let bv = match high_half.take() {
                    Some(hi) => hi,
                    None if b_f32 => {
                        // f32 → f64 is exact: the values `convert_x4` would have stored.
                        let v = s.fb.ins().load(F32X4, mf(), brow, (j * 8) as i32);
                        let high = s.shuffle_bytes(v, v, &[8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15]);
                        high_half = Some(s.fb.ins().fvpromote_low(high));
                        s.fb.ins().fvpromote_low(v)
                    }
                    None => s.fb.ins().load(ty, mf(), brow, (j * 16) as i32),
                };
                let cur = s.fb.use_var(v);
                let next = match form {
                    DotForm::I32 => {
                        let pr = s.fb.ins().imul(av, bv);
                        s.fb.ins().iadd(cur, pr)
                    }
                    DotForm::I16Pairs => {
                        // `a[2q]·b[2q, j] + a[2q+1]·b[2q+1, j]` per i32 lane: the pattern
                        // Cranelift lowers to one `pmaddwd`. Exact: the i16 values are those of
                        // ≤ 8-bit integers, so each product and the pair sum fit an i32
                        // (|sum| ≤ 2·255² < 2³¹), and the i32 accumulation wraps as the
                        // interpreter's `wrapping_add` of each product does, in any order.
                        let (x, y) = (s.vcast(I16X8, av), s.vcast(I16X8, bv));
                        let (xl, yl) = (s.fb.ins().swiden_low(x), s.fb.ins().swiden_low(y));
                        let (xh, yh) = (s.fb.ins().swiden_high(x), s.fb.ins().swiden_high(y));
                        let lo = s.fb.ins().imul(xl, yl);
                        let hi = s.fb.ins().imul(xh, yh);
                        let pr = s.fb.ins().iadd_pairwise(lo, hi);
                        s.fb.ins().iadd(cur, pr)
                    }
                    DotForm::F64 => {
                        let pr = s.fb.ins().fmul(av, bv);
                        let t = s.fb.ins().fadd(cur, pr);
                        if nvec == 0 {
                            s.round_float(DType::F32, t)
                        } else {
                            let t32 = s.fb.ins().fvdemote(t);
                            s.fb.ins().fvpromote_low(t32)
                        }
                    }
                    DotForm::F32 => {
                        let pr = s.fb.ins().fmul(av, bv);
                        s.fb.ins().fadd(cur, pr)
                    }
                };
                s.fb.def_var(v, next);
            }
        });
        for (j, &v) in vars.iter().enumerate() {
            let x = self.fb.use_var(v);
            self.fb.ins().store(mf(), x, out, (j as i64 * 16) as i32);
        }
    }

    /// Writes `f(decoded element)` (a value of `out_bytes` bytes) for `n` elements of the tile
    /// at `src` (of `d`) to `dst`.
    fn convert_tile(&mut self, src: u32, d: DType, dst: u32, n: usize, f: &mut dyn FnMut(&mut Self, ir::Value) -> ir::Value, out_bytes: usize) {
        let (sbase, dbase) = (self.addr(src), self.addr(dst));
        self.loop_n(n, &mut |s: &mut Self, e| {
            let a = s.elem_addr(sbase, e, container_bytes(d));
            let c = s.load_code(d, a);
            let v = s.decode(d, c);
            let v = f(s, v);
            let o = s.elem_addr(dbase, e, out_bytes);
            s.fb.ins().store(mf(), v, o, 0);
        });
    }
}

/// The arithmetic of `dot`'s inner loop and the form its operands are converted to; every one
/// reproduces the interpreter's rule bit for bit (integers: each product added to an `i32`
/// with wrap-around; floats: the exact product added in f64 and rounded to f32 after every
/// step, in k order).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum DotForm {
    /// `i32` lanes, one `imul` and one `iadd` per step.
    I32,
    /// Integers of at most 8 bits as `i16`, two steps of k per `i32` lane: the pair products
    /// summed in `i32` (`pmaddwd`), then added to the accumulator. Halves the multiplies and
    /// the converted `b`'s bytes against [`DotForm::I32`].
    I16Pairs,
    /// `f64` lanes holding exact values: add of the exact product, then demote to f32 and
    /// promote back (the interpreter's rule literally).
    ///
    /// Not fused, on measurement. The operands have at most 24 significand bits, so their
    /// product (≤ 48 bits, magnitude within 2⁻²⁹⁸..2²⁵⁶) is exact in f64 and `fma(a, b, acc)`
    /// rounds the same exact sum once: equal bit for bit when `a` and `b` are finite (x86's
    /// `vfmadd` picks among NaN operands in another order than `acc + a·b`, so rows with a
    /// non-finite operand would need the unfused loop). Built that way (a finiteness branch per
    /// row, `vfmadd` on this AMD EPYC), it measured no faster here and the f32-lane form slower: the
    /// fma's latency sits on each accumulator's dependency chain where the add's did, and the
    /// multiply it saves was off that chain.
    F64,
    /// `f16` × `f16` in `f32` lanes. The product of two `f16` values is exact in `f32` (11 + 11
    /// significand bits ≤ 24; magnitudes between 2⁻⁴⁸ and 2³², inside f32's normal range), so
    /// `f32(acc + p)` rounds the exact sum once, and the interpreter's `f32(f64(acc + p))`
    /// equals it: double rounding through 53 ≥ 2·24 + 2 bits is innocuous for addition (a sum
    /// below f32's normal range is a multiple of 2⁻¹⁴⁹ and exact). Inf and NaN follow the same
    /// x86 rules in both widths (the accumulator is the first operand of the add, as in the
    /// interpreter; decoded NaNs are the canonical ones).
    F32,
}

impl DotForm {
    /// The form for operands `a` and `b` (both integers of at most 32 bits, or both floats
    /// `dot_rows` converts).
    fn choose(a: DType, b: DType) -> DotForm {
        if a.is_int() {
            if a.bits() <= 8 && b.bits() <= 8 { DotForm::I16Pairs } else { DotForm::I32 }
        } else if a == DType::F16 && b == DType::F16 {
            DotForm::F32
        } else {
            DotForm::F64
        }
    }

    /// Bytes of one converted element (one accumulator, one step of `a`, one slot of `b`).
    fn elem(self) -> usize {
        if self == DotForm::F64 { 8 } else { 4 }
    }

    /// Accumulators per 128-bit vector.
    fn lanes(self) -> usize {
        16 / self.elem()
    }

    /// Elements of k per step.
    fn k_step(self) -> usize {
        if self == DotForm::I16Pairs { 2 } else { 1 }
    }
}

/// An elementwise operation [`Lower::vector_ew`] computes on four elements at once.
#[derive(Clone, Copy)]
enum VecOp {
    /// `f32` `+ − × ÷` in `f32` arithmetic: equal to the interpreter's f64 operation rounded
    /// once to f32 (53 ≥ 2·24 + 2 bits, so the double rounding is innocuous, subnormal and
    /// overflowing results included; x86 gives NaN results the same sign in both widths, and
    /// they are made the canonical NaN as `encode` does).
    FBinary(BinaryOp),
    /// To `f32`, nearest-even: an integer of at most 31 bits or an `i32` (one rounding, as
    /// through the exact f64), or an `f16`/`bf16` (exact; saturating makes ±Inf ±max).
    ToF32 { saturate: bool },
    /// `f32` to `f16`/`bf16`, nearest-even (one rounding of an exact value); saturating makes
    /// overflow and ±Inf ±max, NaN stays NaN.
    F32ToHalf { saturate: bool },
    /// Integer `+ − × & | ^` whose operands and result have at most 32 bits: the low 32 bits
    /// of the interpreter's i64 result depend only on the operands' low 32 bits.
    IBinary(BinaryOp),
    /// Integer to integer: masked, or clamped first (operands exact in `i32`, bounds too).
    ICast { saturate: bool },
}

impl VecOp {
    /// Whether this operation on operands of `ins` giving `out` is one of the exact cases.
    fn applies(self, mut ins: impl Iterator<Item = DType>, out: DType) -> bool {
        let int32 = |d: DType| d.is_int() && d.bits() <= 32;
        // Integers whose values (not just low bits) fit an `i32` lane.
        let exact_i32 = |d: DType| d.is_int() && (d.bits() <= 31 || d.is_signed() && d.bits() == 32);
        let half = |d: DType| d == DType::F16 || is_bf16(d);
        match self {
            VecOp::FBinary(op) => matches!(op, BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div) && is_f32(out) && ins.all(is_f32),
            VecOp::ToF32 { .. } => is_f32(out) && ins.next().is_some_and(|d| exact_i32(d) || half(d)),
            VecOp::F32ToHalf { .. } => half(out) && ins.all(is_f32),
            VecOp::IBinary(op) => matches!(op, BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::And | BinaryOp::Or | BinaryOp::Xor) && int32(out) && ins.all(int32),
            VecOp::ICast { saturate: false } => int32(out) && ins.next().is_some_and(int32),
            VecOp::ICast { saturate: true } => exact_i32(out) && ins.next().is_some_and(exact_i32),
        }
    }
}

/// The smallest and largest value of integer type `d`.
fn int_range(d: DType) -> (i64, i64) {
    if d.is_signed() { (-(1i64 << (d.bits() - 1)), (1i64 << (d.bits() - 1)) - 1) } else { (0, mask(d.bits())) }
}

/// What an elementwise closure takes and gives.
#[derive(Clone, Copy)]
enum Ew {
    /// Computing-form values in, a computing-form value out (encoded to the result type).
    Values,
    /// Codes in, the result code out.
    Codes,
    /// Computing-form values in, the result code out.
    ValuesToCode,
}
