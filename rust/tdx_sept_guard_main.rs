// SPDX-License-Identifier: GPL-2.0

//! tdx-sept-guard: bounded, lock-respecting S-EPT SEAMCALL policy for KVM TDX hosts.
//!
//! The decisions live in [`policy`], a `no_std` crate shared with the host
//! tests. The module runs them through one [`backend::Backend`], chosen at
//! `insmod` by `mode=`: the simulated TDX module in [`sim`], KVM's TDX code
//! ([`kvm`]), or none. [`platform`] is the kernel glue
//! both backends share.

use kernel::prelude::*;

#[path = "policy/src/lib.rs"]
pub mod policy;

mod backend;
mod debugfs_files;
mod kvm;
mod params;
mod platform;
mod sim;

use backend::{
    Backend,
    Idle, //
};
use kernel::sync::Arc;
use params::Mode;
use platform::compat::param_value;

module! {
    type: TdxSeptGuard,
    name: "tdx_sept_guard",
    authors: ["tdx-sept-guard developers"],
    description: "Bounded kick-and-retry policy for TDX S-EPT SEAMCALLs",
    license: "GPL",
    params: {
        vcpus: u32 {
            default: 4,
            description: "mode=sim: simulated vCPUs, one kthread bound to each CPU from CPU 0 (1 to the online CPUs, at most 64)",
        },
        ops: u64 {
            default: 0,
            description: "mode=sim: guest accesses per simulated vCPU before it stops; 0: run until unloaded",
        },
        contention: u32 {
            default: 20,
            description: "mode=sim: percent of guest accesses to a small shared set of pages (0-100)",
        },
        guest_run: u32 {
            default: 1,
            description: "mode=sim: pages each simulated guest accepts in a loop at one guest RIP (1-512); above 6 such runs engage the TDX module's zero-step mitigation",
        },
        seed: u64 {
            default: 0,
            description: "mode=sim: mixed into the fixed seeds of the simulated guests and zap thread; the same seed repeats the same sequence of pages",
        },
        seamcall_cost_pct: u32 {
            default: 100,
            description: "mode=sim: the simulated TDX module's SEAMCALL cost in percent of the default (1 us round trip, 2 us inside with the locks held), 10-1000: 50 halves it, 200 doubles it",
        },
        latency: u32 {
            default: 1,
            description: "1: keep latency histograms per VM and in total (debugfs latency: SEAMCALL leaves, kicks, gate holds, map calls; a clock read or two and an atomic add per map and SEAMCALL); 0: keep none",
        },
        kick_timeout_ms: u32 {
            default: 100,
            description: "How long a kick waits for vCPU acknowledgements before the VM is stopped, in ms (1-1000: a map waits at most once, with preemption off)",
        },
    },
}

struct TdxSeptGuard {
    // Declared first, so dropped first: no file callback runs once the
    // backend is being torn down.
    _files: debugfs_files::Files,
    backend: Arc<dyn Backend>,
}

fn idle(reason: &'static str) -> Result<Arc<dyn Backend>> {
    Ok(Arc::new(Idle { reason }, GFP_KERNEL)?)
}

/// Starts the backend `mode` asks for.
fn start_backend(mode: Mode) -> Result<Arc<dyn Backend>> {
    match mode {
        Mode::Idle => idle("mode=idle"),
        Mode::Sim => {
            let cfg = params::sim_config()?;
            pr_info!(
                "mode=sim: starting a simulated TD: {} vCPU kthreads bound to CPUs 0-{} (each spins with interrupts off in its guest sections) and one zap kthread, {}\n",
                cfg.nr_vcpus,
                cfg.nr_vcpus - 1,
                match param_value(&module_parameters::ops) {
                    0 => "until the module is unloaded",
                    _ => "until each vCPU has made `ops` guest accesses",
                }
            );
            sim::SimBackend::start(cfg, params::ops_per_vcpu())
        }
        Mode::Kvm => kvm::attach(kvm::AttachOptions::host(
            params::policy()?,
            params::kick_timeout_us()?,
            params::latency()?,
        ))
        .map_err(|why| {
            pr_err!("mode=kvm: cannot attach to KVM TDX: {}\n", why.reason());
            why.errno()
        }),
        // Attached now, or idle; where kvm_intel is a module, it also
        // attaches when kvm_intel loads and detaches when it goes.
        Mode::Auto => kvm::attach_auto(kvm::AttachOptions::host(
            params::policy()?,
            params::kick_timeout_us()?,
            params::latency()?,
        ))
        .or_else(|why| idle(why.reason())),
    }
}

impl kernel::Module for TdxSeptGuard {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let mode = Mode::from_param()?;
        params::check_all()?;
        let backend = start_backend(mode)?;
        let files = debugfs_files::Files::new(&backend)?;
        backend.debugfs(files.root());
        let version = platform::param::version().to_str().unwrap_or("?");
        match backend.idle_reason() {
            Some(reason) if mode == Mode::Auto => {
                pr_info!("version {} loaded: mode=auto, idle: {}\n", version, reason)
            }
            _ => pr_info!("version {} loaded: mode={}\n", version, backend.mode()),
        }
        Ok(Self {
            _files: files,
            backend,
        })
    }
}

impl Drop for TdxSeptGuard {
    fn drop(&mut self) {
        pr_info!("unloading (mode={})\n", self.backend.mode());
    }
}
