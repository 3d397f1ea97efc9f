//! Autotuning and the on-disk cache, through the API and the `tilc tune` / `tilc cache`
//! commands. Every test uses its own temporary cache folder.

use std::process::{Command, Stdio};
use std::time::Duration;
use tilc::cache::EntryKind;
use tilc::{Cache, Compiler, DType, Target, Tensor, TuneOptions, arg, arg_mut};

const SRC: &str = "
kernel scale<B in [16, 32, 64] = 32, U in [1, 2] = 1>(n: i32, x: global f32[n], z: out global f32[n])
    grid [cdiv(n, B)] warps 1 {
    static_assert(B * U <= 64, \"the tile is at most 64 wide\");
    let o = block.x * B;
    store z[o] = 2.0 * load x[o] : [B];
}";

fn quick() -> TuneOptions {
    TuneOptions { min_time: Duration::from_millis(1), max_reps: 2, ..TuneOptions::default() }
}

#[test]
fn autotune_times_every_candidate_and_caches_the_choice_per_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let compiler = Compiler::new(Target::Cpu).cache_dir(dir.path()).progress(false);
    let n = 300;
    let x = Tensor::random(DType::F32, &[n], 1).unwrap();
    let mut z = Tensor::zeros(DType::F32, &[n]).unwrap();
    let tuned = compiler.autotune_source("scale.tl", SRC, "scale", &mut [arg(n), arg(&x), arg_mut(&mut z)], &quick()).unwrap();
    assert!(!tuned.from_cache);
    assert_eq!(tuned.bucket, "n=512");
    assert_eq!(tuned.trials.len(), 6);
    // B = 64, U = 2 fails its static_assert and is reported, not fatal.
    let failed: Vec<_> = tuned.trials.iter().filter(|t| t.time.is_err()).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].values, vec![("B".to_string(), "64".to_string()), ("U".to_string(), "2".to_string())]);
    assert!(failed[0].time.as_ref().unwrap_err().contains("the tile is at most 64 wide"));
    let fastest = tuned.trials.iter().filter_map(|t| t.time.as_ref().ok()).min().unwrap();
    assert_eq!(tuned.time, Some(*fastest));
    assert_eq!(tuned.kernel.values().into_iter().filter(|(n, _)| n == "B" || n == "U").collect::<Vec<_>>(), tuned.best);
    // The outputs hold the kernel's result.
    assert_eq!(z.to_f64_vec(), x.to_f64_vec().iter().map(|v| 2.0 * v).collect::<Vec<_>>());

    // The same bucket (n = 400 rounds to 512 too) comes from the cache.
    let n2 = 400;
    let x2 = Tensor::random(DType::F32, &[n2], 2).unwrap();
    let mut z2 = Tensor::zeros(DType::F32, &[n2]).unwrap();
    let again = compiler.autotune_source("scale.tl", SRC, "scale", &mut [arg(n2), arg(&x2), arg_mut(&mut z2)], &quick()).unwrap();
    assert!(again.from_cache);
    assert_eq!(again.best, tuned.best);
    assert!(again.trials.is_empty());
    // Another bucket is tuned afresh; a pinned parameter is not tuned.
    let n3 = 20;
    let x3 = Tensor::random(DType::F32, &[n3], 3).unwrap();
    let mut z3 = Tensor::zeros(DType::F32, &[n3]).unwrap();
    let pinned = compiler.clone().define("U", 1).autotune_source("scale.tl", SRC, "scale", &mut [arg(n3), arg(&x3), arg_mut(&mut z3)], &quick()).unwrap();
    assert!(!pinned.from_cache);
    assert_eq!(pinned.trials.len(), 3);
    assert!(pinned.best.iter().all(|(n, _)| n == "B"));

    let (entries, broken) = Cache::at(dir.path()).entries().unwrap();
    assert!(broken.is_empty());
    let tunings: Vec<_> = entries.iter().filter(|e| e.kind == EntryKind::Tuning).collect();
    assert_eq!(tunings.len(), 2);
    assert!(tunings.iter().any(|e| e.field("bucket") == Some("n=512") && e.field("defines") == Some("")));
    assert!(tunings.iter().any(|e| e.field("bucket") == Some("n=32") && e.field("defines") == Some("U=1")));
    // Every configuration that compiled left a kernel record with its VM program.
    let kernels: Vec<_> = entries.iter().filter(|e| e.kind == EntryKind::Kernel).collect();
    assert!(kernels.len() >= 5, "{}", kernels.len());
    assert!(kernels.iter().all(|e| e.field("kernel") == Some("scale") && e.body.contains("scale")));
    assert_eq!(Cache::at(dir.path()).clear().unwrap(), entries.len());
}

#[test]
fn autotune_reports_arguments_that_fit_no_configuration() {
    let x = Tensor::random(DType::F32, &[10], 1).unwrap();
    let mut z = Tensor::zeros(DType::F32, &[11]).unwrap();
    let e = Compiler::new(Target::Cpu).no_cache().progress(false).autotune_source("scale.tl", SRC, "scale", &mut [arg(10), arg(&x), arg_mut(&mut z)], &quick()).unwrap_err();
    assert!(e.to_string().contains("no configuration of `scale` accepts these arguments"), "{e}");
    assert!(e.to_string().contains("`z` has shape [11]"), "{e}");
}

fn tilc(cache: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tilc")).args(args).env("TILC_CACHE_DIR", cache).current_dir(env!("CARGO_MANIFEST_DIR")).output().unwrap()
}

#[test]
fn tune_and_cache_commands_under_concurrent_processes() {
    let dir = tempfile::tempdir().unwrap();
    let tune = ["tune", "examples/gemm_w3a8.tl", "--random", "1", "--arg", "m=8", "--arg", "n=128", "--arg", "k=256", "--min-time-ms", "1", "--force"];
    // Two processes tune the same kernel and bucket at once: both succeed and the cache holds
    // one whole entry for the bucket.
    let children: Vec<_> = (0..2)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_tilc"))
                .args(tune)
                .env("TILC_CACHE_DIR", dir.path())
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("gemm_w3a8 on cpu, bucket [m=8 n=128 k=256]: best BM="), "{stdout}");
        assert_eq!(stdout.lines().filter(|l| l.trim_end().ends_with(" ms")).count(), 6, "{stdout}");
    }
    let out = tilc(dir.path(), &tune[..tune.len() - 1]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("(from the cache; --force to time again)"), "{stdout}");

    let out = tilc(dir.path(), &["cache", "list"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert_eq!(stdout.lines().filter(|l| l.starts_with("tuned   gemm_w3a8 (examples/gemm_w3a8.tl) on cpu, bucket [m=8 n=128 k=256]: best BM=")).count(), 1, "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("kernel  gemm_w3a8")), "{stdout}");
    assert!(!stdout.contains("unreadable"), "{stdout}");
    let out = tilc(dir.path(), &["cache", "dir"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), dir.path().display().to_string());
    let out = tilc(dir.path(), &["cache", "clear"]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("removed "));
    let out = tilc(dir.path(), &["cache", "list"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("(0 entries)"));
}

#[test]
fn tune_command_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = tilc(dir.path(), &["tune", "examples/gemm_w3a8.tl", "--random", "1", "--arg", "m=8"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no value for scalar `n`"));
    // A GPU target compiles here, and its timing needs the driver: without one every
    // configuration fails to run, and the message says why.
    let out = tilc(dir.path(), &["tune", "examples/gemm_w3a8.tl", "--target", "sm_90a", "-D", "BM=32", "-D", "BN=64", "--random", "1", "--arg", "m=8", "--arg", "n=64", "--arg", "k=128"]);
    if tilc::Target::gpu() != Some(tilc::Target::Sm90a) {
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("no CUDA driver found") || stderr.contains("no CUDA device") || stderr.contains("cannot run code compiled for sm_90a"), "{stderr}");
    }
}
