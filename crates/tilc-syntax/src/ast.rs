//! The abstract syntax tree of a `.tl` file: exactly what the author wrote, with a [`Span`] on
//! every node, and nothing resolved.
//!
//! The tree keeps the surface form (parenthesised sub-expressions are gone, but literal spellings,
//! type names as written, `range(...)` bounds, layout chains versus `*` products and the comments
//! are kept) so that [`crate::print`] can write it back and `parse(print(ast)) == ast` up to spans.
//!
//! What the tree does *not* decide: whether a name is a compile-time parameter, a runtime scalar,
//! a tensor or a local; whether an `if` is evaluated at compile time; what a call such as
//! `dot(a, b, acc)` or `absmax(x, axis = 1)` means; whether shapes agree. Those belong to the VM's
//! elaboration (`tilc-vm`). The parser does check what it can see locally: element type names
//! (through `tilc_dtype`), duplicate parameters, the placement of `out`/`global`, the number of
//! grid dimensions and the names and arities of layout primitives.
//!
//! Conventions: spans are byte ranges into the [`tilc_base::SourceFile`] that was parsed; a node's
//! span covers all of its text; nodes produced during error recovery (`Error` variants) cover
//! the text that was skipped.

pub use tilc_base::Span;

/// A whole `.tl` file: its kernels in source order, plus the trivia the formatter needs.
#[derive(Clone, Debug, PartialEq)]
pub struct File {
    /// The kernels, in source order.
    pub kernels: Vec<Kernel>,
    /// Every `//` comment (and every `///` comment that documents no kernel), in source order.
    /// Only the formatter uses these.
    pub comments: Vec<Comment>,
    /// One span per blank (whitespace-only) line, in source order; the formatter keeps at most
    /// one blank line where the source had some.
    pub blank_lines: Vec<Span>,
    /// The whole text.
    pub span: Span,
}

/// A `//` comment, kept for the formatter.
#[derive(Clone, Debug, PartialEq)]
pub struct Comment {
    /// The comment's text including its leading slashes, without the line break and without
    /// trailing whitespace, e.g. `// int8 tensor cores`.
    pub text: String,
    /// True when code precedes the comment on its line (`let x = 1; // like this`).
    pub trailing: bool,
    /// Where the comment is.
    pub span: Span,
}

/// A name as written, with its span.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ident {
    /// The name.
    pub name: String,
    /// Where it is written.
    pub span: Span,
}

/// One `///` line of a kernel's documentation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocLine {
    /// Everything after the `///`, trailing whitespace removed (usually starts with a space).
    pub text: String,
    /// The whole line from `///` on.
    pub span: Span,
}

/// `kernel name<ct params>(params) grid [dims] warps n { body }`: the program of one thread block.
#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    /// The `///` lines right before `kernel`.
    pub docs: Vec<DocLine>,
    /// The kernel's name.
    pub name: Ident,
    /// Compile-time parameters `<BM = 64, T = bf16, ...>`; empty when there are no angle brackets.
    pub ct_params: Vec<CtParam>,
    /// Runtime parameters: scalars and global tensors.
    pub params: Vec<Param>,
    /// `grid [x, y, z]`: the number of thread blocks along each axis (1 to 3 dimensions).
    pub grid: Grid,
    /// `warps n`: warps per thread block.
    pub warps: Expr,
    /// The body, run by every block.
    pub body: Block,
    /// From the `kernel` keyword to the closing brace (the doc lines are not included).
    pub span: Span,
}

impl Kernel {
    /// The documentation as one string: the doc lines joined with newlines, each with the one
    /// space after `///` removed.
    pub fn doc_text(&self) -> String {
        self.docs
            .iter()
            .map(|d| d.text.strip_prefix(' ').unwrap_or(&d.text))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// `grid [x, y, z]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    /// The extent of each grid axis, outermost first (`block.x` ranges over the first).
    pub dims: Vec<Expr>,
    /// From `grid` to `]`.
    pub span: Span,
}

/// One compile-time parameter: `BM = 64`, `T = bf16`, `BK in [32, 64, 128] = 64`, `G: i32`,
/// `U: type`.
#[derive(Clone, Debug, PartialEq)]
pub struct CtParam {
    /// The parameter's name.
    pub name: Ident,
    /// The kind written after `:`, if any.
    pub ty: Option<CtParamTy>,
    /// `in [a, b, c]`: the candidate values an autotuner may try.
    pub candidates: Option<Candidates>,
    /// `= value`: the value used when the caller gives none. A parameter without a default
    /// must be given a value when the kernel is compiled.
    pub default: Option<CtValue>,
    /// The whole parameter.
    pub span: Span,
}

impl CtParam {
    /// Whether this parameter stands for an element type: declared `: type`, or (without a
    /// declared kind) its default or first candidate is an element type name.
    pub fn is_type_param(&self) -> bool {
        match &self.ty {
            Some(CtParamTy::Type(_)) => true,
            Some(CtParamTy::Scalar(_)) => false,
            None => {
                let first = self.default.as_ref().or(self.candidates.as_ref().and_then(|c| c.values.first()));
                matches!(first, Some(CtValue::Type(_)))
            }
        }
    }
}

/// The declared kind of a compile-time parameter.
#[derive(Clone, Debug, PartialEq)]
pub enum CtParamTy {
    /// `: type` — the parameter is an element type.
    Type(Span),
    /// `: i32`, `: bool`, … — the parameter is a compile-time scalar of this type.
    Scalar(TypeRef),
}

/// `in [v1, v2, ...]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidates {
    /// The candidate values, in the order written.
    pub values: Vec<CtValue>,
    /// From `in` to `]`.
    pub span: Span,
}

/// The value of a compile-time parameter: an element type or a constant expression.
#[derive(Clone, Debug, PartialEq)]
pub enum CtValue {
    /// An element type (`bf16`), or a name in the default of a parameter declared `: type`.
    Type(TypeRef),
    /// A constant expression (`64`, `BM / 2`, `true`).
    Expr(Expr),
}

/// A type as written: a built-in element/scalar type name (`u3`, `f6e3m2`, `e8m0`, `bf16`, `i32`,
/// `bool`) or the name of a type parameter (`T`). Built-in names have been checked by the parser.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TypeRef {
    /// The name as written.
    pub name: String,
    /// Where it is written.
    pub span: Span,
}

impl TypeRef {
    /// True when the name is spelled like a built-in type (`u3`, `f4e2m1`, `bool`, …) rather
    /// than a type parameter.
    pub fn is_builtin_spelling(&self) -> bool {
        crate::lexer::is_type_name_spelling(&self.name)
    }
}

/// One runtime parameter: `m: i32` or `c: out global f16[m, n]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    /// The parameter's name.
    pub name: Ident,
    /// Scalar or global tensor.
    pub ty: ParamTy,
    /// The whole parameter.
    pub span: Span,
}

/// What a runtime parameter is.
#[derive(Clone, Debug, PartialEq)]
pub enum ParamTy {
    /// A scalar passed by value (`i32`, `i64`, `f32`, `bool`, …).
    Scalar(TypeRef),
    /// A tensor in global memory.
    Global(GlobalTy),
}

/// `[out] global elem[shape]`.
#[derive(Clone, Debug, PartialEq)]
pub struct GlobalTy {
    /// The span of `out` when the kernel writes this tensor; tensors are read-only otherwise.
    pub out: Option<Span>,
    /// The element type.
    pub elem: TypeRef,
    /// The symbolic shape, outermost dimension first (`[k / G, n]`).
    pub shape: Shape,
    /// From `out`/`global` to `]`.
    pub span: Span,
}

/// `[d0, d1, ...]`: a list of extents or offsets.
#[derive(Clone, Debug, PartialEq)]
pub struct Shape {
    /// One expression per dimension.
    pub dims: Vec<Expr>,
    /// From `[` to `]`.
    pub span: Span,
}

/// `{ stmt* }`.
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    /// The statements in order.
    pub stmts: Vec<Stmt>,
    /// From `{` to `}` inclusive.
    pub span: Span,
}

/// A statement.
#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    /// What kind of statement.
    pub kind: StmtKind,
    /// The whole statement, including its `;` or closing brace.
    pub span: Span,
}

/// The statements of the language.
#[derive(Clone, Debug, PartialEq)]
pub enum StmtKind {
    /// `let [mut] name [: ty] [@ layout] = init;`
    Let(LetStmt),
    /// `name = value;`, `name += value;`, … (only `let mut` bindings may be assigned).
    Assign {
        /// The binding assigned to.
        target: Ident,
        /// `=` or a compound operator.
        op: AssignOp,
        /// The value.
        value: Expr,
    },
    /// `store dest[offsets] = value;` — write a tile into a global or shared tensor at offsets;
    /// elements outside the tensor are not written.
    Store {
        /// The tensor and offsets written.
        dest: TensorRef,
        /// The tile written.
        value: Expr,
    },
    /// `copy_async dest[offsets] = src[offsets] [: [shape]];` — start an asynchronous copy from
    /// global to shared memory; `wait` completes it.
    CopyAsync {
        /// The shared tensor (and offsets) written.
        dest: TensorRef,
        /// The global tensor, offsets and (optionally) tile shape read.
        src: TensorRef,
    },
    /// `wait;` or `wait(n);` — wait until at most `n` (default 0) groups of `copy_async` are
    /// still in flight.
    Wait {
        /// `n`, if written.
        pending: Option<Expr>,
    },
    /// `sync;` — a barrier for all threads of the block (shared memory becomes visible).
    Sync,
    /// `for var in range(...) [unroll[(n)]] { ... }`
    For(ForStmt),
    /// `if cond { ... } [else ...]` — evaluated at compile time when `cond` only involves
    /// compile-time parameters (the VM decides).
    If(IfStmt),
    /// `while cond { ... }`
    While {
        /// Loop while this is true.
        cond: Expr,
        /// The loop body.
        body: Block,
    },
    /// `static_assert(cond[, "message"]);` — a fact about compile-time parameters, checked when
    /// the kernel is compiled.
    StaticAssert {
        /// The condition.
        cond: Expr,
        /// The message shown when it fails.
        message: Option<StrLit>,
    },
    /// `assume(cond);` — a fact about runtime values the compiler may use (e.g. for
    /// vectorization); not checked.
    Assume {
        /// The assumed condition.
        cond: Expr,
    },
    /// `expr;` — an expression evaluated for its effect.
    Expr(Expr),
    /// A statement that did not parse; its diagnostic has been reported.
    Error,
}

/// `let [mut] name [: ty] [@ layout] = init;`
#[derive(Clone, Debug, PartialEq)]
pub struct LetStmt {
    /// `let mut`: the binding may be assigned later.
    pub mutable: bool,
    /// The bound name.
    pub name: Ident,
    /// The declared type, if any.
    pub ty: Option<LetTy>,
    /// `@ layout`: the register layout pinned by the author, if any.
    pub layout: Option<LayoutExpr>,
    /// The initial value.
    pub init: Expr,
}

/// The declared type of a `let`: a scalar type (`i32`) or a tile type (`f16[64, 64]`).
#[derive(Clone, Debug, PartialEq)]
pub struct LetTy {
    /// The element (or scalar) type.
    pub elem: TypeRef,
    /// The tile shape; `None` for a scalar.
    pub shape: Option<Shape>,
    /// The whole type.
    pub span: Span,
}

/// Assignment operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AssignOp {
    /// `=`
    Set,
    /// `+=`
    Add,
    /// `-=`
    Sub,
    /// `*=`
    Mul,
    /// `/=`
    Div,
}

impl AssignOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            AssignOp::Set => "=",
            AssignOp::Add => "+=",
            AssignOp::Sub => "-=",
            AssignOp::Mul => "*=",
            AssignOp::Div => "/=",
        }
    }
}

/// `for var in range([start,] end[, step]) [unroll[(factor)]] { body }` — `var` takes the values
/// `start, start + step, ...` below `end` (`start` defaults to 0, `step` to 1).
#[derive(Clone, Debug, PartialEq)]
pub struct ForStmt {
    /// The loop variable.
    pub var: Ident,
    /// The first value; `None` when `range` has one argument.
    pub start: Option<Expr>,
    /// The bound (exclusive).
    pub end: Expr,
    /// The increment; `None` when `range` has fewer than three arguments.
    pub step: Option<Expr>,
    /// The span of `range(...)`.
    pub range_span: Span,
    /// The `unroll` hint, if any.
    pub unroll: Option<Unroll>,
    /// The loop body.
    pub body: Block,
}

/// `unroll` (fully) or `unroll(n)` (by a factor of `n`).
#[derive(Clone, Debug, PartialEq)]
pub struct Unroll {
    /// The factor; `None` means unroll completely.
    pub factor: Option<Expr>,
    /// From `unroll` to `)`.
    pub span: Span,
}

/// `if cond { then } [else { ... } | else if ...]`.
#[derive(Clone, Debug, PartialEq)]
pub struct IfStmt {
    /// The condition.
    pub cond: Expr,
    /// Run when the condition holds.
    pub then_block: Block,
    /// The `else` part, if any.
    pub else_branch: Option<Else>,
    /// From `if` to the end of the last branch.
    pub span: Span,
}

/// What follows `else`.
#[derive(Clone, Debug, PartialEq)]
pub enum Else {
    /// `else { ... }`
    Block(Block),
    /// `else if ...`
    If(Box<IfStmt>),
}

/// `name`, `name[offsets]`, `name[offsets] : [shape]` — a tile of a global or shared tensor,
/// as used by `load`, `store` and `copy_async`.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorRef {
    /// The tensor (a global parameter or a shared allocation).
    pub tensor: Ident,
    /// The offset of the tile's first element along each dimension; `None` when not written
    /// (the whole tensor, offsets 0).
    pub offsets: Option<Shape>,
    /// `: [shape]`: the tile's shape; `None` when not written (e.g. on the destination of a
    /// store, whose shape is the value's).
    pub shape: Option<Shape>,
    /// The whole reference.
    pub span: Span,
}

/// A string literal (only in `static_assert` messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StrLit {
    /// The value, escapes resolved.
    pub value: String,
    /// The literal including its quotes.
    pub span: Span,
}

/// An expression.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    /// What kind of expression.
    pub kind: ExprKind,
    /// The whole expression (without any parentheses around it).
    pub span: Span,
}

/// The expressions of the language. Scalars and tiles share one syntax; the VM tells them apart.
#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// An integer literal.
    Int(IntLit),
    /// A floating-point literal.
    Float(FloatLit),
    /// `true` or `false`.
    Bool(bool),
    /// A name: a parameter, a local binding, a loop variable, `block`, a rounding mode (`rne`).
    Name(String),
    /// `op operand`.
    Unary {
        /// The operator.
        op: UnaryOp,
        /// The operand.
        operand: Box<Expr>,
    },
    /// `lhs op rhs` (elementwise on tiles, with broadcasting).
    Binary {
        /// The operator.
        op: BinaryOp,
        /// The left operand.
        lhs: Box<Expr>,
        /// The right operand.
        rhs: Box<Expr>,
    },
    /// A call: `f(args)`, `cast<T>(x, round = rne)`, `view<u3, [64, 128]>(x)`,
    /// `zeros<f32>[BM, BN]`, `full<f32>[BM, BN](1.0)`, `iota<i32>[TR, TC](axis = 0)`.
    ///
    /// Only the built-in generic functions (`cast`, `view`, `zeros`, `ones`, `full`, `iota`) take
    /// generic arguments or a bracketed shape; what a function name means is the VM's business.
    Call {
        /// The function's name.
        func: Ident,
        /// `<...>` arguments: element types and shapes; empty when there are no angle brackets.
        generics: Vec<GenericArg>,
        /// `[...]` after the generic arguments (the shape of a new tile), if written.
        shape: Option<Shape>,
        /// The arguments in parentheses, positional and named (`axis = 1`).
        args: Vec<Arg>,
    },
    /// `base[i, a..b, ..]`: indexing or slicing a tile.
    Index {
        /// The tile.
        base: Box<Expr>,
        /// One item per indexed dimension.
        indices: Vec<IndexItem>,
    },
    /// `base.field`, e.g. `block.x`.
    Field {
        /// The expression whose field is read.
        base: Box<Expr>,
        /// The field.
        field: Ident,
    },
    /// `[a, b, c]`: a list (a shape argument such as `reshape(x, [ROWS, N / 32, 32])`).
    List(Vec<Expr>),
    /// `load tensor[offsets] : [shape]` — read a tile of a global or shared tensor; elements
    /// outside the tensor read as zero.
    Load(TensorRef),
    /// `shared elem[shape]` — allocate a shared-memory tensor for the rest of the block.
    Shared {
        /// The element type.
        elem: TypeRef,
        /// The shape.
        shape: Shape,
    },
    /// An expression that did not parse; its diagnostic has been reported.
    Error,
}

/// An integer literal: decimal, `0x` hexadecimal or `0b` binary, `_` separators allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntLit {
    /// The value.
    pub value: u64,
    /// The spelling, kept for the formatter.
    pub text: String,
}

/// A floating-point literal: `1.5`, `2.0e-3`, `1e6`.
#[derive(Clone, Debug, PartialEq)]
pub struct FloatLit {
    /// The value (finite).
    pub value: f64,
    /// The spelling, kept for the formatter.
    pub text: String,
}

/// Unary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// `-x`
    Neg,
    /// `!x` (logical not)
    Not,
    /// `~x` (bitwise not)
    BitNot,
}

impl UnaryOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            UnaryOp::Neg => "-",
            UnaryOp::Not => "!",
            UnaryOp::BitNot => "~",
        }
    }
}

/// Binary operators, in Rust's precedence (see `lang/REFERENCE.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/` (integer division truncates toward zero)
    Div,
    /// `%`
    Rem,
    /// `&`
    BitAnd,
    /// `|`
    BitOr,
    /// `^`
    BitXor,
    /// `<<`
    Shl,
    /// `>>`
    Shr,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `&&`
    And,
    /// `||`
    Or,
}

impl BinaryOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Rem => "%",
            BinaryOp::BitAnd => "&",
            BinaryOp::BitOr => "|",
            BinaryOp::BitXor => "^",
            BinaryOp::Shl => "<<",
            BinaryOp::Shr => ">>",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::And => "&&",
            BinaryOp::Or => "||",
        }
    }

    /// Binding strength: higher binds tighter (`||` = 1 … `*` = 9).
    pub fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => 1,
            BinaryOp::And => 2,
            BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => 3,
            BinaryOp::BitOr => 4,
            BinaryOp::BitXor => 5,
            BinaryOp::BitAnd => 6,
            BinaryOp::Shl | BinaryOp::Shr => 7,
            BinaryOp::Add | BinaryOp::Sub => 8,
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => 9,
        }
    }

    /// Comparisons do not chain: `a < b < c` is an error.
    pub fn is_comparison(self) -> bool {
        self.precedence() == 3
    }
}

/// One argument of a call: positional (`x`) or named (`axis = 1`).
#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    /// The name, for a named argument.
    pub name: Option<Ident>,
    /// The value.
    pub value: Expr,
    /// The whole argument.
    pub span: Span,
}

/// One argument between `<` and `>` of a generic call.
#[derive(Clone, Debug, PartialEq)]
pub enum GenericArg {
    /// An element type: `f32`, `T`.
    Type(TypeRef),
    /// A shape: `[64, 128]`.
    Shape(Shape),
}

/// One item of an index list.
#[derive(Clone, Debug, PartialEq)]
pub enum IndexItem {
    /// A single index: that dimension is dropped.
    Index(Expr),
    /// `start..end`, `start..`, `..end`, `..`: a range of that dimension.
    Slice {
        /// First index (default 0).
        start: Option<Expr>,
        /// One past the last index (default: the extent).
        end: Option<Expr>,
        /// The whole slice.
        span: Span,
    },
}

/// A register layout in the layout algebra's syntax: `spatial(8, 4).local(2, 4)`,
/// `local(2, 1) * column_spatial(4, 8)`, `replicated(2).local(4)`.
#[derive(Clone, Debug, PartialEq)]
pub struct LayoutExpr {
    /// What kind of layout expression.
    pub kind: LayoutKind,
    /// The whole expression.
    pub span: Span,
}

/// The forms of a layout expression. `a.p(...)` and `a * p(...)` mean the same product; both
/// are kept so the formatter writes back what the author wrote.
#[derive(Clone, Debug, PartialEq)]
pub enum LayoutKind {
    /// A primitive: `spatial(8, 4)`.
    Prim(LayoutPrim),
    /// `base.prim(...)`: the product `base * prim(...)`.
    Chain {
        /// The outer layout.
        base: Box<LayoutExpr>,
        /// The inner primitive.
        next: LayoutPrim,
    },
    /// `lhs * rhs`: the (Kronecker) product, `lhs` outer.
    Product {
        /// The outer layout.
        lhs: Box<LayoutExpr>,
        /// The inner layout.
        rhs: Box<LayoutExpr>,
    },
    /// A layout expression that did not parse or names an unknown primitive; reported.
    Error,
}

/// A layout primitive applied to its arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct LayoutPrim {
    /// Which primitive.
    pub prim: LayoutPrimKind,
    /// The span of the primitive's name.
    pub name_span: Span,
    /// The arguments: extents per dimension (`spatial(8, 4)`), or the number of threads that
    /// hold each element followed by optional extents (`replicated(2)`, `replicated(2, 4, 4)`,
    /// `auto_local_spatial(128, 64, 64)`). Constant expressions over compile-time parameters.
    pub args: Vec<Expr>,
    /// From the name to `)`.
    pub span: Span,
}

/// The layout primitives (see `lang/LAYOUTS.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LayoutPrimKind {
    /// `local(n1, ..., nr)`: all elements in one thread, row-major.
    Local,
    /// `spatial(n1, ..., nr)`: one element per thread, threads in row-major order.
    Spatial,
    /// `column_local(n1, ..., nr)`: all elements in one thread, column-major.
    ColumnLocal,
    /// `column_spatial(n1, ..., nr)`: one element per thread, threads in column-major order.
    ColumnSpatial,
    /// `replicated(w)`: every element held by `w` threads (a rank-0 layout of `w` threads);
    /// `replicated(w, n1, ..., nr)` is `replicated(w) * local(n1, ..., nr)`.
    Replicated,
    // added after AST_STABLE (tilc-layout's text syntax has it)
    /// `auto_local_spatial(threads, n1, ..., nr)`: threads go to the innermost dimensions
    /// first, the rest of each dimension is local (Tilus's default layout).
    AutoLocalSpatial,
}

impl LayoutPrimKind {
    /// All primitives, for "did you mean" hints.
    pub const ALL: [LayoutPrimKind; 6] = [
        LayoutPrimKind::Local,
        LayoutPrimKind::Spatial,
        LayoutPrimKind::ColumnLocal,
        LayoutPrimKind::ColumnSpatial,
        LayoutPrimKind::Replicated,
        LayoutPrimKind::AutoLocalSpatial, // added after AST_STABLE
    ];

    /// The primitive's name as written.
    pub fn as_str(self) -> &'static str {
        match self {
            LayoutPrimKind::Local => "local",
            LayoutPrimKind::Spatial => "spatial",
            LayoutPrimKind::ColumnLocal => "column_local",
            LayoutPrimKind::ColumnSpatial => "column_spatial",
            LayoutPrimKind::Replicated => "replicated",
            LayoutPrimKind::AutoLocalSpatial => "auto_local_spatial", // added after AST_STABLE
        }
    }

    /// The primitive named `name`, if any.
    pub fn from_name(name: &str) -> Option<LayoutPrimKind> {
        LayoutPrimKind::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// How many arguments the primitive takes: (min, max).
    pub fn arity(self) -> (usize, usize) {
        match self {
            LayoutPrimKind::Replicated => (1, 9),
            LayoutPrimKind::AutoLocalSpatial => (2, 9), // added after AST_STABLE
            _ => (1, 8),
        }
    }
}
