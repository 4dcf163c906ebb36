// SPDX-License-Identifier: GPL-2.0

//! The TDX module's lock primitives, as its `tdx_locks.h` has them: every
//! acquisition is a single atomic try. Nothing here spins or waits; a lost
//! race is reported to the caller, who turns it into a busy status.

use kernel::sync::atomic::{
    Acquire,
    Atomic,
    Full,
    Relaxed,
    Release, //
};

const EXCLUSIVE: u64 = 1 << 63;

/// Shared/exclusive lock: an exclusive bit and a reader count. Used for the
/// TD's S-EPT tree lock and its epoch lock.
pub(crate) struct SxLock(Atomic<u64>);

impl SxLock {
    pub(crate) const fn new() -> Self {
        Self(Atomic::new(0))
    }

    /// Fails only if the exclusive bit is set. Like the module, a reader
    /// first adds itself and backs out if it finds a writer.
    pub(crate) fn try_shared(&self) -> bool {
        if self.0.fetch_add(1, Full) & EXCLUSIVE != 0 {
            self.0.fetch_sub(1, Full);
            return false;
        }
        true
    }

    /// Fails unless the lock is completely free.
    pub(crate) fn try_exclusive(&self) -> bool {
        self.0.cmpxchg(0, EXCLUSIVE, Full).is_ok()
    }

    pub(crate) fn unlock_shared(&self) {
        self.0.fetch_sub(1, Release);
    }

    /// Subtracts rather than stores 0: a reader that is backing out may have
    /// its increment in the word right now.
    pub(crate) fn unlock_exclusive(&self) {
        self.0.fetch_sub(EXCLUSIVE, Release);
    }
}

const LOCKED: u64 = 1 << 11;

/// An S-EPT entry with the module's per-entry lock (bit 11 of the entry)
/// and host-priority bit (bit 52, kept in its own atomic here).
///
/// A host try on a held entry sets host priority and fails. A guest try on
/// a held entry fails; one that gets the lock but sees host priority gives
/// it back and fails with `TDX_OPERAND_BUSY_HOST_PRIORITY`. A host acquire
/// clears host priority.
pub(crate) struct SeptEntry {
    word: Atomic<u64>,
    host_priority: Atomic<bool>,
}

/// Why a guest could not lock an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GuestLockError {
    Busy,
    HostPriority,
}

impl SeptEntry {
    pub(crate) const fn new(state: u64) -> Self {
        Self {
            word: Atomic::new(state),
            host_priority: Atomic::new(false),
        }
    }

    /// The entry's state, without the lock bit.
    pub(crate) fn state(&self) -> u64 {
        self.word.load(Acquire) & !LOCKED
    }

    #[cfg(tsg_tests)]
    pub(crate) fn is_locked(&self) -> bool {
        self.word.load(Relaxed) & LOCKED != 0
    }

    /// Host acquire: returns the state on success.
    pub(crate) fn host_try_lock(&self) -> Option<u64> {
        let v = self.word.load(Relaxed);
        if v & LOCKED == 0 && self.word.cmpxchg(v, v | LOCKED, Full).is_ok() {
            self.host_priority.store(false, Relaxed);
            return Some(v);
        }
        self.host_priority.store(true, Release);
        None
    }

    /// Guest acquire: returns the state on success.
    pub(crate) fn guest_try_lock(&self) -> Result<u64, GuestLockError> {
        let v = self.word.load(Relaxed);
        if v & LOCKED != 0 || self.word.cmpxchg(v, v | LOCKED, Full).is_err() {
            return Err(GuestLockError::Busy);
        }
        if self.host_priority.load(Acquire) {
            self.word.store(v, Release);
            return Err(GuestLockError::HostPriority);
        }
        Ok(v)
    }

    /// Releases the lock, leaving the entry in `state`. Only the holder
    /// writes the word while it is locked.
    pub(crate) fn unlock(&self, state: u64) {
        self.word.store(state & !LOCKED, Release);
    }
}
