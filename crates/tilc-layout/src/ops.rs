//! Operations on [`RegisterLayout`] values beyond the product: `divide` / `left_divide` (the
//! inverse of `*`, asked by instruction selection), `reduce` / `reduce_to` (operand layouts of
//! reductions and broadcasts), and the shape operations `permute`, `reshape`, `flatten`,
//! `squeeze`, `unsqueeze`, `concat`. Each follows Tilus' definition (reference §3.3); each
//! returns a [`LayoutError`] naming the offending values instead of failing silently.

use crate::error::LayoutError;
use crate::register::{RegisterLayout, SpatialMode, compose, product};

fn not_divisible(lhs: &RegisterLayout, rhs: &RegisterLayout, reason: String) -> LayoutError {
    LayoutError::NotDivisible { layout: lhs.to_string(), atom: rhs.to_string(), reason }
}

/// Which side the divisor sits on.
#[derive(Clone, Copy, PartialEq)]
enum Side {
    /// `lhs = q * rhs`: the divisor's modes are suffixes.
    Right,
    /// `lhs = rhs * q`: the divisor's modes are prefixes.
    Left,
}

/// `divide(lhs, rhs)` (Tilus `lhs / rhs`): the `q` with `lhs = q * rhs`.
///
/// Per dimension, `rhs`'s modes must equal a suffix of `lhs`'s modes (the first `rhs` mode may
/// split an `lhs` mode `p` into `(p / r, r)`, undoing a merge of canonicalization), and `rhs`'s
/// spatial and local lists must be suffixes of `lhs`'s; `q` keeps the prefixes.
pub fn divide(lhs: &RegisterLayout, rhs: &RegisterLayout) -> Result<RegisterLayout, LayoutError> {
    divide_on(lhs, rhs, Side::Right)
}

/// `left_divide(lhs, rhs)`: the `q` with `lhs = rhs * q` (prefix version of [`divide`]).
pub fn left_divide(lhs: &RegisterLayout, rhs: &RegisterLayout) -> Result<RegisterLayout, LayoutError> {
    divide_on(lhs, rhs, Side::Left)
}

fn divide_on(lhs: &RegisterLayout, rhs: &RegisterLayout, side: Side) -> Result<RegisterLayout, LayoutError> {
    let fail = |reason: String| Err(not_divisible(lhs, rhs, reason));
    if rhs.rank() > lhs.rank() {
        return fail(format!("the divisor has rank {} > {}", rhs.rank(), lhs.rank()));
    }
    let rank = lhs.rank();
    let r = rhs.padded_to(rank);
    for d in 0..rank {
        if lhs.shape()[d] % r.shape()[d] != 0 {
            return fail(format!(
                "extent {} of dimension {d} is not a multiple of {}",
                lhs.shape()[d],
                r.shape()[d]
            ));
        }
    }
    // New mode table: every lhs mode, split in two where the divisor cuts it.
    let mut modes: Vec<(usize, usize)> = Vec::new();
    let mut lhs_pieces: Vec<Vec<usize>> = vec![Vec::new(); lhs.mode_shape().len()];
    let mut rhs_map = vec![usize::MAX; r.mode_shape().len()];
    for d in 0..rank {
        let lm = lhs.dim_modes(d);
        let rm = r.dim_modes(d);
        if rm.len() > lm.len() {
            return fail(format!("dimension {d} has fewer modes than the divisor's"));
        }
        let size_l = |m: usize| lhs.mode_shape()[m];
        let size_r = |m: usize| r.mode_shape()[m];
        // Positions in lm matched by rm, and the one that may be cut.
        let offset = match side {
            Side::Right => lm.len() - rm.len(),
            Side::Left => 0,
        };
        let cut = match side {
            Side::Right => 0,
            Side::Left => rm.len().wrapping_sub(1),
        };
        for (j, &rmode) in rm.iter().enumerate() {
            let lmode = lm[offset + j];
            let ok = if j == cut { size_l(lmode) % size_r(rmode) == 0 } else { size_l(lmode) == size_r(rmode) };
            if !ok {
                return fail(format!(
                    "in dimension {d}, mode {} of the layout does not match mode {} of the divisor",
                    size_l(lmode),
                    size_r(rmode)
                ));
            }
        }
        for (pos, &lmode) in lm.iter().enumerate() {
            let in_rhs = pos >= offset && pos < offset + rm.len();
            if !in_rhs {
                lhs_pieces[lmode].push(modes.len());
                modes.push((d, size_l(lmode)));
                continue;
            }
            let rmode = rm[pos - offset];
            let rest = size_l(lmode) / size_r(rmode);
            // Major first: a right divisor owns the minor piece, a left divisor the major one.
            let (major, minor, rhs_is_major) = match side {
                Side::Right => (rest, size_r(rmode), false),
                Side::Left => (size_r(rmode), rest, true),
            };
            for (k, size) in [major, minor].into_iter().enumerate() {
                if size == 1 && !((k == 0) == rhs_is_major) {
                    continue; // an exact match: no quotient piece
                }
                if (k == 0) == rhs_is_major {
                    rhs_map[rmode] = modes.len();
                }
                lhs_pieces[lmode].push(modes.len());
                modes.push((d, size));
            }
        }
    }
    let expand_spatial: Vec<SpatialMode> = lhs
        .spatial_modes()
        .iter()
        .flat_map(|s| match *s {
            SpatialMode::Mode(m) => lhs_pieces[m].iter().map(|&p| SpatialMode::Mode(p)).collect(),
            rep => vec![rep],
        })
        .collect();
    let expand_local: Vec<usize> = lhs.local_modes().iter().flat_map(|&m| lhs_pieces[m].clone()).collect();
    let rhs_spatial: Vec<SpatialMode> = r
        .spatial_modes()
        .iter()
        .map(|s| match *s {
            SpatialMode::Mode(m) => SpatialMode::Mode(rhs_map[m]),
            rep => rep,
        })
        .collect();
    let rhs_local: Vec<usize> = r.local_modes().iter().map(|&m| rhs_map[m]).collect();
    let q_spatial = match strip(&expand_spatial, &rhs_spatial, side) {
        Some(q) => q,
        None => return fail("the divisor's thread order is not a part of the layout's".into()),
    };
    let q_local = match strip(
        &expand_local.iter().map(|&m| SpatialMode::Mode(m)).collect::<Vec<_>>(),
        &rhs_local.iter().map(|&m| SpatialMode::Mode(m)).collect::<Vec<_>>(),
        side,
    ) {
        Some(q) => q,
        None => return fail("the divisor's register order is not a part of the layout's".into()),
    };
    // Renumber the quotient's modes.
    let in_rhs: Vec<bool> = {
        let mut v = vec![false; modes.len()];
        for &m in &rhs_map {
            v[m] = true;
        }
        v
    };
    let mut q_id = vec![usize::MAX; modes.len()];
    let mut q_modes = Vec::new();
    for (m, &(d, s)) in modes.iter().enumerate() {
        if !in_rhs[m] {
            q_id[m] = q_modes.len();
            q_modes.push((d, s));
        }
    }
    let mut spatial = Vec::new();
    for s in q_spatial {
        match s {
            SpatialMode::Mode(m) if in_rhs[m] => return fail("the thread orders interleave".into()),
            SpatialMode::Mode(m) => spatial.push(SpatialMode::Mode(q_id[m])),
            rep => spatial.push(rep),
        }
    }
    let mut local = Vec::new();
    for s in q_local {
        match s {
            SpatialMode::Mode(m) if in_rhs[m] => return fail("the register orders interleave".into()),
            SpatialMode::Mode(m) => local.push(q_id[m]),
            SpatialMode::Replica(_) => unreachable!("local lists hold no replication"),
        }
    }
    let shape = (0..rank).map(|d| lhs.shape()[d] / r.shape()[d]).collect();
    let q = RegisterLayout::from_raw(shape, q_modes, spatial, local);
    let back = match side {
        Side::Right => compose(&q, rhs),
        Side::Left => compose(rhs, &q),
    };
    if &back != lhs {
        return fail("no quotient reproduces the layout".into());
    }
    Ok(q)
}

/// Removes `part` from the end (Right) or start (Left) of `list`; the replication entry at the
/// cut may be split (`Replica(a·b)` = `Replica(a), Replica(b)`).
fn strip(list: &[SpatialMode], part: &[SpatialMode], side: Side) -> Option<Vec<SpatialMode>> {
    if part.is_empty() {
        return Some(list.to_vec());
    }
    if part.len() > list.len() {
        return None;
    }
    match side {
        Side::Right => {
            let start = list.len() - part.len();
            if list[start + 1..] != part[1..] {
                return None;
            }
            let mut q = list[..start].to_vec();
            match (list[start], part[0]) {
                (a, b) if a == b => {}
                (SpatialMode::Replica(a), SpatialMode::Replica(b)) if a % b == 0 => {
                    q.push(SpatialMode::Replica(a / b))
                }
                _ => return None,
            }
            Some(q)
        }
        Side::Left => {
            let end = part.len() - 1;
            if list[..end] != part[..end] {
                return None;
            }
            let mut q = Vec::new();
            match (list[end], part[end]) {
                (a, b) if a == b => {}
                (SpatialMode::Replica(a), SpatialMode::Replica(b)) if a % b == 0 => {
                    q.push(SpatialMode::Replica(a / b))
                }
                _ => return None,
            }
            q.extend_from_slice(&list[end + 1..]);
            Some(q)
        }
    }
}

fn bad(op: &'static str, reason: String) -> LayoutError {
    LayoutError::BadShape { op, reason }
}

/// `reduce(layout, dims, keepdims)`: the layout of the result of reducing `dims`. Their modes
/// leave the layout: local occurrences are dropped, spatial ones become replications (the
/// threads that held different elements now hold the same reduced element).
pub fn reduce(layout: &RegisterLayout, dims: &[usize], keepdims: bool) -> Result<RegisterLayout, LayoutError> {
    if let Some(d) = dims.iter().find(|&&d| d >= layout.rank()) {
        return Err(bad("reduce", format!("dimension {d} out of range for rank {}", layout.rank())));
    }
    let reduced = |d: usize| dims.contains(&d);
    let new_dim = |d: usize| if keepdims { d } else { d - (0..d).filter(|&e| reduced(e)).count() };
    let mut id = vec![usize::MAX; layout.mode_shape().len()];
    let mut modes = Vec::new();
    for (m, (&d, &s)) in layout.mode_dims().iter().zip(layout.mode_shape()).enumerate() {
        if !reduced(d) {
            id[m] = modes.len();
            modes.push((new_dim(d), s));
        }
    }
    let spatial = layout
        .spatial_modes()
        .iter()
        .map(|s| match *s {
            SpatialMode::Mode(m) if id[m] == usize::MAX => SpatialMode::Replica(layout.mode_shape()[m]),
            SpatialMode::Mode(m) => SpatialMode::Mode(id[m]),
            rep => rep,
        })
        .collect();
    let local = layout.local_modes().iter().filter(|&&m| id[m] != usize::MAX).map(|&m| id[m]).collect();
    let shape = (0..layout.rank())
        .filter(|&d| keepdims || !reduced(d))
        .map(|d| if reduced(d) { 1 } else { layout.shape()[d] })
        .collect();
    Ok(RegisterLayout::from_raw(shape, modes, spatial, local))
}

/// `reduce_to(layout, shape)`: the layout of an operand of shape `shape` broadcast to `layout`'s
/// shape (NumPy rules: `shape` is left-padded with 1s; every dimension must equal the layout's
/// or be 1, and those of extent 1 are reduced).
pub fn reduce_to(layout: &RegisterLayout, shape: &[usize]) -> Result<RegisterLayout, LayoutError> {
    if shape.len() > layout.rank() {
        return Err(bad("reduce_to", format!("{shape:?} has a higher rank than {:?}", layout.shape())));
    }
    let extra = layout.rank() - shape.len();
    let mut dims = Vec::new();
    for d in 0..layout.rank() {
        let want = if d < extra { 1 } else { shape[d - extra] };
        if want == 1 && layout.shape()[d] != 1 {
            dims.push(d);
        } else if want != layout.shape()[d] {
            return Err(bad(
                "reduce_to",
                format!("{shape:?} does not broadcast to {:?} (dimension {d})", layout.shape()),
            ));
        }
    }
    let kept = reduce(layout, &dims, true)?;
    squeeze(&kept, &(0..extra).collect::<Vec<_>>())
}

/// `permute(layout, dims)`: dimension `k` of the result is dimension `dims[k]` of `layout`;
/// which thread and slot hold an element does not change.
pub fn permute(layout: &RegisterLayout, dims: &[usize]) -> Result<RegisterLayout, LayoutError> {
    let rank = layout.rank();
    let mut inv = vec![usize::MAX; rank];
    if dims.len() != rank {
        return Err(bad("permute", format!("{dims:?} is not a permutation of {rank} dimensions")));
    }
    for (k, &d) in dims.iter().enumerate() {
        if d >= rank || inv[d] != usize::MAX {
            return Err(bad("permute", format!("{dims:?} is not a permutation of {rank} dimensions")));
        }
        inv[d] = k;
    }
    let mut order: Vec<usize> = (0..layout.mode_shape().len()).collect();
    order.sort_by_key(|&m| (inv[layout.mode_dims()[m]], m));
    let mut id = vec![0; order.len()];
    let modes = order
        .iter()
        .enumerate()
        .map(|(new, &m)| {
            id[m] = new;
            (inv[layout.mode_dims()[m]], layout.mode_shape()[m])
        })
        .collect();
    let spatial = layout
        .spatial_modes()
        .iter()
        .map(|s| match *s {
            SpatialMode::Mode(m) => SpatialMode::Mode(id[m]),
            rep => rep,
        })
        .collect();
    let local = layout.local_modes().iter().map(|&m| id[m]).collect();
    let shape = dims.iter().map(|&d| layout.shape()[d]).collect();
    Ok(RegisterLayout::from_raw(shape, modes, spatial, local))
}

/// `reshape(layout, shape)`: the same threads and slots over a re-shaped (row-major) tile. Only
/// re-grouping or splitting modes is possible; otherwise an error says which mode is cut.
pub fn reshape(layout: &RegisterLayout, shape: &[usize]) -> Result<RegisterLayout, LayoutError> {
    if product(shape) != layout.num_elements() || shape.contains(&0) {
        return Err(bad("reshape", format!("{:?} and {shape:?} have different sizes", layout.shape())));
    }
    let sizes = layout.mode_shape();
    let mut pieces: Vec<Vec<usize>> = vec![Vec::new(); sizes.len()];
    let mut modes = Vec::new();
    let mut m = 0;
    let mut left = sizes.first().copied().unwrap_or(1);
    for (d, &extent) in shape.iter().enumerate() {
        let mut need = extent;
        while need > 1 {
            if left == 1 {
                m += 1;
                left = sizes[m];
                continue;
            }
            let take = if need % left == 0 {
                left
            } else if left % need == 0 {
                need
            } else {
                return Err(bad(
                    "reshape",
                    format!(
                        "{:?} → {shape:?} would cut a mode of size {} across dimensions",
                        layout.shape(),
                        sizes[m]
                    ),
                ));
            };
            pieces[m].push(modes.len());
            modes.push((d, take));
            need /= take;
            left /= take;
        }
    }
    let spatial = layout
        .spatial_modes()
        .iter()
        .flat_map(|s| match *s {
            SpatialMode::Mode(m) => pieces[m].iter().map(|&p| SpatialMode::Mode(p)).collect(),
            rep => vec![rep],
        })
        .collect();
    let local = layout.local_modes().iter().flat_map(|&m| pieces[m].clone()).collect();
    Ok(RegisterLayout::from_raw(shape.to_vec(), modes, spatial, local))
}

/// `flatten(layout)`: reshape to one dimension.
pub fn flatten(layout: &RegisterLayout) -> RegisterLayout {
    reshape(layout, &[layout.num_elements()]).expect("merging all dimensions never cuts a mode")
}

/// `squeeze(layout, dims)`: removes dimensions of extent 1.
pub fn squeeze(layout: &RegisterLayout, dims: &[usize]) -> Result<RegisterLayout, LayoutError> {
    for &d in dims {
        if d >= layout.rank() || layout.shape()[d] != 1 {
            return Err(bad("squeeze", format!("dimension {d} of {:?} is not of extent 1", layout.shape())));
        }
    }
    let keep: Vec<usize> = (0..layout.rank()).filter(|d| !dims.contains(d)).collect();
    let shape = keep.iter().map(|&d| layout.shape()[d]).collect();
    let modes = layout
        .mode_dims()
        .iter()
        .zip(layout.mode_shape())
        .map(|(&d, &s)| (keep.iter().position(|&k| k == d).expect("modes live in kept dims"), s))
        .collect();
    Ok(RegisterLayout::from_raw(shape, modes, layout.spatial_modes().to_vec(), layout.local_modes().to_vec()))
}

/// `unsqueeze(layout, dims)`: inserts dimensions of extent 1 at positions `dims` of the result.
pub fn unsqueeze(layout: &RegisterLayout, dims: &[usize]) -> Result<RegisterLayout, LayoutError> {
    let rank = layout.rank() + dims.len();
    let mut old_of_new = Vec::new();
    let mut next_old = 0;
    for d in 0..rank {
        if dims.contains(&d) {
            old_of_new.push(None);
        } else {
            old_of_new.push(Some(next_old));
            next_old += 1;
        }
    }
    if next_old != layout.rank() || dims.iter().any(|&d| d >= rank) {
        return Err(bad("unsqueeze", format!("positions {dims:?} do not fit rank {rank}")));
    }
    let new_of_old: Vec<usize> =
        (0..rank).filter(|&d| old_of_new[d].is_some()).collect();
    let shape = old_of_new.iter().map(|o| o.map_or(1, |d| layout.shape()[d])).collect();
    let modes = layout.mode_dims().iter().zip(layout.mode_shape()).map(|(&d, &s)| (new_of_old[d], s)).collect();
    Ok(RegisterLayout::from_raw(shape, modes, layout.spatial_modes().to_vec(), layout.local_modes().to_vec()))
}

/// `concat(a, b)`: shape `a.shape ++ b.shape`, thread `t_a·T_b + t_b`, slot `i_a·m_b + i_b` —
/// the product on disjoint dimensions.
pub fn concat(a: &RegisterLayout, b: &RegisterLayout) -> RegisterLayout {
    let trailing: Vec<usize> = (a.rank()..a.rank() + b.rank()).collect();
    let a_wide = unsqueeze(a, &trailing).expect("trailing positions always fit");
    compose(&a_wide, b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::register::{column_spatial, local, spatial};

    #[test]
    fn divide_undoes_a_merge() {
        let l = spatial(&[32, 4]);
        assert_eq!(divide(&l, &spatial(&[8, 4])).unwrap(), spatial(&[4, 1]));
        assert_eq!(left_divide(&l, &spatial(&[4, 1])).unwrap(), spatial(&[8, 4]));
        assert!(divide(&l, &column_spatial(&[8, 4])).is_err());
    }

    #[test]
    fn reduce_turns_spatial_modes_into_replication() {
        // Tilus: reduce(spatial(3,4), dims=[0]) = shape [4], spatial [-3, 0].
        let r = reduce(&spatial(&[3, 4]), &[0], false).unwrap();
        assert_eq!(r.shape(), &[4]);
        assert_eq!(r.spatial_modes(), &[SpatialMode::Replica(3), SpatialMode::Mode(0)]);
        assert_eq!(r.owners(&[1]).unwrap().0, vec![1, 5, 9]);
        let lr = reduce(&(&local(&[2, 1]) * &spatial(&[8, 4])), &[1], true).unwrap();
        assert_eq!(lr.shape(), &[16, 1]);
        assert_eq!(lr.replication(), 4);
    }

    #[test]
    fn reshape_splits_and_regroups() {
        let l = &spatial(&[4, 8]) * &local(&[1, 2]);
        let f = flatten(&l);
        assert_eq!(f.shape(), &[64]);
        assert_eq!(reshape(&f, &[4, 16]).unwrap(), l);
        assert!(reshape(&spatial(&[2, 3]), &[3, 2]).is_err());
    }
}
