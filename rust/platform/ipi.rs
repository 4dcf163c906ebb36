// SPDX-License-Identifier: GPL-2.0

//! Asynchronous cross-CPU calls with acknowledgements, one slot per vCPU: the
//! kick that a kicker can wait for against its own deadline.

use super::ffi::{
    tsg_ipi_acked,
    tsg_ipi_send,
    tsg_ipi_set,
    tsg_ipi_set_alloc,
    tsg_ipi_set_free, //
};
use core::ptr::NonNull;
use kernel::{
    cpu::CpuId,
    error::to_result,
    prelude::*, //
};

/// `nr` slots, each an asynchronous cross-CPU call and its pending flag.
///
/// # Invariants
///
/// `raw` came from `tsg_ipi_set_alloc()` and is freed only in `drop`.
pub(crate) struct IpiSet {
    raw: NonNull<tsg_ipi_set>,
}

// SAFETY: The C side synchronises the slots with atomics; the set itself is
// only freed in `Drop`.
unsafe impl Send for IpiSet {}
// SAFETY: As above: every operation on a shared set is atomic on the C side.
unsafe impl Sync for IpiSet {}

impl IpiSet {
    /// Allocates `nr` slots. Process context: may sleep.
    pub(crate) fn new(nr: u32) -> Result<Self> {
        // SAFETY: No preconditions but process context; NULL means out of
        // memory.
        let raw = unsafe { tsg_ipi_set_alloc(nr) };
        // INVARIANT: `raw` is a fresh set.
        NonNull::new(raw).map(|raw| Self { raw }).ok_or(ENOMEM)
    }

    /// Sends slot `slot`'s call to `cpu`. `EBUSY` while its previous call is
    /// unacknowledged; `EINVAL` for a slot out of range.
    pub(crate) fn send(&self, slot: u32, cpu: CpuId) -> Result {
        // SAFETY: `raw` is live (type invariant); the C side checks `slot`,
        // and `CpuId` is a valid CPU number.
        to_result(unsafe { tsg_ipi_send(self.raw.as_ptr(), slot, cpu.as_u32()) })
    }

    /// Whether slot `slot`'s last call has run on its target CPU (false for
    /// a slot out of range).
    pub(crate) fn acked(&self, slot: u32) -> bool {
        // SAFETY: `raw` is live (type invariant); the C side checks `slot`.
        unsafe { tsg_ipi_acked(self.raw.as_ptr(), slot) }
    }
}

impl Drop for IpiSet {
    fn drop(&mut self) {
        // SAFETY: `raw` came from `tsg_ipi_set_alloc()` (type invariant) and
        // is freed once; the C side first waits for calls still in flight.
        unsafe { tsg_ipi_set_free(self.raw.as_ptr()) }
    }
}
