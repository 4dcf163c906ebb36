// SPDX-License-Identifier: GPL-2.0

//! The frozen-SPTE lock: an SPTE set to [`FROZEN_SPTE`] is owned by one host
//! task until it writes the final value.
//!
//! KVM's TDP MMU already freezes an SPTE (`cmpxchg(old, FROZEN_SPTE)`) while it
//! updates the mirror S-EPT under the shared mmu_lock; other tasks that see the
//! frozen value back off and re-fault. As the LKML thread asks, this crate
//! keeps the SPTE frozen across the SEAMCALL *and* the kick-and-retry, so no
//! other host task can touch the S-EPT entry in between: a busy status can
//! then only come from the guest side, which the kick removes.

use super::sync::Atomic64;

/// `SHADOW_NONPRESENT_VALUE` on x86-64: bit 63, the S-EPT "suppress #VE" bit
/// (`arch/x86/kvm/mmu/spte.h`, `CONFIG_X86_64`).
pub const SHADOW_NONPRESENT_VALUE: u64 = 1 << 63;

/// `FROZEN_SPTE`: `SHADOW_NONPRESENT_VALUE | 0x1a0` (`arch/x86/kvm/mmu/spte.h`).
pub const FROZEN_SPTE: u64 = SHADOW_NONPRESENT_VALUE | 0x1a0;

/// KVM's `is_frozen_spte()`.
pub const fn is_frozen_spte(spte: u64) -> bool {
    spte == FROZEN_SPTE
}

/// Why an SPTE could not be frozen or committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpteError {
    /// The SPTE did not hold the expected value; `seen` is what it held
    /// (possibly [`FROZEN_SPTE`]: another task owns it).
    Contended {
        /// The value found in the SPTE.
        seen: u64,
    },
    /// [`FROZEN_SPTE`] was given as the expected old value or as the value to
    /// commit. Nothing was changed, except that a rejected commit restores the
    /// old value.
    FrozenValue,
}

/// An SPTE frozen by this task.
///
/// Ends in exactly one of [`Self::commit`] or [`Self::restore`]; dropping the
/// guard restores the old value. Both write with release ordering, so whoever
/// later reads the unfrozen value with acquire ordering sees everything done
/// while it was frozen (the SEAMCALLs included).
#[must_use = "dropping the guard unfreezes the SPTE at once"]
pub struct FrozenSpte<'a, A: Atomic64> {
    cell: &'a A,
    old: u64,
}

impl<'a, A: Atomic64> FrozenSpte<'a, A> {
    /// Freezes `cell` if it holds `old` (fully ordered `cmpxchg`).
    ///
    /// Fails with [`SpteError::FrozenValue`] if `old` is [`FROZEN_SPTE`] (a
    /// frozen SPTE is never frozen again) and with [`SpteError::Contended`] if
    /// the cell holds anything but `old`.
    pub fn freeze(cell: &'a A, old: u64) -> Result<Self, SpteError> {
        if is_frozen_spte(old) {
            return Err(SpteError::FrozenValue);
        }
        match cell.cmpxchg(old, FROZEN_SPTE) {
            Ok(_) => Ok(Self { cell, old }),
            Err(seen) => Err(SpteError::Contended { seen }),
        }
    }

    /// The value the SPTE held before it was frozen.
    pub fn old(&self) -> u64 {
        self.old
    }

    /// Unfreezes the SPTE to `new`.
    ///
    /// `new` must not be [`FROZEN_SPTE`]; if it is, the old value is restored
    /// and [`SpteError::FrozenValue`] returned.
    pub fn commit(self, new: u64) -> Result<(), SpteError> {
        if is_frozen_spte(new) {
            // Dropping `self` restores the old value.
            return Err(SpteError::FrozenValue);
        }
        self.cell.store_release(new);
        core::mem::forget(self);
        Ok(())
    }

    /// Unfreezes the SPTE to its old value.
    pub fn restore(self) {
        drop(self);
    }
}

impl<A: Atomic64> Drop for FrozenSpte<'_, A> {
    fn drop(&mut self) {
        self.cell.store_release(self.old);
    }
}
