// SPDX-License-Identifier: GPL-2.0

//! The policy crate's platform traits over the kernel's own primitives:
//! LKMM atomics (`kernel::sync::atomic`) and the monotonic clock.

use crate::policy::{Atomic64, Clock, CounterCell};
use kernel::sync::atomic::{Acquire, Atomic, Full, Relaxed, Release};
use kernel::time::{Instant, Monotonic};

/// A 64-bit kernel atomic, used for SPTEs, vCPU modes and the entry gate.
#[repr(transparent)]
pub(crate) struct KAtomic64(Atomic<u64>);

impl KAtomic64 {
    pub(crate) const fn new(v: u64) -> Self {
        Self(Atomic::new(v))
    }
}

impl Default for KAtomic64 {
    fn default() -> Self {
        Self::new(0)
    }
}

impl Atomic64 for KAtomic64 {
    fn load_acquire(&self) -> u64 {
        self.0.load(Acquire)
    }
    fn load_relaxed(&self) -> u64 {
        self.0.load(Relaxed)
    }
    fn store_release(&self, v: u64) {
        self.0.store(v, Release)
    }
    fn store_relaxed(&self, v: u64) {
        self.0.store(v, Relaxed)
    }
    fn xchg(&self, v: u64) -> u64 {
        self.0.xchg(v, Full)
    }
    fn cmpxchg(&self, old: u64, new: u64) -> Result<u64, u64> {
        self.0.cmpxchg(old, new, Full)
    }
    fn fetch_add(&self, v: u64) -> u64 {
        self.0.fetch_add(v, Full)
    }
    fn fetch_sub(&self, v: u64) -> u64 {
        self.0.fetch_sub(v, Full)
    }
}

/// A statistics counter: relaxed, like binder's `stats.rs`.
#[repr(transparent)]
#[derive(Default)]
pub(crate) struct KCounter(KAtomic64);

impl CounterCell for KCounter {
    fn add(&self, n: u64) {
        (self.0).0.add(n, Relaxed);
    }
    fn get(&self) -> u64 {
        self.0.load_relaxed()
    }
    fn reset(&self) {
        self.0.store_relaxed(0);
    }
}

/// The monotonic clock, in nanoseconds since the clock was made.
#[derive(Clone, Copy)]
pub(crate) struct KClock {
    start: Instant<Monotonic>,
}

impl KClock {
    pub(crate) fn new() -> Self {
        Self {
            start: Instant::now(),
        }
    }
}

impl Clock for KClock {
    fn now_ns(&self) -> u64 {
        // Monotonic: never before `start`, so never negative.
        self.start.elapsed().as_nanos().unsigned_abs()
    }
}
