// SPDX-License-Identifier: GPL-2.0
#![forbid(unsafe_code)]

//! Scale model of the tdx-sept-guard policy core on the host: how the kick's
//! cost and the vCPU time held out by the entry gate grow with the vCPU
//! count, up to 256 vCPUs.
//!
//! It is a **model, not a measurement**. Threads stand in for vCPUs and run
//! the real policy core (entry gate, `vcpu_try_enter`/`vcpu_exit`, the kick
//! through `Executor`, `Counters`); time is modelled from the cost anchors
//! of the project's reference notes ([`anchors`]), not taken from the host.
//! [`model`] explains the method, [`report`] the table.
//!
//! - [`anchors`]: the assumed costs and their sources.
//! - [`host`]: the policy's platform traits over `std`.
//! - [`model`]: the vCPU threads, the kicker, modelled time.
//! - [`report`]: rows, ratios, text and CSV.
//! - [`rng`]: the seeded generator.

pub mod anchors;
pub mod host;
pub mod model;
pub mod report;
pub mod rng;

use std::fmt::{self, Write};

pub use self::anchors::Anchors;
pub use self::model::{run, Config, KickMask, ModelError, RunResult, MAX_VCPUS};
pub use self::report::{Row, Table};

/// The vCPU counts of a table up to `max`: the powers of two below it, and
/// `max` itself.
pub fn vcpu_counts(max: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..)
        .map(|e| 1usize << e)
        .take_while(|&n| n < max)
        .collect();
    v.push(max);
    v
}

/// The variants of the sensitivity sweep, each a change of `cfg`: the
/// assumed anchors at x0.5 and x2 (as the notes ask), the guest-side `k` of
/// the kick formula, and guest sections four times shorter and longer.
pub fn sweep_variants(cfg: &Config) -> Vec<(String, Config)> {
    let with = |f: &dyn Fn(&mut Config)| {
        let mut c = cfg.clone();
        f(&mut c);
        c
    };
    let g = cfg.guest_mean_ns as f64 / 1000.0;
    vec![
        ("as above".to_owned(), cfg.clone()),
        (
            "anchors x0.5".to_owned(),
            with(&|c| c.anchors = c.anchors.scaled(0.5)),
        ),
        (
            "anchors x2".to_owned(),
            with(&|c| c.anchors = c.anchors.scaled(2.0)),
        ),
        (
            "k = 0.45 (guest)".to_owned(),
            with(&|c| c.anchors.ipi_k_milli = 450),
        ),
        (
            format!("guest {:.0} us", g / 4.0),
            with(&|c| c.guest_mean_ns = (c.guest_mean_ns / 4).max(1)),
        ),
        (
            format!("guest {:.0} us", g * 4.0),
            with(&|c| c.guest_mean_ns *= 4),
        ),
    ]
}

/// The header printed before the table: what this is, the method, the
/// anchors assumed and the parameters.
pub fn write_header<W: Write>(out: &mut W, cfg: &Config, max: usize) -> fmt::Result {
    writeln!(
        out,
        "tdx-sept-guard scale model -- MODEL, not a measurement\n\
         \n\
         No TDX host, no IPI, no VM exit is involved. Threads stand in for vCPUs (1 to {max}) and\n\
         run the real policy core: EntryGate, vcpu_try_enter/vcpu_exit on each vCPU's mode,\n\
         Executor::run_on_spte under the default policy (busy once -> gate up, KickGuard kick\n\
         with exiting_guest_mode on every vCPU, retry, gate down), Counters. All times are\n\
         modelled nanoseconds from the anchors below; the host's own timing is not used.\n\
         Each kick: one S-EPT SEAMCALL comes back BUSY; the kicker pays one IPI send per vCPU\n\
         found in guest mode, then waits for the slowest ack (IPI delivery + TD exit). A vCPU\n\
         acks by leaving guest mode; while the gate is up its entries are refused. The threads\n\
         keep modelled time conservatively (the kicker lets each vCPU catch up before touching\n\
         the gate or its mode), so a run is the same for the same seed."
    )?;
    writeln!(out, "\nAssumed anchors (from cost-anchors.md):")?;
    cfg.anchors.describe(out, "  ")?;
    writeln!(
        out,
        "\nModel parameters (not anchors): guest section exponential, mean {:.1} us; {} kicks per N;\n\
         kicks {:.0}/s per VM (gated% is linear in it); seed {}.\n\
         Columns: kicked = vCPUs found in guest mode and IPI'd; held = vCPUs held out (kicked or\n\
         refused entry); cost = kicker's sends + wait for the slowest ack; gated = vCPU time held\n\
         out per kick, summed over vCPUs, from the kick's delivery (or refused entry) to the gate's\n\
         drop after the retried SEAMCALL; gated% = share of all vCPU time at that kick rate;\n\
         xN=1 = ratio to one vCPU; host s = host time to run the row (not part of the model).\n",
        cfg.guest_mean_ns as f64 / 1000.0,
        cfg.kicks,
        cfg.kick_rate,
        cfg.seed
    )
}
