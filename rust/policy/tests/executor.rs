// SPDX-License-Identifier: GPL-2.0

//! Executor rules for the three policies.

mod common;

use std::cell::RefCell;

use common::{host_gate, FakeVcpus, FnSeamcall, HostAtomic, HostCounters, Script, StepClock};
use tdx_sept_guard_policy::gate::{IN_GUEST_MODE, OUTSIDE_GUEST_MODE};
use tdx_sept_guard_policy::status::{
    TDX_OPERAND_BUSY, TDX_PREVIOUS_TLB_EPOCH_BUSY, TDX_TLB_TRACKING_NOT_DONE,
};
use tdx_sept_guard_policy::{
    Atomic32, Atomic64, CounterCell, CounterTable, EntryGate, Events, Executor, Leaf, MaxTries,
    Outcome, Policy, SeptOp, SpteError, Status, VmBugReason, FROZEN_SPTE,
};

const BUSY_SEPT: u64 = TDX_OPERAND_BUSY | 0x92;
const BUSY_RCX: u64 = TDX_OPERAND_BUSY | 0x01;
const AUG: SeptOp = SeptOp::new_4k(Leaf::MemPageAug, 0x1000);
const BLOCK: SeptOp = SeptOp::new_4k(Leaf::MemRangeBlock, 0x1000);
const TRACK: SeptOp = SeptOp::new_4k(Leaf::MemTrack, 0);

/// One VM's worth of host state.
struct Vm {
    gate: EntryGate<HostAtomic>,
    vcpus: FakeVcpus,
    counters: HostCounters,
    clock: StepClock,
}

impl Vm {
    fn new(modes: &[u32]) -> Self {
        Self {
            gate: host_gate(),
            vcpus: FakeVcpus::new(modes),
            counters: HostCounters::new(),
            clock: StepClock::new(100),
        }
    }
    fn exec(
        &self,
        policy: Policy,
    ) -> Executor<'_, HostAtomic, FakeVcpus, common::HostCounter, StepClock> {
        Executor::new(policy, &self.gate, &self.vcpus, &self.counters, &self.clock)
    }
    fn count(&self, name: &str) -> u64 {
        self.counters
            .counter(name)
            .map(CounterCell::get)
            .unwrap_or_else(|| panic!("no counter {name}"))
    }
}

fn kick_and_retry(n: u32) -> Policy {
    Policy::KickAndRetry {
        max_tries: MaxTries::new(n).unwrap(),
    }
}

#[test]
fn success_first_try() {
    let vm = Vm::new(&[IN_GUEST_MODE]);
    let mut sc = Script::new(&[0]);
    assert_eq!(
        vm.exec(Policy::DEFAULT).run(&AUG, &mut sc),
        Outcome::Done { tries: 1 }
    );
    assert_eq!(sc.calls, 1);
    assert_eq!(vm.count("kicks"), 0);
    assert!(vm.vcpus.kicked.borrow().is_empty());
}

#[test]
fn busy_then_kick_then_success_with_gate_up_during_retry() {
    let vm = Vm::new(&[IN_GUEST_MODE, OUTSIDE_GUEST_MODE]);
    let gate_seen = RefCell::new(Vec::new());
    let mut sc = FnSeamcall(|_: &SeptOp| {
        gate_seen.borrow_mut().push(vm.gate.raised_count());
        if gate_seen.borrow().len() == 1 {
            Status::from_raw(BUSY_RCX)
        } else {
            Status::SUCCESS
        }
    });
    let out = vm.exec(Policy::DEFAULT).run(&AUG, &mut sc);
    assert_eq!(out, Outcome::Done { tries: 2 });
    assert_eq!(*gate_seen.borrow(), vec![0, 1]);
    assert_eq!(*vm.vcpus.kicked.borrow(), vec![0]);
    assert!(!vm.gate.is_raised());
    assert_eq!(vm.count("kicks"), 1);
    assert_eq!(vm.count("vcpus_kicked"), 1);
    assert_eq!(vm.count("retries"), 1);
    assert_eq!(vm.count("retry_successes"), 1);
    assert_eq!(vm.count("busy_aug"), 1);
    assert_eq!(vm.count("busy_operand_rcx"), 1);
    assert_eq!(vm.count("gate_wait_ns"), 100);
    assert_eq!(vm.count("vm_bugs"), 0);
}

#[test]
fn second_busy_after_kick_is_vm_bug() {
    let vm = Vm::new(&[IN_GUEST_MODE]);
    let mut sc = Script::new(&[BUSY_SEPT, BUSY_SEPT, 0]);
    let out = vm.exec(Policy::DEFAULT).run(&AUG, &mut sc);
    assert_eq!(
        out,
        Outcome::VmBug {
            reason: VmBugReason::BusyAfterKick,
            status: Status::from_raw(BUSY_SEPT),
            tries: 2
        }
    );
    assert_eq!(sc.calls, 2);
    assert!(!vm.gate.is_raised());
    assert_eq!(vm.count("vm_bugs"), 1);
    assert_eq!(vm.count("busy_operand_sept"), 2);
}

#[test]
fn kick_timeout_is_vm_bug_not_a_hang() {
    let vm = Vm::new(&[IN_GUEST_MODE]);
    vm.vcpus.ack.set(false);
    let mut sc = Script::new(&[BUSY_SEPT]);
    let out = vm.exec(Policy::DEFAULT).run(&AUG, &mut sc);
    assert_eq!(
        out,
        Outcome::VmBug {
            reason: VmBugReason::KickTimeout,
            status: Status::from_raw(BUSY_SEPT),
            tries: 1
        }
    );
    assert_eq!(sc.calls, 1);
    assert!(!vm.gate.is_raised());
    assert_eq!(vm.count("kick_timeouts"), 1);
    assert_eq!(vm.count("vm_bugs"), 1);
    assert_eq!(vm.count("retries"), 0);
}

#[test]
fn non_busy_errors_pass_through_untouched() {
    for raw in [
        TDX_TLB_TRACKING_NOT_DONE,
        0xC000_0100_0000_0000,
        0x0000_0815_0000_0000,
    ] {
        let vm = Vm::new(&[IN_GUEST_MODE]);
        let mut sc = Script::new(&[raw]);
        let op = SeptOp::new_4k(Leaf::MemPageRemove, 0);
        let out = vm.exec(Policy::DEFAULT).run(&op, &mut sc);
        assert_eq!(
            out,
            Outcome::Error {
                status: Status::from_raw(raw),
                tries: 1
            }
        );
        assert_eq!(vm.count("errors"), 1);
        assert_eq!(vm.count("kicks"), 0);
    }
}

#[test]
fn previous_epoch_busy_is_retried_for_track_only() {
    let vm = Vm::new(&[IN_GUEST_MODE]);
    let mut sc = Script::new(&[TDX_PREVIOUS_TLB_EPOCH_BUSY, 0]);
    assert_eq!(
        vm.exec(Policy::DEFAULT).run(&TRACK, &mut sc),
        Outcome::Done { tries: 2 }
    );
    assert_eq!(vm.count("busy_track"), 1);
    assert_eq!(vm.count("busy_prev_tlb_epoch"), 1);

    let vm = Vm::new(&[IN_GUEST_MODE]);
    let mut sc = Script::new(&[TDX_PREVIOUS_TLB_EPOCH_BUSY, 0]);
    let out = vm.exec(Policy::DEFAULT).run(&AUG, &mut sc);
    assert!(matches!(out, Outcome::Error { tries: 1, .. }));
}

#[test]
fn one_try_budget_gives_up_without_kicking() {
    let vm = Vm::new(&[IN_GUEST_MODE]);
    let mut sc = Script::new(&[BUSY_SEPT, 0]);
    let out = vm.exec(kick_and_retry(1)).run(&AUG, &mut sc);
    assert_eq!(
        out,
        Outcome::VmBug {
            reason: VmBugReason::RetriesExhausted,
            status: Status::from_raw(BUSY_SEPT),
            tries: 1
        }
    );
    assert_eq!(vm.count("kicks"), 0);
}

#[test]
fn larger_budget_keeps_one_gate_and_kicks_before_each_retry() {
    let vm = Vm::new(&[IN_GUEST_MODE]);
    let mut sc = Script::new(&[BUSY_SEPT, BUSY_SEPT, BUSY_SEPT, 0]);
    let out = vm.exec(kick_and_retry(8)).run(&AUG, &mut sc);
    assert_eq!(out, Outcome::Done { tries: 4 });
    assert_eq!(vm.count("kicks"), 3);
    assert_eq!(vm.count("vcpus_kicked"), 1); // out after the first kick
    assert_eq!(vm.count("retries"), 3);

    let vm = Vm::new(&[]);
    let mut sc = Script::then(&[], BUSY_SEPT);
    let out = vm.exec(kick_and_retry(8)).run(&AUG, &mut sc);
    assert!(matches!(
        out,
        Outcome::VmBug {
            reason: VmBugReason::BusyAfterKick,
            tries: 8,
            ..
        }
    ));
    assert_eq!(sc.calls, 8);
}

#[test]
fn blind_retry_warns_at_powers_of_two_and_bugs_at_1024() {
    let vm = Vm::new(&[IN_GUEST_MODE]);
    let mut sc = Script::then(&[], BUSY_SEPT);
    let out = vm.exec(Policy::BlindRetry).run(&AUG, &mut sc);
    assert_eq!(
        out,
        Outcome::VmBug {
            reason: VmBugReason::RetriesExhausted,
            status: Status::from_raw(BUSY_SEPT),
            tries: 1024
        }
    );
    assert_eq!(sc.calls, 1024);
    assert_eq!(vm.count("retry_warnings"), 7); // 16 32 64 128 256 512 1024
    assert_eq!(vm.count("retries"), 1023);
    assert_eq!(vm.count("kicks"), 0);
    assert!(vm.vcpus.kicked.borrow().is_empty());

    let vm = Vm::new(&[IN_GUEST_MODE]);
    let mut sc = Script::new(&[BUSY_SEPT; 19]);
    assert_eq!(
        vm.exec(Policy::BlindRetry).run(&AUG, &mut sc),
        Outcome::Done { tries: 20 }
    );
    assert_eq!(vm.count("retry_warnings"), 1);
    assert_eq!(vm.count("retry_successes"), 1);
}

#[test]
fn upstream72_map_returns_busy_for_refault() {
    for leaf in [Leaf::MemPageAug, Leaf::MemSeptAdd, Leaf::MemPageAdd] {
        let vm = Vm::new(&[IN_GUEST_MODE]);
        let mut sc = Script::new(&[BUSY_SEPT, 0]);
        let out = vm
            .exec(Policy::Upstream72)
            .run(&SeptOp::new_4k(leaf, 0), &mut sc);
        assert_eq!(
            out,
            Outcome::Busy {
                status: Status::from_raw(BUSY_SEPT)
            }
        );
        assert_eq!(sc.calls, 1);
        assert_eq!(vm.count("busy_returned"), 1);
        assert_eq!(vm.count("kicks"), 0);
    }
}

#[test]
fn upstream72_unmap_kicks_once_and_retries_once() {
    let vm = Vm::new(&[IN_GUEST_MODE]);
    let mut sc = Script::new(&[BUSY_RCX, 0]);
    assert_eq!(
        vm.exec(Policy::Upstream72).run(&BLOCK, &mut sc),
        Outcome::Done { tries: 2 }
    );
    assert_eq!(vm.count("kicks"), 1);

    let vm = Vm::new(&[IN_GUEST_MODE]);
    let mut sc = Script::new(&[BUSY_RCX, BUSY_RCX, 0]);
    let out = vm.exec(Policy::Upstream72).run(&BLOCK, &mut sc);
    assert!(matches!(
        out,
        Outcome::VmBug {
            reason: VmBugReason::BusyAfterKick,
            tries: 2,
            ..
        }
    ));
}

#[test]
fn upstream72_does_not_retry_previous_epoch_busy() {
    // tdh_do_no_vcpus() only checks tdx_operand_busy().
    let vm = Vm::new(&[IN_GUEST_MODE]);
    let mut sc = Script::new(&[TDX_PREVIOUS_TLB_EPOCH_BUSY, 0]);
    let out = vm.exec(Policy::Upstream72).run(&TRACK, &mut sc);
    assert!(matches!(out, Outcome::Error { tries: 1, .. }));
}

#[test]
fn spte_stays_frozen_across_seamcalls_and_kick_then_commits() {
    let vm = Vm::new(&[IN_GUEST_MODE]);
    let spte = HostAtomic::new(0x8000_0000_0000_0000);
    let seen = RefCell::new(Vec::new());
    let mut sc = FnSeamcall(|_: &SeptOp| {
        seen.borrow_mut().push(spte.load_acquire());
        if seen.borrow().len() == 1 {
            Status::from_raw(BUSY_SEPT)
        } else {
            Status::SUCCESS
        }
    });
    let out =
        vm.exec(Policy::DEFAULT)
            .run_on_spte(&spte, 0x8000_0000_0000_0000, 0xabc007, &AUG, &mut sc);
    assert_eq!(out, Ok(Outcome::Done { tries: 2 }));
    assert_eq!(*seen.borrow(), vec![FROZEN_SPTE, FROZEN_SPTE]);
    assert_eq!(spte.load_acquire(), 0xabc007);
}

#[test]
fn spte_restored_on_failure() {
    for script in [
        &[BUSY_SEPT, BUSY_SEPT][..],
        &[TDX_TLB_TRACKING_NOT_DONE][..],
    ] {
        let vm = Vm::new(&[]);
        let spte = HostAtomic::new(5);
        let mut sc = Script::new(script);
        let out = vm
            .exec(Policy::DEFAULT)
            .run_on_spte(&spte, 5, 6, &AUG, &mut sc);
        assert!(!matches!(out, Ok(Outcome::Done { .. })));
        assert_eq!(spte.load_acquire(), 5);
    }
}

#[test]
fn contended_spte_issues_no_seamcall() {
    let vm = Vm::new(&[]);
    let spte = HostAtomic::new(FROZEN_SPTE);
    let mut sc = Script::new(&[0]);
    let exec = vm.exec(Policy::DEFAULT);
    let out = exec.run_on_spte(&spte, 5, 6, &AUG, &mut sc);
    assert_eq!(out, Err(SpteError::Contended { seen: FROZEN_SPTE }));
    assert_eq!(
        exec.run_on_spte(&spte, 5, FROZEN_SPTE, &AUG, &mut sc),
        Err(SpteError::FrozenValue)
    );
    assert_eq!(sc.calls, 0);
    assert_eq!(vm.count("freeze_contended"), 1);
    assert_eq!(vm.count("ops"), 0);
}

#[test]
fn kick_and_wait_holds_gate_until_dropped() {
    let vm = Vm::new(&[IN_GUEST_MODE, IN_GUEST_MODE]);
    let exec = vm.exec(Policy::DEFAULT);
    let guard = exec.kick_and_wait().unwrap();
    assert!(vm.gate.is_raised());
    assert_eq!(vm.count("vcpus_kicked"), 2);
    drop(guard);
    assert!(!vm.gate.is_raised());

    vm.vcpus.modes[0].store_release(IN_GUEST_MODE);
    vm.vcpus.ack.set(false);
    assert!(exec.kick_and_wait().is_err());
    assert!(!vm.gate.is_raised());
}

#[test]
fn ops_and_seamcalls_are_counted() {
    let vm = Vm::new(&[]);
    let exec = vm.exec(Policy::DEFAULT);
    exec.run(&AUG, &mut Script::new(&[0]));
    exec.run(&BLOCK, &mut Script::new(&[BUSY_RCX, 0]));
    assert_eq!(vm.count("ops"), 2);
    assert_eq!(vm.count("seamcalls"), 3);
    assert_eq!(vm.count("busy_block"), 1);
}

/// One report to an [`Events`] observer.
#[derive(Debug, PartialEq)]
enum Event {
    Kick {
        kicked: usize,
        wait_ns: u64,
        ok: bool,
        injected: bool,
    },
    Retry {
        op: SeptOp,
        status: u64,
        tries: u32,
        injected: bool,
    },
    Gate {
        held_ns: u64,
    },
}

/// Records what the executor reports.
#[derive(Default)]
struct Recorder(RefCell<Vec<Event>>);

impl Events for Recorder {
    fn kick(&self, kicked: usize, wait_ns: u64, ok: bool, injected: bool) {
        self.0.borrow_mut().push(Event::Kick {
            kicked,
            wait_ns,
            ok,
            injected,
        });
    }
    fn retry(&self, op: &SeptOp, status: Status, tries: u32, injected: bool) {
        self.0.borrow_mut().push(Event::Retry {
            op: *op,
            status: status.raw(),
            tries,
            injected,
        });
    }
    fn gate(&self, held_ns: u64) {
        self.0.borrow_mut().push(Event::Gate { held_ns });
    }
}

#[test]
fn events_report_the_kick_then_the_retry() {
    let vm = Vm::new(&[IN_GUEST_MODE, OUTSIDE_GUEST_MODE, IN_GUEST_MODE]);
    let rec = Recorder::default();
    let op = SeptOp {
        leaf: Leaf::MemSeptAdd,
        gpa: 0x20_0000,
        level: 2,
    };
    let mut sc = Script::new(&[BUSY_SEPT, 0]);
    let out = vm.exec(Policy::DEFAULT).with_events(&rec).run(&op, &mut sc);
    assert_eq!(out, Outcome::Done { tries: 2 });
    assert_eq!(
        *rec.0.borrow(),
        vec![
            Event::Kick {
                kicked: 2,
                wait_ns: 100,
                ok: true,
                injected: false
            },
            Event::Retry {
                op,
                status: BUSY_SEPT,
                tries: 1,
                injected: false
            },
            // Raised (clock read), kick (two reads), lowered after the
            // retry: three steps of the test clock.
            Event::Gate { held_ns: 300 },
        ]
    );
}

#[test]
fn events_report_a_timed_out_kick_with_its_vcpus_and_no_retry() {
    let vm = Vm::new(&[IN_GUEST_MODE, IN_GUEST_MODE]);
    vm.vcpus.ack.set(false);
    let rec = Recorder::default();
    let mut sc = Script::new(&[BUSY_SEPT]);
    let out = vm
        .exec(Policy::DEFAULT)
        .with_events(&rec)
        .run(&AUG, &mut sc);
    assert!(matches!(
        out,
        Outcome::VmBug {
            reason: VmBugReason::KickTimeout,
            ..
        }
    ));
    assert_eq!(
        *rec.0.borrow(),
        vec![
            Event::Kick {
                kicked: 2,
                wait_ns: 100,
                ok: false,
                injected: false
            },
            // The gate comes down as the VM is handed back to be stopped.
            Event::Gate { held_ns: 300 },
        ]
    );
}

#[test]
fn events_report_each_blind_retry_and_no_kick() {
    let vm = Vm::new(&[IN_GUEST_MODE]);
    let rec = Recorder::default();
    let mut sc = Script::new(&[BUSY_RCX, BUSY_RCX, BUSY_RCX, 0]);
    let out = vm
        .exec(Policy::BlindRetry)
        .with_events(&rec)
        .run(&AUG, &mut sc);
    assert_eq!(out, Outcome::Done { tries: 4 });
    let retry = |tries| Event::Retry {
        op: AUG,
        status: BUSY_RCX,
        tries,
        injected: false,
    };
    // No gate either.
    assert_eq!(*rec.0.borrow(), vec![retry(1), retry(2), retry(3)]);
}

#[test]
fn events_report_kick_and_wait_and_nothing_without_busy() {
    let vm = Vm::new(&[IN_GUEST_MODE]);
    let rec = Recorder::default();
    let exec = vm.exec(Policy::DEFAULT).with_events(&rec);
    exec.run(&AUG, &mut Script::new(&[0]));
    assert!(rec.0.borrow().is_empty());
    drop(exec.kick_and_wait().unwrap());
    assert_eq!(
        *rec.0.borrow(),
        vec![Event::Kick {
            kicked: 1,
            wait_ns: 100,
            ok: true,
            injected: false
        }]
    );
}

/// Answers from a script of `(status, injected)`: a status marked injected
/// stands for one the platform's fault injection made up.
struct Injecting {
    answers: Vec<(u64, bool)>,
    calls: usize,
    last_injected: bool,
}

impl Injecting {
    fn new(answers: &[(u64, bool)]) -> Self {
        Self {
            answers: answers.to_vec(),
            calls: 0,
            last_injected: false,
        }
    }
}

impl tdx_sept_guard_policy::Seamcall for Injecting {
    fn seamcall(&mut self, _op: &SeptOp) -> Status {
        let (status, injected) = self.answers.get(self.calls).copied().unwrap_or((0, false));
        self.calls += 1;
        self.last_injected = injected;
        Status::from_raw(status)
    }
    fn injected(&self) -> bool {
        self.last_injected
    }
}

#[test]
fn an_injected_busy_is_counted_apart_and_answered_with_one_kick_and_one_retry() {
    let vm = Vm::new(&[IN_GUEST_MODE]);
    let rec = Recorder::default();
    let mut sc = Injecting::new(&[(BUSY_RCX, true), (0, false)]);
    let out = vm
        .exec(Policy::DEFAULT)
        .with_events(&rec)
        .run(&AUG, &mut sc);
    assert_eq!(out, Outcome::Done { tries: 2 });
    // One real SEAMCALL (the retry); the injected busy is no busy AUG.
    assert_eq!(vm.count("seamcalls"), 1);
    assert_eq!(vm.count("injected_busy"), 1);
    assert_eq!(vm.count("injected_retry_busy"), 0);
    assert_eq!(vm.count("busy_aug"), 0);
    assert_eq!(vm.count("busy_operand_rcx"), 0);
    assert_eq!(vm.count("kicks"), 1);
    assert_eq!(vm.count("retries"), 1);
    assert_eq!(vm.count("retry_successes"), 1);
    assert_eq!(
        *rec.0.borrow(),
        vec![
            Event::Kick {
                kicked: 1,
                wait_ns: 100,
                ok: true,
                injected: true
            },
            Event::Retry {
                op: AUG,
                status: BUSY_RCX,
                tries: 1,
                injected: true
            },
            Event::Gate { held_ns: 300 },
        ]
    );
}

#[test]
fn an_injected_retry_busy_is_a_vm_bug_with_no_real_seamcall() {
    let vm = Vm::new(&[IN_GUEST_MODE]);
    let mut sc = Injecting::new(&[(BUSY_RCX, true), (BUSY_RCX, true)]);
    let out = vm.exec(Policy::DEFAULT).run(&AUG, &mut sc);
    assert_eq!(
        out,
        Outcome::VmBug {
            reason: VmBugReason::BusyAfterKick,
            status: Status::from_raw(BUSY_RCX),
            tries: 2
        }
    );
    assert_eq!(vm.count("seamcalls"), 0);
    assert_eq!(vm.count("injected_busy"), 1);
    assert_eq!(vm.count("injected_retry_busy"), 1);
    assert_eq!(vm.count("kicks"), 1);
    assert_eq!(vm.count("retries"), 1);
    assert_eq!(vm.count("vm_bugs"), 1);
}

#[test]
fn a_real_busy_then_an_injected_retry_busy_marks_only_the_retry() {
    let vm = Vm::new(&[IN_GUEST_MODE]);
    let rec = Recorder::default();
    let mut sc = Injecting::new(&[(BUSY_SEPT, false), (BUSY_RCX, true)]);
    let out = vm
        .exec(Policy::DEFAULT)
        .with_events(&rec)
        .run(&AUG, &mut sc);
    assert!(matches!(
        out,
        Outcome::VmBug {
            reason: VmBugReason::BusyAfterKick,
            ..
        }
    ));
    assert_eq!(vm.count("seamcalls"), 1);
    assert_eq!(vm.count("busy_aug"), 1);
    assert_eq!(vm.count("injected_busy"), 0);
    assert_eq!(vm.count("injected_retry_busy"), 1);
    let events = rec.0.borrow();
    assert!(matches!(
        events[..],
        [
            Event::Kick {
                injected: false,
                ..
            },
            Event::Retry {
                injected: false,
                ..
            },
            Event::Gate { .. }
        ]
    ));
}

#[test]
fn upstream72_hands_an_injected_map_busy_back() {
    let vm = Vm::new(&[IN_GUEST_MODE]);
    let mut sc = Injecting::new(&[(BUSY_RCX, true)]);
    let out = vm.exec(Policy::Upstream72).run(&AUG, &mut sc);
    assert_eq!(
        out,
        Outcome::Busy {
            status: Status::from_raw(BUSY_RCX)
        }
    );
    assert_eq!(vm.count("seamcalls"), 0);
    assert_eq!(vm.count("injected_busy"), 1);
    assert_eq!(vm.count("busy_returned"), 1);
    assert_eq!(vm.count("kicks"), 0);
}
