//! The stable text form of a SIMT kernel (what `tilc build --emit simt` prints and what the
//! snapshots hold).
//!
//! Values print with their entity names (`v12`), so run [`crate::passes::compact`] first when
//! ids should be dense and in program order (the builder already produces them in order).
//! One instruction per line; results are written `v5: i32 = ...`; nested regions are indented
//! by two spaces. The format is meant for people and snapshots; there is no reader yet.

use crate::ir::*;
use crate::types::Type;
use std::fmt::{self, Write};

/// Prints the whole kernel.
pub fn write_kernel(k: &Kernel) -> String {
    let mut s = String::new();
    // Writing into a String cannot fail.
    let _ = write_kernel_to(&mut s, k);
    s
}

fn write_kernel_to(w: &mut String, k: &Kernel) -> fmt::Result {
    write!(w, "kernel @{}(", k.name)?;
    let args = &k.regions[k.body].args;
    for (i, p) in k.params.iter().enumerate() {
        if i > 0 {
            w.push_str(", ");
        }
        let v = args.get(i).map(|v| v.to_string()).unwrap_or_else(|| "?".into());
        write!(w, "{v}: {}", p.ty)?;
        if p.ty == Type::GLOBAL_PTR {
            write!(w, " align {}", p.align)?;
        }
        write!(w, " \"{}\"", p.name)?;
    }
    let [x, y, z] = k.block_dim;
    writeln!(w, ") block [{x}, {y}, {z}] shared {} {{", k.shared_bytes)?;
    for (a, d) in k.arrays.iter() {
        writeln!(w, "  {a} = array \"{}\" {}[{}]", d.name, d.ty, d.len)?;
    }
    write_region_body(w, k, k.body, 1)?;
    writeln!(w, "}}")
}

fn indent(w: &mut String, depth: usize) {
    for _ in 0..depth {
        w.push_str("  ");
    }
}

fn write_region_body(w: &mut String, k: &Kernel, r: Region, depth: usize) -> fmt::Result {
    for &i in &k.regions[r].insts {
        indent(w, depth);
        write_inst_to(w, k, i, depth)?;
        w.push('\n');
    }
    Ok(())
}

/// Prints one instruction on one line (nested regions are elided as `{ ... }`).
pub fn inst_to_string(k: &Kernel, i: Inst) -> String {
    let mut s = String::new();
    let mut k2 = String::new();
    // A copy without regions: print the head only.
    let _ = write_head(&mut s, k, i);
    if !k.insts[i].kind.regions().is_empty() {
        k2.push_str(" { ... }");
    }
    s + &k2
}

fn list(vs: &[Value]) -> String {
    vs.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")
}

fn write_results(w: &mut String, k: &Kernel, i: Inst) -> fmt::Result {
    let res = &k.insts[i].results;
    if res.is_empty() {
        return Ok(());
    }
    let parts: Vec<String> = res.iter().map(|v| format!("{v}: {}", k.ty(*v))).collect();
    write!(w, "{} = ", parts.join(", "))
}

fn const_text(ty: Type, bits: u64) -> String {
    match ty {
        Type::F32 => {
            let x = f32::from_bits(bits as u32);
            let t = format!("{x:?}");
            if t.parse::<f32>().map(|y| y.to_bits()) == Ok(bits as u32) {
                t
            } else {
                format!("0x{:08x}", bits as u32)
            }
        }
        Type::F64 => {
            let x = f64::from_bits(bits);
            let t = format!("{x:?}");
            if t.parse::<f64>().map(|y| y.to_bits()) == Ok(bits) {
                t
            } else {
                format!("0x{bits:016x}")
            }
        }
        Type::PRED => (if bits & 1 == 1 { "true" } else { "false" }).to_string(),
        t => {
            let w = t.bits();
            let v = if w >= 64 { bits as i64 } else { ((bits << (64 - w)) as i64) >> (64 - w) };
            v.to_string()
        }
    }
}

fn lower(x: impl fmt::Debug) -> String {
    format!("{x:?}").to_ascii_lowercase()
}

fn binary_name(op: BinaryOp) -> &'static str {
    use BinaryOp::*;
    match op {
        Add => "add",
        Sub => "sub",
        Mul => "mul",
        MulHiS => "mulhi.s",
        MulHiU => "mulhi.u",
        DivS => "div.s",
        DivU => "div.u",
        RemS => "rem.s",
        RemU => "rem.u",
        And => "and",
        Or => "or",
        Xor => "xor",
        Shl => "shl",
        ShrU => "shr.u",
        ShrS => "shr.s",
        MinS => "min.s",
        MaxS => "max.s",
        MinU => "min.u",
        MaxU => "max.u",
        FAdd => "fadd",
        FSub => "fsub",
        FMul => "fmul",
        FDiv => "fdiv",
        FMin => "fmin",
        FMax => "fmax",
    }
}

fn special_text(s: Special) -> String {
    let axis = |a: u8| ["x", "y", "z"].get(a as usize).copied().unwrap_or("?");
    match s {
        Special::Tid(a) => format!("tid.{}", axis(a)),
        Special::Ntid(a) => format!("ntid.{}", axis(a)),
        Special::Ctaid(a) => format!("ctaid.{}", axis(a)),
        Special::Nctaid(a) => format!("nctaid.{}", axis(a)),
        Special::LaneId => "laneid".to_string(),
    }
}

fn mask_text(mask: &Option<Value>) -> String {
    mask.map(|m| format!(" if {m}")).unwrap_or_default()
}

fn write_head(w: &mut String, k: &Kernel, i: Inst) -> fmt::Result {
    use InstKind::*;
    write_results(w, k, i)?;
    match &k.insts[i].kind {
        Const { ty, bits } => write!(w, "const {}", const_text(*ty, *bits)),
        Special(s) => write!(w, "special {}", special_text(*s)),
        Unary(op, a) => write!(w, "{} {a}", lower(op)),
        Binary(op, a, b) => write!(w, "{} {a}, {b}", binary_name(*op)),
        Fma(a, b, c) => write!(w, "fma {a}, {b}, {c}"),
        Cmp(op, a, b) => write!(w, "cmp.{} {a}, {b}", lower(op)),
        Select(c, a, b) => write!(w, "select {c}, {a}, {b}"),
        Cast(op, a, _) => match op {
            CastOp::FToHalf(f) => write!(w, "cvt.f32_to_{f} {a}"),
            CastOp::HalfToF(f) => write!(w, "cvt.{f}_to_f32 {a}"),
            op => write!(w, "{} {a}", lower(op)),
        },
        Half(op, f, a, b) => write!(w, "h{}.{f} {a}, {b}", lower(op)),
        HalfFma(f, a, b, c) => write!(w, "hfma.{f} {a}, {b}, {c}"),
        F32x2ToFp8x2(f, hi, lo) => write!(w, "cvt.f32x2_to_{f}x2 {hi}, {lo}"),
        Fp8x2ToF16x2(f, a) => write!(w, "cvt.{f}x2_to_f16x2 {a}"),
        Extract(v, l) => write!(w, "extract {v}[{l}]"),
        Insert(v, l, x) => write!(w, "insert {v}[{l}], {x}"),
        Build(vs) => write!(w, "build [{}]", list(vs)),
        Shf(d, m, lo, hi, n) => write!(w, "shf.{}.{} {lo}, {hi}, {n}", lower(d), lower(m)),
        Prmt(a, b, s) => write!(w, "prmt {a}, {b}, {s}"),
        Lop3(a, b, c, lut) => write!(w, "lop3 {a}, {b}, {c}, 0x{lut:02x}"),
        Bfe { signed, a, pos, len } => {
            write!(w, "bfe.{} {a}, {pos}, {len}", if *signed { "s" } else { "u" })
        }
        SharedAddr(o) => write!(w, "shared_addr {o}"),
        PtrAdd(b, o) => write!(w, "ptr_add {b}, {o}"),
        Load { space, addr, mask, .. } => write!(w, "ld.{space} [{addr}]{}", mask_text(mask)),
        Store { space, addr, value, mask } => {
            write!(w, "st.{space} [{addr}], {value}{}", mask_text(mask))
        }
        ArrayGet(a, n) => write!(w, "{a}[{n}]"),
        ArraySet(a, n, v) => write!(w, "{a}[{n}] = {v}"),
        Atomic { op, space, addr, value } => write!(w, "atom.{space}.{} [{addr}], {value}", lower(op)),
        Shfl { mode, value, lane, clamp } => {
            write!(w, "shfl.{} {value}, {lane}, 0x{clamp:x}", lower(mode))
        }
        Barrier => write!(w, "bar.sync"),
        CpAsync { dst, src, size, src_size } => {
            write!(w, "cp.async.{size} [{dst}], [{src}]")?;
            if let Some(s) = src_size {
                write!(w, ", src_size {s}")?;
            }
            Ok(())
        }
        CpAsyncCommit => write!(w, "cp.async.commit"),
        CpAsyncWait(n) => write!(w, "cp.async.wait {n}"),
        Ldmatrix { num, trans, addr } => {
            write!(w, "ldmatrix.x{num}{} [{addr}]", if *trans { ".trans" } else { "" })
        }
        Mma(kind, a, b, c) => {
            let name = match kind {
                MmaKind::F16F32 => "m16n8k16.f32.f16.f16.f32".to_string(),
                MmaKind::Bf16F32 => "m16n8k16.f32.bf16.bf16.f32".to_string(),
                MmaKind::S8S32 => "m16n8k32.s32.s8.s8.s32".to_string(),
                MmaKind::Fp8F32(f) => format!("m16n8k32.f32.{f}.{f}.f32"),
            };
            write!(w, "mma.{name} {a}, {b}, {c}")
        }
        Wgmma { kind, n, a, b, acc } => {
            let name = match kind {
                MmaKind::F16F32 => format!("m64n{n}k16.f32.f16.f16"),
                MmaKind::Bf16F32 => format!("m64n{n}k16.f32.bf16.bf16"),
                MmaKind::S8S32 => format!("m64n{n}k32.s32.s8.s8"),
                MmaKind::Fp8F32(f) => format!("m64n{n}k32.f32.{f}.{f}"),
            };
            let acc: Vec<String> = acc.iter().map(|v| v.to_string()).collect();
            write!(w, "wgmma.{name} [{a}], [{b}], {}", acc.join(", "))
        }
        FenceProxyAsync => write!(w, "fence.proxy.async.shared"),
        TmemAlloc { dst, cols } => write!(w, "tcgen05.alloc [{dst}], {cols}"),
        TmemDealloc { taddr, cols } => write!(w, "tcgen05.dealloc {taddr}, {cols}"),
        TmemStore { taddr, values } => {
            let vs: Vec<String> = values.iter().map(|v| v.to_string()).collect();
            write!(w, "tcgen05.st.32x32b.x{} [{taddr}], {}", values.len(), vs.join(", "))
        }
        TmemLoad { taddr, num, ty } => write!(w, "tcgen05.ld.32x32b.x{num}.{ty} [{taddr}]"),
        Tcgen05Mma { kind, n, d, a, b, accumulate } => {
            let name = match kind {
                MmaKind::F16F32 => format!("m128n{n}k16.f32.f16.f16"),
                MmaKind::Bf16F32 => format!("m128n{n}k16.f32.bf16.bf16"),
                MmaKind::S8S32 => format!("m128n{n}k32.s32.s8.s8"),
                MmaKind::Fp8F32(f) => format!("m128n{n}k32.f32.{f}.{f}"),
            };
            write!(w, "tcgen05.mma.{name} [{d}], [{a}], [{b}], {accumulate}")
        }
        Tcgen05Commit { mbar } => write!(w, "tcgen05.commit [{mbar}]"),
        Tcgen05Fence { after } => write!(w, "tcgen05.fence::{}_thread_sync", if *after { "after" } else { "before" }),
        MbarrierInit { mbar, count } => write!(w, "mbarrier.init [{mbar}], {count}"),
        MbarrierWait { mbar, parity } => write!(w, "mbarrier.wait.parity [{mbar}], {parity}"),
        For { lo, hi, step, init, body, unroll } => {
            let args = &k.regions[*body].args;
            let iv = args.first().map(|v| v.to_string()).unwrap_or_else(|| "?".into());
            write!(w, "for {iv} = {lo} to {hi} step {step}")?;
            if !init.is_empty() {
                let pairs: Vec<String> = args
                    .iter()
                    .skip(1)
                    .zip(init)
                    .map(|(a, v)| format!("{a} = {v}"))
                    .collect();
                write!(w, " iter({})", pairs.join(", "))?;
            }
            match unroll {
                Unroll::None => Ok(()),
                Unroll::Full => write!(w, " unroll full"),
                Unroll::Factor(n) => write!(w, " unroll {n}"),
            }
        }
        If { cond, .. } => write!(w, "if {cond}"),
        Yield(vs) => {
            if vs.is_empty() {
                write!(w, "yield")
            } else {
                write!(w, "yield {}", list(vs))
            }
        }
    }
}

fn write_inst_to(w: &mut String, k: &Kernel, i: Inst, depth: usize) -> fmt::Result {
    write_head(w, k, i)?;
    match &k.insts[i].kind {
        InstKind::For { body, .. } => {
            w.push_str(" {\n");
            write_region_body(w, k, *body, depth + 1)?;
            indent(w, depth);
            w.push('}');
        }
        InstKind::If { then_region, else_region, .. } => {
            w.push_str(" {\n");
            write_region_body(w, k, *then_region, depth + 1)?;
            indent(w, depth);
            w.push('}');
            // An empty else (just `yield`) is elided.
            let e = &k.regions[*else_region].insts;
            let trivial = e.len() == 1 && matches!(&k.insts[e[0]].kind, InstKind::Yield(v) if v.is_empty());
            if !trivial {
                w.push_str(" else {\n");
                write_region_body(w, k, *else_region, depth + 1)?;
                indent(w, depth);
                w.push('}');
            }
        }
        _ => {}
    }
    Ok(())
}

impl fmt::Display for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&write_kernel(self))
    }
}
