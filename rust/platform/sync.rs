// SPDX-License-Identifier: GPL-2.0

//! The policy crate's platform traits over the kernel's own primitives:
//! LKMM atomics (`kernel::sync::atomic`) and the monotonic clock.

use crate::platform::compat::smp_mb;
use crate::policy::{
    Atomic32,
    Atomic64,
    Clock,
    CounterCell, //
};
use kernel::{
    sync::atomic::{
        Acquire,
        Atomic,
        Full,
        Relaxed,
        Release, //
    },
    time::{
        Instant,
        Monotonic, //
    },
};

/// A 64-bit kernel atomic, used for SPTEs and the entry gate.
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

/// A 32-bit kernel atomic: a simulated vCPU's mode, an `int` as in KVM's
/// `struct kvm_vcpu`.
#[repr(transparent)]
pub(crate) struct KAtomic32(Atomic<u32>);

impl KAtomic32 {
    pub(crate) const fn new(v: u32) -> Self {
        Self(Atomic::new(v))
    }
}

impl Atomic32 for KAtomic32 {
    fn load_acquire(&self) -> u32 {
        self.0.load(Acquire)
    }
    fn load_relaxed(&self) -> u32 {
        self.0.load(Relaxed)
    }
    fn store_release(&self, v: u32) {
        self.0.store(v, Release)
    }
    fn store_relaxed(&self, v: u32) {
        self.0.store(v, Relaxed)
    }
    fn xchg(&self, v: u32) -> u32 {
        self.0.xchg(v, Full)
    }
    /// Fully ordered on both outcomes, as the trait asks: the kernel's
    /// `cmpxchg(.., Full)` is only a relaxed read when it fails, so it is
    /// bracketed with `smp_mb()` there (KVM's `kvm_vcpu_exiting_guest_mode()`
    /// puts `smp_mb__before_atomic()` in front for the same reason).
    fn cmpxchg(&self, old: u32, new: u32) -> Result<u32, u32> {
        smp_mb();
        let result = self.0.cmpxchg(old, new, Full);
        if result.is_err() {
            smp_mb();
        }
        result
    }
}

/// A statistics counter: relaxed, like binder's `stats.rs`.
#[repr(transparent)]
pub(crate) struct KCounter(Atomic<u64>);

impl Default for KCounter {
    fn default() -> Self {
        Self(Atomic::new(0))
    }
}

impl KCounter {
    /// Raises the counter to `v` if it is below: for counters that keep a
    /// maximum.
    pub(crate) fn record_max(&self, v: u64) {
        let mut seen = self.0.load(Relaxed);
        while v > seen {
            match self.0.cmpxchg(seen, v, Relaxed) {
                Ok(_) => break,
                Err(now) => seen = now,
            }
        }
    }
}

impl CounterCell for KCounter {
    fn add(&self, n: u64) {
        self.0.add(n, Relaxed);
    }
    fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
    fn reset(&self) {
        self.0.store(0, Relaxed);
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

/// This CPU's clock, `local_clock()`, in nanoseconds: what the latency
/// histograms time their durations with. It is the clock ftrace uses by
/// default: much cheaper than [`KClock`]'s `ktime_get()` (one TSC read
/// where the TSC is stable, no sequence count), monotonic on one CPU, and
/// within a few microseconds of the other CPUs' at worst (where the TSC
/// is unstable). Durations that start and end on one CPU, as a map call
/// under `mmu_lock` does, are exact to its resolution.
pub(crate) fn local_clock_ns() -> u64 {
    // SAFETY: `local_clock()` has no preconditions and may be called from
    // any context.
    unsafe { super::ffi::tsg_local_clock() }
}
