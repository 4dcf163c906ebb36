// SPDX-License-Identifier: GPL-2.0

//! The policy's counter table: names, order, help texts, groups, rendering
//! and reset.

mod common;

use std::collections::HashSet;

use common::{HostCounter, HostCounters};
use tdx_sept_guard_policy::counters::NR_COUNTERS;
use tdx_sept_guard_policy::{CounterCell, CounterDesc, CounterTable, Counters, Leaf, Operand};

/// The names, in rendering order, as they were before the table was declared
/// with `counter_table!` (new ones are added at the end); debugfs readers
/// depend on them.
const NAMES: [&str; 34] = [
    "ops",
    "seamcalls",
    "busy_enter",
    "busy_page_add",
    "busy_sept_add",
    "busy_aug",
    "busy_block",
    "busy_remove",
    "busy_track",
    "busy_operand_sept",
    "busy_operand_rcx",
    "busy_operand_rdx",
    "busy_operand_r8",
    "busy_operand_tdr",
    "busy_operand_td_epoch",
    "busy_operand_op_state",
    "busy_operand_other",
    "busy_prev_tlb_epoch",
    "kicks",
    "vcpus_kicked",
    "kick_timeouts",
    "retries",
    "retry_successes",
    "retry_warnings",
    "busy_returned",
    "vm_bugs",
    "errors",
    "freeze_contended",
    "entries_refused",
    "zero_step_events",
    "zero_step_kicks",
    "gate_wait_ns",
    "injected_busy",
    "injected_retry_busy",
];

fn entries(c: &HostCounters) -> Vec<(&'static CounterDesc, &HostCounter)> {
    let mut v = Vec::new();
    c.for_each_counter(&mut |desc, cell| v.push((desc, cell)));
    v
}

fn cell<'a>(c: &'a HostCounters, name: &str) -> &'a HostCounter {
    c.counter(name)
        .unwrap_or_else(|| panic!("no counter {name}"))
}

#[test]
fn names_and_order_are_unchanged() {
    let c = HostCounters::new();
    let names: Vec<&str> = entries(&c).iter().map(|(d, _)| d.name).collect();
    assert_eq!(names, NAMES);
    assert_eq!(NR_COUNTERS, NAMES.len());
    let descs: Vec<&str> = Counters::<HostCounter>::COUNTERS
        .iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(descs, NAMES);
}

#[test]
fn names_are_unique_snake_case_and_include_the_required_ones() {
    let c = HostCounters::new();
    let names: Vec<&str> = entries(&c).iter().map(|(d, _)| d.name).collect();
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
fn help_texts_are_one_clean_line_each() {
    for d in Counters::<HostCounter>::COUNTERS {
        let help = d.help;
        assert!(!help.is_empty(), "{}", d.name);
        assert_eq!(help, help.trim(), "{}: stray space", d.name);
        assert!(!help.contains('\n') && !help.contains("  "), "{}", d.name);
        assert!(!help.contains("[`"), "{}: intra-doc link", d.name);
        assert!(help.ends_with('.') || help.ends_with(')'), "{}", d.name);
    }
    let help = |name: &str| {
        Counters::<HostCounter>::COUNTERS
            .iter()
            .find(|d| d.name == name)
            .unwrap()
            .help
    };
    assert_eq!(help("ops"), "Operations run by the executor.");
    // Two doc lines, joined by one space.
    assert_eq!(
        help("freeze_contended"),
        "SPTE freezes that found the SPTE changed or frozen (counted by the caller of \
         `FrozenSpte::freeze`)."
    );
}

#[test]
fn groups_are_a_small_set_and_contiguous_busy_block() {
    let groups: Vec<&str> = Counters::<HostCounter>::COUNTERS
        .iter()
        .map(|d| d.group)
        .collect();
    let set: HashSet<&str> = groups.iter().copied().collect();
    let expected: HashSet<&str> = [
        "ops",
        "busy",
        "kick",
        "retry",
        "vcpu",
        "zero_step",
        "inject",
    ]
    .into_iter()
    .collect();
    assert_eq!(set, expected);
    for d in Counters::<HostCounter>::COUNTERS {
        let group = match d.name {
            "retries" | "retry_successes" | "retry_warnings" => "retry",
            "zero_step_events" | "zero_step_kicks" => "zero_step",
            "kicks" | "vcpus_kicked" | "kick_timeouts" | "gate_wait_ns" => "kick",
            "entries_refused" => "vcpu",
            "injected_busy" | "injected_retry_busy" => "inject",
            "busy_returned" => "ops",
            n if n.starts_with("busy_") => "busy",
            _ => "ops",
        };
        assert_eq!(d.group, group, "{}", d.name);
    }
}

#[test]
fn every_entry_is_a_distinct_cell_and_the_named_field() {
    let c = HostCounters::new();
    for (i, (_, cell)) in entries(&c).into_iter().enumerate() {
        cell.add(i as u64 + 1);
    }
    for (i, (_, cell)) in entries(&c).into_iter().enumerate() {
        assert_eq!(cell.get(), i as u64 + 1);
    }
    // The cells are the struct's fields, by name.
    assert!(std::ptr::eq(cell(&c, "retries"), &c.retries));
    assert!(std::ptr::eq(
        cell(&c, "zero_step_events"),
        &c.zero_step_events
    ));
    assert!(std::ptr::eq(cell(&c, "ops"), &c.ops));
    assert!(std::ptr::eq(cell(&c, "gate_wait_ns"), &c.gate_wait_ns));
    assert!(c.counter("no_such_counter").is_none());
}

#[test]
fn busy_by_leaf_and_operand_use_the_named_counters() {
    let c = HostCounters::new();
    for leaf in Leaf::ALL {
        c.busy_leaf(leaf).add(1);
        let name = format!("busy_{}", leaf.name());
        assert_eq!(cell(&c, &name).get(), 1, "{name}");
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
        assert_eq!(cell(&c, &name).get(), 1, "{name}");
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
    let expected: String = NAMES
        .iter()
        .map(|n| match *n {
            "busy_aug" => format!("{n} 3\n"),
            "retries" => format!("{n} 2\n"),
            _ => format!("{n} 0\n"),
        })
        .collect();
    assert_eq!(out, expected);
}

/// A writer error stops the rendering and comes back.
#[test]
fn render_passes_write_errors_on() {
    struct Full(usize);
    impl std::fmt::Write for Full {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0 = self.0.checked_sub(s.len()).ok_or(std::fmt::Error)?;
            Ok(())
        }
    }
    let c = HostCounters::new();
    assert!(c.render(&mut Full(20)).is_err());
    assert!(c.render(&mut Full(10_000)).is_ok());
}

#[test]
fn reset_zeroes_everything() {
    let c = HostCounters::new();
    for (_, cell) in entries(&c) {
        cell.add(9);
    }
    c.reset();
    assert!(entries(&c).iter().all(|(_, cell)| cell.get() == 0));
}
