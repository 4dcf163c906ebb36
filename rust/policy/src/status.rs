// SPDX-License-Identifier: GPL-2.0

//! SEAMCALL status decoding and SEAMCALL leaf numbers.
//!
//! A SEAMCALL returns a 64-bit status in RAX. Bit 63 flags an error, bit 62 a
//! non-recoverable one, bits 63:32 are the status class and bits 31:0 carry
//! details: for `TDX_OPERAND_BUSY` the id of the operand whose lock was taken.
//!
//! Sources for the numbers:
//! - Linux 7.2 `arch/x86/include/asm/tdx.h`: `TDX_ERROR`, `TDX_NON_RECOVERABLE`,
//!   `TDX_SUCCESS`.
//! - Linux 7.2 `arch/x86/include/asm/shared/tdx_errno.h`:
//!   `TDX_SEAMCALL_STATUS_MASK`, `TDX_OPERAND_BUSY`, `TDX_PREVIOUS_TLB_EPOCH_BUSY`
//!   and the operand ids RCX, TDR, SEPT and TD_EPOCH.
//! - Linux 7.2 `arch/x86/virt/vmx/tdx/tdx.h`: the `TDH_*` leaf numbers.
//! - Intel's TDX module source (1.5.01, `tdx_locks.h`, error code headers), as
//!   summarised in the project's locking reference: the host-priority codes,
//!   `TDX_TLB_TRACKING_NOT_DONE`, `TDX_GPA_RANGE_NOT_BLOCKED` and the operand
//!   ids RDX, R8 and op_state, which Linux 7.2 does not define.

use core::fmt;

/// `TDX_SUCCESS` (`arch/x86/include/asm/tdx.h`).
pub const TDX_SUCCESS: u64 = 0;
/// `TDX_ERROR`, bit 63 (`arch/x86/include/asm/tdx.h`).
pub const TDX_ERROR: u64 = 1 << 63;
/// `TDX_NON_RECOVERABLE`, bit 62 (`arch/x86/include/asm/tdx.h`).
pub const TDX_NON_RECOVERABLE: u64 = 1 << 62;
/// `TDX_SEAMCALL_STATUS_MASK`: the class part of a status
/// (`arch/x86/include/asm/shared/tdx_errno.h`).
pub const TDX_SEAMCALL_STATUS_MASK: u64 = 0xFFFF_FFFF_0000_0000;
/// Bits 31:0 of a status: the operand id for busy statuses.
pub const TDX_OPERAND_ID_MASK: u64 = 0xFFFF_FFFF;

/// `TDX_OPERAND_BUSY` class (`arch/x86/include/asm/shared/tdx_errno.h`).
pub const TDX_OPERAND_BUSY: u64 = 0x8000_0200_0000_0000;
/// `TDX_PREVIOUS_TLB_EPOCH_BUSY`: TDH.MEM.TRACK while vCPUs of the previous
/// epoch still run (`arch/x86/include/asm/shared/tdx_errno.h`).
pub const TDX_PREVIOUS_TLB_EPOCH_BUSY: u64 = 0x8000_0201_0000_0000;
/// `TDX_OPERAND_BUSY_HOST_PRIORITY`: a guest-side acquire lost to a host
/// priority bit (TDX module `tdx_locks.h`; not in Linux 7.2).
pub const TDX_OPERAND_BUSY_HOST_PRIORITY: u64 = 0x8000_0204_0000_0000;
/// `TDX_HOST_PRIORITY_BUSY_TIMEOUT`: the guest saw host priority for longer
/// than HP_LOCK_TIMEOUT and exits to the host (TDX module; not in Linux 7.2).
pub const TDX_HOST_PRIORITY_BUSY_TIMEOUT: u64 = 0x9000_0205_0000_0000;
/// `TDX_TLB_TRACKING_NOT_DONE`: TDH.MEM.PAGE.REMOVE before the blocking epoch
/// was tracked (TDX module; not in Linux 7.2).
pub const TDX_TLB_TRACKING_NOT_DONE: u64 = 0xC000_0B08_0000_0000;
/// `TDX_GPA_RANGE_NOT_BLOCKED`: TDH.MEM.PAGE.REMOVE of an entry that was not
/// blocked (TDX module; not in Linux 7.2).
pub const TDX_GPA_RANGE_NOT_BLOCKED: u64 = 0xC000_0B06_0000_0000;

/// `TDX_OPERAND_ID_RCX` (`arch/x86/include/asm/shared/tdx_errno.h`).
pub const TDX_OPERAND_ID_RCX: u32 = 0x01;
/// Operand id of RDX (the TDR page argument), from the TDX module.
pub const TDX_OPERAND_ID_RDX: u32 = 0x02;
/// Operand id of R8 (the target page argument), from the TDX module.
pub const TDX_OPERAND_ID_R8: u32 = 0x08;
/// `TDX_OPERAND_ID_TDR` (`arch/x86/include/asm/shared/tdx_errno.h`).
pub const TDX_OPERAND_ID_TDR: u32 = 0x80;
/// `TDX_OPERAND_ID_SEPT`: the TD's S-EPT tree lock
/// (`arch/x86/include/asm/shared/tdx_errno.h`).
pub const TDX_OPERAND_ID_SEPT: u32 = 0x92;
/// `TDX_OPERAND_ID_TD_EPOCH` (`arch/x86/include/asm/shared/tdx_errno.h`).
pub const TDX_OPERAND_ID_TD_EPOCH: u32 = 0xa9;
/// Operand id of the TD's op_state lock, from the TDX module.
pub const TDX_OPERAND_ID_OP_STATE: u32 = 0xac;

/// The operand a busy status names in bits 31:0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operand {
    /// The TD's S-EPT tree lock (0x92).
    Sept,
    /// RCX (0x01): the S-EPT entry lock, e.g. a guest's ACCEPT holds it.
    Rcx,
    /// RDX (0x02): the TDR page passed in RDX.
    Rdx,
    /// R8 (0x08): the target page's metadata.
    R8,
    /// The TDR page-metadata lock (0x80).
    Tdr,
    /// The TD epoch lock (0xa9).
    TdEpoch,
    /// The TD's op_state lock (0xac).
    OpState,
    /// Any other operand id.
    Other(u32),
}

impl Operand {
    /// Decodes an operand id (bits 31:0 of a status).
    pub const fn from_id(id: u32) -> Self {
        match id {
            TDX_OPERAND_ID_SEPT => Self::Sept,
            TDX_OPERAND_ID_RCX => Self::Rcx,
            TDX_OPERAND_ID_RDX => Self::Rdx,
            TDX_OPERAND_ID_R8 => Self::R8,
            TDX_OPERAND_ID_TDR => Self::Tdr,
            TDX_OPERAND_ID_TD_EPOCH => Self::TdEpoch,
            TDX_OPERAND_ID_OP_STATE => Self::OpState,
            other => Self::Other(other),
        }
    }

    /// The operand id as the TDX module encodes it.
    pub const fn id(self) -> u32 {
        match self {
            Self::Sept => TDX_OPERAND_ID_SEPT,
            Self::Rcx => TDX_OPERAND_ID_RCX,
            Self::Rdx => TDX_OPERAND_ID_RDX,
            Self::R8 => TDX_OPERAND_ID_R8,
            Self::Tdr => TDX_OPERAND_ID_TDR,
            Self::TdEpoch => TDX_OPERAND_ID_TD_EPOCH,
            Self::OpState => TDX_OPERAND_ID_OP_STATE,
            Self::Other(id) => id,
        }
    }

    /// Short snake_case name, used in counter names.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sept => "sept",
            Self::Rcx => "rcx",
            Self::Rdx => "rdx",
            Self::R8 => "r8",
            Self::Tdr => "tdr",
            Self::TdEpoch => "td_epoch",
            Self::OpState => "op_state",
            Self::Other(_) => "other",
        }
    }
}

/// What a status means, as far as the policy cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusKind {
    /// `TDX_SUCCESS`.
    Success,
    /// `TDX_OPERAND_BUSY` on the given operand.
    OperandBusy(Operand),
    /// `TDX_PREVIOUS_TLB_EPOCH_BUSY` (TDH.MEM.TRACK).
    PreviousTlbEpochBusy,
    /// `TDX_OPERAND_BUSY_HOST_PRIORITY` (guest side only).
    OperandBusyHostPriority,
    /// `TDX_HOST_PRIORITY_BUSY_TIMEOUT`.
    HostPriorityBusyTimeout,
    /// `TDX_TLB_TRACKING_NOT_DONE` (TDH.MEM.PAGE.REMOVE).
    TlbTrackingNotDone,
    /// `TDX_GPA_RANGE_NOT_BLOCKED` (TDH.MEM.PAGE.REMOVE).
    GpaRangeNotBlocked,
    /// Any other status with the error bit set.
    OtherError,
    /// Any other non-zero status without the error bit (a warning).
    OtherNonError,
}

/// A raw SEAMCALL status (RAX after the call).
///
/// ```
/// use tdx_sept_guard_policy::{Leaf, Operand, Status, StatusKind};
///
/// // An entry-lock collision with a guest's ACCEPT: operand RCX, still busy.
/// let st = Status::from_raw(0x8000_0200_0000_0001);
/// assert!(st.is_operand_busy());
/// assert_eq!(st.kind(), StatusKind::OperandBusy(Operand::Rcx));
/// assert!(st.is_busy_for(Leaf::MemPageAug));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status(u64);

impl Status {
    /// `TDX_SUCCESS`.
    pub const SUCCESS: Self = Self(TDX_SUCCESS);

    /// Wraps a raw status.
    pub const fn from_raw(raw: u64) -> Self {
        Self(raw)
    }

    /// A `TDX_OPERAND_BUSY` status naming `operand`.
    pub const fn operand_busy(operand: Operand) -> Self {
        Self(TDX_OPERAND_BUSY | operand.id() as u64)
    }

    /// The raw value.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// True for `TDX_SUCCESS` (exactly zero).
    pub const fn is_success(self) -> bool {
        self.0 == TDX_SUCCESS
    }

    /// True when the error bit (63) is set.
    pub const fn is_error(self) -> bool {
        self.0 & TDX_ERROR != 0
    }

    /// True when the non-recoverable bit (62) is set.
    pub const fn is_non_recoverable(self) -> bool {
        self.0 & TDX_NON_RECOVERABLE != 0
    }

    /// The class: bits 63:32 in place (`status & TDX_SEAMCALL_STATUS_MASK`).
    pub const fn class(self) -> u64 {
        self.0 & TDX_SEAMCALL_STATUS_MASK
    }

    /// The details field, bits 31:0 (the operand id for busy statuses).
    pub const fn operand_id(self) -> u32 {
        (self.0 & TDX_OPERAND_ID_MASK) as u32
    }

    /// The operand named in bits 31:0.
    pub const fn operand(self) -> Operand {
        Operand::from_id(self.operand_id())
    }

    /// KVM 7.2's `tdx_operand_busy()` (`arch/x86/kvm/vmx/tdx.c`): the class is
    /// `TDX_OPERAND_BUSY`, whatever the operand.
    pub const fn is_operand_busy(self) -> bool {
        self.class() == TDX_OPERAND_BUSY
    }

    /// Busy as this crate's policies retry it: [`Self::is_operand_busy`], and
    /// for TDH.MEM.TRACK also `TDX_PREVIOUS_TLB_EPOCH_BUSY`.
    pub const fn is_busy_for(self, leaf: Leaf) -> bool {
        self.is_operand_busy()
            || (matches!(leaf, Leaf::MemTrack) && self.class() == TDX_PREVIOUS_TLB_EPOCH_BUSY)
    }

    /// Decodes the status.
    pub const fn kind(self) -> StatusKind {
        if self.is_success() {
            return StatusKind::Success;
        }
        match self.class() {
            TDX_OPERAND_BUSY => StatusKind::OperandBusy(self.operand()),
            TDX_PREVIOUS_TLB_EPOCH_BUSY => StatusKind::PreviousTlbEpochBusy,
            TDX_OPERAND_BUSY_HOST_PRIORITY => StatusKind::OperandBusyHostPriority,
            TDX_HOST_PRIORITY_BUSY_TIMEOUT => StatusKind::HostPriorityBusyTimeout,
            TDX_TLB_TRACKING_NOT_DONE => StatusKind::TlbTrackingNotDone,
            TDX_GPA_RANGE_NOT_BLOCKED => StatusKind::GpaRangeNotBlocked,
            _ if self.is_error() => StatusKind::OtherError,
            _ => StatusKind::OtherNonError,
        }
    }
}

impl From<u64> for Status {
    fn from(raw: u64) -> Self {
        Self(raw)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#018x}", self.0)
    }
}

/// SEAMCALL leaf functions the policy deals with (`arch/x86/virt/vmx/tdx/tdx.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leaf {
    /// TDH.VP.ENTER (0).
    VpEnter,
    /// TDH.MEM.PAGE.ADD (2): add an initial page before the TD is finalised.
    MemPageAdd,
    /// TDH.MEM.SEPT.ADD (3): add an S-EPT page.
    MemSeptAdd,
    /// TDH.MEM.PAGE.AUG (6): add a pending page to a running TD.
    MemPageAug,
    /// TDH.MEM.RANGE.BLOCK (7).
    MemRangeBlock,
    /// TDH.MEM.PAGE.REMOVE (29).
    MemPageRemove,
    /// TDH.MEM.TRACK (38).
    MemTrack,
}

impl Leaf {
    /// Every leaf, in leaf-number order.
    pub const ALL: [Leaf; 7] = [
        Leaf::VpEnter,
        Leaf::MemPageAdd,
        Leaf::MemSeptAdd,
        Leaf::MemPageAug,
        Leaf::MemRangeBlock,
        Leaf::MemPageRemove,
        Leaf::MemTrack,
    ];

    /// The leaf number passed in RAX (`TDH_*` in `arch/x86/virt/vmx/tdx/tdx.h`).
    pub const fn number(self) -> u64 {
        match self {
            Self::VpEnter => 0,
            Self::MemPageAdd => 2,
            Self::MemSeptAdd => 3,
            Self::MemPageAug => 6,
            Self::MemRangeBlock => 7,
            Self::MemPageRemove => 29,
            Self::MemTrack => 38,
        }
    }

    /// The leaf with number `number`, if it is one of [`Self::ALL`].
    pub const fn from_number(number: u64) -> Option<Self> {
        match number {
            0 => Some(Self::VpEnter),
            2 => Some(Self::MemPageAdd),
            3 => Some(Self::MemSeptAdd),
            6 => Some(Self::MemPageAug),
            7 => Some(Self::MemRangeBlock),
            29 => Some(Self::MemPageRemove),
            38 => Some(Self::MemTrack),
            _ => None,
        }
    }

    /// Short snake_case name, used in counter names.
    pub const fn name(self) -> &'static str {
        match self {
            Self::VpEnter => "enter",
            Self::MemPageAdd => "page_add",
            Self::MemSeptAdd => "sept_add",
            Self::MemPageAug => "aug",
            Self::MemRangeBlock => "block",
            Self::MemPageRemove => "remove",
            Self::MemTrack => "track",
        }
    }

    /// True for the zap-path leaves KVM 7.2 runs under the write mmu_lock with
    /// one kick and one retry (`tdh_do_no_vcpus()`): BLOCK, TRACK and REMOVE.
    pub const fn is_unmap(self) -> bool {
        matches!(
            self,
            Self::MemRangeBlock | Self::MemPageRemove | Self::MemTrack
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_is_class_only_like_kvm() {
        for id in [0x92, 0x01, 0x02, 0x08, 0x80, 0xa9, 0xac, 0x1234, 0] {
            let st = Status::from_raw(TDX_OPERAND_BUSY | id);
            assert!(st.is_operand_busy());
            assert_eq!(st.operand_id(), id as u32);
        }
        assert!(!Status::from_raw(TDX_PREVIOUS_TLB_EPOCH_BUSY).is_operand_busy());
        assert!(!Status::from_raw(TDX_OPERAND_BUSY_HOST_PRIORITY).is_operand_busy());
        assert!(!Status::SUCCESS.is_operand_busy());
    }

    #[test]
    fn previous_epoch_busy_counts_only_for_track() {
        let st = Status::from_raw(TDX_PREVIOUS_TLB_EPOCH_BUSY);
        for leaf in Leaf::ALL {
            assert_eq!(st.is_busy_for(leaf), leaf == Leaf::MemTrack);
        }
    }

    #[test]
    fn operands_round_trip() {
        let named = [
            (Operand::Sept, 0x92),
            (Operand::Rcx, 0x01),
            (Operand::Rdx, 0x02),
            (Operand::R8, 0x08),
            (Operand::Tdr, 0x80),
            (Operand::TdEpoch, 0xa9),
            (Operand::OpState, 0xac),
        ];
        for (op, id) in named {
            assert_eq!(Operand::from_id(id), op);
            assert_eq!(op.id(), id);
            assert_eq!(
                Status::operand_busy(op).raw(),
                TDX_OPERAND_BUSY | u64::from(id)
            );
        }
        assert_eq!(Operand::from_id(0x55), Operand::Other(0x55));
    }

    #[test]
    fn kinds() {
        use StatusKind::*;
        let cases = [
            (0, Success),
            (0x8000_0200_0000_0092, OperandBusy(Operand::Sept)),
            (0x8000_0200_0000_0001, OperandBusy(Operand::Rcx)),
            (0x8000_0201_0000_0000, PreviousTlbEpochBusy),
            (0x8000_0204_0000_0000, OperandBusyHostPriority),
            (0x9000_0205_0000_0000, HostPriorityBusyTimeout),
            (0xC000_0B08_0000_0000, TlbTrackingNotDone),
            (0xC000_0B06_0000_0000, GpaRangeNotBlocked),
            (0xC000_0100_0000_0000, OtherError),
            (0x0000_0815_0000_0000, OtherNonError),
        ];
        for (raw, kind) in cases {
            assert_eq!(Status::from_raw(raw).kind(), kind, "{raw:#x}");
        }
    }

    #[test]
    fn bits() {
        let st = Status::from_raw(0x6000_0005_0000_0000);
        assert!(!st.is_error());
        assert!(st.is_non_recoverable());
        assert!(Status::from_raw(TDX_OPERAND_BUSY).is_error());
    }

    #[test]
    fn leaf_numbers_match_tdx_h() {
        let expect = [0, 2, 3, 6, 7, 29, 38];
        for (leaf, n) in Leaf::ALL.into_iter().zip(expect) {
            assert_eq!(leaf.number(), n);
            assert_eq!(Leaf::from_number(n), Some(leaf));
        }
        assert_eq!(Leaf::from_number(1), None);
    }

    #[test]
    fn unmap_leaves() {
        let unmap: [bool; 7] = Leaf::ALL.map(Leaf::is_unmap);
        assert_eq!(unmap, [false, false, false, false, true, true, true]);
    }

    #[test]
    fn display_is_hex() {
        use std::format;
        let s = format!("{}", Status::from_raw(TDX_OPERAND_BUSY | 0x92));
        assert_eq!(s, "0x8000020000000092");
    }
}
