// SPDX-License-Identifier: GPL-2.0

//! Per-VM state: found from the `struct kvm *` KVM passes, made in process
//! context when KVM creates a TD (the redirected `vt_vm_init()`) or when
//! attaching finds one in KVM's VM list, dropped when KVM destroys the VM,
//! and shown in a debugfs directory `<pid>-<n>` (its `stats` and `latency`)
//! beside the totals (the pid from KVM's own `stats_id`, `kvm-<pid>`, and
//! `n` counting the VMs the module has seen).
//!
//! # Locking
//!
//! - Finding a VM's state takes no lock: the states sit in an RCU hash table
//!   keyed by `struct kvm *` (`helpers.c`, `tsg_vm_*`). A reader holds
//!   `rcu_read_lock()` ([`rcu::Guard`]) for as long as it uses the state;
//!   the table holds one reference of each state's [`Arc`], which is dropped
//!   a grace period after the entry is removed (in [`WorkItem::run`]).
//! - Adding an entry happens in process context and allocates there; adding
//!   and removing take the table's spinlock with interrupts off (removal
//!   runs in the destroy kprobe's handler). Nothing else is taken under it.
//! - Walking KVM's VM list takes KVM's `kvm_lock` mutex only to collect TDs
//!   (with a reference each); their states are allocated after it is
//!   released, since reclaim may enter KVM's MMU shrinker, which takes it.
//! - Per VM, [`VmState::kickers`] (a spinlock) orders the gate's count with
//!   KVM's `wait_for_sept_zap`; it is taken only on the busy path, under
//!   `mmu_lock` read-held, and nests inside nothing else of the module.
//! - Each vCPU's zero-step detector is one atomic word, written only from
//!   that vCPU's own task (its exits and faults): no lock.
//! - [`VmState::files`] (a mutex) is taken only by the work item, in process
//!   context.
//!
//! Nothing is allocated in the map path or the probes. A VM whose state
//! cannot be allocated gets an entry without state: it is logged once and
//! its calls pass through, counted. A TD the map path finds no entry for
//! (one created while the module attached, between KVM's `vm_init` and its
//! listing) makes the map path queue [`Adopt`], which walks KVM's list again
//! in process context. Making or removing debugfs files, and freeing a
//! state (which waits for its IPIs in flight), is also work for the
//! backend's own workqueue, which detaching flushes and drains.

use super::bindings::ffi::{
    tsg_kvm_for_each_new_td,
    tsg_vm_for_each,
    tsg_vm_insert,
    tsg_vm_lookup,
    tsg_vm_remove,
    tsg_vm_remove_any, //
};
use super::bindings::{
    kvm,
    Td, //
};
use super::hooks;
use crate::platform::{
    debugfs::{
        Dir,
        File, //
    },
    ipi::IpiSet,
    latency::{
        self,
        Latencies, //
    },
    percpu::PerCpu,
    sync::KCounter,
    trace::VmEvents,
    workqueue::OwnedQueue,
};
use crate::policy::counters::NR_COUNTERS;
use crate::policy::{
    CounterCell,
    CounterTable,
    Counters,
    ZeroStep,
    ZeroStepVerdict, //
};
use core::ffi::c_void;
use core::fmt;
use kernel::{
    alloc::KVBox,
    cpu::nr_cpu_ids,
    error::to_result,
    fmt::Write,
    impl_has_work, new_mutex, new_spinlock, new_work,
    prelude::*,
    str::CString,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        rcu,
        Arc,
        Mutex,
        SpinLock, //
    },
    workqueue::{
        Work,
        WorkItem, //
    },
};

/// One VM's state.
#[pin_data]
pub(super) struct VmState {
    /// The `struct kvm`, as a key: never dereferenced through this.
    pub(super) kvm: usize,
    /// The debugfs directory's name, `<pid>-<n>`.
    name: [u8; 32],
    /// Its trace events, which show `n` as the VM's number (`vm=`), and its
    /// latency histograms.
    pub(super) events: VmEvents,
    /// Kickers holding the gate (see `GateCell`).
    #[pin]
    pub(super) kickers: SpinLock<u64>,
    /// One asynchronous IPI slot per CPU.
    pub(super) ipis: IpiSet,
    /// The policy's counters for this VM, one copy per CPU: the VM's
    /// concurrent map calls share no counter cache line.
    pub(super) counters: PerCpu<Counters<KCounter>>,
    /// Each vCPU's zero-step detector ([`ZeroStep::to_bits`]), by vCPU
    /// index, for the VM's `max_vcpus` vCPUs (final once `tdx_vm_init()`
    /// has run).
    zero_step: KVec<Atomic<u64>>,
    /// The test module's "option A" (`KvmState::zero_step`): per vCPU, 1 +
    /// the GFN of the fault for which that vCPU holds the gate up, or 0.
    /// Set by the vCPU's own task; taken (swapped to 0) by whoever lowers
    /// the gate for it, exactly once.
    #[cfg(tsg_tests)]
    pub(super) holds: KVec<Atomic<u64>>,
    /// KVM destroyed the VM: the work removes the files.
    gone: Atomic<bool>,
    #[pin]
    files: Mutex<Option<VmFiles>>,
    #[pin]
    work: Work<VmState>,
    root: Option<Arc<Dir>>,
}

impl_has_work! {
    impl HasWork<Self> for VmState { self.work }
}

/// A VM's debugfs directory and its `stats` and `latency` files.
struct VmFiles {
    // The files first: they hold the directory.
    _stats: Pin<KBox<File<VmRef>>>,
    _latency: Pin<KBox<File<VmRef>>>,
    _dir: Arc<Dir>,
}

/// The VM a `stats` or `latency` file shows.
///
/// # Invariants
///
/// Points to the `VmState` whose `files` hold this file; the state removes
/// its files (in `WorkItem::run` or when dropped) before it is freed.
struct VmRef(*const VmState);

// SAFETY: `VmState` is `Sync`; the pointer is only read as `&VmState`.
unsafe impl Send for VmRef {}
// SAFETY: As above.
unsafe impl Sync for VmRef {}

fn show_vm_stats(vm: &VmRef, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    // SAFETY: By the type invariant the state outlives its files, and the
    // file exists while this runs.
    let vm = unsafe { &*vm.0 };
    let sum = Counters::<KCounter>::new();
    vm.counters.sum_into(&sum);
    sum.render(f)
}

fn show_vm_latency(vm: &VmRef, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    // SAFETY: As in `show_vm_stats`.
    let vm = unsafe { &*vm.0 };
    match vm.events.latency() {
        Some(l) => l.render(f),
        None => latency::render_off(f),
    }
}

impl VmState {
    /// `<pid>-<n>`.
    pub(super) fn name(&self) -> &[u8] {
        let len = self
            .name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.name.len());
        &self.name[..len]
    }

    /// Runs `f` on the zero-step detector of vCPU `vcpu_idx`. The
    /// observation that engages the detector is traced (`tsg_zero_step`)
    /// with the GPA of the vCPU's fault streak, all ones if there is none (a
    /// busy TDH.VP.ENTER before any fault).
    ///
    /// Called only from that vCPU's own task (its exits and faults), so the
    /// load and the store need not be one atomic step.
    ///
    /// Returns the detector's verdict (`None` for a vCPU index out of range).
    pub(super) fn zero_step_observe(
        &self,
        vcpu_idx: u32,
        f: impl FnOnce(&mut ZeroStep, &Counters<KCounter>) -> ZeroStepVerdict,
    ) -> Option<ZeroStepVerdict> {
        let cell = self.zero_step.get(vcpu_idx as usize)?;
        let mut det = ZeroStep::from_bits(cell.load(Relaxed));
        let verdict = f(&mut det, self.counters.local());
        cell.store(det.to_bits(), Relaxed);
        if det.engaged_now() {
            self.events
                .zero_step(vcpu_idx as usize, det.gpa().unwrap_or(u64::MAX));
        }
        Some(verdict)
    }
}

impl WorkItem for VmState {
    type Pointer = Arc<VmState>;

    /// Makes the VM's files, or, once the VM is gone, removes them and lets
    /// the last reference go a grace period after it left the table, in
    /// process context.
    fn run(this: Arc<VmState>) {
        let mut files = this.files.lock();
        if this.gone.load(Relaxed) {
            *files = None;
            drop(files);
            // Readers that found the state in the table before it was
            // removed are done after this.
            hooks::synchronize_rcu();
            return;
        }
        if files.is_some() {
            return;
        }
        let Some(root) = &this.root else {
            return;
        };
        let Ok(name) =
            CString::try_from_fmt(fmt!("{}", kernel::str::BStr::from_bytes(this.name())))
        else {
            return;
        };
        let Ok(dir) = Dir::new(&name, Some(root.clone())) else {
            return;
        };
        let vm = || VmRef(core::ptr::from_ref::<VmState>(&this));
        if let (Ok(stats), Ok(latency)) = (
            File::new(&dir, c"stats", vm(), Some(show_vm_stats), None),
            File::new(&dir, c"latency", vm(), Some(show_vm_latency), None),
        ) {
            *files = Some(VmFiles {
                _stats: stats,
                _latency: latency,
                _dir: dir,
            });
        }
    }
}

/// Every VM the backend keeps state for, and the counters of those gone.
#[pin_data(PinnedDrop)]
pub(super) struct Vms {
    /// Counters of destroyed VMs, kept for the totals.
    retired: Counters<KCounter>,
    /// Latency histograms of destroyed VMs, kept for the totals (`None`:
    /// histograms are off, for every VM).
    retired_latency: Option<KVBox<Latencies>>,
    /// VMs seen so far: the `<n>` of their names.
    seen: Atomic<u64>,
    /// Times a VM's state could not be allocated (it runs without the
    /// policy).
    failures: Atomic<u64>,
    /// The module's debugfs root, once main has made it.
    #[pin]
    root: SpinLock<Option<Arc<Dir>>>,
    /// The walk of KVM's VM list that the map path asks for.
    adopt: Arc<Adopt>,
    queue: OwnedQueue,
}

/// Work that gives state to the TDs in KVM's VM list that have none: a TD
/// created while the module attached, after the walk attaching made but
/// with its `vm_init` before the redirection, is found this way at its
/// first map (which passes through, counted).
#[pin_data]
pub(super) struct Adopt {
    #[pin]
    work: Work<Adopt>,
}

impl_has_work! {
    impl HasWork<Self> for Adopt { self.work }
}

impl WorkItem for Adopt {
    type Pointer = Arc<Adopt>;

    fn run(_this: Arc<Adopt>) {
        super::entry::adopt_tds();
    }
}

/// Copies a table's values, in declaration order.
fn values(c: &Counters<KCounter>) -> [u64; NR_COUNTERS] {
    let mut out = [0; NR_COUNTERS];
    let mut i = 0;
    c.for_each_counter(&mut |_, cell| {
        if let Some(slot) = out.get_mut(i) {
            *slot = cell.get();
        }
        i += 1;
    });
    out
}

/// The pid in KVM's `stats_id` (`kvm-<pid>`), or 0.
fn pid_of(kvm: *mut kvm) -> u64 {
    // SAFETY: `kvm` is a live VM (the callers' contract); `stats_id` is
    // written once at creation.
    let id = unsafe { core::ptr::addr_of!((*kvm).stats_id).read() };
    id.iter()
        .skip(4)
        .take_while(|&&c| c != 0)
        .try_fold(0u64, |n, &c| {
            let d = c.checked_sub(b'0').filter(|d| *d < 10)?;
            n.checked_mul(10)?.checked_add(u64::from(d))
        })
        .unwrap_or(0)
}

/// The state behind a pointer the table returned.
///
/// # Safety
///
/// `ptr` is NULL or came from the table (`Arc::into_raw` of a `VmState`),
/// and the caller holds `rcu_read_lock()` for `'g`, or the table's
/// reference is not yet released.
unsafe fn state_ref<'g>(ptr: *const c_void) -> Option<&'g VmState> {
    // SAFETY: By the caller's contract the state is alive for `'g`.
    unsafe { ptr.cast::<VmState>().as_ref() }
}

impl Vms {
    /// No VM yet; each VM keeps latency histograms if `histograms`.
    pub(super) fn new(histograms: bool) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            retired: Counters::new(),
            retired_latency: Latencies::new(histograms)?,
            seen: Atomic::new(0),
            failures: Atomic::new(0),
            root <- new_spinlock!(None, "Vms::root"),
            adopt: Arc::pin_init(pin_init!(Adopt { work <- new_work!("Adopt::work") }), GFP_KERNEL)?,
            queue: OwnedQueue::new(c"tsg_kvm")?,
        }? Error)
    }

    /// Where the per-VM directories go.
    pub(super) fn set_root(&self, root: &Arc<Dir>) {
        *self.root.lock() = Some(root.clone());
    }

    /// The state of the TD `td`, if it has some.
    pub(super) fn get<'g>(&self, td: Td<'_>, rcu: &'g rcu::Guard) -> Option<&'g VmState> {
        self.get_key(td.kvm(), rcu)
    }

    /// The state of the VM `kvm`, if it has some; `kvm` is only a key (it
    /// may be any pointer, never dereferenced).
    pub(super) fn get_key<'g>(&self, kvm: *mut kvm, _rcu: &'g rcu::Guard) -> Option<&'g VmState> {
        let mut known = false;
        // SAFETY: The table's contract: called under `rcu_read_lock()`,
        // which `_rcu` holds for `'g`; it compares `kvm`, reads nothing
        // through it.
        let ptr = unsafe { tsg_vm_lookup(kvm, &mut known) };
        // SAFETY: From the table, under `_rcu`.
        unsafe { state_ref(ptr) }
    }

    /// The map path found no state for `td`: if the VM has no entry at all
    /// (KVM created it while the module attached), queue the walk that
    /// makes one. Any context; allocates nothing.
    pub(super) fn missing(&self, td: Td<'_>) {
        let mut known = false;
        {
            let _rcu = rcu::read_lock();
            // SAFETY: Under `rcu_read_lock()`.
            unsafe { tsg_vm_lookup(td.kvm(), &mut known) };
        }
        if !known {
            // Already queued: that run will find it.
            let _ = self.queue.queue().enqueue(self.adopt.clone());
        }
    }

    /// A new state for the TD `td`. Process context: may sleep.
    fn new_state(&self, td: Td<'_>) -> Result<Arc<VmState>> {
        let kvm = td.kvm();
        let mut name = [0u8; 32];
        let n = self.seen.fetch_add(1, Relaxed);
        let mut w = kernel::str::Formatter::new(&mut name[..31]);
        let _ = write!(w, "{}-{}", pid_of(kvm), n);
        let root = self.root.lock().clone();
        let latency = Latencies::new(self.retired_latency.is_some())?;
        let vcpus = td.max_vcpus() as usize;
        // At most 8 bytes per present CPU (`tdx_vm_init()` caps
        // `max_vcpus` there).
        let mut zero_step = KVec::with_capacity(vcpus, GFP_KERNEL)?;
        for _ in 0..vcpus {
            zero_step.push(Atomic::new(ZeroStep::new().to_bits()), GFP_KERNEL)?;
        }
        #[cfg(tsg_tests)]
        let holds = {
            let mut holds = KVec::with_capacity(vcpus, GFP_KERNEL)?;
            for _ in 0..vcpus {
                holds.push(Atomic::new(0), GFP_KERNEL)?;
            }
            holds
        };
        Arc::pin_init(
            try_pin_init!(VmState {
                kvm: kvm as usize,
                name,
                events: VmEvents::new(n, latency),
                kickers <- new_spinlock!(0, "VmState::kickers"),
                ipis: IpiSet::new(nr_cpu_ids())?,
                counters: PerCpu::new(Counters::new)?,
                zero_step,
                #[cfg(tsg_tests)]
                holds,
                gone: Atomic::new(false),
                files <- new_mutex!(None, "VmState::files"),
                work <- new_work!("VmState::work"),
                root,
            }? Error),
            GFP_KERNEL,
        )
    }

    /// Gives the TD `td`, just created by KVM or found in its VM list, its
    /// entry in the table: with a new state, or without one if that cannot
    /// be allocated (logged, once for the VM). Returns whether the VM has
    /// an entry now. Process context, no lock held: may sleep.
    pub(super) fn make(&self, td: Td<'_>) -> bool {
        let kvm = td.kvm();
        let state = self.new_state(td);
        let raw = match &state {
            Ok(state) => Arc::into_raw(state.clone()).cast::<c_void>(),
            Err(_) => core::ptr::null(),
        };
        // SAFETY: `raw` is NULL or a reference the table owns from now on,
        // until `destroyed()` or drop takes it back; process context.
        let ret = to_result(unsafe { tsg_vm_insert(kvm, raw) });
        if ret.is_err() && !raw.is_null() {
            // The VM had an entry already (the creation hook and a walk
            // both saw it), or none could be allocated: take ours back.
            // SAFETY: `raw` came from `Arc::into_raw` above and the table
            // did not keep it.
            drop(unsafe { Arc::from_raw(raw.cast::<VmState>()) });
        }
        match (state, ret) {
            (Ok(state), Ok(())) => {
                // Its files are made in process context, by the work.
                let _ = self.queue.queue().enqueue(state);
                true
            }
            (_, Err(e)) if e == EEXIST => true,
            (_, ret) => {
                self.failures.fetch_add(1, Relaxed);
                pr_warn!(
                    "kvm: VM kvm-{} ({:#x}): no memory for its state: its maps pass through without the policy (kvm_untracked_calls counts them){}\n",
                    pid_of(kvm),
                    kvm as usize,
                    if ret.is_ok() { "" } else { "; tried again at its next map" },
                );
                ret.is_ok()
            }
        }
    }

    /// Gives state to every TD in KVM's VM list that has none: those that
    /// exist when the module attaches, and any created meanwhile.
    /// Process context, no lock held. Returns how many TDs it found, or
    /// `None` if KVM's VM list could not be found.
    pub(super) fn adopt(&self) -> Option<u32> {
        /// # Safety
        ///
        /// `data` points to a `Vms`; `kvm` is a TD KVM holds a reference
        /// to for the call (`helpers.c`).
        unsafe extern "C" fn one(kvm: *mut kvm, data: *mut c_void) -> bool {
            // SAFETY: `data` is the `Vms` passed below, alive for the walk.
            let vms = unsafe { &*data.cast::<Vms>() };
            // SAFETY: A live TD for the call (the walk holds a reference).
            match unsafe { Td::from_kvm(kvm) } {
                Some(td) => vms.make(td),
                None => false,
            }
        }
        // SAFETY: `one` matches the callback's prototype; `self` outlives
        // the walk; process context.
        let n = unsafe {
            tsg_kvm_for_each_new_td(Some(one), core::ptr::from_ref(self).cast_mut().cast())
        };
        u32::try_from(n).ok()
    }

    /// Waits for the work queued so far: the adopting walk, the files.
    pub(super) fn flush(&self) {
        self.queue.flush();
    }

    /// Takes a state the table gave up back, and lets it go: its counters
    /// join the totals of gone VMs, its files go, it is freed after a grace
    /// period.
    ///
    /// # Safety
    ///
    /// `ptr` is NULL or a state just removed from the table, whose reference
    /// the caller now owns.
    unsafe fn retire(&self, ptr: *const c_void) {
        if ptr.is_null() {
            return;
        }
        // SAFETY: The caller's contract: the table's reference, from
        // `Arc::into_raw`.
        let vm = unsafe { Arc::from_raw(ptr.cast::<VmState>()) };
        vm.counters.sum_into(&self.retired);
        if let (Some(sum), Some(l)) = (&self.retired_latency, vm.events.latency()) {
            sum.add_from(l);
        }
        vm.gone.store(true, Relaxed);
        // If the work is queued already, that run sees `gone`.
        let _ = self.queue.queue().enqueue(vm);
    }

    /// KVM is destroying the VM `kvm`: no call for it can come any more.
    pub(super) fn destroyed(&self, kvm: usize) {
        // SAFETY: Removing takes the entry's reference out of the table.
        let ptr = unsafe { tsg_vm_remove(kvm as *mut kvm) };
        // SAFETY: `ptr` was just removed; its reference is ours.
        unsafe { self.retire(ptr) };
    }

    /// Calls `f` on every VM's state.
    fn for_each<F: FnMut(&VmState)>(&self, mut f: F) {
        /// # Safety
        ///
        /// `data` points to an `F`, and `state` is NULL or a state of the
        /// table, which holds `rcu_read_lock()` during the call.
        unsafe extern "C" fn call<F: FnMut(&VmState)>(state: *const c_void, data: *mut c_void) {
            // SAFETY: `data` is the `F` passed below, alive for the call.
            let f = unsafe { &mut *data.cast::<F>() };
            // SAFETY: The table calls this under `rcu_read_lock()` with a
            // state it holds.
            if let Some(vm) = unsafe { state_ref(state) } {
                f(vm);
            }
        }
        // SAFETY: `call::<F>` matches the callback's prototype and `f`
        // outlives the walk, which does not sleep (`f` only reads and
        // resets counters).
        unsafe { tsg_vm_for_each(Some(call::<F>), (&raw mut f).cast()) }
    }

    /// How many VMs have state.
    pub(super) fn len(&self) -> usize {
        let mut n = 0;
        self.for_each(|_| n += 1);
        n
    }

    /// How many times a VM's state could not be allocated.
    pub(super) fn failures(&self) -> u64 {
        self.failures.load(Relaxed)
    }

    /// The debugfs directory name of the VM `kvm`, if its files exist.
    #[cfg(tsg_tests)]
    pub(super) fn files_of(&self, td: Td<'_>) -> Option<CString> {
        let vm: Arc<VmState> = {
            let rcu = rcu::read_lock();
            let vm = self.get(td, &rcu)?;
            // SAFETY: The table holds a reference to `vm` for at least as
            // long as `rcu` is held, so the count is not zero.
            unsafe { kernel::sync::ArcBorrow::from_raw(vm) }.into()
        };
        let files = vm.files.lock();
        files.as_ref()?;
        CString::try_from_fmt(fmt!("{}", kernel::str::BStr::from_bytes(vm.name()))).ok()
    }

    /// `extra` plus every VM's counters, gone ones included.
    pub(super) fn totals(&self, extra: &Counters<KCounter>) -> [u64; NR_COUNTERS] {
        let mut sum = values(extra);
        let mut add = |v: [u64; NR_COUNTERS]| sum.iter_mut().zip(v).for_each(|(s, v)| *s += v);
        add(values(&self.retired));
        self.for_each(|vm| {
            let sum = Counters::<KCounter>::new();
            vm.counters.sum_into(&sum);
            add(values(&sum));
        });
        sum
    }

    /// Every VM's latency histograms, gone ones included, and `extra`,
    /// summed. Process context: allocates.
    pub(super) fn latency_totals(&self, extra: &Latencies) -> Result<KVBox<Latencies>> {
        let sum = Latencies::new(true)?.ok_or(EINVAL)?;
        sum.add_from(extra);
        if let Some(l) = &self.retired_latency {
            sum.add_from(l);
        }
        self.for_each(|vm| {
            if let Some(l) = vm.events.latency() {
                sum.add_from(l);
            }
        });
        Ok(sum)
    }

    /// Zeroes every VM's counters and latency histograms, and those of gone
    /// VMs.
    pub(super) fn reset(&self) {
        self.retired.reset();
        if let Some(l) = &self.retired_latency {
            l.reset();
        }
        self.for_each(|vm| {
            vm.counters.reset();
            if let Some(l) = vm.events.latency() {
                l.reset();
            }
        });
    }
}

#[pinned_drop]
impl PinnedDrop for Vms {
    fn drop(self: Pin<&mut Self>) {
        // Empty the table and let the work remove each VM's files; the queue
        // is drained when the `queue` field drops, after this.
        let mut ptr = core::ptr::null();
        // SAFETY: Removing takes the entry's reference out of the table.
        while unsafe { tsg_vm_remove_any(&mut ptr) } {
            // SAFETY: `ptr` was just removed; its reference is ours.
            unsafe { self.retire(ptr) };
        }
    }
}
