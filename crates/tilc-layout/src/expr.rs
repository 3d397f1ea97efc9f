//! Layout *expressions*: the text syntax shared by `tilc layout EXPR` and `@ layout` annotations
//! in `.tl` files, its parser ([`parse_layout_expr`]), the small tree it produces
//! ([`LayoutExpr`]), the tree's evaluation to a [`RegisterLayout`], and the way back
//! ([`to_expr`]) for layouts that are products of primitives.
//!
//! Grammar (whitespace is free):
//! ```text
//! expr  := chain ('*' chain)*
//! chain := atom ('.' call)*            a.b(..) means a * b(..)
//! atom  := call | '(' expr ')'
//! call  := NAME '(' [INT (',' INT)*] ')'
//! ```
//! Names: `local`, `spatial`, `column_local`, `column_spatial` (extents ≥ 1),
//! `replicated(w)` (rank 0: `w` threads hold the same elements), `replicated(w, n1, ..)`
//! (= `replicated(w).local(n1, ..)`, Tilus' `replicated(n1.., num_workers=w)`),
//! `auto_local_spatial(threads, n1, ..)`.
//!
//! This module knows no spans of the `.tl` front end: errors carry byte offsets into the string
//! parsed, which the caller shifts into its own file.

use crate::register::{self, PrimKind, RegisterLayout, SpatialMode};
use std::fmt;
use std::ops::Range;

/// A primitive layout: the leaves of expressions and of e-graph terms.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Primitive {
    /// `local`, `spatial`, `column_local` or `column_spatial` of a shape.
    Modes(PrimKind, Vec<usize>),
    /// `replicated(w)`: rank 0, `w` threads, one slot.
    Replicate(usize),
}

impl Primitive {
    /// The layout it denotes.
    pub fn eval(&self) -> RegisterLayout {
        match self {
            Primitive::Modes(kind, shape) => RegisterLayout::primitive(*kind, shape),
            Primitive::Replicate(w) => RegisterLayout::replica(*w),
        }
    }
    /// Rank of the tile.
    pub fn rank(&self) -> usize {
        match self {
            Primitive::Modes(_, shape) => shape.len(),
            Primitive::Replicate(_) => 0,
        }
    }
}

impl fmt::Display for Primitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Primitive::Modes(kind, shape) => {
                let s: Vec<String> = shape.iter().map(|n| n.to_string()).collect();
                write!(f, "{}({})", kind.name(), s.join(", "))
            }
            Primitive::Replicate(w) => write!(f, "replicated({w})"),
        }
    }
}

/// A layout expression: primitives combined by the product.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LayoutExpr {
    /// A primitive.
    Prim(Primitive),
    /// `auto_local_spatial(threads, shape..)`, kept as written.
    AutoLocalSpatial {
        /// Number of threads to spread.
        threads: usize,
        /// Tile shape.
        shape: Vec<usize>,
    },
    /// `a * b` (also written `a.b`).
    Compose(Box<LayoutExpr>, Box<LayoutExpr>),
}

impl LayoutExpr {
    /// Builds a call `name(args..)` of the text syntax; this is the constructor a front end that
    /// parses layout expressions itself uses. The error is a message about the call.
    pub fn call(name: &str, args: &[i64]) -> Result<LayoutExpr, String> {
        let mut sizes = Vec::with_capacity(args.len());
        for &a in args {
            if a < 1 {
                return Err(format!("`{name}` takes extents of at least 1, found {a}"));
            }
            sizes.push(usize::try_from(a).map_err(|_| format!("{a} is too large"))?);
        }
        let modes = |kind| Ok(LayoutExpr::Prim(Primitive::Modes(kind, sizes.clone())));
        match name {
            "local" => modes(PrimKind::Local),
            "spatial" => modes(PrimKind::Spatial),
            "column_local" => modes(PrimKind::ColumnLocal),
            "column_spatial" => modes(PrimKind::ColumnSpatial),
            "replicated" => match sizes.split_first() {
                None => Err("`replicated` needs the number of threads: replicated(w) or replicated(w, n1, ..)".into()),
                Some((&w, [])) => Ok(LayoutExpr::Prim(Primitive::Replicate(w))),
                Some((&w, shape)) => Ok(LayoutExpr::compose(
                    LayoutExpr::Prim(Primitive::Replicate(w)),
                    LayoutExpr::Prim(Primitive::Modes(PrimKind::Local, shape.to_vec())),
                )),
            },
            "auto_local_spatial" => match sizes.split_first() {
                None => Err("`auto_local_spatial` needs the number of threads and a shape".into()),
                Some((&threads, shape)) => Ok(LayoutExpr::AutoLocalSpatial { threads, shape: shape.to_vec() }),
            },
            _ => Err(format!(
                "unknown layout `{name}`; expected one of local, spatial, column_local, column_spatial, replicated, auto_local_spatial"
            )),
        }
    }

    /// `a * b`.
    pub fn compose(a: LayoutExpr, b: LayoutExpr) -> LayoutExpr {
        LayoutExpr::Compose(Box::new(a), Box::new(b))
    }

    /// The product of `factors` (left to right); `local()` (the unit) when empty.
    pub fn product(factors: impl IntoIterator<Item = LayoutExpr>) -> LayoutExpr {
        factors
            .into_iter()
            .reduce(LayoutExpr::compose)
            .unwrap_or(LayoutExpr::Prim(Primitive::Modes(PrimKind::Local, vec![])))
    }

    /// The layout this expression denotes.
    pub fn eval(&self) -> RegisterLayout {
        match self {
            LayoutExpr::Prim(p) => p.eval(),
            LayoutExpr::AutoLocalSpatial { threads, shape } => register::auto_local_spatial(*threads, shape),
            LayoutExpr::Compose(a, b) => register::compose(&a.eval(), &b.eval()),
        }
    }

    /// The factors of the product, left to right (a product is associative, so the tree's
    /// grouping carries no meaning).
    pub fn factors(&self) -> Vec<&LayoutExpr> {
        match self {
            LayoutExpr::Compose(a, b) => {
                let mut v = a.factors();
                v.extend(b.factors());
                v
            }
            other => vec![other],
        }
    }
}

impl fmt::Display for LayoutExpr {
    /// The chained text form, `column_local(2, 2).spatial(8, 4).local(1, 2)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, factor) in self.factors().into_iter().enumerate() {
            if k > 0 {
                write!(f, ".")?;
            }
            match factor {
                LayoutExpr::Prim(p) => write!(f, "{p}")?,
                LayoutExpr::AutoLocalSpatial { threads, shape } => {
                    let s: Vec<String> = shape.iter().map(|n| n.to_string()).collect();
                    write!(f, "auto_local_spatial({threads}, {})", s.join(", "))?
                }
                LayoutExpr::Compose(..) => unreachable!("factors are never products"),
            }
        }
        Ok(())
    }
}

/// A syntax error in a layout expression, at byte offsets `span` of the parsed string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayoutParseError {
    /// Byte range of the offending text (empty at the end of input).
    pub span: Range<usize>,
    /// What was expected or is wrong.
    pub message: String,
}

impl fmt::Display for LayoutParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte {})", self.message, self.span.start)
    }
}

impl std::error::Error for LayoutParseError {}

/// Parses the text syntax (see the module docs).
pub fn parse_layout_expr(text: &str) -> Result<LayoutExpr, LayoutParseError> {
    let mut p = Parser { text, pos: 0 };
    let e = p.expr()?;
    p.skip_ws();
    if p.pos < text.len() {
        return Err(p.error_here("expected `*`, `.` or the end of the layout"));
    }
    Ok(e)
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_whitespace()) {
            self.pos += self.peek().map_or(0, char::len_utf8);
        }
    }
    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }
    fn error_here(&self, message: &str) -> LayoutParseError {
        let len = self.peek().map_or(0, char::len_utf8);
        let found = match self.peek() {
            Some(c) => format!("found `{c}`"),
            None => "found the end".into(),
        };
        LayoutParseError { span: self.pos..self.pos + len, message: format!("{message}, {found}") }
    }
    fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }
    fn expr(&mut self) -> Result<LayoutExpr, LayoutParseError> {
        let mut e = self.chain()?;
        while self.eat('*') {
            let rhs = self.chain()?;
            e = LayoutExpr::compose(e, rhs);
        }
        Ok(e)
    }
    fn chain(&mut self) -> Result<LayoutExpr, LayoutParseError> {
        let mut e = if self.eat('(') {
            let inner = self.expr()?;
            if !self.eat(')') {
                return Err(self.error_here("expected `)`"));
            }
            inner
        } else {
            self.call()?
        };
        while self.eat('.') {
            let rhs = self.call()?;
            e = LayoutExpr::compose(e, rhs);
        }
        Ok(e)
    }
    fn call(&mut self) -> Result<LayoutExpr, LayoutParseError> {
        self.skip_ws();
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(self.error_here("expected a layout such as `spatial(8, 4)`"));
        }
        let name = &self.text[start..self.pos];
        if !self.eat('(') {
            return Err(self.error_here(&format!("expected `(` after `{name}`")));
        }
        let mut args = Vec::new();
        self.skip_ws();
        if !self.eat(')') {
            loop {
                self.skip_ws();
                let at = self.pos;
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.pos += 1;
                }
                if at == self.pos {
                    return Err(self.error_here("expected an integer"));
                }
                let value: i64 = self.text[at..self.pos].parse().map_err(|_| LayoutParseError {
                    span: at..self.pos,
                    message: "integer too large".into(),
                })?;
                args.push(value);
                if self.eat(')') {
                    break;
                }
                if !self.eat(',') {
                    return Err(self.error_here("expected `,` or `)`"));
                }
            }
        }
        LayoutExpr::call(name, &args).map_err(|message| LayoutParseError { span: start..self.pos, message })
    }
}

/// A product of primitives equal to `layout`, when there is one (`None` for layouts such as
/// `reshape(column_spatial(2, 3), [6])` whose modes run against their dimension's order).
///
/// Every mode becomes a one-dimensional factor placed in an order that respects the three
/// chains it must respect (the modes of each dimension, major first; the spatial list; the local
/// list), then neighbouring factors of one kind are merged into row- or column-major primitives.
pub fn to_expr(layout: &RegisterLayout) -> Option<LayoutExpr> {
    #[derive(Clone)]
    enum Item {
        Mode(usize),
        Replica(usize),
    }
    let rank = layout.rank();
    let n = layout.mode_shape().len();
    let spatial: Vec<Item> = layout
        .spatial_modes()
        .iter()
        .map(|s| match *s {
            SpatialMode::Mode(m) => Item::Mode(m),
            SpatialMode::Replica(k) => Item::Replica(k),
        })
        .collect();
    let local: Vec<usize> = layout.local_modes().to_vec();
    let (mut sp, mut lo) = (0, 0);
    let mut emitted = vec![false; n];
    let ready = |m: usize, emitted: &[bool]| -> bool {
        (0..m).all(|k| layout.mode_dims()[k] != layout.mode_dims()[m] || emitted[k])
    };
    // (spatial?, dims in order, sizes per dim) or a replication.
    enum Factor {
        Modes { spatial: bool, dims: Vec<usize>, sizes: Vec<usize> },
        Replica(usize),
    }
    let mut factors: Vec<Factor> = Vec::new();
    let mut last_spatial = true;
    while sp < spatial.len() || lo < local.len() {
        let sp_ready = match spatial.get(sp) {
            Some(Item::Mode(m)) => ready(*m, &emitted),
            Some(Item::Replica(_)) => true,
            None => false,
        };
        let lo_ready = local.get(lo).is_some_and(|&m| ready(m, &emitted));
        let take_spatial = match (sp_ready, lo_ready) {
            (false, false) => return None,
            (true, false) => true,
            (false, true) => false,
            (true, true) => last_spatial,
        };
        let item = if take_spatial {
            sp += 1;
            spatial[sp - 1].clone()
        } else {
            lo += 1;
            Item::Mode(local[lo - 1])
        };
        last_spatial = take_spatial;
        match item {
            Item::Replica(k) => factors.push(Factor::Replica(k)),
            Item::Mode(m) => {
                emitted[m] = true;
                let d = layout.mode_dims()[m];
                let size = layout.mode_shape()[m];
                // Merge into the previous factor when it is of the same kind and the dimension
                // order stays monotone.
                if let Some(Factor::Modes { spatial: s, dims, sizes }) = factors.last_mut() {
                    let monotone = |v: &[usize]| {
                        v.windows(2).all(|w| w[0] < w[1]) || v.windows(2).all(|w| w[0] > w[1])
                    };
                    let mut with = dims.clone();
                    with.push(d);
                    if *s == take_spatial && !dims.contains(&d) && monotone(&with) {
                        dims.push(d);
                        sizes.push(size);
                        continue;
                    }
                }
                factors.push(Factor::Modes { spatial: take_spatial, dims: vec![d], sizes: vec![size] });
            }
        }
    }
    let mut exprs: Vec<LayoutExpr> = factors
        .into_iter()
        .map(|f| match f {
            Factor::Replica(k) => LayoutExpr::Prim(Primitive::Replicate(k)),
            Factor::Modes { spatial, dims, sizes } => {
                let column = dims.len() > 1 && dims[0] > dims[1];
                let mut shape = vec![1; rank];
                for (d, s) in dims.iter().zip(&sizes) {
                    shape[*d] = *s;
                }
                LayoutExpr::Prim(Primitive::Modes(PrimKind::with(spatial, column), shape))
            }
        })
        .collect();
    let has_rank = exprs.iter().any(|e| matches!(e, LayoutExpr::Prim(Primitive::Modes(..))));
    if !has_rank && (rank > 0 || exprs.is_empty()) {
        exprs.push(LayoutExpr::Prim(Primitive::Modes(PrimKind::Local, vec![1; rank])));
    }
    Some(LayoutExpr::product(exprs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chaining_and_star_mean_the_same_product() {
        let a = parse_layout_expr("local(2,1).spatial(8,4)").unwrap();
        let b = parse_layout_expr("local(2, 1) * spatial(8, 4)").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "local(2, 1).spatial(8, 4)");
        let c = parse_layout_expr("(local(2,1) * spatial(8,4)).local(1, 2)").unwrap();
        assert_eq!(c.eval().shape(), &[16, 8]);
    }

    #[test]
    fn errors_point_at_the_offending_bytes() {
        let e = parse_layout_expr("spatial(8, 4).lokal(2)").unwrap_err();
        assert_eq!(e.span, 14..22);
        assert!(e.message.contains("unknown layout `lokal`"), "{}", e.message);
        let e = parse_layout_expr("spatial(8, 0)").unwrap_err();
        assert_eq!(e.span, 0..13);
        let e = parse_layout_expr("spatial(8 4)").unwrap_err();
        assert_eq!(e.span, 10..11);
        let e = parse_layout_expr("spatial(8, 4) local(2)").unwrap_err();
        assert_eq!(e.span, 14..15);
        let e = parse_layout_expr("spatial(8,").unwrap_err();
        assert_eq!(e.span, 10..10);
    }

    #[test]
    fn to_expr_writes_fragments_back_as_products() {
        for text in [
            "column_local(2, 2).spatial(8, 4).local(1, 2)",
            "local(2, 1).column_spatial(4, 8).local(2, 1)",
            "replicated(4).local(2, 2)",
            "spatial(4, 8)",
        ] {
            let l = parse_layout_expr(text).unwrap().eval();
            let back = to_expr(&l).unwrap();
            assert_eq!(back.eval(), l, "{text} came back as {back}");
        }
        let l = parse_layout_expr("column_local(2, 2).spatial(8, 4).local(1, 2)").unwrap().eval();
        assert_eq!(to_expr(&l).unwrap().to_string(), "column_local(2, 2).spatial(8, 4).local(1, 2)");
    }
}
