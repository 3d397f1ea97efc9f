//! `hadamard` along one axis of a register tile, stage by stage where the data lives.
//!
//! The VM defines the transform as f64 butterflies `(a, b) → (a + b, a − b)` with stride
//! h = 1, 2, 4, … along the axis, in that order ([`tilc_vm::interp::hadamard_in_place`]), then
//! one rounding to the tile's dtype. Any placement of the same stages in the same order gives
//! the same bits, so each stage runs where its pairs are in the tile's register layout:
//!
//! - bit log2(h) of the axis coordinate in the *slot* index: both elements of every pair are in
//!   one thread, the butterfly is register arithmetic;
//! - in the thread index below 32 (a *lane* bit): the partner is lane `lane ^ mask` of the same
//!   warp, one `shfl.bfly` per 32-bit half of the f64;
//! - in a *warp* bit: the tile is re-laid through shared memory first (an exchange that swaps
//!   the warp bits still to be processed with slot bits already processed), so that the stage
//!   and the following ones become in-thread; a last exchange restores the tile's layout.
//!
//! An exchange moves f64 values in rounds of at most [`EXCHANGE_BYTES`] of scratch, each round
//! between two barriers. Layouts where a thread digit of the axis is not a power-of-two bit of
//! the thread index (blocks of a non-power-of-two size), or with warp bits but no slot bit of
//! the axis to trade them with, take [`fallback`]: every stage over shared memory.

use super::{Lx, R, Tile};
use crate::layout::ThreadMap;
use std::collections::HashMap;
use tilc_base::Span;
use tilc_simt::codec;
use tilc_simt::{self as simt, BinaryOp as SB, Builder, CastOp, CmpOp, Space, Type as ST, Unroll};

/// The most scratch bytes one exchange round uses. The 4096-column default (4 warps, 32 f64
/// per thread) exchanges in one round; larger tiles take more rounds (two barriers each)
/// rather than more shared memory.
const EXCHANGE_BYTES: u32 = 32 * 1024;

/// Where one bit of the axis coordinate lives in the tile's layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bit {
    /// In the slot index: the two values of a pair are registers of one thread.
    Local,
    /// In the thread index, as this power-of-two bit of `tid`: a lane bit below 32, a warp bit
    /// from 32 on.
    Thread(u32),
}

/// The compile-time picture of the tile: per physical axis bit its [`Bit`], and the slot that
/// holds each combination of local coordinates.
struct Plan {
    axis: usize,
    bits: Vec<Bit>,
    map: ThreadMap,
    slot_of: HashMap<Vec<usize>, usize>,
}

impl Plan {
    /// The plan of `map` along `axis` of power-of-two length `len`; `None` when a thread digit
    /// of the axis is not a bit field of the thread index.
    fn new(map: &ThreadMap, axis: usize, len: usize) -> Option<Plan> {
        let n = len.trailing_zeros() as usize;
        let mut bits = vec![Bit::Local; n];
        for &(below, size, stride) in &map.thread_terms[axis] {
            if !below.is_power_of_two() || !size.is_power_of_two() || !stride.is_power_of_two() {
                return None;
            }
            let s0 = stride.trailing_zeros() as usize;
            for i in 0..size.trailing_zeros() as usize {
                *bits.get_mut(s0 + i)? = Bit::Thread((below << i) as u32);
            }
        }
        let slot_of: HashMap<Vec<usize>, usize> = map.local_coords.iter().enumerate().map(|(j, c)| (c.clone(), j)).collect();
        let plan = Plan { axis, bits, map: map.clone(), slot_of };
        // Every local bit pairs every slot with another slot.
        for j in 0..map.slots {
            for p in 0..n {
                if plan.bits[p] == Bit::Local && plan.partner(j, p).is_none() {
                    return None;
                }
            }
        }
        Some(plan)
    }

    /// The slot whose local coordinates are slot `j`'s with local axis bit `p` flipped.
    fn partner(&self, j: usize, p: usize) -> Option<usize> {
        let mut c = self.map.local_coords[j].clone();
        c[self.axis] ^= 1 << p;
        self.slot_of.get(&c).copied()
    }

    /// Bit `p` of slot `j`'s local axis coordinate.
    fn local_bit(&self, j: usize, p: usize) -> usize {
        (self.map.local_coords[j][self.axis] >> p) & 1
    }

    fn is_warp(&self, p: usize) -> bool {
        matches!(self.bits[p], Bit::Thread(m) if m >= 32)
    }
}

/// `hadamard(x, axis)`: the result in `x`'s layout.
pub(super) fn lower(lx: &mut Lx<'_>, x: tilc_vm::Value, axis: usize, span: Span) -> R<Tile> {
    let src = lx.tile(x, span)?;
    let len = src.shape[axis];
    // Warp bits need a slot bit to trade with.
    let plan = Plan::new(&src.map, axis, len).filter(|p| p.bits.contains(&Bit::Local) || !(0..p.bits.len()).any(|b| p.is_warp(b)));
    let Some(plan) = plan else {
        return Ok(fallback(lx, &src, axis));
    };
    let mut vals: Vec<simt::Value> = src
        .regs
        .iter()
        .map(|&r| if lx.b.kernel().ty(r) == ST::F64 { r } else { lx.b.cast(CastOp::FConvert, r, ST::F64) })
        .collect();
    let n = plan.bits.len();
    // sigma[p]: the logical axis bit that physical bit p of each (thread, slot) holds now.
    let mut sigma: Vec<usize> = (0..n).collect();
    for k in 0..n {
        let mut p = sigma.iter().position(|&l| l == k).expect("sigma is a permutation");
        if plan.is_warp(p) {
            let next = swap_for(&plan, &sigma, k).expect("a local axis bit exists (checked above)");
            vals = exchange(lx, &plan, &vals, &sigma, &next);
            sigma = next;
            p = sigma.iter().position(|&l| l == k).expect("sigma is a permutation");
        }
        match plan.bits[p] {
            Bit::Local => {
                for j in 0..plan.map.slots {
                    if plan.local_bit(j, p) == 0 {
                        let j2 = plan.partner(j, p).expect("checked in Plan::new");
                        let (a, b) = (vals[j], vals[j2]);
                        vals[j] = lx.b.binary(SB::FAdd, a, b);
                        vals[j2] = lx.b.binary(SB::FSub, a, b);
                    }
                }
            }
            Bit::Thread(mask) => {
                let tid = lx.tid();
                let m = lx.i32c(i64::from(mask));
                let bit = lx.b.and(tid, m);
                let z = lx.i32c(0);
                let is_hi = lx.b.cmp(CmpOp::Ne, bit, z);
                for v in vals.iter_mut() {
                    let other = shfl_f64(&mut lx.b, *v, mask);
                    // The lower element of the pair is the left operand, as in the VM.
                    let lo = lx.b.select(is_hi, other, *v);
                    let hi = lx.b.select(is_hi, *v, other);
                    let s = lx.b.binary(SB::FAdd, lo, hi);
                    let d = lx.b.binary(SB::FSub, lo, hi);
                    *v = lx.b.select(is_hi, d, s);
                }
            }
        }
    }
    let identity: Vec<usize> = (0..n).collect();
    if sigma != identity {
        vals = exchange(lx, &plan, &vals, &sigma, &identity);
    }
    let d = src.dtype;
    let regs = vals.into_iter().map(|v| codec::round_value(&mut lx.b, d, v)).collect();
    Ok(Tile { regs, uniform: false, ..src })
}

/// `shfl.bfly` of an f64 as its two 32-bit halves.
fn shfl_f64(b: &mut Builder, v: simt::Value, mask: u32) -> simt::Value {
    let pair = ST::Vector(simt::Scalar::I32, 2);
    let w = b.cast(CastOp::Bitcast, v, pair);
    let lane = b.i32(mask as i32);
    let lo = b.extract(w, 0);
    let hi = b.extract(w, 1);
    let lo = b.shfl(simt::ShflMode::Bfly, lo, lane);
    let hi = b.shfl(simt::ShflMode::Bfly, hi, lane);
    let w = b.build(&[lo, hi]);
    b.cast(CastOp::Bitcast, w, ST::F64)
}

/// The placement after trading the warp bits that logical stage `k` and later stages need for
/// local bits: first local bits whose stages are done; when there is none, the local bit of the
/// latest stage (it comes back to a local bit by a later exchange).
fn swap_for(plan: &Plan, sigma: &[usize], k: usize) -> Option<Vec<usize>> {
    let n = sigma.len();
    let mut warp: Vec<usize> = (0..n).filter(|&p| plan.is_warp(p) && sigma[p] >= k).collect();
    warp.sort_by_key(|&p| sigma[p]);
    let mut local: Vec<usize> = (0..n).filter(|&p| plan.bits[p] == Bit::Local && sigma[p] < k).collect();
    if local.is_empty() {
        local = (0..n).filter(|&p| plan.bits[p] == Bit::Local).max_by_key(|&p| sigma[p]).into_iter().collect();
    }
    if local.is_empty() || warp.is_empty() {
        return None;
    }
    let mut next = sigma.to_vec();
    for (&p, &q) in warp.iter().zip(&local) {
        next.swap(p, q);
    }
    Some(next)
}

/// Re-lays `vals` from placement `from` to placement `to` (each: physical axis bit → logical
/// axis bit) through the scratch area, in rounds.
///
/// A slot is written by its thread at `((chunk · 2^g + member) · T + tid) · 8` of its round's
/// area, where the *member* is the slot's value on the g old local bits whose new home is a
/// thread bit, and the *chunk* is the slot without those bits. The new holder of an element
/// computes its old thread (old thread bits from its own slot or thread bits) and member (from
/// its thread bits) at run time; chunks are compile-time, so the rounds split by chunk.
fn exchange(lx: &mut Lx<'_>, plan: &Plan, vals: &[simt::Value], from: &[usize], to: &[usize]) -> Vec<simt::Value> {
    let n = from.len();
    let axis = plan.axis;
    let slots = plan.map.slots;
    let threads = lx.threads as u32;
    // pi[r]: the new physical bit of the logical bit at old physical bit r.
    let pi: Vec<usize> = (0..n).map(|r| to.iter().position(|&l| l == from[r]).expect("a permutation")).collect();
    let local = |p: usize| plan.bits[p] == Bit::Local;
    let mask = |p: usize| match plan.bits[p] {
        Bit::Thread(m) => m,
        Bit::Local => unreachable!("a thread bit"),
    };
    // Old local bits that a thread bit of the new holder decides.
    let moving: Vec<usize> = (0..n).filter(|&r| local(r) && !local(pi[r])).collect();
    let g = moving.len();
    let chunk_key = |lc: &[usize]| -> Vec<usize> {
        let mut c = lc.to_vec();
        for &r in &moving {
            c[axis] &= !(1 << r);
        }
        c
    };
    let mut chunk_of_key: HashMap<Vec<usize>, usize> = HashMap::new();
    let mut writer: Vec<(usize, usize)> = Vec::with_capacity(slots); // (chunk, member) per old slot
    for j in 0..slots {
        let lc = &plan.map.local_coords[j];
        let next = chunk_of_key.len();
        let c = *chunk_of_key.entry(chunk_key(lc)).or_insert(next);
        let u = moving.iter().enumerate().map(|(i, &r)| plan.local_bit(j, r) << i).sum::<usize>();
        writer.push((c, u));
    }
    let chunks = chunk_of_key.len();
    // The reader's side: the chunk and the compile-time part of the old thread, per new slot.
    let mut reader: Vec<(usize, u32)> = Vec::with_capacity(slots);
    for j in 0..slots {
        let lc = &plan.map.local_coords[j];
        let mut key = lc.clone();
        let mut axis_local = 0usize;
        let mut thread_const = 0u32;
        for (r, &to) in pi.iter().enumerate() {
            if local(to) {
                let bit = plan.local_bit(j, to);
                if local(r) {
                    axis_local |= bit << r;
                } else {
                    thread_const |= bit as u32 * mask(r);
                }
            }
        }
        key[axis] = axis_local;
        let c = chunk_of_key[&key];
        reader.push((c, thread_const));
    }
    let tid = lx.tid();
    // The run-time parts: the old thread's bits that come from this thread's bits, and the
    // member from this thread's bits.
    let mut keep = u32::MAX;
    for (r, &to) in pi.iter().enumerate() {
        if !local(r) && to != r {
            keep &= !mask(r);
        }
    }
    let keep_v = lx.i32c(i64::from(keep as i32));
    let mut t_old = lx.b.and(tid, keep_v);
    let bit_of = |lx: &mut Lx<'_>, m: u32, to_pos: u32| -> simt::Value {
        let mv = lx.i32c(i64::from(m));
        let bit = lx.b.and(tid, mv);
        let from_pos = m.trailing_zeros();
        if from_pos == to_pos {
            bit
        } else if from_pos > to_pos {
            let s = lx.i32c(i64::from(from_pos - to_pos));
            lx.b.shr_u(bit, s)
        } else {
            let s = lx.i32c(i64::from(to_pos - from_pos));
            lx.b.shl(bit, s)
        }
    };
    for (r, &to) in pi.iter().enumerate() {
        if !local(r) && to != r && !local(to) {
            let b = bit_of(lx, mask(to), mask(r).trailing_zeros());
            t_old = lx.b.or(t_old, b);
        }
    }
    let mut member = lx.i32c(0);
    for (i, &r) in moving.iter().enumerate() {
        let b = bit_of(lx, mask(pi[r]), i as u32);
        member = lx.b.or(member, b);
    }
    // Reader offset (in elements) from the round's base, without the compile-time parts.
    let tv = lx.i32c(i64::from(threads));
    let mt = lx.b.mul(member, tv);
    let read_run = lx.b.add(mt, t_old);
    let eight = lx.i32c(8);
    let read_off = lx.b.mul(read_run, eight);
    let write_off = lx.b.mul(tid, eight);
    let chunk_elems = (1usize << g) * threads as usize;
    let chunk_bytes = 8 * chunk_elems as u32;
    let per_round = (EXCHANGE_BYTES / chunk_bytes).max(1) as usize;
    let area = chunk_bytes * per_round.min(chunks) as u32;
    let base = lx.need_scratch(area);
    let mut out = vec![None; slots];
    for round in 0..chunks.div_ceil(per_round) {
        let first = round * per_round;
        let in_round = |c: usize| c >= first && c < first + per_round;
        for j in 0..slots {
            let (c, u) = writer[j];
            if in_round(c) {
                let at = base + 8 * (((c - first) << g) + u) as u32 * threads;
                let p = lx.shared_ptr(at, write_off);
                lx.b.store(Space::Shared, p, vals[j], None);
            }
        }
        lx.b.barrier();
        for j in 0..slots {
            let (c, tc) = reader[j];
            if in_round(c) {
                let at = base + 8 * (((c - first) << g) as u32 * threads + tc);
                let p = lx.shared_ptr(at, read_off);
                out[j] = Some(lx.b.load(Space::Shared, ST::F64, p, None));
            }
        }
        lx.b.barrier();
    }
    out.into_iter().map(|v| v.expect("every slot is read in some round")).collect()
}

/// Every stage over shared memory: the tile (as f64) goes to the scratch area, each stage is a
/// loop of butterflies spread over the threads followed by a barrier, and every thread reads
/// its elements back.
fn fallback(lx: &mut Lx<'_>, src: &Tile, axis: usize) -> Tile {
    let d = src.dtype;
    let numel: usize = src.shape.iter().product();
    let len = src.shape[axis];
    let inner: usize = src.shape[axis + 1..].iter().product();
    let base = lx.need_scratch(8 * numel as u32);
    lx.store_tile_to_scratch(src, base, 8);
    lx.b.barrier();
    // Butterflies with stride h = 1, 2, 4, … in f64, one pair per thread per iteration.
    let pairs = numel / 2;
    let half = len / 2;
    let mut h = 1;
    while h < len {
        let tid = lx.tid();
        let n = lx.i32c(pairs as i64);
        let step = lx.i32c(lx.threads as i64);
        let mut outer = std::mem::replace(&mut lx.b, Builder::new("", [1, 1, 1]));
        outer.for_loop(tid, n, step, &[], Unroll::None, |b, q, _| {
            // q → (o, pr, i): pair pr of line (o, i).
            let hi_n = b.i32((half * inner) as i32);
            let o = b.binary(SB::DivU, q, hi_n);
            let rem = b.binary(SB::RemU, q, hi_n);
            let inner_v = b.i32(inner as i32);
            let i = b.binary(SB::RemU, rem, inner_v);
            let pr = b.binary(SB::DivU, rem, inner_v);
            let hv = b.i32(h as i32);
            let blk = b.binary(SB::DivU, pr, hv);
            let within = b.binary(SB::RemU, pr, hv);
            let two_h = b.i32(2 * h as i32);
            let j0 = b.mul(blk, two_h);
            let j = b.add(j0, within);
            let jh = b.add(j, hv);
            let lenv = b.i32(len as i32);
            let line = b.mul(o, lenv);
            let e0 = b.add(line, j);
            let e0 = b.mul(e0, inner_v);
            let e0 = b.add(e0, i);
            let e1 = b.add(line, jh);
            let e1 = b.mul(e1, inner_v);
            let e1 = b.add(e1, i);
            let eight = b.i32(8);
            let bv = b.i32(base as i32);
            let o0 = b.mul(e0, eight);
            let o1 = b.mul(e1, eight);
            let a0 = b.add(bv, o0);
            let a1 = b.add(bv, o1);
            let p0 = b.shared_addr(a0);
            let p1 = b.shared_addr(a1);
            let u = b.load(Space::Shared, ST::F64, p0, None);
            let v = b.load(Space::Shared, ST::F64, p1, None);
            let s = b.binary(SB::FAdd, u, v);
            let t = b.binary(SB::FSub, u, v);
            b.store(Space::Shared, p0, s, None);
            b.store(Space::Shared, p1, t, None);
            vec![]
        });
        lx.b = outer;
        lx.b.barrier();
        h *= 2;
    }
    let map = src.map.clone();
    let tc = lx.thread_coords(&map);
    let mut regs = Vec::with_capacity(map.slots);
    for j in 0..map.slots {
        let c = lx.slot_coords(&map, &tc, j);
        let lin = lx.linear_i32(&c, &src.shape);
        let eight = lx.i32c(8);
        let off = lx.b.mul(lin, eight);
        let p = lx.shared_ptr(base, off);
        let v = lx.b.load(Space::Shared, ST::F64, p, None);
        regs.push(codec::round_value(&mut lx.b, d, v));
    }
    lx.b.barrier();
    Tile { regs, uniform: false, ..src.clone() }
}
