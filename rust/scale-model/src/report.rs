// SPDX-License-Identifier: GPL-2.0

//! The table: one row per vCPU count, ratios against one vCPU, as text and
//! as CSV.

use std::fmt::{self, Write};

use crate::model::{Config, RunResult};

/// One row of the table: the model's results for one vCPU count.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// vCPUs.
    pub n: usize,
    /// Kicks made (the policy's `kicks` counter).
    pub kicks: u64,
    /// vCPUs found in guest mode and kicked, per kick (`vcpus_kicked` /
    /// `kicks`).
    pub kicked_per_kick: f64,
    /// vCPUs held out of the guest per kick: kicked, or refused entry.
    pub held_per_kick: f64,
    /// Entries refused by the gate per kick (`entries_refused` / `kicks`).
    pub refused_per_kick: f64,
    /// Mean modelled kick cost, µs (`gate_wait_ns` / `kicks`).
    pub cost_mean_us: f64,
    /// 99th percentile (nearest rank) of the modelled kick cost, µs.
    pub cost_p99_us: f64,
    /// Largest modelled kick cost, µs.
    pub cost_max_us: f64,
    /// The notes' formula `2 µs x (1 + k(n-1)) + exit` at the mean number
    /// kicked and the longest exit, µs: a cross-check of the model.
    pub formula_us: f64,
    /// Mean modelled vCPU time held out per kick, summed over vCPUs, µs.
    pub gated_mean_us: f64,
    /// 99th percentile of the same, µs.
    pub gated_p99_us: f64,
    /// Fraction of all vCPU time held out at [`Config::kick_rate`], percent.
    pub gated_pct: f64,
    /// Mean kick cost over that of one vCPU.
    pub cost_ratio: f64,
    /// Gated time per kick over that of one vCPU.
    pub gated_ratio: f64,
    /// Gated fraction over that of one vCPU.
    pub pct_ratio: f64,
    /// Checks that found a vCPU in the guest with the gate up (must be 0).
    pub violations: u64,
    /// Events the modelled timeline rules out (must be 0).
    pub anomalies: u64,
    /// Host seconds the run took (not part of the model).
    pub host_s: f64,
}

/// Nearest-rank percentile `p` (0-100) of `v`; 0 for an empty `v`.
pub fn percentile(v: &[u64], p: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    let mut s = v.to_vec();
    s.sort_unstable();
    let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
    s[rank.clamp(1, s.len()) - 1]
}

fn mean<T: Copy + Into<f64>>(v: &[T]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.iter().map(|&x| x.into()).sum::<f64>() / v.len() as f64
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        f64::NAN
    }
}

impl Row {
    /// The row of one run; the ratios are filled in by [`Table::push`].
    pub fn new(r: &RunResult, cfg: &Config) -> Self {
        let kicks = r.policy("kicks");
        let per_kick = |x: u64| ratio(x as f64, kicks as f64);
        let us = |ns: f64| ns / 1000.0;
        let gated: Vec<f64> = r.gated_ns.iter().map(|&g| g as f64).collect();
        let gated_mean = mean(&gated);
        let kicked_mean = per_kick(r.policy("vcpus_kicked"));
        let formula = cfg
            .anchors
            .formula_kick_ns(kicked_mean.round() as u64, cfg.anchors.exit_max_ns);
        Self {
            n: r.nr_vcpus,
            kicks,
            kicked_per_kick: kicked_mean,
            held_per_kick: mean(&r.held_out),
            refused_per_kick: per_kick(r.policy("entries_refused")),
            cost_mean_us: us(per_kick(r.policy("gate_wait_ns"))),
            cost_p99_us: us(percentile(&r.kick_cost_ns, 99.0) as f64),
            cost_max_us: us(r.kick_cost_ns.iter().copied().max().unwrap_or(0) as f64),
            formula_us: us(formula as f64),
            gated_mean_us: us(gated_mean),
            gated_p99_us: us(percentile(&r.gated_ns, 99.0) as f64),
            gated_pct: 100.0 * cfg.kick_rate * gated_mean / (r.nr_vcpus as f64 * 1e9),
            cost_ratio: f64::NAN,
            gated_ratio: f64::NAN,
            pct_ratio: f64::NAN,
            violations: r.model("model_gate_violations"),
            anomalies: r.model("model_anomalies"),
            host_s: r.host_ns as f64 / 1e9,
        }
    }
}

/// The rows so far, with their ratios against the first (one vCPU).
#[derive(Clone, Debug, Default)]
pub struct Table {
    /// The rows, in the order run.
    pub rows: Vec<Row>,
}

impl Table {
    /// Adds `row`, with its ratios against the first row.
    pub fn push(&mut self, mut row: Row) -> &Row {
        let base = self.rows.first().unwrap_or(&row).clone();
        row.cost_ratio = ratio(row.cost_mean_us, base.cost_mean_us);
        row.gated_ratio = ratio(row.gated_mean_us, base.gated_mean_us);
        row.pct_ratio = ratio(row.gated_pct, base.gated_pct);
        self.rows.push(row);
        self.rows.last().unwrap_or_else(|| unreachable!())
    }

    /// The text table's two header lines.
    pub fn header<W: Write>(out: &mut W, cfg: &Config) -> fmt::Result {
        writeln!(
            out,
            "{:>4} {:>6} {:>7} {:>7} {:>9} {:>9} {:>10} {:>10} {:>8} {:>7} {:>7} {:>7} {:>6}",
            "N",
            "kicks",
            "kicked",
            "held",
            "cost",
            "cost",
            "gated",
            "gated",
            "gated%",
            "cost",
            "gated",
            "gated%",
            "host"
        )?;
        writeln!(
            out,
            "{:>4} {:>6} {:>7} {:>7} {:>9} {:>9} {:>10} {:>10} {:>8} {:>7} {:>7} {:>7} {:>6}",
            "",
            "",
            "/kick",
            "/kick",
            "mean us",
            "p99 us",
            "vCPU-us",
            "p99",
            format!("@{}/s", cfg.kick_rate),
            "xN=1",
            "xN=1",
            "xN=1",
            "s"
        )
    }

    /// One row as a text line.
    pub fn line<W: Write>(out: &mut W, r: &Row) -> fmt::Result {
        writeln!(
            out,
            "{:>4} {:>6} {:>7.2} {:>7.2} {:>9.2} {:>9.2} {:>10.1} {:>10.1} {:>8.3} {:>7.2} {:>7.2} {:>7.2} {:>6.2}",
            r.n,
            r.kicks,
            r.kicked_per_kick,
            r.held_per_kick,
            r.cost_mean_us,
            r.cost_p99_us,
            r.gated_mean_us,
            r.gated_p99_us,
            r.gated_pct,
            r.cost_ratio,
            r.gated_ratio,
            r.pct_ratio,
            r.host_s
        )
    }

    /// The whole table as CSV, with a header line.
    pub fn csv<W: Write>(&self, out: &mut W, cfg: &Config) -> fmt::Result {
        writeln!(
            out,
            "n,kicks,kicked_per_kick,held_out_per_kick,entries_refused_per_kick,\
             kick_cost_mean_us,kick_cost_p99_us,kick_cost_max_us,formula_kick_cost_us,\
             gated_vcpu_us_per_kick_mean,gated_vcpu_us_per_kick_p99,gated_pct,kick_rate_per_s,\
             cost_ratio_vs_n1,gated_ratio_vs_n1,gated_pct_ratio_vs_n1,gate_violations,seed,host_s"
        )?;
        for r in &self.rows {
            writeln!(
                out,
                "{},{},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.5},{},{:.4},{:.4},{:.4},{},{},{:.3}",
                r.n,
                r.kicks,
                r.kicked_per_kick,
                r.held_per_kick,
                r.refused_per_kick,
                r.cost_mean_us,
                r.cost_p99_us,
                r.cost_max_us,
                r.formula_us,
                r.gated_mean_us,
                r.gated_p99_us,
                r.gated_pct,
                cfg.kick_rate,
                r.cost_ratio,
                r.gated_ratio,
                r.pct_ratio,
                r.violations,
                cfg.seed,
                r.host_s
            )?;
        }
        Ok(())
    }
}
