//! The verifier: checks every invariant documented in [`crate::ir`] on a finished kernel.
//!
//! It checks, in this order:
//! 1. every id stored anywhere is in range of its arena (so later checks index freely);
//! 2. every instruction appears in exactly one body, exactly once;
//! 3. every value read is defined before, in the same body or an enclosing one (parameters and
//!    mutable variables are defined everywhere; a loop variable inside its loop's body);
//! 4. a value defined by an instruction is that instruction's result, and vice versa;
//! 5. every instruction is well-typed by [`crate::types::result_type`] and its result has
//!    exactly that type; the grid has 1 to 3 extents over integer scalar parameters.
//!
//! Elaboration only produces verified kernels, so a failure here is a compiler bug (or a bug in
//! code that built a kernel by hand), never a user error.

use crate::ir::*;
use crate::types::{is_int, result_type};
use std::collections::HashSet;
use std::fmt;

/// A broken IR invariant: always a bug in whatever built the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierError {
    /// The instruction where the problem was found, if any.
    pub inst: Option<Inst>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for VerifierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.inst {
            Some(i) => write!(f, "verifier: {i}: {}", self.message),
            None => write!(f, "verifier: {}", self.message),
        }
    }
}

impl std::error::Error for VerifierError {}

fn err(inst: Option<Inst>, message: impl Into<String>) -> VerifierError {
    VerifierError { inst, message: message.into() }
}

/// Checks `k`; returns the first broken invariant.
pub fn verify(k: &Kernel) -> Result<(), VerifierError> {
    check_ranges(k)?;
    let mut placed = vec![false; k.insts.len()];
    let mut scope: Vec<Value> = Vec::new();
    let mut defined: HashSet<Value> = HashSet::new();
    for (v, vd) in k.values.iter() {
        match vd.def {
            ValueDef::Param(i) => {
                if k.params.get(i) != Some(&Param::Scalar(v)) {
                    return Err(err(None, format!("{v} claims to be parameter {i}, which it is not")));
                }
                defined.insert(v);
            }
            ValueDef::Var => {
                defined.insert(v);
            }
            ValueDef::Inst(i) => {
                if k.insts[i].result != Some(v) {
                    return Err(err(Some(i), format!("{v} claims to be defined by {i}, whose result is {:?}", k.insts[i].result)));
                }
            }
            ValueDef::LoopVar(i) => {
                if !matches!(k.insts[i].kind, InstKind::For { var, .. } if var == v) {
                    return Err(err(Some(i), format!("{v} claims to be the loop variable of {i}")));
                }
            }
        }
    }
    let mut seen_globals = HashSet::new();
    for p in &k.params {
        if let Param::Tensor(g) = p
            && !seen_globals.insert(*g)
        {
            return Err(err(None, format!("{g} appears twice among the parameters")));
        }
    }
    if seen_globals.len() != k.globals.len() {
        return Err(err(None, "some global tensor is not a parameter"));
    }
    if k.grid.is_empty() || k.grid.len() > 3 {
        return Err(err(None, format!("the grid has {} extents; 1 to 3 are allowed", k.grid.len())));
    }
    for (_, g) in k.globals.iter() {
        for e in &g.shape {
            check_sym(k, e)?;
        }
    }
    for e in &k.grid {
        check_sym(k, e)?;
    }
    body(k, &k.body, &mut placed, &mut scope, &mut defined)?;
    if let Some(i) = placed.iter().position(|p| !p) {
        return Err(err(Some(Inst::from_u32(i as u32)), "instruction is in no body"));
    }
    Ok(())
}

fn check_sym(k: &Kernel, e: &SymExpr) -> Result<(), VerifierError> {
    match e {
        SymExpr::Const(_) => Ok(()),
        SymExpr::Param(v) => match k.values.get(*v) {
            Some(ValueData { def: ValueDef::Param(_), ty: Type::Scalar(d), .. }) if is_int(*d) => Ok(()),
            _ => Err(err(None, format!("symbolic extent uses {v}, which is not an integer scalar parameter"))),
        },
        SymExpr::Bin(_, a, b) => {
            check_sym(k, a)?;
            check_sym(k, b)
        }
    }
}

fn check_ranges(k: &Kernel) -> Result<(), VerifierError> {
    let mut bad: Option<VerifierError> = None;
    for (i, d) in k.insts.iter() {
        let mut vals = d.kind.operands();
        vals.extend(d.result);
        let mut globals = Vec::new();
        let mut insts: Vec<Inst> = Vec::new();
        match &d.kind {
            InstKind::LoadGlobal { global, .. } | InstKind::StoreGlobal { global, .. } | InstKind::CopyAsync { global, .. } => {
                globals.push(*global)
            }
            InstKind::For { var, body, .. } => {
                vals.push(*var);
                insts.extend(body);
            }
            InstKind::If { then_body, else_body, .. } => insts.extend(then_body.iter().chain(else_body)),
            InstKind::While { cond_body, cond, body } => {
                vals.push(*cond);
                insts.extend(cond_body.iter().chain(body));
            }
            InstKind::Assign { var, .. } => vals.push(*var),
            _ => {}
        }
        if let Some(v) = vals.iter().find(|v| k.values.get(**v).is_none()) {
            bad = Some(err(Some(i), format!("{v} is out of range")));
        }
        if let Some(g) = globals.iter().find(|g| k.globals.get(**g).is_none()) {
            bad = Some(err(Some(i), format!("{g} is out of range")));
        }
        if let Some(j) = insts.iter().find(|j| k.insts.get(**j).is_none()) {
            bad = Some(err(Some(i), format!("{j} is out of range")));
        }
        if bad.is_some() {
            break;
        }
    }
    for &i in &k.body {
        if k.insts.get(i).is_none() {
            bad = Some(err(None, format!("{i} in the body is out of range")));
        }
    }
    for p in &k.params {
        match p {
            Param::Scalar(v) if k.values.get(*v).is_none() => bad = Some(err(None, format!("parameter {v} is out of range"))),
            Param::Tensor(g) if k.globals.get(*g).is_none() => bad = Some(err(None, format!("parameter {g} is out of range"))),
            _ => {}
        }
    }
    bad.map_or(Ok(()), Err)
}

fn use_ok(defined: &HashSet<Value>, i: Inst, v: Value) -> Result<(), VerifierError> {
    if defined.contains(&v) { Ok(()) } else { Err(err(Some(i), format!("{v} is used before its definition"))) }
}

fn body(
    k: &Kernel,
    insts: &[Inst],
    placed: &mut [bool],
    scope: &mut Vec<Value>,
    defined: &mut HashSet<Value>,
) -> Result<(), VerifierError> {
    let mark = scope.len();
    for &i in insts {
        if std::mem::replace(&mut placed[i.as_u32() as usize], true) {
            return Err(err(Some(i), "instruction appears twice"));
        }
        let d = &k.insts[i];
        for v in d.kind.operands() {
            use_ok(defined, i, v)?;
        }
        if let InstKind::Assign { var, .. } = d.kind {
            use_ok(defined, i, var)?;
        }
        if matches!(d.kind, InstKind::Const(_)) {
            match (k.ty(d.result.ok_or_else(|| err(Some(i), "constant without result"))?), &d.kind) {
                (Type::Scalar(t), InstKind::Const(ScalarConst::Int(_))) if is_int(*t) => {}
                (Type::Scalar(t), InstKind::Const(ScalarConst::Float(_))) if !is_int(*t) => {}
                (t, _) => return Err(err(Some(i), format!("constant of type `{t}` has the wrong payload"))),
            }
        } else {
            let want = result_type(k, &d.kind).map_err(|e| err(Some(i), e.message))?;
            let have = d.result.map(|r| k.ty(r).clone());
            if want != have {
                return Err(err(Some(i), format!("result type is {have:?}, the typing rules say {want:?}")));
            }
        }
        match &d.kind {
            InstKind::For { var, body: b, .. } => {
                if k.values[*var].def != ValueDef::LoopVar(i) {
                    return Err(err(Some(i), format!("{var} is not this loop's variable")));
                }
                defined.insert(*var);
                scope.push(*var);
                body(k, b, placed, scope, defined)?;
                scope.pop();
                defined.remove(var);
            }
            InstKind::If { then_body, else_body, .. } => {
                body(k, then_body, placed, scope, defined)?;
                body(k, else_body, placed, scope, defined)?;
            }
            InstKind::While { cond_body, cond, body: b } => {
                let m = scope.len();
                // The condition's definitions stay visible in the loop body.
                body_open(k, cond_body, placed, scope, defined)?;
                use_ok(defined, i, *cond)?;
                body(k, b, placed, scope, defined)?;
                for v in scope.drain(m..) {
                    defined.remove(&v);
                }
            }
            _ => {}
        }
        if let Some(r) = d.result {
            defined.insert(r);
            scope.push(r);
        }
    }
    for v in scope.drain(mark..) {
        defined.remove(&v);
    }
    Ok(())
}

/// Like [`body`] but leaves the body's definitions in scope for the caller to close.
fn body_open(
    k: &Kernel,
    insts: &[Inst],
    placed: &mut [bool],
    scope: &mut Vec<Value>,
    defined: &mut HashSet<Value>,
) -> Result<(), VerifierError> {
    // Verify as a normal body, then re-add its top-level results (they were removed on exit).
    body(k, insts, placed, scope, defined)?;
    for &i in insts {
        if let Some(r) = k.insts[i].result {
            defined.insert(r);
            scope.push(r);
        }
    }
    Ok(())
}
