// SPDX-License-Identifier: GPL-2.0

// Included (with `include!`) by `common/mod.rs` and by the loom tests, whose
// atomics differ in type but not in API.

/// Implements `Atomic64` for a newtype over an `AtomicU64`, or `Atomic32` for
/// one over an `AtomicU32` (`std` or loom): loads and stores as named, the
/// fully ordered RMWs as `SeqCst`, and `cmpxchg` as `SeqCst` on success and
/// on failure.
macro_rules! impl_atomic {
    (Atomic64 for $ty:ty) => {
        impl tdx_sept_guard_policy::Atomic64 for $ty {
            impl_atomic!(@common u64);
            fn fetch_add(&self, v: u64) -> u64 {
                self.0.fetch_add(v, std::sync::atomic::Ordering::SeqCst)
            }
            fn fetch_sub(&self, v: u64) -> u64 {
                self.0.fetch_sub(v, std::sync::atomic::Ordering::SeqCst)
            }
        }
    };
    (Atomic32 for $ty:ty) => {
        impl tdx_sept_guard_policy::Atomic32 for $ty {
            impl_atomic!(@common u32);
        }
    };
    (@common $int:ty) => {
        fn load_acquire(&self) -> $int {
            self.0.load(std::sync::atomic::Ordering::Acquire)
        }
        fn load_relaxed(&self) -> $int {
            self.0.load(std::sync::atomic::Ordering::Relaxed)
        }
        fn store_release(&self, v: $int) {
            self.0.store(v, std::sync::atomic::Ordering::Release)
        }
        fn store_relaxed(&self, v: $int) {
            self.0.store(v, std::sync::atomic::Ordering::Relaxed)
        }
        fn xchg(&self, v: $int) -> $int {
            self.0.swap(v, std::sync::atomic::Ordering::SeqCst)
        }
        fn cmpxchg(&self, old: $int, new: $int) -> Result<$int, $int> {
            use std::sync::atomic::Ordering::SeqCst;
            self.0.compare_exchange(old, new, SeqCst, SeqCst)
        }
    };
}
