//! `tilc-lower`: layout inference on VM programs and their lowering to the per-thread SIMT IR
//! that the SIMT emulator runs and the PTX backend prints.
//!
//! - [`infer`]: layout inference — the register layout of every tile and the tensor-core plan
//!   of every `dot`; [`layout`]: default layouts, thread maps and free conversions;
//! - [`lower()`]: VM kernel → [`tilc_simt::Kernel`] — index arithmetic from layouts, sub-byte
//!   unpacking from 32-bit words, the shared-memory plan, conversions, reductions, `dot`,
//!   `hadamard`, control flow;
//! - [`exec`]: runs a lowered kernel in the emulator on the interpreter's argument values.
//!
//! The VM interpreter defines what a program means; this crate must produce a per-thread program
//! that the emulator runs to the same bits (integers and quantized outputs exactly; floats too
//! wherever the VM's rounding rules fix them). It knows the VM, tilc-layout and the SIMT IR; it
//! must not know PTX, LLVM or any driver.

pub mod exec;
pub mod infer;
pub mod layout;
mod lower;
pub mod schedule;

pub use exec::{EmuSummary, run};
pub use lower::{LowerError, Lowered, LoweringInfo, Options, lower};

impl LowerError {
    /// The error as a diagnostic at the instruction's span.
    pub fn to_diagnostic(&self) -> tilc_base::Diagnostic {
        tilc_base::Diagnostic::error(format!("cannot lower to SIMT: {}", self.message), self.span, "this instruction")
            .with_hint("run it on the interpreter or the CPU backend (`--target interp|cpu`) meanwhile")
    }
}

/// An estimate of the 32-bit registers one thread of `k` needs: the most values live at once
/// (each weighted by its size: 64-bit values and pointers count 2, vectors their lanes;
/// predicates live in their own register file and count 0). A value defined outside a loop and
/// used inside it lives until the loop ends. It ignores rematerialisation and the register
/// allocator's own constraints, so ptxas's count (`tilc build --target sm_90a --report`) is the
/// figure to trust; this one needs no toolchain.
pub fn estimate_registers(k: &tilc_simt::Kernel) -> u32 {
    use std::collections::HashMap;
    use tilc_simt::{InstKind, Type};
    fn size(t: Type) -> u32 {
        match t {
            Type::Scalar(tilc_simt::Scalar::Pred) => 0,
            t => t.bits().div_ceil(32),
        }
    }
    // Positions in pre-order; every loop's span [start, end] of positions.
    fn walk(
        k: &tilc_simt::Kernel,
        r: tilc_simt::Region,
        pos: &mut u32,
        def: &mut HashMap<tilc_simt::Value, u32>,
        uses: &mut Vec<(tilc_simt::Value, u32)>,
        spans: &mut Vec<(u32, u32)>,
    ) {
        for &a in &k.regions[r].args {
            def.insert(a, *pos);
        }
        for &i in &k.regions[r].insts {
            *pos += 1;
            let here = *pos;
            k.insts[i].kind.for_each_operand(|v| uses.push((v, here)));
            for &res in &k.insts[i].results {
                def.insert(res, here);
            }
            for sub in k.insts[i].kind.regions() {
                walk(k, sub, pos, def, uses, spans);
            }
            if matches!(k.insts[i].kind, InstKind::For { .. }) {
                spans.push((here, *pos));
            }
        }
    }
    let mut pos = 0u32;
    let mut def: HashMap<tilc_simt::Value, u32> = HashMap::new();
    let mut last: HashMap<tilc_simt::Value, u32> = HashMap::new();
    let mut uses = Vec::new();
    let mut spans = Vec::new();
    walk(k, k.body, &mut pos, &mut def, &mut uses, &mut spans);
    for (v, at) in uses {
        let d = def.get(&v).copied().unwrap_or(0);
        let mut end = at;
        for &(s, e) in &spans {
            if d < s && s <= at && at <= e {
                end = end.max(e);
            }
        }
        let l = last.entry(v).or_insert(0);
        *l = (*l).max(end);
    }
    let mut delta = vec![0i64; pos as usize + 2];
    for (v, &e) in &last {
        let d = def.get(v).copied().unwrap_or(0) as usize;
        let w = i64::from(size(k.ty(*v)));
        delta[d] += w;
        delta[e as usize + 1] -= w;
    }
    let (mut cur, mut best) = (0i64, 0i64);
    for x in delta {
        cur += x;
        best = best.max(cur);
    }
    best as u32
}
