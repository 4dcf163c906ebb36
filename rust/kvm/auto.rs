// SPDX-License-Identifier: GPL-2.0

//! `mode=auto` where kvm_intel is a module: the backend follows it. Loaded
//! before kvm_intel, the module stays idle and attaches when kvm_intel comes
//! up; when kvm_intel goes, it detaches and waits for it again. Each step is
//! logged.
//!
//! A module notifier (`redirect.c`) reports kvm_intel's LIVE and GOING
//! states; the attach or detach itself runs in a work item on the module's
//! own queue, since attaching registers a module notifier of its own, which
//! cannot be done from inside the notifier chain. By the time the work
//! detaches, the attached backend's own notifier has already removed the
//! redirections and probes on kvm_intel's GOING (`redirect.c`), before
//! kvm_intel's text went.

use super::attach::{
    AttachOptions,
    KvmBackend,
    Unavailable, //
};
use super::bindings::ffi::{
    tsg_kvm_vendor_is_module,
    tsg_kvm_vendor_unwatch,
    tsg_kvm_vendor_watch, //
};
use super::hooks;
use crate::backend::Backend;
use crate::platform::{
    debugfs::Dir,
    workqueue::OwnedQueue, //
};
use core::fmt;
use kernel::{
    error::to_result,
    impl_has_work, new_mutex, new_work,
    prelude::*,
    sync::{
        atomic::{
            Acquire,
            Atomic,
            Release, //
        },
        Arc,
        Mutex, //
    },
    workqueue::{
        Work,
        WorkItem, //
    },
};

/// What the module says while kvm_intel is not loaded.
const WAITING_FOR_KVM_INTEL: &str =
    "kvm_intel is not loaded: waiting for it (the module attaches when it loads)";

/// The [`AutoKvm`] whose notifier is registered, for the C side's calls:
/// set while the notifier is, cleared (after it is removed) when the
/// `AutoKvm` drops.
static WATCHING: Atomic<usize> = Atomic::new(0);

/// What the backend is while kvm_intel comes and goes.
struct Now {
    attached: Option<KvmBackend>,
    /// Why it is not attached.
    why: &'static str,
}

/// The backend of `mode=auto` where kvm_intel is a module.
#[pin_data(PinnedDrop)]
pub(crate) struct AutoKvm {
    opts: AttachOptions,
    /// kvm_intel's state as last reported: LIVE (true) or gone.
    live: Atomic<bool>,
    #[pin]
    now: Mutex<Now>,
    /// The module's debugfs root, for the per-VM directories of a backend
    /// attached later.
    #[pin]
    root: Mutex<Option<Arc<Dir>>>,
    /// Attaches or detaches to match `live`.
    follow: Arc<Follow>,
    /// This one is [`WATCHING`]'s (and its notifier is registered).
    registered: Atomic<bool>,
    queue: OwnedQueue,
}

/// The work that makes the backend follow kvm_intel.
#[pin_data]
struct Follow {
    #[pin]
    work: Work<Follow>,
}

impl_has_work! {
    impl HasWork<Self> for Follow { self.work }
}

impl WorkItem for Follow {
    type Pointer = Arc<Follow>;

    fn run(_this: Arc<Follow>) {
        if let Some(auto) = watching() {
            auto.follow();
        }
    }
}

/// The registered [`AutoKvm`], if any.
fn watching<'a>() -> Option<&'a AutoKvm> {
    let ptr = WATCHING.load(Acquire) as *const AutoKvm;
    // SAFETY: `WATCHING` is NULL or the `AutoKvm` whose drop clears it after
    // removing the notifier and flushing the work, the only callers.
    unsafe { ptr.as_ref() }
}

/// kvm_intel reached LIVE (`live`) or GOING (`redirect.c`'s notifier).
#[no_mangle]
extern "C" fn tsg_kvm_vendor_event(live: bool) {
    if let Some(auto) = watching() {
        auto.live.store(live, Release);
        let _ = auto.queue.queue().enqueue(auto.follow.clone());
    }
}

impl AutoKvm {
    /// Starts following kvm_intel, attached at once if it is loaded.
    pub(crate) fn start(opts: AttachOptions) -> Result<Arc<Self>> {
        let loaded = hooks::lookup(opts.target).is_some();
        Self::start_with(opts, loaded)
    }

    /// As [`Self::start`], with kvm_intel taken as loaded or not.
    pub(crate) fn start_with(opts: AttachOptions, loaded: bool) -> Result<Arc<Self>> {
        let this = Arc::pin_init(
            try_pin_init!(Self {
                opts,
                live: Atomic::new(loaded),
                now <- new_mutex!(
                    Now {
                        attached: None,
                        why: WAITING_FOR_KVM_INTEL,
                    },
                    "AutoKvm::now"
                ),
                root <- new_mutex!(None, "AutoKvm::root"),
                follow: Arc::pin_init(pin_init!(Follow { work <- new_work!("Follow::work") }), GFP_KERNEL)?,
                registered: Atomic::new(false),
                queue: OwnedQueue::new(c"tsg_auto")?,
            }? Error),
            GFP_KERNEL,
        )?;
        if WATCHING
            .cmpxchg(0, core::ptr::from_ref::<Self>(&this) as usize, Release)
            .is_err()
        {
            return Err(EBUSY);
        }
        // The notifier first, so that no change of kvm_intel's is missed;
        // then the state it is in now (following twice changes nothing).
        // Not from a KUnit suite (`watch_owner` off): suites run inside the
        // module notifier chain, whose lock registering would wait for; the
        // suite calls the notifier's function itself.
        if opts.watch_owner {
            // SAFETY: Process context; removed in drop.
            let watched = unsafe { tsg_kvm_vendor_watch() };
            if let Err(e) = to_result(watched) {
                WATCHING.store(0, Release);
                return Err(e);
            }
        }
        this.registered.store(true, Release);
        this.follow();
        Ok(this)
    }

    /// Attaches or detaches to match kvm_intel's last reported state.
    fn follow(&self) {
        let mut now = self.now.lock();
        let live = self.live.load(Acquire);
        if live && now.attached.is_none() {
            match KvmBackend::attach(self.opts) {
                Ok(backend) => {
                    if let Some(root) = &*self.root.lock() {
                        backend.debugfs(root);
                    }
                    now.attached = Some(backend);
                }
                Err(why) => {
                    pr_info!(
                        "mode=auto: kvm_intel is loaded; staying idle: {}\n",
                        why.reason()
                    );
                    now.why = why.reason();
                }
            }
        } else if !live && now.attached.is_some() {
            pr_info!("mode=auto: kvm_intel is going away: detaching; the module attaches again when it loads\n");
            now.attached = None;
            now.why = WAITING_FOR_KVM_INTEL;
        } else if !live {
            now.why = WAITING_FOR_KVM_INTEL;
        }
    }

    /// Waits for the work queued so far.
    #[cfg(tsg_tests)]
    pub(crate) fn flush(&self) {
        self.queue.flush();
    }

    /// The attached backend's `kvm_map_calls`, if attached.
    #[cfg(tsg_tests)]
    pub(crate) fn map_calls(&self) -> Option<u64> {
        use crate::policy::CounterCell;
        let now = self.now.lock();
        now.attached
            .as_ref()
            .map(|b| b.state.attach_totals().kvm_map_calls.get())
    }
}

#[pinned_drop]
impl PinnedDrop for AutoKvm {
    fn drop(self: Pin<&mut Self>) {
        // Another instance's, or none: nothing of this one is registered.
        if !self.registered.load(Acquire) {
            return;
        }
        if self.opts.watch_owner {
            // SAFETY: Process context; the notifier was registered in
            // `start_with`. Returns once no call of it is in progress.
            unsafe { tsg_kvm_vendor_unwatch() };
        }
        self.queue.flush();
        WATCHING.store(0, Release);
        // `now`, and with it an attached backend, drops after this.
    }
}

impl Backend for AutoKvm {
    fn mode(&self) -> &'static str {
        if self.now.lock().attached.is_some() {
            "kvm"
        } else {
            "idle"
        }
    }

    fn render_stats(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let now = self.now.lock();
        match &now.attached {
            Some(backend) => backend.render_stats(f),
            None => writeln!(f, "# idle: {}", now.why),
        }
    }

    fn reset_stats(&self) -> Result {
        match &self.now.lock().attached {
            Some(backend) => backend.reset_stats(),
            None => Err(ENODEV),
        }
    }

    fn debugfs(&self, root: &Arc<Dir>) {
        *self.root.lock() = Some(root.clone());
        if let Some(backend) = &self.now.lock().attached {
            backend.debugfs(root);
        }
    }

    fn idle_reason(&self) -> Option<&'static str> {
        let now = self.now.lock();
        now.attached.is_none().then_some(now.why)
    }
}

/// Attaches for `mode=auto`: where kvm_intel (with its TDX code) is a
/// module, a backend that follows it ([`AutoKvm`]); otherwise attached now
/// or not at all.
pub(crate) fn attach_auto(opts: AttachOptions) -> Result<Arc<dyn Backend>, Unavailable> {
    // SAFETY: No preconditions.
    if unsafe { tsg_kvm_vendor_is_module() } {
        let auto: Arc<dyn Backend> = AutoKvm::start(opts).map_err(Unavailable::HookFailed)?;
        return Ok(auto);
    }
    super::attach::attach(opts)
}
