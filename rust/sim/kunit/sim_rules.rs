// SPDX-License-Identifier: GPL-2.0

//! The simulated TDX module, rule by rule (`Documentation/simulator.rst`),
//! driven step by step from one thread.

use kernel::macros::kunit_tests;

#[kunit_tests(tdx_sept_guard_sim_rules)]
mod tests {
    use crate::policy::status::*;
    use crate::policy::CounterCell;
    use crate::policy::{
        Leaf,
        Operand,
        SeptOp,
        Status, //
    };
    use crate::sim::tdx_module::*;
    use core::cell::Cell;
    use kernel::prelude::*;

    const X: u64 = 0x3000;

    fn module() -> Result<TdxModule> {
        TdxModule::new(
            Geometry {
                pages: 64,
                pages_per_table: 16,
            },
            Latency {
                seamcall_us: 0,
                accept_us: 0,
                round_trip_us: 0,
            },
        )
    }

    fn call(m: &TdxModule, leaf: Leaf, gpa: u64) -> u64 {
        m.seamcall(&SeptOp::new_4k(leaf, gpa)).raw()
    }

    const EPT_WALK_FAILED: u64 = 0xC000_0B00_0000_0000;
    const ENTRY_STATE_INCORRECT: u64 = 0xC000_0B0D_0000_0000;
    const BUSY_SEPT: u64 = Status::operand_busy(Operand::Sept).raw();
    const BUSY_RCX: u64 = Status::operand_busy(Operand::Rcx).raw();

    #[test]
    fn aug_needs_the_sept_page_and_a_free_entry() -> Result {
        let m = module()?;
        assert_eq!(call(&m, Leaf::MemPageAug, X), EPT_WALK_FAILED);
        assert_eq!(call(&m, Leaf::MemSeptAdd, X), TDX_SUCCESS);
        assert_eq!(call(&m, Leaf::MemSeptAdd, X), ENTRY_STATE_INCORRECT);
        assert_eq!(call(&m, Leaf::MemPageAug, X), TDX_SUCCESS);
        assert_eq!(m.page_state(X), Some(PENDING));
        assert_eq!(call(&m, Leaf::MemPageAug, X), ENTRY_STATE_INCORRECT);
        Ok(())
    }

    #[test]
    fn a_guest_holding_the_entry_makes_the_host_busy_then_yields_to_it() -> Result {
        let m = module()?;
        assert_eq!(call(&m, Leaf::MemSeptAdd, X), TDX_SUCCESS);
        // The host tries while a guest's ACCEPT holds the entry lock.
        let seen = Cell::new(0);
        let accept = m.guest_long_accept(X, || {
            seen.set(call(&m, Leaf::MemPageAug, X));
            false
        });
        assert_eq!(accept, Accept::Interrupted);
        assert_eq!(seen.get(), BUSY_RCX);
        // The host's failed try set host priority: the guest backs off.
        assert_eq!(
            m.guest_accept(X),
            Accept::Busy(Status::from_raw(TDX_OPERAND_BUSY_HOST_PRIORITY))
        );
        assert_eq!(call(&m, Leaf::MemPageAug, X), TDX_SUCCESS);
        // The host's acquire cleared it.
        assert_eq!(m.guest_accept(X), Accept::Accepted);
        assert_eq!(m.guest_accept(X), Accept::AlreadyAccepted);
        assert_eq!(m.page_state(X), Some(MAPPED));
        Ok(())
    }

    #[test]
    fn block_takes_the_tree_lock_exclusive_aug_shared() -> Result {
        let m = module()?;
        assert_eq!(call(&m, Leaf::MemSeptAdd, X), TDX_SUCCESS);
        assert_eq!(call(&m, Leaf::MemPageAug, X), TDX_SUCCESS);
        assert!(m.sept_lock().try_shared());
        assert_eq!(call(&m, Leaf::MemRangeBlock, X), BUSY_SEPT);
        assert_eq!(call(&m, Leaf::MemPageAug, X + 0x1000), TDX_SUCCESS);
        m.sept_lock().unlock_shared();
        assert_eq!(call(&m, Leaf::MemRangeBlock, X), TDX_SUCCESS);
        assert_eq!(m.page_state(X), Some(BLOCKED));
        Ok(())
    }

    #[test]
    fn remove_needs_block_then_track() -> Result {
        let m = module()?;
        assert_eq!(call(&m, Leaf::MemSeptAdd, X), TDX_SUCCESS);
        assert_eq!(call(&m, Leaf::MemPageAug, X), TDX_SUCCESS);
        assert_eq!(call(&m, Leaf::MemPageRemove, X), TDX_GPA_RANGE_NOT_BLOCKED);
        assert_eq!(call(&m, Leaf::MemRangeBlock, X), TDX_SUCCESS);
        assert_eq!(call(&m, Leaf::MemPageRemove, X), TDX_TLB_TRACKING_NOT_DONE);
        assert_eq!(call(&m, Leaf::MemTrack, 0), TDX_SUCCESS);
        assert_eq!(call(&m, Leaf::MemPageRemove, X), TDX_SUCCESS);
        assert_eq!(m.page_state(X), Some(FREE));
        Ok(())
    }

    #[test]
    fn track_and_remove_wait_for_vcpus_of_the_old_epoch() -> Result {
        let m = module()?;
        let zs = ZeroStepState::new();
        assert_eq!(call(&m, Leaf::MemSeptAdd, X), TDX_SUCCESS);
        assert_eq!(call(&m, Leaf::MemPageAug, X), TDX_SUCCESS);
        let Enter::Entered { epoch } = m.vp_enter(&zs) else {
            return Err(EINVAL);
        };
        assert_eq!(call(&m, Leaf::MemRangeBlock, X), TDX_SUCCESS);
        // Epoch e -> e+1: nobody is in e-1.
        assert_eq!(call(&m, Leaf::MemTrack, 0), TDX_SUCCESS);
        // The vCPU that entered in e is still inside.
        assert_eq!(call(&m, Leaf::MemPageRemove, X), TDX_TLB_TRACKING_NOT_DONE);
        assert_eq!(call(&m, Leaf::MemTrack, 0), TDX_PREVIOUS_TLB_EPOCH_BUSY);
        m.td_exit(epoch);
        assert_eq!(call(&m, Leaf::MemPageRemove, X), TDX_SUCCESS);
        assert_eq!(call(&m, Leaf::MemTrack, 0), TDX_SUCCESS);
        Ok(())
    }

    #[test]
    fn zero_step_mitigation_engages_on_the_seventh_fault() -> Result {
        let m = module()?;
        let mut zs = ZeroStepState::new();
        for _ in 0..STEPPING_EPF_THRESHOLD {
            m.ept_violation_exit(&mut zs, X, X);
            assert!(!zs.active());
        }
        // A fault elsewhere starts over.
        m.ept_violation_exit(&mut zs, X + 0x1000, X + 0x1000);
        for _ in 0..STEPPING_EPF_THRESHOLD {
            m.ept_violation_exit(&mut zs, X, X);
        }
        assert!(!zs.active());
        m.ept_violation_exit(&mut zs, X, X);
        assert!(zs.active());
        assert_eq!(m.stats.sim_mitigation_engaged.get(), 1);

        // While X still faults, VP.ENTER exits at once for it.
        assert!(matches!(m.vp_enter(&zs), Enter::EptViolation(X)));
        // It takes the tree lock exclusive: a host AUG in flight blocks it.
        assert!(m.sept_lock().try_shared());
        assert!(matches!(m.vp_enter(&zs), Enter::Busy(s) if s.raw() == BUSY_SEPT));
        m.sept_lock().unlock_shared();

        assert_eq!(call(&m, Leaf::MemSeptAdd, X), TDX_SUCCESS);
        assert_eq!(call(&m, Leaf::MemPageAug, X), TDX_SUCCESS);
        let Enter::Entered { epoch } = m.vp_enter(&zs) else {
            return Err(EINVAL);
        };
        assert_eq!(m.guest_accept(X), Accept::Accepted);
        m.td_exit(epoch);
        m.progress_exit(&mut zs);
        assert!(!zs.active());
        Ok(())
    }

    /// KVM's own comment: "a single RIP causing EPT violations for more GFNs
    /// than the threshold count" engages the mitigation too (a guest's
    /// loop of 4K ACCEPTs over a large range, say).
    #[test]
    fn one_rip_faulting_on_seven_pages_engages_zero_step() -> Result {
        let m = module()?;
        let mut zs = ZeroStepState::new();
        const RIP: u64 = 0x42;
        for i in 0..u64::from(STEPPING_EPF_THRESHOLD) {
            m.ept_violation_exit(&mut zs, RIP, X + i * 0x1000);
            assert!(!zs.active());
        }
        let seventh = X + u64::from(STEPPING_EPF_THRESHOLD) * 0x1000;
        m.ept_violation_exit(&mut zs, RIP, seventh);
        assert!(zs.active());
        // Only the pages from the seventh fault on are listed.
        assert!(matches!(m.vp_enter(&zs), Enter::EptViolation(gpa) if gpa == seventh));
        // A new RIP (progress) clears it.
        m.progress_exit(&mut zs);
        assert!(!zs.active());
        Ok(())
    }

    #[test]
    fn a_stuck_module_is_busy_for_every_sept_call() -> Result {
        let m = module()?;
        m.set_stuck_busy(true);
        assert_eq!(call(&m, Leaf::MemSeptAdd, X), BUSY_SEPT);
        m.set_stuck_busy(false);
        assert_eq!(call(&m, Leaf::MemSeptAdd, X), TDX_SUCCESS);
        Ok(())
    }
}
