// SPDX-License-Identifier: GPL-2.0

//! tdx-sept-guard: bounded, lock-respecting S-EPT SEAMCALL policy for KVM TDX hosts.
//!
//! The decisions live in [`policy`], a `no_std` crate shared with the host
//! tests. This module runs them in the kernel: against the simulated TDX
//! module in [`sim`] (there is no attach layer for a real KVM TDX host yet),
//! with counters in debugfs and KUnit suites.

use kernel::prelude::*;

#[path = "policy/src/lib.rs"]
pub mod policy;

mod debugfs_files;
mod kshim;
mod ksync;
#[cfg(CONFIG_KUNIT)]
mod kunit;
mod params;
mod sim;

module! {
    type: TdxSeptGuard,
    name: "tdx_sept_guard",
    authors: ["tdx-sept-guard developers"],
    description: "Bounded kick-and-retry policy for TDX S-EPT SEAMCALLs",
    license: "GPL",
    params: {
        vcpus: u32 {
            default: 4,
            description: "mode=sim: simulated vCPUs, one per CPU from CPU 0 (1 to the online CPUs, at most 64)",
        },
        ops: u64 {
            default: 0,
            description: "mode=sim: guest accesses per simulated vCPU before it idles; 0: run until unloaded",
        },
        contention: u32 {
            default: 20,
            description: "mode=sim: percent of guest accesses to a small shared set of pages (0-100)",
        },
        kick_timeout_ms: u32 {
            default: 100,
            description: "How long a kick waits for vCPU acknowledgements before the VM is stopped (1-10000)",
        },
        test_ops: u32 {
            default: 3000,
            description: "KUnit concurrency suite: pages each vCPU accepts (100-1000000)",
        },
    },
}

/// The module's version, shown in debugfs as `version`.
pub(crate) const VERSION: &str = "0.1.0";

#[pin_data(PinnedDrop)]
struct TdxSeptGuard {
    #[pin]
    files: debugfs_files::Files,
    workload: Option<sim::workload::Workload>,
}

impl kernel::InPlaceModule for TdxSeptGuard {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        pin_init::pin_init_scope(|| {
            let workload = match params::Mode::from_param()? {
                params::Mode::Idle => None,
                params::Mode::Sim => {
                    let cfg = params::sim_config()?;
                    let vm = sim::vm::Vm::new(cfg)?;
                    Some(sim::workload::Workload::start(vm, params::ops_per_vcpu())?)
                }
            };
            let vm = workload.as_ref().map(|w| w.vm().clone());
            pr_info!(
                "version {} loaded ({})\n",
                VERSION,
                if vm.is_some() {
                    "mode=sim"
                } else {
                    "mode=idle"
                }
            );
            Ok(try_pin_init!(Self {
                files <- debugfs_files::Files::new(vm),
                workload,
            }? Error))
        })
    }
}

#[pinned_drop]
impl PinnedDrop for TdxSeptGuard {
    fn drop(self: Pin<&mut Self>) {
        pr_info!("unloaded\n");
    }
}
