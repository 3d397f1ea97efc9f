//! `tilc-vm`: the block-level virtual machine — its IR, elaboration from the `.tl` AST, the
//! verifier, the printer and the reference interpreter.
//!
//! A VM program is one [`Kernel`]: the program of ONE thread block, run by every block of a
//! grid. This crate knows no backend and does no file IO; the CPU backend, the SIMT lowering and
//! the GPU all take a [`Kernel`] and must agree with [`interp::run`], which is the executable
//! definition of everything below.
//!
//! # Values and memory spaces
//!
//! Every [`Value`] is a *scalar* (uniform over the block), a *register tile* (a compile-time
//! shaped array the block's threads hold between them) or a *shared tensor* (per-block
//! scratch). Global tensors are the kernel's tensor parameters ([`Global`]): compact row-major,
//! packed little-endian bit streams for sub-byte types, with shapes that are expressions over
//! the scalar parameters ([`SymExpr`]). Only register tiles and scalars take part in
//! arithmetic; global and shared data must be loaded first. Only `out` globals are stored to.
//! Booleans are `u1` (0 or 1). Register tiles hold integers of at most 32 bits and floats of at
//! most 32 bits; scalars may also be `i64` and `f64`.
//!
//! A tile holds values *exactly in its dtype*: the interpreter keeps one code per element and
//! computes by decoding to f64 (integers to i64), operating, and encoding the result.
//!
//! # Arithmetic
//!
//! - **Type rule:** a binary operation needs equal element types (a scalar operand is broadcast;
//!   elaboration converts literals and compile-time constants to the other operand's type,
//!   exactly or with an error). Comparisons give `u1`. There are no implicit promotions: mixing
//!   types takes a `cast`.
//! - **Broadcasting** follows NumPy: shapes align on the right, extents equal or 1.
//! - **Integers** wrap in their width (two's complement); `/` and `%` truncate toward zero like
//!   Rust; division by zero is a run-time error; shifts by ≥ the width give 0 (sign fill for `>>`
//!   of signed values); a negative shift is an error.
//! - **Floats**: `+ − × ÷`, `sqrt`, `%` are computed exactly in f64 and rounded once to the
//!   dtype, nearest-even, overflowing to ±∞ where the format has it (saturating otherwise) —
//!   for `f32` this is exactly IEEE binary32 arithmetic, so a CPU or GPU matches bit for bit.
//!   `exp exp2 log log2 rsqrt` are f64 library results rounded once; backends may differ by a
//!   few ulp of the dtype there. `min`/`max` propagate NaN. `floor ceil trunc round` are exact.
//!
//! # Instructions
//!
//! - `cast<T>(x)`: decode exactly, encode to `T` with the rounding mode (nearest-even by default;
//!   `rtz`, `rup`, `rdown`, `stochastic(seed)`) and overflow rule: saturating by default, except
//!   integer → integer casts, which wrap (`sat`/`nosat` override). Encoding follows
//!   `tilc_dtype::DType::encode` (NaN → 0 for integers, finite-only formats saturate).
//!   **Stochastic rounding** of element `e` draws its bits from `(seed, index)` through
//!   `tilc_dtype`'s Philox rule; `index` is the element's entry in an explicit index tile when
//!   one is given, else `block_linear × numel(tile) + e`, where `block_linear = x + gx·(y + gy·z)`
//!   and `e` is the row-major position in the tile. A GPU computes the same key per element.
//! - `view<T, [shape]>(x)`: the row-major bit stream of `x` (element 0 at bit 0, packed like
//!   global memory) read back as `T[shape]`; the bit counts must be equal.
//! - `load g[o…] : [s…]` reads the tile `[o, o+s)` of a global; elements outside the tensor
//!   (negative or past the end) read as the all-zero code (0 for every type that has a zero).
//!   `store` writes the elements inside the tensor and skips the rest. Shared loads and stores
//!   must be in bounds. Reading a shared element never written is an error.
//! - `copy_async` snapshots the global tile when issued and writes it into shared memory only at
//!   a `copy_async_wait` that retires its group: copies issued since the last commit form the
//!   open group; `wait(n)` in the language commits it and then retires the oldest groups until
//!   at most `n` are in flight. `sync` is a barrier (a no-op for the interpreter, whose block
//!   runs sequentially).
//! - `dot(a, b, c)` = `c + a·b` for `a: [M, K]`, `b: [K, N]`, `c: [M, N]`. Integer operands of
//!   at most 8 bits accumulate into `i32` exactly (wrapping). Float operands of at most 32 bits
//!   accumulate into `f32`: `acc ← f32(acc + a[m,k]·b[k,n])` for k = 0, 1, … in order, the
//!   product exact in f64, the sum computed in f64 and rounded to f32 at each step. Tensor
//!   cores sum in another order; backends compare within `K · 2⁻²³ · Σ|a·b|`.
//! - Reductions `sum max min absmax` over one axis (`keepdim` keeps it as extent 1): integer
//!   sums wrap; float sums are computed in f64 in index order and rounded once (backends within
//!   `len · 2⁻²⁴ · Σ|x|`); the others are exact.
//! - `hadamard(x, axis)`: the unnormalised Walsh–Hadamard transform `H_n · x` along `axis`
//!   (n a power of two, `H_1 = [1]`, `H_2n = [[H, H], [H, −H]]`, Sylvester order), computed in
//!   f64 by butterflies and rounded once to the dtype.
//! - `transpose`, `reshape` (row-major), `broadcast`, `where`, `iota` move or select codes
//!   without rounding.
//! - Control: `for` evaluates its bounds once and needs a positive step; `if`/`while` test a
//!   `u1` scalar; `assume(c)` is checked (a false assumption is an error).
//!
//! # Errors at run time
//!
//! Reading a variable before it is assigned, an uninitialised shared element, an out-of-bounds
//! shared access, integer division by zero, a false `assume`, or two blocks storing the same
//! global element are [`interp::RunError`]s with the instruction's span and the block — never
//! garbage.
//!
//! # Entry points
//!
//! [`elaborate::elaborate`] turns a parsed file into a verified [`Kernel`];
//! [`print::print_kernel`] prints it; [`verify::verify`] checks it; [`interp::run`] runs it.

pub mod elaborate;
pub mod interp;
pub mod ir;
pub mod print;
pub mod tensor;
pub mod types;
pub mod verify;

pub use elaborate::{Define, elaborate, elaborate_source};
pub use interp::{RunError, RunSummary, hadamard_in_place, run};
pub use ir::*;
pub use print::print_kernel;
pub use tensor::{ArgValue, HostTensor, SplitMix64, random_tensor};
pub use verify::{VerifierError, verify};
