// SPDX-License-Identifier: GPL-2.0

//! Property tests for status decoding.

use proptest::prelude::*;
use tdx_sept_guard_policy::status::*;

/// Mostly known classes with any details, sometimes any value at all.
fn status_raw() -> impl Strategy<Value = u64> {
    let class = prop_oneof![
        Just(TDX_OPERAND_BUSY),
        Just(TDX_PREVIOUS_TLB_EPOCH_BUSY),
        Just(TDX_OPERAND_BUSY_HOST_PRIORITY),
        Just(TDX_HOST_PRIORITY_BUSY_TIMEOUT),
        Just(TDX_TLB_TRACKING_NOT_DONE),
        Just(TDX_GPA_RANGE_NOT_BLOCKED),
        Just(0u64),
    ];
    let details = prop_oneof![
        prop::sample::select(vec![0u32, 0x01, 0x02, 0x08, 0x80, 0x92, 0xa9, 0xac]),
        any::<u32>(),
    ];
    prop_oneof![
        3 => (class, details).prop_map(|(c, d)| c | u64::from(d)),
        1 => any::<u64>(),
    ]
}

fn leaf() -> impl Strategy<Value = Leaf> {
    prop::sample::select(Leaf::ALL.to_vec())
}

proptest! {
    #[test]
    fn busy_is_exactly_kvms_class_test(raw in status_raw()) {
        let st = Status::from_raw(raw);
        prop_assert_eq!(st.is_operand_busy(), raw & 0xFFFF_FFFF_0000_0000 == 0x8000_0200_0000_0000);
    }

    #[test]
    fn fields(raw in status_raw()) {
        let st = Status::from_raw(raw);
        prop_assert_eq!(st.raw(), raw);
        prop_assert_eq!(st.operand_id(), raw as u32);
        prop_assert_eq!(st.class() | u64::from(st.operand_id()), raw);
        prop_assert_eq!(st.is_error(), raw >> 63 == 1);
        prop_assert_eq!(st.is_non_recoverable(), (raw >> 62) & 1 == 1);
        prop_assert_eq!(st.is_success(), raw == 0);
    }

    #[test]
    fn kind_agrees_with_predicates(raw in status_raw()) {
        let st = Status::from_raw(raw);
        match st.kind() {
            StatusKind::Success => prop_assert_eq!(raw, 0),
            StatusKind::OperandBusy(op) => {
                prop_assert!(st.is_operand_busy());
                prop_assert_eq!(op, Operand::from_id(raw as u32));
            }
            StatusKind::PreviousTlbEpochBusy => prop_assert_eq!(st.class(), TDX_PREVIOUS_TLB_EPOCH_BUSY),
            StatusKind::OperandBusyHostPriority => prop_assert_eq!(st.class(), TDX_OPERAND_BUSY_HOST_PRIORITY),
            StatusKind::HostPriorityBusyTimeout => prop_assert_eq!(st.class(), TDX_HOST_PRIORITY_BUSY_TIMEOUT),
            StatusKind::TlbTrackingNotDone => prop_assert_eq!(st.class(), TDX_TLB_TRACKING_NOT_DONE),
            StatusKind::GpaRangeNotBlocked => prop_assert_eq!(st.class(), TDX_GPA_RANGE_NOT_BLOCKED),
            StatusKind::OtherError => prop_assert!(st.is_error() && !st.is_operand_busy()),
            StatusKind::OtherNonError => prop_assert!(!st.is_error() && raw != 0),
        }
    }

    #[test]
    fn busy_for_leaf(raw in status_raw(), leaf in leaf()) {
        let st = Status::from_raw(raw);
        let expect = st.is_operand_busy()
            || (leaf == Leaf::MemTrack && st.class() == TDX_PREVIOUS_TLB_EPOCH_BUSY);
        prop_assert_eq!(st.is_busy_for(leaf), expect);
    }

    #[test]
    fn operand_ids_round_trip(id in any::<u32>()) {
        prop_assert_eq!(Operand::from_id(id).id(), id);
        let st = Status::operand_busy(Operand::from_id(id));
        prop_assert_eq!(st.kind(), StatusKind::OperandBusy(Operand::from_id(id)));
    }
}
