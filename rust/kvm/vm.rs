// SPDX-License-Identifier: GPL-2.0

//! Per-VM state: found from the `struct kvm *` KVM passes, made on the VM's
//! first map call, dropped when KVM destroys the VM, and shown in a debugfs
//! directory `<pid>-<n>` beside the totals (the pid from KVM's own
//! `stats_id`, `kvm-<pid>`, and `n` counting the VMs the module has seen).
//!
//! The map hook runs under `mmu_lock`, a spinning lock, and KVM's
//! destruction is seen from a kretprobe: neither may sleep. So the state is
//! allocated with `GFP_ATOMIC`, and making or removing its debugfs files, and
//! freeing it (which waits for its IPIs in flight), is work for the backend's
//! own workqueue, which detaching drains.

use super::bindings::kvm;
use crate::platform::{
    debugfs::{
        Dir,
        File, //
    },
    ipi::IpiSet,
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
use core::fmt;
use kernel::{
    cpu::nr_cpu_ids,
    fmt::Write,
    impl_has_work, new_mutex, new_spinlock, new_work,
    prelude::*,
    str::CString,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc, Mutex, SpinLock,
    },
    workqueue::{
        Work,
        WorkItem, //
    },
};

/// At most this many VMs get per-VM state; later ones pass through, counted.
const MAX_VMS: usize = 1024;

/// One VM's state.
#[pin_data]
pub(super) struct VmState {
    /// The `struct kvm`, as a key: never dereferenced through this.
    pub(super) kvm: usize,
    /// The debugfs directory's name, `<pid>-<n>`.
    name: [u8; 32],
    /// Its trace events; they show `n` as the VM's number (`vm=`).
    pub(super) events: VmEvents,
    /// Kickers holding the gate (see `GateCell`).
    #[pin]
    pub(super) kickers: SpinLock<u64>,
    /// One asynchronous IPI slot per CPU.
    pub(super) ipis: IpiSet,
    /// The policy's counters for this VM.
    pub(super) counters: Counters<KCounter>,
    /// Each vCPU's zero-step detector, by `struct kvm_vcpu` address, and
    /// whether a kick is owed to its next fault (see `KvmState::zero_step`).
    #[pin]
    pub(super) zero_step: SpinLock<KVec<(usize, ZeroStep, bool)>>,
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

/// A VM's debugfs directory and its `stats` file.
struct VmFiles {
    // The file first: it holds the directory.
    _stats: Pin<KBox<File<VmRef>>>,
    _dir: Arc<Dir>,
}

/// The VM a `stats` file shows.
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
    vm.counters.render(f)
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
}

impl VmState {
    /// Runs `f` on the zero-step detector of the vCPU at `vcpu` (index
    /// `vcpu_idx`), made on first use (without sleeping). Returns whether to
    /// kick now: the verdict is `KickAndWait`, or a kick is owed, and
    /// `may_kick`; a `KickAndWait` that may not kick now is owed to the next
    /// call that may. The observation that engages the detector is traced
    /// (`tsg_zero_step`) with the GPA of the vCPU's fault streak, all ones
    /// if there is none (a busy TDH.VP.ENTER before any fault).
    pub(super) fn zero_step_verdict(
        &self,
        vcpu: usize,
        vcpu_idx: u32,
        may_kick: bool,
        f: impl FnOnce(&mut ZeroStep, &Counters<KCounter>) -> ZeroStepVerdict,
    ) -> bool {
        let mut list = self.zero_step.lock();
        let i = match list.iter().position(|(v, _, _)| *v == vcpu) {
            Some(i) => i,
            None => {
                if list
                    .push((vcpu, ZeroStep::new(), false), GFP_ATOMIC)
                    .is_err()
                {
                    return false;
                }
                list.len() - 1
            }
        };
        let Some((_, det, owed)) = list.get_mut(i) else {
            return false;
        };
        let kick = f(det, &self.counters) == ZeroStepVerdict::KickAndWait || *owed;
        if det.engaged_now() {
            self.events
                .zero_step(vcpu_idx as usize, det.gpa().unwrap_or(u64::MAX));
        }
        *owed = kick && !may_kick;
        kick && may_kick
    }
}

impl WorkItem for VmState {
    type Pointer = Arc<VmState>;

    /// Makes the VM's files, or, once KVM destroyed the VM, removes them;
    /// the last reference may drop here, in process context.
    fn run(this: Arc<VmState>) {
        let mut files = this.files.lock();
        if this.gone.load(Relaxed) {
            *files = None;
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
        let vm = VmRef(core::ptr::from_ref::<VmState>(&this));
        if let Ok(stats) = File::new(&dir, c"stats", vm, Some(show_vm_stats), None) {
            *files = Some(VmFiles {
                _stats: stats,
                _dir: dir,
            });
        }
    }
}

/// Every VM the backend keeps state for, and the counters of those gone.
#[pin_data(PinnedDrop)]
pub(super) struct Vms {
    #[pin]
    list: SpinLock<KVec<Arc<VmState>>>,
    /// Counters of destroyed VMs, kept for the totals.
    retired: Counters<KCounter>,
    /// VMs seen so far: the `<n>` of their names.
    seen: Atomic<u64>,
    /// The module's debugfs root, once main has made it.
    #[pin]
    root: SpinLock<Option<Arc<Dir>>>,
    queue: OwnedQueue,
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

/// Adds `from`'s values into `to`.
fn add_into(to: &Counters<KCounter>, from: &[u64; NR_COUNTERS]) {
    let mut i = 0;
    to.for_each_counter(&mut |_, cell| {
        cell.add(from.get(i).copied().unwrap_or(0));
        i += 1;
    });
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

impl Vms {
    pub(super) fn new() -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            list <- new_spinlock!(KVec::new(), "Vms::list"),
            retired: Counters::new(),
            seen: Atomic::new(0),
            root <- new_spinlock!(None, "Vms::root"),
            queue: OwnedQueue::new(c"tsg_kvm")?,
        }? Error)
    }

    /// Where the per-VM directories go.
    pub(super) fn set_root(&self, root: &Arc<Dir>) {
        *self.root.lock() = Some(root.clone());
    }

    /// The state of the VM `kvm`, made on first use without sleeping.
    ///
    /// `kvm` must be a live VM.
    pub(super) fn get_or_make(&self, kvm: *mut kvm) -> Option<Arc<VmState>> {
        let key = kvm as usize;
        let mut list = self.list.lock();
        if let Some(vm) = list.iter().find(|vm| vm.kvm == key) {
            return Some(vm.clone());
        }
        if list.len() >= MAX_VMS {
            return None;
        }
        let mut name = [0u8; 32];
        let n = self.seen.fetch_add(1, Relaxed);
        let mut w = kernel::str::Formatter::new(&mut name[..31]);
        let _ = write!(w, "{}-{}", pid_of(kvm), n);
        let root = self.root.lock().clone();
        let state = Arc::pin_init(
            try_pin_init!(VmState {
                kvm: key,
                name,
                events: VmEvents::new(n),
                kickers <- new_spinlock!(0, "VmState::kickers"),
                ipis: IpiSet::new_atomic(nr_cpu_ids())?,
                counters: Counters::new(),
                zero_step <- new_spinlock!(KVec::new(), "VmState::zero_step"),
                gone: Atomic::new(false),
                files <- new_mutex!(None, "VmState::files"),
                work <- new_work!("VmState::work"),
                root,
            }? Error),
            GFP_ATOMIC,
        )
        .ok()?;
        list.push(state.clone(), GFP_ATOMIC).ok()?;
        drop(list);
        // Its files are made in process context.
        let _ = self.queue.queue().enqueue(state.clone());
        Some(state)
    }

    /// KVM destroyed the VM `kvm` (no call for it can come any more): its
    /// counters join the totals of gone VMs, its files go, it is freed.
    pub(super) fn destroyed(&self, kvm: usize) {
        let mut list = self.list.lock();
        let Some(i) = list.iter().position(|vm| vm.kvm == kvm) else {
            return;
        };
        let Ok(vm) = list.remove(i) else {
            return;
        };
        drop(list);
        add_into(&self.retired, &values(&vm.counters));
        vm.gone.store(true, Relaxed);
        // If the work is queued already, that run sees `gone`.
        let _ = self.queue.queue().enqueue(vm);
    }

    /// How many VMs have state.
    pub(super) fn len(&self) -> usize {
        self.list.lock().len()
    }

    /// The debugfs directory name of the VM `kvm`, if its files exist.
    #[cfg(tsg_tests)]
    pub(super) fn files_of(&self, kvm: usize) -> Option<CString> {
        let vm = self.list.lock().iter().find(|vm| vm.kvm == kvm)?.clone();
        let files = vm.files.lock();
        files.as_ref()?;
        CString::try_from_fmt(fmt!("{}", kernel::str::BStr::from_bytes(vm.name()))).ok()
    }

    /// `extra` plus every VM's counters, gone ones included.
    pub(super) fn totals(&self, extra: &Counters<KCounter>) -> [u64; NR_COUNTERS] {
        let mut sum = values(extra);
        let mut add = |v: [u64; NR_COUNTERS]| sum.iter_mut().zip(v).for_each(|(s, v)| *s += v);
        add(values(&self.retired));
        for vm in self.list.lock().iter() {
            add(values(&vm.counters));
        }
        sum
    }

    /// Zeroes every VM's counters and those of gone VMs.
    pub(super) fn reset(&self) {
        self.retired.reset();
        for vm in self.list.lock().iter() {
            vm.counters.reset();
        }
    }
}

#[pinned_drop]
impl PinnedDrop for Vms {
    fn drop(self: Pin<&mut Self>) {
        // Mark every VM gone and let the work remove its files; the queue is
        // drained when the `queue` field drops, after this.
        let list = core::mem::take(&mut *self.list.lock());
        for vm in list {
            vm.gone.store(true, Relaxed);
            let _ = self.queue.queue().enqueue(vm);
        }
    }
}
