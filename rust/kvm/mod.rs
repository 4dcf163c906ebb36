// SPDX-License-Identifier: GPL-2.0

//! The KVM TDX backend: the policy in KVM's own S-EPT map path.
//!
//! KVM 7.2 maps private memory with `tdp_mmu_set_spte_atomic()`, which
//! freezes the mirror SPTE (`FROZEN_SPTE`) and calls `set_external_spte`,
//! i.e. `tdx_sept_set_private_spte()`, under the read side of `mmu_lock`. A
//! busy TDH.MEM.PAGE.AUG or TDH.MEM.SEPT.ADD comes back as `-EBUSY`, KVM
//! unfreezes the SPTE and re-faults, in a loop with no kick and no bound.
//! This backend redirects `tdx_sept_set_private_spte()` (ftrace, IPMODIFY)
//! and runs the map call under the policy while the SPTE is still frozen:
//! on busy it raises KVM's own entry gate (`kvm_tdx->wait_for_sept_zap`),
//! kicks the vCPUs in guest mode with IPIs it waits for against a deadline,
//! and calls the original once more; a second busy stops the VM. Unmap calls
//! (present old SPTE) go straight through: KVM already kicks and retries
//! once there (`tdh_do_no_vcpus()`). See `Documentation/attach.rst`.

#[cfg(tsg_tests)]
mod bench;
mod bindings;
pub(crate) mod hooks;
#[cfg(tsg_tests)]
mod kunit;
mod vm;

use crate::backend::Backend;
use crate::platform::{
    ipi::IpiSet,
    sync::{
        KClock,
        KCounter, //
    },
};
use crate::policy::counters::counter_table;
use crate::policy::{
    gate::OUTSIDE_GUEST_MODE,
    Atomic64,
    Clock,
    CounterCell,
    CounterTable,
    Counters,
    EntryGate,
    Executor,
    KickTimeout,
    Leaf,
    Operand,
    Outcome,
    Policy,
    Seamcall,
    SeptOp,
    Status,
    VcpuSet,
    VmBugReason,
    ZeroStepVerdict, //
};
use bindings::{
    kvm,
    kvm_vcpu,
    Td,
    TD_STATE_RUNNABLE, //
};
use core::ffi::c_int;
use kernel::{
    cpu::nr_cpu_ids,
    prelude::*,
    processor::cpu_relax,
    str::BStr,
    sync::{
        atomic::{
            Acquire,
            Atomic,
            Full,
            Relaxed,
            Release, //
        },
        barrier::smp_mb,
        Arc,
        SpinLock, //
    },
};

/// For the test module: whether this host is one where redirecting KVM's
/// functions (as the suites do) cannot touch a real TD: not a TDX host
/// platform, and KVM has no VM. Says why not.
#[cfg(tsg_tests)]
pub(crate) fn test_host_check() -> Result {
    if hooks::tdx_host_platform() {
        pr_err!("this CPU is a TDX host platform: KVM may run TDs here\n");
        return Err(EPERM);
    }
    match hooks::nr_vms() {
        Some(0) => Ok(()),
        Some(n) => {
            pr_err!("KVM has {} VM(s) running\n", n);
            Err(EBUSY)
        }
        None => {
            pr_err!("KVM's VM list was not found, so no VM can be ruled out\n");
            Err(ENODEV)
        }
    }
}

/// The KVM function the backend redirects.
const TARGET: &CStr = c"tdx_sept_set_private_spte";

/// Why the module did not attach to KVM TDX.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Unavailable {
    /// The kernel has no KVM TDX code (`CONFIG_KVM_INTEL_TDX`), or
    /// `kvm_intel` is a module that is not loaded.
    NoKvmTdx,
    /// kvm_intel's `tdx` parameter is off.
    TdxDisabled,
    /// The CPU is not a TDX host platform.
    NoTdxPlatform,
    /// IBT is on and the function to call back has no ENDBR.
    NoEndbr,
    /// The kernel is PREEMPT_RT: the `kvm_exit` probe, which KVM runs with
    /// interrupts off, takes a `spinlock_t` and may allocate, and both
    /// sleep there.
    PreemptRt,
    /// Another IPMODIFY user (a livepatch, a BPF trampoline) owns the target.
    AlreadyHooked,
    /// Another instance attached already (a KUnit suite, say).
    Busy,
    /// Registering the hook failed otherwise.
    HookFailed(Error),
}

impl Unavailable {
    /// One line for the log.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Self::NoKvmTdx => "KVM TDX is not in this kernel (no tdx_sept_set_private_spte: CONFIG_KVM_INTEL_TDX off, or kvm_intel not loaded)",
            Self::TdxDisabled => "KVM's TDX support is disabled (kvm_intel.tdx=N), so KVM runs no TD",
            Self::NoTdxPlatform => "this CPU is not a TDX host platform (no X86_FEATURE_TDX_HOST_PLATFORM), so KVM runs no TD",
            Self::NoEndbr => "IBT is on and tdx_sept_set_private_spte has no ENDBR: calling it through a pointer would fault",
            Self::PreemptRt => "PREEMPT_RT kernels are not supported (the kvm_exit probe takes sleeping locks there)",
            Self::AlreadyHooked => "tdx_sept_set_private_spte is already redirected by another ftrace IPMODIFY user (a livepatch or a BPF trampoline)",
            Self::Busy => "the KVM backend is already attached",
            Self::HookFailed(_) => "registering the ftrace hook on tdx_sept_set_private_spte failed",
        }
    }

    /// The `insmod` error for `mode=kvm`.
    pub(crate) fn errno(self) -> Error {
        match self {
            Self::Busy | Self::AlreadyHooked => EBUSY,
            Self::HookFailed(e) => e,
            _ => ENODEV,
        }
    }
}

counter_table! {
    counters = crate::policy::counters;
    /// What the attach layer saw, beside the policy's counters.
    pub(crate) struct AttachCounters<C> {
        /// Map calls (TDH.MEM.PAGE.AUG, SEPT.ADD, PAGE.ADD) run under the
        /// policy.
        kvm_map_calls: "kvm",
        /// Unmap calls (BLOCK, TRACK, REMOVE) passed straight through.
        kvm_unmap_calls: "kvm",
        /// Map calls passed through without the policy: no per-VM state
        /// could be had (out of memory, or more than 1024 VMs).
        kvm_untracked_calls: "kvm",
        /// VMs the backend stopped (second busy, or a kick timed out).
        kvm_vm_stops: "kvm",
    }
}

/// The entry gate over KVM's `wait_for_sept_zap`: a count of the kickers
/// holding it, mirrored into KVM's flag, which `tdx_vcpu_run()` reads after
/// publishing `IN_GUEST_MODE`.
///
/// Map-path kickers hold `mmu_lock` for read, so several can hold the gate
/// at once; the count and the flag change together under `lock`. KVM's own
/// writers of the flag (`tdh_do_no_vcpus()`) hold `mmu_lock` for write and
/// so never overlap with a kicker. Raising is followed by `smp_mb()`, so
/// the flag is visible before the kicker reads any vCPU mode: the same
/// store-buffering pair as KVM's `smp_store_mb(vcpu->mode, IN_GUEST_MODE)`
/// before it reads the flag.
struct GateCell<'a> {
    td: Td<'a>,
    lock: &'a SpinLock<u64>,
}

impl GateCell<'_> {
    fn update(&self, f: impl FnOnce(u64) -> u64) -> u64 {
        let mut n = self.lock.lock();
        let old = *n;
        *n = f(old);
        if (old == 0) != (*n == 0) {
            self.td.set_wait_for_sept_zap(*n != 0);
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
struct KvmVcpus<'a> {
    td: Td<'a>,
    ipis: &'a IpiSet,
    clock: &'a KClock,
    timeout_ns: u64,
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

/// The policy executor of one VM: KVM's gate, its vCPUs, its counters and
/// trace events.
type KvmExecutor<'a> =
    Executor<'a, GateCell<'a>, KvmVcpus<'a>, KCounter, KClock, crate::platform::trace::VmEvents>;

/// The original `tdx_sept_set_private_spte()`, as the policy's SEAMCALL.
struct MapCall<'a> {
    orig: usize,
    td: Td<'a>,
    gfn: u64,
    old: u64,
    new: u64,
    level: i32,
    /// What the last call returned.
    ret: i32,
}

impl Seamcall for MapCall<'_> {
    /// KVM turns `TDX_OPERAND_BUSY` into `-EBUSY` and reports every other
    /// failure itself (`TDX_BUG_ON`) as `-EIO`. The operand of a busy
    /// status comes from the leaf's kretprobe; without one it counts as an
    /// unknown operand.
    fn seamcall(&mut self, op: &SeptOp) -> Status {
        // SAFETY: This runs inside the redirected call, with KVM's own
        // arguments and locks (see `tsg_kvm_set_private_spte`).
        let (ret, seen) = unsafe {
            hooks::call_set_private_spte(
                self.orig, self.td, self.gfn, self.old, self.new, self.level,
            )
        };
        self.ret = ret;
        match ret {
            0 => Status::SUCCESS,
            r if r == EBUSY.to_errno() && seen.is_busy_for(op.leaf) => seen,
            r if r == EBUSY.to_errno() => Status::operand_busy(Operand::Other(0)),
            _ => Status::from_raw(crate::policy::status::TDX_ERROR),
        }
    }
}

/// What the hook works with, shared with debugfs.
#[pin_data]
pub(crate) struct KvmState {
    orig: usize,
    policy: Policy,
    kick_timeout_ns: u64,
    clock: KClock,
    /// Counts made outside any one VM: the unmap leaves' busy statuses.
    pub(crate) counters: Counters<KCounter>,
    pub(crate) attach: AttachCounters<KCounter>,
    #[pin]
    vms: vm::Vms,
}

/// The attached backend: the redirection and the state it calls into.
/// Dropping it detaches.
pub(crate) struct KvmBackend {
    // Dropped before `redirect`, as `watch_owner` requires.
    _owner_watch: Option<hooks::OwnerWatch>,
    redirect: hooks::Redirect,
    _leaf_probes: hooks::LeafProbes,
    _destroy_probe: hooks::DestroyProbe,
    _zero_step_probes: hooks::ZeroStepProbes,
    pub(crate) state: Arc<KvmState>,
}

/// The attached backend's state, for the hook: set while the redirection
/// may call into it.
static ACTIVE: Atomic<usize> = Atomic::new(0);
/// Hook calls in progress.
static IN_FLIGHT: Atomic<u64> = Atomic::new(0);

/// How the backend is attached.
pub(crate) struct AttachOptions {
    /// The function to redirect: [`TARGET`], or another name in the tests.
    pub(crate) target: &'static CStr,
    pub(crate) policy: Policy,
    pub(crate) kick_timeout_us: u32,
    /// Attach even when the CPU is no TDX host platform: the KUnit suite
    /// drives KVM's code with a fake TD and a simulated TDX module.
    pub(crate) without_tdx_platform: bool,
    /// Place the per-leaf kretprobes. The KUnit suite redirects the
    /// SEAMCALL wrappers instead, which a kretprobe cannot share.
    pub(crate) leaf_probes: bool,
    /// Watch for kvm_intel's unloading with a module notifier. Not from a
    /// KUnit suite: those run inside the module notifier chain, whose lock
    /// registering a notifier would wait for.
    pub(crate) watch_owner: bool,
}

/// Attaches to KVM TDX if it is usable (`mode=auto`, `mode=kvm`), with the
/// policy and kick deadline main read from the module parameters.
#[cfg(not(tsg_tests))]
pub(crate) fn attach(
    policy: Policy,
    kick_timeout_us: u32,
) -> Result<Arc<dyn Backend>, Unavailable> {
    let opts = AttachOptions {
        target: TARGET,
        policy,
        kick_timeout_us,
        without_tdx_platform: false,
        leaf_probes: true,
        watch_owner: true,
    };
    let backend: Arc<dyn Backend> = Arc::new(KvmBackend::attach(opts)?, GFP_KERNEL)
        .map_err(|_| Unavailable::HookFailed(ENOMEM))?;
    Ok(backend)
}

impl KvmBackend {
    /// Finds and checks the target, then redirects it. Prints nothing; the
    /// caller says what happened.
    pub(crate) fn attach(opts: AttachOptions) -> Result<Self, Unavailable> {
        let orig = hooks::lookup(opts.target).ok_or(Unavailable::NoKvmTdx)?;
        if !opts.without_tdx_platform {
            if hooks::tdx_enabled_in_kvm() == Some(false) {
                return Err(Unavailable::TdxDisabled);
            }
            if !hooks::tdx_host_platform() {
                return Err(Unavailable::NoTdxPlatform);
            }
        }
        if hooks::ibt_enabled() && !hooks::has_endbr(orig) {
            return Err(Unavailable::NoEndbr);
        }
        if cfg!(CONFIG_PREEMPT_RT) {
            return Err(Unavailable::PreemptRt);
        }
        let state = Arc::pin_init(
            try_pin_init!(KvmState {
                orig,
                policy: opts.policy,
                kick_timeout_ns: u64::from(opts.kick_timeout_us) * 1000,
                clock: KClock::new(),
                counters: Counters::new(),
                attach: AttachCounters::new(),
                vms <- vm::Vms::new(),
            }? Error),
            GFP_KERNEL,
        )
        .map_err(Unavailable::HookFailed)?;
        let ptr = core::ptr::from_ref::<KvmState>(&state) as usize;
        if ACTIVE.cmpxchg(0, ptr, Full).is_err() {
            return Err(Unavailable::Busy);
        }
        // SAFETY: `orig` is the start of `tdx_sept_set_private_spte()` and the
        // replacement has its prototype; the redirection is dropped (in
        // `KvmBackend::drop`) before this module's text goes.
        match unsafe {
            hooks::Redirect::new(opts.target, orig, hooks::set_private_spte_replacement())
        } {
            Ok(redirect) => {
                let owner_watch = if opts.watch_owner {
                    // SAFETY: `KvmBackend` drops the watch before the redirect.
                    unsafe { redirect.watch_owner() }.ok()
                } else {
                    None
                };
                let leaf_probes = hooks::LeafProbes::register(opts.leaf_probes);
                let destroy_probe = hooks::DestroyProbe::register();
                let zero_step_probes = hooks::ZeroStepProbes::register();
                pr_info!(
                    "kvm: attached: {} redirected (policy {}); per-leaf outcomes from {} of 6 SEAMCALL wrappers; zero-step from KVM's tracepoints: {}; per-VM state freed {}\n",
                    opts.target.to_str().unwrap_or("?"),
                    opts.policy.name(),
                    leaf_probes.placed,
                    if zero_step_probes.placed { "yes" } else { "no" },
                    if destroy_probe.placed {
                        "when KVM destroys the VM"
                    } else {
                        "only at detach (no probe on kvm_arch_destroy_vm)"
                    }
                );
                Ok(Self {
                    _owner_watch: owner_watch,
                    redirect,
                    _leaf_probes: leaf_probes,
                    _destroy_probe: destroy_probe,
                    _zero_step_probes: zero_step_probes,
                    state,
                })
            }
            Err(e) => {
                ACTIVE.store(0, Release);
                Err(if e == EBUSY {
                    Unavailable::AlreadyHooked
                } else {
                    Unavailable::HookFailed(e)
                })
            }
        }
    }
}

impl KvmState {
    /// The map call, under the policy.
    fn map(&self, td: Td<'_>, gfn: u64, old: u64, new: u64, level: i32) -> i32 {
        let mut call = MapCall {
            orig: self.orig,
            td,
            gfn,
            old,
            new,
            level,
            ret: 0,
        };
        let Some(vm) = self.vms.get_or_make(td.kvm()) else {
            self.attach.kvm_untracked_calls.add(1);
            let _ = call.seamcall(&SeptOp::new_4k(Leaf::MemPageAug, gfn << 12));
            return call.ret;
        };
        self.attach.kvm_map_calls.add(1);
        let leaf = if !hooks::is_last_spte(new, level) {
            Leaf::MemSeptAdd
        } else if td.state() == TD_STATE_RUNNABLE {
            Leaf::MemPageAug
        } else {
            Leaf::MemPageAdd
        };
        let op = SeptOp {
            leaf,
            gpa: gfn << 12,
            level: level as u8,
        };
        let outcome = self.with_executor(td, &vm, |exec| exec.run(&op, &mut call));
        let vcpus = self.vcpus(td, &vm);
        match outcome {
            Outcome::Done { .. } => 0,
            Outcome::Error { .. } => call.ret,
            Outcome::Busy { .. } => EBUSY.to_errno(),
            Outcome::VmBug { reason, status, .. } => {
                self.stop_vm(td, &vcpus, &vm, leaf, reason, status);
                pr_warn!(
                    "kvm: VM {} ({:#x}) stopped: {} at gfn {:#x} ended in {:?}\n",
                    BStr::from_bytes(vm.name()),
                    td.kvm() as usize,
                    leaf.name(),
                    gfn,
                    reason
                );
                EIO.to_errno()
            }
        }
    }

    /// The VM's vCPUs, as the kicker sees them.
    fn vcpus<'a>(&'a self, td: Td<'a>, vm: &'a vm::VmState) -> KvmVcpus<'a> {
        KvmVcpus {
            td,
            ipis: &vm.ipis,
            clock: &self.clock,
            timeout_ns: self.kick_timeout_ns,
        }
    }

    /// Runs `f` with an executor for the VM: its gate (KVM's
    /// `wait_for_sept_zap`), vCPUs, counters and trace events.
    fn with_executor<R>(
        &self,
        td: Td<'_>,
        vm: &vm::VmState,
        f: impl FnOnce(&KvmExecutor<'_>) -> R,
    ) -> R {
        let gate = EntryGate::new(GateCell {
            td,
            lock: &vm.kickers,
        });
        let vcpus = self.vcpus(td, vm);
        let exec = Executor::new(self.policy, &gate, &vcpus, &vm.counters, &self.clock)
            .with_events(&vm.events);
        f(&exec)
    }

    /// The zero-step response, from KVM's fault path (a tracepoint probe, so
    /// with preemption off): with `mmu_lock` read-held as the map path holds
    /// it, raise the gate, kick the vCPUs in guest mode and wait (bounded),
    /// so that the fault that follows finds the S-EPT tree free. A vCPU that
    /// does not acknowledge stops the VM.
    fn zero_step_kick(&self, td: Td<'_>, vm: &vm::VmState) {
        let _mmu = td.mmu_read();
        let kicked = self.with_executor(td, vm, |exec| exec.kick_and_wait().is_ok());
        let vcpus = self.vcpus(td, vm);
        if !kicked {
            // As the simulator records it: no SEAMCALL failed, the vCPUs
            // were to be kept out of TDH.VP.ENTER.
            self.stop_vm(
                td,
                &vcpus,
                vm,
                Leaf::VpEnter,
                VmBugReason::KickTimeout,
                Status::SUCCESS,
            );
            pr_warn!(
                "kvm: VM {} ({:#x}) stopped: a zero-step kick timed out\n",
                BStr::from_bytes(vm.name()),
                td.kvm() as usize
            );
        }
    }

    /// A zero-step observation on `vcpu`: `f` feeds its detector; a
    /// `KickAndWait` verdict kicks if `may_kick`.
    ///
    /// Only the fault path may kick. `kvm_exit` fires inside
    /// `vcpu_enter_guest()` with interrupts off and the vCPU still in
    /// `IN_GUEST_MODE`: waiting there for other CPUs' acks while this CPU
    /// cannot take a kick itself would make two kickers time each other out.
    /// A busy TDH.VP.ENTER therefore only engages the detector and leaves
    /// the kick owed; the vCPU's next EPT violation (the zero-step
    /// mitigation's synthetic exit) pays it.
    fn zero_step(
        &self,
        vcpu: *mut kvm_vcpu,
        may_kick: bool,
        f: impl FnOnce(&mut crate::policy::ZeroStep, &Counters<KCounter>) -> ZeroStepVerdict,
    ) {
        // SAFETY: The tracepoints pass a live TD vCPU (`helpers.c` checks
        // `is_td_vcpu()`).
        let Some(td) = (unsafe { hooks::td_of(vcpu) }) else {
            return;
        };
        let Some(vm) = self.vms.get_or_make(td.kvm()) else {
            return;
        };
        // SAFETY: As above: a live vCPU of that TD.
        let idx = unsafe { bindings::Vcpu::from_raw(vcpu) }.map_or(u32::MAX, |v| v.idx());
        if vm.zero_step_verdict(vcpu as usize, idx, may_kick, f) {
            self.zero_step_kick(td, &vm);
        }
    }

    /// Stops the VM as `kvm_vm_bugged()` does, from what a module may use:
    /// `vm_bugged` and `vm_dead`, `KVM_REQ_VM_DEAD` on every vCPU, and a
    /// kick (bounded) so that running vCPUs see it. Traces it (`tsg_vm_stop`)
    /// with `leaf`, the `status` the policy saw and `reason`.
    fn stop_vm(
        &self,
        td: Td<'_>,
        vcpus: &KvmVcpus<'_>,
        vm: &vm::VmState,
        leaf: Leaf,
        reason: VmBugReason,
        status: Status,
    ) {
        vm.events.vm_stop(leaf, status, Some(reason));
        td.mark_bugged();
        for i in 0..td.online_vcpus() {
            if let Some(v) = td.vcpu(i) {
                v.request_vm_dead();
            }
        }
        for i in 0..vcpus.nr_vcpus() {
            if vcpus.exiting_guest_mode(i) != OUTSIDE_GUEST_MODE {
                vcpus.send_kick(&mut (), i);
            }
        }
        let _ = vcpus.wait_for_acks(());
        self.attach.kvm_vm_stops.add(1);
    }
}

/// The replacement for `tdx_sept_set_private_spte()` (through `helpers.c`).
///
/// # Safety
///
/// Called only by the redirected `tdx_sept_set_private_spte()`, with KVM's
/// arguments: `kvm` a live TD, `mmu_lock` held.
#[no_mangle]
unsafe extern "C" fn tsg_kvm_set_private_spte(
    kvm: *mut kvm,
    gfn: u64,
    old: u64,
    new: u64,
    level: c_int,
) -> c_int {
    IN_FLIGHT.fetch_add(1, Full);
    // SAFETY: KVM passes a live TD (the caller's contract).
    let td = unsafe { Td::from_kvm(kvm) };
    let backend = ACTIVE.load(Relaxed) as *const KvmState;
    let ret = match (td, backend.is_null()) {
        (Some(td), false) => {
            // SAFETY: `ACTIVE` holds a live backend while the redirection can
            // call here: `KvmBackend::drop` disables it and waits for calls
            // in progress before it clears `ACTIVE` and frees anything.
            let backend = unsafe { &*backend };
            if hooks::is_shadow_present(old) {
                backend.attach.kvm_unmap_calls.add(1);
                // SAFETY: KVM's own arguments, under KVM's own locks.
                unsafe { hooks::call_set_private_spte(backend.orig, td, gfn, old, new, level) }.0
            } else {
                backend.map(td, gfn, old, new, level)
            }
        }
        // Cannot happen: no redirection without a backend.
        _ => EIO.to_errno(),
    };
    IN_FLIGHT.fetch_sub(1, Full);
    ret
}

/// A kretprobe saw an unmap-leaf SEAMCALL wrapper return `raw`
/// (`helpers.c`; leaves numbered as its `TSG_LEAF_*`).
#[no_mangle]
extern "C" fn tsg_kvm_tdh_returned(leaf: u32, raw: u64) {
    let leaf = match leaf {
        3 => Leaf::MemRangeBlock,
        4 => Leaf::MemTrack,
        5 => Leaf::MemPageRemove,
        _ => return,
    };
    let status = Status::from_raw(raw);
    let state = ACTIVE.load(Acquire) as *const KvmState;
    if state.is_null() || !status.is_busy_for(leaf) {
        return;
    }
    // SAFETY: `ACTIVE` holds a live state while the probes are placed: the
    // probes are removed (waiting for handlers) before `ACTIVE` is cleared.
    unsafe { &*state }.counters.count_busy(leaf, status);
}

/// A private EPT violation of a TD vCPU (`kvm_page_fault` tracepoint).
#[no_mangle]
extern "C" fn tsg_kvm_zero_step_fault(vcpu: *mut kvm_vcpu, gpa: u64) {
    let state = ACTIVE.load(Acquire) as *const KvmState;
    if !state.is_null() {
        // SAFETY: As in `tsg_kvm_tdh_returned`: the tracepoint probes are
        // removed before `ACTIVE` is cleared.
        unsafe { &*state }.zero_step(vcpu, true, |det, c| det.on_ept_violation(gpa, c));
    }
}

/// A TD vCPU's TDH.VP.ENTER came back busy (`kvm_exit` tracepoint).
#[no_mangle]
extern "C" fn tsg_kvm_zero_step_enter_busy(vcpu: *mut kvm_vcpu, raw: u64) {
    let state = ACTIVE.load(Acquire) as *const KvmState;
    if !state.is_null() {
        // SAFETY: As above.
        unsafe { &*state }.zero_step(vcpu, false, |det, c| {
            det.on_enter_status(Status::from_raw(raw), c)
        });
    }
}

/// KVM destroyed a VM (`helpers.c`'s kretprobe on `kvm_arch_destroy_vm()`).
#[no_mangle]
extern "C" fn tsg_kvm_vm_destroyed(kvm: *mut kvm) {
    let state = ACTIVE.load(Acquire) as *const KvmState;
    if !state.is_null() {
        // SAFETY: As in `tsg_kvm_tdh_returned`: the probe is removed before
        // `ACTIVE` is cleared.
        unsafe { &*state }.vms.destroyed(kvm as usize);
    }
}

impl Drop for KvmBackend {
    fn drop(&mut self) {
        self.redirect.disable();
        // Every call into the replacement runs under `mmu_lock`, a spinning
        // lock, so with preemption off: after a grace period none is left.
        // The count double-checks it.
        hooks::synchronize_rcu();
        while IN_FLIGHT.load(Acquire) != 0 {
            hooks::synchronize_rcu();
        }
        ACTIVE.store(0, Release);
        pr_info!("kvm: detached: no call is redirected or in progress\n");
    }
}

impl Backend for KvmBackend {
    fn mode(&self) -> &'static str {
        "kvm"
    }

    /// The totals: every VM's counters (gone ones included) and the unmap
    /// leaves', then the attach layer's.
    fn render_stats(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let totals = self.state.vms.totals(&self.state.counters);
        for (desc, value) in Counters::<KCounter>::COUNTERS.iter().zip(totals) {
            writeln!(f, "{} {}", desc.name, value)?;
        }
        self.state.attach.render(f)?;
        writeln!(f, "kvm_vms_tracked {}", self.state.vms.len())
    }

    fn reset_stats(&self) -> Result {
        self.state.counters.reset();
        self.state.vms.reset();
        self.state.attach.reset();
        Ok(())
    }

    fn debugfs(&self, root: &Arc<crate::platform::debugfs::Dir>) {
        self.state.vms.set_root(root);
    }
}
