//! Every hand-built SIMT kernel compiles for every target and ptxas accepts it with no spills;
//! snapshots of LLVM IR and PTX; target and PTX-version errors are values.
mod common;
use common::*;
use tilc_ptx::{Feature, OptLevel, Options, PtxError, PtxVersion, Target, assemble_with, compile};
use tilc_simt::*;

#[test]
fn every_kernel_assembles_for_every_target_without_spills() {
    let kernels = all_kernels();
    let ptxas = ptxas_or_skip("every_kernel_assembles_for_every_target_without_spills");
    let mut table = String::new();
    for target in Target::ALL {
        // One module holding every kernel, as `tilc build` of a library would make.
        let out =
            compile(&kernels, &Options::new(target)).unwrap_or_else(|e| panic!("{target}: {e}"));
        assert!(
            out.ptx.contains(&format!(".target {}", target.name())),
            "{target}"
        );
        for k in &kernels {
            assert!(
                out.ptx.contains(&format!(".entry {}(", k.name)),
                "{target}: no .entry for {}",
                k.name
            );
        }
        let Some(ptxas) = &ptxas else { continue };
        let (cubin, report) =
            assemble_with(ptxas, &out.ptx, target).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&cubin[..4], b"\x7fELF", "{target}: a cubin is an ELF file");
        assert_eq!(report.kernels.len(), kernels.len(), "{target}: {report:?}");
        for k in &kernels {
            let r = report
                .kernel(&k.name)
                .unwrap_or_else(|| panic!("{target}: {} not in the report", k.name));
            assert!(r.registers > 0, "{target} {}: {r:?}", k.name);
            assert_eq!(
                (r.spill_stores, r.spill_loads),
                (0, 0),
                "{target} {} spills: {r:?}",
                k.name
            );
            assert_eq!(
                r.stack_frame, 0,
                "{target} {} uses local memory: {r:?}",
                k.name
            );
        }
        assert!(
            report.warnings.is_empty(),
            "{target}: {:?}",
            report.warnings
        );
        table += &report.table();
    }
    println!("{table}");
}

/// The PTX of each kernel contains the instructions its SIMT program asked for.
#[test]
fn the_ptx_uses_the_hardware_instructions() {
    let out = compile(&all_kernels(), &Options::new(Target::Sm90a)).unwrap();
    let ptx = &out.ptx;
    for needle in [
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32",
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32",
        "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32",
        "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32",
        "mma.sync.aligned.m16n8k32.row.col.f32.e5m2.e5m2.f32",
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16",
        "ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16",
        "cp.async.cg.shared.global",
        "cp.async.ca.shared.global",
        "cp.async.commit_group",
        "cp.async.wait_group 0",
        "bar.sync",
        "shfl.sync.bfly.b32",
        "shfl.sync.up.b32",
        "shf.r.clamp.b32",
        "shf.l.wrap.b32",
        "prmt.b32",
        "lop3.b32",
        "bfe.s32",
        "cvt.rn.satfinite.e4m3x2.f32",
        "cvt.rn.f16x2.e5m2x2",
        "fma.rn.bf16x2",
        "sub.rn.f16x2",
        "div.rn.f32",
        "sqrt.rn.f32",
        ".extern .shared .align 128 .b8 tilc_smem[]",
        "ld.global.v4.b32",
        "mul.hi.s32",
    ] {
        assert!(ptx.contains(needle), "the PTX has no `{needle}`");
    }
    // No separate multiply and add may become an fma: the emulator rounds them separately.
    let vector_add = compile(&[vector_add()], &Options::new(Target::Sm90a)).unwrap();
    assert!(
        vector_add.ptx.contains("add.rn.f32") && !vector_add.ptx.contains("fma"),
        "{}",
        vector_add.ptx
    );
}

#[test]
fn every_opt_level_produces_code_ptxas_accepts() {
    let ptxas = ptxas_or_skip("every_opt_level_produces_code_ptxas_accepts");
    let kernels = [dequant_u3(), mma_tile(), ops_kernel().0];
    for opt_level in [OptLevel::O0, OptLevel::O1, OptLevel::O2, OptLevel::O3] {
        let options = Options {
            opt_level,
            ..Options::new(Target::Sm90a)
        };
        let out = compile(&kernels, &options).unwrap_or_else(|e| panic!("{opt_level:?}: {e}"));
        if let Some(ptxas) = &ptxas {
            let (_, report) = assemble_with(ptxas, &out.ptx, Target::Sm90a)
                .unwrap_or_else(|e| panic!("{opt_level:?}: {e}"));
            // Register arrays stay in registers even at O0 (SROA runs at every level).
            assert!(
                report.kernels.iter().all(|k| k.stack_frame == 0),
                "{opt_level:?}: {report:?}"
            );
        }
    }
}

#[test]
fn an_unroll_hint_on_a_loop_with_unknown_bounds_becomes_loop_metadata() {
    let (k, _) = ops_kernel();
    let out = compile(&[k], &Options::new(Target::Sm90a)).unwrap();
    assert!(out.llvm_ir.contains("!llvm.loop"), "{}", out.llvm_ir);
    assert!(
        out.llvm_ir.contains("!\"llvm.loop.unroll.count\", i32 2"),
        "{}",
        out.llvm_ir
    );
}

#[test]
fn a_full_unroll_hint_with_constant_bounds_is_unrolled_before_llvm() {
    let mut b = Builder::new("unrolled", [32, 1, 1]);
    let out = b.param("out", Type::GLOBAL_PTR, 4);
    let c0 = b.i32(0);
    let c4 = b.i32(4);
    let c1 = b.i32(1);
    let t = b.tid_x();
    let r = b.for_loop(c0, c4, c1, &[t], Unroll::Full, |b, iv, c| {
        vec![b.add(c[0], iv)]
    });
    let off = b.mul(t, c4);
    let p = b.ptr_add(out, off);
    b.store(Space::Global, p, r[0], None);
    let out = compile(&[b.finish()], &Options::new(Target::Sm90a)).unwrap();
    assert!(!out.llvm_ir.contains("for.body"), "{}", out.llvm_ir);
    assert!(!out.llvm_ir.contains("!llvm.loop"), "{}", out.llvm_ir);
}

#[test]
fn snapshot_vector_add() {
    let out = compile(&[vector_add()], &Options::new(Target::Sm90a)).unwrap();
    insta::assert_snapshot!("vector_add_llvm", out.llvm_ir);
    insta::assert_snapshot!("vector_add_ptx", out.ptx);
}

#[test]
fn snapshot_dequant_u3() {
    let mut k = dequant_u3();
    passes::optimize(&mut k);
    let out = compile(&[k], &Options::new(Target::Sm100a)).unwrap();
    insta::assert_snapshot!("dequant_u3_llvm", out.llvm_ir);
    insta::assert_snapshot!("dequant_u3_ptx", out.ptx);
}

#[test]
fn snapshot_mma_tile() {
    let mut k = mma_tile();
    passes::optimize(&mut k);
    let out = compile(&[k], &Options::new(Target::Sm120a)).unwrap();
    insta::assert_snapshot!("mma_tile_llvm", out.llvm_ir);
    insta::assert_snapshot!("mma_tile_ptx", out.ptx);
}

#[test]
fn compiling_twice_gives_the_same_text() {
    let a = compile(&all_kernels(), &Options::new(Target::Sm90a)).unwrap();
    let b = compile(&all_kernels(), &Options::new(Target::Sm90a)).unwrap();
    assert_eq!(a, b);
}

/// The feature table, against the PTX ISA's target notes: wgmma only on sm_90a, tcgen05 only on
/// sm_100a, everything the SIMT IR uses everywhere.
#[test]
fn feature_gates_follow_the_ptx_isa() {
    for target in Target::ALL {
        for feature in Feature::ALL {
            let want = match feature {
                Feature::Wgmma => target == Target::Sm90a,
                Feature::Tcgen05 => target == Target::Sm100a,
                _ => true,
            };
            assert_eq!(target.supports(feature), want, "{target} {feature}");
        }
    }
    let err = Target::Sm100a
        .require(Feature::Wgmma, "wgmma.mma_async.sync.aligned.m64n128k16")
        .unwrap_err();
    assert!(matches!(
        err,
        PtxError::Unsupported {
            target: Target::Sm100a,
            feature: Feature::Wgmma,
            ..
        }
    ));
    let text = err.to_string();
    assert!(
        text.contains("wgmma.mma_async.sync.aligned.m64n128k16") && text.contains("sm_100a"),
        "{text}"
    );
    let err = Target::Sm120a
        .require(Feature::Tcgen05, "tcgen05.mma")
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("tcgen05.mma")
            && text.contains("sm_120a")
            && text.contains("only on sm_100a"),
        "{text}"
    );
    // The SIMT IR has no wgmma or tcgen05 instruction: every kernel passes every target's gates.
    for target in Target::ALL {
        for k in all_kernels() {
            tilc_ptx::check_features(&k, target).unwrap();
        }
    }
}

/// A PTX version the target cannot use is an error before LLVM sees it (LLVM would exit).
#[test]
fn bad_ptx_versions_are_errors_not_exits() {
    for (target, major, minor) in [
        (Target::Sm100a, 8, 0),
        (Target::Sm120a, 8, 6),
        (Target::Sm90a, 7, 8),
        (Target::Sm90a, 8, 9),
    ] {
        let options = Options {
            ptx_version: Some(PtxVersion::new(major, minor)),
            ..Options::new(target)
        };
        let err = compile(&[vector_add()], &options).unwrap_err();
        assert!(
            matches!(err, PtxError::BadPtxVersion { .. }),
            "{target} {major}.{minor}: {err}"
        );
        assert!(err.to_string().contains(target.name()), "{err}");
    }
    // fp8 mma needs PTX 8.4: chosen by default, an error when a lower version is asked for.
    let fp8 = mma_kernel(MmaKind::Fp8F32(Fp8Format::E4M3));
    let out = compile(std::slice::from_ref(&fp8), &Options::new(Target::Sm90a)).unwrap();
    assert!(out.ptx.contains(".version 8.4"), "{}", &out.ptx[..200]);
    let options = Options {
        ptx_version: Some(PtxVersion::new(8, 3)),
        ..Options::new(Target::Sm90a)
    };
    let err = compile(&[fp8], &options).unwrap_err();
    assert!(err.to_string().contains("need PTX 8.4"), "{err}");
    let options = Options {
        ptx_version: Some(PtxVersion::new(8, 8)),
        ..Options::new(Target::Sm100a)
    };
    let out = compile(&[vector_add()], &options).unwrap();
    assert!(out.ptx.contains(".version 8.8"), "{}", &out.ptx[..200]);
    for target in Target::ALL {
        let out = compile(&[vector_add()], &Options::new(target)).unwrap();
        assert!(
            out.ptx.contains(&format!(".version {}", target.min_ptx())),
            "{target}"
        );
    }
    assert_eq!("sm_100a".parse::<Target>(), Ok(Target::Sm100a));
    assert!(matches!(
        "sm_89".parse::<Target>(),
        Err(PtxError::UnknownTarget(_))
    ));
}

#[test]
fn an_invalid_kernel_is_an_error() {
    let mut b = Builder::new("bad", [32, 1, 1]);
    let x = b.i32(1);
    let f = b.f32(1.0);
    b.add(x, f);
    let err = compile(&[b.finish()], &Options::new(Target::Sm90a)).unwrap_err();
    assert!(
        matches!(&err, PtxError::InvalidKernel { kernel, .. } if kernel == "bad"),
        "{err}"
    );
}

#[test]
fn ptxas_rejection_is_an_error_value() {
    let Some(ptxas) = ptxas_or_skip("ptxas_rejection_is_an_error_value") else {
        return;
    };
    let err = assemble_with(
        &ptxas,
        ".version 8.0\n.target sm_90a\n.address_size 64\nbogus;\n",
        Target::Sm90a,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            PtxError::Ptxas {
                target: Target::Sm90a,
                ..
            }
        ),
        "{err}"
    );
}
