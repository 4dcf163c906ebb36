// SPDX-License-Identifier: GPL-2.0

//! KUnit: KVM 7.2's own `tdx_sept_set_private_spte()` (and, below it,
//! `tdh_do_no_vcpus()` and `kvm_make_all_cpus_request()`) run against the
//! simulated TDX module, with and without the module's hook.
//!
//! The TD is fake but built as KVM builds one (`fake_td.c`): a zeroed
//! `struct kvm_tdx`, `mmu_lock`, `TD_STATE_RUNNABLE`, an HKID, and vCPUs in
//! `vcpu_array` whose `mode` and `cpu` a kthread drives, honouring
//! `wait_for_sept_zap` as `tdx_vcpu_run()` does. For the length of a test the
//! SEAMCALL wrappers (`tdh_mem_page_aug()`, ...) are redirected to the
//! simulated TDX module; nothing else of KVM is touched.

use kernel::macros::kunit_tests;

use super::bindings::{
    kvm,
    kvm_vcpu,
    Td,
    Vcpu, //
};
use super::hooks::{
    self,
    Redirect, //
};
use super::{
    AttachOptions,
    KvmBackend,
    Unavailable,
    TARGET,
    VM_INIT, //
};
use crate::platform::sync::KCounter;
use crate::platform::{
    fault::{
        self,
        Fault, //
    },
    irq::IrqsOff,
    thread::{
        run_on_cpu,
        sleep_ms,
        Thread,
        ThreadBody,
        ThreadCtx, //
    },
    trace::record::Recording,
};
use crate::policy::{
    CounterCell,
    Counters,
    Leaf,
    Operand,
    Policy,
    SeptOp,
    Status, //
};
use crate::sim::spin::spin_us;
use crate::sim::tdx_module::{
    Enter,
    Geometry,
    Latency,
    TdxModule,
    ZeroStepState,
    FREE,
    PENDING, //
};
use core::ffi::{
    c_int,
    CStr, //
};
use kernel::{
    error::to_result,
    ffi::c_char,
    prelude::*,
    processor::cpu_relax,
    str::CString,
    sync::{
        atomic::{
            Acquire,
            Atomic,
            Relaxed,
            Release, //
        },
        Arc,
    },
    time::{
        Instant,
        Monotonic, //
    },
};

use super::bindings::ffi::*;

/// The simulated TDX module behind the SEAMCALL stand-ins, while a test runs.
static MODULE: Atomic<usize> = Atomic::new(0);

/// SEAMCALLs the stand-ins sent to the simulated TDX module, ever.
pub(super) static SEAMCALLS: Atomic<u64> = Atomic::new(0);

/// [`SEAMCALLS`] by the CPU that issued them (CPUs 0 to 7), and the busy
/// statuses the simulated module returned to them: a map call runs with
/// preemption off, so the count on its CPU across the call is its own.
pub(super) static SEAMCALLS_ON: [Atomic<u64>; 8] = [const { Atomic::new(0) }; 8];
pub(super) static BUSY_STATUSES: Atomic<u64> = Atomic::new(0);

/// Runs one SEAMCALL for `fake_td.c`'s stand-ins.
#[no_mangle]
extern "C" fn tsg_fake_seamcall(leaf: u64, gpa: u64, level: c_int) -> u64 {
    let module = MODULE.load(Acquire) as *const TdxModule;
    let Some(leaf) = Leaf::from_number(leaf).filter(|_| !module.is_null()) else {
        return crate::policy::status::TDX_ERROR;
    };
    // SAFETY: `MODULE` is set only while the `FakeTd` owning the module is
    // alive, and cleared (after its redirections are gone) before it drops.
    let module = unsafe { &*module };
    SEAMCALLS.add(1, Relaxed);
    let cpu = kernel::cpu::CpuId::current().as_u32() as usize;
    if let Some(n) = SEAMCALLS_ON.get(cpu) {
        n.add(1, Relaxed);
    }
    let status = module.seamcall(&SeptOp {
        leaf,
        gpa,
        level: level as u8,
    });
    if status.is_operand_busy() {
        BUSY_STATUSES.add(1, Relaxed);
    }
    status.raw()
}

/// The guest page the tests map.
pub(super) const X: u64 = 0x5000;
/// The lowest S-EPT level: `PG_LEVEL_4K`.
pub(super) const PG_LEVEL_4K: i32 = 1;

/// A fake vCPU's thread: enters the "guest" over and over.
pub(super) struct FakeVcpu {
    kvm: usize,
    /// Which of the fake TD's vCPUs it plays.
    idx: u32,
    pub(super) module: Arc<KBox<TdxModule>>,
    /// 1 + a GPA whose entry the guest keeps locked (a long ACCEPT) until
    /// kicked, or 0.
    pub(super) hog: Atomic<u64>,
    /// Whether the guest ignores kicks (interrupts off, no exit) while it
    /// hogs.
    stuck: Atomic<bool>,
    /// Entries refused by `wait_for_sept_zap`, and kicks seen.
    refused: Atomic<u64>,
    pub(super) kicks_seen: Atomic<u64>,
    /// While hogging: hold the entry at most this long per entry into the
    /// guest (0: until kicked, or the long ACCEPT's own limit), then stay
    /// out of the guest for `free_us` before the next entry.
    hold_us: u32,
    free_us: u32,
}

impl FakeVcpu {
    fn vcpu(&self) -> *mut kvm_vcpu {
        // SAFETY: The fake TD outlives this thread (`FakeTd` stops the
        // thread before freeing the TD); vCPU `idx` exists.
        unsafe { Td::from_kvm(self.kvm as *mut kvm) }
            .and_then(|td| td.vcpu(self.idx))
            .map_or(core::ptr::null_mut(), Vcpu::as_ptr)
    }
}

impl ThreadBody for FakeVcpu {
    fn run(&self, ctx: &ThreadCtx) {
        let vcpu = self.vcpu();
        let zs = ZeroStepState::new();
        while !ctx.should_stop() {
            {
                let _irqs = IrqsOff::new();
                // SAFETY: `vcpu` is a live vCPU of the fake TD.
                if !unsafe { tsg_fake_vcpu_enter(vcpu) } {
                    self.refused.add(1, Relaxed);
                } else {
                    if let Enter::Entered { epoch } = self.module.vp_enter(&zs) {
                        match self.hog.load(Acquire) {
                            0 => spin_us(5),
                            gpa if self.stuck.load(Relaxed) => {
                                // Up to 300 ms in the guest, interrupts off,
                                // deaf to kicks.
                                for _ in 0..3 {
                                    let _ = self.module.guest_long_accept(gpa - 1, || true);
                                }
                            }
                            gpa => {
                                // SAFETY: As above.
                                let kicked = || unsafe { tsg_fake_vcpu_kicked(vcpu) };
                                let start = Instant::<Monotonic>::now();
                                let hold_ns = i64::from(self.hold_us) * 1000;
                                let running = || {
                                    !kicked()
                                        && (hold_ns == 0 || start.elapsed().as_nanos() < hold_ns)
                                };
                                let _ = self.module.guest_long_accept(gpa - 1, running);
                                if kicked() {
                                    self.kicks_seen.add(1, Relaxed);
                                }
                            }
                        }
                        self.module.td_exit(epoch);
                    }
                    // SAFETY: As above.
                    unsafe { tsg_fake_vcpu_exit(vcpu) };
                }
            }
            if self.free_us != 0 {
                spin_us(self.free_us);
            }
            ctx.pause();
        }
    }
}

/// A fake TD, its simulated TDX module, the SEAMCALL redirections and its
/// fake vCPUs (one on CPU 1 unless [`FakeTd::with_cpus`] says otherwise).
pub(super) struct FakeTd {
    // Dropped in this order: the vCPU threads, the redirections, the TD.
    vcpus: KVec<Thread<FakeVcpu>>,
    /// The CPU each vCPU's thread runs on.
    cpus: KVec<u32>,
    _seamcalls: KVec<Redirect>,
    pub(super) module: Arc<KBox<TdxModule>>,
    pub(super) kvm: *mut kvm,
}

impl FakeTd {
    pub(super) fn new() -> Result<Self> {
        Self::with_cpus(&[1])
    }

    /// A fake TD with one vCPU per CPU in `cpus`, which its thread will run
    /// on.
    pub(super) fn with_cpus(cpus: &[u32]) -> Result<Self> {
        Self::with_pages(cpus, 64, 1)
    }

    /// A fake TD with one vCPU per CPU in `cpus`, `pages` 4K pages of
    /// private memory, and its first `tables` S-EPT pages (16 pages each)
    /// already added.
    pub(super) fn with_pages(cpus: &[u32], pages: usize, tables: usize) -> Result<Self> {
        // It redirects KVM's SEAMCALL wrappers for every caller.
        super::test_host_check()?;
        let module = Arc::new(
            KBox::new(
                TdxModule::new(
                    Geometry {
                        pages,
                        pages_per_table: 16,
                    },
                    Latency {
                        seamcall_us: 1,
                        accept_us: 1,
                        round_trip_us: 1,
                    },
                )?,
                GFP_KERNEL,
            )?,
            GFP_KERNEL,
        )?;
        let mut cpu_list = KVec::new();
        cpu_list.extend_from_slice(cpus, GFP_KERNEL)?;
        // SAFETY: `cpus` holds one CPU number per vCPU.
        let kvm = unsafe { tsg_fake_td_new(cpus.len() as u32, cpus.as_ptr()) };
        if kvm.is_null() {
            return Err(ENOMEM);
        }
        let mut this = Self {
            vcpus: KVec::new(),
            cpus: cpu_list,
            _seamcalls: KVec::new(),
            module,
            kvm,
        };
        // Created as KVM creates a TD: `vt_vm_init()` (redirected while the
        // hook is attached, which then makes the TD's state), then listed
        // (on the suite's stand-in for KVM's VM list, where attaching looks).
        let vm_init = hooks::lookup(VM_INIT).ok_or(ENOENT)?;
        // SAFETY: `vm_init` is `vt_vm_init()`; `kvm` is the live fake TD.
        to_result(unsafe { tsg_fake_td_vm_init(vm_init, kvm) })?;
        // SAFETY: As above; taken off in `drop`.
        unsafe { tsg_fake_td_listed(kvm, true) };
        MODULE.store(
            core::ptr::from_ref::<TdxModule>(&this.module) as usize,
            Release,
        );
        for i in 0.. {
            let mut name: *const c_char = core::ptr::null();
            // SAFETY: `name` is valid for writes.
            let replacement = unsafe { tsg_fake_seamcall_wrapper(i, &mut name) };
            if replacement == 0 {
                break;
            }
            // SAFETY: `name` points to a string literal in `fake_td.c`.
            let name = unsafe { CStr::from_char_ptr(name) };
            let target = hooks::lookup(name).ok_or(ENOENT)?;
            // SAFETY: `target` is the start of the SEAMCALL wrapper `name` and
            // the replacement is `fake_td.c`'s stand-in of the same prototype.
            let redirect = unsafe { Redirect::new(name, target, replacement)? };
            this._seamcalls.push(redirect, GFP_KERNEL)?;
        }
        // The S-EPT page above X (and, if asked, those after it), as a TD
        // that already faulted nearby has them.
        for t in 0..tables {
            let table = SeptOp {
                leaf: Leaf::MemSeptAdd,
                gpa: (t as u64 * 16) << 12,
                level: 2,
            };
            if this.module.seamcall(&table) != Status::SUCCESS {
                return Err(EINVAL);
            }
        }
        Ok(this)
    }

    pub(super) fn td(&self) -> Td<'_> {
        // SAFETY: `kvm` is the live fake TD, freed only in `drop`.
        unsafe { Td::from_kvm(self.kvm) }.expect("fake TD")
    }

    /// Starts vCPU 0's thread, hogging `hog` if given.
    fn start_vcpu(&mut self, hog: Option<u64>, stuck: bool) -> Result<Arc<FakeVcpu>> {
        self.start_vcpu_cycling(hog, stuck, 0, 0)
    }

    /// Starts the thread of vCPU `idx` on its CPU, hogging `hog` if given.
    fn start_vcpu_at(&mut self, idx: u32, hog: Option<u64>, stuck: bool) -> Result<Arc<FakeVcpu>> {
        self.start(idx, hog, stuck, 0, 0)
    }

    /// As [`Self::start_vcpu`], the hog holding the entry at most `hold_us`
    /// per guest entry (0: no bound but the kick's) and staying out of the
    /// guest `free_us` between entries.
    pub(super) fn start_vcpu_cycling(
        &mut self,
        hog: Option<u64>,
        stuck: bool,
        hold_us: u32,
        free_us: u32,
    ) -> Result<Arc<FakeVcpu>> {
        self.start(0, hog, stuck, hold_us, free_us)
    }

    fn start(
        &mut self,
        idx: u32,
        hog: Option<u64>,
        stuck: bool,
        hold_us: u32,
        free_us: u32,
    ) -> Result<Arc<FakeVcpu>> {
        let body = Arc::new(
            FakeVcpu {
                kvm: self.kvm as usize,
                idx,
                module: self.module.clone(),
                hog: Atomic::new(hog.map_or(0, |g| g + 1)),
                stuck: Atomic::new(stuck),
                refused: Atomic::new(0),
                kicks_seen: Atomic::new(0),
                hold_us,
                free_us,
            },
            GFP_KERNEL,
        )?;
        let cpu = self
            .cpus
            .get(idx as usize)
            .and_then(|&c| crate::platform::online_cpu(c))
            .ok_or(EINVAL)?;
        self.vcpus.push(
            Thread::spawn(body.clone(), Some(cpu), c"tsg_fake_vcpu/%u", idx)?,
            GFP_KERNEL,
        )?;
        if let Some(gpa) = hog {
            // Wait (bounded) until the guest holds the entry.
            for _ in 0..5000 {
                if self.module.page_locked(gpa) {
                    break;
                }
                sleep_ms(1);
            }
        }
        Ok(body)
    }

    /// What KVM's TDP MMU does to map X: `tdx_sept_set_private_spte()` under
    /// the read side of `mmu_lock` (redirected if the hook is attached).
    /// Runs on CPU 0, away from the vCPU. Returns KVM's result and how long
    /// it took, in milliseconds.
    pub(super) fn map_x(&self) -> Result<(i32, i64)> {
        let orig = hooks::lookup(TARGET).ok_or(ENOENT)?;
        let kvm = self.kvm as usize;
        run_on_cpu(0, move || {
            let kvm = kvm as *mut kvm;
            let start = Instant::<Monotonic>::now();
            // SAFETY: The fake TD is live while the test waits for this;
            // the SPTE values are KVM's for a 4K private page; `mmu_lock` is
            // held for read, as KVM's fault path holds it.
            let ret = unsafe { kvm_map_x(orig, kvm) };
            (ret, start.elapsed().as_millis())
        })
    }

    /// KVM's maps of X and the two pages after it (the fake TD's first
    /// S-EPT page), one after the other on CPU 0; KVM's results.
    pub(super) fn map_three(&self) -> Result<[i32; 3]> {
        let orig = hooks::lookup(TARGET).ok_or(ENOENT)?;
        let kvm = self.kvm as usize;
        run_on_cpu(0, move || {
            // SAFETY: As in `map_x`, on three pages of the fake TD's first
            // S-EPT page.
            [X, X + 0x1000, X + 0x2000]
                .map(|gpa| unsafe { kvm_map_gpa(orig, kvm as *mut kvm, gpa) })
        })
    }

    /// KVM's zap of X: `tdx_sept_set_private_spte()` from present to not,
    /// under the write side of `mmu_lock`.
    pub(super) fn unmap_x(&self) -> Result<i32> {
        let orig = hooks::lookup(TARGET).ok_or(ENOENT)?;
        let kvm = self.kvm as usize;
        run_on_cpu(0, move || {
            let kvm = kvm as *mut kvm;
            // SAFETY: As in `map_x`, with `mmu_lock` held for write as KVM's
            // zap path holds it.
            unsafe { kvm_unmap_x(orig, kvm) }
        })
    }

    fn vm_dead_requested(&self) -> bool {
        // SAFETY: vCPU 0 of the live fake TD.
        self.td()
            .vcpu(0)
            .is_some_and(|v| unsafe { tsg_fake_vcpu_vm_dead_requested(v.as_ptr()) })
    }
}

/// What KVM's TDP MMU does to map X: `tdx_sept_set_private_spte()` at
/// `orig`, from non-present to a 4K private page, under the read side of
/// `mmu_lock` (redirected if the hook is attached).
///
/// # Safety
///
/// `kvm` is a live fake TD and `orig` KVM's `tdx_sept_set_private_spte()`.
pub(super) unsafe fn kvm_map_x(orig: usize, kvm: *mut kvm) -> i32 {
    // SAFETY: The caller's contract.
    unsafe { kvm_map_gpa(orig, kvm, X) }
}

/// [`kvm_map_x`] for the page at `gpa`.
///
/// # Safety
///
/// As for [`kvm_map_x`].
pub(super) unsafe fn kvm_map_gpa(orig: usize, kvm: *mut kvm, gpa: u64) -> i32 {
    // SAFETY: By the caller's contract; the SPTE values are KVM's for a 4K
    // private page, and `mmu_lock` is held for read as KVM's fault path
    // holds it.
    unsafe {
        tsg_fake_td_read_lock(kvm);
        let r = tsg_fake_td_set_private_spte(
            orig,
            kvm,
            gpa >> 12,
            tsg_fake_nonpresent_spte(),
            tsg_fake_present_leaf_spte(0x1234),
            PG_LEVEL_4K,
        );
        tsg_fake_td_read_unlock(kvm);
        r
    }
}

/// KVM's zap of X: `tdx_sept_set_private_spte()` from present to not, under
/// the write side of `mmu_lock`.
///
/// # Safety
///
/// As for [`kvm_map_x`].
pub(super) unsafe fn kvm_unmap_x(orig: usize, kvm: *mut kvm) -> i32 {
    // SAFETY: The caller's contract.
    unsafe { kvm_unmap_gpa(orig, kvm, X) }
}

/// [`kvm_unmap_x`] for the page at `gpa`.
///
/// # Safety
///
/// As for [`kvm_map_x`].
pub(super) unsafe fn kvm_unmap_gpa(orig: usize, kvm: *mut kvm, gpa: u64) -> i32 {
    // SAFETY: As in `kvm_map_gpa`, with `mmu_lock` held for write as KVM's
    // zap path holds it.
    unsafe {
        tsg_fake_td_write_lock(kvm);
        let r = tsg_fake_td_set_private_spte(
            orig,
            kvm,
            gpa >> 12,
            tsg_fake_present_leaf_spte(0x1234),
            tsg_fake_nonpresent_spte(),
            PG_LEVEL_4K,
        );
        tsg_fake_td_write_unlock(kvm);
        r
    }
}

impl Drop for FakeTd {
    fn drop(&mut self) {
        self.vcpus.clear();
        self._seamcalls.clear();
        MODULE.store(0, Release);
        // SAFETY: The TD is on the suite's VM list (`with_cpus`).
        unsafe { tsg_fake_td_listed(self.kvm, false) };
        // SAFETY: The thread is stopped and no redirection is left: nothing
        // uses the TD any more.
        unsafe { tsg_fake_td_free(self.kvm) };
    }
}

/// Attaches the hook to KVM (without a TDX CPU).
pub(super) fn attach(kick_timeout_us: u32) -> core::result::Result<KvmBackend, Unavailable> {
    attach_with(kick_timeout_us, Policy::DEFAULT)
}

/// As [`attach`], under `policy`.
pub(super) fn attach_with(
    kick_timeout_us: u32,
    policy: Policy,
) -> core::result::Result<KvmBackend, Unavailable> {
    attach_holding(kick_timeout_us, policy, false)
}

/// As [`attach_with`]; with `zero_step_hold`, an engaged zero-step detector
/// at `kvm_page_fault` raises the gate and kicks, and the gate stays up until
/// that vCPU's fault is mapped (the benchmark's "option A").
pub(super) fn attach_holding(
    kick_timeout_us: u32,
    policy: Policy,
    zero_step_hold: bool,
) -> core::result::Result<KvmBackend, Unavailable> {
    KvmBackend::attach(AttachOptions {
        target: TARGET,
        policy,
        kick_timeout_us,
        without_tdx_platform: true,
        leaf_probes: false,
        watch_owner: false,
        histograms: true,
        zero_step_hold,
    })
}

// A failed KUnit assertion ends the test thread at once, without running
// destructors; a fake TD or a redirection left behind would outlive the
// suite. So every test gathers what it saw with everything still up, drops
// it all, and only then asserts.

/// What a map or unmap of X left behind.
struct Seen {
    ret: i32,
    took_ms: i64,
    page: Option<u64>,
    locked_before: bool,
    kicks_seen: u64,
    bugged: bool,
    vm_dead_requested: bool,
    gate_up_after: bool,
    /// The policy's and the attach layer's counters, by name.
    counters: [u64; 17],
    /// SEAMCALLs the simulated TDX module got during the map or unmap
    /// (each a call of KVM's function that reached its SEAMCALL).
    module_seamcalls: u64,
    /// The trace events of the map or unmap, as [`Recording`] writes them.
    events: KVec<u8>,
}

/// The counters [`Seen::counters`] holds, in order.
const SEEN: [&str; 17] = [
    "ops",
    "seamcalls",
    "retries",
    "retry_successes",
    "kicks",
    "vcpus_kicked",
    "kick_timeouts",
    "vm_bugs",
    "kvm_map_calls",
    "kvm_unmap_calls",
    "kvm_vm_stops",
    "kvm_untracked_calls",
    "busy_aug",
    "busy_block",
    "busy_operand_other",
    "injected_busy",
    "injected_retry_busy",
];

/// One scenario: a fake TD with a vCPU (hogging X if `hog`, ignoring kicks
/// if `stuck`), the hook attached with `kick_timeout_us` unless `None`, the
/// TDX module stuck busy if `stuck_busy`; maps X first if `premap`, then
/// maps (or, with `unmap`, unmaps) X.
fn scenario(
    hook: Option<u32>,
    hog: bool,
    stuck: bool,
    stuck_busy: bool,
    premap: bool,
    unmap: bool,
) -> Result<Seen> {
    scenario_under(Policy::DEFAULT, hook, hog, stuck, stuck_busy, premap, unmap)
}

/// [`scenario`] with the hook's policy `policy`.
fn scenario_under(
    policy: Policy,
    hook: Option<u32>,
    hog: bool,
    stuck: bool,
    stuck_busy: bool,
    premap: bool,
    unmap: bool,
) -> Result<Seen> {
    use crate::policy::CounterTable;
    let backend = match hook {
        Some(us) => Some(attach_with(us, policy).map_err(Unavailable::errno)?),
        None => None,
    };
    let mut td = FakeTd::new()?;
    if premap && td.map_x()?.0 != 0 {
        return Err(EINVAL);
    }
    let vcpu = td.start_vcpu(hog.then_some(X), stuck)?;
    let locked_before = td.module.page_locked(X);
    td.module.set_stuck_busy(stuck_busy);
    // The only VM: every VM's events are its.
    let recording = Recording::start(None)?;
    let seamcalls_before = SEAMCALLS.load(Relaxed);
    let (ret, took_ms) = if unmap {
        (td.unmap_x()?, 0)
    } else {
        td.map_x()?
    };
    let module_seamcalls = SEAMCALLS.load(Relaxed) - seamcalls_before;
    let events = recording.stop()?;
    td.module.set_stuck_busy(false);
    let mut counters = [0; 17];
    if let Some(b) = &backend {
        // The totals over every VM, as the `stats` file shows them.
        let totals = b.state.vms.totals(&b.state.counters);
        let attach = b.state.attach_totals();
        for (value, name) in counters.iter_mut().zip(SEEN) {
            let policy = Counters::<KCounter>::COUNTERS
                .iter()
                .position(|d| d.name == name)
                .and_then(|i| totals.get(i).copied());
            *value = policy
                .or_else(|| attach.counter(name).map(CounterCell::get))
                .unwrap_or(u64::MAX);
        }
    }
    let seen = Seen {
        ret,
        took_ms,
        page: td.module.page_state(X),
        locked_before,
        kicks_seen: vcpu.kicks_seen.load(Relaxed),
        bugged: td.td().is_bugged(),
        vm_dead_requested: td.vm_dead_requested(),
        gate_up_after: td.td().wait_for_sept_zap(),
        counters,
        module_seamcalls,
        events,
    };
    drop(td);
    drop(backend);
    pr_info!(
        "kvm scenario: locked before {}, ret {} in {} ms, page {:?}, counters {:?}, traced:\n{}",
        seen.locked_before,
        seen.ret,
        seen.took_ms,
        seen.page,
        seen.counters,
        core::str::from_utf8(&seen.events).unwrap_or("(not UTF-8)\n")
    );
    Ok(seen)
}

/// The `retry` line [`Recording`] writes for the map of X busy on `operand`
/// (the hog holds X's entry: RCX; a stuck module: SEPT).
fn retry_of_x(operand: Operand) -> Result<CString> {
    CString::try_from_fmt(fmt!(
        "retry leaf={} gpa={:#x} level=1 status={:#x} tries=1\n",
        Leaf::MemPageAug.number(),
        X,
        Status::operand_busy(operand).raw(),
    ))
}

/// The lines of `events` that start with `prefix`, newlines included.
fn lines_of(events: &[u8], prefix: &[u8]) -> Result<KVec<u8>> {
    let mut out = KVec::new();
    for line in events.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(prefix) {
            out.extend_from_slice(line, GFP_KERNEL)?;
        }
    }
    Ok(out)
}

/// The total of the policy counter `name` over every VM, as `stats` shows
/// it.
pub(super) fn total(b: &KvmBackend, name: &str) -> u64 {
    let totals = b.state.vms.totals(&b.state.counters);
    Counters::<KCounter>::COUNTERS
        .iter()
        .position(|d| d.name == name)
        .and_then(|i| totals.get(i).copied())
        .unwrap_or(u64::MAX)
}

/// What [`zero_step_run`] saw: `(zero_step_events, kicks)` after each step.
struct ZeroStepSeen {
    after_enter: (u64, u64),
    after_fault: (u64, u64),
    after_broken: (u64, u64),
    after_streak: (u64, u64),
    bugged: bool,
    events: KVec<u8>,
}

/// Fires KVM's tracepoints for vCPU 0 of a fake TD with the hook attached
/// under `policy`: a busy entry, a fault on X, six faults on X + 4K, a clean
/// exit, one more fault there, then seven faults on X + 8K.
fn zero_step_run(policy: Policy) -> Result<ZeroStepSeen> {
    let read = |b: &KvmBackend| (total(b, "zero_step_events"), total(b, "kicks"));
    let backend = attach_with(100_000, policy).map_err(Unavailable::errno)?;
    let mut td = FakeTd::new()?;
    let _vcpu = td.start_vcpu(None, false)?;
    let recording = Recording::start(None)?;
    let vcpu = td.td().vcpu(0).ok_or(EINVAL)?.as_ptr() as usize;
    let busy_sept = Status::operand_busy(Operand::Sept).raw();
    let fire_exit = move |status| {
        let _irqs = IrqsOff::new();
        // SAFETY: vCPU 0 of the live fake TD; called as KVM's exit path
        // calls the tracepoint, with interrupts off.
        unsafe { tsg_fake_trace_busy_enter(vcpu as *mut kvm_vcpu, status) }
    };
    // SAFETY: As above, as KVM's fault path calls it.
    let fire_fault = move |gpa| unsafe { tsg_fake_trace_page_fault(vcpu as *mut kvm_vcpu, gpa) };
    run_on_cpu(0, move || fire_exit(busy_sept))?;
    let after_enter = read(&backend);
    run_on_cpu(0, move || fire_fault(X))?;
    let after_fault = read(&backend);
    run_on_cpu(0, move || {
        for _ in 0..6 {
            fire_fault(X + 0x1000);
        }
        // An exit that is neither busy nor an EPT violation: progress.
        fire_exit(0);
        fire_fault(X + 0x1000);
    })?;
    let after_broken = read(&backend);
    run_on_cpu(0, move || {
        for _ in 0..7 {
            fire_fault(X + 0x2000);
        }
    })?;
    let after_streak = read(&backend);
    let events = recording.stop()?;
    let bugged = td.td().is_bugged();
    drop(td);
    drop(backend);
    Ok(ZeroStepSeen {
        after_enter,
        after_fault,
        after_broken,
        after_streak,
        bugged,
        events,
    })
}

/// A kthread that maps one page of a fake TD once `go` is set, and keeps
/// what KVM's function returned.
struct OneMap {
    kvm: usize,
    orig: usize,
    gpa: u64,
    go: Arc<Atomic<bool>>,
    ret: Atomic<i32>,
    done: Atomic<bool>,
}

impl ThreadBody for OneMap {
    fn run(&self, ctx: &ThreadCtx) {
        while !self.go.load(Acquire) {
            if ctx.should_stop() {
                return;
            }
            cpu_relax();
        }
        // SAFETY: The fake TD outlives this thread (the test stops it
        // first); `orig` is KVM's function; each thread maps its own page.
        let r = unsafe { kvm_map_gpa(self.orig, self.kvm as *mut kvm, self.gpa) };
        self.ret.store(r, Relaxed);
        self.done.store(true, Release);
        while !ctx.should_stop() {
            ctx.pause();
        }
    }
}

/// A kthread that maps and unmaps one page of a fake TD through KVM's
/// function (redirected while the hook is attached), `rounds` times, and
/// counts the calls that did not return 0.
struct Mapper {
    kvm: usize,
    orig: usize,
    gpa: u64,
    rounds: u32,
    /// While set, the mapper sleeps between rounds (`parked`).
    hold: Arc<Atomic<bool>>,
    parked: Atomic<bool>,
    done: Atomic<u32>,
    failed: Atomic<u32>,
}

impl ThreadBody for Mapper {
    fn run(&self, ctx: &ThreadCtx) {
        for _ in 0..self.rounds {
            while self.hold.load(Acquire) && !ctx.should_stop() {
                self.parked.store(true, Release);
                sleep_ms(1);
            }
            self.parked.store(false, Release);
            if ctx.should_stop() {
                break;
            }
            let kvm = self.kvm as *mut kvm;
            // SAFETY: The fake TD outlives this thread (the test stops it
            // first); `orig` is KVM's function; each mapper owns its page.
            let (m, u) = unsafe {
                (
                    kvm_map_gpa(self.orig, kvm, self.gpa),
                    kvm_unmap_gpa(self.orig, kvm, self.gpa),
                )
            };
            if m != 0 || u != 0 {
                self.failed.add(1, Relaxed);
            }
            self.done.add(1, Relaxed);
            ctx.pause();
        }
        // Done with its rounds: it calls into the hook no more, as parked.
        self.parked.store(true, Release);
    }
}

/// Starts `body` in a kthread bound to CPU `cpu` (named by `name`), keeping
/// the thread in `threads` and the body, to watch it, in `bodies`.
fn start_bound<T: ThreadBody>(
    body: T,
    cpu: u32,
    name: &'static CStr,
    bodies: &mut KVec<Arc<T>>,
    threads: &mut KVec<Thread<T>>,
) -> Result {
    let body = Arc::new(body, GFP_KERNEL)?;
    let cpu = crate::platform::online_cpu(cpu).ok_or(EINVAL)?;
    threads.push(Thread::spawn(body.clone(), Some(cpu), name, 0)?, GFP_KERNEL)?;
    bodies.push(body, GFP_KERNEL)?;
    Ok(())
}

#[kunit_tests(tdx_sept_guard_kvm)]
mod tests {
    use super::*;

    /// The baseline: KVM 7.2 alone hands a busy AUG back as `-EBUSY`.
    #[test]
    fn without_the_hook_a_busy_aug_is_ebusy() -> Result {
        let s = scenario(None, true, false, false, false, false)?;
        assert!(s.locked_before);
        assert_eq!(s.ret, EBUSY.to_errno());
        assert_eq!(s.page, Some(FREE));
        assert!(!s.bugged);
        Ok(())
    }

    /// With the hook: the busy AUG raises KVM's gate, kicks the vCPU out of
    /// its ACCEPT and succeeds on the one retry.
    #[test]
    fn with_the_hook_kick_and_retry_succeeds() -> Result {
        let s = scenario(Some(100_000), true, false, false, false, false)?;
        assert!(s.locked_before);
        assert_eq!(s.ret, 0);
        assert_eq!(s.page, Some(PENDING));
        // ops, seamcalls, retries, retry_successes, kicks, vcpus_kicked
        assert_eq!(&s.counters[..6], &[1, 2, 1, 1, 1, 1]);
        assert_eq!(s.counters[8], 1);
        // The busy AUG, with its real operand (from the kretprobe), not
        // KVM's bare -EBUSY.
        assert_eq!((s.counters[12], s.counters[14]), (1, 0));
        // Traced as the simulator traces it.
        let retry = retry_of_x(Operand::Rcx)?;
        let want = CString::try_from_fmt(fmt!("kick kicked=1 ok=1\n{}", retry.to_str()?))?;
        assert_eq!(s.events.as_slice(), want.to_bytes());
        assert!(s.kicks_seen >= 1);
        assert!(!s.gate_up_after);
        assert!(!s.bugged);
        Ok(())
    }

    /// Another ftrace user of the suite's own on KVM's function (a counting
    /// `ftrace_ops`, as a tracer or a BPF fentry program), placed before
    /// the hook attaches and after: KVM's map computes the same with it,
    /// and it sees the calls.
    #[test]
    fn another_ftrace_ops_on_the_target_changes_nothing() -> Result {
        let target = hooks::lookup(TARGET).ok_or(ENOENT)?;
        // Before the hook: the scenario attaches with the ops in place.
        // SAFETY: `target` is KVM's function; the ops is removed below.
        to_result(unsafe { tsg_fake_counting_ops_register(target) })?;
        // A generous deadline: this is about coexistence, and under TCG on
        // a loaded host an emulated CPU can take long to take its IPI.
        let before = scenario(Some(1_000_000), true, false, false, false, false);
        // SAFETY: Removes what was registered above.
        let seen_before = unsafe { tsg_fake_counting_ops_unregister() };
        let before = before?;
        // After the hook: the ops joins a function already redirected. It
        // comes and goes while no fake vCPU spins: changing ftrace waits for
        // an RCU-tasks grace period, which a kthread spinning in its "guest"
        // never gives.
        let (after, seen_after) = {
            let backend = attach(1_000_000).map_err(Unavailable::errno)?;
            let mut td = FakeTd::new()?;
            // SAFETY: As above.
            to_result(unsafe { tsg_fake_counting_ops_register(target) })?;
            let r = td.start_vcpu(Some(X), false).and_then(|_| td.map_x());
            let kicks = total(&backend, "kicks");
            let page = td.module.page_state(X);
            drop(td);
            // SAFETY: As above.
            let seen = unsafe { tsg_fake_counting_ops_unregister() };
            ((r?.0, page, kicks), seen)
        };
        pr_info!(
            "another ftrace_ops: {} calls seen before the hook, {} after; after: {:?}\n",
            seen_before,
            seen_after,
            after
        );
        // As `with_the_hook_kick_and_retry_succeeds`.
        assert_eq!(before.ret, 0);
        assert_eq!(before.page, Some(PENDING));
        assert_eq!(&before.counters[..6], &[1, 2, 1, 1, 1, 1]);
        assert!(!before.bugged);
        assert_eq!(after, (0, Some(PENDING), 1));
        // The map's call from KVM and the hook's two calls of the original.
        assert!(seen_before >= 3);
        assert!(seen_after >= 3);
        Ok(())
    }

    /// Busy again after the kick is a TDX-module bug: the VM stops, KVM gets
    /// an error, the host goes on.
    #[test]
    fn busy_after_the_kick_stops_the_vm() -> Result {
        let s = scenario(Some(100_000), false, false, true, false, false)?;
        assert_eq!(s.ret, EIO.to_errno());
        assert!(s.bugged);
        assert!(s.vm_dead_requested);
        assert_eq!((s.counters[1], s.counters[7], s.counters[10]), (2, 1, 1));
        assert!(!s.gate_up_after);
        // Traced: a kick (of the vCPU if it was in guest mode), the retry
        // and the stop, as the simulator traces them.
        let retry = retry_of_x(Operand::Sept)?;
        let tail = CString::try_from_fmt(fmt!(
            "{}vm_stop leaf={} status={:#x} reason=busy_after_kick\n",
            retry.to_str()?,
            Leaf::MemPageAug.number(),
            Status::operand_busy(Operand::Sept).raw(),
        ))?;
        assert!(s.events.starts_with(b"kick kicked="));
        assert!(s.events.ends_with(tail.to_bytes()));
        assert_eq!(s.events.iter().filter(|&&b| b == b'\n').count(), 3);
        Ok(())
    }

    /// A remove goes through KVM's own `tdh_do_no_vcpus()`, whose kick
    /// reaches the simulated vCPU; the hook only counts it.
    #[test]
    fn removes_go_through_kvms_own_kick() -> Result {
        // The premise is a BLOCK that meets the guest's hold. Under TCG on a
        // loaded host the guest's thread can be descheduled between holds
        // (its long ACCEPT has a limit), and the BLOCK then goes through at
        // once: such a run is tried again, at most twice.
        let mut s = scenario(Some(100_000), true, false, false, true, true)?;
        for _ in 0..2 {
            if s.counters[13] != 0 {
                break;
            }
            pr_info!("kvm: the BLOCK did not meet the guest's hold; running the scenario again\n");
            s = scenario(Some(100_000), true, false, false, true, true)?;
        }
        assert!(s.locked_before);
        assert_eq!(s.ret, 0);
        assert_eq!(s.page, Some(FREE));
        assert!(s.kicks_seen >= 1);
        assert_eq!(s.counters[9], 1);
        // KVM's busy BLOCK, seen by the kretprobe on tdh_mem_range_block().
        assert_eq!(s.counters[13], 1);
        assert!(!s.bugged);
        assert!(!s.gate_up_after);
        Ok(())
    }

    /// A vCPU that ignores the kick does not hang the hook: the map waits
    /// for its one deadline, not more (stopping the VM waits for nothing),
    /// and the VM stops.
    #[test]
    fn a_stuck_vcpu_costs_one_deadline() -> Result {
        let timeout_ms = 40;
        // The guest's clock runs on while the host deschedules an emulated
        // CPU, which a loaded host does for tens of milliseconds: a run over
        // the bound is tried again, at most twice, and the fastest counts. A
        // second wait would put every run past the bound.
        let mut s = scenario(Some(timeout_ms * 1000), true, true, false, false, false)?;
        for _ in 0..2 {
            if s.took_ms * 2 <= 3 * i64::from(timeout_ms) {
                break;
            }
            pr_info!(
                "kvm: the map took {} ms; running the scenario again\n",
                s.took_ms
            );
            let again = scenario(Some(timeout_ms * 1000), true, true, false, false, false)?;
            if again.took_ms < s.took_ms {
                s = again;
            }
        }
        assert!(s.locked_before);
        assert_eq!(s.ret, EIO.to_errno());
        assert!(s.took_ms >= i64::from(timeout_ms));
        // One deadline: the stuck guest holds its entry with interrupts off
        // for about 100 ms of real time under TCG (`udelay()` runs fast
        // there), and a second wait would take the map past 80 ms.
        assert!(s.took_ms * 2 <= 3 * i64::from(timeout_ms));
        assert_eq!(s.counters[6], 1);
        assert!(s.bugged);
        // Traced: the kick that timed out, the stop; no retry.
        let want = CString::try_from_fmt(fmt!(
            "kick kicked=1 ok=0\nvm_stop leaf={} status={:#x} reason=kick_timeout\n",
            Leaf::MemPageAug.number(),
            Status::operand_busy(Operand::Rcx).raw(),
        ))?;
        assert_eq!(s.events.as_slice(), want.to_bytes());
        Ok(())
    }

    /// A VM the module stopped stays stopped: its later maps fail at once,
    /// with no SEAMCALL, no kick and no wait.
    #[test]
    fn a_stopped_vms_maps_fail_at_once() -> Result {
        let (first, second, took_ms, before, after) = {
            let backend = attach(20_000).map_err(Unavailable::errno)?;
            let td = FakeTd::new()?;
            td.module.set_stuck_busy(true);
            let first = td.map_x()?.0;
            let read = |name| total(&backend, name);
            let before = (read("seamcalls"), read("kicks"), SEAMCALLS.load(Relaxed));
            let (second, took_ms) = td.map_x()?;
            let after = (read("seamcalls"), read("kicks"), SEAMCALLS.load(Relaxed));
            let stopped_calls = backend.state.attach_totals().kvm_stopped_vm_calls.get();
            td.module.set_stuck_busy(false);
            (first, second, took_ms, before, (after, stopped_calls))
        };
        assert_eq!(first, EIO.to_errno());
        assert_eq!(second, EIO.to_errno());
        assert_eq!(after.0, before);
        assert_eq!(after.1, 1);
        assert!(took_ms < 20);
        Ok(())
    }

    /// The baselines are what they say in KVM too: under `upstream72` the
    /// hook only counts, a busy AUG goes back to KVM as `-EBUSY` with no
    /// kick and no stop, as KVM 7.2 alone does.
    #[test]
    fn upstream72_only_counts() -> Result {
        let s = scenario_under(
            Policy::Upstream72,
            Some(100_000),
            true,
            false,
            false,
            false,
            false,
        )?;
        assert_eq!(s.ret, EBUSY.to_errno());
        // ops, seamcalls, retries, retry_successes, kicks, vcpus_kicked
        assert_eq!(&s.counters[..6], &[1, 1, 0, 0, 0, 0]);
        assert_eq!(s.counters[12], 1);
        assert_eq!(s.kicks_seen, 0);
        assert!(!s.bugged);
        assert!(s.events.is_empty());
        Ok(())
    }

    /// `fail_map_busy` on the fake TD: the map's first try is answered busy
    /// without calling KVM; the hook raises KVM's gate, kicks the vCPU out
    /// of its long ACCEPT (a real IPI) and calls KVM's function once, for
    /// the retry, which succeeds. Counted and traced as injected.
    #[test]
    fn an_injected_busy_map_calls_kvm_once_after_one_kick() -> Result {
        fault::testing::set(Fault::MapBusy, 100, 1)?;
        let s = scenario(Some(100_000), true, false, false, false, false);
        let left = fault::testing::times(Fault::MapBusy);
        fault::testing::clear();
        let s = s?;
        assert_eq!(left, 0);
        assert_eq!(s.ret, 0);
        assert_eq!(s.page, Some(PENDING));
        // ops, seamcalls, retries, retry_successes, kicks, vcpus_kicked
        assert_eq!(&s.counters[..6], &[1, 1, 1, 1, 1, 1]);
        // KVM's function ran once, and its one SEAMCALL succeeded: no busy
        // AUG, no unknown operand; one injected busy, no injected retry.
        assert_eq!(s.module_seamcalls, 1);
        assert_eq!((s.counters[12], s.counters[14]), (0, 0));
        assert_eq!((s.counters[15], s.counters[16]), (1, 0));
        let want = CString::try_from_fmt(fmt!(
            "kick kicked=1 ok=1 injected\n\
             retry leaf={} gpa={:#x} level=1 status={:#x} tries=1 injected\n",
            Leaf::MemPageAug.number(),
            X,
            fault::injected_busy().raw(),
        ))?;
        assert_eq!(s.events.as_slice(), want.to_bytes());
        assert!(s.kicks_seen >= 1);
        assert!(!s.gate_up_after);
        assert!(!s.bugged);
        Ok(())
    }

    /// `fail_retry_busy` too: the retry is answered busy as well, KVM's
    /// function is never called, and the VM is stopped as after a real
    /// second busy, traced as injected.
    #[test]
    fn an_injected_retry_busy_stops_the_vm_without_calling_kvm() -> Result {
        fault::testing::set(Fault::MapBusy, 100, 1)?;
        fault::testing::set(Fault::RetryBusy, 100, 1)?;
        let s = scenario(Some(100_000), false, false, false, false, false);
        fault::testing::clear();
        let s = s?;
        assert_eq!(s.ret, EIO.to_errno());
        assert!(s.bugged);
        assert!(s.vm_dead_requested);
        assert_eq!(s.module_seamcalls, 0);
        // seamcalls, vm_bugs, kvm_vm_stops; injected busy and retry busy
        assert_eq!((s.counters[1], s.counters[7], s.counters[10]), (0, 1, 1));
        assert_eq!((s.counters[15], s.counters[16]), (1, 1));
        assert!(!s.gate_up_after);
        let busy = fault::injected_busy().raw();
        let tail = CString::try_from_fmt(fmt!(
            "retry leaf={} gpa={:#x} level=1 status={:#x} tries=1 injected\n\
             vm_stop leaf={} status={:#x} reason=busy_after_kick injected\n",
            Leaf::MemPageAug.number(),
            X,
            busy,
            Leaf::MemPageAug.number(),
            busy,
        ))?;
        assert!(s.events.starts_with(b"kick kicked="));
        assert!(lines_of(&s.events, b"kick ")?.ends_with(b" injected\n"));
        assert!(s.events.ends_with(tail.to_bytes()));
        assert_eq!(s.events.iter().filter(|&&b| b == b'\n').count(), 3);
        Ok(())
    }

    /// `times` bounds the injections: with `fail_map_busy` at 100% for 2
    /// times, three maps on the fake TD get two injected busies, each with
    /// one kick and one retry, and KVM's function runs three times in all.
    #[test]
    fn times_bounds_the_injected_busies_on_the_fake_td() -> Result {
        let (rets, left, counts, module_seamcalls) = {
            let backend = attach(100_000).map_err(Unavailable::errno)?;
            let td = FakeTd::new()?;
            fault::testing::set(Fault::MapBusy, 100, 2)?;
            let before = SEAMCALLS.load(Relaxed);
            let rets = td.map_three();
            let left = fault::testing::times(Fault::MapBusy);
            fault::testing::clear();
            let module_seamcalls = SEAMCALLS.load(Relaxed) - before;
            let counts = [
                "seamcalls",
                "injected_busy",
                "injected_retry_busy",
                "kicks",
                "retries",
                "retry_successes",
            ]
            .map(|n| total(&backend, n));
            drop(td);
            (rets?, left, counts, module_seamcalls)
        };
        assert_eq!(rets, [0, 0, 0]);
        assert_eq!(left, 0);
        assert_eq!(counts, [3, 2, 0, 2, 2, 2]);
        assert_eq!(module_seamcalls, 3);
        Ok(())
    }

    /// The latency histograms on the fake TD, per VM and in total: three
    /// maps with `fail_map_busy` for two of them, then an unmap. KVM's
    /// SEAMCALL wrappers are timed for the TD they are called for (three
    /// AUGs: the injected tries call nothing; the unmap's BLOCK, TRACK and
    /// REMOVE), two kicks and two gate holds (each at least as long as its
    /// kick), three map calls (an unmap passes straight through, untimed).
    /// The totals keep them when KVM destroys the VM, and `reset` empties
    /// them.
    #[test]
    fn latency_histograms_time_each_call_per_vm_and_in_total() -> Result {
        use crate::backend::Backend;
        let (rets, unmapped, vm, total, retired, after_reset, max) = {
            let backend = attach(100_000).map_err(Unavailable::errno)?;
            let td = FakeTd::new()?;
            fault::testing::set(Fault::MapBusy, 100, 2)?;
            let rets = td.map_three();
            fault::testing::clear();
            let unmapped = td.unmap_x()?;
            let state = &backend.state;
            let (vm, max) = {
                let rcu = kernel::sync::rcu::read_lock();
                let l = state
                    .vms
                    .get(td.td(), &rcu)
                    .and_then(|v| v.events.latency());
                (l.map(|l| l.counts()), l.map(|l| l.kick_gate_max()))
            };
            let other = state.latency.as_deref().ok_or(EINVAL)?;
            let total = state.vms.latency_totals(other)?.counts();
            crate::kvm::entry::tsg_kvm_vm_destroyed(td.kvm);
            let retired = state.vms.latency_totals(other)?.counts();
            backend.reset_stats()?;
            let after_reset = state.vms.latency_totals(other)?.counts();
            drop(td);
            (rets?, unmapped, vm, total, retired, after_reset, max)
        };
        pr_info!(
            "histograms: the VM's {:?}, total {:?}, (longest kick, gate hold) {:?} ns\n",
            vm,
            total,
            max
        );
        assert_eq!(rets, [0, 0, 0]);
        assert_eq!(unmapped, 0);
        // AUG, SEPT.ADD, PAGE.ADD, BLOCK, TRACK, REMOVE; kick, gate, map.
        let want = [3, 0, 0, 1, 1, 1, 2, 2, 3];
        assert_eq!(vm, Some(want));
        assert_eq!(total, want);
        assert_eq!(retired, want);
        assert_eq!(after_reset, [0; 9]);
        assert!(max.is_some_and(|(kick, gate)| gate >= kick && kick > 0));
        Ok(())
    }

    /// A VM gets state and a debugfs directory on its first map; when KVM
    /// destroys it (the destroy kprobe's handler, called here as the probe
    /// would), the state goes and its counters stay in the totals.
    #[test]
    fn per_vm_state_lives_as_long_as_the_vm() -> Result {
        let (tracked, dir, after, ops) = {
            let backend = attach(100_000).map_err(Unavailable::errno)?;
            backend
                .state
                .vms
                .set_root(&crate::platform::debugfs::Dir::new(c"tsg_kunit_vms", None)?);
            let td = FakeTd::new()?;
            let _ = td.map_x()?;
            let tracked = backend.state.vms.len();
            let mut dir = None;
            for _ in 0..1000 {
                dir = backend.state.vms.files_of(td.td());
                if dir.is_some() {
                    break;
                }
                sleep_ms(1);
            }
            crate::kvm::entry::tsg_kvm_vm_destroyed(td.kvm);
            let after = backend.state.vms.len();
            let ops = backend.state.vms.totals(&backend.state.counters)[0];
            (tracked, dir, after, ops)
        };
        assert_eq!(tracked, 1);
        // `<pid>-<n>`: a fake TD has no `stats_id`, so pid 0.
        assert!(dir.is_some_and(|d| d.to_bytes().starts_with(b"0-")));
        assert_eq!(after, 0);
        assert_eq!(ops, 1);
        Ok(())
    }

    /// Zero-step from KVM's own tracepoints, counted and traced under every
    /// policy, and never answered with a kick or a stop there: a busy
    /// TDH.VP.ENTER on the S-EPT tree (`kvm_exit`, fired with interrupts off
    /// as `tdx_vcpu_run()` fires it) is an event; a streak of seven faults
    /// on one GPA (`kvm_page_fault`) is another; an exit for any other
    /// reason ends a streak. The map path answers the mitigation's busy AUG
    /// with its own kick.
    #[test]
    fn zero_step_is_observed_from_kvms_tracepoints() -> Result {
        let mut seen = KVec::new();
        for policy in [Policy::DEFAULT, Policy::Upstream72, Policy::BlindRetry] {
            seen.push((policy, zero_step_run(policy)?), GFP_KERNEL)?;
        }
        for (policy, z) in &seen {
            pr_info!(
                "zero-step under {}: {:?}, traced:\n{}",
                policy.name(),
                (
                    z.after_enter,
                    z.after_fault,
                    z.after_broken,
                    z.after_streak,
                    z.bugged
                ),
                core::str::from_utf8(&z.events).unwrap_or("(not UTF-8)\n")
            );
        }
        let want = CString::try_from_fmt(fmt!(
            "zero_step vcpu=0 gpa={:#x}\nzero_step vcpu=0 gpa={:#x}\n",
            u64::MAX,
            X + 0x2000
        ))?;
        for (_, z) in &seen {
            // (zero_step_events, kicks): the busy entry is an event, the
            // fault after it no kick; six faults, a clean exit and a
            // seventh fault are no event; seven in a row are.
            assert_eq!(z.after_enter, (1, 0));
            assert_eq!(z.after_fault, (1, 0));
            assert_eq!(z.after_broken, (1, 0));
            assert_eq!(z.after_streak, (2, 0));
            assert!(!z.bugged);
            assert_eq!(z.events.as_slice(), want.to_bytes());
        }
        Ok(())
    }

    /// Three tasks map and zap pages of one TD at once (maps under the read
    /// side of `mmu_lock`, KVM's zaps under the write side) through the
    /// hook, and go on through KVM's own function once it detached: every
    /// call succeeds and the hook ran while it was attached.
    ///
    /// The mappers sleep between two rounds while the hook detaches. Under
    /// QEMU's TCG, ftrace rewriting `tdx_sept_set_private_spte()`'s call
    /// site while another CPU executes it has left a stale `int3` behind
    /// once in about fifteen runs (an "Oops: int3" at the call site, after
    /// the rewrite had finished), which x86 hardware's cross-modifying-code
    /// rules (`text_poke_sync()`) exclude; see `Documentation/testing.rst`.
    #[test]
    fn maps_and_zaps_race_and_detach_between_rounds() -> Result {
        let (rounds, done, failed, maps_hooked, all_parked) = {
            let td = FakeTd::new()?;
            let orig = hooks::lookup(TARGET).ok_or(ENOENT)?;
            let rounds = 150;
            let hold = Arc::new(Atomic::new(false), GFP_KERNEL)?;
            let mut bodies = KVec::new();
            let mut threads = KVec::new();
            let backend = attach(100_000).map_err(Unavailable::errno)?;
            for (i, cpu) in [0u32, 2, 3].into_iter().enumerate() {
                let mapper = Mapper {
                    kvm: td.kvm as usize,
                    orig,
                    gpa: X + 0x1000 * (i as u64 + 1),
                    rounds,
                    hold: hold.clone(),
                    parked: Atomic::new(false),
                    done: Atomic::new(0),
                    failed: Atomic::new(0),
                };
                start_bound(mapper, cpu, c"tsg_mapper/%u", &mut bodies, &mut threads)?;
            }
            let progress =
                |b: &KVec<Arc<Mapper>>| b.iter().map(|m| m.done.load(Relaxed)).sum::<u32>();
            // Detach once the mappers are well under way, with most of
            // their rounds still to come, while they sleep between rounds.
            for _ in 0..5000 {
                if progress(&bodies) >= rounds / 2 {
                    break;
                }
                sleep_ms(1);
            }
            hold.store(true, Release);
            let mut all_parked = false;
            for _ in 0..5000 {
                all_parked = bodies.iter().all(|m| m.parked.load(Acquire));
                if all_parked {
                    break;
                }
                sleep_ms(1);
            }
            let maps_hooked = backend.state.attach_totals().kvm_map_calls.get();
            drop(backend);
            hold.store(false, Release);
            for _ in 0..20_000 {
                if progress(&bodies) == 3 * rounds {
                    break;
                }
                sleep_ms(1);
            }
            drop(threads);
            let failed = bodies.iter().map(|m| m.failed.load(Relaxed)).sum::<u32>();
            (rounds, progress(&bodies), failed, maps_hooked, all_parked)
        };
        pr_info!(
            "racing mappers: {} rounds done, {} failed, {} maps through the hook\n",
            done,
            failed,
            maps_hooked
        );
        assert!(all_parked);
        assert_eq!(done, 3 * rounds);
        assert_eq!(failed, 0);
        assert!(maps_hooked > 0);
        Ok(())
    }

    /// Two maps in one VM meet busy at once: both raise KVM's gate (it
    /// counts two kickers), kick the two vCPUs (on CPUs 2 and 3, slow to
    /// take the IPI), and succeed on their one retry; the gate comes down
    /// after the last of them.
    #[test]
    fn two_kickers_share_the_gate() -> Result {
        use super::super::executor::MAX_KICKERS;
        let (rets, max_kickers, retries, stops, gate_up_after) = {
            MAX_KICKERS.store(0, Relaxed);
            let backend = attach(1_000_000).map_err(Unavailable::errno)?;
            let mut td = FakeTd::with_cpus(&[2, 3])?;
            let orig = hooks::lookup(TARGET).ok_or(ENOENT)?;
            let pages = [X + 0x1000, X + 0x2000];
            // Each vCPU hogs one page, deaf to kicks for a while.
            td.start_vcpu_at(0, Some(pages[0]), true)?;
            td.start_vcpu_at(1, Some(pages[1]), true)?;
            let go = Arc::new(Atomic::new(false), GFP_KERNEL)?;
            let mut bodies = KVec::new();
            let mut threads = KVec::new();
            for (gpa, cpu) in pages.into_iter().zip([0u32, 1]) {
                let kicker = OneMap {
                    kvm: td.kvm as usize,
                    orig,
                    gpa,
                    go: go.clone(),
                    ret: Atomic::new(i32::MIN),
                    done: Atomic::new(false),
                };
                start_bound(kicker, cpu, c"tsg_kicker/%u", &mut bodies, &mut threads)?;
            }
            go.store(true, Release);
            for _ in 0..10_000 {
                if bodies.iter().all(|b| b.done.load(Acquire)) {
                    break;
                }
                sleep_ms(1);
            }
            let rets = [bodies[0].ret.load(Relaxed), bodies[1].ret.load(Relaxed)];
            let retries = total(&backend, "retries");
            let stops = backend.state.attach_totals().kvm_vm_stops.get();
            let gate_up_after = td.td().wait_for_sept_zap();
            drop(threads);
            drop(td);
            (
                rets,
                MAX_KICKERS.load(Relaxed),
                retries,
                stops,
                gate_up_after,
            )
        };
        pr_info!(
            "two kickers: returned {:?}, at most {} kickers held the gate, {} retries\n",
            rets,
            max_kickers,
            retries
        );
        assert_eq!(rets, [0, 0]);
        assert_eq!(max_kickers, 2);
        assert_eq!(retries, 2);
        assert_eq!(stops, 0);
        assert!(!gate_up_after);
        Ok(())
    }

    /// A TD gets its state when KVM creates it (`vt_vm_init()`, redirected),
    /// in process context: its first map allocates nothing. The map runs
    /// with this task's fail-nth armed, which any slab allocation on the way
    /// would consume.
    #[test]
    fn a_td_gets_its_state_when_kvm_creates_it() -> Result {
        let (tracked, map, pending, untracked, mapped) = {
            let backend = attach(100_000).map_err(Unavailable::errno)?;
            let td = FakeTd::new()?;
            let tracked = backend.state.vms.len();
            let orig = hooks::lookup(TARGET).ok_or(ENOENT)?;
            let kvm = td.kvm as usize;
            let (map, pending) = run_on_cpu(0, move || {
                // SAFETY: Sets this task's fail-nth: its next slab
                // allocation would fail.
                unsafe { tsg_fake_fail_nth(1) };
                // SAFETY: As in `FakeTd::map_x`.
                let r = unsafe { kvm_map_gpa(orig, kvm as *mut kvm, X) };
                // SAFETY: Reads, then clears, this task's fail-nth.
                let pending = unsafe { tsg_fake_fail_nth_pending() };
                // SAFETY: As above.
                unsafe { tsg_fake_fail_nth(0) };
                (r, pending)
            })?;
            let untracked = backend.state.attach_totals().kvm_untracked_calls.get();
            let mapped = backend.state.attach_totals().kvm_map_calls.get();
            (tracked, map, pending, untracked, mapped)
        };
        assert_eq!(tracked, 1);
        assert_eq!(map, 0);
        // Still armed: the map path allocated nothing.
        assert!(pending);
        assert_eq!(untracked, 0);
        assert_eq!(mapped, 1);
        Ok(())
    }

    /// Attaching finds the TDs that exist already in KVM's VM list (here
    /// the suite's stand-in for it) and gives them state before any map.
    #[test]
    fn attaching_finds_the_tds_kvm_has() -> Result {
        let (tracked, untracked, mapped) = {
            let td = FakeTd::new()?;
            let backend = attach(100_000).map_err(Unavailable::errno)?;
            let tracked = backend.state.vms.len();
            let _ = td.map_x()?;
            let untracked = backend.state.attach_totals().kvm_untracked_calls.get();
            let mapped = backend.state.attach_totals().kvm_map_calls.get();
            drop(backend);
            (tracked, untracked, mapped)
        };
        assert_eq!(tracked, 1);
        assert_eq!(untracked, 0);
        assert_eq!(mapped, 1);
        Ok(())
    }

    /// A TD whose creation straddled the attach (its `vm_init` before the
    /// redirection, its listing after the walk) has no entry: its first map
    /// passes through, counted, and queues the walk, which finds it; its
    /// next map runs under the policy.
    #[test]
    fn a_td_created_while_attaching_is_found_at_its_first_map() -> Result {
        let (before, first, untracked, after, second, mapped) = {
            let td = FakeTd::new()?;
            // SAFETY: The fake TD is listed (`FakeTd::new`); listed again
            // below.
            unsafe { tsg_fake_td_listed(td.kvm, false) };
            let backend = attach(100_000).map_err(Unavailable::errno)?;
            let before = backend.state.vms.len();
            // SAFETY: As above.
            unsafe { tsg_fake_td_listed(td.kvm, true) };
            let first = td.map_x()?.0;
            let untracked = backend.state.attach_totals().kvm_untracked_calls.get();
            let _ = td.unmap_x()?;
            backend.state.vms.flush();
            let after = backend.state.vms.len();
            let second = td.map_x()?.0;
            let mapped = backend.state.attach_totals().kvm_map_calls.get();
            drop(backend);
            (before, first, untracked, after, second, mapped)
        };
        assert_eq!(before, 0);
        assert_eq!(first, 0);
        assert_eq!(untracked, 1);
        assert_eq!(after, 1);
        assert_eq!(second, 0);
        assert_eq!(mapped, 1);
        Ok(())
    }

    /// A TD whose state cannot be allocated at creation (the kernel's fault
    /// injection, failslab through fail-nth, fails it) is known without
    /// state: logged and counted once, its maps pass through, counted, and
    /// nothing is allocated or tried again for it. The state is allocated
    /// with `GFP_KERNEL`, which failslab skips unless its `ignore-gfp-wait`
    /// is off: `make check`'s guest turns it off before loading the suites.
    #[test]
    fn a_failed_state_allocation_is_counted_once_and_passes_maps_through() -> Result {
        let (created, maps, pending, tracked, failures, untracked, mapped) = {
            let backend = attach(100_000).map_err(Unavailable::errno)?;
            let td = FakeTd::new()?;
            // KVM destroys the TD and creates another at its address.
            crate::kvm::entry::tsg_kvm_vm_destroyed(td.kvm);
            let vm_init = hooks::lookup(VM_INIT).ok_or(ENOENT)?;
            let orig = hooks::lookup(TARGET).ok_or(ENOENT)?;
            let kvm = td.kvm as usize;
            let (created, maps, pending) = run_on_cpu(0, move || {
                // SAFETY: Sets this task's fail-nth: its next slab
                // allocation, the state's first, fails.
                unsafe { tsg_fake_fail_nth(1) };
                // SAFETY: `vt_vm_init()` on the live fake TD, as KVM calls it.
                let created = unsafe { tsg_fake_td_vm_init(vm_init, kvm as *mut kvm) };
                // SAFETY: As above: armed again for the first map.
                unsafe { tsg_fake_fail_nth(1) };
                // SAFETY: As in `FakeTd::map_x`.
                let first = unsafe { kvm_map_gpa(orig, kvm as *mut kvm, X) };
                // SAFETY: Reads, then clears, this task's fail-nth.
                let pending = unsafe { tsg_fake_fail_nth_pending() };
                // SAFETY: As above.
                unsafe { tsg_fake_fail_nth(0) };
                // SAFETY: As in `FakeTd::map_x`.
                let more = unsafe {
                    (
                        kvm_unmap_gpa(orig, kvm as *mut kvm, X),
                        kvm_map_gpa(orig, kvm as *mut kvm, X),
                    )
                };
                (created, (first, more.0, more.1), pending)
            })?;
            backend.state.vms.flush();
            (
                created,
                maps,
                pending,
                backend.state.vms.len(),
                backend.state.vms.failures(),
                backend.state.attach_totals().kvm_untracked_calls.get(),
                backend.state.attach_totals().kvm_map_calls.get(),
            )
        };
        if failures == 0 {
            pr_err!("no allocation failed: is failslab's ignore-gfp-wait on (Y)?\n");
        }
        assert_eq!(created, 0);
        assert_eq!(maps, (0, 0, 0));
        // Still armed: the map path allocated nothing.
        assert!(pending);
        assert_eq!(tracked, 0);
        assert_eq!(failures, 1);
        assert_eq!(untracked, 2);
        assert_eq!(mapped, 0);
        Ok(())
    }

    /// `mode=auto` with kvm_intel a module: idle until it comes up, then
    /// attached (a map goes through the hook), detached when it goes, and
    /// attached again when it comes back; another module's events change
    /// nothing. The module loader's notifier calls are made here, with a
    /// fake `struct module` (kvm_intel is built into the test kernel).
    #[test]
    fn auto_mode_follows_kvm_intel() -> Result {
        use crate::backend::Backend;
        let (before, up, mapped, other, gone, back) = {
            let opts = AttachOptions {
                target: TARGET,
                policy: Policy::DEFAULT,
                kick_timeout_us: 100_000,
                without_tdx_platform: true,
                leaf_probes: false,
                watch_owner: false,
                histograms: true,
                zero_step_hold: false,
            };
            let auto = crate::kvm::auto::AutoKvm::start_with(opts, false)?;
            let event = |name: &CStr, live| {
                // SAFETY: Calls the notifier as the module loader would.
                to_result(unsafe { tsg_fake_vendor_event(name.as_char_ptr(), live) })?;
                auto.flush();
                Ok::<_, Error>(auto.mode())
            };
            let before = auto.mode();
            let up = event(c"kvm_intel", true)?;
            let td = FakeTd::new()?;
            let _ = td.map_x()?;
            let mapped = auto.map_calls();
            let other = event(c"kvm_amd", false)?;
            let gone = event(c"kvm_intel", false)?;
            let back = event(c"kvm_intel", true)?;
            drop(td);
            drop(auto);
            (before, up, mapped, other, gone, back)
        };
        assert_eq!(before, "idle");
        assert_eq!(up, "kvm");
        assert_eq!(mapped, Some(1));
        assert_eq!(other, "kvm");
        assert_eq!(gone, "idle");
        assert_eq!(back, "kvm");
        Ok(())
    }

    #[test]
    fn refuses_a_missing_symbol() {
        let r = KvmBackend::attach(AttachOptions {
            target: c"tsg_no_such_function",
            policy: Policy::DEFAULT,
            kick_timeout_us: 1000,
            without_tdx_platform: true,
            leaf_probes: false,
            watch_owner: false,
            histograms: true,
            zero_step_hold: false,
        });
        let missing = matches!(r, Err(Unavailable::NoKvmTdx));
        if let Err(why) = &r {
            pr_info!("kvm: refused: {}\n", why.reason());
        }
        drop(r);
        assert!(missing);
    }

    /// Where KVM's TDX is set up, `kvm_x86_ops.set_external_spte` must
    /// point to the function redirected; another function there is a hook
    /// shape this build does not know, and attach refuses. (In QEMU the op
    /// is unset: the suite says what it points to.)
    #[test]
    fn refuses_a_kernel_whose_op_is_another_function() -> Result {
        let target = hooks::lookup(TARGET).ok_or(ENOENT)?;
        let other = hooks::lookup(VM_INIT).ok_or(ENOENT)?;
        let try_with = |op: usize| {
            // SAFETY: Only stores what the op is said to point to.
            unsafe { tsg_fake_external_spte_op_set(op) };
            let r = attach(1000);
            // SAFETY: As above: KVM's own op again.
            unsafe { tsg_fake_external_spte_op_set(0) };
            if let Err(why) = &r {
                pr_info!("kvm: refused: {}\n", why.reason());
            }
            r.map(drop)
        };
        let other_shape = matches!(try_with(other), Err(Unavailable::OtherShape));
        let same = try_with(target).is_ok();
        assert!(other_shape);
        assert!(same);
        Ok(())
    }

    #[test]
    fn refuses_a_target_another_ipmodify_user_owns() -> Result {
        let target = hooks::lookup(TARGET).ok_or(ENOENT)?;
        // SAFETY: The replacement has the target's prototype.
        let other =
            unsafe { Redirect::new(TARGET, target, hooks::set_private_spte_replacement())? };
        let r = attach(1000);
        let refused = matches!(r, Err(Unavailable::AlreadyHooked));
        if let Err(why) = &r {
            pr_info!("kvm: refused: {}\n", why.reason());
        }
        drop(r);
        drop(other);
        assert!(refused);
        Ok(())
    }
}
