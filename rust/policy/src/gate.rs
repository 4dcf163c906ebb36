// SPDX-License-Identifier: GPL-2.0

//! The per-VM entry gate and the vCPU kick.
//!
//! A kicker (a host task whose SEAMCALL came back busy) raises the gate, makes
//! every vCPU that is in guest mode leave it, and waits for their
//! acknowledgements. While the gate is up no vCPU enters the guest, so nothing
//! on the guest side holds a TDX-module lock and the retried SEAMCALL succeeds.
//! The gate is a counter, not a flag: in the map path faults run concurrently
//! under the shared mmu_lock, so several kickers may hold it at once.
//!
//! # Protocol
//!
//! - vCPU, before each entry with interrupts disabled ([`vcpu_try_enter`]):
//!   `W: mode.xchg(IN_GUEST_MODE)`, then `R: gate.fetch_add(0)`. If `R` sees
//!   the gate up, store `OUTSIDE_GUEST_MODE` and do not enter.
//!   After the guest section, [`vcpu_exit`] stores `OUTSIDE_GUEST_MODE`
//!   (release), and only then can the vCPU's CPU take the kick IPI and ack it.
//! - Kicker ([`KickGuard::raise`], [`KickGuard::kick`]):
//!   `G: gate.fetch_add(1)`, then for each vCPU `M: mode.fetch_add(0)`; IPI
//!   those not `OUTSIDE_GUEST_MODE` and wait for their acks; retry the
//!   SEAMCALL; `L: gate.fetch_sub(1)` when the guard drops, on every path.
//!
//! # Why no vCPU is in guest mode between "all acked" and `L`
//!
//! It is the Dekker (store-buffering) pair: the kicker writes the gate then
//! reads the mode, the vCPU writes the mode then reads the gate, so at least
//! one of them sees the other's write. All four accesses are read-modify-writes,
//! and an RMW always reads the value immediately before it in the location's
//! modification order; with acquire+release RMWs that is enough:
//!
//! 1. If `R` is after `G` in the gate's modification order and before `L`, it
//!    reads a count of at least one and the vCPU refuses to enter.
//! 2. Otherwise, for an entry that overlaps the kick, `R` is before `G`. The
//!    gate is only ever changed by RMWs, so `G` reads from a release sequence
//!    headed by `R`: `R` synchronises with `G`, hence `W` happens before `M`
//!    and `M` reads `IN_GUEST_MODE` or a later value. Either the kicker sees
//!    the vCPU in guest mode and waits for its ack (sent after `vcpu_exit`),
//!    or `M` reads the `OUTSIDE_GUEST_MODE` of an exit that already happened.
//! 3. A kick's delivery happens after `G` (the IPI is sent after `M`), and the
//!    ack happens before the vCPU's next `W`, `R`; so that `R` is after `G` and
//!    case 1 applies until `L`.
//!
//! Why RMWs and not `smp_mb()` plus plain loads: in the kernel both work (the
//! fully ordered `xchg` and `fetch_add` imply `smp_mb()`), but loom treats
//! `SeqCst` loads and stores as `AcqRel` (loom 0.7 README, "Unsupported
//! features") and models `fence(SeqCst)` as a global causality join, stronger
//! than C11. RMWs are modelled exactly, so the loom test checks the very
//! protocol the kernel runs. The price is a locked RMW on the per-VM gate
//! cache line on each vCPU entry.

use super::sync::Atomic64;

/// KVM's `OUTSIDE_GUEST_MODE` (`include/linux/kvm_host.h`).
pub const OUTSIDE_GUEST_MODE: u64 = 0;
/// KVM's `IN_GUEST_MODE`.
pub const IN_GUEST_MODE: u64 = 1;
/// KVM's `EXITING_GUEST_MODE`: still in guest mode, an exit has been asked for.
pub const EXITING_GUEST_MODE: u64 = 2;

/// The per-VM entry gate: the number of kickers that currently hold it up.
pub struct EntryGate<A: Atomic64> {
    raised: A,
}

impl<A: Atomic64> EntryGate<A> {
    /// Wraps a cell that must hold 0.
    pub const fn new(cell: A) -> Self {
        Self { raised: cell }
    }

    /// How many kickers hold the gate up (acquire load; for diagnostics).
    pub fn raised_count(&self) -> u64 {
        self.raised.load_acquire()
    }

    /// True if any kicker holds the gate up (acquire load; for diagnostics).
    pub fn is_raised(&self) -> bool {
        self.raised_count() != 0
    }
}

/// [`vcpu_try_enter`] found the gate up; the vCPU is back outside guest mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GateRaised;

/// Publishes `IN_GUEST_MODE` and checks the gate; call with interrupts
/// disabled, right before entering the guest.
///
/// On `Err(GateRaised)` the vCPU is `OUTSIDE_GUEST_MODE` again and must not
/// enter: it should enable interrupts (so pending kicks are acknowledged) and
/// try again later.
pub fn vcpu_try_enter<G: Atomic64, M: Atomic64>(
    gate: &EntryGate<G>,
    mode: &M,
) -> Result<(), GateRaised> {
    mode.xchg(IN_GUEST_MODE);
    // A fully ordered read: see the module documentation.
    if gate.raised.fetch_add(0) != 0 {
        mode.store_release(OUTSIDE_GUEST_MODE);
        return Err(GateRaised);
    }
    Ok(())
}

/// Marks the vCPU outside guest mode after the guest section (release store,
/// like KVM's `smp_store_release(&vcpu->mode, OUTSIDE_GUEST_MODE)`).
pub fn vcpu_exit<M: Atomic64>(mode: &M) {
    mode.store_release(OUTSIDE_GUEST_MODE);
}

/// Some kicked vCPU did not acknowledge before the platform's deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KickTimeout;

/// The VM's vCPUs, as the kicker needs them.
///
/// Kicking is two-phase so that no allocation is needed: the kicker reads each
/// mode and calls [`Self::send_kick`] for those in guest mode, recording them
/// in a per-kick [`Self::Kick`] value, then hands that to
/// [`Self::wait_for_acks`].
pub trait VcpuSet {
    /// The cell holding a vCPU's mode (`OUTSIDE_GUEST_MODE`, ...).
    type Mode: Atomic64;
    /// Per-kick state, e.g. a CPU mask on the kicker's stack.
    type Kick;

    /// The number of vCPUs; read after the gate is raised.
    fn nr_vcpus(&self) -> usize;
    /// vCPU `i`'s mode cell, for every `i < nr_vcpus()`.
    fn mode(&self, i: usize) -> &Self::Mode;
    /// Starts a kick.
    fn begin_kick(&self) -> Self::Kick;
    /// Sends (or records) an IPI to vCPU `i`, which was seen in guest mode.
    fn send_kick(&self, kick: &mut Self::Kick, i: usize);
    /// Waits until every kicked vCPU has acknowledged, i.e. has left guest
    /// mode and taken the IPI. Must be bounded by a deadline: it returns
    /// [`KickTimeout`] rather than hang.
    fn wait_for_acks(&self, kick: Self::Kick) -> Result<(), KickTimeout>;
}

/// Holds the gate up; dropping it lowers the gate, on every path.
#[must_use = "dropping the guard lowers the gate at once"]
pub struct KickGuard<'a, G: Atomic64> {
    gate: &'a EntryGate<G>,
}

impl<'a, G: Atomic64> KickGuard<'a, G> {
    /// Raises the gate (`G`: fully ordered `fetch_add(1)`).
    pub fn raise(gate: &'a EntryGate<G>) -> Self {
        gate.raised.fetch_add(1);
        Self { gate }
    }

    /// Makes every vCPU in guest mode leave it and waits for the acks.
    ///
    /// Reads each mode with a fully ordered RMW (`M`), after the raise that
    /// created this guard (`G`), and kicks every vCPU not
    /// `OUTSIDE_GUEST_MODE`. Returns how many were kicked. On `Ok`, and until
    /// the guard drops, no vCPU is in guest mode.
    pub fn kick<V: VcpuSet>(&self, vcpus: &V) -> Result<usize, KickTimeout> {
        let mut kick = vcpus.begin_kick();
        let mut kicked = 0;
        for i in 0..vcpus.nr_vcpus() {
            if vcpus.mode(i).fetch_add(0) != OUTSIDE_GUEST_MODE {
                vcpus.send_kick(&mut kick, i);
                kicked += 1;
            }
        }
        vcpus.wait_for_acks(kick).map(|()| kicked)
    }
}

impl<G: Atomic64> Drop for KickGuard<'_, G> {
    fn drop(&mut self) {
        self.gate.raised.fetch_sub(1);
    }
}
