// SPDX-License-Identifier: GPL-2.0

//! One simulated TD as KVM holds it: the TDX module's view of it, the
//! mirror SPTEs, the vCPUs' modes, the entry gate, `mmu_lock`, counters, and
//! the record of why the VM was stopped.

use super::host::Zap;
use super::tdx_module::{Geometry, Latency, TdxModule};
use super::vcpu::Rng;
use crate::kshim::{cpu_online, IpiSet, RwSpinLock};
use crate::ksync::{KAtomic64, KClock, KCounter};
use crate::policy::gate::OUTSIDE_GUEST_MODE;
use crate::policy::spte::SHADOW_NONPRESENT_VALUE;
use crate::policy::{
    Atomic64, Clock, Counters, EntryGate, Executor, KickTimeout, Leaf, Policy, Status, VcpuSet,
    VmBugReason,
};
use kernel::prelude::*;
use kernel::processor::cpu_relax;
use kernel::sync::atomic::{Acquire, Atomic, Full, Relaxed, Release};
use kernel::{
    new_spinlock,
    sync::{Arc, SpinLock},
};

/// The kicker records kicked vCPUs in a `u64` mask.
pub(crate) const MAX_VCPUS: u32 = 64;

/// Everything that shapes one simulated VM.
#[derive(Clone, Copy)]
pub(crate) struct SimConfig {
    /// vCPU `i` runs on CPU `i`; at most the number of online CPUs.
    pub(crate) nr_vcpus: u32,
    pub(crate) geometry: Geometry,
    pub(crate) latency: Latency,
    pub(crate) policy: Policy,
    /// How long a kicker waits for the vCPUs' acknowledgements.
    pub(crate) kick_timeout_us: u32,
    /// Guest accesses that go to the small shared set of pages (percent):
    /// the higher, the more vCPUs collide on the same S-EPT entries.
    pub(crate) contention_pct: u32,
    /// Size of that shared set.
    pub(crate) hot_pages: usize,
}

/// The policy executor of a simulated VM.
pub(crate) type VmExecutor<'a> = Executor<'a, KAtomic64, Vm, KCounter, KClock>;

/// Why the VM was stopped (`KVM_BUG_ON` in KVM).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StopRecord {
    pub(crate) leaf: Leaf,
    /// `None`: an error status the path cannot go on after.
    pub(crate) reason: Option<VmBugReason>,
    pub(crate) status: Status,
}

/// A vCPU as the kicker sees it.
pub(crate) struct VcpuSlot {
    pub(crate) mode: KAtomic64,
    pub(crate) cpu: u32,
}

/// Checks of the protocol itself, made while the simulation runs.
pub(crate) struct Invariants {
    /// vCPUs past the gate and inside their guest section.
    pub(crate) in_guest: Atomic<u64>,
    /// A kicker had all its acks, its gate was up, and still a vCPU was
    /// inside its guest section.
    pub(crate) gate_violations: Atomic<u64>,
    /// The most SEAMCALLs any one operation issued.
    pub(crate) max_tries: Atomic<u64>,
}

/// How far the workload got.
pub(crate) struct Progress {
    /// Pages the guests accepted (their unit of work).
    pub(crate) guest_ops: Atomic<u64>,
    /// vCPU threads started, and those done with their budget (or stopped
    /// with the VM).
    pub(crate) vcpu_threads: Atomic<u64>,
    pub(crate) vcpus_finished: Atomic<u64>,
    pub(crate) zaps: Atomic<u64>,
}

/// Fault injection for the tests.
pub(crate) struct Injection {
    /// 1 + the index of the vCPU that will ignore interrupts on its next
    /// guest entry, or 0.
    stuck_vcpu: Atomic<u64>,
    stuck_ms: Atomic<u32>,
    /// 1 + the index of the vCPU whose guest keeps accepting one page (a
    /// long 2M ACCEPT, say), holding its S-EPT entry lock until it is
    /// kicked out; and that page's GPA.
    hog_vcpu: Atomic<u64>,
    hog_gpa: Atomic<u64>,
}

impl Injection {
    /// vCPU `idx` stays in the guest, interrupts off, for `ms` on its next entry.
    pub(crate) fn arm_stuck(&self, idx: usize, ms: u32) {
        self.stuck_ms.store(ms, Relaxed);
        self.stuck_vcpu.store(idx as u64 + 1, Release);
    }

    /// Whether vCPU `idx` is the one to get stuck now (once).
    pub(crate) fn take_stuck(&self, idx: usize) -> bool {
        self.stuck_vcpu.load(Relaxed) == idx as u64 + 1
            && self.stuck_vcpu.cmpxchg(idx as u64 + 1, 0, Full).is_ok()
    }

    /// Whether an armed stuck vCPU has not got stuck yet.
    pub(crate) fn stuck_armed(&self) -> bool {
        self.stuck_vcpu.load(Acquire) != 0
    }

    pub(crate) fn stuck_ms(&self) -> u32 {
        self.stuck_ms.load(Relaxed)
    }

    /// vCPU `idx`'s guest holds the entry lock of `gpa` whenever it runs.
    pub(crate) fn arm_hog(&self, idx: usize, gpa: u64) {
        self.hog_gpa.store(gpa, Relaxed);
        self.hog_vcpu.store(idx as u64 + 1, Release);
    }

    pub(crate) fn disarm_hog(&self) {
        self.hog_vcpu.store(0, Release);
    }

    /// The page vCPU `idx`'s guest hogs, if any.
    pub(crate) fn hog(&self, idx: usize) -> Option<u64> {
        (self.hog_vcpu.load(Acquire) == idx as u64 + 1).then(|| self.hog_gpa.load(Relaxed))
    }
}

/// One simulated TD.
#[pin_data]
pub(crate) struct Vm {
    pub(crate) cfg: SimConfig,
    pub(crate) module: TdxModule,
    mirror_pages: KVec<KAtomic64>,
    mirror_tables: KVec<KAtomic64>,
    pub(crate) gate: EntryGate<KAtomic64>,
    pub(crate) vcpus: KVec<VcpuSlot>,
    ipis: IpiSet,
    pub(crate) mmu_lock: RwSpinLock,
    pub(crate) counters: Counters<KCounter>,
    pub(crate) clock: KClock,
    pub(crate) checks: Invariants,
    pub(crate) work: Progress,
    pub(crate) inject: Injection,
    stopped: Atomic<bool>,
    #[pin]
    stop_record: SpinLock<Option<StopRecord>>,
}

/// The mirror SPTE value of a mapped 4K page (present, RWX) or S-EPT page.
pub(crate) fn present_spte(gpa: u64) -> u64 {
    gpa | 0x7
}

/// A mirror SPTE that maps nothing (`SHADOW_NONPRESENT_VALUE`).
pub(crate) const NONPRESENT_SPTE: u64 = SHADOW_NONPRESENT_VALUE;

fn spte_table(n: usize) -> Result<KVec<KAtomic64>> {
    let mut v = KVec::with_capacity(n, GFP_KERNEL)?;
    for _ in 0..n {
        v.push(KAtomic64::new(NONPRESENT_SPTE), GFP_KERNEL)?;
    }
    Ok(v)
}

impl Vm {
    /// Builds a VM; its vCPU threads are started separately.
    pub(crate) fn new(cfg: SimConfig) -> Result<Arc<Self>> {
        if cfg.nr_vcpus == 0 || cfg.nr_vcpus > MAX_VCPUS {
            return Err(EINVAL);
        }
        let mut vcpus = KVec::with_capacity(cfg.nr_vcpus as usize, GFP_KERNEL)?;
        for cpu in 0..cfg.nr_vcpus {
            if !cpu_online(cpu) {
                return Err(EINVAL);
            }
            vcpus.push(
                VcpuSlot {
                    mode: KAtomic64::new(OUTSIDE_GUEST_MODE),
                    cpu,
                },
                GFP_KERNEL,
            )?;
        }
        let init = try_pin_init!(Self {
            cfg,
            module: TdxModule::new(cfg.geometry, cfg.latency)?,
            mirror_pages: spte_table(cfg.geometry.pages)?,
            mirror_tables: spte_table(cfg.geometry.tables())?,
            gate: EntryGate::new(KAtomic64::new(0)),
            vcpus,
            ipis: IpiSet::new(cfg.nr_vcpus)?,
            mmu_lock: RwSpinLock::new()?,
            counters: Counters::new(),
            clock: KClock::new(),
            checks: Invariants {
                in_guest: Atomic::new(0),
                gate_violations: Atomic::new(0),
                max_tries: Atomic::new(0),
            },
            work: Progress {
                guest_ops: Atomic::new(0),
                vcpu_threads: Atomic::new(0),
                vcpus_finished: Atomic::new(0),
                zaps: Atomic::new(0),
            },
            inject: Injection {
                stuck_vcpu: Atomic::new(0),
                stuck_ms: Atomic::new(0),
                hog_vcpu: Atomic::new(0),
                hog_gpa: Atomic::new(0),
            },
            stopped: Atomic::new(false),
            stop_record <- new_spinlock!(None),
        }? Error);
        Arc::pin_init(init, GFP_KERNEL)
    }

    /// An executor running this VM's S-EPT operations under its policy.
    pub(crate) fn executor(&self) -> VmExecutor<'_> {
        Executor::new(
            self.cfg.policy,
            &self.gate,
            self,
            &self.counters,
            &self.clock,
        )
    }

    /// The mirror SPTE of the 4K page at `gpa`.
    pub(crate) fn mirror_page(&self, gpa: u64) -> Option<&KAtomic64> {
        self.mirror_pages.get(self.cfg.geometry.page_index(gpa)?)
    }

    /// The mirror SPTE of the S-EPT page covering `gpa`.
    pub(crate) fn mirror_table(&self, gpa: u64) -> Option<&KAtomic64> {
        self.mirror_tables.get(self.cfg.geometry.table_of(gpa))
    }

    /// Whether a kick sent to vCPU `idx` is waiting for it: a real CPU in
    /// guest mode exits at once on such an interrupt.
    pub(crate) fn kick_pending(&self, idx: usize) -> bool {
        !self.ipis.acked(idx as u32)
    }

    /// The host's side of a guest's private-to-shared conversion of `gpa`.
    pub(crate) fn release(&self, gpa: u64) {
        if self.zap(gpa) == Zap::Zapped {
            self.work.zaps.add(1, Relaxed);
        }
    }

    /// Records the SEAMCALLs an operation issued.
    pub(crate) fn note_tries(&self, tries: u32) {
        let tries = u64::from(tries);
        let mut seen = self.checks.max_tries.load(Relaxed);
        while tries > seen {
            match self.checks.max_tries.cmpxchg(seen, tries, Relaxed) {
                Ok(_) => break,
                Err(now) => seen = now,
            }
        }
    }

    /// A page for a guest to touch: from the small shared set with
    /// probability `contention_pct`, else from all of memory.
    pub(crate) fn pick_gpa(&self, rng: &mut Rng) -> u64 {
        let pages = if rng.below(100) < u64::from(self.cfg.contention_pct) {
            self.cfg.hot_pages.min(self.cfg.geometry.pages)
        } else {
            self.cfg.geometry.pages
        };
        rng.below(pages as u64) << 12
    }

    /// Stops the VM: its vCPUs never enter again. The first record wins.
    pub(crate) fn stop(&self, leaf: Leaf, reason: Option<VmBugReason>, status: Status) {
        let mut rec = self.stop_record.lock();
        if rec.is_none() {
            match reason {
                Some(reason) => pr_warn!(
                    "sim VM stopped: {} ended in {:?} (status {:#018x})\n",
                    leaf.name(),
                    reason,
                    status.raw()
                ),
                None => pr_warn!(
                    "sim VM stopped: {} failed (status {:#018x})\n",
                    leaf.name(),
                    status.raw()
                ),
            }
            *rec = Some(StopRecord {
                leaf,
                reason,
                status,
            });
        }
        self.stopped.store(true, Release);
    }

    /// Every vCPU thread is done with its budget (or the VM stopped).
    pub(crate) fn vcpus_done(&self) -> bool {
        self.work.vcpus_finished.load(Relaxed) >= self.work.vcpu_threads.load(Relaxed)
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Relaxed)
    }

    pub(crate) fn stop_record(&self) -> Option<StopRecord> {
        *self.stop_record.lock()
    }

    /// The policy counters, then what the simulation itself saw, one
    /// `name value` line each.
    pub(crate) fn render_stats(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.counters.render(f)?;
        let m = &self.module.stats;
        for (name, value) in [
            ("sim_guest_ops", &self.work.guest_ops),
            ("sim_zaps", &self.work.zaps),
            ("sim_gate_violations", &self.checks.gate_violations),
            ("sim_max_tries", &self.checks.max_tries),
            ("sim_mitigation_engaged", &m.mitigation_engaged),
            ("sim_synthetic_exits", &m.synthetic_exits),
            ("sim_enter_busy", &m.enter_busy),
            ("sim_guest_accepts", &m.guest_accepts),
            ("sim_guest_busy", &m.guest_busy),
            ("sim_guest_host_priority", &m.guest_host_priority),
        ] {
            writeln!(f, "{} {}", name, value.load(Relaxed))?;
        }
        writeln!(f, "sim_vm_stopped {}", u8::from(self.is_stopped()))
    }

    /// Compares the mirror SPTEs with the simulated S-EPT: every present
    /// mirror page is PENDING or MAPPED in the module and every other one is
    /// FREE; likewise for S-EPT pages. Returns the number of mismatches.
    pub(crate) fn mismatches(&self) -> usize {
        use super::tdx_module::{FREE, MAPPED, PENDING, PRESENT};
        let g = self.cfg.geometry;
        let pages = (0..g.pages).filter(|&i| {
            let gpa = (i as u64) << 12;
            let present = self.mirror_pages[i].load_acquire() == present_spte(gpa);
            let state = self.module.page_state(gpa);
            if present {
                !matches!(state, Some(PENDING | MAPPED))
            } else {
                state != Some(FREE)
            }
        });
        let tables = (0..g.tables()).filter(|&t| {
            let present = self.mirror_tables[t].load_acquire() == present_spte(g.table_gpa(t));
            (self.module.table_state(t) == Some(PRESENT)) != present
        });
        pages.count() + tables.count()
    }
}

impl VcpuSet for Vm {
    type Mode = KAtomic64;
    type Kick = u64;

    fn nr_vcpus(&self) -> usize {
        self.vcpus.len()
    }

    fn mode(&self, i: usize) -> &KAtomic64 {
        &self.vcpus[i].mode
    }

    fn begin_kick(&self) -> u64 {
        0
    }

    /// An asynchronous call to the vCPU's CPU. If the previous one is still
    /// in flight the vCPU has not left guest mode since: wait for that one.
    fn send_kick(&self, kick: &mut u64, i: usize) {
        let _ = self.ipis.send(i as u32, self.vcpus[i].cpu);
        *kick |= 1 << i;
    }

    fn wait_for_acks(&self, kick: u64) -> core::result::Result<(), KickTimeout> {
        let deadline = self.clock.now_ns() + u64::from(self.cfg.kick_timeout_us) * 1000;
        let mut pending = kick;
        while pending != 0 {
            for i in 0..self.vcpus.len() {
                if pending & (1 << i) != 0 && self.ipis.acked(i as u32) {
                    pending &= !(1 << i);
                }
            }
            if pending != 0 {
                if self.clock.now_ns() > deadline {
                    return Err(KickTimeout);
                }
                cpu_relax();
            }
        }
        // All acked with our gate up: nobody may be inside the guest now.
        if self.checks.in_guest.fetch_add(0, Full) != 0 {
            self.checks.gate_violations.add(1, Relaxed);
        }
        Ok(())
    }
}
