// SPDX-License-Identifier: GPL-2.0

//! The policy core's platform traits over `std`: atomics, counters and a
//! wall clock.
//!
//! The orderings are those of the policy crate's host tests (see its
//! `sync` module): loads and stores as named, fully ordered
//! read-modify-writes as `SeqCst`, `cmpxchg` `SeqCst` on success and failure.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use tdx_sept_guard_policy::{Atomic32, Atomic64, Clock, CounterCell};

/// [`Atomic64`] over an `AtomicU64`: the entry gate and the SPTE.
#[derive(Debug, Default)]
pub struct StdAtomic64(AtomicU64);

impl StdAtomic64 {
    /// A cell holding `v`.
    pub const fn new(v: u64) -> Self {
        Self(AtomicU64::new(v))
    }
}

impl Atomic64 for StdAtomic64 {
    fn load_acquire(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
    fn load_relaxed(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
    fn store_release(&self, v: u64) {
        self.0.store(v, Ordering::Release)
    }
    fn store_relaxed(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed)
    }
    fn xchg(&self, v: u64) -> u64 {
        self.0.swap(v, Ordering::SeqCst)
    }
    fn cmpxchg(&self, old: u64, new: u64) -> Result<u64, u64> {
        self.0
            .compare_exchange(old, new, Ordering::SeqCst, Ordering::SeqCst)
    }
    fn fetch_add(&self, v: u64) -> u64 {
        self.0.fetch_add(v, Ordering::SeqCst)
    }
    fn fetch_sub(&self, v: u64) -> u64 {
        self.0.fetch_sub(v, Ordering::SeqCst)
    }
}

/// [`Atomic32`] over an `AtomicU32`: a vCPU's mode.
#[derive(Debug, Default)]
pub struct StdAtomic32(AtomicU32);

impl StdAtomic32 {
    /// A cell holding `v`.
    pub const fn new(v: u32) -> Self {
        Self(AtomicU32::new(v))
    }
}

impl Atomic32 for StdAtomic32 {
    fn load_acquire(&self) -> u32 {
        self.0.load(Ordering::Acquire)
    }
    fn load_relaxed(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }
    fn store_release(&self, v: u32) {
        self.0.store(v, Ordering::Release)
    }
    fn store_relaxed(&self, v: u32) {
        self.0.store(v, Ordering::Relaxed)
    }
    fn xchg(&self, v: u32) -> u32 {
        self.0.swap(v, Ordering::SeqCst)
    }
    fn cmpxchg(&self, old: u32, new: u32) -> Result<u32, u32> {
        self.0
            .compare_exchange(old, new, Ordering::SeqCst, Ordering::SeqCst)
    }
}

/// [`CounterCell`] over a relaxed `AtomicU64`.
#[derive(Debug, Default)]
pub struct StdCounter(AtomicU64);

impl CounterCell for StdCounter {
    fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
    fn reset(&self) {
        self.0.store(0, Ordering::Relaxed)
    }
}

/// The host's monotonic clock ([`Instant`]), in nanoseconds since the clock
/// was made. Used only to report how long the host took to run the model;
/// the model's own times come from its modelled clock.
#[derive(Debug)]
pub struct WallClock(Instant);

impl WallClock {
    /// A clock reading 0 now.
    pub fn new() -> Self {
        Self(Instant::now())
    }
}

impl Default for WallClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for WallClock {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}
