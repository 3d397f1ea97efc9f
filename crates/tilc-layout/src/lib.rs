//! `tilc-layout`: the algebraic layout system of tilc.
//!
//! A register layout says which thread of a block holds which element of a tile, and in which
//! of its registers (slot). Two primitives (`local`, `spatial`), their column-major variants,
//! replication and one product `*` describe every layout that matters; division by a hardware
//! fragment turns instruction selection into algebra. **Read `lang/LAYOUTS.md` first**: it is
//! the essay this crate implements (definition, worked example, composition formula, divide,
//! reduce, every fragment drawn, how `factor` serves instruction selection).
//!
//! What lives where:
//! - [`register`]: [`RegisterLayout`] (shape, modes, spatial list with replication, local list),
//!   the primitives, the product [`compose`], the canonical form, the maps both ways;
//! - [`ops`]: [`divide`], [`left_divide`], [`reduce`], [`reduce_to`], [`permute`], [`reshape`],
//!   [`flatten`], [`squeeze`], [`unsqueeze`], [`concat`];
//! - [`index`]: the maps as symbolic [`IndexExpr`]s for a lowering to emit;
//! - [`expr`]: the text syntax (`spatial(8, 4).local(1, 2)`), [`parse_layout_expr`] with byte
//!   offsets on errors, the tree [`LayoutExpr`] a front end may build itself ([`LayoutExpr::call`],
//!   [`LayoutExpr::compose`]) and [`to_expr`] back from values;
//! - [`shared`]: shared-memory layouts (strides, XOR swizzle, bank-conflict count);
//! - [`fragments`]: mma.sync, ldmatrix/stmatrix, wgmma and tcgen05.ld fragments in the algebra;
//! - [`egraph`]: the egg language, rules by topic, [`egraph::equivalent`],
//!   [`egraph::canonical_expr`], [`egraph::factor`];
//! - [`draw`]: the `thread:slot` grid and its SVG.
//!
//! This crate never sees a span or an IR: its errors ([`LayoutError`], [`LayoutParseError`]) are
//! values that callers attach to their own source positions.
//!
//! ```
//! use tilc_layout::{parse_layout_expr, divide, fragments};
//! let tile = parse_layout_expr("spatial(2, 2).column_local(2, 2).spatial(8, 4).local(1, 2)").unwrap();
//! let atom = fragments::mma(fragments::MmaKind::M16N8K16F16).a;
//! let outer = divide(&tile.eval(), &atom.eval()).unwrap();
//! assert_eq!(outer, tilc_layout::spatial(&[2, 2]));
//! assert_eq!(tilc_layout::egraph::factor(&tile, &atom).unwrap().to_string(), "spatial(2, 2)");
//! ```

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
