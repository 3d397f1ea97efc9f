//! ptxas: finding it, running it on PTX text, and reading its `-v` resource report.
//!
//! ptxas comes from the PyPI wheel `nvidia-cuda-nvcc` and needs no GPU. It is found through
//! `$TILC_PTXAS`, then the copy the repository's set-up installs under
//! `.tools/nvcc/nvidia/cu13/bin/ptxas` (relative to the working directory or any of its parents),
//! then `ptxas` on `PATH`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::PtxError;
use crate::target::Target;

/// Where the repository's set-up puts ptxas, relative to the repository root.
pub const BUNDLED_PTXAS: &str = ".tools/nvcc/nvidia/cu13/bin/ptxas";

/// What ptxas reports for one kernel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelResources {
    /// Kernel (entry) name.
    pub name: String,
    /// Registers per thread.
    pub registers: u32,
    /// Bytes of spill stores per thread.
    pub spill_stores: u32,
    /// Bytes of spill loads per thread.
    pub spill_loads: u32,
    /// Bytes of stack frame (local memory) per thread.
    pub stack_frame: u32,
    /// Bytes of static shared memory (dynamic shared memory is sized at launch and not counted).
    pub shared_bytes: u32,
    /// Bytes of dynamic shared memory the launch must request. ptxas cannot know it: it is 0 as
    /// parsed, and [`Report::with_dynamic_shared`] fills it in from the kernels.
    pub dynamic_shared_bytes: u32,
    /// Named barriers used.
    pub barriers: u32,
}

/// ptxas's report for one PTX module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The target assembled for.
    pub target: Target,
    /// One entry per kernel, in ptxas's order.
    pub kernels: Vec<KernelResources>,
    /// ptxas warnings (spills among them, with `--warn-on-spills`).
    pub warnings: Vec<String>,
}

impl Report {
    /// The kernel called `name`.
    pub fn kernel(&self, name: &str) -> Option<&KernelResources> {
        self.kernels.iter().find(|k| k.name == name)
    }

    /// Fills in [`KernelResources::dynamic_shared_bytes`] from the SIMT kernels of the module
    /// (all of their shared memory is the dynamic `tilc_smem` window).
    pub fn with_dynamic_shared(mut self, kernels: &[tilc_simt::Kernel]) -> Report {
        for r in &mut self.kernels {
            if let Some(k) = kernels.iter().find(|k| k.name == r.name) {
                r.dynamic_shared_bytes = k.shared_bytes;
            }
        }
        self
    }

    /// Whether any kernel spills.
    pub fn has_spills(&self) -> bool {
        self.kernels
            .iter()
            .any(|k| k.spill_stores > 0 || k.spill_loads > 0)
    }

    /// The report as a text table, one row per kernel.
    pub fn table(&self) -> String {
        let header = [
            "kernel",
            "target",
            "registers",
            "spill st (B)",
            "spill ld (B)",
            "stack (B)",
            "smem (B)",
            "dyn smem (B)",
            "barriers",
        ];
        let rows: Vec<[String; 9]> = self
            .kernels
            .iter()
            .map(|k| {
                [
                    k.name.clone(),
                    self.target.name().to_string(),
                    k.registers.to_string(),
                    k.spill_stores.to_string(),
                    k.spill_loads.to_string(),
                    k.stack_frame.to_string(),
                    k.shared_bytes.to_string(),
                    k.dynamic_shared_bytes.to_string(),
                    k.barriers.to_string(),
                ]
            })
            .collect();
        let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.len());
            }
        }
        let line = |cells: &[&str]| {
            let parts: Vec<String> = cells
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(n, (c, w))| {
                    if n < 2 {
                        format!("{c:<w$}")
                    } else {
                        format!("{c:>w$}")
                    }
                })
                .collect();
            parts.join("  ").trim_end().to_string() + "\n"
        };
        let mut out = line(&header);
        out += &line(
            &widths
                .iter()
                .map(|w| "-".repeat(*w))
                .collect::<Vec<_>>()
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
        for row in &rows {
            out += &line(&row.iter().map(String::as_str).collect::<Vec<_>>());
        }
        out
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.table())
    }
}

/// Parses the output of `ptxas -v` for `target`.
pub fn parse_report(output: &str, target: Target) -> Report {
    let mut kernels: Vec<KernelResources> = Vec::new();
    let mut warnings = Vec::new();
    // The kernel the next "Function properties" / "Used" lines describe.
    let mut current: Option<usize> = None;
    let index_of = |kernels: &mut Vec<KernelResources>, name: &str| -> usize {
        match kernels.iter().position(|k| k.name == name) {
            Some(i) => i,
            None => {
                kernels.push(KernelResources {
                    name: name.to_string(),
                    ..Default::default()
                });
                kernels.len() - 1
            }
        }
    };
    for line in output.lines() {
        let text = line.trim();
        if text.starts_with("ptxas warning") {
            warnings.push(text.to_string());
            continue;
        }
        if let Some(rest) = text.split("Compiling entry function '").nth(1) {
            if let Some(name) = rest.split('\'').next() {
                current = Some(index_of(&mut kernels, name));
            }
        } else if let Some(rest) = text.split("Function properties for ").nth(1) {
            current = Some(index_of(&mut kernels, rest.trim()));
        } else if let Some(k) = current.and_then(|c| kernels.get_mut(c)) {
            for part in text.trim_start_matches("ptxas info    :").split(',') {
                let part = part.trim();
                let words: Vec<&str> = part.split_whitespace().collect();
                let number = |i: usize| words.get(i).and_then(|w| w.parse::<u32>().ok());
                match words.as_slice() {
                    [_, "bytes", "stack", "frame"] => k.stack_frame = number(0).unwrap_or(0),
                    [_, "bytes", "spill", "stores"] => k.spill_stores = number(0).unwrap_or(0),
                    [_, "bytes", "spill", "loads"] => k.spill_loads = number(0).unwrap_or(0),
                    ["Used", _, "registers"] => k.registers = number(1).unwrap_or(0),
                    ["used", _, "barriers"] => k.barriers = number(1).unwrap_or(0),
                    [_, "bytes", "smem"] => k.shared_bytes = number(0).unwrap_or(0),
                    _ => {}
                }
            }
        }
    }
    Report {
        target,
        kernels,
        warnings,
    }
}

/// The ptxas to use: `$TILC_PTXAS`, else [`BUNDLED_PTXAS`] under the working directory or a
/// parent of it, else `ptxas` on `PATH`; `None` when there is none.
pub fn find_ptxas() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TILC_PTXAS") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    if let Ok(cwd) = std::env::current_dir() {
        for dir in cwd.ancestors() {
            let p = dir.join(BUNDLED_PTXAS);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("ptxas"))
        .find(|p| p.is_file())
}

/// Assembles `ptx` for `target` with the ptxas [`find_ptxas`] finds; returns the cubin and the
/// resource report.
pub fn assemble(ptx: &str, target: Target) -> Result<(Vec<u8>, Report), PtxError> {
    let ptxas = find_ptxas().ok_or_else(|| {
        PtxError::NoPtxas(format!(
            "set TILC_PTXAS, install it at {BUNDLED_PTXAS}, or put ptxas on PATH"
        ))
    })?;
    assemble_with(&ptxas, ptx, target)
}

/// Assembles `ptx` for `target` with the given ptxas (`-v --warn-on-spills`).
pub fn assemble_with(
    ptxas: &Path,
    ptx: &str,
    target: Target,
) -> Result<(Vec<u8>, Report), PtxError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let unique = format!(
        "tilc-ptxas-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let dir = std::env::temp_dir().join(unique);
    let fail = |message: String| PtxError::Ptxas { target, message };
    std::fs::create_dir_all(&dir)
        .map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
    let input = dir.join("kernel.ptx");
    let cubin = dir.join("kernel.cubin");
    let result = (|| {
        std::fs::write(&input, ptx)
            .map_err(|e| fail(format!("cannot write {}: {e}", input.display())))?;
        let out = Command::new(ptxas)
            .arg(format!("-arch={}", target.name()))
            .args(["-v", "--warn-on-spills"])
            .arg(&input)
            .arg("-o")
            .arg(&cubin)
            .output()
            .map_err(|e| fail(format!("cannot run {}: {e}", ptxas.display())))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() {
            return Err(fail(format!("{}\n{}", out.status, text.trim_end())));
        }
        let bytes = std::fs::read(&cubin)
            .map_err(|e| fail(format!("cannot read {}: {e}", cubin.display())))?;
        Ok((bytes, parse_report(&text, target)))
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_report_of_ptxas_13() {
        let text = "\
ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function 'gemm' for 'sm_90a'
ptxas info    : Function properties for gemm
    24 bytes stack frame, 8 bytes spill stores, 12 bytes spill loads
ptxas info    : Used 168 registers, used 1 barriers, 1024 bytes smem, 392 bytes cmem[0]
ptxas warning : Registers are spilled to local memory in function 'gemm', 8 bytes spill stores, 12 bytes spill loads
ptxas info    : Compiling entry function 'add' for 'sm_90a'
ptxas info    : Function properties for add
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 10 registers, 380 bytes cmem[0]
";
        let r = parse_report(text, Target::Sm90a);
        assert_eq!(
            r.kernels,
            vec![
                KernelResources {
                    name: "gemm".into(),
                    registers: 168,
                    spill_stores: 8,
                    spill_loads: 12,
                    stack_frame: 24,
                    shared_bytes: 1024,
                    dynamic_shared_bytes: 0,
                    barriers: 1
                },
                KernelResources {
                    name: "add".into(),
                    registers: 10,
                    ..Default::default()
                },
            ]
        );
        assert!(r.has_spills());
        assert_eq!(r.warnings.len(), 1);
        let table = r.table();
        assert_eq!(
            table,
            "\
kernel  target  registers  spill st (B)  spill ld (B)  stack (B)  smem (B)  dyn smem (B)  barriers
------  ------  ---------  ------------  ------------  ---------  --------  ------------  --------
gemm    sm_90a        168             8            12         24      1024             0         1
add     sm_90a         10             0             0          0         0             0         0
"
        );
    }
}
