// SPDX-License-Identifier: GPL-2.0

//! The policy's traits over KVM: its entry gate (`wait_for_sept_zap`), its
//! vCPUs as the kicker sees them, and KVM's own map call as the SEAMCALL the
//! executor issues.

use super::bindings::Td;
use super::hooks;
use crate::platform::{
    compat::smp_mb,
    fault::{
        injected_busy,
        Fault, //
    },
    ipi::IpiSet,
    sync::{
        KClock,
        KCounter, //
    },
    trace::VmEvents,
};
use crate::policy::{
    gate::OUTSIDE_GUEST_MODE,
    Atomic64,
    Clock,
    Executor,
    KickTimeout,
    Operand,
    Seamcall,
    SeptOp,
    Status,
    VcpuSet, //
};
use kernel::{
    cpu::nr_cpu_ids,
    prelude::*,
    processor::cpu_relax,
    sync::SpinLock, //
};

/// The entry gate over KVM's `wait_for_sept_zap`: a count of the kickers
/// holding it, mirrored into KVM's flag, which `tdx_vcpu_run()` reads after
/// publishing `IN_GUEST_MODE`.
///
/// Map-path kickers hold `mmu_lock` for read, so several can hold the gate
/// at once; the count and the flag change together under `lock`. KVM's own
/// writers of the flag (`tdh_do_no_vcpus()`) hold `mmu_lock` for write and
/// so never overlap with a kicker. Raising is followed by `smp_mb()`, so
/// the flag is visible before the kicker reads any vCPU mode. That pairs
/// with `vcpu_enter_guest()`: `smp_store_release(&vcpu->mode,
/// IN_GUEST_MODE)`, then `smp_mb__after_srcu_read_unlock()`, a full barrier,
/// before `tdx_vcpu_run()` reads the flag (store buffering: one side sees
/// the other's store).
pub(super) struct GateCell<'a> {
    pub(super) td: Td<'a>,
    pub(super) lock: &'a SpinLock<u64>,
}

/// For the suites: the most kickers seen holding one VM's gate at once.
#[cfg(tsg_tests)]
pub(super) static MAX_KICKERS: kernel::sync::atomic::Atomic<u64> =
    kernel::sync::atomic::Atomic::new(0);
/// For the suites: how long a gate was up in all (ns, monotonic clock),
/// and when the one up now was raised. One fake TD at a time uses them.
#[cfg(tsg_tests)]
pub(super) static GATE_HELD_NS: kernel::sync::atomic::Atomic<u64> =
    kernel::sync::atomic::Atomic::new(0);
#[cfg(tsg_tests)]
static GATE_RAISED_AT: kernel::sync::atomic::Atomic<u64> = kernel::sync::atomic::Atomic::new(0);

impl GateCell<'_> {
    fn update(&self, f: impl FnOnce(u64) -> u64) -> u64 {
        let mut n = self.lock.lock();
        let old = *n;
        *n = f(old);
        #[cfg(tsg_tests)]
        if *n > MAX_KICKERS.load(kernel::sync::atomic::Relaxed) {
            MAX_KICKERS.store(*n, kernel::sync::atomic::Relaxed);
        }
        if (old == 0) != (*n == 0) {
            self.td.set_wait_for_sept_zap(*n != 0);
            #[cfg(tsg_tests)]
            {
                use kernel::sync::atomic::Relaxed;
                // SAFETY: Reads the monotonic clock; no preconditions.
                let now = unsafe { super::bindings::ffi::tsg_fake_now_ns() };
                if old == 0 {
                    GATE_RAISED_AT.store(now, Relaxed);
                } else {
                    GATE_HELD_NS.add(now.saturating_sub(GATE_RAISED_AT.load(Relaxed)), Relaxed);
                }
            }
        }
        drop(n);
        smp_mb();
        old
    }
}

/// Only what [`EntryGate`] and the kicker use is meaningful: a fully ordered
/// counter. Stores and exchanges go through the same lock.
impl Atomic64 for GateCell<'_> {
    fn load_acquire(&self) -> u64 {
        *self.lock.lock()
    }
    fn load_relaxed(&self) -> u64 {
        *self.lock.lock()
    }
    fn store_release(&self, v: u64) {
        self.update(|_| v);
    }
    fn store_relaxed(&self, v: u64) {
        self.update(|_| v);
    }
    fn xchg(&self, v: u64) -> u64 {
        self.update(|_| v)
    }
    fn cmpxchg(&self, old: u64, new: u64) -> core::result::Result<u64, u64> {
        let seen = self.update(|cur| if cur == old { new } else { cur });
        if seen == old {
            Ok(seen)
        } else {
            Err(seen)
        }
    }
    fn fetch_add(&self, v: u64) -> u64 {
        self.update(|cur| cur.wrapping_add(v))
    }
    fn fetch_sub(&self, v: u64) -> u64 {
        self.update(|cur| cur.wrapping_sub(v))
    }
}

/// The VM's vCPUs, as the policy's kicker sees them.
pub(super) struct KvmVcpus<'a> {
    pub(super) td: Td<'a>,
    pub(super) ipis: &'a IpiSet,
    pub(super) clock: &'a KClock,
    pub(super) timeout_ns: u64,
}

impl VcpuSet for KvmVcpus<'_> {
    type Kick = ();

    fn nr_vcpus(&self) -> usize {
        self.td.online_vcpus() as usize
    }

    fn exiting_guest_mode(&self, i: usize) -> u32 {
        self.td
            .vcpu(i as u32)
            .map_or(OUTSIDE_GUEST_MODE, |v| v.exiting_guest_mode())
    }

    fn begin_kick(&self) {}

    /// An IPI to the CPU the vCPU runs on; its handler does nothing, as
    /// KVM's `ack_kick()`: taking the interrupt is the exit. A slot still in
    /// flight (a CPU that has not taken the last one) is waited for instead.
    fn send_kick(&self, (): &mut (), i: usize) {
        self.send_ipi(i);
    }

    /// Waits until no IPI of this VM is in flight, or the deadline passes.
    fn wait_for_acks(&self, (): ()) -> core::result::Result<(), KickTimeout> {
        let deadline = self.clock.now_ns().saturating_add(self.timeout_ns);
        loop {
            if (0..nr_cpu_ids()).all(|cpu| self.ipis.acked(cpu)) {
                return Ok(());
            }
            if self.clock.now_ns() > deadline {
                return Err(KickTimeout);
            }
            cpu_relax();
        }
    }
}

impl KvmVcpus<'_> {
    /// Sends vCPU `i`'s CPU an IPI, unless one is still in flight there.
    pub(super) fn send_ipi(&self, i: usize) {
        let Some(vcpu) = self.td.vcpu(i as u32) else {
            return;
        };
        if let Some(cpu) = u32::try_from(vcpu.cpu())
            .ok()
            .and_then(crate::platform::online_cpu)
        {
            let _ = self.ipis.send(cpu.as_u32(), cpu);
        }
    }
}

/// The policy executor of one VM: KVM's gate, its vCPUs, its counters and
/// trace events.
pub(super) type KvmExecutor<'a> =
    Executor<'a, GateCell<'a>, KvmVcpus<'a>, KCounter, KClock, VmEvents>;

/// The original `tdx_sept_set_private_spte()`, as the policy's SEAMCALL.
pub(super) struct MapCall<'a> {
    pub(super) orig: usize,
    pub(super) td: Td<'a>,
    pub(super) gfn: u64,
    pub(super) old: u64,
    pub(super) new: u64,
    pub(super) level: i32,
    /// What the last call returned.
    pub(super) ret: i32,
    /// Tries made so far, and whether the last one's status was injected.
    pub(super) tries: u32,
    pub(super) injected: bool,
}

impl<'a> MapCall<'a> {
    /// KVM's map of `gfn` from `old` to `new` at `level`, through `orig`.
    pub(super) fn new(orig: usize, td: Td<'a>, gfn: u64, old: u64, new: u64, level: i32) -> Self {
        Self {
            orig,
            td,
            gfn,
            old,
            new,
            level,
            ret: 0,
            tries: 0,
            injected: false,
        }
    }

    /// Calls KVM's original once, without fault injection: its return
    /// value, and the status the leaf's kretprobe saw.
    pub(super) fn call_kvm(&mut self) -> Status {
        // SAFETY: This runs inside the redirected call, with KVM's own
        // arguments and locks (see `tsg_kvm_set_private_spte`).
        let (ret, seen) = unsafe {
            hooks::call_set_private_spte(
                self.orig, self.td, self.gfn, self.old, self.new, self.level,
            )
        };
        self.ret = ret;
        seen
    }
}

impl Seamcall for MapCall<'_> {
    /// KVM turns `TDX_OPERAND_BUSY` into `-EBUSY` and reports every other
    /// failure itself (`TDX_BUG_ON`) as `-EIO`. The operand of a busy
    /// status comes from the leaf's kretprobe; without one it counts as an
    /// unknown operand.
    ///
    /// Fault injection comes first: `fail_map_busy` answers a first try,
    /// `fail_retry_busy` a later one, with the busy status of a held S-EPT
    /// entry and `-EBUSY`, as KVM would, without calling KVM (which has no
    /// side effect on busy either).
    fn seamcall(&mut self, op: &SeptOp) -> Status {
        self.tries += 1;
        self.injected = Fault::for_try(self.tries).should_fail();
        if self.injected {
            self.ret = EBUSY.to_errno();
            return injected_busy();
        }
        let seen = self.call_kvm();
        match self.ret {
            0 => Status::SUCCESS,
            r if r == EBUSY.to_errno() && seen.is_busy_for(op.leaf) => seen,
            r if r == EBUSY.to_errno() => Status::operand_busy(Operand::Other(0)),
            _ => Status::from_raw(crate::policy::status::TDX_ERROR),
        }
    }

    fn injected(&self) -> bool {
        self.injected
    }
}
