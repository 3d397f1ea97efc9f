//! The reference interpreter: runs a kernel over its whole grid on host tensors.
//!
//! This is the executable definition of the VM (the crate docs state the rules in prose; this
//! file is where they are decided). Blocks run in parallel on rayon's pool; each block has its
//! own values, shared memory and pending async copies. Global inputs are read-only while the
//! grid runs; each block logs its global stores, and the logs are applied after every block
//! finished, in block order. Two blocks storing to the same element is an error (a race on a
//! GPU), as is anything that would read garbage: an uninitialised variable or shared element,
//! an out-of-bounds shared access. Every error names the instruction's span and the block.

use crate::ir::*;
use crate::tensor::ArgValue;
use crate::types::bool_type;
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use tilc_base::{Diagnostic, Span};
use tilc_dtype::{DType, FloatFormat, Overflow, Rounding};

/// A run-time error: what went wrong, where in the source, and in which block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunError {
    /// What went wrong.
    pub message: String,
    /// The instruction's source span, if the error happened in one.
    pub span: Option<Span>,
    /// The block `(x, y, z)` that failed, if the error happened in one.
    pub block: Option<[u32; 3]>,
}

impl RunError {
    fn new(message: impl Into<String>) -> RunError {
        RunError { message: message.into(), span: None, block: None }
    }

    /// The error as a diagnostic (label at the span when there is one).
    pub fn to_diagnostic(&self) -> Diagnostic {
        let mut d = match self.span {
            Some(s) => Diagnostic::error(self.message.clone(), s, "here"),
            None => Diagnostic::error_nowhere(self.message.clone()),
        };
        if let Some(b) = self.block {
            d = d.with_note(format!("in block ({}, {}, {})", b[0], b[1], b[2]));
        }
        d
    }
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.message)?;
        if let Some(b) = self.block {
            write!(f, " (block ({}, {}, {}))", b[0], b[1], b[2])?;
        }
        Ok(())
    }
}

impl std::error::Error for RunError {}

/// What a successful run did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunSummary {
    /// The grid, padded with 1s to three axes.
    pub grid: [u32; 3],
}

/// The launch configuration derived from the arguments: scalar values and tensor shapes.
#[derive(Clone, Debug)]
pub struct Launch {
    /// The grid, padded with 1s.
    pub grid: [u32; 3],
    /// The shape of every global, evaluated.
    pub shapes: Vec<Vec<usize>>,
}

/// Evaluates the grid and the global shapes for `args` and checks that every argument has the
/// right kind, dtype and shape; the error says which parameter is wrong and how.
pub fn check_args(k: &Kernel, args: &[ArgValue]) -> Result<Launch, RunError> {
    if args.len() != k.params.len() {
        return Err(RunError::new(format!("`{}` takes {} arguments, {} given", k.name, k.params.len(), args.len())));
    }
    let scalar = |v: Value| -> Option<i64> {
        match args.get(k.param_index(v)?)? {
            ArgValue::Int(i) => Some(*i),
            _ => None,
        }
    };
    let mut shapes = vec![Vec::new(); k.globals.len()];
    for (p, a) in k.params.iter().zip(args) {
        let name = k.param_name(*p);
        match (p, a) {
            (Param::Scalar(v), ArgValue::Int(i)) => {
                let d = k.ty(*v).dtype();
                if d.is_float() {
                    continue;
                }
                if wrap_int(d, *i) != *i {
                    return Err(RunError::new(format!("argument `{name}` = {i} does not fit `{d}`")));
                }
            }
            (Param::Scalar(v), ArgValue::Float(_)) => {
                if !k.ty(*v).dtype().is_float() {
                    return Err(RunError::new(format!("argument `{name}` must be an integer (`{}`)", k.ty(*v))));
                }
            }
            (Param::Tensor(g), ArgValue::Tensor(t)) => {
                let gd = &k.globals[*g];
                if t.dtype != gd.dtype {
                    return Err(RunError::new(format!("argument `{name}` has element type `{}`, the kernel expects `{}`", t.dtype, gd.dtype)));
                }
                let want: Option<Vec<i64>> = gd.shape.iter().map(|e| e.eval(&scalar)).collect();
                let want = want.ok_or_else(|| RunError::new(format!("the shape of `{name}` cannot be evaluated (division by zero?)")))?;
                let have: Vec<i64> = t.shape.iter().map(|&d| d as i64).collect();
                if want != have {
                    let dims: Vec<String> = gd.shape.iter().map(|e| SymDisplay { expr: e }.to_string()).collect();
                    return Err(RunError::new(format!(
                        "argument `{name}` has shape {:?}, the kernel expects {:?} (that is [{}] with the scalar arguments given)",
                        have,
                        want,
                        named_dims(k, &dims)
                    )));
                }
                if t.codes.len() != t.numel() {
                    return Err(RunError::new(format!("argument `{name}` holds {} codes for {} elements", t.codes.len(), t.numel())));
                }
                shapes[g.as_u32() as usize] = t.shape.clone();
            }
            (Param::Scalar(_), ArgValue::Tensor(_)) => return Err(RunError::new(format!("argument `{name}` must be a scalar, not a tensor"))),
            (Param::Tensor(_), _) => return Err(RunError::new(format!("argument `{name}` must be a tensor, not a scalar"))),
        }
    }
    let mut grid = [1u32; 3];
    for (i, e) in k.grid.iter().enumerate() {
        let n = e.eval(&scalar).ok_or_else(|| RunError::new("the grid cannot be evaluated (division by zero?)"))?;
        grid[i] = u32::try_from(n).map_err(|_| RunError::new(format!("grid extent {} is {n}, not in 0..2^32", SymDisplay { expr: e })))?;
    }
    Ok(Launch { grid, shapes })
}

fn named_dims(k: &Kernel, dims: &[String]) -> String {
    // Replace `vN` by parameter names for the user's benefit.
    let mut s = dims.join(", ");
    for p in &k.params {
        if let Param::Scalar(v) = p {
            s = replace_word(&s, &v.to_string(), k.param_name(*p));
        }
    }
    s
}

fn replace_word(s: &str, from: &str, to: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(from) {
        let end = i + from.len();
        let next_is_digit = rest[end..].chars().next().is_some_and(|c| c.is_ascii_digit());
        out.push_str(&rest[..i]);
        out.push_str(if next_is_digit { from } else { to });
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Runs `k` over its grid. `args` follow `k.params`; the tensors of `out` parameters are
/// updated in place with every element the kernel stored (other elements keep their values).
pub fn run(k: &Kernel, args: &mut [ArgValue]) -> Result<RunSummary, RunError> {
    let launch = check_args(k, args)?;
    let [gx, gy, gz] = launch.grid;
    let nblocks = u64::from(gx) * u64::from(gy) * u64::from(gz);
    let mut loaded_outs = HashSet::new();
    k.walk(&mut |i| {
        if let InstKind::LoadGlobal { global, .. } | InstKind::CopyAsync { global, .. } = &k.insts[i].kind
            && k.globals[*global].out
        {
            loaded_outs.insert(*global);
        }
    });
    let shared_args: &[ArgValue] = args;
    let ctx = Ctx { k, args: shared_args, launch: &launch, loaded_outs: &loaded_outs };
    let results: Vec<Result<StoreLog, RunError>> = (0..nblocks)
        .into_par_iter()
        .map(|b| {
            let bi = [(b % u64::from(gx)) as u32, ((b / u64::from(gx)) % u64::from(gy)) as u32, (b / (u64::from(gx) * u64::from(gy))) as u32];
            ctx.run_block(bi, b)
        })
        .collect();
    let mut logs = Vec::with_capacity(results.len());
    for r in results {
        logs.push(r?);
    }
    // Apply the stores in block order; a second block writing an element is a race.
    let nglobals = k.globals.len();
    let mut owner: Vec<Vec<u64>> = vec![Vec::new(); nglobals];
    for (gi, (g, gd)) in k.globals.iter().enumerate() {
        if gd.out {
            let n: usize = launch.shapes[g.as_u32() as usize].iter().product();
            owner[gi] = vec![u64::MAX; n];
        }
    }
    for (b, log) in logs.iter().enumerate() {
        for (gi, entries) in log.iter().enumerate() {
            let g = Global::from_u32(gi as u32);
            for &(idx, _) in entries {
                let o = &mut owner[gi][idx];
                if *o != u64::MAX && *o != b as u64 {
                    let shape = &launch.shapes[gi];
                    return Err(RunError::new(format!(
                        "element {:?} of `{}` is stored by two blocks, {:?} and {:?} (a race)",
                        unravel(idx, shape),
                        k.globals[g].name,
                        block_coords(*o, launch.grid),
                        block_coords(b as u64, launch.grid)
                    )));
                }
                *o = b as u64;
            }
        }
    }
    for log in logs {
        for (gi, entries) in log.into_iter().enumerate() {
            if entries.is_empty() {
                continue;
            }
            let p = k.params.iter().position(|p| *p == Param::Tensor(Global::from_u32(gi as u32))).expect("every global is a parameter");
            if let ArgValue::Tensor(t) = &mut args[p] {
                for (idx, code) in entries {
                    t.codes[idx] = code;
                }
            }
        }
    }
    Ok(RunSummary { grid: launch.grid })
}

fn block_coords(b: u64, grid: [u32; 3]) -> (u64, u64, u64) {
    let (gx, gy) = (u64::from(grid[0]), u64::from(grid[1]));
    (b % gx, (b / gx) % gy, b / (gx * gy))
}

fn unravel(mut idx: usize, shape: &[usize]) -> Vec<usize> {
    let mut out = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        out[d] = idx % shape[d];
        idx /= shape[d];
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Values

/// A register tile at run time: row-major codes.
#[derive(Clone, Debug)]
struct Tile {
    dtype: DType,
    shape: Vec<usize>,
    codes: Vec<u64>,
}

/// A run-time value.
#[derive(Clone, Debug)]
enum Rv {
    /// An integer scalar, already wrapped to its type.
    I(i64),
    /// A float scalar, exactly representable in its type.
    F(f64),
    /// A register tile.
    Tile(Rc<Tile>),
    /// A shared tensor: index into the block's shared allocations.
    Shared(usize),
}

/// Numbers of one tile or scalar in computing form.
enum Vals {
    I(Vec<i64>),
    F(Vec<f64>),
}

/// A block's global stores: per global, `(element index, code)` in program order.
type StoreLog = Vec<Vec<(usize, u64)>>;

struct SharedBuf {
    shape: Vec<usize>,
    codes: Vec<u64>,
    init: Vec<bool>,
}

struct PendingCopy {
    shared: usize,
    offsets: Vec<i64>,
    shape: Vec<usize>,
    codes: Vec<u64>,
}

/// Sign-extends or masks `v` to the integer type `d` (64-bit types unchanged).
fn wrap_int(d: DType, v: i64) -> i64 {
    let bits = d.bits();
    if bits >= 64 {
        return v;
    }
    let m = (1u64 << bits) - 1;
    let u = (v as u64) & m;
    if d.is_signed() && (u >> (bits - 1)) & 1 == 1 { (u | !m) as i64 } else { u as i64 }
}

fn int_code(d: DType, v: i64) -> u64 {
    (v as u64) & d.code_mask()
}

fn code_int(d: DType, c: u64) -> i64 {
    wrap_int(d, c as i64)
}

fn is_f32(d: DType) -> bool {
    d == DType::Float(FloatFormat::F32)
}

fn decode_float(d: DType, c: u64) -> f64 {
    if is_f32(d) { f64::from(f32::from_bits(c as u32)) } else { d.decode(c) }
}

/// The code of `x` in float type `d`, rounded to nearest-even (±∞/NaN where the format has them).
fn encode_float(d: DType, x: f64) -> u64 {
    if is_f32(d) && !x.is_nan() {
        u64::from((x as f32).to_bits())
    } else {
        d.encode(x, Rounding::NearestEven, Overflow::NonSaturating)
    }
}

fn round_float(d: DType, x: f64) -> f64 {
    if is_f32(d) { f64::from(x as f32) } else { decode_float(d, encode_float(d, x)) }
}

fn tile_vals(t: &Tile) -> Vals {
    if t.dtype.is_int() {
        Vals::I(t.codes.iter().map(|&c| code_int(t.dtype, c)).collect())
    } else {
        Vals::F(t.codes.iter().map(|&c| decode_float(t.dtype, c)).collect())
    }
}

fn encode_vals(d: DType, v: &Vals) -> Vec<u64> {
    match v {
        Vals::I(v) => v.iter().map(|&x| int_code(d, x)).collect(),
        Vals::F(v) => v.iter().map(|&x| encode_float(d, x)).collect(),
    }
}

/// For each element of `out`, the linear index of the broadcast element of `shape`.
fn bcast_map(out: &[usize], shape: &[usize]) -> Vec<usize> {
    let n: usize = out.iter().product();
    let r = out.len();
    let mut strides = vec![0usize; r];
    let mut s = 1;
    for i in (0..shape.len()).rev() {
        let oi = i + r - shape.len();
        strides[oi] = if shape[i] == 1 { 0 } else { s };
        s *= shape[i];
    }
    let mut idx = vec![0usize; r];
    let mut out_map = Vec::with_capacity(n);
    let mut lin = 0usize;
    for _ in 0..n {
        out_map.push(lin);
        for d in (0..r).rev() {
            idx[d] += 1;
            lin += strides[d];
            if idx[d] < out[d] {
                break;
            }
            lin -= strides[d] * idx[d];
            idx[d] = 0;
        }
    }
    out_map
}

// ---------------------------------------------------------------------------------------------
// Element operations

type EResult<T> = Result<T, String>;

fn int_binary(op: BinaryOp, d: DType, a: i64, b: i64) -> EResult<i64> {
    let bits = i64::from(d.bits());
    Ok(match op {
        BinaryOp::Add => a.wrapping_add(b),
        BinaryOp::Sub => a.wrapping_sub(b),
        BinaryOp::Mul => a.wrapping_mul(b),
        BinaryOp::Div | BinaryOp::Rem | BinaryOp::CeilDiv if b == 0 => return Err(format!("integer division of {a} by zero")),
        BinaryOp::Div => a.wrapping_div(b),
        BinaryOp::Rem => a.wrapping_rem(b),
        BinaryOp::CeilDiv => {
            let q = a.wrapping_div(b);
            if a.wrapping_rem(b) != 0 && ((a < 0) == (b < 0)) { q + 1 } else { q }
        }
        BinaryOp::Min => a.min(b),
        BinaryOp::Max => a.max(b),
        BinaryOp::Eq => i64::from(a == b),
        BinaryOp::Ne => i64::from(a != b),
        BinaryOp::Lt => i64::from(a < b),
        BinaryOp::Le => i64::from(a <= b),
        BinaryOp::Gt => i64::from(a > b),
        BinaryOp::Ge => i64::from(a >= b),
        BinaryOp::And => a & b,
        BinaryOp::Or => a | b,
        BinaryOp::Xor => a ^ b,
        BinaryOp::Shl | BinaryOp::Shr if b < 0 => return Err(format!("shift by a negative amount ({b})")),
        BinaryOp::Shl => {
            if b >= bits {
                0
            } else {
                a.wrapping_shl(b as u32)
            }
        }
        BinaryOp::Shr => {
            if d.is_signed() {
                a >> b.min(63)
            } else if b >= bits {
                0
            } else {
                ((a as u64) >> b) as i64
            }
        }
    })
}

fn float_binary(op: BinaryOp, a: f64, b: f64) -> f64 {
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Rem => a % b,
        BinaryOp::Min => {
            if a.is_nan() || b.is_nan() {
                f64::NAN
            } else {
                a.min(b)
            }
        }
        BinaryOp::Max => {
            if a.is_nan() || b.is_nan() {
                f64::NAN
            } else {
                a.max(b)
            }
        }
        BinaryOp::Eq => f64::from(u8::from(a == b)),
        BinaryOp::Ne => f64::from(u8::from(a != b)),
        BinaryOp::Lt => f64::from(u8::from(a < b)),
        BinaryOp::Le => f64::from(u8::from(a <= b)),
        BinaryOp::Gt => f64::from(u8::from(a > b)),
        BinaryOp::Ge => f64::from(u8::from(a >= b)),
        // Integer-only operators are rejected by the typing rules.
        _ => f64::NAN,
    }
}

fn int_unary(op: UnaryOp, d: DType, a: i64) -> i64 {
    match op {
        UnaryOp::Neg => a.wrapping_neg(),
        UnaryOp::Abs => a.wrapping_abs(),
        UnaryOp::Not if d == bool_type() => 1 - a,
        UnaryOp::Not => !a,
        // Float-only operators are rejected by the typing rules.
        _ => a,
    }
}

fn float_unary(op: UnaryOp, a: f64) -> f64 {
    match op {
        UnaryOp::Neg => -a,
        UnaryOp::Abs => a.abs(),
        UnaryOp::Not => f64::NAN,
        UnaryOp::Exp => a.exp(),
        UnaryOp::Exp2 => a.exp2(),
        UnaryOp::Log => a.ln(),
        UnaryOp::Log2 => a.log2(),
        UnaryOp::Sqrt => a.sqrt(),
        UnaryOp::Rsqrt => 1.0 / a.sqrt(),
        UnaryOp::Floor => a.floor(),
        UnaryOp::Ceil => a.ceil(),
        UnaryOp::Trunc => a.trunc(),
        UnaryOp::Round => a.round_ties_even(),
    }
}

// ---------------------------------------------------------------------------------------------
// Blocks

struct Ctx<'a> {
    k: &'a Kernel,
    args: &'a [ArgValue],
    launch: &'a Launch,
    loaded_outs: &'a HashSet<Global>,
}

struct Block<'a> {
    ctx: &'a Ctx<'a>,
    block: [u32; 3],
    linear: u64,
    env: Vec<Option<Rv>>,
    shared: Vec<SharedBuf>,
    open_group: Vec<PendingCopy>,
    groups: Vec<Vec<PendingCopy>>,
    /// Global stores of this block, per global, in program order.
    log: Vec<Vec<(usize, u64)>>,
    /// This block's own stores to `out` tensors it also loads, so it reads its writes.
    overlay: HashMap<(u32, usize), u64>,
}

impl Ctx<'_> {
    fn run_block(&self, block: [u32; 3], linear: u64) -> Result<StoreLog, RunError> {
        let k = self.k;
        let mut b = Block {
            ctx: self,
            block,
            linear,
            env: vec![None; k.values.len()],
            shared: Vec::new(),
            open_group: Vec::new(),
            groups: Vec::new(),
            log: vec![Vec::new(); k.globals.len()],
            overlay: HashMap::new(),
        };
        for (i, p) in k.params.iter().enumerate() {
            if let Param::Scalar(v) = p {
                b.env[v.as_u32() as usize] = Some(match &self.args[i] {
                    ArgValue::Int(x) => {
                        if k.ty(*v).dtype().is_float() {
                            Rv::F(round_float(k.ty(*v).dtype(), *x as f64))
                        } else {
                            Rv::I(*x)
                        }
                    }
                    ArgValue::Float(x) => Rv::F(round_float(k.ty(*v).dtype(), *x)),
                    ArgValue::Tensor(_) => unreachable!("check_args matched kinds"),
                });
            }
        }
        b.body(&k.body).map_err(|mut e| {
            e.block = Some(block);
            e
        })?;
        Ok(b.log)
    }
}

impl Block<'_> {
    fn get(&self, v: Value, span: Span) -> Result<&Rv, RunError> {
        self.env[v.as_u32() as usize].as_ref().ok_or_else(|| {
            let name = self.ctx.k.values[v].name.as_deref().unwrap_or("a value");
            RunError { message: format!("`{name}` ({v}) is read before it is assigned"), span: Some(span), block: None }
        })
    }

    fn int(&self, v: Value, span: Span) -> Result<i64, RunError> {
        match self.get(v, span)? {
            Rv::I(i) => Ok(*i),
            other => Err(bug(span, format!("{v} should be an integer scalar, is {other:?}"))),
        }
    }

    fn tile(&self, v: Value, span: Span) -> Result<Rc<Tile>, RunError> {
        match self.get(v, span)? {
            Rv::Tile(t) => Ok(t.clone()),
            Rv::I(i) => Ok(Rc::new(Tile { dtype: self.ctx.k.ty(v).dtype(), shape: vec![1], codes: vec![int_code(self.ctx.k.ty(v).dtype(), *i)] })),
            Rv::F(x) => Ok(Rc::new(Tile { dtype: self.ctx.k.ty(v).dtype(), shape: vec![1], codes: vec![encode_float(self.ctx.k.ty(v).dtype(), *x)] })),
            Rv::Shared(_) => Err(bug(span, format!("{v} is a shared tensor, not a tile"))),
        }
    }

    fn shared_index(&self, v: Value, span: Span) -> Result<usize, RunError> {
        match self.get(v, span)? {
            Rv::Shared(s) => Ok(*s),
            _ => Err(bug(span, format!("{v} should be a shared tensor"))),
        }
    }

    fn offsets(&self, offs: &[Value], span: Span) -> Result<Vec<i64>, RunError> {
        offs.iter().map(|&o| self.int(o, span)).collect()
    }

    fn body(&mut self, body: &[Inst]) -> Result<(), RunError> {
        for &i in body {
            self.inst(i)?;
        }
        Ok(())
    }

    fn set(&mut self, i: Inst, v: Rv) {
        if let Some(r) = self.ctx.k.insts[i].result {
            self.env[r.as_u32() as usize] = Some(v);
        }
    }

    fn inst(&mut self, i: Inst) -> Result<(), RunError> {
        let k = self.ctx.k;
        let data = &k.insts[i];
        let span = data.span;
        let fail = |m: String| RunError { message: m, span: Some(span), block: None };
        let result_ty = data.result.map(|r| k.ty(r).clone());
        use InstKind::*;
        match &data.kind {
            Const(c) => {
                let v = match (c, &result_ty) {
                    (ScalarConst::Int(x), Some(Type::Scalar(d))) if d.is_int() || d.bits() == 64 => Rv::I(wrap_int(*d, *x)),
                    (ScalarConst::Int(x), _) => Rv::F(*x as f64),
                    (ScalarConst::Float(x), _) => Rv::F(*x),
                };
                self.set(i, v);
            }
            BlockIdx { axis } => self.set(i, Rv::I(i64::from(self.block[*axis as usize]))),
            Iota { dtype, shape, axis } => {
                let n: usize = shape.iter().product();
                let inner: usize = shape[axis + 1..].iter().product();
                let codes = (0..n).map(|e| int_code(*dtype, ((e / inner) % shape[*axis]) as i64)).collect();
                self.set(i, Rv::Tile(Rc::new(Tile { dtype: *dtype, shape: shape.clone(), codes })));
            }
            Unary { op, x } => {
                let rt = result_ty.expect("unary has a result");
                let d = rt.dtype();
                match self.get(*x, span)?.clone() {
                    Rv::I(a) => self.set(i, Rv::I(wrap_int(d, int_unary(*op, d, a)))),
                    Rv::F(a) => self.set(i, Rv::F(round_float(d, float_unary(*op, a)))),
                    Rv::Tile(t) => {
                        let vals = match tile_vals(&t) {
                            Vals::I(v) => Vals::I(v.into_iter().map(|a| wrap_int(d, int_unary(*op, d, a))).collect()),
                            Vals::F(v) => Vals::F(v.into_iter().map(|a| float_unary(*op, a)).collect()),
                        };
                        self.set(i, Rv::Tile(Rc::new(Tile { dtype: d, shape: t.shape.clone(), codes: encode_vals(d, &vals) })));
                    }
                    Rv::Shared(_) => return Err(bug(span, "unary on shared")),
                }
            }
            Binary { op, a, b } => {
                let rt = result_ty.expect("binary has a result");
                let d_in = k.ty(*a).dtype();
                let d_out = rt.dtype();
                let (va, vb) = (self.get(*a, span)?.clone(), self.get(*b, span)?.clone());
                match (&va, &vb, &rt) {
                    (Rv::I(x), Rv::I(y), Type::Scalar(_)) => {
                        let r = int_binary(*op, d_in, *x, *y).map_err(fail)?;
                        self.set(i, Rv::I(wrap_int(d_out, r)));
                    }
                    (Rv::F(x), Rv::F(y), Type::Scalar(_)) => {
                        let r = float_binary(*op, *x, *y);
                        self.set(i, if op.is_comparison() { Rv::I(r as i64) } else { Rv::F(round_float(d_out, r)) });
                    }
                    (_, _, Type::Tile(out)) => {
                        let (ta, tb) = (self.tile(*a, span)?, self.tile(*b, span)?);
                        let sa = if matches!(va, Rv::Tile(_)) { ta.shape.clone() } else { vec![1] };
                        let sb = if matches!(vb, Rv::Tile(_)) { tb.shape.clone() } else { vec![1] };
                        let (ma, mb) = (bcast_map(&out.shape, &sa), bcast_map(&out.shape, &sb));
                        let vals = match (tile_vals(&ta), tile_vals(&tb)) {
                            (Vals::I(x), Vals::I(y)) => {
                                let mut r = Vec::with_capacity(ma.len());
                                for (&p, &q) in ma.iter().zip(&mb) {
                                    r.push(wrap_int(d_out, int_binary(*op, d_in, x[p], y[q]).map_err(fail)?));
                                }
                                Vals::I(r)
                            }
                            (Vals::F(x), Vals::F(y)) => {
                                let r: Vec<f64> = ma.iter().zip(&mb).map(|(&p, &q)| float_binary(*op, x[p], y[q])).collect();
                                if op.is_comparison() { Vals::I(r.into_iter().map(|c| c as i64).collect()) } else { Vals::F(r) }
                            }
                            _ => return Err(bug(span, "binary operands of different kinds")),
                        };
                        self.set(i, Rv::Tile(Rc::new(Tile { dtype: d_out, shape: out.shape.clone(), codes: encode_vals(d_out, &vals) })));
                    }
                    _ => return Err(bug(span, "binary operand kinds")),
                }
            }
            Select { cond, a, b } => {
                let rt = result_ty.expect("where has a result");
                match &rt {
                    Type::Scalar(_) => {
                        let c = self.int(*cond, span)?;
                        let v = self.get(if c != 0 { *a } else { *b }, span)?.clone();
                        self.set(i, v);
                    }
                    Type::Tile(out) => {
                        let shape_of = |v: Value| k.ty(v).as_tile().map_or(vec![1], |t| t.shape.clone());
                        let (tc, ta, tb) = (self.tile(*cond, span)?, self.tile(*a, span)?, self.tile(*b, span)?);
                        let (mc, ma, mb) = (bcast_map(&out.shape, &shape_of(*cond)), bcast_map(&out.shape, &shape_of(*a)), bcast_map(&out.shape, &shape_of(*b)));
                        let codes = (0..mc.len()).map(|e| if tc.codes[mc[e]] != 0 { ta.codes[ma[e]] } else { tb.codes[mb[e]] }).collect();
                        self.set(i, Rv::Tile(Rc::new(Tile { dtype: out.dtype, shape: out.shape.clone(), codes })));
                    }
                    Type::Shared(_) => return Err(bug(span, "where on shared")),
                }
            }
            Cast { x, dtype, rounding, overflow } => {
                let src = k.ty(*x).dtype();
                let ov = match overflow {
                    CastOverflow::Saturate => Overflow::Saturate,
                    CastOverflow::Wrap => Overflow::NonSaturating,
                };
                let (seed, index) = match rounding {
                    CastRounding::Stochastic { seed, index } => {
                        (Some(self.int(*seed, span)? as u64), match index {
                            Some(ix) => Some(self.tile(*ix, span)?),
                            None => None,
                        })
                    }
                    _ => (None, None),
                };
                let mode = |e: usize, numel: usize| -> Rounding {
                    match rounding {
                        CastRounding::NearestEven => Rounding::NearestEven,
                        CastRounding::TowardZero => Rounding::TowardZero,
                        CastRounding::TowardPositive => Rounding::TowardPositive,
                        CastRounding::TowardNegative => Rounding::TowardNegative,
                        CastRounding::Stochastic { .. } => {
                            let idx = match &index {
                                Some(t) => code_int(t.dtype, t.codes[e]) as u64,
                                None => self.linear * numel as u64 + e as u64,
                            };
                            Rounding::Stochastic { seed: seed.unwrap_or(0), index: idx }
                        }
                    }
                };
                let conv = |x: f64, e: usize, numel: usize| -> u64 { cast_value(*dtype, x, mode(e, numel), ov) };
                match self.get(*x, span)?.clone() {
                    Rv::I(a) => {
                        let code = if src.bits() == 64 && dtype.is_int() { int_code(*dtype, a) } else { conv(a as f64, 0, 1) };
                        self.set(i, scalar_from_code(*dtype, code));
                    }
                    Rv::F(a) => {
                        let code = conv(a, 0, 1);
                        self.set(i, scalar_from_code(*dtype, code));
                    }
                    Rv::Tile(t) => {
                        let n = t.codes.len();
                        let codes = if t.dtype.is_int() {
                            t.codes.iter().enumerate().map(|(e, &c)| conv(code_int(t.dtype, c) as f64, e, n)).collect()
                        } else {
                            t.codes.iter().enumerate().map(|(e, &c)| conv(decode_float(t.dtype, c), e, n)).collect()
                        };
                        self.set(i, Rv::Tile(Rc::new(Tile { dtype: *dtype, shape: t.shape.clone(), codes })));
                    }
                    Rv::Shared(_) => return Err(bug(span, "cast of shared")),
                }
            }
            Full { value, shape } => {
                let d = k.ty(*value).dtype();
                let code = match self.get(*value, span)? {
                    Rv::I(x) => int_code(d, *x),
                    Rv::F(x) => encode_float(d, *x),
                    _ => return Err(bug(span, "full of a non-scalar")),
                };
                let n = shape.iter().product();
                self.set(i, Rv::Tile(Rc::new(Tile { dtype: d, shape: shape.clone(), codes: vec![code; n] })));
            }
            LoadGlobal { global, offsets, shape } => {
                let offs = self.offsets(offsets, span)?;
                let codes = self.read_global(*global, &offs, shape);
                self.set(i, Rv::Tile(Rc::new(Tile { dtype: k.globals[*global].dtype, shape: shape.clone(), codes })));
            }
            StoreGlobal { global, offsets, value } => {
                let offs = self.offsets(offsets, span)?;
                let t = self.tile(*value, span)?;
                let gshape = &self.ctx.launch.shapes[global.as_u32() as usize];
                let track = self.ctx.loaded_outs.contains(global);
                for_each_in_range(&t.shape, &offs, gshape, |e, gi| {
                    self.log[global.as_u32() as usize].push((gi, t.codes[e]));
                    if track {
                        self.overlay.insert((global.as_u32(), gi), t.codes[e]);
                    }
                });
            }
            AllocShared { tile } => {
                let n = tile.numel();
                self.shared.push(SharedBuf { shape: tile.shape.clone(), codes: vec![0; n], init: vec![false; n] });
                let idx = self.shared.len() - 1;
                self.set(i, Rv::Shared(idx));
            }
            LoadShared { shared, offsets, shape } => {
                let s = self.shared_index(*shared, span)?;
                let offs = self.offsets(offsets, span)?;
                let buf = &self.shared[s];
                check_shared_bounds(&buf.shape, &offs, shape).map_err(fail)?;
                let n: usize = shape.iter().product();
                let mut codes = Vec::with_capacity(n);
                let mut uninit = None;
                for_each_shared(shape, &offs, &buf.shape, |e, si| {
                    if !buf.init[si] && uninit.is_none() {
                        uninit = Some(e);
                    }
                    codes.push(buf.codes[si]);
                });
                if let Some(e) = uninit {
                    let at: Vec<i64> = unravel(e, shape).iter().zip(&offs).map(|(&a, &o)| a as i64 + o).collect();
                    return Err(fail(format!("read of uninitialised shared memory: element {at:?} of {shared} was never written")));
                }
                let dtype = k.ty(*shared).dtype();
                self.set(i, Rv::Tile(Rc::new(Tile { dtype, shape: shape.clone(), codes })));
            }
            StoreShared { shared, offsets, value } => {
                let s = self.shared_index(*shared, span)?;
                let offs = self.offsets(offsets, span)?;
                let t = self.tile(*value, span)?;
                let buf = &mut self.shared[s];
                check_shared_bounds(&buf.shape, &offs, &t.shape).map_err(fail)?;
                let bshape = buf.shape.clone();
                for_each_shared(&t.shape, &offs, &bshape, |e, si| {
                    buf.codes[si] = t.codes[e];
                    buf.init[si] = true;
                });
            }
            CopyAsync { global, offsets, shared, shared_offsets, shape } => {
                let s = self.shared_index(*shared, span)?;
                let offs = self.offsets(offsets, span)?;
                let soffs = self.offsets(shared_offsets, span)?;
                let padded = crate::types::pad_leading(shape, self.shared[s].shape.len());
                check_shared_bounds(&self.shared[s].shape, &soffs, &padded).map_err(fail)?;
                let codes = self.read_global(*global, &offs, shape);
                self.open_group.push(PendingCopy { shared: s, offsets: soffs, shape: padded, codes });
            }
            CopyAsyncCommit => {
                let g = std::mem::take(&mut self.open_group);
                self.groups.push(g);
            }
            CopyAsyncWait { pending } => {
                while self.groups.len() > *pending as usize {
                    let g = self.groups.remove(0);
                    for c in g {
                        let buf = &mut self.shared[c.shared];
                        let bshape = buf.shape.clone();
                        for_each_shared(&c.shape, &c.offsets, &bshape, |e, si| {
                            buf.codes[si] = c.codes[e];
                            buf.init[si] = true;
                        });
                    }
                }
            }
            Sync => {}
            View { x, dtype, shape } => {
                let t = self.tile(*x, span)?;
                let n: usize = shape.iter().product();
                let codes = if t.dtype.bits() == dtype.bits() {
                    t.codes.clone()
                } else {
                    let bytes = tilc_dtype::pack::pack(&t.codes, t.dtype.bits());
                    tilc_dtype::pack::unpack(&bytes, dtype.bits(), n)
                };
                self.set(i, Rv::Tile(Rc::new(Tile { dtype: *dtype, shape: shape.clone(), codes })));
            }
            Dot { a, b, c } => {
                let (ta, tb, tc) = (self.tile(*a, span)?, self.tile(*b, span)?, self.tile(*c, span)?);
                let (m, kk, n) = (ta.shape[0], ta.shape[1], tb.shape[1]);
                let codes = match (tile_vals(&ta), tile_vals(&tb), tile_vals(&tc)) {
                    (Vals::I(x), Vals::I(y), Vals::I(acc)) => {
                        let mut out = Vec::with_capacity(m * n);
                        for r in 0..m {
                            for col in 0..n {
                                let mut s = acc[r * n + col] as i32;
                                for p in 0..kk {
                                    s = s.wrapping_add((x[r * kk + p] * y[p * n + col]) as i32);
                                }
                                out.push(int_code(tc.dtype, i64::from(s)));
                            }
                        }
                        out
                    }
                    (Vals::F(x), Vals::F(y), Vals::F(acc)) => {
                        // Transpose b so the inner loop reads both operands contiguously.
                        let mut yt = vec![0.0; kk * n];
                        for p in 0..kk {
                            for col in 0..n {
                                yt[col * kk + p] = y[p * n + col];
                            }
                        }
                        let mut out = Vec::with_capacity(m * n);
                        for r in 0..m {
                            let xr = &x[r * kk..(r + 1) * kk];
                            for col in 0..n {
                                let yc = &yt[col * kk..(col + 1) * kk];
                                let mut s = acc[r * n + col] as f32;
                                for p in 0..kk {
                                    s = (f64::from(s) + xr[p] * yc[p]) as f32;
                                }
                                out.push(u64::from(s.to_bits()));
                            }
                        }
                        out
                    }
                    _ => return Err(bug(span, "dot operand kinds")),
                };
                self.set(i, Rv::Tile(Rc::new(Tile { dtype: tc.dtype, shape: tc.shape.clone(), codes })));
            }
            Reduce { op, x, axis, .. } => {
                let t = self.tile(*x, span)?;
                let out_shape = result_ty.and_then(|t| t.as_tile().map(|t| t.shape.clone())).expect("reduce has a tile result");
                let outer: usize = t.shape[..*axis].iter().product();
                let len = t.shape[*axis];
                let inner: usize = t.shape[axis + 1..].iter().product();
                let d = t.dtype;
                let vals = match tile_vals(&t) {
                    Vals::I(v) => {
                        let mut r = Vec::with_capacity(outer * inner);
                        for o in 0..outer {
                            for q in 0..inner {
                                let it = (0..len).map(|j| v[(o * len + j) * inner + q]);
                                r.push(wrap_int(d, match op {
                                    ReduceOp::Sum => it.fold(0i64, |a, b| a.wrapping_add(b)),
                                    ReduceOp::Max => it.max().unwrap_or(0),
                                    ReduceOp::Min => it.min().unwrap_or(0),
                                    ReduceOp::AbsMax => it.map(|x| x.wrapping_abs()).max().unwrap_or(0),
                                }));
                            }
                        }
                        Vals::I(r)
                    }
                    Vals::F(v) => {
                        let mut r = Vec::with_capacity(outer * inner);
                        for o in 0..outer {
                            for q in 0..inner {
                                let it = (0..len).map(|j| v[(o * len + j) * inner + q]);
                                r.push(match op {
                                    ReduceOp::Sum => it.sum::<f64>(),
                                    ReduceOp::Max => it.fold(f64::NEG_INFINITY, |a, b| float_binary(BinaryOp::Max, a, b)),
                                    ReduceOp::Min => it.fold(f64::INFINITY, |a, b| float_binary(BinaryOp::Min, a, b)),
                                    ReduceOp::AbsMax => it.fold(0.0, |a, b| float_binary(BinaryOp::Max, a, b.abs())),
                                });
                            }
                        }
                        Vals::F(r)
                    }
                };
                self.set(i, Rv::Tile(Rc::new(Tile { dtype: d, shape: out_shape, codes: encode_vals(d, &vals) })));
            }
            Transpose { x, perm } => {
                let t = self.tile(*x, span)?;
                let out_shape: Vec<usize> = perm.iter().map(|&p| t.shape[p]).collect();
                let mut in_strides = vec![1usize; t.shape.len()];
                for d in (0..t.shape.len().saturating_sub(1)).rev() {
                    in_strides[d] = in_strides[d + 1] * t.shape[d + 1];
                }
                let n = t.codes.len();
                let mut codes = Vec::with_capacity(n);
                for e in 0..n {
                    let idx = unravel(e, &out_shape);
                    let src: usize = idx.iter().zip(perm).map(|(&ix, &p)| ix * in_strides[p]).sum();
                    codes.push(t.codes[src]);
                }
                self.set(i, Rv::Tile(Rc::new(Tile { dtype: t.dtype, shape: out_shape, codes })));
            }
            Reshape { x, shape } => {
                let t = self.tile(*x, span)?;
                self.set(i, Rv::Tile(Rc::new(Tile { dtype: t.dtype, shape: shape.clone(), codes: t.codes.clone() })));
            }
            Broadcast { x, shape } => {
                let t = self.tile(*x, span)?;
                let src_shape = k.ty(*x).as_tile().map_or(vec![1], |t| t.shape.clone());
                let map = bcast_map(shape, &src_shape);
                let codes = map.iter().map(|&p| t.codes[p]).collect();
                self.set(i, Rv::Tile(Rc::new(Tile { dtype: t.dtype, shape: shape.clone(), codes })));
            }
            Hadamard { x, axis } => {
                let t = self.tile(*x, span)?;
                let Vals::F(mut v) = tile_vals(&t) else { return Err(bug(span, "hadamard of ints")) };
                let outer: usize = t.shape[..*axis].iter().product();
                let inner: usize = t.shape[axis + 1..].iter().product();
                hadamard_in_place(&mut v, outer, t.shape[*axis], inner);
                let d = t.dtype;
                self.set(i, Rv::Tile(Rc::new(Tile { dtype: d, shape: t.shape.clone(), codes: encode_vals(d, &Vals::F(v)) })));
            }
            Assign { var, value } => {
                let v = self.get(*value, span)?.clone();
                self.env[var.as_u32() as usize] = Some(v);
            }
            For { var, start, end, step, body, .. } => {
                let (s, e, st) = (self.int(*start, span)?, self.int(*end, span)?, self.int(*step, span)?);
                if st <= 0 {
                    return Err(fail(format!("loop step is {st}; it must be positive")));
                }
                let d = k.ty(*var).dtype();
                let mut x = s;
                while x < e {
                    self.env[var.as_u32() as usize] = Some(Rv::I(wrap_int(d, x)));
                    self.body(body)?;
                    x += st;
                }
            }
            If { cond, then_body, else_body } => {
                if self.int(*cond, span)? != 0 {
                    self.body(then_body)?;
                } else {
                    self.body(else_body)?;
                }
            }
            While { cond_body, cond, body } => loop {
                self.body(cond_body)?;
                if self.int(*cond, span)? == 0 {
                    break;
                }
                self.body(body)?;
            },
            Assume { cond } => {
                if self.int(*cond, span)? == 0 {
                    return Err(fail("an `assume` does not hold".to_string()));
                }
            }
        }
        Ok(())
    }

    /// The tile of global `g` at `offs` with `shape`; out-of-range elements read code 0.
    fn read_global(&self, g: Global, offs: &[i64], shape: &[usize]) -> Vec<u64> {
        let k = self.ctx.k;
        let p = k.params.iter().position(|p| *p == Param::Tensor(g)).expect("every global is a parameter");
        let ArgValue::Tensor(t) = &self.ctx.args[p] else { unreachable!("check_args matched kinds") };
        let n: usize = shape.iter().product();
        let mut codes = vec![0u64; n];
        let track = self.ctx.loaded_outs.contains(&g);
        for_each_in_range(shape, offs, &t.shape, |e, gi| {
            codes[e] = if track { self.overlay.get(&(g.as_u32(), gi)).copied().unwrap_or(t.codes[gi]) } else { t.codes[gi] };
        });
        codes
    }
}

fn scalar_from_code(d: DType, code: u64) -> Rv {
    if d.is_int() { Rv::I(code_int(d, code)) } else { Rv::F(decode_float(d, code)) }
}

/// The code of value `x` (of type `src`) converted to `dst`.
fn cast_value(dst: DType, x: f64, mode: Rounding, ov: Overflow) -> u64 {
    if dst.is_int() && dst.bits() == 64 {
        return x as i64 as u64;
    }
    dst.encode(x, mode, ov)
}

fn bug(span: Span, m: impl Into<String>) -> RunError {
    RunError { message: format!("internal error (a compiler bug): {}", m.into()), span: Some(span), block: None }
}

fn check_shared_bounds(buf: &[usize], offs: &[i64], shape: &[usize]) -> Result<(), String> {
    for d in 0..buf.len() {
        if offs[d] < 0 || offs[d] as usize + shape[d] > buf[d] {
            return Err(format!(
                "shared access out of bounds: a {} tile at offsets {offs:?} of a shared tensor of shape {}",
                ShapeDisplay(shape),
                ShapeDisplay(buf)
            ));
        }
    }
    Ok(())
}

/// Calls `f(tile_linear, shared_linear)` for every element of a tile placed at `offs` (in bounds).
fn for_each_shared(shape: &[usize], offs: &[i64], buf: &[usize], mut f: impl FnMut(usize, usize)) {
    let n: usize = shape.iter().product();
    for e in 0..n {
        let idx = unravel(e, shape);
        let mut lin = 0usize;
        for d in 0..buf.len() {
            lin = lin * buf[d] + (idx[d] as i64 + offs[d]) as usize;
        }
        f(e, lin);
    }
}

/// Calls `f(tile_linear, global_linear)` for every element of a tile at `offs` that lies inside
/// a tensor of shape `gshape`.
fn for_each_in_range(shape: &[usize], offs: &[i64], gshape: &[usize], mut f: impl FnMut(usize, usize)) {
    let r = shape.len();
    let n: usize = shape.iter().product();
    // Fast path over whole rows: compute the in-range column window once per row.
    let last = r - 1;
    let row_len = shape[last];
    let (c0, c1) = {
        let lo = (-offs[last]).max(0) as usize;
        let hi = ((gshape[last] as i64 - offs[last]).max(0) as usize).min(row_len);
        (lo.min(row_len), hi)
    };
    let rows = n / row_len;
    for row in 0..rows {
        let idx = unravel(row * row_len, shape);
        let mut lin = 0usize;
        let mut inside = true;
        for d in 0..last {
            let g = idx[d] as i64 + offs[d];
            if g < 0 || g >= gshape[d] as i64 {
                inside = false;
                break;
            }
            lin = lin * gshape[d] + g as usize;
        }
        if !inside || c0 >= c1 {
            continue;
        }
        let base = lin * gshape[last];
        for c in c0..c1 {
            f(row * row_len + c, base + (c as i64 + offs[last]) as usize);
        }
    }
}

/// The meaning of `hadamard`: the unnormalised Walsh–Hadamard transform (Sylvester order) of
/// `v`, viewed as `[outer, len, inner]` row-major, along the middle axis, in place. Butterflies
/// run with stride 1, 2, 4, … in f64, so every backend that calls this (or reproduces this
/// order) gets the interpreter's bits. `len` must be a power of two (elaboration checks it).
pub fn hadamard_in_place(v: &mut [f64], outer: usize, len: usize, inner: usize) {
    for o in 0..outer {
        for q in 0..inner {
            let at = |j: usize| (o * len + j) * inner + q;
            let mut h = 1;
            while h < len {
                for start in (0..len).step_by(2 * h) {
                    for j in start..start + h {
                        let (p, r) = (v[at(j)], v[at(j + h)]);
                        v[at(j)] = p + r;
                        v[at(j + h)] = p - r;
                    }
                }
                h *= 2;
            }
        }
    }
}
