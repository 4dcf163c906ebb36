// SPDX-License-Identifier: GPL-2.0

//! Event counters, declared once each and rendered one `name value` line each
//! (for debugfs).
//!
//! A table of counters is a struct with one cell per counter, declared with
//! [`counter_table!`](crate::counter_table): each counter is declared once, with
//! its help text (its doc comment) and its group, and the macro derives the
//! struct, the [`CounterDesc`] list and the [`CounterTable`] impl from that one
//! declaration. [`CounterTable`] then gives every table the same renderer and
//! reset. The policy's own table is [`Counters`]; the kernel module's
//! simulator declares its own with the same macro.

use core::fmt;

use super::status::{Leaf, Operand, Status, StatusKind};

/// One counter. The kernel implements it over an atomic; updates need no
/// ordering.
///
/// There is deliberately no "record a maximum" operation: that needs a
/// compare-and-swap loop, which a counter does not have; a platform that keeps
/// a maximum keeps it in an atomic of its own.
pub trait CounterCell {
    /// Adds `n`.
    fn add(&self, n: u64);
    /// The current value.
    fn get(&self) -> u64;
    /// Sets the counter to zero.
    fn reset(&self);
}

/// What is known about a counter apart from its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CounterDesc {
    /// The counter's name: its field name, and the first word of its line.
    pub name: &'static str,
    /// One-line help text: the counter's doc comment.
    pub help: &'static str,
    /// The group the counter belongs to (`"ops"`, `"busy"`, ...).
    pub group: &'static str,
}

/// A table of counters, as declared by
/// [`counter_table!`](crate::counter_table).
///
/// Only [`Self::for_each_counter`] is per table; rendering, reset and lookup by
/// name are written once, here, for every table.
pub trait CounterTable {
    /// The counters' cell type.
    type Cell: CounterCell;

    /// Calls `f` with every counter's descriptor and cell, in declaration
    /// order.
    fn for_each_counter<'a>(&'a self, f: &mut dyn FnMut(&'static CounterDesc, &'a Self::Cell));

    /// Writes one `name value` line per counter, in declaration order.
    fn render<W: fmt::Write + ?Sized>(&self, out: &mut W) -> fmt::Result {
        let mut result = Ok(());
        self.for_each_counter(&mut |desc, cell| {
            if result.is_ok() {
                result = writeln!(out, "{} {}", desc.name, cell.get());
            }
        });
        result
    }

    /// Zeroes every counter.
    fn reset(&self) {
        self.for_each_counter(&mut |_, cell| cell.reset());
    }

    /// The counter called `name`, if the table has one.
    fn counter(&self, name: &str) -> Option<&Self::Cell> {
        let mut found = None;
        self.for_each_counter(&mut |desc, cell| {
            if found.is_none() && desc.name == name {
                found = Some(cell);
            }
        });
        found
    }
}

/// Turns a counter's doc comment, its `///` lines concatenated, into its help
/// text, for [`counter_table!`](crate::counter_table): drops the space that
/// starts the first line. (Each `/// text` line is `" text"`, so the lines of
/// a concatenation stay apart by one space.)
pub const fn help_from_doc(doc: &'static str) -> &'static str {
    match doc.as_bytes() {
        [b' ', rest @ ..] => match core::str::from_utf8(rest) {
            Ok(help) => help,
            Err(_) => doc,
        },
        _ => doc,
    }
}

/// Declares a table of counters: one declaration per counter gives its name,
/// help text and group.
///
/// ```text
/// counter_table! {
///     counters = <path>;
///     /// Docs of the struct, and any other outer attributes but
///     /// `#[derive(Default)]`, which the macro adds.
///     <vis> struct <Name><<Cell>> {
///         /// The counter's help text: its doc comment, required; lines are
///         /// joined.
///         <name>: "<group>",
///         ...
///     }
/// }
/// ```
///
/// `<path>` names this module from the call site: the macro cannot use
/// `$crate`, because the kernel module compiles this crate as its module
/// `crate::policy` and `$crate` is then the whole kernel module. Pass
/// `tdx_sept_guard_policy::counters` on the host and `crate::policy::counters`
/// in the kernel module (any path but a bare `self`, which `use` rejects).
///
/// It generates:
/// - `<vis> struct <Name><Cell>`, `#[derive(Default)]`, with one `<vis>` field
///   of type `Cell` per counter, in declaration order, documented by its help
///   text;
/// - `<Name><Cell>::COUNTERS: &'static [CounterDesc]`, the descriptors in
///   declaration order: name = the field name, help = the doc comment (lines
///   joined, see [`help_from_doc`]), group = the string after the colon;
/// - `<Name>::new()`, every cell `Default` (zero);
/// - the [`CounterTable`] impl, for `Cell: CounterCell`, which brings the one
///   [`render`](CounterTable::render) and [`reset`](CounterTable::reset) (import
///   the trait to call them).
///
/// It is `#[macro_export]`ed, which puts it at the root of whichever crate
/// compiles this file (`tdx_sept_guard_policy` on the host, the kernel module
/// in the kernel), and re-exported from this module, so that both builds
/// import it the same way: `use tdx_sept_guard_policy::counters::counter_table;`
/// on the host, `use crate::policy::counters::counter_table;` in the kernel
/// module. `<policy>::counter_table` works in both builds too (in the kernel
/// through a re-export in `lib.rs`).
///
/// # Example
///
/// ```
/// use tdx_sept_guard_policy::counters::{counter_table, CounterCell, CounterTable};
///
/// counter_table! {
///     counters = tdx_sept_guard_policy::counters;
///     /// What a simulation saw.
///     pub struct SimCounters<C> {
///         /// Pages the guests accepted.
///         sim_guest_ops: "sim",
///         /// Kickers that found a vCPU in the guest after all acks.
///         sim_gate_violations: "check",
///     }
/// }
///
/// # #[derive(Default)]
/// # struct Cell(std::cell::Cell<u64>);
/// # impl CounterCell for Cell {
/// #     fn add(&self, n: u64) { self.0.set(self.0.get() + n) }
/// #     fn get(&self) -> u64 { self.0.get() }
/// #     fn reset(&self) { self.0.set(0) }
/// # }
/// let c = SimCounters::<Cell>::new();
/// c.sim_guest_ops.add(3);
/// let mut out = String::new();
/// c.render(&mut out).unwrap();
/// assert_eq!(out, "sim_guest_ops 3\nsim_gate_violations 0\n");
/// let desc = &SimCounters::<Cell>::COUNTERS[1];
/// assert_eq!(desc.help, "Kickers that found a vCPU in the guest after all acks.");
/// assert_eq!(desc.group, "check");
/// assert_eq!(c.counter("sim_gate_violations").map(|c| c.get()), Some(0));
/// c.reset();
/// assert_eq!(c.sim_guest_ops.get(), 0);
/// ```
#[macro_export]
macro_rules! counter_table {
    (
        counters = $counters:path ;
        $(#[$attr:meta])*
        $vis:vis struct $name:ident < $cell:ident > {
            $(
                $(#[doc = $doc:literal])+
                $field:ident : $group:literal
            ),* $(,)?
        }
    ) => {
        $(#[$attr])*
        #[derive(Default)]
        $vis struct $name<$cell> {
            $(
                $(#[doc = $doc])+
                $vis $field: $cell,
            )*
        }

        // A block, to name the counters module once (`$counters` cannot be
        // extended with `::Item` in a macro, an alias can).
        const _: () = {
            use $counters as __counters;

            impl<$cell> $name<$cell> {
                /// The counters' descriptors, in declaration order.
                $vis const COUNTERS: &'static [__counters::CounterDesc] = &[
                    $(
                        __counters::CounterDesc {
                            name: ::core::stringify!($field),
                            help: __counters::help_from_doc(::core::concat!($($doc),+)),
                            group: $group,
                        },
                    )*
                ];
            }

            impl<$cell: ::core::default::Default> $name<$cell> {
                /// All counters at zero.
                $vis fn new() -> Self {
                    <Self as ::core::default::Default>::default()
                }
            }

            impl<$cell: __counters::CounterCell> __counters::CounterTable for $name<$cell> {
                type Cell = $cell;

                fn for_each_counter<'a>(
                    &'a self,
                    f: &mut dyn ::core::ops::FnMut(&'static __counters::CounterDesc, &'a $cell),
                ) {
                    let cells = [$(&self.$field),*];
                    for (desc, cell) in Self::COUNTERS.iter().zip(cells) {
                        f(desc, cell);
                    }
                }
            }
        };
    };
}

// The one `crate::` path in the crate: `#[macro_export]` puts the macro at the
// root of whichever crate is being compiled, which `crate::` names in both
// builds.
pub use crate::counter_table;

counter_table! {
    counters = super::counters;
    /// Every counter the policy keeps. Names are the field names.
    pub struct Counters<C> {
        /// Operations run by the executor.
        ops: "ops",
        /// SEAMCALLs issued by the executor.
        seamcalls: "ops",
        /// Busy TDH.VP.ENTER results reported to the zero-step detector.
        busy_enter: "busy",
        /// Busy TDH.MEM.PAGE.ADD results.
        busy_page_add: "busy",
        /// Busy TDH.MEM.SEPT.ADD results.
        busy_sept_add: "busy",
        /// Busy TDH.MEM.PAGE.AUG results.
        busy_aug: "busy",
        /// Busy TDH.MEM.RANGE.BLOCK results.
        busy_block: "busy",
        /// Busy TDH.MEM.PAGE.REMOVE results.
        busy_remove: "busy",
        /// Busy TDH.MEM.TRACK results.
        busy_track: "busy",
        /// `TDX_OPERAND_BUSY` naming the S-EPT tree (0x92).
        busy_operand_sept: "busy",
        /// `TDX_OPERAND_BUSY` naming RCX, the S-EPT entry (0x01).
        busy_operand_rcx: "busy",
        /// `TDX_OPERAND_BUSY` naming RDX (0x02).
        busy_operand_rdx: "busy",
        /// `TDX_OPERAND_BUSY` naming R8, the target page (0x08).
        busy_operand_r8: "busy",
        /// `TDX_OPERAND_BUSY` naming the TDR (0x80).
        busy_operand_tdr: "busy",
        /// `TDX_OPERAND_BUSY` naming the TD epoch (0xa9).
        busy_operand_td_epoch: "busy",
        /// `TDX_OPERAND_BUSY` naming op_state (0xac).
        busy_operand_op_state: "busy",
        /// `TDX_OPERAND_BUSY` naming any other operand.
        busy_operand_other: "busy",
        /// `TDX_PREVIOUS_TLB_EPOCH_BUSY` from TDH.MEM.TRACK.
        busy_prev_tlb_epoch: "busy",
        /// Kicks (gate raised or kept up, vCPUs read, IPIs sent, acks awaited).
        kicks: "kick",
        /// vCPUs found in guest mode and sent a kick.
        vcpus_kicked: "kick",
        /// Kicks whose acks did not all arrive before the platform's deadline.
        kick_timeouts: "kick",
        /// SEAMCALLs issued again after a busy one.
        retries: "retry",
        /// Operations that succeeded after at least one retry.
        retry_successes: "retry",
        /// `BlindRetry` policy warnings (try 16, 32, ... 1024).
        retry_warnings: "retry",
        /// Busy results handed back for the caller to re-fault (`Upstream72`
        /// policy, map path).
        busy_returned: "ops",
        /// Operations that ended in a VM bug (the caller stops the VM).
        vm_bugs: "ops",
        /// Operations that ended in a non-busy error, passed through.
        errors: "ops",
        /// SPTE freezes that found the SPTE changed or frozen (counted by the
        /// caller of `FrozenSpte::freeze`).
        freeze_contended: "ops",
        /// Entries refused because the gate was up (counted by the vCPU loop).
        entries_refused: "vcpu",
        /// Times the zero-step detector saw the mitigation engage.
        zero_step_events: "zero_step",
        /// Zero-step verdicts that asked for a kick-and-wait.
        zero_step_kicks: "zero_step",
        /// Nanoseconds kickers spent sending kicks and waiting for acks.
        gate_wait_ns: "kick",
        /// Busy statuses fault injection made up for an operation's first
        /// try (`fail_map_busy`): not issued, so in neither `seamcalls` nor
        /// the busy counters.
        injected_busy: "inject",
        /// Busy statuses fault injection made up for a retry
        /// (`fail_retry_busy`): not issued either.
        injected_retry_busy: "inject",
    }
}

/// Number of counters in [`Counters`].
pub const NR_COUNTERS: usize = Counters::<()>::COUNTERS.len();

impl<C: CounterCell> Counters<C> {
    /// The busy counter for `leaf`.
    pub fn busy_leaf(&self, leaf: Leaf) -> &C {
        match leaf {
            Leaf::VpEnter => &self.busy_enter,
            Leaf::MemPageAdd => &self.busy_page_add,
            Leaf::MemSeptAdd => &self.busy_sept_add,
            Leaf::MemPageAug => &self.busy_aug,
            Leaf::MemRangeBlock => &self.busy_block,
            Leaf::MemPageRemove => &self.busy_remove,
            Leaf::MemTrack => &self.busy_track,
        }
    }

    /// The busy counter for `operand`.
    pub fn busy_operand(&self, operand: Operand) -> &C {
        match operand {
            Operand::Sept => &self.busy_operand_sept,
            Operand::Rcx => &self.busy_operand_rcx,
            Operand::Rdx => &self.busy_operand_rdx,
            Operand::R8 => &self.busy_operand_r8,
            Operand::Tdr => &self.busy_operand_tdr,
            Operand::TdEpoch => &self.busy_operand_td_epoch,
            Operand::OpState => &self.busy_operand_op_state,
            Operand::Other(_) => &self.busy_operand_other,
        }
    }

    /// Counts a busy `status` from `leaf`: by leaf, and by operand or as
    /// `busy_prev_tlb_epoch`.
    pub fn count_busy(&self, leaf: Leaf, status: Status) {
        self.busy_leaf(leaf).add(1);
        match status.kind() {
            StatusKind::OperandBusy(operand) => self.busy_operand(operand).add(1),
            StatusKind::PreviousTlbEpochBusy => self.busy_prev_tlb_epoch.add(1),
            _ => {}
        }
    }
}
