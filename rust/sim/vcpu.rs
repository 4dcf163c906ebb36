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
use super::tdp_mmu::{
    Fault,
    OpTally, //
};
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
    Clock,
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

/// One guest instruction: a TDG.MEM.PAGE.ACCEPT of the page at `gpa`, at
/// guest `rip`; or, for the tests, a plain access to it.
#[derive(Clone, Copy)]
struct Access {
    rip: u64,
    gpa: u64,
    touch: bool,
}

/// The simulated guest's program: page after page, each accepted by its
/// own instruction, or in runs of [`SimConfig::guest_run`] consecutive
/// pages accepted in a loop at one RIP (a large range accepted 4K at a
/// time). An access is made again until it succeeds.
///
/// [`SimConfig::guest_run`]: super::vm::SimConfig::guest_run
struct Guest {
    rng: Rng,
    /// RIPs are numbered per vCPU: a new one per instruction or run.
    next_rip: u64,
    current: Option<Access>,
    /// Pages of the current run after `current`.
    run_left: u32,
}

impl Guest {
    fn new(seed: u64) -> Self {
        Self {
            rng: Rng::new(seed),
            next_rip: 0,
            current: None,
            run_left: 0,
        }
    }

    /// The access the guest makes on its next entry.
    fn access(&mut self, vm: &Vm, idx: usize) -> Access {
        if let Some(access) = self.current {
            return access;
        }
        let touched = vm.inject.take_touch(idx);
        let len = match touched {
            Some(_) => 1,
            None => vm.cfg.guest_run.max(1),
        };
        let access = Access {
            rip: self.next_rip,
            gpa: touched.unwrap_or_else(|| vm.pick_run(&mut self.rng, len)),
            touch: touched.is_some(),
        };
        self.next_rip += 1;
        self.run_left = len - 1;
        self.current = Some(access);
        access
    }

    /// The current access succeeded; returns whether the guest moves on to
    /// a new RIP (an exit that shows progress to the TDX module).
    fn done(&mut self) -> bool {
        match self.current {
            Some(Access { rip, gpa, touch }) if self.run_left > 0 => {
                self.run_left -= 1;
                self.current = Some(Access {
                    rip,
                    gpa: gpa + 0x1000,
                    touch,
                });
                false
            }
            _ => {
                self.current = None;
                true
            }
        }
    }
}

/// One vCPU's thread state.
pub(super) struct Vcpu {
    pub(super) vm: Arc<Vm>,
    pub(super) idx: usize,
    /// Guest accesses (ACCEPTs that succeed, first or repeated) to make
    /// before idling.
    pub(super) budget: u64,
}

/// What one vCPU thread carries from exit to exit.
struct Exits {
    /// The TDX module's zero-step state of this vCPU.
    module_zs: ZeroStepState,
    /// The policy's zero-step detector for this vCPU.
    detector: ZeroStep,
    /// The map operation a re-run fault goes on with.
    tally: OpTally,
    /// When the current access first faulted, until the host maps it.
    fault_since: Option<u64>,
    /// When the gate first refused the vCPU, until it gets past it.
    gated_since: Option<u64>,
}

impl Exits {
    /// An EPT-violation exit at `rip` on `gpa`: the module counts it towards
    /// zero-step, the detector judges it, the host handles the fault. The
    /// guest makes the same access again on its next entry.
    ///
    /// The handling is KVM 7.2's `tdx_handle_ept_violation()`, whatever the
    /// policy: a private-GPA fault that ends in `RET_PF_RETRY` is run again
    /// at once, without re-entering the guest, until it is resolved, an
    /// event is pending (here: a kick sent to this vCPU), the task has a
    /// signal pending (here: the thread is asked to stop), the VM is dead,
    /// or the GPA has no memory slot; a pause (`ThreadCtx::pause`) between runs.
    fn fault(&mut self, vm: &Vm, idx: usize, ctx: &ThreadCtx, rip: u64, gpa: u64) {
        vm.module.ept_violation_exit(&mut self.module_zs, rip, gpa);
        let verdict = self.detector.on_ept_violation(gpa, &vm.counters);
        if self.detector.engaged_now() {
            vm.events.zero_step(idx, gpa);
        }
        let kick_first =
            verdict == ZeroStepVerdict::KickAndWait && vm.cfg.policy.kicks_on_zero_step();
        self.fault_since.get_or_insert_with(|| vm.clock.now_ns());
        loop {
            match vm.run_fault(gpa, kick_first, &mut self.tally) {
                Fault::Mapped => {
                    self.tally.close(vm);
                    if let Some(since) = self.fault_since.take() {
                        vm.fault_ns.record(vm.clock.now_ns().saturating_sub(since));
                    }
                    return;
                }
                Fault::Stopped => {
                    self.tally.close(vm);
                    return;
                }
                Fault::Retry => {}
            }
            if vm.kick_pending(idx)
                || ctx.should_stop()
                || vm.is_stopped()
                || vm.mirror_page(gpa).is_none()
            {
                return;
            }
            ctx.pause();
            vm.sim_counters.sim_local_retries.add(1);
        }
    }

    /// Ends a stretch of refused entries, if one is open.
    fn gate_passed(&mut self, vm: &Vm) {
        if let Some(since) = self.gated_since.take() {
            vm.sim_counters
                .sim_gated_ns
                .add(vm.clock.now_ns().saturating_sub(since));
        }
    }
}

impl ThreadBody for Vcpu {
    /// Enters the guest over and over until its budget is spent, the VM
    /// stops, or the thread is asked to stop.
    fn run(&self, ctx: &ThreadCtx) {
        let vm = &*self.vm;
        let mut exits = Exits {
            module_zs: ZeroStepState::new(),
            detector: ZeroStep::new(),
            tally: OpTally::default(),
            fault_since: None,
            gated_since: None,
        };
        let mut guest = Guest::new((vm.cfg.seed << 32) + self.idx as u64 + 1);
        let mut done = 0;
        while !ctx.should_stop() {
            if vm.is_stopped() || done >= self.budget {
                exits.gate_passed(vm);
                exits.tally.close(vm);
                // The thread ends here; `Thread`'s drop reaps it later.
                vm.vcpu_thread_finished();
                return;
            }
            ctx.pause();
            let access = guest.access(vm, self.idx);
            let exit = self.enter(vm, &exits.module_zs, access);
            if let Exit::GateClosed = exit {
                exits.gated_since.get_or_insert_with(|| vm.clock.now_ns());
                cpu_relax();
                continue;
            }
            exits.gate_passed(vm);
            match exit {
                Exit::GateClosed => {}
                Exit::EnterBusy(status) => {
                    let verdict = exits.detector.on_enter_status(status, &vm.counters);
                    if exits.detector.engaged_now() {
                        // The entry was for this access.
                        vm.events.zero_step(self.idx, access.gpa);
                    }
                    if verdict == ZeroStepVerdict::KickAndWait && vm.cfg.policy.kicks_on_zero_step()
                    {
                        // Make every vCPU leave, so that the next entry finds
                        // the module's locks free.
                        let _ = vm.executor().kick_and_wait();
                    }
                }
                Exit::Ran(accept @ (Accept::Accepted | Accept::AlreadyAccepted)) => {
                    if guest.done() {
                        vm.module.progress_exit(&mut exits.module_zs);
                    }
                    exits.detector.on_progress();
                    done += 1;
                    vm.sim_counters.sim_guest_ops.add(1);
                    // Half the pages it accepts, the guest converts back to
                    // shared (TDG.VP.VMCALL<MapGPA>): KVM zaps them.
                    if accept == Accept::Accepted && guest.rng.below(2) == 0 {
                        vm.release(access.gpa);
                    }
                }
                // The guest retries or resumes its ACCEPT on a later entry.
                Exit::Ran(Accept::Busy(_) | Accept::Interrupted) => {}
                Exit::Ran(Accept::EptViolation) => {
                    exits.fault(vm, self.idx, ctx, access.rip, access.gpa)
                }
                Exit::Synthetic(gpa) => exits.fault(vm, self.idx, ctx, access.rip, gpa),
            }
        }
    }
}

impl Vcpu {
    /// One entry: gate, TDH.VP.ENTER, the guest's ACCEPT, TD exit. Local
    /// interrupts come back on when it returns, and a pending kick is
    /// acknowledged then.
    fn enter(&self, vm: &Vm, zs: &ZeroStepState, access: Access) -> Exit {
        let me = &vm.vcpus[self.idx];
        let _irqs_off = IrqsOff::new();
        if vcpu_try_enter(&vm.gate, &me.mode).is_err() {
            vm.counters.entries_refused.add(1);
            return Exit::GateClosed;
        }
        me.enters.add(1);
        let exit = match vm.module.vp_enter(zs) {
            Enter::Busy(status) => Exit::EnterBusy(status),
            Enter::EptViolation(gpa) => Exit::Synthetic(gpa),
            Enter::Entered { epoch } => {
                vm.in_guest.fetch_add(1, Full);
                let accept = match vm.inject.hog(self.idx) {
                    Some(hogged) => vm
                        .module
                        .guest_long_accept(hogged, || !vm.kick_pending(self.idx)),
                    None if access.touch => vm.module.guest_touch(access.gpa),
                    None => vm.module.guest_accept(access.gpa),
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
