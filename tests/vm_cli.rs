//! `tilc run` and `tilc build --emit vm` end to end through the binary.

use std::process::Command;

fn tilc() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tilc"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn read_npy_f16(bytes: &[u8]) -> (Vec<usize>, Vec<f64>) {
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + hlen]).unwrap();
    assert!(header.contains("'descr': '<f2'"), "{header}");
    let shape_txt = header.split("'shape': (").nth(1).unwrap().split(')').next().unwrap();
    let shape: Vec<usize> = shape_txt.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect();
    let f16 = tilc_dtype::DType::F16;
    let vals = bytes[10 + hlen..].chunks(2).map(|c| f16.decode(u64::from(u16::from_le_bytes([c[0], c[1]])))).collect();
    (shape, vals)
}

#[test]
fn the_done_when_command_writes_c_and_reproduces_from_saved_inputs() {
    let dir = std::env::temp_dir().join(format!("tilc_vm_cli_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let c1 = dir.join("c.npy");
    let saved = dir.join("inputs");
    let out = tilc()
        .args(["run", "examples/gemm_w3a8.tl", "--random", "1", "-D", "BM=32", "--arg", "m=33", "--arg", "n=96", "--arg", "k=256"])
        .arg("--out")
        .arg(format!("c={}", c1.display()))
        .arg("--save-inputs")
        .arg(&saved)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("gemm_w3a8<BM=32, BN=128, G=128, WARPS=8> on interp: grid [2, 1, 1] (2 blocks) x 8 warps"), "{stdout}");
    let (shape, c) = read_npy_f16(&std::fs::read(&c1).unwrap());
    assert_eq!(shape, [33, 96]);
    assert!(c.iter().any(|v| *v != 0.0));
    // Rerun from the saved inputs (m, n, k inferred from the arrays' shapes) and compare exactly.
    let c2 = dir.join("c2.npy");
    let mut cmd = tilc();
    cmd.args(["run", "examples/gemm_w3a8.tl", "-D", "BM=32"]);
    for n in ["a", "a_scale", "w", "w_scale"] {
        cmd.arg("--arg").arg(format!("{n}=@{}", saved.join(format!("{n}.npy")).display()));
    }
    let out = cmd.arg("--out").arg(format!("c={}", c2.display())).arg("--expect").arg(format!("c={}", c1.display())).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("c: max abs error 0.000e0"), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(std::fs::read(&c1).unwrap(), std::fs::read(&c2).unwrap());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn run_errors_are_clear() {
    let out = tilc().args(["run", "examples/gemm_w3a8.tl", "--random", "1", "--arg", "m=4"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no value for scalar `n`"));
    // Without a GPU `--target cuda` says so; with one, the missing scalars are the error.
    let out = tilc().args(["run", "examples/gemm_w3a8.tl", "--target", "cuda"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && (stderr.contains("cannot run on `cuda`") || stderr.contains("no value for scalar `m`")), "{stderr}");
    let out = tilc().args(["run", "examples/gemm_w3a8.tl", "-D", "BM=7", "--random", "1", "--arg", "m=4", "--arg", "n=4", "--arg", "k=128"]).output().unwrap();
    assert!(out.status.success(), "BM=7 is legal for the interpreter: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn build_emits_the_vm_ir() {
    let out = tilc().args(["build", "examples/hadamard_rows.tl", "-D", "N=64", "--emit", "vm"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains("kernel hadamard_rows<T = bf16, N = 64, ROWS = 1>") && text.contains("hadamard v"), "{text}");
    // PTX needs a GPU target, and says so.
    let out = tilc().args(["build", "examples/hadamard_rows.tl", "--emit", "ptx"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs a GPU target"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = tilc().args(["build", "examples/hadamard_rows.tl", "-D", "N=64", "--target", "sm_90a", "--emit", "ptx"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(".target sm_90a") && text.contains(".entry hadamard_rows("), "{text}");
}

#[test]
fn simt_target_matches_the_interpreter() {
    let dir = std::env::temp_dir().join(format!("tilc-vm-cli-simt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let want = dir.join("want.npy");
    let common = ["run", "examples/gemm_w3a8.tl", "-D", "BM=32", "-D", "BN=64", "-D", "G=32", "--random", "5", "--arg", "m=5", "--arg", "n=70", "--arg", "k=64"];
    let out = tilc().args(common).arg("--out").arg(format!("c={}", want.display())).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = tilc().args(common).args(["--target", "simt", "--tol", "0"]).arg("--expect").arg(format!("c={}", want.display())).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("on simt") && stdout.contains("0 of 350 beyond tol"), "{stdout}");
    let out = tilc().args(["build", "examples/gemm_w3a8.tl", "-D", "BM=32", "-D", "BN=64", "--emit", "simt"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("mma S8S32") && text.contains("kernel @gemm_w3a8("), "{text}");
    std::fs::remove_dir_all(&dir).ok();
}

/// `tilc build --wgmma`: sm_90a prints wgmma k-steps; any other target is a usage error that
/// says why.
#[test]
fn build_wgmma_is_for_sm_90a() {
    let out = tilc().args(["build", "examples/gemm_w3a8.tl", "--target", "sm_90a", "--wgmma", "--emit", "ptx"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("wgmma.mma_async.sync.aligned.m64n64k32.s32.s8.s8"));
    let out = tilc().args(["build", "examples/gemm_w3a8.tl", "--target", "sm_100a", "--wgmma"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--wgmma needs --target sm_90a"), "{err}");
}

/// `tilc build --tcgen05`: sm_100a with a 128-row tile prints the tensor-memory protocol; any
/// other target is a usage error that says why.
#[test]
fn build_tcgen05_is_for_sm_100a() {
    let args = ["build", "examples/gemm_w3a8.tl", "--target", "sm_100a", "--tcgen05", "-D", "BM=128", "-D", "BN=64", "--emit", "ptx"];
    let out = tilc().args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ptx = String::from_utf8_lossy(&out.stdout);
    for needle in ["tcgen05.alloc", "tcgen05.mma.cta_group::1.kind::i8", "tcgen05.commit", "tcgen05.ld.sync.aligned.32x32b", "tcgen05.dealloc"] {
        assert!(ptx.contains(needle), "no {needle}");
    }
    // The default 64-row tile does not fit: a note says so and mma.sync is used.
    let out = tilc().args(["build", "examples/gemm_w3a8.tl", "--target", "sm_100a", "--tcgen05", "--emit", "ptx"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("note: --tcgen05: no `dot` of `gemm_w3a8` fits tcgen05"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("mma.sync.aligned"));
    let out = tilc().args(["build", "examples/gemm_w3a8.tl", "--target", "sm_90a", "--tcgen05"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--tcgen05 needs --target sm_100a"), "{err}");
}
