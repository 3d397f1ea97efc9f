//! Checks on a parsed file that need no more than the file itself: element type names (through
//! `tilc_dtype`), names of types, duplicate kernels and parameters, the kind of compile-time
//! parameters, the number of grid dimensions.
//!
//! What needs meaning (scopes of locals, shapes, what a call does) is the VM's: this pass must
//! not guess at it.

use crate::ast::*;
use std::collections::HashMap;
use tilc_base::Diagnostic;
use tilc_dtype::{DType, DTypeError};

/// The diagnostics for `file`.
pub fn validate(file: &File) -> Vec<Diagnostic> {
    let mut v = Validator { diags: Vec::new(), type_params: Vec::new() };
    let mut kernels: HashMap<&str, &Kernel> = HashMap::new();
    for k in &file.kernels {
        if let Some(first) = kernels.get(k.name.name.as_str()) {
            v.diags.push(
                Diagnostic::error(format!("kernel `{}` is defined twice", k.name.name), k.name.span, "second definition")
                    .with_label(first.name.span, "first defined here")
                    .with_hint("rename one of the kernels"),
            );
        } else {
            kernels.insert(&k.name.name, k);
        }
        v.kernel(k);
    }
    v.diags
}

/// Scalar types that are not element types: they exist for runtime and compile-time scalars
/// (and casts of scalars), never as the elements of a tensor or tile.
pub const SCALAR_ONLY_TYPES: [&str; 3] = ["bool", "i64", "u64"];

/// Checks one type name as written; `scalar` allows [`SCALAR_ONLY_TYPES`]. `Err` holds a
/// diagnostic.
pub fn check_type_name(t: &TypeRef, scalar: bool) -> Result<(), Diagnostic> {
    if SCALAR_ONLY_TYPES.contains(&t.name.as_str()) {
        if scalar {
            return Ok(());
        }
        return Err(Diagnostic::error(format!("`{}` is not an element type", t.name), t.span, "only scalars can have this type")
            .with_hint("tensors and tiles hold element types: u1..u32, i1..i32, floats; flags are `u1` or `u8`"));
    }
    match DType::parse(&t.name) {
        Ok(_) => Ok(()),
        Err(e) => {
            let (label, note) = match &e {
                DTypeError::UnknownName(_) => ("not a supported element type".to_string(), None),
                DTypeError::BadWidth { reason, .. } => (reason.clone(), None),
                DTypeError::BadFormat(reason) => ("not a supported float format".to_string(), Some(reason.clone())),
            };
            let mut d = Diagnostic::error(format!("unknown element type `{}`", t.name), t.span, label)
                .with_hint(format!("supported: {}", tilc_dtype::SUPPORTED_NAMES));
            if let Some(n) = note {
                d = d.with_note(n);
            }
            Err(d)
        }
    }
}

struct Validator {
    diags: Vec<Diagnostic>,
    /// Names of the current kernel's type parameters.
    type_params: Vec<String>,
}

impl Validator {
    fn kernel(&mut self, k: &Kernel) {
        self.type_params = k.ct_params.iter().filter(|p| p.is_type_param()).map(|p| p.name.name.clone()).collect();
        let mut seen: HashMap<String, Span> = HashMap::new();
        let mut dup = |diags: &mut Vec<Diagnostic>, name: &Ident| {
            if let Some(first) = seen.get(name.name.as_str()) {
                diags.push(
                    Diagnostic::error(format!("parameter `{}` is declared twice", name.name), name.span, "second declaration")
                        .with_label(*first, "first declared here")
                        .with_hint("give each parameter of a kernel its own name"),
                );
            } else {
                seen.insert(name.name.clone(), name.span);
            }
        };
        for p in &k.ct_params {
            dup(&mut self.diags, &p.name);
            self.ct_param(p);
        }
        for p in &k.params {
            dup(&mut self.diags, &p.name);
            match &p.ty {
                ParamTy::Scalar(t) => self.ty(t),
                ParamTy::Global(g) => {
                    self.elem_ty(&g.elem);
                    self.exprs(&g.shape.dims);
                }
            }
        }
        let n = k.grid.dims.len();
        if n == 0 || n > 3 {
            self.diags.push(
                Diagnostic::error(format!("a grid has 1 to 3 dimensions, this one has {n}"), k.grid.span, "bad grid")
                    .with_hint("write `grid [x]`, `grid [x, y]` or `grid [x, y, z]`"),
            );
        }
        self.exprs(&k.grid.dims);
        self.expr(&k.warps);
        self.block(&k.body);
    }

    fn ct_param(&mut self, p: &CtParam) {
        let is_type = p.is_type_param();
        if let Some(CtParamTy::Scalar(t)) = &p.ty {
            self.ty(t);
        }
        let values = p.candidates.iter().flat_map(|c| c.values.iter()).chain(p.default.iter());
        for v in values {
            match v {
                CtValue::Type(t) => {
                    if is_type {
                        self.ty(t);
                    } else {
                        self.diags.push(
                            Diagnostic::error(format!("`{}` is a value parameter but is given a type", p.name.name), t.span, "a type")
                                .with_hint(format!("a type parameter is written `{0}: type = {1}` or `{0} = {1}`", p.name.name, t.name)),
                        );
                    }
                }
                CtValue::Expr(e) => {
                    if is_type {
                        self.diags.push(
                            Diagnostic::error(format!("`{}` is a type parameter but is given a value", p.name.name), e.span, "not a type")
                                .with_hint("give a type parameter element types only, e.g. `T in [f16, bf16] = bf16`"),
                        );
                    } else {
                        self.expr(e);
                    }
                }
            }
        }
    }

    /// A type where a scalar type may stand.
    fn ty(&mut self, t: &TypeRef) {
        self.type_ref(t, true);
    }

    /// A type where only an element type may stand (tensors, tiles).
    fn elem_ty(&mut self, t: &TypeRef) {
        self.type_ref(t, false);
    }

    fn type_ref(&mut self, t: &TypeRef, scalar: bool) {
        if t.is_builtin_spelling() {
            if let Err(d) = check_type_name(t, scalar) {
                self.diags.push(d);
            }
        } else if !self.type_params.contains(&t.name) {
            let hint = if self.type_params.is_empty() {
                format!("use an element type such as `f16` or `u3`, or declare a type parameter: `kernel k<{} = f16>(...)`", t.name)
            } else {
                format!("the type parameters of this kernel are {}", self.type_params.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "))
            };
            self.diags.push(Diagnostic::error(format!("unknown type `{}`", t.name), t.span, "not a type").with_hint(hint));
        }
    }

    fn block(&mut self, b: &Block) {
        for s in &b.stmts {
            self.stmt(s);
        }
    }

    fn stmt(&mut self, s: &Stmt) {
        match &s.kind {
            StmtKind::Let(l) => {
                if let Some(t) = &l.ty {
                    if t.shape.is_some() {
                        self.elem_ty(&t.elem);
                    } else {
                        self.ty(&t.elem);
                    }
                    if let Some(sh) = &t.shape {
                        self.exprs(&sh.dims);
                    }
                }
                if let Some(layout) = &l.layout {
                    self.layout(layout);
                }
                self.expr(&l.init);
            }
            StmtKind::Assign { value, .. } => self.expr(value),
            StmtKind::Store { dest, value } => {
                self.tensor_ref(dest);
                self.expr(value);
            }
            StmtKind::CopyAsync { dest, src } => {
                self.tensor_ref(dest);
                self.tensor_ref(src);
            }
            StmtKind::Wait { pending } => {
                if let Some(p) = pending {
                    self.expr(p);
                }
            }
            StmtKind::For(f) => {
                if let Some(e) = &f.start {
                    self.expr(e);
                }
                self.expr(&f.end);
                if let Some(e) = &f.step {
                    self.expr(e);
                }
                if let Some(Unroll { factor: Some(e), .. }) = &f.unroll {
                    self.expr(e);
                }
                self.block(&f.body);
            }
            StmtKind::If(i) => self.if_stmt(i),
            StmtKind::While { cond, body } => {
                self.expr(cond);
                self.block(body);
            }
            StmtKind::StaticAssert { cond, .. } | StmtKind::Assume { cond } => self.expr(cond),
            StmtKind::Expr(e) => self.expr(e),
            StmtKind::Sync | StmtKind::Error => {}
        }
    }

    fn if_stmt(&mut self, i: &IfStmt) {
        self.expr(&i.cond);
        self.block(&i.then_block);
        match &i.else_branch {
            Some(Else::Block(b)) => self.block(b),
            Some(Else::If(e)) => self.if_stmt(e),
            None => {}
        }
    }

    fn tensor_ref(&mut self, t: &TensorRef) {
        if let Some(o) = &t.offsets {
            self.exprs(&o.dims);
        }
        if let Some(s) = &t.shape {
            self.exprs(&s.dims);
        }
    }

    fn layout(&mut self, l: &LayoutExpr) {
        match &l.kind {
            LayoutKind::Prim(p) => self.exprs(&p.args),
            LayoutKind::Chain { base, next } => {
                self.layout(base);
                self.exprs(&next.args);
            }
            LayoutKind::Product { lhs, rhs } => {
                self.layout(lhs);
                self.layout(rhs);
            }
            LayoutKind::Error => {}
        }
    }

    fn exprs(&mut self, es: &[Expr]) {
        for e in es {
            self.expr(e);
        }
    }

    fn expr(&mut self, e: &Expr) {
        match &e.kind {
            ExprKind::Unary { operand, .. } => self.expr(operand),
            ExprKind::Binary { lhs, rhs, .. } => {
                self.expr(lhs);
                self.expr(rhs);
            }
            ExprKind::Call { func, generics, shape, args } => {
                for g in generics {
                    match g {
                        // `cast<i64>(n)` of a scalar is fine; tiles are made of element types.
                        GenericArg::Type(t) if func.name == "cast" => self.ty(t),
                        GenericArg::Type(t) => self.elem_ty(t),
                        GenericArg::Shape(s) => self.exprs(&s.dims),
                    }
                }
                if let Some(s) = shape {
                    self.exprs(&s.dims);
                }
                for a in args {
                    self.expr(&a.value);
                }
            }
            ExprKind::Index { base, indices } => {
                self.expr(base);
                for i in indices {
                    match i {
                        IndexItem::Index(e) => self.expr(e),
                        IndexItem::Slice { start, end, .. } => {
                            for e in start.iter().chain(end.iter()) {
                                self.expr(e);
                            }
                        }
                    }
                }
            }
            ExprKind::Field { base, .. } => self.expr(base),
            ExprKind::List(items) => self.exprs(items),
            ExprKind::Load(t) => self.tensor_ref(t),
            ExprKind::Shared { elem, shape } => {
                self.elem_ty(elem);
                self.exprs(&shape.dims);
            }
            ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Bool(_) | ExprKind::Name(_) | ExprKind::Error => {}
        }
    }
}
