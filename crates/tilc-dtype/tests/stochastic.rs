//! Philox4x32-10 against the Random123 known answers, and stochastic rounding's unbiasedness
//! and determinism.

use tilc_dtype::{DType, Overflow, Rounding, philox4x32_10, stochastic_bits};

#[test]
fn philox_matches_random123_known_answers() {
    // Random123 `kat_vectors`: philox4x32 10 <counter> <key> <output>.
    let cases: [([u32; 4], [u32; 2], [u32; 4]); 3] = [
        (
            [0; 4],
            [0; 2],
            [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8],
        ),
        (
            [u32::MAX; 4],
            [u32::MAX; 2],
            [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd],
        ),
        (
            [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344],
            [0xa409_3822, 0x299f_31d0],
            [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1],
        ),
    ];
    for (counter, key, want) in cases {
        assert_eq!(
            philox4x32_10(counter, key),
            want,
            "counter {counter:x?} key {key:x?}"
        );
    }
}

#[test]
fn stochastic_bits_follow_the_documented_counter_and_key() {
    let zero = [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8];
    for i in 0..4 {
        assert_eq!(stochastic_bits(0, i), zero[i as usize]);
    }
    let seed = 0x0123_4567_89ab_cdef_u64;
    let index = (5u64 << 34) | (7 << 2) | 2;
    let words = philox4x32_10([7, 5, 0, 0], [0x89ab_cdef, 0x0123_4567]);
    assert_eq!(stochastic_bits(seed, index), words[2]);
}

/// Rounds `x` n times with consecutive indices and returns how many rounded up to `hi_code`.
fn count_up(d: &DType, x: f64, seed: u64, n: u64, lo_code: u64, hi_code: u64) -> u64 {
    let mut up = 0;
    for index in 0..n {
        let c = d.encode(x, Rounding::Stochastic { seed, index }, Overflow::Saturate);
        assert!(
            c == lo_code || c == hi_code,
            "{d}: {x} gave code {c:#x} (seed {seed})"
        );
        up += u64::from(c == hi_code);
    }
    up
}

#[test]
fn stochastic_rounding_is_unbiased_within_three_sigma() {
    const N: u64 = 1_000_000;
    // (type, x, lower code, upper code, probability of rounding up)
    let f4 = DType::parse("f4e2m1").unwrap();
    let bf16 = DType::BF16;
    let cases = [
        (f4, 1.3, 2, 3, 0.6),
        (f4, -4.5, 14, 15, 0.25),
        (f4, 0.1, 0, 1, 0.2),
        (DType::UInt(4), 2.25, 2, 3, 0.25),
        (DType::Int(5), -7.875, 0x19, 0x18, 0.875),
        (bf16, 1.0 + 2f64.powi(-7) / 3.0, 0x3F80, 0x3F81, 1.0 / 3.0),
    ];
    for (i, (d, x, lo, hi, p)) in cases.into_iter().enumerate() {
        let seed = 1000 + i as u64;
        let up = count_up(&d, x, seed, N, lo, hi) as f64;
        let mean = N as f64 * p;
        let sigma = (N as f64 * p * (1.0 - p)).sqrt();
        assert!(
            (up - mean).abs() <= 3.0 * sigma,
            "{d} x = {x}: {up} ups, expected {mean} ± {} (seed {seed})",
            3.0 * sigma
        );
    }
}

#[test]
fn stochastic_rounding_is_deterministic_per_seed_and_index() {
    let d = DType::parse("f6e3m2").unwrap();
    let xs: Vec<f64> = (0..4096).map(|i| (i as f64 * 0.37).sin() * 20.0).collect();
    let run = |seed: u64| -> Vec<u64> {
        xs.iter()
            .enumerate()
            .map(|(i, &x)| {
                d.encode(
                    x,
                    Rounding::Stochastic {
                        seed,
                        index: i as u64,
                    },
                    Overflow::Saturate,
                )
            })
            .collect()
    };
    assert_eq!(run(42), run(42));
    let differing = run(42)
        .iter()
        .zip(run(43))
        .filter(|(a, b)| **a != *b)
        .count();
    assert!(
        differing > 100,
        "another seed changes many roundings ({differing})"
    );
    // Exactly representable values never move.
    for c in 0..64u64 {
        let v = d.decode(c);
        for index in 0..64 {
            assert_eq!(
                d.encode(
                    v,
                    Rounding::Stochastic { seed: 9, index },
                    Overflow::Saturate
                ),
                c
            );
        }
    }
}
