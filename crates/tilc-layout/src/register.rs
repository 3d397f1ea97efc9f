//! [`RegisterLayout`]: which thread of a block holds which element of a tile, and in which of
//! its registers (its *slot*). The value type, its primitives, the product `*` ([`compose`]),
//! the canonical form and the two maps (thread, slot) → index and index → {(thread, slot)}.
//!
//! This module knows nothing of expressions, e-graphs or hardware; those build on it.
//!
//! **Representation** (as in Tilus' `RegisterLayout`): every dimension `d` of the tile shape is
//! factored into consecutive *modes* (major first); each mode is used exactly once, either in the
//! spatial list (its digits form the thread index, first entry most significant) or in the local
//! list (its digits form the slot index). A spatial entry may instead be a *replication* of size
//! `k`: a thread digit that selects none of the tile, so that `k` threads hold the same element.
//!
//! **Invariant** (checked by [`RegisterLayout::new`], kept by every operation): modes are sorted
//! by dimension, each mode size is > 1 after canonicalization, the modes of a dimension multiply
//! to its extent, and every mode occurs exactly once across the two lists.

use crate::error::LayoutError;
use std::fmt;

/// One entry of a layout's spatial list: a mode, or a replication of `k` threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SpatialMode {
    /// The digit of mode `id` (an index into the layout's modes).
    Mode(usize),
    /// `k` threads hold the same elements (Tilus writes this as the negative entry `-k`).
    Replica(usize),
}

/// A register layout `f(t, i) = I`: thread `t < num_threads`, slot `i < local_size`, logical
/// index `I` of a tile of shape `shape`. Always kept in canonical form, so `==` is equality of
/// mappings.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegisterLayout {
    /// Extent of every tile dimension.
    shape: Vec<usize>,
    /// Size of every mode; modes are sorted by dimension, major first inside a dimension.
    mode_size: Vec<usize>,
    /// The dimension each mode belongs to (non-decreasing).
    mode_dim: Vec<usize>,
    /// Thread digits, most significant first.
    spatial: Vec<SpatialMode>,
    /// Slot digits (mode ids), most significant first.
    local: Vec<usize>,
}

/// The primitive kinds: which list the modes go to, and in which dimension order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PrimKind {
    /// `local(n1..nr)`: one thread holds everything, row-major slot order.
    Local,
    /// `spatial(n1..nr)`: one element per thread, row-major thread order.
    Spatial,
    /// `column_local(n1..nr)`: as `local`, column-major (first dimension fastest).
    ColumnLocal,
    /// `column_spatial(n1..nr)`: as `spatial`, column-major (first dimension fastest).
    ColumnSpatial,
}

impl PrimKind {
    /// The spelling in the text syntax.
    pub fn name(self) -> &'static str {
        match self {
            PrimKind::Local => "local",
            PrimKind::Spatial => "spatial",
            PrimKind::ColumnLocal => "column_local",
            PrimKind::ColumnSpatial => "column_spatial",
        }
    }
    /// Whether the modes form the thread index (else the slot index).
    pub fn is_spatial(self) -> bool {
        matches!(self, PrimKind::Spatial | PrimKind::ColumnSpatial)
    }
    /// Whether the first dimension is the fastest-varying one.
    pub fn is_column(self) -> bool {
        matches!(self, PrimKind::ColumnLocal | PrimKind::ColumnSpatial)
    }
    /// The kind with the given list and order.
    pub fn with(spatial: bool, column: bool) -> PrimKind {
        match (spatial, column) {
            (false, false) => PrimKind::Local,
            (true, false) => PrimKind::Spatial,
            (false, true) => PrimKind::ColumnLocal,
            (true, true) => PrimKind::ColumnSpatial,
        }
    }
}

pub(crate) fn product(xs: &[usize]) -> usize {
    xs.iter().product()
}

impl RegisterLayout {
    /// Builds a layout from Tilus' four fields: `shape`, `mode_shape` (modes of all dimensions in
    /// order; their grouping into dimensions is recovered from the right, as Tilus does),
    /// `spatial` and `local` lists. Size-1 modes are allowed and removed; the result is canonical.
    pub fn new(
        shape: &[usize],
        mode_shape: &[usize],
        spatial: &[SpatialMode],
        local: &[usize],
    ) -> Result<RegisterLayout, LayoutError> {
        let invalid = |reason: String| LayoutError::Invalid { reason };
        if shape.contains(&0) || mode_shape.contains(&0) {
            return Err(invalid("extents must be at least 1".into()));
        }
        // Group modes from the right: the last dimension takes modes until its extent is reached.
        let mut mode_dim = vec![0; mode_shape.len()];
        let mut next = mode_shape.len();
        for d in (0..shape.len()).rev() {
            let mut acc = 1usize;
            while acc < shape[d] {
                if next == 0 {
                    return Err(invalid(format!("modes {mode_shape:?} do not factor shape {shape:?}")));
                }
                next -= 1;
                acc *= mode_shape[next];
                mode_dim[next] = d;
            }
            // Size-1 modes left of a full dimension belong to it; they are pruned anyway.
            while next > 0 && mode_shape[next - 1] == 1 && acc == shape[d] {
                next -= 1;
                mode_dim[next] = d;
            }
            if acc != shape[d] {
                return Err(invalid(format!("modes {mode_shape:?} do not factor shape {shape:?}")));
            }
        }
        if mode_shape[..next].iter().any(|&m| m != 1) {
            return Err(invalid(format!("modes {mode_shape:?} do not factor shape {shape:?}")));
        }
        let mut seen = vec![false; mode_shape.len()];
        let mut mark = |m: usize| -> Result<(), LayoutError> {
            if m >= seen.len() {
                return Err(invalid(format!("mode {m} out of range")));
            }
            if std::mem::replace(&mut seen[m], true) {
                return Err(invalid(format!("mode {m} used twice")));
            }
            Ok(())
        };
        for s in spatial {
            match *s {
                SpatialMode::Mode(m) => mark(m)?,
                SpatialMode::Replica(0) => return Err(invalid("replication of 0 threads".into())),
                SpatialMode::Replica(_) => {}
            }
        }
        for &m in local {
            mark(m)?;
        }
        if let Some(m) = seen.iter().position(|s| !s) {
            if mode_shape[m] != 1 {
                return Err(invalid(format!("mode {m} is in neither list")));
            }
        }
        let mut layout = RegisterLayout {
            shape: shape.to_vec(),
            mode_size: mode_shape.to_vec(),
            mode_dim,
            spatial: spatial.to_vec(),
            local: local.to_vec(),
        };
        // Unused size-1 modes: put them in the local list so the canonicalizer drops them.
        for (m, s) in seen.iter().enumerate() {
            if !s {
                layout.local.push(m);
            }
        }
        Ok(layout.canonical())
    }

    /// The rank-0 identity of `*` (one thread, one slot, shape `[]`).
    pub fn unit() -> RegisterLayout {
        RegisterLayout { shape: vec![], mode_size: vec![], mode_dim: vec![], spatial: vec![], local: vec![] }
    }

    /// A primitive: `kind(shape)`. Extents must be ≥ 1 (checked by the text parser; here an
    /// extent of 0 is an invariant violation).
    pub fn primitive(kind: PrimKind, shape: &[usize]) -> RegisterLayout {
        assert!(!shape.contains(&0), "primitive extents must be at least 1");
        let order: Vec<usize> =
            if kind.is_column() { (0..shape.len()).rev().collect() } else { (0..shape.len()).collect() };
        let list = order.into_iter();
        let (spatial, local) = if kind.is_spatial() {
            (list.map(SpatialMode::Mode).collect(), vec![])
        } else {
            (vec![], list.collect())
        };
        RegisterLayout {
            shape: shape.to_vec(),
            mode_size: shape.to_vec(),
            mode_dim: (0..shape.len()).collect(),
            spatial,
            local,
        }
        .canonical()
    }

    /// The rank-0 layout in which `workers` threads all hold the (single, empty) element.
    pub fn replica(workers: usize) -> RegisterLayout {
        assert!(workers >= 1, "replication needs at least one thread");
        RegisterLayout { spatial: vec![SpatialMode::Replica(workers)], ..RegisterLayout::unit() }
            .canonical()
    }

    /// Tile shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    /// Number of tile dimensions.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }
    /// Mode sizes (canonical: all > 1).
    pub fn mode_shape(&self) -> &[usize] {
        &self.mode_size
    }
    /// The dimension of every mode.
    pub fn mode_dims(&self) -> &[usize] {
        &self.mode_dim
    }
    /// The spatial list.
    pub fn spatial_modes(&self) -> &[SpatialMode] {
        &self.spatial
    }
    /// The local list.
    pub fn local_modes(&self) -> &[usize] {
        &self.local
    }
    /// Number of elements of the tile.
    pub fn num_elements(&self) -> usize {
        product(&self.shape)
    }
    fn spatial_size_of(&self, s: SpatialMode) -> usize {
        match s {
            SpatialMode::Mode(m) => self.mode_size[m],
            SpatialMode::Replica(k) => k,
        }
    }
    /// Number of threads `T` (replication included).
    pub fn num_threads(&self) -> usize {
        self.spatial.iter().map(|&s| self.spatial_size_of(s)).product()
    }
    /// Elements per thread `m`.
    pub fn local_size(&self) -> usize {
        self.local.iter().map(|&m| self.mode_size[m]).product()
    }
    /// Product of the replication sizes: how many threads hold each element.
    pub fn replication(&self) -> usize {
        self.spatial
            .iter()
            .map(|s| if let SpatialMode::Replica(k) = s { *k } else { 1 })
            .product()
    }
    /// Whether every element is held by exactly one thread.
    pub fn is_bijective(&self) -> bool {
        self.replication() == 1
    }
    /// Whether the layout has no local modes (`m = 1`).
    pub fn is_purely_spatial(&self) -> bool {
        self.local.is_empty()
    }
    /// Whether the layout has no spatial entries (`T = 1`).
    pub fn is_purely_local(&self) -> bool {
        self.spatial.is_empty()
    }
    /// Dimensions whose extent is > 1.
    pub fn nontrivial_dims(&self) -> Vec<usize> {
        (0..self.rank()).filter(|&d| self.shape[d] > 1).collect()
    }
    /// The modes of dimension `d`, major first.
    pub fn dim_modes(&self, d: usize) -> Vec<usize> {
        (0..self.mode_size.len()).filter(|&m| self.mode_dim[m] == d).collect()
    }
    /// Inner stride of mode `m` inside its dimension (product of the minor modes of that dim).
    pub(crate) fn mode_inner(&self, m: usize) -> usize {
        ((m + 1)..self.mode_size.len())
            .take_while(|&n| self.mode_dim[n] == self.mode_dim[m])
            .map(|n| self.mode_size[n])
            .product()
    }

    /// The logical index held by `thread` in `slot` (the paper's `f(t, i)`). `None` when out of
    /// range.
    pub fn global_index(&self, thread: usize, slot: usize) -> Option<Vec<usize>> {
        if thread >= self.num_threads() || slot >= self.local_size() {
            return None;
        }
        let mut digit = vec![0usize; self.mode_size.len()];
        let mut t = thread;
        for &s in self.spatial.iter().rev() {
            let size = self.spatial_size_of(s);
            if let SpatialMode::Mode(m) = s {
                digit[m] = t % size;
            }
            t /= size;
        }
        let mut i = slot;
        for &m in self.local.iter().rev() {
            digit[m] = i % self.mode_size[m];
            i /= self.mode_size[m];
        }
        let mut index = vec![0usize; self.rank()];
        for m in 0..self.mode_size.len() {
            let d = self.mode_dim[m];
            index[d] = index[d] * self.mode_size[m] + digit[m];
        }
        Some(index)
    }

    /// The slot and the (sorted) threads that hold `index`; `None` when out of range.
    pub fn owners(&self, index: &[usize]) -> Option<(Vec<usize>, usize)> {
        if index.len() != self.rank() || index.iter().zip(&self.shape).any(|(i, n)| i >= n) {
            return None;
        }
        let digit: Vec<usize> = (0..self.mode_size.len())
            .map(|m| (index[self.mode_dim[m]] / self.mode_inner(m)) % self.mode_size[m])
            .collect();
        let slot = self.local.iter().fold(0, |acc, &m| acc * self.mode_size[m] + digit[m]);
        let mut threads = vec![0usize];
        for &s in &self.spatial {
            let size = self.spatial_size_of(s);
            threads = match s {
                SpatialMode::Mode(m) => threads.iter().map(|t| t * size + digit[m]).collect(),
                SpatialMode::Replica(k) => {
                    threads.iter().flat_map(|t| (0..k).map(move |r| t * k + r)).collect()
                }
            };
        }
        threads.sort_unstable();
        Some((threads, slot))
    }

    /// Whether `thread` holds `index`.
    pub fn locate_at(&self, index: &[usize], thread: usize) -> bool {
        self.owners(index).is_some_and(|(ts, _)| ts.binary_search(&thread).is_ok())
    }

    /// The product `self * inner` (see [`compose`]).
    pub fn compose(&self, inner: &RegisterLayout) -> RegisterLayout {
        compose(self, inner)
    }

    /// This layout with `k` leading size-1 dimensions added (used to align ranks).
    pub(crate) fn padded_to(&self, rank: usize) -> RegisterLayout {
        let extra = rank.saturating_sub(self.rank());
        let mut shape = vec![1; extra];
        shape.extend_from_slice(&self.shape);
        RegisterLayout {
            shape,
            mode_dim: self.mode_dim.iter().map(|d| d + extra).collect(),
            ..self.clone()
        }
    }

    /// Builds a layout from modes given as (dimension, size) pairs in dimension order, without
    /// checks beyond debug assertions; canonicalizes.
    pub(crate) fn from_raw(
        shape: Vec<usize>,
        modes: Vec<(usize, usize)>,
        spatial: Vec<SpatialMode>,
        local: Vec<usize>,
    ) -> RegisterLayout {
        debug_assert!(modes.windows(2).all(|w| w[0].0 <= w[1].0), "modes sorted by dim");
        RegisterLayout {
            shape,
            mode_dim: modes.iter().map(|m| m.0).collect(),
            mode_size: modes.iter().map(|m| m.1).collect(),
            spatial,
            local,
        }
        .canonical()
    }

    /// The canonical form: size-1 modes and replications dropped, then runs of modes that are
    /// adjacent in one dimension *and* adjacent in the same order in one list merged (adjacent
    /// replications merge too). Two layouts map alike iff their canonical forms are equal.
    fn canonical(mut self) -> RegisterLayout {
        // (1) drop size-1 modes and replications of one thread.
        self.spatial.retain(|s| match *s {
            SpatialMode::Mode(_) => true,
            SpatialMode::Replica(k) => k > 1,
        });
        let keep: Vec<bool> = self.mode_size.iter().map(|&s| s > 1).collect();
        self.remove_modes(&keep);
        // (2) merge until nothing merges.
        loop {
            let mut merged = false;
            for p in 0..self.spatial.len().saturating_sub(1) {
                if let (SpatialMode::Replica(a), SpatialMode::Replica(b)) =
                    (self.spatial[p], self.spatial[p + 1])
                {
                    self.spatial[p] = SpatialMode::Replica(a * b);
                    self.spatial.remove(p + 1);
                    merged = true;
                    break;
                }
            }
            if merged {
                continue;
            }
            let pair = self.spatial_pairs().into_iter().chain(self.local_pairs()).find(|&(a, b)| {
                b == a + 1 && self.mode_dim[a] == self.mode_dim[b]
            });
            let Some((major, minor)) = pair else { break };
            self.mode_size[major] *= self.mode_size[minor];
            self.spatial.retain(|s| *s != SpatialMode::Mode(minor));
            self.local.retain(|&m| m != minor);
            let keep: Vec<bool> = (0..self.mode_size.len()).map(|m| m != minor).collect();
            self.remove_modes(&keep);
        }
        self
    }

    fn spatial_pairs(&self) -> Vec<(usize, usize)> {
        self.spatial
            .windows(2)
            .filter_map(|w| match (w[0], w[1]) {
                (SpatialMode::Mode(a), SpatialMode::Mode(b)) => Some((a, b)),
                _ => None,
            })
            .collect()
    }
    fn local_pairs(&self) -> Vec<(usize, usize)> {
        self.local.windows(2).map(|w| (w[0], w[1])).collect()
    }

    /// Removes the modes whose `keep` entry is false from the modes and both lists, renumbering.
    fn remove_modes(&mut self, keep: &[bool]) {
        let mut new_id = vec![usize::MAX; keep.len()];
        let mut next = 0;
        for (m, &k) in keep.iter().enumerate() {
            if k {
                new_id[m] = next;
                next += 1;
            }
        }
        let filter = |v: &Vec<usize>| -> Vec<usize> {
            v.iter().zip(keep).filter(|(_, k)| **k).map(|(x, _)| *x).collect()
        };
        self.mode_size = filter(&self.mode_size);
        self.mode_dim = filter(&self.mode_dim);
        self.spatial = self
            .spatial
            .iter()
            .filter_map(|s| match *s {
                SpatialMode::Mode(m) if keep[m] => Some(SpatialMode::Mode(new_id[m])),
                SpatialMode::Mode(_) => None,
                r @ SpatialMode::Replica(_) => Some(r),
            })
            .collect();
        self.local = self.local.iter().filter(|&&m| keep[m]).map(|&m| new_id[m]).collect();
    }
}

/// The product `outer * inner` ("replace every element of `outer` by a copy of `inner`"):
///
/// `h(t, i) = outer(t / T_inner, i / m_inner) ⊙ S_inner + inner(t mod T_inner, i mod m_inner)`
///
/// with `T_h = T_outer·T_inner`, `m_h = m_outer·m_inner`, `S_h = S_outer ⊙ S_inner` (the lower
/// rank operand is left-padded with 1s). Associative, not commutative.
pub fn compose(outer: &RegisterLayout, inner: &RegisterLayout) -> RegisterLayout {
    let rank = outer.rank().max(inner.rank());
    let (f, g) = (outer.padded_to(rank), inner.padded_to(rank));
    let mut modes = Vec::new();
    let mut f_id = vec![0; f.mode_size.len()];
    let mut g_id = vec![0; g.mode_size.len()];
    for d in 0..rank {
        for m in f.dim_modes(d) {
            f_id[m] = modes.len();
            modes.push((d, f.mode_size[m]));
        }
        for m in g.dim_modes(d) {
            g_id[m] = modes.len();
            modes.push((d, g.mode_size[m]));
        }
    }
    let remap = |s: &SpatialMode, ids: &[usize]| match *s {
        SpatialMode::Mode(m) => SpatialMode::Mode(ids[m]),
        r => r,
    };
    let spatial = f.spatial.iter().map(|s| remap(s, &f_id)).chain(g.spatial.iter().map(|s| remap(s, &g_id))).collect();
    let local = f.local.iter().map(|&m| f_id[m]).chain(g.local.iter().map(|&m| g_id[m])).collect();
    let shape = f.shape.iter().zip(&g.shape).map(|(a, b)| a * b).collect();
    RegisterLayout::from_raw(shape, modes, spatial, local)
}

impl std::ops::Mul for &RegisterLayout {
    type Output = RegisterLayout;
    fn mul(self, rhs: &RegisterLayout) -> RegisterLayout {
        compose(self, rhs)
    }
}

/// `local(shape)`.
pub fn local(shape: &[usize]) -> RegisterLayout {
    RegisterLayout::primitive(PrimKind::Local, shape)
}
/// `spatial(shape)`.
pub fn spatial(shape: &[usize]) -> RegisterLayout {
    RegisterLayout::primitive(PrimKind::Spatial, shape)
}
/// `column_local(shape)`.
pub fn column_local(shape: &[usize]) -> RegisterLayout {
    RegisterLayout::primitive(PrimKind::ColumnLocal, shape)
}
/// `column_spatial(shape)`.
pub fn column_spatial(shape: &[usize]) -> RegisterLayout {
    RegisterLayout::primitive(PrimKind::ColumnSpatial, shape)
}
/// Tilus' `replicated(*shape, num_workers=w)`: `w` threads each hold the whole `local(shape)`.
pub fn replicated(shape: &[usize], workers: usize) -> RegisterLayout {
    compose(&RegisterLayout::replica(workers), &local(shape))
}

/// Tilus' `auto_local_spatial(num_threads, shape)`: give threads to the innermost dimensions
/// first (`spatial[d] = gcd(remaining, shape[d])` from the last dimension), keep the rest local:
/// `local(rest).spatial(spat)`; threads left over become a leading replication.
pub fn auto_local_spatial(num_threads: usize, shape: &[usize]) -> RegisterLayout {
    let mut remaining = num_threads.max(1);
    let mut spat = vec![1; shape.len()];
    for d in (0..shape.len()).rev() {
        spat[d] = gcd(remaining, shape[d]);
        remaining /= spat[d];
    }
    let rest: Vec<usize> = shape.iter().zip(&spat).map(|(n, s)| n / s).collect();
    let body = compose(&local(&rest), &spatial(&spat));
    compose(&RegisterLayout::replica(remaining), &body)
}

pub(crate) fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl fmt::Display for RegisterLayout {
    /// Tilus' field notation: `RegisterLayout(shape=[16, 16], mode_shape=[2, 8, 2, 4, 2],
    /// spatial_modes=[1, 3], local_modes=[2, 0, 4])`, replication written `-k`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let spatial: Vec<String> = self
            .spatial
            .iter()
            .map(|s| match s {
                SpatialMode::Mode(m) => m.to_string(),
                SpatialMode::Replica(k) => format!("-{k}"),
            })
            .collect();
        write!(
            f,
            "RegisterLayout(shape={:?}, mode_shape={:?}, spatial_modes=[{}], local_modes={:?})",
            self.shape,
            self.mode_size,
            spatial.join(", "),
            self.local
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tilus_docs_example_maps_as_documented() {
        // shape [4,6], mode_shape [2,2,3,2], spatial [0,2], local [3,1]:
        // thread = (i/2)*3 + j/2, slot = (j%2)*2 + i%2.
        let l = RegisterLayout::new(
            &[4, 6],
            &[2, 2, 3, 2],
            &[SpatialMode::Mode(0), SpatialMode::Mode(2)],
            &[3, 1],
        )
        .unwrap();
        for i in 0..4 {
            for j in 0..6 {
                let (threads, slot) = l.owners(&[i, j]).unwrap();
                assert_eq!(threads, vec![(i / 2) * 3 + j / 2]);
                assert_eq!(slot, (j % 2) * 2 + i % 2);
                assert_eq!(l.global_index(threads[0], slot).unwrap(), vec![i, j]);
            }
        }
    }

    #[test]
    fn canonicalization_merges_as_tilus_does() {
        assert_eq!(&spatial(&[2, 1]) * &spatial(&[3, 1]), spatial(&[6, 1]));
        assert_ne!(&spatial(&[2, 2]) * &spatial(&[2, 2]), spatial(&[4, 4]));
        let l = RegisterLayout::new(
            &[4, 6, 5],
            &[2, 2, 2, 3, 5],
            &[SpatialMode::Mode(0), SpatialMode::Mode(1)],
            &[2, 3, 4],
        )
        .unwrap();
        assert_eq!(l.mode_shape(), &[4, 6, 5]);
        assert_eq!(l.spatial_modes(), &[SpatialMode::Mode(0)]);
        assert_eq!(l.local_modes(), &[1, 2]);
    }

    #[test]
    fn bad_fields_are_rejected() {
        assert!(RegisterLayout::new(&[4], &[3], &[], &[0]).is_err());
        assert!(RegisterLayout::new(&[4], &[4], &[SpatialMode::Mode(0)], &[0]).is_err());
        assert!(RegisterLayout::new(&[4], &[2, 2], &[SpatialMode::Mode(0)], &[]).is_err());
    }

    #[test]
    fn auto_local_spatial_gives_threads_to_inner_dims() {
        assert_eq!(auto_local_spatial(32, &[16, 8]), &local(&[4, 1]) * &spatial(&[4, 8]));
        let l = auto_local_spatial(64, &[2, 4]);
        assert_eq!(l.num_threads(), 64);
        assert_eq!(l.replication(), 8);
    }
}
