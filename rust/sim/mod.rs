// SPDX-License-Identifier: GPL-2.0

//! The simulated TDX module and vCPUs: the policy under real kernel
//! concurrency without TDX hardware. See `Documentation/simulator.rst`.

pub(crate) mod host;
pub(crate) mod locks;
pub(crate) mod spin;
pub(crate) mod tdx_module;
pub(crate) mod vcpu;
pub(crate) mod vm;
pub(crate) mod workload;
