//! The lowering itself: a VM kernel with its layouts → one SIMT [`simt::Kernel`].
//!
//! Every VM value becomes per-thread SSA values: a scalar (uniform over the block) one value of
//! its dtype's carrier type ([`codec::carrier`]), a register tile one value per slot of its
//! layout, a shared tensor a byte offset in the block's shared window. The kernel's parameters
//! are the VM parameters in order: scalars as carriers, global tensors as `ptr.global` to their
//! packed bit streams. **Launch contract:** every tensor buffer is padded with zero bytes to a
//! multiple of 16 bytes, so that reading the 32-bit word holding a tensor's last element stays
//! inside the allocation.
//!
//! Data that must move between threads (a conversion between layouts, `reduce`, `dot`,
//! `hadamard`, a `view` across threads) goes through a *scratch* area of shared memory placed
//! after the program's own shared tensors, bracketed by barriers. Elements of sub-byte types are
//! read from their 32-bit words with a funnel shift and written with atomic and/or, so that
//! threads writing neighbouring elements of one word never race.
//!
//! This module knows the VM, tilc-layout and the SIMT IR, never PTX text.

mod copy;
mod hadamard;
mod mma;

use crate::infer::Inferred;
use crate::layout::{ThreadMap, default_layout, default_vector, local_remap};
use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;
use tilc_base::Span;
use tilc_dtype::{DType, FloatFormat, Overflow};
use tilc_layout::RegisterLayout;
use tilc_simt::codec::{self, SimtRounding};
use tilc_simt::{self as simt, AtomicOp, BinaryOp as SB, Builder, CastOp, CmpOp, Space, Special, Type as ST, UnaryOp as SU, Unroll};
use tilc_vm::{self as vm, BinaryOp, CastOverflow, CastRounding, InstKind, Param, ReduceOp, ScalarConst, SymExpr, SymOp, TileType, Type, UnaryOp};

/// Why a kernel cannot be lowered: the instruction's span and a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LowerError {
    /// What is not supported or went wrong.
    pub message: String,
    /// The VM instruction's source span.
    pub span: Span,
}

/// Options of the lowering.
#[derive(Clone, Debug)]
pub struct Options {
    /// Use tensor-core `mma.sync` for `dot` where an atom fits (else the generic shared-memory
    /// loop).
    pub mma: bool,
    /// Run the SIMT optimisation passes after lowering.
    pub optimize: bool,
    /// XOR-swizzle the rows of mma operands staged in shared memory (see `lower/mma.rs`);
    /// off only to measure what the swizzle saves.
    pub swizzle: bool,
    /// Run `dot` on sm_90a's warpgroup `wgmma` where the tile fits (64 rows, whole
    /// warpgroups). Off by default: the PTX it prints has not yet run on a Hopper GPU.
    pub wgmma: bool,
    /// Run `dot` on sm_100a's `tcgen05.mma` with the accumulator in tensor memory where the
    /// tile fits (128 rows, n a multiple of 16 up to 256, whole warpgroups). Off by default:
    /// the PTX it prints has not yet run on a Blackwell GPU.
    pub tcgen05: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options { mma: true, optimize: true, swizzle: true, wgmma: false, tcgen05: false }
    }
}

/// What the lowering decided, for reports and the `--emit simt` header.
#[derive(Clone, Debug, Default)]
pub struct LoweringInfo {
    /// Threads per block.
    pub threads: u32,
    /// Shared bytes of the program's own tensors.
    pub shared_user_bytes: u32,
    /// Shared bytes of the scratch area.
    pub shared_scratch_bytes: u32,
    /// One line per tile-producing instruction: `v12 = load … : layout`.
    pub layouts: Vec<String>,
    /// One line per global load: tensor, element type and the access width in bits chosen.
    pub global_loads: Vec<String>,
    /// The `dot`s and how each was lowered (mma atom or generic loop).
    pub dots: Vec<String>,
}

/// A lowered kernel.
#[derive(Clone, Debug)]
pub struct Lowered {
    /// The per-thread program.
    pub kernel: simt::Kernel,
    /// What was decided on the way.
    pub info: LoweringInfo,
}

type R<T> = Result<T, LowerError>;

/// A register tile: its layout and one carrier value per slot.
#[derive(Clone, Debug)]
struct Tile {
    dtype: DType,
    shape: Vec<usize>,
    layout: Rc<RegisterLayout>,
    map: Rc<ThreadMap>,
    regs: Vec<simt::Value>,
    /// Every element is one block-uniform value (`regs` all equal and the same in every
    /// thread): such a tile is free to produce in any layout.
    uniform: bool,
}

/// What a VM value is in the SIMT program.
#[derive(Clone, Debug)]
enum Lv {
    Scalar(simt::Value),
    Tile(Tile),
    Shared { offset: u32, tile: TileType },
}

/// Where a tile's slots land in a tensor (see [`Lx::placer`]).
struct Placer {
    map: ThreadMap,
    /// Per dimension of the tensor (I64): the tile's offset plus the thread's coordinate; a slot
    /// adds its constant coordinate (0 for the leading dimensions the tile does not have).
    starts: Vec<simt::Value>,
    /// Per dimension, the row-major stride in elements (I64; the innermost is the constant 1).
    strides: Vec<simt::Value>,
    /// `Σ starts[d]·strides[d]`: the thread's linear index at slot coordinates 0.
    lin0: simt::Value,
    /// Per dimension of a checked placer, `(−start, extent − start)` (I64).
    bounds: Vec<Option<(simt::Value, simt::Value)>>,
    extents: Vec<simt::Value>,
    check: bool,
}

/// How destination coordinates find their source element in a data-movement operation.
#[derive(Clone, Debug)]
enum Remap {
    /// NumPy broadcasting from the source shape (or the identity when shapes are equal).
    Broadcast,
    /// Result axis i is source axis `perm[i]`.
    Transpose(Vec<usize>),
    /// Same row-major linear index.
    Reshape,
}

impl Remap {
    fn source_of(&self, dst: &[usize], dst_shape: &[usize], src_shape: &[usize]) -> Vec<usize> {
        match self {
            Remap::Broadcast => {
                let off = dst.len() - src_shape.len();
                (0..src_shape.len()).map(|d| if src_shape[d] == 1 { 0 } else { dst[d + off] }).collect()
            }
            Remap::Transpose(perm) => {
                let mut s = vec![0; perm.len()];
                for (i, &p) in perm.iter().enumerate() {
                    s[p] = dst[i];
                }
                s
            }
            Remap::Reshape => crate::layout::unravel(crate::layout::linear(dst, dst_shape), src_shape),
        }
    }

    /// The coefficients `coef` with `linear(source_of(c), src_shape) = Σ c[d]·coef[d]`: every
    /// remap is linear in the result coordinates (a reshape keeps the row-major index), so a
    /// source position splits into a thread-dependent part and a per-slot constant.
    fn source_coefs(&self, dst_shape: &[usize], src_shape: &[usize]) -> Vec<i64> {
        let src_rm = row_major_strides(src_shape);
        match self {
            Remap::Broadcast => {
                let off = dst_shape.len() - src_shape.len();
                (0..dst_shape.len()).map(|d| if d >= off && src_shape[d - off] != 1 { src_rm[d - off] } else { 0 }).collect()
            }
            Remap::Transpose(perm) => perm.iter().map(|&p| src_rm[p]).collect(),
            Remap::Reshape => row_major_strides(dst_shape),
        }
    }
}

/// Row-major strides (in elements) of `shape`.
fn row_major_strides(shape: &[usize]) -> Vec<i64> {
    let mut strides = vec![1i64; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * shape[d + 1] as i64;
    }
    strides
}

/// Lowers a verified VM kernel.
pub fn lower(k: &vm::Kernel, opts: &Options) -> R<Lowered> {
    let threads = 32 * k.warps as usize;
    let mut b = Builder::new(&k.name, [threads as u32, 1, 1]);
    let mut params = Vec::new();
    let mut globals = HashMap::new();
    for p in &k.params {
        match *p {
            Param::Scalar(v) => {
                let d = k.ty(v).dtype();
                let sv = b.param(k.param_name(*p), codec::carrier(d), 1);
                params.push((v, sv));
            }
            Param::Tensor(g) => {
                let sv = b.param(k.param_name(*p), ST::GLOBAL_PTR, 16);
                globals.insert(g, sv);
            }
        }
    }
    let mut lx = Lx {
        k,
        b,
        threads,
        env: HashMap::new(),
        globals,
        global_shapes: HashMap::new(),
        tid: None,
        shared_next: 0,
        shared_of: HashMap::new(),
        shared_reuse: Default::default(),
        scratch_needed: 0,
        info: LoweringInfo { threads: threads as u32, ..LoweringInfo::default() },
        inferred: crate::infer::infer(k, threads, crate::infer::Engines { mma: opts.mma, wgmma: opts.mma && opts.wgmma, tcgen05: opts.mma && opts.tcgen05 }),
        cur_inst: None,
        swizzle: opts.swizzle,
        tmem: None,
    };
    for (v, sv) in params {
        lx.env.insert(v, Lv::Scalar(sv));
    }
    lx.plan_shared();
    // Extents of every global, computed once at the top so every region can use them.
    for g in k.globals.keys() {
        lx.global_shape(g, k.globals[g].span)?;
    }
    let tid = lx.b.special(Special::Tid(0));
    lx.tid = Some(tid);
    mma::allocate_tensor_memory(&mut lx);
    lx.body(&k.body)?;
    mma::free_tensor_memory(&mut lx);
    let scratch_base = lx.scratch_base();
    let total = scratch_base + lx.scratch_needed;
    lx.info.shared_user_bytes = lx.shared_next;
    lx.info.shared_scratch_bytes = lx.scratch_needed;
    let Lx { mut b, info, .. } = lx;
    b.set_shared_bytes(total);
    let mut kernel = b.finish();
    if opts.optimize {
        simt::passes::optimize(&mut kernel);
        crate::schedule::sink(&mut kernel);
    }
    Ok(Lowered { kernel, info })
}

struct Lx<'a> {
    k: &'a vm::Kernel,
    b: Builder,
    threads: usize,
    /// [`Options::swizzle`].
    swizzle: bool,
    env: HashMap<vm::Value, Lv>,
    globals: HashMap<vm::Global, simt::Value>,
    /// Extents (I64) of each global, computed once at first use.
    global_shapes: HashMap<vm::Global, Vec<simt::Value>>,
    tid: Option<simt::Value>,
    /// Bytes of shared memory used by the program's own tensors.
    shared_next: u32,
    /// Byte offset of each `alloc_shared`.
    shared_of: HashMap<vm::Inst, u32>,
    /// The `alloc_shared`s that reuse bytes of a dead tensor (a barrier precedes them).
    shared_reuse: std::collections::HashSet<vm::Inst>,
    /// Largest scratch area any operation needs.
    scratch_needed: u32,
    info: LoweringInfo,
    /// The layouts and mma plans decided by [`crate::infer`].
    inferred: Inferred,
    /// The instruction being lowered (its result's inferred layout is the one to produce).
    cur_inst: Option<vm::Inst>,
    /// The block's tensor memory and its mbarrier, when a `dot` runs on `tcgen05`.
    tmem: Option<mma::TensorMemory>,
}

fn align_up(x: u32, a: u32) -> u32 {
    x.div_ceil(a) * a
}

fn err<T>(span: Span, m: impl Into<String>) -> R<T> {
    Err(LowerError { message: m.into(), span })
}

fn is_f32(d: DType) -> bool {
    d == DType::Float(FloatFormat::F32)
}

fn is_f64(d: DType) -> bool {
    d.is_float() && d.bits() == 64
}

fn bool_dtype() -> DType {
    DType::UInt(1)
}

impl Lx<'_> {
    // ----- small helpers -----

    fn tid(&self) -> simt::Value {
        self.tid.expect("tid is read at the start")
    }

    fn i32c(&mut self, x: i64) -> simt::Value {
        self.b.i32(x as i32)
    }

    fn i64c(&mut self, x: i64) -> simt::Value {
        self.b.i64(x)
    }

    fn to_i64(&mut self, v: simt::Value) -> simt::Value {
        match self.b.kernel().ty(v) {
            ST::Scalar(simt::Scalar::I64) => v,
            _ => self.b.cast(CastOp::SExt, v, ST::I64),
        }
    }

    fn to_i32(&mut self, v: simt::Value) -> simt::Value {
        match self.b.kernel().ty(v) {
            ST::Scalar(simt::Scalar::I32) => v,
            ST::Scalar(simt::Scalar::I64) => self.b.cast(CastOp::Trunc, v, ST::I32),
            _ => self.b.cast(CastOp::ZExt, v, ST::I32),
        }
    }

    /// An I32 0/1 value as a predicate.
    fn to_pred(&mut self, v: simt::Value) -> simt::Value {
        if self.b.kernel().ty(v) == ST::PRED {
            return v;
        }
        let z = self.zero_of(self.b.kernel().ty(v));
        self.b.cmp(CmpOp::Ne, v, z)
    }

    fn pred_to_bool(&mut self, p: simt::Value) -> simt::Value {
        self.b.cast(CastOp::ZExt, p, ST::I32)
    }

    fn zero_of(&mut self, ty: ST) -> simt::Value {
        self.b.constant(ty, 0)
    }

    fn and_pred(&mut self, a: Option<simt::Value>, b: simt::Value) -> simt::Value {
        match a {
            None => b,
            Some(a) => self.b.binary(SB::And, a, b),
        }
    }

    fn scratch_base(&self) -> u32 {
        align_up(self.shared_next, 16)
    }

    fn need_scratch(&mut self, bytes: u32) -> u32 {
        let b = align_up(bytes + 4, 16);
        self.scratch_needed = self.scratch_needed.max(b);
        self.scratch_base()
    }

    fn shared_ptr(&mut self, base: u32, byte_off: simt::Value) -> simt::Value {
        let off = self.to_i32(byte_off);
        let basev = self.i32c(base as i64);
        let a = self.b.add(basev, off);
        self.b.shared_addr(a)
    }

    // ----- shared memory planning -----

    /// The shared-memory plan: each `alloc_shared` lives from its allocation to its last use (to
    /// the end of a loop that uses it but does not allocate it), and gets the lowest 16-byte
    /// aligned offset free for its whole life (first fit, in program order). A tensor that
    /// reuses bytes of a dead one starts with a barrier (see `inst`), so no thread still reads
    /// the old tensor when the new one is written.
    fn plan_shared(&mut self) {
        let k = self.k;
        // Positions in pre-order, loop spans, and each value's uses.
        let mut pos = 0usize;
        let mut at: HashMap<vm::Inst, usize> = HashMap::new();
        let mut spans: Vec<(usize, usize)> = Vec::new();
        fn walk(k: &vm::Kernel, body: &[vm::Inst], pos: &mut usize, at: &mut HashMap<vm::Inst, usize>, spans: &mut Vec<(usize, usize)>) {
            for &i in body {
                *pos += 1;
                let start = *pos;
                at.insert(i, start);
                match &k.insts[i].kind {
                    InstKind::For { body, .. } => {
                        walk(k, body, pos, at, spans);
                        spans.push((start, *pos));
                    }
                    InstKind::While { cond_body, body, .. } => {
                        walk(k, cond_body, pos, at, spans);
                        walk(k, body, pos, at, spans);
                        spans.push((start, *pos));
                    }
                    InstKind::If { then_body, else_body, .. } => {
                        walk(k, then_body, pos, at, spans);
                        walk(k, else_body, pos, at, spans);
                    }
                    _ => {}
                }
            }
        }
        walk(k, &k.body, &mut pos, &mut at, &mut spans);
        let mut allocs: Vec<(vm::Inst, usize, usize, u32)> = Vec::new();
        k.walk(&mut |i| {
            if let InstKind::AllocShared { tile } = &k.insts[i].kind {
                let bytes = align_up(tilc_dtype::pack::packed_len(tile.numel(), tile.dtype.bits()) as u32 + 4, 16);
                let start = at[&i];
                let mut end = start;
                if let Some(r) = k.insts[i].result {
                    k.walk(&mut |u| {
                        if k.insts[u].kind.operands().contains(&r) {
                            let mut e = at[&u];
                            for &(s0, s1) in &spans {
                                if s0 > start && s0 <= e && e <= s1 {
                                    e = e.max(s1);
                                }
                            }
                            end = end.max(e);
                        }
                    });
                }
                allocs.push((i, start, end, bytes));
            }
        });
        let mut placed: Vec<(usize, usize, u32, u32)> = Vec::new(); // start, end, offset, bytes
        let mut top = 0u32;
        for (i, start, end, bytes) in allocs {
            let live: Vec<(u32, u32)> = placed.iter().filter(|p| p.0 <= end && start <= p.1).map(|p| (p.2, p.3)).collect();
            let mut off = 0u32;
            loop {
                match live.iter().find(|&&(o, b)| off < o + b && o < off + bytes) {
                    Some(&(o, b)) => off = align_up(o + b, 16),
                    None => break,
                }
            }
            // Bytes some earlier (now dead) tensor used: a barrier must precede the reuse.
            if placed.iter().any(|p| p.1 < start && off < p.2 + p.3 && p.2 < off + bytes) {
                self.shared_reuse.insert(i);
            }
            placed.push((start, end, off, bytes));
            self.shared_of.insert(i, off);
            top = top.max(off + bytes);
        }
        self.shared_next = top;
    }

    // ----- values -----

    fn get(&self, v: vm::Value, span: Span) -> R<Lv> {
        match self.env.get(&v) {
            Some(x) => Ok(x.clone()),
            None => err(span, format!("{v} is read before it is assigned")),
        }
    }

    fn scalar(&self, v: vm::Value, span: Span) -> R<simt::Value> {
        match self.get(v, span)? {
            Lv::Scalar(s) => Ok(s),
            _ => err(span, format!("{v} should be a scalar")),
        }
    }

    fn tile(&self, v: vm::Value, span: Span) -> R<Tile> {
        match self.get(v, span)? {
            Lv::Tile(t) => Ok(t),
            _ => err(span, format!("{v} should be a register tile")),
        }
    }

    fn make_tile(&self, dtype: DType, shape: Vec<usize>, layout: RegisterLayout, regs: Vec<simt::Value>) -> Tile {
        let map = Rc::new(ThreadMap::new(&layout));
        Tile { dtype, shape, layout: Rc::new(layout), map, regs, uniform: false }
    }

    /// A tile whose every element is the block-uniform scalar `s`.
    fn make_uniform(&self, dtype: DType, shape: Vec<usize>, layout: RegisterLayout, s: simt::Value) -> Tile {
        let n = layout.local_size();
        Tile { uniform: true, ..self.make_tile(dtype, shape, layout, vec![s; n]) }
    }

    /// The inferred layout of the current instruction's result (the default when inference
    /// has none, e.g. for an instruction without a tile result).
    fn result_layout(&self, dtype: DType, shape: &[usize]) -> RegisterLayout {
        self.cur_inst
            .and_then(|i| self.k.insts[i].result)
            .and_then(|r| self.inferred.layouts.get(&r))
            .filter(|l| l.shape() == shape)
            .cloned()
            .unwrap_or_else(|| self.default_layout_for(dtype, shape))
    }

    fn default_layout_for(&self, dtype: DType, shape: &[usize]) -> RegisterLayout {
        let v = default_vector(dtype.bits(), shape[shape.len() - 1]);
        default_layout(shape, self.threads, v)
    }

    /// Per-dimension I32 values of the thread-dependent part of `map`'s coordinates.
    fn thread_coords(&mut self, map: &ThreadMap) -> Vec<simt::Value> {
        let tid = self.tid();
        let mut out = Vec::with_capacity(map.shape.len());
        for terms in &map.thread_terms {
            let mut acc = self.i32c(0);
            for &(below, size, stride) in terms {
                let bv = self.i32c(below as i64);
                let q = self.b.binary(SB::DivU, tid, bv);
                let sv = self.i32c(size as i64);
                let r = self.b.binary(SB::RemU, q, sv);
                let st = self.i32c(stride as i64);
                let t = self.b.mul(r, st);
                acc = self.b.add(acc, t);
            }
            out.push(acc);
        }
        out
    }

    /// I32 coordinates of slot `j`.
    fn slot_coords(&mut self, map: &ThreadMap, tc: &[simt::Value], j: usize) -> Vec<simt::Value> {
        (0..map.shape.len())
            .map(|d| {
                let c = self.i32c(map.local_coords[j][d] as i64);
                self.b.add(tc[d], c)
            })
            .collect()
    }

    /// The predicate "this thread is the primary holder of its elements" (None: always).
    fn primary_pred(&mut self, map: &ThreadMap) -> Option<simt::Value> {
        let tid = self.tid();
        let mut p = None;
        for &(below, size) in &map.replicas {
            let bv = self.i32c(below as i64);
            let q = self.b.binary(SB::DivU, tid, bv);
            let sv = self.i32c(size as i64);
            let r = self.b.binary(SB::RemU, q, sv);
            let z = self.i32c(0);
            let c = self.b.cmp(CmpOp::Eq, r, z);
            p = Some(self.and_pred(p, c));
        }
        p
    }

    /// The thread-dependent part `Σ tc[d]·coef[d]` (I32) of an element index that is affine in
    /// the tile coordinates; the slot-dependent part is the constant `Σ local[d]·coef[d]`.
    fn thread_linear(&mut self, tc: &[simt::Value], coef: &[i64]) -> simt::Value {
        let mut acc: Option<simt::Value> = None;
        for (d, &c) in coef.iter().enumerate() {
            if c == 0 {
                continue;
            }
            let cv = self.i32c(c);
            let t = self.b.mul(tc[d], cv);
            acc = Some(match acc {
                Some(a) => self.b.add(a, t),
                None => t,
            });
        }
        acc.unwrap_or_else(|| self.i32c(0))
    }

    /// Slot `j`'s constant part of the affine index of [`Self::thread_linear`].
    fn slot_linear(map: &ThreadMap, j: usize, coef: &[i64]) -> i64 {
        map.local_coords[j].iter().zip(coef).map(|(&c, &k)| c as i64 * k).sum()
    }

    /// The thread's pointer into an array of `width`-byte elements of shared memory, at its
    /// thread-dependent element `thread_lin`; [`Self::shared_slot`] adds a slot's constant.
    /// Splitting the address so keeps every slot's constant out of the index arithmetic: LLVM
    /// folds it into the access's immediate offset, so a slot costs no register of its own
    /// (computing `(t + c)·w` per slot instead let LLVM hoist one address per slot out of the
    /// main loop: hundreds of live registers and spills in the GEMMs).
    fn shared_thread_ptr(&mut self, thread_lin: simt::Value, width: u32) -> simt::Value {
        let w = self.i32c(width as i64);
        let off = self.b.mul(thread_lin, w);
        self.b.shared_addr(off)
    }

    /// `thread_ptr + base + konst·width` bytes (see [`Self::shared_thread_ptr`]).
    fn shared_slot(&mut self, thread_ptr: simt::Value, base: u32, konst: i64, width: u32) -> simt::Value {
        let c = self.i32c(base as i64 + konst * width as i64);
        self.b.ptr_add(thread_ptr, c)
    }

    /// Row-major linear index (I32) of coordinates in a constant shape.
    fn linear_i32(&mut self, c: &[simt::Value], shape: &[usize]) -> simt::Value {
        let mut acc = self.i32c(0);
        for (d, &x) in c.iter().enumerate() {
            let n = self.i32c(shape[d] as i64);
            let m = self.b.mul(acc, n);
            acc = self.b.add(m, x);
        }
        acc
    }

    // ----- the body -----

    fn body(&mut self, body: &[vm::Inst]) -> R<()> {
        for &i in body {
            self.inst(i)?;
        }
        Ok(())
    }

    fn result_tile_type(&self, i: vm::Inst) -> Option<TileType> {
        self.k.insts[i].result.and_then(|r| self.k.ty(r).as_tile().cloned())
    }

    fn set(&mut self, i: vm::Inst, lv: Lv) {
        if let Some(r) = self.k.insts[i].result {
            if let Lv::Tile(t) = &lv {
                let text = tilc_layout::to_expr(&t.layout).map(|e| e.to_string()).unwrap_or_else(|| t.layout.to_string());
                self.info.layouts.push(format!("{r} : {}{} = {text}", t.dtype, vm::ShapeDisplay(&t.shape)));
            }
            self.env.insert(r, lv);
        }
    }

    fn inst(&mut self, i: vm::Inst) -> R<()> {
        let k = self.k;
        let data = &k.insts[i];
        let span = data.span;
        let result_ty = data.result.map(|r| k.ty(r).clone());
        self.cur_inst = Some(i);
        match &data.kind {
            InstKind::Const(c) => {
                let d = result_ty.as_ref().map(Type::dtype).unwrap_or(DType::Int(32));
                let v = self.constant(d, *c);
                self.set(i, Lv::Scalar(v));
            }
            InstKind::BlockIdx { axis } => {
                let v = self.b.special(Special::Ctaid(*axis));
                self.set(i, Lv::Scalar(v));
            }
            InstKind::Iota { dtype, shape, axis } => {
                let layout = self.result_layout(*dtype, shape);
                let map = ThreadMap::new(&layout);
                let tc = self.thread_coords(&map);
                let mut regs = Vec::with_capacity(map.slots);
                for j in 0..map.slots {
                    let c = self.slot_coords(&map, &tc, j);
                    let v = self.int_to_carrier(*dtype, c[*axis]);
                    regs.push(v);
                }
                let t = self.make_tile(*dtype, shape.clone(), layout, regs);
                self.set(i, Lv::Tile(t));
            }
            InstKind::Unary { op, x } => {
                let d = k.ty(*x).dtype();
                let out = self.map_elementwise(i, &[*x], span, |lx, v| lx.unary(*op, d, v[0], span))?;
                self.set(i, out);
            }
            InstKind::Binary { op, a, b } => {
                let d = k.ty(*a).dtype();
                let out = self.map_elementwise(i, &[*a, *b], span, |lx, v| lx.binary(*op, d, v[0], v[1], span))?;
                self.set(i, out);
            }
            InstKind::Select { cond, a, b } => {
                let out = self.map_elementwise(i, &[*cond, *a, *b], span, |lx, v| {
                    let p = lx.to_pred(v[0]);
                    Ok(lx.b.select(p, v[1], v[2]))
                })?;
                self.set(i, out);
            }
            InstKind::Cast { x, dtype, rounding, overflow } => {
                let out = self.cast(i, *x, *dtype, rounding, *overflow, span)?;
                self.set(i, out);
            }
            InstKind::Full { value, shape } => {
                let s = self.scalar(*value, span)?;
                let d = k.ty(*value).dtype();
                let layout = self.result_layout(d, shape);
                        let t = self.make_uniform(d, shape.clone(), layout, s);
                self.set(i, Lv::Tile(t));
            }
            InstKind::LoadGlobal { global, offsets, shape } => {
                let t = self.load_global(*global, offsets, shape, span)?;
                self.set(i, Lv::Tile(t));
            }
            InstKind::StoreGlobal { global, offsets, value } => self.store_global(*global, offsets, *value, span)?,
            InstKind::AllocShared { tile } => {
                if self.shared_reuse.contains(&i) {
                    self.b.barrier();
                }
                let offset = self.shared_of[&i];
                self.set(i, Lv::Shared { offset, tile: tile.clone() });
            }
            InstKind::LoadShared { shared, offsets, shape } => {
                let t = self.load_shared(*shared, offsets, shape, span)?;
                self.set(i, Lv::Tile(t));
            }
            InstKind::StoreShared { shared, offsets, value } => self.store_shared(*shared, offsets, *value, span)?,
            InstKind::CopyAsync { global, offsets, shared, shared_offsets, shape } => {
                copy::copy_async(self, *global, offsets, *shared, shared_offsets, shape, span)?
            }
            InstKind::CopyAsyncCommit => copy::commit(self),
            InstKind::CopyAsyncWait { pending } => copy::wait(self, *pending),
            InstKind::Sync => {
                self.b.barrier();
            }
            InstKind::View { x, dtype, shape } => {
                let t = self.view(*x, *dtype, shape, span)?;
                self.set(i, Lv::Tile(t));
            }
            InstKind::Dot { a, b, c } => {
                let t = self.dot(*a, *b, *c, span)?;
                self.set(i, Lv::Tile(t));
            }
            InstKind::Reduce { op, x, axis, .. } => {
                let out = self.result_tile_type(i).expect("reduce has a tile result");
                let t = self.reduce(*op, *x, *axis, &out.shape, span)?;
                self.set(i, Lv::Tile(t));
            }
            InstKind::Transpose { x, perm } => {
                let out = self.result_tile_type(i).expect("transpose has a tile result");
                let src = self.tile(*x, span)?;
                let layout = self.result_layout(out.dtype, &out.shape);
                let regs = self.convert(&src, &layout, &out.shape, &Remap::Transpose(perm.clone()))?;
                let t = self.make_tile(out.dtype, out.shape.clone(), layout, regs);
                self.set(i, Lv::Tile(t));
            }
            InstKind::Reshape { x, shape } => {
                let src = self.tile(*x, span)?;
                let layout = self.result_layout(src.dtype, shape);
                let regs = self.convert(&src, &layout, shape, &Remap::Reshape)?;
                let t = self.make_tile(src.dtype, shape.clone(), layout, regs);
                self.set(i, Lv::Tile(t));
            }
            InstKind::Broadcast { x, shape } => {
                let d = k.ty(*x).dtype();
                let t = match self.get(*x, span)? {
                    Lv::Scalar(s) => {
                        let layout = self.result_layout(d, shape);
                        self.make_uniform(d, shape.clone(), layout, s)
                    }
                    Lv::Tile(src) => {
                        let layout = self.result_layout(d, shape);
                        let regs = self.convert(&src, &layout, shape, &Remap::Broadcast)?;
                        self.make_tile(d, shape.clone(), layout, regs)
                    }
                    Lv::Shared { .. } => return err(span, "broadcast of a shared tensor"),
                };
                self.set(i, Lv::Tile(t));
            }
            InstKind::Hadamard { x, axis } => {
                let t = hadamard::lower(self, *x, *axis, span)?;
                self.set(i, Lv::Tile(t));
            }
            InstKind::Assign { var, value } => self.assign(*var, *value, span)?,
            InstKind::For { var, start, end, step, body, unroll } => {
                self.for_loop(*var, *start, *end, *step, body, *unroll, span)?
            }
            InstKind::If { cond, then_body, else_body } => self.if_else(*cond, then_body, else_body, span)?,
            InstKind::While { .. } => {
                return err(span, "`while` loops are not supported by the SIMT lowering yet (use `for`)");
            }
            // Promises are checked by the interpreter; the GPU code may rely on them.
            InstKind::Assume { .. } => {}
        }
        Ok(())
    }

    // ----- scalars and element operations -----

    fn constant(&mut self, d: DType, c: ScalarConst) -> simt::Value {
        let ty = codec::carrier(d);
        match (c, ty) {
            (ScalarConst::Int(x), ST::Scalar(simt::Scalar::I32)) => {
                let code = (x as u64) & d.code_mask();
                let v = self.i32c(code as i64);
                codec::wrap_int(&mut self.b, d, v)
            }
            (ScalarConst::Int(x), ST::Scalar(simt::Scalar::I64)) => self.i64c(x),
            (ScalarConst::Int(x), ST::Scalar(simt::Scalar::F64)) => self.b.constant(ST::F64, (x as f64).to_bits()),
            (ScalarConst::Int(x), _) => self.b.f32(x as f32),
            (ScalarConst::Float(x), ST::Scalar(simt::Scalar::F64)) => self.b.constant(ST::F64, x.to_bits()),
            (ScalarConst::Float(x), _) => self.b.f32(x as f32),
        }
    }

    /// An I32 integer (a coordinate) as the carrier of integer dtype `d`, wrapped to its width.
    fn int_to_carrier(&mut self, d: DType, v: simt::Value) -> simt::Value {
        if d.bits() == 64 {
            let w = self.to_i64(v);
            return w;
        }
        codec::wrap_int(&mut self.b, d, v)
    }

    fn unary(&mut self, op: UnaryOp, d: DType, x: simt::Value, span: Span) -> R<simt::Value> {
        if d.is_int() {
            let r = match op {
                UnaryOp::Neg => self.b.unary(SU::Neg, x),
                UnaryOp::Abs => {
                    let z = self.zero_of(self.b.kernel().ty(x));
                    let neg = self.b.cmp(CmpOp::Slt, x, z);
                    let n = self.b.unary(SU::Neg, x);
                    self.b.select(neg, n, x)
                }
                UnaryOp::Not if d == bool_dtype() => {
                    let one = self.i32c(1);
                    self.b.sub(one, x)
                }
                UnaryOp::Not => self.b.unary(SU::Not, x),
                _ => return err(span, format!("`{}` is defined on floats only", op.name())),
            };
            return Ok(self.wrap(d, r));
        }
        let r = match op {
            UnaryOp::Neg => return Ok(self.b.unary(SU::FNeg, x)),
            UnaryOp::Abs => return Ok(self.b.unary(SU::FAbs, x)),
            UnaryOp::Not => return err(span, "`not` is defined on integers only"),
            UnaryOp::Floor => return Ok(self.b.unary(SU::FFloor, x)),
            UnaryOp::Ceil => return Ok(self.b.unary(SU::FCeil, x)),
            UnaryOp::Trunc => return Ok(self.b.unary(SU::FTrunc, x)),
            UnaryOp::Round => return Ok(self.b.unary(SU::FRound, x)),
            UnaryOp::Sqrt => SU::FSqrt,
            UnaryOp::Exp => SU::FExp,
            UnaryOp::Exp2 => SU::FExp2,
            UnaryOp::Log => SU::FLog,
            UnaryOp::Log2 => SU::FLog2,
            UnaryOp::Rsqrt => SU::FRsqrt,
        };
        if is_f32(d) || is_f64(d) || op == UnaryOp::Sqrt {
            // f32: the f64 result rounded once to f32 is what the op computes; sqrt is
            // correctly rounded in f32, and rounding it again to a narrower format is innocuous.
            let y = self.b.unary(r, x);
            return Ok(self.round_to(d, y));
        }
        // A narrower format: compute in f64 and round once, as the interpreter does.
        let w = self.b.cast(CastOp::FConvert, x, ST::F64);
        let y = self.b.unary(r, w);
        Ok(codec::round_value(&mut self.b, d, y))
    }

    /// Rounds an F32/F64 result of an operation to float type `d` (nothing to do for f32/f64).
    fn round_to(&mut self, d: DType, y: simt::Value) -> simt::Value {
        if is_f32(d) || is_f64(d) {
            y
        } else {
            codec::round_value(&mut self.b, d, y)
        }
    }

    fn wrap(&mut self, d: DType, x: simt::Value) -> simt::Value {
        if d.bits() >= 32 { x } else { codec::wrap_int(&mut self.b, d, x) }
    }

    fn is_nan(&mut self, x: simt::Value) -> simt::Value {
        self.b.cmp(CmpOp::FNe, x, x)
    }

    fn binary(&mut self, op: BinaryOp, d: DType, a: simt::Value, b: simt::Value, span: Span) -> R<simt::Value> {
        if d.is_int() {
            return self.int_binary(op, d, a, b, span);
        }
        let ty = self.b.kernel().ty(a);
        let cmp = |op: BinaryOp| match op {
            BinaryOp::Eq => Some(CmpOp::FEq),
            BinaryOp::Ne => Some(CmpOp::FNe),
            BinaryOp::Lt => Some(CmpOp::FLt),
            BinaryOp::Le => Some(CmpOp::FLe),
            BinaryOp::Gt => Some(CmpOp::FGt),
            BinaryOp::Ge => Some(CmpOp::FGe),
            _ => None,
        };
        if let Some(c) = cmp(op) {
            let p = self.b.cmp(c, a, b);
            return Ok(self.pred_to_bool(p));
        }
        let r = match op {
            BinaryOp::Add => self.b.binary(SB::FAdd, a, b),
            BinaryOp::Sub => self.b.binary(SB::FSub, a, b),
            BinaryOp::Mul => self.b.binary(SB::FMul, a, b),
            BinaryOp::Div => self.b.binary(SB::FDiv, a, b),
            BinaryOp::Min | BinaryOp::Max => {
                let m = self.b.binary(if op == BinaryOp::Min { SB::FMin } else { SB::FMax }, a, b);
                let na = self.is_nan(a);
                let nb = self.is_nan(b);
                let any = self.b.binary(SB::Or, na, nb);
                let nan = match ty {
                    ST::Scalar(simt::Scalar::F64) => self.b.constant(ST::F64, f64::NAN.to_bits()),
                    _ => self.b.f32(f32::NAN),
                };
                return Ok(self.b.select(any, nan, m));
            }
            BinaryOp::Rem => return err(span, "float `%` is not supported by the SIMT lowering yet"),
            _ => return err(span, format!("`{}` is defined on integers only", op.name())),
        };
        Ok(self.round_to(d, r))
    }

    fn int_binary(&mut self, op: BinaryOp, d: DType, a: simt::Value, b: simt::Value, _span: Span) -> R<simt::Value> {
        // Carriers hold the value extended to 32 (or 64) bits, so a signed operation is right
        // for every type except the unsigned ones that fill the carrier.
        let unsigned_full = !d.is_signed() && (d.bits() == 32 || d.bits() == 64);
        let cmp = |op: BinaryOp| -> Option<CmpOp> {
            Some(match (op, unsigned_full) {
                (BinaryOp::Eq, _) => CmpOp::Eq,
                (BinaryOp::Ne, _) => CmpOp::Ne,
                (BinaryOp::Lt, false) => CmpOp::Slt,
                (BinaryOp::Le, false) => CmpOp::Sle,
                (BinaryOp::Gt, false) => CmpOp::Sgt,
                (BinaryOp::Ge, false) => CmpOp::Sge,
                (BinaryOp::Lt, true) => CmpOp::Ult,
                (BinaryOp::Le, true) => CmpOp::Ule,
                (BinaryOp::Gt, true) => CmpOp::Ugt,
                (BinaryOp::Ge, true) => CmpOp::Uge,
                _ => return None,
            })
        };
        if let Some(c) = cmp(op) {
            let p = self.b.cmp(c, a, b);
            return Ok(self.pred_to_bool(p));
        }
        let r = match op {
            BinaryOp::Add => self.b.binary(SB::Add, a, b),
            BinaryOp::Sub => self.b.binary(SB::Sub, a, b),
            BinaryOp::Mul => self.b.binary(SB::Mul, a, b),
            BinaryOp::Div => self.b.binary(if unsigned_full { SB::DivU } else { SB::DivS }, a, b),
            BinaryOp::Rem => self.b.binary(if unsigned_full { SB::RemU } else { SB::RemS }, a, b),
            BinaryOp::CeilDiv => {
                let q = self.b.binary(SB::DivS, a, b);
                let r = self.b.binary(SB::RemS, a, b);
                let ty = self.b.kernel().ty(a);
                let z = self.zero_of(ty);
                let nz = self.b.cmp(CmpOp::Ne, r, z);
                let an = self.b.cmp(CmpOp::Slt, a, z);
                let bn = self.b.cmp(CmpOp::Slt, b, z);
                let same = self.b.binary(SB::Xor, an, bn);
                let t = self.b.pred(true);
                let same = self.b.binary(SB::Xor, same, t);
                let up = self.b.binary(SB::And, nz, same);
                let one = self.b.constant(ty, 1);
                let q1 = self.b.add(q, one);
                self.b.select(up, q1, q)
            }
            BinaryOp::Min => self.b.binary(if unsigned_full { SB::MinU } else { SB::MinS }, a, b),
            BinaryOp::Max => self.b.binary(if unsigned_full { SB::MaxU } else { SB::MaxS }, a, b),
            BinaryOp::And => self.b.binary(SB::And, a, b),
            BinaryOp::Or => self.b.binary(SB::Or, a, b),
            BinaryOp::Xor => self.b.binary(SB::Xor, a, b),
            BinaryOp::Shl => self.b.binary(SB::Shl, a, b),
            BinaryOp::Shr => self.b.binary(if d.is_signed() { SB::ShrS } else { SB::ShrU }, a, b),
            _ => unreachable!("comparisons handled above"),
        };
        Ok(self.wrap(d, r))
    }

    /// Lowers an elementwise instruction over scalars and tiles with broadcasting: the result
    /// takes the layout of the first tile operand of the result's shape.
    fn map_elementwise(
        &mut self,
        i: vm::Inst,
        operands: &[vm::Value],
        span: Span,
        mut f: impl FnMut(&mut Self, &[simt::Value]) -> R<simt::Value>,
    ) -> R<Lv> {
        let vals: Vec<Lv> = operands.iter().map(|&v| self.get(v, span)).collect::<R<_>>()?;
        let Some(out) = self.result_tile_type(i) else {
            let s: Vec<simt::Value> = vals
                .iter()
                .map(|v| match v {
                    Lv::Scalar(s) => Ok(*s),
                    _ => err(span, "a scalar operation with a tile operand"),
                })
                .collect::<R<_>>()?;
            return Ok(Lv::Scalar(f(self, &s)?));
        };
        let layout = self.result_layout(out.dtype, &out.shape);
        let slots = layout.local_size();
        let mut per_operand: Vec<Vec<simt::Value>> = Vec::new();
        for v in &vals {
            per_operand.push(match v {
                Lv::Scalar(s) => vec![*s; slots],
                Lv::Tile(t) => self.convert(t, &layout, &out.shape, &Remap::Broadcast)?,
                Lv::Shared { .. } => return err(span, "an elementwise operation on a shared tensor"),
            });
        }
        let mut regs = Vec::with_capacity(slots);
        for j in 0..slots {
            let args: Vec<simt::Value> = per_operand.iter().map(|o| o[j]).collect();
            regs.push(f(self, &args)?);
        }
        Ok(Lv::Tile(self.make_tile(out.dtype, out.shape.clone(), layout, regs)))
    }

    fn cast(&mut self, i: vm::Inst, x: vm::Value, to: DType, rounding: &CastRounding, overflow: CastOverflow, span: Span) -> R<Lv> {
        let from = self.k.ty(x).dtype();
        let ov = match overflow {
            CastOverflow::Saturate => Overflow::Saturate,
            CastOverflow::Wrap => Overflow::NonSaturating,
        };
        let simple = |r: &CastRounding| match r {
            CastRounding::NearestEven => Some(SimtRounding::NearestEven),
            CastRounding::TowardZero => Some(SimtRounding::TowardZero),
            CastRounding::TowardPositive => Some(SimtRounding::TowardPositive),
            CastRounding::TowardNegative => Some(SimtRounding::TowardNegative),
            CastRounding::Stochastic { .. } => None,
        };
        if let Some(r) = simple(rounding) {
            let mut operands = vec![x];
            operands.truncate(1);
            return self.map_elementwise(i, &operands, span, |lx, v| {
                let r = match r {
                    SimtRounding::NearestEven => SimtRounding::NearestEven,
                    SimtRounding::TowardZero => SimtRounding::TowardZero,
                    SimtRounding::TowardPositive => SimtRounding::TowardPositive,
                    _ => SimtRounding::TowardNegative,
                };
                Ok(codec::convert(&mut lx.b, from, to, v[0], r, ov))
            });
        }
        let CastRounding::Stochastic { seed, index } = rounding else { unreachable!("handled above") };
        let seed = self.scalar(*seed, span)?;
        let seed = self.to_i64(seed);
        match self.get(x, span)? {
            Lv::Scalar(s) => {
                let idx = match index {
                    Some(ix) => {
                        let v = self.scalar(*ix, span)?;
                        self.to_i64(v)
                    }
                    None => self.block_linear_i64(),
                };
                let r = SimtRounding::Stochastic { seed, index: idx };
                Ok(Lv::Scalar(codec::convert(&mut self.b, from, to, s, r, ov)))
            }
            Lv::Tile(t) => {
                let index_regs = match index {
                    Some(ix) => {
                        let it = self.tile(*ix, span)?;
                        let regs = self.convert(&it, &t.layout, &t.shape, &Remap::Broadcast)?;
                        regs.into_iter().map(|r| self.to_i64(r)).collect::<Vec<_>>()
                    }
                    None => {
                        // block_linear × numel + row-major position.
                        let bl = self.block_linear_i64();
                        let n = self.i64c(t.shape.iter().product::<usize>() as i64);
                        let base = self.b.mul(bl, n);
                        let map = t.map.clone();
                        let tc = self.thread_coords(&map);
                        let mut out = Vec::new();
                        for j in 0..map.slots {
                            let c = self.slot_coords(&map, &tc, j);
                            let lin = self.linear_i32(&c, &t.shape);
                            let lin = self.to_i64(lin);
                            out.push(self.b.add(base, lin));
                        }
                        out
                    }
                };
                let mut regs = Vec::with_capacity(t.regs.len());
                for (j, &v) in t.regs.iter().enumerate() {
                    let r = SimtRounding::Stochastic { seed, index: index_regs[j] };
                    regs.push(codec::convert(&mut self.b, from, to, v, r, ov));
                }
                Ok(Lv::Tile(Tile { dtype: to, regs, uniform: false, ..t }))
            }
            Lv::Shared { .. } => err(span, "cast of a shared tensor"),
        }
    }

    /// `x + gx·(y + gy·z)` as I64.
    fn block_linear_i64(&mut self) -> simt::Value {
        let x = self.b.special(Special::Ctaid(0));
        let y = self.b.special(Special::Ctaid(1));
        let z = self.b.special(Special::Ctaid(2));
        let gx = self.b.special(Special::Nctaid(0));
        let gy = self.b.special(Special::Nctaid(1));
        let (x, y, z, gx, gy) = (self.to_i64(x), self.to_i64(y), self.to_i64(z), self.to_i64(gx), self.to_i64(gy));
        let t = self.b.mul(gy, z);
        let t = self.b.add(y, t);
        let t = self.b.mul(gx, t);
        self.b.add(x, t)
    }

    // ----- conversions between layouts -----

    /// `src` in layout `dst` without moving data between threads — the same layout, a uniform
    /// fill, or a permutation of each thread's own registers — or `None` when data must move.
    fn convert_in_registers(&self, src: &Tile, dst: &RegisterLayout, dst_shape: &[usize], remap: &Remap) -> Option<Vec<simt::Value>> {
        let src_shape = &src.shape;
        let same = matches!(remap, Remap::Broadcast | Remap::Reshape) && src_shape == dst_shape && *src.layout == *dst;
        if same {
            return Some(src.regs.clone());
        }
        // A uniform fill (every register the same value) is free in any layout.
        if src.uniform
            && let Some(&first) = src.regs.first()
        {
            return Some(vec![first; dst.local_size()]);
        }
        let f = |c: &[usize]| remap.source_of(c, dst_shape, src_shape);
        local_remap(&src.layout, dst, self.threads, &f).map(|slots| slots.into_iter().map(|s| src.regs[s]).collect())
    }

    /// The registers of `src` rearranged into layout `dst` of `dst_shape`, where each
    /// destination element is the source element `remap` names. Free when local; otherwise
    /// through the shared scratch area.
    fn convert(&mut self, src: &Tile, dst: &RegisterLayout, dst_shape: &[usize], remap: &Remap) -> R<Vec<simt::Value>> {
        if let Some(regs) = self.convert_in_registers(src, dst, dst_shape, remap) {
            return Ok(regs);
        }
        let src_shape = src.shape.clone();
        // A broadcast moves only the source's elements: into the layout `dst` reduced to the
        // source's shape (each thread then holds every element its broadcast slots read, once),
        // and from there to `dst` in registers. A per-scale-column broadcast over a GEMM
        // accumulator so costs 8 scratch reads per thread, not one per accumulator element.
        if matches!(remap, Remap::Broadcast)
            && src_shape != dst_shape
            && let Ok(mid) = tilc_layout::reduce_to(dst, &src_shape)
            && mid.num_threads() == self.threads
            && mid.local_size() < dst.local_size()
        {
            let regs = self.convert(src, &mid, &src_shape, &Remap::Broadcast)?;
            let t = self.make_tile(src.dtype, src_shape.clone(), mid, regs);
            if let Some(regs) = self.convert_in_registers(&t, dst, dst_shape, remap) {
                return Ok(regs);
            }
        }
        // Through shared memory: the primary holders store every source element (as its 4-byte
        // carrier) at its row-major position; every thread then reads what it needs.
        let numel: usize = src_shape.iter().product();
        let base = self.need_scratch(4 * numel as u32);
        self.store_tile_to_scratch(src, base, 4);
        self.b.barrier();
        let dmap = ThreadMap::new(dst);
        let tc = self.thread_coords(&dmap);
        let ty = codec::carrier(src.dtype);
        let coef = remap.source_coefs(dst_shape, &src_shape);
        let tl = self.thread_linear(&tc, &coef);
        let tp = self.shared_thread_ptr(tl, 4);
        let mut regs = Vec::with_capacity(dmap.slots);
        for j in 0..dmap.slots {
            let konst = Self::slot_linear(&dmap, j, &coef);
            let p = self.shared_slot(tp, base, konst, 4);
            regs.push(self.b.load(Space::Shared, ty, p, None));
        }
        self.b.barrier();
        Ok(regs)
    }

    /// Stores every element of `t` (primary holders only) at `base + linear · width` of shared
    /// memory, as its carrier (`width` 4) or widened to f64 (`width` 8).
    fn store_tile_to_scratch(&mut self, t: &Tile, base: u32, width: u32) {
        let map = t.map.clone();
        let tc = self.thread_coords(&map);
        let primary = self.primary_pred(&map);
        let coef = row_major_strides(&t.shape);
        let tl = self.thread_linear(&tc, &coef);
        let tp = self.shared_thread_ptr(tl, width);
        for j in 0..map.slots {
            let konst = Self::slot_linear(&map, j, &coef);
            let p = self.shared_slot(tp, base, konst, width);
            let v = if width == 8 && self.b.kernel().ty(t.regs[j]) == ST::F32 {
                self.b.cast(CastOp::FConvert, t.regs[j], ST::F64)
            } else {
                t.regs[j]
            };
            self.b.store(Space::Shared, p, v, primary);
        }
    }

    // ----- global memory -----

    fn global_shape(&mut self, g: vm::Global, span: Span) -> R<Vec<simt::Value>> {
        if let Some(s) = self.global_shapes.get(&g) {
            return Ok(s.clone());
        }
        let shape = self.k.globals[g].shape.clone();
        let mut out = Vec::new();
        for e in &shape {
            out.push(self.sym(e, span)?);
        }
        self.global_shapes.insert(g, out.clone());
        Ok(out)
    }

    /// A symbolic extent as I64.
    fn sym(&mut self, e: &SymExpr, span: Span) -> R<simt::Value> {
        Ok(match e {
            SymExpr::Const(c) => self.i64c(*c),
            SymExpr::Param(v) => {
                let s = self.scalar(*v, span)?;
                self.to_i64(s)
            }
            SymExpr::Bin(op, a, b) => {
                let (a, b) = (self.sym(a, span)?, self.sym(b, span)?);
                match op {
                    SymOp::Add => self.b.add(a, b),
                    SymOp::Sub => self.b.sub(a, b),
                    SymOp::Mul => self.b.mul(a, b),
                    SymOp::Div => self.b.binary(SB::DivS, a, b),
                    SymOp::Rem => self.b.binary(SB::RemS, a, b),
                    SymOp::Min => self.b.binary(SB::MinS, a, b),
                    SymOp::Max => self.b.binary(SB::MaxS, a, b),
                    SymOp::CeilDiv => {
                        let one = self.i64c(1);
                        let t = self.b.sub(b, one);
                        let t = self.b.add(a, t);
                        self.b.binary(SB::DivS, t, b)
                    }
                }
            }
        })
    }

    /// Prepares the placement of `map`'s slots at `offsets` in a tensor of `extents`: the
    /// thread's coordinates, computed once; [`Self::place`] then gives one slot's element.
    fn placer(&mut self, map: &ThreadMap, offsets: &[simt::Value], extents: &[simt::Value], check: bool) -> Placer {
        let tc = self.thread_coords(map);
        let rank = extents.len();
        let pad = rank - map.shape.len();
        let starts: Vec<simt::Value> = (0..rank)
            .map(|d| {
                let o = self.to_i64(offsets[d]);
                if d < pad {
                    o
                } else {
                    let t = self.to_i64(tc[d - pad]);
                    self.b.add(o, t)
                }
            })
            .collect();
        let mut strides = vec![self.i64c(1); rank];
        for d in (0..rank.saturating_sub(1)).rev() {
            strides[d] = self.b.mul(strides[d + 1], extents[d + 1]);
        }
        let mut lin0 = starts[rank - 1];
        for d in (0..rank - 1).rev() {
            let t = self.b.mul(starts[d], strides[d]);
            lin0 = self.b.add(lin0, t);
        }
        let bounds = (0..rank)
            .map(|d| {
                (check && d >= pad).then(|| {
                    let z = self.i64c(0);
                    let neg = self.b.sub(z, starts[d]);
                    let rem = self.b.sub(extents[d], starts[d]);
                    (neg, rem)
                })
            })
            .collect();
        Placer { map: map.clone(), starts, strides, lin0, bounds, extents: extents.to_vec(), check }
    }

    /// Slot `j`'s in-bounds predicate (None when not checked) and I64 row-major linear index,
    /// computed where it is used so that no slot's address stays live across the others. Both
    /// are the thread's start plus the slot's constant coordinates, added last, so that LLVM
    /// folds the constants into compares and address immediates instead of keeping one
    /// register per slot alive.
    fn place(&mut self, p: &Placer, j: usize) -> (Option<simt::Value>, simt::Value) {
        let rank = p.extents.len();
        let pad = rank - p.map.shape.len();
        let c = &p.map.local_coords[j];
        let mut inb: Option<simt::Value> = None;
        if p.check {
            for d in 0..rank {
                let cd = if d < pad { 0 } else { c[d - pad] as i64 };
                if cd == 0 {
                    let ok = self.b.cmp(CmpOp::Ult, p.starts[d], p.extents[d]);
                    inb = Some(self.and_pred(inb, ok));
                } else {
                    // 0 ≤ start + c < extent as `-start ≤ c < extent − start`: the constant
                    // meets two per-thread values, not a per-slot sum LLVM would keep alive.
                    let (neg, rem) = p.bounds[d].expect("bounds of checked placers");
                    let cv = self.i64c(cd);
                    let lo = self.b.cmp(CmpOp::Sle, neg, cv);
                    let hi = self.b.cmp(CmpOp::Slt, cv, rem);
                    let ok = self.and_pred(Some(lo), hi);
                    inb = Some(self.and_pred(inb, ok));
                }
            }
        }
        (inb, self.place_linear(p, j))
    }

    /// Slot `j`'s I64 row-major linear index: the thread's `lin0` plus the slot's constant
    /// coordinates times the strides, added last.
    fn place_linear(&mut self, p: &Placer, j: usize) -> simt::Value {
        let rank = p.extents.len();
        let pad = rank - p.map.shape.len();
        let mut slot_off: Option<simt::Value> = None;
        for d in pad..rank {
            let cd = p.map.local_coords[j][d - pad] as i64;
            if cd != 0 {
                let cv = self.i64c(cd);
                let t = if d == rank - 1 { cv } else { self.b.mul(cv, p.strides[d]) };
                slot_off = Some(match slot_off {
                    Some(a) => self.b.add(a, t),
                    None => t,
                });
            }
        }
        match slot_off {
            Some(o) => self.b.add(p.lin0, o),
            None => p.lin0,
        }
    }

    /// Reads the code of element `lin` (I64) of a packed tensor at `base` (global pointer or
    /// shared byte offset) with `mask`; returns the code in an I32 (I64 for 64-bit types).
    fn read_code(&mut self, space: Space, base: Option<simt::Value>, shared_base: u32, d: DType, lin: simt::Value, mask: Option<simt::Value>) -> simt::Value {
        let bits = d.bits();
        let addr = |lx: &mut Self, byte: simt::Value| -> simt::Value {
            match space {
                Space::Global => lx.b.ptr_add(base.expect("global base"), byte),
                Space::Shared => lx.shared_ptr(shared_base, byte),
            }
        };
        if bits % 8 == 0 && bits <= 64 {
            let bytes = i64::from(bits / 8);
            let bc = self.i64c(bytes);
            let off = self.b.mul(lin, bc);
            let a = addr(self, off);
            let ty = match bits {
                8 => ST::I8,
                16 => ST::I16,
                32 => ST::I32,
                _ => ST::I64,
            };
            let v = self.b.load(space, ty, a, mask);
            return match bits {
                8 | 16 => self.b.cast(CastOp::ZExt, v, ST::I32),
                _ => v,
            };
        }
        // Sub-word: the 32-bit word holding the first bit, and the next one if it straddles.
        let bc = self.i64c(i64::from(bits));
        let bitpos = self.b.mul(lin, bc);
        let five = self.i64c(5);
        let word = self.b.binary(SB::ShrU, bitpos, five);
        let four = self.i64c(4);
        let byte = self.b.mul(word, four);
        let a0 = addr(self, byte);
        let lo = self.b.load(space, ST::I32, a0, mask);
        let bp32 = self.b.cast(CastOp::Trunc, bitpos, ST::I32);
        let m31 = self.i32c(31);
        let sh = self.b.and(bp32, m31);
        let code = if 32 % bits == 0 {
            self.b.shr_u(lo, sh)
        } else {
            let w = self.i32c(i64::from(32 - bits));
            let straddle = self.b.cmp(CmpOp::Sgt, sh, w);
            let m2 = self.and_pred(mask, straddle);
            let byte4 = self.b.add(byte, four);
            let a1 = addr(self, byte4);
            let hi = self.b.load(space, ST::I32, a1, Some(m2));
            self.b.shf(simt::ShfDir::Right, simt::ShfMode::Clamp, lo, hi, sh)
        };
        let m = self.i32c(((1u64 << bits) - 1) as i64);
        self.b.and(code, m)
    }

    /// Writes `code` (I32/I64) as element `lin` of a packed tensor; sub-word elements with
    /// atomic and/or so that neighbours written by other threads are kept.
    fn write_code(&mut self, space: Space, base: Option<simt::Value>, shared_base: u32, d: DType, lin: simt::Value, code: simt::Value, mask: Option<simt::Value>) {
        let bits = d.bits();
        let addr = |lx: &mut Self, byte: simt::Value| -> simt::Value {
            match space {
                Space::Global => lx.b.ptr_add(base.expect("global base"), byte),
                Space::Shared => lx.shared_ptr(shared_base, byte),
            }
        };
        if bits % 8 == 0 && bits <= 64 {
            let bytes = i64::from(bits / 8);
            let bc = self.i64c(bytes);
            let off = self.b.mul(lin, bc);
            let a = addr(self, off);
            let v = match bits {
                8 => self.b.cast(CastOp::Trunc, code, ST::I8),
                16 => self.b.cast(CastOp::Trunc, code, ST::I16),
                _ => code,
            };
            self.b.store(space, a, v, mask);
            return;
        }
        let bc = self.i64c(i64::from(bits));
        let bitpos = self.b.mul(lin, bc);
        let five = self.i64c(5);
        let word = self.b.binary(SB::ShrU, bitpos, five);
        let four = self.i64c(4);
        let byte = self.b.mul(word, four);
        let bp32 = self.b.cast(CastOp::Trunc, bitpos, ST::I32);
        let m31 = self.i32c(31);
        let sh = self.b.and(bp32, m31);
        let fm = self.i32c(((1u64 << bits) - 1) as i64);
        let code = self.b.and(code, fm);
        // Low word: clear the field, then set it.
        let lo_mask = self.b.shl(fm, sh);
        let lo_bits = self.b.shl(code, sh);
        let not_mask = self.b.unary(SU::Not, lo_mask);
        let a0 = addr(self, byte);
        self.masked_atomic(space, AtomicOp::And, a0, not_mask, mask);
        self.masked_atomic(space, AtomicOp::Or, a0, lo_bits, mask);
        if 32 % bits != 0 {
            // High word when the element straddles: its top (sh + bits − 32) bits.
            let w = self.i32c(i64::from(32 - bits));
            let straddle = self.b.cmp(CmpOp::Sgt, sh, w);
            let m2 = self.and_pred(mask, straddle);
            let t32 = self.i32c(32);
            let rsh = self.b.sub(t32, sh);
            let hi_mask = self.b.shr_u(fm, rsh);
            let hi_bits = self.b.shr_u(code, rsh);
            let not_hi = self.b.unary(SU::Not, hi_mask);
            let byte4 = self.b.add(byte, four);
            let a1 = addr(self, byte4);
            self.masked_atomic(space, AtomicOp::And, a1, not_hi, Some(m2));
            self.masked_atomic(space, AtomicOp::Or, a1, hi_bits, Some(m2));
        }
    }

    fn masked_atomic(&mut self, space: Space, op: AtomicOp, addr: simt::Value, value: simt::Value, mask: Option<simt::Value>) {
        match mask {
            None => {
                self.b.atomic(op, space, addr, value);
            }
            Some(m) => {
                let mut outer = std::mem::replace(&mut self.b, Builder::new("", [1, 1, 1]));
                outer.if_then(m, |b| {
                    b.atomic(op, space, addr, value);
                });
                self.b = outer;
            }
        }
    }

    fn load_global(&mut self, g: vm::Global, offsets: &[vm::Value], shape: &[usize], span: Span) -> R<Tile> {
        let d = self.k.globals[g].dtype;
        let layout = self.result_layout(d, shape);
        let map = ThreadMap::new(&layout);
        let offs: Vec<simt::Value> = offsets.iter().map(|&o| self.scalar(o, span)).collect::<R<_>>()?;
        let ext = self.global_shape(g, span)?;
        let base = self.globals[&g];
        let placer = self.placer(&map, &offs, &ext, true);
        let code_ty = codec::code_type(d);
        let run = vector_run(&layout, d.bits());
        let scalar_width = if d.bits() % 8 == 0 { d.bits() } else { 32 };
        let codes = match run {
            Some(v) if offs.len() == ext.len() => {
                // Versioned: whole runs of `v` elements with one aligned access each when the
                // row length and the column offset are multiples of `v` (a block-uniform test);
                // element by element otherwise.
                let last = ext.len() - 1;
                let vv = self.i64c(v as i64);
                let r0 = self.b.binary(SB::RemS, ext[last], vv);
                let off = self.to_i64(offs[last]);
                let r1 = self.b.binary(SB::RemS, off, vv);
                let both = self.b.binary(SB::Or, r0, r1);
                let z = self.i64c(0);
                let aligned = self.b.cmp(CmpOp::Eq, both, z);
                // Both versions yield the runs' 32-bit words (a run of `v` elements fills
                // whole words), not one code per element: fewer values live across the branch.
                let words_per_run = v * d.bits() as usize / 32;
                let runs = map.slots / v;
                let tys = vec![ST::I32; runs * words_per_run];
                let mut outer = std::mem::replace(&mut self.b, Builder::new("", [1, 1, 1]));
                let cell = std::cell::RefCell::new(&mut *self);
                let res = outer.if_else(
                    aligned,
                    &tys,
                    |b| {
                        let mut lx = cell.borrow_mut();
                        std::mem::swap(b, &mut lx.b);
                        let out = lx.read_runs(base, d, &placer, v);
                        std::mem::swap(b, &mut lx.b);
                        out
                    },
                    |b| {
                        let mut lx = cell.borrow_mut();
                        std::mem::swap(b, &mut lx.b);
                        let out = lx.read_runs_unaligned(base, d, &placer, v);
                        std::mem::swap(b, &mut lx.b);
                        out
                    },
                );
                self.b = outer;
                let run_bits = v * d.bits() as usize;
                let access = match run_bits {
                    32 | 64 | 128 => format!("one {run_bits}-bit access"),
                    _ => format!("{} 32-bit accesses", run_bits / 32),
                };
                self.info.global_loads.push(format!(
                    "{} : {}{} — {} elements per thread in runs of {v}: {access} per run when the row length and column offset are multiples of {v}, else the {} aligned 32-bit words covering the run, funnel-shifted",
                    self.k.globals[g].name,
                    d,
                    vm::ShapeDisplay(shape),
                    map.slots,
                    words_per_run + 1,
                ));
                let mut codes = Vec::with_capacity(map.slots);
                for run in res.chunks(words_per_run) {
                    codes.extend(self.codes_from_words(run, d.bits() as usize, v));
                }
                let _ = code_ty;
                codes
            }
            _ => {
                self.info.global_loads.push(format!(
                    "{} : {}{} — {} elements per thread, one {scalar_width}-bit access per element",
                    self.k.globals[g].name,
                    d,
                    vm::ShapeDisplay(shape),
                    map.slots,
                ));
                (0..map.slots)
                    .map(|j| {
                        let (mask, lin) = self.place(&placer, j);
                        self.read_code(Space::Global, Some(base), 0, d, lin, mask)
                    })
                    .collect()
            }
        };
        let regs = codes.into_iter().map(|c| codec::decode(&mut self.b, d, c)).collect();
        Ok(self.make_tile(d, shape.to_vec(), layout, regs))
    }

    /// Reads runs of `v` consecutive elements (slots `j0 .. j0 + v`, the first at a multiple of
    /// `v` in the tensor) with one access of `v · bits` bits each (several 32-bit words when that
    /// is not 4, 8 or 16 bytes), and cuts the codes out with constant shifts.
    fn read_runs(&mut self, base: simt::Value, d: DType, placer: &Placer, v: usize) -> Vec<simt::Value> {
        let bits = d.bits() as usize;
        let total = v * bits;
        let mut out = Vec::with_capacity(placer.map.slots);
        for r in 0..placer.map.slots / v {
            let (mask, lin) = self.place(placer, r * v);
            let bc = self.i64c(bits as i64);
            let bitpos = self.b.mul(lin, bc);
            let three = self.i64c(3);
            let byte = self.b.binary(SB::ShrU, bitpos, three);
            let addr = self.b.ptr_add(base, byte);
            let words: Vec<simt::Value> = match total / 32 {
                n @ (2 | 4) => {
                    let vec = self.b.load(Space::Global, ST::Vector(simt::Scalar::I32, n as u8), addr, mask);
                    (0..n).map(|w| self.b.extract(vec, w as u8)).collect()
                }
                1 => vec![self.b.load(Space::Global, ST::I32, addr, mask)],
                n => (0..n)
                    .map(|w| {
                        let o = self.i64c(4 * w as i64);
                        let a = self.b.ptr_add(addr, o);
                        self.b.load(Space::Global, ST::I32, a, mask)
                    })
                    .collect(),
            };
            out.extend(words);
        }
        out
    }

    /// Reads runs of `v` consecutive elements (slots `j0 .. j0 + v`) that need not start on a
    /// word: the aligned 32-bit words covering each run's bits (one more than the run fills),
    /// funnel-shifted into place, with the bits of out-of-bounds elements cleared — the
    /// interpreter's zeros. Words holding no in-bounds bit are not read, so nothing outside the
    /// tensor's words is touched. A handful of accesses per run instead of one or two per
    /// element, and no per-element values for the register allocator to keep alive.
    fn read_runs_unaligned(&mut self, base: simt::Value, d: DType, p: &Placer, v: usize) -> Vec<simt::Value> {
        let bits = i64::from(d.bits());
        let words_per_run = v * bits as usize / 32;
        let rank = p.extents.len();
        let last = rank - 1;
        let pad = rank - p.map.shape.len();
        let mut out = Vec::with_capacity(p.map.slots / v * words_per_run);
        for r in 0..p.map.slots / v {
            let j = r * v;
            let c = &p.map.local_coords[j];
            // Rows (every dimension but the last) in bounds?
            let mut rows_ok: Option<simt::Value> = None;
            for dd in 0..last {
                let cd = if dd < pad { 0 } else { c[dd - pad] as i64 };
                let g = if cd == 0 {
                    p.starts[dd]
                } else {
                    let cv = self.i64c(cd);
                    self.b.add(p.starts[dd], cv)
                };
                let ok = self.b.cmp(CmpOp::Ult, g, p.extents[dd]);
                rows_ok = Some(self.and_pred(rows_ok, ok));
            }
            // In-bounds elements of the run: [lo, hi) with lo = clamp(−start, 0, v) and
            // hi = clamp(extent − start, 0, v); none when a row is out of bounds.
            let cl = c[last - pad] as i64;
            let (neg, rem) = p.bounds[last].expect("checked placer");
            let clv = self.i64c(cl);
            let lo = self.b.sub(neg, clv);
            let hi = self.b.sub(rem, clv);
            let clamp = |lx: &mut Self, x: simt::Value| {
                let z = lx.i64c(0);
                let vv = lx.i64c(v as i64);
                let x = lx.b.binary(SB::MaxS, x, z);
                lx.b.binary(SB::MinS, x, vv)
            };
            let lo = clamp(self, lo);
            let hi = clamp(self, hi);
            let hi = match rows_ok {
                Some(ok) => self.b.select(ok, hi, lo),
                None => hi,
            };
            // The run's first bit, its word and the bit within it.
            let lin = self.place_linear(p, j);
            let bc = self.i64c(bits);
            let bitpos = self.b.mul(lin, bc);
            let five = self.i64c(5);
            let w0 = self.b.binary(SB::ShrS, bitpos, five);
            let four = self.i64c(4);
            let w0_byte = self.b.mul(w0, four);
            let wp = self.b.ptr_add(base, w0_byte);
            let bp32 = self.b.cast(CastOp::Trunc, bitpos, ST::I32);
            let m31 = self.i32c(31);
            let sh = self.b.and(bp32, m31);
            let shl64 = self.b.cast(CastOp::ZExt, sh, ST::I64);
            let lo_bit = self.b.mul(lo, bc);
            let hi_bit = self.b.mul(hi, bc);
            let lo_abs = self.b.add(shl64, lo_bit);
            let hi_abs = self.b.add(shl64, hi_bit);
            let any = self.b.cmp(CmpOp::Slt, lo_abs, hi_abs);
            let raw: Vec<simt::Value> = (0..=words_per_run as i64)
                .map(|i| {
                    // Word i holds an in-bounds bit: the range is not empty, 32·i < hi_abs and
                    // 32·(i + 1) > lo_abs.
                    let a = self.i64c(32 * i);
                    let bb = self.i64c(32 * (i + 1));
                    let c1 = self.b.cmp(CmpOp::Slt, a, hi_abs);
                    let c2 = self.b.cmp(CmpOp::Sgt, bb, lo_abs);
                    let need = self.and_pred(Some(any), c1);
                    let need = self.and_pred(Some(need), c2);
                    let o = self.i64c(4 * i);
                    let addr = self.b.ptr_add(wp, o);
                    self.b.load(Space::Global, ST::I32, addr, Some(need))
                })
                .collect();
            for w in 0..words_per_run as i64 {
                let word = self.b.shf(simt::ShfDir::Right, simt::ShfMode::Clamp, raw[w as usize], raw[w as usize + 1], sh);
                // Keep bits [lo·bits − 32w, hi·bits − 32w) of this word, clamped to [0, 32].
                let k = self.i64c(32 * w);
                let z = self.i64c(0);
                let t32 = self.i64c(32);
                let one = self.i64c(1);
                let cut = |lx: &mut Self, x: simt::Value| {
                    let x = lx.b.sub(x, k);
                    let x = lx.b.binary(SB::MaxS, x, z);
                    lx.b.binary(SB::MinS, x, t32)
                };
                let from = cut(self, lo_bit);
                let to = cut(self, hi_bit);
                let top = self.b.shl(one, to);
                let bottom = self.b.shl(one, from);
                let keep = self.b.sub(top, bottom);
                let keep = self.b.cast(CastOp::Trunc, keep, ST::I32);
                out.push(self.b.and(word, keep));
            }
        }
        out
    }

    /// The codes of a run of `v` elements of `bits` bits packed little-endian in `words`.
    fn codes_from_words(&mut self, words: &[simt::Value], bits: usize, v: usize) -> Vec<simt::Value> {
        let mut out = Vec::with_capacity(v);
        for e in 0..v {
            let bit = e * bits;
            let (w, sh) = (bit / 32, (bit % 32) as i32);
            let code = if bits == 32 {
                words[w]
            } else {
                let lo = words[w];
                let part = if sh as usize + bits > 32 {
                    let hi = words[w + 1];
                    let n = self.i32c(sh as i64);
                    self.b.shf(simt::ShfDir::Right, simt::ShfMode::Clamp, lo, hi, n)
                } else {
                    let n = self.i32c(sh as i64);
                    self.b.shr_u(lo, n)
                };
                let m = self.i32c(((1u64 << bits) - 1) as i64);
                self.b.and(part, m)
            };
            out.push(code);
        }
        out
    }

    fn store_global(&mut self, g: vm::Global, offsets: &[vm::Value], value: vm::Value, span: Span) -> R<()> {
        let d = self.k.globals[g].dtype;
        let t = match self.get(value, span)? {
            Lv::Tile(t) => t,
            Lv::Scalar(s) => {
                let layout = self.default_layout_for(d, &[1]);
                self.make_uniform(d, vec![1], layout, s)
            }
            Lv::Shared { .. } => return err(span, "store of a shared tensor"),
        };
        let offs: Vec<simt::Value> = offsets.iter().map(|&o| self.scalar(o, span)).collect::<R<_>>()?;
        let ext = self.global_shape(g, span)?;
        let base = self.globals[&g];
        let map = t.map.clone();
        let primary = self.primary_pred(&map);
        let placer = self.placer(&map, &offs, &ext, true);
        for j in 0..map.slots {
            let (mask, lin) = self.place(&placer, j);
            let code = codec::encode(&mut self.b, d, t.regs[j]);
            let m = match (mask, primary) {
                (Some(a), Some(p)) => Some(self.b.binary(SB::And, a, p)),
                (a, p) => a.or(p),
            };
            self.write_code(Space::Global, Some(base), 0, d, lin, code, m);
        }
        Ok(())
    }

    fn shared_of_value(&self, v: vm::Value, span: Span) -> R<(u32, TileType)> {
        match self.get(v, span)? {
            Lv::Shared { offset, tile } => Ok((offset, tile)),
            _ => err(span, format!("{v} should be a shared tensor")),
        }
    }

    fn load_shared(&mut self, sh: vm::Value, offsets: &[vm::Value], shape: &[usize], span: Span) -> R<Tile> {
        let (base, tt) = self.shared_of_value(sh, span)?;
        let d = tt.dtype;
        let layout = self.result_layout(d, shape);
        let map = ThreadMap::new(&layout);
        let offs: Vec<simt::Value> = offsets.iter().map(|&o| self.scalar(o, span)).collect::<R<_>>()?;
        let ext: Vec<simt::Value> = tt.shape.iter().map(|&n| self.i64c(n as i64)).collect();
        let placer = self.placer(&map, &offs, &ext, false);
        let mut regs = Vec::with_capacity(map.slots);
        for j in 0..map.slots {
            let (_, lin) = self.place(&placer, j);
            let code = self.read_code(Space::Shared, None, base, d, lin, None);
            regs.push(codec::decode(&mut self.b, d, code));
        }
        Ok(self.make_tile(d, shape.to_vec(), layout, regs))
    }

    fn store_shared(&mut self, sh: vm::Value, offsets: &[vm::Value], value: vm::Value, span: Span) -> R<()> {
        let (base, tt) = self.shared_of_value(sh, span)?;
        let d = tt.dtype;
        let t = self.tile(value, span)?;
        let offs: Vec<simt::Value> = offsets.iter().map(|&o| self.scalar(o, span)).collect::<R<_>>()?;
        let ext: Vec<simt::Value> = tt.shape.iter().map(|&n| self.i64c(n as i64)).collect();
        let map = t.map.clone();
        let primary = self.primary_pred(&map);
        let placer = self.placer(&map, &offs, &ext, false);
        for j in 0..map.slots {
            let (_, lin) = self.place(&placer, j);
            let code = codec::encode(&mut self.b, d, t.regs[j]);
            self.write_code(Space::Shared, None, base, d, lin, code, primary);
        }
        Ok(())
    }

    // ----- data movement with arithmetic -----

    fn view(&mut self, x: vm::Value, to: DType, shape: &[usize], span: Span) -> R<Tile> {
        let src = self.tile(x, span)?;
        let from = src.dtype;
        if from.bits() == to.bits() {
            // Same width: element i is element i, re-read as `to`.
            let layout = self.result_layout(to, shape);
            let regs = self.convert(&src, &layout, shape, &Remap::Reshape)?;
            let regs = regs
                .into_iter()
                .map(|r| {
                    let c = codec::encode(&mut self.b, from, r);
                    codec::decode(&mut self.b, to, c)
                })
                .collect();
            return Ok(self.make_tile(to, shape.to_vec(), layout, regs));
        }
        // Different widths: the bit stream goes through the scratch area.
        let numel: usize = src.shape.iter().product();
        let total_bits = numel * from.bits() as usize;
        let words = total_bits.div_ceil(32) + 1;
        let base = self.need_scratch(4 * words as u32);
        if from.bits() % 8 != 0 {
            self.zero_scratch(base, words);
            self.b.barrier();
        }
        let map = src.map.clone();
        let primary = self.primary_pred(&map);
        let tc = self.thread_coords(&map);
        for j in 0..map.slots {
            let c = self.slot_coords(&map, &tc, j);
            let lin = self.linear_i32(&c, &src.shape);
            let lin = self.to_i64(lin);
            let code = codec::encode(&mut self.b, from, src.regs[j]);
            self.write_code(Space::Shared, None, base, from, lin, code, primary);
        }
        self.b.barrier();
        let layout = self.result_layout(to, shape);
        let dmap = ThreadMap::new(&layout);
        let tc = self.thread_coords(&dmap);
        let mut regs = Vec::with_capacity(dmap.slots);
        for j in 0..dmap.slots {
            let c = self.slot_coords(&dmap, &tc, j);
            let lin = self.linear_i32(&c, shape);
            let lin = self.to_i64(lin);
            let code = self.read_code(Space::Shared, None, base, to, lin, None);
            regs.push(codec::decode(&mut self.b, to, code));
        }
        self.b.barrier();
        Ok(self.make_tile(to, shape.to_vec(), layout, regs))
    }

    /// Zeroes `words` 32-bit words of shared memory at `base`, spread over the threads.
    fn zero_scratch(&mut self, base: u32, words: usize) {
        let tid = self.tid();
        let n = self.i32c(words as i64);
        let step = self.i32c(self.threads as i64);
        let mut outer = std::mem::replace(&mut self.b, Builder::new("", [1, 1, 1]));
        outer.for_loop(tid, n, step, &[], Unroll::None, |b, iv, _| {
            let four = b.i32(4);
            let off = b.mul(iv, four);
            let bv = b.i32(base as i32);
            let a = b.add(bv, off);
            let p = b.shared_addr(a);
            let z = b.i32(0);
            b.store(Space::Shared, p, z, None);
            vec![]
        });
        self.b = outer;
    }

    fn reduce(&mut self, op: ReduceOp, x: vm::Value, axis: usize, out_shape: &[usize], span: Span) -> R<Tile> {
        let src = self.tile(x, span)?;
        let d = src.dtype;
        let order_free = op != ReduceOp::Sum || d.is_int();
        let layout = self.result_layout(d, out_shape);
        let keepdim = out_shape.len() == src.shape.len();
        if crate::layout::warp_reducible(&src.layout, axis, order_free)
            && tilc_layout::reduce(&src.layout, &[axis], keepdim).is_ok_and(|l| l == layout)
        {
            return Ok(self.reduce_in_warps(op, &src, axis, layout, out_shape));
        }
        let numel: usize = src.shape.iter().product();
        let base = self.need_scratch(4 * numel as u32);
        self.store_tile_to_scratch(&src, base, 4);
        self.b.barrier();
        let len = src.shape[axis];
        let inner: usize = src.shape[axis + 1..].iter().product();
        let outer_n: usize = src.shape[..axis].iter().product();
        let layout = self.result_layout(d, out_shape);
        let dmap = ThreadMap::new(&layout);
        let tc = self.thread_coords(&dmap);
        let ty = codec::carrier(d);
        let mut regs = Vec::with_capacity(dmap.slots);
        for j in 0..dmap.slots {
            let c = self.slot_coords(&dmap, &tc, j);
            // The output's linear index is (o, q) over [outer, inner] whether or not the axis
            // is kept with extent 1.
            let lin = self.linear_i32(&c, out_shape);
            let inner_v = self.i32c(inner as i64);
            let o = self.b.binary(SB::DivU, lin, inner_v);
            let q = self.b.binary(SB::RemU, lin, inner_v);
            let lv = self.i32c((len * inner) as i64);
            let ob = self.b.mul(o, lv);
            let start = self.b.add(ob, q);
            let _ = outer_n;
            let acc0 = self.reduce_init(op, d, ty);
            let lo = self.i32c(0);
            let hi = self.i32c(len as i64);
            let one = self.i32c(1);
            let mut outer = std::mem::replace(&mut self.b, Builder::new("", [1, 1, 1]));
            let res = outer.for_loop(lo, hi, one, &[acc0], Unroll::None, |b, iv, carried| {
                let iv_inner = b.i32(inner as i32);
                let step = b.mul(iv, iv_inner);
                let e = b.add(start, step);
                let four = b.i32(4);
                let off = b.mul(e, four);
                let bv = b.i32(base as i32);
                let a = b.add(bv, off);
                let p = b.shared_addr(a);
                let v = b.load(Space::Shared, ty, p, None);
                vec![reduce_step(b, op, d, carried[0], v, iv)]
            });
            self.b = outer;
            let r = res[0];
            let r = if d.is_int() {
                self.wrap(d, r)
            } else if op == ReduceOp::Sum {
                codec::round_value(&mut self.b, d, r)
            } else {
                r
            };
            regs.push(r);
        }
        self.b.barrier();
        Ok(self.make_tile(d, out_shape.to_vec(), layout, regs))
    }

    /// A reduction whose axis lies within warps: each thread folds its own slots, then
    /// butterfly shuffles combine across the axis's lanes; every lane ends with the result, as
    /// the reduced layout (with replication) says.
    fn reduce_in_warps(&mut self, op: ReduceOp, src: &Tile, axis: usize, layout: RegisterLayout, out_shape: &[usize]) -> Tile {
        let d = src.dtype;
        let keepdim = out_shape.len() == src.shape.len();
        let out_slots = layout.local_size();
        // Which result slot each source slot feeds (the same in every thread: local digits).
        let mut groups: Vec<Vec<usize>> = vec![Vec::new(); out_slots];
        for j in 0..src.map.slots {
            let mut c = src.map.coords(0, j);
            if keepdim {
                c[axis] = 0;
            } else {
                c.remove(axis);
            }
            if let Some((_, slot)) = layout.owners(&c) {
                groups[slot].push(j);
            }
        }
        let abs = |lx: &mut Self, v: simt::Value| -> simt::Value {
            if d.is_int() {
                let z = lx.i32c(0);
                let neg = lx.b.cmp(CmpOp::Slt, v, z);
                let n = lx.b.unary(SU::Neg, v);
                lx.b.select(neg, n, v)
            } else {
                lx.b.unary(SU::FAbs, v)
            }
        };
        let terms = src.map.thread_terms[axis].clone();
        let mut regs = Vec::with_capacity(out_slots);
        for group in groups {
            let mut acc: Option<simt::Value> = None;
            for j in group {
                let v = if op == ReduceOp::AbsMax { abs(self, src.regs[j]) } else { src.regs[j] };
                acc = Some(match acc {
                    None => v,
                    Some(a) => combine(&mut self.b, op, d, a, v),
                });
            }
            let mut acc = acc.expect("every reduced element has at least one source slot");
            for &(below, size, _) in &terms {
                let mut m = below;
                while m < below * size {
                    let lane = self.i32c(m as i64);
                    let other = self.b.shfl(simt::ShflMode::Bfly, acc, lane);
                    acc = combine(&mut self.b, op, d, acc, other);
                    m *= 2;
                }
            }
            regs.push(if d.is_int() { self.wrap(d, acc) } else { acc });
        }
        self.make_tile(d, out_shape.to_vec(), layout, regs)
    }

    fn reduce_init(&mut self, op: ReduceOp, d: DType, ty: ST) -> simt::Value {
        if d.is_int() {
            // The first element replaces this (see `reduce_step`); sums start at 0.
            return self.b.constant(ty, 0);
        }
        match op {
            ReduceOp::Sum => self.b.constant(ST::F64, (-0.0f64).to_bits()),
            ReduceOp::Max => self.b.f32(f32::NEG_INFINITY),
            ReduceOp::Min => self.b.f32(f32::INFINITY),
            ReduceOp::AbsMax => self.b.f32(0.0),
        }
    }

    // ----- dot -----

    fn dot(&mut self, a: vm::Value, b: vm::Value, c: vm::Value, span: Span) -> R<Tile> {
        let ta = self.tile(a, span)?;
        let tb = self.tile(b, span)?;
        let tcv = self.tile(c, span)?;
        let (m, kk, n) = (ta.shape[0], ta.shape[1], tb.shape[1]);
        if let Some(plan) = self.cur_inst.and_then(|i| self.inferred.mma.get(&i)).cloned() {
            return mma::lower(self, &plan, &ta, &tb, &tcv);
        }
        self.info.dots.push(format!("dot {}[{m}, {kk}] x {}[{kk}, {n}] -> {}: generic loop over shared memory", ta.dtype, tb.dtype, tcv.dtype));
        let a_bytes = 4 * (m * kk) as u32;
        let b_bytes = 4 * (kk * n) as u32;
        let base = self.need_scratch(a_bytes + b_bytes);
        let b_base = base + a_bytes;
        self.store_tile_to_scratch(&ta, base, 4);
        self.store_tile_to_scratch(&tb, b_base, 4);
        self.b.barrier();
        let map = tcv.map.clone();
        let tc = self.thread_coords(&map);
        let int = ta.dtype.is_int();
        let (ty_a, ty_b) = (codec::carrier(ta.dtype), codec::carrier(tb.dtype));
        let mut regs = Vec::with_capacity(map.slots);
        for j in 0..map.slots {
            let cc = self.slot_coords(&map, &tc, j);
            let (row, col) = (cc[0], cc[1]);
            let lo = self.i32c(0);
            let hi = self.i32c(kk as i64);
            let one = self.i32c(1);
            let acc0 = tcv.regs[j];
            let mut outer = std::mem::replace(&mut self.b, Builder::new("", [1, 1, 1]));
            let res = outer.for_loop(lo, hi, one, &[acc0], Unroll::None, |b, p, carried| {
                let kv = b.i32(kk as i32);
                let r0 = b.mul(row, kv);
                let ai = b.add(r0, p);
                let nv = b.i32(n as i32);
                let p0 = b.mul(p, nv);
                let bi = b.add(p0, col);
                let four = b.i32(4);
                let ao = b.mul(ai, four);
                let bo = b.mul(bi, four);
                let abase = b.i32(base as i32);
                let bbase = b.i32(b_base as i32);
                let aa = b.add(abase, ao);
                let ba = b.add(bbase, bo);
                let ap = b.shared_addr(aa);
                let bp = b.shared_addr(ba);
                let x = b.load(Space::Shared, ty_a, ap, None);
                let y = b.load(Space::Shared, ty_b, bp, None);
                let acc = carried[0];
                if int {
                    let prod = b.mul(x, y);
                    vec![b.add(acc, prod)]
                } else {
                    // acc ← f32(acc + a·b), the product exact and the sum in f64.
                    let x64 = b.cast(CastOp::FConvert, x, ST::F64);
                    let y64 = b.cast(CastOp::FConvert, y, ST::F64);
                    let a64 = b.cast(CastOp::FConvert, acc, ST::F64);
                    let prod = b.binary(SB::FMul, x64, y64);
                    let s = b.binary(SB::FAdd, a64, prod);
                    vec![b.cast(CastOp::FConvert, s, ST::F32)]
                }
            });
            self.b = outer;
            let r = if int { self.wrap(tcv.dtype, res[0]) } else { res[0] };
            regs.push(r);
        }
        self.b.barrier();
        Ok(Tile { regs, uniform: false, ..tcv })
    }

    // ----- variables and control flow -----

    fn assign(&mut self, var: vm::Value, value: vm::Value, span: Span) -> R<()> {
        let v = self.get(value, span)?;
        let new = match (self.env.get(&var).cloned(), v) {
            (_, Lv::Tile(t)) => {
                // The variable's inferred layout, else the one it has, else the value's.
                let target = match (self.inferred.layouts.get(&var), self.env.get(&var)) {
                    (Some(l), _) => l.clone(),
                    (None, Some(Lv::Tile(old))) => (*old.layout).clone(),
                    _ => (*t.layout).clone(),
                };
                let regs = self.convert(&t, &target, &t.shape, &Remap::Broadcast)?;
                Lv::Tile(self.make_tile(t.dtype, t.shape.clone(), target, regs))
            }
            (Some(Lv::Tile(old)), Lv::Scalar(s)) => Lv::Tile(Tile { regs: vec![s; old.regs.len()], uniform: true, ..old }),
            (_, v) => v,
        };
        self.env.insert(var, new);
        Ok(())
    }

    /// The mutable variables assigned anywhere in `body`, in a stable order.
    fn assigned_vars(&self, body: &[vm::Inst]) -> Vec<vm::Value> {
        fn go(k: &vm::Kernel, body: &[vm::Inst], out: &mut BTreeSet<vm::Value>) {
            for &i in body {
                match &k.insts[i].kind {
                    InstKind::Assign { var, .. } => {
                        out.insert(*var);
                    }
                    InstKind::For { body, .. } => go(k, body, out),
                    InstKind::If { then_body, else_body, .. } => {
                        go(k, then_body, out);
                        go(k, else_body, out);
                    }
                    InstKind::While { cond_body, body, .. } => {
                        go(k, cond_body, out);
                        go(k, body, out);
                    }
                    _ => {}
                }
            }
        }
        let mut s = BTreeSet::new();
        go(self.k, body, &mut s);
        s.into_iter().collect()
    }

    /// Makes sure every var has a value (zeros in the default layout when not yet assigned) and
    /// returns their flattened registers.
    /// Brings every tile variable in `vars` into its inferred layout (free for uniform fills),
    /// so that loop-carried and branch-merged registers agree.
    fn normalize_vars(&mut self, vars: &[vm::Value]) -> R<()> {
        for &v in vars {
            let (Some(Lv::Tile(t)), Some(l)) = (self.env.get(&v).cloned(), self.inferred.layouts.get(&v).cloned()) else { continue };
            if *t.layout != l {
                let regs = self.convert(&t, &l, &t.shape, &Remap::Broadcast)?;
                let nt = self.make_tile(t.dtype, t.shape.clone(), l, regs);
                self.env.insert(v, Lv::Tile(nt));
            }
        }
        Ok(())
    }

    fn flatten_vars(&mut self, vars: &[vm::Value]) -> Vec<simt::Value> {
        let mut out = Vec::new();
        for &v in vars {
            if !self.env.contains_key(&v) {
                let ty = self.k.ty(v).clone();
                let lv = match &ty {
                    Type::Scalar(d) => Lv::Scalar(self.zero_of(codec::carrier(*d))),
                    Type::Tile(t) => {
                        let layout = self.inferred.layouts.get(&v).cloned().unwrap_or_else(|| self.default_layout_for(t.dtype, &t.shape));
                        let z = self.zero_of(codec::carrier(t.dtype));
                        Lv::Tile(self.make_uniform(t.dtype, t.shape.clone(), layout, z))
                    }
                    Type::Shared(_) => continue,
                };
                self.env.insert(v, lv);
            }
            match &self.env[&v] {
                Lv::Scalar(s) => out.push(*s),
                Lv::Tile(t) => out.extend(t.regs.iter().copied()),
                Lv::Shared { .. } => {}
            }
        }
        out
    }

    /// Rebinds `vars` to `vals` (as flattened by [`Self::flatten_vars`]).
    fn unflatten_vars(&mut self, vars: &[vm::Value], vals: &[simt::Value]) {
        let mut at = 0;
        for &v in vars {
            let new = match self.env.get(&v) {
                Some(Lv::Scalar(_)) => {
                    at += 1;
                    Lv::Scalar(vals[at - 1])
                }
                Some(Lv::Tile(t)) => {
                    let n = t.regs.len();
                    at += n;
                    Lv::Tile(Tile { regs: vals[at - n..at].to_vec(), uniform: false, ..t.clone() })
                }
                _ => continue,
            };
            self.env.insert(v, new);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn for_loop(&mut self, var: vm::Value, start: vm::Value, end: vm::Value, step: vm::Value, body: &[vm::Inst], unroll: Option<u32>, span: Span) -> R<()> {
        let lo = self.scalar(start, span)?;
        let hi = self.scalar(end, span)?;
        let st = self.scalar(step, span)?;
        let (lo, hi, st) = (self.to_i32(lo), self.to_i32(hi), self.to_i32(st));
        let vars = self.assigned_vars(body);
        self.normalize_vars(&vars)?;
        let init = self.flatten_vars(&vars);
        let unroll = match unroll {
            None => Unroll::None,
            Some(0) => Unroll::Full,
            Some(n) => Unroll::Factor(n),
        };
        let var_d = self.k.ty(var).dtype();
        let mut failure: Option<LowerError> = None;
        let mut outer = std::mem::replace(&mut self.b, Builder::new("", [1, 1, 1]));
        let results = outer.for_loop(lo, hi, st, &init, unroll, |b, iv, carried| {
            std::mem::swap(b, &mut self.b);
            self.unflatten_vars(&vars, carried);
            let ivv = if var_d.bits() == 64 { self.to_i64(iv) } else { iv };
            self.env.insert(var, Lv::Scalar(ivv));
            if let Err(e) = self.body(body) {
                failure = Some(e);
            }
            let next = self.flatten_vars(&vars);
            std::mem::swap(b, &mut self.b);
            next
        });
        self.b = outer;
        if let Some(e) = failure {
            return Err(e);
        }
        self.unflatten_vars(&vars, &results);
        Ok(())
    }

    fn if_else(&mut self, cond: vm::Value, then_body: &[vm::Inst], else_body: &[vm::Inst], span: Span) -> R<()> {
        let c = self.scalar(cond, span)?;
        let p = self.to_pred(c);
        let mut vars = self.assigned_vars(then_body);
        vars.extend(self.assigned_vars(else_body));
        vars.sort();
        vars.dedup();
        self.normalize_vars(&vars)?;
        let init = self.flatten_vars(&vars);
        let tys: Vec<ST> = init.iter().map(|&v| self.b.kernel().ty(v)).collect();
        let saved = self.env.clone();
        let mut outer = std::mem::replace(&mut self.b, Builder::new("", [1, 1, 1]));
        // Both branch closures need the lowerer; they run one after the other.
        let cell = std::cell::RefCell::new((&mut *self, None::<LowerError>));
        let branch = |b: &mut Builder, body: &[vm::Inst], env: Option<&HashMap<vm::Value, Lv>>| -> Vec<simt::Value> {
            let mut guard = cell.borrow_mut();
            let (lx, failure) = &mut *guard;
            std::mem::swap(b, &mut lx.b);
            if let Some(env) = env {
                lx.env = env.clone();
            }
            if let Err(e) = lx.body(body)
                && failure.is_none()
            {
                *failure = Some(e);
            }
            let out = lx.flatten_vars(&vars);
            std::mem::swap(b, &mut lx.b);
            out
        };
        let results = outer.if_else(p, &tys, |b| branch(b, then_body, None), |b| branch(b, else_body, Some(&saved)));
        let failure = cell.into_inner().1;
        self.b = outer;
        if let Some(e) = failure {
            return Err(e);
        }
        self.env = saved;
        self.unflatten_vars(&vars, &results);
        Ok(())
    }
}

/// The length of the runs of consecutive elements of the last axis that each thread of
/// `layout` holds in consecutive slots, cut down to what one aligned access can read: 4, 8 or
/// 16 bytes, or a whole number of 32-bit words for sub-byte types. `None` when runs are single
/// elements.
fn vector_run(layout: &RegisterLayout, bits: u32) -> Option<usize> {
    let last_mode = *layout.local_modes().last()?;
    let dims = layout.mode_dims();
    let rank = layout.rank();
    // The innermost local mode must be the minor-most mode of the last axis (stride 1).
    if dims[last_mode] != rank - 1 || last_mode + 1 != dims.len() {
        return None;
    }
    let run = layout.mode_shape()[last_mode];
    let bits = bits as usize;
    (2..=run).rev().filter(|v| run % v == 0).find(|&v| {
        let total = v * bits;
        total % 32 == 0 && total <= 256 && (bits % 8 != 0 || matches!(total, 32 | 64 | 128))
    })
}

/// Combines two partial results of an order-free reduction (already absolute for absmax).
fn combine(b: &mut Builder, op: ReduceOp, d: DType, a: simt::Value, v: simt::Value) -> simt::Value {
    if d.is_int() {
        let unsigned_full = !d.is_signed() && d.bits() == 32;
        return match op {
            ReduceOp::Sum => b.add(a, v),
            ReduceOp::Min => b.binary(if unsigned_full { SB::MinU } else { SB::MinS }, a, v),
            ReduceOp::Max | ReduceOp::AbsMax => b.binary(if unsigned_full { SB::MaxU } else { SB::MaxS }, a, v),
        };
    }
    let m = b.binary(if op == ReduceOp::Min { SB::FMin } else { SB::FMax }, a, v);
    let na = b.cmp(CmpOp::FNe, a, a);
    let nv = b.cmp(CmpOp::FNe, v, v);
    let any = b.binary(SB::Or, na, nv);
    let nan = b.f32(f32::NAN);
    b.select(any, nan, m)
}

/// One step of a reduction loop (`iv` is the position along the axis).
fn reduce_step(b: &mut Builder, op: ReduceOp, d: DType, acc: simt::Value, v: simt::Value, iv: simt::Value) -> simt::Value {
    if d.is_int() {
        let unsigned_full = !d.is_signed() && d.bits() == 32;
        let next = match op {
            ReduceOp::Sum => return b.add(acc, v),
            ReduceOp::Max => b.binary(if unsigned_full { SB::MaxU } else { SB::MaxS }, acc, v),
            ReduceOp::Min => b.binary(if unsigned_full { SB::MinU } else { SB::MinS }, acc, v),
            ReduceOp::AbsMax => {
                let z = b.i32(0);
                let neg = b.cmp(CmpOp::Slt, v, z);
                let n = b.unary(SU::Neg, v);
                let a = b.select(neg, n, v);
                b.binary(SB::MaxS, acc, a)
            }
        };
        // The first element starts the fold.
        let z = b.i32(0);
        let first = b.cmp(CmpOp::Eq, iv, z);
        let v0 = if op == ReduceOp::AbsMax {
            let zz = b.i32(0);
            let neg = b.cmp(CmpOp::Slt, v, zz);
            let n = b.unary(SU::Neg, v);
            b.select(neg, n, v)
        } else {
            v
        };
        return b.select(first, v0, next);
    }
    match op {
        ReduceOp::Sum => {
            let w = b.cast(CastOp::FConvert, v, ST::F64);
            b.binary(SB::FAdd, acc, w)
        }
        ReduceOp::Max | ReduceOp::Min | ReduceOp::AbsMax => {
            let x = if op == ReduceOp::AbsMax { b.unary(SU::FAbs, v) } else { v };
            let m = b.binary(if op == ReduceOp::Min { SB::FMin } else { SB::FMax }, acc, x);
            let na = b.cmp(CmpOp::FNe, acc, acc);
            let nx = b.cmp(CmpOp::FNe, x, x);
            let any = b.binary(SB::Or, na, nx);
            let nan = b.f32(f32::NAN);
            b.select(any, nan, m)
        }
    }
}

