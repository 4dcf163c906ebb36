// SPDX-License-Identifier: GPL-2.0

//! A workqueue owned by the module. The kernel crate offers the system
//! queues, but work on those may still run after the module is gone; work on
//! an owned queue has all run when the queue is dropped.

use super::ffi::{
    tsg_workqueue_alloc,
    tsg_workqueue_destroy,
    tsg_workqueue_flush, //
};
use core::ptr::NonNull;
use kernel::{
    bindings,
    prelude::*,
    workqueue::Queue, //
};

/// An unbound workqueue; dropping it runs what is queued and frees it.
///
/// # Invariants
///
/// `raw` came from `alloc_workqueue()` and is destroyed only in `drop`.
pub(crate) struct OwnedQueue {
    raw: NonNull<bindings::workqueue_struct>,
}

// SAFETY: A workqueue may be used and destroyed from any task.
unsafe impl Send for OwnedQueue {}
// SAFETY: Queueing work is thread-safe.
unsafe impl Sync for OwnedQueue {}

impl OwnedQueue {
    /// Allocates a queue called `name`.
    pub(crate) fn new(name: &'static CStr) -> Result<Self> {
        // SAFETY: `name` is a static NUL-terminated string.
        let raw = unsafe { tsg_workqueue_alloc(name.as_char_ptr()) };
        // INVARIANT: `raw` is a fresh queue, if not NULL.
        NonNull::new(raw).map(|raw| Self { raw }).ok_or(ENOMEM)
    }

    /// The queue, to enqueue work on.
    pub(crate) fn queue(&self) -> &Queue {
        // SAFETY: `raw` is a live queue until `self` drops (type invariant).
        unsafe { Queue::from_raw(self.raw.as_ptr()) }
    }
}

impl OwnedQueue {
    /// Waits until the work queued before the call has run.
    pub(crate) fn flush(&self) {
        // SAFETY: `raw` is a live queue (type invariant); process context.
        unsafe { tsg_workqueue_flush(self.raw.as_ptr()) }
    }
}

impl Drop for OwnedQueue {
    fn drop(&mut self) {
        // SAFETY: `raw` came from `alloc_workqueue()` (type invariant) and is
        // destroyed once; `destroy_workqueue()` drains it first.
        unsafe { tsg_workqueue_destroy(self.raw.as_ptr()) }
    }
}
