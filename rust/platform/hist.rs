// SPDX-License-Identifier: GPL-2.0

//! Latency histograms: fixed log-linear buckets of nanoseconds, four per
//! power of two (each bucket at most 25% wide), up to 2^40 ns (about 18
//! minutes), and the exact maximum. Recording is one relaxed atomic add
//! (and a compare-and-swap while the maximum grows); no allocation, no
//! lock, usable with interrupts off and in probe handlers.

use core::fmt;
use kernel::{
    prelude::*,
    sync::atomic::{
        Atomic,
        Relaxed, //
    },
};

/// Sub-buckets per power of two: 2^SUB_BITS.
const SUB_BITS: u32 = 2;
const SUB: usize = 1 << SUB_BITS;
/// Values at or above 2^MAX_LOG2 go into the last bucket.
const MAX_LOG2: u32 = 40;
/// Buckets: values below `SUB` have one each, then `SUB` per power of two.
pub(crate) const BUCKETS: usize = (MAX_LOG2 as usize - SUB_BITS as usize + 1) * SUB;

/// The bucket of `v`.
pub(crate) const fn bucket(v: u64) -> usize {
    let v = if v >= 1 << MAX_LOG2 {
        (1 << MAX_LOG2) - 1
    } else {
        v
    };
    if v < SUB as u64 {
        return v as usize;
    }
    let log2 = 63 - v.leading_zeros();
    let sub = ((v >> (log2 - SUB_BITS)) as usize) & (SUB - 1);
    (log2 - SUB_BITS + 1) as usize * SUB + sub
}

/// The smallest value in bucket `i`.
pub(crate) const fn bucket_low(i: usize) -> u64 {
    if i < SUB {
        return i as u64;
    }
    let log2 = (i / SUB) as u32 + SUB_BITS - 1;
    ((SUB + i % SUB) as u64) << (log2 - SUB_BITS)
}

/// A histogram of durations in nanoseconds, and their maximum.
///
/// All zeroes is an empty histogram ([`Zeroable`]): a table of them is
/// allocated zeroed in place, never built on the stack.
#[repr(C)]
pub(crate) struct Histogram {
    buckets: [Atomic<u64>; BUCKETS],
    max: Atomic<u64>,
}

// SAFETY: Only `Atomic<u64>`s, for which all zeroes is the value 0.
unsafe impl Zeroable for Histogram {}

impl Histogram {
    pub(crate) const fn new() -> Self {
        Self {
            buckets: [const { Atomic::new(0) }; BUCKETS],
            max: Atomic::new(0),
        }
    }

    /// Counts one duration of `ns`.
    pub(crate) fn record(&self, ns: u64) {
        self.buckets[bucket(ns)].add(1, Relaxed);
        self.record_max(ns);
    }

    /// Adds every duration `other` holds (bucket by bucket) and its
    /// maximum. Not atomic as a whole: durations recorded meanwhile may or
    /// may not be added.
    pub(crate) fn add_from(&self, other: &Histogram) {
        for (b, o) in self.buckets.iter().zip(other.buckets.iter()) {
            let n = o.load(Relaxed);
            if n != 0 {
                b.add(n, Relaxed);
            }
        }
        self.record_max(other.max.load(Relaxed));
    }

    fn record_max(&self, ns: u64) {
        let mut seen = self.max.load(Relaxed);
        while ns > seen {
            match self.max.cmpxchg(seen, ns, Relaxed) {
                Ok(_) => break,
                Err(now) => seen = now,
            }
        }
    }

    pub(crate) fn reset(&self) {
        for b in &self.buckets {
            b.store(0, Relaxed);
        }
        self.max.store(0, Relaxed);
    }

    /// The longest duration recorded.
    #[cfg(tsg_tests)]
    pub(crate) fn max(&self) -> u64 {
        self.max.load(Relaxed)
    }

    #[cfg(tsg_tests)]
    /// Durations recorded.
    pub(crate) fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Relaxed)).sum()
    }

    /// `<name>_max <ns>`, then one `<name> <low> <high> <count>` line per
    /// non-empty bucket: `count` durations in `low..high` ns.
    pub(crate) fn render(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}_max {}", name, self.max.load(Relaxed))?;
        for (i, b) in self.buckets.iter().enumerate() {
            let n = b.load(Relaxed);
            if n != 0 {
                writeln!(f, "{} {} {} {}", name, bucket_low(i), bucket_low(i + 1), n)?;
            }
        }
        Ok(())
    }
}
