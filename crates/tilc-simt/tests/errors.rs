//! The emulator catches planted bugs and reports them as values with thread and instruction.
use tilc_simt::*;

fn run1(k: &Kernel, args: &mut [Arg]) -> Result<RunStats, EmuError> {
    run(k, Launch { grid: [1, 1, 1], parallel: false }, args)
}

/// Thread 0 writes shared[0]; thread 1 reads it; with or without a barrier in between.
fn race_kernel(with_barrier: bool) -> Kernel {
    let mut b = Builder::new("race", [64, 1, 1]);
    let out = b.param("out", Type::GLOBAL_PTR, 4);
    b.set_shared_bytes(16);
    let t = b.tid_x();
    let zero = b.i32(0);
    let s = b.shared_addr(zero);
    let is0 = b.cmp(CmpOp::Eq, t, zero);
    b.if_then(is0, |b| {
        let v = b.i32(42);
        b.store(Space::Shared, s, v, None);
    });
    if with_barrier {
        b.barrier();
    }
    let c33 = b.i32(33); // a thread of the second warp
    let reader = b.cmp(CmpOp::Eq, t, c33);
    b.if_then(reader, |b| {
        let v = b.load(Space::Shared, Type::I32, s, None);
        b.store(Space::Global, out, v, None);
    });
    b.finish()
}

#[test]
fn planted_race_is_caught_and_a_barrier_fixes_it() {
    let mut args = vec![Arg::Buffer(vec![0; 4])];
    let e = run1(&race_kernel(false), &mut args).unwrap_err();
    match e.kind {
        EmuErrorKind::SharedRace { addr: 0, other: Some(0), write: false } => {}
        ref k => panic!("wrong error {k:?}: {e}"),
    }
    assert_eq!(e.thread, Some(33));
    assert!(e.inst_text.contains("ld.shared"), "{e}");
    let mut args = vec![Arg::Buffer(vec![0; 4])];
    run1(&race_kernel(true), &mut args).unwrap();
    assert_eq!(args[0], Arg::Buffer(42u32.to_le_bytes().to_vec()));
}

#[test]
fn same_thread_reuse_and_disjoint_bytes_are_not_races() {
    // Each thread writes then reads its own word: no race.
    let mut b = Builder::new("own", [64, 1, 1]);
    b.set_shared_bytes(256);
    let t = b.tid_x();
    let c4 = b.i32(4);
    let off = b.mul(t, c4);
    let s = b.shared_addr(off);
    b.store(Space::Shared, s, t, None);
    let v = b.load(Space::Shared, Type::I32, s, None);
    b.store(Space::Shared, s, v, None);
    run1(&b.finish(), &mut []).unwrap();
}

#[test]
fn planted_out_of_bounds_write_is_caught() {
    let mut b = Builder::new("oob", [32, 1, 1]);
    let out = b.param("out", Type::GLOBAL_PTR, 4);
    let t = b.tid_x();
    let c4 = b.i32(4);
    let off = b.mul(t, c4);
    let p = b.ptr_add(out, off);
    b.store(Space::Global, p, t, None);
    let k = b.finish();
    // 31 elements for 32 threads: thread 31 writes past the end.
    let mut args = vec![Arg::Buffer(vec![0; 31 * 4])];
    let e = run1(&k, &mut args).unwrap_err();
    match e.kind {
        EmuErrorKind::OutOfBounds { space: Space::Global, size: 4, len: 124, addr } => assert_eq!(addr & 0xffff, 124),
        ref k => panic!("wrong error {k:?}"),
    }
    assert_eq!(e.thread, Some(31));
    assert_eq!(e.block, Some([0, 0, 0]));
    assert!(e.to_string().contains("out-of-bounds global access"), "{e}");
}

#[test]
fn shared_out_of_bounds_and_misaligned_accesses_are_caught() {
    let mut b = Builder::new("smem_oob", [32, 1, 1]);
    b.set_shared_bytes(64);
    let t = b.tid_x();
    let c4 = b.i32(4);
    let off = b.mul(t, c4);
    let s = b.shared_addr(off);
    b.store(Space::Shared, s, t, None);
    let e = run1(&b.finish(), &mut []).unwrap_err();
    assert!(matches!(e.kind, EmuErrorKind::OutOfBounds { space: Space::Shared, addr: 64, .. }), "{e}");
    assert_eq!(e.thread, Some(16));
    let mut b = Builder::new("misaligned", [32, 1, 1]);
    b.set_shared_bytes(256);
    let t = b.tid_x();
    let c6 = b.i32(6);
    let off = b.mul(t, c6);
    let s = b.shared_addr(off);
    b.store(Space::Shared, s, t, None);
    let e = run1(&b.finish(), &mut []).unwrap_err();
    assert!(matches!(e.kind, EmuErrorKind::Misaligned { addr: 6, size: 4, .. }), "{e}");
}

#[test]
fn planted_divergent_barrier_is_caught() {
    let mut b = Builder::new("divbar", [32, 1, 1]);
    let t = b.tid_x();
    let c16 = b.i32(16);
    let low = b.cmp(CmpOp::Slt, t, c16);
    b.if_then(low, |b| {
        b.barrier();
    });
    let e = run1(&b.finish(), &mut []).unwrap_err();
    assert!(matches!(e.kind, EmuErrorKind::DivergentBarrier { arrived: 0xffff, expected: 0xffff_ffff }), "{e}");
    assert_eq!(e.thread, Some(16));
}

#[test]
fn barrier_skipped_by_a_whole_warp_is_caught() {
    let mut b = Builder::new("missbar", [64, 1, 1]);
    let t = b.tid_x();
    let c32 = b.i32(32);
    let warp0 = b.cmp(CmpOp::Slt, t, c32);
    b.if_then(warp0, |b| {
        b.barrier();
    });
    let e = run1(&b.finish(), &mut []).unwrap_err();
    assert!(matches!(e.kind, EmuErrorKind::BarrierNotReached { missing_warp: 1, .. }), "{e}");
}

#[test]
fn uninitialised_register_read_is_caught() {
    let mut b = Builder::new("uninit", [32, 1, 1]);
    let out = b.param("out", Type::GLOBAL_PTR, 4);
    let acc = b.array("acc", Type::I32, 4);
    let one = b.i32(1);
    b.array_set(acc, 0, one);
    let v = b.array_get(acc, 1);
    b.store(Space::Global, out, v, None);
    let mut args = vec![Arg::Buffer(vec![0; 4])];
    let e = run1(&b.finish(), &mut args).unwrap_err();
    match &e.kind {
        EmuErrorKind::UninitRead { what } => assert!(what.contains("acc") && what.contains("element 1"), "{what}"),
        k => panic!("wrong error {k:?}"),
    }
    assert_eq!(e.thread, Some(0));
}

#[test]
fn divergent_collective_is_caught() {
    let mut b = Builder::new("divshfl", [32, 1, 1]);
    let t = b.tid_x();
    let c8 = b.i32(8);
    let low = b.cmp(CmpOp::Slt, t, c8);
    b.if_then(low, |b| {
        let one = b.i32(1);
        b.shfl(ShflMode::Bfly, t, one);
    });
    let e = run1(&b.finish(), &mut []).unwrap_err();
    assert!(matches!(e.kind, EmuErrorKind::DivergentCollective { active: 0xff }), "{e}");
}

#[test]
fn division_by_zero_and_bad_arguments_are_errors() {
    let mut b = Builder::new("div0", [32, 1, 1]);
    let n = b.param("n", Type::I32, 1);
    let t = b.tid_x();
    b.binary(BinaryOp::DivU, t, n);
    let k = b.finish();
    let e = run1(&k, &mut [Arg::Scalar(0)]).unwrap_err();
    assert_eq!(e.kind, EmuErrorKind::DivByZero);
    let e = run1(&k, &mut [Arg::Buffer(vec![])]).unwrap_err();
    assert!(matches!(e.kind, EmuErrorKind::BadArgs(_)));
    run1(&k, &mut [Arg::Scalar(3)]).unwrap();
}

#[test]
fn verifier_rejects_bad_kernels_before_running() {
    let mut b = Builder::new("bad", [32, 1, 1]);
    let x = b.i32(1);
    let y = b.f32(1.0);
    b.add(x, y); // mismatched types
    let k = b.finish();
    let errs = verify(&k).unwrap_err();
    assert!(errs.to_string().contains("different types"), "{errs}");
    let e = run1(&k, &mut []).unwrap_err();
    assert!(matches!(e.kind, EmuErrorKind::Verify(_)));
    // Statically misaligned vector access.
    let mut b = Builder::new("bad_align", [32, 1, 1]);
    b.set_shared_bytes(64);
    let c4 = b.i32(4);
    let s = b.shared_addr(c4);
    b.load(Space::Shared, Type::vector(Scalar::I32, 4), s, None);
    let errs = verify(&b.finish()).unwrap_err();
    assert!(errs.to_string().contains("misaligned"), "{errs}");
}

/// Tensor memory round trip on 128 threads: warp 0 allocates 32 columns, every warp stores
/// `tid` to its lanes (lane base `lane_shift` · warp, shifted into the address's lane field),
/// reads them back, writes them out; warp 0 frees. With the right lane base (32 per warp) the
/// values come back; with another one the emulator names the warp and its lanes.
fn tmem_kernel(lane_shift: i32) -> Kernel {
    let mut b = Builder::new("tmem", [128, 1, 1]);
    let out = b.param("out", Type::GLOBAL_PTR, 4);
    b.set_shared_bytes(16);
    let t = b.tid_x();
    let zero = b.i32(0);
    let slot = b.shared_addr(zero);
    let five = b.i32(5);
    let warp = b.shr_u(t, five);
    let first = b.cmp(CmpOp::Eq, warp, zero);
    b.if_then(first, |b| {
        b.tmem_alloc(slot, 32);
    });
    b.barrier();
    let taddr = b.load(Space::Shared, Type::I32, slot, None);
    let per_warp = b.i32(lane_shift << 16);
    let lanes = b.mul(warp, per_warp);
    let mine = b.add(taddr, lanes);
    b.tmem_store(mine, &[t]);
    let back = b.tmem_load(mine, 1, Scalar::I32);
    let four = b.i32(4);
    let off = b.mul(t, four);
    let p = b.ptr_add(out, off);
    b.store(Space::Global, p, back[0], None);
    b.barrier();
    b.if_then(first, |b| {
        b.tmem_dealloc(taddr, 32);
    });
    b.finish()
}

#[test]
fn tensor_memory_round_trips_and_lane_quarters_are_enforced() {
    let mut args = vec![Arg::Buffer(vec![0; 512])];
    run1(&tmem_kernel(32), &mut args).unwrap();
    let want: Vec<u8> = (0..128u32).flat_map(|t| t.to_le_bytes()).collect();
    assert_eq!(args[0], Arg::Buffer(want));
    let mut args = vec![Arg::Buffer(vec![0; 512])];
    let e = run1(&tmem_kernel(16), &mut args).unwrap_err();
    assert!(matches!(e.kind, EmuErrorKind::TensorMemory(_)), "{e}");
    assert!(e.to_string().contains("warp 1 may access lanes 32..64 only, not 16"), "{e}");
}
