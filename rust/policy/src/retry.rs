// SPDX-License-Identifier: GPL-2.0

//! Which retry policy the executor follows.
//!
//! (Named `retry` rather than `policy`: the kernel module includes this crate
//! as `mod policy`, and `policy::policy` trips `clippy::module_inception`.)

use core::fmt;

use super::status::Leaf;

/// The retry policies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// The default: try; on busy, kick the vCPUs with the SPTE still frozen
    /// and the gate up, and retry, up to `max_tries` SEAMCALLs in all (2 by
    /// default: "one try that guarantees no other host task is accessing the
    /// S-EPT entry, and a second try after blasting IPI to kick vCPUs"). A busy
    /// last try, or a kick that times out, is a VM bug.
    KickAndRetry {
        /// The SEAMCALL budget for one operation.
        max_tries: MaxTries,
    },
    /// Baseline: the blind retry loop proposed in the LKML thread, with no
    /// kick. Warns (counts `retry_warnings`) at try 16 and each doubling up to
    /// [`BLIND_RETRY_BUG_AT`], where it gives up with a VM bug.
    BlindRetry,
    /// Baseline: what KVM 7.2 does (`arch/x86/kvm/vmx/tdx.c`). Unmap leaves
    /// (BLOCK, TRACK, REMOVE, see [`Leaf::is_unmap`]) get one kick and one
    /// retry (`tdh_do_no_vcpus()`); map leaves return busy once (`-EBUSY`,
    /// `RET_PF_RETRY`) and the caller's fault handler runs the fault again:
    /// KVM's `tdx_handle_ept_violation()` does so locally, without
    /// re-entering the guest, until the fault is resolved, an event or
    /// signal is pending or the VM is dead. Busy is `tdx_operand_busy()`
    /// only.
    Upstream72,
}

/// First try at which [`Policy::BlindRetry`] warns (`static u32 max = 16`).
pub const BLIND_RETRY_WARN_AT: u32 = 16;
/// Try at which [`Policy::BlindRetry`] gives up (`KVM_BUG_ON(retry == 1024)`).
pub const BLIND_RETRY_BUG_AT: u32 = 1024;

impl Policy {
    /// The default policy: [`Policy::KickAndRetry`] with [`MaxTries::DEFAULT`].
    pub const DEFAULT: Self = Self::KickAndRetry {
        max_tries: MaxTries::DEFAULT,
    };

    /// The policy's name: `kick_and_retry`, `blind_retry` or `upstream72`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::KickAndRetry { .. } => "kick_and_retry",
            Self::BlindRetry => "blind_retry",
            Self::Upstream72 => "upstream72",
        }
    }

    /// Parses a name as given by [`Self::name`]; `kick_and_retry` gets
    /// [`MaxTries::DEFAULT`].
    pub fn from_name(name: &str) -> Result<Self, PolicyError> {
        match name {
            "kick_and_retry" => Ok(Self::DEFAULT),
            "blind_retry" => Ok(Self::BlindRetry),
            "upstream72" => Ok(Self::Upstream72),
            _ => Err(PolicyError::UnknownName),
        }
    }

    /// Whether the vCPU acts on the zero-step detector's
    /// [`KickAndWait`](super::zero_step::ZeroStepVerdict::KickAndWait)
    /// verdict. Only [`Policy::KickAndRetry`] does: KVM 7.2 has no such
    /// response (its fault handler retries locally and a busy TDH.VP.ENTER
    /// just enters again), and neither has the LKML loop.
    pub const fn kicks_on_zero_step(self) -> bool {
        matches!(self, Self::KickAndRetry { .. })
    }

    /// The most SEAMCALLs one operation on `leaf` may issue.
    pub const fn max_seamcalls(self, leaf: Leaf) -> u32 {
        match self {
            Self::KickAndRetry { max_tries } => max_tries.get(),
            Self::BlindRetry => BLIND_RETRY_BUG_AT,
            Self::Upstream72 if leaf.is_unmap() => 2,
            Self::Upstream72 => 1,
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A validated SEAMCALL budget for [`Policy::KickAndRetry`]:
/// `MaxTries::MIN..=MaxTries::MAX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxTries(u32);

impl MaxTries {
    /// The smallest budget: one try, no retry.
    pub const MIN: u32 = 1;
    /// The largest budget. Each SEAMCALL is slow and the kick already makes
    /// the second try succeed, so more than a few tries only hides bugs and
    /// stretches scheduling/RCU latency; 8 leaves room for experiments.
    pub const MAX: u32 = 8;
    /// The default: two tries.
    pub const DEFAULT: Self = Self(2);

    /// Validates `tries`; out-of-range values are rejected, not clamped.
    pub const fn new(tries: u32) -> Result<Self, PolicyError> {
        if tries < Self::MIN || tries > Self::MAX {
            return Err(PolicyError::MaxTriesOutOfRange { requested: tries });
        }
        Ok(Self(tries))
    }

    /// The budget.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl Default for MaxTries {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// An invalid policy setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyError {
    /// `max_tries` outside `MaxTries::MIN..=MaxTries::MAX`.
    MaxTriesOutOfRange {
        /// The rejected value.
        requested: u32,
    },
    /// Not a policy name.
    UnknownName,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MaxTriesOutOfRange { requested } => write!(
                f,
                "max_tries {requested} outside {}..={}",
                MaxTries::MIN,
                MaxTries::MAX
            ),
            Self::UnknownName => f.write_str("unknown policy name"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_tries_rejects_out_of_range() {
        assert_eq!(
            MaxTries::new(0),
            Err(PolicyError::MaxTriesOutOfRange { requested: 0 })
        );
        assert_eq!(
            MaxTries::new(9),
            Err(PolicyError::MaxTriesOutOfRange { requested: 9 })
        );
        assert!(MaxTries::new(u32::MAX).is_err());
        for n in 1..=8 {
            assert_eq!(MaxTries::new(n).map(MaxTries::get), Ok(n));
        }
    }

    #[test]
    fn default_is_kick_and_retry_twice() {
        assert_eq!(
            Policy::default(),
            Policy::KickAndRetry {
                max_tries: MaxTries::new(2).unwrap()
            }
        );
    }

    #[test]
    fn names_round_trip() {
        for p in [Policy::DEFAULT, Policy::BlindRetry, Policy::Upstream72] {
            assert_eq!(Policy::from_name(p.name()), Ok(p));
        }
        assert_eq!(Policy::from_name("x"), Err(PolicyError::UnknownName));
    }

    #[test]
    fn only_kick_and_retry_acts_on_zero_step() {
        assert!(Policy::DEFAULT.kicks_on_zero_step());
        assert!(!Policy::BlindRetry.kicks_on_zero_step());
        assert!(!Policy::Upstream72.kicks_on_zero_step());
    }

    #[test]
    fn seamcall_budgets() {
        assert_eq!(Policy::DEFAULT.max_seamcalls(Leaf::MemPageAug), 2);
        assert_eq!(Policy::BlindRetry.max_seamcalls(Leaf::MemPageAug), 1024);
        assert_eq!(Policy::Upstream72.max_seamcalls(Leaf::MemPageAug), 1);
        assert_eq!(Policy::Upstream72.max_seamcalls(Leaf::MemSeptAdd), 1);
        assert_eq!(Policy::Upstream72.max_seamcalls(Leaf::MemRangeBlock), 2);
        assert_eq!(Policy::Upstream72.max_seamcalls(Leaf::MemTrack), 2);
        assert_eq!(Policy::Upstream72.max_seamcalls(Leaf::MemPageRemove), 2);
    }
}
