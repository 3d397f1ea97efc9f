//! The rewrite rules, one table per topic ([`compose`], [`divide`], [`permute`], [`reduce`]),
//! each row named, and the named predicates and appliers they use.
//!
//! Rule-writing rules:
//! - a rule states one identity of the algebra (reference §3.6) and is named after it;
//! - a condition is a named predicate over the analysis data (`spatial_local_disjoint`), never
//!   an inline closure;
//! - an applier that computes a primitive (merging, dividing, permuting, reducing primitives)
//!   checks its candidate against the analysis' layout before adding it, so it can only add
//!   true equalities;
//! - every rule has a firing test in `tests/rules.rs` (start ⇒ goal with that rule alone) and
//!   is run alone on random terms by the property test that checks the analysis sees no
//!   conflict.

pub mod compose;
pub mod divide;
pub mod permute;
pub mod reduce;

use super::{Atom, LayoutAnalysis, LayoutGraph, LayoutTerm, to_term};
use crate::expr::{Primitive, to_expr};
use crate::ops;
use crate::register::{PrimKind, RegisterLayout, compose as product};
use egg::{Applier, Id, PatternAst, Rewrite, Subst, Symbol, Var};

/// A rewrite of the layout language.
pub type LayoutRewrite = Rewrite<LayoutTerm, LayoutAnalysis>;

/// Every rule, all topics.
pub fn rules() -> Vec<LayoutRewrite> {
    let mut v = compose::rules();
    v.extend(divide::rules());
    v.extend(permute::rules());
    v.extend(reduce::rules());
    v
}

fn var(name: &str) -> Var {
    name.parse().expect("pattern variable names in the rule tables are well-formed")
}

fn layout_of(egraph: &LayoutGraph, subst: &Subst, v: Var) -> Option<RegisterLayout> {
    egraph[subst[v]].data.layout.clone()
}

fn prims_of(egraph: &LayoutGraph, id: Id) -> Vec<Primitive> {
    egraph[id]
        .nodes
        .iter()
        .filter_map(|n| match n {
            LayoutTerm::Prim(a) => Some(a.0.clone()),
            _ => None,
        })
        .collect()
}

/// `a` is purely spatial, `b` purely local, and no dimension is non-trivial in both: then
/// `a * b = b * a` (reference §3.6.3).
pub fn spatial_local_disjoint(a: &str, b: &str) -> impl Fn(&mut LayoutGraph, Id, &Subst) -> bool + use<> {
    let (a, b) = (var(a), var(b));
    move |egraph, _, subst| {
        let (Some(la), Some(lb)) = (layout_of(egraph, subst, a), layout_of(egraph, subst, b)) else {
            return false;
        };
        let rank = la.rank().max(lb.rank());
        let (pa, pb) = (la.padded_to(rank), lb.padded_to(rank));
        la.is_purely_spatial()
            && lb.is_purely_local()
            && (0..rank).all(|d| pa.shape()[d] == 1 || pb.shape()[d] == 1)
            && la.num_threads() > 1
            && lb.local_size() > 1
    }
}

/// `p` has one element and one thread and is of rank at most `a`'s: a unit for `a`.
pub fn is_unit_for(p: &str, a: &str) -> impl Fn(&mut LayoutGraph, Id, &Subst) -> bool + use<> {
    let (p, a) = (var(p), var(a));
    move |egraph, _, subst| match (layout_of(egraph, subst, p), layout_of(egraph, subst, a)) {
        (Some(lp), Some(la)) => lp.num_elements() == 1 && lp.num_threads() == 1 && lp.rank() <= la.rank(),
        _ => false,
    }
}

/// `rank(a) >= rank(b)` (a quotient has the dividend's rank, so cancelling needs this).
pub fn rank_at_least(a: &str, b: &str) -> impl Fn(&mut LayoutGraph, Id, &Subst) -> bool + use<> {
    let (a, b) = (var(a), var(b));
    move |egraph, _, subst| match (layout_of(egraph, subst, a), layout_of(egraph, subst, b)) {
        (Some(la), Some(lb)) => la.rank() >= lb.rank(),
        _ => false,
    }
}

/// `b = q * c` for some `q` (and `c`'s rank is at most `b`'s).
pub fn divisible(b: &str, c: &str) -> impl Fn(&mut LayoutGraph, Id, &Subst) -> bool + use<> {
    let (b, c) = (var(b), var(c));
    move |egraph, _, subst| match (layout_of(egraph, subst, b), layout_of(egraph, subst, c)) {
        (Some(lb), Some(lc)) => ops::divide(&lb, &lc).is_ok(),
        _ => false,
    }
}

/// `a = c * q` for some `q`.
pub fn left_divisible(a: &str, c: &str) -> impl Fn(&mut LayoutGraph, Id, &Subst) -> bool + use<> {
    let (a, c) = (var(a), var(c));
    move |egraph, _, subst| match (layout_of(egraph, subst, a), layout_of(egraph, subst, c)) {
        (Some(la), Some(lc)) => ops::left_divide(&la, &lc).is_ok(),
        _ => false,
    }
}

/// `a` and `b` have rank `len(axes)` (so an axis operation means the same on both).
pub fn ranks_fit(a: &str, b: &str, axes: &str) -> impl Fn(&mut LayoutGraph, Id, &Subst) -> bool + use<> {
    let (a, b, axes) = (var(a), var(b), var(axes));
    move |egraph, _, subst| {
        let n = egraph[subst[axes]].data.axes.as_ref().map(Vec::len);
        match (layout_of(egraph, subst, a), layout_of(egraph, subst, b), n) {
            (Some(la), Some(lb), Some(n)) => la.rank() == lb.rank() && la.rank() == n,
            _ => false,
        }
    }
}

/// `a` and `b` have the same rank (so reducing the same dimensions means the same on both).
pub fn same_rank(a: &str, b: &str) -> impl Fn(&mut LayoutGraph, Id, &Subst) -> bool + use<> {
    let (a, b) = (var(a), var(b));
    move |egraph, _, subst| match (layout_of(egraph, subst, a), layout_of(egraph, subst, b)) {
        (Some(la), Some(lb)) => la.rank() == lb.rank(),
        _ => false,
    }
}

/// `axes` is the identity permutation.
pub fn is_identity_permutation(axes: &str) -> impl Fn(&mut LayoutGraph, Id, &Subst) -> bool + use<> {
    let axes = var(axes);
    move |egraph, _, subst| {
        egraph[subst[axes]].data.axes.as_ref().is_some_and(|p| p.iter().enumerate().all(|(k, &d)| k == d))
    }
}

/// Reducing `axes` of `a` removes nothing (every such dimension has extent 1).
pub fn reduces_nothing(a: &str, axes: &str) -> impl Fn(&mut LayoutGraph, Id, &Subst) -> bool + use<> {
    let (a, axes) = (var(a), var(axes));
    move |egraph, _, subst| {
        let dims = egraph[subst[axes]].data.axes.clone();
        match (layout_of(egraph, subst, a), dims) {
            (Some(la), Some(d)) => d.iter().all(|&x| x < la.rank() && la.shape()[x] == 1),
            _ => false,
        }
    }
}

/// Adds `candidate` and unions it with `eclass` when the analysis agrees they are equal.
fn add_checked(egraph: &mut LayoutGraph, eclass: Id, candidate: &crate::expr::LayoutExpr, rule: Symbol) -> Vec<Id> {
    let want = egraph[eclass].data.layout.clone();
    if want.as_ref() != Some(&candidate.eval()) {
        return vec![];
    }
    let id = egraph.add_expr(&to_term(candidate));
    if egraph.union_trusted(eclass, id, rule) { vec![id] } else { vec![] }
}

fn prim_candidates(spatial: bool, shape: &[usize]) -> [Primitive; 2] {
    [
        Primitive::Modes(PrimKind::with(spatial, false), shape.to_vec()),
        Primitive::Modes(PrimKind::with(spatial, true), shape.to_vec()),
    ]
}

fn is_spatial(p: &Primitive) -> bool {
    match p {
        Primitive::Modes(k, _) => k.is_spatial(),
        Primitive::Replicate(_) => true,
    }
}

fn padded(shape: &[usize], rank: usize) -> Vec<usize> {
    let mut v = vec![1; rank - shape.len()];
    v.extend_from_slice(shape);
    v
}

/// `P(s) * P(t) = P(s ⊙ t)` for primitives of one kind when the product is that primitive (row-
/// or column-major); `replicated(a) * replicated(b) = replicated(ab)`.
pub struct MergePrims {
    /// Left factor.
    pub a: &'static str,
    /// Right factor.
    pub b: &'static str,
}

/// `P(s) / P(t)` (or `ldiv`) as one primitive of the dividend's kind, when there is one.
pub struct DividePrims {
    /// Dividend.
    pub a: &'static str,
    /// Divisor.
    pub b: &'static str,
    /// `ldiv` (`a = b * q`) instead of `/` (`a = q * b`).
    pub left: bool,
}

/// An axis operation (`permute` or `reduce`) applied to a primitive, written as a product of
/// primitives (the operation's definition on the leaves).
pub struct AxisOpOnPrim {
    /// The operand.
    pub a: &'static str,
}

impl Applier<LayoutTerm, LayoutAnalysis> for MergePrims {
    fn apply_one(&self, egraph: &mut LayoutGraph, eclass: Id, subst: &Subst, _: Option<&PatternAst<LayoutTerm>>, rule: Symbol) -> Vec<Id> {
        let (pa, pb) = (prims_of(egraph, subst[var(self.a)]), prims_of(egraph, subst[var(self.b)]));
        let mut added = vec![];
        for p in &pa {
            for q in &pb {
                let candidates: Vec<Primitive> = match (p, q) {
                    (Primitive::Replicate(x), Primitive::Replicate(y)) => vec![Primitive::Replicate(x * y)],
                    (Primitive::Modes(..), Primitive::Modes(..)) if is_spatial(p) == is_spatial(q) => {
                        let rank = p.rank().max(q.rank());
                        let (Primitive::Modes(_, s), Primitive::Modes(_, t)) = (p, q) else { unreachable!() };
                        let (s, t) = (padded(s, rank), padded(t, rank));
                        let st: Vec<usize> = s.iter().zip(&t).map(|(x, y)| x * y).collect();
                        prim_candidates(is_spatial(p), &st).to_vec()
                    }
                    _ => vec![],
                };
                if let Some(c) = candidates.iter().find(|c| c.eval() == product(&p.eval(), &q.eval())) {
                    added.extend(add_checked(egraph, eclass, &crate::expr::LayoutExpr::Prim(c.clone()), rule));
                }
            }
        }
        added
    }
}

impl Applier<LayoutTerm, LayoutAnalysis> for DividePrims {
    fn apply_one(&self, egraph: &mut LayoutGraph, eclass: Id, subst: &Subst, _: Option<&PatternAst<LayoutTerm>>, rule: Symbol) -> Vec<Id> {
        let (pa, pb) = (prims_of(egraph, subst[var(self.a)]), prims_of(egraph, subst[var(self.b)]));
        let mut added = vec![];
        for p in &pa {
            for q in &pb {
                let candidates: Vec<Primitive> = match (p, q) {
                    (Primitive::Replicate(x), Primitive::Replicate(y)) if x % y == 0 => {
                        vec![Primitive::Replicate(x / y)]
                    }
                    (Primitive::Modes(_, s), Primitive::Modes(_, t)) if t.len() <= s.len() => {
                        let t = padded(t, s.len());
                        if s.iter().zip(&t).any(|(x, y)| x % y != 0) {
                            continue;
                        }
                        let quotient: Vec<usize> = s.iter().zip(&t).map(|(x, y)| x / y).collect();
                        prim_candidates(is_spatial(p), &quotient).to_vec()
                    }
                    _ => vec![],
                };
                let (lp, lq) = (p.eval(), q.eval());
                let fits = |c: &Primitive| {
                    let back = if self.left { product(&lq, &c.eval()) } else { product(&c.eval(), &lq) };
                    back == lp
                };
                if let Some(c) = candidates.iter().find(|c| fits(c)) {
                    added.extend(add_checked(egraph, eclass, &crate::expr::LayoutExpr::Prim(c.clone()), rule));
                }
            }
        }
        added
    }
}

/// A primitive of several non-trivial dimensions written as the product of its one-dimensional
/// factors in its own order (`column_local(2, 2) = local(1, 2) * local(2, 1)`): the inverse of
/// [`MergePrims`], applied to divisors so that a division can cancel one factor at a time.
pub struct SplitPrim {
    /// The primitive's class.
    pub a: &'static str,
}

impl Applier<LayoutTerm, LayoutAnalysis> for SplitPrim {
    fn apply_one(&self, egraph: &mut LayoutGraph, _: Id, subst: &Subst, _: Option<&PatternAst<LayoutTerm>>, rule: Symbol) -> Vec<Id> {
        let class = subst[var(self.a)];
        let mut added = vec![];
        for p in prims_of(egraph, class) {
            let Primitive::Modes(kind, shape) = &p else { continue };
            let mut dims: Vec<usize> = (0..shape.len()).filter(|&d| shape[d] > 1).collect();
            if dims.len() < 2 {
                continue;
            }
            if kind.is_column() {
                dims.reverse();
            }
            let factors = dims.iter().map(|&d| {
                let mut s = vec![1; shape.len()];
                s[d] = shape[d];
                crate::expr::LayoutExpr::Prim(Primitive::Modes(PrimKind::with(kind.is_spatial(), false), s))
            });
            added.extend(add_checked(egraph, class, &crate::expr::LayoutExpr::product(factors), rule));
        }
        added
    }
}

impl Applier<LayoutTerm, LayoutAnalysis> for AxisOpOnPrim {
    fn apply_one(&self, egraph: &mut LayoutGraph, eclass: Id, subst: &Subst, _: Option<&PatternAst<LayoutTerm>>, rule: Symbol) -> Vec<Id> {
        // The operand must be a primitive; the class's own layout is the operation's result.
        if prims_of(egraph, subst[var(self.a)]).is_empty() {
            return vec![];
        }
        let Some(result) = egraph[eclass].data.layout.clone() else { return vec![] };
        match to_expr(&result) {
            Some(e) => add_checked(egraph, eclass, &e, rule),
            None => vec![],
        }
    }
}

/// The unit primitive `one` as a term leaf (used by tests).
pub fn one() -> Atom {
    Atom(Primitive::Modes(PrimKind::Local, vec![]))
}
