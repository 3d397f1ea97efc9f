//! The stable text form of a kernel (`tilc build --emit vm`, and the snapshots of tests).
//!
//! One line per instruction, nested bodies indented by two spaces; every result is printed
//! with its type (`v5: i32 = mul v3, v4`), and a value bound to a source name ends its line with
//! `// name`. Ids are spelled as their `Display` (`v3`, `g0`), so the debugger and the text
//! agree. The output depends only on the kernel, never on addresses or hash order.

use crate::ir::*;
use std::fmt::{self, Write};

/// Prints `k` in the text format.
pub fn print_kernel(k: &Kernel) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = write_kernel(&mut out, k);
    out
}

impl fmt::Display for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_kernel(f, self)
    }
}

fn write_kernel(w: &mut dyn Write, k: &Kernel) -> fmt::Result {
    for line in k.doc.lines() {
        if line.is_empty() {
            writeln!(w, "///")?;
        } else {
            writeln!(w, "/// {line}")?;
        }
    }
    write!(w, "kernel {}", k.name)?;
    if !k.consts.is_empty() {
        write!(w, "<")?;
        for (i, (n, v)) in k.consts.iter().enumerate() {
            write!(w, "{}{n} = {v}", if i > 0 { ", " } else { "" })?;
        }
        write!(w, ">")?;
    }
    writeln!(w)?;
    for p in &k.params {
        match *p {
            Param::Scalar(v) => writeln!(w, "  param {v}: {} // {}", k.ty(v), k.param_name(*p))?,
            Param::Tensor(g) => {
                let gd = &k.globals[g];
                write!(w, "  param {g}: {}global {}[", if gd.out { "out " } else { "" }, gd.dtype)?;
                for (i, e) in gd.shape.iter().enumerate() {
                    write!(w, "{}{}", if i > 0 { ", " } else { "" }, SymDisplay { expr: e })?;
                }
                writeln!(w, "] // {}", gd.name)?;
            }
        }
    }
    write!(w, "  grid [")?;
    for (i, e) in k.grid.iter().enumerate() {
        write!(w, "{}{}", if i > 0 { ", " } else { "" }, SymDisplay { expr: e })?;
    }
    writeln!(w, "] warps {}", k.warps)?;
    for (v, vd) in k.values.iter() {
        if vd.def == ValueDef::Var {
            write!(w, "  var {v}: {}", vd.ty)?;
            name_comment(w, vd)?;
            writeln!(w)?;
        }
    }
    for p in &k.pinned_layouts {
        let text = tilc_layout::to_expr(&p.layout).map(|e| e.to_string()).unwrap_or_else(|| p.layout.to_string());
        writeln!(w, "  layout {} @ {text}", p.value)?;
    }
    writeln!(w, "{{")?;
    write_body(w, k, &k.body, 1)?;
    writeln!(w, "}}")
}

fn name_comment(w: &mut dyn Write, vd: &ValueData) -> fmt::Result {
    match &vd.name {
        Some(n) => write!(w, " // {n}"),
        None => Ok(()),
    }
}

fn list(vals: &[Value]) -> String {
    vals.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")
}

fn write_body(w: &mut dyn Write, k: &Kernel, body: &[Inst], depth: usize) -> fmt::Result {
    for &i in body {
        write_inst(w, k, i, depth)?;
    }
    Ok(())
}

fn write_inst(w: &mut dyn Write, k: &Kernel, i: Inst, depth: usize) -> fmt::Result {
    use InstKind::*;
    let pad = "  ".repeat(depth);
    let data = &k.insts[i];
    write!(w, "{pad}")?;
    if let Some(r) = data.result {
        write!(w, "{r}: {} = ", k.ty(r))?;
    }
    match &data.kind {
        Const(c) => write!(w, "const {c}")?,
        BlockIdx { axis } => write!(w, "block.{}", ["x", "y", "z"].get(*axis as usize).unwrap_or(&"?"))?,
        Iota { axis, .. } => write!(w, "iota axis {axis}")?,
        Unary { op, x } => write!(w, "{} {x}", op.name())?,
        Binary { op, a, b } => write!(w, "{} {a}, {b}", op.name())?,
        Select { cond, a, b } => write!(w, "where {cond}, {a}, {b}")?,
        Cast { x, rounding, overflow, .. } => {
            let r = match rounding {
                CastRounding::NearestEven => "rne".to_string(),
                CastRounding::TowardZero => "rtz".to_string(),
                CastRounding::TowardPositive => "rup".to_string(),
                CastRounding::TowardNegative => "rdown".to_string(),
                CastRounding::Stochastic { seed, index: None } => format!("stochastic({seed})"),
                CastRounding::Stochastic { seed, index: Some(ix) } => format!("stochastic({seed}, {ix})"),
            };
            let o = match overflow {
                CastOverflow::Saturate => "sat",
                CastOverflow::Wrap => "nosat",
            };
            write!(w, "cast {x}, {r}, {o}")?
        }
        Full { value, .. } => write!(w, "full {value}")?,
        LoadGlobal { global, offsets, .. } => write!(w, "load {global}[{}]", list(offsets))?,
        StoreGlobal { global, offsets, value } => write!(w, "store {global}[{}], {value}", list(offsets))?,
        AllocShared { .. } => write!(w, "alloc_shared")?,
        LoadShared { shared, offsets, .. } => write!(w, "load_shared {shared}[{}]", list(offsets))?,
        StoreShared { shared, offsets, value } => write!(w, "store_shared {shared}[{}], {value}", list(offsets))?,
        CopyAsync { global, offsets, shared, shared_offsets, shape } => write!(
            w,
            "copy_async {global}[{}] -> {shared}[{}], {}",
            list(offsets),
            list(shared_offsets),
            ShapeDisplay(shape)
        )?,
        CopyAsyncCommit => write!(w, "copy_async_commit")?,
        CopyAsyncWait { pending } => write!(w, "copy_async_wait {pending}")?,
        Sync => write!(w, "sync")?,
        View { x, .. } => write!(w, "view {x}")?,
        Dot { a, b, c } => write!(w, "dot {a}, {b}, {c}")?,
        Reduce { op, x, axis, keepdim } => {
            write!(w, "{} {x}, axis {axis}{}", op.name(), if *keepdim { ", keepdim" } else { "" })?
        }
        Transpose { x, perm } => write!(w, "transpose {x}, {perm:?}")?,
        Reshape { x, .. } => write!(w, "reshape {x}")?,
        Broadcast { x, .. } => write!(w, "broadcast {x}")?,
        Hadamard { x, axis } => write!(w, "hadamard {x}, axis {axis}")?,
        Assign { var, value } => write!(w, "assign {var}, {value}")?,
        Assume { cond } => write!(w, "assume {cond}")?,
        For { var, start, end, step, body, unroll } => {
            write!(w, "for {var}: {} in range({start}, {end}, {step})", k.ty(*var))?;
            if let Some(u) = unroll {
                write!(w, " unroll {u}")?;
            }
            write!(w, " {{")?;
            name_comment(w, &k.values[*var])?;
            writeln!(w)?;
            write_body(w, k, body, depth + 1)?;
            return writeln!(w, "{pad}}}");
        }
        If { cond, then_body, else_body } => {
            writeln!(w, "if {cond} {{")?;
            write_body(w, k, then_body, depth + 1)?;
            if !else_body.is_empty() {
                writeln!(w, "{pad}}} else {{")?;
                write_body(w, k, else_body, depth + 1)?;
            }
            return writeln!(w, "{pad}}}");
        }
        While { cond_body, cond, body } => {
            writeln!(w, "while {{")?;
            write_body(w, k, cond_body, depth + 1)?;
            writeln!(w, "{pad}}} test {cond} do {{")?;
            write_body(w, k, body, depth + 1)?;
            return writeln!(w, "{pad}}}");
        }
    }
    if let Some(r) = data.result {
        name_comment(w, &k.values[r])?;
    }
    writeln!(w)
}
