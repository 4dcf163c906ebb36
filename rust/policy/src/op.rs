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

    /// Whether the status the last [`Self::seamcall`] returned was made up
    /// by the platform's fault injection instead of issued (the kernel
    /// module's `fail_map_busy` and `fail_retry_busy`). The executor counts
    /// such a status apart (`injected_busy`, `injected_retry_busy`), not as
    /// a SEAMCALL or a busy of its leaf, and reports it with the kick and
    /// retry that answer it. Where the decision to inject is made is the
    /// platform's business; by default nothing is injected.
    fn injected(&self) -> bool {
        false
    }
}
