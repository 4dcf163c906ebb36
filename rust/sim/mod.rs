// SPDX-License-Identifier: GPL-2.0

//! The simulated TDX module and vCPUs: the policy under real kernel
//! concurrency without TDX hardware. See `Documentation/simulator.rst`.
//!
//! The modules form a chain, each using only those before it:
//! [`tdx_module`] (the TDX module's S-EPT, locks, epochs, zero-step) →
//! [`vm`] (one TD as KVM holds it) → [`tdp_mmu`] (KVM's fault and zap
//! paths) → [`vcpu`] (the vCPU run loop) → [`workload`] (the threads), with
//! [`locks`], [`spin`] and [`rng`] as leaves. Their KUnit suites
//! are in `kunit/`.
//!
//! Outside `sim` the module uses [`SimBackend`] and its configuration
//! ([`vm::SimConfig`]); its KVM suites also drive the simulated TDX module
//! ([`tdx_module::TdxModule`], [`spin::spin_us`]) and the policy's suites
//! a small VM (`test_vm()`). Everything else stays inside `sim`.

#[cfg(tsg_tests)]
mod kunit;
mod locks;
mod rng;
pub(crate) mod spin;
mod tdp_mmu;
pub(crate) mod tdx_module;
mod vcpu;
pub(crate) mod vm;
mod workload;

#[cfg(tsg_tests)]
pub(crate) use kunit::test_vm;

use crate::backend::Backend;
use kernel::{
    prelude::*,
    sync::Arc, //
};
use vm::{
    SimConfig,
    Vm, //
};
use workload::Workload;

/// The simulator as the module's backend (`mode=sim`).
pub(crate) struct SimBackend {
    workload: Workload,
}

impl SimBackend {
    /// Builds a simulated TD and starts its threads.
    pub(crate) fn start(cfg: SimConfig, ops_per_vcpu: u64) -> Result<Arc<dyn Backend>> {
        let workload = Workload::start(Vm::new(cfg)?, ops_per_vcpu)?;
        Ok(Arc::new(Self { workload }, GFP_KERNEL)?)
    }
}

impl Backend for SimBackend {
    fn mode(&self) -> &'static str {
        "sim"
    }

    fn render_stats(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.workload.vm().render_stats(f)
    }

    fn reset_stats(&self) -> Result {
        self.workload.vm().reset_stats();
        Ok(())
    }

    fn render_latency(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.workload.vm().render_latency(f)
    }
}
