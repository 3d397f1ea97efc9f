//! `dot` on tensor cores: emits the [`MmaPlan`] that layout inference chose — operands
//! converted into the atom's fragment layouts, one `mma.sync` per atom tile and k-step.
//!
//! The e-graph confirms the accumulator layout is `outer * atom.c`
//! ([`tilc_layout::egraph::factor_layout`], instruction selection's question) and the factor is
//! recorded in [`crate::LoweringInfo::dots`]. Integer atoms (s8 × s8 + s32, wrapping) give the
//! interpreter's bits exactly; float atoms sum in the tensor core's order, within the VM's
//! documented bound.

use super::{Lx, R, Remap, Tile};
use crate::infer::MmaPlan;
use tilc_dtype::DType;
use tilc_simt::codec;

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
    let bits = a.dtype.bits();
    let per_word = (32 / bits) as usize;
    let pack = |lx: &mut Lx<'_>, d: DType, vals: &[tilc_simt::Value]| -> tilc_simt::Value {
        let words: Vec<tilc_simt::Value> = vals
            .chunks(per_word)
            .map(|chunk| {
                let mut w = lx.b.i32(0);
                for (e, &v) in chunk.iter().enumerate() {
                    let code = codec::encode(&mut lx.b, d, v);
                    let sh = lx.b.i32((e as u32 * bits) as i32);
                    let part = lx.b.shl(code, sh);
                    w = lx.b.or(w, part);
                }
                w
            })
            .collect();
        if words.len() == 1 { words[0] } else { lx.b.build(&words) }
    };
    // Operands are packed into their fragment registers right after each conversion, so only
    // the packed words stay alive through the atom loop.
    let ar = lx.convert(a, &plan.a, &a.shape, &Remap::Broadcast)?;
    let sa = ar.len() / (rm * kk);
    let a_frags: Vec<tilc_simt::Value> = ar.chunks(sa).map(|f| pack(lx, a.dtype, f)).collect();
    let br = lx.convert(b, &plan.b, &b.shape, &Remap::Broadcast)?;
    let sb = br.len() / (kk * rn);
    let b_frags: Vec<tilc_simt::Value> = br.chunks(sb).map(|f| pack(lx, b.dtype, f)).collect();
    let cr = lx.convert(c, &plan.c, &c.shape, &Remap::Broadcast)?;
    let sc = cr.len() / (rm * rn);
    let mut out = cr.clone();
    for im in 0..rm {
        for jn in 0..rn {
            let base = (im * rn + jn) * sc;
            let mut acc = lx.b.build(&cr[base..base + sc]);
            for p in 0..kk {
                let av = a_frags[im * kk + p];
                let bv = b_frags[p * rn + jn];
                acc = lx.b.mma(plan.kind, av, bv, acc);
            }
            for e in 0..sc {
                out[base + e] = lx.b.extract(acc, e as u8);
            }
        }
    }
    Ok(lx.make_tile(c.dtype, c.shape.clone(), plan.c.clone(), out))
}
