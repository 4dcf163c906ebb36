// SPDX-License-Identifier: GPL-2.0

//! One simulated TD as KVM holds it: the TDX module's view of it, the mirror
//! SPTEs, the vCPUs' modes, the entry gate, `mmu_lock`, counters, and the
//! record of why the VM was stopped.

use super::rng::Rng;
use super::tdx_module::{
    Geometry,
    Latency,
    TdxModule, //
};
use crate::platform::{
    hist::Histogram,
    ipi::IpiSet,
    latency::Latencies,
    online_cpu,
    rwlock::{
        new_rwlock,
        RwSpinLock, //
    },
    sync::{
        KAtomic32,
        KAtomic64,
        KClock,
        KCounter, //
    },
    trace::VmEvents,
};
use crate::policy::counters::counter_table;
use crate::policy::{
    gate::{
        exiting_guest_mode,
        OUTSIDE_GUEST_MODE, //
    },
    spte::SHADOW_NONPRESENT_VALUE,
    Clock,
    CounterCell,
    Counters,
    EntryGate,
    Executor,
    KickTimeout,
    Leaf,
    Policy,
    Status,
    VcpuSet,
    VmBugReason, //
};
use kernel::{
    cpu::CpuId,
    new_condvar, new_spinlock,
    prelude::*,
    processor::cpu_relax,
    sync::{
        atomic::{
            Acquire,
            Atomic,
            Full,
            Relaxed,
            Release, //
        },
        Arc,
        CondVar,
        SpinLock, //
    },
};
// What only the test module's suites use.
#[cfg(tsg_tests)]
use crate::policy::Atomic64;
#[cfg(tsg_tests)]
use kernel::{
    sync::CondVarTimeoutResult,
    time::msecs_to_jiffies, //
};

/// The number of the next simulated VM, as its trace events show it: 0 for
/// the first one this load of the module makes (`mode=sim` makes one).
static NEXT_VM: Atomic<u64> = Atomic::new(0);

/// The kicker records kicked vCPUs in a `u64` mask.
pub(crate) const MAX_VCPUS: u32 = 64;

/// Everything that shapes one simulated VM.
#[derive(Clone, Copy)]
pub(crate) struct SimConfig {
    /// vCPU `i` runs on CPU `i`; at most the number of online CPUs.
    pub(crate) nr_vcpus: u32,
    pub(crate) geometry: Geometry,
    pub(crate) latency: Latency,
    /// The SEAMCALL cost in percent of what `latency` says
    /// ([`TdxModule::with_cost_pct`]).
    pub(crate) seamcall_cost_pct: u32,
    pub(crate) policy: Policy,
    /// How long a kicker waits for the vCPUs' acknowledgements.
    pub(crate) kick_timeout_us: u32,
    /// Guest accesses that go to the small shared set of pages (percent):
    /// the higher, the more vCPUs collide on the same S-EPT entries.
    pub(crate) contention_pct: u32,
    /// Size of that shared set.
    pub(crate) hot_pages: usize,
    /// Pages a guest accepts in one run at one guest RIP (the 4K loop of a
    /// large-range ACCEPT): 1 is one page per instruction. Runs longer than
    /// the TDX module's `STEPPING_EPF_THRESHOLD` engage its zero-step
    /// mitigation when their pages fault.
    pub(crate) guest_run: u32,
    /// Mixed into every thread's fixed seed: the same seed repeats a run's
    /// sequence of pages.
    pub(crate) seed: u64,
    /// Keep the latency histograms of [`Latencies`] (`latency=1`).
    pub(crate) histograms: bool,
}

/// The policy executor of a simulated VM, reporting to its trace events
/// and latency histograms.
pub(crate) type VmExecutor<'a> = Executor<'a, KAtomic64, Vm, KCounter, KClock, VmEvents>;

/// Why the VM was stopped (`KVM_BUG_ON` in KVM).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct StopRecord {
    pub(super) leaf: Leaf,
    /// `None`: an error status the path cannot go on after.
    pub(super) reason: Option<VmBugReason>,
    pub(super) status: Status,
    /// `status` was made up by the module's fault injection.
    pub(super) injected: bool,
}

/// A vCPU as the kicker sees it: its mode (a 32-bit cell, as KVM's
/// `vcpu->mode`) and the CPU its thread is bound to.
pub(super) struct VcpuSlot {
    pub(super) mode: KAtomic32,
    pub(super) cpu: CpuId,
    /// TDH.VP.ENTER calls this vCPU made.
    pub(super) enters: KCounter,
}

counter_table! {
    counters = crate::policy::counters;
    /// What the simulated VM itself saw, beside the policy's counters.
    pub(super) struct SimCounters<C> {
        /// Pages the simulated guests accepted (their unit of work).
        sim_guest_ops: "sim",
        /// Pages the host zapped (BLOCK, TRACK, kick, REMOVE all done).
        sim_zaps: "sim",
        /// Kicks whose acks all arrived with the gate up while a vCPU was
        /// still inside its guest section: a broken gate (must stay 0).
        sim_gate_violations: "sim",
        /// S-EPT operations ended (one leaf on one entry, from its first
        /// SEAMCALL to its last; a busy handed back and the re-run fault that
        /// retries it are one operation).
        sim_sept_ops: "sim",
        /// S-EPT operations that issued more than one SEAMCALL.
        sim_ops_retried: "sim",
        /// The most SEAMCALLs any one operation issued.
        sim_max_tries: "sim",
        /// Nanoseconds the operations that issued more than one SEAMCALL
        /// took, in all (over `sim_ops_retried`: their mean).
        sim_retried_op_ns: "sim",
        /// Faults the fault handler ran again without re-entering the guest
        /// (KVM's local retry on `RET_PF_RETRY`).
        sim_local_retries: "sim",
        /// Nanoseconds vCPUs spent refused by the entry gate.
        sim_gated_ns: "sim",
    }
}

/// Fault injection for the tests.
pub(super) struct Injection {
    /// 1 + the index of the vCPU that will ignore interrupts on its next
    /// guest entry, or 0.
    stuck_vcpu: Atomic<u64>,
    stuck_ms: Atomic<u32>,
    /// 1 + the index of the vCPU whose guest keeps accepting one page (a
    /// long 2M ACCEPT, say), holding its S-EPT entry lock until it is
    /// kicked out; and that page's GPA.
    hog_vcpu: Atomic<u64>,
    hog_gpa: Atomic<u64>,
    /// 1 + the index of the vCPU whose guest's next instruction is a plain
    /// access to one page (a load or store, not an ACCEPT); and its GPA.
    touch_vcpu: Atomic<u64>,
    touch_gpa: Atomic<u64>,
}

impl Injection {
    const fn new() -> Self {
        Self {
            stuck_vcpu: Atomic::new(0),
            stuck_ms: Atomic::new(0),
            hog_vcpu: Atomic::new(0),
            hog_gpa: Atomic::new(0),
            touch_vcpu: Atomic::new(0),
            touch_gpa: Atomic::new(0),
        }
    }

    #[cfg(tsg_tests)]
    /// vCPU `idx` stays in the guest, interrupts off, for `ms` on its next entry.
    pub(super) fn arm_stuck(&self, idx: usize, ms: u32) {
        self.stuck_ms.store(ms, Relaxed);
        self.stuck_vcpu.store(idx as u64 + 1, Release);
    }

    /// Whether vCPU `idx` is the one to get stuck now (once).
    pub(super) fn take_stuck(&self, idx: usize) -> bool {
        self.stuck_vcpu.load(Relaxed) == idx as u64 + 1
            && self.stuck_vcpu.cmpxchg(idx as u64 + 1, 0, Full).is_ok()
    }

    #[cfg(tsg_tests)]
    /// Whether an armed stuck vCPU has not got stuck yet.
    pub(super) fn stuck_armed(&self) -> bool {
        self.stuck_vcpu.load(Acquire) != 0
    }

    pub(super) fn stuck_ms(&self) -> u32 {
        self.stuck_ms.load(Relaxed)
    }

    #[cfg(tsg_tests)]
    /// vCPU `idx`'s guest holds the entry lock of `gpa` whenever it runs.
    pub(super) fn arm_hog(&self, idx: usize, gpa: u64) {
        self.hog_gpa.store(gpa, Relaxed);
        self.hog_vcpu.store(idx as u64 + 1, Release);
    }

    #[cfg(tsg_tests)]
    pub(super) fn disarm_hog(&self) {
        self.hog_vcpu.store(0, Release);
    }

    /// The page vCPU `idx`'s guest hogs, if any.
    pub(super) fn hog(&self, idx: usize) -> Option<u64> {
        (self.hog_vcpu.load(Acquire) == idx as u64 + 1).then(|| self.hog_gpa.load(Relaxed))
    }

    #[cfg(tsg_tests)]
    /// vCPU `idx`'s guest's next instruction touches `gpa` (a plain access:
    /// it faults until the page is mapped and takes no entry lock).
    pub(super) fn arm_touch(&self, idx: usize, gpa: u64) {
        self.touch_gpa.store(gpa, Relaxed);
        self.touch_vcpu.store(idx as u64 + 1, Release);
    }

    /// The page vCPU `idx`'s guest is to touch next, if any (once).
    pub(super) fn take_touch(&self, idx: usize) -> Option<u64> {
        (self.touch_vcpu.load(Relaxed) == idx as u64 + 1
            && self.touch_vcpu.cmpxchg(idx as u64 + 1, 0, Full).is_ok())
        .then(|| self.touch_gpa.load(Relaxed))
    }
}

/// vCPU threads running on the VM, and those done with their budget.
#[derive(Clone, Copy, Default)]
struct VcpuThreads {
    started: u64,
    finished: u64,
}

/// One simulated TD.
#[pin_data]
pub(crate) struct Vm {
    pub(super) cfg: SimConfig,
    pub(super) module: TdxModule,
    mirror_pages: KVec<KAtomic64>,
    mirror_tables: KVec<KAtomic64>,
    pub(super) gate: EntryGate<KAtomic64>,
    pub(super) vcpus: KVec<VcpuSlot>,
    ipis: IpiSet,
    #[pin]
    pub(super) mmu_lock: RwSpinLock,
    pub(super) counters: Counters<KCounter>,
    pub(super) sim_counters: SimCounters<KCounter>,
    /// How long S-EPT operations took, first SEAMCALL to last, with any
    /// kick and re-run fault in between.
    op_ns: Histogram,
    /// How long faults took to resolve: from a guest access's first
    /// EPT-violation exit until the host mapped the page.
    pub(super) fault_ns: Histogram,
    pub(super) clock: KClock,
    /// vCPUs past the gate and inside their guest section: the simulation
    /// checks the gate with it.
    pub(super) in_guest: Atomic<u64>,
    pub(super) inject: Injection,
    /// Its trace events, with its number (`vm=`).
    pub(super) events: VmEvents,
    stopped: Atomic<bool>,
    #[pin]
    stop_record: SpinLock<Option<StopRecord>>,
    #[pin]
    threads: SpinLock<VcpuThreads>,
    #[pin]
    threads_changed: CondVar,
}

/// The mirror SPTE value of a mapped 4K page (present, RWX) or S-EPT page.
pub(super) fn present_spte(gpa: u64) -> u64 {
    gpa | 0x7
}

/// A mirror SPTE that maps nothing (`SHADOW_NONPRESENT_VALUE`).
pub(super) const NONPRESENT_SPTE: u64 = SHADOW_NONPRESENT_VALUE;

fn spte_table(n: usize) -> Result<KVec<KAtomic64>> {
    let mut v = KVec::with_capacity(n, GFP_KERNEL)?;
    for _ in 0..n {
        v.push(KAtomic64::new(NONPRESENT_SPTE), GFP_KERNEL)?;
    }
    Ok(v)
}

impl Vm {
    /// Builds a VM; its vCPU threads are started separately.
    pub(super) fn new(cfg: SimConfig) -> Result<Arc<Self>> {
        if cfg.nr_vcpus == 0 || cfg.nr_vcpus > MAX_VCPUS {
            return Err(EINVAL);
        }
        let mut vcpus = KVec::with_capacity(cfg.nr_vcpus as usize, GFP_KERNEL)?;
        for cpu in 0..cfg.nr_vcpus {
            vcpus.push(
                VcpuSlot {
                    mode: KAtomic32::new(OUTSIDE_GUEST_MODE),
                    cpu: online_cpu(cpu).ok_or(EINVAL)?,
                    enters: KCounter::default(),
                },
                GFP_KERNEL,
            )?;
        }
        let init = try_pin_init!(Self {
            cfg,
            module: TdxModule::with_cost_pct(cfg.geometry, cfg.latency, cfg.seamcall_cost_pct)?,
            mirror_pages: spte_table(cfg.geometry.pages)?,
            mirror_tables: spte_table(cfg.geometry.tables())?,
            gate: EntryGate::new(KAtomic64::new(0)),
            vcpus,
            ipis: IpiSet::new(cfg.nr_vcpus)?,
            mmu_lock <- new_rwlock!("Vm::mmu_lock"),
            counters: Counters::new(),
            sim_counters: SimCounters::new(),
            op_ns: Histogram::new(),
            fault_ns: Histogram::new(),
            clock: KClock::new(),
            in_guest: Atomic::new(0),
            inject: Injection::new(),
            events: VmEvents::new(
                NEXT_VM.fetch_add(1, Relaxed),
                Latencies::new(cfg.histograms)?
            ),
            stopped: Atomic::new(false),
            stop_record <- new_spinlock!(None, "Vm::stop_record"),
            threads <- new_spinlock!(VcpuThreads::default(), "Vm::threads"),
            threads_changed <- new_condvar!("Vm::threads_changed"),
        }? Error);
        Arc::pin_init(init, GFP_KERNEL)
    }

    /// An executor running this VM's S-EPT operations under its policy; its
    /// kicks and retries are the VM's trace events.
    pub(crate) fn executor(&self) -> VmExecutor<'_> {
        Executor::new(
            self.cfg.policy,
            &self.gate,
            self,
            &self.counters,
            &self.clock,
        )
        .with_events(&self.events)
    }

    /// The policy's counters, for the policy's suites outside `sim`.
    #[cfg(tsg_tests)]
    pub(crate) fn counters(&self) -> &Counters<KCounter> {
        &self.counters
    }

    /// The entry gate, for the policy's suites outside `sim`.
    #[cfg(tsg_tests)]
    pub(crate) fn gate(&self) -> &EntryGate<KAtomic64> {
        &self.gate
    }

    /// The mirror SPTE of the 4K page at `gpa`.
    pub(super) fn mirror_page(&self, gpa: u64) -> Option<&KAtomic64> {
        self.mirror_pages.get(self.cfg.geometry.page_index(gpa)?)
    }

    /// The mirror SPTE of the S-EPT page covering `gpa`.
    pub(super) fn mirror_table(&self, gpa: u64) -> Option<&KAtomic64> {
        self.mirror_tables.get(self.cfg.geometry.table_of(gpa))
    }

    /// Whether a kick sent to vCPU `idx` is waiting for it: a real CPU in
    /// guest mode exits at once on such an interrupt.
    pub(super) fn kick_pending(&self, idx: usize) -> bool {
        !self.ipis.acked(idx as u32)
    }

    /// Records an S-EPT operation that ended after `tries` SEAMCALLs and
    /// `ns` nanoseconds.
    pub(super) fn note_op(&self, tries: u32, ns: u64) {
        self.sim_counters.sim_sept_ops.add(1);
        if tries > 1 {
            self.sim_counters.sim_ops_retried.add(1);
            self.sim_counters.sim_retried_op_ns.add(ns);
        }
        self.sim_counters.sim_max_tries.record_max(u64::from(tries));
        self.op_ns.record(ns);
    }

    /// A page for a guest to touch: from the small shared set with
    /// probability `contention_pct`, else from all of memory.
    pub(super) fn pick_gpa(&self, rng: &mut Rng) -> u64 {
        self.pick_run(rng, 1)
    }

    /// The first page of a run of `len` pages, picked as [`Self::pick_gpa`]
    /// does; the run stays inside the TD's memory.
    pub(super) fn pick_run(&self, rng: &mut Rng, len: u32) -> u64 {
        let all = self.cfg.geometry.pages;
        let pages = if rng.below(100) < u64::from(self.cfg.contention_pct) {
            self.cfg.hot_pages.min(all)
        } else {
            all
        };
        let last_start = all.saturating_sub(len as usize);
        ((rng.below(pages as u64) as usize).min(last_start) as u64) << 12
    }

    /// Stops the VM: its vCPUs never enter again. The first record wins;
    /// it alone is logged and traced. `injected`: `status` was made up by
    /// the module's fault injection.
    pub(super) fn stop(
        &self,
        leaf: Leaf,
        reason: Option<VmBugReason>,
        status: Status,
        injected: bool,
    ) {
        let mut rec = self.stop_record.lock();
        if rec.is_none() {
            let how = if injected { ", injected" } else { "" };
            match reason {
                Some(reason) => pr_warn!(
                    "sim VM {} stopped: {} ended in {:?} (status {:#018x}{})\n",
                    self.events.vm(),
                    leaf.name(),
                    reason,
                    status.raw(),
                    how
                ),
                None => pr_warn!(
                    "sim VM {} stopped: {} failed (status {:#018x}{})\n",
                    self.events.vm(),
                    leaf.name(),
                    status.raw(),
                    how
                ),
            }
            self.events.vm_stop(leaf, status, reason, injected);
            *rec = Some(StopRecord {
                leaf,
                reason,
                status,
                injected,
            });
        }
        self.stopped.store(true, Release);
    }

    pub(super) fn is_stopped(&self) -> bool {
        self.stopped.load(Relaxed)
    }

    #[cfg(tsg_tests)]
    pub(super) fn stop_record(&self) -> Option<StopRecord> {
        *self.stop_record.lock()
    }

    /// A vCPU thread starts working on the VM.
    pub(super) fn vcpu_thread_started(&self) {
        self.threads.lock().started += 1;
    }

    /// A vCPU thread is done (its budget spent, or the VM stopped).
    pub(super) fn vcpu_thread_finished(&self) {
        self.threads.lock().finished += 1;
        self.threads_changed.notify_all();
    }

    /// Every vCPU thread is done with its budget (or the VM stopped).
    pub(super) fn vcpus_done(&self) -> bool {
        let t = *self.threads.lock();
        t.finished >= t.started
    }

    #[cfg(tsg_tests)]
    /// Waits (sleeping) until every vCPU thread is done or `timeout_ms`
    /// passed; returns whether they all are.
    pub(super) fn wait_vcpus_done(&self, timeout_ms: u32) -> bool {
        let mut left = msecs_to_jiffies(timeout_ms);
        let mut threads = self.threads.lock();
        while threads.finished < threads.started {
            match self
                .threads_changed
                .wait_interruptible_timeout(&mut threads, left)
            {
                CondVarTimeoutResult::Timeout => break,
                // A kthread takes no signals; either way, wait out the rest.
                CondVarTimeoutResult::Woken { jiffies }
                | CondVarTimeoutResult::Signal { jiffies } => left = jiffies,
            }
        }
        threads.finished >= threads.started
    }

    /// Every counter as `name value` lines: the policy's, the simulation's,
    /// the simulated TDX module's; then whether the VM is stopped.
    pub(super) fn render_stats(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        use crate::policy::CounterTable;
        self.counters.render(f)?;
        self.sim_counters.render(f)?;
        self.module.stats.render(f)?;
        writeln!(f, "sim_vm_stopped {}", u8::from(self.is_stopped()))?;
        writeln!(f, "sim_vcpus_done {}", u8::from(self.vcpus_done()))
    }

    /// The latency histograms (see [`Histogram::render`]): the
    /// simulation's own (whole operations, faults), then those every
    /// backend keeps ([`Latencies`]).
    pub(super) fn render_latency(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.op_ns.render("op_ns", f)?;
        self.fault_ns.render("fault_ns", f)?;
        match self.events.latency() {
            Some(l) => l.render(f),
            None => crate::platform::latency::render_off(f),
        }
    }

    /// Zeroes every counter.
    pub(super) fn reset_stats(&self) {
        use crate::policy::CounterTable;
        self.counters.reset();
        self.sim_counters.reset();
        self.module.stats.reset();
        self.op_ns.reset();
        self.fault_ns.reset();
        if let Some(l) = self.events.latency() {
            l.reset();
        }
        for v in self.vcpus.iter() {
            v.enters.reset();
        }
    }

    #[cfg(tsg_tests)]
    /// Compares the mirror SPTEs with the simulated S-EPT: every present
    /// mirror page is PENDING or MAPPED in the module and every other one is
    /// FREE; likewise for S-EPT pages. Returns the number of mismatches.
    pub(super) fn mismatches(&self) -> usize {
        use super::tdx_module::{
            FREE,
            MAPPED,
            PENDING,
            PRESENT, //
        };
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
    type Kick = u64;

    fn nr_vcpus(&self) -> usize {
        self.vcpus.len()
    }

    fn exiting_guest_mode(&self, i: usize) -> u32 {
        exiting_guest_mode(&self.vcpus[i].mode)
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
        if self.in_guest.fetch_add(0, Full) != 0 {
            self.sim_counters.sim_gate_violations.add(1);
        }
        Ok(())
    }
}
