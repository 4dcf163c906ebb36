// SPDX-License-Identifier: GPL-2.0

//! Attaching to KVM TDX and detaching: the checks that refuse a host where
//! the hook could not work safely (each with one line saying why), the
//! redirect and the probes, and the [`Backend`] the module's entry sees.

use super::hooks;
use super::shape::SHAPE;
use super::state::KvmState;
use super::vm;
use super::AttachCounters;
use crate::backend::Backend;
use crate::platform::{
    latency::{
        self,
        Latencies, //
    },
    percpu::PerCpu,
    sync::{
        KClock,
        KCounter, //
    },
};
use crate::policy::{
    CounterTable,
    Counters,
    Policy, //
};
use kernel::{
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Full,
            Release, //
        },
        Arc,
    },
};

/// The KVM function the backend redirects: every map of a TD's private
/// SPTE goes through it.
pub(crate) const TARGET: &CStr = SHAPE.set_external_spte;

/// KVM's VM-creation hook for VMX and TD VMs (`kvm_x86_ops.vm_init`),
/// redirected so that a TD's state is made when KVM creates it.
pub(crate) const VM_INIT: &CStr = SHAPE.vm_init;

/// The longest kick deadline, in microseconds. A map call waits for its
/// kick with preemption off, `mmu_lock` read-held and the SPTE frozen, at
/// most once (a timeout stops the VM, and a stopped VM's maps fail at once):
/// one second stays far below the soft-lockup (20 s) and RCU-stall (21 s)
/// thresholds.
pub(crate) const MAX_KICK_TIMEOUT_US: u32 = 1_000_000;

/// Why the module did not attach to KVM TDX.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Unavailable {
    /// The kernel has no KVM TDX code (`CONFIG_KVM_INTEL_TDX`), or
    /// `kvm_intel` is a module that is not loaded.
    NoKvmTdx,
    /// kvm_intel's `tdx` parameter is off.
    TdxDisabled,
    /// KVM's `kvm_x86_ops.set_external_spte` points somewhere else than the
    /// function this build redirects: a hook shape it does not know.
    OtherShape,
    /// The CPU is not a TDX host platform.
    NoTdxPlatform,
    /// IBT is on and the function to call back has no ENDBR: the kernel
    /// sealed it (never called through a pointer).
    NoEndbr,
    /// FineIBT guards indirect calls to the function (CFI preamble, poisoned
    /// entry ENDBR).
    FineIbt,
    /// This kernel's ftrace would jump into its list function: two ftrace
    /// users on one function crash it (`helpers.c`).
    FtraceJumpsToListFunc,
    /// The kernel is PREEMPT_RT.
    PreemptRt,
    /// The probe on `kvm_arch_destroy_vm()` could not be placed: without it
    /// a VM's state would outlive the VM.
    NoDestroyProbe,
    /// `vt_vm_init()` could not be redirected: a new TD's state could not
    /// be made in process context when KVM creates it.
    NoCreateHook,
    /// Another IPMODIFY user (a livepatch, a BPF trampoline) owns the target.
    AlreadyHooked,
    /// Another instance attached already (the test module's suites, say).
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
            Self::OtherShape => "KVM's kvm_x86_ops.set_external_spte does not point to tdx_sept_set_private_spte: this kernel's KVM has a hook shape this build does not know (Documentation/usage.rst)",
            Self::NoTdxPlatform => "this CPU is not a TDX host platform (no X86_FEATURE_TDX_HOST_PLATFORM), so KVM runs no TD",
            Self::NoEndbr => "IBT is on and tdx_sept_set_private_spte's ENDBR is sealed: calling it through a pointer would fault",
            Self::FineIbt => "FineIBT is on (Clang CFI with IBT): tdx_sept_set_private_spte's entry ENDBR is poisoned and indirect calls go through its CFI preamble, which this module's call has not been verified against",
            Self::FtraceJumpsToListFunc => "this kernel's ftrace would jump into arch_ftrace_ops_list_func at an odd address (functions not aligned: -Os with GCC < 14): a second ftrace user on the redirected function would crash the kernel",
            Self::PreemptRt => "PREEMPT_RT kernels are not supported (the kvm_exit probe runs with interrupts off and takes locks that sleep there)",
            Self::NoDestroyProbe => "no kprobe could be placed on kvm_arch_destroy_vm: a destroyed VM's state would pass to the next VM at its address",
            Self::NoCreateHook => "vt_vm_init (KVM's VM creation) is missing, has no ENDBR under IBT, or is owned by another IPMODIFY user: a new TD's state could not be made when KVM creates it",
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

/// How the backend is attached: what main hands it from the module
/// parameters, and what the suites change.
#[derive(Clone, Copy)]
pub(crate) struct AttachOptions {
    /// The function to redirect: [`TARGET`], or another name in the tests.
    pub(crate) target: &'static CStr,
    pub(crate) policy: Policy,
    /// The kick deadline, at most [`MAX_KICK_TIMEOUT_US`].
    pub(crate) kick_timeout_us: u32,
    /// Attach even when the CPU is no TDX host platform: the suites drive
    /// KVM's code with a fake TD and a simulated TDX module.
    pub(crate) without_tdx_platform: bool,
    /// Place the per-leaf kretprobes. The suites redirect the SEAMCALL
    /// wrappers instead, which a kretprobe cannot share.
    pub(crate) leaf_probes: bool,
    /// Watch kvm_intel's loading and unloading with module notifiers (the
    /// attached backend's, and `mode=auto`'s in `auto.rs`). Not from a
    /// KUnit suite: those run inside the module notifier chain, whose lock
    /// registering a notifier would wait for.
    pub(crate) watch_owner: bool,
    /// Keep latency histograms (`latency=1`): per VM, of unattributed
    /// calls, and of VMs gone.
    pub(crate) histograms: bool,
    /// The test module only: answer an engaged zero-step detector at
    /// `kvm_page_fault` by raising the gate and kicking, and hold the gate
    /// until that vCPU's fault is mapped ("option A", measured against the
    /// shipped response by the KVM benchmark suite; see `KvmState::zero_step`).
    #[cfg(tsg_tests)]
    pub(crate) zero_step_hold: bool,
}

impl AttachOptions {
    /// What `insmod` asks for (`mode=auto`, `mode=kvm`).
    pub(crate) fn host(policy: Policy, kick_timeout_us: u32, histograms: bool) -> Self {
        Self {
            target: TARGET,
            policy,
            kick_timeout_us,
            without_tdx_platform: false,
            leaf_probes: true,
            watch_owner: true,
            histograms,
            #[cfg(tsg_tests)]
            zero_step_hold: false,
        }
    }
}

/// The attached backend's state, for the C entry points (`entry.rs`): set
/// while the redirection or a probe may call into it; [`CLAIMED`] while an
/// attach is in progress.
pub(super) static ACTIVE: Atomic<usize> = Atomic::new(0);
/// The value of [`ACTIVE`] while one attach makes its state: there is one
/// set of probes and one per-VM table, so a second attach must fail before
/// it makes (and, failing, drops) a state of its own.
pub(super) const CLAIMED: usize = 1;

/// The probes, removed in [`KvmBackend::drop`] before [`ACTIVE`] is
/// cleared.
struct Probes {
    _zero_step: hooks::ZeroStepProbes,
    _leaves: hooks::LeafProbes,
    _destroy: hooks::DestroyProbe,
}

/// The attached backend: the redirection, the probes and the state they
/// call into. Dropping it detaches.
pub(crate) struct KvmBackend {
    // Dropped before `redirect` and `create`, as `watch_owner` requires.
    owner_watch: Option<hooks::OwnerWatch>,
    redirect: hooks::Redirect,
    /// `vt_vm_init()`'s redirection: new TDs get their state there.
    create: hooks::Redirect,
    probes: Option<Probes>,
    pub(crate) state: Arc<KvmState>,
}

/// Attaches to KVM TDX if it is usable (`mode=auto`, `mode=kvm`).
pub(crate) fn attach(opts: AttachOptions) -> Result<Arc<dyn Backend>, Unavailable> {
    let backend: Arc<dyn Backend> = Arc::new(KvmBackend::attach(opts)?, GFP_KERNEL)
        .map_err(|_| Unavailable::HookFailed(ENOMEM))?;
    Ok(backend)
}

impl KvmBackend {
    /// Finds and checks the target, then redirects it. Prints nothing; the
    /// caller says what happened.
    pub(crate) fn attach(opts: AttachOptions) -> Result<Self, Unavailable> {
        let orig = hooks::lookup(opts.target).ok_or(Unavailable::NoKvmTdx)?;
        // Unset where KVM's TDX is not set up (and so on every machine
        // without TDX, QEMU included); checked wherever it is set.
        if hooks::external_spte_op().is_some_and(|op| op != orig) {
            return Err(Unavailable::OtherShape);
        }
        if !opts.without_tdx_platform {
            if hooks::tdx_enabled_in_kvm() == Some(false) {
                return Err(Unavailable::TdxDisabled);
            }
            if !hooks::tdx_host_platform() {
                return Err(Unavailable::NoTdxPlatform);
            }
        }
        if hooks::ibt_enabled() && !hooks::has_endbr(orig) {
            return Err(if hooks::fineibt_guarded(orig) {
                Unavailable::FineIbt
            } else {
                Unavailable::NoEndbr
            });
        }
        if hooks::ftrace_jumps_to_list_func() {
            return Err(Unavailable::FtraceJumpsToListFunc);
        }
        if cfg!(CONFIG_PREEMPT_RT) {
            return Err(Unavailable::PreemptRt);
        }
        if ACTIVE.cmpxchg(0, CLAIMED, Full).is_err() {
            return Err(Unavailable::Busy);
        }
        let state = match Arc::pin_init(
            try_pin_init!(KvmState {
                orig,
                policy: opts.policy,
                kick_timeout_ns: u64::from(opts.kick_timeout_us.min(MAX_KICK_TIMEOUT_US)) * 1000,
                clock: KClock::new(),
                counters: Counters::new(),
                attach: PerCpu::new(AttachCounters::new)?,
                latency: Latencies::new(opts.histograms)?,
                #[cfg(tsg_tests)]
                zero_step_hold: opts.zero_step_hold,
                vms <- vm::Vms::new(opts.histograms),
            }? Error),
            GFP_KERNEL,
        ) {
            Ok(state) => state,
            Err(e) => {
                ACTIVE.store(0, Release);
                return Err(Unavailable::HookFailed(e));
            }
        };
        ACTIVE.store(core::ptr::from_ref::<KvmState>(&state) as usize, Release);
        // The destroy probe first: no VM may get state that nothing would
        // free.
        let destroy = hooks::DestroyProbe::register();
        if !destroy.placed {
            drop(destroy);
            ACTIVE.store(0, Release);
            return Err(Unavailable::NoDestroyProbe);
        }
        // Then VM creation, so that every TD KVM creates from now on gets its
        // state in process context, and the TDs that exist already.
        let Some(create) = hooks::lookup(VM_INIT)
            .filter(|&f| !hooks::ibt_enabled() || hooks::has_endbr(f))
            // SAFETY: `f` is the start of `vt_vm_init()` and the replacement
            // has its prototype; the redirection is dropped (in
            // `KvmBackend::drop`, after `quiesce_vm_init`) before this
            // module's text goes.
            .and_then(|f| unsafe {
                hooks::Redirect::new(VM_INIT, f, hooks::vm_init_replacement(f)).ok()
            })
        else {
            drop(destroy);
            ACTIVE.store(0, Release);
            return Err(Unavailable::NoCreateHook);
        };
        let adopted = state.vms.adopt();
        // SAFETY: `orig` is the start of `tdx_sept_set_private_spte()` and the
        // replacement has its prototype; the redirection is dropped (in
        // `KvmBackend::drop`) before this module's text goes.
        let redirect = match unsafe {
            hooks::Redirect::new(opts.target, orig, hooks::set_private_spte_replacement())
        } {
            Ok(redirect) => redirect,
            Err(e) => {
                detach_creation(&create, &state);
                drop(create);
                drop(destroy);
                ACTIVE.store(0, Release);
                return Err(if e == EBUSY {
                    Unavailable::AlreadyHooked
                } else {
                    Unavailable::HookFailed(e)
                });
            }
        };
        let owner_watch = if opts.watch_owner {
            // SAFETY: `KvmBackend` drops the watch before the redirects.
            unsafe { redirect.watch_owner(&create) }.ok()
        } else {
            None
        };
        let leaves = hooks::LeafProbes::register(opts.leaf_probes, opts.histograms);
        let zero_step = hooks::ZeroStepProbes::register();
        pr_info!(
            "kvm: attached ({} hook shape): {} redirected (policy {}); per-leaf outcomes{} from {} of 6 SEAMCALL wrappers; zero-step from KVM's tracepoints: {}; per-VM state made when KVM creates a TD (vt_vm_init), freed when it destroys it\n",
            SHAPE.name,
            opts.target.to_str().unwrap_or("?"),
            opts.policy.name(),
            if opts.histograms { " and durations" } else { "" },
            leaves.placed,
            if zero_step.placed { "yes" } else { "no" },
        );
        match adopted {
            Some(0) => {}
            Some(n) => pr_info!("kvm: {} TD(s) that existed already were found in KVM's VM list\n", n),
            None => pr_warn!("kvm: KVM's VM list was not found (is CONFIG_KALLSYMS_ALL off?): TDs that existed before this attach run without the policy (kvm_untracked_calls counts their maps)\n"),
        }
        Ok(Self {
            owner_watch,
            redirect,
            create,
            probes: Some(Probes {
                _zero_step: zero_step,
                _leaves: leaves,
                _destroy: destroy,
            }),
            state,
        })
    }
}

impl Drop for KvmBackend {
    fn drop(&mut self) {
        self.owner_watch.take();
        self.redirect.disable();
        // Every call into the replacement runs under `mmu_lock`, a spinning
        // lock (PREEMPT_RT is refused), so with preemption off, which is an
        // RCU read-side section: after a grace period none is left. (No
        // counter of calls in flight: it would be a write to one shared
        // cache line on every map of every TD.) That also ends the map
        // path's requests for the adopting walk.
        hooks::synchronize_rcu();
        detach_creation(&self.create, &self.state);
        // Removing a probe waits for its handlers in progress; only then may
        // `ACTIVE` go, and the state with it.
        self.probes.take();
        ACTIVE.store(0, Release);
        pr_info!("kvm: detached: no call is redirected or in progress, no probe is placed\n");
    }
}

/// Stops making state for new TDs: removes `vt_vm_init()`'s redirection,
/// waits for the tasks inside its replacement (which may sleep: no grace
/// period covers them) and for the work queued so far (the adopting walk).
fn detach_creation(create: &hooks::Redirect, state: &KvmState) {
    create.disable();
    hooks::quiesce_vm_init();
    state.vms.flush();
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
        self.state.attach_totals().render(f)?;
        writeln!(f, "kvm_vms_tracked {}", self.state.vms.len())?;
        writeln!(f, "kvm_vm_state_failures {}", self.state.vms.failures())?;
        writeln!(
            f,
            "kvm_destroy_probe_missed {}",
            hooks::DestroyProbe::missed()
        )
    }

    fn reset_stats(&self) -> Result {
        self.state.counters.reset();
        self.state.vms.reset();
        self.state.attach.reset();
        if let Some(l) = &self.state.latency {
            l.reset();
        }
        Ok(())
    }

    /// The totals: every VM's histograms (gone ones included) and those of
    /// calls no VM state was found for.
    fn render_latency(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let Some(other) = &self.state.latency else {
            return latency::render_off(f);
        };
        match self.state.vms.latency_totals(other) {
            Ok(sum) => sum.render(f),
            Err(_) => writeln!(f, "# no memory to sum the histograms"),
        }
    }

    fn debugfs(&self, root: &Arc<crate::platform::debugfs::Dir>) {
        self.state.vms.set_root(root);
    }
}
