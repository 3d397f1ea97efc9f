//! Bit packing against a bit-at-a-time oracle, and the typed unpackers against `decode`.

mod common;

use common::Rng;
use tilc_dtype::pack::{self, packed_len};
use tilc_dtype::{DType, Overflow, Rounding};

/// The specification, one bit at a time: bit j of element k is stream bit k·w + j.
fn pack_oracle(codes: &[u64], bits: u32) -> Vec<u8> {
    let mut out = vec![0u8; (codes.len() * bits as usize).div_ceil(8)];
    for (k, &c) in codes.iter().enumerate() {
        for j in 0..bits as usize {
            let bit = k * bits as usize + j;
            if (c >> j) & 1 == 1 {
                out[bit / 8] |= 1 << (bit % 8);
            }
        }
    }
    out
}

#[test]
fn pack_and_unpack_match_the_bit_oracle_for_every_width() {
    let seed = 0xBADC_0FFE;
    let mut rng = Rng(seed);
    for bits in 1..=32u32 {
        for n in (0..=70).chain([1000, 1001, 4099]) {
            let codes: Vec<u64> = (0..n).map(|_| rng.next_u64()).collect();
            let masked: Vec<u64> = codes.iter().map(|c| c & ((1u64 << bits) - 1)).collect();
            let packed = pack::pack(&codes, bits);
            assert_eq!(packed.len(), packed_len(n, bits));
            assert_eq!(
                packed,
                pack_oracle(&masked, bits),
                "bits {bits} n {n} seed {seed:#x}"
            );
            assert_eq!(
                pack::unpack(&packed, bits, n),
                masked,
                "bits {bits} n {n} seed {seed:#x}"
            );
            for k in (0..n).step_by(7) {
                assert_eq!(pack::get(&packed, bits, k), masked[k]);
            }
        }
    }
}

#[test]
fn set_changes_one_element_only() {
    let mut rng = Rng(77);
    for bits in [1, 3, 5, 7, 12, 17, 31, 32] {
        let n = 53;
        let mut codes: Vec<u64> = (0..n)
            .map(|_| rng.next_u64() & ((1u64 << bits) - 1))
            .collect();
        let mut packed = pack::pack(&codes, bits);
        for k in [0, 1, 8, 25, 52] {
            let v = rng.next_u64() & ((1u64 << bits) - 1);
            pack::set(&mut packed, bits, k, v);
            codes[k] = v;
            assert_eq!(pack::unpack(&packed, bits, n), codes, "bits {bits} k {k}");
        }
    }
}

#[test]
fn the_stream_layout_is_little_endian_from_bit_zero() {
    // u3 elements 1..=8: 001 010 011 100 101 110 111 000 from bit 0 up.
    assert_eq!(
        pack::pack(&[1, 2, 3, 4, 5, 6, 7, 0], 3),
        vec![0b1101_0001, 0b0101_1000, 0b0001_1111]
    );
    assert_eq!(pack::pack(&[0xF, 0x1], 4), vec![0x1F]);
    assert_eq!(pack::pack(&[0x3FF], 10), vec![0xFF, 0x03]);
}

#[test]
fn typed_unpack_decodes_every_element() {
    let mut rng = Rng(0x7e57);
    let names = [
        "u3", "i3", "u4", "i6", "f4e2m1", "f6e3m2", "f8e4m3", "e8m0", "u12", "f16", "bf16", "i20",
        "u32", "f32",
    ];
    for name in names {
        let d = DType::parse(name).unwrap();
        for n in [0, 5, 8, 64, 1003, 20_001] {
            let codes: Vec<u64> = (0..n).map(|_| rng.next_u64() & d.code_mask()).collect();
            let packed = pack::pack(&codes, d.bits());
            let got = pack::unpack_to_f32(&packed, &d, n);
            let got64 = pack::unpack_to_f64(&packed, &d, n);
            for (k, &c) in codes.iter().enumerate() {
                let want = d.decode(c);
                assert!(
                    (want.is_nan() && got[k].is_nan()) || got[k] == want as f32,
                    "{name} element {k} code {c:#x}: {} vs {want}",
                    got[k]
                );
                assert!((want.is_nan() && got64[k].is_nan()) || got64[k] == want);
            }
        }
    }
}

#[test]
fn pack_f32_encodes_then_packs_with_running_stochastic_indices() {
    let d = DType::parse("f4e2m1").unwrap();
    let xs: Vec<f32> = (0..37).map(|i| i as f32 * 0.23 - 4.0).collect();
    let whole = pack::pack_f32(
        &xs,
        &d,
        Rounding::Stochastic { seed: 5, index: 0 },
        Overflow::Saturate,
    );
    for (k, &x) in xs.iter().enumerate() {
        let want = d.encode(
            f64::from(x),
            Rounding::Stochastic {
                seed: 5,
                index: k as u64,
            },
            Overflow::Saturate,
        );
        assert_eq!(pack::get(&whole, 4, k), want);
    }
    let rne = pack::pack_f32(&xs, &d, Rounding::NearestEven, Overflow::Saturate);
    let back = pack::unpack_to_f32(&rne, &d, xs.len());
    for (x, y) in xs.iter().zip(back) {
        assert!((x - y).abs() <= 1.0, "{x} -> {y}");
    }
}
