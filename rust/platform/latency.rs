// SPDX-License-Identifier: GPL-2.0

//! The latency histograms both backends keep, per VM and in total (debugfs
//! `latency`), in nanoseconds:
//!
//! - `seamcall_<leaf>_ns`: each S-EPT SEAMCALL leaf's duration (AUG,
//!   SEPT.ADD, PAGE.ADD, BLOCK, TRACK, REMOVE), timed around KVM's SEAMCALL
//!   wrapper by the leaf probes (the simulated TDX module's call in
//!   `mode=sim`). Injected statuses call nothing and are not timed.
//! - `kick_ns`: a kick's round trip, from sending the first IPI to the last
//!   acknowledgement (the gate is up throughout).
//! - `gate_ns`: how long one operation kept its VM's gate up, from raising
//!   it through the kick and the retry to lowering it: the time every vCPU
//!   of the VM was kept out of guest mode.
//! - `map_ns`: one map call as KVM sees it, from entering the module's hook
//!   to returning to KVM (the simulator's map of one S-EPT entry).
//!
//! Durations are on this CPU's clock (`local_clock()`,
//! [`super::sync::local_clock_ns`]). Recording costs a clock read or two
//! and a relaxed
//! atomic add on a cache line the VM's CPUs share. `latency=0` at load
//! keeps none: nothing is allocated, timed or recorded, and the files say
//! so. See `Documentation/usage.rst`, "Latency histograms".

use super::hist::Histogram;
use crate::policy::Leaf;
use core::fmt;
use kernel::{
    alloc::KVBox,
    prelude::*, //
};

/// The S-EPT leaves timed, with their histograms' names.
const SEAMCALL_LEAVES: [(Leaf, &str); 6] = [
    (Leaf::MemPageAug, "seamcall_aug_ns"),
    (Leaf::MemSeptAdd, "seamcall_sept_add_ns"),
    (Leaf::MemPageAdd, "seamcall_page_add_ns"),
    (Leaf::MemRangeBlock, "seamcall_block_ns"),
    (Leaf::MemTrack, "seamcall_track_ns"),
    (Leaf::MemPageRemove, "seamcall_remove_ns"),
];

/// One VM's latency histograms, or a sum of several VMs'.
///
/// About 11 KiB: allocated zeroed in place ([`Latencies::new`]).
#[repr(C)]
pub(crate) struct Latencies {
    seamcall: [Histogram; SEAMCALL_LEAVES.len()],
    kick: Histogram,
    gate: Histogram,
    map: Histogram,
}

// SAFETY: Only `Histogram`s, which are `Zeroable`.
unsafe impl Zeroable for Latencies {}

impl Latencies {
    /// Empty histograms, or `None` if histograms are off (`on` false).
    /// Process context: may sleep.
    pub(crate) fn new(on: bool) -> Result<Option<KVBox<Self>>> {
        if !on {
            return Ok(None);
        }
        Ok(Some(KVBox::init(pin_init::init_zeroed(), GFP_KERNEL)?))
    }

    /// Records one `leaf` SEAMCALL that took `ns`; other leaves (VP.ENTER)
    /// are not kept.
    pub(crate) fn seamcall(&self, leaf: Leaf, ns: u64) {
        if let Some(i) = SEAMCALL_LEAVES.iter().position(|&(l, _)| l == leaf) {
            self.seamcall[i].record(ns);
        }
    }

    /// Records one map call that took `ns`.
    pub(crate) fn map(&self, ns: u64) {
        self.map.record(ns);
    }

    /// Records one kick's round trip, `ns`.
    pub(crate) fn kick(&self, ns: u64) {
        self.kick.record(ns);
    }

    /// Records one gate hold, `ns`.
    pub(crate) fn gate(&self, ns: u64) {
        self.gate.record(ns);
    }

    /// Every histogram with its name, in the order they are shown.
    fn all(&self) -> [(&'static str, &Histogram); SEAMCALL_LEAVES.len() + 3] {
        let s = &self.seamcall;
        let name = |i: usize| SEAMCALL_LEAVES[i].1;
        [
            (name(0), &s[0]),
            (name(1), &s[1]),
            (name(2), &s[2]),
            (name(3), &s[3]),
            (name(4), &s[4]),
            (name(5), &s[5]),
            ("kick_ns", &self.kick),
            ("gate_ns", &self.gate),
            ("map_ns", &self.map),
        ]
    }

    /// Adds `other`'s durations to these.
    pub(crate) fn add_from(&self, other: &Latencies) {
        for ((_, h), (_, o)) in self.all().into_iter().zip(other.all()) {
            h.add_from(o);
        }
    }

    /// Writes every histogram: `<name>_max <ns>`, then one
    /// `<name> <low> <high> <count>` line per non-empty bucket.
    pub(crate) fn render(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.all()
            .into_iter()
            .try_for_each(|(name, h)| h.render(name, f))
    }

    /// For the suites: how many durations each histogram holds, in the
    /// order they are shown (six leaves: AUG, SEPT.ADD, PAGE.ADD, BLOCK,
    /// TRACK, REMOVE; then kick, gate, map).
    #[cfg(tsg_tests)]
    pub(crate) fn counts(&self) -> [u64; SEAMCALL_LEAVES.len() + 3] {
        self.all().map(|(_, h)| h.count())
    }

    /// For the suites: the longest kick and the longest gate hold.
    #[cfg(tsg_tests)]
    pub(crate) fn kick_gate_max(&self) -> (u64, u64) {
        (self.kick.max(), self.gate.max())
    }

    /// Empties every histogram.
    pub(crate) fn reset(&self) {
        self.all().into_iter().for_each(|(_, h)| h.reset());
    }
}

/// The line a `latency` file shows when histograms are off.
pub(crate) fn render_off(f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(
        f,
        "# no latency histograms: the module was loaded with latency=0"
    )
}

/// What keeping the histograms costs on this CPU, for the benchmark suite
/// ([`recording_cost`]), in ns per call.
#[cfg(tsg_tests)]
pub(crate) struct RecordingCost {
    /// A map call's share: two reads of [`local_clock_ns`] and one record,
    /// as the map path does.
    pub(crate) map: u64,
    /// One record alone (a kick, a gate hold, a SEAMCALL time whose clock
    /// reads the probes pay).
    pub(crate) record: u64,
    /// One read of [`local_clock_ns`], the histograms' clock.
    pub(crate) local_clock: u64,
    /// One read of `ktime_get()` ([`super::sync::KClock`]), for comparison.
    pub(crate) ktime: u64,
}

/// Measures [`RecordingCost`]: each figure is the best of `reps` loops of
/// `n` calls, less an empty loop's time, with preemption left on (an
/// interrupt inflates a loop, the best one is kept).
#[cfg(tsg_tests)]
pub(crate) fn recording_cost(n: u32, reps: u32) -> Result<RecordingCost> {
    use super::sync::{
        local_clock_ns,
        KClock, //
    };
    use crate::policy::Clock;
    use core::hint::black_box;
    let l = Latencies::new(true)?.ok_or(ENOMEM)?;
    let clock = KClock::new();
    let best = |f: &dyn Fn(u32)| {
        (0..reps)
            .map(|_| {
                let start = clock.now_ns();
                for i in 0..n {
                    f(black_box(i));
                }
                clock.now_ns().saturating_sub(start)
            })
            .min()
            .unwrap_or(0)
    };
    let empty = best(&|i| {
        black_box(i);
    });
    let map = best(&|i| {
        let start = local_clock_ns();
        l.map(local_clock_ns().saturating_sub(start));
        black_box(i);
    });
    // Durations spread over many buckets, as real ones are.
    let record = best(&|i| {
        l.kick(u64::from(i) * 37 % 100_000);
        black_box(i);
    });
    let local_clock = best(&|i| {
        black_box(local_clock_ns());
        black_box(i);
    });
    let ktime = best(&|i| {
        black_box(clock.now_ns());
        black_box(i);
    });
    let per_call = |t: u64| t.saturating_sub(empty) / u64::from(n.max(1));
    Ok(RecordingCost {
        map: per_call(map),
        record: per_call(record),
        local_clock: per_call(local_clock),
        ktime: per_call(ktime),
    })
}
