//! Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011; the
//! Random123 reference) and the per-element random bits of stochastic rounding. A counter-based
//! generator, so any element's bits are computed directly from (seed, index) on any device.

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// Philox4x32 with 10 rounds, bit-identical to Random123's `philox4x32_10` and cuRAND's Philox.
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = counter;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
        }
        let p0 = u64::from(M0) * u64::from(c[0]);
        let p1 = u64::from(M1) * u64::from(c[2]);
        c = [
            ((p1 >> 32) as u32) ^ c[1] ^ k[0],
            p1 as u32,
            ((p0 >> 32) as u32) ^ c[3] ^ k[1],
            p0 as u32,
        ];
    }
    c
}

/// The 32 random bits of element `index` in stream `seed`: word `index & 3` of
/// `philox4x32_10([index >> 2 (low 32 bits), index >> 34, 0, 0], [seed low, seed high])`.
pub fn stochastic_bits(seed: u64, index: u64) -> u32 {
    let block = index >> 2;
    let words = philox4x32_10(
        [block as u32, (block >> 32) as u32, 0, 0],
        [seed as u32, (seed >> 32) as u32],
    );
    words[(index & 3) as usize]
}
