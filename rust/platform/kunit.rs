// SPDX-License-Identifier: GPL-2.0

//! The platform wrappers where only real CPUs can show a bug: a cross-CPU
//! call acknowledged while its set is being freed.

use kernel::macros::kunit_tests;

#[kunit_tests(tdx_sept_guard_platform)]
mod tests {
    use crate::platform::{
        ffi::tsg_debug_locks,
        ipi::IpiSet,
        irq::IrqsOff,
        num_online_cpus, online_cpu,
        thread::{
            run_on_cpu,
            sleep_ms,
            Thread,
            ThreadBody,
            ThreadCtx, //
        },
    };
    use kernel::{
        prelude::*,
        sync::{
            atomic::{
                Acquire,
                Atomic,
                Full,
                Release, //
            },
            Arc,
        },
        time::{
            Delta,
            Instant,
            Monotonic, //
        },
    };

    /// Whether lockdep is still checking: it turns itself off at its first
    /// report, so a test that starts with it on and ends with it off caused
    /// (or raced with) a report.
    fn lockdep_checking() -> bool {
        // SAFETY: Reads a global flag; no preconditions.
        unsafe { tsg_debug_locks() }
    }

    /// How long the spinner keeps interrupts off after the call was sent:
    /// long enough for the test to be asleep in the free when the
    /// acknowledgement runs, on the monotonic clock (TCG's `udelay()` runs
    /// fast).
    const HOLD_AFTER_SEND_MS: i64 = 50;
    /// The spinner's bound on its interrupts-off section, whatever the test
    /// does.
    const HOLD_MAX_MS: i64 = 1000;

    const SPINNING: u32 = 1;
    const SENT: u32 = 2;
    const DONE: u32 = 3;

    /// Holds interrupts off on its CPU until `HOLD_AFTER_SEND_MS` after the
    /// test sent its call, like a simulated vCPU in its guest section.
    struct Spinner {
        state: Atomic<u32>,
    }

    impl ThreadBody for Spinner {
        fn run(&self, _ctx: &ThreadCtx) {
            let irqs = IrqsOff::new();
            let start = Instant::<Monotonic>::now();
            self.state.store(SPINNING, Release);
            let mut sent_at = None;
            while start.elapsed() < Delta::from_millis(HOLD_MAX_MS) {
                if sent_at.is_none() && self.state.load(Acquire) == SENT {
                    sent_at = Some(Instant::<Monotonic>::now());
                }
                if sent_at.is_some_and(|t| t.elapsed() >= Delta::from_millis(HOLD_AFTER_SEND_MS)) {
                    break;
                }
                core::hint::spin_loop();
            }
            drop(irqs);
            self.state.store(DONE, Release);
        }
    }

    /// Frees an [`IpiSet`] whose call is still pending, so the freeing task
    /// sleeps and the acknowledgement, in hard interrupt context, has to
    /// wake it. That wake-up may take only raw spinlocks (a wait queue's
    /// lock is a sleeping lock on PREEMPT_RT), which lockdep checks here.
    #[test]
    fn ipi_ack_wakes_the_freeing_task_from_hard_irq() -> Result {
        assert!(num_online_cpus() >= 2);
        let target = online_cpu(1).ok_or(EINVAL)?;
        let checking = lockdep_checking();
        let mut rounds = 0;
        let mut freed_while_pending = false;
        // Usually the first round does it; a round where the test thread was
        // descheduled past the spinner's hold proves nothing and is retried.
        while rounds < 5 && !freed_while_pending {
            rounds += 1;
            let spinner = Arc::new(
                Spinner {
                    state: Atomic::new(0),
                },
                GFP_KERNEL,
            )?;
            let thread = Thread::spawn(spinner.clone(), Some(target), c"tsg_test/%u", 1)?;
            // The freeing side on CPU 0, never queued behind the spinner.
            let s = spinner.clone();
            let round = run_on_cpu(0, move || -> Result<bool> {
                while s.state.load(Acquire) == 0 {
                    sleep_ms(1);
                }
                let set = IpiSet::new(1)?;
                set.send(0, target)?;
                // Succeeds only while the target still has interrupts off,
                // so the call cannot have run yet.
                let sent = s.state.cmpxchg(SPINNING, SENT, Full).is_ok();
                let pending = sent && !set.acked(0);
                drop(set);
                Ok(pending)
            });
            drop(thread);
            freed_while_pending = round??;
        }
        assert!(freed_while_pending);
        assert!(!checking || lockdep_checking());
        Ok(())
    }
}
