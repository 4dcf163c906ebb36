// SPDX-License-Identifier: GPL-2.0

//! A reader-writer spinlock (`rwlock_t`), the kind KVM's x86 `mmu_lock` is.
//! The kernel crate wraps `spinlock_t` and `struct mutex` but not `rwlock_t`.

use super::ffi::{
    tsg_read_lock,
    tsg_read_unlock,
    tsg_rwlock_init,
    tsg_write_lock,
    tsg_write_unlock, //
};
use core::marker::PhantomData;
use kernel::{
    bindings,
    prelude::*,
    sync::LockClassKey,
    types::Opaque, //
};

/// A `rwlock_t` protecting no data of its own: like KVM's `mmu_lock`, it
/// orders whole code paths (maps under the read side, zaps under the write
/// side).
///
/// # Invariants
///
/// `lock` was initialised by `tsg_rwlock_init()` and, being pinned, never
/// moves.
#[pin_data]
pub(crate) struct RwSpinLock {
    #[pin]
    lock: Opaque<bindings::rwlock_t>,
}

// SAFETY: `rwlock_t` may be taken and released from any task.
unsafe impl Send for RwSpinLock {}
// SAFETY: As above; all access goes through the lock's own operations.
unsafe impl Sync for RwSpinLock {}

/// Creates a [`RwSpinLock`] with a lock class of its own, named after the
/// call site unless a name is given (as `new_spinlock!` does).
macro_rules! new_rwlock {
    ($($name:literal)?) => {
        $crate::platform::rwlock::RwSpinLock::new(
            kernel::optional_name!($($name)?),
            kernel::static_lock_class!(),
        )
    };
}
pub(crate) use new_rwlock;

/// The read side, held until dropped; released by the task that took it
/// (neither `Send` nor `Sync`).
pub(crate) struct ReadGuard<'a>(&'a RwSpinLock, PhantomData<*mut ()>);
/// The write side, held until dropped; likewise.
pub(crate) struct WriteGuard<'a>(&'a RwSpinLock, PhantomData<*mut ()>);

impl RwSpinLock {
    /// Use [`new_rwlock!`].
    pub(crate) fn new(name: &'static CStr, key: Pin<&'static LockClassKey>) -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `slot` is valid for writes and pinned; `name` and `key`
            // are static, as lockdep requires.
            // INVARIANT: The lock is initialised here.
            lock <- Opaque::ffi_init(|slot| unsafe {
                tsg_rwlock_init(slot, name.as_char_ptr(), key.as_ptr())
            }),
        })
    }

    /// Takes the read side.
    pub(crate) fn read(&self) -> ReadGuard<'_> {
        // SAFETY: The lock is initialised (type invariant); the guard
        // releases it.
        unsafe { tsg_read_lock(self.lock.get()) };
        ReadGuard(self, PhantomData)
    }

    /// Takes the write side.
    pub(crate) fn write(&self) -> WriteGuard<'_> {
        // SAFETY: As for `read`.
        unsafe { tsg_write_lock(self.lock.get()) };
        WriteGuard(self, PhantomData)
    }
}

impl Drop for ReadGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: This guard holds the read side.
        unsafe { tsg_read_unlock(self.0.lock.get()) }
    }
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: This guard holds the write side.
        unsafe { tsg_write_unlock(self.0.lock.get()) }
    }
}
