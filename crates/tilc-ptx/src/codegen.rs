//! SIMT kernel → LLVM IR (one `ptx_kernel` function per kernel) in an inkwell module.
//!
//! How each SIMT construct is lowered, and where the result can differ from the SIMT emulator:
//! - kernels use calling convention 71 (`PTX_Kernel`, printed `.entry`); global pointers are
//!   `ptr addrspace(1)`, shared pointers `ptr addrspace(3)` into `@tilc_smem`, an `extern`
//!   zero-sized array aligned to 128 bytes (the dynamic shared memory, sized at launch);
//! - structured `for`/`if` become basic blocks with phis for carried values and results; a `for`
//!   is emitted rotated (guard, body, latch test); hinted loops the SIMT unroller could not
//!   unroll get `llvm.loop.unroll.*` metadata;
//! - masked loads and stores branch around the access and merge a zero (masked-off reads 0);
//! - register arrays are allocas indexed by constants, which SROA turns back into registers
//!   (SROA also runs at [`crate::OptLevel::O0`] so no array lands in local memory);
//! - arithmetic is plain LLVM: without fast-math flags the NVPTX backend prints `add.rn`,
//!   `mul.rn`, `div.rn`, `sqrt.rn` and never contracts to `fma`, which matches the emulator.
//!   Shifts clamp explicitly (LLVM shifts past the width are poison); float→int uses
//!   `fptosi.sat`/`fptoui.sat` (toward zero, saturating, NaN → 0 like `cvt.rzi.sat`);
//!   f32→f16/bf16 is `fptrunc` (round to nearest even, like `cvt.rn`).
//!   Known differences: LLVM folds constants with IEEE semantics but keeps NaN payloads where
//!   the hardware returns its canonical NaN (`fptrunc`/`cvt` of a NaN constant, `fneg`/`fabs`
//!   on NaN); `sdiv` of `MIN / -1` is undefined in LLVM (the emulator wraps); `min`/`max` of
//!   `-0` and `+0` follow the hardware; a `for` whose `iv + step` overflows i32 wraps.
//! - `floor`/`ceil`/`trunc`/`round` are `llvm.floor/ceil/trunc/roundeven` (`cvt.r{m,p,z,n}i`,
//!   exact, like the emulator). The transcendental ones are approximations on the GPU, where
//!   the emulator rounds the f64 function once: `exp2` is `ex2.approx.f32`, `exp(x)` is
//!   `ex2.approx(x·log2 e)`, `log2` is `lg2.approx.f32`, `log(x)` is `lg2.approx(x)·ln 2`; f64
//!   operands go through f32 (so f64 `exp`/`log` have only f32 accuracy on the GPU); `rsqrt`
//!   is `1 / sqrt` with `sqrt.rn` and `div.rn` in the operand type. Vector operands are
//!   computed lane by lane.
//! - atomics are `atomicrmw` with `monotonic` ordering on `addrspace(1)`/`(3)` (`atom.global` /
//!   `atom.shared`; `atom.*.add.u32` …), returning the old value as the emulator does.
//! - inline PTX for what LLVM has no intrinsic for, or where the exact instruction matters:
//!   `mma.sync`, `ldmatrix`, `cp.async` and its groups, `lop3`, `bfe`, and the fp8 `cvt`s. Funnel
//!   shifts use `llvm.fshl/fshr` (wrap) and `llvm.nvvm.fsh{l,r}.clamp`; `prmt` uses
//!   `llvm.nvvm.prmt`; shuffles `llvm.nvvm.shfl.sync.*`; the barrier
//!   `llvm.nvvm.barrier.cta.sync.aligned.all` (LLVM 22's name for `barrier0`).
//!
//! This module knows the SIMT IR and LLVM; it knows nothing of ptxas or of launching.

use std::collections::HashMap;

use inkwell::AddressSpace;
use inkwell::AtomicOrdering;
use inkwell::AtomicRMWBinOp;
use inkwell::FloatPredicate;
use inkwell::IntPredicate;
use inkwell::attributes::{Attribute, AttributeLoc};
use inkwell::basic_block::BasicBlock;
use inkwell::builder::{Builder, BuilderError};
use inkwell::context::Context;
use inkwell::intrinsics::Intrinsic;
use inkwell::module::{Linkage, Module};
use inkwell::types::{BasicMetadataTypeEnum, BasicType, BasicTypeEnum};
use inkwell::values::{
    BasicValue, BasicValueEnum, CallSiteValue, FunctionValue, GlobalValue, InstructionOpcode,
    InstructionValue, IntValue, PointerValue,
};
use tilc_simt::{
    Array, AtomicOp, BinaryOp, CastOp, CmpOp, Fp8Format, HalfFormat, HalfOp, InstKind, Kernel, MmaKind,
    Region, Scalar, ShfDir, ShfMode, ShflMode, Space, Special, Type, UnaryOp, Unroll, Value,
};

use crate::error::PtxError;

/// The name of the dynamic shared memory array every kernel of a module shares.
pub const SHARED_SYMBOL: &str = "tilc_smem";

impl From<BuilderError> for PtxError {
    fn from(e: BuilderError) -> PtxError {
        PtxError::Llvm {
            stage: "build",
            message: e.to_string(),
        }
    }
}

/// What an inline-asm statement may do, which decides its attributes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AsmKind {
    /// Computes its outputs from its inputs only (`memory(none)`): LLVM may fold, hoist, CSE.
    Pure,
    /// Warp-collective and pure (`mma.sync`): `convergent`, `memory(none)`.
    Collective,
    /// Warp-collective and reads memory (`ldmatrix`): `convergent`, may touch memory.
    CollectiveMemory,
    /// Touches memory or orders it (`cp.async`, its groups): side effects, `~{memory}`.
    Memory,
    /// Warp-collective with side effects on state LLVM does not see (tensor memory):
    /// `convergent`, side effects, `~{memory}`.
    CollectiveOrdered,
}

/// Lowers one kernel into `module`.
pub(crate) fn lower_kernel<'ctx>(
    ctx: &'ctx Context,
    module: &Module<'ctx>,
    kernel: &Kernel,
    min_blocks_per_sm: Option<u32>,
    hinted_loops: &mut usize,
) -> Result<FunctionValue<'ctx>, PtxError> {
    let smem = shared_memory(ctx, module);
    let param_types: Vec<BasicMetadataTypeEnum> = kernel
        .params
        .iter()
        .map(|p| llvm_type(ctx, p.ty).into())
        .collect();
    let fn_type = ctx.void_type().fn_type(&param_types, false);
    let func = module.add_function(&kernel.name, fn_type, Some(Linkage::External));
    func.set_call_conventions(71);
    let [x, y, z] = kernel.block_dim;
    // `.reqntid` tells ptxas the block size, so it can budget registers for it.
    func.add_attribute(
        AttributeLoc::Function,
        ctx.create_string_attribute("nvvm.reqntid", &format!("{x},{y},{z}")),
    );
    if let Some(n) = min_blocks_per_sm {
        func.add_attribute(AttributeLoc::Function, ctx.create_string_attribute("nvvm.minctasm", &n.to_string()));
    }
    for (n, p) in kernel.params.iter().enumerate() {
        if matches!(p.ty, Type::Ptr(_)) && p.align > 1 && p.align.is_power_of_two() {
            let kind = Attribute::get_named_enum_kind_id("align");
            func.add_attribute(
                AttributeLoc::Param(n as u32),
                ctx.create_enum_attribute(kind, p.align as u64),
            );
        }
    }
    let builder = ctx.create_builder();
    let entry = ctx.append_basic_block(func, "entry");
    builder.position_at_end(entry);
    let mut lower = Lower {
        ctx,
        module,
        b: builder,
        k: kernel,
        func,
        smem,
        vals: HashMap::new(),
        arrays: HashMap::new(),
        hinted_loops,
    };
    for (n, &arg) in kernel.regions[kernel.body].args.iter().enumerate() {
        let p = func
            .get_nth_param(n as u32)
            .ok_or_else(|| lower.err("parameter count mismatch"))?;
        p.set_name(&kernel.params[n].name);
        lower.vals.insert(arg, p);
    }
    for (array, data) in kernel.arrays.iter() {
        let elem = llvm_type(ctx, data.ty);
        let ty = elem.array_type(data.len);
        let slot = lower
            .b
            .build_alloca(ty, &format!("{}_{array}", sanitize(&data.name)))?;
        lower.arrays.insert(array, (slot, elem));
    }
    let yielded = lower.region(kernel.body, &[])?;
    if !yielded.is_empty() {
        return Err(lower.err("the kernel body ends in a yield"));
    }
    lower.b.build_return(None)?;
    Ok(func)
}

/// The module's `extern .shared .align 128 .b8 tilc_smem[]`.
fn shared_memory<'ctx>(ctx: &'ctx Context, module: &Module<'ctx>) -> GlobalValue<'ctx> {
    if let Some(g) = module.get_global(SHARED_SYMBOL) {
        return g;
    }
    let ty = ctx.i8_type().array_type(0);
    let g = module.add_global(ty, Some(AddressSpace::from(3u16)), SHARED_SYMBOL);
    g.set_linkage(Linkage::External);
    g.set_alignment(128);
    g
}

/// The LLVM type of a SIMT type.
pub(crate) fn llvm_type(ctx: &Context, ty: Type) -> BasicTypeEnum<'_> {
    match ty {
        Type::Scalar(s) => scalar_type(ctx, s),
        Type::Vector(s, n) => match scalar_type(ctx, s) {
            BasicTypeEnum::FloatType(f) => f.vec_type(n as u32).into(),
            BasicTypeEnum::IntType(i) => i.vec_type(n as u32).into(),
            other => other,
        },
        Type::Ptr(Space::Global) => ctx.ptr_type(AddressSpace::from(1u16)).into(),
        Type::Ptr(Space::Shared) => ctx.ptr_type(AddressSpace::from(3u16)).into(),
    }
}

fn scalar_type(ctx: &Context, s: Scalar) -> BasicTypeEnum<'_> {
    match s {
        Scalar::Pred => ctx.bool_type().into(),
        Scalar::I8 => ctx.i8_type().into(),
        Scalar::I16 => ctx.i16_type().into(),
        Scalar::I32 => ctx.i32_type().into(),
        Scalar::I64 => ctx.i64_type().into(),
        Scalar::F32 => ctx.f32_type().into(),
        Scalar::F64 => ctx.f64_type().into(),
    }
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

struct Lower<'a, 'ctx> {
    ctx: &'ctx Context,
    module: &'a Module<'ctx>,
    b: Builder<'ctx>,
    k: &'a Kernel,
    func: FunctionValue<'ctx>,
    smem: GlobalValue<'ctx>,
    vals: HashMap<Value, BasicValueEnum<'ctx>>,
    arrays: HashMap<Array, (PointerValue<'ctx>, BasicTypeEnum<'ctx>)>,
    hinted_loops: &'a mut usize,
}

impl<'a, 'ctx> Lower<'a, 'ctx> {
    fn err(&self, message: impl Into<String>) -> PtxError {
        PtxError::Lowering {
            kernel: self.k.name.clone(),
            message: message.into(),
        }
    }

    fn val(&self, v: Value) -> Result<BasicValueEnum<'ctx>, PtxError> {
        self.vals
            .get(&v)
            .copied()
            .ok_or_else(|| self.err(format!("{v} is used before it is defined")))
    }

    fn int(&self, v: Value) -> Result<IntValue<'ctx>, PtxError> {
        match self.val(v)? {
            BasicValueEnum::IntValue(i) => Ok(i),
            other => Err(self.err(format!("{v} should be an integer, is {}", other.get_type()))),
        }
    }

    fn ptr(&self, v: Value) -> Result<PointerValue<'ctx>, PtxError> {
        match self.val(v)? {
            BasicValueEnum::PointerValue(p) => Ok(p),
            other => Err(self.err(format!("{v} should be a pointer, is {}", other.get_type()))),
        }
    }

    fn ty(&self, v: Value) -> Type {
        self.k.ty(v)
    }

    fn i32c(&self, x: u64) -> IntValue<'ctx> {
        self.ctx.i32_type().const_int(x, false)
    }

    /// A constant of `ty` (a scalar or a splat vector) with the raw bits `bits`.
    fn constant(&self, ty: Type, bits: u64) -> Result<BasicValueEnum<'ctx>, PtxError> {
        let scalar = |s: Scalar| -> Result<BasicValueEnum<'ctx>, PtxError> {
            Ok(match s {
                Scalar::F32 => {
                    let i = self.ctx.i32_type().const_int(bits & 0xffff_ffff, false);
                    self.b.build_bit_cast(i, self.ctx.f32_type(), "")?
                }
                Scalar::F64 => {
                    let i = self.ctx.i64_type().const_int(bits, false);
                    self.b.build_bit_cast(i, self.ctx.f64_type(), "")?
                }
                s => scalar_type(self.ctx, s)
                    .into_int_type()
                    .const_int(bits & (s.mask() as u64), false)
                    .into(),
            })
        };
        match ty {
            Type::Scalar(s) => scalar(s),
            Type::Vector(s, n) => {
                let lane = scalar(s)?;
                let mut v = llvm_type(self.ctx, ty).into_vector_type().get_poison();
                for j in 0..n as u64 {
                    v = self.b.build_insert_element(v, lane, self.i32c(j), "")?;
                }
                Ok(v.into())
            }
            Type::Ptr(_) => Err(self.err("pointer constants do not exist")),
        }
    }

    fn intrinsic(
        &self,
        name: &str,
        tys: &[BasicTypeEnum<'ctx>],
    ) -> Result<FunctionValue<'ctx>, PtxError> {
        Intrinsic::find(name)
            .and_then(|i| i.get_declaration(self.module, tys))
            .ok_or_else(|| self.err(format!("LLVM has no intrinsic {name}")))
    }

    fn call(
        &self,
        f: FunctionValue<'ctx>,
        args: &[BasicValueEnum<'ctx>],
    ) -> Result<CallSiteValue<'ctx>, PtxError> {
        let args: Vec<_> = args.iter().map(|&a| a.into()).collect();
        Ok(self.b.build_call(f, &args, "")?)
    }

    fn call_value(
        &self,
        name: &str,
        tys: &[BasicTypeEnum<'ctx>],
        args: &[BasicValueEnum<'ctx>],
    ) -> Result<BasicValueEnum<'ctx>, PtxError> {
        let f = self.intrinsic(name, tys)?;
        self.call(f, args)?
            .try_as_basic_value()
            .basic()
            .ok_or_else(|| self.err(format!("{name} returns nothing")))
    }

    /// Emits inline PTX returning `ret` (a struct when it has several outputs) or nothing.
    fn asm(
        &self,
        ret: Option<BasicTypeEnum<'ctx>>,
        args: &[BasicValueEnum<'ctx>],
        text: &str,
        constraints: &str,
        kind: AsmKind,
    ) -> Result<Option<BasicValueEnum<'ctx>>, PtxError> {
        let params: Vec<BasicMetadataTypeEnum> = args.iter().map(|a| a.get_type().into()).collect();
        let fn_type = match ret {
            Some(t) => t.fn_type(&params, false),
            None => self.ctx.void_type().fn_type(&params, false),
        };
        let ordered = matches!(kind, AsmKind::Memory | AsmKind::CollectiveOrdered);
        let constraints = match (ordered, constraints.is_empty()) {
            (true, true) => "~{memory}".to_string(),
            (true, false) => format!("{constraints},~{{memory}}"),
            (false, _) => constraints.to_string(),
        };
        let side_effects = ordered;
        let callee = self.ctx.create_inline_asm(
            fn_type,
            text.to_string(),
            constraints,
            side_effects,
            false,
            None,
            false,
        );
        let args: Vec<_> = args.iter().map(|&a| a.into()).collect();
        let call = self.b.build_indirect_call(fn_type, callee, &args, "")?;
        let attr = |name: &str, val: u64| {
            self.ctx
                .create_enum_attribute(Attribute::get_named_enum_kind_id(name), val)
        };
        if matches!(kind, AsmKind::Collective | AsmKind::CollectiveMemory | AsmKind::CollectiveOrdered) {
            call.add_attribute(AttributeLoc::Function, attr("convergent", 0));
        }
        if matches!(kind, AsmKind::Pure | AsmKind::Collective) {
            // `memory(none)`: MemoryEffects with every location's bits clear.
            call.add_attribute(AttributeLoc::Function, attr("memory", 0));
            call.add_attribute(AttributeLoc::Function, attr("nounwind", 0));
        }
        Ok(call.try_as_basic_value().basic())
    }

    fn asm_value(
        &self,
        ret: BasicTypeEnum<'ctx>,
        args: &[BasicValueEnum<'ctx>],
        text: &str,
        constraints: &str,
        kind: AsmKind,
    ) -> Result<BasicValueEnum<'ctx>, PtxError> {
        self.asm(Some(ret), args, text, constraints, kind)?
            .ok_or_else(|| self.err("inline asm returned nothing"))
    }

    /// The fields of a struct an inline-asm call returned, gathered into a vector of `ty` (or the
    /// single value when `ty` is a scalar).
    fn gather(
        &self,
        ret: BasicValueEnum<'ctx>,
        ty: Type,
    ) -> Result<BasicValueEnum<'ctx>, PtxError> {
        let BasicValueEnum::StructValue(s) = ret else {
            return Ok(ret);
        };
        let mut v = llvm_type(self.ctx, ty).into_vector_type().get_poison();
        for j in 0..ty.lanes() {
            let field = self.b.build_extract_value(s, j, "")?;
            v = self
                .b
                .build_insert_element(v, field, self.i32c(j as u64), "")?;
        }
        Ok(v.into())
    }

    /// The lanes of a vector value as scalars (a scalar is its own single lane).
    fn lanes(&self, v: BasicValueEnum<'ctx>) -> Result<Vec<BasicValueEnum<'ctx>>, PtxError> {
        match v {
            BasicValueEnum::VectorValue(vec) => (0..vec.get_type().get_size())
                .map(|j| Ok(self.b.build_extract_element(vec, self.i32c(j as u64), "")?))
                .collect(),
            other => Ok(vec![other]),
        }
    }

    fn struct_of(&self, ty: BasicTypeEnum<'ctx>, n: usize) -> BasicTypeEnum<'ctx> {
        if n == 1 {
            ty
        } else {
            self.ctx.struct_type(&vec![ty; n], false).into()
        }
    }

    /// Lowers the instructions of `r` with its arguments bound to `args`; returns the values of
    /// its final `yield` (empty when it has none).
    fn region(
        &mut self,
        r: Region,
        args: &[BasicValueEnum<'ctx>],
    ) -> Result<Vec<BasicValueEnum<'ctx>>, PtxError> {
        let k = self.k;
        if r != k.body {
            for (&a, &v) in k.regions[r].args.iter().zip(args) {
                self.vals.insert(a, v);
            }
        }
        for &i in &k.regions[r].insts {
            if let InstKind::Yield(vs) = &k.insts[i].kind {
                return vs.iter().map(|&v| self.val(v)).collect();
            }
            let results = self.inst(i)?;
            for (&res, v) in k.insts[i].results.iter().zip(results) {
                v.set_name(&res.to_string());
                self.vals.insert(res, v);
            }
        }
        Ok(Vec::new())
    }

    /// Lowers one instruction; returns its results.
    fn inst(&mut self, i: tilc_simt::Inst) -> Result<Vec<BasicValueEnum<'ctx>>, PtxError> {
        let k = self.k;
        let result_ty = k.insts[i].results.first().map(|&r| k.ty(r));
        let one = |v: BasicValueEnum<'ctx>| Ok(vec![v]);
        match &k.insts[i].kind {
            InstKind::Const { ty, bits } => one(self.constant(*ty, *bits)?),
            InstKind::Special(s) => {
                let axis = |a: u8| ["x", "y", "z"].get(a as usize).copied().unwrap_or("x");
                let name = match s {
                    Special::Tid(a) => format!("llvm.nvvm.read.ptx.sreg.tid.{}", axis(*a)),
                    Special::Ntid(a) => format!("llvm.nvvm.read.ptx.sreg.ntid.{}", axis(*a)),
                    Special::Ctaid(a) => format!("llvm.nvvm.read.ptx.sreg.ctaid.{}", axis(*a)),
                    Special::Nctaid(a) => format!("llvm.nvvm.read.ptx.sreg.nctaid.{}", axis(*a)),
                    Special::LaneId => "llvm.nvvm.read.ptx.sreg.laneid".to_string(),
                };
                one(self.call_value(&name, &[], &[])?)
            }
            InstKind::Unary(op, a) => one(self.unary(*op, *a)?),
            InstKind::Binary(op, a, b) => one(self.binary(*op, *a, *b)?),
            InstKind::Fma(a, b, c) => {
                let t = llvm_type(self.ctx, self.ty(*a));
                one(self.call_value(
                    "llvm.fma",
                    &[t],
                    &[self.val(*a)?, self.val(*b)?, self.val(*c)?],
                )?)
            }
            InstKind::Cmp(op, a, b) => one(self.cmp(*op, *a, *b)?),
            InstKind::Select(c, a, b) => {
                let c = self.int(*c)?;
                one(self.b.build_select(c, self.val(*a)?, self.val(*b)?, "")?)
            }
            InstKind::Cast(op, a, to) => one(self.cast(*op, *a, *to)?),
            InstKind::Half(op, fmt, a, b) => {
                let (x, y) = (self.to_half(*a, *fmt)?, self.to_half(*b, *fmt)?);
                let r = match op {
                    HalfOp::Add => self.b.build_binop(InstructionOpcode::FAdd, x, y, "")?,
                    HalfOp::Sub => self.b.build_binop(InstructionOpcode::FSub, x, y, "")?,
                    HalfOp::Mul => self.b.build_binop(InstructionOpcode::FMul, x, y, "")?,
                    HalfOp::Min => self.call_value("llvm.minnum", &[x.get_type()], &[x, y])?,
                    HalfOp::Max => self.call_value("llvm.maxnum", &[x.get_type()], &[x, y])?,
                };
                one(self
                    .b
                    .build_bit_cast(r, llvm_type(self.ctx, self.ty(*a)), "")?)
            }
            InstKind::HalfFma(fmt, a, b, c) => {
                let (x, y, z) = (
                    self.to_half(*a, *fmt)?,
                    self.to_half(*b, *fmt)?,
                    self.to_half(*c, *fmt)?,
                );
                let r = self.call_value("llvm.fma", &[x.get_type()], &[x, y, z])?;
                one(self
                    .b
                    .build_bit_cast(r, llvm_type(self.ctx, self.ty(*a)), "")?)
            }
            InstKind::F32x2ToFp8x2(fmt, hi, lo) => {
                let text = format!("cvt.rn.satfinite.{}x2.f32 $0, $1, $2;", fp8_name(*fmt));
                let args = [self.val(*hi)?, self.val(*lo)?];
                one(self.asm_value(
                    self.ctx.i16_type().into(),
                    &args,
                    &text,
                    "=h,f,f",
                    AsmKind::Pure,
                )?)
            }
            InstKind::Fp8x2ToF16x2(fmt, a) => {
                let text = format!("cvt.rn.f16x2.{}x2 $0, $1;", fp8_name(*fmt));
                let r = self.asm_value(
                    self.ctx.i32_type().into(),
                    &[self.val(*a)?],
                    &text,
                    "=r,h",
                    AsmKind::Pure,
                )?;
                one(self
                    .b
                    .build_bit_cast(r, self.ctx.i16_type().vec_type(2), "")?)
            }
            InstKind::Extract(v, lane) => {
                let BasicValueEnum::VectorValue(vec) = self.val(*v)? else {
                    return Err(self.err("extract from a scalar"));
                };
                one(self
                    .b
                    .build_extract_element(vec, self.i32c(*lane as u64), "")?)
            }
            InstKind::Insert(v, lane, x) => {
                let BasicValueEnum::VectorValue(vec) = self.val(*v)? else {
                    return Err(self.err("insert into a scalar"));
                };
                one(self
                    .b
                    .build_insert_element(vec, self.val(*x)?, self.i32c(*lane as u64), "")?
                    .into())
            }
            InstKind::Build(vs) => {
                let ty = result_ty.ok_or_else(|| self.err("build without a result"))?;
                let mut vec = llvm_type(self.ctx, ty).into_vector_type().get_poison();
                for (j, &v) in vs.iter().enumerate() {
                    vec =
                        self.b
                            .build_insert_element(vec, self.val(v)?, self.i32c(j as u64), "")?;
                }
                one(vec.into())
            }
            InstKind::Shf(dir, mode, lo, hi, n) => {
                let name = match (dir, mode) {
                    (ShfDir::Left, ShfMode::Wrap) => "llvm.fshl",
                    (ShfDir::Right, ShfMode::Wrap) => "llvm.fshr",
                    (ShfDir::Left, ShfMode::Clamp) => "llvm.nvvm.fshl.clamp",
                    (ShfDir::Right, ShfMode::Clamp) => "llvm.nvvm.fshr.clamp",
                };
                let i32t = self.ctx.i32_type().into();
                one(self.call_value(
                    name,
                    &[i32t],
                    &[self.val(*hi)?, self.val(*lo)?, self.val(*n)?],
                )?)
            }
            InstKind::Prmt(a, b, sel) => one(self.call_value(
                "llvm.nvvm.prmt",
                &[],
                &[self.val(*a)?, self.val(*b)?, self.val(*sel)?],
            )?),
            InstKind::Lop3(a, b, c, lut) => {
                let text = format!("lop3.b32 $0, $1, $2, $3, {lut};");
                let args = [self.val(*a)?, self.val(*b)?, self.val(*c)?];
                one(self.asm_value(
                    self.ctx.i32_type().into(),
                    &args,
                    &text,
                    "=r,r,r,r",
                    AsmKind::Pure,
                )?)
            }
            InstKind::Bfe {
                signed,
                a,
                pos,
                len,
            } => {
                let text = format!("bfe.{}32 $0, $1, $2, $3;", if *signed { "s" } else { "u" });
                let args = [self.val(*a)?, self.val(*pos)?, self.val(*len)?];
                one(self.asm_value(
                    self.ctx.i32_type().into(),
                    &args,
                    &text,
                    "=r,r,r,r",
                    AsmKind::Pure,
                )?)
            }
            InstKind::SharedAddr(off) => {
                let base = self.smem.as_pointer_value();
                one(self.byte_gep(base, self.int(*off)?)?.into())
            }
            InstKind::PtrAdd(base, off) => {
                one(self.byte_gep(self.ptr(*base)?, self.int(*off)?)?.into())
            }
            InstKind::Load { ty, addr, mask, .. } => one(self.load(*ty, *addr, *mask)?),
            InstKind::Store {
                addr, value, mask, ..
            } => {
                self.store(*addr, *value, *mask)?;
                Ok(vec![])
            }
            InstKind::Atomic {
                op, addr, value, ..
            } => {
                let rmw = match op {
                    AtomicOp::And => AtomicRMWBinOp::And,
                    AtomicOp::Or => AtomicRMWBinOp::Or,
                    AtomicOp::Xor => AtomicRMWBinOp::Xor,
                    AtomicOp::Add => AtomicRMWBinOp::Add,
                    AtomicOp::MaxS => AtomicRMWBinOp::Max,
                    AtomicOp::MinS => AtomicRMWBinOp::Min,
                };
                let old = self.b.build_atomicrmw(
                    rmw,
                    self.ptr(*addr)?,
                    self.int(*value)?,
                    AtomicOrdering::Monotonic,
                )?;
                one(old.into())
            }
            InstKind::ArrayGet(a, n) => {
                let (slot, elem) = self.array_slot(*a, *n)?;
                let v = self.b.build_load(elem, slot, "")?;
                Ok(vec![v])
            }
            InstKind::ArraySet(a, n, v) => {
                let (slot, _) = self.array_slot(*a, *n)?;
                self.b.build_store(slot, self.val(*v)?)?;
                Ok(vec![])
            }
            InstKind::Shfl {
                mode,
                value,
                lane,
                clamp,
            } => {
                let m = match mode {
                    ShflMode::Idx => "idx",
                    ShflMode::Up => "up",
                    ShflMode::Down => "down",
                    ShflMode::Bfly => "bfly",
                };
                let t = if self.ty(*value) == Type::F32 {
                    "f32"
                } else {
                    "i32"
                };
                let name = format!("llvm.nvvm.shfl.sync.{m}.{t}");
                let all = self.ctx.i32_type().const_all_ones().into();
                one(self.call_value(
                    &name,
                    &[],
                    &[
                        all,
                        self.val(*value)?,
                        self.val(*lane)?,
                        self.i32c(*clamp as u64).into(),
                    ],
                )?)
            }
            InstKind::Barrier => {
                let f = self.intrinsic("llvm.nvvm.barrier.cta.sync.aligned.all", &[])?;
                self.call(f, &[self.i32c(0).into()])?;
                Ok(vec![])
            }
            InstKind::CpAsync {
                dst,
                src,
                size,
                src_size,
            } => {
                let cache = if *size == 16 { "cg" } else { "ca" };
                let dst = self
                    .b
                    .build_ptr_to_int(self.ptr(*dst)?, self.ctx.i32_type(), "")?
                    .into();
                let src = self
                    .b
                    .build_ptr_to_int(self.ptr(*src)?, self.ctx.i64_type(), "")?
                    .into();
                match src_size {
                    None => {
                        let text = format!("cp.async.{cache}.shared.global [$0], [$1], {size};");
                        self.asm(None, &[dst, src], &text, "r,l", AsmKind::Memory)?;
                    }
                    Some(s) => {
                        let text =
                            format!("cp.async.{cache}.shared.global [$0], [$1], {size}, $2;");
                        self.asm(
                            None,
                            &[dst, src, self.val(*s)?],
                            &text,
                            "r,l,r",
                            AsmKind::Memory,
                        )?;
                    }
                }
                Ok(vec![])
            }
            InstKind::CpAsyncCommit => {
                self.asm(None, &[], "cp.async.commit_group;", "", AsmKind::Memory)?;
                Ok(vec![])
            }
            InstKind::CpAsyncWait(n) => {
                self.asm(
                    None,
                    &[],
                    &format!("cp.async.wait_group {n};"),
                    "",
                    AsmKind::Memory,
                )?;
                Ok(vec![])
            }
            InstKind::Ldmatrix { num, trans, addr } => {
                let n = *num as usize;
                let outs: Vec<String> = (0..n).map(|j| format!("${j}")).collect();
                let text = format!(
                    "ldmatrix.sync.aligned.m8n8.x{n}{}.shared.b16 {{{}}}, [${n}];",
                    if *trans { ".trans" } else { "" },
                    outs.join(", ")
                );
                let constraints = format!("{}r", "=r,".repeat(n));
                let addr = self
                    .b
                    .build_ptr_to_int(self.ptr(*addr)?, self.ctx.i32_type(), "")?
                    .into();
                let ret = self.struct_of(self.ctx.i32_type().into(), n);
                let r =
                    self.asm_value(ret, &[addr], &text, &constraints, AsmKind::CollectiveMemory)?;
                one(self.gather(r, result_ty.unwrap_or(Type::I32))?)
            }
            InstKind::Mma(kind, a, b, c) => one(self.mma(*kind, *a, *b, *c)?),
            InstKind::Wgmma { kind, n, a, b, acc } => self.wgmma(*kind, *n, *a, *b, acc),
            InstKind::FenceProxyAsync => {
                self.asm(None, &[], "fence.proxy.async.shared::cta;", "", AsmKind::Memory)?;
                Ok(vec![])
            }
            InstKind::TmemAlloc { dst, cols } => {
                let text = format!("tcgen05.alloc.cta_group::1.sync.aligned.shared::cta.b32 [$0], {cols}; tcgen05.relinquish_alloc_permit.cta_group::1.sync.aligned;");
                let dst = self.shared_u32(*dst)?;
                self.asm(None, &[dst], &text, "r", AsmKind::CollectiveOrdered)?;
                Ok(vec![])
            }
            InstKind::TmemDealloc { taddr, cols } => {
                let text = format!("tcgen05.dealloc.cta_group::1.sync.aligned.b32 $0, {cols};");
                self.asm(None, &[self.val(*taddr)?], &text, "r", AsmKind::CollectiveOrdered)?;
                Ok(vec![])
            }
            InstKind::TmemStore { taddr, values } => {
                let n = values.len();
                let mut args = vec![self.val(*taddr)?];
                for &v in values {
                    args.push(self.as_b32(self.val(v)?)?);
                }
                let regs: Vec<String> = (1..=n).map(|j| format!("${j}")).collect();
                let text = format!("tcgen05.st.sync.aligned.32x32b.x{n}.b32 [$0], {{{}}}; tcgen05.wait::st.sync.aligned;", regs.join(", "));
                let constraints = format!("r{}", ",r".repeat(n));
                self.asm(None, &args, &text, &constraints, AsmKind::CollectiveOrdered)?;
                Ok(vec![])
            }
            InstKind::TmemLoad { taddr, num, ty } => {
                let n = usize::from(*num);
                let outs: Vec<String> = (0..n).map(|j| format!("${j}")).collect();
                let text = format!("tcgen05.ld.sync.aligned.32x32b.x{n}.b32 {{{}}}, [${n}]; tcgen05.wait::ld.sync.aligned;", outs.join(", "));
                let constraints = format!("{}r", "=r,".repeat(n));
                let ret = self.struct_of(self.ctx.i32_type().into(), n);
                let r = self.asm_value(ret, &[self.val(*taddr)?], &text, &constraints, AsmKind::CollectiveOrdered)?;
                let words: Vec<BasicValueEnum<'ctx>> = match r {
                    BasicValueEnum::StructValue(st) => (0..n as u32).map(|j| self.b.build_extract_value(st, j, "")).collect::<Result<_, _>>()?,
                    other => vec![other],
                };
                let want = scalar_type(self.ctx, *ty);
                words.into_iter().map(|w| Ok(self.b.build_bit_cast(w, want, "")?)).collect()
            }
            InstKind::Tcgen05Mma { kind, n, d, a, b, accumulate } => {
                let (k_name, idesc) = tcgen05_instruction(*kind, *n);
                let acc = self.b.build_int_z_extend(self.val(*accumulate)?.into_int_value(), self.ctx.i32_type(), "")?;
                let args = [
                    self.val(*d)?,
                    self.smem_descriptor(*a, SM100_DESCRIPTOR_VERSION)?,
                    self.smem_descriptor(*b, SM100_DESCRIPTOR_VERSION)?,
                    self.i32c(u64::from(idesc)).into(),
                    acc.into(),
                ];
                let text = format!("{{ .reg .pred %tilc_acc; setp.ne.b32 %tilc_acc, $4, 0; tcgen05.mma.cta_group::1.kind::{k_name} [$0], $1, $2, $3, %tilc_acc; }}");
                self.asm(None, &args, &text, "r,l,l,r,r", AsmKind::Memory)?;
                Ok(vec![])
            }
            InstKind::Tcgen05Commit { mbar } => {
                let mbar = self.shared_u32(*mbar)?;
                self.asm(None, &[mbar], "tcgen05.commit.cta_group::1.mbarrier::arrive::one.shared::cluster.b64 [$0];", "r", AsmKind::Memory)?;
                Ok(vec![])
            }
            InstKind::Tcgen05Fence { after } => {
                let text = format!("tcgen05.fence::{}_thread_sync;", if *after { "after" } else { "before" });
                self.asm(None, &[], &text, "", AsmKind::Memory)?;
                Ok(vec![])
            }
            InstKind::MbarrierInit { mbar, count } => {
                let mbar = self.shared_u32(*mbar)?;
                // The fence makes the initialised barrier visible to the async proxy, whose
                // `tcgen05.commit` arrives on it.
                self.asm(None, &[mbar], &format!("mbarrier.init.shared::cta.b64 [$0], {count}; fence.mbarrier_init.release.cluster;"), "r", AsmKind::Memory)?;
                Ok(vec![])
            }
            InstKind::MbarrierWait { mbar, parity } => {
                let mbar = self.shared_u32(*mbar)?;
                // `${:uid}` numbers each printed copy of the asm, so a duplicated wait keeps
                // distinct labels.
                let text = "{ .reg .pred %tilc_done; tilc_wait_${:uid}: mbarrier.try_wait.parity.shared::cta.b64 %tilc_done, [$0], $1; @!%tilc_done bra tilc_wait_${:uid}; }";
                self.asm(None, &[mbar, self.val(*parity)?], text, "r,r", AsmKind::Memory)?;
                Ok(vec![])
            }
            InstKind::For {
                lo,
                hi,
                step,
                init,
                body,
                unroll,
            } => self.for_loop(*lo, *hi, *step, init, *body, *unroll),
            InstKind::If {
                cond,
                then_region,
                else_region,
            } => self.if_else(i, *cond, *then_region, *else_region),
            InstKind::Yield(_) => Err(self.err("yield in the middle of a region")),
        }
    }

    fn unary(&self, op: UnaryOp, a: Value) -> Result<BasicValueEnum<'ctx>, PtxError> {
        let x = self.val(a)?;
        let t = x.get_type();
        Ok(match op {
            UnaryOp::Not => {
                let ones = self.constant(self.ty(a), u64::MAX)?;
                self.b.build_binop(InstructionOpcode::Xor, x, ones, "")?
            }
            UnaryOp::Neg => {
                let zero = self.constant(self.ty(a), 0)?;
                self.b.build_binop(InstructionOpcode::Sub, zero, x, "")?
            }
            UnaryOp::Popc => self.call_value("llvm.ctpop", &[t], &[x])?,
            UnaryOp::Clz => self.call_value(
                "llvm.ctlz",
                &[t],
                &[x, self.ctx.bool_type().const_zero().into()],
            )?,
            UnaryOp::FNeg => match x {
                BasicValueEnum::FloatValue(f) => self.b.build_float_neg(f, "")?.into(),
                BasicValueEnum::VectorValue(v) => self.b.build_float_neg(v, "")?.into(),
                _ => return Err(self.err("fneg of a non-float")),
            },
            UnaryOp::FAbs => self.call_value("llvm.fabs", &[t], &[x])?,
            UnaryOp::FSqrt => self.call_value("llvm.sqrt", &[t], &[x])?,
            UnaryOp::FFloor => self.call_value("llvm.floor", &[t], &[x])?,
            UnaryOp::FCeil => self.call_value("llvm.ceil", &[t], &[x])?,
            UnaryOp::FTrunc => self.call_value("llvm.trunc", &[t], &[x])?,
            UnaryOp::FRound => self.call_value("llvm.roundeven", &[t], &[x])?,
            UnaryOp::FExp
            | UnaryOp::FExp2
            | UnaryOp::FLog
            | UnaryOp::FLog2
            | UnaryOp::FRsqrt => {
                let lanes = self
                    .lanes(x)?
                    .into_iter()
                    .map(|l| self.transcendental(op, l))
                    .collect::<Result<Vec<_>, _>>()?;
                match x {
                    BasicValueEnum::VectorValue(v) => {
                        let mut out = v.get_type().get_poison();
                        for (j, l) in lanes.into_iter().enumerate() {
                            out = self.b.build_insert_element(out, l, self.i32c(j as u64), "")?;
                        }
                        out.into()
                    }
                    _ => lanes[0],
                }
            }
        })
    }

    /// One scalar lane of a transcendental unary operation (see the module docs).
    fn transcendental(
        &self,
        op: UnaryOp,
        x: BasicValueEnum<'ctx>,
    ) -> Result<BasicValueEnum<'ctx>, PtxError> {
        let BasicValueEnum::FloatValue(x) = x else {
            return Err(self.err(format!("{op:?} of a non-float")));
        };
        let f32t = self.ctx.f32_type();
        let ty = x.get_type();
        if op == UnaryOp::FRsqrt {
            let root = self.call_value("llvm.sqrt", &[ty.into()], &[x.into()])?;
            let one = ty.const_float(1.0);
            return Ok(self
                .b
                .build_float_div(one, root.into_float_value(), "")?
                .into());
        }
        let is_f64 = ty == self.ctx.f64_type();
        let x32 = if is_f64 {
            self.b.build_float_trunc(x, f32t, "")?
        } else {
            x
        };
        let log2e = f32t.const_float(std::f64::consts::LOG2_E);
        let ln2 = f32t.const_float(std::f64::consts::LN_2);
        let r = match op {
            UnaryOp::FExp2 => self.call_value("llvm.nvvm.ex2.approx", &[f32t.into()], &[x32.into()])?,
            UnaryOp::FExp => {
                let scaled = self.b.build_float_mul(x32, log2e, "")?;
                self.call_value("llvm.nvvm.ex2.approx", &[f32t.into()], &[scaled.into()])?
            }
            UnaryOp::FLog2 => self.call_value("llvm.nvvm.lg2.approx.f", &[], &[x32.into()])?,
            _ => {
                let l = self.call_value("llvm.nvvm.lg2.approx.f", &[], &[x32.into()])?;
                self.b.build_float_mul(l.into_float_value(), ln2, "")?.into()
            }
        };
        Ok(if is_f64 {
            self.b.build_float_ext(r.into_float_value(), ty, "")?.into()
        } else {
            r
        })
    }

    fn binary(&self, op: BinaryOp, a: Value, b: Value) -> Result<BasicValueEnum<'ctx>, PtxError> {
        use InstructionOpcode as O;
        let (x, y) = (self.val(a)?, self.val(b)?);
        let ty = self.ty(a);
        let t = x.get_type();
        let w = ty.elem().bits();
        let plain = |opc: O| -> Result<BasicValueEnum<'ctx>, PtxError> {
            Ok(self.b.build_binop(opc, x, y, "")?)
        };
        let intr = |name: &str| self.call_value(name, &[t], &[x, y]);
        match op {
            BinaryOp::Add => plain(O::Add),
            BinaryOp::Sub => plain(O::Sub),
            BinaryOp::Mul => plain(O::Mul),
            BinaryOp::DivS => plain(O::SDiv),
            BinaryOp::DivU => plain(O::UDiv),
            BinaryOp::RemS => plain(O::SRem),
            BinaryOp::RemU => plain(O::URem),
            BinaryOp::And => plain(O::And),
            BinaryOp::Or => plain(O::Or),
            BinaryOp::Xor => plain(O::Xor),
            BinaryOp::FAdd => plain(O::FAdd),
            BinaryOp::FSub => plain(O::FSub),
            BinaryOp::FMul => plain(O::FMul),
            BinaryOp::FDiv => plain(O::FDiv),
            BinaryOp::MinS => intr("llvm.smin"),
            BinaryOp::MaxS => intr("llvm.smax"),
            BinaryOp::MinU => intr("llvm.umin"),
            BinaryOp::MaxU => intr("llvm.umax"),
            BinaryOp::FMin => intr("llvm.minnum"),
            BinaryOp::FMax => intr("llvm.maxnum"),
            BinaryOp::MulHiS | BinaryOp::MulHiU => {
                let signed = op == BinaryOp::MulHiS;
                let wide_scalar = match w {
                    8 => self.ctx.i16_type(),
                    16 => self.ctx.i32_type(),
                    32 => self.ctx.i64_type(),
                    _ => self.ctx.i128_type(),
                };
                let wide: BasicTypeEnum = match ty {
                    Type::Vector(_, n) => wide_scalar.vec_type(n as u32).into(),
                    _ => wide_scalar.into(),
                };
                let ext = if signed { O::SExt } else { O::ZExt };
                let (xw, yw) = (
                    self.b.build_cast(ext, x, wide, "")?,
                    self.b.build_cast(ext, y, wide, "")?,
                );
                let p = self.b.build_binop(O::Mul, xw, yw, "")?;
                let shift = self.splat_int(wide, w as u64)?;
                let hi = self.b.build_binop(O::LShr, p, shift, "")?;
                Ok(self.b.build_cast(O::Trunc, hi, t, "")?)
            }
            BinaryOp::Shl | BinaryOp::ShrU => {
                let opc = if op == BinaryOp::Shl { O::Shl } else { O::LShr };
                let shifted = plain(opc)?;
                if self
                    .k
                    .const_int(b)
                    .is_some_and(|n| (0..w as i64).contains(&n))
                {
                    return Ok(shifted);
                }
                // PTX `shl`/`shr` clamp the amount; LLVM's are poison past the width.
                let wv = self.constant(ty, w as u64)?;
                let over = self.icmp(IntPredicate::UGE, y, wv)?;
                let zero = self.constant(ty, 0)?;
                self.select(over, zero, shifted)
            }
            BinaryOp::ShrS => {
                let amount = if self
                    .k
                    .const_int(b)
                    .is_some_and(|n| (0..w as i64).contains(&n))
                {
                    y
                } else {
                    let max = self.constant(ty, (w - 1) as u64)?;
                    self.call_value("llvm.umin", &[t], &[y, max])?
                };
                Ok(self.b.build_binop(O::AShr, x, amount, "")?)
            }
        }
    }

    fn splat_int(&self, ty: BasicTypeEnum<'ctx>, x: u64) -> Result<BasicValueEnum<'ctx>, PtxError> {
        Ok(match ty {
            BasicTypeEnum::IntType(i) => i.const_int(x, false).into(),
            BasicTypeEnum::VectorType(v) => {
                let lane = v.get_element_type().into_int_type().const_int(x, false);
                let mut out = v.get_poison();
                for j in 0..v.get_size() {
                    out = self
                        .b
                        .build_insert_element(out, lane, self.i32c(j as u64), "")?;
                }
                out.into()
            }
            _ => return Err(self.err("integer splat of a non-integer type")),
        })
    }

    /// An integer comparison of scalars or vectors; the result is `i1` or a vector of `i1`.
    fn icmp(
        &self,
        pred: IntPredicate,
        x: BasicValueEnum<'ctx>,
        y: BasicValueEnum<'ctx>,
    ) -> Result<BasicValueEnum<'ctx>, PtxError> {
        match (x, y) {
            (BasicValueEnum::IntValue(a), BasicValueEnum::IntValue(b)) => {
                Ok(self.b.build_int_compare(pred, a, b, "")?.into())
            }
            (BasicValueEnum::VectorValue(a), BasicValueEnum::VectorValue(b)) => {
                Ok(self.b.build_int_compare(pred, a, b, "")?.into())
            }
            _ => Err(self.err("integer comparison of non-integers")),
        }
    }

    /// `cond ? a : b` with an `i1` or a lane-wise vector-of-`i1` condition.
    fn select(
        &self,
        cond: BasicValueEnum<'ctx>,
        a: BasicValueEnum<'ctx>,
        b: BasicValueEnum<'ctx>,
    ) -> Result<BasicValueEnum<'ctx>, PtxError> {
        match cond {
            BasicValueEnum::IntValue(c) => Ok(self.b.build_select(c, a, b, "")?),
            BasicValueEnum::VectorValue(c) => Ok(self.b.build_select(c, a, b, "")?),
            _ => Err(self.err("select on a non-predicate")),
        }
    }

    fn cmp(&self, op: CmpOp, a: Value, b: Value) -> Result<BasicValueEnum<'ctx>, PtxError> {
        let (mut x, mut y) = (self.val(a)?, self.val(b)?);
        if let (BasicValueEnum::PointerValue(p), BasicValueEnum::PointerValue(q)) = (x, y) {
            let it = if self.ty(a) == Type::GLOBAL_PTR {
                self.ctx.i64_type()
            } else {
                self.ctx.i32_type()
            };
            x = self.b.build_ptr_to_int(p, it, "")?.into();
            y = self.b.build_ptr_to_int(q, it, "")?.into();
        }
        let ip = |p| self.icmp(p, x, y);
        let fp = |p| -> Result<BasicValueEnum<'ctx>, PtxError> {
            Ok(self
                .b
                .build_float_compare(p, x.into_float_value(), y.into_float_value(), "")?
                .into())
        };
        match op {
            CmpOp::Eq => ip(IntPredicate::EQ),
            CmpOp::Ne => ip(IntPredicate::NE),
            CmpOp::Slt => ip(IntPredicate::SLT),
            CmpOp::Sle => ip(IntPredicate::SLE),
            CmpOp::Sgt => ip(IntPredicate::SGT),
            CmpOp::Sge => ip(IntPredicate::SGE),
            CmpOp::Ult => ip(IntPredicate::ULT),
            CmpOp::Ule => ip(IntPredicate::ULE),
            CmpOp::Ugt => ip(IntPredicate::UGT),
            CmpOp::Uge => ip(IntPredicate::UGE),
            CmpOp::FEq => fp(FloatPredicate::OEQ),
            CmpOp::FNe => fp(FloatPredicate::UNE),
            CmpOp::FLt => fp(FloatPredicate::OLT),
            CmpOp::FLe => fp(FloatPredicate::OLE),
            CmpOp::FGt => fp(FloatPredicate::OGT),
            CmpOp::FGe => fp(FloatPredicate::OGE),
        }
    }

    fn half_type(&self, fmt: HalfFormat, ty: Type) -> BasicTypeEnum<'ctx> {
        let h = match fmt {
            HalfFormat::F16 => self.ctx.f16_type(),
            HalfFormat::BF16 => self.ctx.bf16_type(),
        };
        match ty {
            Type::Vector(_, n) => h.vec_type(n as u32).into(),
            _ => h.into(),
        }
    }

    /// An i16 / i16x2 value reinterpreted as half / <2 x half> (or bfloat).
    fn to_half(&self, v: Value, fmt: HalfFormat) -> Result<BasicValueEnum<'ctx>, PtxError> {
        Ok(self
            .b
            .build_bit_cast(self.val(v)?, self.half_type(fmt, self.ty(v)), "")?)
    }

    fn cast(&self, op: CastOp, a: Value, to: Type) -> Result<BasicValueEnum<'ctx>, PtxError> {
        use InstructionOpcode as O;
        let x = self.val(a)?;
        let from = self.ty(a);
        let tt = llvm_type(self.ctx, to);
        let c = |opc: O| -> Result<BasicValueEnum<'ctx>, PtxError> {
            Ok(self.b.build_cast(opc, x, tt, "")?)
        };
        match op {
            CastOp::SExt => c(O::SExt),
            CastOp::ZExt => c(O::ZExt),
            CastOp::Trunc => c(O::Trunc),
            CastOp::Bitcast => Ok(self.b.build_bit_cast(x, tt, "")?),
            CastOp::SToF => c(O::SIToFP),
            CastOp::UToF => c(O::UIToFP),
            CastOp::FToS => self.call_value("llvm.fptosi.sat", &[tt, x.get_type()], &[x]),
            CastOp::FToU => self.call_value("llvm.fptoui.sat", &[tt, x.get_type()], &[x]),
            CastOp::FConvert => c(if to.elem().bits() > from.elem().bits() {
                O::FPExt
            } else {
                O::FPTrunc
            }),
            CastOp::FToHalf(fmt) => {
                let h = self
                    .b
                    .build_cast(O::FPTrunc, x, self.half_type(fmt, from), "")?;
                Ok(self.b.build_bit_cast(h, tt, "")?)
            }
            CastOp::HalfToF(fmt) => {
                let h = self.b.build_bit_cast(x, self.half_type(fmt, from), "")?;
                Ok(self.b.build_cast(O::FPExt, h, tt, "")?)
            }
        }
    }

    fn byte_gep(
        &self,
        base: PointerValue<'ctx>,
        off: IntValue<'ctx>,
    ) -> Result<PointerValue<'ctx>, PtxError> {
        // SAFETY: an `i8` GEP only computes an address; SIMT's verifier and emulator own the
        // question of whether it is in bounds, and no `inbounds` promise is made to LLVM.
        Ok(unsafe { self.b.build_gep(self.ctx.i8_type(), base, &[off], "")? })
    }

    fn array_slot(
        &self,
        a: Array,
        n: u32,
    ) -> Result<(PointerValue<'ctx>, BasicTypeEnum<'ctx>), PtxError> {
        let &(base, elem) = self
            .arrays
            .get(&a)
            .ok_or_else(|| self.err(format!("unknown register array {a}")))?;
        let len = self.k.arrays[a].len;
        let arr = elem.array_type(len);
        // SAFETY: the verifier checked `n < len`, so the element is inside the alloca.
        let p = unsafe {
            self.b
                .build_in_bounds_gep(arr, base, &[self.i32c(0), self.i32c(n as u64)], "")?
        };
        Ok((p, elem))
    }

    fn set_align(&self, inst: Option<InstructionValue<'ctx>>, bytes: u32) -> Result<(), PtxError> {
        if let Some(inst) = inst {
            inst.set_alignment(bytes)
                .map_err(|e| self.err(format!("alignment {bytes}: {e:?}")))?;
        }
        Ok(())
    }

    fn load(
        &mut self,
        ty: Type,
        addr: Value,
        mask: Option<Value>,
    ) -> Result<BasicValueEnum<'ctx>, PtxError> {
        let p = self.ptr(addr)?;
        let lt = llvm_type(self.ctx, ty);
        let bytes = ty
            .bytes()
            .ok_or_else(|| self.err("a predicate cannot be loaded"))?;
        let Some(m) = mask else {
            let v = self.b.build_load(lt, p, "")?;
            self.set_align(v.as_instruction_value(), bytes)?;
            return Ok(v);
        };
        let m = self.int(m)?;
        let before = self.current_block()?;
        let then_bb = self.ctx.append_basic_block(self.func, "load.on");
        let join = self.ctx.append_basic_block(self.func, "load.join");
        self.b.build_conditional_branch(m, then_bb, join)?;
        self.b.position_at_end(then_bb);
        let v = self.b.build_load(lt, p, "")?;
        self.set_align(v.as_instruction_value(), bytes)?;
        self.b.build_unconditional_branch(join)?;
        self.b.position_at_end(join);
        let phi = self.b.build_phi(lt, "")?;
        let zero = lt.const_zero();
        phi.add_incoming(&[(&zero, before), (&v, then_bb)]);
        Ok(phi.as_basic_value())
    }

    fn store(&mut self, addr: Value, value: Value, mask: Option<Value>) -> Result<(), PtxError> {
        let p = self.ptr(addr)?;
        let v = self.val(value)?;
        let bytes = self
            .ty(value)
            .bytes()
            .ok_or_else(|| self.err("a predicate cannot be stored"))?;
        let join = match mask {
            None => None,
            Some(m) => {
                let m = self.int(m)?;
                let then_bb = self.ctx.append_basic_block(self.func, "store.on");
                let join = self.ctx.append_basic_block(self.func, "store.join");
                self.b.build_conditional_branch(m, then_bb, join)?;
                self.b.position_at_end(then_bb);
                Some(join)
            }
        };
        let st = self.b.build_store(p, v)?;
        self.set_align(Some(st), bytes)?;
        if let Some(join) = join {
            self.b.build_unconditional_branch(join)?;
            self.b.position_at_end(join);
        }
        Ok(())
    }

    fn current_block(&self) -> Result<BasicBlock<'ctx>, PtxError> {
        self.b
            .get_insert_block()
            .ok_or_else(|| self.err("builder has no position"))
    }

    fn mma(
        &self,
        kind: MmaKind,
        a: Value,
        b: Value,
        c: Value,
    ) -> Result<BasicValueEnum<'ctx>, PtxError> {
        let (shape, types, acc) = match kind {
            MmaKind::F16F32 => ("m16n8k16", "f32.f16.f16.f32", "f"),
            MmaKind::Bf16F32 => ("m16n8k16", "f32.bf16.bf16.f32", "f"),
            MmaKind::S8S32 => ("m16n8k32", "s32.s8.s8.s32", "r"),
            MmaKind::Fp8F32(Fp8Format::E4M3) => ("m16n8k32", "f32.e4m3.e4m3.f32", "f"),
            MmaKind::Fp8F32(Fp8Format::E5M2) => ("m16n8k32", "f32.e5m2.e5m2.f32", "f"),
        };
        let text = format!(
            "mma.sync.aligned.{shape}.row.col.{types} {{$0, $1, $2, $3}}, {{$4, $5, $6, $7}}, {{$8, $9}}, {{$10, $11, $12, $13}};"
        );
        let constraints =
            format!("={acc},={acc},={acc},={acc},r,r,r,r,r,r,{acc},{acc},{acc},{acc}");
        let mut args = self.lanes(self.val(a)?)?;
        args.extend(self.lanes(self.val(b)?)?);
        args.extend(self.lanes(self.val(c)?)?);
        if args.len() != 10 {
            return Err(self.err(format!(
                "mma operands have {} registers, not 4 + 2 + 4",
                args.len()
            )));
        }
        let acc_ty = kind.acc_type();
        let ret = self.struct_of(scalar_type(self.ctx, acc_ty.elem()), 4);
        let r = self.asm_value(ret, &args, &text, &constraints, AsmKind::Collective)?;
        self.gather(r, acc_ty)
    }

    /// The 64-bit shared-memory matrix descriptor of an address in [`tilc_simt::wgmma_offset`]'s
    /// layout: start address, leading and stride byte offsets (each in 16-byte units), no
    /// swizzle (layout type 0), base offset 0; `version` goes to bits 46..48 (0 for wgmma, 1
    /// for tcgen05).
    fn smem_descriptor(&self, addr: Value, version: u64) -> Result<BasicValueEnum<'ctx>, PtxError> {
        let i64t = self.ctx.i64_type();
        let a = self.b.build_ptr_to_int(self.ptr(addr)?, self.ctx.i32_type(), "")?;
        let a = self.b.build_int_z_extend(a, i64t, "")?;
        let start = self.b.build_and(a, i64t.const_int(0x3ffff, false), "")?;
        let start = self.b.build_right_shift(start, i64t.const_int(4, false), false, "")?;
        let fixed = (u64::from(tilc_simt::WGMMA_LBO >> 4) << 16) | (u64::from(tilc_simt::WGMMA_SBO >> 4) << 32) | (version << 46);
        Ok(self.b.build_or(start, i64t.const_int(fixed, false), "")?.into())
    }

    /// A shared pointer as the 32-bit shared-window address inline PTX takes.
    fn shared_u32(&self, v: Value) -> Result<BasicValueEnum<'ctx>, PtxError> {
        Ok(self.b.build_ptr_to_int(self.ptr(v)?, self.ctx.i32_type(), "")?.into())
    }

    /// A 32-bit value as i32 bits (f32 bit-cast), for `.b32` operands.
    fn as_b32(&self, v: BasicValueEnum<'ctx>) -> Result<BasicValueEnum<'ctx>, PtxError> {
        if v.is_float_value() {
            Ok(self.b.build_bit_cast(v, self.ctx.i32_type(), "")?)
        } else {
            Ok(v)
        }
    }

    /// A synchronous `wgmma` k-step: fence, `wgmma.mma_async`, commit, wait for it.
    fn wgmma(
        &self,
        kind: MmaKind,
        n: u16,
        a: Value,
        b: Value,
        acc: &[Value],
    ) -> Result<Vec<BasicValueEnum<'ctx>>, PtxError> {
        let (k, types, reg, extra) = match kind {
            MmaKind::F16F32 => (16, "f32.f16.f16", "f", ", 1, 1, 0, 0"),
            MmaKind::Bf16F32 => (16, "f32.bf16.bf16", "f", ", 1, 1, 0, 0"),
            MmaKind::S8S32 => (32, "s32.s8.s8", "r", ""),
            MmaKind::Fp8F32(Fp8Format::E4M3) => (32, "f32.e4m3.e4m3", "f", ", 1, 1"),
            MmaKind::Fp8F32(Fp8Format::E5M2) => (32, "f32.e5m2.e5m2", "f", ", 1, 1"),
        };
        let m = usize::from(n / 2);
        let mut args = Vec::with_capacity(m + 2);
        args.push(self.smem_descriptor(a, 0)?);
        args.push(self.smem_descriptor(b, 0)?);
        for &c in acc {
            args.extend(self.lanes(self.val(c)?)?);
        }
        if args.len() != m + 2 {
            return Err(self.err(format!("wgmma n = {n} has {} accumulator registers, not {m}", args.len() - 2)));
        }
        let outs: Vec<String> = (0..m).map(|j| format!("${j}")).collect();
        let text = format!(
            "{{ .reg .pred %tilc_d; setp.ne.b32 %tilc_d, 1, 0; wgmma.fence.sync.aligned; wgmma.mma_async.sync.aligned.m64n{n}k{k}.{types} {{{}}}, ${m}, ${}, %tilc_d{extra}; wgmma.commit_group.sync.aligned; wgmma.wait_group.sync.aligned 0; }}",
            outs.join(", "),
            m + 1
        );
        let tied: Vec<String> = (0..m).map(|j| j.to_string()).collect();
        let constraints = format!("{}l,l,{}", format!("={reg},").repeat(m), tied.join(","));
        let acc_ty = kind.acc_type();
        let ret = self.struct_of(scalar_type(self.ctx, acc_ty.elem()), m);
        let r = self.asm_value(ret, &args, &text, &constraints, AsmKind::CollectiveMemory)?;
        let BasicValueEnum::StructValue(s) = r else {
            return Err(self.err("wgmma returned no struct"));
        };
        let mut out = Vec::with_capacity(acc.len());
        for j in 0..acc.len() {
            let mut v = llvm_type(self.ctx, acc_ty).into_vector_type().get_poison();
            for e in 0..4u32 {
                let field = self.b.build_extract_value(s, 4 * j as u32 + e, "")?;
                v = self.b.build_insert_element(v, field, self.i32c(u64::from(e)), "")?;
            }
            out.push(v.into());
        }
        Ok(out)
    }

    fn for_loop(
        &mut self,
        lo: Value,
        hi: Value,
        step: Value,
        init: &[Value],
        body: Region,
        unroll: Unroll,
    ) -> Result<Vec<BasicValueEnum<'ctx>>, PtxError> {
        let (lo, hi, step) = (self.int(lo)?, self.int(hi)?, self.int(step)?);
        let init: Vec<BasicValueEnum> = init
            .iter()
            .map(|&v| self.val(v))
            .collect::<Result<_, _>>()?;
        let pre = self.current_block()?;
        let body_bb = self.ctx.append_basic_block(self.func, "for.body");
        let exit = self.ctx.append_basic_block(self.func, "for.exit");
        let enter = self.b.build_int_compare(IntPredicate::SLT, lo, hi, "")?;
        self.b.build_conditional_branch(enter, body_bb, exit)?;

        self.b.position_at_end(body_bb);
        let iv = self.b.build_phi(self.ctx.i32_type(), "")?;
        let carried: Vec<_> = init
            .iter()
            .map(|v| self.b.build_phi(v.get_type(), ""))
            .collect::<Result<_, _>>()?;
        let mut args = vec![iv.as_basic_value()];
        args.extend(carried.iter().map(|p| p.as_basic_value()));
        let next_vals = self.region(body, &args)?;
        if next_vals.len() != init.len() {
            return Err(self.err("a loop body yields a different number of values than it carries"));
        }
        let latch = self.current_block()?;
        let next = self
            .b
            .build_int_add(iv.as_basic_value().into_int_value(), step, "")?;
        let again = self.b.build_int_compare(IntPredicate::SLT, next, hi, "")?;
        let back = self.b.build_conditional_branch(again, body_bb, exit)?;
        if unroll != Unroll::None {
            crate::metadata::set_unroll(self.ctx, back, unroll);
            *self.hinted_loops += 1;
        }
        iv.add_incoming(&[(&lo, pre), (&next, latch)]);
        for ((phi, start), n) in carried.iter().zip(&init).zip(&next_vals) {
            phi.add_incoming(&[(start, pre), (n, latch)]);
        }

        self.b.position_at_end(exit);
        let mut results = Vec::new();
        for (start, n) in init.iter().zip(&next_vals) {
            let phi = self.b.build_phi(start.get_type(), "")?;
            phi.add_incoming(&[(start, pre), (n, latch)]);
            results.push(phi.as_basic_value());
        }
        Ok(results)
    }

    fn if_else(
        &mut self,
        inst: tilc_simt::Inst,
        cond: Value,
        then_region: Region,
        else_region: Region,
    ) -> Result<Vec<BasicValueEnum<'ctx>>, PtxError> {
        let c = self.int(cond)?;
        let then_bb = self.ctx.append_basic_block(self.func, "if.then");
        let else_bb = self.ctx.append_basic_block(self.func, "if.else");
        let join = self.ctx.append_basic_block(self.func, "if.join");
        self.b.build_conditional_branch(c, then_bb, else_bb)?;
        self.b.position_at_end(then_bb);
        let t = self.region(then_region, &[])?;
        let then_end = self.current_block()?;
        self.b.build_unconditional_branch(join)?;
        self.b.position_at_end(else_bb);
        let e = self.region(else_region, &[])?;
        let else_end = self.current_block()?;
        self.b.build_unconditional_branch(join)?;
        self.b.position_at_end(join);
        let tys: Vec<Type> = self.k.insts[inst]
            .results
            .iter()
            .map(|&r| self.k.ty(r))
            .collect();
        if t.len() != tys.len() || e.len() != tys.len() {
            return Err(
                self.err("an if's branches yield a different number of values than it has results")
            );
        }
        let mut results = Vec::new();
        for ((ty, tv), ev) in tys.iter().zip(&t).zip(&e) {
            let phi = self.b.build_phi(llvm_type(self.ctx, *ty), "")?;
            phi.add_incoming(&[(tv, then_end), (ev, else_end)]);
            results.push(phi.as_basic_value());
        }
        Ok(results)
    }
}

fn fp8_name(fmt: Fp8Format) -> &'static str {
    match fmt {
        Fp8Format::E4M3 => "e4m3",
        Fp8Format::E5M2 => "e5m2",
    }
}

/// The descriptor version field of sm_100a's shared-memory matrix descriptors (bits 46..48).
const SM100_DESCRIPTOR_VERSION: u64 = 1;

/// The `.kind` of a `tcgen05.mma` and its 32-bit instruction descriptor for a dense
/// 128 × `n` tile with both operands K-major: D format in bits 4..6 (f32 1, s32 2), A and B
/// formats in 7..10 and 10..13 (kind::f16: f16 0, bf16 1; kind::i8: s8 1; kind::f8f6f4:
/// e4m3 0, e5m2 1), N / 8 in 17..23, M / 16 in 24..29 (PTX ISA, "Instruction descriptor").
fn tcgen05_instruction(kind: MmaKind, n: u16) -> (&'static str, u32) {
    let (name, d, ab) = match kind {
        MmaKind::F16F32 => ("f16", 1, 0),
        MmaKind::Bf16F32 => ("f16", 1, 1),
        MmaKind::S8S32 => ("i8", 2, 1),
        MmaKind::Fp8F32(Fp8Format::E4M3) => ("f8f6f4", 1, 0),
        MmaKind::Fp8F32(Fp8Format::E5M2) => ("f8f6f4", 1, 1),
    };
    let desc = (d << 4) | (ab << 7) | (ab << 10) | (u32::from(n >> 3) << 17) | ((128 >> 4) << 24);
    (name, desc)
}
