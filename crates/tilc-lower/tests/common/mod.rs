//! The harness of the stage tests: elaborate a kernel from a `.tl` file, lower it, run it on the
//! interpreter and in the emulator on the same random inputs, and compare the outputs bit for
//! bit (NaNs compare equal to NaNs); then report what the lowered kernel contains.
//!
//! Seeds are fresh per run (`TILC_SEED` fixes one) and printed on failure.

use std::path::Path;
use tilc_base::SourceFile;
use tilc_simt::InstKind;
use tilc_vm::{ArgValue, Define, HostTensor, Kernel, Param, elaborate_source, random_tensor};

pub fn elaborate(file: &str, kernel: &str, defines: &[(&str, &str)]) -> Kernel {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join(file);
    let src = SourceFile::new(file.to_string(), std::fs::read_to_string(&path).expect("kernel source"));
    let defs: Vec<Define> = defines.iter().map(|(n, v)| Define { name: n.to_string(), value: v.to_string() }).collect();
    elaborate_source(&src, Some(kernel), &defs).unwrap_or_else(|d| panic!("{kernel}:\n{}", tilc_base::render(&src, &d, tilc_base::RenderStyle::Plain)))
}

fn seed() -> u64 {
    std::env::var("TILC_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        (t as u64) ^ 0x9E37_79B9_7F4A_7C15
    })
}

/// What a lowered kernel contains.
#[derive(Debug, Default)]
#[allow(dead_code, reason = "each test file reads the counts it needs")]
pub struct Counts {
    pub shuffles: usize,
    pub barriers: usize,
    /// `cp.async`s by size in bytes: 4, 8, 16.
    pub cp_async: [usize; 3],
    pub commits: usize,
    pub waits: usize,
    pub scratch: u32,
}

pub fn counts(l: &tilc_lower::Lowered) -> Counts {
    let k = &l.kernel;
    let mut c = Counts { scratch: l.info.shared_scratch_bytes, ..Counts::default() };
    k.walk(&mut |i| match k.insts[i].kind {
        InstKind::Shfl { .. } => c.shuffles += 1,
        InstKind::Barrier => c.barriers += 1,
        InstKind::CpAsync { size, .. } => c.cp_async[(size / 8) as usize] += 1,
        InstKind::CpAsyncCommit => c.commits += 1,
        InstKind::CpAsyncWait(_) => c.waits += 1,
        _ => {}
    });
    c
}

/// Lowers `kernel`, runs it on the interpreter and in the emulator with the named scalars and
/// random input tensors (outputs poisoned), compares the outputs, and returns the counts.
pub fn check(file: &str, kernel: &str, defines: &[(&str, &str)], scalars: &[(&str, i64)]) -> Counts {
    let k = elaborate(file, kernel, defines);
    let lowered = tilc_lower::lower(&k, &tilc_lower::Options::default()).unwrap_or_else(|e| panic!("{kernel}: lowering failed: {}", e.message));
    if let Err(errors) = tilc_simt::verify(&lowered.kernel) {
        panic!("{kernel}: the lowered kernel does not verify: {errors}");
    }
    let s = seed();
    let scalar = |name: &str| scalars.iter().find(|(n, _)| *n == name).map(|&(_, v)| v);
    let ints = |v: tilc_vm::Value| scalar(k.values[v].name.as_deref()?);
    let mut want: Vec<ArgValue> = k
        .params
        .iter()
        .enumerate()
        .map(|(i, p)| match p {
            Param::Scalar(_) => {
                let name = k.param_name(*p);
                ArgValue::Int(scalar(name).unwrap_or_else(|| panic!("{kernel}: no value for `{name}`")))
            }
            Param::Tensor(g) => {
                let gd = &k.globals[*g];
                let shape: Vec<usize> = gd.shape.iter().map(|e| e.eval(&ints).expect("shape evaluates") as usize).collect();
                if gd.out {
                    ArgValue::Tensor(HostTensor::filled(gd.dtype, shape, gd.dtype.code_mask()))
                } else {
                    ArgValue::Tensor(random_tensor(gd.dtype, shape, s.wrapping_add(i as u64 * 7919)))
                }
            }
        })
        .collect();
    let mut have = want.clone();
    let at = format!("{kernel} {defines:?} {scalars:?} seed {s} (TILC_SEED={s} reproduces)");
    tilc_vm::run(&k, &mut want).unwrap_or_else(|e| panic!("{at}: interpreter: {}", e.message));
    tilc_lower::run(&k, &lowered, &mut have).unwrap_or_else(|e| panic!("{at}: emulator: {}", e.message));
    for (i, p) in k.params.iter().enumerate() {
        let (Param::Tensor(g), ArgValue::Tensor(w), ArgValue::Tensor(h)) = (p, &want[i], &have[i]) else { continue };
        if !k.globals[*g].out {
            continue;
        }
        let d = w.dtype;
        let same = |a: u64, b: u64| a == b || (d.is_float() && d.decode(a).is_nan() && d.decode(b).is_nan());
        if let Some(e) = (0..w.codes.len()).find(|&e| !same(w.codes[e], h.codes[e])) {
            panic!("{at}: element {e} of `{}`: interpreter {:#x}, emulator {:#x}", k.globals[*g].name, w.codes[e], h.codes[e]);
        }
    }
    counts(&lowered)
}
