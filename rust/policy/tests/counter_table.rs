// SPDX-License-Identifier: GPL-2.0

//! `counter_table!` used from outside the crate, as the kernel module's
//! simulator uses it: a table of its own, the one renderer and reset.

mod common;

use common::HostCounter;
use tdx_sept_guard_policy::counters::counter_table;
use tdx_sept_guard_policy::{CounterCell, CounterTable};

counter_table! {
    counters = tdx_sept_guard_policy::counters;
    /// What a simulation saw, next to the policy's counters.
    pub(crate) struct SimCounters<C> {
        /// Pages the guests accepted (their unit of work).
        sim_guest_ops: "work",
        /// Private-to-shared conversions that zapped a mapped page.
        sim_zaps: "work",
        /// Kickers that had all their acks, their gate up, and still found a
        /// vCPU inside its guest section.
        sim_gate_violations: "check",
        /// Times the TDX module's zero-step mitigation engaged.
        sim_mitigation_engaged: "module",
    }
}

// A private table with a differently named cell parameter and no trailing
// comma, in a module of its own.
mod private {
    use tdx_sept_guard_policy::{CounterCell, CounterTable};

    // Through the crate-root path `#[macro_export]` gives, this time.
    tdx_sept_guard_policy::counter_table! {
        counters = ::tdx_sept_guard_policy::counters;
        #[derive(Debug)]
        struct Two<Cell> {
            /// First.
            first: "a",
            /// Second.
            second: "b"
        }
    }

    pub(crate) fn render_two() -> String {
        let t = Two::<super::HostCounter>::new();
        t.first.add(1);
        t.second.add(2);
        let mut out = String::new();
        t.render(&mut out).unwrap();
        assert_eq!(format!("{t:?}").matches("HostCounter").count(), 2);
        out
    }
}

/// Generic over any table: the sum of its counters.
fn total<T: CounterTable>(table: &T) -> u64 {
    let mut sum = 0;
    table.for_each_counter(&mut |_, cell| sum += cell.get());
    sum
}

#[test]
fn table_declared_outside_the_crate() {
    let t = SimCounters::<HostCounter>::new();
    t.sim_guest_ops.add(5);
    t.sim_gate_violations.add(1);
    assert_eq!(total(&t), 6);

    let mut out = String::new();
    t.render(&mut out).unwrap();
    assert_eq!(
        out,
        "sim_guest_ops 5\nsim_zaps 0\nsim_gate_violations 1\nsim_mitigation_engaged 0\n"
    );
    // Into a `dyn Write` too.
    let mut dynamic = String::new();
    t.render(&mut dynamic as &mut dyn std::fmt::Write).unwrap();
    assert_eq!(dynamic, out);

    let descs = SimCounters::<HostCounter>::COUNTERS;
    let summary: Vec<(&str, &str)> = descs.iter().map(|d| (d.name, d.group)).collect();
    assert_eq!(
        summary,
        [
            ("sim_guest_ops", "work"),
            ("sim_zaps", "work"),
            ("sim_gate_violations", "check"),
            ("sim_mitigation_engaged", "module"),
        ]
    );
    assert_eq!(
        descs[2].help,
        "Kickers that had all their acks, their gate up, and still found a vCPU inside its \
         guest section."
    );
    assert!(std::ptr::eq(t.counter("sim_zaps").unwrap(), &t.sim_zaps));

    t.reset();
    assert_eq!(total(&t), 0);
}

#[test]
fn private_table_in_a_module() {
    assert_eq!(private::render_two(), "first 1\nsecond 2\n");
}
