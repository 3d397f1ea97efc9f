//! Every kernel of `lang/` and `examples/` at its default configuration (and the GEMM
//! configurations the project reports on), elaborated, lowered to SIMT by `tilc-lower`, compiled
//! to PTX for every target and, where ptxas is installed, assembled by it.
//!
//! The kernels are found by listing the `.tl` files, so a new library kernel is covered without
//! editing this file. ptxas's registers and spills per kernel and target are printed as a table
//! (`cargo test -p tilc-ptx --test library -- --nocapture`). Spills are not accepted silently:
//! the set of (kernel, target) pairs that spill must equal [`KNOWN_SPILLS`], so a new spill fails
//! the test and so does a removed one (then shrink the list).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use tilc_base::SourceFile;
use tilc_ptx::{KernelResources, Options, Target, compile, compile_and_assemble};
use tilc_vm::Define;

/// (kernel, target) pairs whose ptxas report shows spill stores or loads (ptxas 13.5). None
/// today: every library kernel at its default configuration, and the W4A16 GEMM, fits its
/// registers on every target (the W3A8 GEMM: 128 / 159 / 126 registers on sm_90a / sm_100a /
/// sm_120a with 8 warps). A kernel that starts spilling fails the test; if that is accepted,
/// list it here with its registers and spill bytes.
const KNOWN_SPILLS: &[(&str, &str)] = &[];

/// Configurations beyond the defaults that the project reports registers for: the W4A16 GEMM.
const EXTRA: &[(&str, &str, &[(&str, &str)])] = &[("lang/gemm_a16w.tl", "gemm_a16w", &[("TW", "u4")])];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One configuration of one kernel.
#[derive(Clone, Debug)]
struct Case {
    file: String,
    kernel: String,
    defines: Vec<(String, String)>,
}

impl Case {
    fn label(&self) -> String {
        let defines: Vec<String> = self.defines.iter().map(|(n, v)| format!(" -D {n}={v}")).collect();
        format!("{}{}", self.kernel, defines.concat())
    }
}

/// Every kernel of every `.tl` file under `lang/` and `examples/`, at its defaults, sorted.
fn library() -> Vec<Case> {
    let mut files = Vec::new();
    for dir in ["lang", "examples"] {
        for entry in std::fs::read_dir(root().join(dir)).expect("library directory") {
            let path = entry.expect("directory entry").path();
            if path.extension().is_some_and(|e| e == "tl") {
                files.push(format!("{dir}/{}", path.file_name().expect("file name").to_string_lossy()));
            }
        }
    }
    files.sort();
    let mut cases = Vec::new();
    for file in files {
        let src = SourceFile::new(file.clone(), std::fs::read_to_string(root().join(&file)).expect("kernel source"));
        let (ast, diags) = tilc_syntax::parse(&src);
        assert!(!diags.iter().any(tilc_base::Diagnostic::is_error), "{file} does not parse");
        for k in &ast.kernels {
            cases.push(Case { file: file.clone(), kernel: k.name.name.clone(), defines: Vec::new() });
        }
    }
    cases
}

fn all_cases() -> Vec<Case> {
    let mut cases = library();
    for (file, kernel, defines) in EXTRA {
        let defines = defines.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        cases.push(Case { file: file.to_string(), kernel: kernel.to_string(), defines });
    }
    cases
}

/// Elaborates and lowers one case.
fn lower(c: &Case) -> tilc_simt::Kernel {
    let src = SourceFile::new(c.file.clone(), std::fs::read_to_string(root().join(&c.file)).expect("kernel source"));
    let defines: Vec<Define> = c.defines.iter().map(|(n, v)| Define { name: n.clone(), value: v.clone() }).collect();
    let k = tilc_vm::elaborate_source(&src, Some(&c.kernel), &defines)
        .unwrap_or_else(|d| panic!("{}:\n{}", c.label(), tilc_base::render(&src, &d, tilc_base::RenderStyle::Plain)));
    tilc_lower::lower(&k, &tilc_lower::Options::default()).unwrap_or_else(|e| panic!("{}: lowering failed: {}", c.label(), e.message)).kernel
}

/// What one (case, target) produced.
struct Built {
    case: usize,
    target: Target,
    dynamic_shared: u32,
    resources: Option<KernelResources>,
    /// Milliseconds in LLVM (IR, optimisation, PTX) and in ptxas.
    llvm_ms: u128,
    ptxas_ms: u128,
}

/// Runs `job(i)` for i in 0..n on all cores; the results in order.
fn parallel<T: Send>(n: usize, job: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<T>>> = Mutex::new((0..n).map(|_| None).collect());
    let workers = std::thread::available_parallelism().map_or(2, |p| p.get()).min(n.max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let r = job(i);
                    results.lock().expect("no worker panicked holding the lock")[i] = Some(r);
                }
            });
        }
    });
    results.into_inner().expect("no worker panicked holding the lock").into_iter().map(|r| r.expect("every job ran")).collect()
}

fn table(cases: &[Case], built: &[Built]) -> String {
    let mut out = format!(
        "{:<44} {:<8} {:>5} {:>9} {:>9} {:>6} {:>10} {:>8} {:>9}\n",
        "kernel", "target", "regs", "spill st", "spill ld", "stack", "dyn smem", "build ms", "check ms"
    );
    for b in built {
        let (regs, st, ld, stack) = match &b.resources {
            Some(r) => (r.registers.to_string(), r.spill_stores.to_string(), r.spill_loads.to_string(), r.stack_frame.to_string()),
            None => ("-".into(), "-".into(), "-".into(), "-".into()),
        };
        out += &format!(
            "{:<44} {:<8} {regs:>5} {st:>9} {ld:>9} {stack:>6} {:>10} {:>8} {:>9}\n",
            cases[b.case].label(),
            b.target.name(),
            b.dynamic_shared,
            b.llvm_ms,
            b.ptxas_ms
        );
    }
    out
}

#[test]
fn every_library_kernel_builds_for_every_target() {
    let cases = all_cases();
    assert!(cases.iter().any(|c| c.kernel == "gemm_w3a8"), "examples/gemm_w3a8.tl was not found");
    let ptxas = common::ptxas_or_skip("every_library_kernel_builds_for_every_target");
    let lowered = parallel(cases.len(), |i| lower(&cases[i]));
    let jobs: Vec<(usize, Target)> = (0..cases.len()).flat_map(|c| Target::ALL.map(|t| (c, t))).collect();
    let built = parallel(jobs.len(), |j| {
        let (case, target) = jobs[j];
        let k = &lowered[case];
        let label = cases[case].label();
        // With ptxas, as `tilc build` does: rebuilt without ptxas's register cap where that
        // removes spills (LLVM time then includes both builds).
        let start = std::time::Instant::now();
        let (out, assembled) = match &ptxas {
            Some(p) => {
                let (out, cubin, report) = compile_and_assemble(std::slice::from_ref(k), &Options::new(target), p).unwrap_or_else(|e| panic!("{label} for {target}: {e}"));
                (out, Some((cubin, report)))
            }
            None => (compile(std::slice::from_ref(k), &Options::new(target)).unwrap_or_else(|e| panic!("{label} for {target}: {e}")), None),
        };
        let llvm_ms = start.elapsed().as_millis();
        let start = std::time::Instant::now();
        assert!(out.ptx.contains(&format!(".target {}", target.name())), "{label} for {target}");
        assert!(out.ptx.contains(&format!(".entry {}(", k.name)), "{label} for {target}: no .entry");
        let resources = assembled.map(|(cubin, report)| {
            assert_eq!(&cubin[..4], b"\x7fELF", "{label} for {target}: a cubin is an ELF file");
            let r = report.kernel(&k.name).unwrap_or_else(|| panic!("{label} for {target}: not in {report:?}")).clone();
            assert!(r.registers > 0, "{label} for {target}: {r:?}");
            r
        });
        Built { case, target, dynamic_shared: k.shared_bytes, resources, llvm_ms, ptxas_ms: start.elapsed().as_millis() }
    });
    let table = table(&cases, &built);
    println!("{table}");
    if ptxas.is_none() {
        return;
    }
    let mut spilling: Vec<(String, &str)> = built
        .iter()
        .filter(|b| b.resources.as_ref().is_some_and(|r| r.spill_stores > 0 || r.spill_loads > 0))
        .map(|b| (cases[b.case].label(), b.target.name()))
        .collect();
    spilling.sort();
    let mut known: Vec<(String, &str)> = KNOWN_SPILLS.iter().map(|(k, t)| (k.to_string(), *t)).collect();
    known.sort();
    assert_eq!(spilling, known, "the kernels that spill changed (see the table above); update KNOWN_SPILLS only if intended");
    for b in &built {
        let r = b.resources.as_ref().expect("ptxas ran");
        if r.spill_stores == 0 && r.spill_loads == 0 {
            assert_eq!(r.stack_frame, 0, "{} for {}: local memory without spills: {r:?}", cases[b.case].label(), b.target);
        }
    }
}

/// LLVM IR and PTX of two small library kernels, for review of backend changes. Both texts are
/// deterministic: the LLVM IR is printed before optimisation, the PTX by a fixed LLVM.
#[test]
fn library_snapshots() {
    let cases = [
        ("repack", Case { file: "lang/repack.tl".into(), kernel: "repack".into(), defines: Vec::new() }),
        (
            "hadamard_f32_n32",
            Case {
                file: "lang/hadamard.tl".into(),
                kernel: "hadamard".into(),
                defines: vec![("T".into(), "f32".into()), ("N".into(), "32".into())],
            },
        ),
    ];
    for (name, c) in cases {
        let k = lower(&c);
        let out = compile(&[k.clone()], &Options::new(Target::Sm90a)).unwrap_or_else(|e| panic!("{}: {e}", c.label()));
        let again = compile(&[k], &Options::new(Target::Sm90a)).expect("compiled once already");
        assert_eq!(out, again, "{}: compiling twice gives different text", c.label());
        insta::assert_snapshot!(format!("{name}_llvm"), out.llvm_ir);
        insta::assert_snapshot!(format!("{name}_ptx"), out.ptx);
    }
}


/// `tilc_lower::Options::wgmma`: the W3A8 GEMM's dot becomes `wgmma.mma_async` k-steps that
/// ptxas accepts for sm_90a without spills; the other targets refuse it with the feature's name.
#[test]
fn wgmma_builds_for_sm_90a_only() {
    let c = Case { file: "examples/gemm_w3a8.tl".into(), kernel: "gemm_w3a8".into(), defines: Vec::new() };
    let src = SourceFile::new(c.file.clone(), std::fs::read_to_string(root().join(&c.file)).expect("kernel source"));
    let k = tilc_vm::elaborate_source(&src, Some(&c.kernel), &[]).expect("elaborates");
    let lowered = tilc_lower::lower(&k, &tilc_lower::Options { wgmma: true, ..Default::default() }).expect("lowers").kernel;
    let out = compile(std::slice::from_ref(&lowered), &Options::new(Target::Sm90a)).expect("compiles for sm_90a");
    assert!(out.ptx.contains("wgmma.mma_async.sync.aligned.m64n64k32.s32.s8.s8"), "no wgmma in the PTX");
    assert!(out.ptx.contains("fence.proxy.async.shared::cta"), "no proxy fence before the operands are read");
    for target in [Target::Sm100a, Target::Sm120a] {
        let err = compile(std::slice::from_ref(&lowered), &Options::new(target)).expect_err("wgmma is sm_90a only");
        assert!(err.to_string().contains("wgmma"), "{target}: {err}");
    }
    let Some(ptxas) = common::ptxas_or_skip("wgmma_builds_for_sm_90a_only") else { return };
    let (_, cubin, report) = compile_and_assemble(std::slice::from_ref(&lowered), &Options::new(Target::Sm90a), &ptxas).expect("ptxas accepts it");
    assert_eq!(&cubin[..4], b"\x7fELF");
    let r = report.kernel("gemm_w3a8").expect("in the report");
    assert_eq!((r.spill_stores, r.spill_loads), (0, 0), "{r:?}");
}

/// `tilc_lower::Options::tcgen05`: with 128-row tiles the W3A8 GEMM's dot becomes
/// `tcgen05.mma` k-steps into tensor memory (alloc, mma, commit to an mbarrier, wait, ld,
/// dealloc; its accumulator starts at zero, so nothing is stored first) and W4A16's keeps its
/// running accumulator there (`tcgen05.st` first); ptxas accepts both for sm_100a without
/// spills, and the other targets refuse them with the feature's name. W3A8's instruction
/// descriptor (s8 × s8 → s32, m128n64): D s32 (2 << 4), A and B s8 (1 << 7, 1 << 10),
/// N / 8 = 8 at bit 17, M / 16 = 8 at bit 24.
#[test]
fn tcgen05_builds_for_sm_100a_only() {
    let cases = [
        Case { file: "examples/gemm_w3a8.tl".into(), kernel: "gemm_w3a8".into(), defines: vec![("BM".into(), "128".into()), ("BN".into(), "64".into())] },
        Case { file: "lang/gemm_a16w.tl".into(), kernel: "gemm_a16w".into(), defines: vec![("TW".into(), "u4".into()), ("BM".into(), "128".into())] },
    ];
    let ptxas = common::ptxas_or_skip("tcgen05_builds_for_sm_100a_only");
    for (n, c) in cases.iter().enumerate() {
        let src = SourceFile::new(c.file.clone(), std::fs::read_to_string(root().join(&c.file)).expect("kernel source"));
        let defines: Vec<Define> = c.defines.iter().map(|(n, v)| Define { name: n.clone(), value: v.clone() }).collect();
        let k = tilc_vm::elaborate_source(&src, Some(&c.kernel), &defines).expect("elaborates");
        let lowered = tilc_lower::lower(&k, &tilc_lower::Options { tcgen05: true, ..Default::default() }).expect("lowers").kernel;
        let out = compile(std::slice::from_ref(&lowered), &Options::new(Target::Sm100a)).expect("compiles for sm_100a");
        for needle in [
            "tcgen05.alloc.cta_group::1.sync.aligned.shared::cta.b32",
            "tcgen05.commit.cta_group::1.mbarrier::arrive::one.shared::cluster.b64",
            "mbarrier.try_wait.parity.shared::cta.b64",
            "tcgen05.ld.sync.aligned.32x32b.x32.b32",
            "tcgen05.dealloc.cta_group::1.sync.aligned.b32",
            "fence.proxy.async.shared::cta",
            if n == 0 { "tcgen05.mma.cta_group::1.kind::i8" } else { "tcgen05.mma.cta_group::1.kind::f16" },
        ] {
            assert!(out.ptx.contains(needle), "{}: no `{needle}` in the PTX", c.label());
        }
        assert_eq!(out.ptx.contains("tcgen05.st.sync.aligned.32x32b"), n == 1, "{}: tcgen05.st only where the accumulator is not zero", c.label());
        if n == 0 {
            let idesc = (2u32 << 4) | (1 << 7) | (1 << 10) | (8 << 17) | (8 << 24);
            assert!(out.ptx.contains(&idesc.to_string()), "instruction descriptor {idesc} not in the PTX");
        }
        for target in [Target::Sm90a, Target::Sm120a] {
            let err = compile(std::slice::from_ref(&lowered), &Options::new(target)).expect_err("tcgen05 is sm_100a only");
            assert!(err.to_string().contains("tcgen05"), "{target}: {err}");
        }
        let Some(ptxas) = &ptxas else { continue };
        let (_, cubin, report) = compile_and_assemble(std::slice::from_ref(&lowered), &Options::new(Target::Sm100a), ptxas).expect("ptxas accepts it");
        assert_eq!(&cubin[..4], b"\x7fELF");
        let r = report.kernel(&c.kernel).expect("in the report");
        eprintln!("{} tcgen05 on sm_100a: {r:?}", c.label());
        assert_eq!((r.spill_stores, r.spill_loads), (0, 0), "{}: {r:?}", c.label());
    }
}
