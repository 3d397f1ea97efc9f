//! The per-thread SSA IR: one [`Kernel`] is the program that every thread of every block runs.
//!
//! Storage follows Cranelift: values, instructions, regions and register arrays live in
//! `PrimaryMap`s and are named by `u32` ids whose `Display` is their text spelling (`v3`, `r0`,
//! `region2`). Control flow is *structured*: a [`Region`] is a straight list of instructions that
//! may contain `for` and `if` instructions, each owning nested regions that end in `yield`.
//! There are no jumps, so reconvergence after divergence is implicit, which is what both the
//! emulator (warps with active masks) and the PTX backend (LLVM's structurizer) want.
//!
//! **Invariants** (checked by [`crate::verify`]):
//! - every value has exactly one definition: a result of one instruction or an argument of one
//!   region; a use is dominated by its definition in the structured sense (earlier in the same
//!   region, or in an enclosing region before the instruction that owns the use's region);
//! - the kernel body's arguments are the kernel parameters, in order;
//! - a `for` body has arguments `[iv: i32, carried...]` and ends with `yield carried'`; an `if`
//!   has a `then` and an `else` region, each ending with `yield` of the `if`'s result types;
//! - an instruction appears in exactly one region's list.
//!
//! Float meaning: every instruction is exact IEEE (round to nearest even) in the emulator and
//! on a GPU, except the transcendental [`UnaryOp`]s (`FExp`, `FExp2`, `FLog`, `FLog2`,
//! `FRsqrt`): the emulator computes the f64 function rounded once to the operand type (what the
//! VM interpreter does), while a GPU uses approximations (`ex2.approx`, `lg2.approx`, …) with a
//! few ulp of error. `FFloor`, `FCeil`, `FTrunc` and `FRound` are exact everywhere.
//!
//! This module knows nothing of the VM, layouts or PTX text.

use crate::types::{Fp8Format, HalfFormat, Space, Type};
use tilc_base::{PrimaryMap, entity_impl};

/// An SSA value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Value(u32);
entity_impl!(Value, "v");

/// An instruction.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Inst(u32);
entity_impl!(Inst, "inst");

/// A structured region: arguments plus a straight list of instructions.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Region(u32);
entity_impl!(Region, "region");

/// A per-thread register array (a tile's registers), indexed only by constants.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Array(u32);
entity_impl!(Array, "r");

/// Where a value is defined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueDef {
    /// Result number `n` of an instruction.
    Result(Inst, u32),
    /// Argument number `n` of a region.
    Arg(Region, u32),
}

/// A value's type and definition.
#[derive(Clone, Copy, Debug)]
pub struct ValueData {
    /// The value's type.
    pub ty: Type,
    /// Its unique definition.
    pub def: ValueDef,
}

/// A region: its arguments and its instructions in program order.
#[derive(Clone, Debug, Default)]
pub struct RegionData {
    /// Region arguments (kernel parameters for the body; `[iv, carried..]` for a loop body).
    pub args: Vec<Value>,
    /// Instructions in program order.
    pub insts: Vec<Inst>,
}

/// A register array: `len` elements of type `ty`, private to each thread.
#[derive(Clone, Debug)]
pub struct ArrayData {
    /// A name for the printer and error messages (not necessarily unique).
    pub name: String,
    /// Element type (a scalar or vector type).
    pub ty: Type,
    /// Number of elements.
    pub len: u32,
}

/// A kernel parameter.
#[derive(Clone, Debug)]
pub struct Param {
    /// Name, for the printer and the launcher.
    pub name: String,
    /// Type: a scalar or `ptr.global`.
    pub ty: Type,
    /// For a global pointer, the alignment (bytes) the launcher guarantees; 1 for scalars.
    pub align: u32,
}

/// Special registers (all `i32`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Special {
    /// `%tid.{x,y,z}`: thread index in the block.
    Tid(u8),
    /// `%ntid.{x,y,z}`: block size.
    Ntid(u8),
    /// `%ctaid.{x,y,z}`: block index in the grid.
    Ctaid(u8),
    /// `%nctaid.{x,y,z}`: grid size.
    Nctaid(u8),
    /// `%laneid`: lane within the warp (linear thread id mod 32).
    LaneId,
}

/// Integer and float unary operations; vectors apply them lane-wise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// Bitwise not (also logical not of a predicate).
    Not,
    /// Two's-complement negation.
    Neg,
    /// Population count (result in the same width).
    Popc,
    /// Count leading zeros.
    Clz,
    /// Float negation (flips the sign bit, also of NaN).
    FNeg,
    /// Float absolute value (clears the sign bit).
    FAbs,
    /// Correctly rounded square root (`sqrt.rn`).
    FSqrt,
    /// Round toward −∞ to an integral value (exact; `cvt.rmi`).
    FFloor,
    /// Round toward +∞ to an integral value (exact; `cvt.rpi`).
    FCeil,
    /// Round toward zero to an integral value (exact; `cvt.rzi`).
    FTrunc,
    /// Round to the nearest integral value, ties to even (exact; `cvt.rni`).
    FRound,
    /// `e^x`. The emulator computes `f64::exp` of the operand widened to f64 and rounds once to
    /// the operand type; a GPU uses `ex2.approx` and differs by a few ulp.
    FExp,
    /// `2^x` (emulator: `f64::exp2`, rounded once; GPU: `ex2.approx`, approximate).
    FExp2,
    /// Natural logarithm (emulator: `f64::ln`, rounded once; GPU: `lg2.approx`, approximate).
    FLog,
    /// Base-2 logarithm (emulator: `f64::log2`, rounded once; GPU: `lg2.approx`, approximate).
    FLog2,
    /// `1/sqrt(x)` (emulator: `1.0 / x.sqrt()` in f64, rounded once; GPU: `sqrt.rn` then
    /// `div.rn` in the operand type, which can differ by an ulp for f32).
    FRsqrt,
}

/// Read-modify-write operations of [`InstKind::Atomic`], all on `i32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AtomicOp {
    /// Bitwise and.
    And,
    /// Bitwise or.
    Or,
    /// Bitwise xor.
    Xor,
    /// Wrapping add.
    Add,
    /// Signed maximum.
    MaxS,
    /// Signed minimum.
    MinS,
}

/// Binary operations on two operands of the same type; vectors apply them lane-wise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// Wrapping add.
    Add,
    /// Wrapping subtract.
    Sub,
    /// Wrapping multiply (low half).
    Mul,
    /// High half of the signed product.
    MulHiS,
    /// High half of the unsigned product.
    MulHiU,
    /// Signed division, rounding toward zero. Division by zero is undefined in PTX; the emulator
    /// reports it as an error.
    DivS,
    /// Unsigned division.
    DivU,
    /// Signed remainder (sign of the dividend).
    RemS,
    /// Unsigned remainder.
    RemU,
    /// Bitwise and.
    And,
    /// Bitwise or.
    Or,
    /// Bitwise xor.
    Xor,
    /// Shift left; a shift amount ≥ width gives 0 (PTX `shl` clamps).
    Shl,
    /// Logical shift right; amount ≥ width gives 0.
    ShrU,
    /// Arithmetic shift right; amount ≥ width gives the sign fill.
    ShrS,
    /// Signed minimum.
    MinS,
    /// Signed maximum.
    MaxS,
    /// Unsigned minimum.
    MinU,
    /// Unsigned maximum.
    MaxU,
    /// Float add, round to nearest even.
    FAdd,
    /// Float subtract, round to nearest even.
    FSub,
    /// Float multiply, round to nearest even.
    FMul,
    /// Float divide, round to nearest even (`div.rn`).
    FDiv,
    /// IEEE minNum (a NaN operand yields the other operand).
    FMin,
    /// IEEE maxNum.
    FMax,
}

/// Comparisons; the result is a predicate. Float comparisons are ordered (false on NaN) except
/// `FNe`, which is unordered-or-not-equal like C's `!=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// Integer equal.
    Eq,
    /// Integer not equal.
    Ne,
    /// Signed less than.
    Slt,
    /// Signed less or equal.
    Sle,
    /// Signed greater than.
    Sgt,
    /// Signed greater or equal.
    Sge,
    /// Unsigned less than.
    Ult,
    /// Unsigned less or equal.
    Ule,
    /// Unsigned greater than.
    Ugt,
    /// Unsigned greater or equal.
    Uge,
    /// Float equal (ordered).
    FEq,
    /// Float not equal (unordered or not equal).
    FNe,
    /// Float less than.
    FLt,
    /// Float less or equal.
    FLe,
    /// Float greater than.
    FGt,
    /// Float greater or equal.
    FGe,
}

/// Conversions. Integer↔float conversions name the signedness; float→int truncates toward zero
/// and saturates, NaN → 0 (PTX `cvt.rzi.sat`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CastOp {
    /// Sign-extend to a wider integer.
    SExt,
    /// Zero-extend to a wider integer (also predicate → integer 0/1).
    ZExt,
    /// Keep the low bits (also integer → predicate: low bit).
    Trunc,
    /// Reinterpret the bits; source and destination have equal width (e.g. `i16x2` ↔ `i32`).
    Bitcast,
    /// Signed integer → float, round to nearest even.
    SToF,
    /// Unsigned integer → float, round to nearest even.
    UToF,
    /// Float → signed integer, toward zero, saturating; NaN → 0.
    FToS,
    /// Float → unsigned integer, toward zero, saturating; NaN → 0.
    FToU,
    /// f32 → f64 (exact) or f64 → f32 (nearest even).
    FConvert,
    /// f32 → f16/bf16 bits (`cvt.rn.f16.f32`), into `i16` (or `f32x2` → `i16x2`, lane-wise).
    FToHalf(HalfFormat),
    /// f16/bf16 bits → f32 (exact), from `i16` (or `i16x2` → `f32x2`).
    HalfToF(HalfFormat),
}

/// Half-precision arithmetic on `i16` or `i16x2` holding f16/bf16 bits (`add.rn.f16x2` …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HalfOp {
    /// `add.rn`.
    Add,
    /// `sub.rn`.
    Sub,
    /// `mul.rn`.
    Mul,
    /// `min` (NaN operand yields the other operand).
    Min,
    /// `max`.
    Max,
}

/// Funnel-shift direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShfDir {
    /// `shf.l`: high word of `(hi:lo) << n`.
    Left,
    /// `shf.r`: low word of `(hi:lo) >> n`.
    Right,
}

/// Funnel-shift amount handling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShfMode {
    /// `n = min(n, 32)`.
    Clamp,
    /// `n = n & 31`.
    Wrap,
}

/// Warp shuffle modes (`shfl.sync.{idx,up,down,bfly}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShflMode {
    /// Read from lane `b` (within the segment).
    Idx,
    /// Read from `lane - b`.
    Up,
    /// Read from `lane + b`.
    Down,
    /// Read from `lane ^ b`.
    Bfly,
}

/// Tensor-core `mma.sync` shapes and types supported (all `row.col`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MmaKind {
    /// `m16n8k16`, f16 × f16 + f32 → f32. A: i32x4, B: i32x2, C/D: f32x4.
    F16F32,
    /// `m16n8k16`, bf16 × bf16 + f32 → f32.
    Bf16F32,
    /// `m16n8k32`, s8 × s8 + s32 → s32 (exact, wrapping). A: i32x4, B: i32x2, C/D: i32x4.
    S8S32,
    /// `m16n8k32`, fp8 × fp8 + f32 → f32 (sm_89+). A: i32x4, B: i32x2, C/D: f32x4.
    Fp8F32(Fp8Format),
}

impl MmaKind {
    /// (m, n, k).
    pub fn shape(self) -> (u32, u32, u32) {
        match self {
            MmaKind::F16F32 | MmaKind::Bf16F32 => (16, 8, 16),
            MmaKind::S8S32 | MmaKind::Fp8F32(_) => (16, 8, 32),
        }
    }

    /// The accumulator type (`f32x4` or `i32x4`).
    pub fn acc_type(self) -> Type {
        match self {
            MmaKind::S8S32 => Type::vector(crate::types::Scalar::I32, 4),
            _ => Type::vector(crate::types::Scalar::F32, 4),
        }
    }

    /// The accumulator's element type: i32 for s8, else f32.
    pub fn acc_scalar(self) -> crate::types::Scalar {
        match self {
            MmaKind::S8S32 => crate::types::Scalar::I32,
            _ => crate::types::Scalar::F32,
        }
    }
}

/// Loop unrolling hint on a `for`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unroll {
    /// No hint.
    None,
    /// Unroll completely (needs constant bounds).
    Full,
    /// Unroll by this factor (needs a constant trip count divisible by it).
    Factor(u32),
}

/// An instruction: what it does and its operands. Results are recorded separately in
/// [`InstData::results`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum InstKind {
    /// A constant of a scalar type (`bits` holds the raw bits: floats as their IEEE encoding).
    Const {
        /// Scalar type of the constant.
        ty: Type,
        /// Raw bits, zero above the type's width.
        bits: u64,
    },
    /// Read a special register (i32).
    Special(Special),
    /// Unary operation.
    Unary(UnaryOp, Value),
    /// Binary operation on equal types.
    Binary(BinaryOp, Value, Value),
    /// Fused multiply-add `a*b + c` with one rounding (`fma.rn.f32/f64`).
    Fma(Value, Value, Value),
    /// Comparison → predicate.
    Cmp(CmpOp, Value, Value),
    /// `cond ? a : b` (cond is a predicate).
    Select(Value, Value, Value),
    /// Conversion to the result type.
    Cast(CastOp, Value, Type),
    /// Half-precision arithmetic on i16 / i16x2 lanes.
    Half(HalfOp, HalfFormat, Value, Value),
    /// Half-precision fused multiply-add `a*b + c`, rounded once (`fma.rn.f16x2`/`bf16x2`).
    HalfFma(HalfFormat, Value, Value, Value),
    /// Two f32 → two fp8 packed in an i16: `hi` goes to bits 8..16, `lo` to 0..8
    /// (`cvt.rn.satfinite.e4m3x2.f32 d, hi, lo`): nearest even, saturating to ±max finite, NaN → NaN.
    F32x2ToFp8x2(Fp8Format, Value, Value),
    /// Two fp8 in an i16 → two f16 in an i16x2 (exact; `cvt.rn.f16x2.e4m3x2`); lane 0 from bits 0..8.
    Fp8x2ToF16x2(Fp8Format, Value),
    /// Lane `lane` of a vector.
    Extract(Value, u8),
    /// A copy of the vector with lane `lane` replaced.
    Insert(Value, u8, Value),
    /// Build a vector from scalars (lane 0 first).
    Build(Vec<Value>),
    /// Funnel shift `shf.{l,r}.{clamp,wrap}.b32 d, lo, hi, n`.
    Shf(ShfDir, ShfMode, Value, Value, Value),
    /// Byte permute `prmt.b32 d, a, b, sel` (default mode): bytes 0..3 from `a`, 4..7 from `b`;
    /// each selector nibble picks a byte (low 3 bits) and bit 3 replicates its sign bit.
    Prmt(Value, Value, Value),
    /// Three-input logic `lop3.b32 d, a, b, c, lut`: bit i of d is `lut[(a_i<<2)|(b_i<<1)|c_i]`.
    Lop3(Value, Value, Value, u8),
    /// Bit-field extract `bfe.{u32,s32} d, a, pos, len` (positions clamp at 32 / len 0 gives 0).
    Bfe {
        /// Sign-extend the field (`.s32`) or zero-extend (`.u32`).
        signed: bool,
        /// Source word (i32).
        a: Value,
        /// Start bit (i32).
        pos: Value,
        /// Field length (i32).
        len: Value,
    },
    /// Pointer to byte `offset` (i32) of the block's shared memory.
    SharedAddr(Value),
    /// `base + offset` bytes; `offset` is i32 (sign-extended) or i64.
    PtrAdd(Value, Value),
    /// Load `ty` from memory. With a mask, lanes whose mask is false do not access memory and get 0.
    Load {
        /// Address space of `addr`.
        space: Space,
        /// Loaded type (1 to 16 bytes).
        ty: Type,
        /// Address (must be aligned to the access size).
        addr: Value,
        /// Optional guard predicate.
        mask: Option<Value>,
    },
    /// Store `value` to memory; with a mask, only where it is true.
    Store {
        /// Address space of `addr`.
        space: Space,
        /// Address (must be aligned to the access size).
        addr: Value,
        /// Stored value (1 to 16 bytes).
        value: Value,
        /// Optional guard predicate.
        mask: Option<Value>,
    },
    /// Read element `index` of a register array.
    ArrayGet(Array, u32),
    /// Write element `index` of a register array.
    ArraySet(Array, u32, Value),
    /// `atom.{space}.{op}.b32`: atomically replace the `i32` at `addr` by `op(old, value)`;
    /// the result is `old`. Relaxed (`monotonic`) ordering: atomics order nothing else.
    /// Two threads' atomics on one word never race; an atomic and a plain access of one shared
    /// word by different threads between barriers do.
    Atomic {
        /// The operation.
        op: AtomicOp,
        /// Address space of `addr`.
        space: Space,
        /// Address of the word (4-byte aligned).
        addr: Value,
        /// The operand (i32).
        value: Value,
    },
    /// Warp shuffle `shfl.sync.mode.b32 d, a, b, c, 0xffffffff` on a 32-bit value.
    Shfl {
        /// Mode.
        mode: ShflMode,
        /// The value to exchange (i32 or f32).
        value: Value,
        /// Lane index or delta (i32).
        lane: Value,
        /// The `c` operand: clamp in bits 0..5, segment mask in bits 8..13
        /// (31 for idx/down/bfly over the whole warp, 0 for up).
        clamp: u32,
    },
    /// `bar.sync 0`: all threads of the block.
    Barrier,
    /// `cp.async.{ca,cg}.shared.global [dst], [src], size, src_size`: copy `size` (4, 8 or 16)
    /// bytes; with `src_size`, only that many bytes are read and the rest is zero-filled.
    CpAsync {
        /// Shared destination.
        dst: Value,
        /// Global source.
        src: Value,
        /// Copy size in bytes.
        size: u32,
        /// Optional number of source bytes to read (i32, 0..=size).
        src_size: Option<Value>,
    },
    /// `cp.async.commit_group`.
    CpAsyncCommit,
    /// `cp.async.wait_group n`: wait until at most `n` committed groups are pending.
    CpAsyncWait(u32),
    /// `ldmatrix.sync.aligned.m8n8.{x1,x2,x4}[.trans].shared.b16`: each lane gives the address of
    /// one 16-byte row; result `i32` (x1), `i32x2` (x2) or `i32x4` (x4).
    Ldmatrix {
        /// Number of 8x8 matrices: 1, 2 or 4.
        num: u8,
        /// Transpose each matrix.
        trans: bool,
        /// This lane's row address (shared).
        addr: Value,
    },
    /// `mma.sync.aligned` of the given kind: `d = a*b + c`.
    Mma(MmaKind, Value, Value, Value),
    /// One warpgroup k-step of `wgmma.mma_async` (sm_90a), fenced, committed and waited for
    /// (synchronous): `d = A · Bᵀ + acc` for a 64 × `n` tile. A (64 rows) and B (`n` rows), each
    /// one k-step wide, are read from shared memory at `a` and `b` in the canonical K-major,
    /// unswizzled layout of [`wgmma_offset`]. Warp `w mod 4` of the warpgroup holds rows
    /// `16·(w mod 4) ..` as `n / 8` mma C fragments in column order: `acc` and the results are
    /// `n / 8` values of f32x4 (i32x4 for s8), one per 8 columns. All 128 threads of the
    /// warpgroup execute it.
    Wgmma {
        /// Element and accumulator types (the k-step is the mma atom's k).
        kind: MmaKind,
        /// Tile width: a multiple of 8 up to 256 (of 16 for s8 and fp8).
        n: u16,
        /// Shared address of A's k-step.
        a: Value,
        /// Shared address of B's k-step.
        b: Value,
        /// The accumulator: `n / 8` C fragments.
        acc: Vec<Value>,
    },
    /// `fence.proxy.async.shared::cta`: this thread's earlier shared-memory writes become
    /// visible to the async proxy (`wgmma`'s operand reads) once a barrier follows.
    FenceProxyAsync,
    /// `tcgen05.alloc.cta_group::1.sync.aligned.shared::cta.b32 [dst], cols` followed by
    /// `tcgen05.relinquish_alloc_permit` (sm_100a): the warp allocates `cols` columns of the
    /// block's tensor memory (a power of two, 32 to 512) and writes their address (lane 0, first
    /// column) to the 4 shared bytes at `dst`. Warp-collective.
    TmemAlloc {
        /// Shared address of the 4-byte slot receiving the tensor-memory address.
        dst: Value,
        /// Columns (32-bit cells per lane).
        cols: u32,
    },
    /// `tcgen05.dealloc.cta_group::1.sync.aligned.b32 taddr, cols`: frees what [`Self::TmemAlloc`]
    /// allocated; every allocation must be freed before the block exits. Warp-collective.
    TmemDealloc {
        /// The address the allocation returned (i32).
        taddr: Value,
        /// Columns, as allocated.
        cols: u32,
    },
    /// `tcgen05.st.sync.aligned.32x32b.x{n}.b32 [taddr], {values}` then `tcgen05.wait::st`:
    /// lane `l` of the warp writes `values[j]` (32-bit) to tensor-memory lane `lane(taddr) + l`,
    /// column `col(taddr) + j`. A warp may only touch the 32 lanes of its quarter of the
    /// warpgroup (`32 · (warp mod 4) ..`); `taddr` is the same in every lane. Warp-collective.
    TmemStore {
        /// Tensor-memory address (lane in bits 31..16, column in 15..0), i32.
        taddr: Value,
        /// One to 32 values of 32 bits (a power of two of them).
        values: Vec<Value>,
    },
    /// `tcgen05.ld.sync.aligned.32x32b.x{num}.b32` then `tcgen05.wait::ld`: the inverse of
    /// [`Self::TmemStore`]; `num` results of type `ty`. Warp-collective.
    TmemLoad {
        /// Tensor-memory address, as for [`Self::TmemStore`].
        taddr: Value,
        /// Columns per lane: a power of two up to 32.
        num: u8,
        /// The 32-bit type of each result (i32 or f32).
        ty: crate::types::Scalar,
    },
    /// `tcgen05.mma.cta_group::1.kind::{f16,i8,f8f6f4}` issued by each active thread (the
    /// lowering issues it from one): `D = A · Bᵀ (+ D when accumulate)` for a 128 × `n` tile in
    /// tensor memory at `d` (row `r` in lane `r`, column `c` in column `col(d) + c`). A (128
    /// rows) and B (`n` rows), one k-step wide, are read from shared memory at `a` and `b` in
    /// the canonical K-major, unswizzled layout of [`wgmma_offset`]. Asynchronous: its result
    /// may be read only after a [`Self::Tcgen05Commit`] to an mbarrier and a
    /// [`Self::MbarrierWait`] that sees the commit's phase complete.
    Tcgen05Mma {
        /// Element and accumulator types (the k-step is the mma atom's k).
        kind: MmaKind,
        /// Tile width: a multiple of 16 from 16 to 256.
        n: u16,
        /// Tensor-memory address of D (i32).
        d: Value,
        /// Shared address of A's k-step.
        a: Value,
        /// Shared address of B's k-step.
        b: Value,
        /// Predicate: add to D (else overwrite it).
        accumulate: Value,
    },
    /// `tcgen05.commit.cta_group::1.mbarrier::arrive::one.shared::cluster.b64 [mbar]`: one
    /// arrival on the mbarrier once every `tcgen05.mma` this thread issued has completed.
    Tcgen05Commit {
        /// Shared address of the 8-byte mbarrier.
        mbar: Value,
    },
    /// `tcgen05.fence::before_thread_sync` (`after = false`) or `::after_thread_sync`: orders
    /// tensor-memory accesses around the barrier that follows (precedes) it.
    Tcgen05Fence {
        /// `after_thread_sync` when true.
        after: bool,
    },
    /// `mbarrier.init.shared::cta.b64 [mbar], count`.
    MbarrierInit {
        /// Shared address of the 8-byte mbarrier.
        mbar: Value,
        /// Arrivals per phase.
        count: u32,
    },
    /// Spins on `mbarrier.try_wait.parity.shared::cta.b64` until the mbarrier's phase of parity
    /// `parity` (i32, bit 0) has completed.
    MbarrierWait {
        /// Shared address of the 8-byte mbarrier.
        mbar: Value,
        /// The phase parity waited for (i32).
        parity: Value,
    },
    /// A counted loop `for iv = lo; iv < hi; iv += step` (i32, signed; step > 0) carrying values.
    For {
        /// Start (i32).
        lo: Value,
        /// Exclusive end (i32).
        hi: Value,
        /// Increment (i32, positive).
        step: Value,
        /// Initial carried values.
        init: Vec<Value>,
        /// Body region, args `[iv, carried..]`, ends with `yield carried'`.
        body: Region,
        /// Unrolling hint.
        unroll: Unroll,
    },
    /// `if cond { then } else { else_ }`, both regions ending in `yield` of the results.
    If {
        /// Predicate.
        cond: Value,
        /// Taken when true.
        then_region: Region,
        /// Taken when false.
        else_region: Region,
    },
    /// End of a `for` body or an `if` branch, passing values out.
    Yield(Vec<Value>),
}

impl InstKind {
    /// The value operands, in a fixed order.
    pub fn operands(&self) -> Vec<Value> {
        let mut out = Vec::new();
        self.for_each_operand(|v| out.push(v));
        out
    }

    /// Calls `f` on each value operand.
    pub fn for_each_operand(&self, mut f: impl FnMut(Value)) {
        let mut k = self.clone();
        k.map_operands(|v| {
            f(v);
            v
        });
    }

    /// Replaces each value operand by `f(operand)`.
    pub fn map_operands(&mut self, mut f: impl FnMut(Value) -> Value) {
        use InstKind::*;
        match self {
            Const { .. } | Special(_) | Barrier | CpAsyncCommit | CpAsyncWait(_) | ArrayGet(..) | FenceProxyAsync | Tcgen05Fence { .. } => {}
            TmemAlloc { dst: a, .. } | TmemDealloc { taddr: a, .. } | TmemLoad { taddr: a, .. } | Tcgen05Commit { mbar: a } | MbarrierInit { mbar: a, .. } => *a = f(*a),
            TmemStore { taddr, values } => {
                *taddr = f(*taddr);
                values.iter_mut().for_each(|v| *v = f(*v));
            }
            Tcgen05Mma { d, a, b, accumulate, .. } => {
                *d = f(*d);
                *a = f(*a);
                *b = f(*b);
                *accumulate = f(*accumulate);
            }
            MbarrierWait { mbar, parity } => {
                *mbar = f(*mbar);
                *parity = f(*parity);
            }
            Unary(_, a) | Cast(_, a, _) | Extract(a, _) | SharedAddr(a) | Fp8x2ToF16x2(_, a) => {
                *a = f(*a)
            }
            Ldmatrix { addr, .. } => *addr = f(*addr),
            Binary(_, a, b)
            | Cmp(_, a, b)
            | Half(_, _, a, b)
            | F32x2ToFp8x2(_, a, b)
            | Insert(a, _, b)
            | PtrAdd(a, b) => {
                *a = f(*a);
                *b = f(*b);
            }
            Fma(a, b, c)
            | Select(a, b, c)
            | HalfFma(_, a, b, c)
            | Shf(_, _, a, b, c)
            | Prmt(a, b, c)
            | Lop3(a, b, c, _)
            | Mma(_, a, b, c) => {
                *a = f(*a);
                *b = f(*b);
                *c = f(*c);
            }
            Bfe { a, pos, len, .. } => {
                *a = f(*a);
                *pos = f(*pos);
                *len = f(*len);
            }
            Build(vs) | Yield(vs) => vs.iter_mut().for_each(|v| *v = f(*v)),
            Wgmma { a, b, acc, .. } => {
                *a = f(*a);
                *b = f(*b);
                acc.iter_mut().for_each(|v| *v = f(*v));
            }
            Load { addr, mask, .. } => {
                *addr = f(*addr);
                if let Some(m) = mask {
                    *m = f(*m);
                }
            }
            Store { addr, value, mask, .. } => {
                *addr = f(*addr);
                *value = f(*value);
                if let Some(m) = mask {
                    *m = f(*m);
                }
            }
            ArraySet(_, _, v) => *v = f(*v),
            Atomic { addr, value, .. } => {
                *addr = f(*addr);
                *value = f(*value);
            }
            Shfl { value, lane, .. } => {
                *value = f(*value);
                *lane = f(*lane);
            }
            CpAsync { dst, src, src_size, .. } => {
                *dst = f(*dst);
                *src = f(*src);
                if let Some(s) = src_size {
                    *s = f(*s);
                }
            }
            For { lo, hi, step, init, .. } => {
                *lo = f(*lo);
                *hi = f(*hi);
                *step = f(*step);
                init.iter_mut().for_each(|v| *v = f(*v));
            }
            If { cond, .. } => *cond = f(*cond),
        }
    }

    /// Regions owned by this instruction (loop body; then/else).
    pub fn regions(&self) -> Vec<Region> {
        match self {
            InstKind::For { body, .. } => vec![*body],
            InstKind::If { then_region, else_region, .. } => vec![*then_region, *else_region],
            _ => vec![],
        }
    }

    /// True when the instruction only computes its results from its operands: no memory, no
    /// register arrays, no warp or block interaction, no regions. Such instructions may be
    /// folded, merged (CSE) and deleted when unused.
    pub fn is_pure(&self) -> bool {
        use InstKind::*;
        matches!(
            self,
            Const { .. }
                | Special(_)
                | Unary(..)
                | Binary(..)
                | Fma(..)
                | Cmp(..)
                | Select(..)
                | Cast(..)
                | Half(..)
                | HalfFma(..)
                | F32x2ToFp8x2(..)
                | Fp8x2ToF16x2(..)
                | Extract(..)
                | Insert(..)
                | Build(..)
                | Shf(..)
                | Prmt(..)
                | Lop3(..)
                | Bfe { .. }
                | SharedAddr(_)
                | PtrAdd(..)
        )
    }

    /// True for warp-collective instructions: every lane of the warp must execute them together.
    pub fn is_warp_collective(&self) -> bool {
        matches!(
            self,
            InstKind::Shfl { .. }
                | InstKind::Ldmatrix { .. }
                | InstKind::Mma(..)
                | InstKind::Wgmma { .. }
                | InstKind::TmemAlloc { .. }
                | InstKind::TmemDealloc { .. }
                | InstKind::TmemLoad { .. }
                | InstKind::TmemStore { .. }
        )
    }
}

/// Byte offset of element `(row, k byte)` of a wgmma operand k-step in the canonical K-major,
/// unswizzled layout: 8 × 16-byte core matrices, each 128 contiguous bytes (row `r mod 8` at
/// `16 · (r mod 8)`); the two core matrices of a row group side by side in k (leading byte
/// offset 128) and row groups 256 bytes apart (stride byte offset 256). A k-step is 32 bytes
/// of each row (16 f16/bf16 or 32 s8/fp8 elements).
pub fn wgmma_offset(row: u32, k_byte: u32) -> u32 {
    (row / 8) * WGMMA_SBO + (k_byte / 16) * WGMMA_LBO + (row % 8) * 16 + k_byte % 16
}

/// The leading byte offset of [`wgmma_offset`]'s layout (between core matrices along k).
pub const WGMMA_LBO: u32 = 128;
/// The stride byte offset of [`wgmma_offset`]'s layout (between 8-row groups).
pub const WGMMA_SBO: u32 = 256;

/// An instruction and its results.
#[derive(Clone, Debug)]
pub struct InstData {
    /// What it does.
    pub kind: InstKind,
    /// Its result values (0, 1, or the carried values of a `for` / results of an `if`).
    pub results: Vec<Value>,
}

/// One kernel: parameters, launch shape, register arrays and the body.
#[derive(Clone, Debug)]
pub struct Kernel {
    /// Kernel name.
    pub name: String,
    /// Parameters; they are the body region's arguments in the same order.
    pub params: Vec<Param>,
    /// Threads per block in x, y, z.
    pub block_dim: [u32; 3],
    /// Bytes of shared memory per block (static).
    pub shared_bytes: u32,
    /// All values.
    pub values: PrimaryMap<Value, ValueData>,
    /// All instructions (not in program order; regions give the order).
    pub insts: PrimaryMap<Inst, InstData>,
    /// All regions.
    pub regions: PrimaryMap<Region, RegionData>,
    /// Register arrays.
    pub arrays: PrimaryMap<Array, ArrayData>,
    /// The top-level region.
    pub body: Region,
}

impl Kernel {
    /// An empty kernel with the given name and block size.
    pub fn new(name: &str, block_dim: [u32; 3]) -> Kernel {
        let mut regions = PrimaryMap::new();
        let body = regions.push(RegionData::default());
        Kernel {
            name: name.to_string(),
            params: Vec::new(),
            block_dim,
            shared_bytes: 0,
            values: PrimaryMap::new(),
            insts: PrimaryMap::new(),
            regions,
            arrays: PrimaryMap::new(),
            body,
        }
    }

    /// Threads per block.
    pub fn threads_per_block(&self) -> u32 {
        self.block_dim.iter().product()
    }

    /// The type of a value.
    pub fn ty(&self, v: Value) -> Type {
        self.values[v].ty
    }

    /// The instruction that defines `v`, if it is an instruction result.
    pub fn def_inst(&self, v: Value) -> Option<Inst> {
        match self.values[v].def {
            ValueDef::Result(i, _) => Some(i),
            ValueDef::Arg(..) => None,
        }
    }

    /// If `v` is defined by a `Const`, its bits.
    pub fn const_bits(&self, v: Value) -> Option<u64> {
        match self.def_inst(v).map(|i| &self.insts[i].kind) {
            Some(InstKind::Const { bits, .. }) => Some(*bits),
            _ => None,
        }
    }

    /// If `v` is an integer constant, its value sign-extended from its width.
    pub fn const_int(&self, v: Value) -> Option<i64> {
        let bits = self.const_bits(v)?;
        let w = self.ty(v).bits();
        if !self.ty(v).is_int_scalar() && self.ty(v) != Type::PRED {
            return None;
        }
        Some(if w >= 64 { bits as i64 } else { ((bits << (64 - w)) as i64) >> (64 - w) })
    }

    /// Calls `f` on every instruction in program order (pre-order: an instruction before the
    /// instructions of its regions).
    pub fn walk(&self, f: &mut impl FnMut(Inst)) {
        self.walk_region(self.body, f)
    }

    /// Like [`Kernel::walk`] from one region.
    pub fn walk_region(&self, r: Region, f: &mut impl FnMut(Inst)) {
        for &i in &self.regions[r].insts {
            f(i);
            for sub in self.insts[i].kind.regions() {
                self.walk_region(sub, f);
            }
        }
    }

    /// Number of uses of every value (by instructions reachable from the body).
    pub fn use_counts(&self) -> tilc_base::SecondaryMap<Value, u32> {
        let mut uses = tilc_base::SecondaryMap::new();
        self.walk(&mut |i| self.insts[i].kind.for_each_operand(|v| uses[v] += 1));
        uses
    }

    /// Number of instructions reachable from the body.
    pub fn inst_count(&self) -> usize {
        let mut n = 0;
        self.walk(&mut |_| n += 1);
        n
    }

    /// Creates a new value.
    pub(crate) fn make_value(&mut self, ty: Type, def: ValueDef) -> Value {
        self.values.push(ValueData { ty, def })
    }

    /// Appends a region argument of type `ty`.
    pub fn add_region_arg(&mut self, r: Region, ty: Type) -> Value {
        let n = self.regions[r].args.len() as u32;
        let v = self.make_value(ty, ValueDef::Arg(r, n));
        self.regions[r].args.push(v);
        v
    }

    /// Creates an instruction (not placed in any region) with results of the given types.
    pub fn make_inst(&mut self, kind: InstKind, result_types: &[Type]) -> Inst {
        let inst = self.insts.push(InstData { kind, results: Vec::new() });
        let results = result_types
            .iter()
            .enumerate()
            .map(|(n, &ty)| self.make_value(ty, ValueDef::Result(inst, n as u32)))
            .collect();
        self.insts[inst].results = results;
        inst
    }
}
