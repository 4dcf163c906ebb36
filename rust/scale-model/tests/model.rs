// SPDX-License-Identifier: GPL-2.0

//! The scale model's own checks: it grows as the anchors say, it keeps the
//! gate's invariant with the real policy core at 256 vCPUs, the policy's
//! counters agree with it, and a seed fixes the result.

use tdx_sept_guard_scale_model::{
    run, vcpu_counts, write_header, Anchors, Config, KickMask, Row, Table, MAX_VCPUS,
};

fn cfg(kicks: u32, seed: u64) -> Config {
    Config {
        kicks,
        seed,
        ..Config::default()
    }
}

/// The mean kick cost and the gated time per kick grow strictly with the
/// vCPU count, from 1 to 64, for a few seeds; and so does the p99 cost.
#[test]
fn kick_cost_and_gated_time_grow_with_vcpus() {
    for seed in [1, 2, 3] {
        let c = cfg(200, seed);
        let mut table = Table::default();
        for n in vcpu_counts(64) {
            table.push(Row::new(&run(n, &c).expect("model run"), &c));
        }
        for w in table.rows.windows(2) {
            let (a, b) = (&w[0], &w[1]);
            assert!(
                b.cost_mean_us > a.cost_mean_us,
                "seed {seed}: mean kick cost N={} {:.3} us <= N={} {:.3} us",
                b.n,
                b.cost_mean_us,
                a.n,
                a.cost_mean_us
            );
            assert!(
                b.cost_p99_us >= a.cost_p99_us,
                "seed {seed}: p99 kick cost falls from N={} to N={}",
                a.n,
                b.n
            );
            assert!(
                b.gated_mean_us > a.gated_mean_us,
                "seed {seed}: gated time per kick falls from N={} to N={}",
                a.n,
                b.n
            );
        }
        let last = table.rows.last().expect("rows");
        assert!(last.cost_ratio > 1.0 && last.gated_ratio > 1.0);
    }
}

/// The protocol invariant at the largest size, with the real policy core:
/// when every ack is in and when the retry ends, with the gate up, no vCPU
/// is in guest mode or in its guest section; and the gate did hold vCPUs
/// out (entries refused), so the check was not vacuous.
#[test]
fn no_vcpu_in_guest_mode_under_the_gate_at_256_vcpus() {
    let c = cfg(40, 7);
    let r = run(MAX_VCPUS, &c).expect("model run");
    assert_eq!(
        r.model("model_gate_violations"),
        0,
        "vCPU in guest under the gate"
    );
    assert_eq!(r.model("model_anomalies"), 0);
    assert_eq!(r.policy("kicks"), 40);
    assert!(
        r.policy("vcpus_kicked") > 40 * 100,
        "too few vCPUs in guest mode"
    );
    assert!(
        r.policy("entries_refused") > 0,
        "the gate never refused an entry"
    );
    assert!(r.model("model_entries") > r.policy("entries_refused"));
    assert!(r.held_out.iter().all(|&h| h as usize <= MAX_VCPUS));
}

/// The policy's own counters, kept by the real `Executor` with the model's
/// clock, agree with the model's per-kick records.
#[test]
fn policy_counters_agree_with_the_model() {
    let kicks = 60;
    let r = run(16, &cfg(kicks, 11)).expect("model run");
    let k = u64::from(kicks);
    assert_eq!(r.policy("ops"), k);
    assert_eq!(r.policy("seamcalls"), 2 * k);
    assert_eq!(r.policy("busy_aug"), k);
    assert_eq!(r.policy("busy_operand_rcx"), k);
    assert_eq!(r.policy("kicks"), k);
    assert_eq!(r.policy("retries"), k);
    assert_eq!(r.policy("retry_successes"), k);
    assert_eq!(r.policy("vm_bugs") + r.policy("kick_timeouts"), 0);
    assert_eq!(
        r.policy("gate_wait_ns"),
        r.kick_cost_ns.iter().sum::<u64>(),
        "gate_wait_ns is not the modelled kick cost"
    );
    assert_eq!(
        r.policy("vcpus_kicked"),
        r.kicked.iter().map(|&x| u64::from(x)).sum::<u64>()
    );
    assert_eq!(r.kick_cost_ns.len(), kicks as usize);
    assert_eq!(r.gated_ns.len(), kicks as usize);
    assert_eq!(
        r.model("model_gated_ns"),
        r.gated_ns.iter().sum::<u64>(),
        "per-kick gated time does not add up"
    );
}

/// With every vCPU in the guest and no natural exit (guest sections far
/// longer than a kick), each kick costs what the notes' formula says:
/// `2 µs x (1 + k(n-1))` plus the slowest TD exit, within the exit's range.
#[test]
fn kick_cost_is_the_anchor_formula_when_all_vcpus_are_in_the_guest() {
    let a = Anchors::default();
    let c = Config {
        guest_mean_ns: 1_000_000_000_000,
        ..cfg(20, 5)
    };
    // Written out here rather than taken from `Anchors::formula_kick_ns`,
    // which the model's own costs are built from.
    let formula =
        |n: u64, exit: u64| a.ipi_base_ns * (1000 + a.ipi_k_milli * (n - 1)) / 1000 + exit;
    for n in [1usize, 2, 8, 64, 256] {
        let r = run(n, &c).expect("model run");
        let lo = formula(n as u64, a.exit_min_ns);
        let hi = formula(n as u64, a.exit_max_ns);
        for (i, (&cost, &kicked)) in r.kick_cost_ns.iter().zip(&r.kicked).enumerate() {
            assert_eq!(kicked as usize, n, "N={n} kick {i}: not all kicked");
            assert!(
                (lo..=hi).contains(&cost),
                "N={n} kick {i}: {cost} ns outside [{lo}, {hi}]"
            );
        }
    }
    // The formula with the notes' numbers: 2 µs x (1 + 0.2 x 255) + 3.9 µs.
    assert_eq!(formula(256, 3_900), 2_000 * 52 + 3_900);
    assert_eq!(a.formula_kick_ns(256, 3_900), formula(256, 3_900));
}

/// The same seed gives the same results whatever the host scheduler did;
/// another seed gives others.
#[test]
fn a_seed_fixes_the_results() {
    let a = run(32, &cfg(50, 3)).expect("model run");
    let b = run(32, &cfg(50, 3)).expect("model run");
    let other = run(32, &cfg(50, 4)).expect("model run");
    assert_eq!(a.kick_cost_ns, b.kick_cost_ns);
    assert_eq!(a.gated_ns, b.gated_ns);
    assert_eq!(a.kicked, b.kicked);
    assert_eq!(a.policy_counters, b.policy_counters);
    assert_eq!(a.model_counters, b.model_counters);
    assert_ne!(a.kick_cost_ns, other.kick_cost_ns);
}

/// The kick mask holds all 256 vCPUs (the kernel simulator's holds 64), and
/// the table's vCPU counts are the powers of two up to the maximum.
#[test]
fn kick_mask_holds_256_vcpus_and_counts_are_powers_of_two() {
    let mut m = KickMask::new();
    for i in [0, 63, 64, 127, 200, 255] {
        m.set(i);
    }
    assert_eq!(m.count(), 6);
    assert_eq!(m.iter().collect::<Vec<_>>(), [0, 63, 64, 127, 200, 255]);
    assert!(!m.contains(256));
    assert_eq!(
        vcpu_counts(256),
        [1, 2, 4, 8, 16, 32, 64, 128, 256],
        "the issue's table"
    );
    assert_eq!(vcpu_counts(1), [1]);
    assert_eq!(vcpu_counts(100), [1, 2, 4, 8, 16, 32, 64, 100]);
    assert!(run(MAX_VCPUS + 1, &cfg(1, 1)).is_err());
    assert!(run(0, &cfg(1, 1)).is_err());
}

/// The header says it is a model and names every source it assumes.
#[test]
fn header_says_model_and_names_the_sources() {
    let mut h = String::new();
    write_header(&mut h, &Config::default(), 256).expect("write");
    for s in [
        "MODEL, not a measurement",
        "TUM-DSE CVM_eval data (SIGMETRICS 2025 paper)",
        "KVM \"send IPI\" hypercall commit message",
        "arm64 IPI benchmark, 2017",
        "Assumed relative costs (sweep them)",
        "2.00 us x (1 + k(n-1)), k = 0.20",
        "3.60-3.90 us",
    ] {
        assert!(h.contains(s), "header lacks {s:?}:\n{h}");
    }
}
