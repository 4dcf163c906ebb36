// SPDX-License-Identifier: GPL-2.0

//! Counter names, rendering and reset.

mod common;

use std::collections::HashSet;

use common::HostCounters;
use tdx_sept_guard_policy::counters::NR_COUNTERS;
use tdx_sept_guard_policy::{CounterCell, Leaf, Operand};

#[test]
fn names_are_unique_snake_case_and_include_the_required_ones() {
    let c = HostCounters::new();
    let names: Vec<&str> = c.iter().map(|(n, _)| n).collect();
    assert_eq!(names.len(), NR_COUNTERS);
    assert_eq!(names.iter().collect::<HashSet<_>>().len(), NR_COUNTERS);
    for n in &names {
        assert!(
            n.chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_'),
            "{n}"
        );
    }
    for required in [
        "ops",
        "seamcalls",
        "kicks",
        "vcpus_kicked",
        "kick_timeouts",
        "retries",
        "retry_successes",
        "vm_bugs",
        "errors",
        "zero_step_events",
        "gate_wait_ns",
        "busy_aug",
    ] {
        assert!(names.contains(&required), "{required}");
    }
}

#[test]
fn every_entry_is_a_distinct_cell() {
    let c = HostCounters::new();
    for (i, (_, cell)) in c.iter().enumerate() {
        cell.add(i as u64 + 1);
    }
    for (i, (_, cell)) in c.iter().enumerate() {
        assert_eq!(cell.get(), i as u64 + 1);
    }
}

#[test]
fn busy_by_leaf_and_operand_use_the_named_counters() {
    let c = HostCounters::new();
    for leaf in Leaf::ALL {
        c.busy_leaf(leaf).add(1);
        let name = format!("busy_{}", leaf.name());
        let (_, cell) = c.iter().find(|(n, _)| *n == name).unwrap();
        assert_eq!(cell.get(), 1, "{name}");
    }
    for op in [
        Operand::Sept,
        Operand::Rcx,
        Operand::Rdx,
        Operand::R8,
        Operand::Tdr,
        Operand::TdEpoch,
        Operand::OpState,
        Operand::Other(0x77),
    ] {
        c.busy_operand(op).add(1);
        let name = format!("busy_operand_{}", op.name());
        let (_, cell) = c.iter().find(|(n, _)| *n == name).unwrap();
        assert_eq!(cell.get(), 1, "{name}");
    }
}

#[test]
fn render_is_one_name_value_line_each() {
    let c = HostCounters::new();
    c.busy_aug.add(3);
    c.retries.add(2);
    let mut out = String::new();
    c.render(&mut out).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), NR_COUNTERS);
    assert_eq!(lines[0], "ops 0");
    assert!(lines.contains(&"busy_aug 3"));
    assert!(lines.contains(&"retries 2"));
    assert!(out.ends_with('\n'));
}

#[test]
fn reset_zeroes_everything() {
    let c = HostCounters::new();
    for (_, cell) in c.iter() {
        cell.add(9);
    }
    c.reset();
    assert!(c.iter().all(|(_, cell)| cell.get() == 0));
}
