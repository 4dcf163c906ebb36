// SPDX-License-Identifier: GPL-2.0

//! Kernel glue shared by every backend: the policy crate's platform traits
//! over the kernel's atomics and clock ([`sync`]), kthreads ([`thread`]),
//! interrupt-off sections ([`irq`]), cross-CPU calls with deadlines
//! ([`ipi`]), KVM's kind of `mmu_lock` ([`rwlock`]), debugfs files that pin
//! the module while open ([`debugfs`]), per-CPU copies of counters
//! ([`percpu`]), the string module parameters ([`param`]), the trace
//! events ([`trace`]), latency histograms ([`hist`], [`latency`]) and the
//! fault injection points ([`fault`]); where the
//! kernel crate's API differs between the supported kernel series
//! ([`compat`]).
//!
//! Where Rust-for-Linux has no abstraction the work is done by small C
//! functions in `helpers.c` (`events.c` for the trace events, `fault.c`
//! for fault injection), declared in
//! `helpers.h`, from which bindgen generates their Rust declarations
//! ([`ffi`]); the `unsafe` calls into them stay in this directory, behind
//! safe wrappers that are sound whoever calls them.

pub(crate) mod compat;
pub(crate) mod debugfs;
pub(crate) mod fault;
mod ffi;
pub(crate) mod hist;
pub(crate) mod ipi;
pub(crate) mod irq;
#[cfg(tsg_tests)]
mod kunit;
pub(crate) mod latency;
#[cfg(not(tsg_tests))]
pub(crate) mod param;
pub(crate) mod percpu;
pub(crate) mod rwlock;
pub(crate) mod sync;
pub(crate) mod thread;
pub(crate) mod trace;
pub(crate) mod workqueue;

/// Number of online CPUs.
pub(crate) fn num_online_cpus() -> u32 {
    // SAFETY: No preconditions.
    unsafe { ffi::tsg_num_online_cpus() }
}

/// `cpu` if it is a valid, online CPU.
pub(crate) fn online_cpu(cpu: u32) -> Option<kernel::cpu::CpuId> {
    // SAFETY: The C side checks `cpu` against `nr_cpu_ids` first.
    let online = unsafe { ffi::tsg_cpu_online(cpu) };
    online.then(|| kernel::cpu::CpuId::from_u32(cpu)).flatten()
}
