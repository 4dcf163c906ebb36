// SPDX-License-Identifier: GPL-2.0

//! Module parameters: parsed and checked once, at `insmod`. A bad value
//! fails the load with a message saying what is accepted.

use crate::module_parameters;
use crate::platform::{
    compat::param_value,
    num_online_cpus,
    param, //
};
use crate::policy::Policy;
use crate::sim::tdx_module::{
    Geometry,
    Latency,
    DEFAULT_COST_PCT, //
};
use crate::sim::vm::{
    SimConfig,
    MAX_VCPUS, //
};
use kernel::prelude::*;
use kernel::str::BStr;

/// What the module does once loaded (`mode=`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Attach to KVM TDX if it is usable, else stay idle (the default).
    Auto,
    /// Attach to KVM TDX, or fail the load.
    Kvm,
    /// Run the simulated TDX contention workload.
    Sim,
    /// Counters only (and the KUnit suites, on a kernel with KUnit).
    Idle,
}

impl Mode {
    pub(crate) fn from_param() -> Result<Self> {
        match param::mode().to_bytes() {
            b"auto" => Ok(Self::Auto),
            b"kvm" => Ok(Self::Kvm),
            b"sim" => Ok(Self::Sim),
            b"idle" => Ok(Self::Idle),
            other => {
                pr_err!(
                    "unknown mode={}: expected auto, kvm, sim or idle\n",
                    BStr::from_bytes(other)
                );
                Err(EINVAL)
            }
        }
    }
}

/// Checks `value` is in `lo..=hi`, else says so and fails.
fn in_range<T: PartialOrd + kernel::fmt::Display>(name: &str, value: T, lo: T, hi: T) -> Result<T> {
    if value < lo || value > hi {
        pr_err!("{}={} is out of range {}..={}\n", name, value, lo, hi);
        return Err(EINVAL);
    }
    Ok(value)
}

/// The `policy` parameter.
pub(crate) fn policy() -> Result<Policy> {
    let name = param::policy().to_str().map_err(|_| EINVAL)?;
    Policy::from_name(name).map_err(|_| {
        pr_err!(
            "unknown policy={}: expected kick_and_retry, upstream72 or blind_retry\n",
            name
        );
        EINVAL
    })
}

/// The kick deadline from `kick_timeout_ms`, in microseconds. A map call
/// waits for it with preemption off, at most once: capped well below the
/// soft-lockup threshold ([`crate::kvm::MAX_KICK_TIMEOUT_US`]).
pub(crate) fn kick_timeout_us() -> Result<u32> {
    Ok(in_range(
        "kick_timeout_ms",
        param_value(&module_parameters::kick_timeout_ms),
        1,
        crate::kvm::MAX_KICK_TIMEOUT_US / 1000,
    )? * 1000)
}

/// Whether to keep latency histograms (`latency`: 1 yes, 0 no).
pub(crate) fn latency() -> Result<bool> {
    Ok(in_range("latency", param_value(&module_parameters::latency), 0, 1)? == 1)
}

/// Guest accesses per simulated vCPU: `ops`, where 0 means no limit.
pub(crate) fn ops_per_vcpu() -> u64 {
    match param_value(&module_parameters::ops) {
        0 => u64::MAX,
        n => n,
    }
}

/// Checks every parameter, whichever mode uses it, so that a typo fails the
/// load even where the value would be ignored.
/// (Whether the CPUs exist for `vcpus` is checked only in `mode=sim`.)
pub(crate) fn check_all() -> Result {
    policy()?;
    kick_timeout_us()?;
    contention()?;
    guest_run()?;
    latency()?;
    seamcall_cost_pct()?;
    in_range(
        "vcpus",
        param_value(&module_parameters::vcpus),
        1,
        MAX_VCPUS,
    )
    .map(|_| ())
}

fn contention() -> Result<u32> {
    in_range(
        "contention",
        param_value(&module_parameters::contention),
        0,
        100,
    )
}

/// The simulated TD's private memory, in 4K pages.
const SIM_PAGES: usize = 1024;

fn guest_run() -> Result<u32> {
    in_range(
        "guest_run",
        param_value(&module_parameters::guest_run),
        1,
        SIM_PAGES as u32 / 2,
    )
}

/// The simulated TDX module's assumed latencies at `seamcall_cost_pct=100`
/// (the cost anchors of `Documentation/performance.rst`).
const SIM_LATENCY: Latency = Latency {
    seamcall_us: 2,
    accept_us: 2,
    round_trip_us: 1,
};

/// The bounds of `seamcall_cost_pct`: x0.1 to x10 of the assumed cost.
const SEAMCALL_COST_PCT_MIN: u32 = 10;
const SEAMCALL_COST_PCT_MAX: u32 = 1000;

/// The simulated TDX module's assumed SEAMCALL cost, in percent of the
/// default (`seamcall_cost_pct`; `mode=sim` only, where
/// [`crate::sim::tdx_module::TdxModule::with_cost_pct`] says what it
/// scales).
fn seamcall_cost_pct() -> Result<u32> {
    let pct = param_value(&module_parameters::seamcall_cost_pct);
    if !(SEAMCALL_COST_PCT_MIN..=SEAMCALL_COST_PCT_MAX).contains(&pct) {
        pr_err!(
            "seamcall_cost_pct={} is out of range {}..={}: the simulated SEAMCALL cost in percent of the default ({}: a {} us round trip and {} us inside with the locks held; 50 halves it, 200 doubles it)\n",
            pct,
            SEAMCALL_COST_PCT_MIN,
            SEAMCALL_COST_PCT_MAX,
            DEFAULT_COST_PCT,
            SIM_LATENCY.round_trip_us,
            SIM_LATENCY.seamcall_us,
        );
        return Err(EINVAL);
    }
    Ok(pct)
}

/// The simulated VM's shape when the module runs in `mode=sim`.
pub(crate) fn sim_config() -> Result<SimConfig> {
    let online = num_online_cpus();
    let vcpus = param_value(&module_parameters::vcpus);
    if vcpus == 0 || vcpus > online.min(MAX_VCPUS) {
        pr_err!(
            "vcpus={} but 1..={} are possible ({} CPUs online, at most {})\n",
            vcpus,
            online.min(MAX_VCPUS),
            online,
            MAX_VCPUS
        );
        return Err(EINVAL);
    }
    Ok(SimConfig {
        nr_vcpus: vcpus,
        geometry: Geometry {
            pages: SIM_PAGES,
            pages_per_table: 16,
        },
        latency: SIM_LATENCY,
        seamcall_cost_pct: seamcall_cost_pct()?,
        policy: policy()?,
        kick_timeout_us: kick_timeout_us()?,
        contention_pct: contention()?,
        hot_pages: 8,
        guest_run: guest_run()?,
        seed: param_value(&module_parameters::seed),
        histograms: latency()?,
    })
}
