//! `hadamard` lowered stage by stage (in-thread butterflies, warp shuffles, shared-memory
//! exchanges, or the all-shared-memory fallback): every placement must give the interpreter's
//! bits, and each kernel of `tests/cases/hadamard_stages.tl` must use the stage kinds its layout
//! calls for (counted in the lowered SIMT: shuffles and barriers).

mod common;

use common::{check, counts, elaborate};

const CASES: &str = "crates/tilc-lower/tests/cases/hadamard_stages.tl";

#[test]
fn rows_in_one_thread_need_no_shuffle_and_no_barrier() {
    for rows in [128, 130, 7] {
        let c = check(CASES, "in_thread", &[], &[("rows", rows)]);
        assert_eq!((c.shuffles, c.barriers, c.scratch), (0, 0, 0), "{c:?}");
    }
}

#[test]
fn rows_within_a_warp_shuffle_without_barriers() {
    for rows in [16, 21] {
        let c = check(CASES, "in_warp", &[], &[("rows", rows)]);
        // Five lane stages, 8 slots, two 32-bit shuffles per f64.
        assert_eq!((c.shuffles, c.barriers, c.scratch), (5 * 8 * 2, 0, 0), "{c:?}");
    }
}

#[test]
fn rows_across_warps_exchange_through_shared_memory() {
    // Default layout local(1, 2).spatial(1, 128).local(1, 4): 8 slots, two warp bits traded
    // for two slot bits and back, one round each.
    let c = check(CASES, "across_default", &[], &[("rows", 2)]);
    assert_eq!((c.shuffles, c.barriers), (5 * 8 * 2, 4), "{c:?}");
    assert_eq!(c.scratch, 8 * 8 * 128 + 16, "{c:?}");
    // A longer row: still in registers after the exchange, more rounds of the same scratch.
    let c = check(CASES, "across_default", &[("N", "8192")], &[("rows", 1)]);
    assert!(c.scratch <= 32 * 1024 + 16 && c.barriers == 8, "{c:?}");
    // Two warp bits, one slot bit: three exchanges of 2 KiB.
    let c = check(CASES, "across_one_slot_bit", &[], &[("rows", 3)]);
    assert_eq!((c.barriers, c.scratch), (6, 2 * 128 * 8 + 16), "{c:?}");
    // The slot bit is the last stage's: four exchanges.
    let c = check(CASES, "across_late_slot_bit", &[], &[("rows", 2)]);
    assert_eq!((c.barriers, c.scratch), (8, 2 * 128 * 8 + 16), "{c:?}");
    for n in [128, 200] {
        let c = check(CASES, "across_replicated", &[], &[("n", n)]);
        assert!(c.barriers > 0 && c.shuffles == 5 * 2 * 2, "{c:?}");
    }
    for rows in [64, 70] {
        let c = check(CASES, "columns", &[], &[("rows", rows)]);
        assert!(c.barriers > 0 && c.shuffles == 3 * 4 * 2, "{c:?}");
    }
}

#[test]
fn an_axis_without_slot_bits_takes_every_stage_through_shared_memory() {
    for rows in [64, 65] {
        let c = check(CASES, "columns_no_slot_bit", &[], &[("rows", rows)]);
        // One barrier after the tile is stored, one per stage, one after it is read back.
        assert_eq!((c.shuffles, c.barriers, c.scratch), (0, 1 + 6 + 1, 64 * 8 * 8 + 16), "{c:?}");
    }
}

/// The figures of the library kernel `hadamard` (bf16, one row, 4 warps): shared bytes and
/// barriers. The all-shared-memory lowering needed 8·N + 16 bytes and log2(N) + 2 barriers
/// (32 KiB / 14 at 4096, 128 KiB / 16 at 16384, 256 KiB / 17 at 32768: over sm_90a's 227 KiB).
#[test]
fn library_hadamard_fits_in_shared_memory() {
    for (n, bytes, barriers) in [("4096", 32 * 1024 + 16, 4), ("16384", 32 * 1024 + 16, 16), ("32768", 32 * 1024 + 16, 32)] {
        let k = elaborate("lang/hadamard.tl", "hadamard", &[("N", n)]);
        let l = tilc_lower::lower(&k, &tilc_lower::Options::default()).expect("lowers");
        let c = counts(&l);
        assert_eq!((l.kernel.shared_bytes, c.barriers), (bytes, barriers), "N = {n}: {c:?}");
        assert!(l.kernel.shared_bytes <= 227 * 1024);
    }
}
