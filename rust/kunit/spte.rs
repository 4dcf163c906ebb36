// SPDX-License-Identifier: GPL-2.0

//! The frozen-SPTE lock over the kernel's own atomics.

use kernel::macros::kunit_tests;

#[kunit_tests(tdx_sept_guard_spte)]
mod tests {
    use crate::platform::sync::KAtomic64;
    use crate::policy::spte::SHADOW_NONPRESENT_VALUE;
    use crate::policy::{
        Atomic64,
        FrozenSpte,
        SpteError,
        FROZEN_SPTE, //
    };

    const MAPPED: u64 = 0x1234_5007;

    #[test]
    fn frozen_value_is_the_kernels() {
        // arch/x86/kvm/mmu/spte.h: SHADOW_NONPRESENT_VALUE | 0x1a0 on x86-64.
        assert_eq!(SHADOW_NONPRESENT_VALUE, 1 << 63);
        assert_eq!(FROZEN_SPTE, 0x8000_0000_0000_01a0);
    }

    #[test]
    fn commit_publishes_the_new_value() {
        let cell = KAtomic64::new(SHADOW_NONPRESENT_VALUE);
        let frozen = FrozenSpte::freeze(&cell, SHADOW_NONPRESENT_VALUE).unwrap();
        assert_eq!(cell.load_acquire(), FROZEN_SPTE);
        assert_eq!(frozen.commit(MAPPED), Ok(()));
        assert_eq!(cell.load_acquire(), MAPPED);
    }

    #[test]
    fn restore_and_drop_put_the_old_value_back() {
        let cell = KAtomic64::new(MAPPED);
        FrozenSpte::freeze(&cell, MAPPED).unwrap().restore();
        assert_eq!(cell.load_acquire(), MAPPED);
        {
            let _frozen = FrozenSpte::freeze(&cell, MAPPED).unwrap();
            assert_eq!(cell.load_acquire(), FROZEN_SPTE);
        }
        assert_eq!(cell.load_acquire(), MAPPED);
    }

    #[test]
    fn a_frozen_spte_is_never_frozen_again() {
        let cell = KAtomic64::new(MAPPED);
        let frozen = FrozenSpte::freeze(&cell, MAPPED).unwrap();
        assert_eq!(
            FrozenSpte::freeze(&cell, MAPPED).err(),
            Some(SpteError::Contended { seen: FROZEN_SPTE })
        );
        assert_eq!(
            FrozenSpte::freeze(&cell, FROZEN_SPTE).err(),
            Some(SpteError::FrozenValue)
        );
        // Committing FROZEN_SPTE is refused and restores the old value.
        assert_eq!(frozen.commit(FROZEN_SPTE), Err(SpteError::FrozenValue));
        assert_eq!(cell.load_acquire(), MAPPED);
    }

    #[test]
    fn contention_reports_the_value_seen() {
        let cell = KAtomic64::new(MAPPED);
        assert_eq!(
            FrozenSpte::freeze(&cell, SHADOW_NONPRESENT_VALUE).err(),
            Some(SpteError::Contended { seen: MAPPED })
        );
        assert_eq!(cell.load_acquire(), MAPPED);
    }
}
