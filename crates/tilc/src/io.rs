//! Reading and writing host tensors as `.npy` and `.safetensors` files (used by `tilc run` and
//! by [`crate::Tensor::load_npy`] / [`crate::Tensor::save_npy`]).
//!
//! Both formats are small enough to implement here without dependencies (the `.npy` header is a
//! Python dict literal, the safetensors header a flat JSON object).
//!
//! Element types: a tensor whose dtype has a native file type (`i8`…`i32`, `u8`…`u32`, `f16`,
//! `f32`, `f64`, `bool`=`u1`; in safetensors also `bf16`, `F8_E4M3`, `F8_E5M2`, `F8_E8M0`
//! (e8m0), `F6_E2M3`, `F6_E3M2`, `F4` (f4e2m1)) is stored as such. Any other type — `u3`, `i6`,
//! `f5e2m2`, `ue4m3` … — is stored as its *values* in the smallest native type that holds every
//! value exactly (integers in the smallest integer type, floats in `f32`), and read back from any
//! numeric array whose values are all representable (the error names the first element that is
//! not). `packed` asks for the raw packed bytes (a `u8` array, tilc's little-endian bit stream)
//! instead. Safetensors sub-byte floats use the same bit stream (for F4: low nibble first).

use std::collections::BTreeMap;
use tilc_dtype::{DType, FloatFormat, Overflow, Rounding};
use tilc_vm::HostTensor;

/// A numeric array as read from a file, before it meets a parameter's dtype.
#[derive(Clone, Debug)]
pub struct RawArray {
    /// Extents.
    pub shape: Vec<usize>,
    /// What the file says the elements are.
    pub kind: FileType,
    /// Element codes in the file's type (little-endian integers / IEEE bits), or packed bytes
    /// for sub-byte safetensors types.
    pub codes: Vec<u64>,
}

/// An element type of a file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileType {
    /// A tilc dtype stored natively (codes are that dtype's codes).
    Native(DType),
    /// A 64-bit integer (`<i8`, `I64`).
    I64,
    /// An unsigned 64-bit integer.
    U64,
}

fn native_npy(d: DType) -> Option<&'static str> {
    Some(match d {
        DType::UInt(1) => "|b1",
        DType::Int(8) => "|i1",
        DType::UInt(8) => "|u1",
        DType::Int(16) => "<i2",
        DType::UInt(16) => "<u2",
        DType::Int(32) => "<i4",
        DType::UInt(32) => "<u4",
        DType::Int(64) => "<i8",
        DType::Float(FloatFormat::F16) => "<f2",
        DType::Float(FloatFormat::F32) => "<f4",
        DType::Float(FloatFormat::F64) => "<f8",
        _ => return None,
    })
}

fn npy_type(descr: &str) -> Option<(FileType, usize)> {
    let d = |s: &str| DType::parse(s).ok();
    Some(match descr.trim_start_matches(['<', '|', '=']) {
        "b1" => (FileType::Native(DType::UInt(1)), 1),
        "i1" => (FileType::Native(d("i8")?), 1),
        "u1" => (FileType::Native(d("u8")?), 1),
        "i2" => (FileType::Native(d("i16")?), 2),
        "u2" => (FileType::Native(d("u16")?), 2),
        "i4" => (FileType::Native(d("i32")?), 4),
        "u4" => (FileType::Native(d("u32")?), 4),
        "i8" => (FileType::I64, 8),
        "u8" => (FileType::U64, 8),
        "f2" => (FileType::Native(DType::F16), 2),
        "f4" => (FileType::Native(DType::F32), 4),
        "f8" => (FileType::Native(DType::F64), 8),
        _ => return None,
    })
}

/// The value of one element of a raw array.
fn raw_value(kind: FileType, code: u64) -> f64 {
    match kind {
        FileType::Native(d) => d.decode(code),
        FileType::I64 => code as i64 as f64,
        FileType::U64 => code as f64,
    }
}

/// Reads a `.npy` file's bytes.
pub fn read_npy(bytes: &[u8]) -> Result<RawArray, String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not a .npy file (bad magic)".into());
    }
    let (hlen, start) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err("truncated .npy header".into());
            }
            (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
        }
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let header = std::str::from_utf8(bytes.get(start..start + hlen).ok_or("truncated .npy header")?).map_err(|_| "bad .npy header")?;
    let field = |key: &str| -> Option<&str> {
        let i = header.find(&format!("'{key}'"))?;
        let rest = header[i + key.len() + 2..].trim_start().strip_prefix(':')?.trim_start();
        Some(rest)
    };
    let descr = field("descr").and_then(|r| r.strip_prefix('\'')).and_then(|r| r.split('\'').next()).ok_or("no descr in .npy header")?;
    if descr.starts_with('>') {
        return Err(format!("big-endian .npy data ({descr}) is not supported"));
    }
    let (kind, size) = npy_type(descr).ok_or_else(|| format!("unsupported .npy element type `{descr}`"))?;
    if field("fortran_order").is_some_and(|r| r.starts_with("True")) {
        return Err("Fortran-order .npy arrays are not supported; save with np.ascontiguousarray".into());
    }
    let shape_txt = field("shape").and_then(|r| r.strip_prefix('(')).and_then(|r| r.split(')').next()).ok_or("no shape in .npy header")?;
    let shape: Vec<usize> = shape_txt
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<usize>().map_err(|_| format!("bad extent `{s}` in .npy shape")))
        .collect::<Result<_, _>>()?;
    let n = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).filter(|n| n.checked_mul(size).is_some()).ok_or("the .npy shape is too large")?;
    let data = &bytes[start + hlen..];
    if data.len() < n * size {
        return Err(format!("the .npy data holds {} bytes, {} needed", data.len(), n * size));
    }
    let codes = (0..n)
        .map(|i| {
            let mut b = [0u8; 8];
            b[..size].copy_from_slice(&data[i * size..(i + 1) * size]);
            let c = u64::from_le_bytes(b);
            if kind == FileType::Native(DType::UInt(1)) { u64::from(c != 0) } else { c }
        })
        .collect();
    Ok(RawArray { shape, kind, codes })
}

/// Writes a `.npy` file of element type `descr` (e.g. `<f4`).
fn write_npy_raw(descr: &str, size: usize, shape: &[usize], codes: &[u64]) -> Vec<u8> {
    let shape_txt = match shape.len() {
        0 => "()".to_string(),
        1 => format!("({},)", shape[0]),
        _ => format!("({})", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_txt}, }}");
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for &c in codes {
        out.extend_from_slice(&c.to_le_bytes()[..size]);
    }
    out
}

/// The smallest native type that holds every value of `d` exactly, with its `.npy` descr.
fn widened(d: DType) -> (DType, &'static str, usize) {
    if native_npy(d).is_some() {
        let descr = native_npy(d).expect("checked");
        let size = if d == DType::UInt(1) { 1 } else { d.bits().div_ceil(8) as usize };
        return (d, descr, size);
    }
    match d {
        DType::UInt(b) if b <= 8 => (DType::UInt(8), "|u1", 1),
        DType::UInt(b) if b <= 16 => (DType::UInt(16), "<u2", 2),
        DType::UInt(_) => (DType::UInt(32), "<u4", 4),
        DType::Int(b) if b <= 8 => (DType::Int(8), "|i1", 1),
        DType::Int(b) if b <= 16 => (DType::Int(16), "<i2", 2),
        DType::Int(_) => (DType::Int(32), "<i4", 4),
        DType::Float(_) => (DType::F32, "<f4", 4),
    }
}

/// Writes `t` as `.npy`: natively, as exact values in a wider type, or (`packed`) as raw bytes.
pub fn write_npy(t: &HostTensor, packed: bool) -> Vec<u8> {
    if packed {
        let bytes = t.to_packed();
        let codes: Vec<u64> = bytes.iter().map(|&b| u64::from(b)).collect();
        return write_npy_raw("|u1", 1, &[codes.len()], &codes);
    }
    let (wd, descr, size) = widened(t.dtype);
    let codes: Vec<u64> = if wd == t.dtype {
        t.codes.clone()
    } else {
        t.codes.iter().map(|&c| wd.encode(t.dtype.decode(c), Rounding::NearestEven, Overflow::NonSaturating)).collect()
    };
    write_npy_raw(descr, size, &t.shape, &codes)
}

/// Converts a raw array to a tensor of `dtype`: natively when the types agree, else value by
/// value with an exactness check; `packed` reads a `u8` array as the packed image.
pub fn to_tensor(raw: &RawArray, dtype: DType, packed: bool, shape_hint: Option<&[usize]>) -> Result<HostTensor, String> {
    if packed {
        if raw.kind != FileType::Native(DType::UInt(8)) {
            return Err("--packed inputs must be u8 arrays of packed bytes".into());
        }
        let shape = shape_hint.ok_or("the shape of a packed input must follow from the other arguments")?.to_vec();
        let bytes: Vec<u8> = raw.codes.iter().map(|&c| c as u8).collect();
        return HostTensor::from_packed(dtype, shape.clone(), &bytes)
            .ok_or_else(|| format!("{} packed bytes are too few for a {dtype} tensor of shape {shape:?}", bytes.len()));
    }
    if raw.kind == FileType::Native(dtype) {
        return Ok(HostTensor { dtype, shape: raw.shape.clone(), codes: raw.codes.clone() });
    }
    let mut codes = Vec::with_capacity(raw.codes.len());
    for (i, &c) in raw.codes.iter().enumerate() {
        let x = raw_value(raw.kind, c);
        let code = dtype.encode(x, Rounding::NearestEven, Overflow::NonSaturating);
        let back = dtype.decode(code);
        let same = back == x || (x.is_nan() && back.is_nan());
        if !same {
            let idx = unravel(i, &raw.shape);
            let range = if dtype.is_int() {
                format!(" (range {}..={})", dtype.min_finite(), dtype.max_finite())
            } else {
                String::new()
            };
            return Err(format!("element {idx:?} is {x}, which is not representable in `{dtype}`{range}"));
        }
        codes.push(code);
    }
    Ok(HostTensor { dtype, shape: raw.shape.clone(), codes })
}

fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut out = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        out[d] = i % shape[d].max(1);
        i /= shape[d].max(1);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// safetensors

/// The safetensors name of a dtype stored natively, if the format has one.
fn st_name(d: DType) -> Option<&'static str> {
    let f = d.float_format();
    Some(match d {
        DType::UInt(1) => "BOOL",
        DType::UInt(8) => "U8",
        DType::Int(8) => "I8",
        DType::UInt(16) => "U16",
        DType::Int(16) => "I16",
        DType::UInt(32) => "U32",
        DType::Int(32) => "I32",
        DType::Int(64) => "I64",
        _ if f == Some(FloatFormat::F16) => "F16",
        _ if f == Some(FloatFormat::BF16) => "BF16",
        _ if f == Some(FloatFormat::F32) => "F32",
        _ if f == Some(FloatFormat::F64) => "F64",
        _ if f == Some(FloatFormat::F8E4M3) => "F8_E4M3",
        _ if f == Some(FloatFormat::F8E5M2) => "F8_E5M2",
        _ if f == Some(FloatFormat::E8M0) => "F8_E8M0",
        _ if f == Some(FloatFormat::F6E2M3) => "F6_E2M3",
        _ if f == Some(FloatFormat::F6E3M2) => "F6_E3M2",
        _ if f == Some(FloatFormat::F4E2M1) => "F4",
        _ => return None,
    })
}

fn st_type(name: &str) -> Option<FileType> {
    let d = |s: &str| DType::parse(s).ok().map(FileType::Native);
    Some(match name {
        "BOOL" => FileType::Native(DType::UInt(1)),
        "U8" => d("u8")?,
        "I8" => d("i8")?,
        "U16" => d("u16")?,
        "I16" => d("i16")?,
        "U32" => d("u32")?,
        "I32" => d("i32")?,
        "I64" => FileType::I64,
        "U64" => FileType::U64,
        "F16" => FileType::Native(DType::F16),
        "BF16" => FileType::Native(DType::BF16),
        "F32" => FileType::Native(DType::F32),
        "F64" => FileType::Native(DType::F64),
        "F8_E4M3" | "F8_E4M3FN" => d("f8e4m3")?,
        "F8_E5M2" => d("f8e5m2")?,
        "F8_E8M0" => d("e8m0")?,
        "F6_E2M3" => d("f6e2m3")?,
        "F6_E3M2" => d("f6e3m2")?,
        "F4" => d("f4e2m1")?,
        _ => return None,
    })
}

fn file_bits(k: FileType) -> u32 {
    match k {
        FileType::Native(d) => d.bits().max(if d == DType::UInt(1) { 8 } else { 0 }),
        _ => 64,
    }
}

/// A tiny JSON value: enough for safetensors headers.
#[derive(Clone, Debug)]
enum Json {
    Str(String),
    Num(f64),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
    Other,
}

fn parse_json(s: &[u8], i: &mut usize) -> Result<Json, String> {
    let ws = |i: &mut usize| {
        while *i < s.len() && (s[*i] as char).is_ascii_whitespace() {
            *i += 1;
        }
    };
    ws(i);
    let c = *s.get(*i).ok_or("unexpected end of JSON")?;
    match c {
        b'{' => {
            *i += 1;
            let mut out = Vec::new();
            loop {
                ws(i);
                if s.get(*i) == Some(&b'}') {
                    *i += 1;
                    return Ok(Json::Obj(out));
                }
                let Json::Str(k) = parse_json(s, i)? else { return Err("JSON object key is not a string".into()) };
                ws(i);
                if s.get(*i) != Some(&b':') {
                    return Err("expected `:` in JSON".into());
                }
                *i += 1;
                let v = parse_json(s, i)?;
                out.push((k, v));
                ws(i);
                match s.get(*i) {
                    Some(b',') => *i += 1,
                    Some(b'}') => {}
                    _ => return Err("expected `,` or `}` in JSON".into()),
                }
            }
        }
        b'[' => {
            *i += 1;
            let mut out = Vec::new();
            loop {
                ws(i);
                if s.get(*i) == Some(&b']') {
                    *i += 1;
                    return Ok(Json::Arr(out));
                }
                out.push(parse_json(s, i)?);
                ws(i);
                match s.get(*i) {
                    Some(b',') => *i += 1,
                    Some(b']') => {}
                    _ => return Err("expected `,` or `]` in JSON".into()),
                }
            }
        }
        b'"' => {
            *i += 1;
            let mut out = String::new();
            while let Some(&c) = s.get(*i) {
                *i += 1;
                match c {
                    b'"' => return Ok(Json::Str(out)),
                    b'\\' => {
                        let e = *s.get(*i).ok_or("bad JSON escape")?;
                        *i += 1;
                        out.push(match e {
                            b'n' => '\n',
                            b't' => '\t',
                            b'u' => {
                                let hex = std::str::from_utf8(s.get(*i..*i + 4).ok_or("bad \\u escape")?).map_err(|_| "bad \\u escape")?;
                                *i += 4;
                                char::from_u32(u32::from_str_radix(hex, 16).map_err(|_| "bad \\u escape")?).unwrap_or('?')
                            }
                            other => other as char,
                        });
                    }
                    _ => {
                        // Re-decode UTF-8 sequences byte by byte.
                        let start = *i - 1;
                        let len = match c {
                            0..=0x7f => 1,
                            0xc0..=0xdf => 2,
                            0xe0..=0xef => 3,
                            _ => 4,
                        };
                        *i = start + len;
                        out.push_str(std::str::from_utf8(s.get(start..start + len).ok_or("bad UTF-8")?).map_err(|_| "bad UTF-8")?);
                    }
                }
            }
            Err("unterminated JSON string".into())
        }
        b'-' | b'0'..=b'9' => {
            let start = *i;
            while *i < s.len() && matches!(s[*i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                *i += 1;
            }
            let t = std::str::from_utf8(&s[start..*i]).map_err(|_| "bad number")?;
            t.parse().map(Json::Num).map_err(|_| format!("bad JSON number `{t}`"))
        }
        _ => {
            for lit in ["true", "false", "null"] {
                if s[*i..].starts_with(lit.as_bytes()) {
                    *i += lit.len();
                    return Ok(Json::Other);
                }
            }
            Err("unexpected character in JSON".into())
        }
    }
}

/// Reads every tensor of a `.safetensors` file.
pub fn read_safetensors(bytes: &[u8]) -> Result<BTreeMap<String, RawArray>, String> {
    let n = u64::from_le_bytes(bytes.get(..8).ok_or("not a safetensors file (too short)")?.try_into().expect("8 bytes")) as usize;
    let end = n.checked_add(8).filter(|&e| e <= bytes.len()).ok_or("truncated safetensors header")?;
    let header = &bytes[8..end];
    let data = &bytes[end..];
    let Json::Obj(entries) = parse_json(header, &mut 0)? else { return Err("safetensors header is not an object".into()) };
    let mut out = BTreeMap::new();
    for (name, v) in entries {
        if name == "__metadata__" {
            continue;
        }
        let Json::Obj(fields) = v else { return Err(format!("tensor `{name}`: bad header entry")) };
        let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let Some(Json::Str(dt)) = get("dtype") else { return Err(format!("tensor `{name}`: no dtype")) };
        let kind = st_type(&dt).ok_or_else(|| format!("tensor `{name}`: unsupported safetensors dtype {dt}"))?;
        let nums = |v: Option<Json>| -> Result<Vec<usize>, String> {
            match v {
                Some(Json::Arr(a)) => a.iter().map(|x| if let Json::Num(n) = x { Ok(*n as usize) } else { Err(format!("tensor `{name}`: bad header")) }).collect(),
                _ => Err(format!("tensor `{name}`: bad header")),
            }
        };
        let shape = nums(get("shape"))?;
        let offs = nums(get("data_offsets"))?;
        if offs.len() != 2 || offs[0] > offs[1] || offs[1] > data.len() {
            return Err(format!("tensor `{name}`: data offsets out of range"));
        }
        let raw = &data[offs[0]..offs[1]];
        let bits = file_bits(kind) as usize;
        let count = shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .filter(|n| n.checked_mul(bits).is_some())
            .ok_or_else(|| format!("tensor `{name}`: the shape is too large"))?;
        if raw.len() * 8 < count * bits {
            return Err(format!("tensor `{name}`: {} bytes of data for {count} elements of {dt}", raw.len()));
        }
        let codes = if bits % 8 == 0 {
            let size = bits / 8;
            (0..count)
                .map(|i| {
                    let mut b = [0u8; 8];
                    b[..size].copy_from_slice(&raw[i * size..(i + 1) * size]);
                    u64::from_le_bytes(b)
                })
                .collect()
        } else {
            tilc_dtype::pack::unpack(raw, bits as u32, count)
        };
        out.insert(name, RawArray { shape, kind, codes });
    }
    Ok(out)
}

/// Writes tensors as one `.safetensors` file (natively where the format has the type, else as
/// exact values in a wider type, like `.npy`).
pub fn write_safetensors(tensors: &[(String, HostTensor)]) -> Vec<u8> {
    let mut header = String::from("{");
    let mut data: Vec<u8> = Vec::new();
    for (i, (name, t)) in tensors.iter().enumerate() {
        let (dt, bytes) = match st_name(t.dtype) {
            Some(n) if t.dtype.bits() % 8 == 0 || n == "F4" || n.starts_with("F6") => (n, st_bytes(t.dtype, &t.codes)),
            Some(n) => (n, st_bytes(t.dtype, &t.codes)),
            None => {
                let (wd, _, _) = widened(t.dtype);
                let codes: Vec<u64> = t.codes.iter().map(|&c| wd.encode(t.dtype.decode(c), Rounding::NearestEven, Overflow::NonSaturating)).collect();
                (st_name(wd).unwrap_or("F32"), st_bytes(wd, &codes))
            }
        };
        let start = data.len();
        data.extend_from_slice(&bytes);
        let shape: Vec<String> = t.shape.iter().map(|d| d.to_string()).collect();
        if i > 0 {
            header.push(',');
        }
        header.push_str(&format!(
            "\"{}\":{{\"dtype\":\"{dt}\",\"shape\":[{}],\"data_offsets\":[{start},{}]}}",
            name.replace('\\', "\\\\").replace('"', "\\\""),
            shape.join(","),
            data.len()
        ));
    }
    header.push('}');
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&data);
    out
}

fn st_bytes(d: DType, codes: &[u64]) -> Vec<u8> {
    let bits = if d == DType::UInt(1) { 8 } else { d.bits() };
    if bits % 8 == 0 {
        let size = (bits / 8) as usize;
        codes.iter().flat_map(|c| c.to_le_bytes()[..size].to_vec()).collect()
    } else {
        tilc_dtype::pack::pack(codes, bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_round_trip_native_and_widened() {
        for name in ["f32", "i8", "u3", "f6e3m2", "bf16", "i12"] {
            let d = DType::parse(name).unwrap();
            let t = tilc_vm::random_tensor(d, vec![3, 5], 9);
            let bytes = write_npy(&t, false);
            let raw = read_npy(&bytes).unwrap();
            assert_eq!(to_tensor(&raw, d, false, None).unwrap(), t, "{name}");
            let packed = write_npy(&t, true);
            let raw = read_npy(&packed).unwrap();
            assert_eq!(to_tensor(&raw, d, true, Some(&[3, 5])).unwrap(), t, "{name} packed");
        }
    }

    #[test]
    fn unrepresentable_values_name_the_first_bad_element() {
        let raw = RawArray { shape: vec![2, 2], kind: FileType::Native(DType::Int(32)), codes: vec![1, 7, 8, 2] };
        let e = to_tensor(&raw, DType::UInt(3), false, None).unwrap_err();
        assert!(e.contains("[1, 0]") && e.contains("is 8") && e.contains("u3"), "{e}");
    }

    #[test]
    fn safetensors_round_trip_with_mx_types() {
        let ts: Vec<(String, HostTensor)> = ["f4e2m1", "e8m0", "f8e4m3", "bf16", "u3", "f6e2m3"]
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("t{i}"), tilc_vm::random_tensor(DType::parse(n).unwrap(), vec![4, 6], i as u64)))
            .collect();
        let bytes = write_safetensors(&ts);
        let back = read_safetensors(&bytes).unwrap();
        for (name, t) in &ts {
            assert_eq!(&to_tensor(&back[name], t.dtype, false, None).unwrap(), t, "{name}");
        }
    }
}
