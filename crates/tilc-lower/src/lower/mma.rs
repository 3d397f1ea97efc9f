//! `dot` on tensor cores: emits the [`MmaPlan`] that layout inference chose — operands
//! brought into the atom's fragment layouts, one `mma.sync` per atom tile and k-step.
//!
//! An operand already held in its fragment layout (or a permutation of each thread's own
//! registers) is packed in registers. Any other operand is *staged*: its elements are stored to
//! the scratch area in their mma element width (one byte for s8/fp8, two for f16/bf16),
//! k-contiguous — A row-major `[m, k]`, B column-major (`[n, k]`) — so that each 32-bit
//! fragment register is one aligned 32-bit shared load, read right before its `mma` (the
//! sinking pass moves it there). Each row's 16-byte chunks are XOR-swizzled by the row's
//! 128-byte line (mod up to 8), so the eight rows one fragment load reads lie in different banks (the emulator's
//! wavefront count shows the bank conflicts this removes). Both operands are staged side by
//! side between one pair of
//! barriers, so neither operand's fragments stay alive across the other's staging; runs of a
//! thread's consecutive elements are stored as 32/64/128-bit words where every thread's run is
//! contiguous and aligned (decided at compile time over all threads).
//!
//! The e-graph confirms the accumulator layout is `outer * atom.c`
//! ([`tilc_layout::egraph::factor_layout`], instruction selection's question) and the factor is
//! recorded in [`crate::LoweringInfo::dots`]. Integer atoms (s8 × s8 + s32, wrapping) give the
//! interpreter's bits exactly; float atoms sum in the tensor core's order, within the VM's
//! documented bound.

use super::{Lx, R, Remap, Tile};
use crate::infer::{Engine, MmaPlan};
use crate::layout::ThreadMap;
use tilc_dtype::DType;
use tilc_layout::RegisterLayout;
use tilc_simt::{self as simt, CastOp, MmaKind, Space, Type as ST, codec};

/// The tensor-core lowering of `a · b + c` by `plan`.
pub(super) fn lower(lx: &mut Lx<'_>, plan: &MmaPlan, a: &Tile, b: &Tile, c: &Tile) -> R<Tile> {
    let (am, an, ak) = plan.mnk;
    let (wm, wn) = plan.warps;
    let (rm, rn, kk) = plan.repeats;
    let (m, k, n) = (a.shape[0], a.shape[1], b.shape[1]);
    let factor = tilc_layout::egraph::factor_layout(&plan.c, &plan.c_atom).map(|e| e.to_string()).unwrap_or_else(|| "(no factorisation found)".into());
    lx.info.dots.push(format!(
        "dot {}[{m}, {k}] x {}[{k}, {n}] -> {}: mma {:?} (m{am}n{an}k{ak}), warps {wm} x {wn}, {rm} x {rn} atoms per warp, {kk} k-steps; C = ({factor}) * mma.c",
        a.dtype, b.dtype, c.dtype, plan.kind
    ));
    // The accumulator first: its own conversion (if any) is self-contained.
    let cr = lx.convert(c, &plan.c, &c.shape, &Remap::Broadcast)?;
    match plan.engine {
        Engine::Wgmma { slice } => return wgmma(lx, plan, slice, a, b, c, &cr),
        Engine::Tcgen05 { slice } => return tcgen05(lx, plan, slice, a, b, c, &cr),
        Engine::MmaSync => {}
    }
    let (elem_a, elem_b) = (operand_type(plan.kind, a.dtype), operand_type(plan.kind, b.dtype));
    let bytes = elem_a.bits() / 8;
    let a_regs = lx.convert_in_registers(a, &plan.a, &a.shape, &Remap::Broadcast);
    let b_regs = lx.convert_in_registers(b, &plan.b, &b.shape, &Remap::Broadcast);
    let a_bytes = if a_regs.is_none() { (m * k) as u32 * bytes } else { 0 };
    let b_bytes = if b_regs.is_none() { (k * n) as u32 * bytes } else { 0 };
    let b_off = a_bytes.next_multiple_of(16);
    let staged = a_bytes + b_bytes > 0;
    let base = if staged { lx.need_scratch(b_off + b_bytes) } else { 0 };
    // A is staged k-contiguous row-major ([m, k]), B k-contiguous column-major ([n, k]); both
    // swizzled when the store and the fragment reads allow it (else plain rows).
    let staging = |base: u32, t: &Tile, frag: &RegisterLayout, k_axis: usize| {
        let st = Staging::new(base, &t.shape, k_axis, bytes);
        let ok = lx.swizzle && st.decomposes(&t.map, lx.threads, false) && st.decomposes(&ThreadMap::new(frag), lx.threads, false);
        if ok { st } else { st.unswizzled() }
    };
    let a_st = staging(base, a, &plan.a, 1);
    // A 16-bit B whose registers hold runs along n is staged n-contiguous ([k, n], the way it
    // was loaded) when that takes fewer stores, and read with `ldmatrix.trans`, which hands
    // each lane its k-pairs (the B fragment) from the rows of k.
    let trans = (bytes == 2 && b_regs.is_none()).then(|| trans_staging(lx, plan, b, base + b_off)).flatten();
    let b_st = trans.as_ref().map_or_else(|| staging(base + b_off, b, &plan.b, 0), |(st, _)| *st);
    let how = |regs: bool, st: &Staging| match (regs, st.period) {
        (true, _) => "in registers".to_string(),
        (false, 1) => "staged".to_string(),
        (false, p) if st.rows_per_line == 1 => format!("staged, swizzled by row mod {p}"),
        (false, p) => format!("staged, swizzled by row / {} mod {p}", st.rows_per_line),
    };
    let (ha, mut hb) = (how(a_regs.is_some(), &a_st), how(b_regs.is_some(), &b_st));
    if trans.is_some() {
        hb = format!("{hb} along n, read by ldmatrix.trans");
    }
    if let Some(line) = lx.info.dots.last_mut() {
        line.push_str(&format!("; A {ha}, B {hb}"));
    }
    if a_regs.is_none() {
        stage(lx, a, elem_a, a_st);
    }
    if b_regs.is_none() {
        stage(lx, b, elem_b, b_st);
    }
    if staged {
        lx.b.barrier();
    }
    let a_frags = match a_regs {
        Some(regs) => pack_registers(lx, elem_a, &regs),
        None => read_fragments(lx, &plan.a, elem_a, a_st),
    };
    let b_frags = match (b_regs, trans) {
        (Some(regs), _) => pack_registers(lx, elem_b, &regs),
        (None, Some((st, lanes))) => read_b_fragments_trans(lx, plan, st, lanes),
        (None, None) => read_fragments(lx, &plan.b, elem_b, b_st),
    };
    let a_frags = group(lx, &a_frags, rm * kk);
    let b_frags = group(lx, &b_frags, kk * rn);
    let sc = cr.len() / (rm * rn);
    // k-steps outermost: each accumulator sees its k-steps in the same order as atom by atom,
    // but only one k-step's operand fragments need to be alive at a time.
    let mut accs: Vec<simt::Value> = (0..rm * rn).map(|t| lx.b.build(&cr[t * sc..(t + 1) * sc])).collect();
    for p in 0..kk {
        for im in 0..rm {
            for jn in 0..rn {
                let av = a_frags[im * kk + p];
                let bv = b_frags[p * rn + jn];
                let t = im * rn + jn;
                accs[t] = lx.b.mma(plan.kind, av, bv, accs[t]);
            }
        }
    }
    if staged {
        // The scratch area is free for the next user only once every warp has read it.
        lx.b.barrier();
    }
    let mut out = cr.clone();
    for (t, &acc) in accs.iter().enumerate() {
        for e in 0..sc {
            out[t * sc + e] = lx.b.extract(acc, e as u8);
        }
    }
    Ok(lx.make_tile(c.dtype, c.shape.clone(), plan.c.clone(), out))
}

/// The element type the atom multiplies: s8 for every integer operand (any integer type that
/// fits s8 holds its value exactly), f16 for the f16 atom (which also takes the narrower floats
/// that embed in f16), else the operand's own type.
fn operand_type(kind: MmaKind, d: DType) -> DType {
    match kind {
        MmaKind::S8S32 => DType::Int(8),
        MmaKind::F16F32 => DType::Float(tilc_dtype::FloatFormat::F16),
        _ => d,
    }
}

/// Packs register values (slots of a fragment layout) into 32-bit fragment words, slot `e`
/// of a word at bit `e · width`.
fn pack_registers(lx: &mut Lx<'_>, elem: DType, vals: &[simt::Value]) -> Vec<simt::Value> {
    let bits = elem.bits();
    let per_word = (32 / bits) as usize;
    vals.chunks(per_word)
        .map(|chunk| {
            let mut w = lx.b.i32(0);
            for (e, &v) in chunk.iter().enumerate() {
                let code = codec::encode_operand(&mut lx.b, elem, v);
                let sh = lx.b.i32((e as u32 * bits) as i32);
                let part = lx.b.shl(code, sh);
                w = lx.b.or(w, part);
            }
            w
        })
        .collect()
}

/// Splits fragment words into one value per atom operand (`count` of them, in slot order).
fn group(lx: &mut Lx<'_>, words: &[simt::Value], count: usize) -> Vec<simt::Value> {
    let per = words.len() / count;
    words.chunks(per).map(|w| if w.len() == 1 { w[0] } else { lx.b.build(w) }).collect()
}

/// Where a staged operand lives in the scratch area: k-contiguous rows (A's rows, B's
/// columns) of `row_bytes`, each row's 16-byte chunks XOR-swizzled by `row mod period` so that
/// the eight rows a fragment load touches fall in different banks (`period` 1: no swizzle).
/// Chunks move whole, so every access of at most 16 aligned bytes stays contiguous.
#[derive(Clone, Copy, Debug)]
struct Staging {
    base: u32,
    /// The operand's k axis (A: 1, B: 0); the other one is the row.
    k_axis: usize,
    /// Bytes per element (1 or 2).
    bytes: i64,
    row_bytes: i64,
    /// The swizzle key of row `r` is `(r / rows_per_line) mod period`: rows narrower than a
    /// 128-byte line share one, and the key changes once per line.
    rows_per_line: i64,
    period: i64,
}

impl Staging {
    /// A swizzled staging of an operand of `shape` (its k axis `k_axis`), or unswizzled when
    /// the rows are not a power-of-two number (≥ 2) of chunks.
    fn new(base: u32, shape: &[usize], k_axis: usize, bytes: u32) -> Staging {
        let row_bytes = (shape[k_axis] as i64) * i64::from(bytes);
        let chunks = row_bytes / 16;
        let period = if row_bytes % 16 == 0 && chunks >= 2 && (chunks as u64).is_power_of_two() { chunks.min(8) } else { 1 };
        let rows_per_line = if period > 1 { (128 / row_bytes).max(1) } else { 1 };
        Staging { base, k_axis, bytes: i64::from(bytes), row_bytes, rows_per_line, period }
    }

    fn unswizzled(self) -> Staging {
        Staging { period: 1, ..self }
    }

    /// The byte offset (from `base`) of element `(row, column byte)`.
    fn offset(&self, row: i64, col_byte: i64) -> i64 {
        let chunk = (col_byte / 16) ^ ((row / self.rows_per_line) % self.period);
        row * self.row_bytes + chunk * 16 + col_byte % 16
    }

    /// Slot `j` of thread `t`: (thread row, thread column byte, slot row, slot column byte),
    /// the thread-dependent parts and the slot's constants.
    fn split(&self, map: &ThreadMap, t: usize, j: usize) -> (i64, i64, i64, i64) {
        let full = map.coords(t, j);
        let local = &map.local_coords[j];
        let r = 1 - self.k_axis;
        let (cr, cc) = (local[r] as i64, local[self.k_axis] as i64 * self.bytes);
        (full[r] as i64 - cr, full[self.k_axis] as i64 * self.bytes - cc, cr, cc)
    }

    /// The per-thread pointer a slot needs: keyed by its column chunk constant `cc / 16` and its
    /// row constant mod the period (unswizzled: one pointer for every slot). `coarse`: by the
    /// row constant's line instead (`⌊cr / q⌋ mod p`, as a multiple of `q`), which is right
    /// when every thread's row is a multiple of `q` — then `(tr + cr) / q = tr / q + ⌊cr / q⌋` —
    /// and lets the `q` rows of a line share one pointer.
    fn key(&self, cr: i64, cc: i64, coarse: bool) -> (i64, i64) {
        let q = self.rows_per_line;
        match (self.period, coarse) {
            (1, _) => (0, 0),
            (p, true) => (cc / 16, (cr / q) % p * q),
            (p, false) => (cc / 16, cr % (q * p)),
        }
    }

    /// Whether every slot's offset is `X(thread, key) + cr · row_bytes + cc mod 16` — the form
    /// [`StagedPtrs::slot_ptr`] computes, with one per-thread pointer per [`Staging::key`] and
    /// the rest folded into the access's immediate — with at most 16 distinct keys. Since
    /// `(tr + cr) / q mod p = (tr + cr mod qp) / q mod p`, this holds (fine keys) whenever no
    /// slot's column constant carries out of the thread's 16-byte chunk.
    fn decomposes(&self, map: &ThreadMap, threads: usize, coarse: bool) -> bool {
        let mut keys = std::collections::BTreeSet::new();
        let fits = (0..threads).all(|t| {
            (0..map.slots).all(|j| {
                let (tr, tc, cr, cc) = self.split(map, t, j);
                keys.insert(self.key(cr, cc, coarse));
                let (c, r) = self.key(cr, cc, coarse);
                let x = if self.period == 1 {
                    tr * self.row_bytes + tc
                } else {
                    (((tc / 16) + c) ^ (((tr + r) / self.rows_per_line) % self.period)) * 16 + tc % 16 + tr * self.row_bytes
                };
                let konst = if self.period == 1 { cr * self.row_bytes + cc } else { cr * self.row_bytes + cc % 16 };
                (self.period == 1 || tc % 16 + cc % 16 < 16) && self.offset(tr + cr, tc + cc) == x + konst
            })
        });
        fits && keys.len() <= 16
    }
}

/// The per-thread parts of a staging's addresses for one layout, one pointer per column chunk
/// constant, made when first needed.
struct StagedPtrs {
    st: Staging,
    map: ThreadMap,
    row: simt::Value,
    col: simt::Value,
    /// Pointers keyed by line rather than by row ([`Staging::key`]), where that decomposes.
    coarse: bool,
    ptrs: Vec<((i64, i64), simt::Value)>,
}

impl StagedPtrs {
    fn new(lx: &mut Lx<'_>, st: Staging, map: ThreadMap) -> StagedPtrs {
        let tc = lx.thread_coords(&map);
        let row = tc[1 - st.k_axis];
        let col = if st.bytes == 1 {
            tc[st.k_axis]
        } else {
            let b = lx.b.i32(st.bytes as i32);
            lx.b.mul(tc[st.k_axis], b)
        };
        let coarse = st.period > 1 && st.decomposes(&map, lx.threads, true);
        StagedPtrs { st, map, row, col, coarse, ptrs: Vec::new() }
    }

    /// The address of slot `j`.
    fn slot_ptr(&mut self, lx: &mut Lx<'_>, j: usize) -> simt::Value {
        let local = &self.map.local_coords[j];
        let (cr, cc) = (local[1 - self.st.k_axis] as i64, local[self.st.k_axis] as i64 * self.st.bytes);
        let st = self.st;
        let key = st.key(cr, cc, self.coarse);
        let konst = if st.period == 1 { cr * st.row_bytes + cc } else { cr * st.row_bytes + cc % 16 };
        let p = match self.ptrs.iter().find(|(k, _)| *k == key) {
            Some(&(_, p)) => p,
            None => {
                let rb = lx.b.i32(st.row_bytes as i32);
                let row_off = lx.b.mul(self.row, rb);
                let off = if st.period == 1 {
                    lx.b.add(row_off, self.col)
                } else {
                    // ((col / 16 + c) ^ ((row + r) / rows_per_line mod period)) · 16 + col mod 16
                    // + row · row_bytes
                    let (c, r) = key;
                    let four = lx.b.i32(4);
                    let ch = lx.b.binary(simt::BinaryOp::ShrU, self.col, four);
                    let cv = lx.b.i32(c as i32);
                    let ch = lx.b.add(ch, cv);
                    let rv = lx.b.i32(r as i32);
                    let rr = lx.b.add(self.row, rv);
                    let q = lx.b.i32(st.rows_per_line.trailing_zeros() as i32);
                    let rr = lx.b.binary(simt::BinaryOp::ShrU, rr, q);
                    let pm = lx.b.i32((st.period - 1) as i32);
                    let rm = lx.b.and(rr, pm);
                    let sw = lx.b.binary(simt::BinaryOp::Xor, ch, rm);
                    let sw = lx.b.shl(sw, four);
                    let fifteen = lx.b.i32(15);
                    let within = lx.b.and(self.col, fifteen);
                    let x = lx.b.or(sw, within);
                    lx.b.add(x, row_off)
                };
                let p = lx.b.shared_addr(off);
                self.ptrs.push((key, p));
                p
            }
        };
        let c = lx.b.i32((i64::from(st.base) + konst) as i32);
        lx.b.ptr_add(p, c)
    }
}

/// Whether slots `j .. j + len` of every thread hold consecutive bytes of the staging, the
/// first at a multiple of `len` elements (so one aligned access covers them).
fn contiguous(st: &Staging, map: &ThreadMap, threads: usize, j: usize, len: usize) -> bool {
    let at = |t: usize, j: usize| {
        let c = map.coords(t, j);
        st.offset(c[1 - st.k_axis] as i64, c[st.k_axis] as i64 * st.bytes)
    };
    let span = len as i64 * st.bytes;
    j + len <= map.slots
        && (0..threads).all(|t| {
            let first = at(t, j);
            first % span == 0 && (1..len).all(|e| at(t, j + e) == first + e as i64 * st.bytes)
        })
}

/// Where the lanes of an `ldmatrix.x2.trans` point for every B atom of the plan (k-step `p`,
/// n-atom `jn`): lane `l < 16` at row `16p + l` of the k axis, at the warp's first column of
/// the atom (lanes 16–31 repeat them; `.x2` ignores them). As a layout over B's `[k, n]` with
/// 8 slots per atom (only the first, the row start, is used):
///
/// ```text
/// replica(wm) * spatial(1, wn) * local(kk, rn) * replica(2) * spatial(16, 1) * local(1, 8)
/// ```
fn trans_lanes(plan: &MmaPlan) -> RegisterLayout {
    use tilc_layout::register::{compose, local, spatial};
    let (wm, wn) = plan.warps;
    let (_, rn, kk) = plan.repeats;
    let lanes = compose(&compose(&RegisterLayout::replica(2), &spatial(&[16, 1])), &local(&[1, 8]));
    compose(&compose(&compose(&RegisterLayout::replica(wm), &spatial(&[1, wn])), &local(&[kk, rn])), &lanes)
}

/// The n-contiguous staging of a 16-bit B and its `ldmatrix` lane map, when the plan's atom is
/// m16n8k16, both the stores and the lane addresses decompose, and it takes fewer stores than
/// the k-contiguous staging; else `None`.
fn trans_staging(lx: &Lx<'_>, plan: &MmaPlan, b: &Tile, base: u32) -> Option<(Staging, ThreadMap)> {
    if plan.mnk != (16, 8, 16) {
        return None;
    }
    let lanes = ThreadMap::new(&trans_lanes(plan));
    let pick = |st: Staging| {
        let fits = |st: &Staging| st.decomposes(&b.map, lx.threads, false) && st.decomposes(&lanes, lx.threads, false);
        if lx.swizzle && fits(&st) {
            Some(st)
        } else {
            let plain = st.unswizzled();
            fits(&plain).then_some(plain)
        }
    };
    let st = pick(Staging::new(base, &b.shape, 1, 2))?;
    let k_major = Staging::new(base, &b.shape, 0, 2);
    (store_count(&st, &b.map, lx.threads) < store_count(&k_major, &b.map, lx.threads)).then_some((st, lanes))
}

/// How many stores [`stage`] issues for `map` into `st` (the widest contiguous runs first).
fn store_count(st: &Staging, map: &ThreadMap, threads: usize) -> usize {
    let per_word = 2;
    let (mut j, mut count) = (0, 0);
    while j < map.slots {
        j += [4usize, 2, 1].into_iter().find(|&w| contiguous(st, map, threads, j, w * per_word)).map_or(1, |w| w * per_word);
        count += 1;
    }
    count
}

/// B's fragment words read from its n-contiguous staging with one `ldmatrix.x2.trans` per
/// atom, in the plan's (k-step, n-atom, register) order.
fn read_b_fragments_trans(lx: &mut Lx<'_>, plan: &MmaPlan, st: Staging, lanes: ThreadMap) -> Vec<simt::Value> {
    let (_, rn, kk) = plan.repeats;
    let mut ptrs = StagedPtrs::new(lx, st, lanes);
    let mut words = Vec::with_capacity(2 * kk * rn);
    for p in 0..kk {
        for jn in 0..rn {
            let ptr = ptrs.slot_ptr(lx, (p * rn + jn) * 8);
            let pair = lx.b.ldmatrix(2, true, ptr);
            words.push(lx.b.extract(pair, 0));
            words.push(lx.b.extract(pair, 1));
        }
    }
    words
}

/// Stages both operands of a `wgmma`/`tcgen05` dot in the scratch area in the canonical K-major
/// layout, one k-step slab after another (A: its `m` rows, B: all `n` rows, 32 bytes of each
/// row per slab, [`tilc_simt::wgmma_offset`] inside a slab), and fences them for the async
/// proxy (a barrier must follow). Returns the scratch offsets of A and of B (relative to A).
fn stage_k_major(lx: &mut Lx<'_>, plan: &MmaPlan, a: &Tile, b: &Tile) -> (u32, u32) {
    let (m, k, n) = (a.shape[0], a.shape[1], b.shape[1]);
    let (elem_a, elem_b) = (operand_type(plan.kind, a.dtype), operand_type(plan.kind, b.dtype));
    let bytes = (elem_a.bits() / 8) as usize;
    let k_bytes = k * bytes;
    let a_bytes = (m * k_bytes) as u32;
    let b_off = a_bytes.next_multiple_of(16);
    let base = lx.need_scratch(b_off + (n * k_bytes) as u32);
    // Element (row, k) of an operand with `rows` rows: its k-step slab, then the core-matrix
    // layout inside it.
    let canonical = move |rows: usize| move |row: i64, k_byte: i64| -> i64 { (k_byte / 32) * rows as i64 * 32 + i64::from(tilc_simt::wgmma_offset(row as u32, (k_byte % 32) as u32)) };
    stage_canonical(lx, a, elem_a, base, 1, canonical(m));
    stage_canonical(lx, b, elem_b, base + b_off, 0, canonical(n));
    lx.b.fence_proxy_async();
    (base, b_off)
}

/// The block's tensor memory for `tcgen05` dots: its address (read once at the top, so it
/// dominates every use) and the shared bytes of the mbarrier their commits arrive on.
#[derive(Clone, Debug)]
pub(super) struct TensorMemory {
    /// The allocation's address (lane 0, first column), i32.
    taddr: simt::Value,
    /// Columns allocated: the widest tcgen05 dot's n, rounded up to a power of two ≥ 32.
    cols: u32,
    /// Shared offset of the 8-byte mbarrier; the next 4 bytes receive the allocation's
    /// address, the 4 after them the phase parity the next wait is for (only thread 0 reads
    /// and writes it, so no register has to carry it through loops).
    shared: u32,
}

/// When some `dot` runs on `tcgen05`: reserves 16 shared bytes (mbarrier, address slot,
/// phase), lets warp 0 allocate the tensor memory and thread 0 initialise the mbarrier, and
/// reads the address after a barrier. Called before the body is lowered.
pub(super) fn allocate_tensor_memory(lx: &mut Lx<'_>) {
    let widest = lx.inferred.mma.values().filter_map(|p| matches!(p.engine, Engine::Tcgen05 { .. }).then_some(p.mnk.1)).max();
    let Some(widest) = widest else { return };
    let cols = (widest as u32).next_power_of_two().max(32);
    let shared = lx.shared_next.next_multiple_of(8);
    lx.shared_next = shared + 16;
    let tid = lx.tid();
    let first_warp = is_first_warp(lx);
    let zero = lx.b.i32(0);
    let slot = lx.b.i32(shared as i32 + 8);
    let slot = lx.b.shared_addr(slot);
    lx.b.if_then(first_warp, |b| {
        b.tmem_alloc(slot, cols);
    });
    let first_thread = lx.b.cmp(simt::CmpOp::Eq, tid, zero);
    lx.b.if_then(first_thread, |b| {
        let at = b.i32(shared as i32);
        let mbar = b.shared_addr(at);
        b.mbarrier_init(mbar, 1);
        let at = b.i32(shared as i32 + 12);
        let phase = b.shared_addr(at);
        let zero = b.i32(0);
        b.store(Space::Shared, phase, zero, None);
    });
    lx.b.tcgen05_fence(false);
    lx.b.barrier();
    lx.b.tcgen05_fence(true);
    let taddr = lx.b.load(Space::Shared, ST::I32, slot, None);
    lx.tmem = Some(TensorMemory { taddr, cols, shared });
}

/// Frees what [`allocate_tensor_memory`] allocated, once every warp is done with it.
pub(super) fn free_tensor_memory(lx: &mut Lx<'_>) {
    let Some(tm) = lx.tmem.clone() else { return };
    lx.b.tcgen05_fence(false);
    lx.b.barrier();
    lx.b.tcgen05_fence(true);
    let first_warp = is_first_warp(lx);
    lx.b.if_then(first_warp, |b| {
        b.tmem_dealloc(tm.taddr, tm.cols);
    });
}

/// This thread's warp index, `tid / 32`.
fn warp_index(lx: &mut Lx<'_>) -> simt::Value {
    let tid = lx.tid();
    let five = lx.b.i32(5);
    lx.b.shr_u(tid, five)
}

/// Whether this thread is in warp 0 (which allocates and frees tensor memory).
fn is_first_warp(lx: &mut Lx<'_>) -> simt::Value {
    let warp = warp_index(lx);
    let zero = lx.b.i32(0);
    lx.b.cmp(simt::CmpOp::Eq, warp, zero)
}

/// Splits `cols` (a multiple of 8) into `tcgen05.ld`/`st` pieces: (first column, width), widths
/// 32, then 16 and 8.
fn tmem_pieces(cols: usize) -> Vec<(usize, u8)> {
    let mut out = Vec::new();
    let mut at = 0;
    for w in [32usize, 16, 8] {
        while cols - at >= w {
            out.push((at, w as u8));
            at += w;
        }
    }
    out
}

/// The `tcgen05` lowering (sm_100a): both operands staged as for `wgmma`; each thread writes its
/// accumulator row slice into tensor memory (`tcgen05.st`), thread 0 issues one
/// `tcgen05.mma` per k-step over the whole 128 × n tile, commits them to the mbarrier and
/// waits for the phase; after a barrier every thread reads its slice back (`tcgen05.ld`).
/// Synchronous: the accumulator comes back to registers after every `dot`, as the VM's
/// semantics of `dot` (a value, not a location) ask.
fn tcgen05(lx: &mut Lx<'_>, plan: &MmaPlan, slice: u16, a: &Tile, b: &Tile, c: &Tile, cr: &[simt::Value]) -> R<Tile> {
    let tm = lx.tmem.clone().expect("allocate_tensor_memory ran: this plan is a tcgen05 plan");
    let (_, _, kk) = plan.repeats;
    let (m, n) = (a.shape[0], b.shape[1]);
    if let Some(line) = lx.info.dots.last_mut() {
        line.push_str(&format!("; tcgen05 m128n{n}k{} issued by thread 0, accumulator in tensor memory ({} columns), {slice} columns read back per warpgroup", plan.mnk.2, tm.cols));
    }
    let (base, b_off) = stage_k_major(lx, plan, a, b);
    // This thread's cells: lane 32 · (warp mod 4) + lane (its row), columns from its
    // warpgroup's slice.
    let tid = lx.tid();
    let warp = warp_index(lx);
    let three = lx.b.i32(3);
    let quarter = lx.b.and(warp, three);
    let twenty_one = lx.b.i32(21);
    let lane_part = lx.b.shl(quarter, twenty_one);
    let seven = lx.b.i32(7);
    let group = lx.b.shr_u(tid, seven);
    let width = lx.b.i32(i32::from(slice));
    let col_part = lx.b.mul(group, width);
    let mine = lx.b.add(tm.taddr, lane_part);
    let mine = lx.b.add(mine, col_part);
    let pieces = tmem_pieces(usize::from(slice));
    // A zero accumulator (`dot(a, b, zeros)`) need not be stored: the first k-step overwrites.
    let zero_acc = cr.iter().all(|&v| lx.b.kernel().const_bits(v) == Some(0));
    if !zero_acc {
        for &(at, w) in &pieces {
            let off = lx.b.i32(at as i32);
            let addr = lx.b.add(mine, off);
            lx.b.tmem_store(addr, &cr[at..at + usize::from(w)]);
        }
    }
    // The stores and the staged operands reach the tensor core before thread 0 issues.
    lx.b.tcgen05_fence(false);
    lx.b.barrier();
    lx.b.tcgen05_fence(true);
    let zero = lx.b.i32(0);
    let first_thread = lx.b.cmp(simt::CmpOp::Eq, tid, zero);
    let (kind, taddr, shared) = (plan.kind, tm.taddr, tm.shared);
    lx.b.if_then(first_thread, |bd| {
        for p in 0..kk {
            let yes = bd.pred(p > 0 || !zero_acc);
            let ao = bd.i32((base as usize + p * m * 32) as i32);
            let ap = bd.shared_addr(ao);
            let bo = bd.i32((base as usize + b_off as usize + p * n * 32) as i32);
            let bp = bd.shared_addr(bo);
            bd.tcgen05_mma(kind, n as u16, taddr, ap, bp, yes);
        }
        let at = bd.i32(shared as i32);
        let mbar = bd.shared_addr(at);
        bd.tcgen05_commit(mbar);
        let at = bd.i32(shared as i32 + 12);
        let phase_slot = bd.shared_addr(at);
        let phase = bd.load(Space::Shared, ST::I32, phase_slot, None);
        bd.mbarrier_wait(mbar, phase);
        let one = bd.i32(1);
        let next = bd.binary(simt::BinaryOp::Xor, phase, one);
        bd.store(Space::Shared, phase_slot, next, None);
    });
    lx.b.tcgen05_fence(false);
    lx.b.barrier();
    lx.b.tcgen05_fence(true);
    let scalar = plan.kind.acc_scalar();
    let mut out = Vec::with_capacity(cr.len());
    for &(at, w) in &pieces {
        let off = lx.b.i32(at as i32);
        let addr = lx.b.add(mine, off);
        out.extend(lx.b.tmem_load(addr, w, scalar));
    }
    Ok(lx.make_tile(c.dtype, c.shape.clone(), plan.c.clone(), out))
}

/// Stores every element of `t` (primary holders only) as its `elem` code into the staging, in
/// the widest aligned accesses the layout allows.
fn stage(lx: &mut Lx<'_>, t: &Tile, elem: DType, st: Staging) {
    let bits = elem.bits();
    let map = (*t.map).clone();
    let primary = lx.primary_pred(&map);
    let per_word = (32 / bits) as usize;
    let mut ptrs = StagedPtrs::new(lx, st, map.clone());
    let mut j = 0;
    while j < map.slots {
        let p = ptrs.slot_ptr(lx, j);
        let words = [4usize, 2, 1].into_iter().find(|&w| contiguous(&st, &map, lx.threads, j, w * per_word));
        j += store_run(lx, t, elem, j, words, p, primary);
    }
}

/// Stores slot `j` of `t` onward at `ptr` as `elem` codes: `words` (4, 2 or 1) packed 32-bit
/// words when that many words' worth of slots are contiguous and aligned for every thread
/// (widest first, decided by the caller), else the one element in its own width. Returns the
/// number of slots stored.
fn store_run(lx: &mut Lx<'_>, t: &Tile, elem: DType, j: usize, words: Option<usize>, ptr: simt::Value, primary: Option<simt::Value>) -> usize {
    let per_word = (32 / elem.bits()) as usize;
    match words {
        Some(w) => {
            let packed = pack_registers(lx, elem, &t.regs[j..j + w * per_word]);
            let v = if w == 1 { packed[0] } else { lx.b.build(&packed) };
            lx.b.store(Space::Shared, ptr, v, primary);
            w * per_word
        }
        None => {
            let code = codec::encode_operand(&mut lx.b, elem, t.regs[j]);
            let ty = if elem.bits() == 8 { ST::I8 } else { ST::I16 };
            let v = lx.b.cast(CastOp::Trunc, code, ty);
            lx.b.store(Space::Shared, ptr, v, primary);
            1
        }
    }
}

/// The fragment words of layout `frag` read from an operand staged by [`stage`]: one 32-bit
/// load per word where every thread's elements of it are contiguous and aligned, else one load
/// per element, packed.
fn read_fragments(lx: &mut Lx<'_>, frag: &RegisterLayout, elem: DType, st: Staging) -> Vec<simt::Value> {
    let bits = elem.bits();
    let per_word = (32 / bits) as usize;
    let map = ThreadMap::new(frag);
    let mut ptrs = StagedPtrs::new(lx, st, map.clone());
    let mut words = Vec::with_capacity(map.slots / per_word);
    for j in (0..map.slots).step_by(per_word) {
        if contiguous(&st, &map, lx.threads, j, per_word) {
            let p = ptrs.slot_ptr(lx, j);
            words.push(lx.b.load(Space::Shared, ST::I32, p, None));
            continue;
        }
        let mut w = lx.b.i32(0);
        for e in 0..per_word {
            let p = ptrs.slot_ptr(lx, j + e);
            let ty = if st.bytes == 1 { ST::I8 } else { ST::I16 };
            let v = lx.b.load(Space::Shared, ty, p, None);
            let v = lx.b.cast(CastOp::ZExt, v, ST::I32);
            let sh = lx.b.i32((e as u32 * bits) as i32);
            let part = lx.b.shl(v, sh);
            w = lx.b.or(w, part);
        }
        words.push(w);
    }
    words
}

/// The `wgmma` lowering (sm_90a): both operands staged in shared memory in the canonical
/// K-major layout, one k-step slab after another (A: 64 rows, B: all `n` rows, 32 bytes of
/// each row per slab, [`tilc_simt::wgmma_offset`] inside a slab), made visible to the async
/// proxy, then one `wgmma` per k-step per warpgroup (warpgroup `g` reads B's rows
/// `g · slice ..`). The accumulator stays in registers in the plan's layout, which is
/// wgmma's. Staging stores use one pointer per group of slots whose offsets differ by the same
/// constant in every thread, so the constants fold into the stores.
fn wgmma(lx: &mut Lx<'_>, plan: &MmaPlan, slice: u16, a: &Tile, b: &Tile, c: &Tile, cr: &[simt::Value]) -> R<Tile> {
    let (_, _, kk) = plan.repeats;
    let (m, n) = (a.shape[0], b.shape[1]);
    if let Some(line) = lx.info.dots.last_mut() {
        line.push_str(&format!("; wgmma m64n{slice}k{} per warpgroup, A and B staged in the canonical K-major layout", plan.mnk.2));
    }
    let (base, b_off) = stage_k_major(lx, plan, a, b);
    lx.b.barrier();
    // Warpgroup g's B rows start g · slice rows into every slab: slice / 8 row groups of 256 bytes.
    let tid = lx.tid();
    let seven = lx.b.i32(7);
    let group = lx.b.binary(simt::BinaryOp::ShrU, tid, seven);
    let per_group = lx.b.i32((usize::from(slice) / 8 * tilc_simt::WGMMA_SBO as usize) as i32);
    let b_group = lx.b.mul(group, per_group);
    let b_group = lx.b.shared_addr(b_group);
    let zero = lx.b.i32(0);
    let a_base = lx.b.shared_addr(zero);
    let mut accs: Vec<simt::Value> = cr.chunks(4).map(|f| lx.b.build(f)).collect();
    for p in 0..kk {
        let ao = lx.b.i32((base as usize + p * m * 32) as i32);
        let ap = lx.b.ptr_add(a_base, ao);
        let bo = lx.b.i32((base as usize + b_off as usize + p * n * 32) as i32);
        let bp = lx.b.ptr_add(b_group, bo);
        accs = lx.b.wgmma(plan.kind, slice, ap, bp, &accs);
    }
    // The scratch area is free for the next user only once every warpgroup has read it.
    lx.b.barrier();
    let mut out = Vec::with_capacity(cr.len());
    for &acc in &accs {
        for e in 0..4 {
            out.push(lx.b.extract(acc, e as u8));
        }
    }
    Ok(lx.make_tile(c.dtype, c.shape.clone(), plan.c.clone(), out))
}

/// Stores every element of `t` (primary holders only) as its `elem` code at scratch byte
/// `base + offset(row, k byte)`, where the row is the coordinate other than `k_axis`, in the
/// widest aligned accesses (up to 16 bytes) whose bytes are contiguous for every thread.
fn stage_canonical(lx: &mut Lx<'_>, t: &Tile, elem: DType, base: u32, k_axis: usize, offset: impl Fn(i64, i64) -> i64) {
    let bits = elem.bits();
    let bytes = i64::from(bits / 8);
    let map = (*t.map).clone();
    let per_word = (32 / bits) as usize;
    let at = |t: usize, j: usize| {
        let c = map.coords(t, j);
        offset(c[1 - k_axis] as i64, c[k_axis] as i64 * bytes)
    };
    let threads = lx.threads;
    let contiguous = |j: usize, len: usize| {
        j + len <= map.slots
            && (0..threads).all(|t| {
                let first = at(t, j);
                first % (len as i64 * bytes) == 0 && (1..len).all(|e| at(t, j + e) == first + e as i64 * bytes)
            })
    };
    let primary = lx.primary_pred(&map);
    let tc = lx.thread_coords(&map);
    // Pointer clusters: (the slot that defined it, its pointer).
    let mut clusters: Vec<(usize, simt::Value)> = Vec::new();
    let mut j = 0;
    while j < map.slots {
        let found = clusters.iter().find_map(|&(s, p)| {
            let d = at(0, j) - at(0, s);
            (0..threads).all(|t| at(t, j) - at(t, s) == d).then_some((p, d))
        });
        let (p, d) = match found {
            Some(x) => x,
            None => {
                let p = canonical_ptr(lx, &map, &tc, j, k_axis, bytes);
                clusters.push((j, p));
                (p, 0)
            }
        };
        let dv = lx.b.i32((i64::from(base) + d) as i32);
        let ptr = lx.b.ptr_add(p, dv);
        let words = [4usize, 2, 1].into_iter().find(|&w| contiguous(j, w * per_word));
        j += store_run(lx, t, elem, j, words, ptr, primary);
    }

    /// The shared pointer (without `base`) of slot `j`: the canonical offset computed from the
    /// thread's coordinates plus the slot's, with shifts and masks.
    fn canonical_ptr(lx: &mut Lx<'_>, map: &ThreadMap, tc: &[simt::Value], j: usize, k_axis: usize, bytes: i64) -> simt::Value {
        let local = &map.local_coords[j];
        let (cr, ck) = (local[1 - k_axis] as i32, local[k_axis] as i32 * bytes as i32);
        let rows = map.shape[1 - k_axis] as i32;
        let crv = lx.b.i32(cr);
        let row = lx.b.add(tc[1 - k_axis], crv);
        let bv = lx.b.i32(bytes as i32);
        let kb = lx.b.mul(tc[k_axis], bv);
        let ckv = lx.b.i32(ck);
        let kb = lx.b.add(kb, ckv);
        let sh = |lx: &mut Lx<'_>, x: simt::Value, n: i32| {
            let nv = lx.b.i32(n);
            lx.b.binary(simt::BinaryOp::ShrU, x, nv)
        };
        let and = |lx: &mut Lx<'_>, x: simt::Value, m: i32| {
            let mv = lx.b.i32(m);
            lx.b.and(x, mv)
        };
        let mul = |lx: &mut Lx<'_>, x: simt::Value, m: i32| {
            let mv = lx.b.i32(m);
            lx.b.mul(x, mv)
        };
        // (kb / 32) · rows · 32 + (row / 8) · SBO + (kb mod 32 / 16) · LBO + (row mod 8) · 16 + kb mod 16
        let slab = sh(lx, kb, 5);
        let slab = mul(lx, slab, rows * 32);
        let group = sh(lx, row, 3);
        let group = mul(lx, group, tilc_simt::WGMMA_SBO as i32);
        let kin = and(lx, kb, 31);
        let core = sh(lx, kin, 4);
        let core = mul(lx, core, tilc_simt::WGMMA_LBO as i32);
        let r8 = and(lx, row, 7);
        let r8 = mul(lx, r8, 16);
        let k16 = and(lx, kb, 15);
        let mut off = lx.b.add(slab, group);
        off = lx.b.add(off, core);
        off = lx.b.add(off, r8);
        off = lx.b.add(off, k16);
        lx.b.shared_addr(off)
    }
}
