// SPDX-License-Identifier: GPL-2.0

//! The platform's atomics and clock.
//!
//! The crate uses no atomics of its own: the kernel supplies LKMM atomics and
//! the host tests supply `std` or loom ones. Orderings map onto the kernel's:
//!
//! | method | kernel | C11 (host tests) |
//! |---|---|---|
//! | `load_acquire` | `smp_load_acquire()` | `Acquire` |
//! | `load_relaxed` | `READ_ONCE()` | `Relaxed` |
//! | `store_release` | `smp_store_release()` | `Release` |
//! | `store_relaxed` | `WRITE_ONCE()` | `Relaxed` |
//! | `xchg`, `fetch_add`, `fetch_sub` | fully ordered RMW | `SeqCst` (`AcqRel` is enough for this crate) |
//! | [`Atomic64::cmpxchg`] | fully ordered on success; a failure is a relaxed read | `SeqCst` for success and failure |
//! | [`Atomic32::cmpxchg`] | fully ordered on success *and* failure | `SeqCst` for success and failure |
//!
//! [`Atomic64`] holds SPTEs and the entry gate; [`Atomic32`] holds a vCPU's
//! mode, an `int` in KVM's `struct kvm_vcpu`.
//!
//! A failed `cmpxchg()` is not a read-modify-write but only a read, and the
//! kernel does not order it: "RMW operations that are conditional are
//! unordered on FAILURE" (`Documentation/atomic_t.txt`); the Rust
//! `Atomic::cmpxchg()` documents its failure as a `Relaxed` load. Nothing in
//! this crate needs a failed [`Atomic64::cmpxchg`] to be ordered.
//! [`Atomic32::cmpxchg`] is the mode's `cmpxchg(IN_GUEST_MODE,
//! EXITING_GUEST_MODE)` of KVM's `kvm_vcpu_exiting_guest_mode()`, which puts
//! `smp_mb__before_atomic()` in front of it so that the read of the mode,
//! which is all a failure does, is ordered after the caller's earlier writes
//! (on x86 `lock cmpxchg` is fully ordered on both outcomes anyway). The
//! trait asks for full ordering on both outcomes, the simple contract that
//! x86 gives; the gate's own argument needs less (see [`super::gate`]).
//!
//! No `smp_mb()` is needed by the crate: every ordering argument in it is made
//! with fully ordered read-modify-writes (see [`super::gate`]).

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
    /// Stores `new` if the cell holds `old`; fully ordered when it stores. A
    /// failed one need not be ordered (see the module documentation).
    ///
    /// Returns `Ok(old)` on success and `Err(seen)` with the value found
    /// otherwise.
    fn cmpxchg(&self, old: u64, new: u64) -> Result<u64, u64>;
    /// Adds `v` (wrapping) and returns the old value; fully ordered.
    fn fetch_add(&self, v: u64) -> u64;
    /// Subtracts `v` (wrapping) and returns the old value; fully ordered.
    fn fetch_sub(&self, v: u64) -> u64;
}

/// A 32-bit atomic cell with the kernel's orderings: a vCPU's mode (KVM's
/// `int mode` in `struct kvm_vcpu`).
///
/// Like [`Atomic64`], without the arithmetic: a mode is only loaded, stored,
/// exchanged and compared-and-exchanged.
pub trait Atomic32 {
    /// Loads with acquire ordering.
    fn load_acquire(&self) -> u32;
    /// Loads with no ordering.
    fn load_relaxed(&self) -> u32;
    /// Stores with release ordering.
    fn store_release(&self, v: u32);
    /// Stores with no ordering.
    fn store_relaxed(&self, v: u32);
    /// Swaps in `v` and returns the old value; fully ordered (KVM's
    /// `smp_store_mb()` is this on x86).
    fn xchg(&self, v: u32) -> u32;
    /// Stores `new` if the cell holds `old`; fully ordered whether or not it
    /// stores. x86's `lock cmpxchg` is; over the kernel's Rust
    /// `Atomic::cmpxchg(.., Full)`, which is a relaxed read on failure, put
    /// `smp_mb()` before it and, on failure, after it. See the module
    /// documentation.
    ///
    /// Returns `Ok(old)` on success and `Err(seen)` with the value found
    /// otherwise.
    fn cmpxchg(&self, old: u32, new: u32) -> Result<u32, u32>;
}

/// A monotonic clock, used only to measure time for counters.
pub trait Clock {
    /// Nanoseconds since an arbitrary, fixed point (`ktime_get_ns()`).
    fn now_ns(&self) -> u64;
}
