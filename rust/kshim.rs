// SPDX-License-Identifier: GPL-2.0

//! Safe wrappers over `rust/kshim.c`: kthreads, asynchronous cross-CPU calls,
//! local interrupt control and the `mode` string parameter, which the kernel
//! crate does not wrap yet.

use core::ffi::{c_int, c_uint, c_ulong, c_void, CStr};
use core::marker::PhantomData;
use core::ptr::NonNull;
use kernel::error::to_result;
use kernel::ffi::c_char;
use kernel::prelude::*;

#[repr(C)]
struct TaskStruct {
    _opaque: [u8; 0],
}

#[repr(C)]
struct RwLockRaw {
    _opaque: [u8; 0],
}

#[repr(C)]
struct IpiSetRaw {
    _opaque: [u8; 0],
}

extern "C" {
    fn tsg_mode_param() -> *const c_char;
    fn tsg_policy_param() -> *const c_char;
    fn tsg_kthread_start(
        f: unsafe extern "C" fn(*mut c_void) -> c_int,
        data: *mut c_void,
        cpu: c_int,
        name: *const c_char,
        idx: c_uint,
    ) -> *mut TaskStruct;
    fn tsg_kthread_stop(task: *mut TaskStruct);
    fn tsg_kthread_should_stop() -> bool;
    fn tsg_cond_resched();
    fn tsg_local_irq_save() -> c_ulong;
    fn tsg_local_irq_restore(flags: c_ulong);
    fn tsg_msleep(msecs: c_uint);
    fn tsg_num_online_cpus() -> c_uint;
    fn tsg_cpu_online(cpu: c_uint) -> bool;
    fn tsg_rwlock_alloc() -> *mut RwLockRaw;
    fn tsg_rwlock_free(lock: *mut RwLockRaw);
    fn tsg_read_lock(lock: *mut RwLockRaw);
    fn tsg_read_unlock(lock: *mut RwLockRaw);
    fn tsg_write_lock(lock: *mut RwLockRaw);
    fn tsg_write_unlock(lock: *mut RwLockRaw);
    fn tsg_ipi_set_alloc(nr: c_uint) -> *mut IpiSetRaw;
    fn tsg_ipi_send(set: *mut IpiSetRaw, slot: c_uint, cpu: c_uint) -> c_int;
    fn tsg_ipi_acked(set: *mut IpiSetRaw, slot: c_uint) -> bool;
    fn tsg_ipi_set_free(set: *mut IpiSetRaw);
}

/// The `mode` module parameter, as given at `insmod`.
pub(crate) fn mode_param() -> &'static CStr {
    // SAFETY: `tsg_mode_param` returns the charp parameter, a NUL-terminated
    // string that module_param keeps alive (and read-only: mode 0444) for as
    // long as the module is loaded.
    unsafe { CStr::from_char_ptr(tsg_mode_param()) }
}

/// The `policy` module parameter, as given at `insmod`.
pub(crate) fn policy_param() -> &'static CStr {
    // SAFETY: As for `mode_param`.
    unsafe { CStr::from_char_ptr(tsg_policy_param()) }
}

/// Whether the current kthread has been asked to stop.
pub(crate) fn kthread_should_stop() -> bool {
    // SAFETY: Only called from kthreads started by `Kthread::start`.
    unsafe { tsg_kthread_should_stop() }
}

/// A voluntary preemption point.
pub(crate) fn cond_resched() {
    // SAFETY: Called from process context only; `cond_resched` may sleep.
    unsafe { tsg_cond_resched() }
}

/// Sleeps for at least `msecs` milliseconds.
pub(crate) fn msleep(msecs: u32) {
    // SAFETY: Called from process context only.
    unsafe { tsg_msleep(msecs) }
}

/// Number of online CPUs.
pub(crate) fn num_online_cpus() -> u32 {
    // SAFETY: No preconditions.
    unsafe { tsg_num_online_cpus() }
}

/// Whether `cpu` is a valid, online CPU.
pub(crate) fn cpu_online(cpu: u32) -> bool {
    // SAFETY: The C side checks `cpu` against nr_cpu_ids first.
    unsafe { tsg_cpu_online(cpu) }
}

/// Local interrupts disabled for the lifetime of the guard.
pub(crate) struct IrqsOff {
    flags: c_ulong,
    /// Restored on the CPU that saved it: neither `Send` nor `Sync`.
    _not_send: PhantomData<*mut ()>,
}

impl IrqsOff {
    /// Disables local interrupts (saving the previous state).
    pub(crate) fn new() -> Self {
        Self {
            // SAFETY: Saving and disabling is always allowed; `Drop` restores
            // it on the same CPU: the guard is neither `Send` nor `Sync`.
            flags: unsafe { tsg_local_irq_save() },
            _not_send: PhantomData,
        }
    }
}

impl Drop for IrqsOff {
    fn drop(&mut self) {
        // SAFETY: `flags` came from `tsg_local_irq_save` on this CPU.
        unsafe { tsg_local_irq_restore(self.flags) }
    }
}

/// A running kthread; dropping it stops it and waits for it to exit.
pub(crate) struct Kthread {
    task: NonNull<TaskStruct>,
}

// SAFETY: The task pointer is only passed back to `kthread_stop_put`, which
// may be called from any task.
unsafe impl Send for Kthread {}
// SAFETY: `&Kthread` gives no access to the task.
unsafe impl Sync for Kthread {}

impl Kthread {
    /// Starts `f(data)` in a kthread named `name` (a printf format with one
    /// `%u`: `cpu` when `cpu` is `Some`, which also binds the thread there,
    /// else `idx`).
    ///
    /// # Safety
    ///
    /// `data` must stay valid, and be safe for `f` to use from another
    /// thread, until the returned `Kthread` is dropped.
    pub(crate) unsafe fn start(
        f: unsafe extern "C" fn(*mut c_void) -> c_int,
        data: *mut c_void,
        cpu: Option<u32>,
        name: &'static CStr,
        idx: u32,
    ) -> Result<Self> {
        let cpu = cpu.map_or(-1, |c| c as c_int);
        // SAFETY: `f` and `data` satisfy the caller's contract; `name` is a
        // static NUL-terminated format taking one unsigned int.
        let task = unsafe { tsg_kthread_start(f, data, cpu, name.as_char_ptr(), idx) };
        NonNull::new(task).map(|task| Self { task }).ok_or(ENOMEM)
    }
}

impl Drop for Kthread {
    fn drop(&mut self) {
        // SAFETY: `task` holds the reference taken by `tsg_kthread_start`;
        // it is stopped and released exactly once, here.
        unsafe { tsg_kthread_stop(self.task.as_ptr()) }
    }
}

/// A reader-writer spinlock (`rwlock_t`), like KVM's x86 `mmu_lock`.
pub(crate) struct RwSpinLock {
    raw: NonNull<RwLockRaw>,
}

// SAFETY: `rwlock_t` may be used from any task.
unsafe impl Send for RwSpinLock {}
// SAFETY: As above; all access goes through the lock's own operations.
unsafe impl Sync for RwSpinLock {}

/// The read side, held until dropped.
pub(crate) struct ReadGuard<'a>(&'a RwSpinLock);
/// The write side, held until dropped.
pub(crate) struct WriteGuard<'a>(&'a RwSpinLock);

impl RwSpinLock {
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: No preconditions; NULL means out of memory.
        let raw = unsafe { tsg_rwlock_alloc() };
        NonNull::new(raw).map(|raw| Self { raw }).ok_or(ENOMEM)
    }

    pub(crate) fn read(&self) -> ReadGuard<'_> {
        // SAFETY: `raw` is a live, initialised lock; the guard unlocks it.
        unsafe { tsg_read_lock(self.raw.as_ptr()) };
        ReadGuard(self)
    }

    pub(crate) fn write(&self) -> WriteGuard<'_> {
        // SAFETY: `raw` is a live, initialised lock; the guard unlocks it.
        unsafe { tsg_write_lock(self.raw.as_ptr()) };
        WriteGuard(self)
    }
}

impl Drop for ReadGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: This guard holds the read side.
        unsafe { tsg_read_unlock(self.0.raw.as_ptr()) }
    }
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: This guard holds the write side.
        unsafe { tsg_write_unlock(self.0.raw.as_ptr()) }
    }
}

impl Drop for RwSpinLock {
    fn drop(&mut self) {
        // SAFETY: No guard outlives `&self`, so the lock is free; it came
        // from `tsg_rwlock_alloc`.
        unsafe { tsg_rwlock_free(self.raw.as_ptr()) }
    }
}

/// One asynchronous cross-CPU call slot per vCPU, with acknowledgements.
pub(crate) struct IpiSet {
    raw: NonNull<IpiSetRaw>,
}

// SAFETY: The C side synchronises the slots with atomics; the set itself is
// only freed in `Drop`.
unsafe impl Send for IpiSet {}
// SAFETY: As above: every operation on a shared set is atomic on the C side.
unsafe impl Sync for IpiSet {}

impl IpiSet {
    /// Allocates `nr` slots.
    pub(crate) fn new(nr: u32) -> Result<Self> {
        // SAFETY: No preconditions; NULL means out of memory.
        let raw = unsafe { tsg_ipi_set_alloc(nr) };
        NonNull::new(raw).map(|raw| Self { raw }).ok_or(ENOMEM)
    }

    /// Sends slot `slot`'s call to `cpu`; `EBUSY` while its previous call is
    /// still unacknowledged.
    pub(crate) fn send(&self, slot: u32, cpu: u32) -> Result {
        // SAFETY: `raw` is a live set; the C side checks `slot`.
        to_result(unsafe { tsg_ipi_send(self.raw.as_ptr(), slot, cpu) })
    }

    /// Whether slot `slot`'s last call has run on its target CPU.
    pub(crate) fn acked(&self, slot: u32) -> bool {
        // SAFETY: `raw` is a live set; the C side checks `slot`.
        unsafe { tsg_ipi_acked(self.raw.as_ptr(), slot) }
    }
}

impl Drop for IpiSet {
    fn drop(&mut self) {
        // SAFETY: `raw` came from `tsg_ipi_set_alloc`; the C side waits for
        // calls still in flight before freeing it.
        unsafe { tsg_ipi_set_free(self.raw.as_ptr()) }
    }
}
