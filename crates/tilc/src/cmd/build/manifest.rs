//! The JSON manifest written beside a GPU build: the module's target and files, and for each
//! kernel its parameters, grid (as text and as an expression tree a runtime evaluates), block,
//! shared memory, compile-time constants, the launch contract and, when ptxas ran, its resources.
//!
//! The JSON is written by hand (a tiny value tree and printer with RFC 8259 string escaping) to
//! keep serde out of the tool's dependencies.

use super::abi::{BUFFER_PADDING, DEFAULT_SHARED_LIMIT, Expr, KernelAbi, ParamAbi, ParamKind, op_name};
use tilc_ptx::{KernelResources, Target};
use tilc_vm::ConstValue;

/// The manifest format's version; bump on incompatible changes.
pub const FORMAT_VERSION: i64 = 1;

/// A JSON value.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A finite float (non-finite ones print as `null`).
    Float(f64),
    /// A string.
    Str(String),
    /// An array.
    Array(Vec<Json>),
    /// An object, keys in insertion order.
    Object(Vec<(String, Json)>),
}

impl Json {
    fn str(s: impl Into<String>) -> Json {
        Json::Str(s.into())
    }

    fn object(fields: Vec<(&str, Json)>) -> Json {
        Json::Object(fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    fn is_scalar(&self) -> bool {
        !matches!(self, Json::Array(_) | Json::Object(_))
    }

    /// Pretty-printed with two-space indents; arrays of scalars and objects of at most three
    /// scalar fields stay on one line.
    pub fn pretty(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out.push('\n');
        out
    }

    fn write(&self, out: &mut String, indent: usize) {
        let pad = |out: &mut String, n: usize| out.extend(std::iter::repeat_n(' ', n));
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(i) => out.push_str(&i.to_string()),
            Json::Float(x) if x.is_finite() => {
                // `{:?}` always keeps a `.0` or an exponent, so the value reads back as a float;
                // Rust's exponent form (`1e300`) is valid JSON.
                out.push_str(&format!("{x:?}"));
            }
            Json::Float(_) => out.push_str("null"),
            Json::Str(s) => write_string(out, s),
            Json::Array(items) if items.is_empty() => out.push_str("[]"),
            Json::Array(items) if items.iter().all(Json::is_scalar) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write(out, indent);
                }
                out.push(']');
            }
            Json::Array(items) => {
                out.push_str("[\n");
                for (i, item) in items.iter().enumerate() {
                    pad(out, indent + 2);
                    item.write(out, indent + 2);
                    out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
                }
                pad(out, indent);
                out.push(']');
            }
            Json::Object(fields) if fields.is_empty() => out.push_str("{}"),
            Json::Object(fields) if fields.len() <= 3 && fields.iter().all(|(_, v)| v.is_scalar()) => {
                out.push_str("{ ");
                for (i, (key, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_string(out, key);
                    out.push_str(": ");
                    value.write(out, indent);
                }
                out.push_str(" }");
            }
            Json::Object(fields) => {
                out.push_str("{\n");
                for (i, (key, value)) in fields.iter().enumerate() {
                    pad(out, indent + 2);
                    write_string(out, key);
                    out.push_str(": ");
                    value.write(out, indent + 2);
                    out.push_str(if i + 1 < fields.len() { ",\n" } else { "\n" });
                }
                pad(out, indent);
                out.push('}');
            }
        }
    }
}

/// A JSON string literal: `"` and `\` escaped, control characters as `\n`, `\t`, … or `\u00XX`.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// An expression as a tree: `{"const": 64}`, `{"param": "m", "index": 0}`,
/// `{"op": "cdiv", "args": [a, b]}`.
pub fn expr_json(e: &Expr, params: &[ParamAbi]) -> Json {
    match e {
        Expr::Const(c) => Json::object(vec![("const", Json::Int(*c))]),
        Expr::Param(i) => Json::object(vec![("param", Json::str(&params[*i].name)), ("index", Json::Int(*i as i64))]),
        Expr::Bin(op, a, b) => Json::object(vec![
            ("op", Json::str(op_name(*op))),
            ("args", Json::Array(vec![expr_json(a, params), expr_json(b, params)])),
        ]),
    }
}

fn const_json(v: &ConstValue) -> Json {
    match v {
        ConstValue::Int(i) => Json::Int(*i),
        ConstValue::Float(x) => Json::Float(*x),
        ConstValue::Bool(b) => Json::Bool(*b),
        ConstValue::Type(d) => Json::str(d.to_string()),
    }
}

fn param_json(index: usize, p: &ParamAbi, params: &[ParamAbi]) -> Json {
    match &p.kind {
        ParamKind::Scalar { dtype, abi } => Json::object(vec![
            ("name", Json::str(&p.name)),
            ("index", Json::Int(index as i64)),
            ("kind", Json::str("scalar")),
            ("dtype", Json::str(dtype.to_string())),
            ("abi", Json::str(abi.name())),
        ]),
        ParamKind::Tensor { dtype, shape, out, align } => {
            let text: Vec<String> = shape.iter().map(|e| e.text(params)).collect();
            Json::object(vec![
                ("name", Json::str(&p.name)),
                ("index", Json::Int(index as i64)),
                ("kind", Json::str("tensor")),
                ("dtype", Json::str(dtype.to_string())),
                ("bits", Json::Int(i64::from(dtype.bits()))),
                ("shape", Json::str(format!("[{}]", text.join(", ")))),
                ("shape_expr", Json::Array(shape.iter().map(|e| expr_json(e, params)).collect())),
                ("out", Json::Bool(*out)),
                ("abi", Json::str("ptr")),
                ("align", Json::Int(i64::from(*align))),
            ])
        }
    }
}

fn resources_json(r: &KernelResources) -> Json {
    Json::object(vec![
        ("registers", Json::Int(i64::from(r.registers))),
        ("spill_stores", Json::Int(i64::from(r.spill_stores))),
        ("spill_loads", Json::Int(i64::from(r.spill_loads))),
        ("stack_frame", Json::Int(i64::from(r.stack_frame))),
        ("static_shared", Json::Int(i64::from(r.shared_bytes))),
        ("barriers", Json::Int(i64::from(r.barriers))),
    ])
}

/// One kernel's entry.
pub fn kernel_json(k: &KernelAbi, resources: Option<&KernelResources>) -> Json {
    let params = &k.params;
    Json::object(vec![
        ("name", Json::str(&k.name)),
        ("entry", Json::str(&k.name)),
        ("doc", Json::str(&k.doc)),
        ("constants", Json::Object(k.constants.iter().map(|(n, v)| (n.clone(), const_json(v))).collect())),
        ("params", Json::Array(params.iter().enumerate().map(|(i, p)| param_json(i, p, params)).collect())),
        (
            "grid",
            Json::object(vec![
                ("text", Json::Array(k.grid.iter().map(|e| Json::str(e.text(params))).collect())),
                ("expr", Json::Array(k.grid.iter().map(|e| expr_json(e, params)).collect())),
            ]),
        ),
        ("block", Json::Array(k.block.iter().map(|b| Json::Int(i64::from(*b))).collect())),
        ("threads", Json::Int(k.block.iter().map(|b| i64::from(*b)).product())),
        (
            "shared_bytes",
            Json::object(vec![
                ("static", Json::Int(0)),
                ("dynamic", Json::Int(i64::from(k.dynamic_shared_bytes))),
                ("needs_opt_in", Json::Bool(k.dynamic_shared_bytes > DEFAULT_SHARED_LIMIT)),
            ]),
        ),
        ("resources", resources.map_or(Json::Null, resources_json)),
    ])
}

/// What the build produced, for the manifest.
pub struct Module<'a> {
    /// The `.tl` file.
    pub source: &'a str,
    /// The target.
    pub target: Target,
    /// The PTX ISA version of the PTX.
    pub ptx_version: Option<String>,
    /// The files written, by kind (`ptx`, `cubin`, `c_header`, `c_source`), as paths relative to
    /// the manifest where possible.
    pub files: Vec<(&'static str, String)>,
    /// The kernels, each with ptxas's resources when it ran.
    pub kernels: Vec<(&'a KernelAbi, Option<&'a KernelResources>)>,
}

/// The launch contract, spelled out for readers of the manifest.
fn contract() -> Json {
    Json::object(vec![
        ("parameters", Json::str("kernel parameters in signature order, as in `params`")),
        (
            "tensor_buffer",
            Json::str(format!(
                "a device pointer to the tensor's packed bit stream: row-major, element i at bits [i*bits, (i+1)*bits) counted from bit 0 of byte 0; the buffer is zero-padded to a multiple of {BUFFER_PADDING} bytes (at least {BUFFER_PADDING}) and aligned to `align`"
            )),
        ),
        ("buffer_padding", Json::Int(BUFFER_PADDING as i64)),
        (
            "scalar",
            Json::str("`abi` i32: integers of up to 32 bits as int32 (two's complement; booleans 0 or 1); i64: wider integers; f32: the value rounded to `dtype`, as binary32; f64: binary64"),
        ),
        (
            "grid",
            Json::str("evaluate each `expr` over the integer scalar arguments with 64-bit integers: div and rem truncate, cdiv(a, b) = ceil(a / b); a zero extent launches nothing"),
        ),
        (
            "shared_memory",
            Json::str(format!(
                "all shared memory is dynamic: pass `shared_bytes.dynamic` as the launch's dynamic shared memory; when `needs_opt_in` (more than {DEFAULT_SHARED_LIMIT} bytes) first set CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES to it"
            )),
        ),
    ])
}

/// The whole manifest.
pub fn manifest(m: &Module<'_>) -> String {
    let (major, minor) = m.target.compute_capability();
    Json::object(vec![
        ("format", Json::str("tilc-manifest")),
        ("version", Json::Int(FORMAT_VERSION)),
        ("source", Json::str(m.source)),
        ("target", Json::str(m.target.name())),
        ("compute_capability", Json::str(format!("{major}.{minor}"))),
        ("ptx_version", m.ptx_version.as_ref().map_or(Json::Null, Json::str)),
        ("files", Json::Object(m.files.iter().map(|(k, v)| (k.to_string(), Json::str(v))).collect())),
        ("launch_contract", contract()),
        ("kernels", Json::Array(m.kernels.iter().map(|(k, r)| kernel_json(k, *r)).collect())),
    ])
    .pretty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped() {
        let mut s = String::new();
        write_string(&mut s, "a\"b\\c\nd\u{1}é");
        assert_eq!(s, r#""a\"b\\c\nd\u0001é""#);
    }

    #[test]
    fn values_print_as_json() {
        let v = Json::object(vec![
            ("a", Json::Array(vec![Json::Int(1), Json::Float(0.5), Json::Float(f64::NAN), Json::Null])),
            ("b", Json::Array(vec![Json::object(vec![("c", Json::Bool(true))]), Json::object(vec![("f", Json::Array(Vec::new()))])])),
            ("d", Json::Object(Vec::new())),
            ("e", Json::Float(2.0)),
        ]);
        assert_eq!(
            v.pretty(),
            "{\n  \"a\": [1, 0.5, null, null],\n  \"b\": [\n    { \"c\": true },\n    {\n      \"f\": []\n    }\n  ],\n  \"d\": {},\n  \"e\": 2.0\n}\n"
        );
    }
}
