// SPDX-License-Identifier: GPL-2.0

//! Frozen-SPTE lock rules.

mod common;

use common::HostAtomic;
use tdx_sept_guard_policy::spte::{is_frozen_spte, SHADOW_NONPRESENT_VALUE};
use tdx_sept_guard_policy::{Atomic64, FrozenSpte, SpteError, FROZEN_SPTE};

#[test]
fn frozen_value_matches_spte_h() {
    assert_eq!(SHADOW_NONPRESENT_VALUE, 0x8000_0000_0000_0000);
    assert_eq!(FROZEN_SPTE, 0x8000_0000_0000_01a0);
    assert!(is_frozen_spte(FROZEN_SPTE));
    assert!(!is_frozen_spte(SHADOW_NONPRESENT_VALUE));
}

#[test]
fn freeze_then_commit() {
    let cell = HostAtomic::new(SHADOW_NONPRESENT_VALUE);
    let g = FrozenSpte::freeze(&cell, SHADOW_NONPRESENT_VALUE).unwrap();
    assert_eq!(cell.load_acquire(), FROZEN_SPTE);
    assert_eq!(g.old(), SHADOW_NONPRESENT_VALUE);
    g.commit(0x1234_5007).unwrap();
    assert_eq!(cell.load_acquire(), 0x1234_5007);
}

#[test]
fn restore_and_drop_put_old_back() {
    let cell = HostAtomic::new(7);
    FrozenSpte::freeze(&cell, 7).unwrap().restore();
    assert_eq!(cell.load_acquire(), 7);
    {
        let _g = FrozenSpte::freeze(&cell, 7).unwrap();
        assert_eq!(cell.load_acquire(), FROZEN_SPTE);
    }
    assert_eq!(cell.load_acquire(), 7);
}

#[test]
fn early_return_restores() {
    fn fails(cell: &HostAtomic) -> Result<(), ()> {
        let _g = FrozenSpte::freeze(cell, 7).map_err(|_| ())?;
        Err(())
    }
    let cell = HostAtomic::new(7);
    assert!(fails(&cell).is_err());
    assert_eq!(cell.load_acquire(), 7);
}

#[test]
fn frozen_spte_is_never_frozen_again() {
    let cell = HostAtomic::new(7);
    let g = FrozenSpte::freeze(&cell, 7).unwrap();
    // Expecting the old value: contention, reports the frozen value seen.
    assert_eq!(
        FrozenSpte::freeze(&cell, 7).err(),
        Some(SpteError::Contended { seen: FROZEN_SPTE })
    );
    // Expecting FROZEN_SPTE itself: refused without touching the cell.
    assert_eq!(
        FrozenSpte::freeze(&cell, FROZEN_SPTE).err(),
        Some(SpteError::FrozenValue)
    );
    assert_eq!(cell.load_acquire(), FROZEN_SPTE);
    g.commit(8).unwrap();
    assert_eq!(cell.load_acquire(), 8);
}

#[test]
fn freeze_needs_the_expected_old_value() {
    let cell = HostAtomic::new(5);
    assert_eq!(
        FrozenSpte::freeze(&cell, 6).err(),
        Some(SpteError::Contended { seen: 5 })
    );
    assert_eq!(cell.load_acquire(), 5);
}

#[test]
fn committing_frozen_value_is_refused_and_restores() {
    let cell = HostAtomic::new(5);
    let g = FrozenSpte::freeze(&cell, 5).unwrap();
    assert_eq!(g.commit(FROZEN_SPTE), Err(SpteError::FrozenValue));
    assert_eq!(cell.load_acquire(), 5);
}
