// SPDX-License-Identifier: GPL-2.0

//! Runs one S-EPT operation under a [`Policy`].
//!
//! Every loop here is a `for` over a fixed budget: at most
//! [`Policy::max_seamcalls`] SEAMCALLs per operation, and the kick's wait is
//! bounded by the platform's deadline.

use super::counters::{CounterCell, Counters};
use super::events::{Events, NoEvents};
use super::gate::{EntryGate, KickGuard, KickTimeout, VcpuSet};
use super::op::{Seamcall, SeptOp};
use super::retry::{Policy, BLIND_RETRY_BUG_AT, BLIND_RETRY_WARN_AT};
use super::spte::{is_frozen_spte, FrozenSpte, SpteError};
use super::status::{Leaf, Status};
use super::sync::{Atomic64, Clock};

/// Why an operation ended in a VM bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmBugReason {
    /// Still busy after the vCPUs were kicked and held out: a TDX-module (or
    /// KVM) bug, since nothing should hold the lock any more.
    BusyAfterKick,
    /// Busy on every try and no kick was made (a budget of one try, or
    /// [`Policy::BlindRetry`] reaching its limit).
    RetriesExhausted,
    /// A kicked vCPU did not acknowledge in time.
    KickTimeout,
}

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `TDX_SUCCESS` after `tries` SEAMCALLs.
    Done {
        /// SEAMCALLs issued.
        tries: u32,
    },
    /// A status that is not busy (for this policy) and not success, passed
    /// through untouched.
    Error {
        /// The status.
        status: Status,
        /// SEAMCALLs issued.
        tries: u32,
    },
    /// Busy, handed back so the caller re-faults
    /// ([`Policy::Upstream72`] on a map leaf).
    Busy {
        /// The busy status.
        status: Status,
    },
    /// The caller must stop the VM (`KVM_BUG_ON`).
    VmBug {
        /// Why.
        reason: VmBugReason,
        /// The last status seen.
        status: Status,
        /// SEAMCALLs issued.
        tries: u32,
    },
}

impl Outcome {
    /// SEAMCALLs issued for the operation.
    pub const fn tries(self) -> u32 {
        match self {
            Self::Done { tries } | Self::Error { tries, .. } | Self::VmBug { tries, .. } => tries,
            Self::Busy { .. } => 1,
        }
    }
}

/// Runs S-EPT operations for one VM.
///
/// `E` observes its kicks and retries ([`Self::with_events`]); by default
/// nothing does.
pub struct Executor<'a, G: Atomic64, V: VcpuSet, C: CounterCell, K: Clock, E: Events = NoEvents> {
    policy: Policy,
    gate: &'a EntryGate<G>,
    vcpus: &'a V,
    counters: &'a Counters<C>,
    clock: &'a K,
    events: &'a E,
}

impl<'a, G: Atomic64, V: VcpuSet, C: CounterCell, K: Clock> Executor<'a, G, V, C, K> {
    /// An executor for the VM whose gate, vCPUs and counters are given,
    /// reporting no events.
    pub fn new(
        policy: Policy,
        gate: &'a EntryGate<G>,
        vcpus: &'a V,
        counters: &'a Counters<C>,
        clock: &'a K,
    ) -> Self {
        Self {
            policy,
            gate,
            vcpus,
            counters,
            clock,
            events: &NoEvents,
        }
    }
}

impl<'a, G: Atomic64, V: VcpuSet, C: CounterCell, K: Clock, E: Events> Executor<'a, G, V, C, K, E> {
    /// The same executor, reporting its kicks and retries to `events`.
    pub fn with_events<F: Events>(self, events: &'a F) -> Executor<'a, G, V, C, K, F> {
        Executor {
            policy: self.policy,
            gate: self.gate,
            vcpus: self.vcpus,
            counters: self.counters,
            clock: self.clock,
            events,
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Runs `op` through `seamcall` under the policy.
    ///
    /// For entry-level operations the caller holds the SPTE frozen for the
    /// whole call (see [`Self::run_on_spte`]); TDH.MEM.TRACK has no entry.
    pub fn run<S: Seamcall>(&self, op: &SeptOp, seamcall: &mut S) -> Outcome {
        self.counters.ops.add(1);
        let outcome = match self.policy {
            Policy::KickAndRetry { max_tries } => {
                self.retry_with_kicks(op, seamcall, max_tries.get(), Status::is_busy_for)
            }
            Policy::BlindRetry => self.blind_retry(op, seamcall),
            Policy::Upstream72 if op.leaf.is_unmap() => {
                self.retry_with_kicks(op, seamcall, 2, upstream_busy)
            }
            Policy::Upstream72 => self.upstream72_map(op, seamcall),
        };
        self.count_outcome(outcome);
        outcome
    }

    /// Freezes `spte` (which must hold `old`), runs `op`, and unfreezes it to
    /// `new` on [`Outcome::Done`] or back to `old` otherwise.
    ///
    /// The SPTE stays frozen across the SEAMCALLs and any kick, so no other
    /// host task can take the S-EPT entry in between. Fails without running
    /// anything if the SPTE is contended or `old`/`new` is `FROZEN_SPTE`.
    pub fn run_on_spte<A: Atomic64, S: Seamcall>(
        &self,
        spte: &A,
        old: u64,
        new: u64,
        op: &SeptOp,
        seamcall: &mut S,
    ) -> Result<Outcome, SpteError> {
        if is_frozen_spte(new) {
            return Err(SpteError::FrozenValue);
        }
        let frozen = FrozenSpte::freeze(spte, old).inspect_err(|e| {
            if let SpteError::Contended { .. } = e {
                self.counters.freeze_contended.add(1);
            }
        })?;
        let outcome = self.run(op, seamcall);
        match outcome {
            Outcome::Done { .. } => frozen.commit(new)?,
            _ => frozen.restore(),
        }
        Ok(outcome)
    }

    /// Raises the gate and kicks every vCPU in guest mode, for callers that
    /// need the vCPUs out without a busy status: the zero-step response, and
    /// the kick after a successful TDH.MEM.TRACK that lets REMOVE proceed.
    ///
    /// The gate stays up until the returned guard drops.
    pub fn kick_and_wait(&self) -> Result<KickGuard<'a, G>, KickTimeout> {
        let guard = KickGuard::raise(self.gate);
        self.kick(&guard, false)?;
        Ok(guard)
    }

    /// Try; on busy raise the gate (once), kick and retry, up to `max_tries`
    /// SEAMCALLs. A gate raised here comes down when the operation ends,
    /// and how long it was up is reported ([`Events::gate`]).
    fn retry_with_kicks<S: Seamcall>(
        &self,
        op: &SeptOp,
        seamcall: &mut S,
        max_tries: u32,
        is_busy: fn(Status, Leaf) -> bool,
    ) -> Outcome {
        let mut gate = None;
        let outcome = self.tries_with_kicks(op, seamcall, max_tries, is_busy, &mut gate);
        if let Some((guard, raised_ns)) = gate {
            drop(guard);
            let held = self.clock.now_ns().saturating_sub(raised_ns);
            self.events.gate(held);
        }
        outcome
    }

    /// [`Self::retry_with_kicks`]'s tries; `gate` receives the gate it
    /// raises, with the time it did.
    fn tries_with_kicks<S: Seamcall>(
        &self,
        op: &SeptOp,
        seamcall: &mut S,
        max_tries: u32,
        is_busy: fn(Status, Leaf) -> bool,
        gate: &mut Option<(KickGuard<'a, G>, u64)>,
    ) -> Outcome {
        let mut status = Status::SUCCESS;
        for tries in 1..=max_tries {
            status = self.issue(op, seamcall, tries);
            if !is_busy(status, op.leaf) {
                return finished(status, tries);
            }
            if tries < max_tries {
                let injected = seamcall.injected();
                let (held, _) =
                    gate.get_or_insert_with(|| (KickGuard::raise(self.gate), self.clock.now_ns()));
                if self.kick(held, injected).is_err() {
                    return Outcome::VmBug {
                        reason: VmBugReason::KickTimeout,
                        status,
                        tries,
                    };
                }
                self.counters.retries.add(1);
                self.events.retry(op, status, tries, injected);
            }
        }
        let reason = match gate {
            Some(_) => VmBugReason::BusyAfterKick,
            None => VmBugReason::RetriesExhausted,
        };
        Outcome::VmBug {
            reason,
            status,
            tries: max_tries,
        }
    }

    /// The LKML thread's loop: retry at once, warn at 16, 32, ... and give up
    /// at [`BLIND_RETRY_BUG_AT`].
    fn blind_retry<S: Seamcall>(&self, op: &SeptOp, seamcall: &mut S) -> Outcome {
        let mut status = Status::SUCCESS;
        for tries in 1..=BLIND_RETRY_BUG_AT {
            status = self.issue(op, seamcall, tries);
            if !status.is_busy_for(op.leaf) {
                return finished(status, tries);
            }
            if tries >= BLIND_RETRY_WARN_AT && tries.is_power_of_two() {
                self.counters.retry_warnings.add(1);
            }
            if tries < BLIND_RETRY_BUG_AT {
                self.counters.retries.add(1);
                self.events.retry(op, status, tries, seamcall.injected());
            }
        }
        Outcome::VmBug {
            reason: VmBugReason::RetriesExhausted,
            status,
            tries: BLIND_RETRY_BUG_AT,
        }
    }

    /// KVM 7.2's map path: one try; busy goes back to the caller.
    fn upstream72_map<S: Seamcall>(&self, op: &SeptOp, seamcall: &mut S) -> Outcome {
        let status = self.issue(op, seamcall, 1);
        if status.is_operand_busy() {
            return Outcome::Busy { status };
        }
        finished(status, 1)
    }

    /// Issues try `tries` of `op` (1: the first) and counts it: as a
    /// SEAMCALL, or, when the platform made its status up
    /// ([`Seamcall::injected`]), as an injected status of a first try or of
    /// a retry.
    fn issue<S: Seamcall>(&self, op: &SeptOp, seamcall: &mut S, tries: u32) -> Status {
        let status = seamcall.seamcall(op);
        if seamcall.injected() {
            match tries {
                1 => self.counters.injected_busy.add(1),
                _ => self.counters.injected_retry_busy.add(1),
            }
            return status;
        }
        self.counters.seamcalls.add(1);
        if status.is_busy_for(op.leaf) {
            self.counters.count_busy(op.leaf, status);
        }
        status
    }

    /// Kicks under an already raised gate, counts it and reports it;
    /// `injected`: for a busy status the platform made up.
    fn kick(&self, guard: &KickGuard<'a, G>, injected: bool) -> Result<(), KickTimeout> {
        self.counters.kicks.add(1);
        let start = self.clock.now_ns();
        let (kicked, result) = guard.kick_counted(self.vcpus);
        let waited = self.clock.now_ns().saturating_sub(start);
        self.counters.gate_wait_ns.add(waited);
        self.events.kick(kicked, waited, result.is_ok(), injected);
        match result {
            Ok(()) => {
                self.counters.vcpus_kicked.add(kicked as u64);
                Ok(())
            }
            Err(timeout) => {
                self.counters.kick_timeouts.add(1);
                Err(timeout)
            }
        }
    }

    fn count_outcome(&self, outcome: Outcome) {
        let cell = match outcome {
            Outcome::Done { tries } if tries > 1 => &self.counters.retry_successes,
            Outcome::Done { .. } => return,
            Outcome::Error { .. } => &self.counters.errors,
            Outcome::Busy { .. } => &self.counters.busy_returned,
            Outcome::VmBug { .. } => &self.counters.vm_bugs,
        };
        cell.add(1);
    }
}

/// KVM 7.2's busy test for its unmap retry: `tdx_operand_busy()` only.
fn upstream_busy(status: Status, _leaf: Leaf) -> bool {
    status.is_operand_busy()
}

fn finished(status: Status, tries: u32) -> Outcome {
    if status.is_success() {
        Outcome::Done { tries }
    } else {
        Outcome::Error { status, tries }
    }
}
