//! Prints ptxas's registers and spills for one kernel of a `.tl` file on every GPU target —
//! the quick loop for work on register pressure, without the CLI:
//!
//! ```text
//! cargo run -p tilc-ptx --example ptx_report -- examples/gemm_w3a8.tl gemm_w3a8 [NAME=VALUE ...]
//! ```
//!
//! With `TILC_PTX_DUMP=DIR` in the environment, the PTX of each target is also written to
//! `DIR/KERNEL.TARGET.ptx`; with `TILC_WGMMA=1` dots are lowered to sm_90a's `wgmma`
//! (`tilc_lower::Options::wgmma`; the other targets then report the missing feature), with
//! `TILC_TCGEN05=1` to sm_100a's `tcgen05` (`tilc_lower::Options::tcgen05`).

use tilc_base::SourceFile;
use tilc_ptx::{Options, Target, compile_and_assemble, find_ptxas};
use tilc_vm::Define;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [file, kernel, defines @ ..] = args.as_slice() else {
        eprintln!("usage: ptx_report FILE.tl KERNEL [NAME=VALUE ...]");
        std::process::exit(2);
    };
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| {
        eprintln!("error: cannot read {file}: {e}");
        std::process::exit(1)
    });
    let src = SourceFile::new(file.clone(), text);
    let defines: Vec<Define> = defines
        .iter()
        .filter_map(|d| d.split_once('=').map(|(n, v)| Define { name: n.into(), value: v.into() }))
        .collect();
    let k = match tilc_vm::elaborate_source(&src, Some(kernel), &defines) {
        Ok(k) => k,
        Err(d) => {
            eprintln!("{}", tilc_base::render(&src, &d, tilc_base::RenderStyle::Plain));
            std::process::exit(1)
        }
    };
    let options = tilc_lower::Options {
        wgmma: std::env::var_os("TILC_WGMMA").is_some(),
        tcgen05: std::env::var_os("TILC_TCGEN05").is_some(),
        ..Default::default()
    };
    let lowered = match tilc_lower::lower(&k, &options) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: lowering failed: {}", e.message);
            std::process::exit(1)
        }
    };
    let Some(ptxas) = find_ptxas() else {
        eprintln!("error: no ptxas (run scripts/setup, or set TILC_PTXAS)");
        std::process::exit(1)
    };
    for target in [Target::Sm90a, Target::Sm100a, Target::Sm120a] {
        let (out, _, report) = match compile_and_assemble(std::slice::from_ref(&lowered.kernel), &Options::new(target), &ptxas) {
            Ok(built) => built,
            Err(e) => {
                println!("{target}: {e}");
                continue;
            }
        };
        if let Some(dir) = std::env::var_os("TILC_PTX_DUMP") {
            let path = std::path::Path::new(&dir).join(format!("{kernel}.{target}.ptx"));
            if let Err(e) = std::fs::write(&path, &out.ptx) {
                eprintln!("error: cannot write {}: {e}", path.display());
            }
        }
        for r in &report.kernels {
            println!(
                "{target}: {} registers, spill stores {} B, spill loads {} B, stack {} B, dynamic shared {} B",
                r.registers, r.spill_stores, r.spill_loads, r.stack_frame, lowered.kernel.shared_bytes
            );
        }
    }
}
