//! The typing rules of every instruction: given the operand types, the result type or why
//! there is none. One function, [`result_type`], serves the builder, elaboration (which turns a
//! [`TypeError`] into a diagnostic at the source span) and the verifier (which re-checks a
//! finished kernel). The rules are written out in the crate docs.

use crate::ir::*;
use tilc_dtype::DType;

/// Why an instruction is ill-typed: a sentence, plus notes (e.g. both shapes of a mismatch).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeError {
    /// What is wrong.
    pub message: String,
    /// Further facts.
    pub notes: Vec<String>,
}

impl TypeError {
    /// An error with no notes.
    pub fn new(message: impl Into<String>) -> TypeError {
        TypeError { message: message.into(), notes: Vec::new() }
    }

    /// Adds a note.
    pub fn note(mut self, n: impl Into<String>) -> TypeError {
        self.notes.push(n.into());
        self
    }
}

type R<T> = Result<T, TypeError>;

/// `i32`.
pub fn i32_type() -> DType {
    DType::Int(32)
}

/// `i64`.
pub fn i64_type() -> DType {
    DType::Int(64)
}

/// `u1`, the type of conditions.
pub fn bool_type() -> DType {
    DType::UInt(1)
}

/// `f32`.
pub fn f32_type() -> DType {
    DType::parse("f32").expect("tilc-dtype knows f32")
}

/// Largest integer width a register tile may hold (values are exact in the interpreter's
/// 64-bit arithmetic, products of two such values too).
pub const MAX_TILE_INT_BITS: u32 = 32;

/// True for integer types (signed or not, `u1` included).
pub fn is_int(d: DType) -> bool {
    matches!(d, DType::Int(_) | DType::UInt(_))
}

/// True for float types.
pub fn is_float(d: DType) -> bool {
    matches!(d, DType::Float(_))
}

fn scalar_int(k: &Kernel, v: Value, what: &str) -> R<DType> {
    match k.ty(v) {
        Type::Scalar(d) if is_int(*d) => Ok(*d),
        t => Err(TypeError::new(format!("{what} must be an integer scalar, found `{t}`"))),
    }
}

fn tile<'a>(k: &'a Kernel, v: Value, what: &str) -> R<&'a TileType> {
    match k.ty(v) {
        Type::Tile(t) => Ok(t),
        t => Err(TypeError::new(format!("{what} must be a register tile, found `{t}`"))),
    }
}

fn shared<'a>(k: &'a Kernel, v: Value, what: &str) -> R<&'a TileType> {
    match k.ty(v) {
        Type::Shared(t) => Ok(t),
        t => Err(TypeError::new(format!("{what} must be a shared tensor, found `{t}`"))),
    }
}

fn check_shape(shape: &[usize]) -> R<()> {
    if shape.is_empty() || shape.contains(&0) {
        return Err(TypeError::new(format!("tile shape {} must have rank ≥ 1 and extents ≥ 1", ShapeDisplay(shape))));
    }
    Ok(())
}

fn check_tile_dtype(d: DType) -> R<()> {
    if is_int(d) && d.bits() > MAX_TILE_INT_BITS {
        return Err(TypeError::new(format!("tiles of `{d}` are not supported (integer tiles have at most {MAX_TILE_INT_BITS} bits)")));
    }
    if is_float(d) && d.bits() > 32 {
        return Err(TypeError::new(format!("tiles of `{d}` are not supported (float tiles have at most 32 bits)")));
    }
    Ok(())
}

/// The NumPy broadcast of two shapes (right-aligned; extents equal or 1), or `None`.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let x = if i + a.len() >= n { a[i + a.len() - n] } else { 1 };
        let y = if i + b.len() >= n { b[i + b.len() - n] } else { 1 };
        out[i] = if x == y || y == 1 {
            x
        } else if x == 1 {
            y
        } else {
            return None;
        };
    }
    Some(out)
}

fn elementwise_shape(k: &Kernel, vals: &[Value], opname: &str) -> R<Option<Vec<usize>>> {
    let mut shape: Option<Vec<usize>> = None;
    for &v in vals {
        match k.ty(v) {
            Type::Scalar(_) => {}
            Type::Tile(t) => {
                shape = Some(match &shape {
                    None => t.shape.clone(),
                    Some(s) => broadcast_shapes(s, &t.shape).ok_or_else(|| {
                        TypeError::new(format!("`{opname}`: shapes {} and {} do not broadcast", ShapeDisplay(s), ShapeDisplay(&t.shape)))
                            .note("broadcasting aligns shapes on the right; each pair of extents must be equal or one of them 1")
                    })?,
                })
            }
            Type::Shared(t) => {
                return Err(TypeError::new(format!(
                    "`{opname}` on a shared tensor `shared {}{}`: load it into registers first",
                    t.dtype,
                    ShapeDisplay(&t.shape)
                )));
            }
        }
    }
    Ok(shape)
}

fn with_shape(d: DType, shape: Option<Vec<usize>>) -> Type {
    match shape {
        None => Type::Scalar(d),
        Some(s) => Type::Tile(TileType::new(d, s)),
    }
}

/// The result type of `kind` in kernel `k` (`None` for instructions without a result).
pub fn result_type(k: &Kernel, kind: &InstKind) -> R<Option<Type>> {
    use InstKind::*;
    Ok(Some(match kind {
        Const(c) => return Err(TypeError::new(format!("constant {c} has no type of its own; use `Kernel::add_inst`"))),
        BlockIdx { axis } => {
            if *axis > 2 {
                return Err(TypeError::new("block index axis must be 0, 1 or 2"));
            }
            Type::Scalar(i32_type())
        }
        Iota { dtype, shape, axis } => {
            check_shape(shape)?;
            if !is_int(*dtype) {
                return Err(TypeError::new(format!("`iota` makes integer tiles, not `{dtype}`")));
            }
            check_tile_dtype(*dtype)?;
            if *axis >= shape.len() {
                return Err(TypeError::new(format!("axis {axis} out of range for shape {}", ShapeDisplay(shape))));
            }
            Type::Tile(TileType::new(*dtype, shape.clone()))
        }
        Unary { op, x } => {
            let shape = elementwise_shape(k, &[*x], op.name())?;
            let d = k.ty(*x).dtype();
            if *op == UnaryOp::Not && !is_int(d) {
                return Err(TypeError::new(format!("`not` needs an integer or boolean operand, found `{}`", k.ty(*x))));
            }
            if op.float_only() && !is_float(d) {
                return Err(TypeError::new(format!("`{}` needs a float operand, found `{}`", op.name(), k.ty(*x)))
                    .note("cast integers first, e.g. `cast<f32>(x)`"));
            }
            with_shape(d, shape)
        }
        Binary { op, a, b } => {
            let shape = elementwise_shape(k, &[*a, *b], op.name())?;
            let (da, db) = (k.ty(*a).dtype(), k.ty(*b).dtype());
            if da != db {
                return Err(TypeError::new(format!("`{}` of `{}` and `{}`: element types differ", op.name(), k.ty(*a), k.ty(*b)))
                    .note("binary operations need equal element types; convert one side with `cast<T>(...)`"));
            }
            if op.int_only() && !is_int(da) {
                return Err(TypeError::new(format!("`{}` needs integer operands, found `{da}`", op.name())));
            }
            with_shape(if op.is_comparison() { bool_type() } else { da }, shape)
        }
        Select { cond, a, b } => {
            let shape = elementwise_shape(k, &[*cond, *a, *b], "where")?;
            if k.ty(*cond).dtype() != bool_type() {
                return Err(TypeError::new(format!("`where` condition must be boolean (`u1`), found `{}`", k.ty(*cond))));
            }
            let (da, db) = (k.ty(*a).dtype(), k.ty(*b).dtype());
            if da != db {
                return Err(TypeError::new(format!("`where` branches have different element types: `{}` and `{}`", k.ty(*a), k.ty(*b))));
            }
            with_shape(da, shape)
        }
        Cast { x, dtype, rounding, .. } => {
            let shape = elementwise_shape(k, &[*x], "cast")?;
            if shape.is_some() {
                check_tile_dtype(*dtype)?;
            }
            if let CastRounding::Stochastic { seed, index } = rounding {
                scalar_int(k, *seed, "the stochastic-rounding seed")?;
                if !is_float(*dtype) {
                    return Err(TypeError::new(format!("stochastic rounding needs a float target type, not `{dtype}`")));
                }
                if let Some(ix) = index {
                    let t = tile(k, *ix, "the stochastic-rounding index")?;
                    if !is_int(t.dtype) || Some(&t.shape) != shape.as_ref() {
                        return Err(TypeError::new("the stochastic-rounding index must be an integer tile of the input's shape"));
                    }
                }
            }
            with_shape(*dtype, shape)
        }
        Full { value, shape } => {
            check_shape(shape)?;
            match k.ty(*value) {
                Type::Scalar(d) => {
                    check_tile_dtype(*d)?;
                    Type::Tile(TileType::new(*d, shape.clone()))
                }
                t => return Err(TypeError::new(format!("`full` needs a scalar value, found `{t}`"))),
            }
        }
        LoadGlobal { global, offsets, shape } => {
            let g = &k.globals[*global];
            check_shape(shape)?;
            check_tile_dtype(g.dtype)?;
            global_access(k, g, offsets, shape.len())?;
            Type::Tile(TileType::new(g.dtype, shape.clone()))
        }
        StoreGlobal { global, offsets, value } => {
            let g = &k.globals[*global];
            if !g.out {
                return Err(TypeError::new(format!("store to `{}`, which is not marked `out`", g.name))
                    .note("only parameters declared `out global ...` may be written"));
            }
            let t = tile(k, *value, "the stored value")?;
            global_access(k, g, offsets, t.shape.len())?;
            if t.dtype != g.dtype {
                return Err(TypeError::new(format!("storing a `{}` tile into `{}`, a tensor of `{}`", t.dtype, g.name, g.dtype))
                    .note("convert with `cast<T>(...)` first"));
            }
            return Ok(None);
        }
        AllocShared { tile } => {
            check_shape(&tile.shape)?;
            check_tile_dtype(tile.dtype)?;
            Type::Shared(tile.clone())
        }
        LoadShared { shared: s, offsets, shape } => {
            let st = shared(k, *s, "the source")?;
            check_shape(shape)?;
            shared_access(k, st, offsets, shape)?;
            Type::Tile(TileType::new(st.dtype, shape.clone()))
        }
        StoreShared { shared: s, offsets, value } => {
            let st = shared(k, *s, "the destination")?;
            let t = tile(k, *value, "the stored value")?;
            shared_access(k, st, offsets, &t.shape)?;
            if t.dtype != st.dtype {
                return Err(TypeError::new(format!("storing a `{}` tile into shared `{}`", t.dtype, st.dtype)));
            }
            return Ok(None);
        }
        CopyAsync { global, offsets, shared: s, shared_offsets, shape } => {
            let g = &k.globals[*global];
            let st = shared(k, *s, "the destination")?;
            check_shape(shape)?;
            global_access(k, g, offsets, shape.len())?;
            shared_access(k, st, shared_offsets, &pad_leading(shape, st.shape.len()))?;
            if g.dtype != st.dtype {
                return Err(TypeError::new(format!("copy from `{}` ({}) into shared `{}`", g.name, g.dtype, st.dtype)));
            }
            return Ok(None);
        }
        CopyAsyncCommit | CopyAsyncWait { .. } | Sync => return Ok(None),
        View { x, dtype, shape } => {
            let t = tile(k, *x, "the viewed value")?;
            check_shape(shape)?;
            check_tile_dtype(*dtype)?;
            let from = t.numel() as u64 * u64::from(t.dtype.bits());
            let to = TileType::new(*dtype, shape.clone()).numel() as u64 * u64::from(dtype.bits());
            if from != to {
                return Err(TypeError::new(format!(
                    "`view` changes the number of bits: {}{} holds {from} bits, {dtype}{} holds {to}",
                    t.dtype,
                    ShapeDisplay(&t.shape),
                    ShapeDisplay(shape)
                )));
            }
            Type::Tile(TileType::new(*dtype, shape.clone()))
        }
        Dot { a, b, c } => {
            let (ta, tb, tc) = (tile(k, *a, "`dot` operand a")?, tile(k, *b, "`dot` operand b")?, tile(k, *c, "`dot` accumulator")?);
            let (sa, sb, sc) = (&ta.shape, &tb.shape, &tc.shape);
            if sa.len() != 2 || sb.len() != 2 || sc.len() != 2 || sa[1] != sb[0] || sc[0] != sa[0] || sc[1] != sb[1] {
                return Err(TypeError::new(format!(
                    "`dot` shape mismatch: a is {}, b is {}, accumulator is {}",
                    ShapeDisplay(sa),
                    ShapeDisplay(sb),
                    ShapeDisplay(sc)
                ))
                .note("dot needs a: [M, K], b: [K, N] and accumulator: [M, N]"));
            }
            dot_accumulator(ta.dtype, tb.dtype, tc.dtype)?;
            Type::Tile(tc.clone())
        }
        Reduce { op, x, axis, keepdim } => {
            let t = tile(k, *x, op.name())?;
            if *axis >= t.shape.len() {
                return Err(TypeError::new(format!("axis {axis} out of range for a tile of shape {}", ShapeDisplay(&t.shape))));
            }
            let mut shape = t.shape.clone();
            if *keepdim || shape.len() == 1 {
                shape[*axis] = 1;
            } else {
                shape.remove(*axis);
            }
            Type::Tile(TileType::new(t.dtype, shape))
        }
        Transpose { x, perm } => {
            let t = tile(k, *x, "transpose")?;
            let mut seen = vec![false; t.shape.len()];
            if perm.len() != t.shape.len() || perm.iter().any(|&p| p >= seen.len() || std::mem::replace(&mut seen[p], true)) {
                return Err(TypeError::new(format!("{perm:?} is not a permutation of the axes of {}", ShapeDisplay(&t.shape))));
            }
            Type::Tile(TileType::new(t.dtype, perm.iter().map(|&p| t.shape[p]).collect()))
        }
        Reshape { x, shape } => {
            let t = tile(k, *x, "reshape")?;
            check_shape(shape)?;
            if shape.iter().product::<usize>() != t.numel() {
                return Err(TypeError::new(format!(
                    "cannot reshape {} ({} elements) to {} ({} elements)",
                    ShapeDisplay(&t.shape),
                    t.numel(),
                    ShapeDisplay(shape),
                    shape.iter().product::<usize>()
                )));
            }
            Type::Tile(TileType::new(t.dtype, shape.clone()))
        }
        Broadcast { x, shape } => {
            check_shape(shape)?;
            let (d, s) = match k.ty(*x) {
                Type::Scalar(d) => (*d, vec![1]),
                Type::Tile(t) => (t.dtype, t.shape.clone()),
                t => return Err(TypeError::new(format!("cannot broadcast `{t}`"))),
            };
            if broadcast_shapes(&s, shape).as_deref() != Some(shape.as_slice()) {
                return Err(TypeError::new(format!("cannot broadcast {} to {}", ShapeDisplay(&s), ShapeDisplay(shape))));
            }
            Type::Tile(TileType::new(d, shape.clone()))
        }
        Hadamard { x, axis } => {
            let t = tile(k, *x, "hadamard")?;
            if !is_float(t.dtype) {
                return Err(TypeError::new(format!("`hadamard` needs a float tile, found `{}`", k.ty(*x))));
            }
            match t.shape.get(*axis) {
                None => return Err(TypeError::new(format!("axis {axis} out of range for a tile of shape {}", ShapeDisplay(&t.shape)))),
                Some(n) if !n.is_power_of_two() => {
                    return Err(TypeError::new(format!("`hadamard` along an axis of size {n}, which is not a power of two")));
                }
                _ => {}
            }
            Type::Tile(t.clone())
        }
        Assign { var, value } => {
            if k.values[*var].def != ValueDef::Var {
                return Err(TypeError::new(format!("assignment to {var}, which is not mutable")));
            }
            if k.ty(*var) != k.ty(*value) {
                return Err(TypeError::new(format!("assigning a `{}` to a variable of type `{}`", k.ty(*value), k.ty(*var))));
            }
            return Ok(None);
        }
        For { var, start, end, step, .. } => {
            let d = scalar_int(k, *var, "the loop variable")?;
            for (v, what) in [(start, "the loop start"), (end, "the loop end"), (step, "the loop step")] {
                if scalar_int(k, *v, what)? != d {
                    return Err(TypeError::new(format!("{what} is `{}` but the loop variable is `{d}`", k.ty(*v))));
                }
            }
            return Ok(None);
        }
        If { cond, .. } | While { cond, .. } | Assume { cond } => {
            if k.ty(*cond) != &Type::Scalar(bool_type()) {
                return Err(TypeError::new(format!("a condition must be a boolean scalar, found `{}`", k.ty(*cond))));
            }
            return Ok(None);
        }
    }))
}

/// The accumulator type `dot` requires for operand types `a` and `b`, checked against `c`.
pub fn dot_accumulator(a: DType, b: DType, c: DType) -> R<()> {
    let ok = if is_int(a) && is_int(b) {
        a.bits() <= 8 && b.bits() <= 8 && c == i32_type()
    } else if is_float(a) && is_float(b) {
        a.bits() <= 32 && b.bits() <= 32 && c == f32_type()
    } else {
        false
    };
    if ok {
        Ok(())
    } else {
        Err(TypeError::new(format!("`dot` of `{a}` × `{b}` cannot accumulate into `{c}`"))
            .note("integer operands of at most 8 bits accumulate into i32; float operands into f32"))
    }
}

fn global_access(k: &Kernel, g: &GlobalData, offsets: &[Value], rank: usize) -> R<()> {
    if offsets.len() != g.shape.len() {
        return Err(TypeError::new(format!("`{}` has rank {} but {} offsets are given", g.name, g.shape.len(), offsets.len())));
    }
    if rank != g.shape.len() {
        return Err(TypeError::new(format!("`{}` has rank {} but the tile has rank {rank}", g.name, g.shape.len())));
    }
    for &o in offsets {
        scalar_int(k, o, "an offset")?;
    }
    Ok(())
}

fn shared_access(k: &Kernel, s: &TileType, offsets: &[Value], shape: &[usize]) -> R<()> {
    if offsets.len() != s.shape.len() || shape.len() != s.shape.len() {
        return Err(TypeError::new(format!(
            "the shared tensor has rank {} but {} offsets and a tile of rank {} are given",
            s.shape.len(),
            offsets.len(),
            shape.len()
        )));
    }
    if shape.iter().zip(&s.shape).any(|(t, s)| t > s) {
        return Err(TypeError::new(format!("tile {} is larger than the shared tensor {}", ShapeDisplay(shape), ShapeDisplay(&s.shape))));
    }
    for &o in offsets {
        scalar_int(k, o, "an offset")?;
    }
    Ok(())
}

/// `shape` with leading extent-1 axes added up to `rank` axes (how a `CopyAsync` tile of the
/// global's rank is placed into a shared tensor of higher rank).
pub fn pad_leading(shape: &[usize], rank: usize) -> Vec<usize> {
    let mut s = shape.to_vec();
    while s.len() < rank {
        s.insert(0, 1);
    }
    s
}
