// SPDX-License-Identifier: GPL-2.0

//! A simulated vCPU: a kthread bound to its CPU that enters the guest over
//! and over, the way KVM's vCPU run loop does.
//!
//! The guest section runs with local interrupts off, as a real CPU in guest
//! mode takes a host interrupt only by exiting: the kick's IPI is handled
//! (and so acknowledged) only once the vCPU is back outside guest mode.
//! The section is bounded and never sleeps.

use super::rng::Rng;
use super::spin::spin_us;
use super::tdp_mmu::Fault;
use super::tdx_module::{
    Accept,
    Enter,
    ZeroStepState, //
};
use super::vm::Vm;
use crate::platform::{
    irq::IrqsOff,
    thread::{
        ThreadBody,
        ThreadCtx, //
    },
};
use crate::policy::{
    vcpu_exit,
    vcpu_try_enter,
    CounterCell,
    Status,
    ZeroStep,
    ZeroStepVerdict, //
};
use kernel::{
    processor::cpu_relax,
    sync::{
        atomic::Full,
        Arc, //
    },
};

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

impl Exits {
    /// An EPT-violation exit on `gpa`: the module counts it towards
    /// zero-step, the detector judges it, the host handles the fault. The
    /// guest touches `gpa` again on its next entry.
    fn fault(&mut self, vm: &Vm, gpa: u64) {
        vm.module.ept_violation_exit(&mut self.module_zs, gpa);
        let verdict = self.detector.on_ept_violation(gpa, &vm.counters);
        if vm.handle_fault(gpa, verdict == ZeroStepVerdict::KickAndWait) != Fault::Stopped {
            self.faulting = Some(gpa);
        }
    }
}

/// One vCPU's thread state.
pub(crate) struct Vcpu {
    pub(crate) vm: Arc<Vm>,
    pub(crate) idx: usize,
    /// Guest accesses (ACCEPTs that succeed, first or repeated) to make
    /// before idling.
    pub(crate) budget: u64,
}

/// What one vCPU thread carries from exit to exit.
struct Exits {
    /// The TDX module's zero-step state of this vCPU.
    module_zs: ZeroStepState,
    /// The policy's zero-step detector for this vCPU.
    detector: ZeroStep,
    /// The GPA the guest faults on until the host maps it.
    faulting: Option<u64>,
}

impl ThreadBody for Vcpu {
    /// Enters the guest over and over until its budget is spent, the VM
    /// stops, or the thread is asked to stop.
    fn run(&self, ctx: &ThreadCtx) {
        let vm = &*self.vm;
        let mut exits = Exits {
            module_zs: ZeroStepState::new(),
            detector: ZeroStep::new(),
            faulting: None,
        };
        let mut rng = Rng::new(self.idx as u64 + 1);
        let mut done = 0;
        while !ctx.should_stop() {
            if vm.is_stopped() || done >= self.budget {
                // The thread ends here; `Thread`'s drop reaps it later.
                vm.vcpu_thread_finished();
                return;
            }
            ctx.pause();
            let gpa = exits.faulting.unwrap_or_else(|| vm.pick_gpa(&mut rng));
            match self.enter(vm, &exits.module_zs, gpa) {
                Exit::GateClosed => cpu_relax(),
                Exit::EnterBusy(status) => {
                    if exits.detector.on_enter_status(status, &vm.counters)
                        == ZeroStepVerdict::KickAndWait
                    {
                        // Make every vCPU leave, so that the next entry finds
                        // the module's locks free.
                        let _ = vm.executor().kick_and_wait();
                    }
                }
                Exit::Ran(accept @ (Accept::Accepted | Accept::AlreadyAccepted)) => {
                    vm.module.progress_exit(&mut exits.module_zs);
                    exits.detector.on_progress();
                    exits.faulting = None;
                    done += 1;
                    vm.sim_counters.sim_guest_ops.add(1);
                    // Half the pages it accepts, the guest converts back to
                    // shared (TDG.VP.VMCALL<MapGPA>): KVM zaps them.
                    if accept == Accept::Accepted && rng.below(2) == 0 {
                        vm.release(gpa);
                    }
                }
                // The guest retries or resumes its ACCEPT on a later entry.
                Exit::Ran(Accept::Busy(_) | Accept::Interrupted) => {}
                Exit::Ran(Accept::EptViolation) => exits.fault(vm, gpa),
                Exit::Synthetic(gpa) => exits.fault(vm, gpa),
            }
        }
    }
}

impl Vcpu {
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
                vm.in_guest.fetch_add(1, Full);
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
                vm.in_guest.fetch_sub(1, Full);
                vm.module.td_exit(epoch);
                Exit::Ran(accept)
            }
        };
        vcpu_exit(&me.mode);
        exit
    }
}
