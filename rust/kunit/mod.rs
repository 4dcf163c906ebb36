// SPDX-License-Identifier: GPL-2.0

//! The module's KUnit suites. They run at `insmod` on a kernel with
//! `CONFIG_KUNIT=y`; `make check` runs them under lockdep in QEMU.

mod concurrency;
mod executor;
mod faults;
mod sim_rules;
mod spte;
mod status;
mod zero_step;

use crate::kshim::{msleep, Kthread};
use crate::policy::Policy;
use crate::sim::tdx_module::{Geometry, Latency};
use crate::sim::vm::{SimConfig, Vm};
use core::cell::UnsafeCell;
use core::ffi::{c_int, c_void};
use kernel::prelude::*;
use kernel::sync::atomic::{Acquire, Atomic, Release};
use kernel::sync::Arc;

/// A small simulated VM for a test: `nr_vcpus` vCPUs, no threads yet.
fn test_vm(nr_vcpus: u32, policy: Policy) -> Result<Arc<Vm>> {
    Vm::new(SimConfig {
        nr_vcpus,
        geometry: Geometry {
            pages: 256,
            pages_per_table: 16,
        },
        latency: Latency {
            seamcall_us: 1,
            accept_us: 1,
        },
        policy,
        kick_timeout_us: crate::params::kick_timeout_us()?,
        contention_pct: 0,
        hot_pages: 8,
    })
}

/// A closure run by a kthread, and what it returned. `f` and `result` are
/// the kthread's until it sets `done`, then the starter's.
struct Job<F, R> {
    f: UnsafeCell<Option<F>>,
    result: UnsafeCell<Option<R>>,
    done: Atomic<bool>,
}

// SAFETY: `f` and `result` are only touched by one thread at a time, handed
// over by the release/acquire pair on `done`.
unsafe impl<F: Send, R: Send> Sync for Job<F, R> {}

/// # Safety
///
/// `data` points to a `Job<F, R>` that outlives the thread.
unsafe extern "C" fn run_job<F: FnOnce() -> R, R>(data: *mut c_void) -> c_int {
    // SAFETY: `run_on_cpu` keeps the job alive until this thread is stopped.
    let job = unsafe { &*data.cast::<Job<F, R>>() };
    // SAFETY: Until `done` is set, `f` and `result` are this thread's.
    unsafe {
        if let Some(f) = (*job.f.get()).take() {
            *job.result.get() = Some(f());
        }
    }
    job.done.store(true, Release);
    0
}

/// Runs `f` in a kthread bound to `cpu` and returns its result.
///
/// A test that plays a vCPU or a kicker against simulated vCPUs must not
/// share a CPU with them: a simulated vCPU in its guest section keeps its
/// CPU with interrupts off, so a test thread there could neither observe
/// nor kick it. KUnit's own thread may run anywhere.
fn run_on_cpu<F: FnOnce() -> R + Send, R: Send>(cpu: u32, f: F) -> Result<R> {
    let job = Job {
        f: UnsafeCell::new(Some(f)),
        result: UnsafeCell::new(None),
        done: Atomic::new(false),
    };
    let data = core::ptr::from_ref(&job).cast_mut().cast();
    // SAFETY: `job` lives on this stack frame until the thread is stopped
    // below; `Job` is `Sync`.
    let thread = unsafe { Kthread::start(run_job::<F, R>, data, Some(cpu), c"tsg_test/%u", 0)? };
    while !job.done.load(Acquire) {
        msleep(1);
    }
    drop(thread);
    job.result.into_inner().ok_or(EINVAL)
}
