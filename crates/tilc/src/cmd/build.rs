//! `tilc build`: compiles kernels of a `.tl` file and prints or writes the requested stage.
//!
//! Stages: the VM IR (`--emit vm`, any target); the per-thread SIMT program (`--emit simt`, the
//! lowering that the GPU path and the SIMT emulator share); for `--target cpu`, Cranelift IR
//! (`--emit clif`) and a native object file (`--emit obj`, the default for `cpu`); for the GPU
//! targets `sm_90a`, `sm_100a` and `sm_120a` (elaborate → `tilc_lower::lower` → `tilc_ptx`),
//! LLVM IR (`--emit llvm`), PTX (`--emit ptx`, the default), a cubin through ptxas
//! (`--emit cubin`) and a C header and source that embed the module (`--emit c`, see [`c`]).
//! GPU builds written with `-o` get a JSON manifest beside them ([`manifest`]) with what a
//! runtime needs to launch each kernel ([`abi`]); `--report` prints ptxas's resource table.

mod abi;
mod c;
mod manifest;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tilc_base::{Diagnostic, SourceFile};
use tilc_ptx::{PtxError, Target};

use super::run::{load_kernel, parse_defines, print_diags};

/// Compile a kernel and print or write its intermediate form or GPU code.
///
/// GPU targets (`--target sm_90a|sm_100a|sm_120a`) print PTX by default. With `-o OUT` a GPU
/// build also writes a JSON manifest at OUT with the extension `.json` (or at `--manifest
/// PATH`): the kernel's parameters in order (scalar dtypes and how they are passed; tensor
/// dtypes, symbolic shapes, `out` flags), the grid as text and as an expression tree, the block
/// size, the dynamic shared memory, the compile-time constants, the launch contract (tensor
/// buffers are packed bit streams zero-padded to a multiple of 16 bytes) and ptxas's resources.
/// Printing to stdout writes no manifest unless `--manifest` asks for one.
///
/// `--emit ptx -o K.ptx` also writes the cubin `K.cubin` when ptxas is installed (`TILC_PTXAS`,
/// set by `scripts/setup`); `--emit cubin` and `--report` need it. `--emit c -o K` writes `K.h`
/// and `K.c`: the module image (cubin when ptxas is installed, else PTX) and one typed launch
/// function per kernel over the CUDA driver API (no CUDA headers needed; link with -lcuda).
#[derive(clap::Args)]
#[command(after_help = "Examples:
  tilc build examples/gemm_w3a8.tl --target sm_90a --report -o target/gemm_w3a8.ptx
      (writes gemm_w3a8.ptx, gemm_w3a8.cubin and gemm_w3a8.json; prints registers and spills)
  tilc build lang/gemm_a16w.tl -D TW=u4 --target sm_100a --emit llvm
  tilc build lang/quantize.tl --kernel quantize_mx,quantize_nvfp4 --target sm_120a --emit c -o quant
      (writes quant.h, quant.c and quant.json)
  tilc build examples/gemm_w3a8.tl -D BM=32 --emit vm
  tilc build examples/gemm_w3a8.tl --emit simt
  tilc build examples/gemm_w3a8.tl --target cpu --emit clif
  tilc build examples/gemm_w3a8.tl --target cpu -o gemm_w3a8.o")]
pub struct BuildArgs {
    /// The `.tl` file.
    pub file: PathBuf,
    /// The kernel to build (needed when the file defines several). GPU targets accept several
    /// (`--kernel a,b` or repeated), built into one module.
    #[arg(long, value_delimiter = ',')]
    pub kernel: Vec<String>,
    /// Override a compile-time parameter, e.g. `-D BM=32` or `-D T=f16`.
    #[arg(short = 'D', value_name = "NAME=VALUE")]
    pub defines: Vec<String>,
    /// What to produce: `vm` (the block-level VM IR), `simt` (the lowered per-thread program,
    /// with the layouts and access widths chosen as a comment header), `clif` (Cranelift IR,
    /// `--target cpu`), `obj` (a native object file, `--target cpu`), `llvm` (LLVM IR before
    /// optimisation), `ptx`, `cubin` (needs ptxas and `-o`) or `c` (a C header and source
    /// embedding the module, with typed launch functions). Default: `ptx` for the GPU targets,
    /// `obj` for `cpu`, `vm` for `interp`.
    #[arg(long, value_parser = ["vm", "clif", "obj", "simt", "llvm", "ptx", "cubin", "c"])]
    pub emit: Option<String>,
    /// The target: `interp` (the VM only), `cpu`, or a GPU: `sm_90a` (Hopper), `sm_100a`
    /// (Blackwell B200) or `sm_120a` (Blackwell RTX 50).
    #[arg(long, default_value = "interp", value_parser = ["interp", "cpu", "sm_90a", "sm_100a", "sm_120a"])]
    pub target: String,
    /// Write the output to this file instead of stdout (for `--emit c`, OUT.h and OUT.c).
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    /// GPU targets: print ptxas's registers, spill stores and loads, stack frame and shared
    /// memory per kernel (needs ptxas). Goes to stdout when the build is written to a file,
    /// else to stderr.
    #[arg(long)]
    pub report: bool,
    /// GPU targets: write the JSON manifest here (default with `-o OUT`: OUT with the extension
    /// `.json`).
    #[arg(long, value_name = "PATH")]
    pub manifest: Option<PathBuf>,
    /// sm_90a: run `dot` on 64-row tiles as warpgroup `wgmma` (operands staged in shared memory)
    /// instead of `mma.sync`. Experimental: checked in the SIMT emulator and by ptxas, not yet
    /// on a Hopper GPU.
    #[arg(long)]
    pub wgmma: bool,
    /// sm_100a: run `dot` on 128-row tiles (n a multiple of 16 up to 256, whole warpgroups) as
    /// `tcgen05.mma` issued by one thread with the accumulator in tensor memory, instead of
    /// `mma.sync`; e.g. `-D BM=128 -D BN=64` for `gemm_w3a8`. Tiles that do not fit keep
    /// `mma.sync`. Experimental: checked in the SIMT emulator and by ptxas, not yet on a
    /// Blackwell GPU.
    #[arg(long)]
    pub tcgen05: bool,
}

/// Why `tilc build` stops.
enum Failure {
    /// Bad usage (exit 2).
    Usage(String),
    /// Diagnostics against a source file (exit 1).
    Diags(Option<SourceFile>, Vec<Diagnostic>),
    /// Any other error (exit 1).
    Msg(String),
}

/// Runs `tilc build`.
pub fn run(args: BuildArgs) -> ExitCode {
    let result = if args.target.starts_with("sm_") { build_gpu(&args) } else { build_host(&args) };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(2)
        }
        Err(Failure::Diags(file, diags)) => {
            print_diags(file.as_ref(), &diags);
            ExitCode::from(1)
        }
        Err(Failure::Msg(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(1)
        }
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    std::fs::write(path, bytes).map_err(|e| Failure::Msg(format!("cannot write {}: {e}", path.display())))
}

/// Writes `bytes` to `-o` or stdout.
fn emit_bytes(output: Option<&Path>, bytes: &[u8]) -> Result<(), Failure> {
    match output {
        Some(p) => write_file(p, bytes),
        None => {
            let _ = std::io::stdout().write_all(bytes);
            Ok(())
        }
    }
}

fn load(args: &BuildArgs, kernel: Option<&str>) -> Result<(SourceFile, tilc_vm::Kernel), Failure> {
    let defines = parse_defines(&args.defines).map_err(Failure::Usage)?;
    load_kernel(&args.file, kernel, &defines).map_err(|(file, diags)| Failure::Diags(file, diags))
}

/// `--target interp|cpu`.
fn build_host(args: &BuildArgs) -> Result<(), Failure> {
    let emit = args.emit.clone().unwrap_or_else(|| if args.target == "cpu" { "obj".into() } else { "vm".into() });
    if ["llvm", "ptx", "cubin", "c"].contains(&emit.as_str()) {
        return Err(Failure::Usage(format!("`--emit {emit}` needs a GPU target: `--target sm_90a`, `sm_100a` or `sm_120a`")));
    }
    if emit != "vm" && emit != "simt" && args.target != "cpu" {
        return Err(Failure::Usage(format!("`--emit {emit}` needs `--target cpu`")));
    }
    if args.report || args.manifest.is_some() || args.wgmma || args.tcgen05 {
        return Err(Failure::Usage("`--report`, `--manifest`, `--wgmma` and `--tcgen05` are for the GPU targets".into()));
    }
    if args.kernel.len() > 1 {
        return Err(Failure::Usage(format!("`--target {}` builds one kernel at a time; give one `--kernel`", args.target)));
    }
    let (file, kernel) = load(args, args.kernel.first().map(String::as_str))?;
    let bytes = match emit.as_str() {
        "vm" => tilc_vm::print_kernel(&kernel).into_bytes(),
        "simt" => match tilc_lower::lower(&kernel, &tilc_lower::Options::default()) {
            Ok(l) => simt_listing(&l).into_bytes(),
            Err(e) => return Err(Failure::Diags(Some(file), vec![e.to_diagnostic()])),
        },
        "clif" => tilc_cpu::emit_clif(&kernel).map_err(|e| Failure::Msg(format!("cannot compile `{}` for the CPU: {e}", kernel.name)))?.into_bytes(),
        _ => {
            let Some(path) = &args.output else {
                return Err(Failure::Usage("an object file is binary; give `-o FILE.o`".into()));
            };
            let obj = tilc_cpu::emit_object(&kernel, &tilc_cpu::Options::default())
                .map_err(|e| Failure::Msg(format!("cannot compile `{}` for the CPU: {e}", kernel.name)))?;
            write_file(path, &obj)?;
            eprintln!("wrote {} ({} bytes, exports tilc_{}_block)", path.display(), obj.len(), kernel.name);
            return Ok(());
        }
    };
    emit_bytes(args.output.as_deref(), &bytes)
}

/// One kernel on its way to the GPU.
struct GpuKernel {
    vm: tilc_vm::Kernel,
    lowered: tilc_lower::Lowered,
    abi: abi::KernelAbi,
}

/// The message when ptxas is needed and missing.
const NO_PTXAS: &str = "ptxas not found: run scripts/setup or set TILC_PTXAS";

/// `--target sm_*`.
fn build_gpu(args: &BuildArgs) -> Result<(), Failure> {
    let target: Target = args.target.parse().map_err(|e: PtxError| Failure::Usage(e.to_string()))?;
    let emit = args.emit.as_deref().unwrap_or("ptx");
    if emit == "clif" || emit == "obj" {
        return Err(Failure::Usage(format!("`--emit {emit}` needs `--target cpu`")));
    }
    if args.report && matches!(emit, "vm" | "simt" | "llvm") {
        return Err(Failure::Usage(format!("`--report` is ptxas's; it goes with `--emit ptx`, `cubin` or `c`, not `--emit {emit}`")));
    }
    if emit == "cubin" && args.output.is_none() {
        return Err(Failure::Usage("a cubin is binary; give `-o FILE.cubin`".into()));
    }
    let names: Vec<Option<&str>> = if args.kernel.is_empty() { vec![None] } else { args.kernel.iter().map(|k| Some(k.as_str())).collect() };
    let mut file = None;
    let mut vms = Vec::new();
    for name in names {
        let (f, k) = load(args, name)?;
        if vms.iter().any(|v: &tilc_vm::Kernel| v.name == k.name) {
            return Err(Failure::Usage(format!("kernel `{}` is named twice", k.name)));
        }
        file = Some(f);
        vms.push(k);
    }
    let file = file.expect("at least one kernel was loaded");
    if args.wgmma && target != Target::Sm90a {
        return Err(Failure::Usage(format!("--wgmma needs --target sm_90a: wgmma exists only on Hopper, not on {target} (sm_100a has tcgen05, sm_120a mma.sync)")));
    }
    if args.tcgen05 && target != Target::Sm100a {
        return Err(Failure::Usage(format!("--tcgen05 needs --target sm_100a: tcgen05 exists only on Blackwell datacenter parts, not on {target} (sm_90a has wgmma, sm_120a mma.sync)")));
    }
    let lower_options = tilc_lower::Options { wgmma: args.wgmma, tcgen05: args.tcgen05, ..Default::default() };
    if emit == "vm" {
        let text: Vec<String> = vms.iter().map(tilc_vm::print_kernel).collect();
        return emit_bytes(args.output.as_deref(), text.join("\n").as_bytes());
    }
    let mut kernels = Vec::new();
    for vm in vms {
        let lowered = tilc_lower::lower(&vm, &lower_options).map_err(|e| Failure::Diags(Some(file.clone()), vec![e.to_diagnostic()]))?;
        if emit != "simt" {
            check_target(&file, &vm, &lowered.kernel, target)?;
        }
        // An engine asked for but not taken is worth a note: the tile decides, not the flag.
        let has_dot = !lowered.info.dots.is_empty();
        for (asked, engine, needs) in [(args.wgmma, "wgmma", "64-row tiles on whole warpgroups"), (args.tcgen05, "tcgen05", "128-row tiles, n a multiple of 16 up to 256, whole warpgroups (e.g. -D BM=128)")] {
            if asked && has_dot && !lowered.info.dots.iter().any(|d| d.contains(engine)) {
                eprintln!("note: --{engine}: no `dot` of `{}` fits {engine} ({needs}); it runs on mma.sync", vm.name);
            }
        }
        let abi = abi::kernel_abi(&vm, &lowered.kernel).map_err(|m| Failure::Msg(format!("internal compiler error: {m}")))?;
        kernels.push(GpuKernel { vm, lowered, abi });
    }
    if emit == "simt" {
        let text: Vec<String> = kernels.iter().map(|k| simt_listing(&k.lowered)).collect();
        return emit_bytes(args.output.as_deref(), text.join("\n").as_bytes());
    }
    let simt: Vec<tilc_simt::Kernel> = kernels.iter().map(|k| k.lowered.kernel.clone()).collect();
    let out = tilc_ptx::compile(&simt, &tilc_ptx::Options::new(target)).map_err(|e| {
        let names: Vec<&str> = kernels.iter().map(|k| k.vm.name.as_str()).collect();
        Failure::Msg(format!("internal compiler error: cannot compile `{}` for {target}: {e}", names.join("`, `")))
    })?;
    if emit == "llvm" {
        return emit_bytes(args.output.as_deref(), out.llvm_ir.as_bytes());
    }

    // ptxas: required for cubins and reports, used where it helps (a cubin beside written PTX,
    // a cubin in the C files), and its absence said out loud.
    let wants_cubin = emit == "cubin" || emit == "c" || args.report || (emit == "ptx" && args.output.is_some());
    let ptxas = if wants_cubin { tilc_ptx::find_ptxas() } else { None };
    if ptxas.is_none() && (emit == "cubin" || args.report) {
        return Err(Failure::Msg(NO_PTXAS.into()));
    }
    // With ptxas, the PTX is the one `compile_and_assemble` kept (rebuilt without ptxas's
    // register cap when that removes spills), so the PTX and the cubin always agree.
    let (out, assembled) = match &ptxas {
        Some(p) => {
            let (out, cubin, report) = tilc_ptx::compile_and_assemble(&simt, &tilc_ptx::Options::new(target), p).map_err(|e| Failure::Msg(format!("internal compiler error: {e}")))?;
            (out, Some((cubin, report.with_dynamic_shared(&simt))))
        }
        None => (out, None),
    };
    if assembled.is_none() && wants_cubin {
        eprintln!("note: {NO_PTXAS}; {}", if emit == "c" { "the C source embeds PTX instead of a cubin" } else { "no cubin written" });
    }

    let mut files: Vec<(&'static str, String)> = Vec::new();
    let sibling = |path: &Path, ext: &str| path.with_extension(ext);
    let name_of = |path: &Path| path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    let output = args.output.as_deref();
    match emit {
        "ptx" => {
            emit_bytes(output, out.ptx.as_bytes())?;
            if let Some(path) = output {
                files.push(("ptx", name_of(path)));
                if let Some((cubin, _)) = &assembled {
                    let cubin_path = sibling(path, "cubin");
                    if cubin_path != path {
                        write_file(&cubin_path, cubin)?;
                        files.push(("cubin", name_of(&cubin_path)));
                    }
                }
            }
        }
        "cubin" => {
            let (cubin, _) = assembled.as_ref().expect("checked above: ptxas ran");
            let path = output.expect("checked above: -o given");
            write_file(path, cubin)?;
            files.push(("cubin", name_of(path)));
        }
        _ => {
            // --emit c
            let stem = output.map(|p| if matches!(p.extension().and_then(|e| e.to_str()), Some("c" | "h")) { p.with_extension("") } else { p.to_path_buf() });
            let prefix = c::c_identifier(&match &stem {
                Some(s) => name_of(s),
                None if kernels.len() == 1 => kernels[0].vm.name.clone(),
                None => file_stem(&args.file),
            });
            let header_path = stem.as_ref().map(|s| PathBuf::from(format!("{}.h", s.display())));
            let header_name = header_path.as_deref().map_or_else(|| format!("{prefix}.h"), name_of);
            let (image, kind) = match &assembled {
                Some((cubin, _)) => (cubin.as_slice(), c::ImageKind::Cubin),
                None => (out.ptx.as_bytes(), c::ImageKind::Ptx),
            };
            let abis: Vec<abi::KernelAbi> = kernels.iter().map(|k| k.abi.clone()).collect();
            let cf = c::c_files(&prefix, &header_name, &args.file.display().to_string(), target, image, kind, &abis);
            match (&stem, &header_path) {
                (Some(stem), Some(header_path)) => {
                    let source_path = PathBuf::from(format!("{}.c", stem.display()));
                    write_file(header_path, cf.header.as_bytes())?;
                    write_file(&source_path, cf.source.as_bytes())?;
                    files.push(("c_header", name_of(header_path)));
                    files.push(("c_source", name_of(&source_path)));
                }
                _ => {
                    let text = format!("/* ---- {header_name} ---- */\n{}\n/* ---- {prefix}.c ---- */\n{}", cf.header, cf.source);
                    emit_bytes(None, text.as_bytes())?;
                }
            }
        }
    }

    let manifest_path = args.manifest.clone().or_else(|| output.map(|p| p.with_extension("json")));
    if let Some(path) = &manifest_path {
        if Some(path.as_path()) == output {
            return Err(Failure::Usage(format!("the manifest would overwrite {}; give `--manifest PATH`", path.display())));
        }
        let report = assembled.as_ref().map(|(_, r)| r);
        let module = manifest::Module {
            source: &args.file.display().to_string(),
            target,
            ptx_version: ptx_version(&out.ptx),
            files: files.clone(),
            kernels: kernels.iter().map(|k| (&k.abi, report.and_then(|r| r.kernel(&k.abi.name)))).collect(),
        };
        write_file(path, manifest::manifest(&module).as_bytes())?;
    }
    if output.is_some() || manifest_path.is_some() {
        let dir = output.or(manifest_path.as_deref()).and_then(Path::parent).unwrap_or(Path::new(""));
        let mut written: Vec<String> = files.iter().map(|(_, f)| dir.join(f).display().to_string()).collect();
        written.extend(manifest_path.iter().map(|m| m.display().to_string()));
        eprintln!("wrote {}", written.join(", "));
    }
    if args.report {
        let (_, report) = assembled.as_ref().expect("checked above: ptxas ran");
        let table = report.table();
        if output.is_some() {
            print!("{table}");
        } else {
            eprint!("{table}");
        }
        for w in &report.warnings {
            eprintln!("{w}");
        }
    }
    Ok(())
}

fn file_stem(path: &Path) -> String {
    path.file_stem().map_or_else(|| "tilc".to_string(), |s| s.to_string_lossy().into_owned())
}

/// The `.version` of a PTX text.
fn ptx_version(ptx: &str) -> Option<String> {
    ptx.lines().find_map(|l| l.trim().strip_prefix(".version ").map(|v| v.trim().to_string()))
}

/// A diagnostic at the kernel when `target` cannot run it: an instruction the target lacks
/// (wgmma off sm_90a, tcgen05 off sm_100a), too many threads or too much shared memory.
fn check_target(file: &SourceFile, vm: &tilc_vm::Kernel, simt: &tilc_simt::Kernel, target: Target) -> Result<(), Failure> {
    let result = tilc_ptx::check_resources(simt, target).and_then(|()| tilc_ptx::check_features(simt, target).map(|_| ()));
    let Err(e) = result else { return Ok(()) };
    let message = match &e {
        PtxError::Resources { .. } => e.to_string(),
        _ => format!("kernel `{}` cannot be built for {target}: {e}", vm.name),
    };
    let mut d = Diagnostic::error(message, vm.span, "this kernel");
    if let PtxError::Unsupported { feature, .. } = &e {
        let able: Vec<&str> = Target::ALL.iter().filter(|t| t.supports(*feature)).map(|t| t.name()).collect();
        d = d.with_hint(if able.is_empty() { "no GPU target has it yet".to_string() } else { format!("targets that have it: {}", able.join(", ")) });
    } else if let PtxError::Resources { .. } = &e {
        d = d.with_hint("use smaller tiles (fewer warps or smaller shared tensors) through -D");
    }
    Err(Failure::Diags(Some(file.clone()), vec![d]))
}

/// The SIMT program with what the lowering decided as a comment header.
fn simt_listing(l: &tilc_lower::Lowered) -> String {
    let i = &l.info;
    let mut out = format!(
        "; {} threads per block; shared memory: {} bytes of tensors + {} bytes of scratch\n",
        i.threads, i.shared_user_bytes, i.shared_scratch_bytes
    );
    for d in &i.dots {
        out.push_str(&format!("; {d}\n"));
    }
    for g in &i.global_loads {
        out.push_str(&format!("; load {g}\n"));
    }
    for t in &i.layouts {
        out.push_str(&format!("; layout {t}\n"));
    }
    out.push_str(&tilc_simt::write_kernel(&l.kernel));
    out
}

#[cfg(test)]
mod tests;
