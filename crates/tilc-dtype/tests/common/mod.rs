//! Helpers shared by the integration tests: a seeded generator and the list of formats.
#![allow(dead_code)]

use tilc_dtype::DType;

/// SplitMix64: a tiny seeded generator, so failures print a seed that reproduces them.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Normal(0, 1) by Box–Muller.
    pub fn normal(&mut self) -> f64 {
        let u = self.unit().max(1e-300);
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// Every float name of at most 16 bits that parses, with its (E, M, signed, family label).
/// The family is restated here from the crate docs, not taken from the crate.
pub fn small_float_names() -> Vec<(String, u32, u32, bool, &'static str)> {
    let mut out = Vec::new();
    for n in 2..=16u32 {
        for e in 1..=8u32 {
            if e + 1 > n {
                continue;
            }
            let m = n - 1 - e;
            let family = match n {
                0..=7 => "finite",
                8 if e <= 4 => "finite-nan",
                _ => "ieee",
            };
            if family == "ieee" && (e < 2 || m == 0) {
                continue;
            }
            out.push((format!("f{n}e{e}m{m}"), e, m, true, family));
        }
    }
    for e in 1..=8u32 {
        for m in 0..=8u32 {
            // `ue8m0` is an alias of `e8m0`, listed below.
            if (7..=8).contains(&(e + m)) && m > 0 {
                out.push((format!("ue{e}m{m}"), e, m, false, "finite-nan"));
            }
        }
    }
    out.push(("e8m0".to_string(), 8, 0, false, "power-of-two"));
    out
}

/// Every integer type of at most 16 bits.
pub fn small_int_types() -> Vec<DType> {
    (1..=16u8)
        .flat_map(|b| [DType::UInt(b), DType::Int(b)])
        .collect()
}
