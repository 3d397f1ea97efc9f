//! `tilc-simt`: the per-thread SIMT program that the PTX backend prints, and an emulator that
//! runs it on the CPU exactly.
//!
//! - [`ir`]: the SSA IR — a [`Kernel`] of typed parameters, structured regions (`for` with an
//!   unroll hint, `if`), scalars and short vectors ([`types`]), register arrays with constant
//!   indices, global/shared pointers and 1–16-byte accesses, bit tricks (`shf`, `prmt`, `lop3`,
//!   `bfe`), float rounding and transcendental functions, half and fp8 conversions, warp
//!   shuffles, `i32` atomics, `bar.sync`, `cp.async` groups, `ldmatrix` and `mma.sync`;
//! - [`builder`]: constructs kernels; [`write`]: the stable text form; [`verify`]: the invariants;
//! - [`passes`]: constant folding, CSE, dead code elimination, unrolling, strength reduction, and
//!   [`passes::optimize`], the pipeline;
//! - [`semantics`] and [`eval`]: the exact meaning of every instruction on raw bits;
//! - [`emulator`]: runs a kernel over a grid — all threads of a block, warps in lockstep — and
//!   reports out-of-bounds accesses, shared-memory races, divergent or missed barriers and reads
//!   of never-written registers as errors.
//!
//! - [`codec`]: SIMT code for tilc-dtype's scalar types — the register carrier of each type,
//!   decode/encode of codes, conversions with every rounding and overflow mode, Philox bits —
//!   bit-exact with the VM interpreter's meaning.
//!
//! This crate knows tilc-dtype's scalar formats (for [`codec`]) but must not know the VM,
//! layouts or PTX text: the lowering from the VM is written against this IR, and `tilc-ptx`
//! prints it.

pub mod builder;
pub mod codec;
pub mod emulator;
pub mod eval;
pub mod ir;
pub mod passes;
pub mod samples;
pub mod semantics;
pub mod types;
pub mod verify;
pub mod write;

pub use builder::Builder;
pub use emulator::{Arg, EmuError, EmuErrorKind, Launch, RunStats, run, shared_wavefronts};
pub use codec::SimtRounding;
pub use ir::*;
pub use types::{Fp8Format, HalfFormat, Scalar, Space, Type};
pub use verify::{VerifyError, VerifyErrors, verify};
pub use write::write_kernel;
