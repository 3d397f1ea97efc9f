//! Every fragment layout of `tilc_layout::fragments` against the element map the PTX ISA
//! documents, tabulated here from the ISA's own formulas (groupID = lane >> 2,
//! threadID_in_group = lane % 4), written independently of the algebra.

use tilc_layout::fragments::{self, MatrixCount, MmaKind};
use tilc_layout::{LayoutExpr, RegisterLayout};

/// Checks that `layout` has `threads × slots` and maps every (thread, slot) as `isa` says, and
/// that every element of the tile is covered exactly once.
fn check(name: &str, layout: &LayoutExpr, shape: &[usize], threads: usize, slots: usize, isa: impl Fn(usize, usize) -> (usize, usize)) {
    let l: RegisterLayout = layout.eval();
    assert_eq!(l.shape(), shape, "{name}: shape");
    assert_eq!(l.num_threads(), threads, "{name}: threads");
    assert_eq!(l.local_size(), slots, "{name}: slots");
    let mut seen = vec![false; l.num_elements()];
    for t in 0..threads {
        for i in 0..slots {
            let (r, c) = isa(t, i);
            assert_eq!(l.global_index(t, i).unwrap(), vec![r, c], "{name}: thread {t} slot {i}");
            assert_eq!(l.owners(&[r, c]).unwrap(), (vec![t], i), "{name}: element ({r}, {c})");
            assert!(!std::mem::replace(&mut seen[r * shape[1] + c], true), "{name}: ({r}, {c}) twice");
        }
    }
}

fn g(lane: usize) -> usize {
    lane >> 2
}
fn tig(lane: usize) -> usize {
    lane % 4
}

#[test]
fn mma_m16n8k16_f16() {
    let f = fragments::mma(MmaKind::M16N8K16F16);
    // A: a0..a7; row = groupID (+8 for a2,a3,a6,a7), col = tig*2 + (i&1) (+8 for i >= 4).
    check("A", &f.a, &[16, 16], 32, 8, |l, i| {
        let row = g(l) + if (2..4).contains(&i) || i >= 6 { 8 } else { 0 };
        let col = tig(l) * 2 + (i & 1) + if i >= 4 { 8 } else { 0 };
        (row, col)
    });
    // B: b0..b3; row = tig*2 + (i&1) (+8 for i >= 2), col = groupID.
    check("B", &f.b, &[16, 8], 32, 4, |l, i| (tig(l) * 2 + (i & 1) + if i >= 2 { 8 } else { 0 }, g(l)));
    // C: c0..c3; row = groupID (+8 for i >= 2), col = tig*2 + (i&1).
    check("C", &f.c, &[16, 8], 32, 4, |l, i| (g(l) + if i >= 2 { 8 } else { 0 }, tig(l) * 2 + (i & 1)));
}

#[test]
fn mma_m16n8k16_s8() {
    let f = fragments::mma(MmaKind::M16N8K16I8);
    // A: a0..a7; row = groupID (+8 for i >= 4), col = tig*4 + (i & 3).
    check("A", &f.a, &[16, 16], 32, 8, |l, i| (g(l) + if i >= 4 { 8 } else { 0 }, tig(l) * 4 + (i & 3)));
    // B: b0..b3; row = tig*4 + i, col = groupID.
    check("B", &f.b, &[16, 8], 32, 4, |l, i| (tig(l) * 4 + i, g(l)));
    check("C", &f.c, &[16, 8], 32, 4, |l, i| (g(l) + if i >= 2 { 8 } else { 0 }, tig(l) * 2 + (i & 1)));
}

fn m16n8k32(kind: MmaKind) {
    let f = fragments::mma(kind);
    // A: a0..a15; row = groupID (+8 for 4 <= i < 8 and i >= 12), col = tig*4 + (i & 3) (+16 for i >= 8).
    check("A", &f.a, &[16, 32], 32, 16, |l, i| {
        let row = g(l) + if (4..8).contains(&i) || i >= 12 { 8 } else { 0 };
        (row, tig(l) * 4 + (i & 3) + if i >= 8 { 16 } else { 0 })
    });
    // B: b0..b7; row = tig*4 + (i & 3) (+16 for i >= 4), col = groupID.
    check("B", &f.b, &[32, 8], 32, 8, |l, i| (tig(l) * 4 + (i & 3) + if i >= 4 { 16 } else { 0 }, g(l)));
    check("C", &f.c, &[16, 8], 32, 4, |l, i| (g(l) + if i >= 2 { 8 } else { 0 }, tig(l) * 2 + (i & 1)));
}

#[test]
fn mma_m16n8k32_s8() {
    m16n8k32(MmaKind::M16N8K32I8);
}

#[test]
fn mma_m16n8k32_e4m3_e5m2() {
    m16n8k32(MmaKind::M16N8K32F8);
}

#[test]
fn ldmatrix_and_stmatrix() {
    for (count, n) in [(MatrixCount::X1, 1), (MatrixCount::X2, 2), (MatrixCount::X4, 4)] {
        // Register j holds matrix j; lane l holds row l/4, columns 2(l%4), +1 (two b16 halves).
        check("ldmatrix", &fragments::ldmatrix(count, false), &[8 * n, 8], 32, 2 * n, |l, i| {
            (8 * (i / 2) + l / 4, 2 * (l % 4) + (i % 2))
        });
        // .trans: lane l holds column l/4, rows 2(l%4), +1.
        check("ldmatrix.trans", &fragments::ldmatrix(count, true), &[8 * n, 8], 32, 2 * n, |l, i| {
            (8 * (i / 2) + 2 * (l % 4) + (i % 2), l / 4)
        });
        assert_eq!(fragments::stmatrix(count, true), fragments::ldmatrix(count, true));
    }
    // 8 rows of 16 bytes as 1-byte and 4-byte elements.
    check("ldmatrix.b8", &fragments::ldmatrix_for_bytes(1).unwrap(), &[8, 16], 32, 4, |l, i| (l / 4, 4 * (l % 4) + i));
    check("ldmatrix.b32", &fragments::ldmatrix_for_bytes(4).unwrap(), &[8, 4], 32, 1, |l, _| (l / 4, l % 4));
}

#[test]
fn wgmma_accumulator_m64nnk16() {
    for n in [8, 16, 24, 64, 256] {
        // d_i of thread t (warp w = t/32, lane l): row = 16w + groupID + 8*((i>>1)&1),
        // col = 8*(i>>2) + tig*2 + (i&1).
        check("wgmma D", &fragments::wgmma_accumulator(n).unwrap(), &[64, n], 128, n / 2, |t, i| {
            let (w, l) = (t / 32, t % 32);
            (16 * w + g(l) + 8 * ((i >> 1) & 1), 8 * (i >> 2) + tig(l) * 2 + (i & 1))
        });
    }
    assert!(fragments::wgmma_accumulator(12).is_none());
}

#[test]
fn wgmma_register_a() {
    // 16-bit: a0..a7 per thread, the mma.m16n8k16 A map shifted by 16 rows per warp.
    check("wgmma A f16", &fragments::wgmma_a(2).unwrap(), &[64, 16], 128, 8, |t, i| {
        let (w, l) = (t / 32, t % 32);
        (16 * w + g(l) + 8 * ((i >> 1) & 1), tig(l) * 2 + (i & 1) + 8 * (i >> 2))
    });
    // 8-bit: a0..a15, four bytes per register.
    check("wgmma A s8", &fragments::wgmma_a(1).unwrap(), &[64, 32], 128, 16, |t, i| {
        let (w, l) = (t / 32, t % 32);
        (16 * w + g(l) + 8 * ((i >> 2) & 1), tig(l) * 4 + (i & 3) + 16 * (i >> 3))
    });
}

#[test]
fn tcgen05_ld_32x32b() {
    for num in [1, 2, 8, 128] {
        // Thread l reads TMEM lane l, registers r0..r(num-1) = columns 0..num.
        check("tcgen05.ld.32x32b", &fragments::tcgen05_ld_32x32b(num).unwrap(), &[32, num], 32, num, |l, i| (l, i));
    }
}

#[test]
fn the_cli_example_is_the_mma_a_fragment() {
    let e = tilc_layout::parse_layout_expr("column_local(2, 2).spatial(8, 4).local(1, 2)").unwrap();
    assert_eq!(e.eval(), fragments::mma(MmaKind::M16N8K16F16).a.eval());
    let drawing = tilc_layout::draw::draw_text(&e.eval(), "A");
    let row0: Vec<&str> = drawing.lines().nth(2).unwrap().split_whitespace().skip(1).take(6).collect();
    assert_eq!(row0, ["0:0", "0:1", "1:0", "1:1", "2:0", "2:1"]);
}
