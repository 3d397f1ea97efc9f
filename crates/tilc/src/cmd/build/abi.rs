//! The launch interface of a kernel built for a GPU: what a runtime must pass and compute to
//! launch it, read from the VM signature (names, dtypes, symbolic shapes, grid) and the lowered
//! SIMT program (parameter carriers, block size, shared memory). The JSON manifest
//! (`super::manifest`) and the C launcher (`super::c`) both print this one description.
//!
//! **Launch contract** (from `tilc-lower`): parameters in signature order; a tensor is a device
//! pointer to its packed bit stream (element i at bits [i·w, (i+1)·w) counted from bit 0 of
//! byte 0, row-major), zero-padded to a multiple of 16 bytes (at least 16); integer scalars of
//! up to 32 bits travel as `int32` (two's complement; booleans 0 or 1), wider ones as `int64`;
//! float scalars as `f32` holding the value rounded to their dtype (`f64` as `f64`). All shared
//! memory is dynamic (the PTX's `extern .shared tilc_smem`): pass its size at launch.

use tilc_dtype::DType;
use tilc_simt::{Scalar, Type as SimtType};
use tilc_vm::{ConstValue, Param, SymExpr, SymOp};

/// Tensor buffers are padded with zero bytes to a multiple of this.
pub const BUFFER_PADDING: u64 = 16;

/// Above this much dynamic shared memory the driver needs the kernel's
/// `CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES` raised before the launch.
pub const DEFAULT_SHARED_LIMIT: u32 = 48 * 1024;

/// An integer expression over the kernel's scalar arguments (a grid extent, a tensor extent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    /// A constant.
    Const(i64),
    /// The value of the parameter at this index (an integer scalar).
    Param(usize),
    /// `op(a, b)` with the VM's integer semantics (division and remainder truncate,
    /// `cdiv(a, b)` = ⌈a / b⌉).
    Bin(SymOp, Box<Expr>, Box<Expr>),
}

impl Expr {
    /// Text with parameter names: `cdiv(m, 64)`, `k * 3 / 8`.
    pub fn text(&self, params: &[ParamAbi]) -> String {
        fn go(e: &Expr, params: &[ParamAbi], top: bool, out: &mut String) {
            match e {
                Expr::Const(c) => out.push_str(&c.to_string()),
                Expr::Param(i) => out.push_str(&params[*i].name),
                Expr::Bin(op, a, b) => {
                    if let Some(name) = function_name(*op) {
                        out.push_str(name);
                        out.push('(');
                        go(a, params, true, out);
                        out.push_str(", ");
                        go(b, params, true, out);
                        out.push(')');
                        return;
                    }
                    if !top {
                        out.push('(');
                    }
                    go(a, params, false, out);
                    out.push_str(&format!(" {} ", infix(*op)));
                    go(b, params, false, out);
                    if !top {
                        out.push(')');
                    }
                }
            }
        }
        let mut out = String::new();
        go(self, params, true, &mut out);
        out
    }

    /// Evaluates with `arg(i)` the integer value of parameter i; `None` on division by zero or
    /// overflow.
    #[cfg(test)]
    pub fn eval(&self, arg: &dyn Fn(usize) -> i64) -> Option<i64> {
        match self {
            Expr::Const(c) => Some(*c),
            Expr::Param(i) => Some(arg(*i)),
            Expr::Bin(op, a, b) => op.apply(a.eval(arg)?, b.eval(arg)?),
        }
    }
}

/// The manifest's and C's name of an operator written as a function (`cdiv(a, b)`).
pub fn function_name(op: SymOp) -> Option<&'static str> {
    match op {
        SymOp::CeilDiv => Some("cdiv"),
        SymOp::Min => Some("min"),
        SymOp::Max => Some("max"),
        _ => None,
    }
}

/// The symbol of an infix operator.
pub fn infix(op: SymOp) -> &'static str {
    match op {
        SymOp::Add => "+",
        SymOp::Sub => "-",
        SymOp::Mul => "*",
        SymOp::Div => "/",
        SymOp::Rem => "%",
        SymOp::CeilDiv | SymOp::Min | SymOp::Max => unreachable!("written as functions"),
    }
}

/// The manifest's name of an operator.
pub fn op_name(op: SymOp) -> &'static str {
    match op {
        SymOp::Add => "add",
        SymOp::Sub => "sub",
        SymOp::Mul => "mul",
        SymOp::Div => "div",
        SymOp::Rem => "rem",
        SymOp::CeilDiv => "cdiv",
        SymOp::Min => "min",
        SymOp::Max => "max",
    }
}

/// How a scalar travels in the kernel's parameter space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalarAbi {
    /// 4-byte two's-complement integer.
    I32,
    /// 8-byte two's-complement integer.
    I64,
    /// IEEE binary32.
    F32,
    /// IEEE binary64.
    F64,
}

impl ScalarAbi {
    /// The manifest's name.
    pub fn name(self) -> &'static str {
        match self {
            ScalarAbi::I32 => "i32",
            ScalarAbi::I64 => "i64",
            ScalarAbi::F32 => "f32",
            ScalarAbi::F64 => "f64",
        }
    }

    /// The C type.
    pub fn c_type(self) -> &'static str {
        match self {
            ScalarAbi::I32 => "int32_t",
            ScalarAbi::I64 => "int64_t",
            ScalarAbi::F32 => "float",
            ScalarAbi::F64 => "double",
        }
    }
}

/// What a parameter is.
#[derive(Clone, Debug, PartialEq)]
pub enum ParamKind {
    /// A scalar of `dtype`, passed as `abi`.
    Scalar {
        /// Its dtype in the language.
        dtype: DType,
        /// How it is passed.
        abi: ScalarAbi,
    },
    /// A global tensor: a device pointer to its padded bit stream.
    Tensor {
        /// Element type.
        dtype: DType,
        /// Extents over the scalar parameters.
        shape: Vec<Expr>,
        /// Written by the kernel.
        out: bool,
        /// The alignment (bytes) the kernel assumes for the pointer.
        align: u32,
    },
}

/// One parameter.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamAbi {
    /// Its name in the source.
    pub name: String,
    /// Scalar or tensor.
    pub kind: ParamKind,
}

/// Everything a runtime needs to launch one kernel.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelAbi {
    /// The kernel's (and the PTX entry's) name.
    pub name: String,
    /// Its doc comment.
    pub doc: String,
    /// The compile-time parameters it was built with, in declaration order.
    pub constants: Vec<(String, ConstValue)>,
    /// Parameters in signature order.
    pub params: Vec<ParamAbi>,
    /// Grid extents x, y, z (missing ones are 1).
    pub grid: [Expr; 3],
    /// Threads per block in x, y, z.
    pub block: [u32; 3],
    /// Bytes of dynamic shared memory to pass at launch.
    pub dynamic_shared_bytes: u32,
}

/// The launch interface of `vm` as lowered to `simt`; an error names what does not line up
/// (a lowering bug, not a user error).
pub fn kernel_abi(vm: &tilc_vm::Kernel, simt: &tilc_simt::Kernel) -> Result<KernelAbi, String> {
    if vm.params.len() != simt.params.len() {
        return Err(format!(
            "kernel `{}` has {} parameters but its SIMT program {}",
            vm.name,
            vm.params.len(),
            simt.params.len()
        ));
    }
    let expr = |e: &SymExpr| -> Result<Expr, String> { convert(vm, e) };
    let mut params = Vec::with_capacity(vm.params.len());
    for (p, sp) in vm.params.iter().zip(&simt.params) {
        let name = vm.param_name(*p).to_string();
        let kind = match (p, sp.ty) {
            (Param::Scalar(v), SimtType::Scalar(s)) => {
                let abi = match s {
                    Scalar::I32 => ScalarAbi::I32,
                    Scalar::I64 => ScalarAbi::I64,
                    Scalar::F32 => ScalarAbi::F32,
                    Scalar::F64 => ScalarAbi::F64,
                    other => return Err(format!("scalar parameter `{name}` is passed as {other:?}, which has no launch ABI")),
                };
                ParamKind::Scalar { dtype: vm.ty(*v).dtype(), abi }
            }
            (Param::Tensor(g), SimtType::Ptr(_)) => {
                let gd = &vm.globals[*g];
                ParamKind::Tensor {
                    dtype: gd.dtype,
                    shape: gd.shape.iter().map(expr).collect::<Result<_, _>>()?,
                    out: gd.out,
                    align: sp.align.max(1),
                }
            }
            _ => return Err(format!("parameter `{name}` is a {} in the VM but {:?} in SIMT", if matches!(p, Param::Scalar(_)) { "scalar" } else { "tensor" }, sp.ty)),
        };
        params.push(ParamAbi { name, kind });
    }
    if vm.grid.is_empty() || vm.grid.len() > 3 {
        return Err(format!("kernel `{}` has a grid of {} dimensions", vm.name, vm.grid.len()));
    }
    let mut grid = [Expr::Const(1), Expr::Const(1), Expr::Const(1)];
    for (g, e) in grid.iter_mut().zip(&vm.grid) {
        *g = expr(e)?;
    }
    Ok(KernelAbi {
        name: vm.name.clone(),
        doc: vm.doc.clone(),
        constants: vm.consts.clone(),
        params,
        grid,
        block: simt.block_dim,
        dynamic_shared_bytes: simt.shared_bytes,
    })
}

fn convert(vm: &tilc_vm::Kernel, e: &SymExpr) -> Result<Expr, String> {
    Ok(match e {
        SymExpr::Const(c) => Expr::Const(*c),
        SymExpr::Param(v) => {
            let index = vm
                .params
                .iter()
                .position(|p| *p == Param::Scalar(*v))
                .ok_or_else(|| format!("kernel `{}`: a shape or the grid uses {v}, which is not a scalar parameter", vm.name))?;
            Expr::Param(index)
        }
        SymExpr::Bin(op, a, b) => Expr::Bin(*op, Box::new(convert(vm, a)?), Box::new(convert(vm, b)?)),
    })
}
