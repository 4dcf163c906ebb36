// SPDX-License-Identifier: GPL-2.0

//! Kernel threads running a [`ThreadBody`] held in an [`Arc`]; and, for the
//! KUnit suites, a closure run on a given CPU ([`run_on_cpu`]) and a sleep
//! ([`sleep_ms`]).

use super::ffi::{
    tsg_cond_resched,
    tsg_kthread_should_stop,
    tsg_kthread_start,
    tsg_kthread_stop, //
};
use core::cell::Cell;
use core::ffi::CStr;
use core::marker::PhantomData;
use core::ptr::NonNull;
use kernel::{
    bindings,
    cpu::CpuId,
    ffi::{
        c_int,
        c_void, //
    },
    prelude::*,
    sync::Arc,
    time::{
        delay::fsleep,
        Delta, //
    },
};
#[cfg(tsg_tests)]
use kernel::{
    new_mutex,
    sync::{
        Completion,
        Mutex, //
    },
};

/// What a [`Thread`] runs.
pub(crate) trait ThreadBody: Send + Sync + 'static {
    /// The thread's body. It should return once `ctx.should_stop()` is true;
    /// it may return earlier (the thread then waits to be stopped).
    fn run(&self, ctx: &ThreadCtx);
}

/// Handed to [`ThreadBody::run`]; only a thread started by [`Thread::spawn`]
/// has one.
///
/// # Invariants
///
/// Exists only on the stack of a kthread started by [`Thread::spawn`], and
/// is neither `Send` nor `Sync`: it is only ever used on that kthread.
pub(crate) struct ThreadCtx {
    /// Calls to [`Self::pause`] since the last sleep.
    pauses: Cell<u32>,
    _not_send: PhantomData<*mut ()>,
}

/// How many [`ThreadCtx::pause`] calls may pass without a sleep.
const PAUSES_PER_SLEEP: u32 = 128;

impl ThreadCtx {
    /// Whether [`Thread`]'s drop has asked this thread to stop.
    pub(crate) fn should_stop(&self) -> bool {
        // SAFETY: By the type invariant this runs on a kthread, where
        // `kthread_should_stop()` is defined.
        unsafe { tsg_kthread_should_stop() }
    }

    /// The pause a busy loop takes between rounds: `cond_resched()`, and
    /// every 128th call a 10 µs sleep. Without real sleeps a thread that
    /// spins until it is stopped would hold up every RCU-tasks grace period
    /// (ftrace and BPF unregistration wait for those: a voluntary context
    /// switch is what RCU-tasks waits for, and under full preemption
    /// `cond_resched()` does not switch). Not to be called in atomic
    /// context (`might_sleep` reports it).
    pub(crate) fn pause(&self) {
        let n = self.pauses.get() + 1;
        if n >= PAUSES_PER_SLEEP {
            self.pauses.set(0);
            fsleep(Delta::from_micros(10));
        } else {
            self.pauses.set(n);
            // SAFETY: `cond_resched()` has no memory-safety preconditions.
            unsafe { tsg_cond_resched() }
        }
    }
}

/// A running kthread; dropping it stops the thread and waits for it to exit.
///
/// # Invariants
///
/// `task` is a kthread created by `tsg_kthread_start()` with a reference
/// held on it, running `trampoline::<T>` on a pointer to `*body`. `body`
/// keeps that `T` alive until the thread has been stopped in `drop`.
pub(crate) struct Thread<T: ThreadBody> {
    task: NonNull<bindings::task_struct>,
    _body: Arc<T>,
}

// SAFETY: The task pointer is only passed to `kthread_stop_put()`, which may
// be called from any task; `T` is `Send + Sync`.
unsafe impl<T: ThreadBody> Send for Thread<T> {}
// SAFETY: `&Thread` only gives access to `&T`, and `T` is `Sync`.
unsafe impl<T: ThreadBody> Sync for Thread<T> {}

/// The kthread's entry point: `fn` of `tsg_kthread_start()`.
///
/// # Safety
///
/// `data` points to a `T` that stays alive until the thread is stopped.
unsafe extern "C" fn trampoline<T: ThreadBody>(data: *mut c_void) -> c_int {
    // SAFETY: The caller (`Thread::spawn`) keeps the `T` alive in its `Arc`
    // until after `kthread_stop_put()` returned.
    let body = unsafe { &*data.cast::<T>() };
    // INVARIANT: This is the kthread started by `Thread::spawn`.
    let ctx = ThreadCtx {
        pauses: Cell::new(0),
        _not_send: PhantomData,
    };
    body.run(&ctx);
    0
}

impl<T: ThreadBody> Thread<T> {
    /// Starts a kthread running `body.run()`, named by the printf format
    /// `name` with one `%u`: the CPU when `cpu` is given (which also binds
    /// the thread there), else `idx`.
    pub(crate) fn spawn(
        body: Arc<T>,
        cpu: Option<CpuId>,
        name: &'static CStr,
        idx: u32,
    ) -> Result<Self> {
        let cpu = cpu.map_or(-1, |c| c.as_u32() as c_int);
        let data = core::ptr::from_ref::<T>(&*body).cast_mut().cast();
        // SAFETY: `trampoline::<T>` gets a pointer to the `T` in `body`, which
        // the returned `Thread` keeps alive until the thread has stopped;
        // `name` is a static format taking one unsigned int.
        let task =
            unsafe { tsg_kthread_start(Some(trampoline::<T>), data, cpu, name.as_char_ptr(), idx) };
        // INVARIANT: `task` runs `trampoline::<T>` on `body`, with a reference.
        NonNull::new(task)
            .map(|task| Self { task, _body: body })
            .ok_or(ENOMEM)
    }
}

impl<T: ThreadBody> Drop for Thread<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `task` holds the reference taken at
        // start; it is stopped and released exactly once, here. `body` is
        // dropped only after this returns, when the thread no longer runs.
        unsafe { tsg_kthread_stop(self.task.as_ptr()) }
    }
}

/// Sleeps for about `ms` milliseconds.
#[cfg(tsg_tests)]
pub(crate) fn sleep_ms(ms: u32) {
    fsleep(Delta::from_millis(i64::from(ms)));
}

/// A closure run by a kthread, and what it returned.
#[cfg(tsg_tests)]
#[pin_data]
struct Job<F, R> {
    #[pin]
    f: Mutex<Option<F>>,
    #[pin]
    result: Mutex<Option<R>>,
    #[pin]
    done: Completion,
}

#[cfg(tsg_tests)]
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
#[cfg(tsg_tests)]
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
