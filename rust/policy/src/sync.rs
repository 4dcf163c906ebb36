// SPDX-License-Identifier: GPL-2.0

//! The platform's atomics and clock.
//!
//! The crate uses no atomics of its own: the kernel supplies LKMM atomics and
//! the host tests supply `std` or loom ones. Orderings map onto the kernel's:
//!
//! | method | kernel | C11 (host tests) |
//! |---|---|---|
//! | [`Atomic64::load_acquire`] | `smp_load_acquire()` | `Acquire` |
//! | [`Atomic64::load_relaxed`] | `READ_ONCE()` | `Relaxed` |
//! | [`Atomic64::store_release`] | `smp_store_release()` | `Release` |
//! | [`Atomic64::store_relaxed`] | `WRITE_ONCE()` | `Relaxed` |
//! | `xchg`, `cmpxchg`, `fetch_add`, `fetch_sub` | fully ordered RMW | `SeqCst` (`AcqRel` is enough for this crate) |
//!
//! No `smp_mb()` is needed: every ordering argument in this crate is made with
//! read-modify-writes (see [`super::gate`]).

/// A 64-bit atomic cell with the kernel's orderings.
///
/// The read-modify-writes are fully ordered, like the kernel's unsuffixed
/// `atomic64_*()` RMWs: they act as `smp_mb()` before and after.
pub trait Atomic64 {
    /// Loads with acquire ordering.
    fn load_acquire(&self) -> u64;
    /// Loads with no ordering.
    fn load_relaxed(&self) -> u64;
    /// Stores with release ordering.
    fn store_release(&self, v: u64);
    /// Stores with no ordering.
    fn store_relaxed(&self, v: u64);
    /// Swaps in `v` and returns the old value; fully ordered.
    fn xchg(&self, v: u64) -> u64;
    /// Stores `new` if the cell holds `old`; fully ordered.
    ///
    /// Returns `Ok(old)` on success and `Err(seen)` with the value found
    /// otherwise.
    fn cmpxchg(&self, old: u64, new: u64) -> Result<u64, u64>;
    /// Adds `v` (wrapping) and returns the old value; fully ordered.
    fn fetch_add(&self, v: u64) -> u64;
    /// Subtracts `v` (wrapping) and returns the old value; fully ordered.
    fn fetch_sub(&self, v: u64) -> u64;
}

/// A monotonic clock, used only to measure time for counters.
pub trait Clock {
    /// Nanoseconds since an arbitrary, fixed point (`ktime_get_ns()`).
    fn now_ns(&self) -> u64;
}
