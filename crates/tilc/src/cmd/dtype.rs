//! `tilc dtype NAME`: prints an element type's facts and, for widths up to 8 bits, every code
//! with its value. All facts come from `tilc-dtype`; this module only formats them.

use std::fmt::Write as _;
use std::process::ExitCode;
use tilc_dtype::{DType, FloatFamily, FloatFormat};

/// Print an element type's facts (bits, bias, range, Inf/NaN rules) and its code table.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  tilc dtype f4e2m1     all 16 codes of OCP FP4\n  \
tilc dtype e8m0       the MX scale format\n  tilc dtype bf16 --table\n\n\
Names: u1..u32, i1..i32, f16, bf16, f32, f64, f{1+E+M}e{E}m{M} (f8e4m3, f6e3m2, f5e2m2 ...), \
e8m0, ue4m3, ue5m3."
)]
pub struct DtypeArgs {
    /// The type's name, e.g. `f4e2m1`, `u3`, `e8m0`.
    pub name: String,
    /// Print the code table even for types wider than 8 bits (up to 16).
    #[arg(long, conflicts_with = "no_table")]
    pub table: bool,
    /// Do not print the code table.
    #[arg(long)]
    pub no_table: bool,
}

/// Runs `tilc dtype`.
pub fn run(args: DtypeArgs) -> ExitCode {
    let dtype = match DType::parse(&args.name) {
        Ok(d) => d,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(1);
        }
    };
    let table = !args.no_table && (dtype.bits() <= 8 || (args.table && dtype.bits() <= 16));
    print!("{}", describe(&dtype, table));
    ExitCode::SUCCESS
}

/// The full report: facts, then the table when asked.
pub fn describe(dtype: &DType, table: bool) -> String {
    let mut out = String::new();
    let _ = write_facts(&mut out, dtype);
    if table {
        let _ = write_table(&mut out, dtype);
    }
    out
}

fn write_facts(out: &mut String, dtype: &DType) -> std::fmt::Result {
    let bits = dtype.bits();
    match dtype {
        DType::UInt(_) | DType::Int(_) => {
            let kind = if dtype.is_signed() {
                "two's-complement integer"
            } else {
                "unsigned integer"
            };
            writeln!(out, "{dtype}: {bits}-bit {kind}")?;
            writeln!(out, "  min           {}", dtype.min_finite())?;
            writeln!(out, "  max           {}", dtype.max_finite())?;
            writeln!(
                out,
                "  casts         round by the rounding mode, then saturate or wrap modulo 2^{bits}; NaN -> 0"
            )?;
        }
        DType::Float(f) => {
            let layout = if f.signed() {
                format!(
                    "1 sign + {} exponent + {} mantissa bits",
                    f.exp_bits(),
                    f.man_bits()
                )
            } else if f.exp_bits() + f.man_bits() < bits {
                format!(
                    "unsigned, {} exponent + {} mantissa bits in the low bits of a byte (bit 7 is zero)",
                    f.exp_bits(),
                    f.man_bits()
                )
            } else {
                format!(
                    "unsigned, {} exponent + {} mantissa bits",
                    f.exp_bits(),
                    f.man_bits()
                )
            };
            writeln!(out, "{dtype}: {bits}-bit float, {layout}")?;
            writeln!(out, "  bias          {}", f.bias())?;
            writeln!(out, "  max           {}", num_pow2(f.max_finite()))?;
            writeln!(out, "  min           {}", num(f.min_finite()))?;
            writeln!(out, "  min normal    {}", num_pow2(f.min_normal()))?;
            match f.min_subnormal() {
                Some(s) => writeln!(out, "  min subnormal {}", num_pow2(s))?,
                None => writeln!(out, "  min subnormal none (no subnormals)")?,
            }
            let (inf, nan) = special_rules(f);
            writeln!(out, "  Inf           {inf}")?;
            writeln!(out, "  NaN           {nan}")?;
        }
    }
    Ok(())
}

/// What the format does with Inf and NaN, in words.
fn special_rules(f: &FloatFormat) -> (String, String) {
    let hex = |c: u64| format!("{c:#04x}");
    match f.family() {
        FloatFamily::Ieee => (
            format!(
                "exponent all ones, mantissa 0 (+Inf = {}); overflow gives Inf unless saturating",
                hex(f.inf_code().unwrap_or(0))
            ),
            format!(
                "exponent all ones, mantissa not 0 (quiet NaN = {})",
                hex(f.nan_code(false).unwrap_or(0))
            ),
        ),
        FloatFamily::FiniteNan => (
            "none; overflow gives NaN unless saturating, then max".to_string(),
            format!(
                "only the all-ones code{} ({})",
                if f.signed() { " of each sign" } else { "" },
                hex(f.nan_code(false).unwrap_or(0))
            ),
        ),
        FloatFamily::Finite => (
            "none; overflow and Inf saturate to max".to_string(),
            "none; every code is a number, NaN converts to +0".to_string(),
        ),
        FloatFamily::PowerOfTwo => (
            "none; overflow gives NaN unless saturating, then max".to_string(),
            format!(
                "{} only; no zero and no sign: 0 and negatives give NaN (saturating: the smallest value)",
                hex(f.nan_code(false).unwrap_or(0))
            ),
        ),
    }
}

fn write_table(out: &mut String, dtype: &DType) -> std::fmt::Result {
    let bits = dtype.bits();
    let code_width = bits.div_ceil(4) as usize + 2;
    let column = code_width.max(4);
    let bits_column = (bits as usize).max(4);
    writeln!(out)?;
    writeln!(
        out,
        "  {:<column$}  {:<bits_column$}  value",
        "code", "bits"
    )?;
    let power_of_two = dtype
        .float_format()
        .is_some_and(|f| f.family() == FloatFamily::PowerOfTwo);
    for code in 0..1u64 << bits {
        let value = dtype.decode(code);
        let shown = if power_of_two {
            num_pow2(value)
        } else {
            num(value)
        };
        let hex = format!("{code:#0code_width$x}");
        let binary = format!("{code:0b$b}", b = bits as usize);
        writeln!(out, "  {hex:<column$}  {binary:<bits_column$}  {shown}")?;
    }
    Ok(())
}

/// A value in its shortest round-trip form: plain decimal between 1e-5 and 1e7, scientific
/// otherwise, with NaN and Inf spelled out.
fn num(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".to_string()
        } else {
            "-Inf".to_string()
        }
    } else if v == 0.0 || (1e-5..1e7).contains(&v.abs()) {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

/// [`num`], followed by `(2^k)` when the value is a power of two.
fn num_pow2(v: f64) -> String {
    let bits = v.to_bits();
    let is_pow2 = v > 0.0 && v.is_finite() && v.is_normal() && bits & ((1u64 << 52) - 1) == 0;
    if is_pow2 {
        format!("{} (2^{})", num(v), ((bits >> 52) as i32) - 1023)
    } else {
        num(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f4e2m1_report_lists_all_sixteen_values() {
        let text = describe(&DType::parse("f4e2m1").unwrap(), true);
        let values: Vec<&str> = text
            .lines()
            .filter(|l| l.trim_start().starts_with("0x"))
            .map(|l| l.split_whitespace().nth(2).unwrap())
            .collect();
        let want = [
            "0", "0.5", "1", "1.5", "2", "3", "4", "6", "-0", "-0.5", "-1", "-1.5", "-2", "-3",
            "-4", "-6",
        ];
        assert_eq!(values, want);
        assert!(text.contains("max           6\n"), "{text}");
        assert!(text.contains("min subnormal 0.5 (2^-1)"), "{text}");
    }

    #[test]
    fn wide_types_print_facts_without_a_table() {
        let text = describe(&DType::F16, false);
        assert!(text.contains("max           65504\n"), "{text}");
        assert!(!text.contains("0x0000"), "{text}");
    }
}
