//! The verifier: checks every invariant of a [`Kernel`] and reports each violation as a value.
//!
//! Checks, in order:
//! 1. shape: block size non-zero and at most 1024 threads; the body's arguments are the
//!    parameters (scalars or `ptr.global`); every type is well formed (vectors of 2/4 lanes,
//!    ≤ 128 bits); register arrays have a non-zero length;
//! 2. structure: every instruction lies in exactly one region and every region belongs to exactly
//!    one `for`/`if` (or is the body); `for`/`if` regions end with `yield`, nothing else contains
//!    one; `for` bodies take `[i32, carried..]`;
//! 3. SSA: every operand is defined before its use in the structured sense (earlier in the same
//!    region or in an enclosing one), results have the types [`crate::builder::result_types`] gives;
//! 4. operand types of every instruction (same-type binary operands, predicates where a predicate
//!    is needed, pointer spaces of loads/stores/cp.async/ldmatrix, mma fragment types, 32-bit
//!    shuffles, constant array indices in range, `cp.async` sizes 4/8/16, `ldmatrix` x1/x2/x4);
//! 5. alignment of memory accesses where it is known statically (constant shared offsets,
//!    parameter alignment plus constant offsets): a provably misaligned access is an error; an
//!    unknown one is left to the emulator, which checks every access at run time. Constant shared
//!    offsets outside `shared_bytes` are errors too.
//!
//! A failure here is a bug in whatever produced the kernel (the lowering or a pass).

use crate::builder::result_types;
use crate::ir::*;
use crate::types::{Scalar, Space, Type};
use crate::write::inst_to_string;
use std::fmt;
use tilc_base::SecondaryMap;

/// One verifier finding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyError {
    /// The offending instruction, if any.
    pub inst: Option<Inst>,
    /// The instruction's text (one line), empty when there is no instruction.
    pub inst_text: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.inst {
            Some(i) => write!(f, "{i} `{}`: {}", self.inst_text, self.message),
            None => write!(f, "{}", self.message),
        }
    }
}

/// All findings of one verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyErrors(pub Vec<VerifyError>);

impl fmt::Display for VerifyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.0 {
            writeln!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for VerifyErrors {}

/// Verifies `k`; `Ok(())` or every violation found.
pub fn verify(k: &Kernel) -> Result<(), VerifyErrors> {
    let mut v = Verifier { k, errors: Vec::new(), in_scope: SecondaryMap::new() };
    v.run();
    if v.errors.is_empty() { Ok(()) } else { Err(VerifyErrors(v.errors)) }
}

struct Verifier<'a> {
    k: &'a Kernel,
    errors: Vec<VerifyError>,
    in_scope: SecondaryMap<Value, bool>,
}

/// What the verifier knows of an integer or address: `value ≡ rem (mod modulus)`, modulus a
/// power of two ≤ 128 (1 = nothing known).
#[derive(Clone, Copy)]
struct Residue {
    modulus: u64,
    rem: u64,
}

impl Verifier<'_> {
    fn err(&mut self, inst: Option<Inst>, message: impl Into<String>) {
        let inst_text = inst.map(|i| inst_to_string(self.k, i)).unwrap_or_default();
        self.errors.push(VerifyError { inst, inst_text, message: message.into() });
    }

    fn run(&mut self) {
        let k = self.k;
        let threads = k.threads_per_block();
        if k.block_dim.contains(&0) || threads > 1024 {
            self.err(None, format!("block size {:?} must be non-zero and at most 1024 threads", k.block_dim));
        }
        let args = &k.regions[k.body].args;
        if args.len() != k.params.len() {
            self.err(None, "the body's arguments must be exactly the kernel parameters");
        }
        for (p, &a) in k.params.iter().zip(args) {
            if k.ty(a) != p.ty {
                self.err(None, format!("parameter `{}` has type {} but its value {a} has {}", p.name, p.ty, k.ty(a)));
            }
            if matches!(p.ty, Type::Vector(..) | Type::Ptr(Space::Shared)) {
                self.err(None, format!("parameter `{}` must be a scalar or ptr.global, not {}", p.name, p.ty));
            }
            if p.ty == Type::GLOBAL_PTR && !p.align.is_power_of_two() {
                self.err(None, format!("parameter `{}` alignment {} is not a power of two", p.name, p.align));
            }
        }
        for (a, d) in k.arrays.iter() {
            if d.len == 0 || !d.ty.is_valid() || matches!(d.ty, Type::Ptr(_)) {
                self.err(None, format!("register array {a} must have a non-zero length and a scalar or vector type"));
            }
        }
        for (v, d) in k.values.iter() {
            if !d.ty.is_valid() {
                self.err(d_inst(d.def), format!("value {v} has an ill-formed type {}", d.ty));
            }
        }
        self.check_structure();
        if !self.errors.is_empty() {
            // Scoping needs a sound tree; stop here rather than report noise.
            return;
        }
        for &a in &k.regions[k.body].args {
            self.in_scope[a] = true;
        }
        self.check_region(k.body, None);
    }

    fn check_structure(&mut self) {
        let k = self.k;
        let mut inst_seen: SecondaryMap<Inst, u32> = SecondaryMap::new();
        let mut region_owner: SecondaryMap<Region, u32> = SecondaryMap::new();
        region_owner[k.body] += 1;
        let mut stack = vec![k.body];
        while let Some(r) = stack.pop() {
            for &i in &k.regions[r].insts {
                inst_seen[i] += 1;
                if inst_seen[i] > 1 {
                    self.err(Some(i), "instruction appears in more than one place");
                    continue;
                }
                for sub in k.insts[i].kind.regions() {
                    region_owner[sub] += 1;
                    if region_owner[sub] > 1 {
                        self.err(Some(i), format!("{sub} is owned by more than one instruction"));
                    } else {
                        stack.push(sub);
                    }
                }
            }
        }
    }

    fn check_region(&mut self, r: Region, owner: Option<Inst>) {
        let k = self.k;
        let insts = &k.regions[r].insts;
        let needs_yield = owner.is_some();
        for (n, &i) in insts.iter().enumerate() {
            let is_last = n + 1 == insts.len();
            if matches!(k.insts[i].kind, InstKind::Yield(_)) && !(needs_yield && is_last) {
                self.err(Some(i), "`yield` may only end a `for` body or an `if` branch");
            }
            self.check_inst(i, owner, r);
        }
        if needs_yield && !insts.last().is_some_and(|&i| matches!(k.insts[i].kind, InstKind::Yield(_))) {
            self.err(owner, format!("{r} must end with `yield`"));
        }
        // Leave scope: values defined in this region are not visible after it.
        for &i in insts {
            for &v in &k.insts[i].results {
                self.in_scope[v] = false;
            }
        }
        for &a in &k.regions[r].args {
            self.in_scope[a] = false;
        }
    }

    fn ty(&self, v: Value) -> Type {
        self.k.ty(v)
    }

    fn expect(&mut self, i: Inst, v: Value, ok: bool, what: &str) {
        if !ok {
            let t = self.ty(v);
            self.err(Some(i), format!("operand {v} has type {t}, expected {what}"));
        }
    }

    fn check_inst(&mut self, i: Inst, owner: Option<Inst>, region: Region) {
        let k = self.k;
        let kind = &k.insts[i].kind;
        // Def-before-use.
        let mut undefined = Vec::new();
        kind.for_each_operand(|v| {
            if !self.in_scope[v] {
                undefined.push(v);
            }
        });
        for v in undefined {
            self.err(Some(i), format!("operand {v} is not defined before this use"));
        }
        // Result types.
        if !matches!(kind, InstKind::If { .. }) {
            let want = result_types(k, kind);
            let have: Vec<Type> = k.insts[i].results.iter().map(|&v| k.ty(v)).collect();
            if want != have {
                self.err(Some(i), format!("results have types {have:?}, expected {want:?}"));
            }
        }
        for (n, &v) in k.insts[i].results.iter().enumerate() {
            if k.values[v].def != ValueDef::Result(i, n as u32) {
                self.err(Some(i), format!("result {v} does not record this instruction as its definition"));
            }
        }
        self.check_operand_types(i, owner, region);
        // Nested regions.
        match kind {
            InstKind::For { init, body, .. } => {
                let args = k.regions[*body].args.clone();
                let ok = args.len() == init.len() + 1
                    && k.ty(args[0]) == Type::I32
                    && args.iter().skip(1).zip(init).all(|(a, v)| k.ty(*a) == k.ty(*v));
                if !ok {
                    self.err(Some(i), "loop body arguments must be [i32, types of the initial values]");
                }
                for &a in &args {
                    self.in_scope[a] = true;
                }
                self.check_region(*body, Some(i));
            }
            InstKind::If { then_region, else_region, .. } => {
                for r in [*then_region, *else_region] {
                    if !k.regions[r].args.is_empty() {
                        self.err(Some(i), "`if` branches take no arguments");
                    }
                    self.check_region(r, Some(i));
                }
            }
            _ => {}
        }
        for &v in &k.insts[i].results {
            self.in_scope[v] = true;
        }
    }

    fn check_operand_types(&mut self, i: Inst, owner: Option<Inst>, _region: Region) {
        use InstKind::*;
        let k = self.k;
        let int_like = |t: Type| t.elem().is_int() && !matches!(t, Type::Ptr(_));
        match &k.insts[i].kind {
            Const { ty, bits } => {
                if !matches!(ty, Type::Scalar(_)) {
                    self.err(Some(i), "constants must be scalars");
                } else if ty.bits() < 64 && bits >> ty.bits() != 0 {
                    self.err(Some(i), "constant has bits above its type's width");
                }
            }
            Special(s) => {
                if let crate::ir::Special::Tid(a) | crate::ir::Special::Ntid(a) | crate::ir::Special::Ctaid(a) | crate::ir::Special::Nctaid(a) = s {
                    if *a > 2 {
                        self.err(Some(i), "special register axis must be x, y or z");
                    }
                }
            }
            Unary(op, a) => {
                let t = self.ty(*a);
                let ok = match op {
                    UnaryOp::Not => !matches!(t, Type::Ptr(_)) && !t.elem().is_float(),
                    UnaryOp::Neg | UnaryOp::Popc | UnaryOp::Clz => int_like(t),
                    UnaryOp::FNeg
                    | UnaryOp::FAbs
                    | UnaryOp::FSqrt
                    | UnaryOp::FFloor
                    | UnaryOp::FCeil
                    | UnaryOp::FTrunc
                    | UnaryOp::FRound
                    | UnaryOp::FExp
                    | UnaryOp::FExp2
                    | UnaryOp::FLog
                    | UnaryOp::FLog2
                    | UnaryOp::FRsqrt => t.elem().is_float(),
                };
                self.expect(i, *a, ok, "a type this operation accepts");
            }
            Binary(op, a, b) => {
                let (ta, tb) = (self.ty(*a), self.ty(*b));
                if ta != tb {
                    self.err(Some(i), format!("operands have different types {ta} and {tb}"));
                }
                let float_op = matches!(op, BinaryOp::FAdd | BinaryOp::FSub | BinaryOp::FMul | BinaryOp::FDiv | BinaryOp::FMin | BinaryOp::FMax);
                let ok = if float_op {
                    ta.elem().is_float()
                } else if matches!(op, BinaryOp::And | BinaryOp::Or | BinaryOp::Xor) {
                    !matches!(ta, Type::Ptr(_)) && !ta.elem().is_float()
                } else {
                    int_like(ta)
                };
                self.expect(i, *a, ok, if float_op { "a float type" } else { "an integer type" });
            }
            Fma(a, b, c) => {
                let t = self.ty(*a);
                if self.ty(*b) != t || self.ty(*c) != t || !t.elem().is_float() {
                    self.err(Some(i), "fma operands must all have the same float type");
                }
            }
            Cmp(op, a, b) => {
                let (ta, tb) = (self.ty(*a), self.ty(*b));
                let float_op = matches!(op, CmpOp::FEq | CmpOp::FNe | CmpOp::FLt | CmpOp::FLe | CmpOp::FGt | CmpOp::FGe);
                let ok = ta == tb
                    && matches!(ta, Type::Scalar(_) | Type::Ptr(_))
                    && (if float_op { ta.elem().is_float() } else { !ta.elem().is_float() });
                if !ok {
                    self.err(Some(i), format!("cannot compare {ta} and {tb} with {op:?}"));
                }
            }
            Select(c, a, b) => {
                self.expect(i, *c, self.ty(*c) == Type::PRED, "pred");
                if self.ty(*a) != self.ty(*b) {
                    self.err(Some(i), "select arms have different types");
                }
            }
            Cast(op, a, to) => {
                let from = self.ty(*a);
                if !self.cast_ok(*op, from, *to) {
                    self.err(Some(i), format!("cannot {op:?} from {from} to {to}"));
                }
            }
            Half(_, _, a, b) => {
                let t = self.ty(*a);
                let ok = (t == Type::I16 || t == Type::vector(Scalar::I16, 2)) && self.ty(*b) == t;
                if !ok {
                    self.err(Some(i), "half arithmetic takes two i16 or two i16x2");
                }
            }
            HalfFma(_, a, b, c) => {
                let t = self.ty(*a);
                let ok = (t == Type::I16 || t == Type::vector(Scalar::I16, 2)) && self.ty(*b) == t && self.ty(*c) == t;
                if !ok {
                    self.err(Some(i), "half fma takes three i16 or three i16x2");
                }
            }
            F32x2ToFp8x2(_, a, b) => {
                self.expect(i, *a, self.ty(*a) == Type::F32, "f32");
                self.expect(i, *b, self.ty(*b) == Type::F32, "f32");
            }
            Fp8x2ToF16x2(_, a) => self.expect(i, *a, self.ty(*a) == Type::I16, "i16"),
            Extract(v, l) => {
                let t = self.ty(*v);
                if !matches!(t, Type::Vector(..)) || *l as u32 >= t.lanes() {
                    self.err(Some(i), format!("cannot extract lane {l} of {t}"));
                }
            }
            Insert(v, l, x) => {
                let t = self.ty(*v);
                if !matches!(t, Type::Vector(..)) || *l as u32 >= t.lanes() || self.ty(*x) != Type::Scalar(t.elem()) {
                    self.err(Some(i), format!("cannot insert into lane {l} of {t}"));
                }
            }
            Build(vs) => {
                let first = vs.first().map(|v| self.ty(*v));
                let ok = matches!(vs.len(), 2 | 4)
                    && matches!(first, Some(Type::Scalar(s)) if s != Scalar::Pred)
                    && vs.iter().all(|v| Some(self.ty(*v)) == first);
                if !ok {
                    self.err(Some(i), "build takes 2 or 4 scalars of one non-predicate type");
                }
            }
            Shf(_, _, a, b, c) | Prmt(a, b, c) | Lop3(a, b, c, _) => {
                for v in [*a, *b, *c] {
                    self.expect(i, v, self.ty(v) == Type::I32, "i32");
                }
            }
            Bfe { a, pos, len, .. } => {
                for v in [*a, *pos, *len] {
                    self.expect(i, v, self.ty(v) == Type::I32, "i32");
                }
            }
            SharedAddr(o) => {
                self.expect(i, *o, self.ty(*o) == Type::I32, "i32");
                if let Some(off) = k.const_int(*o) {
                    if off < 0 || off as u64 > k.shared_bytes as u64 {
                        self.err(Some(i), format!("shared offset {off} is outside the {} bytes of shared memory", k.shared_bytes));
                    }
                }
            }
            PtrAdd(b, o) => {
                self.expect(i, *b, matches!(self.ty(*b), Type::Ptr(_)), "a pointer");
                let to = self.ty(*o);
                let ok = to == Type::I32 || (to == Type::I64 && self.ty(*b) == Type::GLOBAL_PTR);
                self.expect(i, *o, ok, "i32 (or i64 for a global pointer)");
            }
            Load { space, ty, addr, mask } => {
                self.expect(i, *addr, self.ty(*addr) == Type::Ptr(*space), &format!("ptr.{space}"));
                match ty.bytes() {
                    Some(n) if n <= 16 && n.is_power_of_two() => self.check_align(i, *addr, n),
                    _ => self.err(Some(i), format!("cannot load {ty}: accesses are 1, 2, 4, 8 or 16 bytes")),
                }
                if let Some(m) = mask {
                    self.expect(i, *m, self.ty(*m) == Type::PRED, "pred");
                }
            }
            Store { space, addr, value, mask } => {
                self.expect(i, *addr, self.ty(*addr) == Type::Ptr(*space), &format!("ptr.{space}"));
                let ty = self.ty(*value);
                match ty.bytes() {
                    Some(n) if n <= 16 && n.is_power_of_two() && !matches!(ty, Type::Ptr(_)) => {
                        self.check_align(i, *addr, n)
                    }
                    _ => self.err(Some(i), format!("cannot store {ty}: accesses are 1, 2, 4, 8 or 16 bytes")),
                }
                if let Some(m) = mask {
                    self.expect(i, *m, self.ty(*m) == Type::PRED, "pred");
                }
            }
            ArrayGet(a, n) => {
                if *n >= k.arrays[*a].len {
                    self.err(Some(i), format!("index {n} is outside {a} of length {}", k.arrays[*a].len));
                }
            }
            ArraySet(a, n, v) => {
                if *n >= k.arrays[*a].len {
                    self.err(Some(i), format!("index {n} is outside {a} of length {}", k.arrays[*a].len));
                }
                let want = k.arrays[*a].ty;
                self.expect(i, *v, self.ty(*v) == want, &want.to_string());
            }
            Atomic { space, addr, value, .. } => {
                self.expect(i, *addr, self.ty(*addr) == Type::Ptr(*space), &format!("ptr.{space}"));
                self.expect(i, *value, self.ty(*value) == Type::I32, "i32");
                self.check_align(i, *addr, 4);
            }
            Shfl { value, lane, clamp, .. } => {
                let t = self.ty(*value);
                self.expect(i, *value, t == Type::I32 || t == Type::F32, "a 32-bit value (i32 or f32)");
                self.expect(i, *lane, self.ty(*lane) == Type::I32, "i32");
                if clamp & !0x1f1f != 0 {
                    self.err(Some(i), "shfl c operand has bits outside 0..5 and 8..13");
                }
            }
            Barrier | CpAsyncCommit | CpAsyncWait(_) | FenceProxyAsync | Tcgen05Fence { .. } => {}
            TmemAlloc { dst, cols } => {
                if !cols.is_power_of_two() || !(32..=512).contains(cols) {
                    self.err(Some(i), "tcgen05.alloc takes a power of two from 32 to 512 columns");
                }
                self.expect(i, *dst, self.ty(*dst) == Type::SHARED_PTR, "ptr.shared");
                self.check_align(i, *dst, 4);
            }
            TmemDealloc { taddr, cols } => {
                if !cols.is_power_of_two() || !(32..=512).contains(cols) {
                    self.err(Some(i), "tcgen05.dealloc takes a power of two from 32 to 512 columns");
                }
                self.expect(i, *taddr, self.ty(*taddr) == Type::I32, "i32 (tensor-memory address)");
            }
            TmemStore { taddr, values } => {
                if !values.len().is_power_of_two() || values.len() > 32 {
                    self.err(Some(i), "tcgen05.st.32x32b stores 1, 2, 4, 8, 16 or 32 columns");
                }
                self.expect(i, *taddr, self.ty(*taddr) == Type::I32, "i32 (tensor-memory address)");
                for &v in values {
                    let t = self.ty(v);
                    self.expect(i, v, t == Type::I32 || t == Type::F32, "a 32-bit value (i32 or f32)");
                }
            }
            TmemLoad { taddr, num, ty } => {
                if !num.is_power_of_two() || *num > 32 {
                    self.err(Some(i), "tcgen05.ld.32x32b loads 1, 2, 4, 8, 16 or 32 columns");
                }
                if !matches!(ty, Scalar::I32 | Scalar::F32) {
                    self.err(Some(i), "tcgen05.ld results are i32 or f32");
                }
                self.expect(i, *taddr, self.ty(*taddr) == Type::I32, "i32 (tensor-memory address)");
            }
            Tcgen05Mma { n, d, a, b, accumulate, .. } => {
                if *n < 16 || *n > 256 || *n % 16 != 0 {
                    self.err(Some(i), "tcgen05.mma with m = 128 takes n a multiple of 16 from 16 to 256");
                }
                self.expect(i, *d, self.ty(*d) == Type::I32, "i32 (tensor-memory address)");
                self.expect(i, *a, self.ty(*a) == Type::SHARED_PTR, "ptr.shared (A)");
                self.expect(i, *b, self.ty(*b) == Type::SHARED_PTR, "ptr.shared (B)");
                self.check_align(i, *a, 16);
                self.check_align(i, *b, 16);
                self.expect(i, *accumulate, self.ty(*accumulate) == Type::PRED, "pred");
            }
            Tcgen05Commit { mbar } | MbarrierInit { mbar, .. } => {
                self.expect(i, *mbar, self.ty(*mbar) == Type::SHARED_PTR, "ptr.shared (mbarrier)");
                self.check_align(i, *mbar, 8);
            }
            MbarrierWait { mbar, parity } => {
                self.expect(i, *mbar, self.ty(*mbar) == Type::SHARED_PTR, "ptr.shared (mbarrier)");
                self.check_align(i, *mbar, 8);
                self.expect(i, *parity, self.ty(*parity) == Type::I32, "i32");
            }
            CpAsync { dst, src, size, src_size } => {
                self.expect(i, *dst, self.ty(*dst) == Type::SHARED_PTR, "ptr.shared");
                self.expect(i, *src, self.ty(*src) == Type::GLOBAL_PTR, "ptr.global");
                if !matches!(size, 4 | 8 | 16) {
                    self.err(Some(i), "cp.async copies 4, 8 or 16 bytes");
                } else {
                    self.check_align(i, *dst, *size);
                    self.check_align(i, *src, *size);
                }
                if let Some(s) = src_size {
                    self.expect(i, *s, self.ty(*s) == Type::I32, "i32");
                }
            }
            Ldmatrix { num, addr, .. } => {
                if !matches!(num, 1 | 2 | 4) {
                    self.err(Some(i), "ldmatrix loads 1, 2 or 4 matrices");
                }
                self.expect(i, *addr, self.ty(*addr) == Type::SHARED_PTR, "ptr.shared");
                self.check_align(i, *addr, 16);
            }
            Mma(kind, a, b, c) => {
                self.expect(i, *a, self.ty(*a) == Type::vector(Scalar::I32, 4), "i32x4 (A fragment)");
                self.expect(i, *b, self.ty(*b) == Type::vector(Scalar::I32, 2), "i32x2 (B fragment)");
                let acc = kind.acc_type();
                self.expect(i, *c, self.ty(*c) == acc, &format!("{acc} (C fragment)"));
            }
            Wgmma { kind, n, a, b, acc } => {
                let step = if matches!(kind, MmaKind::S8S32 | MmaKind::Fp8F32(_)) { 16 } else { 8 };
                if *n == 0 || *n > 256 || *n % step != 0 {
                    self.err(Some(i), &format!("wgmma n must be a multiple of {step} up to 256"));
                }
                self.expect(i, *a, self.ty(*a) == Type::SHARED_PTR, "ptr.shared (A)");
                self.expect(i, *b, self.ty(*b) == Type::SHARED_PTR, "ptr.shared (B)");
                self.check_align(i, *a, 16);
                self.check_align(i, *b, 16);
                let want = kind.acc_type();
                if acc.len() != usize::from(*n / 8) {
                    self.err(Some(i), format!("wgmma with n = {n} takes {} accumulator fragments, not {}", n / 8, acc.len()));
                }
                for &c in acc {
                    self.expect(i, c, self.ty(c) == want, &format!("{want} (accumulator fragment)"));
                }
            }
            For { lo, hi, step, unroll, .. } => {
                for v in [*lo, *hi, *step] {
                    self.expect(i, v, self.ty(v) == Type::I32, "i32");
                }
                if let Some(s) = k.const_int(*step) {
                    if s <= 0 {
                        self.err(Some(i), "loop step must be positive");
                    }
                }
                if *unroll == Unroll::Factor(0) {
                    self.err(Some(i), "unroll factor must be positive");
                }
            }
            If { cond, then_region, else_region } => {
                self.expect(i, *cond, self.ty(*cond) == Type::PRED, "pred");
                let want: Vec<Type> = k.insts[i].results.iter().map(|&v| k.ty(v)).collect();
                for r in [*then_region, *else_region] {
                    if let Some(&last) = k.regions[r].insts.last() {
                        if let Yield(vs) = &k.insts[last].kind {
                            let have: Vec<Type> = vs.iter().map(|&v| k.ty(v)).collect();
                            if have != want {
                                self.err(Some(last), format!("yields {have:?} but the `if` has results {want:?}"));
                            }
                        }
                    }
                }
            }
            Yield(vs) => {
                if let Some(o) = owner {
                    if let For { init, .. } = &k.insts[o].kind {
                        let have: Vec<Type> = vs.iter().map(|&v| k.ty(v)).collect();
                        let want: Vec<Type> = init.iter().map(|&v| k.ty(v)).collect();
                        if have != want {
                            self.err(Some(i), format!("loop body yields {have:?} but carries {want:?}"));
                        }
                    }
                }
            }
        }
    }

    fn cast_ok(&self, op: CastOp, from: Type, to: Type) -> bool {
        use crate::types::Scalar as S;
        let (Type::Scalar(f), Type::Scalar(t)) = (from, to) else {
            return match op {
                CastOp::Bitcast => from.bits() == to.bits() && !matches!(from, Type::Ptr(_)) && !matches!(to, Type::Ptr(_)),
                CastOp::FToHalf(_) => from == Type::vector(S::F32, 2) && to == Type::vector(S::I16, 2),
                CastOp::HalfToF(_) => from == Type::vector(S::I16, 2) && to == Type::vector(S::F32, 2),
                _ => false,
            };
        };
        let int_or_pred = |s: S| s.is_int() || s == S::Pred;
        match op {
            CastOp::SExt | CastOp::ZExt => int_or_pred(f) && t.is_int() && t.bits() > f.bits(),
            CastOp::Trunc => f.is_int() && int_or_pred(t) && t.bits() < f.bits(),
            CastOp::Bitcast => f.bits() == t.bits() && f != S::Pred,
            CastOp::SToF | CastOp::UToF => f.is_int() && t.is_float(),
            CastOp::FToS | CastOp::FToU => f.is_float() && t.is_int(),
            CastOp::FConvert => f.is_float() && t.is_float() && f != t,
            CastOp::FToHalf(_) => f == S::F32 && t == S::I16,
            CastOp::HalfToF(_) => f == S::I16 && t == S::F32,
        }
    }

    /// What is known of `v` modulo a power of two.
    fn residue(&self, v: Value, depth: u32) -> Residue {
        let k = self.k;
        let unknown = Residue { modulus: 1, rem: 0 };
        if depth > 32 {
            return unknown;
        }
        match k.values[v].def {
            ValueDef::Arg(r, n) if r == k.body => {
                let p = &k.params[n as usize];
                if p.ty == Type::GLOBAL_PTR {
                    Residue { modulus: (p.align as u64).clamp(1, 128), rem: 0 }
                } else {
                    unknown
                }
            }
            ValueDef::Arg(..) => unknown,
            ValueDef::Result(i, _) => match &k.insts[i].kind {
                InstKind::Const { bits, .. } => Residue { modulus: 128, rem: bits % 128 },
                // The shared window starts 128-byte aligned.
                InstKind::SharedAddr(o) => self.residue(*o, depth + 1),
                InstKind::PtrAdd(a, b) | InstKind::Binary(BinaryOp::Add, a, b) => {
                    let (x, y) = (self.residue(*a, depth + 1), self.residue(*b, depth + 1));
                    let m = x.modulus.min(y.modulus);
                    Residue { modulus: m, rem: (x.rem + y.rem) % m }
                }
                InstKind::Binary(BinaryOp::Mul, a, b) => {
                    let (x, y) = (self.residue(*a, depth + 1), self.residue(*b, depth + 1));
                    // (x.rem + i·mx)(y.rem + j·my): known modulo the gcd-like min of mx·y.rem's
                    // power-of-two part... keep it simple and sound: a multiple of 2^t times anything
                    // is a multiple of 2^t.
                    let tz = |r: Residue| if r.rem == 0 { r.modulus.trailing_zeros() } else { r.rem.trailing_zeros().min(r.modulus.trailing_zeros()) };
                    let t = (tz(x) + tz(y)).min(7);
                    Residue { modulus: 1 << t, rem: 0 }
                }
                InstKind::Binary(BinaryOp::Shl, a, b) => match k.const_int(*b) {
                    Some(s) if (0..32).contains(&s) => {
                        let x = self.residue(*a, depth + 1);
                        let m = (x.modulus << s).min(128);
                        Residue { modulus: m, rem: (x.rem << s) % m }
                    }
                    _ => unknown,
                },
                _ => unknown,
            },
        }
    }

    fn check_align(&mut self, i: Inst, addr: Value, size: u32) {
        let r = self.residue(addr, 0);
        let size = size as u64;
        if r.modulus >= size && r.rem % size != 0 {
            self.err(Some(i), format!("{size}-byte access at an address ≡ {} (mod {}) is misaligned", r.rem, r.modulus));
        }
    }
}

fn d_inst(def: ValueDef) -> Option<Inst> {
    match def {
        ValueDef::Result(i, _) => Some(i),
        ValueDef::Arg(..) => None,
    }
}
