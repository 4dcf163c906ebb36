// SPDX-License-Identifier: GPL-2.0

//! A simulated vCPU: a kthread bound to its CPU that enters the guest over
//! and over, the way KVM's vCPU run loop does.
//!
//! The guest section runs with local interrupts off, as a real CPU in guest
//! mode takes a host interrupt only by exiting: the kick's IPI is handled
//! (and so acknowledged) only once the vCPU is back outside guest mode.
//! The section is bounded and never sleeps.

use super::host::Fault;
use super::spin::spin_us;
use super::tdx_module::{Accept, Enter, ZeroStepState};
use super::vm::Vm;
use crate::kshim::{cond_resched, kthread_should_stop, msleep, IrqsOff};
use crate::policy::{vcpu_exit, vcpu_try_enter, CounterCell, Status, ZeroStep, ZeroStepVerdict};
use kernel::processor::cpu_relax;
use kernel::sync::atomic::{Full, Relaxed};
use kernel::sync::Arc;

/// Why the vCPU came back out.
enum Exit {
    /// The entry gate was up: the vCPU did not enter.
    GateClosed,
    /// TDH.VP.ENTER was busy.
    EnterBusy(Status),
    /// TDH.VP.ENTER returned a synthetic EPT violation (zero-step).
    Synthetic(u64),
    /// The guest ran its TDG.MEM.PAGE.ACCEPT.
    Ran(Accept),
}

/// A small per-thread pseudo-random generator (xorshift64).
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// One vCPU's thread state.
pub(crate) struct Vcpu {
    pub(crate) vm: Arc<Vm>,
    pub(crate) idx: usize,
    /// Guest operations (accepted pages) to complete before idling.
    pub(crate) budget: u64,
}

impl Vcpu {
    /// The thread body: runs until asked to stop.
    pub(crate) fn run(&self) {
        let vm = &*self.vm;
        let mut zs = ZeroStepState::new();
        let mut detector = ZeroStep::new();
        let mut rng = Rng::new(self.idx as u64 + 1);
        let mut faulting: Option<u64> = None;
        let mut done = 0;
        let mut finished = false;
        while !kthread_should_stop() {
            if vm.is_stopped() || done >= self.budget {
                if !finished {
                    finished = true;
                    vm.work.vcpus_finished.add(1, Relaxed);
                }
                msleep(1);
                continue;
            }
            cond_resched();
            let gpa = faulting.unwrap_or_else(|| vm.pick_gpa(&mut rng));
            match self.enter(vm, &zs, gpa) {
                Exit::GateClosed => cpu_relax(),
                Exit::EnterBusy(status) => {
                    if detector.on_enter_status(status, &vm.counters)
                        == ZeroStepVerdict::KickAndWait
                    {
                        // Make every vCPU leave, so that the next entry finds
                        // the module's locks free.
                        let _ = vm.executor().kick_and_wait();
                    }
                }
                Exit::Ran(accept @ (Accept::Accepted | Accept::AlreadyAccepted)) => {
                    vm.module.progress_exit(&mut zs);
                    detector.on_progress();
                    faulting = None;
                    done += 1;
                    vm.work.guest_ops.add(1, Relaxed);
                    // Half the pages it accepts, the guest converts back to
                    // shared (TDG.VP.VMCALL<MapGPA>): KVM zaps them.
                    if accept == Accept::Accepted && rng.below(2) == 0 {
                        vm.release(gpa);
                    }
                }
                // The guest retries or resumes its ACCEPT on a later entry.
                Exit::Ran(Accept::Busy(_) | Accept::Interrupted) => {}
                Exit::Ran(Accept::EptViolation) => {
                    self.fault(vm, &mut zs, &mut detector, gpa, &mut faulting)
                }
                Exit::Synthetic(gpa) => self.fault(vm, &mut zs, &mut detector, gpa, &mut faulting),
            }
        }
    }

    fn fault(
        &self,
        vm: &Vm,
        zs: &mut ZeroStepState,
        detector: &mut ZeroStep,
        gpa: u64,
        faulting: &mut Option<u64>,
    ) {
        vm.module.ept_violation_exit(zs, gpa);
        let kick = detector.on_ept_violation(gpa, &vm.counters) == ZeroStepVerdict::KickAndWait;
        match vm.handle_fault(gpa, kick) {
            Fault::Mapped | Fault::Retry => *faulting = Some(gpa),
            Fault::Stopped => {}
        }
    }

    /// One entry: gate, TDH.VP.ENTER, the guest's ACCEPT, TD exit. Local
    /// interrupts come back on when it returns, and a pending kick is
    /// acknowledged then.
    fn enter(&self, vm: &Vm, zs: &ZeroStepState, gpa: u64) -> Exit {
        let me = &vm.vcpus[self.idx];
        let _irqs_off = IrqsOff::new();
        if vcpu_try_enter(&vm.gate, &me.mode).is_err() {
            vm.counters.entries_refused.add(1);
            return Exit::GateClosed;
        }
        let exit = match vm.module.vp_enter(zs) {
            Enter::Busy(status) => Exit::EnterBusy(status),
            Enter::EptViolation(gpa) => Exit::Synthetic(gpa),
            Enter::Entered { epoch } => {
                vm.checks.in_guest.fetch_add(1, Full);
                let accept = match vm.inject.hog(self.idx) {
                    Some(hogged) => vm
                        .module
                        .guest_long_accept(hogged, || !vm.kick_pending(self.idx)),
                    None => vm.module.guest_accept(gpa),
                };
                if vm.inject.take_stuck(self.idx) {
                    // Fault injection: this vCPU ignores interrupts for a while.
                    spin_us(vm.inject.stuck_ms().saturating_mul(1000));
                }
                vm.checks.in_guest.fetch_sub(1, Full);
                vm.module.td_exit(epoch);
                Exit::Ran(accept)
            }
        };
        vcpu_exit(&me.mode);
        exit
    }
}

/// The kthread entry point.
///
/// # Safety
///
/// `data` points to a [`Vcpu`] that outlives the thread (see
/// `Workload`, which stops the threads before freeing their state).
pub(crate) unsafe extern "C" fn vcpu_thread(data: *mut core::ffi::c_void) -> core::ffi::c_int {
    // SAFETY: The caller guarantees `data` is a live `Vcpu` for as long as
    // this thread runs; it is only read.
    let vcpu = unsafe { &*data.cast::<Vcpu>() };
    vcpu.run();
    0
}
