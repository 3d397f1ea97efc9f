//! Layout inference: which thread of the block holds which element of every register tile.
//!
//! Every tile value of a VM kernel gets a [`RegisterLayout`] over exactly the block's threads
//! (replication fills threads a small tile does not need). The rules, in program order:
//!
//! - a layout the author pinned (`let x @ layout = …`) wins;
//! - `dot` takes the fragment layouts of the tensor-core atom chosen for it, when one is chosen
//!   ([`crate::mma`]), so its operands are converted into them and its result is born in the
//!   accumulator layout;
//! - elementwise operations, casts and `where` propagate the layout of their first tile operand
//!   whose shape is the result's (others are converted to it);
//! - `reshape`/`transpose`/`broadcast`/`view`/`reduce`/`hadamard` results, loads, `iota` and
//!   `full` get the default layout of their shape ([`default_layout`]);
//! - a mutable tile variable keeps one layout for its whole life: the layout of its first
//!   assignment in program order; later assignments convert into it.
//!
//! A conversion between two layouts costs nothing when every thread already holds what it needs
//! in a slot that does not depend on the thread ([`local_remap`]); otherwise the lowering routes
//! it through shared memory. This module only decides; [`crate::lower`] emits the code.
//!
//! It also computes, for a layout, the tile coordinates of each slot as a function of the thread
//! index ([`ThreadMap`]), which is all the index arithmetic the lowering needs.

use tilc_layout::register::{SpatialMode, auto_local_spatial, compose, local, spatial};
use tilc_layout::RegisterLayout;

/// The default layout of a tile of `shape` over `threads` threads: each thread holds `vec`
/// consecutive elements of the last axis (so loads can be vectorised), threads go to the
/// innermost axes first, and whatever is left stays local; threads beyond the tile's size
/// replicate it.
pub fn default_layout(shape: &[usize], threads: usize, vec: usize) -> RegisterLayout {
    let rank = shape.len();
    let last = shape[rank - 1];
    let v = if vec > 1 && last % vec == 0 { vec } else { 1 };
    let mut outer_shape = shape.to_vec();
    outer_shape[rank - 1] = last / v;
    let outer = auto_local_spatial(threads, &outer_shape);
    let mut inner_shape = vec![1; rank];
    inner_shape[rank - 1] = v;
    compose(&outer, &local(&inner_shape))
}

/// How many consecutive elements of the last axis a thread holds by default for a dtype of
/// `bits` bits: enough for one 128-bit access for byte-sized types (16 × i8, 8 × f16, 4 × f32),
/// and the fewest that fill whole 32-bit words for sub-byte types (8 × u4, 32 × u3, 16 × u6),
/// so that a row's elements come from aligned words without straddling; fewer when the extent
/// `last` does not allow it.
pub fn default_vector(bits: u32, last: usize) -> usize {
    let want = if bits % 8 == 0 { (128 / bits.max(8)) as usize } else { (32 / gcd_u32(bits, 32)) as usize };
    let mut v = want.min(last).max(1);
    while v > 1 && last % v != 0 {
        v -= 1;
    }
    v
}

fn gcd_u32(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd_u32(b, a % b) }
}

/// A layout padded with replication so it spans exactly `threads` threads; `None` when it needs
/// more threads than the block has or `threads` is not a multiple of its thread count.
pub fn fit_threads(layout: &RegisterLayout, threads: usize) -> Option<RegisterLayout> {
    let t = layout.num_threads();
    if t == threads {
        return Some(layout.clone());
    }
    if t > threads || threads % t != 0 {
        return None;
    }
    Some(compose(&RegisterLayout::replica(threads / t), layout))
}

/// The tile coordinates held in each slot, as functions of the thread index:
/// `coord[d](t, j) = local_coords[j][d] + Σ_terms ((t / below) % size) · stride`.
#[derive(Clone, Debug)]
pub struct ThreadMap {
    /// Tile shape.
    pub shape: Vec<usize>,
    /// Number of slots per thread.
    pub slots: usize,
    /// The slot-dependent part of each coordinate.
    pub local_coords: Vec<Vec<usize>>,
    /// Per dimension, the thread-dependent terms `(below, size, stride)`.
    pub thread_terms: Vec<Vec<(usize, usize, usize)>>,
    /// Replication digits `(below, size)`: a thread is the primary holder of its elements when
    /// all of these digits are 0.
    pub replicas: Vec<(usize, usize)>,
}

impl ThreadMap {
    /// The map of `layout`.
    pub fn new(layout: &RegisterLayout) -> ThreadMap {
        let modes = layout.mode_shape();
        let dims = layout.mode_dims();
        let rank = layout.rank();
        // Stride of each mode inside its dimension (product of the minor modes of that dim).
        let stride: Vec<usize> = (0..modes.len())
            .map(|m| ((m + 1)..modes.len()).take_while(|&n| dims[n] == dims[m]).map(|n| modes[n]).product())
            .collect();
        let mut thread_terms = vec![Vec::new(); rank];
        let mut replicas = Vec::new();
        let mut below = 1;
        for s in layout.spatial_modes().iter().rev() {
            match *s {
                SpatialMode::Mode(m) => {
                    thread_terms[dims[m]].push((below, modes[m], stride[m]));
                    below *= modes[m];
                }
                SpatialMode::Replica(k) => {
                    replicas.push((below, k));
                    below *= k;
                }
            }
        }
        let slots = layout.local_size();
        let local_coords = (0..slots)
            .map(|j| {
                let mut c = vec![0usize; rank];
                let mut i = j;
                for &m in layout.local_modes().iter().rev() {
                    c[dims[m]] += (i % modes[m]) * stride[m];
                    i /= modes[m];
                }
                c
            })
            .collect();
        ThreadMap { shape: layout.shape().to_vec(), slots, local_coords, thread_terms, replicas }
    }

    /// Coordinates of slot `j` for thread `t` (numeric; used for compile-time decisions).
    pub fn coords(&self, t: usize, j: usize) -> Vec<usize> {
        let mut c = self.local_coords[j].clone();
        for (d, terms) in self.thread_terms.iter().enumerate() {
            for &(below, size, stride) in terms {
                c[d] += ((t / below) % size) * stride;
            }
        }
        c
    }

    /// Whether thread `t` is the primary holder of its elements.
    pub fn is_primary(&self, t: usize) -> bool {
        self.replicas.iter().all(|&(below, size)| (t / below) % size == 0)
    }
}

/// Whether a reduction over `axis` of a tile in `layout` can run inside each warp: every
/// thread digit of the axis lies within the lanes of one warp with a power-of-two extent, so
/// the partial results of a thread's own slots combine by butterfly shuffles. `order_free`
/// says whether the operation may combine in any order (max, min, absmax, integer sums; a float
/// sum must keep the VM's index order).
pub fn warp_reducible(layout: &RegisterLayout, axis: usize, order_free: bool) -> bool {
    if !order_free || axis >= layout.rank() {
        return false;
    }
    let map = ThreadMap::new(layout);
    map.thread_terms[axis].iter().all(|&(below, size, _)| size.is_power_of_two() && below * size <= 32)
}

/// Row-major linear index of `c` in `shape`.
pub fn linear(c: &[usize], shape: &[usize]) -> usize {
    c.iter().zip(shape).fold(0, |acc, (&i, &n)| acc * n + i)
}

/// Coordinates of row-major linear index `e` in `shape`.
pub fn unravel(mut e: usize, shape: &[usize]) -> Vec<usize> {
    let mut c = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        c[d] = e % shape[d];
        e /= shape[d];
    }
    c
}

/// When every thread holds, for each of its destination slots, the source element that
/// `source_of` maps the destination coordinates to, in a source slot that is the same for every
/// thread, returns those source slots (one per destination slot): the conversion is then a
/// renaming of registers. `None` when data must move between threads.
pub fn local_remap(
    src: &RegisterLayout,
    dst: &RegisterLayout,
    threads: usize,
    source_of: &dyn Fn(&[usize]) -> Vec<usize>,
) -> Option<Vec<usize>> {
    let dmap = ThreadMap::new(dst);
    let smap = ThreadMap::new(src);
    // Invert the source map per thread lazily: (thread, coords) → slot, through owners().
    let mut slots = Vec::with_capacity(dmap.slots);
    for j in 0..dmap.slots {
        let mut chosen: Option<usize> = None;
        for t in 0..threads {
            let want = source_of(&dmap.coords(t, j));
            let (owners, slot) = src.owners(&want)?;
            if owners.binary_search(&t).is_err() {
                return None;
            }
            match chosen {
                None => chosen = Some(slot),
                Some(s) if s == slot => {}
                Some(_) => return None,
            }
        }
        slots.push(chosen?);
    }
    let _ = smap;
    Some(slots)
}

/// The layout `spatial(...)` helper re-exported for the mma fragments.
pub fn spatial_layout(shape: &[usize]) -> RegisterLayout {
    spatial(shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_map_agrees_with_global_index() {
        for (shape, threads, vec) in [(vec![64, 128], 128, 4), (vec![1, 1], 128, 1), (vec![16, 8], 32, 2), (vec![3, 5], 64, 1), (vec![128], 128, 8)] {
            let l = default_layout(&shape, threads, vec);
            let l = fit_threads(&l, threads).expect("fits");
            assert_eq!(l.num_threads(), threads, "{l}");
            let m = ThreadMap::new(&l);
            for t in 0..threads {
                for j in 0..m.slots {
                    assert_eq!(Some(m.coords(t, j)), l.global_index(t, j), "{l} t={t} j={j}");
                }
            }
        }
    }

    #[test]
    fn identical_layouts_remap_locally() {
        let l = default_layout(&[32, 64], 128, 4);
        let slots = local_remap(&l, &l, 128, &|c| c.to_vec()).expect("local");
        assert_eq!(slots, (0..slots.len()).collect::<Vec<_>>());
        // A transpose of a tile spread over threads is not local.
        let t = default_layout(&[64, 32], 128, 4);
        assert!(local_remap(&l, &t, 128, &|c| vec![c[1], c[0]]).is_none());
        // A broadcast of a replicated [1, 1] tile is local.
        let one = fit_threads(&default_layout(&[1, 1], 128, 1), 128).expect("fits");
        assert!(local_remap(&one, &l, 128, &|_| vec![0, 0]).is_some());
    }
}
