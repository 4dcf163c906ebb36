// SPDX-License-Identifier: GPL-2.0

//! Fault injection: a TDX module that stays busy, a vCPU that does not
//! answer the kick. Either way the VM stops and the host goes on.

use kernel::macros::kunit_tests;

#[kunit_tests(tdx_sept_guard_faults)]
mod tests {
    use super::super::test_vm;
    use crate::platform::thread::{
        run_on_cpu,
        sleep_ms, //
    };
    use crate::platform::trace::record::Recording;
    use crate::policy::gate::IN_GUEST_MODE;
    use crate::policy::Atomic32;
    use crate::policy::*;
    use crate::sim::tdp_mmu::Fault;
    use crate::sim::workload::Workload;
    use kernel::prelude::*;
    use kernel::str::CString;
    use kernel::time::{
        Instant,
        Monotonic, //
    };

    const X: u64 = 0x7000;

    #[test]
    fn persistent_busy_stops_the_vm_after_two_tries() -> Result {
        let vm = test_vm(2, Policy::DEFAULT)?;
        vm.module.set_stuck_busy(true);
        assert_eq!(vm.handle_fault(X, false), Fault::Stopped);
        let rec = vm.stop_record().ok_or(EINVAL)?;
        assert_eq!(rec.leaf, Leaf::MemSeptAdd);
        assert_eq!(rec.reason, Some(VmBugReason::BusyAfterKick));
        assert_eq!(rec.status, Status::operand_busy(Operand::Sept));
        assert_eq!(vm.counters.seamcalls.get(), 2);
        assert_eq!(vm.counters.vm_bugs.get(), 1);
        assert!(!vm.gate.is_raised());
        Ok(())
    }

    /// The same stop, traced: the kick (no vCPU is in guest mode), the
    /// retry of TDH.MEM.SEPT.ADD, the VM stop, as the tracepoints get them.
    #[test]
    fn a_vm_stop_is_traced_after_its_kick_and_retry() -> Result {
        let vm = test_vm(2, Policy::DEFAULT)?;
        vm.module.set_stuck_busy(true);
        let recording = Recording::start(Some(vm.events.vm()))?;
        let fault = vm.handle_fault(X, false);
        let events = recording.stop()?;
        let g = vm.cfg.geometry;
        let (leaf, busy) = (
            Leaf::MemSeptAdd.number(),
            Status::operand_busy(Operand::Sept).raw(),
        );
        let want = CString::try_from_fmt(fmt!(
            "kick kicked=0 ok=1\n\
             retry leaf={} gpa={:#x} level=2 status={:#x} tries=1\n\
             vm_stop leaf={} status={:#x} reason=busy_after_kick\n",
            leaf,
            g.table_gpa(g.table_of(X)),
            busy,
            leaf,
            busy,
        ))?;
        pr_info!(
            "traced:\n{}",
            core::str::from_utf8(&events).unwrap_or("(not UTF-8)")
        );
        assert_eq!(fault, Fault::Stopped);
        assert_eq!(events.as_slice(), want.to_bytes());
        Ok(())
    }

    #[test]
    fn persistent_busy_under_load_stops_only_the_vm() -> Result {
        let vm = test_vm(2, Policy::DEFAULT)?;
        let work = Workload::start(vm.clone(), u64::MAX)?;
        sleep_ms(50);
        vm.module.set_stuck_busy(true);
        // Every vCPU thread notices the stop and parks; the host goes on.
        let parked = work.wait(30_000);
        drop(work);
        assert!(parked);
        assert!(vm.is_stopped());
        assert!(vm.counters.vm_bugs.get() >= 1);
        // No operation went past its two SEAMCALLs.
        assert!(vm.sim_counters.sim_max_tries.get() <= 2);
        Ok(())
    }

    #[test]
    fn a_vcpu_that_never_acks_stops_the_vm_within_the_deadline() -> Result {
        let vm = test_vm(2, Policy::DEFAULT)?;
        let timeout_ms = i64::from(vm.cfg.kick_timeout_us / 1000);
        let stuck_ms = 5 * timeout_ms as u32;
        vm.inject.arm_stuck(1, stuck_ms);
        let work = Workload::start_some(vm.clone(), u64::MAX, 1 << 1, false)?;
        // The kicker runs on CPU 0, away from vCPU 1's CPU.
        let kicker_vm = vm.clone();
        let (got_stuck, fault, took_ms) = run_on_cpu(0, move || {
            let vm = &kicker_vm;
            // Wait until vCPU 1 sits in its guest section, interrupts off.
            let in_guest = || vm.vcpus[1].mode.load_acquire() == IN_GUEST_MODE;
            let mut waited = 0;
            while (vm.inject.stuck_armed() || !in_guest()) && waited < 5000 {
                sleep_ms(1);
                waited += 1;
            }
            let got_stuck = !vm.inject.stuck_armed() && in_guest();
            let start = Instant::<Monotonic>::now();
            let fault = vm.handle_fault(X, true);
            (got_stuck, fault, start.elapsed().as_millis())
        })?;
        drop(work);
        assert!(got_stuck);
        assert_eq!(fault, Fault::Stopped);
        let rec = vm.stop_record().ok_or(EINVAL)?;
        assert_eq!(rec.reason, Some(VmBugReason::KickTimeout));
        assert_eq!(vm.counters.kick_timeouts.get(), 1);
        assert!(took_ms >= timeout_ms);
        assert!(took_ms < i64::from(stuck_ms));
        assert!(!vm.gate.is_raised());
        Ok(())
    }
}
