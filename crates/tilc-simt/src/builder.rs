//! [`Builder`]: constructs a [`Kernel`] instruction by instruction, in program order.
//!
//! The builder appends to the innermost open region; `for_loop` and `if_else` open nested
//! regions around a closure. Result types are inferred from the operands
//! ([`result_types`]); the builder never checks them (it must not panic on bad input): run
//! [`crate::verify`] on the finished kernel.

use crate::ir::*;
use crate::types::{Fp8Format, HalfFormat, Scalar, Space, Type};

/// The result types an instruction of this kind has, given the kernel's value types.
/// `For` results are the types of its initial values; `If` results cannot be inferred (they come
/// from the yields) and are returned empty here.
pub fn result_types(k: &Kernel, kind: &InstKind) -> Vec<Type> {
    use InstKind::*;
    let one = |t: Type| vec![t];
    match kind {
        Const { ty, .. } => one(*ty),
        Special(_) => one(Type::I32),
        Unary(_, a) | Binary(_, a, _) | Fma(a, _, _) | Half(_, _, a, _) | HalfFma(_, a, _, _) => {
            one(k.ty(*a))
        }
        Cmp(..) => one(Type::PRED),
        Select(_, a, _) => one(k.ty(*a)),
        Cast(_, _, ty) => one(*ty),
        F32x2ToFp8x2(..) => one(Type::I16),
        Fp8x2ToF16x2(..) => one(Type::vector(Scalar::I16, 2)),
        Extract(v, _) => one(Type::Scalar(k.ty(*v).elem())),
        Insert(v, _, _) => one(k.ty(*v)),
        Build(vs) => {
            let elem = vs.first().map(|v| k.ty(*v).elem()).unwrap_or(Scalar::I32);
            one(Type::Vector(elem, vs.len() as u8))
        }
        Shf(..) | Prmt(..) | Lop3(..) | Bfe { .. } | Atomic { .. } => one(Type::I32),
        SharedAddr(_) => one(Type::SHARED_PTR),
        PtrAdd(base, _) => one(k.ty(*base)),
        Load { ty, .. } => one(*ty),
        ArrayGet(a, _) => one(k.arrays[*a].ty),
        Shfl { value, .. } => one(k.ty(*value)),
        Ldmatrix { num, .. } => one(match num {
            1 => Type::I32,
            n => Type::Vector(Scalar::I32, *n),
        }),
        Mma(kind, ..) => one(kind.acc_type()),
        Wgmma { kind, n, .. } => vec![kind.acc_type(); usize::from(*n / 8)],
        For { init, .. } => init.iter().map(|v| k.ty(*v)).collect(),
        TmemLoad { num, ty, .. } => vec![Type::Scalar(*ty); usize::from(*num)],
        Store { .. } | ArraySet(..) | Barrier | CpAsync { .. } | CpAsyncCommit | CpAsyncWait(_) | FenceProxyAsync
        | TmemAlloc { .. } | TmemDealloc { .. } | TmemStore { .. } | Tcgen05Mma { .. } | Tcgen05Commit { .. }
        | Tcgen05Fence { .. } | MbarrierInit { .. } | MbarrierWait { .. } | If { .. } | Yield(_) => vec![],
    }
}

/// Builds one kernel.
pub struct Builder {
    kernel: Kernel,
    /// Open regions, innermost last; instructions are appended to the last.
    stack: Vec<Region>,
    /// Values [`crate::codec::decode`] made from a code: the value's type and the code (bits
    /// above the type's width unspecified), so that encoding it again can reuse the code.
    decoded: std::collections::HashMap<Value, (tilc_dtype::DType, Value)>,
}

impl Builder {
    /// Starts a kernel with `block_dim` threads per block.
    pub fn new(name: &str, block_dim: [u32; 3]) -> Builder {
        let kernel = Kernel::new(name, block_dim);
        let body = kernel.body;
        Builder { kernel, stack: vec![body], decoded: Default::default() }
    }

    /// Adds a parameter (scalar, or `ptr.global` assumed aligned to `align` bytes).
    pub fn param(&mut self, name: &str, ty: Type, align: u32) -> Value {
        self.kernel.params.push(Param { name: name.to_string(), ty, align });
        let body = self.kernel.body;
        self.kernel.add_region_arg(body, ty)
    }

    /// Sets the static shared-memory size in bytes.
    pub fn set_shared_bytes(&mut self, bytes: u32) {
        self.kernel.shared_bytes = bytes;
    }

    /// Declares a register array of `len` elements of type `ty`.
    pub fn array(&mut self, name: &str, ty: Type, len: u32) -> Array {
        self.kernel.arrays.push(ArrayData { name: name.to_string(), ty, len })
    }

    /// Records that `value` is `code` decoded as `dtype` (see [`crate::codec::decode`]).
    pub fn note_decoded(&mut self, value: Value, dtype: tilc_dtype::DType, code: Value) {
        self.decoded.insert(value, (dtype, code));
    }

    /// The type and code `value` was decoded from, if [`Builder::note_decoded`] recorded it.
    pub fn decoded_from(&self, value: Value) -> Option<(tilc_dtype::DType, Value)> {
        self.decoded.get(&value).copied()
    }

    /// The kernel built so far (for inspecting types).
    pub fn kernel(&self) -> &Kernel {
        &self.kernel
    }

    /// Finishes and returns the kernel.
    pub fn finish(self) -> Kernel {
        self.kernel
    }

    /// Appends an instruction with inferred result types; returns it.
    pub fn push(&mut self, kind: InstKind) -> Inst {
        let tys = result_types(&self.kernel, &kind);
        self.push_typed(kind, &tys)
    }

    fn push_typed(&mut self, kind: InstKind, tys: &[Type]) -> Inst {
        let inst = self.kernel.make_inst(kind, tys);
        let r = *self.stack.last().expect("builder always has an open region");
        self.kernel.regions[r].insts.push(inst);
        inst
    }

    /// Appends an instruction and returns its single result.
    pub fn ins(&mut self, kind: InstKind) -> Value {
        let inst = self.push(kind);
        self.kernel.insts[inst].results.first().copied().unwrap_or_else(|| {
            // Instructions without results have no value; callers use `push` for them. Return a
            // fresh, never-defined value would break SSA, so this is a builder-usage bug.
            panic!("instruction {inst} has no result; use Builder::push")
        })
    }

    // ----- constants and special registers -----

    /// An i32 constant.
    pub fn i32(&mut self, x: i32) -> Value {
        self.ins(InstKind::Const { ty: Type::I32, bits: x as u32 as u64 })
    }
    /// An i64 constant.
    pub fn i64(&mut self, x: i64) -> Value {
        self.ins(InstKind::Const { ty: Type::I64, bits: x as u64 })
    }
    /// An i16 constant.
    pub fn i16(&mut self, x: i16) -> Value {
        self.ins(InstKind::Const { ty: Type::I16, bits: x as u16 as u64 })
    }
    /// An f32 constant.
    pub fn f32(&mut self, x: f32) -> Value {
        self.ins(InstKind::Const { ty: Type::F32, bits: x.to_bits() as u64 })
    }
    /// A predicate constant.
    pub fn pred(&mut self, x: bool) -> Value {
        self.ins(InstKind::Const { ty: Type::PRED, bits: x as u64 })
    }
    /// A constant of any scalar type from raw bits.
    pub fn constant(&mut self, ty: Type, bits: u64) -> Value {
        self.ins(InstKind::Const { ty, bits })
    }
    /// A special register.
    pub fn special(&mut self, s: Special) -> Value {
        self.ins(InstKind::Special(s))
    }
    /// `%tid.x`.
    pub fn tid_x(&mut self) -> Value {
        self.special(Special::Tid(0))
    }
    /// `%ctaid.x`.
    pub fn ctaid_x(&mut self) -> Value {
        self.special(Special::Ctaid(0))
    }
    /// `%laneid`.
    pub fn lane_id(&mut self) -> Value {
        self.special(Special::LaneId)
    }

    // ----- arithmetic -----

    /// A unary operation.
    pub fn unary(&mut self, op: UnaryOp, a: Value) -> Value {
        self.ins(InstKind::Unary(op, a))
    }
    /// A binary operation.
    pub fn binary(&mut self, op: BinaryOp, a: Value, b: Value) -> Value {
        self.ins(InstKind::Binary(op, a, b))
    }
    /// `a + b`.
    pub fn add(&mut self, a: Value, b: Value) -> Value {
        self.binary(BinaryOp::Add, a, b)
    }
    /// `a - b`.
    pub fn sub(&mut self, a: Value, b: Value) -> Value {
        self.binary(BinaryOp::Sub, a, b)
    }
    /// `a * b`.
    pub fn mul(&mut self, a: Value, b: Value) -> Value {
        self.binary(BinaryOp::Mul, a, b)
    }
    /// `a & b`.
    pub fn and(&mut self, a: Value, b: Value) -> Value {
        self.binary(BinaryOp::And, a, b)
    }
    /// `a | b`.
    pub fn or(&mut self, a: Value, b: Value) -> Value {
        self.binary(BinaryOp::Or, a, b)
    }
    /// `a << b`.
    pub fn shl(&mut self, a: Value, b: Value) -> Value {
        self.binary(BinaryOp::Shl, a, b)
    }
    /// `a >> b` (logical).
    pub fn shr_u(&mut self, a: Value, b: Value) -> Value {
        self.binary(BinaryOp::ShrU, a, b)
    }
    /// `a * b + c`, rounded once.
    pub fn fma(&mut self, a: Value, b: Value, c: Value) -> Value {
        self.ins(InstKind::Fma(a, b, c))
    }
    /// A comparison.
    pub fn cmp(&mut self, op: CmpOp, a: Value, b: Value) -> Value {
        self.ins(InstKind::Cmp(op, a, b))
    }
    /// `c ? a : b`.
    pub fn select(&mut self, c: Value, a: Value, b: Value) -> Value {
        self.ins(InstKind::Select(c, a, b))
    }
    /// A conversion to `ty`.
    pub fn cast(&mut self, op: CastOp, a: Value, ty: Type) -> Value {
        self.ins(InstKind::Cast(op, a, ty))
    }
    /// Half-precision arithmetic.
    pub fn half(&mut self, op: HalfOp, fmt: HalfFormat, a: Value, b: Value) -> Value {
        self.ins(InstKind::Half(op, fmt, a, b))
    }
    /// Half-precision fma.
    pub fn half_fma(&mut self, fmt: HalfFormat, a: Value, b: Value, c: Value) -> Value {
        self.ins(InstKind::HalfFma(fmt, a, b, c))
    }
    /// Two f32 → fp8x2 in an i16 (`hi` in the upper byte).
    pub fn f32x2_to_fp8x2(&mut self, fmt: Fp8Format, hi: Value, lo: Value) -> Value {
        self.ins(InstKind::F32x2ToFp8x2(fmt, hi, lo))
    }
    /// fp8x2 in an i16 → f16x2.
    pub fn fp8x2_to_f16x2(&mut self, fmt: Fp8Format, a: Value) -> Value {
        self.ins(InstKind::Fp8x2ToF16x2(fmt, a))
    }

    // ----- vectors and bits -----

    /// Lane `lane` of `v`.
    pub fn extract(&mut self, v: Value, lane: u8) -> Value {
        self.ins(InstKind::Extract(v, lane))
    }
    /// `v` with lane `lane` replaced by `x`.
    pub fn insert(&mut self, v: Value, lane: u8, x: Value) -> Value {
        self.ins(InstKind::Insert(v, lane, x))
    }
    /// A vector from scalars.
    pub fn build(&mut self, elems: &[Value]) -> Value {
        self.ins(InstKind::Build(elems.to_vec()))
    }
    /// Funnel shift.
    pub fn shf(&mut self, dir: ShfDir, mode: ShfMode, lo: Value, hi: Value, n: Value) -> Value {
        self.ins(InstKind::Shf(dir, mode, lo, hi, n))
    }
    /// Byte permute.
    pub fn prmt(&mut self, a: Value, b: Value, sel: Value) -> Value {
        self.ins(InstKind::Prmt(a, b, sel))
    }
    /// Three-input logic with lookup table `lut`.
    pub fn lop3(&mut self, a: Value, b: Value, c: Value, lut: u8) -> Value {
        self.ins(InstKind::Lop3(a, b, c, lut))
    }
    /// Bit-field extract.
    pub fn bfe(&mut self, signed: bool, a: Value, pos: Value, len: Value) -> Value {
        self.ins(InstKind::Bfe { signed, a, pos, len })
    }

    // ----- memory -----

    /// Shared pointer to byte `offset` (i32).
    pub fn shared_addr(&mut self, offset: Value) -> Value {
        self.ins(InstKind::SharedAddr(offset))
    }
    /// `base + offset` bytes.
    pub fn ptr_add(&mut self, base: Value, offset: Value) -> Value {
        self.ins(InstKind::PtrAdd(base, offset))
    }
    /// Load `ty` from `addr`.
    pub fn load(&mut self, space: Space, ty: Type, addr: Value, mask: Option<Value>) -> Value {
        self.ins(InstKind::Load { space, ty, addr, mask })
    }
    /// Store `value` to `addr`.
    pub fn store(&mut self, space: Space, addr: Value, value: Value, mask: Option<Value>) -> Inst {
        self.push(InstKind::Store { space, addr, value, mask })
    }
    /// Read a register-array element.
    pub fn array_get(&mut self, a: Array, index: u32) -> Value {
        self.ins(InstKind::ArrayGet(a, index))
    }
    /// Write a register-array element.
    pub fn array_set(&mut self, a: Array, index: u32, v: Value) -> Inst {
        self.push(InstKind::ArraySet(a, index, v))
    }

    /// `atom.{space}.{op}`: atomically applies `op` with `value` (i32) to the word at `addr`;
    /// returns the old value.
    pub fn atomic(&mut self, op: AtomicOp, space: Space, addr: Value, value: Value) -> Value {
        self.ins(InstKind::Atomic { op, space, addr, value })
    }

    // ----- warp and block -----

    /// Warp shuffle of a 32-bit value.
    pub fn shfl(&mut self, mode: ShflMode, value: Value, lane: Value) -> Value {
        let clamp = if mode == ShflMode::Up { 0 } else { 31 };
        self.ins(InstKind::Shfl { mode, value, lane, clamp })
    }
    /// `bar.sync 0`.
    pub fn barrier(&mut self) -> Inst {
        self.push(InstKind::Barrier)
    }
    /// `cp.async` of `size` bytes.
    pub fn cp_async(&mut self, dst: Value, src: Value, size: u32, src_size: Option<Value>) -> Inst {
        self.push(InstKind::CpAsync { dst, src, size, src_size })
    }
    /// `cp.async.commit_group`.
    pub fn cp_async_commit(&mut self) -> Inst {
        self.push(InstKind::CpAsyncCommit)
    }
    /// `cp.async.wait_group n`.
    pub fn cp_async_wait(&mut self, n: u32) -> Inst {
        self.push(InstKind::CpAsyncWait(n))
    }
    /// `ldmatrix` of `num` matrices.
    pub fn ldmatrix(&mut self, num: u8, trans: bool, addr: Value) -> Value {
        self.ins(InstKind::Ldmatrix { num, trans, addr })
    }
    /// `mma.sync`.
    pub fn mma(&mut self, kind: MmaKind, a: Value, b: Value, c: Value) -> Value {
        self.ins(InstKind::Mma(kind, a, b, c))
    }
    /// One synchronous `wgmma` k-step (see [`InstKind::Wgmma`]).
    pub fn wgmma(&mut self, kind: MmaKind, n: u16, a: Value, b: Value, acc: &[Value]) -> Vec<Value> {
        let i = self.push(InstKind::Wgmma { kind, n, a, b, acc: acc.to_vec() });
        self.kernel().insts[i].results.clone()
    }
    /// `fence.proxy.async.shared::cta`.
    pub fn fence_proxy_async(&mut self) -> Inst {
        self.push(InstKind::FenceProxyAsync)
    }
    /// `tcgen05.alloc` of `cols` tensor-memory columns, address written to shared `dst`.
    pub fn tmem_alloc(&mut self, dst: Value, cols: u32) -> Inst {
        self.push(InstKind::TmemAlloc { dst, cols })
    }
    /// `tcgen05.dealloc`.
    pub fn tmem_dealloc(&mut self, taddr: Value, cols: u32) -> Inst {
        self.push(InstKind::TmemDealloc { taddr, cols })
    }
    /// `tcgen05.st.32x32b` of `values` (see [`InstKind::TmemStore`]).
    pub fn tmem_store(&mut self, taddr: Value, values: &[Value]) -> Inst {
        self.push(InstKind::TmemStore { taddr, values: values.to_vec() })
    }
    /// `tcgen05.ld.32x32b` of `num` columns (see [`InstKind::TmemLoad`]).
    pub fn tmem_load(&mut self, taddr: Value, num: u8, ty: Scalar) -> Vec<Value> {
        let i = self.push(InstKind::TmemLoad { taddr, num, ty });
        self.kernel().insts[i].results.clone()
    }
    /// One `tcgen05.mma` k-step (see [`InstKind::Tcgen05Mma`]).
    pub fn tcgen05_mma(&mut self, kind: MmaKind, n: u16, d: Value, a: Value, b: Value, accumulate: Value) -> Inst {
        self.push(InstKind::Tcgen05Mma { kind, n, d, a, b, accumulate })
    }
    /// `tcgen05.commit` to the mbarrier at `mbar`.
    pub fn tcgen05_commit(&mut self, mbar: Value) -> Inst {
        self.push(InstKind::Tcgen05Commit { mbar })
    }
    /// `tcgen05.fence::before_thread_sync` / `::after_thread_sync`.
    pub fn tcgen05_fence(&mut self, after: bool) -> Inst {
        self.push(InstKind::Tcgen05Fence { after })
    }
    /// `mbarrier.init`.
    pub fn mbarrier_init(&mut self, mbar: Value, count: u32) -> Inst {
        self.push(InstKind::MbarrierInit { mbar, count })
    }
    /// Waits for the mbarrier phase of `parity`.
    pub fn mbarrier_wait(&mut self, mbar: Value, parity: Value) -> Inst {
        self.push(InstKind::MbarrierWait { mbar, parity })
    }

    // ----- structured control flow -----

    /// `for iv = lo; iv < hi; iv += step` carrying `init`; `body(builder, iv, carried)` returns the
    /// next carried values. Returns the final carried values.
    pub fn for_loop(
        &mut self,
        lo: Value,
        hi: Value,
        step: Value,
        init: &[Value],
        unroll: Unroll,
        body: impl FnOnce(&mut Builder, Value, &[Value]) -> Vec<Value>,
    ) -> Vec<Value> {
        let region = self.kernel.regions.push(RegionData::default());
        let iv = self.kernel.add_region_arg(region, Type::I32);
        let carried: Vec<Value> = init
            .iter()
            .map(|&v| {
                let ty = self.kernel.ty(v);
                self.kernel.add_region_arg(region, ty)
            })
            .collect();
        self.stack.push(region);
        let next = body(self, iv, &carried);
        self.push(InstKind::Yield(next));
        self.stack.pop();
        let inst = self.push(InstKind::For { lo, hi, step, init: init.to_vec(), body: region, unroll });
        self.kernel.insts[inst].results.clone()
    }

    /// `if cond { then } else { else_ }` with results of types `tys`; each closure returns its
    /// yielded values.
    pub fn if_else(
        &mut self,
        cond: Value,
        tys: &[Type],
        then_body: impl FnOnce(&mut Builder) -> Vec<Value>,
        else_body: impl FnOnce(&mut Builder) -> Vec<Value>,
    ) -> Vec<Value> {
        let then_region = self.kernel.regions.push(RegionData::default());
        let else_region = self.kernel.regions.push(RegionData::default());
        self.stack.push(then_region);
        let t = then_body(self);
        self.push(InstKind::Yield(t));
        self.stack.pop();
        self.stack.push(else_region);
        let e = else_body(self);
        self.push(InstKind::Yield(e));
        self.stack.pop();
        let inst = self.push_typed(InstKind::If { cond, then_region, else_region }, tys);
        self.kernel.insts[inst].results.clone()
    }

    /// `if cond { then }` with no results.
    pub fn if_then(&mut self, cond: Value, then_body: impl FnOnce(&mut Builder)) {
        self.if_else(
            cond,
            &[],
            |b| {
                then_body(b);
                vec![]
            },
            |_| vec![],
        );
    }
}
