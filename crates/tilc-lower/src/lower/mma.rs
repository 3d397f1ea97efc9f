//! `dot` on tensor cores: picks an `mma.sync` atom for the operand types, lays the operands out
//! in its fragment layouts, and emits one `mma` per atom tile and k-step.
//!
//! The block's warps form a `wm × wn` grid over the accumulator; each warp repeats the atom
//! `rm × rn` times. In the layout algebra (tilc-layout):
//!
//! ```text
//! C = spatial(wm, wn) * local(rm, rn) * atom.c
//! A = spatial(wm, 1) * replica(wn) * local(rm, kk) * atom.a      (each warp row shares A)
//! B = replica(wm) * spatial(1, wn) * local(kk, rn) * atom.b      (each warp column shares B)
//! ```
//!
//! and the e-graph confirms `C = outer * atom.c` ([`tilc_layout::egraph::factor_layout`]), the
//! question instruction selection asks. The grid minimises the fragment registers of A and B.
//! Integer atoms (s8 × s8 + s32, wrapping) give the interpreter's bits exactly; float atoms sum
//! in the tensor core's order, within the VM's documented bound.

use super::{Lx, R, Remap, Tile};
use tilc_base::Span;
use tilc_dtype::{DType, FloatFormat};
use tilc_layout::RegisterLayout;
use tilc_layout::fragments::{self, MmaKind as FragKind};
use tilc_layout::register::{compose, local, spatial};
use tilc_simt::codec;
use tilc_simt::{Fp8Format, MmaKind, Scalar, Type as ST};

fn fits_s8(d: DType) -> bool {
    match d {
        DType::Int(b) => b <= 8,
        DType::UInt(b) => b <= 7,
        DType::Float(_) => false,
    }
}

/// The atom for these operand and accumulator types.
fn select(a: DType, b: DType, c: DType) -> Option<(MmaKind, FragKind)> {
    let f32t = DType::Float(FloatFormat::F32);
    let named = |d: DType| d.to_string();
    if c == DType::Int(32) && fits_s8(a) && fits_s8(b) {
        return Some((MmaKind::S8S32, FragKind::M16N8K32I8));
    }
    if c != f32t || a != b {
        return None;
    }
    match named(a).as_str() {
        "f16" => Some((MmaKind::F16F32, FragKind::M16N8K16F16)),
        "bf16" => Some((MmaKind::Bf16F32, FragKind::M16N8K16F16)),
        "f8e4m3" => Some((MmaKind::Fp8F32(Fp8Format::E4M3), FragKind::M16N8K32F8)),
        "f8e5m2" => Some((MmaKind::Fp8F32(Fp8Format::E5M2), FragKind::M16N8K32F8)),
        _ => None,
    }
}

/// The tensor-core lowering of `a · b + c`, or `None` when no atom applies.
pub(super) fn try_lower(lx: &mut Lx<'_>, a: &Tile, b: &Tile, c: &Tile, _span: Span) -> R<Option<Tile>> {
    let Some((kind, frag_kind)) = select(a.dtype, b.dtype, c.dtype) else { return Ok(None) };
    let frags = fragments::mma(frag_kind);
    let (am, an, ak) = frags.mnk;
    let (m, k, n) = (a.shape[0], a.shape[1], b.shape[1]);
    if m % am != 0 || n % an != 0 || k % ak != 0 {
        return Ok(None);
    }
    let warps = lx.threads / 32;
    let (tm, tn, kk) = (m / am, n / an, k / ak);
    let per_word = (32 / a.dtype.bits()) as usize;
    let (atom_a, atom_b, atom_c) = (frags.a.eval(), frags.b.eval(), frags.c.eval());
    let (sa, sb, sc) = (atom_a.local_size(), atom_b.local_size(), atom_c.local_size());
    // The warp grid with the fewest A and B fragment registers per thread.
    let mut best: Option<(usize, usize, usize)> = None;
    for wm in 1..=warps {
        if warps % wm != 0 || tm % wm != 0 || tn % (warps / wm) != 0 {
            continue;
        }
        let wn = warps / wm;
        let cost = (tm / wm) * kk * sa / per_word + kk * (tn / wn) * sb / per_word;
        if best.is_none_or(|(_, _, c)| cost < c) {
            best = Some((wm, wn, cost));
        }
    }
    let Some((wm, wn, _)) = best else { return Ok(None) };
    let (rm, rn) = (tm / wm, tn / wn);
    let c_layout = compose(&compose(&spatial(&[wm, wn]), &local(&[rm, rn])), &atom_c);
    let a_outer = compose(&compose(&spatial(&[wm, 1]), &RegisterLayout::replica(wn)), &local(&[rm, kk]));
    let a_layout = compose(&a_outer, &atom_a);
    let b_outer = compose(&compose(&RegisterLayout::replica(wm), &spatial(&[1, wn])), &local(&[kk, rn]));
    let b_layout = compose(&b_outer, &atom_b);
    if [&a_layout, &b_layout, &c_layout].iter().any(|l| l.num_threads() != lx.threads) {
        return Ok(None);
    }
    let factor = tilc_layout::egraph::factor_layout(&c_layout, &frags.c).map(|e| e.to_string()).unwrap_or_else(|| "(no factorisation found)".into());
    lx.info.dots.push(format!(
        "dot {}[{m}, {k}] x {}[{k}, {n}] -> {}: mma {kind:?} (m{am}n{an}k{ak}), warps {wm} x {wn}, {rm} x {rn} atoms per warp, {kk} k-steps; C = ({factor}) * mma.c",
        a.dtype, b.dtype, c.dtype
    ));
    let ar = lx.convert(a, &a_layout, &a.shape, &Remap::Broadcast)?;
    let br = lx.convert(b, &b_layout, &b.shape, &Remap::Broadcast)?;
    let cr = lx.convert(c, &c_layout, &c.shape, &Remap::Broadcast)?;
    let bits = a.dtype.bits();
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
    let mut out = cr.clone();
    for im in 0..rm {
        for jn in 0..rn {
            let base = (im * rn + jn) * sc;
            let mut acc = lx.b.build(&cr[base..base + sc]);
            for p in 0..kk {
                let a_at = (im * kk + p) * sa;
                let b_at = (p * rn + jn) * sb;
                let av = pack(lx, a.dtype, &ar[a_at..a_at + sa]);
                let bv = pack(lx, b.dtype, &br[b_at..b_at + sb]);
                acc = lx.b.mma(kind, av, bv, acc);
            }
            for e in 0..sc {
                out[base + e] = lx.b.extract(acc, e as u8);
            }
        }
    }
    let _ = (ST::I32, Scalar::I32);
    Ok(Some(lx.make_tile(c.dtype, c.shape.clone(), c_layout, out)))
}
