// SPDX-License-Identifier: GPL-2.0

//! The cost anchors the model assumes, with their sources as the project's
//! reference notes (`cost-anchors.md`) give them.
//!
//! No per-leaf SEAMCALL latency and no TDX exit latency has been published,
//! so every number here is either measured on another platform (a proxy) or
//! an assumed relative cost; the model prints which, and
//! [`Anchors::scaled`] sweeps them (the notes ask for x0.5 to x2).

use core::fmt::{self, Write};

/// The source of the confidential-VM exit round trip.
pub const SRC_CVM_EVAL: &str = "TUM-DSE CVM_eval data (SIGMETRICS 2025 paper)";
/// The source of the single-IPI and `smp_call_function_many` figures.
pub const SRC_KVM_SEND_IPI: &str = "KVM \"send IPI\" hypercall commit message";
/// The source of the broadcast-vs-one-target ratio.
pub const SRC_ARM64_IPI: &str = "arm64 IPI benchmark, 2017";
/// Where the assumed relative costs come from: the notes' own list.
pub const SRC_ASSUMED: &str = "cost-anchors.md, \"Assumed relative costs (sweep them)\"";

/// The modelled costs, in nanoseconds. [`Anchors::DEFAULT`] holds the
/// values of `cost-anchors.md`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Anchors {
    /// One S-EPT SEAMCALL (TDH.MEM.PAGE.AUG 4K): the busy first try and the
    /// retry under the gate. Assumed: "S-EPT leaves (SEPT.ADD, AUG 4K,
    /// RANGE.BLOCK, PAGE.REMOVE) ≈ 2 µs".
    pub seamcall_ns: u64,
    /// Shortest TD exit round trip. Measured on SEV-SNP as a proxy:
    /// "confidential-VM exit round trip 3.6–3.9 µs".
    pub exit_min_ns: u64,
    /// Longest TD exit round trip (see [`Self::exit_min_ns`]).
    pub exit_max_ns: u64,
    /// The base of the assumed kick cost "2 µs x (1 + k(N-1))": the cost of
    /// kicking one vCPU (send and delivery, without the TD exit).
    pub ipi_base_ns: u64,
    /// The `k` of that formula, in thousandths: 200 (0.2, host) to 450
    /// (0.45, guest).
    pub ipi_k_milli: u64,
}

impl Anchors {
    /// The values of `cost-anchors.md`, with `k` = 0.2 (a host kicking).
    pub const DEFAULT: Self = Self {
        seamcall_ns: 2_000,
        exit_min_ns: 3_600,
        exit_max_ns: 3_900,
        ipi_base_ns: 2_000,
        ipi_k_milli: 200,
    };

    /// Every time multiplied by `factor` (`k` stays: it is a ratio).
    pub fn scaled(self, factor: f64) -> Self {
        let s = |ns: u64| (ns as f64 * factor).round() as u64;
        Self {
            seamcall_ns: s(self.seamcall_ns),
            exit_min_ns: s(self.exit_min_ns),
            exit_max_ns: s(self.exit_max_ns),
            ipi_base_ns: s(self.ipi_base_ns),
            ipi_k_milli: self.ipi_k_milli,
        }
    }

    /// The kicker's cost of sending one more IPI: `2 µs x k`, the per-target
    /// slope of "2 µs x (1 + k(N-1))".
    pub fn ipi_send_ns(&self) -> u64 {
        self.ipi_base_ns * self.ipi_k_milli / 1000
    }

    /// From the send to the vCPU's CPU taking the interrupt: the rest of the
    /// base, `2 µs x (1 - k)`, so that kicking `n` vCPUs costs exactly
    /// `2 µs x (1 + k(n-1))` plus the slowest TD exit.
    pub fn ipi_delivery_ns(&self) -> u64 {
        self.ipi_base_ns - self.ipi_send_ns()
    }

    /// The mean TD exit round trip.
    pub fn exit_mean_ns(&self) -> u64 {
        (self.exit_min_ns + self.exit_max_ns) / 2
    }

    /// The analytic kick cost of the notes' formula for `n` vCPUs in guest
    /// mode, all kicked, with the slowest exit at `exit_ns`: `2 µs x (1 +
    /// k(n-1)) + exit`; 0 for `n == 0`.
    pub fn formula_kick_ns(&self, n: u64, exit_ns: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        n * self.ipi_send_ns() + self.ipi_delivery_ns() + exit_ns
    }

    /// Writes the anchors this model assumes, one per line, each with its
    /// kind and source, prefixed by `prefix`.
    pub fn describe<W: Write>(&self, out: &mut W, prefix: &str) -> fmt::Result {
        let us = |ns: u64| ns as f64 / 1000.0;
        let k = self.ipi_k_milli as f64 / 1000.0;
        writeln!(
            out,
            "{prefix}SEAMCALL, S-EPT leaf (TDH.MEM.PAGE.AUG 4K; busy try and retry): {:.2} us\n\
             {prefix}    assumed; source: {SRC_ASSUMED}",
            us(self.seamcall_ns)
        )?;
        writeln!(
            out,
            "{prefix}TD exit (VM exit + re-entry round trip), uniform {:.2}-{:.2} us: the exit a kick forces,\n\
             {prefix}  and a vCPU's host section after a natural exit (the whole round trip is charged\n\
             {prefix}  to the exit: no exit-only figure is published)\n\
             {prefix}    measured on SEV-SNP, used as a proxy (no TDX figure published); source: {SRC_CVM_EVAL}",
            us(self.exit_min_ns),
            us(self.exit_max_ns)
        )?;
        writeln!(
            out,
            "{prefix}IPI kick of n vCPUs = {:.2} us x (1 + k(n-1)), k = {k:.2} (host): the kicker sends IPIs one\n\
             {prefix}  after another at {:.2} us each; each is taken {:.2} us after its send\n\
             {prefix}    assumed; source: {SRC_ASSUMED}; its base is the measured\n\
             {prefix}    \"IPI to one CPU, send and wait (80-CPU guest) ~2.5 us\", source: {SRC_KVM_SEND_IPI}",
            us(self.ipi_base_ns),
            us(self.ipi_send_ns()),
            us(self.ipi_delivery_ns())
        )?;
        writeln!(
            out,
            "{prefix}Cross-checks only (not inputs): smp_call_function_many to 79 CPUs ~93 us (x2APIC cluster),\n\
             {prefix}  source: {SRC_KVM_SEND_IPI}; host IPI broadcast vs one target ~19x for 111 targets\n\
             {prefix}  (ThunderX2, not x86), source: {SRC_ARM64_IPI}"
        )
    }
}

impl Default for Anchors {
    fn default() -> Self {
        Self::DEFAULT
    }
}
