//! Tests of the GPU build's launch description, manifest and C files on library kernels.
//!
//! The C files are compiled with the system C compiler (`cc`; 'skipped: no cc' without one)
//! and linked with a stub of the five driver functions that records what the launch function
//! passes: the grid it computes must equal the grid the Rust side evaluates from the same
//! expressions, and the arguments must arrive in order with their values.

use super::abi::{self, Expr, KernelAbi, ParamKind};
use super::{c, manifest};
use std::path::{Path, PathBuf};
use std::process::Command;
use tilc_ptx::Target;
use tilc_vm::Define;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Elaborates, lowers and describes a library kernel.
fn kernel(file: &str, name: &str, defines: &[(&str, &str)]) -> (tilc_lower::Lowered, KernelAbi) {
    let defines: Vec<Define> = defines.iter().map(|(n, v)| Define { name: n.to_string(), value: v.to_string() }).collect();
    let (_, vm) = super::load_kernel(&root().join(file), Some(name), &defines).unwrap_or_else(|(_, d)| panic!("{file} {name}: {d:?}"));
    let lowered = tilc_lower::lower(&vm, &tilc_lower::Options::default()).unwrap_or_else(|e| panic!("{name}: {}", e.message));
    let abi = abi::kernel_abi(&vm, &lowered.kernel).unwrap_or_else(|e| panic!("{name}: {e}"));
    (lowered, abi)
}

#[test]
fn the_launch_description_of_gemm_w3a8_follows_its_signature() {
    let (lowered, k) = kernel("examples/gemm_w3a8.tl", "gemm_w3a8", &[]);
    let names: Vec<&str> = k.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["m", "n", "k", "a", "a_scale", "w", "w_scale", "c"]);
    let grid: Vec<String> = k.grid.iter().map(|e| e.text(&k.params)).collect();
    assert_eq!(grid, ["cdiv(m, 64)", "cdiv(n, 128)", "1"]);
    assert_eq!(k.block, [256, 1, 1], "WARPS = 8");
    assert_eq!(k.dynamic_shared_bytes, lowered.kernel.shared_bytes);
    let ParamKind::Tensor { shape, out, .. } = &k.params[6].kind else { panic!("w_scale is a tensor") };
    let shape: Vec<String> = shape.iter().map(|e| e.text(&k.params)).collect();
    assert_eq!(shape, ["k / 128", "n"]);
    assert!(!out);
    assert!(matches!(k.params[7].kind, ParamKind::Tensor { out: true, .. }));
    assert!(matches!(k.params[0].kind, ParamKind::Scalar { abi: abi::ScalarAbi::I32, .. }));
    // m = 33, n = 96: ⌈33/64⌉ = 1, ⌈96/128⌉ = 1; m = 200, n = 1000: 4, 8.
    let at = |m: i64, n: i64| -> Vec<i64> {
        let args = [m, n, 256];
        k.grid.iter().map(|e| e.eval(&|i| args[i]).expect("evaluates")).collect()
    };
    assert_eq!(at(33, 96), [1, 1, 1]);
    assert_eq!(at(200, 1000), [4, 8, 1]);
}

#[test]
fn the_manifest_lists_parameters_grid_shared_memory_and_constants() {
    let (_, k) = kernel("examples/gemm_w3a8.tl", "gemm_w3a8", &[("BM", "32")]);
    let text = manifest::manifest(&manifest::Module {
        source: "examples/gemm_w3a8.tl",
        target: Target::Sm90a,
        ptx_version: Some("8.0".into()),
        files: vec![("ptx", "g.ptx".into())],
        kernels: vec![(&k, None)],
    });
    for needle in [
        "\"target\": \"sm_90a\"",
        "\"compute_capability\": \"9.0\"",
        "\"ptx\": \"g.ptx\"",
        "\"BM\": 32",
        "\"BN\": 128",
        "\"text\": [\"cdiv(m, 32)\", \"cdiv(n, 128)\", \"1\"]",
        "\"op\": \"cdiv\"",
        "\"param\": \"m\"",
        "\"shape\": \"[k / 128, n]\"",
        "\"dtype\": \"u3\"",
        "\"bits\": 3",
        "\"out\": true",
        "\"block\": [256, 1, 1]",
        "\"buffer_padding\": 16",
        "\"resources\": null",
    ] {
        assert!(text.contains(needle), "no {needle} in\n{text}");
    }
    assert!(text.contains(&format!("\"dynamic\": {}", k.dynamic_shared_bytes)), "{text}");
    // Well-formed: brackets balance outside strings (a JSON parser is not a dependency here).
    let (mut depth, mut in_string, mut escaped) = (0i32, false, false);
    for ch in text.chars() {
        match (in_string, escaped, ch) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (true, false, '"') => in_string = false,
            (false, _, '"') => in_string = true,
            (false, _, '{' | '[') => depth += 1,
            (false, _, '}' | ']') => depth -= 1,
            _ => {}
        }
        assert!(depth >= 0, "{text}");
    }
    assert_eq!((depth, in_string), (0, false), "{text}");
}

fn find_cc() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("cc")).find(|p| p.is_file())
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tilc-build-c-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn cc(cc: &Path, dir: &Path, args: &[&str]) {
    let out = Command::new(cc).current_dir(dir).args(args).output().expect("cc runs");
    assert!(out.status.success(), "cc {args:?} failed:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

/// A C program that stubs the driver, loads the module, launches every kernel once with the
/// given scalar values (tensors get pointers 0x1000 · (i + 1)) and prints what reached
/// `cuLaunchKernel`.
fn stub_program(prefix: &str, kernels: &[KernelAbi], scalars: &dyn Fn(&str) -> i64) -> String {
    let mut p = format!(
        "#include \"{prefix}.h\"\n#include <stdio.h>\n#include <string.h>\n
static int n_params[16]; static int which = 0;
int cuModuleLoadData(struct CUmod_st **m, const void *image) {{ *m = (struct CUmod_st *)image; return 0; }}
int cuModuleGetFunction(struct CUfunc_st **f, struct CUmod_st *m, const char *name) {{ (void)m; *f = (struct CUfunc_st *)name; printf(\"function %s\\n\", name); return 0; }}
int cuModuleUnload(struct CUmod_st *m) {{ (void)m; return 0; }}
int cuFuncSetAttribute(struct CUfunc_st *f, int a, int v) {{ printf(\"attribute %s %d %d\\n\", (const char *)f, a, v); return 0; }}
int cuLaunchKernel(struct CUfunc_st *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
    unsigned shared, struct CUstream_st *s, void **params, void **extra) {{
    int i;
    (void)s; (void)extra;
    printf(\"launch %s grid %u %u %u block %u %u %u shared %u\", (const char *)f, gx, gy, gz, bx, by, bz, shared);
    for (i = 0; i < n_params[which]; i++) {{
        long long v = 0;
        memcpy(&v, params[i], 4);
        printf(\" %lld\", v);
    }}
    printf(\"\\n\");
    return 0;
}}
int main(void) {{
    {prefix}_module mod;
    if ({prefix}_load(&mod) != 0) return 1;
"
    );
    for (n, k) in kernels.iter().enumerate() {
        let args: Vec<String> = k
            .params
            .iter()
            .enumerate()
            .map(|(i, q)| match &q.kind {
                ParamKind::Scalar { abi: abi::ScalarAbi::F32 | abi::ScalarAbi::F64, .. } => "1.0".to_string(),
                ParamKind::Scalar { .. } => scalars(&q.name).to_string(),
                ParamKind::Tensor { .. } => format!("0x{:x}ull", 0x1000 * (i + 1)),
            })
            .collect();
        let name = if kernels.len() == 1 && c::c_identifier(&k.name) == prefix { format!("{prefix}_launch") } else { format!("{prefix}_{}_launch", k.name) };
        p += &format!(
            "    n_params[{n}] = {}; which = {n};\n    if ({name}(&mod, NULL{}{}) != 0) return 2;\n",
            k.params.len(),
            if args.is_empty() { "" } else { ", " },
            args.join(", ")
        );
    }
    p += &format!("    return {prefix}_unload(&mod);\n}}\n");
    p
}

/// What the stub should print for kernel `k`.
fn expected_launch(k: &KernelAbi, scalars: &dyn Fn(&str) -> i64) -> String {
    let values: Vec<i64> = k.params.iter().map(|q| scalars(&q.name)).collect();
    let grid: Vec<i64> = k.grid.iter().map(|e: &Expr| e.eval(&|i| values[i]).expect("grid evaluates")).collect();
    let mut line = format!(
        "launch {} grid {} {} {} block {} {} {} shared {}",
        k.name, grid[0], grid[1], grid[2], k.block[0], k.block[1], k.block[2], k.dynamic_shared_bytes
    );
    for (i, q) in k.params.iter().enumerate() {
        // The stub prints the low 4 bytes of every argument.
        let v = match &q.kind {
            ParamKind::Scalar { abi: abi::ScalarAbi::F32, .. } => i64::from(1.0f32.to_bits()),
            ParamKind::Scalar { abi: abi::ScalarAbi::F64, .. } => 0,
            ParamKind::Scalar { .. } => values[i],
            ParamKind::Tensor { .. } => 0x1000 * (i as i64 + 1),
        };
        line += &format!(" {v}");
    }
    line
}

fn check_c(name: &str, target: Target, kernels: &[KernelAbi], scalars: &dyn Fn(&str) -> i64, image: &[u8], kind: c::ImageKind) {
    let Some(cc_path) = find_cc() else {
        println!("skipped: no cc ({name})");
        return;
    };
    let dir = temp_dir(name);
    let prefix = name;
    let files = c::c_files(prefix, &format!("{prefix}.h"), "lang/x.tl", target, image, kind, kernels);
    std::fs::write(dir.join(format!("{prefix}.h")), &files.header).expect("write header");
    std::fs::write(dir.join(format!("{prefix}.c")), &files.source).expect("write source");
    std::fs::write(dir.join("main.c"), stub_program(prefix, kernels, scalars)).expect("write main");
    let strict = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic"];
    cc(&cc_path, &dir, &[&strict[..], &["-c", &format!("{prefix}.c")]].concat());
    cc(&cc_path, &dir, &[&strict[..], &["-o", "main", "main.c", &format!("{prefix}.c")]].concat());
    let out = Command::new(dir.join("main")).output().expect("the stub program runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{name}: {}\n{text}", out.status);
    for k in kernels {
        assert!(text.contains(&format!("function {}\n", k.name)), "{name}: {text}");
        let want = expected_launch(k, scalars);
        assert!(text.lines().any(|l| l == want), "{name}: want `{want}` in\n{text}");
        let opt_in = format!("attribute {} 8 {}", k.name, k.dynamic_shared_bytes);
        assert_eq!(text.contains(&opt_in), k.dynamic_shared_bytes > abi::DEFAULT_SHARED_LIMIT, "{name}: {text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn scalars(name: &str) -> i64 {
    match name {
        "m" => 200,
        "n" => 1000,
        "k" => 256,
        "rows" => 77,
        "cols" => 512,
        "group" => 32,
        "bh" => 1,
        "bw" => 32,
        "seed" => 5,
        _ => 3,
    }
}

#[test]
fn c_files_compile_and_launch_with_the_manifests_grid() {
    // Groups of 256 rows stage 48 KiB of operands: over the default limit.
    let (lowered, w3a8) = kernel("examples/gemm_w3a8.tl", "gemm_w3a8", &[("G", "256")]);
    assert!(w3a8.dynamic_shared_bytes > abi::DEFAULT_SHARED_LIMIT, "gemm_w3a8 needs the opt-in: {}", w3a8.dynamic_shared_bytes);
    let out = tilc_ptx::compile(&[lowered.kernel], &tilc_ptx::Options::new(Target::Sm90a)).expect("compiles");
    check_c("gemm_w3a8", Target::Sm90a, &[w3a8], &scalars, out.ptx.as_bytes(), c::ImageKind::Ptx);

    // Several kernels in one module, with float scalars and a parameter named like a C keyword
    // would be renamed (none here; see `c_identifiers`).
    let names = ["quantize_int", "quantize_mx", "quantize_nvfp4"];
    let built: Vec<(tilc_lower::Lowered, KernelAbi)> = names.iter().map(|n| kernel("lang/quantize.tl", n, &[])).collect();
    let simt: Vec<tilc_simt::Kernel> = built.iter().map(|(l, _)| l.kernel.clone()).collect();
    let abis: Vec<KernelAbi> = built.into_iter().map(|(_, a)| a).collect();
    let out = tilc_ptx::compile(&simt, &tilc_ptx::Options::new(Target::Sm120a)).expect("compiles");
    let cubin = tilc_ptx::find_ptxas().map(|p| tilc_ptx::assemble_with(&p, &out.ptx, Target::Sm120a).expect("assembles").0);
    match &cubin {
        Some(cubin) => check_c("quant", Target::Sm120a, &abis, &scalars, cubin, c::ImageKind::Cubin),
        None => check_c("quant", Target::Sm120a, &abis, &scalars, out.ptx.as_bytes(), c::ImageKind::Ptx),
    }
}

#[test]
fn c_identifiers() {
    assert_eq!(c::c_identifier("gemm-w3a8.v2"), "gemm_w3a8_v2");
    assert_eq!(c::c_identifier("3x"), "_3x");
    assert_eq!(c::c_identifier(""), "_");
}
