//! `tilc-layout`: the algebraic layout system of tilc. (Crate doc: see `lang/LAYOUTS.md`.)

pub mod draw;
pub mod egraph;
pub mod error;
pub mod expr;
pub mod fragments;
pub mod index;
pub mod ops;
pub mod register;
pub mod shared;

pub use error::LayoutError;
pub use expr::{LayoutExpr, LayoutParseError, Primitive, parse_layout_expr, to_expr};
pub use index::{IndexExpr, IndexVar};
pub use ops::{concat, divide, flatten, left_divide, permute, reduce, reduce_to, reshape, squeeze, unsqueeze};
pub use register::{
    PrimKind, RegisterLayout, SpatialMode, auto_local_spatial, column_local, column_spatial, compose, local,
    replicated, spatial,
};
