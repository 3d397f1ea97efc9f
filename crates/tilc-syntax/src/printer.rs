//! The canonical printer (`tilc fmt`): AST → source text that parses back to the same AST.
//!
//! Layout rules: four-space indentation; one statement per line; a kernel header on one line
//! when it fits in [`MAX_WIDTH`] columns, otherwise one parameter per line with a trailing
//! comma; one blank line between kernels; at most one blank line where the source had blank
//! lines; no blank line right after `{`. Parentheses appear only where precedence needs them.
//! Comments are trivia kept in [`File::comments`]: each is written before the first statement
//! (or parameter, or closing brace) that follows it, and a comment that followed code on its
//! line is appended to the last line printed before that point.

use crate::ast::*;
use std::fmt::Write;

/// Kernel headers longer than this are split, one parameter per line.
pub const MAX_WIDTH: usize = 100;

/// Prints `file` in canonical form. An AST with `Error` nodes (from a file with syntax errors)
/// prints, but not as valid source.
pub fn print(file: &File) -> String {
    let mut p = Printer { out: String::new(), file, next_comment: 0, last_pos: 0, last_line_has_comment: false };
    for (i, k) in file.kernels.iter().enumerate() {
        let start = k.docs.first().map_or(k.span.start, |d| d.span.start);
        // Kernels are always separated by a blank line (before their leading comments, if any).
        p.flush(start, 0, i > 0);
        p.blank_line_before(start, false);
        p.kernel(k);
    }
    p.flush(u32::MAX, 0, !file.kernels.is_empty());
    if p.out.is_empty() {
        return p.out;
    }
    while p.out.ends_with("\n\n") {
        p.out.pop();
    }
    p.out
}

/// Prints one expression (for messages and tools).
pub fn print_expr(e: &Expr) -> String {
    expr(e, 0)
}

/// Prints one layout expression.
pub fn print_layout(l: &LayoutExpr) -> String {
    layout(l)
}

struct Printer<'a> {
    out: String,
    file: &'a File,
    next_comment: usize,
    /// Source position just after the last thing printed; blank lines between it and the next
    /// thing are kept (as one).
    last_pos: u32,
    /// Whether the last output line already ends with a comment.
    last_line_has_comment: bool,
}

impl Printer<'_> {
    /// Writes the comments that start before `pos`; `force_blank` asks for a blank line before
    /// the first own-line comment (between kernels).
    fn flush(&mut self, pos: u32, indent: usize, mut force_blank: bool) {
        while let Some(c) = self.file.comments.get(self.next_comment) {
            if c.span.start >= pos {
                break;
            }
            self.next_comment += 1;
            if c.trailing && self.out.ends_with('\n') && !self.last_line_has_comment {
                self.out.pop();
                let _ = writeln!(self.out, " {}", c.text);
                self.last_line_has_comment = true;
            } else {
                self.blank_line_before(c.span.start, force_blank);
                force_blank = false;
                self.line(indent, &c.text);
                self.last_line_has_comment = true;
            }
            self.last_pos = c.span.end;
        }
        if force_blank && !self.out.is_empty() && !self.out.ends_with("\n\n") {
            self.out.push('\n');
        }
    }

    /// Emits one blank line when the source had one between the last thing printed and `pos`
    /// (never at the start of the output or right after an opening brace).
    fn blank_line_before(&mut self, pos: u32, force: bool) {
        if self.out.is_empty() || self.out.ends_with("{\n") || self.out.ends_with("(\n") || self.out.ends_with("\n\n") {
            return;
        }
        let had_blank = self.file.blank_lines.iter().any(|b| b.start >= self.last_pos && b.end <= pos);
        if had_blank || force {
            self.out.push('\n');
        }
    }

    /// Starts a new element at source position `pos`: comments before it, then a blank line if
    /// the source had one.
    fn anchor(&mut self, pos: u32, indent: usize) {
        self.flush(pos, indent, false);
        self.blank_line_before(pos, false);
    }

    fn line(&mut self, indent: usize, text: &str) {
        for _ in 0..indent {
            self.out.push_str("    ");
        }
        self.out.push_str(text);
        self.out.push('\n');
        self.last_line_has_comment = false;
    }

    fn kernel(&mut self, k: &Kernel) {
        for d in &k.docs {
            self.line(0, &format!("///{}", d.text));
            self.last_pos = d.span.end;
        }
        self.flush(k.span.start, 0, false);
        let mut head = format!("kernel {}", k.name.name);
        if !k.ct_params.is_empty() {
            let ps: Vec<String> = k.ct_params.iter().map(ct_param).collect();
            let _ = write!(head, "<{}>", ps.join(", "));
        }
        let tail = format!(
            " grid [{}] warps {} {{",
            k.grid.dims.iter().map(|e| expr(e, 0)).collect::<Vec<_>>().join(", "),
            expr(&k.warps, 0)
        );
        let params: Vec<String> = k.params.iter().map(param).collect();
        let one_line = format!("{head}({}){tail}", params.join(", "));
        let header_has_comment = self
            .file
            .comments
            .get(self.next_comment)
            .is_some_and(|c| c.span.start < k.body.span.start);
        if one_line.len() <= MAX_WIDTH && !header_has_comment {
            self.line(0, &one_line);
        } else {
            self.line(0, &format!("{head}("));
            for (p, text) in k.params.iter().zip(&params) {
                self.anchor(p.span.start, 1);
                self.line(1, &format!("{text},"));
                self.last_pos = p.span.end;
            }
            self.flush(k.body.span.start, 1, false);
            self.line(0, &format!("){tail}"));
        }
        self.last_pos = k.body.span.start + 1;
        self.block_body(&k.body, 1);
        self.line(0, "}");
        self.last_pos = k.span.end;
    }

    /// The statements of a block and the comments before its closing brace (not the braces).
    fn block_body(&mut self, b: &Block, indent: usize) {
        self.last_pos = b.span.start + 1;
        for s in &b.stmts {
            self.stmt(s, indent);
        }
        self.flush(b.span.end.saturating_sub(1), indent, false);
        self.last_pos = b.span.end;
    }

    fn stmt(&mut self, s: &Stmt, indent: usize) {
        self.anchor(s.span.start, indent);
        match &s.kind {
            StmtKind::Let(l) => {
                let mut t = format!("let {}{}", if l.mutable { "mut " } else { "" }, l.name.name);
                if let Some(ty) = &l.ty {
                    let _ = write!(t, ": {}", let_ty(ty));
                }
                if let Some(lay) = &l.layout {
                    let _ = write!(t, " @ {}", layout(lay));
                }
                let _ = write!(t, " = {};", expr(&l.init, 0));
                self.line(indent, &t);
            }
            StmtKind::Assign { target, op, value } => {
                self.line(indent, &format!("{} {} {};", target.name, op.as_str(), expr(value, 0)))
            }
            StmtKind::Store { dest, value } => {
                self.line(indent, &format!("store {} = {};", tensor_ref(dest), expr(value, 0)))
            }
            StmtKind::CopyAsync { dest, src } => {
                self.line(indent, &format!("copy_async {} = {};", tensor_ref(dest), tensor_ref(src)))
            }
            StmtKind::Wait { pending: None } => self.line(indent, "wait;"),
            StmtKind::Wait { pending: Some(n) } => self.line(indent, &format!("wait({});", expr(n, 0))),
            StmtKind::Sync => self.line(indent, "sync;"),
            StmtKind::For(f) => {
                let mut bounds: Vec<String> = Vec::new();
                if let Some(s) = &f.start {
                    bounds.push(expr(s, 0));
                }
                bounds.push(expr(&f.end, 0));
                if let Some(s) = &f.step {
                    bounds.push(expr(s, 0));
                }
                let unroll = match &f.unroll {
                    None => String::new(),
                    Some(Unroll { factor: None, .. }) => " unroll".into(),
                    Some(Unroll { factor: Some(n), .. }) => format!(" unroll({})", expr(n, 0)),
                };
                self.line(indent, &format!("for {} in range({}){unroll} {{", f.var.name, bounds.join(", ")));
                self.block_body(&f.body, indent + 1);
                self.line(indent, "}");
            }
            StmtKind::If(i) => {
                self.line(indent, &format!("if {} {{", expr(&i.cond, 0)));
                self.if_rest(i, indent);
            }
            StmtKind::While { cond, body } => {
                self.line(indent, &format!("while {} {{", expr(cond, 0)));
                self.block_body(body, indent + 1);
                self.line(indent, "}");
            }
            StmtKind::StaticAssert { cond, message } => {
                let msg = message.as_ref().map_or(String::new(), |m| format!(", {}", string_literal(&m.value)));
                self.line(indent, &format!("static_assert({}{msg});", expr(cond, 0)));
            }
            StmtKind::Assume { cond } => self.line(indent, &format!("assume({});", expr(cond, 0))),
            StmtKind::Expr(e) => self.line(indent, &format!("{};", expr(e, 0))),
            StmtKind::Error => self.line(indent, "<error>;"),
        }
        self.last_pos = s.span.end;
    }

    /// The then-block and else-chain of an `if` whose first line is printed.
    fn if_rest(&mut self, i: &IfStmt, indent: usize) {
        self.block_body(&i.then_block, indent + 1);
        match &i.else_branch {
            None => self.line(indent, "}"),
            Some(Else::Block(b)) => {
                self.line(indent, "} else {");
                self.block_body(b, indent + 1);
                self.line(indent, "}");
            }
            Some(Else::If(e)) => {
                self.line(indent, &format!("}} else if {} {{", expr(&e.cond, 0)));
                self.if_rest(e, indent);
            }
        }
    }
}

fn ct_param(p: &CtParam) -> String {
    let mut s = p.name.name.clone();
    match &p.ty {
        Some(CtParamTy::Type(_)) => s.push_str(": type"),
        Some(CtParamTy::Scalar(t)) => {
            let _ = write!(s, ": {}", t.name);
        }
        None => {}
    }
    if let Some(c) = &p.candidates {
        let vs: Vec<String> = c.values.iter().map(ct_value).collect();
        let _ = write!(s, " in [{}]", vs.join(", "));
    }
    if let Some(d) = &p.default {
        let _ = write!(s, " = {}", ct_value(d));
    }
    s
}

fn ct_value(v: &CtValue) -> String {
    match v {
        CtValue::Type(t) => t.name.clone(),
        // The grammar stops a compile-time value before comparisons (so `>` closes the list).
        CtValue::Expr(e) => expr(e, 4),
    }
}

fn param(p: &Param) -> String {
    match &p.ty {
        ParamTy::Scalar(t) => format!("{}: {}", p.name.name, t.name),
        ParamTy::Global(g) => format!(
            "{}: {}global {}{}",
            p.name.name,
            if g.out.is_some() { "out " } else { "" },
            g.elem.name,
            shape(&g.shape)
        ),
    }
}

fn let_ty(t: &LetTy) -> String {
    match &t.shape {
        Some(s) => format!("{}{}", t.elem.name, shape(s)),
        None => t.elem.name.clone(),
    }
}

fn shape(s: &Shape) -> String {
    format!("[{}]", s.dims.iter().map(|e| expr(e, 0)).collect::<Vec<_>>().join(", "))
}

fn tensor_ref(t: &TensorRef) -> String {
    let mut s = t.tensor.name.clone();
    if let Some(o) = &t.offsets {
        s.push_str(&shape(o));
    }
    if let Some(sh) = &t.shape {
        let _ = write!(s, " : {}", shape(sh));
    }
    s
}

fn string_literal(v: &str) -> String {
    let mut s = String::from("\"");
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            '\t' => s.push_str("\\t"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// How tightly an expression binds: binary operators 1..=9, prefix forms 10, postfix 11,
/// atoms 12.
fn prec(e: &Expr) -> u8 {
    match &e.kind {
        ExprKind::Binary { op, .. } => op.precedence(),
        ExprKind::Unary { .. } | ExprKind::Load(_) | ExprKind::Shared { .. } => 10,
        ExprKind::Index { .. } | ExprKind::Field { .. } => 11,
        _ => 12,
    }
}

/// Prints `e`, in parentheses when it binds less tightly than `min`.
fn expr(e: &Expr, min: u8) -> String {
    let s = expr_bare(e);
    if prec(e) < min { format!("({s})") } else { s }
}

/// Bit operators bind by Rust's rules (`a & b == c` is `(a & b) == c`), which readers used to C
/// misread; parentheses make every mix of a bit operator with another operator explicit.
fn needs_clarity(parent: BinaryOp, child: &Expr) -> bool {
    let bitwise = |op: BinaryOp| {
        matches!(op, BinaryOp::BitAnd | BinaryOp::BitOr | BinaryOp::BitXor | BinaryOp::Shl | BinaryOp::Shr)
    };
    match &child.kind {
        ExprKind::Binary { op, .. } => *op != parent && (bitwise(parent) || bitwise(*op)),
        _ => false,
    }
}

/// The one-line signature of a kernel: `kernel name<ct>(params) grid [..] warps n`.
pub fn kernel_signature(k: &Kernel) -> String {
    let mut s = format!("kernel {}", k.name.name);
    if !k.ct_params.is_empty() {
        let _ = write!(s, "<{}>", k.ct_params.iter().map(ct_param).collect::<Vec<_>>().join(", "));
    }
    let _ = write!(
        s,
        "({}) grid [{}] warps {}",
        k.params.iter().map(param).collect::<Vec<_>>().join(", "),
        k.grid.dims.iter().map(|e| expr(e, 0)).collect::<Vec<_>>().join(", "),
        expr(&k.warps, 0)
    );
    s
}

fn expr_bare(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Int(i) => i.text.clone(),
        ExprKind::Float(f) => f.text.clone(),
        ExprKind::Bool(b) => b.to_string(),
        ExprKind::Name(n) => n.clone(),
        ExprKind::Unary { op, operand } => format!("{}{}", op.as_str(), expr(operand, 10)),
        ExprKind::Binary { op, lhs, rhs } => {
            let p = op.precedence();
            let lmin = if op.is_comparison() { p + 1 } else { p };
            let side = |e: &Expr, min: u8| if needs_clarity(*op, e) { format!("({})", expr_bare(e)) } else { expr(e, min) };
            format!("{} {} {}", side(lhs, lmin), op.as_str(), side(rhs, p + 1))
        }
        ExprKind::Call { func, generics, shape: sh, args } => {
            let mut s = func.name.clone();
            if !generics.is_empty() {
                let gs: Vec<String> = generics
                    .iter()
                    .map(|g| match g {
                        GenericArg::Type(t) => t.name.clone(),
                        GenericArg::Shape(x) => shape(x),
                    })
                    .collect();
                let _ = write!(s, "<{}>", gs.join(", "));
            }
            if let Some(x) = sh {
                s.push_str(&shape(x));
            }
            if sh.is_none() || !args.is_empty() {
                let a: Vec<String> = args
                    .iter()
                    .map(|a| match &a.name {
                        Some(n) => format!("{} = {}", n.name, expr(&a.value, 0)),
                        None => expr(&a.value, 0),
                    })
                    .collect();
                let _ = write!(s, "({})", a.join(", "));
            }
            s
        }
        ExprKind::Index { base, indices } => {
            let items: Vec<String> = indices
                .iter()
                .map(|i| match i {
                    IndexItem::Index(e) => expr(e, 0),
                    IndexItem::Slice { start, end, .. } => format!(
                        "{}..{}",
                        start.as_ref().map_or(String::new(), |e| expr(e, 0)),
                        end.as_ref().map_or(String::new(), |e| expr(e, 0))
                    ),
                })
                .collect();
            format!("{}[{}]", expr(base, 11), items.join(", "))
        }
        ExprKind::Field { base, field } => format!("{}.{}", expr(base, 11), field.name),
        ExprKind::List(items) => format!("[{}]", items.iter().map(|e| expr(e, 0)).collect::<Vec<_>>().join(", ")),
        ExprKind::Load(t) => format!("load {}", tensor_ref(t)),
        ExprKind::Shared { elem, shape: s } => format!("shared {}{}", elem.name, shape(s)),
        ExprKind::Error => "<error>".into(),
    }
}

fn layout(l: &LayoutExpr) -> String {
    match &l.kind {
        LayoutKind::Prim(p) => prim(p),
        LayoutKind::Chain { base, next } => {
            let b = if matches!(base.kind, LayoutKind::Product { .. }) { format!("({})", layout(base)) } else { layout(base) };
            format!("{b}.{}", prim(next))
        }
        LayoutKind::Product { lhs, rhs } => {
            let r = if matches!(rhs.kind, LayoutKind::Product { .. }) { format!("({})", layout(rhs)) } else { layout(rhs) };
            format!("{} * {r}", layout(lhs))
        }
        LayoutKind::Error => "<error>".into(),
    }
}

fn prim(p: &LayoutPrim) -> String {
    format!("{}({})", p.prim.as_str(), p.args.iter().map(|e| expr(e, 0)).collect::<Vec<_>>().join(", "))
}
