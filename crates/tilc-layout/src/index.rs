//! Symbolic index maps: the layout's two maps written as small integer expressions
//! ([`IndexExpr`]) over the thread index, the slot index, the logical indices and the
//! replication digits, so that a lowering can emit them as code instead of tables.
//!
//! The expressions are built already simplified (no `x / 1`, no `x mod n` when `x < n` is known
//! from the ranges), so that what a lowering emits reads like what a person would write.

use crate::register::{RegisterLayout, SpatialMode};
use std::fmt;

/// A variable of an index expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IndexVar {
    /// The thread index within the layout's threads, in `[0, num_threads)`.
    Thread,
    /// The slot index within a thread's registers, in `[0, local_size)`.
    Slot,
    /// The logical index along dimension `d`.
    Axis(usize),
    /// The `j`-th replication digit (which copy), used by [`RegisterLayout::thread_expr`].
    Replica(usize),
}

/// A non-negative integer expression.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum IndexExpr {
    /// A variable.
    Var(IndexVar),
    /// A constant.
    Const(u64),
    /// Sum.
    Add(Box<IndexExpr>, Box<IndexExpr>),
    /// Product.
    Mul(Box<IndexExpr>, Box<IndexExpr>),
    /// Floor division.
    Div(Box<IndexExpr>, Box<IndexExpr>),
    /// Remainder.
    Mod(Box<IndexExpr>, Box<IndexExpr>),
}

impl IndexExpr {
    /// Evaluates with `env` giving each variable's value. Division by zero yields 0 (the
    /// builders never produce it).
    pub fn eval(&self, env: &dyn Fn(IndexVar) -> u64) -> u64 {
        match self {
            IndexExpr::Var(v) => env(*v),
            IndexExpr::Const(c) => *c,
            IndexExpr::Add(a, b) => a.eval(env) + b.eval(env),
            IndexExpr::Mul(a, b) => a.eval(env) * b.eval(env),
            IndexExpr::Div(a, b) => a.eval(env).checked_div(b.eval(env)).unwrap_or(0),
            IndexExpr::Mod(a, b) => a.eval(env).checked_rem(b.eval(env)).unwrap_or(0),
        }
    }

    fn add(a: IndexExpr, b: IndexExpr) -> IndexExpr {
        match (&a, &b) {
            (IndexExpr::Const(0), _) => b,
            (_, IndexExpr::Const(0)) => a,
            (IndexExpr::Const(x), IndexExpr::Const(y)) => IndexExpr::Const(x + y),
            _ => IndexExpr::Add(Box::new(a), Box::new(b)),
        }
    }
    fn mul(a: IndexExpr, k: u64) -> IndexExpr {
        match (a, k) {
            (_, 0) => IndexExpr::Const(0),
            (a, 1) => a,
            (IndexExpr::Const(x), k) => IndexExpr::Const(x * k),
            (a, k) => IndexExpr::Mul(Box::new(a), Box::new(IndexExpr::Const(k))),
        }
    }
    /// `(x / stride) mod size` where `x < bound`, simplified.
    fn digit(x: IndexExpr, bound: u64, stride: u64, size: u64) -> IndexExpr {
        let q = if stride == 1 { x } else { IndexExpr::Div(Box::new(x), Box::new(IndexExpr::Const(stride))) };
        if size == 1 {
            IndexExpr::Const(0)
        } else if bound <= stride * size {
            q
        } else {
            IndexExpr::Mod(Box::new(q), Box::new(IndexExpr::Const(size)))
        }
    }
}

impl fmt::Display for IndexVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IndexVar::Thread => write!(f, "t"),
            IndexVar::Slot => write!(f, "i"),
            IndexVar::Axis(d) => write!(f, "x{d}"),
            IndexVar::Replica(j) => write!(f, "r{j}"),
        }
    }
}

impl fmt::Display for IndexExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let paren = |e: &IndexExpr| matches!(e, IndexExpr::Add(..));
        // C precedence: `*`, `/`, `%` bind tighter than `+` and associate to the left, so a
        // left operand needs parentheses only when it is a sum, a right one unless it is atomic.
        let side = |f: &mut fmt::Formatter<'_>, e: &IndexExpr| {
            if paren(e) { write!(f, "({e})") } else { write!(f, "{e}") }
        };
        let right = |f: &mut fmt::Formatter<'_>, e: &IndexExpr| match e {
            IndexExpr::Var(_) | IndexExpr::Const(_) => write!(f, "{e}"),
            _ => write!(f, "({e})"),
        };
        match self {
            IndexExpr::Var(v) => write!(f, "{v}"),
            IndexExpr::Const(c) => write!(f, "{c}"),
            IndexExpr::Add(a, b) => {
                write!(f, "{a} + ")?;
                side(f, b)
            }
            IndexExpr::Mul(a, b) => {
                side(f, a)?;
                write!(f, " * ")?;
                right(f, b)
            }
            IndexExpr::Div(a, b) => {
                side(f, a)?;
                write!(f, " / ")?;
                right(f, b)
            }
            IndexExpr::Mod(a, b) => {
                side(f, a)?;
                write!(f, " % ")?;
                right(f, b)
            }
        }
    }
}

impl RegisterLayout {
    /// The digit of every mode as an expression of the thread and slot variables.
    fn mode_digits_from_thread_slot(&self) -> Vec<IndexExpr> {
        let mut digits = vec![IndexExpr::Const(0); self.mode_shape().len()];
        let threads = self.num_threads() as u64;
        let mut stride = 1u64;
        for &s in self.spatial_modes().iter().rev() {
            let size = match s {
                SpatialMode::Mode(m) => self.mode_shape()[m] as u64,
                SpatialMode::Replica(k) => k as u64,
            };
            if let SpatialMode::Mode(m) = s {
                digits[m] = IndexExpr::digit(IndexExpr::Var(IndexVar::Thread), threads, stride, size);
            }
            stride *= size;
        }
        let slots = self.local_size() as u64;
        let mut stride = 1u64;
        for &m in self.local_modes().iter().rev() {
            let size = self.mode_shape()[m] as u64;
            digits[m] = IndexExpr::digit(IndexExpr::Var(IndexVar::Slot), slots, stride, size);
            stride *= size;
        }
        digits
    }

    /// The logical index along each dimension as an expression of `t` (thread) and `i` (slot):
    /// the symbolic form of [`RegisterLayout::global_index`].
    pub fn index_exprs(&self) -> Vec<IndexExpr> {
        let digits = self.mode_digits_from_thread_slot();
        let mut out = vec![IndexExpr::Const(0); self.rank()];
        // A sum of scaled digits (not Horner form): each term is then one shift or multiply.
        for (m, digit) in digits.into_iter().enumerate() {
            let d = self.mode_dims()[m];
            let prev = std::mem::replace(&mut out[d], IndexExpr::Const(0));
            out[d] = IndexExpr::add(prev, IndexExpr::mul(digit, self.mode_inner(m) as u64));
        }
        out
    }

    fn mode_digits_from_index(&self) -> Vec<IndexExpr> {
        let sizes = self.mode_shape();
        (0..sizes.len())
            .map(|m| {
                let d = self.mode_dims()[m];
                let inner: u64 = ((m + 1)..sizes.len())
                    .take_while(|&n| self.mode_dims()[n] == d)
                    .map(|n| sizes[n] as u64)
                    .product();
                IndexExpr::digit(IndexExpr::Var(IndexVar::Axis(d)), self.shape()[d] as u64, inner, sizes[m] as u64)
            })
            .collect()
    }

    /// The slot holding the element at logical index `(x0, x1, ...)`, as an expression.
    pub fn slot_expr(&self) -> IndexExpr {
        let digits = self.mode_digits_from_index();
        self.local_modes().iter().fold(IndexExpr::Const(0), |acc, &m| {
            IndexExpr::add(IndexExpr::mul(acc, self.mode_shape()[m] as u64), digits[m].clone())
        })
    }

    /// A thread holding the element at `(x0, x1, ...)`: with `r_j` the `j`-th replication digit
    /// (`r_j < k_j`), every choice of the `r_j` gives one of the holders.
    pub fn thread_expr(&self) -> IndexExpr {
        let digits = self.mode_digits_from_index();
        let mut replica = 0;
        self.spatial_modes().iter().fold(IndexExpr::Const(0), |acc, &s| match s {
            SpatialMode::Mode(m) => {
                IndexExpr::add(IndexExpr::mul(acc, self.mode_shape()[m] as u64), digits[m].clone())
            }
            SpatialMode::Replica(k) => {
                replica += 1;
                IndexExpr::add(IndexExpr::mul(acc, k as u64), IndexExpr::Var(IndexVar::Replica(replica - 1)))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::register::{column_local, local, spatial};

    #[test]
    fn mma_a_index_exprs_read_like_the_isa() {
        let a = &(&column_local(&[2, 2]) * &spatial(&[8, 4])) * &local(&[1, 2]);
        let e: Vec<String> = a.index_exprs().iter().map(|e| e.to_string()).collect();
        assert_eq!(e, vec!["i / 2 % 2 * 8 + t / 4", "i / 4 * 8 + t % 4 * 2 + i % 2"]);
    }
}
