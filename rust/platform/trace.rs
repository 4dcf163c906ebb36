// SPDX-License-Identifier: GPL-2.0

//! The module's trace events: `events/tdx_sept_guard/` in tracefs.
//!
//! The events are declared in C with the kernel's `TRACE_EVENT` machinery
//! (`events.h`), as binder declares its own. The kernel crate's
//! `declare_trace!` reaches a tracepoint through the kernel's bindings, which
//! an out-of-tree module cannot add to; `events.c` instead has one small
//! wrapper per event (declared in `helpers.h`), called here. A wrapper
//! records the event only when it is enabled, so a disabled event costs one
//! call and a test of the tracepoint's static key. The events come from the
//! slow paths only (a kick, a retry, a zero-step event, a VM stop), never
//! once per SEAMCALL.
//!
//! Both backends fire the same events through [`VmEvents`], which also
//! reports the policy executor's kicks and retries (it implements the policy
//! crate's [`Events`]) and keeps the VM's latency histograms
//! ([`Latencies`]). Each backend numbers its VMs (`vm=`).

use super::ffi::{
    tsg_trace_kick,
    tsg_trace_retry,
    tsg_trace_vm_stop,
    tsg_trace_zero_step, //
};
use super::latency::Latencies;
use crate::policy::{
    Events,
    Leaf,
    SeptOp,
    Status,
    VmBugReason, //
};
use kernel::{
    alloc::KVBox,
    prelude::*, //
};

/// `tsg_kick`: a kick of VM `vm` ended (see `events.h`); `injected`: it
/// answers a busy status fault injection made up.
#[inline]
pub(crate) fn kick(vm: u64, kicked: usize, wait_ns: u64, ok: bool, injected: bool) {
    let kicked = u32::try_from(kicked).unwrap_or(u32::MAX);
    // SAFETY: Always safe to call: the arguments are plain values.
    unsafe { tsg_trace_kick(vm, kicked, wait_ns, ok, injected) }
}

/// `tsg_retry`: `op` is issued again after `tries` tries, the last of
/// which returned the busy `status` (made up by fault injection if
/// `injected`).
#[inline]
pub(crate) fn retry(vm: u64, op: &SeptOp, status: Status, tries: u32, injected: bool) {
    let leaf = op.leaf.number() as u32;
    // SAFETY: Always safe to call: the arguments are plain values.
    unsafe { tsg_trace_retry(vm, leaf, op.gpa, op.level, status.raw(), tries, injected) }
}

/// `tsg_zero_step`: vCPU `vcpu`'s exits engaged the zero-step mitigation at
/// `gpa`.
#[inline]
pub(crate) fn zero_step(vm: u64, vcpu: usize, gpa: u64) {
    let vcpu = u32::try_from(vcpu).unwrap_or(u32::MAX);
    // SAFETY: Always safe to call: the arguments are plain values.
    unsafe { tsg_trace_zero_step(vm, vcpu, gpa) }
}

/// `tsg_vm_stop`: the VM is stopped after `leaf` ended with `status`
/// (made up by fault injection if `injected`); `reason` `None` is an error
/// status the path cannot go on after.
#[inline]
pub(crate) fn vm_stop(
    vm: u64,
    leaf: Leaf,
    status: Status,
    reason: Option<VmBugReason>,
    injected: bool,
) {
    let reason = match reason {
        None => c"error",
        Some(VmBugReason::BusyAfterKick) => c"busy_after_kick",
        Some(VmBugReason::RetriesExhausted) => c"retries_exhausted",
        Some(VmBugReason::KickTimeout) => c"kick_timeout",
    };
    // SAFETY: `reason` is a NUL-terminated static string; the rest are
    // plain values.
    unsafe {
        tsg_trace_vm_stop(
            vm,
            leaf.number() as u32,
            status.raw(),
            reason.as_char_ptr(),
            injected,
        )
    }
}

/// One VM's trace events, its number and the events that carry it, and its
/// latency histograms (none with `latency=0`).
pub(crate) struct VmEvents {
    vm: u64,
    latency: Option<KVBox<Latencies>>,
}

impl VmEvents {
    /// The events of the VM the backend numbers `vm`, and `latency`.
    pub(crate) fn new(vm: u64, latency: Option<KVBox<Latencies>>) -> Self {
        Self { vm, latency }
    }

    /// The VM's latency histograms, if it keeps them.
    pub(crate) fn latency(&self) -> Option<&Latencies> {
        self.latency.as_deref()
    }

    /// The VM's number, as the events show it (`vm=`).
    pub(crate) fn vm(&self) -> u64 {
        self.vm
    }

    /// [`zero_step`] for this VM.
    pub(crate) fn zero_step(&self, vcpu: usize, gpa: u64) {
        zero_step(self.vm, vcpu, gpa);
    }

    /// [`vm_stop`] for this VM.
    pub(crate) fn vm_stop(
        &self,
        leaf: Leaf,
        status: Status,
        reason: Option<VmBugReason>,
        injected: bool,
    ) {
        vm_stop(self.vm, leaf, status, reason, injected);
    }
}

/// The policy executor's kicks and retries, as this VM's events; its kicks'
/// round trips and gate holds, in its histograms.
impl Events for VmEvents {
    fn kick(&self, kicked: usize, wait_ns: u64, ok: bool, injected: bool) {
        kick(self.vm, kicked, wait_ns, ok, injected);
        if let Some(l) = self.latency() {
            l.kick(wait_ns);
        }
    }

    fn retry(&self, op: &SeptOp, status: Status, tries: u32, injected: bool) {
        retry(self.vm, op, status, tries, injected);
    }

    fn gate(&self, held_ns: u64) {
        if let Some(l) = self.latency() {
            l.gate(held_ns);
        }
    }
}

/// For the KUnit suites: the events as text, without tracefs.
#[cfg(tsg_tests)]
pub(crate) mod record {
    use crate::platform::ffi::{
        tsg_trace_record_start,
        tsg_trace_record_stop, //
    };
    use kernel::{
        ffi::c_char,
        prelude::*,
        sync::atomic::{
            Atomic,
            Full,
            Release, //
        },
    };

    /// A recording is running.
    static RECORDING: Atomic<bool> = Atomic::new(false);

    /// The events of one VM (or of every VM) as text lines, recorded by
    /// probes on the tracepoints (`events.c`). A line holds every field but
    /// `vm` and `wait_ns`, the leaf as its number; `injected=1` is a
    /// trailing ` injected`, `injected=0` nothing:
    ///
    /// ```text
    /// kick kicked=1 ok=1
    /// retry leaf=6 gpa=0x7000 level=1 status=0x8000020000000000 tries=1
    /// zero_step vcpu=0 gpa=0x7000
    /// vm_stop leaf=6 status=0x8000020000000000 reason=busy_after_kick
    /// kick kicked=1 ok=1 injected
    /// ```
    ///
    /// A failed KUnit assertion ends the test without running destructors:
    /// call [`Recording::stop`] before asserting.
    pub(crate) struct Recording(());

    impl Recording {
        /// Starts recording the events of VM `vm`, or of every VM. `EBUSY`
        /// while another recording runs.
        pub(crate) fn start(vm: Option<u64>) -> Result<Self> {
            if RECORDING.xchg(true, Full) {
                return Err(EBUSY);
            }
            // SAFETY: Only one recording runs (`RECORDING`); the probes stay
            // registered until `stop` or `drop`.
            let ret = unsafe { tsg_trace_record_start(vm.unwrap_or(0)) };
            if ret != 0 {
                RECORDING.store(false, Release);
                return Err(Error::from_errno(ret));
            }
            Ok(Self(()))
        }

        /// Stops recording; returns the lines (at most 1023 bytes).
        pub(crate) fn stop(self) -> Result<KVec<u8>> {
            let mut buf = KVec::from_elem(0u8, 1024, GFP_KERNEL)?;
            // SAFETY: `buf` has room for `buf.len()` bytes, and this
            // recording is the one running.
            unsafe { tsg_trace_record_stop(buf.as_mut_ptr().cast(), buf.len()) };
            core::mem::forget(self);
            RECORDING.store(false, Release);
            let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            buf.truncate(len);
            Ok(buf)
        }
    }

    impl Drop for Recording {
        fn drop(&mut self) {
            let mut byte: c_char = 0;
            // SAFETY: One byte of room; this recording is the one running.
            unsafe { tsg_trace_record_stop(&mut byte, 1) };
            RECORDING.store(false, Release);
        }
    }
}
