// SPDX-License-Identifier: GPL-2.0

//! The module's KUnit suites. They run at `insmod` on a kernel with
//! `CONFIG_KUNIT=y`; `make check` runs them under lockdep in QEMU. Their
//! sizes and deadlines are their own: no suite reads a module parameter.

mod concurrency;
mod executor;
mod faults;
mod sim_rules;
mod spte;
mod status;
mod zero_step;

use crate::platform::thread::{
    Thread,
    ThreadBody,
    ThreadCtx, //
};
use crate::policy::Policy;
use crate::sim::tdx_module::{
    Geometry,
    Latency, //
};
use crate::sim::vm::{
    SimConfig,
    Vm, //
};
use kernel::{
    new_mutex,
    prelude::*,
    sync::{
        Arc,
        Completion,
        Mutex, //
    },
    time::{
        delay::fsleep,
        Delta, //
    },
};

/// How long the suites' kicks wait for acknowledgements: the module's
/// default `kick_timeout_ms`.
const TEST_KICK_TIMEOUT_US: u32 = 100_000;

/// Sleeps for about `ms` milliseconds.
pub(crate) fn sleep_ms(ms: u32) {
    fsleep(Delta::from_millis(i64::from(ms)));
}

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
            round_trip_us: 0,
        },
        policy,
        kick_timeout_us: TEST_KICK_TIMEOUT_US,
        contention_pct: 0,
        hot_pages: 8,
        guest_run: 1,
        seed: 0,
    })
}

/// A closure run by a kthread, and what it returned.
#[pin_data]
struct Job<F, R> {
    #[pin]
    f: Mutex<Option<F>>,
    #[pin]
    result: Mutex<Option<R>>,
    #[pin]
    done: Completion,
}

impl<F, R> ThreadBody for Job<F, R>
where
    F: FnOnce() -> R + Send + Unpin + 'static,
    R: Send + Unpin + 'static,
{
    fn run(&self, _ctx: &ThreadCtx) {
        let f = self.f.lock().take();
        if let Some(f) = f {
            let r = f();
            *self.result.lock() = Some(r);
        }
        self.done.complete_all();
    }
}

/// Runs `f` in a kthread bound to `cpu` and returns its result.
///
/// A test that plays a vCPU or a kicker against simulated vCPUs must not
/// share a CPU with them: a simulated vCPU in its guest section keeps its
/// CPU with interrupts off, so a test thread there could neither observe
/// nor kick it. KUnit's own thread may run anywhere.
pub(crate) fn run_on_cpu<F, R>(cpu: u32, f: F) -> Result<R>
where
    F: FnOnce() -> R + Send + Unpin + 'static,
    R: Send + Unpin + 'static,
{
    let job = Arc::pin_init(
        pin_init!(Job {
            f <- new_mutex!(Some(f), "Job::f"),
            result <- new_mutex!(None, "Job::result"),
            done <- Completion::new(),
        }),
        GFP_KERNEL,
    )?;
    let cpu = crate::platform::online_cpu(cpu).ok_or(EINVAL)?;
    let thread = Thread::spawn(job.clone(), Some(cpu), c"tsg_test/%u", 0)?;
    job.done.wait_for_completion();
    drop(thread);
    let result = job.result.lock().take();
    result.ok_or(EINVAL)
}
