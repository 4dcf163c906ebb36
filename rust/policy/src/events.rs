// SPDX-License-Identifier: GPL-2.0

//! What the executor reports as it goes, beside its counters.
//!
//! The counters say how often; an [`Events`] observer learns each kick, each
//! retry and each gate hold as it happens, with its arguments and durations. The kernel module turns
//! them into trace events (`events/tdx_sept_guard/`); the crate itself
//! knows nothing of tracing and, by default ([`NoEvents`]), reports nothing.

use super::op::SeptOp;
use super::status::Status;

/// An observer of the executor. Every method defaults to doing nothing, and
/// each is called on the executor's own path (under the caller's locks,
/// with the gate up for a kick): an implementation must be quick and must
/// not sleep.
pub trait Events {
    /// A kick ended: `kicked` vCPUs were found in guest mode and sent an
    /// IPI, the kick took `wait_ns` from sending to the last
    /// acknowledgement, and `ok` is false if some vCPU did not acknowledge
    /// before the deadline (the VM is then stopped). `injected`: the kick
    /// answers a busy status the platform's fault injection made up (see
    /// [`Seamcall::injected`]); the kick itself is real.
    ///
    /// [`Seamcall::injected`]: super::op::Seamcall::injected
    fn kick(&self, kicked: usize, wait_ns: u64, ok: bool, injected: bool) {
        let _ = (kicked, wait_ns, ok, injected);
    }

    /// `op` is about to be issued again: its last SEAMCALL returned the
    /// busy `status`, and `tries` SEAMCALLs were issued for it so far (the
    /// retry is try `tries + 1`). For [`Policy::KickAndRetry`] the vCPUs
    /// were kicked first. `injected`: `status` was made up by the
    /// platform's fault injection (see [`Seamcall::injected`]); the retry
    /// itself is real (unless injected in turn).
    ///
    /// [`Policy::KickAndRetry`]: super::retry::Policy::KickAndRetry
    /// [`Seamcall::injected`]: super::op::Seamcall::injected
    fn retry(&self, op: &SeptOp, status: Status, tries: u32, injected: bool) {
        let _ = (op, status, tries, injected);
    }

    /// The gate an operation raised for its kick came down after
    /// `held_ns`: from raising it, through the kick and the retry, to
    /// lowering it once the operation ended. Every vCPU of the VM was kept
    /// out of guest mode for that long (a vCPU outside guest mode when the
    /// gate came up waited at most that long to enter). Reported once per
    /// operation that raised the gate, after the kick and the retry.
    fn gate(&self, held_ns: u64) {
        let _ = held_ns;
    }
}

/// Reports nothing: the executor's default.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoEvents;

impl Events for NoEvents {}
