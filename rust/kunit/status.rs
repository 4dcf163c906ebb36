// SPDX-License-Identifier: GPL-2.0

//! Status decoding and the policy crate's TDX numbers, checked against the
//! headers of the kernel the module was built for (`rust/tdx_abi.c`).

use kernel::macros::kunit_tests;

#[kunit_tests(tdx_sept_guard_status)]
mod tests {
    use crate::policy::status::*;
    use core::ffi::CStr;
    use kernel::ffi::c_char;
    use kernel::prelude::*;

    #[repr(C)]
    struct AbiConst {
        name: *const c_char,
        value: u64,
    }

    extern "C" {
        static tsg_kernel_tdx_abi: [AbiConst; 0];
    }

    /// The value the kernel's headers give `name`.
    fn kernel_abi(name: &str) -> Option<u64> {
        // SAFETY: `tsg_kernel_tdx_abi` is a static array in `tdx_abi.c`
        // that ends with an entry whose name is NULL; every name before it
        // is a static NUL-terminated string.
        unsafe {
            let mut entry = core::ptr::addr_of!(tsg_kernel_tdx_abi).cast::<AbiConst>();
            while !(*entry).name.is_null() {
                if CStr::from_char_ptr((*entry).name).to_bytes() == name.as_bytes() {
                    return Some((*entry).value);
                }
                entry = entry.add(1);
            }
        }
        None
    }

    #[test]
    fn status_values_match_kernel_headers() {
        for (name, ours) in [
            ("TDX_SUCCESS", TDX_SUCCESS),
            ("TDX_ERROR", TDX_ERROR),
            ("TDX_NON_RECOVERABLE", TDX_NON_RECOVERABLE),
            ("TDX_SEAMCALL_STATUS_MASK", TDX_SEAMCALL_STATUS_MASK),
            ("TDX_OPERAND_BUSY", TDX_OPERAND_BUSY),
            ("TDX_PREVIOUS_TLB_EPOCH_BUSY", TDX_PREVIOUS_TLB_EPOCH_BUSY),
            ("TDX_OPERAND_ID_RCX", u64::from(TDX_OPERAND_ID_RCX)),
            ("TDX_OPERAND_ID_TDR", u64::from(TDX_OPERAND_ID_TDR)),
            ("TDX_OPERAND_ID_SEPT", u64::from(TDX_OPERAND_ID_SEPT)),
            (
                "TDX_OPERAND_ID_TD_EPOCH",
                u64::from(TDX_OPERAND_ID_TD_EPOCH),
            ),
        ] {
            assert_eq!(kernel_abi(name), Some(ours));
        }
    }

    #[test]
    fn leaf_numbers_match_kernel_headers() {
        for (name, leaf) in [
            ("TDH_VP_ENTER", Leaf::VpEnter),
            ("TDH_MEM_PAGE_ADD", Leaf::MemPageAdd),
            ("TDH_MEM_SEPT_ADD", Leaf::MemSeptAdd),
            ("TDH_MEM_PAGE_AUG", Leaf::MemPageAug),
            ("TDH_MEM_RANGE_BLOCK", Leaf::MemRangeBlock),
            ("TDH_MEM_PAGE_REMOVE", Leaf::MemPageRemove),
            ("TDH_MEM_TRACK", Leaf::MemTrack),
        ] {
            assert_eq!(kernel_abi(name), Some(leaf.number()));
            assert_eq!(Leaf::from_number(leaf.number()), Some(leaf));
        }
    }

    #[test]
    fn busy_is_the_class_whatever_the_operand() {
        for operand in [
            Operand::Sept,
            Operand::Rcx,
            Operand::Rdx,
            Operand::R8,
            Operand::Tdr,
            Operand::TdEpoch,
            Operand::OpState,
            Operand::Other(0x55),
        ] {
            let status = Status::operand_busy(operand);
            assert!(status.is_operand_busy());
            assert!(status.is_error());
            assert_eq!(status.operand(), operand);
            assert_eq!(status.kind(), StatusKind::OperandBusy(operand));
        }
    }

    #[test]
    fn track_epoch_busy_is_busy_for_track_only() {
        let status = Status::from_raw(TDX_PREVIOUS_TLB_EPOCH_BUSY);
        assert!(status.is_busy_for(Leaf::MemTrack));
        assert!(!status.is_busy_for(Leaf::MemPageAug));
        assert!(!status.is_operand_busy());
    }

    #[test]
    fn remove_errors_and_success_are_not_busy() {
        for raw in [
            TDX_TLB_TRACKING_NOT_DONE,
            TDX_GPA_RANGE_NOT_BLOCKED,
            TDX_SUCCESS,
        ] {
            let status = Status::from_raw(raw);
            for leaf in Leaf::ALL {
                assert!(!status.is_busy_for(leaf));
            }
        }
        assert!(Status::SUCCESS.is_success());
        assert!(Status::from_raw(TDX_TLB_TRACKING_NOT_DONE).is_non_recoverable());
    }
}
