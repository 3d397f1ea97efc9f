//! `tilc-base`: what every tilc IR shares and that knows no IR.
//!
//! - [`Span`] and [`SourceFile`]: byte ranges into one `.tl` source and the file they point into;
//! - [`Diagnostic`]: a user-facing error or warning as data (message, labelled spans, hint,
//!   notes), rendered in exactly one place, [`render`], so that every stage reports errors the
//!   same way and tests can snapshot the plain-text rendering;
//! - typed ids and arenas, re-exported from `cranelift-entity` ([`entity_impl!`],
//!   [`PrimaryMap`], [`SecondaryMap`]), so that each IR's ids print as its text format spells them.
//!
//! This crate must not know any IR, dtype, layout or backend.

pub mod diagnostic;
pub mod span;

pub use cranelift_entity::{
    EntityRef, PrimaryMap, SecondaryMap, entity_impl, packed_option::PackedOption,
};
pub use diagnostic::{Diagnostic, Label, RenderStyle, Severity, render, render_one};
pub use span::{SourceFile, Span};
