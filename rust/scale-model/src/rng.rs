// SPDX-License-Identifier: GPL-2.0

//! A small seeded generator (SplitMix64): every modelled draw comes from one
//! per thread, so a run is the same for the same seed whatever the host's
//! scheduler does.

/// SplitMix64 (Steele, Lea, Flood 2014), as used to seed xoshiro.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `stream` of `seed` (e.g. one per vCPU and vCPU count).
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut r = Self(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        r.next_u64();
        r
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// Exponential with mean `mean` (ns), rounded; at least 1.
    pub fn exp(&mut self, mean: u64) -> u64 {
        let x = -(mean as f64) * (1.0 - self.unit()).ln();
        (x.round() as u64).max(1)
    }
}
