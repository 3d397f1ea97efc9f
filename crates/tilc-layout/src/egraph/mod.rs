//! The e-graph over layout terms (egg): a language of layout terms, an analysis that gives every
//! e-class the [`RegisterLayout`] it denotes, the identities of the algebra as rewrite rules
//! (tables by topic under [`rules`]), and the three questions asked of it:
//!
//! - [`equivalent`]`(a, b)`: do two expressions denote the same layout, up to the rules?
//! - [`canonical_expr`]`(e)`: the smallest expression equal to `e` (fewest nodes, ties broken by
//!   text), the normal form the extractor returns;
//! - [`factor`]`(layout, atom)`: an `outer` with `layout = outer * atom` — the question
//!   instruction selection asks ("is this tile a repetition of the mma / ldmatrix fragment?").
//!   It is posed as the term `(/ layout atom)` and answered by extracting a division-free term
//!   from that term's e-class.
//!
//! **Invariant:** every node of an e-class denotes the same layout. The analysis checks it at
//! every union and records violations in [`LayoutAnalysis::conflicts`], so that a rule that
//! does not preserve the mapping shows up in the tests as a conflict, not as a wrong answer.
//!
//! Term syntax (s-expressions): primitives `spatial[8,4]`, `local[1,2]`, `column_local[2,2]`,
//! `column_spatial[4,8]`, `replicated[4]`, `one` (the rank-0 unit); `(* a b)`, `(/ a b)`
//! (`a = q * b`), `(ldiv a b)` (`a = b * q`), `(permute a [1,0])`, `(reduce a [0])` (keeps the
//! reduced dimensions with extent 1).
//!
//! Typical saturation time (debug build, 2-core machine): see `tests/egraph.rs`, which prints
//! it for every fragment of [`crate::fragments`]; a few milliseconds per query in release,
//! tens of milliseconds in debug.

pub mod rules;

use crate::expr::{LayoutExpr, Primitive, to_expr};
use crate::ops;
use crate::register::{PrimKind, RegisterLayout, compose};
use egg::{
    Analysis, CostFunction, DidMerge, EGraph, Extractor, Id, Language, RecExpr, Runner, define_language,
};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A primitive as an e-graph leaf: `spatial[8,4]`, `replicated[4]`, `one`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Atom(pub Primitive);

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Primitive::Modes(PrimKind::Local, s) if s.is_empty() => write!(f, "one"),
            Primitive::Modes(kind, s) => {
                let s: Vec<String> = s.iter().map(|n| n.to_string()).collect();
                write!(f, "{}[{}]", kind.name(), s.join(","))
            }
            Primitive::Replicate(w) => write!(f, "replicated[{w}]"),
        }
    }
}

fn parse_list(s: &str) -> Option<Vec<usize>> {
    let inner = s.strip_prefix('[')?.strip_suffix(']')?;
    if inner.is_empty() {
        return Some(vec![]);
    }
    inner.split(',').map(|x| x.trim().parse().ok()).collect()
}

impl FromStr for Atom {
    type Err = String;
    fn from_str(s: &str) -> Result<Atom, String> {
        if s == "one" {
            return Ok(Atom(Primitive::Modes(PrimKind::Local, vec![])));
        }
        let open = s.find('[').ok_or_else(|| format!("not a primitive: {s}"))?;
        let (name, list) = s.split_at(open);
        let args = parse_list(list).ok_or_else(|| format!("bad extents: {s}"))?;
        if args.contains(&0) {
            return Err(format!("extent 0 in {s}"));
        }
        let kind = match name {
            "local" => PrimKind::Local,
            "spatial" => PrimKind::Spatial,
            "column_local" => PrimKind::ColumnLocal,
            "column_spatial" => PrimKind::ColumnSpatial,
            "replicated" => {
                return match args[..] {
                    [w] => Ok(Atom(Primitive::Replicate(w))),
                    _ => Err(format!("replicated takes one count: {s}")),
                };
            }
            _ => return Err(format!("unknown primitive {name}")),
        };
        Ok(Atom(Primitive::Modes(kind, args)))
    }
}

/// A list of dimensions: `[1,0]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Axes(pub Vec<usize>);

impl fmt::Display for Axes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s: Vec<String> = self.0.iter().map(|n| n.to_string()).collect();
        write!(f, "[{}]", s.join(","))
    }
}

impl FromStr for Axes {
    type Err = String;
    fn from_str(s: &str) -> Result<Axes, String> {
        parse_list(s).map(Axes).ok_or_else(|| format!("not a list of dimensions: {s}"))
    }
}

define_language! {
    /// Layout terms.
    pub enum LayoutTerm {
        "*" = Compose([Id; 2]),
        "/" = Divide([Id; 2]),
        "ldiv" = LeftDivide([Id; 2]),
        "permute" = Permute([Id; 2]),
        "reduce" = Reduce([Id; 2]),
        Prim(Atom),
        Axes(Axes),
    }
}

/// What the analysis knows of an e-class.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassData {
    /// The layout every node of the class denotes; `None` for dimension lists and for
    /// quotients that do not exist.
    pub layout: Option<RegisterLayout>,
    /// The dimension list, for `Axes` classes.
    pub axes: Option<Vec<usize>>,
}

/// Evaluates every e-class to its layout and checks that unions never join different layouts.
#[derive(Default)]
pub struct LayoutAnalysis {
    /// Every union of classes with different layouts seen so far (a rule that is wrong).
    pub conflicts: Vec<String>,
}

/// The e-graph type used throughout.
pub type LayoutGraph = EGraph<LayoutTerm, LayoutAnalysis>;

impl Analysis<LayoutTerm> for LayoutAnalysis {
    type Data = ClassData;

    fn make(egraph: &mut LayoutGraph, enode: &LayoutTerm, _id: Id) -> ClassData {
        let layout = |id: &Id| egraph[*id].data.layout.clone();
        let axes = |id: &Id| egraph[*id].data.axes.clone();
        let value = match enode {
            LayoutTerm::Prim(a) => Some(a.0.eval()),
            LayoutTerm::Axes(_) => None,
            LayoutTerm::Compose([a, b]) => layout(a).zip(layout(b)).map(|(a, b)| compose(&a, &b)),
            LayoutTerm::Divide([a, b]) => {
                layout(a).zip(layout(b)).and_then(|(a, b)| ops::divide(&a, &b).ok())
            }
            LayoutTerm::LeftDivide([a, b]) => {
                layout(a).zip(layout(b)).and_then(|(a, b)| ops::left_divide(&a, &b).ok())
            }
            LayoutTerm::Permute([a, p]) => {
                layout(a).zip(axes(p)).and_then(|(a, p)| ops::permute(&a, &p).ok())
            }
            LayoutTerm::Reduce([a, d]) => layout(a).zip(axes(d)).and_then(|(a, d)| {
                if d.iter().all(|&x| x < a.rank()) { ops::reduce(&a, &d, true).ok() } else { None }
            }),
        };
        let axes = match enode {
            LayoutTerm::Axes(a) => Some(a.0.clone()),
            _ => None,
        };
        ClassData { layout: value, axes }
    }

    fn merge(&mut self, to: &mut ClassData, from: ClassData) -> DidMerge {
        if *to == from {
            return DidMerge(false, false);
        }
        // Equal data returned above, so any difference here is a rule joining two different
        // things: two layouts, a layout and a missing quotient, or dimension lists.
        let from_has_more = to.layout.is_none() && from.layout.is_some();
        self.conflicts.push(format!("{to:?} joined with {from:?}"));
        if from_has_more {
            *to = from;
            DidMerge(true, false)
        } else {
            DidMerge(false, true)
        }
    }
}

/// Converts an expression to a term.
pub fn to_term(expr: &LayoutExpr) -> RecExpr<LayoutTerm> {
    fn add(expr: &LayoutExpr, out: &mut RecExpr<LayoutTerm>) -> Id {
        match expr {
            LayoutExpr::Prim(p) => out.add(LayoutTerm::Prim(Atom(p.clone()))),
            LayoutExpr::AutoLocalSpatial { .. } => {
                let product = to_expr(&expr.eval()).expect("auto_local_spatial is a product of primitives");
                add(&product, out)
            }
            LayoutExpr::Compose(a, b) => {
                let a = add(a, out);
                let b = add(b, out);
                out.add(LayoutTerm::Compose([a, b]))
            }
        }
    }
    let mut out = RecExpr::default();
    add(expr, &mut out);
    out
}

/// Converts a term made of primitives and products back to an expression.
pub fn from_term(term: &RecExpr<LayoutTerm>) -> Option<LayoutExpr> {
    fn go(term: &RecExpr<LayoutTerm>, id: Id) -> Option<LayoutExpr> {
        match &term[id] {
            LayoutTerm::Prim(a) => Some(LayoutExpr::Prim(a.0.clone())),
            LayoutTerm::Compose([a, b]) => Some(LayoutExpr::compose(go(term, *a)?, go(term, *b)?)),
            _ => None,
        }
    }
    let root = Id::from(term.as_ref().len().checked_sub(1)?);
    go(term, root)
}

/// Limits of one saturation run (generous: the library's layouts saturate far below them).
pub fn runner() -> Runner<LayoutTerm, LayoutAnalysis> {
    Runner::default().with_iter_limit(40).with_node_limit(50_000).with_time_limit(Duration::from_secs(5))
}

/// Extraction cost: (operations other than `*` and primitives, node count, text). The text makes
/// the choice among equally small terms deterministic.
pub struct CanonicalCost;

impl CostFunction<LayoutTerm> for CanonicalCost {
    type Cost = (usize, usize, String);
    fn cost<C>(&mut self, enode: &LayoutTerm, mut costs: C) -> Self::Cost
    where
        C: FnMut(Id) -> Self::Cost,
    {
        let bad = usize::from(!matches!(enode, LayoutTerm::Compose(_) | LayoutTerm::Prim(_)));
        let mut total = (bad, 1, String::new());
        let mut texts = Vec::new();
        for &c in enode.children() {
            let (b, n, t) = costs(c);
            total.0 += b;
            total.1 += n;
            texts.push(t);
        }
        total.2 = if texts.is_empty() {
            enode.to_string()
        } else {
            format!("({} {})", enode, texts.join(" "))
        };
        total
    }
}

/// The result of saturating some terms.
pub struct Saturated {
    /// The runner, with the e-graph, the roots (in the order given) and the iteration report.
    pub runner: Runner<LayoutTerm, LayoutAnalysis>,
}

impl Saturated {
    /// Saturates `terms` under all [`rules::rules`].
    pub fn run(terms: &[RecExpr<LayoutTerm>]) -> Saturated {
        let mut runner = runner();
        for t in terms {
            runner = runner.with_expr(t);
        }
        Saturated { runner: runner.run(&rules::rules()) }
    }
    /// The e-graph.
    pub fn egraph(&self) -> &LayoutGraph {
        &self.runner.egraph
    }
    /// The e-class of the `k`-th term.
    pub fn root(&self, k: usize) -> Id {
        self.runner.egraph.find(self.runner.roots[k])
    }
    /// The smallest division-free expression in the `k`-th term's class, if any.
    pub fn best_expr(&self, k: usize) -> Option<LayoutExpr> {
        let extractor = Extractor::new(&self.runner.egraph, CanonicalCost);
        let ((bad, _, _), term) = extractor.find_best(self.root(k));
        if bad > 0 { None } else { from_term(&term) }
    }
    /// Total time spent in the runner.
    pub fn time(&self) -> Duration {
        let secs: f64 = self.runner.iterations.iter().map(|i| i.total_time).sum();
        Duration::from_secs_f64(secs)
    }
    /// Whether the run ended because no rule had anything left to add.
    pub fn saturated(&self) -> bool {
        matches!(self.runner.stop_reason, Some(egg::StopReason::Saturated))
    }
}

/// Whether `a` and `b` are equal up to the rules.
pub fn equivalent(a: &LayoutExpr, b: &LayoutExpr) -> bool {
    let s = Saturated::run(&[to_term(a), to_term(b)]);
    s.root(0) == s.root(1)
}

/// The smallest expression equal to `e` up to the rules (the e-graph's normal form).
pub fn canonical_expr(e: &LayoutExpr) -> LayoutExpr {
    Saturated::run(&[to_term(e)]).best_expr(0).unwrap_or_else(|| e.clone())
}

/// The quotient term `(/ layout atom)`.
fn quotient_term(layout: &LayoutExpr, atom: &LayoutExpr) -> RecExpr<LayoutTerm> {
    let mut t = to_term(layout);
    let l = Id::from(t.as_ref().len() - 1);
    let offset = t.as_ref().len();
    for node in to_term(atom).as_ref() {
        t.add(node.clone().map_children(|c| Id::from(usize::from(c) + offset)));
    }
    let a = Id::from(t.as_ref().len() - 1);
    t.add(LayoutTerm::Divide([l, a]));
    t
}

/// An `outer` with `layout = outer * atom` up to the rules (instruction selection's question),
/// returned as the smallest such expression; `None` when the rules find none.
pub fn factor(layout: &LayoutExpr, atom: &LayoutExpr) -> Option<LayoutExpr> {
    let s = Saturated::run(&[quotient_term(layout, atom)]);
    let outer = s.best_expr(0)?;
    // The analysis already guarantees this; checking costs nothing and guards the extractor.
    (compose(&outer.eval(), &atom.eval()) == layout.eval()).then_some(outer)
}

/// [`factor`] for a layout value (written as a product of primitives first, when it is one).
pub fn factor_layout(layout: &RegisterLayout, atom: &LayoutExpr) -> Option<LayoutExpr> {
    factor(&to_expr(layout)?, atom)
}
