//! `copy_async` (a global tile into shared memory) as `cp.async`, and its groups.
//!
//! The VM reads the global tile when the copy is issued and lands it in shared memory at the
//! `copy_async_wait` that retires its group; `cp.async` has the same meaning, and the emulator
//! checks that nothing touches the destination bytes before the wait. Each thread copies runs
//! of consecutive elements of the last axis, `size` bytes (16, else 4) per instruction, when a
//! block-uniform test shows every run aligned in both tensors: the global row length and column
//! offset and the shared column offset are multiples of the run (the shared row length is
//! checked at compile time). A run then lies wholly inside or wholly outside the tensor, and
//! an outside run reads 0 bytes and is zero-filled (`src_size`), as the VM's masking says.
//! Otherwise the copy is performed synchronously when issued, element by element.
//!
//! `copy_async_commit` is `cp.async.commit_group`; `copy_async_wait n` is
//! `cp.async.wait_group n` followed by a barrier, because the VM's wait makes the data visible
//! to the whole block, while `cp.async` makes it visible to the issuing thread only.

use super::{Lx, R};
use crate::layout::{ThreadMap, default_layout};
use std::cell::RefCell;
use tilc_base::Span;
use tilc_simt::{self as simt, BinaryOp as SB, Builder, CmpOp, Space};
use tilc_vm as vm;

/// The `cp.async` sizes tried, widest first; 8 bytes adds little between 16 and 4.
const SIZES: [u32; 2] = [16, 4];

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// One `cp.async` version: instructions of `size` bytes, runs of `run` elements (a whole number
/// of `size`-byte pieces).
#[derive(Clone, Copy, Debug)]
struct Version {
    size: u32,
    run: usize,
}

/// `copy_async global[offsets] → shared[shared_offsets]` of `shape`.
pub(super) fn copy_async(lx: &mut Lx<'_>, g: vm::Global, offsets: &[vm::Value], sh: vm::Value, shared_offsets: &[vm::Value], shape: &[usize], span: Span) -> R<()> {
    let d = lx.k.globals[g].dtype;
    let (_, tt) = lx.shared_of_value(sh, span)?;
    let bits = d.bits() as usize;
    let last = shape.len() - 1;
    let shared_row = tt.shape[tt.shape.len() - 1];
    let versions: Vec<Version> = SIZES
        .iter()
        .map(|&size| Version { size, run: 8 * size as usize / gcd(8 * size as usize, bits) })
        .filter(|v| shape[last].is_multiple_of(v.run) && (shared_row * bits).is_multiple_of(8 * v.size as usize))
        .collect();
    let goffs: Vec<simt::Value> = offsets.iter().map(|&o| lx.scalar(o, span)).collect::<R<_>>()?;
    let soffs: Vec<simt::Value> = shared_offsets.iter().map(|&o| lx.scalar(o, span)).collect::<R<_>>()?;
    let gext = lx.global_shape(g, span)?;
    let args = Args { g, sh, goffs, soffs, gext, shape: shape.to_vec(), span };
    versioned(lx, &args, &versions)
}

/// The operands of one copy, lowered.
struct Args {
    g: vm::Global,
    sh: vm::Value,
    goffs: Vec<simt::Value>,
    soffs: Vec<simt::Value>,
    gext: Vec<simt::Value>,
    shape: Vec<usize>,
    span: Span,
}

/// `if aligned(versions[0]) { cp.async } else { versioned(rest) }`, ending with the
/// synchronous copy.
fn versioned(lx: &mut Lx<'_>, a: &Args, versions: &[Version]) -> R<()> {
    let Some((&v, rest)) = versions.split_first() else {
        return synchronous(lx, a);
    };
    let run = lx.i64c(v.run as i64);
    let (glast, slast) = (a.goffs.len() - 1, a.soffs.len() - 1);
    let row = lx.b.binary(SB::RemS, a.gext[glast], run);
    let goff = lx.to_i64(a.goffs[glast]);
    let col = lx.b.binary(SB::RemS, goff, run);
    let soff = lx.to_i64(a.soffs[slast]);
    let scol = lx.b.binary(SB::RemS, soff, run);
    let any = lx.b.binary(SB::Or, row, col);
    let any = lx.b.binary(SB::Or, any, scol);
    let z = lx.i64c(0);
    let aligned = lx.b.cmp(CmpOp::Eq, any, z);
    let (mut then_r, mut else_r) = (Ok(()), Ok(()));
    branch(lx, aligned, |lx| then_r = cp_async(lx, a, v), |lx| else_r = versioned(lx, a, rest));
    then_r.and(else_r)
}

/// Emits `if cond { then_ } else { else_ }` with `lx`'s builder inside each branch.
fn branch(lx: &mut Lx<'_>, cond: simt::Value, then_: impl FnOnce(&mut Lx<'_>), else_: impl FnOnce(&mut Lx<'_>)) {
    let mut outer = std::mem::replace(&mut lx.b, Builder::new("", [1, 1, 1]));
    let cell = RefCell::new(&mut *lx);
    outer.if_else(
        cond,
        &[],
        |b| {
            let mut lx = cell.borrow_mut();
            std::mem::swap(b, &mut lx.b);
            then_(&mut lx);
            std::mem::swap(b, &mut lx.b);
            vec![]
        },
        |b| {
            let mut lx = cell.borrow_mut();
            std::mem::swap(b, &mut lx.b);
            else_(&mut lx);
            std::mem::swap(b, &mut lx.b);
            vec![]
        },
    );
    lx.b = outer;
}

/// The copy as `cp.async`s of `v.size` bytes, runs of `v.run` elements per thread, issued by the
/// primary holder of each run.
fn cp_async(lx: &mut Lx<'_>, a: &Args, v: Version) -> R<()> {
    let d = lx.k.globals[a.g].dtype;
    let bits = d.bits() as i64;
    let (sbase, tt) = lx.shared_of_value(a.sh, a.span)?;
    let layout = default_layout(&a.shape, lx.threads, v.run);
    let map = ThreadMap::new(&layout);
    let sext: Vec<simt::Value> = tt.shape.iter().map(|&n| lx.i64c(n as i64)).collect();
    let gbase = lx.globals[&a.g];
    let primary = lx.primary_pred(&map);
    let src = lx.placer(&map, &a.goffs, &a.gext, true);
    let dst = lx.placer(&map, &a.soffs, &sext, false);
    let pieces = v.run as i64 * bits / (8 * i64::from(v.size));
    let issue = |lx: &mut Lx<'_>| {
        for r in 0..map.slots / v.run {
            let (inside, glin) = lx.place(&src, r * v.run);
            let (_, slin) = lx.place(&dst, r * v.run);
            let bc = lx.i64c(bits);
            let eight = lx.i64c(8);
            let gbits = lx.b.mul(glin, bc);
            let gbyte = lx.b.binary(SB::DivU, gbits, eight);
            let sbits = lx.b.mul(slin, bc);
            let sbyte = lx.b.binary(SB::DivU, sbits, eight);
            // An outside run reads nothing, from the tensor's (valid, aligned) base.
            let (gbyte, src_size) = match inside {
                Some(p) => {
                    let z = lx.i64c(0);
                    let off = lx.b.select(p, gbyte, z);
                    let full = lx.i32c(i64::from(v.size));
                    let none = lx.i32c(0);
                    (off, Some(lx.b.select(p, full, none)))
                }
                None => (gbyte, None),
            };
            for piece in 0..pieces {
                let o = lx.i64c(piece * i64::from(v.size));
                let go = lx.b.add(gbyte, o);
                let so = lx.b.add(sbyte, o);
                let srcp = lx.b.ptr_add(gbase, go);
                let dstp = lx.shared_ptr(sbase, so);
                lx.b.cp_async(dstp, srcp, v.size, src_size);
            }
        }
    };
    match primary {
        None => issue(lx),
        Some(p) => branch(lx, p, issue, |_| {}),
    }
    Ok(())
}

/// The copy performed when issued: every element of the global tile (zero outside the tensor)
/// written to its place in shared memory; the wait's barrier publishes it.
fn synchronous(lx: &mut Lx<'_>, a: &Args) -> R<()> {
    let d = lx.k.globals[a.g].dtype;
    let (sbase, tt) = lx.shared_of_value(a.sh, a.span)?;
    let layout = lx.default_layout_for(d, &a.shape);
    let map = ThreadMap::new(&layout);
    let sext: Vec<simt::Value> = tt.shape.iter().map(|&n| lx.i64c(n as i64)).collect();
    let gbase = lx.globals[&a.g];
    let primary = lx.primary_pred(&map);
    let src = lx.placer(&map, &a.goffs, &a.gext, true);
    let dst = lx.placer(&map, &a.soffs, &sext, false);
    for j in 0..map.slots {
        let (mask, glin) = lx.place(&src, j);
        let (_, slin) = lx.place(&dst, j);
        let code = lx.read_code(Space::Global, Some(gbase), 0, d, glin, mask);
        lx.write_code(Space::Shared, None, sbase, d, slin, code, primary);
    }
    Ok(())
}

/// `copy_async_commit`.
pub(super) fn commit(lx: &mut Lx<'_>) {
    lx.b.cp_async_commit();
}

/// `copy_async_wait pending`: this thread's copies of the older groups land, then the barrier
/// makes every thread's visible to the block.
pub(super) fn wait(lx: &mut Lx<'_>, pending: u32) {
    lx.b.cp_async_wait(pending);
    lx.b.barrier();
}
