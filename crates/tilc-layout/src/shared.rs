//! Shared-memory layouts: logical index → element offset, as strides over modes followed by an
//! optional XOR swizzle (CuTe's `Swizzle<bits, base, shift>`), and a bank-conflict count for a
//! warp's access pattern so that the effect of a swizzle can be measured, not asserted.
//!
//! Offsets are in elements; the swizzle acts on element offsets (byte-level swizzles are the
//! same with `base` shifted by `log2(element bytes)`).

use crate::error::LayoutError;
use crate::register::product;

/// `off ^ ((off & (((1 << bits) - 1) << (base + shift))) >> shift)`: XORs the `bits` bits at
/// `base + shift` (typically the row) into the `bits` bits at `base` (the 16-byte column).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Swizzle {
    /// Number of bits permuted.
    pub bits: u32,
    /// Position of the lowest permuted bit (elements per unit = `1 << base`).
    pub base: u32,
    /// Distance from the permuted bits to the bits that permute them.
    pub shift: u32,
}

impl Swizzle {
    /// Applies the swizzle to an offset.
    pub fn apply(&self, offset: usize) -> usize {
        let mask = ((1usize << self.bits) - 1) << (self.base + self.shift);
        offset ^ ((offset & mask) >> self.shift)
    }
}

/// A shared-memory layout.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SharedLayout {
    shape: Vec<usize>,
    /// (dimension, size, stride) of every mode, sorted by dimension, major first.
    modes: Vec<(usize, usize, usize)>,
    swizzle: Option<Swizzle>,
}

impl SharedLayout {
    /// One mode per dimension with the given strides.
    pub fn strided(shape: &[usize], strides: &[usize]) -> Result<SharedLayout, LayoutError> {
        if shape.len() != strides.len() {
            return Err(LayoutError::BadShape { op: "shared layout", reason: "one stride per dimension".into() });
        }
        let modes = (0..shape.len()).map(|d| (d, shape[d], strides[d])).collect();
        Ok(SharedLayout { shape: shape.to_vec(), modes, swizzle: None })
    }
    /// Compact row-major.
    pub fn row_major(shape: &[usize]) -> SharedLayout {
        let mut strides = vec![1; shape.len()];
        for d in (0..shape.len().saturating_sub(1)).rev() {
            strides[d] = strides[d + 1] * shape[d + 1];
        }
        SharedLayout::strided(shape, &strides).expect("one stride per dimension")
    }
    /// Compact column-major.
    pub fn column_major(shape: &[usize]) -> SharedLayout {
        let mut strides = vec![1; shape.len()];
        for d in 1..shape.len() {
            strides[d] = strides[d - 1] * shape[d - 1];
        }
        SharedLayout::strided(shape, &strides).expect("one stride per dimension")
    }
    /// Row-major `[rows, cols]` with the 16-byte column unit XORed with the row (Tilus
    /// `shared_row_major_swizzle`), so that row-wise stores and `ldmatrix` column reads are both
    /// free of bank conflicts. Needs power-of-two `cols` with rows of at least 16 bytes.
    pub fn row_major_swizzled(rows: usize, cols: usize, elem_bytes: usize) -> Result<SharedLayout, LayoutError> {
        let bad = |reason: String| LayoutError::BadShape { op: "row_major_swizzled", reason };
        if !cols.is_power_of_two() || !elem_bytes.is_power_of_two() || elem_bytes > 16 || cols * elem_bytes < 16 {
            return Err(bad(format!("{cols} columns of {elem_bytes} bytes cannot be swizzled")));
        }
        let unit = 16 / elem_bytes; // elements per 16-byte unit
        let base = unit.trailing_zeros();
        let units_per_row = cols / unit;
        // 8 units of 16 bytes span all 32 banks: permute up to 3 bits.
        let bits = units_per_row.min(8).trailing_zeros();
        // Rows shorter than 128 bytes share a bank line; take the row bits above that line.
        let rows_per_line = (8 / units_per_row).max(1);
        let shift = cols.trailing_zeros() + rows_per_line.trailing_zeros() - base;
        let mut l = SharedLayout::row_major(&[rows, cols]);
        l.swizzle = Some(Swizzle { bits, base, shift });
        Ok(l)
    }
    /// This layout with a swizzle applied after the strides.
    pub fn with_swizzle(mut self, swizzle: Swizzle) -> SharedLayout {
        self.swizzle = Some(swizzle);
        self
    }
    /// Tile shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    /// The swizzle, if any.
    pub fn swizzle(&self) -> Option<Swizzle> {
        self.swizzle
    }
    /// Elements spanned (the largest offset + 1, before swizzling).
    pub fn cosize(&self) -> usize {
        1 + self.modes.iter().map(|&(_, s, st)| (s - 1) * st).sum::<usize>()
    }
    /// The element offset of a logical index.
    pub fn offset(&self, index: &[usize]) -> usize {
        let mut off = 0;
        for d in 0..self.shape.len() {
            let modes: Vec<_> = self.modes.iter().filter(|m| m.0 == d).collect();
            let mut rest = index[d];
            for &&(_, size, stride) in modes.iter().rev() {
                off += (rest % size) * stride;
                rest /= size;
            }
        }
        self.swizzle.map_or(off, |s| s.apply(off))
    }
    /// Number of elements.
    pub fn num_elements(&self) -> usize {
        product(&self.shape)
    }
}

/// Extra shared-memory wavefronts caused by bank conflicts when the threads of one warp access
/// `accesses[t]` (the logical index of thread `t`'s first element), each reading or writing
/// `access_bytes` contiguous bytes (4, 8 or 16) of elements of `elem_bytes` bytes.
///
/// Model: 32 banks of 4 bytes; a warp's request is served in phases of `128 / access_bytes`
/// threads; within a phase a bank delivering `w` different 4-byte words costs `w` wavefronts.
/// The result is Σ over phases of (wavefronts − 1): 0 means conflict-free.
pub fn bank_conflicts(layout: &SharedLayout, accesses: &[Vec<usize>], elem_bytes: usize, access_bytes: usize) -> usize {
    let per_phase = (128 / access_bytes.max(4)).max(1);
    let mut extra = 0;
    for phase in accesses.chunks(per_phase) {
        let mut words: Vec<Vec<usize>> = vec![Vec::new(); 32];
        for index in phase {
            let byte = layout.offset(index) * elem_bytes;
            for w in (byte / 4)..(byte + access_bytes).div_ceil(4) {
                let bank = &mut words[w % 32];
                if !bank.contains(&w) {
                    bank.push(w);
                }
            }
        }
        let wavefronts = words.iter().map(Vec::len).max().unwrap_or(0).max(1);
        extra += wavefronts - 1;
    }
    extra
}

/// The addresses of an `ldmatrix.x4` over a `[rows, cols]` tile: lane `l` gives the row start
/// of row `l mod 8` of matrix `l / 8`, the matrices being the 16-byte column units `c0..c0+4`
/// of rows `r0..r0+8`.
pub fn ldmatrix_x4_rows(r0: usize, c0_unit: usize, elem_bytes: usize) -> Vec<Vec<usize>> {
    let unit = 16 / elem_bytes;
    (0..32).map(|l| vec![r0 + l % 8, (c0_unit + l / 8) * unit]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swizzle_matches_cute_333() {
        let s = Swizzle { bits: 3, base: 3, shift: 3 };
        // Row 1 (offset 64..), unit 0 → unit 1.
        assert_eq!(s.apply(64), 72);
        assert_eq!(s.apply(64 * 5 + 8 * 2 + 3), 64 * 5 + 8 * (2 ^ 5) + 3);
        assert_eq!(s.apply(7), 7);
    }

    #[test]
    fn row_major_and_column_major_offsets() {
        let r = SharedLayout::row_major(&[4, 8]);
        assert_eq!(r.offset(&[2, 3]), 19);
        let c = SharedLayout::column_major(&[4, 8]);
        assert_eq!(c.offset(&[2, 3]), 14);
        assert_eq!(c.cosize(), 32);
    }

    #[test]
    fn swizzle_removes_ldmatrix_conflicts() {
        // f16 tile of 64 columns (128-byte rows): ldmatrix reads one 16-byte unit of 8 rows.
        let plain = SharedLayout::row_major(&[64, 64]);
        let swizzled = SharedLayout::row_major_swizzled(64, 64, 2).unwrap();
        let reads = ldmatrix_x4_rows(0, 0, 2);
        assert_eq!(bank_conflicts(&plain, &reads, 2, 16), 4 * 7);
        assert_eq!(bank_conflicts(&swizzled, &reads, 2, 16), 0);
        // Row-wise 16-byte stores stay conflict-free under the swizzle.
        let stores: Vec<Vec<usize>> = (0..32).map(|l| vec![l / 8, (l % 8) * 8]).collect();
        assert_eq!(bank_conflicts(&plain, &stores, 2, 16), 0);
        assert_eq!(bank_conflicts(&swizzled, &stores, 2, 16), 0);
        // 64-byte rows (f16, 32 columns): two rows per bank line.
        let narrow = SharedLayout::row_major_swizzled(64, 32, 2).unwrap();
        assert_eq!(bank_conflicts(&SharedLayout::row_major(&[64, 32]), &reads, 2, 16), 4 * 3);
        assert_eq!(bank_conflicts(&narrow, &reads, 2, 16), 0);
    }

    #[test]
    fn swizzle_is_a_permutation_of_the_tile() {
        let s = SharedLayout::row_major_swizzled(32, 64, 2).unwrap();
        let mut seen = vec![false; s.num_elements()];
        for r in 0..32 {
            for c in 0..64 {
                let o = s.offset(&[r, c]);
                assert!(!std::mem::replace(&mut seen[o], true));
            }
        }
    }
}
