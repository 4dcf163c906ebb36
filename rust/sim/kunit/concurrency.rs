// SPDX-License-Identifier: GPL-2.0

//! The policy under real concurrency: vCPU threads on every CPU doing
//! guest ACCEPTs, faults mapping pages on the shared path, a zap thread
//! unmapping them on the exclusive path, kicks as real IPIs.

use kernel::macros::kunit_tests;

#[kunit_tests(tdx_sept_guard_concurrency)]
mod tests {
    use crate::platform::num_online_cpus;
    use crate::platform::thread::sleep_ms;
    use crate::policy::*;
    use crate::sim::tdx_module::{
        Geometry,
        Latency, //
        DEFAULT_COST_PCT,
    };
    use crate::sim::vm::{
        SimConfig,
        Vm, //
    };
    use crate::sim::workload::Workload;
    use kernel::prelude::*;
    use kernel::sync::atomic::Relaxed;

    /// The floor for one run: map and unmap operations together.
    const MIN_OPS: u64 = 10_000;
    /// Pages each vCPU accepts; with 2 to 4 vCPUs and the zaps this gives
    /// well over `MIN_OPS` operations.
    const OPS_PER_VCPU: u64 = 3000;

    #[test]
    fn every_operation_completes_within_two_seamcalls() -> Result {
        let vcpus = num_online_cpus().min(4);
        assert!(vcpus >= 2);
        let vm = Vm::new(SimConfig {
            nr_vcpus: vcpus,
            geometry: Geometry {
                pages: 512,
                pages_per_table: 16,
            },
            // Under TCG the simulated CPUs run far slower than hardware;
            // longer lock holds keep the overlap of host and guest work
            // (and so the contention) closer to a real host's.
            latency: Latency {
                seamcall_us: 20,
                accept_us: 100,
                round_trip_us: 0,
            },
            seamcall_cost_pct: DEFAULT_COST_PCT,
            policy: Policy::DEFAULT,
            // Generous: under TCG on a loaded host a simulated CPU can be
            // descheduled for a long time; this test is about bounds on
            // SEAMCALLs, not about the deadline (see the faults suite).
            kick_timeout_us: 1_000_000,
            contention_pct: 60,
            hot_pages: 4,
            guest_run: 1,
            seed: 0,
            histograms: true,
        })?;
        let work = Workload::start(vm.clone(), OPS_PER_VCPU)?;
        let finished = work.wait(300_000);
        // Stop every thread before comparing the S-EPT with the mirror.
        drop(work);
        assert!(finished);
        assert!(!vm.is_stopped());

        let c = &vm.counters;
        let m = &vm.module.stats;
        pr_info!(
            "concurrency: {} ops, {} seamcalls, {} kicks, {} retries, {} zaps, guest busy {}/{}\n",
            c.ops.get(),
            c.seamcalls.get(),
            c.kicks.get(),
            c.retries.get(),
            vm.sim_counters.sim_zaps.get(),
            m.sim_guest_busy.get(),
            m.sim_guest_host_priority.get()
        );
        assert!(c.ops.get() >= MIN_OPS);
        // Nothing lost: the simulated S-EPT equals the mirror SPTEs.
        assert_eq!(vm.mismatches(), 0);
        // Bounded, and every second try succeeded.
        assert!(vm.sim_counters.sim_max_tries.get() <= 2);
        assert_eq!(c.seamcalls.get(), c.ops.get() + c.retries.get());
        assert_eq!(c.retry_successes.get(), c.retries.get());
        assert_eq!(
            (
                c.vm_bugs.get(),
                c.errors.get(),
                c.kick_timeouts.get(),
                c.busy_returned.get()
            ),
            (0, 0, 0, 0)
        );
        // The protocol held: no vCPU inside the guest after the acks.
        assert_eq!(vm.sim_counters.sim_gate_violations.get(), 0);
        assert!(!vm.gate.is_raised());
        // The run did contend, or it proved nothing.
        assert!(c.retries.get() > 0);
        Ok(())
    }

    /// Raises the gate and kicks while every vCPU keeps trying to enter:
    /// until the gate drops, none may get in, and they do get in after.
    #[test]
    fn the_gate_holds_vcpus_out_until_it_drops() -> Result {
        let vm = super::super::test_vm(num_online_cpus().min(4), Policy::DEFAULT)?;
        let work = Workload::start_some(vm.clone(), u64::MAX, u64::MAX, false)?;
        sleep_ms(20);
        let (refused_before, inside, refused_during, kicked) = {
            let guard = KickGuard::raise(&vm.gate);
            let kicked = guard.kick(&*vm);
            let refused_before = vm.counters.entries_refused.get();
            let mut inside = 0;
            for _ in 0..100 {
                inside += vm.in_guest.load(Relaxed);
                sleep_ms(1);
            }
            (
                refused_before,
                inside,
                vm.counters.entries_refused.get(),
                kicked,
            )
        };
        let ops_at_drop = vm.sim_counters.sim_guest_ops.get();
        sleep_ms(20);
        let ops_after = vm.sim_counters.sim_guest_ops.get();
        drop(work);
        assert!(kicked.is_ok());
        assert_eq!(inside, 0);
        assert!(refused_during > refused_before);
        assert!(ops_after > ops_at_drop);
        assert!(!vm.gate.is_raised());
        Ok(())
    }
}
