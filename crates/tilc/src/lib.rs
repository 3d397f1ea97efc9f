//! `tilc`: a compiler and virtual machine for tile kernels over tensors of any bit width.
//!
//! This is the root crate: the public API that Rust users embed, and the `tilc` command-line
//! tool (`main.rs`). It is the only crate that does file IO, caching and threading policy; the
//! stages it drives live in their own crates (see `ARCHITECTURE.md`):
//! `tilc-base` (spans, diagnostics), `tilc-dtype` (element types), `tilc-layout` (the layout
//! algebra), `tilc-syntax` (the `.tl` front end).

pub use tilc_base as base;
