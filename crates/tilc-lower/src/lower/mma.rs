//! `dot` on tensor cores: emits the [`MmaPlan`] that layout inference chose — operands
//! brought into the atom's fragment layouts, one `mma.sync` per atom tile and k-step.
//!
//! An operand already held in its fragment layout (or a permutation of each thread's own
//! registers) is packed in registers. Any other operand is *staged*: its elements are stored to
//! the scratch area in their mma element width (one byte for s8/fp8, two for f16/bf16),
//! k-contiguous — A row-major `[m, k]`, B column-major (`[n, k]`) — so that each 32-bit
//! fragment register is one aligned 32-bit shared load, read right before its `mma` (the
//! sinking pass moves it there). Both operands are staged side by side between one pair of
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
use crate::infer::MmaPlan;
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
    let (elem_a, elem_b) = (operand_type(plan.kind, a.dtype), operand_type(plan.kind, b.dtype));
    let bytes = elem_a.bits() / 8;
    // A is k-contiguous row-major, B k-contiguous column-major.
    let a_coef = [k as i64, 1];
    let b_coef = [1, k as i64];
    let a_regs = lx.convert_in_registers(a, &plan.a, &a.shape, &Remap::Broadcast);
    let b_regs = lx.convert_in_registers(b, &plan.b, &b.shape, &Remap::Broadcast);
    let a_bytes = if a_regs.is_none() { (m * k) as u32 * bytes } else { 0 };
    let b_bytes = if b_regs.is_none() { (k * n) as u32 * bytes } else { 0 };
    let b_off = a_bytes.next_multiple_of(16);
    let staged = a_bytes + b_bytes > 0;
    let base = if staged { lx.need_scratch(b_off + b_bytes) } else { 0 };
    if a_regs.is_none() {
        stage(lx, a, elem_a, base, &a_coef);
    }
    if b_regs.is_none() {
        stage(lx, b, elem_b, base + b_off, &b_coef);
    }
    if staged {
        lx.b.barrier();
    }
    let a_frags = match a_regs {
        Some(regs) => pack_registers(lx, elem_a, &regs),
        None => read_fragments(lx, &plan.a, elem_a, base, &a_coef),
    };
    let b_frags = match b_regs {
        Some(regs) => pack_registers(lx, elem_b, &regs),
        None => read_fragments(lx, &plan.b, elem_b, base + b_off, &b_coef),
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
                let code = codec::encode(&mut lx.b, elem, v);
                let mask = lx.b.i32(((1u64 << bits) - 1) as i32);
                let code = lx.b.and(code, mask);
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

/// Scratch element index of slot `j` of thread `t`: `Σ coord · coef`.
fn index(map: &ThreadMap, t: usize, j: usize, coef: &[i64]) -> i64 {
    map.coords(t, j).iter().zip(coef).map(|(&c, &k)| c as i64 * k).sum()
}

/// Whether slots `j .. j + len` of every thread hold consecutive scratch elements starting at
/// a multiple of `len` (so one aligned access of `len` elements covers them).
fn contiguous(map: &ThreadMap, threads: usize, j: usize, len: usize, coef: &[i64]) -> bool {
    j + len <= map.slots
        && (0..threads).all(|t| {
            let first = index(map, t, j, coef);
            first % len as i64 == 0 && (1..len).all(|e| index(map, t, j + e, coef) == first + e as i64)
        })
}

/// Stores every element of `t` (primary holders only) as its `elem` code at scratch byte
/// `base + index · width`, in the widest aligned accesses the layout allows.
fn stage(lx: &mut Lx<'_>, t: &Tile, elem: DType, base: u32, coef: &[i64]) {
    let bits = elem.bits();
    let bytes = bits / 8;
    let map = t.map.clone();
    let tc = lx.thread_coords(&map);
    let tl = lx.thread_linear(&tc, coef);
    let tp = lx.shared_thread_ptr(tl, bytes);
    let primary = lx.primary_pred(&map);
    let per_word = (32 / bits) as usize;
    let mut j = 0;
    while j < map.slots {
        let konst = Lx::slot_linear(&map, j, coef);
        let p = lx.shared_slot(tp, base, konst, bytes);
        // Widest first: 4, 2 or 1 words, else one element.
        let words = [4usize, 2, 1].into_iter().find(|&w| contiguous(&map, lx.threads, j, w * per_word, coef));
        match words {
            Some(w) => {
                let packed = pack_registers(lx, elem, &t.regs[j..j + w * per_word]);
                let v = if w == 1 { packed[0] } else { lx.b.build(&packed) };
                lx.b.store(Space::Shared, p, v, primary);
                j += w * per_word;
            }
            None => {
                let code = codec::encode(&mut lx.b, elem, t.regs[j]);
                let ty = if bytes == 1 { ST::I8 } else { ST::I16 };
                let v = lx.b.cast(CastOp::Trunc, code, ty);
                lx.b.store(Space::Shared, p, v, primary);
                j += 1;
            }
        }
    }
}

/// The fragment words of layout `frag` read from an operand staged at `base` by [`stage`]: one
/// 32-bit load per word where every thread's elements of it are contiguous and aligned, else
/// one load per element, packed.
fn read_fragments(lx: &mut Lx<'_>, frag: &RegisterLayout, elem: DType, base: u32, coef: &[i64]) -> Vec<simt::Value> {
    let bits = elem.bits();
    let bytes = bits / 8;
    let per_word = (32 / bits) as usize;
    let map = ThreadMap::new(frag);
    let tc = lx.thread_coords(&map);
    let tl = lx.thread_linear(&tc, coef);
    let tp = lx.shared_thread_ptr(tl, bytes);
    let mut words = Vec::with_capacity(map.slots / per_word);
    for j in (0..map.slots).step_by(per_word) {
        if contiguous(&map, lx.threads, j, per_word, coef) {
            let konst = Lx::slot_linear(&map, j, coef);
            let p = lx.shared_slot(tp, base, konst, bytes);
            words.push(lx.b.load(Space::Shared, ST::I32, p, None));
            continue;
        }
        let mut w = lx.b.i32(0);
        for e in 0..per_word {
            let konst = Lx::slot_linear(&map, j + e, coef);
            let p = lx.shared_slot(tp, base, konst, bytes);
            let ty = if bytes == 1 { ST::I8 } else { ST::I16 };
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
