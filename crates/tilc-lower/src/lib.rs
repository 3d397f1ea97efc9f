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

pub use exec::{EmuSummary, run};
pub use lower::{LowerError, Lowered, LoweringInfo, Options, lower};

impl LowerError {
    /// The error as a diagnostic at the instruction's span.
    pub fn to_diagnostic(&self) -> tilc_base::Diagnostic {
        tilc_base::Diagnostic::error(format!("cannot lower to SIMT: {}", self.message), self.span, "this instruction")
            .with_hint("run it on the interpreter or the CPU backend (`--target interp|cpu`) meanwhile")
    }
}
