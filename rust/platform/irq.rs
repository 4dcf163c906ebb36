// SPDX-License-Identifier: GPL-2.0

//! Sections with local interrupts disabled.

use super::ffi::{
    tsg_local_irq_restore,
    tsg_local_irq_save, //
};
use core::marker::PhantomData;
use kernel::ffi::c_ulong;

/// Local interrupts disabled for the lifetime of the guard.
///
/// # Invariants
///
/// `flags` was returned by `local_irq_save()` on the CPU this guard lives on,
/// and interrupts have been off there since; the guard is neither `Send` nor
/// `Sync`, so it is dropped on that CPU (interrupts off means no migration).
pub(crate) struct IrqsOff {
    flags: c_ulong,
    _not_send: PhantomData<*mut ()>,
}

impl IrqsOff {
    /// Disables local interrupts, saving the previous state.
    pub(crate) fn new() -> Self {
        // SAFETY: Saving and disabling interrupts is always allowed.
        let flags = unsafe { tsg_local_irq_save() };
        // INVARIANT: `flags` was just saved on this CPU.
        Self {
            flags,
            _not_send: PhantomData,
        }
    }
}

impl Drop for IrqsOff {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `flags` came from `local_irq_save()`
        // on this CPU.
        unsafe { tsg_local_irq_restore(self.flags) }
    }
}
