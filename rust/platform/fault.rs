// SPDX-License-Identifier: GPL-2.0

//! Fault injection, the kernel's way: two fault attributes (`fault.c`),
//! asked with `should_fail()` where a backend issues a map SEAMCALL, and set
//! through the standard files `fault_create_debugfs_attr()` makes in the
//! module's debugfs directory (`probability`, `interval`, `times`,
//! `space`, `verbose`, ...):
//!
//! - `fail_map_busy` ([`Fault::MapBusy`]): a map's first try is answered
//!   busy ([`injected_busy`]) without a SEAMCALL, so the gate, the kick, the
//!   wait for the acknowledgements and the one real retry all run;
//! - `fail_retry_busy` ([`Fault::RetryBusy`]): the retry is answered busy
//!   too, which stops the VM. For deliberate tests only.
//!
//! The decision is the backend's, at its SEAMCALL boundary (the simulated
//! TDX module, the KVM backend's map call); the policy crate only learns
//! that a status was injected (`Seamcall::injected`) and counts and traces
//! it apart. Without `CONFIG_FAULT_INJECTION_DEBUG_FS` nothing is injected
//! and there are no files.
//!
//! The files are the kernel's own (`lib/fault-inject.c`, with the kernel's
//! `file_operations`): unlike the module's other files they do not pin the
//! module while open. [`Files`] removes them before the module is freed;
//! removal waits for their reads and writes in progress, and a read or
//! write on a file still open afterwards fails with `EIO` without touching
//! the attribute (`fault.c` has the argument).

use super::debugfs::Dir;
use super::ffi::{
    tsg_fail_map_busy,
    tsg_fail_retry_busy,
    tsg_fault_files_create,
    tsg_fault_files_remove, //
};
use crate::policy::{
    Operand,
    Status, //
};
use kernel::{
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Full,
            Release, //
        },
        Arc,
    },
};

/// A fault injection point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// `fail_map_busy`: a map's first try.
    MapBusy,
    /// `fail_retry_busy`: a map's retry (any try after the first).
    RetryBusy,
}

impl Fault {
    /// The point for try `tries` of a map (1: the first).
    pub(crate) fn for_try(tries: u32) -> Self {
        if tries <= 1 {
            Self::MapBusy
        } else {
            Self::RetryBusy
        }
    }

    /// Whether the point fails now, as its attribute's settings say
    /// (`should_fail()`; each failure counts against its `times`). Costs a
    /// call, a load and a compare while its `probability` is 0.
    #[inline]
    pub(crate) fn should_fail(self) -> bool {
        match self {
            // SAFETY: No preconditions: any context.
            Self::MapBusy => unsafe { tsg_fail_map_busy() },
            // SAFETY: As above.
            Self::RetryBusy => unsafe { tsg_fail_retry_busy() },
        }
    }
}

/// The status an injected busy map try gets: `TDX_OPERAND_BUSY` naming RCX,
/// the S-EPT entry, which TDH.MEM.PAGE.AUG, SEPT.ADD and PAGE.ADD return
/// when another host task or the guest holds the entry: the case the kick
/// resolves.
pub(crate) const fn injected_busy() -> Status {
    Status::operand_busy(Operand::Rcx)
}

/// For the KUnit suites: sets a point's attribute as writing its files
/// would (`fault.c`), and reads its `times` left.
#[cfg(tsg_tests)]
pub(crate) mod testing {
    use super::super::ffi::{
        tsg_fault_set,
        tsg_fault_times, //
    };
    use super::Fault;
    use kernel::{
        error::to_result,
        ffi::c_ulong,
        prelude::*, //
    };

    /// Makes `fault` fail `probability` percent of the calls, at most
    /// `times` times (-1: no limit), quietly; `ENODEV` without
    /// `CONFIG_FAULT_INJECTION_DEBUG_FS`.
    pub(crate) fn set(fault: Fault, probability: u32, times: i32) -> Result {
        // SAFETY: Plain values; the attribute is the module's own.
        to_result(unsafe {
            tsg_fault_set(fault == Fault::RetryBusy, probability as c_ulong, times)
        })
    }

    /// Turns both points off.
    pub(crate) fn clear() {
        let _ = set(Fault::MapBusy, 0, 1);
        let _ = set(Fault::RetryBusy, 0, 1);
    }

    /// `fault`'s `times` left.
    pub(crate) fn times(fault: Fault) -> i32 {
        // SAFETY: Reads an atomic of the module's own.
        unsafe { tsg_fault_times(fault == Fault::RetryBusy) }
    }
}

/// A `Files` exists.
static FILES: Atomic<bool> = Atomic::new(false);

/// The points' debugfs directories, `fail_map_busy/` and `fail_retry_busy/`,
/// in the module's directory; removed when dropped.
///
/// # Invariants
///
/// At most one `Files` exists at a time (`FILES`): the C side keeps the
/// directories in statics. Its directory outlives it (the `Arc`).
pub(crate) struct Files {
    _dir: Arc<Dir>,
}

impl Files {
    /// Makes the directories in `dir`. As everywhere in debugfs, a failure
    /// to make them is not an error: they are then absent (as without
    /// `CONFIG_FAULT_INJECTION_DEBUG_FS`). `EBUSY` if they exist already.
    pub(crate) fn new(dir: &Arc<Dir>) -> Result<Self> {
        if FILES.xchg(true, Full) {
            return Err(EBUSY);
        }
        // SAFETY: `dir` is a live debugfs directory (or an error pointer,
        // which the C side accepts), kept by the returned `Files`; no other
        // `Files` exists (just checked).
        unsafe { tsg_fault_files_create(dir.dentry()) };
        // INVARIANT: The only `Files`; it holds `dir`.
        Ok(Self { _dir: dir.clone() })
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        // SAFETY: Removes what `new` made (the only `Files`, type
        // invariant), in process context, as every drop of the module's
        // debugfs files runs.
        unsafe { tsg_fault_files_remove() };
        FILES.store(false, Release);
    }
}
