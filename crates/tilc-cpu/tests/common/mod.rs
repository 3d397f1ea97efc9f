//! Shared by the agreement tests: elaborating `.tl` sources, random arguments and the check
//! that the CPU backend gives exactly the interpreter's results.

// Each test binary uses a different subset of these.
#![allow(dead_code)]

use tilc_base::SourceFile;
use tilc_cpu::{CpuKernel, Options};
use tilc_dtype::DType;
use tilc_vm::{ArgValue, Define, HostTensor, Kernel, Param, random_tensor};

/// Elaborates kernel `name` of `src` with `defines` (`NAME=VALUE`).
pub fn kernel(src: &str, name: &str, defines: &[&str]) -> Kernel {
    let file = SourceFile::new(format!("{name}.tl"), src.to_string());
    let defines: Vec<Define> = defines.iter().map(|d| Define::parse(d).expect("a valid define")).collect();
    match tilc_vm::elaborate_source(&file, Some(name), &defines) {
        Ok(k) => k,
        Err(diags) => {
            let text = tilc_base::render(&file, &diags, tilc_base::RenderStyle::Plain);
            panic!("kernel `{name}` does not elaborate:\n{text}")
        }
    }
}

/// Reads an example kernel from the repository's `examples/`.
pub fn example(file: &str, name: &str, defines: &[&str]) -> Kernel {
    let path = format!("{}/../../examples/{file}", env!("CARGO_MANIFEST_DIR"));
    let src = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    kernel(&src, name, defines)
}

/// Arguments for `k`: scalars from `scalars` (by name), tensors random with seeds derived from
/// `seed`, shaped by the kernel's signature.
pub fn random_args(k: &Kernel, scalars: &[(&str, ArgValue)], seed: u64) -> Vec<ArgValue> {
    let scalar_of = |name: &str| -> ArgValue {
        scalars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone()).unwrap_or_else(|| panic!("no value for scalar `{name}`"))
    };
    let lookup = |v: tilc_vm::Value| -> Option<i64> {
        let i = k.param_index(v)?;
        match scalar_of(k.param_name(k.params[i])) {
            ArgValue::Int(x) => Some(x),
            _ => None,
        }
    };
    k.params
        .iter()
        .enumerate()
        .map(|(i, p)| match p {
            Param::Scalar(_) => scalar_of(k.param_name(*p)),
            Param::Tensor(g) => {
                let gd = &k.globals[*g];
                let shape: Vec<usize> = gd.shape.iter().map(|e| e.eval(&lookup).expect("shape evaluates") as usize).collect();
                ArgValue::Tensor(random_tensor(gd.dtype, shape, seed.wrapping_mul(1000).wrapping_add(i as u64)))
            }
        })
        .collect()
}

/// Runs `k` on `args` in the interpreter and on the CPU backend and asserts that both give
/// exactly the same outputs (or both fail in the same block at the same instruction).
pub fn agree(k: &Kernel, cpu: &CpuKernel, args: &[ArgValue], what: &str) {
    let mut want = args.to_vec();
    let mut got = args.to_vec();
    let r_int = tilc_vm::run(k, &mut want);
    let r_cpu = cpu.launch(&mut got);
    match (&r_int, &r_cpu) {
        (Ok(_), Ok(_)) => {
            // The comparison is vacuous if the kernel wrote nothing: insist that some output
            // element changed (random inputs make a coincidence unlikely).
            let changed = want.iter().zip(args).any(|(w, a)| w != a);
            assert!(changed, "{what}: the interpreter's run changed no output; the test checks nothing");
            for (i, (w, g)) in want.iter().zip(&got).enumerate() {
                if let (ArgValue::Tensor(w), ArgValue::Tensor(g)) = (w, g) {
                    assert_tensors_equal(w, g, &format!("{what}: `{}` (parameter {i})", k.param_name(k.params[i])));
                }
            }
        }
        (Err(a), Err(b)) => {
            assert_eq!((a.span, a.block), (b.span, b.block), "{what}: both fail, differently: interpreter `{a}`, cpu `{b}`");
        }
        _ => panic!("{what}: interpreter gives {r_int:?}, the CPU backend {r_cpu:?}"),
    }
}

/// Asserts equal codes, naming the first differing element and both values.
pub fn assert_tensors_equal(want: &HostTensor, got: &HostTensor, what: &str) {
    assert_eq!((want.dtype, &want.shape), (got.dtype, &got.shape), "{what}: type or shape");
    let diffs: Vec<usize> = (0..want.codes.len()).filter(|&e| want.codes[e] != got.codes[e]).collect();
    if let Some(&e) = diffs.first() {
        panic!(
            "{what}: {} of {} elements differ; first at linear index {e}: interpreter code {:#x} ({}), cpu code {:#x} ({})",
            diffs.len(),
            want.codes.len(),
            want.codes[e],
            want.dtype.decode(want.codes[e]),
            got.codes[e],
            got.dtype.decode(got.codes[e])
        );
    }
}

/// Compiles for the CPU, panicking with the error.
pub fn compile(k: &Kernel) -> CpuKernel {
    CpuKernel::compile(k, &Options::default()).unwrap_or_else(|e| panic!("`{}` does not compile: {e}", k.name))
}

/// Parses a dtype name.
pub fn dt(name: &str) -> DType {
    DType::parse(name).expect("a dtype name")
}

/// A base seed for a test: `TILC_TEST_SEED` if set, else a fixed one; printed so that a failure
/// can be reproduced.
pub fn base_seed() -> u64 {
    let seed = std::env::var("TILC_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_cafe);
    eprintln!("seed = {seed} (set TILC_TEST_SEED to reproduce)");
    seed
}
