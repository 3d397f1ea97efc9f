//! The block-level IR: one [`Kernel`] with its parameters, values, instructions and body.
//!
//! Storage follows Cranelift: values, instructions and global tensors live in arenas
//! ([`PrimaryMap`]) indexed by typed `u32` ids whose `Display` is the text format's spelling
//! (`v3`, `g1`, `i7`). Control flow is structured (naga style): a body is a list of
//! instructions, and `for`/`if`/`while` instructions own their nested bodies.
//!
//! **Invariants** (checked by [`crate::verify`]):
//! - every id stored in an instruction is in range of its arena;
//! - an immutable value (a parameter, a loop variable or an instruction result) is defined
//!   exactly once, and every use is dominated by its definition in the structured order (defined
//!   earlier in the same body or in an enclosing one);
//! - a mutable value ([`ValueDef::Var`]) is written only by [`InstKind::Assign`] with a value of
//!   exactly its type; reading it before any assignment is a run-time error, not a verifier one;
//! - every instruction's operand types satisfy [`crate::types::result_type`], and its result
//!   value has exactly the type that function returns.
//!
//! This module knows no syntax: elaboration (`crate::elaborate`) builds kernels through the
//! methods below, and so can tests and other crates.

use std::fmt;
use tilc_base::{PrimaryMap, Span, entity_impl};
use tilc_dtype::DType;

/// A scalar or tile value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Value(u32);
entity_impl!(Value, "v");

/// An instruction.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Inst(u32);
entity_impl!(Inst, "i");

/// A global tensor parameter.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Global(u32);
entity_impl!(Global, "g");

/// The shape and element type of a tile. Tile shapes are compile-time constants.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TileType {
    /// Element type.
    pub dtype: DType,
    /// Extent of each axis, row-major (the last axis is contiguous). Never empty: a tile has
    /// rank at least 1; every extent is at least 1.
    pub shape: Vec<usize>,
}

impl TileType {
    /// A tile type.
    pub fn new(dtype: DType, shape: Vec<usize>) -> TileType {
        TileType { dtype, shape }
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// The type of a [`Value`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    /// One scalar, uniform across the block (`i32`, `i64`, `f32`, `u1` for booleans, …).
    Scalar(DType),
    /// A register tile: the block's threads collectively hold every element.
    Tile(TileType),
    /// A shared-memory tensor, allocated per block by [`InstKind::AllocShared`].
    Shared(TileType),
}

impl Type {
    /// The element type of a scalar, tile or shared tensor.
    pub fn dtype(&self) -> DType {
        match self {
            Type::Scalar(d) => *d,
            Type::Tile(t) | Type::Shared(t) => t.dtype,
        }
    }

    /// The tile type of a register tile.
    pub fn as_tile(&self) -> Option<&TileType> {
        match self {
            Type::Tile(t) => Some(t),
            _ => None,
        }
    }

    /// The tile type of a shared tensor.
    pub fn as_shared(&self) -> Option<&TileType> {
        match self {
            Type::Shared(t) => Some(t),
            _ => None,
        }
    }

    /// True for scalars.
    pub fn is_scalar(&self) -> bool {
        matches!(self, Type::Scalar(_))
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Scalar(d) => write!(f, "{d}"),
            Type::Tile(t) => write!(f, "{}{}", t.dtype, ShapeDisplay(&t.shape)),
            Type::Shared(t) => write!(f, "shared {}{}", t.dtype, ShapeDisplay(&t.shape)),
        }
    }
}

/// Displays a shape as `[a, b, c]`.
pub struct ShapeDisplay<'a>(pub &'a [usize]);

impl fmt::Display for ShapeDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{d}")?;
        }
        write!(f, "]")
    }
}

/// A symbolic integer expression over the kernel's scalar parameters: the extents of global
/// tensors and of the grid. Evaluated once per launch, never per block.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SymExpr {
    /// A constant.
    Const(i64),
    /// The value of an integer scalar parameter.
    Param(Value),
    /// A binary operation.
    Bin(SymOp, Box<SymExpr>, Box<SymExpr>),
}

/// Operators of [`SymExpr`]; integer semantics, division and remainder truncate like Rust.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SymOp {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b`, truncating.
    Div,
    /// `a % b`
    Rem,
    /// `cdiv(a, b)` = ⌈a / b⌉ for b > 0.
    CeilDiv,
    /// `min(a, b)`
    Min,
    /// `max(a, b)`
    Max,
}

impl SymExpr {
    /// `op(a, b)`, folding constants.
    pub fn bin(op: SymOp, a: SymExpr, b: SymExpr) -> SymExpr {
        if let (SymExpr::Const(x), SymExpr::Const(y)) = (&a, &b)
            && let Some(v) = op.apply(*x, *y)
        {
            return SymExpr::Const(v);
        }
        SymExpr::Bin(op, Box::new(a), Box::new(b))
    }

    /// Evaluates with `param` giving the value of each parameter; `None` on division by zero,
    /// overflow or an unknown parameter.
    pub fn eval(&self, param: &dyn Fn(Value) -> Option<i64>) -> Option<i64> {
        match self {
            SymExpr::Const(c) => Some(*c),
            SymExpr::Param(v) => param(*v),
            SymExpr::Bin(op, a, b) => op.apply(a.eval(param)?, b.eval(param)?),
        }
    }

    /// The parameter if this expression is exactly one parameter (so an array shape determines it).
    pub fn as_param(&self) -> Option<Value> {
        match self {
            SymExpr::Param(v) => Some(*v),
            _ => None,
        }
    }
}

impl SymOp {
    /// `self(a, b)`; `None` on division by zero or overflow.
    pub fn apply(self, a: i64, b: i64) -> Option<i64> {
        match self {
            SymOp::Add => a.checked_add(b),
            SymOp::Sub => a.checked_sub(b),
            SymOp::Mul => a.checked_mul(b),
            SymOp::Div => a.checked_div(b),
            SymOp::Rem => a.checked_rem(b),
            SymOp::CeilDiv => {
                if b == 0 {
                    None
                } else {
                    let q = a.checked_div(b)?;
                    Some(if a % b != 0 && ((a < 0) == (b < 0)) { q + 1 } else { q })
                }
            }
            SymOp::Min => Some(a.min(b)),
            SymOp::Max => Some(a.max(b)),
        }
    }
}

/// Displays a [`SymExpr`] with parameter names resolved through the kernel.
pub struct SymDisplay<'a> {
    /// The expression.
    pub expr: &'a SymExpr,
}

impl fmt::Display for SymDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn go(e: &SymExpr, f: &mut fmt::Formatter<'_>, top: bool) -> fmt::Result {
            match e {
                SymExpr::Const(c) => write!(f, "{c}"),
                SymExpr::Param(v) => write!(f, "{v}"),
                SymExpr::Bin(op, a, b) => {
                    let name = match op {
                        SymOp::CeilDiv => Some("cdiv"),
                        SymOp::Min => Some("min"),
                        SymOp::Max => Some("max"),
                        _ => None,
                    };
                    if let Some(name) = name {
                        write!(f, "{name}(")?;
                        go(a, f, true)?;
                        write!(f, ", ")?;
                        go(b, f, true)?;
                        return write!(f, ")");
                    }
                    let sym = match op {
                        SymOp::Add => "+",
                        SymOp::Sub => "-",
                        SymOp::Mul => "*",
                        SymOp::Div => "/",
                        _ => "%",
                    };
                    if !top {
                        write!(f, "(")?;
                    }
                    go(a, f, false)?;
                    write!(f, " {sym} ")?;
                    go(b, f, false)?;
                    if !top {
                        write!(f, ")")?;
                    }
                    Ok(())
                }
            }
        }
        go(self.expr, f, true)
    }
}

/// A compile-time parameter's value, after defaults and `-D` overrides.
#[derive(Clone, Debug, PartialEq)]
pub enum ConstValue {
    /// An integer (tile sizes, group sizes, stages).
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// An element type (`T = bf16`).
    Type(DType),
}

impl fmt::Display for ConstValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConstValue::Int(i) => write!(f, "{i}"),
            ConstValue::Float(x) => write!(f, "{x:?}"),
            ConstValue::Bool(b) => write!(f, "{b}"),
            ConstValue::Type(d) => write!(f, "{d}"),
        }
    }
}

/// How a value comes to exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueDef {
    /// The kernel's scalar parameter at this position of [`Kernel::params`].
    Param(usize),
    /// The result of this instruction.
    Inst(Inst),
    /// The induction variable of this `for` instruction.
    LoopVar(Inst),
    /// A mutable variable (`let mut`): written by [`InstKind::Assign`], read anywhere after.
    Var,
}

/// What the IR knows about one value.
#[derive(Clone, Debug)]
pub struct ValueData {
    /// Its type.
    pub ty: Type,
    /// Its definition.
    pub def: ValueDef,
    /// The source name it was bound to, if any (printed as a comment; never semantic).
    pub name: Option<String>,
}

/// A global tensor parameter: compact row-major storage (packed bit stream for sub-byte
/// types) with a symbolic shape.
#[derive(Clone, Debug)]
pub struct GlobalData {
    /// The parameter's name.
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Extent of each axis as expressions over the scalar parameters.
    pub shape: Vec<SymExpr>,
    /// Marked `out`: the kernel may store into it. Parameters not marked `out` are read-only.
    pub out: bool,
    /// Where it is declared.
    pub span: Span,
}

/// One kernel parameter, in signature order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    /// A runtime scalar, bound to this value (its [`ValueDef::Param`]).
    Scalar(Value),
    /// A global tensor.
    Tensor(Global),
}

/// Unary elementwise operators (on scalars and register tiles).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// `-x` (integers wrap).
    Neg,
    /// `|x|` (integers wrap: `abs(i8 -128) = -128`).
    Abs,
    /// Bitwise not on integers; logical not on `u1`.
    Not,
    /// `e^x` (floats).
    Exp,
    /// `2^x` (floats).
    Exp2,
    /// `ln x` (floats).
    Log,
    /// `log2 x` (floats).
    Log2,
    /// `√x` (floats; correctly rounded).
    Sqrt,
    /// `1/√x` (floats).
    Rsqrt,
    /// Round toward −∞ (floats).
    Floor,
    /// Round toward +∞ (floats).
    Ceil,
    /// Round toward zero (floats).
    Trunc,
    /// Round to nearest, ties to even (floats).
    Round,
}

impl UnaryOp {
    /// The text-format name.
    pub fn name(self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::Abs => "abs",
            UnaryOp::Not => "not",
            UnaryOp::Exp => "exp",
            UnaryOp::Exp2 => "exp2",
            UnaryOp::Log => "log",
            UnaryOp::Log2 => "log2",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Rsqrt => "rsqrt",
            UnaryOp::Floor => "floor",
            UnaryOp::Ceil => "ceil",
            UnaryOp::Trunc => "trunc",
            UnaryOp::Round => "round",
        }
    }

    /// True for the operators defined only on floats.
    pub fn float_only(self) -> bool {
        !matches!(self, UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Not)
    }
}

/// Binary elementwise operators (on scalars and register tiles, with broadcasting).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b` (integers truncate; division by zero is a run-time error).
    Div,
    /// `a % b` (sign of `a`, like Rust).
    Rem,
    /// `cdiv(a, b)` = ⌈a / b⌉ (integers).
    CeilDiv,
    /// `min(a, b)` (NaN if either is NaN).
    Min,
    /// `max(a, b)` (NaN if either is NaN).
    Max,
    /// `a == b` → `u1`.
    Eq,
    /// `a != b` → `u1`.
    Ne,
    /// `a < b` → `u1`.
    Lt,
    /// `a <= b` → `u1`.
    Le,
    /// `a > b` → `u1`.
    Gt,
    /// `a >= b` → `u1`.
    Ge,
    /// Bitwise and (logical on `u1`).
    And,
    /// Bitwise or (logical on `u1`).
    Or,
    /// Bitwise xor.
    Xor,
    /// `a << b` (0 when `b` ≥ the width).
    Shl,
    /// `a >> b`, arithmetic for signed types (sign fill when `b` ≥ the width).
    Shr,
}

impl BinaryOp {
    /// The text-format name.
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Rem => "rem",
            BinaryOp::CeilDiv => "cdiv",
            BinaryOp::Min => "min",
            BinaryOp::Max => "max",
            BinaryOp::Eq => "eq",
            BinaryOp::Ne => "ne",
            BinaryOp::Lt => "lt",
            BinaryOp::Le => "le",
            BinaryOp::Gt => "gt",
            BinaryOp::Ge => "ge",
            BinaryOp::And => "and",
            BinaryOp::Or => "or",
            BinaryOp::Xor => "xor",
            BinaryOp::Shl => "shl",
            BinaryOp::Shr => "shr",
        }
    }

    /// True for comparisons (result `u1`).
    pub fn is_comparison(self) -> bool {
        matches!(self, BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge)
    }

    /// True for the operators defined only on integers.
    pub fn int_only(self) -> bool {
        matches!(self, BinaryOp::CeilDiv | BinaryOp::And | BinaryOp::Or | BinaryOp::Xor | BinaryOp::Shl | BinaryOp::Shr)
    }
}

/// Reductions over one axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    /// Sum.
    Sum,
    /// Maximum.
    Max,
    /// Minimum.
    Min,
    /// Maximum of absolute values.
    AbsMax,
}

impl ReduceOp {
    /// The text-format name.
    pub fn name(self) -> &'static str {
        match self {
            ReduceOp::Sum => "sum",
            ReduceOp::Max => "max",
            ReduceOp::Min => "min",
            ReduceOp::AbsMax => "absmax",
        }
    }
}

/// The rounding of a [`InstKind::Cast`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CastRounding {
    /// Round to nearest, ties to even (`rne`, the default).
    NearestEven,
    /// Round toward zero (`rtz`).
    TowardZero,
    /// Round toward +∞ (`rup`).
    TowardPositive,
    /// Round toward −∞ (`rdown`).
    TowardNegative,
    /// Stochastic rounding keyed by `(seed, index)`; see the crate docs for the index.
    Stochastic {
        /// An integer scalar.
        seed: Value,
        /// An integer tile of the input's shape giving each element's key, or `None` for the
        /// default key (block linear index × tile size + element index in the tile).
        index: Option<Value>,
    },
}

/// What a [`InstKind::Cast`] does with values beyond the target's finite range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CastOverflow {
    /// Clamp to the largest finite value of the sign (`sat`).
    Saturate,
    /// Integers wrap (two's complement); floats become ±∞ or NaN where the format has them
    /// (`nosat`).
    Wrap,
}

/// One instruction; see the crate docs for each one's meaning.
#[derive(Clone, Debug)]
pub enum InstKind {
    /// A scalar constant of the result's type (integers as `Int`, floats as `Float`).
    Const(ScalarConst),
    /// `block.x/y/z`: this block's index along `axis` (0..3), `i32`.
    BlockIdx { axis: u8 },
    /// A tile of the given shape and dtype, element (i₀, …) = iₐₓᵢₛ.
    Iota { dtype: DType, shape: Vec<usize>, axis: usize },
    /// Elementwise unary operation.
    Unary { op: UnaryOp, x: Value },
    /// Elementwise binary operation with broadcasting.
    Binary { op: BinaryOp, a: Value, b: Value },
    /// `where(cond, a, b)` with broadcasting.
    Select { cond: Value, a: Value, b: Value },
    /// Conversion to `dtype`.
    Cast { x: Value, dtype: DType, rounding: CastRounding, overflow: CastOverflow },
    /// A tile of `shape` with every element = the scalar `value` (of the tile's dtype).
    Full { value: Value, shape: Vec<usize> },
    /// The tile of `global` at `offsets` with `shape`; elements outside the tensor read as the
    /// all-zero bit pattern.
    LoadGlobal { global: Global, offsets: Vec<Value>, shape: Vec<usize> },
    /// Writes `value` into `global` at `offsets`; elements outside the tensor are skipped.
    StoreGlobal { global: Global, offsets: Vec<Value>, value: Value },
    /// A new per-block shared tensor; its elements are uninitialised.
    AllocShared { tile: TileType },
    /// The sub-tensor of shared `shared` at `offsets` with `shape` (must be in bounds).
    LoadShared { shared: Value, offsets: Vec<Value>, shape: Vec<usize> },
    /// Writes `value` into shared `shared` at `offsets` (must be in bounds).
    StoreShared { shared: Value, offsets: Vec<Value>, value: Value },
    /// Starts copying the tile of `global` at `offsets` with `shape` (of the global's rank) into
    /// `shared` at `shared_offsets` (the tile padded with leading extent-1 axes to the shared
    /// rank; masked like `LoadGlobal`); it lands at a later `CopyAsyncWait`.
    CopyAsync { global: Global, offsets: Vec<Value>, shared: Value, shared_offsets: Vec<Value>, shape: Vec<usize> },
    /// Closes the open group of `CopyAsync`s.
    CopyAsyncCommit,
    /// Waits until at most `pending` committed groups are still in flight; uncommitted copies
    /// stay in flight.
    CopyAsyncWait { pending: u32 },
    /// Block-wide barrier.
    Sync,
    /// Reinterprets the row-major bit stream of tile `x` as a tile of `dtype` and `shape`.
    View { x: Value, dtype: DType, shape: Vec<usize> },
    /// `a[M,K] · b[K,N] + c[M,N]`.
    Dot { a: Value, b: Value, c: Value },
    /// Reduction of `x` over `axis`.
    Reduce { op: ReduceOp, x: Value, axis: usize, keepdim: bool },
    /// Permutes the axes: result axis i is input axis `perm[i]`.
    Transpose { x: Value, perm: Vec<usize> },
    /// Same elements in row-major order, new shape.
    Reshape { x: Value, shape: Vec<usize> },
    /// Broadcasts (NumPy rules) to `shape`.
    Broadcast { x: Value, shape: Vec<usize> },
    /// Unnormalised Walsh–Hadamard transform along `axis` (Sylvester order).
    Hadamard { x: Value, axis: usize },
    /// Writes `value` into the mutable variable `var`.
    Assign { var: Value, value: Value },
    /// `for var in range(start, end, step)`; `step` must be positive at run time.
    For { var: Value, start: Value, end: Value, step: Value, body: Vec<Inst>, unroll: Option<u32> },
    // (`unroll`: `Some(0)` asks for full unrolling, `Some(n)` for a factor of n.)
    /// `if cond { then_body } else { else_body }`.
    If { cond: Value, then_body: Vec<Inst>, else_body: Vec<Inst> },
    /// Runs `cond_body`, then stops unless `cond` is true, runs `body`, repeats.
    While { cond_body: Vec<Inst>, cond: Value, body: Vec<Inst> },
    /// A fact the programmer promises (`assume(k % 64 == 0)`); the interpreter checks it.
    Assume { cond: Value },
}

/// A scalar constant's payload.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ScalarConst {
    /// For integer types (including `u1`).
    Int(i64),
    /// For float types; must be exactly representable in the result's dtype.
    Float(f64),
}

impl fmt::Display for ScalarConst {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScalarConst::Int(i) => write!(f, "{i}"),
            ScalarConst::Float(x) => write!(f, "{x:?}"),
        }
    }
}

/// One instruction with its result and source span.
#[derive(Clone, Debug)]
pub struct InstData {
    /// What it does.
    pub kind: InstKind,
    /// The value it defines, if any (whose [`ValueData::def`] is `ValueDef::Inst(this)`).
    pub result: Option<Value>,
    /// The source construct it came from; run-time errors point here.
    pub span: Span,
}

/// A kernel: the program of one thread block, run over a grid.
#[derive(Clone, Debug)]
pub struct Kernel {
    /// Its name.
    pub name: String,
    /// Its doc comment (without `///`).
    pub doc: String,
    /// Where it is declared (the name).
    pub span: Span,
    /// Compile-time parameters as bound for this elaboration, in declaration order.
    pub consts: Vec<(String, ConstValue)>,
    /// Parameters in signature order.
    pub params: Vec<Param>,
    /// Global tensor parameters. Invariant: each appears exactly once in `params`.
    pub globals: PrimaryMap<Global, GlobalData>,
    /// Every value. Not in program order.
    pub values: PrimaryMap<Value, ValueData>,
    /// Every instruction. Not in program order: `body` and the nested bodies give the order,
    /// and each instruction appears in exactly one body exactly once.
    pub insts: PrimaryMap<Inst, InstData>,
    /// The grid: 1 to 3 extents over the scalar parameters.
    pub grid: Vec<SymExpr>,
    /// Warps per block (the block has `32 × warps` threads on a GPU).
    pub warps: u32,
    /// The top-level body.
    pub body: Vec<Inst>,
    /// Register layouts the author pinned with `let x @ layout = …`, in source order.
    /// Invariant: the value is a register tile (or a tile variable) whose shape is the layout's,
    /// and the layout spans the block's threads (elaboration pads it with replication).
    pub pinned_layouts: Vec<PinnedLayout>,
}

/// A register layout pinned by the author on a tile value or variable (`let x @ layout = …`).
#[derive(Clone, Debug)]
pub struct PinnedLayout {
    /// The tile value, or the mutable variable for `let mut`.
    pub value: Value,
    /// The layout, spanning exactly `32 × warps` threads.
    pub layout: tilc_layout::RegisterLayout,
    /// The `@ layout` expression.
    pub span: Span,
}

impl Kernel {
    /// An empty kernel named `name` (no parameters, grid `[1]`, 1 warp).
    pub fn new(name: impl Into<String>) -> Kernel {
        Kernel {
            name: name.into(),
            doc: String::new(),
            span: Span::default(),
            consts: Vec::new(),
            params: Vec::new(),
            globals: PrimaryMap::new(),
            values: PrimaryMap::new(),
            insts: PrimaryMap::new(),
            grid: vec![SymExpr::Const(1)],
            warps: 1,
            body: Vec::new(),
            pinned_layouts: Vec::new(),
        }
    }

    /// Adds a runtime scalar parameter.
    pub fn add_scalar_param(&mut self, name: &str, dtype: DType) -> Value {
        let v = self.values.push(ValueData {
            ty: Type::Scalar(dtype),
            def: ValueDef::Param(self.params.len()),
            name: Some(name.to_string()),
        });
        self.params.push(Param::Scalar(v));
        v
    }

    /// Adds a global tensor parameter.
    pub fn add_global_param(&mut self, name: &str, dtype: DType, shape: Vec<SymExpr>, out: bool, span: Span) -> Global {
        let g = self.globals.push(GlobalData { name: name.to_string(), dtype, shape, out, span });
        self.params.push(Param::Tensor(g));
        g
    }

    /// Adds a mutable variable of type `ty` (written by [`InstKind::Assign`]).
    pub fn add_var(&mut self, ty: Type, name: Option<&str>) -> Value {
        self.values.push(ValueData { ty, def: ValueDef::Var, name: name.map(str::to_string) })
    }

    /// Creates an instruction whose result (if `result_ty` is given) is a new value; the caller
    /// places it in a body. The result type must be what [`crate::types::result_type`] says;
    /// use [`Kernel::build`] to have it computed.
    pub fn add_inst(&mut self, kind: InstKind, result_ty: Option<Type>, span: Span) -> Inst {
        let inst = self.insts.push(InstData { kind, result: None, span });
        if let Some(ty) = result_ty {
            let def = ValueDef::Inst(inst);
            let v = self.values.push(ValueData { ty, def, name: None });
            self.insts[inst].result = Some(v);
        }
        inst
    }

    /// Creates an instruction with its result type computed by the typing rules; returns the
    /// instruction and its result value, or the type error.
    pub fn build(&mut self, kind: InstKind, span: Span) -> Result<(Inst, Option<Value>), crate::types::TypeError> {
        let ty = crate::types::result_type(self, &kind)?;
        let inst = self.add_inst(kind, ty, span);
        Ok((inst, self.insts[inst].result))
    }

    /// The type of `v`.
    pub fn ty(&self, v: Value) -> &Type {
        &self.values[v].ty
    }

    /// The scalar parameter values bound to `params` order: the index of scalar `v` in `params`.
    pub fn param_index(&self, v: Value) -> Option<usize> {
        match self.values.get(v)?.def {
            ValueDef::Param(i) => Some(i),
            _ => None,
        }
    }

    /// The name of a parameter.
    pub fn param_name(&self, p: Param) -> &str {
        match p {
            Param::Scalar(v) => self.values[v].name.as_deref().unwrap_or("?"),
            Param::Tensor(g) => &self.globals[g].name,
        }
    }

    /// Visits every instruction in program order (pre-order: a `for` before its body).
    pub fn walk(&self, f: &mut dyn FnMut(Inst)) {
        fn go(k: &Kernel, body: &[Inst], f: &mut dyn FnMut(Inst)) {
            for &i in body {
                f(i);
                match &k.insts[i].kind {
                    InstKind::For { body, .. } => go(k, body, f),
                    InstKind::If { then_body, else_body, .. } => {
                        go(k, then_body, f);
                        go(k, else_body, f);
                    }
                    InstKind::While { cond_body, body, .. } => {
                        go(k, cond_body, f);
                        go(k, body, f);
                    }
                    _ => {}
                }
            }
        }
        go(self, &self.body, f)
    }
}

impl InstKind {
    /// The values this instruction reads (not those of nested bodies).
    pub fn operands(&self) -> Vec<Value> {
        use InstKind::*;
        match self {
            Const(_) | BlockIdx { .. } | Iota { .. } | AllocShared { .. } | CopyAsyncCommit | CopyAsyncWait { .. } | Sync => vec![],
            Unary { x, .. } | View { x, .. } | Reduce { x, .. } | Transpose { x, .. } | Reshape { x, .. } | Broadcast { x, .. } | Hadamard { x, .. } => vec![*x],
            Cast { x, rounding, .. } => {
                let mut v = vec![*x];
                if let CastRounding::Stochastic { seed, index } = rounding {
                    v.push(*seed);
                    v.extend(index.iter().copied());
                }
                v
            }
            Binary { a, b, .. } => vec![*a, *b],
            Select { cond, a, b } => vec![*cond, *a, *b],
            Full { value, .. } => vec![*value],
            LoadGlobal { offsets, .. } => offsets.clone(),
            StoreGlobal { offsets, value, .. } => offsets.iter().copied().chain([*value]).collect(),
            LoadShared { shared, offsets, .. } => [*shared].into_iter().chain(offsets.iter().copied()).collect(),
            StoreShared { shared, offsets, value } => {
                [*shared].into_iter().chain(offsets.iter().copied()).chain([*value]).collect()
            }
            CopyAsync { offsets, shared, shared_offsets, .. } => {
                offsets.iter().copied().chain([*shared]).chain(shared_offsets.iter().copied()).collect()
            }
            Dot { a, b, c } => vec![*a, *b, *c],
            Assign { value, .. } => vec![*value],
            For { start, end, step, .. } => vec![*start, *end, *step],
            If { cond, .. } => vec![*cond],
            // `cond` is read after `cond_body`; the verifier checks it separately.
            While { .. } => vec![],
            Assume { cond } => vec![*cond],
        }
    }
}
