// SPDX-License-Identifier: GPL-2.0

//! An S-EPT operation and the SEAMCALL issuer.

use super::status::{Leaf, Status};

/// One S-EPT SEAMCALL to run: the leaf and the GPA and level it acts on.
///
/// TDH.MEM.TRACK is VM-wide: its `gpa` and `level` are ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeptOp {
    /// The SEAMCALL leaf.
    pub leaf: Leaf,
    /// The guest physical address.
    pub gpa: u64,
    /// The S-EPT level, as KVM's `enum pg_level` (1 = 4K, 2 = 2M, ...).
    pub level: u8,
}

impl SeptOp {
    /// An operation on a 4K page (`PG_LEVEL_4K`).
    pub const fn new_4k(leaf: Leaf, gpa: u64) -> Self {
        Self {
            leaf,
            gpa,
            level: 1,
        }
    }
}

/// Issues SEAMCALLs. The platform keeps whatever else the call needs (the TD,
/// the target page, output registers) in `self`.
pub trait Seamcall {
    /// Issues `op` once and returns the raw TDX status.
    fn seamcall(&mut self, op: &SeptOp) -> Status;
}
