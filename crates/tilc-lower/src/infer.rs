//! Layout inference on a VM kernel: a register layout for every tile value and mutable tile
//! variable, and a tensor-core plan for every `dot` that gets one. The lowering reads these side
//! tables; it never decides a layout itself.
//!
//! Rules (see also [`crate::layout`]'s module doc):
//! - a layout the author pinned (`let x @ layout = …`, [`tilc_vm::PinnedLayout`]) wins over
//!   every rule below;
//! - loads, `iota`, `full`, `broadcast`, `transpose`, and `view`s that change the element
//!   width get the default layout of their shape;
//! - `reduce` whose axis lies within warps (and whose combination is order-free) gets
//!   [`tilc_layout::reduce`] of its operand's layout, so it runs in registers and shuffles;
//!   other reductions get the default layout and go through shared memory;
//! - elementwise operations, casts and `where` take the layout of their first tile operand of
//!   the result's shape that is not a variable (a variable's otherwise; others are converted);
//! - `reshape` and same-width `view`s keep the source's layout reshaped when the algebra allows
//!   it ([`tilc_layout::reshape`]); `hadamard` keeps its operand's;
//! - `dot` takes the accumulator fragment layout of its mma plan ([`MmaPlan`]) when one exists,
//!   else its accumulator operand's layout;
//! - a mutable tile variable has one layout for its whole life: that of the first value
//!   assigned to it that is not a uniform fill (`full`, a scalar broadcast) — a fill costs
//!   nothing to produce in any layout — so an accumulator initialised with `zeros` lives in the
//!   layout its loop computes, usually the mma accumulator's. Since reading a variable gives its
//!   layout to what is computed from it, the rules run to a fixed point (a few rounds).

use crate::layout::{default_layout, default_vector};
use std::collections::HashMap;
use tilc_dtype::{DType, FloatFormat};
use tilc_layout::RegisterLayout;
use tilc_layout::fragments::{self, MmaKind as FragKind};
use tilc_layout::register::{compose, local, spatial};
use tilc_simt::{Fp8Format, MmaKind};
use tilc_vm::{self as vm, InstKind, Type};

/// How a `dot` runs on tensor cores.
#[derive(Clone, Debug)]
pub struct MmaPlan {
    /// The SIMT atom.
    pub kind: MmaKind,
    /// Atom shape (m, n, k).
    pub mnk: (usize, usize, usize),
    /// Warp grid over the accumulator.
    pub warps: (usize, usize),
    /// Atom repeats per warp (rows, columns) and k-steps.
    pub repeats: (usize, usize, usize),
    /// Layouts of A, B and C (= the result).
    pub a: RegisterLayout,
    /// B's layout.
    pub b: RegisterLayout,
    /// C's layout.
    pub c: RegisterLayout,
    /// The accumulator fragment, for the e-graph's factor query.
    pub c_atom: tilc_layout::LayoutExpr,
    /// Which tensor-core instructions run it.
    pub engine: Engine,
}

/// The tensor-core instructions of an [`MmaPlan`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// Warp-level `mma.sync` atoms (every target).
    MmaSync,
    /// `wgmma` k-steps of 64 × `slice` per warpgroup (sm_90a; warpgroups side by side along
    /// n); `warps` is then (4, warpgroups) and `repeats` (1, slice / 8, k-steps).
    Wgmma {
        /// Columns per warpgroup.
        slice: u16,
    },
    /// One `tcgen05.mma` k-step of 128 × n per k-step for the whole block, issued by one thread,
    /// the accumulator in tensor memory (sm_100a); warpgroup `g` reads columns
    /// `g · slice ..` back; `warps` is (4, warpgroups) and `repeats` (1, 1, k-steps).
    Tcgen05 {
        /// Columns each warpgroup reads back.
        slice: u16,
    },
}

/// Which tensor-core instructions layout inference may plan `dot`s for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Engines {
    /// `mma.sync` (else `dot` runs on the generic shared-memory loop).
    pub mma: bool,
    /// `wgmma` where the tile fits, before `mma.sync`.
    pub wgmma: bool,
    /// `tcgen05.mma` where the tile fits, before `mma.sync`.
    pub tcgen05: bool,
}

fn fits_s8(d: DType) -> bool {
    match d {
        DType::Int(b) => b <= 8,
        DType::UInt(b) => b <= 7,
        DType::Float(_) => false,
    }
}

/// The atom for these operand and accumulator types.
fn select(a: DType, b: DType, c: DType) -> Option<(MmaKind, FragKind)> {
    if c == DType::Int(32) && fits_s8(a) && fits_s8(b) {
        return Some((MmaKind::S8S32, FragKind::M16N8K32I8));
    }
    if c != DType::Float(FloatFormat::F32) {
        return None;
    }
    if a != b {
        return (embeds_in_f16(a) && embeds_in_f16(b)).then_some((MmaKind::F16F32, FragKind::M16N8K16F16));
    }
    match a.to_string().as_str() {
        "f16" => return Some((MmaKind::F16F32, FragKind::M16N8K16F16)),
        "bf16" => return Some((MmaKind::Bf16F32, FragKind::M16N8K16F16)),
        "f8e4m3" => return Some((MmaKind::Fp8F32(Fp8Format::E4M3), FragKind::M16N8K32F8)),
        "f8e5m2" => return Some((MmaKind::Fp8F32(Fp8Format::E5M2), FragKind::M16N8K32F8)),
        _ => {}
    }
    // Narrower floats (fp4, fp6, ue4m3 …) hold only values f16 represents exactly: their
    // operands enter f16 atoms unchanged.
    (embeds_in_f16(a) && embeds_in_f16(b)).then_some((MmaKind::F16F32, FragKind::M16N8K16F16))
}

/// Whether every value of `d` is an f16 value (so converting an operand to f16 is exact).
pub(crate) fn embeds_in_f16(d: DType) -> bool {
    let DType::Float(f) = d else { return false };
    let smallest = f.min_subnormal().unwrap_or_else(|| f.min_normal());
    f.man_bits() <= 10 && f.max_finite() <= 65504.0 && smallest >= 2f64.powi(-24) && (smallest / 2f64.powi(-24)).fract() == 0.0
}

/// The tensor-core plan for `a[m, k] · b[k, n] + c` on a block of `threads`, or `None`.
///
/// The block's warps form a `wm × wn` grid over the accumulator; each warp repeats the atom
/// `rm × rn` times:
///
/// ```text
/// C = spatial(wm, wn) * local(rm, rn) * atom.c
/// A = spatial(wm, 1) * replica(wn) * local(rm, kk) * atom.a      (each warp row shares A)
/// B = replica(wm) * spatial(1, wn) * local(kk, rn) * atom.b      (each warp column shares B)
/// ```
///
/// The grid minimises the fragment registers of A and B per thread.
pub fn mma_plan(a: DType, b: DType, c: DType, (m, k, n): (usize, usize, usize), threads: usize) -> Option<MmaPlan> {
    let (kind, frag_kind) = select(a, b, c)?;
    let frags = fragments::mma(frag_kind);
    let (am, an, ak) = frags.mnk;
    if m % am != 0 || n % an != 0 || k % ak != 0 || threads % 32 != 0 {
        return None;
    }
    let warps = threads / 32;
    let (tm, tn, kk) = (m / am, n / an, k / ak);
    let (atom_a, atom_b, atom_c) = (frags.a.eval(), frags.b.eval(), frags.c.eval());
    let (sa, sb) = (atom_a.local_size(), atom_b.local_size());
    let mut best: Option<(usize, usize, usize)> = None;
    for wm in 1..=warps {
        if warps % wm != 0 || tm % wm != 0 || tn % (warps / wm) != 0 {
            continue;
        }
        let wn = warps / wm;
        let cost = (tm / wm) * kk * sa + kk * (tn / wn) * sb;
        if best.is_none_or(|(_, _, c)| cost < c) {
            best = Some((wm, wn, cost));
        }
    }
    let (wm, wn, _) = best?;
    let (rm, rn) = (tm / wm, tn / wn);
    let c_layout = compose(&compose(&spatial(&[wm, wn]), &local(&[rm, rn])), &atom_c);
    let a_outer = compose(&compose(&spatial(&[wm, 1]), &RegisterLayout::replica(wn)), &local(&[rm, kk]));
    let b_outer = compose(&compose(&RegisterLayout::replica(wm), &spatial(&[1, wn])), &local(&[kk, rn]));
    let plan = MmaPlan {
        kind,
        mnk: (am, an, ak),
        warps: (wm, wn),
        repeats: (rm, rn, kk),
        a: compose(&a_outer, &atom_a),
        b: compose(&b_outer, &atom_b),
        c: c_layout,
        c_atom: frags.c,
        engine: Engine::MmaSync,
    };
    [&plan.a, &plan.b, &plan.c].iter().all(|l| l.num_threads() == threads).then_some(plan)
}

/// The `wgmma` plan (sm_90a) for `a[m, k] · b[k, n] + c`: one 64-row tile, the block's
/// warpgroups side by side along n, each warp holding 16 rows of its warpgroup's 64 × n/g
/// slice as n/(8g) mma C fragments — the accumulator layout
///
/// ```text
/// C = spatial(1, g) * spatial(4, 1) * local(1, n / 8g) * atom.c
/// ```
///
/// which is wgmma's register layout (the warps of a warpgroup are consecutive). `None` when the
/// shapes do not fit (m ≠ 64, a slice wider than 256 or not a whole number of atoms).
pub fn wgmma_plan(a: DType, b: DType, c: DType, (m, k, n): (usize, usize, usize), threads: usize) -> Option<MmaPlan> {
    let (kind, frag_kind) = select(a, b, c)?;
    let frags = fragments::mma(frag_kind);
    let (am, an, ak) = frags.mnk;
    let groups = threads / 128;
    if m != 64 || threads % 128 != 0 || n % groups != 0 || k % ak != 0 {
        return None;
    }
    let slice = n / groups;
    let step = if ak == 32 { 16 } else { 8 };
    if slice % step != 0 || slice > 256 {
        return None;
    }
    let (atom_a, atom_b, atom_c) = (frags.a.eval(), frags.b.eval(), frags.c.eval());
    let warps = compose(&spatial(&[1, groups]), &spatial(&[4, 1]));
    let c_layout = compose(&compose(&warps, &local(&[1, slice / an])), &atom_c);
    // Operands are staged in shared memory and read by the tensor cores; these register layouts
    // only describe them for the lowering's bookkeeping (each warp's mma operands).
    let a_outer = compose(&compose(&compose(&RegisterLayout::replica(groups), &spatial(&[4, 1])), &local(&[1, k / ak])), &atom_a);
    let b_outer = compose(&compose(&compose(&spatial(&[1, groups]), &RegisterLayout::replica(4)), &local(&[k / ak, slice / an])), &atom_b);
    let plan = MmaPlan {
        kind,
        mnk: (am, an, ak),
        warps: (4, groups),
        repeats: (1, slice / an, k / ak),
        a: a_outer,
        b: b_outer,
        c: c_layout,
        c_atom: frags.c,
        engine: Engine::Wgmma { slice: slice as u16 },
    };
    [&plan.a, &plan.b, &plan.c].iter().all(|l| l.num_threads() == threads).then_some(plan)
}

/// The `tcgen05` plan (sm_100a) for `a[m, k] · b[k, n] + c`: one 128-row tile, one
/// `tcgen05.mma` of 128 × n per k-step (n a multiple of 16 up to 256) accumulating in tensor
/// memory, where row `r` lives in lane `r`; warp `w` may read only lanes `32 · (w mod 4) ..`,
/// so warpgroup `g` reads columns `g · slice ..` of its rows back with `tcgen05.ld.32x32b`:
///
/// ```text
/// C = spatial(1, g) * spatial(4, 1) * tcgen05.ld.32x32b.x{slice}
///   = spatial(1, g) * spatial(128, 1) * local(1, slice)
/// ```
///
/// Operands are staged in shared memory for the tensor core; the A and B layouts recorded here
/// (each thread's row of A, each warpgroup's columns of B) are bookkeeping only. `None` when
/// the shapes do not fit.
pub fn tcgen05_plan(a: DType, b: DType, c: DType, (m, k, n): (usize, usize, usize), threads: usize) -> Option<MmaPlan> {
    let (kind, frag_kind) = select(a, b, c)?;
    let (_, _, ak) = fragments::mma(frag_kind).mnk;
    let groups = threads / 128;
    if m != 128 || groups == 0 || threads % 128 != 0 || n % 16 != 0 || !(16..=256).contains(&n) || n % groups != 0 || k % ak != 0 {
        return None;
    }
    let slice = n / groups;
    if slice % 8 != 0 {
        return None;
    }
    let c_layout = compose(&compose(&spatial(&[1, groups]), &spatial(&[128, 1])), &local(&[1, slice]));
    let a_layout = compose(&compose(&RegisterLayout::replica(groups), &spatial(&[128, 1])), &local(&[1, k]));
    let b_layout = compose(&compose(&spatial(&[1, groups]), &RegisterLayout::replica(128)), &local(&[k, slice]));
    let c_atom = fragments::tcgen05_ld_32x32b(slice).or_else(|| fragments::tcgen05_ld_32x32b(1)).expect("x1 exists");
    let plan = MmaPlan {
        kind,
        mnk: (128, n, ak),
        warps: (4, groups),
        repeats: (1, 1, k / ak),
        a: a_layout,
        b: b_layout,
        c: c_layout,
        c_atom,
        engine: Engine::Tcgen05 { slice: slice as u16 },
    };
    [&plan.a, &plan.b, &plan.c].iter().all(|l| l.num_threads() == threads).then_some(plan)
}

/// The result of inference.
#[derive(Clone, Debug, Default)]
pub struct Inferred {
    /// The layout of every tile value and tile variable.
    pub layouts: HashMap<vm::Value, RegisterLayout>,
    /// The tensor-core plan of each `dot` that has one.
    pub mma: HashMap<vm::Inst, MmaPlan>,
}

/// The default layout of a tile of `dtype` and `shape` on `threads` threads.
pub fn default_for(dtype: DType, shape: &[usize], threads: usize) -> RegisterLayout {
    default_layout(shape, threads, default_vector(dtype.bits(), shape[shape.len() - 1]))
}

/// Infers layouts for `k` on blocks of `threads` threads; `engines` says which tensor-core
/// plans `dot` may get.
pub fn infer(k: &vm::Kernel, threads: usize, engines: Engines) -> Inferred {
    let mut inf = Inferred::default();
    // Layouts the author pinned win over every rule.
    let pinned: HashMap<vm::Value, RegisterLayout> = k.pinned_layouts.iter().filter(|p| p.layout.num_threads() == threads).map(|p| (p.value, p.layout.clone())).collect();
    let mut var_layout: HashMap<vm::Value, RegisterLayout> =
        pinned.iter().filter(|(v, _)| matches!(k.values[**v].def, vm::ValueDef::Var)).map(|(v, l)| (*v, l.clone())).collect();
    for _round in 0..4 {
        let mut st = Round { k, threads, engines, out: Inferred::default(), vars: &var_layout, assigned: HashMap::new(), pinned: &pinned };
        st.body(&k.body);
        let mut next = var_layout.clone();
        for (var, layout) in &st.assigned {
            if !pinned.contains_key(var) {
                next.insert(*var, layout.clone());
            }
        }
        inf = st.out;
        if next == var_layout {
            break;
        }
        var_layout = next;
    }
    for (v, l) in var_layout {
        inf.layouts.insert(v, l);
    }
    inf
}

struct Round<'a> {
    k: &'a vm::Kernel,
    threads: usize,
    engines: Engines,
    out: Inferred,
    /// Variable layouts decided by earlier rounds.
    vars: &'a HashMap<vm::Value, RegisterLayout>,
    /// The first non-fill layout assigned to each variable in this round.
    assigned: HashMap<vm::Value, RegisterLayout>,
    /// Layouts pinned by the author.
    pinned: &'a HashMap<vm::Value, RegisterLayout>,
}

impl Round<'_> {
    fn tile_type(&self, v: vm::Value) -> Option<&vm::TileType> {
        self.k.ty(v).as_tile()
    }

    fn default(&self, v: vm::Value) -> Option<RegisterLayout> {
        let t = self.tile_type(v)?;
        Some(default_for(t.dtype, &t.shape, self.threads))
    }

    /// The layout a read of `v` sees.
    fn of(&self, v: vm::Value) -> Option<RegisterLayout> {
        self.tile_type(v)?;
        if matches!(self.k.values[v].def, vm::ValueDef::Var) {
            return self.vars.get(&v).cloned().or_else(|| self.default(v));
        }
        self.out.layouts.get(&v).cloned().or_else(|| self.default(v))
    }

    /// Whether `v` is a uniform fill (free in any layout).
    fn is_fill(&self, v: vm::Value) -> bool {
        match self.k.values[v].def {
            vm::ValueDef::Inst(i) => match &self.k.insts[i].kind {
                InstKind::Full { .. } => true,
                InstKind::Broadcast { x, .. } => self.k.ty(*x).is_scalar(),
                _ => false,
            },
            _ => false,
        }
    }

    fn body(&mut self, body: &[vm::Inst]) {
        for &i in body {
            self.inst(i);
        }
    }

    fn inst(&mut self, i: vm::Inst) {
        let k = self.k;
        let data = &k.insts[i];
        let result = data.result;
        let layout = match &data.kind {
            InstKind::Unary { x, .. } => self.elementwise(result, &[*x]),
            InstKind::Binary { a, b, .. } => self.elementwise(result, &[*a, *b]),
            InstKind::Select { cond, a, b } => self.elementwise(result, &[*cond, *a, *b]),
            InstKind::Cast { x, .. } => self.elementwise(result, &[*x]),
            InstKind::Reshape { x, shape } => self.reshaped(*x, shape, result),
            InstKind::View { x, dtype, shape } => {
                if k.ty(*x).dtype().bits() == dtype.bits() {
                    self.reshaped(*x, shape, result)
                } else {
                    result.and_then(|r| self.default(r))
                }
            }
            InstKind::Hadamard { x, .. } => self.of(*x),
            InstKind::Reduce { op, x, axis, keepdim } => {
                let d = k.ty(*x).dtype();
                let order_free = *op != vm::ReduceOp::Sum || d.is_int();
                match self.of(*x) {
                    Some(src) if crate::layout::warp_reducible(&src, *axis, order_free) => {
                        tilc_layout::reduce(&src, &[*axis], *keepdim).ok().or_else(|| result.and_then(|r| self.default(r)))
                    }
                    _ => result.and_then(|r| self.default(r)),
                }
            }
            InstKind::Dot { a, b, c } => {
                let (ta, tb, tc) = (self.tile_type(*a).cloned(), self.tile_type(*b).cloned(), self.tile_type(*c).cloned());
                match (ta, tb, tc) {
                    (Some(ta), Some(tb), Some(tc)) if self.engines.mma => {
                        let (da, db, dc, mnk) = (ta.dtype, tb.dtype, tc.dtype, (ta.shape[0], ta.shape[1], tb.shape[1]));
                        let wgmma = || if self.engines.wgmma { wgmma_plan(da, db, dc, mnk, self.threads) } else { None };
                        let tcgen05 = || if self.engines.tcgen05 { tcgen05_plan(da, db, dc, mnk, self.threads) } else { None };
                        match tcgen05().or_else(wgmma).or_else(|| mma_plan(da, db, dc, mnk, self.threads)) {
                            Some(plan) => {
                                let c = plan.c.clone();
                                self.out.mma.insert(i, plan);
                                Some(c)
                            }
                            None => self.of(*c),
                        }
                    }
                    _ => self.of(*c),
                }
            }
            InstKind::Assign { var, value } => {
                if self.tile_type(*var).is_some() && !self.is_fill(*value) && !self.assigned.contains_key(var)
                    && let Some(l) = self.of(*value)
                {
                    self.assigned.insert(*var, l);
                }
                None
            }
            InstKind::For { body, .. } => {
                self.body(body);
                None
            }
            InstKind::If { then_body, else_body, .. } => {
                self.body(then_body);
                self.body(else_body);
                None
            }
            InstKind::While { cond_body, body, .. } => {
                self.body(cond_body);
                self.body(body);
                None
            }
            _ => result.and_then(|r| self.default(r)),
        };
        let layout = match result.and_then(|r| self.pinned.get(&r)) {
            Some(p) => Some(p.clone()),
            None => layout,
        };
        if let (Some(r), Some(l)) = (result, layout)
            && matches!(k.ty(r), Type::Tile(_))
        {
            self.out.layouts.insert(r, l);
        }
    }

    fn elementwise(&self, result: Option<vm::Value>, operands: &[vm::Value]) -> Option<RegisterLayout> {
        let r = result?;
        let shape = &self.tile_type(r)?.shape;
        let fits = |o: vm::Value| self.tile_type(o).is_some_and(|t| &t.shape == shape);
        let is_var = |o: vm::Value| matches!(self.k.values[o].def, vm::ValueDef::Var);
        // A computed operand first: a variable follows what is assigned to it, so preferring
        // it would pin an accumulator to the layout of its initial fill.
        operands
            .iter()
            .find(|&&o| fits(o) && !is_var(o))
            .or_else(|| operands.iter().find(|&&o| fits(o)))
            .and_then(|&o| self.of(o))
            .or_else(|| self.default(r))
    }

    fn reshaped(&self, x: vm::Value, shape: &[usize], result: Option<vm::Value>) -> Option<RegisterLayout> {
        let src = self.of(x)?;
        tilc_layout::reshape(&src, shape).ok().or_else(|| result.and_then(|r| self.default(r)))
    }
}
