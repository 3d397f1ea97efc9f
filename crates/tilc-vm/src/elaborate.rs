//! Elaboration: from the AST of one kernel to a verified VM [`Kernel`].
//!
//! It resolves names (compile-time parameters, scalar and tensor parameters, locals, loop
//! variables), binds compile-time parameters (defaults, then `-D NAME=VALUE` overrides),
//! evaluates everything that only involves compile-time values (constant folding, compile-time
//! `if`, `static_assert`), and checks every rule of the language while building instructions:
//! element types and shapes (through [`crate::types::result_type`]), memory spaces (no
//! arithmetic on global or shared tensors, stores only to `out` parameters), tile extents that
//! are compile-time constants. Every broken rule is a [`Diagnostic`] at the offending span;
//! elaboration goes on with the next statement so one run reports every independent error.
//!
//! **Literals** have no type of their own: a literal or compile-time constant meeting a typed
//! operand takes that operand's type (integers must fit; floats round to nearest). Alone, an
//! integer defaults to `i32` and a float to `f32`.
//!
//! **Rank fitting**: a tile shape written on a `load` may have more axes than the tensor when the
//! extra axes have extent 1 (`load a_scale[om] : [BM, 1]` reads `BM` elements of a 1-D tensor
//! as a column); the rightmost extent-1 axes are the extra ones. A stored tile may likewise
//! carry extra extent-1 axes.
//!
//! This module must not know any backend; it knows the AST and the IR.

use crate::ir::*;
use crate::types::{self, TypeError, bool_type, f32_type, i32_type, is_float, is_int};
use std::collections::HashMap;
use tilc_base::{Diagnostic, SourceFile, Span};
use tilc_dtype::DType;
use tilc_syntax::ast;

/// A `-D NAME=VALUE` override of a compile-time parameter.
#[derive(Clone, Debug, PartialEq)]
pub struct Define {
    /// The parameter's name.
    pub name: String,
    /// The value as written (`64`, `0.5`, `true`, `bf16`).
    pub value: String,
}

impl Define {
    /// Parses `NAME=VALUE`.
    pub fn parse(s: &str) -> Result<Define, String> {
        let (n, v) = s.split_once('=').ok_or_else(|| format!("`{s}` is not NAME=VALUE"))?;
        let (n, v) = (n.trim(), v.trim());
        if n.is_empty() || v.is_empty() {
            return Err(format!("`{s}` is not NAME=VALUE"));
        }
        Ok(Define { name: n.to_string(), value: v.to_string() })
    }
}

/// Parses `file` and elaborates kernel `kernel` (or the file's only kernel).
pub fn elaborate_source(file: &SourceFile, kernel: Option<&str>, defines: &[Define]) -> Result<Kernel, Vec<Diagnostic>> {
    let (ast, diags) = tilc_syntax::parse(file);
    if diags.iter().any(Diagnostic::is_error) {
        return Err(diags);
    }
    elaborate(&ast, kernel, defines)
}

/// Elaborates kernel `kernel` of `file` (or its only kernel) with the given overrides.
pub fn elaborate(file: &ast::File, kernel: Option<&str>, defines: &[Define]) -> Result<Kernel, Vec<Diagnostic>> {
    let names: Vec<&str> = file.kernels.iter().map(|k| k.name.name.as_str()).collect();
    let kast = match kernel {
        Some(n) => file.kernels.iter().find(|k| k.name.name == n).ok_or_else(|| {
            vec![Diagnostic::error_nowhere(format!("no kernel named `{n}`")).with_note(format!("kernels in this file: {}", names.join(", ")))]
        })?,
        None => match file.kernels.as_slice() {
            [k] => k,
            [] => return Err(vec![Diagnostic::error_nowhere("the file defines no kernel")]),
            _ => {
                return Err(vec![
                    Diagnostic::error_nowhere("the file defines several kernels; say which one")
                        .with_hint(format!("pass --kernel NAME, one of: {}", names.join(", "))),
                ]);
            }
        },
    };
    let mut e = Elab { k: Kernel::new(kast.name.name.clone()), diags: Vec::new(), scopes: vec![HashMap::new()], bodies: vec![Vec::new()] };
    e.k.span = kast.name.span;
    e.k.doc = kast.doc_text();
    e.kernel(kast, defines);
    if !e.diags.is_empty() {
        return Err(e.diags);
    }
    e.k.body = e.bodies.pop().unwrap_or_default();
    if let Err(v) = crate::verify::verify(&e.k) {
        return Err(vec![Diagnostic::error(format!("internal compiler error: {v}"), kast.name.span, "while elaborating this kernel")]);
    }
    Ok(e.k)
}

/// A compile-time value.
#[derive(Clone, Copy, Debug, PartialEq)]
enum CVal {
    Int(i64),
    Float(f64),
    Bool(bool),
    Type(DType),
}

impl CVal {
    fn describe(self) -> String {
        match self {
            CVal::Int(i) => format!("the integer constant {i}"),
            CVal::Float(x) => format!("the float constant {x:?}"),
            CVal::Bool(b) => format!("the constant {b}"),
            CVal::Type(d) => format!("the type `{d}`"),
        }
    }
}

/// What a name stands for.
#[derive(Clone, Copy, Debug)]
enum Binding {
    Const(CVal),
    Value(Value),
    Var(Value),
    Global(Global),
    /// A binding whose definition failed (already reported): uses stay silent.
    Poison,
}

/// The result of elaborating an expression.
#[derive(Clone, Copy, Debug)]
enum Ev {
    Const(CVal),
    Val(Value),
    Global(Global),
}

/// Failure already reported as a diagnostic.
#[derive(Debug)]
struct Reported;

type R<T> = Result<T, Reported>;

struct Elab {
    k: Kernel,
    diags: Vec<Diagnostic>,
    scopes: Vec<HashMap<String, Binding>>,
    bodies: Vec<Vec<Inst>>,
}

fn shape_str(s: &[usize]) -> String {
    ShapeDisplay(s).to_string()
}

impl Elab {
    fn error(&mut self, d: Diagnostic) -> Reported {
        self.diags.push(d);
        Reported
    }

    fn err<T>(&mut self, message: impl Into<String>, span: Span, label: impl Into<String>) -> R<T> {
        Err(self.error(Diagnostic::error(message, span, label)))
    }

    fn bind(&mut self, name: &str, b: Binding) {
        self.scopes.last_mut().expect("a scope is open").insert(name.to_string(), b);
    }

    fn lookup(&self, name: &str) -> Option<Binding> {
        self.scopes.iter().rev().find_map(|s| s.get(name).copied())
    }

    fn all_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.scopes.iter().flat_map(|s| s.keys().cloned()).collect();
        v.sort();
        v.dedup();
        v
    }

    /// Emits an instruction into the current body; a type error becomes a diagnostic at `span`.
    fn emit(&mut self, kind: InstKind, span: Span) -> R<Option<Value>> {
        match self.k.build(kind, span) {
            Ok((inst, v)) => {
                self.bodies.last_mut().expect("a body is open").push(inst);
                Ok(v)
            }
            Err(te) => Err(self.type_error(te, span)),
        }
    }

    fn emit_v(&mut self, kind: InstKind, span: Span) -> R<Value> {
        Ok(self.emit(kind, span)?.expect("instruction has a result"))
    }

    fn type_error(&mut self, te: TypeError, span: Span) -> Reported {
        let mut d = Diagnostic::error(te.message, span, "");
        d.notes = te.notes;
        self.error(d)
    }

    fn constant(&mut self, c: CVal, d: DType, span: Span) -> R<Value> {
        let payload = match c {
            CVal::Bool(b) if d == bool_type() => ScalarConst::Int(i64::from(b)),
            CVal::Int(i) if is_int(d) => {
                let (lo, hi) = int_range(d);
                if i < lo || i > hi {
                    return self.err(format!("the constant {i} does not fit in `{d}`"), span, format!("`{d}` holds {lo}..={hi}"));
                }
                ScalarConst::Int(i)
            }
            CVal::Int(i) if is_float(d) => ScalarConst::Float(round_to(d, i as f64)),
            CVal::Float(x) if is_float(d) => ScalarConst::Float(round_to(d, x)),
            _ => {
                return Err(self.error(
                    Diagnostic::error(format!("{} cannot be used as a `{d}`", c.describe()), span, "here")
                        .with_hint("convert explicitly with `cast<T>(...)`"),
                ));
            }
        };
        let inst = self.k.add_inst(InstKind::Const(payload), Some(Type::Scalar(d)), span);
        self.bodies.last_mut().expect("a body is open").push(inst);
        Ok(self.k.insts[inst].result.expect("constant has a result"))
    }

    /// A compile-time value as a value of its default type.
    fn default_constant(&mut self, c: CVal, span: Span) -> R<Value> {
        let d = match c {
            CVal::Int(_) => i32_type(),
            CVal::Float(_) => f32_type(),
            CVal::Bool(_) => bool_type(),
            CVal::Type(t) => return self.err(format!("the type `{t}` is not a value"), span, "a type"),
        };
        self.constant(c, d, span)
    }

    fn value(&mut self, ev: Ev, span: Span) -> R<Value> {
        match ev {
            Ev::Val(v) => Ok(v),
            Ev::Const(c) => self.default_constant(c, span),
            Ev::Global(g) => {
                let name = self.k.globals[g].name.clone();
                Err(self.error(
                    Diagnostic::error(format!("`{name}` is a global tensor; it must be loaded before use"), span, "global tensor")
                        .with_hint(format!("load a tile: `load {name}[offsets] : [shape]`")),
                ))
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Kernel header

    fn kernel(&mut self, kast: &ast::Kernel, defines: &[Define]) {
        // Compile-time parameters: defaults (which may use earlier ones), then overrides.
        for d in defines {
            if !kast.ct_params.iter().any(|p| p.name.name == d.name) {
                let names: Vec<&str> = kast.ct_params.iter().map(|p| p.name.name.as_str()).collect();
                self.diags.push(
                    Diagnostic::error(format!("kernel `{}` has no compile-time parameter `{}`", kast.name.name, d.name), kast.name.span, "this kernel")
                        .with_note(if names.is_empty() { "it has none".to_string() } else { format!("its compile-time parameters: {}", names.join(", ")) }),
                );
            }
        }
        for p in &kast.ct_params {
            let is_type = p.is_type_param();
            let val = if let Some(d) = defines.iter().rev().find(|d| d.name == p.name.name) {
                match parse_define(&d.value, is_type) {
                    Ok(v) => Some(v),
                    Err(m) => {
                        self.diags.push(Diagnostic::error(format!("-D {}={}: {m}", d.name, d.value), p.name.span, "parameter declared here"));
                        self.bind(&p.name.name, Binding::Poison);
                        continue;
                    }
                }
            } else if let Some(def) = &p.default {
                match def {
                    ast::CtValue::Type(t) => self.resolve_type(t).ok().map(CVal::Type),
                    ast::CtValue::Expr(x) => self.const_expr(x).ok(),
                }
            } else {
                self.diags.push(
                    Diagnostic::error(format!("compile-time parameter `{}` has no value", p.name.name), p.name.span, "no default")
                        .with_hint(format!("give it a default (`{} = ...`) or pass `-D {}=VALUE`", p.name.name, p.name.name)),
                );
                None
            };
            match val {
                Some(v) => {
                    if let Some(ast::CtParamTy::Scalar(t)) = &p.ty
                        && let Ok(d) = self.resolve_type(t)
                        && matches!(v, CVal::Float(_))
                        && is_int(d)
                    {
                        self.diags.push(Diagnostic::error(format!("`{}` is declared `{d}` but its value is a float", p.name.name), p.span, "here"));
                    }
                    self.k.consts.push((p.name.name.clone(), cval_to_const(v)));
                    self.bind(&p.name.name, Binding::Const(v));
                }
                None => self.bind(&p.name.name, Binding::Poison),
            }
        }
        // Runtime parameters: scalars first become values so shapes can refer to them.
        for p in &kast.params {
            match &p.ty {
                ast::ParamTy::Scalar(t) => {
                    let Ok(d) = self.resolve_type(t) else {
                        self.bind(&p.name.name, Binding::Poison);
                        continue;
                    };
                    let v = self.k.add_scalar_param(&p.name.name, d);
                    self.bind(&p.name.name, Binding::Value(v));
                }
                ast::ParamTy::Global(gt) => {
                    let Ok(d) = self.resolve_type(&gt.elem) else {
                        self.bind(&p.name.name, Binding::Poison);
                        continue;
                    };
                    let shape: R<Vec<SymExpr>> = gt.shape.dims.iter().map(|x| self.sym_expr(x)).collect();
                    let shape = shape.unwrap_or_default();
                    let g = self.k.add_global_param(&p.name.name, d, shape, gt.out.is_some(), p.span);
                    self.bind(&p.name.name, Binding::Global(g));
                }
            }
        }
        let grid: R<Vec<SymExpr>> = kast.grid.dims.iter().map(|x| self.sym_expr(x)).collect();
        if let Ok(g) = grid {
            if g.is_empty() || g.len() > 3 {
                self.diags.push(Diagnostic::error("a grid has 1 to 3 dimensions", kast.grid.span, "here"));
            } else {
                self.k.grid = g;
            }
        }
        if let Ok(w) = self.const_int(&kast.warps, "the number of warps") {
            if !(1..=32).contains(&w) {
                self.diags.push(Diagnostic::error(format!("a block has 1 to 32 warps, not {w}"), kast.warps.span, "here"));
            } else {
                self.k.warps = w as u32;
            }
        }
        self.scopes.push(HashMap::new());
        self.block(&kast.body);
        self.scopes.pop();
    }

    /// A global extent or grid extent as a symbolic expression over integer scalar parameters.
    fn sym_expr(&mut self, x: &ast::Expr) -> R<SymExpr> {
        use ast::ExprKind as K;
        let bad = |s: &mut Elab| -> R<SymExpr> {
            Err(s.error(
                Diagnostic::error("an extent must be an integer expression over scalar parameters and constants", x.span, "not allowed here")
                    .with_note("allowed: integer parameters, compile-time constants, + - * / %, cdiv, min, max"),
            ))
        };
        match &x.kind {
            K::Int(i) => Ok(SymExpr::Const(i.value as i64)),
            K::Name(n) => match self.lookup(n) {
                Some(Binding::Const(CVal::Int(i))) => Ok(SymExpr::Const(i)),
                Some(Binding::Value(v)) if self.k.param_index(v).is_some() && is_int(self.k.ty(v).dtype()) => Ok(SymExpr::Param(v)),
                Some(Binding::Poison) => Err(Reported),
                None => self.err(format!("unknown name `{n}`"), x.span, "not a parameter"),
                _ => bad(self),
            },
            K::Binary { op, lhs, rhs } => {
                let op = match op {
                    ast::BinaryOp::Add => SymOp::Add,
                    ast::BinaryOp::Sub => SymOp::Sub,
                    ast::BinaryOp::Mul => SymOp::Mul,
                    ast::BinaryOp::Div => SymOp::Div,
                    ast::BinaryOp::Rem => SymOp::Rem,
                    _ => return bad(self),
                };
                let (a, b) = (self.sym_expr(lhs)?, self.sym_expr(rhs)?);
                Ok(SymExpr::bin(op, a, b))
            }
            K::Call { func, generics, shape: None, args } if generics.is_empty() && args.len() == 2 && args.iter().all(|a| a.name.is_none()) => {
                let op = match func.name.as_str() {
                    "cdiv" => SymOp::CeilDiv,
                    "min" => SymOp::Min,
                    "max" => SymOp::Max,
                    _ => return bad(self),
                };
                let (a, b) = (self.sym_expr(&args[0].value)?, self.sym_expr(&args[1].value)?);
                Ok(SymExpr::bin(op, a, b))
            }
            _ => bad(self),
        }
    }

    fn resolve_type(&mut self, t: &ast::TypeRef) -> R<DType> {
        if let Some(b) = self.lookup(&t.name) {
            return match b {
                Binding::Const(CVal::Type(d)) => Ok(d),
                Binding::Poison => Err(Reported),
                _ => self.err(format!("`{}` is not a type", t.name), t.span, "expected an element type"),
            };
        }
        match t.name.as_str() {
            "bool" => return Ok(bool_type()),
            "i64" => return Ok(DType::Int(64)),
            _ => {}
        }
        match DType::parse(&t.name) {
            Ok(d) => Ok(d),
            Err(e) => Err(self.error(
                Diagnostic::error(format!("unknown type `{}`", t.name), t.span, "not a type").with_note(e.to_string()),
            )),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Compile-time evaluation

    fn const_expr(&mut self, x: &ast::Expr) -> R<CVal> {
        match self.expr(x)? {
            Ev::Const(c) => Ok(c),
            _ => self.err("this must be a compile-time constant", x.span, "depends on runtime values"),
        }
    }

    fn const_int(&mut self, x: &ast::Expr, what: &str) -> R<i64> {
        match self.expr(x)? {
            Ev::Const(CVal::Int(i)) => Ok(i),
            Ev::Const(c) => self.err(format!("{what} must be an integer, found {}", c.describe()), x.span, "not an integer"),
            _ => Err(self.error(
                Diagnostic::error(format!("{what} must be a compile-time constant"), x.span, "depends on runtime values")
                    .with_hint("tile sizes come from compile-time parameters: declare them in `<...>` after the kernel name"),
            )),
        }
    }

    fn tile_shape(&mut self, s: &ast::Shape) -> R<Vec<usize>> {
        let mut out = Vec::new();
        for d in &s.dims {
            let n = self.const_int(d, "a tile extent")?;
            if n < 1 {
                return self.err(format!("a tile extent must be at least 1, not {n}"), d.span, "here");
            }
            out.push(n as usize);
        }
        if out.is_empty() {
            return self.err("a tile has at least one axis", s.span, "empty shape");
        }
        Ok(out)
    }

    // -----------------------------------------------------------------------------------------
    // Statements

    fn block(&mut self, b: &ast::Block) {
        self.scopes.push(HashMap::new());
        for s in &b.stmts {
            let _ = self.stmt(s);
        }
        self.scopes.pop();
    }

    fn nested(&mut self, b: &ast::Block) -> Vec<Inst> {
        self.bodies.push(Vec::new());
        self.block(b);
        self.bodies.pop().unwrap_or_default()
    }

    fn stmt(&mut self, s: &ast::Stmt) -> R<()> {
        use ast::StmtKind as S;
        match &s.kind {
            S::Let(l) => {
                let r = self.let_stmt(l);
                if r.is_err() {
                    self.bind(&l.name.name, Binding::Poison);
                }
                r
            }
            S::Assign { target, op, value } => self.assign(target, *op, value, s.span),
            S::Store { dest, value } => self.store(dest, value, s.span),
            S::CopyAsync { dest, src } => self.copy_async(dest, src, s.span),
            S::Wait { pending } => {
                let n = match pending {
                    Some(x) => self.const_int(x, "the number of pending copy groups")?,
                    None => 0,
                };
                if n < 0 {
                    return self.err("`wait` needs a non-negative count", s.span, "here");
                }
                self.emit(InstKind::CopyAsyncCommit, s.span)?;
                self.emit(InstKind::CopyAsyncWait { pending: n as u32 }, s.span)?;
                Ok(())
            }
            S::Sync => self.emit(InstKind::Sync, s.span).map(|_| ()),
            S::For(f) => self.for_stmt(f, s.span),
            S::If(i) => self.if_stmt(i),
            S::While { cond, body } => {
                self.bodies.push(Vec::new());
                let c = self.expr(cond).and_then(|c| self.value(c, cond.span));
                let cond_body = self.bodies.pop().unwrap_or_default();
                let c = c?;
                self.check_cond(c, cond.span)?;
                let body = self.nested(body);
                self.emit(InstKind::While { cond_body, cond: c, body }, s.span).map(|_| ())
            }
            S::StaticAssert { cond, message } => match self.expr(cond)? {
                Ev::Const(CVal::Bool(true)) => Ok(()),
                Ev::Const(CVal::Bool(false)) => {
                    let msg = message.as_ref().map_or_else(|| "static assertion failed".to_string(), |m| format!("static assertion failed: {}", m.value));
                    let consts: Vec<String> = self.k.consts.iter().map(|(n, v)| format!("{n} = {v}")).collect();
                    let mut d = Diagnostic::error(msg, cond.span, "this is false");
                    if !consts.is_empty() {
                        d = d.with_note(format!("with {}", consts.join(", ")));
                    }
                    Err(self.error(d))
                }
                Ev::Const(c) => self.err(format!("`static_assert` needs a boolean, found {}", c.describe()), cond.span, "not a boolean"),
                _ => Err(self.error(
                    Diagnostic::error("`static_assert` needs a compile-time condition", cond.span, "depends on runtime values")
                        .with_hint("use `assume(...)` for facts about runtime values"),
                )),
            },
            S::Assume { cond } => match self.expr(cond)? {
                Ev::Const(CVal::Bool(true)) => Ok(()),
                Ev::Const(CVal::Bool(false)) => self.err("this assumption is false at compile time", cond.span, "always false"),
                ev => {
                    let c = self.value(ev, cond.span)?;
                    self.check_cond(c, cond.span)?;
                    self.emit(InstKind::Assume { cond: c }, s.span).map(|_| ())
                }
            },
            S::Expr(x) => self.expr(x).map(|_| ()),
            S::Error => Err(Reported),
        }
    }

    fn check_cond(&mut self, c: Value, span: Span) -> R<()> {
        if self.k.ty(c) != &Type::Scalar(bool_type()) {
            let t = self.k.ty(c).clone();
            return self.err(format!("a condition must be a boolean scalar, found `{t}`"), span, "not a boolean");
        }
        Ok(())
    }

    fn let_stmt(&mut self, l: &ast::LetStmt) -> R<()> {
        let ev = self.expr(&l.init)?;
        let declared = match &l.ty {
            Some(t) => {
                let d = self.resolve_type(&t.elem)?;
                let shape = match &t.shape {
                    Some(s) => Some(self.tile_shape(s)?),
                    None => None,
                };
                Some((d, shape, t.span))
            }
            None => None,
        };
        // Materialise constants only when they must become runtime values.
        let ev = match (ev, &declared) {
            (Ev::Const(c), Some((d, None, span))) => Ev::Val(self.constant(c, *d, *span)?),
            (Ev::Const(c), None) if l.mutable => Ev::Val(self.default_constant(c, l.init.span)?),
            (Ev::Const(c), Some((_, Some(s), span))) => {
                return self.err(format!("{} is a scalar, not a tile of shape {}", c.describe(), shape_str(s)), *span, "declared as a tile");
            }
            (ev, _) => ev,
        };
        match ev {
            Ev::Const(c) => {
                self.bind(&l.name.name, Binding::Const(c));
                Ok(())
            }
            Ev::Global(_) => {
                self.value(ev, l.init.span)?;
                Ok(())
            }
            Ev::Val(v) => {
                if let Some((d, shape, span)) = declared {
                    let want = match shape {
                        Some(s) => Type::Tile(TileType::new(d, s)),
                        None => Type::Scalar(d),
                    };
                    let have = self.k.ty(v).clone();
                    if want != have {
                        return Err(self.error(
                            Diagnostic::error(format!("`{}` is declared `{want}` but its value is `{have}`", l.name.name), span, format!("declared `{want}`"))
                                .with_label(l.init.span, format!("this is `{have}`")),
                        ));
                    }
                }
                let pinned = match &l.layout {
                    Some(le) => Some(self.pinned_layout(le, v, &l.name.name)?),
                    None => None,
                };
                if l.mutable {
                    let ty = self.k.ty(v).clone();
                    let var = self.k.add_var(ty, Some(&l.name.name));
                    self.emit(InstKind::Assign { var, value: v }, l.init.span)?;
                    self.bind(&l.name.name, Binding::Var(var));
                    if let Some((layout, span)) = pinned {
                        self.k.pinned_layouts.push(crate::ir::PinnedLayout { value: var, layout, span });
                    }
                } else {
                    if let Some((layout, span)) = pinned {
                        self.k.pinned_layouts.push(crate::ir::PinnedLayout { value: v, layout, span });
                    }
                    if self.k.values[v].name.is_none() && self.k.param_index(v).is_none() {
                        self.k.values[v].name = Some(l.name.name.clone());
                    }
                    self.bind(&l.name.name, Binding::Value(v));
                }
                Ok(())
            }
        }
    }

    /// The layout of `let name @ le = v`: evaluated, checked against `v`'s tile shape and the
    /// block's threads (a layout over fewer threads is replicated over the rest).
    fn pinned_layout(&mut self, le: &ast::LayoutExpr, v: Value, name: &str) -> R<(tilc_layout::RegisterLayout, Span)> {
        let layout = self.layout_value(le)?;
        let Some(tile) = self.k.ty(v).as_tile().cloned() else {
            let ty = self.k.ty(v).clone();
            return Err(self.error(
                Diagnostic::error(format!("`{name}` is `{ty}`; only register tiles have layouts"), le.span, "a layout on a non-tile")
                    .with_hint("remove the `@ layout`, or bind a register tile"),
            ));
        };
        if layout.shape() != tile.shape.as_slice() {
            return Err(self.error(
                Diagnostic::error(
                    format!("the layout covers a tile of shape {}, but `{name}` is `{}{}`", shape_str(layout.shape()), tile.dtype, shape_str(&tile.shape)),
                    le.span,
                    format!("shape {}", shape_str(layout.shape())),
                )
                .with_hint("the layout's extents per dimension must multiply to the tile's"),
            ));
        }
        let threads = 32 * self.k.warps as usize;
        let t = layout.num_threads();
        if t > threads || threads % t != 0 {
            return Err(self.error(
                Diagnostic::error(format!("the layout spans {t} threads, but the block has {threads} ({} warps)", self.k.warps), le.span, format!("{t} threads"))
                    .with_hint("use a layout over the block's threads, or a divisor of them (the rest replicate it)"),
            ));
        }
        let layout = if t == threads { layout } else { tilc_layout::register::compose(&tilc_layout::RegisterLayout::replica(threads / t), &layout) };
        Ok((layout, le.span))
    }

    /// Evaluates a layout expression; its extents are constant expressions.
    fn layout_value(&mut self, le: &ast::LayoutExpr) -> R<tilc_layout::RegisterLayout> {
        use tilc_layout::register::compose;
        match &le.kind {
            ast::LayoutKind::Error => Err(Reported),
            ast::LayoutKind::Product { lhs, rhs } => {
                let (a, b) = (self.layout_value(lhs)?, self.layout_value(rhs)?);
                Ok(compose(&a, &b))
            }
            ast::LayoutKind::Chain { base, next } => {
                let a = self.layout_value(base)?;
                let b = self.layout_prim(next)?;
                Ok(compose(&a, &b))
            }
            ast::LayoutKind::Prim(p) => self.layout_prim(p),
        }
    }

    fn layout_prim(&mut self, p: &ast::LayoutPrim) -> R<tilc_layout::RegisterLayout> {
        use tilc_layout::register::{auto_local_spatial, column_local, column_spatial, local, replicated, spatial};
        let mut args = Vec::with_capacity(p.args.len());
        for a in &p.args {
            let n = self.const_int(a, "a layout extent")?;
            if !(1..=1 << 20).contains(&n) {
                return self.err(format!("a layout extent must be between 1 and 2^20, this is {n}"), a.span, "here");
            }
            args.push(n as usize);
        }
        let need_one = |lx: &mut Self| -> R<()> {
            if args.is_empty() {
                return lx.err(format!("`{}` needs at least one argument", p.prim.as_str()), p.span, "no arguments");
            }
            Ok(())
        };
        Ok(match p.prim {
            ast::LayoutPrimKind::Local => {
                need_one(self)?;
                local(&args)
            }
            ast::LayoutPrimKind::Spatial => {
                need_one(self)?;
                spatial(&args)
            }
            ast::LayoutPrimKind::ColumnLocal => {
                need_one(self)?;
                column_local(&args)
            }
            ast::LayoutPrimKind::ColumnSpatial => {
                need_one(self)?;
                column_spatial(&args)
            }
            ast::LayoutPrimKind::Replicated => {
                need_one(self)?;
                replicated(&args[1..], args[0])
            }
            ast::LayoutPrimKind::AutoLocalSpatial => {
                if args.len() < 2 {
                    return self.err("`auto_local_spatial` needs a thread count and at least one extent", p.span, "too few arguments");
                }
                auto_local_spatial(args[0], &args[1..])
            }
        })
    }

    fn assign(&mut self, target: &ast::Ident, op: ast::AssignOp, value: &ast::Expr, span: Span) -> R<()> {
        let var = match self.lookup(&target.name) {
            Some(Binding::Var(v)) => v,
            Some(Binding::Poison) => return Err(Reported),
            None => return self.err(format!("unknown name `{}`", target.name), target.span, "not defined"),
            Some(_) => {
                return Err(self.error(
                    Diagnostic::error(format!("cannot assign to `{}`, which is not mutable", target.name), target.span, "immutable")
                        .with_hint(format!("declare it with `let mut {}`", target.name)),
                ));
            }
        };
        let rhs = self.expr(value)?;
        let v = if op == ast::AssignOp::Set {
            let ty = self.k.ty(var).clone();
            match rhs {
                Ev::Const(c) => match ty {
                    Type::Scalar(d) => self.constant(c, d, value.span)?,
                    _ => return self.err(format!("assigning {} to a variable of type `{ty}`", c.describe()), value.span, "a scalar"),
                },
                _ => self.value(rhs, value.span)?,
            }
        } else {
            let bop = match op {
                ast::AssignOp::Add => BinaryOp::Add,
                ast::AssignOp::Sub => BinaryOp::Sub,
                ast::AssignOp::Mul => BinaryOp::Mul,
                _ => BinaryOp::Div,
            };
            self.binary(bop, Ev::Val(var), target.span, rhs, value.span, span)?
        };
        let (tv, tt) = (self.k.ty(var).clone(), self.k.ty(v).clone());
        if tv != tt {
            return Err(self.error(
                Diagnostic::error(format!("assigning a `{tt}` to `{}`, a variable of type `{tv}`", target.name), value.span, format!("this is `{tt}`"))
                    .with_hint("a variable keeps the type of its first value; convert with `cast<T>(...)` or reshape"),
            ));
        }
        self.emit(InstKind::Assign { var, value: v }, span).map(|_| ())
    }

    fn offsets(&mut self, o: &Option<ast::Shape>, rank: usize, span: Span) -> R<Vec<Value>> {
        match o {
            None => (0..rank).map(|_| self.constant(CVal::Int(0), i32_type(), span)).collect(),
            Some(s) => {
                let mut out = Vec::new();
                for d in &s.dims {
                    let ev = self.expr(d)?;
                    let v = match ev {
                        Ev::Const(c @ CVal::Int(_)) => self.constant(c, i32_type(), d.span)?,
                        _ => self.value(ev, d.span)?,
                    };
                    if !matches!(self.k.ty(v), Type::Scalar(t) if is_int(*t)) {
                        let t = self.k.ty(v).clone();
                        return self.err(format!("an offset must be an integer scalar, found `{t}`"), d.span, "not an integer");
                    }
                    out.push(v);
                }
                if out.len() != rank {
                    return self.err(format!("{} offsets given for a tensor of rank {rank}", out.len()), s.span, format!("expected {rank}"));
                }
                Ok(out)
            }
        }
    }

    fn tensor_of(&mut self, r: &ast::TensorRef) -> R<Ev> {
        match self.lookup(&r.tensor.name) {
            Some(Binding::Global(g)) => Ok(Ev::Global(g)),
            Some(Binding::Value(v)) if matches!(self.k.ty(v), Type::Shared(_)) => Ok(Ev::Val(v)),
            Some(Binding::Poison) => Err(Reported),
            None => self.unknown_name(&r.tensor.name, r.tensor.span),
            Some(_) => self.err(format!("`{}` is not a global or shared tensor", r.tensor.name), r.tensor.span, "not a tensor"),
        }
    }

    fn unknown_name<T>(&mut self, name: &str, span: Span) -> R<T> {
        let mut d = Diagnostic::error(format!("unknown name `{name}`"), span, "not defined");
        if let Some(best) = self.all_names().into_iter().min_by_key(|n| edit_distance(n, name)).filter(|n| edit_distance(n, name) <= 2) {
            d = d.with_hint(format!("did you mean `{best}`?"));
        }
        Err(self.error(d))
    }

    /// Drops extent-1 axes (rightmost first) from `shape` until it has `rank` axes.
    fn fit_rank(&mut self, shape: &[usize], rank: usize, span: Span, what: &str) -> R<Vec<usize>> {
        let mut s = shape.to_vec();
        while s.len() > rank {
            match s.iter().rposition(|&d| d == 1) {
                Some(i) => {
                    s.remove(i);
                }
                None => break,
            }
        }
        if s.len() != rank {
            return self.err(
                format!("a tile of shape {} does not fit {what} of rank {rank}", shape_str(shape)),
                span,
                "rank mismatch",
            );
        }
        Ok(s)
    }

    fn load(&mut self, r: &ast::TensorRef, span: Span) -> R<Value> {
        match self.tensor_of(r)? {
            Ev::Global(g) => {
                let rank = self.k.globals[g].shape.len();
                let Some(sh) = &r.shape else {
                    let name = self.k.globals[g].name.clone();
                    return Err(self.error(
                        Diagnostic::error(format!("loading from `{name}` needs a tile shape"), r.span, "no shape")
                            .with_hint(format!("write `load {name}[offsets] : [extents]`")),
                    ));
                };
                let user = self.tile_shape(sh)?;
                let shape = self.fit_rank(&user, rank, sh.span, &format!("`{}`", self.k.globals[g].name))?;
                let offsets = self.offsets(&r.offsets, rank, r.span)?;
                let v = self.emit_v(InstKind::LoadGlobal { global: g, offsets, shape: shape.clone() }, span)?;
                if shape != user { self.emit_v(InstKind::Reshape { x: v, shape: user }, span) } else { Ok(v) }
            }
            Ev::Val(s) => {
                let st = self.k.ty(s).as_shared().cloned().expect("tensor_of gives shared values");
                let rank = st.shape.len();
                let user = match &r.shape {
                    Some(sh) => self.tile_shape(sh)?,
                    None => st.shape.clone(),
                };
                // Leading extent-1 axes address the outer dimensions (e.g. a pipeline stage).
                let mut shape = user.clone();
                while shape.len() < rank {
                    shape.insert(0, 1);
                }
                if shape.len() != rank {
                    return self.err(format!("a tile of shape {} does not fit a shared tensor of rank {rank}", shape_str(&user)), r.span, "rank mismatch");
                }
                let offsets = self.offsets(&r.offsets, rank, r.span)?;
                let v = self.emit_v(InstKind::LoadShared { shared: s, offsets, shape: shape.clone() }, span)?;
                if shape != user { self.emit_v(InstKind::Reshape { x: v, shape: user }, span) } else { Ok(v) }
            }
            Ev::Const(_) => Err(Reported),
        }
    }

    fn store(&mut self, dest: &ast::TensorRef, value: &ast::Expr, span: Span) -> R<()> {
        let t = self.tensor_of(dest)?;
        let ev = self.expr(value)?;
        let v = self.value(ev, value.span)?;
        let Type::Tile(tt) = self.k.ty(v).clone() else {
            let ty = self.k.ty(v).clone();
            return self.err(format!("only register tiles can be stored, this is `{ty}`"), value.span, "not a tile");
        };
        if let Some(sh) = &dest.shape {
            let want = self.tile_shape(sh)?;
            if want != tt.shape {
                return Err(self.error(
                    Diagnostic::error(format!("the stored tile has shape {}, the store says {}", shape_str(&tt.shape), shape_str(&want)), value.span, format!("shape {}", shape_str(&tt.shape)))
                        .with_label(sh.span, format!("shape {}", shape_str(&want))),
                ));
            }
        }
        match t {
            Ev::Global(g) => {
                let gd = self.k.globals[g].clone();
                if !gd.out {
                    return Err(self.error(
                        Diagnostic::error(format!("store to `{}`, which is not marked `out`", gd.name), dest.tensor.span, "read-only parameter")
                            .with_label(gd.span, "declared here")
                            .with_hint(format!("declare it `{}: out global ...`", gd.name)),
                    ));
                }
                if tt.dtype != gd.dtype {
                    return Err(self.error(
                        Diagnostic::error(format!("storing a `{}` tile into `{}`, a tensor of `{}`", tt.dtype, gd.name, gd.dtype), value.span, format!("this is `{}`", tt.dtype))
                            .with_hint(format!("convert it: `cast<{}>(...)`", gd.dtype)),
                    ));
                }
                let shape = self.fit_rank(&tt.shape, gd.shape.len(), value.span, &format!("`{}`", gd.name))?;
                let offsets = self.offsets(&dest.offsets, gd.shape.len(), dest.span)?;
                let v = if shape != tt.shape { self.emit_v(InstKind::Reshape { x: v, shape }, value.span)? } else { v };
                self.emit(InstKind::StoreGlobal { global: g, offsets, value: v }, span).map(|_| ())
            }
            Ev::Val(s) => {
                let st = self.k.ty(s).as_shared().cloned().expect("shared");
                let mut shape = tt.shape.clone();
                while shape.len() < st.shape.len() {
                    shape.insert(0, 1);
                }
                let offsets = self.offsets(&dest.offsets, st.shape.len(), dest.span)?;
                let v = if shape != tt.shape { self.emit_v(InstKind::Reshape { x: v, shape }, value.span)? } else { v };
                self.emit(InstKind::StoreShared { shared: s, offsets, value: v }, span).map(|_| ())
            }
            Ev::Const(_) => Err(Reported),
        }
    }

    fn copy_async(&mut self, dest: &ast::TensorRef, src: &ast::TensorRef, span: Span) -> R<()> {
        let Ev::Val(s) = self.tensor_of(dest)? else {
            return self.err("`copy_async` writes into a shared tensor", dest.tensor.span, "not shared");
        };
        let Ev::Global(g) = self.tensor_of(src)? else {
            return self.err("`copy_async` reads from a global tensor", src.tensor.span, "not global");
        };
        let st = self.k.ty(s).as_shared().cloned().expect("shared");
        let rank = self.k.globals[g].shape.len();
        let user = match &src.shape {
            Some(sh) => self.tile_shape(sh)?,
            None => st.shape.clone(),
        };
        let shape = self.fit_rank(&user, rank, src.span, &format!("`{}`", self.k.globals[g].name))?;
        let offsets = self.offsets(&src.offsets, rank, src.span)?;
        let shared_offsets = self.offsets(&dest.offsets, st.shape.len(), dest.span)?;
        self.emit(InstKind::CopyAsync { global: g, offsets, shared: s, shared_offsets, shape }, span).map(|_| ())
    }

    fn for_stmt(&mut self, f: &ast::ForStmt, span: Span) -> R<()> {
        let start = match &f.start {
            Some(x) => self.expr(x)?,
            None => Ev::Const(CVal::Int(0)),
        };
        let end = self.expr(&f.end)?;
        let step = match &f.step {
            Some(x) => self.expr(x)?,
            None => Ev::Const(CVal::Int(1)),
        };
        if let Ev::Const(CVal::Int(s)) = step
            && s <= 0
        {
            let sp = f.step.as_ref().map_or(f.range_span, |x| x.span);
            return self.err(format!("a loop step must be positive, not {s}"), sp, "here");
        }
        // The loop variable takes the integer type of the runtime bounds (i32 by default).
        let mut d = i32_type();
        for ev in [start, end, step] {
            if let Ev::Val(v) = ev {
                d = self.k.ty(v).dtype();
            }
        }
        let mut vals = Vec::new();
        for (ev, sp) in [(start, f.start.as_ref().map_or(f.range_span, |x| x.span)), (end, f.end.span), (step, f.step.as_ref().map_or(f.range_span, |x| x.span))] {
            let v = match ev {
                Ev::Const(c) => self.constant(c, d, sp)?,
                _ => self.value(ev, sp)?,
            };
            if self.k.ty(v) != &Type::Scalar(d) || !is_int(d) {
                let t = self.k.ty(v).clone();
                return self.err(format!("loop bounds must be integer scalars of one type; this is `{t}`, expected `{d}`"), sp, "here");
            }
            vals.push(v);
        }
        let unroll = match &f.unroll {
            None => None,
            Some(u) => match &u.factor {
                None => Some(0),
                Some(x) => {
                    let n = self.const_int(x, "an unroll factor")?;
                    if n < 1 {
                        return self.err("an unroll factor must be at least 1", x.span, "here");
                    }
                    Some(n as u32)
                }
            },
        };
        // The loop variable's value is created before its instruction exists; fix the def after.
        let var = self.k.values.push(ValueData { ty: Type::Scalar(d), def: ValueDef::Var, name: Some(f.var.name.clone()) });
        self.scopes.push(HashMap::new());
        self.bind(&f.var.name, Binding::Value(var));
        let body = self.nested(&f.body);
        self.scopes.pop();
        let kind = InstKind::For { var, start: vals[0], end: vals[1], step: vals[2], body, unroll };
        let inst = self.k.add_inst(kind, None, span);
        self.k.values[var].def = ValueDef::LoopVar(inst);
        if let Err(te) = types::result_type(&self.k, &self.k.insts[inst].kind) {
            return Err(self.type_error(te, span));
        }
        self.bodies.last_mut().expect("a body is open").push(inst);
        Ok(())
    }

    fn if_stmt(&mut self, i: &ast::IfStmt) -> R<()> {
        let c = self.expr(&i.cond)?;
        match c {
            Ev::Const(CVal::Bool(b)) => {
                // A compile-time `if`: only the taken branch is elaborated.
                if b {
                    self.block(&i.then_block);
                } else if let Some(e) = &i.else_branch {
                    match e {
                        ast::Else::Block(b) => self.block(b),
                        ast::Else::If(ii) => self.if_stmt(ii)?,
                    }
                }
                Ok(())
            }
            Ev::Const(c) => self.err(format!("an `if` condition must be boolean, found {}", c.describe()), i.cond.span, "not a boolean"),
            ev => {
                let c = self.value(ev, i.cond.span)?;
                self.check_cond(c, i.cond.span)?;
                let then_body = self.nested(&i.then_block);
                let else_body = match &i.else_branch {
                    None => Vec::new(),
                    Some(ast::Else::Block(b)) => self.nested(b),
                    Some(ast::Else::If(ii)) => {
                        self.bodies.push(Vec::new());
                        let _ = self.if_stmt(ii);
                        self.bodies.pop().unwrap_or_default()
                    }
                };
                self.emit(InstKind::If { cond: c, then_body, else_body }, i.span).map(|_| ())
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Expressions

    fn expr(&mut self, x: &ast::Expr) -> R<Ev> {
        use ast::ExprKind as K;
        match &x.kind {
            K::Int(i) => match i64::try_from(i.value) {
                Ok(v) => Ok(Ev::Const(CVal::Int(v))),
                Err(_) => self.err("integer literal too large", x.span, "here"),
            },
            K::Float(f) => Ok(Ev::Const(CVal::Float(f.value))),
            K::Bool(b) => Ok(Ev::Const(CVal::Bool(*b))),
            K::Name(n) => match self.lookup(n) {
                Some(Binding::Const(c)) => Ok(Ev::Const(c)),
                Some(Binding::Value(v)) | Some(Binding::Var(v)) => Ok(Ev::Val(v)),
                Some(Binding::Global(g)) => Ok(Ev::Global(g)),
                Some(Binding::Poison) => Err(Reported),
                None if n == "block" => self.err("`block` alone is not a value", x.span, "use `block.x`, `block.y` or `block.z`"),
                None => self.unknown_name(n, x.span),
            },
            K::Field { base, field } => {
                if matches!(&base.kind, K::Name(n) if n == "block" && self.lookup(n).is_none()) {
                    let axis = match field.name.as_str() {
                        "x" => 0,
                        "y" => 1,
                        "z" => 2,
                        _ => return self.err(format!("`block` has fields x, y and z, not `{}`", field.name), field.span, "unknown field"),
                    };
                    if axis >= self.k.grid.len() {
                        return self.err(
                            format!("`block.{}` on a grid of {} dimension(s)", field.name, self.k.grid.len()),
                            x.span,
                            "beyond the grid",
                        );
                    }
                    return Ok(Ev::Val(self.emit_v(InstKind::BlockIdx { axis: axis as u8 }, x.span)?));
                }
                self.err("fields exist only on `block`", x.span, "no such field")
            }
            K::Unary { op, operand } => {
                let a = self.expr(operand)?;
                match (op, a) {
                    (ast::UnaryOp::Neg, Ev::Const(CVal::Int(i))) => Ok(Ev::Const(CVal::Int(-i))),
                    (ast::UnaryOp::Neg, Ev::Const(CVal::Float(f))) => Ok(Ev::Const(CVal::Float(-f))),
                    (ast::UnaryOp::Not, Ev::Const(CVal::Bool(b))) => Ok(Ev::Const(CVal::Bool(!b))),
                    (ast::UnaryOp::BitNot, Ev::Const(CVal::Int(i))) => Ok(Ev::Const(CVal::Int(!i))),
                    (_, Ev::Const(c)) => self.err(format!("`{}` cannot apply to {}", op.as_str(), c.describe()), x.span, "here"),
                    (op, ev) => {
                        let v = self.value(ev, operand.span)?;
                        let uop = match op {
                            ast::UnaryOp::Neg => UnaryOp::Neg,
                            ast::UnaryOp::Not => {
                                if self.k.ty(v).dtype() != bool_type() {
                                    let t = self.k.ty(v).clone();
                                    return self.err(format!("`!` needs a boolean, found `{t}`"), operand.span, "not a boolean");
                                }
                                UnaryOp::Not
                            }
                            ast::UnaryOp::BitNot => UnaryOp::Not,
                        };
                        Ok(Ev::Val(self.emit_v(InstKind::Unary { op: uop, x: v }, x.span)?))
                    }
                }
            }
            K::Binary { op, lhs, rhs } => {
                let (a, b) = (self.expr(lhs)?, self.expr(rhs)?);
                let bop = match op {
                    ast::BinaryOp::Add => BinaryOp::Add,
                    ast::BinaryOp::Sub => BinaryOp::Sub,
                    ast::BinaryOp::Mul => BinaryOp::Mul,
                    ast::BinaryOp::Div => BinaryOp::Div,
                    ast::BinaryOp::Rem => BinaryOp::Rem,
                    ast::BinaryOp::BitAnd | ast::BinaryOp::And => BinaryOp::And,
                    ast::BinaryOp::BitOr | ast::BinaryOp::Or => BinaryOp::Or,
                    ast::BinaryOp::BitXor => BinaryOp::Xor,
                    ast::BinaryOp::Shl => BinaryOp::Shl,
                    ast::BinaryOp::Shr => BinaryOp::Shr,
                    ast::BinaryOp::Eq => BinaryOp::Eq,
                    ast::BinaryOp::Ne => BinaryOp::Ne,
                    ast::BinaryOp::Lt => BinaryOp::Lt,
                    ast::BinaryOp::Le => BinaryOp::Le,
                    ast::BinaryOp::Gt => BinaryOp::Gt,
                    ast::BinaryOp::Ge => BinaryOp::Ge,
                };
                if matches!(op, ast::BinaryOp::And | ast::BinaryOp::Or) {
                    for (ev, e) in [(a, lhs), (b, rhs)] {
                        let ok = match ev {
                            Ev::Const(c) => matches!(c, CVal::Bool(_)),
                            Ev::Val(v) => self.k.ty(v).dtype() == bool_type(),
                            Ev::Global(_) => true,
                        };
                        if !ok {
                            return self.err(format!("`{}` needs boolean operands", op.as_str()), e.span, "not a boolean");
                        }
                    }
                }
                if let (Ev::Const(ca), Ev::Const(cb)) = (a, b) {
                    return match fold(bop, ca, cb) {
                        Ok(c) => Ok(Ev::Const(c)),
                        Err(m) => self.err(m, x.span, "in this constant expression"),
                    };
                }
                Ok(Ev::Val(self.binary(bop, a, lhs.span, b, rhs.span, x.span)?))
            }
            K::Call { func, generics, shape, args } => self.call(func, generics, shape.as_ref(), args, x.span),
            K::Load(r) => Ok(Ev::Val(self.load(r, x.span)?)),
            K::Shared { elem, shape } => {
                let d = self.resolve_type(elem)?;
                let s = self.tile_shape(shape)?;
                Ok(Ev::Val(self.emit_v(InstKind::AllocShared { tile: TileType::new(d, s) }, x.span)?))
            }
            K::Index { .. } => self.err("indexing a tile is not supported yet", x.span, "here"),
            K::List(_) => self.err("a list is only allowed as a shape argument", x.span, "here"),
            K::Error => Err(Reported),
        }
    }

    /// A binary operation between two elaborated operands (at least one a runtime value).
    fn binary(&mut self, op: BinaryOp, a: Ev, sa: Span, b: Ev, sb: Span, span: Span) -> R<Value> {
        let (va, vb) = match (a, b) {
            (Ev::Const(c), Ev::Val(v)) => {
                let d = self.k.ty(v).dtype();
                (self.constant(c, d, sa)?, v)
            }
            (Ev::Val(v), Ev::Const(c)) => {
                let d = self.k.ty(v).dtype();
                (v, self.constant(c, d, sb)?)
            }
            _ => (self.value(a, sa)?, self.value(b, sb)?),
        };
        let kind = InstKind::Binary { op, a: va, b: vb };
        match types::result_type(&self.k, &kind) {
            Ok(ty) => {
                let inst = self.k.add_inst(kind, ty, span);
                self.bodies.last_mut().expect("a body is open").push(inst);
                Ok(self.k.insts[inst].result.expect("binary has a result"))
            }
            Err(te) => {
                let (ta, tb) = (self.k.ty(va).clone(), self.k.ty(vb).clone());
                let mut d = Diagnostic::error(te.message, span, "")
                    .with_label(sa, format!("this is `{ta}`"))
                    .with_label(sb, format!("this is `{tb}`"));
                d.labels[0].message = String::new();
                d.notes = te.notes;
                Err(self.error(d))
            }
        }
    }

    fn named_arg<'a>(&mut self, args: &'a [ast::Arg], name: &str) -> Option<&'a ast::Arg> {
        args.iter().find(|a| a.name.as_ref().is_some_and(|n| n.name == name))
    }

    fn check_args(&mut self, func: &ast::Ident, args: &[ast::Arg], positional: std::ops::RangeInclusive<usize>, named: &[&str]) -> R<()> {
        let npos = args.iter().filter(|a| a.name.is_none()).count();
        if !positional.contains(&npos) {
            let want = if positional.start() == positional.end() { format!("{}", positional.start()) } else { format!("{} to {}", positional.start(), positional.end()) };
            return self.err(format!("`{}` takes {want} positional argument(s), {npos} given", func.name), func.span, "wrong number of arguments");
        }
        for a in args {
            if let Some(n) = &a.name
                && !named.contains(&n.name.as_str())
            {
                let allowed = if named.is_empty() { "none".to_string() } else { named.join(", ") };
                return Err(self.error(
                    Diagnostic::error(format!("`{}` has no argument named `{}`", func.name, n.name), n.span, "unknown argument")
                        .with_note(format!("named arguments of `{}`: {allowed}", func.name)),
                ));
            }
        }
        Ok(())
    }

    fn positional(args: &[ast::Arg]) -> Vec<&ast::Expr> {
        args.iter().filter(|a| a.name.is_none()).map(|a| &a.value).collect()
    }

    fn tile_arg(&mut self, x: &ast::Expr) -> R<Value> {
        let ev = self.expr(x)?;
        let v = self.value(ev, x.span)?;
        if !matches!(self.k.ty(v), Type::Tile(_)) {
            let t = self.k.ty(v).clone();
            let mut d = Diagnostic::error(format!("expected a register tile, found `{t}`"), x.span, "not a tile");
            if matches!(t, Type::Shared(_)) {
                d = d.with_hint("load it first: `load s[offsets] : [shape]`");
            }
            return Err(self.error(d));
        }
        Ok(v)
    }

    fn axis_arg(&mut self, args: &[ast::Arg], rank: usize, default: Option<usize>, func: &ast::Ident) -> R<usize> {
        let Some(a) = self.named_arg(args, "axis") else {
            return match default {
                Some(d) => Ok(d),
                None => self.err(format!("`{}` needs `axis = N`", func.name), func.span, "no axis"),
            };
        };
        let written = self.const_int(&a.value, "an axis")?;
        let n = if written < 0 { written + rank as i64 } else { written };
        if n < 0 || n as usize >= rank {
            let last = rank as i64 - 1;
            return Err(self.error(
                Diagnostic::error(format!("axis {written} is out of range for a tile of rank {rank}"), a.value.span, "out of range")
                    .with_hint(format!("the axes are 0..={last}, or -{rank}..=-1 counting from the last")),
            ));
        }
        Ok(n as usize)
    }

    fn bool_arg(&mut self, args: &[ast::Arg], name: &str) -> R<Option<bool>> {
        let Some(a) = self.named_arg(args, name) else { return Ok(None) };
        match self.expr(&a.value)? {
            Ev::Const(CVal::Bool(b)) => Ok(Some(b)),
            _ => self.err(format!("`{name}` must be `true` or `false`"), a.value.span, "not a boolean constant"),
        }
    }

    fn list_shape(&mut self, x: &ast::Expr) -> R<Vec<usize>> {
        match &x.kind {
            ast::ExprKind::List(items) => {
                let s = ast::Shape { dims: items.clone(), span: x.span };
                self.tile_shape(&s)
            }
            _ => self.err("expected a shape `[d0, d1, ...]`", x.span, "not a list"),
        }
    }

    fn generic_type(&mut self, func: &ast::Ident, generics: &[ast::GenericArg]) -> R<DType> {
        match generics.first() {
            Some(ast::GenericArg::Type(t)) => self.resolve_type(t),
            _ => self.err(format!("`{}` needs an element type: `{}<T>`", func.name, func.name), func.span, "no type"),
        }
    }

    fn call(&mut self, func: &ast::Ident, generics: &[ast::GenericArg], shape: Option<&ast::Shape>, args: &[ast::Arg], span: Span) -> R<Ev> {
        let name = func.name.as_str();
        let pos = Self::positional(args);
        let unary = |n: &str| -> Option<UnaryOp> {
            Some(match n {
                "exp" => UnaryOp::Exp,
                "exp2" => UnaryOp::Exp2,
                "log" => UnaryOp::Log,
                "log2" => UnaryOp::Log2,
                "sqrt" => UnaryOp::Sqrt,
                "rsqrt" => UnaryOp::Rsqrt,
                "abs" => UnaryOp::Abs,
                "floor" => UnaryOp::Floor,
                "ceil" => UnaryOp::Ceil,
                "trunc" => UnaryOp::Trunc,
                "round" => UnaryOp::Round,
                _ => return None,
            })
        };
        if !generics.is_empty() && !matches!(name, "cast" | "view" | "zeros" | "ones" | "full" | "iota") {
            return self.err(format!("`{name}` takes no generic arguments"), func.span, "here");
        }
        match name {
            _ if unary(name).is_some() => {
                let op = unary(name).expect("checked");
                self.check_args(func, args, 1..=1, &[])?;
                match self.expr(pos[0])? {
                    Ev::Const(c) => {
                        let x = match c {
                            CVal::Int(i) if op == UnaryOp::Abs => return Ok(Ev::Const(CVal::Int(i.abs()))),
                            CVal::Int(i) => i as f64,
                            CVal::Float(f) => f,
                            _ => return self.err(format!("`{name}` of {}", c.describe()), pos[0].span, "not a number"),
                        };
                        Ok(Ev::Const(CVal::Float(const_unary(op, x))))
                    }
                    ev => {
                        let v = self.value(ev, pos[0].span)?;
                        Ok(Ev::Val(self.emit_v(InstKind::Unary { op, x: v }, span)?))
                    }
                }
            }
            "cdiv" | "min" | "max" if pos.len() == 2 && self.named_arg(args, "axis").is_none() => {
                self.check_args(func, args, 2..=2, &[])?;
                let op = match name {
                    "cdiv" => BinaryOp::CeilDiv,
                    "min" => BinaryOp::Min,
                    _ => BinaryOp::Max,
                };
                let (a, b) = (self.expr(pos[0])?, self.expr(pos[1])?);
                if let (Ev::Const(ca), Ev::Const(cb)) = (a, b) {
                    return match fold(op, ca, cb) {
                        Ok(c) => Ok(Ev::Const(c)),
                        Err(m) => self.err(m, span, "in this constant expression"),
                    };
                }
                Ok(Ev::Val(self.binary(op, a, pos[0].span, b, pos[1].span, span)?))
            }
            "sum" | "max" | "min" | "absmax" => {
                self.check_args(func, args, 1..=1, &["axis", "keepdim"])?;
                let x = self.tile_arg(pos[0])?;
                let rank = self.k.ty(x).as_tile().map_or(1, |t| t.shape.len());
                let axis = self.axis_arg(args, rank, None, func)?;
                let keepdim = self.bool_arg(args, "keepdim")?.unwrap_or(false);
                let op = match name {
                    "sum" => ReduceOp::Sum,
                    "max" => ReduceOp::Max,
                    "min" => ReduceOp::Min,
                    _ => ReduceOp::AbsMax,
                };
                Ok(Ev::Val(self.emit_v(InstKind::Reduce { op, x, axis, keepdim }, span)?))
            }
            "cast" => {
                self.check_args(func, args, 1..=1, &["round", "sat", "saturate"])?;
                let d = self.generic_type(func, generics)?;
                let ev = self.expr(pos[0])?;
                let rounding = match self.named_arg(args, "round") {
                    None => CastRounding::NearestEven,
                    Some(a) => self.rounding(&a.value)?,
                };
                let src = match ev {
                    Ev::Val(v) => self.k.ty(v).dtype(),
                    _ => d,
                };
                let sat = match self.bool_arg(args, "saturate")? {
                    Some(b) => Some(b),
                    None => self.bool_arg(args, "sat")?,
                };
                let overflow = match sat {
                    Some(true) => CastOverflow::Saturate,
                    Some(false) => CastOverflow::Wrap,
                    None if is_int(src) && is_int(d) => CastOverflow::Wrap,
                    None => CastOverflow::Saturate,
                };
                let x = match ev {
                    Ev::Const(c) => return Ok(Ev::Val(self.constant(c, d, pos[0].span)?)),
                    _ => self.value(ev, pos[0].span)?,
                };
                Ok(Ev::Val(self.emit_v(InstKind::Cast { x, dtype: d, rounding, overflow }, span)?))
            }
            "view" => {
                self.check_args(func, args, 1..=1, &[])?;
                let d = self.generic_type(func, generics)?;
                let x = self.tile_arg(pos[0])?;
                let t = self.k.ty(x).as_tile().cloned().expect("tile_arg gives tiles");
                let shape = match generics.get(1) {
                    Some(ast::GenericArg::Shape(s)) => self.tile_shape(s)?,
                    _ => {
                        // Default: same leading axes, the last one rescaled by the bit ratio.
                        let mut s = t.shape.clone();
                        let last = s.len() - 1;
                        let bits = s[last] * t.dtype.bits() as usize;
                        if !bits.is_multiple_of(d.bits() as usize) {
                            return self.err(
                                format!("a view of {}{} as `{d}` needs an explicit shape: `view<{d}, [...]>(x)`", t.dtype, shape_str(&t.shape)),
                                span,
                                "the last axis does not divide",
                            );
                        }
                        s[last] = bits / d.bits() as usize;
                        s
                    }
                };
                Ok(Ev::Val(self.emit_v(InstKind::View { x, dtype: d, shape }, span)?))
            }
            "zeros" | "ones" | "full" => {
                let d = self.generic_type(func, generics)?;
                let Some(sh) = shape else {
                    return self.err(format!("`{name}` needs a shape: `{name}<T>[d0, d1]`"), func.span, "no shape");
                };
                let s = self.tile_shape(sh)?;
                let value = if name == "full" {
                    self.check_args(func, args, 1..=1, &[])?;
                    match self.expr(pos[0])? {
                        Ev::Const(c) => self.constant(c, d, pos[0].span)?,
                        ev => self.value(ev, pos[0].span)?,
                    }
                } else {
                    self.check_args(func, args, 0..=0, &[])?;
                    let c = if name == "zeros" { CVal::Int(0) } else { CVal::Int(1) };
                    let c = if d == bool_type() { CVal::Bool(name == "ones") } else { c };
                    self.constant(c, d, span)?
                };
                Ok(Ev::Val(self.emit_v(InstKind::Full { value, shape: s }, span)?))
            }
            "iota" => {
                // `iota<T>[d0, .., dn](axis = a)`: element (i0, .., in) holds i_a; axis defaults to
                // the last.
                self.check_args(func, args, 0..=0, &["axis"])?;
                let d = self.generic_type(func, generics)?;
                let type_span = match generics.first() {
                    Some(ast::GenericArg::Type(t)) => t.span,
                    _ => func.span,
                };
                if !is_int(d) {
                    return Err(self.error(
                        Diagnostic::error(format!("`iota` makes integer tiles, not `{d}`"), type_span, "not an integer type")
                            .with_hint(format!("count in an integer type and convert: `cast<{d}>(iota<i32>[..])`")),
                    ));
                }
                if generics.len() > 1 {
                    return self.err("`iota` takes one generic argument, its element type", func.span, "the shape goes in `[...]` after `>`");
                }
                let Some(sh) = shape else {
                    return Err(self.error(
                        Diagnostic::error("`iota` needs a shape", span, "no shape").with_hint("write `iota<i32>[d0, d1](axis = 1)`"),
                    ));
                };
                let s = self.tile_shape(sh)?;
                let axis = self.axis_arg(args, s.len(), Some(s.len() - 1), func)?;
                let (_, hi) = int_range(d);
                let top = s[axis] as i64 - 1;
                if top > hi {
                    return Err(self.error(
                        Diagnostic::error(format!("`iota<{d}>` along an axis of {} counts to {top}, which does not fit in `{d}`", s[axis]), sh.dims[axis].span, format!("`{d}` holds at most {hi}"))
                            .with_hint("count in a wider type such as `i32`"),
                    ));
                }
                Ok(Ev::Val(self.emit_v(InstKind::Iota { dtype: d, shape: s, axis }, span)?))
            }
            "dot" => {
                self.check_args(func, args, 3..=3, &[])?;
                let a = self.tile_arg(pos[0])?;
                let b = self.tile_arg(pos[1])?;
                let c = self.tile_arg(pos[2])?;
                let kind = InstKind::Dot { a, b, c };
                match types::result_type(&self.k, &kind) {
                    Ok(_) => Ok(Ev::Val(self.emit_v(kind, span)?)),
                    Err(te) => {
                        let ty = |s: &Elab, v: Value| s.k.ty(v).to_string();
                        let (ta, tb, tc) = (ty(self, a), ty(self, b), ty(self, c));
                        let mut d = Diagnostic::error(te.message, span, "")
                            .with_label(pos[0].span, format!("a: `{ta}`"))
                            .with_label(pos[1].span, format!("b: `{tb}`"))
                            .with_label(pos[2].span, format!("accumulator: `{tc}`"));
                        d.notes = te.notes;
                        Err(self.error(d))
                    }
                }
            }
            "transpose" => {
                self.check_args(func, args, 1..=2, &[])?;
                let x = self.tile_arg(pos[0])?;
                let rank = self.k.ty(x).as_tile().map_or(0, |t| t.shape.len());
                let perm = match pos.get(1) {
                    Some(p) => self.list_shape_raw(p)?,
                    None if rank == 2 => vec![1, 0],
                    None => return self.err(format!("`transpose` of a rank-{rank} tile needs a permutation"), span, "which axes?"),
                };
                Ok(Ev::Val(self.emit_v(InstKind::Transpose { x, perm }, span)?))
            }
            "reshape" | "broadcast" => {
                self.check_args(func, args, 2..=2, &[])?;
                let ev = self.expr(pos[0])?;
                let x = self.value(ev, pos[0].span)?;
                let s = self.list_shape(pos[1])?;
                let kind = if name == "reshape" { InstKind::Reshape { x, shape: s } } else { InstKind::Broadcast { x, shape: s } };
                Ok(Ev::Val(self.emit_v(kind, span)?))
            }
            "hadamard" => {
                self.check_args(func, args, 1..=1, &["axis"])?;
                let x = self.tile_arg(pos[0])?;
                let rank = self.k.ty(x).as_tile().map_or(1, |t| t.shape.len());
                let axis = self.axis_arg(args, rank, Some(rank - 1), func)?;
                Ok(Ev::Val(self.emit_v(InstKind::Hadamard { x, axis }, span)?))
            }
            "where" => {
                self.check_args(func, args, 3..=3, &[])?;
                let c = self.expr(pos[0])?;
                let c = self.value(c, pos[0].span)?;
                let (a, b) = (self.expr(pos[1])?, self.expr(pos[2])?);
                let (va, vb) = match (a, b) {
                    (Ev::Const(x), Ev::Val(v)) => {
                        let d = self.k.ty(v).dtype();
                        (self.constant(x, d, pos[1].span)?, v)
                    }
                    (Ev::Val(v), Ev::Const(x)) => {
                        let d = self.k.ty(v).dtype();
                        (v, self.constant(x, d, pos[2].span)?)
                    }
                    _ => (self.value(a, pos[1].span)?, self.value(b, pos[2].span)?),
                };
                Ok(Ev::Val(self.emit_v(InstKind::Select { cond: c, a: va, b: vb }, span)?))
            }
            "stochastic" => self.err("`stochastic(...)` is a rounding mode: write `cast<T>(x, round = stochastic(seed))`", span, "not a value"),
            _ => {
                let known = [
                    "exp", "exp2", "log", "log2", "sqrt", "rsqrt", "abs", "floor", "ceil", "trunc", "round", "cdiv", "min", "max", "sum", "absmax",
                    "cast", "view", "zeros", "ones", "full", "iota", "dot", "transpose", "reshape", "broadcast", "hadamard", "where",
                ];
                let mut d = Diagnostic::error(format!("unknown function `{name}`"), func.span, "not a built-in");
                if let Some(best) = known.iter().min_by_key(|k| edit_distance(k, name)).filter(|k| edit_distance(k, name) <= 2) {
                    d = d.with_hint(format!("did you mean `{best}`?"));
                }
                Err(self.error(d))
            }
        }
    }

    fn list_shape_raw(&mut self, x: &ast::Expr) -> R<Vec<usize>> {
        match &x.kind {
            ast::ExprKind::List(items) => {
                let mut out = Vec::new();
                for i in items {
                    let n = self.const_int(i, "an axis")?;
                    if n < 0 {
                        return self.err("axes are non-negative", i.span, "here");
                    }
                    out.push(n as usize);
                }
                Ok(out)
            }
            _ => self.err("expected a list of axes `[1, 0]`", x.span, "not a list"),
        }
    }

    fn rounding(&mut self, x: &ast::Expr) -> R<CastRounding> {
        use ast::ExprKind as K;
        match &x.kind {
            K::Name(n) if self.lookup(n).is_none() => match n.as_str() {
                "rne" => Ok(CastRounding::NearestEven),
                "rtz" => Ok(CastRounding::TowardZero),
                "rup" => Ok(CastRounding::TowardPositive),
                "rdown" => Ok(CastRounding::TowardNegative),
                _ => Err(self.error(
                    Diagnostic::error(format!("unknown rounding mode `{n}`"), x.span, "not a rounding mode")
                        .with_note("rounding modes: rne, rtz, rup, rdown, stochastic(seed)"),
                )),
            },
            K::Call { func, args, .. } if func.name == "stochastic" => {
                self.check_args(func, args, 1..=2, &[])?;
                let pos = Self::positional(args);
                let seed = match self.expr(pos[0])? {
                    Ev::Const(c) => self.constant(c, DType::Int(64), pos[0].span)?,
                    ev => self.value(ev, pos[0].span)?,
                };
                if !is_int(self.k.ty(seed).dtype()) || !self.k.ty(seed).is_scalar() {
                    let t = self.k.ty(seed).clone();
                    return self.err(format!("a seed must be an integer scalar, found `{t}`"), pos[0].span, "not an integer");
                }
                let index = match pos.get(1) {
                    Some(p) => Some(self.tile_arg(p)?),
                    None => None,
                };
                Ok(CastRounding::Stochastic { seed, index })
            }
            _ => Err(self.error(
                Diagnostic::error("expected a rounding mode", x.span, "not a rounding mode").with_note("rounding modes: rne, rtz, rup, rdown, stochastic(seed)"),
            )),
        }
    }
}

fn int_range(d: DType) -> (i64, i64) {
    let b = d.bits();
    if b >= 64 {
        return (i64::MIN, i64::MAX);
    }
    if d.is_signed() { (-(1i64 << (b - 1)), (1i64 << (b - 1)) - 1) } else { (0, (1i64 << b) - 1) }
}

fn round_to(d: DType, x: f64) -> f64 {
    if d.bits() == 64 {
        return x;
    }
    d.decode(d.encode(x, tilc_dtype::Rounding::NearestEven, tilc_dtype::Overflow::NonSaturating))
}

fn const_unary(op: UnaryOp, x: f64) -> f64 {
    match op {
        UnaryOp::Exp => x.exp(),
        UnaryOp::Exp2 => x.exp2(),
        UnaryOp::Log => x.ln(),
        UnaryOp::Log2 => x.log2(),
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Rsqrt => 1.0 / x.sqrt(),
        UnaryOp::Abs => x.abs(),
        UnaryOp::Floor => x.floor(),
        UnaryOp::Ceil => x.ceil(),
        UnaryOp::Trunc => x.trunc(),
        UnaryOp::Round => x.round_ties_even(),
        UnaryOp::Neg => -x,
        UnaryOp::Not => f64::NAN,
    }
}

/// Folds a binary operation on compile-time values.
fn fold(op: BinaryOp, a: CVal, b: CVal) -> Result<CVal, String> {
    use CVal::*;
    Ok(match (a, b) {
        (Int(x), Int(y)) => match op {
            BinaryOp::Add => Int(x.checked_add(y).ok_or("overflow")?),
            BinaryOp::Sub => Int(x.checked_sub(y).ok_or("overflow")?),
            BinaryOp::Mul => Int(x.checked_mul(y).ok_or("overflow")?),
            BinaryOp::Div | BinaryOp::Rem | BinaryOp::CeilDiv if y == 0 => return Err("division by zero in a constant expression".into()),
            BinaryOp::Div => Int(x / y),
            BinaryOp::Rem => Int(x % y),
            BinaryOp::CeilDiv => Int(SymOp::CeilDiv.apply(x, y).ok_or("overflow")?),
            BinaryOp::Min => Int(x.min(y)),
            BinaryOp::Max => Int(x.max(y)),
            BinaryOp::Eq => Bool(x == y),
            BinaryOp::Ne => Bool(x != y),
            BinaryOp::Lt => Bool(x < y),
            BinaryOp::Le => Bool(x <= y),
            BinaryOp::Gt => Bool(x > y),
            BinaryOp::Ge => Bool(x >= y),
            BinaryOp::And => Int(x & y),
            BinaryOp::Or => Int(x | y),
            BinaryOp::Xor => Int(x ^ y),
            BinaryOp::Shl => Int(x.checked_shl(u32::try_from(y).map_err(|_| "bad shift")?).ok_or("bad shift")?),
            BinaryOp::Shr => Int(x.checked_shr(u32::try_from(y).map_err(|_| "bad shift")?).ok_or("bad shift")?),
        },
        (Bool(x), Bool(y)) => match op {
            BinaryOp::And => Bool(x && y),
            BinaryOp::Or => Bool(x || y),
            BinaryOp::Xor | BinaryOp::Ne => Bool(x != y),
            BinaryOp::Eq => Bool(x == y),
            _ => return Err(format!("`{}` of two booleans", op.name())),
        },
        (Int(_) | Float(_), Int(_) | Float(_)) => {
            let f = |c: CVal| match c {
                Int(i) => i as f64,
                Float(x) => x,
                _ => f64::NAN,
            };
            let (x, y) = (f(a), f(b));
            match op {
                BinaryOp::Add => Float(x + y),
                BinaryOp::Sub => Float(x - y),
                BinaryOp::Mul => Float(x * y),
                BinaryOp::Div => Float(x / y),
                BinaryOp::Rem => Float(x % y),
                BinaryOp::Min => Float(x.min(y)),
                BinaryOp::Max => Float(x.max(y)),
                BinaryOp::Eq => Bool(x == y),
                BinaryOp::Ne => Bool(x != y),
                BinaryOp::Lt => Bool(x < y),
                BinaryOp::Le => Bool(x <= y),
                BinaryOp::Gt => Bool(x > y),
                BinaryOp::Ge => Bool(x >= y),
                _ => return Err(format!("`{}` needs integer constants", op.name())),
            }
        }
        (Type(x), Type(y)) => match op {
            BinaryOp::Eq => Bool(x == y),
            BinaryOp::Ne => Bool(x != y),
            _ => return Err("types can only be compared with == and !=".into()),
        },
        _ => return Err(format!("`{}` of {} and {}", op.name(), a.describe(), b.describe())),
    })
}

fn parse_define(v: &str, is_type: bool) -> Result<CVal, String> {
    if is_type {
        return match v {
            "bool" => Ok(CVal::Type(bool_type())),
            _ => DType::parse(v).map(CVal::Type).map_err(|e| format!("not an element type: {e}")),
        };
    }
    if let Ok(i) = v.parse::<i64>() {
        return Ok(CVal::Int(i));
    }
    if let Ok(f) = v.parse::<f64>() {
        return Ok(CVal::Float(f));
    }
    match v {
        "true" => Ok(CVal::Bool(true)),
        "false" => Ok(CVal::Bool(false)),
        _ => Err("expected an integer, a float or true/false".to_string()),
    }
}

fn cval_to_const(c: CVal) -> ConstValue {
    match c {
        CVal::Int(i) => ConstValue::Int(i),
        CVal::Float(f) => ConstValue::Float(f),
        CVal::Bool(b) => ConstValue::Bool(b),
        CVal::Type(d) => ConstValue::Type(d),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + usize::from(a[i - 1] != b[j - 1]));
        }
        prev = cur;
    }
    prev[b.len()]
}

