//! The register fragments of the tensor-core and matrix-move instructions the backends emit,
//! each written in the algebra (one line per fragment), so that instruction selection can ask
//! "is this tile `outer * fragment`?" ([`crate::egraph::factor`], [`crate::divide`]).
//!
//! Every layout here is tested against the element maps of the PTX ISA (tabulated from the
//! ISA's formulas in `tests/fragments.rs`). Threads are lanes of a warp (`wgmma`: of a warpgroup
//! of 4 warps); slots are the instruction's register elements in ISA order (`a0, a1, ...`).
//!
//! This module knows no instruction encoding; it only says where the elements are.

use crate::expr::{LayoutExpr, parse_layout_expr};
use crate::register::RegisterLayout;

/// Element type family of an `mma.sync` atom (they differ in fragment layout).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MmaKind {
    /// `mma.sync.m16n8k16` with `.f16`/`.bf16` inputs (f16 or f32 accumulators).
    M16N8K16F16,
    /// `mma.sync.m16n8k16` with `.s8`/`.u8` inputs (s32 accumulators).
    M16N8K16I8,
    /// `mma.sync.m16n8k32` with `.s8`/`.u8` inputs (s32 accumulators).
    M16N8K32I8,
    /// `mma.sync.m16n8k32` with `.e4m3`/`.e5m2` inputs (f32 or f16 accumulators, sm_89+).
    M16N8K32F8,
}

/// The three fragments of one `mma.sync` atom, as expressions (shapes A: m×k, B: k×n, C: m×n).
#[derive(Clone, Debug)]
pub struct MmaFragments {
    /// `m, n, k` of the atom.
    pub mnk: (usize, usize, usize),
    /// Operand A.
    pub a: LayoutExpr,
    /// Operand B.
    pub b: LayoutExpr,
    /// Accumulator C (and D).
    pub c: LayoutExpr,
}

fn e(text: &str) -> LayoutExpr {
    parse_layout_expr(text).expect("fragment layouts in this module are well-formed")
}

/// The fragments of an `mma.sync` atom (Tilus `mma_dot.py`, checked against the PTX ISA).
pub fn mma(kind: MmaKind) -> MmaFragments {
    let c = e("local(2, 1).spatial(8, 4).local(1, 2)");
    match kind {
        MmaKind::M16N8K16F16 => MmaFragments {
            mnk: (16, 8, 16),
            a: e("column_local(2, 2).spatial(8, 4).local(1, 2)"),
            b: e("local(2, 1).column_spatial(4, 8).local(2, 1)"),
            c,
        },
        MmaKind::M16N8K16I8 => MmaFragments {
            mnk: (16, 8, 16),
            a: e("local(2, 1).spatial(8, 4).local(1, 4)"),
            b: e("column_spatial(4, 8).local(4, 1)"),
            c,
        },
        MmaKind::M16N8K32I8 | MmaKind::M16N8K32F8 => MmaFragments {
            mnk: (16, 8, 32),
            a: e("column_local(2, 2).spatial(8, 4).local(1, 4)"),
            b: e("local(2, 1).column_spatial(4, 8).local(4, 1)"),
            c,
        },
    }
}

/// How many 8×8 matrices one `ldmatrix` / `stmatrix` moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatrixCount {
    /// `.x1`
    X1 = 1,
    /// `.x2`
    X2 = 2,
    /// `.x4`
    X4 = 4,
}

/// The register layout of `ldmatrix.sync.aligned.m8n8.{x1,x2,x4}[.trans].b16` (and of
/// `stmatrix`, which moves the same fragment the other way). Matrix `j` is register `j`; the
/// matrices are stacked along the rows (`x2`: 16×8, `x4`: 32×8), since each lane supplies the
/// address of one row and any other arrangement is a different outer `local` factor. With
/// `.trans`, lane `l` holds column `l / 4`, rows `2·(l mod 4)` and `+1` of each matrix.
pub fn ldmatrix(count: MatrixCount, trans: bool) -> LayoutExpr {
    let atom = if trans { "column_spatial(4, 8).local(2, 1)" } else { "spatial(8, 4).local(1, 2)" };
    let n = count as usize;
    if n == 1 { e(atom) } else { e(&format!("local({n}, 1).{atom}")) }
}

/// `stmatrix` moves the same fragments as [`ldmatrix`].
pub fn stmatrix(count: MatrixCount, trans: bool) -> LayoutExpr {
    ldmatrix(count, trans)
}

/// The warp-level `ldmatrix` layout for elements of `elem_bytes` bytes (Tilus
/// `ldmatrix.py`): an 8×16-byte matrix seen as 8 rows of `16 / elem_bytes` elements.
pub fn ldmatrix_for_bytes(elem_bytes: usize) -> Option<LayoutExpr> {
    match elem_bytes {
        1 => Some(e("spatial(8, 4).local(1, 4)")),
        2 => Some(e("spatial(8, 4).local(1, 2)")),
        4 => Some(e("spatial(8, 4)")),
        _ => None,
    }
}

/// The `wgmma.mma_async.m64nNk16` accumulator fragment (f32 or f16 D) over the 128 threads of
/// a warpgroup: warp `w` holds rows `16w..16w+16`; within a warp the `mma.sync` C fragment
/// repeats over the `N / 8` column blocks (`d[4j + r]` lies in block `j`). `n` must be a
/// multiple of 8 in `8..=256`.
pub fn wgmma_accumulator(n: usize) -> Option<LayoutExpr> {
    (n % 8 == 0 && (8..=256).contains(&n))
        .then(|| e(&format!("column_spatial(4, 1).column_local(2, {}).spatial(8, 4).local(1, 2)", n / 8)))
}

/// The `wgmma` register-A fragment (A from registers, 64×k) for 16-bit inputs (`k = 16`,
/// `elem_bytes = 2`) or 8-bit inputs (`k = 32`, `elem_bytes = 1`): warp `w` holds rows
/// `16w..16w+16` as the `mma.sync` A fragment.
pub fn wgmma_a(elem_bytes: usize) -> Option<LayoutExpr> {
    match elem_bytes {
        2 => Some(e("spatial(4, 1).column_local(2, 2).spatial(8, 4).local(1, 2)")),
        1 => Some(e("spatial(4, 1).column_local(2, 2).spatial(8, 4).local(1, 4)")),
        _ => None,
    }
}

/// The Blackwell `tcgen05.ld.sync.aligned.32x32b.x{num}` register layout of one warp: lane `l`
/// reads TMEM lane `l` (of the warp's 32-lane quarter), `num` consecutive 32-bit columns.
pub fn tcgen05_ld_32x32b(num: usize) -> Option<LayoutExpr> {
    (num.is_power_of_two() && num <= 128).then(|| e(&format!("spatial(32, 1).local(1, {num})")))
}

/// Every fragment of this module with a name, for drawings, the essay and the e-graph tests.
pub fn all() -> Vec<(String, LayoutExpr)> {
    let mut v = Vec::new();
    for (name, kind) in [
        ("mma.m16n8k16.f16", MmaKind::M16N8K16F16),
        ("mma.m16n8k16.s8", MmaKind::M16N8K16I8),
        ("mma.m16n8k32.s8", MmaKind::M16N8K32I8),
        ("mma.m16n8k32.e4m3", MmaKind::M16N8K32F8),
    ] {
        let f = mma(kind);
        v.push((format!("{name}.A"), f.a));
        v.push((format!("{name}.B"), f.b));
        v.push((format!("{name}.C"), f.c));
    }
    for (count, x) in [(MatrixCount::X1, 1), (MatrixCount::X2, 2), (MatrixCount::X4, 4)] {
        v.push((format!("ldmatrix.x{x}.b16"), ldmatrix(count, false)));
        v.push((format!("ldmatrix.x{x}.trans.b16"), ldmatrix(count, true)));
    }
    for bytes in [1, 4] {
        v.push((format!("ldmatrix.b{}", bytes * 8), ldmatrix_for_bytes(bytes).expect("listed sizes exist")));
    }
    for n in [8, 16, 64] {
        v.push((format!("wgmma.m64n{n}k16.D"), wgmma_accumulator(n).expect("listed sizes exist")));
    }
    v.push(("wgmma.m64nNk16.A.f16".into(), wgmma_a(2).expect("exists")));
    v.push(("wgmma.m64nNk32.A.s8".into(), wgmma_a(1).expect("exists")));
    for num in [1, 4] {
        v.push((format!("tcgen05.ld.32x32b.x{num}"), tcgen05_ld_32x32b(num).expect("exists")));
    }
    v
}

/// [`all`] evaluated.
pub fn all_layouts() -> Vec<(String, RegisterLayout)> {
    all().into_iter().map(|(n, e)| (n, e.eval())).collect()
}
