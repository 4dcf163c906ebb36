// SPDX-License-Identifier: GPL-2.0

//! The simulator's KUnit suites: the simulated TDX module rule by rule,
//! fault injection (the simulator's own, and the module's `fail_map_busy`
//! and `fail_retry_busy` points), the policy under real concurrency and the zero-step
//! detector against the simulator. They run at `insmod` on a kernel with
//! `CONFIG_KUNIT=y`; `make check` runs them under lockdep in QEMU. Their
//! sizes and deadlines are their own: no suite reads a module parameter.

mod concurrency;
mod faults;
mod inject;
mod sim_rules;
mod zero_step;

use super::tdx_module::{
    Geometry,
    Latency, //
    DEFAULT_COST_PCT,
};
use super::vm::{
    SimConfig,
    Vm, //
};
use crate::policy::Policy;
use kernel::{
    prelude::*,
    sync::Arc, //
};

/// How long the suites' kicks wait for acknowledgements: the module's
/// default `kick_timeout_ms`.
const TEST_KICK_TIMEOUT_US: u32 = 100_000;

/// A small simulated VM for a test: `nr_vcpus` vCPUs, no threads yet.
pub(crate) fn test_vm(nr_vcpus: u32, policy: Policy) -> Result<Arc<Vm>> {
    Vm::new(SimConfig {
        nr_vcpus,
        geometry: Geometry {
            pages: 256,
            pages_per_table: 16,
        },
        latency: Latency {
            seamcall_us: 1,
            accept_us: 1,
            round_trip_us: 0,
        },
        seamcall_cost_pct: DEFAULT_COST_PCT,
        policy,
        kick_timeout_us: TEST_KICK_TIMEOUT_US,
        contention_pct: 0,
        hot_pages: 8,
        guest_run: 1,
        seed: 0,
        histograms: true,
    })
}
