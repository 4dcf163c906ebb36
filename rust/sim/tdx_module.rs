// SPDX-License-Identifier: GPL-2.0

//! The simulated TDX module: one TD's S-EPT, its locks, TD epochs and the
//! per-vCPU zero-step state, with the SEAMCALLs KVM uses and the guest's
//! TDG.MEM.PAGE.ACCEPT. The rules are the ones in
//! `Documentation/simulator.rst`; each function names the call it models.
//!
//! Like the real module this never waits for a lock: a lost try returns
//! `TDX_OPERAND_BUSY` with the operand, to host and guest alike.

use super::locks::{
    GuestLockError,
    SeptEntry,
    SxLock, //
};
use super::spin::{
    spin_ns,
    spin_us_while, //
};
use crate::platform::{
    fault::{
        injected_busy,
        Fault, //
    },
    sync::KCounter,
};
use crate::policy::counters::counter_table;
use crate::policy::status::{
    TDX_GPA_RANGE_NOT_BLOCKED,
    TDX_OPERAND_BUSY_HOST_PRIORITY,
    TDX_PREVIOUS_TLB_EPOCH_BUSY,
    TDX_TLB_TRACKING_NOT_DONE, //
};
use crate::policy::{
    CounterCell,
    Leaf,
    Operand,
    SeptOp,
    Status, //
};
use kernel::prelude::*;
use kernel::sync::atomic::{
    Acquire,
    Atomic,
    Full,
    Relaxed,
    Release, //
};

/// `TDX_EPT_WALK_FAILED` (`arch/x86/include/asm/shared/tdx_errno.h`).
const TDX_EPT_WALK_FAILED: u64 = 0xC000_0B00_0000_0000;
/// `TDX_EPT_ENTRY_STATE_INCORRECT` (same header).
const TDX_EPT_ENTRY_STATE_INCORRECT: u64 = 0xC000_0B0D_0000_0000;

/// Leaf (4K) entry states.
pub(crate) const FREE: u64 = 0;
pub(crate) const PENDING: u64 = 1;
pub(crate) const MAPPED: u64 = 2;
pub(crate) const BLOCKED: u64 = 3;
/// Non-leaf entry state: the S-EPT page below it exists.
pub(crate) const PRESENT: u64 = 1;

/// The longest a guest's long ACCEPT runs before it yields by itself.
const LONG_ACCEPT_MAX_US: u32 = 100_000;

/// Size of the module's per-vCPU list of zero-step GPAs.
const ZERO_STEP_LIST_LEN: usize = 32;
/// The module's `STEPPING_EPF_THRESHOLD`.
pub(crate) use crate::policy::zero_step::STEPPING_EPF_THRESHOLD;

/// The shape of the simulated TD.
#[derive(Clone, Copy)]
pub(crate) struct Geometry {
    /// 4K pages of private memory.
    pub(crate) pages: usize,
    /// 4K pages covered by one S-EPT page (512 in hardware; fewer here so
    /// that TDH.MEM.SEPT.ADD runs often).
    pub(crate) pages_per_table: usize,
}

impl Geometry {
    pub(crate) fn tables(&self) -> usize {
        self.pages.div_ceil(self.pages_per_table)
    }

    pub(crate) fn page_index(&self, gpa: u64) -> Option<usize> {
        let i = usize::try_from(gpa >> 12).ok()?;
        (i < self.pages).then_some(i)
    }

    pub(crate) fn table_of(&self, gpa: u64) -> usize {
        (gpa >> 12) as usize / self.pages_per_table
    }

    pub(crate) fn table_gpa(&self, table: usize) -> u64 {
        ((table * self.pages_per_table) as u64) << 12
    }
}

/// How long the module holds its locks, in microseconds of busy-waiting.
#[derive(Clone, Copy)]
pub(crate) struct Latency {
    /// Inside each S-EPT SEAMCALL, with the locks held.
    pub(crate) seamcall_us: u32,
    /// Inside a guest ACCEPT of a pending page, with the entry locked.
    pub(crate) accept_us: u32,
    /// Every SEAMCALL's way into SEAM mode and back, TDH.VP.ENTER's too,
    /// whatever it returns: a busy status is not free. Paid before any
    /// lock is tried.
    pub(crate) round_trip_us: u32,
}

/// The default of [`TdxModule::with_cost_pct`]: the assumed SEAMCALL cost
/// as [`Latency`] gives it.
pub(crate) const DEFAULT_COST_PCT: u32 = 100;

/// [`Latency`] in nanoseconds, with the SEAMCALL cost scaled.
#[derive(Clone, Copy)]
struct Cost {
    /// [`Latency::seamcall_us`], scaled.
    seamcall_ns: u64,
    /// [`Latency::round_trip_us`], scaled.
    round_trip_ns: u64,
    /// [`Latency::accept_us`], as given: a guest's page initialisation, not
    /// a SEAMCALL.
    accept_ns: u64,
}

impl Cost {
    fn new(latency: Latency, cost_pct: u32) -> Self {
        let scaled = |us: u32| u64::from(us) * 1000 * u64::from(cost_pct) / 100;
        Self {
            seamcall_ns: scaled(latency.seamcall_us),
            round_trip_ns: scaled(latency.round_trip_us),
            accept_ns: u64::from(latency.accept_us) * 1000,
        }
    }
}

/// What one host SEAMCALL returned, and whether the module's fault
/// injection made the status up instead of the simulated TDX module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Issued {
    pub(crate) status: Status,
    pub(crate) injected: bool,
}

/// What TDH.VP.ENTER did.
pub(crate) enum Enter {
    /// The vCPU runs in `epoch` until [`TdxModule::td_exit`].
    Entered { epoch: u64 },
    /// A lock was busy; the vCPU did not enter.
    Busy(Status),
    /// Zero-step mitigation: a listed GPA still faults, so the module returns
    /// a synthetic EPT-violation exit for it instead of entering.
    EptViolation(u64),
}

/// What a guest's TDG.MEM.PAGE.ACCEPT did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Accept {
    Accepted,
    AlreadyAccepted,
    /// The entry is not mapped: the guest exits with an EPT violation.
    EptViolation,
    /// `TDX_OPERAND_BUSY` or `..._HOST_PRIORITY`; the guest tries again later.
    Busy(Status),
    /// A long ACCEPT was cut short by an exit (`TDX_INTERRUPTED_RESUMABLE`);
    /// the guest resumes it on the next entry.
    Interrupted,
}

/// The module's zero-step state of one vCPU (module `td_exit_stepping.c`).
/// Owned by the vCPU's thread: TDH.VP.ENTER and exits run only there.
pub(crate) struct ZeroStepState {
    /// The guest RIP of the last EPT-violation exit.
    last_rip: Option<u64>,
    count: u32,
    list: [u64; ZERO_STEP_LIST_LEN],
    len: usize,
}

impl ZeroStepState {
    pub(crate) const fn new() -> Self {
        Self {
            last_rip: None,
            count: 0,
            list: [0; ZERO_STEP_LIST_LEN],
            len: 0,
        }
    }

    /// Whether the mitigation is active (the GPA list is non-empty).
    pub(crate) fn active(&self) -> bool {
        self.len != 0
    }
}

counter_table! {
    counters = crate::policy::counters;
    /// What the simulated TDX module saw, for the tests and debugfs.
    pub(super) struct ModuleStats<C> {
        /// Times a vCPU's zero-step mitigation engaged (its GPA list filled).
        sim_mitigation_engaged: "sim_module",
        /// Synthetic EPT-violation exits TDH.VP.ENTER returned under
        /// zero-step mitigation.
        sim_synthetic_exits: "sim_module",
        /// TDH.VP.ENTER calls, whatever they returned.
        sim_vp_enters: "sim_module",
        /// TDH.VP.ENTER calls that found a lock busy.
        sim_enter_busy: "sim_module",
        /// Guest TDG.MEM.PAGE.ACCEPTs that accepted a page.
        sim_guest_accepts: "sim_module",
        /// Guest ACCEPTs that found the entry busy.
        sim_guest_busy: "sim_module",
        /// Guest ACCEPTs that lost to the host-priority bit.
        sim_guest_host_priority: "sim_module",
    }
}

/// One TD as the TDX module sees it.
pub(crate) struct TdxModule {
    geometry: Geometry,
    cost: Cost,
    sept_lock: SxLock,
    epoch_lock: SxLock,
    epoch: Atomic<u64>,
    /// vCPUs inside the guest, counted per epoch parity: TRACK only advances
    /// when the older epoch is empty, so two slots are enough.
    in_epoch: [Atomic<u64>; 2],
    tables: KVec<SeptEntry>,
    pages: KVec<SeptEntry>,
    block_epoch: KVec<Atomic<u64>>,
    /// Fault injection: every S-EPT SEAMCALL finds the tree lock held, as if
    /// the module leaked it. No kick can help.
    stuck_busy: Atomic<bool>,
    pub(super) stats: ModuleStats<KCounter>,
}

fn busy(operand: Operand) -> Status {
    Status::operand_busy(operand)
}

impl TdxModule {
    /// A module at the assumed cost (the suites' fake TDs and tables).
    #[cfg(tsg_tests)]
    pub(crate) fn new(geometry: Geometry, latency: Latency) -> Result<Self> {
        Self::with_cost_pct(geometry, latency, DEFAULT_COST_PCT)
    }

    /// A module whose SEAMCALLs cost `cost_pct` percent of what `latency`
    /// says: the round trip and the time inside with the locks held, of the
    /// host's SEAMCALLs, TDH.VP.ENTER and the walk of a guest's ACCEPT.
    /// The page initialisation of an ACCEPT (`accept_us`) is not scaled.
    pub(crate) fn with_cost_pct(
        geometry: Geometry,
        latency: Latency,
        cost_pct: u32,
    ) -> Result<Self> {
        let mut tables = KVec::with_capacity(geometry.tables(), GFP_KERNEL)?;
        for _ in 0..geometry.tables() {
            tables.push(SeptEntry::new(FREE), GFP_KERNEL)?;
        }
        let mut pages = KVec::with_capacity(geometry.pages, GFP_KERNEL)?;
        let mut block_epoch = KVec::with_capacity(geometry.pages, GFP_KERNEL)?;
        for _ in 0..geometry.pages {
            pages.push(SeptEntry::new(FREE), GFP_KERNEL)?;
            block_epoch.push(Atomic::new(0), GFP_KERNEL)?;
        }
        Ok(Self {
            geometry,
            cost: Cost::new(latency, cost_pct),
            sept_lock: SxLock::new(),
            epoch_lock: SxLock::new(),
            epoch: Atomic::new(1),
            in_epoch: [Atomic::new(0), Atomic::new(0)],
            tables,
            pages,
            block_epoch,
            stuck_busy: Atomic::new(false),
            stats: ModuleStats::new(),
        })
    }

    /// The state of the leaf entry for `gpa`, if it is in the TD.
    pub(crate) fn page_state(&self, gpa: u64) -> Option<u64> {
        Some(self.pages[self.geometry.page_index(gpa)?].state())
    }

    /// Whether someone holds the entry lock of the page at `gpa`.
    #[cfg(tsg_tests)]
    pub(crate) fn page_locked(&self, gpa: u64) -> bool {
        self.geometry
            .page_index(gpa)
            .is_some_and(|i| self.pages[i].is_locked())
    }

    #[cfg(tsg_tests)]
    pub(crate) fn table_state(&self, table: usize) -> Option<u64> {
        self.tables.get(table).map(SeptEntry::state)
    }

    /// The S-EPT tree lock, for tests that play a concurrent holder.
    #[cfg(tsg_tests)]
    pub(super) fn sept_lock(&self) -> &SxLock {
        &self.sept_lock
    }

    #[cfg(tsg_tests)]
    pub(crate) fn set_stuck_busy(&self, on: bool) {
        self.stuck_busy.store(on, Relaxed);
    }

    /// Issues try `tries` (1: the first) of an operation's host SEAMCALL.
    /// A map leaf (TDH.MEM.SEPT.ADD, TDH.MEM.PAGE.AUG) asks the module's
    /// fault injection first: `fail_map_busy` for a first try,
    /// `fail_retry_busy` for a later one. An injected try returns
    /// [`injected_busy`] at once, as a busy entry lock would, without
    /// running the call: no lock is tried, no time passes, nothing changes.
    pub(crate) fn seamcall_try(&self, op: &SeptOp, tries: u32) -> Issued {
        let map = matches!(op.leaf, Leaf::MemSeptAdd | Leaf::MemPageAug);
        if map && Fault::for_try(tries).should_fail() {
            return Issued {
                status: injected_busy(),
                injected: true,
            };
        }
        Issued {
            status: self.seamcall(op),
            injected: false,
        }
    }

    /// Issues one host SEAMCALL, without fault injection.
    pub(crate) fn seamcall(&self, op: &SeptOp) -> Status {
        spin_ns(self.cost.round_trip_ns);
        if self.stuck_busy.load(Relaxed) && op.leaf != Leaf::MemTrack {
            return busy(Operand::Sept);
        }
        match op.leaf {
            Leaf::MemSeptAdd => self.sept_add(op.gpa),
            Leaf::MemPageAug => self.page_aug(op.gpa),
            Leaf::MemRangeBlock => self.range_block(op.gpa),
            Leaf::MemTrack => self.track(),
            Leaf::MemPageRemove => self.page_remove(op.gpa),
            // TDH.MEM.PAGE.ADD is for TD build time and TDH.VP.ENTER has its
            // own entry point: neither is a runtime S-EPT operation.
            Leaf::MemPageAdd | Leaf::VpEnter => Status::from_raw(TDX_EPT_WALK_FAILED),
        }
    }

    /// Runs `f` on the leaf entry of `gpa` with the tree lock held shared
    /// (or exclusive) and the entry locked by the host. `f` returns the new
    /// state and the status.
    fn with_page(
        &self,
        gpa: u64,
        exclusive: bool,
        f: impl FnOnce(usize, u64) -> (u64, Status),
    ) -> Status {
        let Some(i) = self.geometry.page_index(gpa) else {
            return Status::from_raw(TDX_EPT_WALK_FAILED);
        };
        let locked = if exclusive {
            self.sept_lock.try_exclusive()
        } else {
            self.sept_lock.try_shared()
        };
        if !locked {
            return busy(Operand::Sept);
        }
        let status = if self.tables[self.geometry.table_of(gpa)].state() != PRESENT {
            Status::from_raw(TDX_EPT_WALK_FAILED)
        } else if let Some(state) = self.pages[i].host_try_lock() {
            spin_ns(self.cost.seamcall_ns);
            let (new_state, status) = f(i, state);
            self.pages[i].unlock(new_state);
            status
        } else {
            busy(Operand::Rcx)
        };
        if exclusive {
            self.sept_lock.unlock_exclusive();
        } else {
            self.sept_lock.unlock_shared();
        }
        status
    }

    /// TDH.MEM.SEPT.ADD: tree lock shared, host lock on the parent entry.
    fn sept_add(&self, gpa: u64) -> Status {
        let Some(entry) = self.tables.get(self.geometry.table_of(gpa)) else {
            return Status::from_raw(TDX_EPT_WALK_FAILED);
        };
        if !self.sept_lock.try_shared() {
            return busy(Operand::Sept);
        }
        let status = match entry.host_try_lock() {
            Some(FREE) => {
                spin_ns(self.cost.seamcall_ns);
                entry.unlock(PRESENT);
                Status::SUCCESS
            }
            Some(state) => {
                entry.unlock(state);
                Status::from_raw(TDX_EPT_ENTRY_STATE_INCORRECT)
            }
            None => busy(Operand::Rcx),
        };
        self.sept_lock.unlock_shared();
        status
    }

    /// TDH.MEM.PAGE.AUG: tree lock shared, host lock on the leaf; FREE to
    /// PENDING (the guest accepts it later).
    fn page_aug(&self, gpa: u64) -> Status {
        self.with_page(gpa, false, |_, state| match state {
            FREE => (PENDING, Status::SUCCESS),
            _ => (state, Status::from_raw(TDX_EPT_ENTRY_STATE_INCORRECT)),
        })
    }

    /// TDH.MEM.RANGE.BLOCK: tree lock exclusive, host lock on the leaf;
    /// records the blocking epoch.
    fn range_block(&self, gpa: u64) -> Status {
        self.with_page(gpa, true, |i, state| match state {
            PENDING | MAPPED => {
                self.block_epoch[i].store(self.epoch.load(Relaxed), Relaxed);
                (BLOCKED, Status::SUCCESS)
            }
            _ => (state, Status::from_raw(TDX_EPT_ENTRY_STATE_INCORRECT)),
        })
    }

    /// TDH.MEM.TRACK: epoch lock exclusive; advances the epoch once no vCPU
    /// that entered in the previous epoch is still inside.
    fn track(&self) -> Status {
        if !self.epoch_lock.try_exclusive() {
            return busy(Operand::TdEpoch);
        }
        let epoch = self.epoch.load(Relaxed);
        let status = if self.in_epoch[((epoch + 1) & 1) as usize].load(Acquire) != 0 {
            Status::from_raw(TDX_PREVIOUS_TLB_EPOCH_BUSY)
        } else {
            self.epoch.store(epoch + 1, Release);
            Status::SUCCESS
        };
        self.epoch_lock.unlock_exclusive();
        status
    }

    /// TDH.MEM.PAGE.REMOVE: tree lock shared (1.5), host lock on the leaf;
    /// the page must be blocked and its blocking tracked: the blocking epoch
    /// at least two behind, or one behind with nobody left in it.
    fn page_remove(&self, gpa: u64) -> Status {
        self.with_page(gpa, false, |i, state| {
            if state != BLOCKED {
                return (state, Status::from_raw(TDX_GPA_RANGE_NOT_BLOCKED));
            }
            let blocked_in = self.block_epoch[i].load(Relaxed);
            let now = self.epoch.load(Acquire);
            let tracked = now >= blocked_in + 2
                || (now == blocked_in + 1
                    && self.in_epoch[(blocked_in & 1) as usize].load(Acquire) == 0);
            if tracked {
                (FREE, Status::SUCCESS)
            } else {
                (state, Status::from_raw(TDX_TLB_TRACKING_NOT_DONE))
            }
        })
    }

    /// TDH.VP.ENTER, up to the point where the guest runs. Call with local
    /// interrupts off and the vCPU published in guest mode.
    pub(crate) fn vp_enter(&self, zs: &ZeroStepState) -> Enter {
        self.stats.sim_vp_enters.add(1);
        spin_ns(self.cost.round_trip_ns);
        if !self.epoch_lock.try_shared() {
            self.stats.sim_enter_busy.add(1);
            return Enter::Busy(busy(Operand::TdEpoch));
        }
        if zs.active() {
            // Mitigation: walk the listed GPAs with the tree lock exclusive.
            if !self.sept_lock.try_exclusive() {
                self.epoch_lock.unlock_shared();
                self.stats.sim_enter_busy.add(1);
                return Enter::Busy(busy(Operand::Sept));
            }
            spin_ns(self.cost.seamcall_ns);
            let faulting = zs.list[..zs.len]
                .iter()
                .copied()
                .find(|&gpa| !matches!(self.page_state(gpa), Some(PENDING | MAPPED)));
            self.sept_lock.unlock_exclusive();
            if let Some(gpa) = faulting {
                self.epoch_lock.unlock_shared();
                self.stats.sim_synthetic_exits.add(1);
                return Enter::EptViolation(gpa);
            }
        }
        let epoch = self.epoch.load(Relaxed);
        self.in_epoch[(epoch & 1) as usize].add(1, Relaxed);
        self.epoch_lock.unlock_shared();
        Enter::Entered { epoch }
    }

    /// The TD exit that ends an entry made in `epoch`.
    pub(crate) fn td_exit(&self, epoch: u64) {
        self.in_epoch[(epoch & 1) as usize].fetch_sub(1, Full);
    }

    /// Zero-step accounting of a private-GPA EPT-violation exit at guest
    /// `rip` on `gpa`. (The module sees the RIP; KVM, and so the policy's
    /// detector, does not.)
    pub(crate) fn ept_violation_exit(&self, zs: &mut ZeroStepState, rip: u64, gpa: u64) {
        if zs.last_rip != Some(rip) {
            *zs = ZeroStepState::new();
            zs.last_rip = Some(rip);
        }
        if zs.count < STEPPING_EPF_THRESHOLD {
            zs.count += 1;
        } else if !zs.list[..zs.len].contains(&gpa) && zs.len < ZERO_STEP_LIST_LEN {
            if zs.len == 0 {
                self.stats.sim_mitigation_engaged.add(1);
            }
            zs.list[zs.len] = gpa;
            zs.len += 1;
        }
    }

    /// An exit that shows guest progress (a new RIP) clears the vCPU's
    /// zero-step state.
    pub(crate) fn progress_exit(&self, zs: &mut ZeroStepState) {
        *zs = ZeroStepState::new();
    }

    /// TDG.MEM.PAGE.ACCEPT from a guest running in `epoch`: guest lock on the
    /// leaf; PENDING to MAPPED, holding the lock while the page is
    /// initialised. Runs in the vCPU's guest section (interrupts off).
    pub(crate) fn guest_accept(&self, gpa: u64) -> Accept {
        let Some(i) = self.geometry.page_index(gpa) else {
            return Accept::EptViolation;
        };
        let state = match self.pages[i].guest_try_lock() {
            Ok(state) => state,
            Err(GuestLockError::Busy) => {
                self.stats.sim_guest_busy.add(1);
                return Accept::Busy(busy(Operand::Rcx));
            }
            Err(GuestLockError::HostPriority) => {
                self.stats.sim_guest_host_priority.add(1);
                return Accept::Busy(Status::from_raw(TDX_OPERAND_BUSY_HOST_PRIORITY));
            }
        };
        // The walk itself takes as long as a SEAMCALL's.
        spin_ns(self.cost.seamcall_ns);
        let (new_state, result) = match state {
            PENDING => {
                spin_ns(self.cost.accept_ns);
                self.stats.sim_guest_accepts.add(1);
                (MAPPED, Accept::Accepted)
            }
            MAPPED => (MAPPED, Accept::AlreadyAccepted),
            other => (other, Accept::EptViolation),
        };
        self.pages[i].unlock(new_state);
        result
    }

    /// A plain guest access (a load or store) to the page at `gpa`: the
    /// hardware walk takes no entry lock; it faults unless the page is
    /// mapped (a PENDING page would raise #VE in the guest, which the
    /// simulated guests do not have: it counts as done).
    pub(crate) fn guest_touch(&self, gpa: u64) -> Accept {
        match self.page_state(gpa) {
            Some(PENDING | MAPPED) => Accept::AlreadyAccepted,
            _ => Accept::EptViolation,
        }
    }

    /// A guest's long TDG.MEM.PAGE.ACCEPT of the page at `gpa` (the accept
    /// of a 2M range, say): it holds the entry lock while `running()` says
    /// the vCPU is still in the guest (an interrupt, such as a kick, makes
    /// a real CPU exit at once), for at most [`LONG_ACCEPT_MAX_US`].
    pub(crate) fn guest_long_accept(&self, gpa: u64, running: impl Fn() -> bool) -> Accept {
        let Some(i) = self.geometry.page_index(gpa) else {
            return Accept::EptViolation;
        };
        let Ok(state) = self.pages[i].guest_try_lock() else {
            self.stats.sim_guest_busy.add(1);
            return Accept::Busy(busy(Operand::Rcx));
        };
        spin_us_while(LONG_ACCEPT_MAX_US, running);
        self.pages[i].unlock(state);
        Accept::Interrupted
    }
}
