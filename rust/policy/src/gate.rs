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
//! The vCPU's mode is KVM's `int mode` in `struct kvm_vcpu` (an [`Atomic32`]),
//! and both sides use KVM's own accessors of it:
//!
//! - vCPU, before each entry with interrupts disabled ([`vcpu_try_enter`]):
//!   `W: mode.xchg(IN_GUEST_MODE)` (KVM's `smp_store_mb(vcpu->mode,
//!   IN_GUEST_MODE)`, an `xchg` on x86), then `R: gate.fetch_add(0)`. If `R`
//!   sees the gate up, store `OUTSIDE_GUEST_MODE` and do not enter.
//!   After the guest section, [`vcpu_exit`] stores `OUTSIDE_GUEST_MODE`
//!   (KVM's `smp_store_release()`), and only then can the vCPU's CPU take the
//!   kick IPI and ack it.
//! - Kicker ([`KickGuard::raise`], [`KickGuard::kick`]):
//!   `G: gate.fetch_add(1)`, then for each vCPU
//!   `M`: [`VcpuSet::exiting_guest_mode`], which is KVM's
//!   `kvm_vcpu_exiting_guest_mode()`: `smp_mb__before_atomic();
//!   cmpxchg(&vcpu->mode, IN_GUEST_MODE, EXITING_GUEST_MODE)`, returning the
//!   old mode. IPI every vCPU whose old mode is not `OUTSIDE_GUEST_MODE` and
//!   wait for their acks (KVM's `kvm_request_needs_ipi()` decides the same way
//!   for a request that waits: `EXITING_GUEST_MODE` means another kicker got
//!   there first but the vCPU may still be in the guest); retry the SEAMCALL;
//!   `L: gate.fetch_sub(1)` when the guard drops, on every path.
//!
//! # Why no vCPU is in guest mode between "all acked" and `L`
//!
//! It is the Dekker (store-buffering) pair: the kicker writes the gate then
//! reads the mode, the vCPU writes the mode then reads the gate, so at least
//! one of them sees the other's write.
//!
//! `W`, `R`, `G` and `L` are fully ordered read-modify-writes, and an RMW
//! always reads the value immediately before it in its location's
//! modification order. `M` is a `cmpxchg`, an RMW only when it succeeds: when
//! the old mode is not `IN_GUEST_MODE` it stores nothing and is only a read,
//! which C11 does not oblige to read the latest value and the LKMM does not
//! order (see [`super::sync`]). The argument does not need either: all it asks
//! of `M` is to read the mode after `G`, and `G`, fully ordered, orders
//! everything after it (in C11 terms the happens-before below runs through
//! `G`'s acquire and program order). With acquire+release RMWs for the other
//! four that is enough:
//!
//! 1. If `R` is after `G` in the gate's modification order and before `L`, it
//!    reads a count of at least one and the vCPU refuses to enter.
//! 2. Otherwise, for an entry that overlaps the kick, `R` is before `G`. The
//!    gate is only ever changed by RMWs, so `G` reads from a release sequence
//!    headed by `R`: `R` synchronises with `G`, hence `W` happens before `M`
//!    and, by coherence, `M` reads `W`'s `IN_GUEST_MODE` or a later value,
//!    whether or not it stores. `IN_GUEST_MODE` (which it turns into
//!    `EXITING_GUEST_MODE`) or another kicker's `EXITING_GUEST_MODE`: the
//!    kicker kicks the vCPU and waits for its ack (sent after `vcpu_exit`).
//!    `OUTSIDE_GUEST_MODE`: that of an exit that already happened (or of this
//!    very refusal), and the vCPU's next `W` is later in the mode's
//!    modification order, so it does not happen before `M` and its `R` is not
//!    before `G`: case 1.
//! 3. A kick's delivery happens after `G` (the IPI is sent after `M`), and the
//!    ack happens before the vCPU's next `W`, `R`; so that `R` is after `G` and
//!    case 1 applies until `L`.
//!
//! `M`'s own full ordering (KVM's `smp_mb__before_atomic()`) is there for
//! KVM's requests, written before the kick and read by the vCPU after `W`; the
//! gate needs only `G`'s. [`exiting_guest_mode`] still asks for it, so that
//! the platform's helper keeps KVM's contract.
//!
//! Why RMWs for `W`, `R`, `G` and `L`, and not `smp_mb()` plus plain accesses:
//! in the kernel both work (the fully ordered `xchg` and `fetch_add` imply
//! `smp_mb()`), but loom treats `SeqCst` loads and stores as `AcqRel` (loom
//! 0.7 README, "Unsupported features") and models `fence(SeqCst)` as a global
//! causality join, stronger than C11. RMWs are modelled exactly, so the loom
//! test checks the very protocol the kernel runs. The price is a locked RMW on
//! the per-VM gate cache line on each vCPU entry. Loom models a failed
//! `compare_exchange` as reading the newest value, which is stronger than
//! C11; so `tests/loom.rs` also checks a kicker whose `M` is a relaxed load,
//! free to read any value coherence allows, to show that case 2 does not lean
//! on that.

use super::sync::{Atomic32, Atomic64};

/// KVM's `OUTSIDE_GUEST_MODE` (`include/linux/kvm_host.h`).
pub const OUTSIDE_GUEST_MODE: u32 = 0;
/// KVM's `IN_GUEST_MODE`.
pub const IN_GUEST_MODE: u32 = 1;
/// KVM's `EXITING_GUEST_MODE`: still in guest mode, an exit has been asked for.
pub const EXITING_GUEST_MODE: u32 = 2;
/// KVM's `READING_SHADOW_PAGE_TABLES`: outside the guest but in a lockless
/// walk of the shadow page tables (x86 `walk_shadow_page_lockless_begin()`),
/// which a waiting kick also waits out. Never set by this crate.
pub const READING_SHADOW_PAGE_TABLES: u32 = 3;

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
/// `W`: `mode.xchg(IN_GUEST_MODE)` (KVM's `smp_store_mb()`), then `R`: a
/// fully ordered read of the gate. On `Err(GateRaised)` the vCPU is
/// `OUTSIDE_GUEST_MODE` again and must not enter: it should enable interrupts
/// (so pending kicks are acknowledged) and try again later.
pub fn vcpu_try_enter<G: Atomic64, M: Atomic32>(
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
pub fn vcpu_exit<M: Atomic32>(mode: &M) {
    mode.store_release(OUTSIDE_GUEST_MODE);
}

/// KVM's `kvm_vcpu_exiting_guest_mode()` over a mode cell the platform owns:
/// `cmpxchg(IN_GUEST_MODE, EXITING_GUEST_MODE)`, fully ordered on both
/// outcomes (as [`Atomic32::cmpxchg`] requires), returning the old mode.
///
/// For [`VcpuSet::exiting_guest_mode`] implementations that hold the mode
/// themselves (the simulator, the tests); a platform over real KVM vCPUs calls
/// KVM's helper instead.
pub fn exiting_guest_mode<M: Atomic32>(mode: &M) -> u32 {
    match mode.cmpxchg(IN_GUEST_MODE, EXITING_GUEST_MODE) {
        Ok(old) | Err(old) => old,
    }
}

/// Some kicked vCPU did not acknowledge before the platform's deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KickTimeout;

/// The VM's vCPUs, as the kicker needs them.
///
/// Kicking is two-phase so that no allocation is needed: the kicker calls
/// [`Self::exiting_guest_mode`] for each vCPU and [`Self::send_kick`] for those
/// not outside guest mode, recording them in a per-kick [`Self::Kick`] value,
/// then hands that to [`Self::wait_for_acks`].
pub trait VcpuSet {
    /// Per-kick state, e.g. a CPU mask on the kicker's stack.
    type Kick;

    /// The number of vCPUs; read after the gate is raised.
    fn nr_vcpus(&self) -> usize;
    /// KVM's `kvm_vcpu_exiting_guest_mode()` on vCPU `i`, for every
    /// `i < nr_vcpus()`: a `cmpxchg` of its mode from `IN_GUEST_MODE` to
    /// `EXITING_GUEST_MODE` that is fully ordered whether or not it stores,
    /// returning the old mode (`OUTSIDE_GUEST_MODE`, `IN_GUEST_MODE`,
    /// `EXITING_GUEST_MODE` or `READING_SHADOW_PAGE_TABLES`).
    ///
    /// [`exiting_guest_mode`] implements it over an [`Atomic32`].
    fn exiting_guest_mode(&self, i: usize) -> u32;
    /// Starts a kick.
    fn begin_kick(&self) -> Self::Kick;
    /// Sends (or records) an IPI to vCPU `i`, which was seen not outside guest
    /// mode.
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
    /// After the raise that created this guard (`G`), calls
    /// [`VcpuSet::exiting_guest_mode`] on each vCPU (`M`) and kicks every
    /// vCPU whose old mode is not `OUTSIDE_GUEST_MODE`. Returns how many were
    /// kicked. On `Ok`, and until the guard drops, no vCPU is in guest mode.
    pub fn kick<V: VcpuSet>(&self, vcpus: &V) -> Result<usize, KickTimeout> {
        let (kicked, result) = self.kick_counted(vcpus);
        result.map(|()| kicked)
    }

    /// [`Self::kick`], which also says how many vCPUs were kicked when some
    /// did not acknowledge in time.
    pub fn kick_counted<V: VcpuSet>(&self, vcpus: &V) -> (usize, Result<(), KickTimeout>) {
        let mut kick = vcpus.begin_kick();
        let mut kicked = 0;
        for i in 0..vcpus.nr_vcpus() {
            if vcpus.exiting_guest_mode(i) != OUTSIDE_GUEST_MODE {
                vcpus.send_kick(&mut kick, i);
                kicked += 1;
            }
        }
        (kicked, vcpus.wait_for_acks(kick))
    }
}

impl<G: Atomic64> Drop for KickGuard<'_, G> {
    fn drop(&mut self) {
        self.gate.raised.fetch_sub(1);
    }
}
