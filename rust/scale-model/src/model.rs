// SPDX-License-Identifier: GPL-2.0

//! The model: one VM with `n` vCPU threads and one kicker, running the real
//! policy core, with time kept in modelled nanoseconds.
//!
//! # What is real and what is modelled
//!
//! Real (the policy crate's own code, over `std` atomics): the entry gate
//! ([`EntryGate`]), each vCPU's mode cell and its [`vcpu_try_enter`] /
//! [`vcpu_exit`], the kick ([`KickGuard`](tdx_sept_guard_policy::KickGuard)
//! through [`Executor`], with
//! [`exiting_guest_mode`] on every vCPU and a [`VcpuSet`] that holds 256),
//! the frozen SPTE and the policy's [`Counters`]. Each vCPU is a thread that
//! does its own entries and exits on its own mode cell and acknowledges its
//! own kicks.
//!
//! Modelled: time. There is no guest, no IPI and no VM exit on the host, and
//! with 256 threads on a few cores the host's own timing says nothing about
//! a TDX host. So every thread keeps a modelled clock, drawn from seeded
//! generators and the [`Anchors`]:
//!
//! - A vCPU alternates guest sections (exponential, mean
//!   [`Config::guest_mean_ns`]) and host sections (a TD exit round trip,
//!   uniform in the anchor's range). A round starts it in the guest with
//!   probability `guest / (guest + round trip)`, else part-way through a host
//!   section.
//! - Each round is one S-EPT SEAMCALL (TDH.MEM.PAGE.AUG 4K) that comes back
//!   `TDX_OPERAND_BUSY` once, run by [`Executor::run_on_spte`] under the
//!   default policy: the busy try (one SEAMCALL), gate up, kick, the retry
//!   (one SEAMCALL) with the gate still up, gate down. The model does not
//!   decide when BUSY happens: rounds are [`Config::kick_rate`] apart.
//! - A kick is a flag (a command) the kicker sets for a vCPU it finds in
//!   guest mode, after charging one IPI send to its own clock. The vCPU takes
//!   it at the IPI's delivery, leaves guest mode after the TD exit (or at its
//!   own natural exit, if that comes first), calls [`vcpu_exit`] and
//!   acknowledges with the modelled time of its exit. The kicker's cost is
//!   its sends plus the wait for the slowest acknowledgement, exactly
//!   `2 µs x (1 + k(n-1)) + slowest exit` when all `n` were in the guest.
//! - A vCPU that leaves the guest (kicked, or at a natural exit) and tries
//!   to enter while the gate is up is refused by the real
//!   [`vcpu_try_enter`]; it enters when the gate is lowered. The time from
//!   its kick's delivery (or from its refused entry) to the gate's lowering
//!   is its *gated* time.
//!
//! # How the threads keep modelled time
//!
//! Conservatively, as in a parallel discrete-event simulation: the kicker
//! never touches the shared state a vCPU's model depends on (the gate, the
//! vCPU's mode) before that vCPU has carried out all its own events that
//! come earlier in modelled time. Before raising the gate at `Tg` it tells
//! every vCPU to advance to `Tg` (their entries then still see the gate
//! down); before reading vCPU `i`'s mode at `Tm_i` it advances that vCPU to
//! `Tm_i` (an entry between `Tg` and `Tm_i` meets the real gate, up); before
//! the retried SEAMCALL ends and the gate drops it advances them all to the
//! drop. A vCPU runs only when told to, processes its events up to the given
//! time with the real calls, publishes the time of its next event, and
//! answers. So every result is the same for the same seed whatever the host
//! scheduler does, and the real protocol is driven at each step in the order
//! modelled time gives. The price is that the threads do not race freely:
//! the policy crate's own thread and loom tests do that.
//!
//! The invariant is checked twice per kick, with the gate up: when all acks
//! are in, and when the retried SEAMCALL ends (after every vCPU has tried
//! the entries its timeline holds until then): no vCPU in guest mode, none
//! in its guest section.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use tdx_sept_guard_policy::counters::counter_table;
use tdx_sept_guard_policy::gate::OUTSIDE_GUEST_MODE;
use tdx_sept_guard_policy::spte::SHADOW_NONPRESENT_VALUE;
use tdx_sept_guard_policy::status::{TDX_OPERAND_BUSY, TDX_OPERAND_ID_RCX};
use tdx_sept_guard_policy::{
    exiting_guest_mode, vcpu_exit, vcpu_try_enter, Atomic32, Atomic64, Clock, CounterCell,
    CounterTable, Counters, EntryGate, Executor, KickTimeout, Leaf, Outcome, Policy, Seamcall,
    SeptOp, Status, VcpuSet,
};

use crate::anchors::Anchors;
use crate::host::{StdAtomic32, StdAtomic64, StdCounter, WallClock};
use crate::rng::Rng;

/// The most vCPUs the model runs (and [`KickMask`] holds).
pub const MAX_VCPUS: usize = 256;

/// The kicked vCPUs of one kick: a bitmap of [`MAX_VCPUS`] bits, on the
/// kicker's stack like the kernel simulator's `u64` mask (which holds 64).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KickMask {
    words: [u64; MASK_WORDS],
}

const MASK_WORDS: usize = MAX_VCPUS.div_ceil(64);

impl KickMask {
    /// No vCPU.
    pub const fn new() -> Self {
        Self {
            words: [0; MASK_WORDS],
        }
    }

    /// Adds vCPU `i` (`i < MAX_VCPUS`).
    pub fn set(&mut self, i: usize) {
        self.words[i / 64] |= 1 << (i % 64);
    }

    /// True if vCPU `i` is in the mask.
    pub fn contains(&self, i: usize) -> bool {
        i < MAX_VCPUS && self.words[i / 64] & (1 << (i % 64)) != 0
    }

    /// The number of vCPUs in the mask.
    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The vCPUs in the mask, in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        (0..MAX_VCPUS).filter(|&i| self.contains(i))
    }
}

/// What one run of the model is given.
#[derive(Clone, Debug)]
pub struct Config {
    /// Kicks (rounds) to model.
    pub kicks: u32,
    /// Seed of every modelled draw.
    pub seed: u64,
    /// The costs assumed.
    pub anchors: Anchors,
    /// Mean guest section: modelled time between a vCPU's VM exits when it
    /// is not kicked. A model parameter, not an anchor.
    pub guest_mean_ns: u64,
    /// Kicks per second in the VM: how far apart rounds are in modelled time
    /// and what the gated fraction is computed at.
    pub kick_rate: f64,
    /// Host (real) time bound on every wait of the kicker: a wait that
    /// exceeds it fails the run instead of hanging.
    pub deadline: Duration,
}

impl Config {
    /// The defaults: 1000 kicks, seed 1, the anchors of `cost-anchors.md`,
    /// guest sections of 100 µs, 1000 kicks/s, 30 s deadline.
    pub const DEFAULT: Self = Self {
        kicks: 1000,
        seed: 1,
        anchors: Anchors::DEFAULT,
        guest_mean_ns: 100_000,
        kick_rate: 1000.0,
        deadline: Duration::from_secs(30),
    };

    /// The modelled nanoseconds between two rounds.
    pub fn period_ns(&self) -> u64 {
        (1e9 / self.kick_rate).round() as u64
    }

    /// Checks the values the model cannot run with.
    pub fn validate(&self) -> Result<(), ModelError> {
        let a = &self.anchors;
        let bad = |what: &str| Err(ModelError::Config(what.to_owned()));
        if self.kicks == 0 {
            return bad("kicks must be at least 1");
        }
        if !(self.kick_rate > 0.0 && self.kick_rate <= 1e6) {
            return bad("kick rate must be in (0, 1e6] per second");
        }
        if self.guest_mean_ns == 0 {
            return bad("guest section mean must be positive");
        }
        if a.seamcall_ns == 0 || a.exit_min_ns == 0 || a.exit_min_ns > a.exit_max_ns {
            return bad("anchors: SEAMCALL and exit times must be positive, exit min <= max");
        }
        if a.ipi_k_milli > 1000 || a.ipi_base_ns == 0 {
            return bad("anchors: IPI base must be positive and k within 0..=1");
        }
        Ok(())
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Why a run failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelError {
    /// An invalid setting.
    Config(String),
    /// The kicker waited longer than [`Config::deadline`] (host time).
    Deadline(&'static str),
    /// An operation did not end as the model requires (`Done` after two
    /// SEAMCALLs).
    Outcome(String),
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(s) => write!(f, "bad setting: {s}"),
            Self::Deadline(what) => write!(f, "host deadline passed waiting for {what}"),
            Self::Outcome(s) => write!(f, "unexpected outcome: {s}"),
        }
    }
}

impl std::error::Error for ModelError {}

counter_table! {
    counters = tdx_sept_guard_policy::counters;
    /// What the model counts besides the policy's [`Counters`].
    pub struct ModelCounters<C> {
        /// Checks, with the gate up and all acks in, that found a vCPU in
        /// guest mode or in its guest section (one per vCPU found).
        model_gate_violations: "check",
        /// Events the modelled timeline rules out: an entry refused with the
        /// gate down, a kick to a vCPU outside its guest section.
        model_anomalies: "check",
        /// vCPU entries into the guest.
        model_entries: "vcpu",
        /// Guest sections that ended on their own (not by a kick).
        model_natural_exits: "vcpu",
        /// vCPUs held out of the guest by a kick: kicked, or refused entry.
        model_held_out: "gate",
        /// Modelled nanoseconds vCPUs spent held out, summed over vCPUs.
        model_gated_ns: "gate",
    }
}

/// The results of one run with `nr_vcpus` vCPUs.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// vCPUs.
    pub nr_vcpus: usize,
    /// Per kick: modelled kick cost (sends + wait for the slowest ack), ns.
    pub kick_cost_ns: Vec<u64>,
    /// Per kick: vCPUs found in guest mode and kicked.
    pub kicked: Vec<u32>,
    /// Per kick: modelled vCPU time held out by the gate, summed over vCPUs.
    pub gated_ns: Vec<u64>,
    /// Per kick: vCPUs held out (kicked or refused entry).
    pub held_out: Vec<u32>,
    /// The policy's counters at the end, `(name, value)`.
    pub policy_counters: Vec<(&'static str, u64)>,
    /// The model's counters at the end, `(name, value)`.
    pub model_counters: Vec<(&'static str, u64)>,
    /// Host time the run took, ns.
    pub host_ns: u64,
}

impl RunResult {
    /// The policy counter `name` (panics on an unknown name).
    pub fn policy(&self, name: &str) -> u64 {
        lookup(&self.policy_counters, name)
    }

    /// The model counter `name` (panics on an unknown name).
    pub fn model(&self, name: &str) -> u64 {
        lookup(&self.model_counters, name)
    }
}

fn lookup(list: &[(&'static str, u64)], name: &str) -> u64 {
    list.iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, v)| v)
        .unwrap_or_else(|| panic!("no counter {name}"))
}

fn snapshot<T: CounterTable>(table: &T) -> Vec<(&'static str, u64)> {
    let mut out = Vec::new();
    table.for_each_counter(&mut |desc, cell| out.push((desc.name, cell.get())));
    out
}

/// "No time": a round that does not exist, an event that is not scheduled.
const NEVER: u64 = u64::MAX;

const CMD_ROUND: u64 = 1;
const CMD_ADVANCE: u64 = 2;
const CMD_KICK: u64 = 3;

/// One vCPU's cells: what the policy core sees (its mode) and its mailbox.
#[derive(Default)]
struct Slot {
    /// KVM's `vcpu->mode`.
    mode: StdAtomic32,
    /// Inside the guest section (between a successful entry and the exit):
    /// the checker's second witness.
    in_guest: AtomicBool,
    /// The last command's sequence number, kind and arguments (written by
    /// the kicker only when the previous command is done).
    cmd_seq: AtomicU64,
    cmd: [AtomicU64; 3],
    /// The sequence number of the last command carried out.
    done_seq: AtomicU64,
    /// Modelled time of the vCPU's next own event ([`NEVER`] if none).
    next_ns: AtomicU64,
    /// Modelled time of the last kick's acknowledgement.
    ack_ns: AtomicU64,
}

struct Shared {
    gate: EntryGate<StdAtomic64>,
    counters: Counters<StdCounter>,
    model: ModelCounters<StdCounter>,
    slots: Vec<Slot>,
    quit: AtomicBool,
    kicker: Thread,
    /// Commands sent and not yet carried out.
    pending: AtomicUsize,
    /// A vCPU that leaves at most this many pending wakes the kicker: 0 when
    /// the kicker waits for all, `usize::MAX` when for one.
    wake_at: AtomicUsize,
}

/// What a vCPU's timeline needs, derived from the [`Config`].
#[derive(Clone, Copy)]
struct Params {
    guest_mean_ns: u64,
    exit_min_ns: u64,
    exit_max_ns: u64,
    delivery_ns: u64,
    send_ns: u64,
    seamcall_ns: u64,
    /// Probability that a round finds the vCPU in its guest section.
    p_in_guest: f64,
}

impl Params {
    fn new(cfg: &Config) -> Self {
        let a = &cfg.anchors;
        let g = cfg.guest_mean_ns as f64;
        Self {
            guest_mean_ns: cfg.guest_mean_ns,
            exit_min_ns: a.exit_min_ns,
            exit_max_ns: a.exit_max_ns,
            delivery_ns: a.ipi_delivery_ns(),
            send_ns: a.ipi_send_ns(),
            seamcall_ns: a.seamcall_ns,
            p_in_guest: g / (g + a.exit_mean_ns() as f64),
        }
    }
}

/// A vCPU's modelled state.
#[derive(Clone, Copy, Debug)]
enum VState {
    /// In its guest section (mode `IN_GUEST_MODE`, or `EXITING_GUEST_MODE`
    /// once kicked) until `exit_at`.
    Guest { exit_at: u64 },
    /// Outside the guest; tries to enter at `enter_at`. `held_from` is set
    /// after a kick: when the kick stopped the guest.
    Host {
        enter_at: u64,
        held_from: Option<u64>,
    },
    /// Refused entry by the gate at (or held out since) `since`; enters when
    /// the gate is lowered.
    Refused { since: u64 },
}

impl VState {
    fn next_event(self) -> u64 {
        match self {
            Self::Guest { exit_at } => exit_at,
            Self::Host { enter_at, .. } => enter_at,
            Self::Refused { .. } => NEVER,
        }
    }
}

/// The vCPU thread's side.
struct Vcpu<'s> {
    sh: &'s Shared,
    slot: &'s Slot,
    p: Params,
    rng: Rng,
    st: VState,
}

impl Vcpu<'_> {
    fn round_trip(&mut self) -> u64 {
        self.rng.range(self.p.exit_min_ns, self.p.exit_max_ns)
    }

    /// The real entry, at modelled time `at`.
    fn enter(&mut self, at: u64, held_from: Option<u64>) {
        match vcpu_try_enter(&self.sh.gate, &self.slot.mode) {
            Ok(()) => {
                self.slot.in_guest.store(true, Ordering::SeqCst);
                self.sh.model.model_entries.add(1);
                self.st = VState::Guest {
                    exit_at: at + self.rng.exp(self.p.guest_mean_ns),
                };
            }
            Err(_) => {
                self.sh.counters.entries_refused.add(1);
                self.st = VState::Refused {
                    since: held_from.unwrap_or(at),
                };
            }
        }
    }

    /// The real exit.
    fn leave(&self) {
        self.slot.in_guest.store(false, Ordering::SeqCst);
        vcpu_exit(&self.slot.mode);
    }

    /// Carries out every own event before modelled time `t`.
    fn advance(&mut self, t: u64) {
        loop {
            match self.st {
                VState::Guest { exit_at } if exit_at < t => {
                    self.leave();
                    self.sh.model.model_natural_exits.add(1);
                    self.st = VState::Host {
                        enter_at: exit_at + self.round_trip(),
                        held_from: None,
                    };
                }
                VState::Host {
                    enter_at,
                    held_from,
                } if enter_at < t => self.enter(enter_at, held_from),
                _ => break,
            }
        }
    }

    /// A kick sent at `send_at`, whose TD exit takes `exit_ns`: leave guest
    /// mode and acknowledge; returns the modelled time of the ack.
    fn kick(&mut self, send_at: u64, exit_ns: u64) -> u64 {
        let deliver = send_at + self.p.delivery_ns;
        let VState::Guest { exit_at } = self.st else {
            // The kicker saw this vCPU in guest mode: the timeline says it
            // must be in its guest section.
            self.sh.model.model_anomalies.add(1);
            return deliver;
        };
        self.leave();
        if exit_at < deliver {
            // Its own exit came first; the IPI is taken outside the guest.
            self.sh.model.model_natural_exits.add(1);
            let enter_at = (exit_at + self.round_trip()).max(deliver);
            self.st = VState::Host {
                enter_at,
                held_from: None,
            };
            deliver
        } else {
            // The IPI stops the guest at `deliver`; the vCPU is out after
            // the TD exit and tries to re-enter at once.
            let out = exit_at.min(deliver + exit_ns);
            self.st = VState::Host {
                enter_at: out,
                held_from: Some(deliver),
            };
            out
        }
    }

    /// Ends the previous round (its gate dropped at `prev_tl`, if any) and
    /// starts the next at `t0` (if not [`NEVER`]).
    fn round(&mut self, prev_tl: u64, t0: u64) {
        if let VState::Refused { since } = self.st {
            if prev_tl != NEVER {
                self.sh.model.model_held_out.add(1);
                self.sh.model.model_gated_ns.add(prev_tl - since);
                self.enter(prev_tl, None);
                if matches!(self.st, VState::Refused { .. }) {
                    self.sh.model.model_anomalies.add(1);
                }
            }
        }
        // Between rounds time passes unmodelled: leave the guest, then start
        // from the stationary state.
        if self.slot.mode.load_acquire() != OUTSIDE_GUEST_MODE
            || self.slot.in_guest.load(Ordering::SeqCst)
        {
            self.leave();
        }
        if t0 == NEVER {
            return;
        }
        if self.rng.unit() < self.p.p_in_guest {
            // Entered before t0: the residual of an exponential section is
            // exponential with the same mean.
            self.enter(t0, None);
            if matches!(self.st, VState::Refused { .. }) {
                self.sh.model.model_anomalies.add(1);
            }
        } else {
            let rt = self.round_trip();
            self.st = VState::Host {
                enter_at: t0 + self.rng.range(0, rt),
                held_from: None,
            };
        }
    }

    fn run(mut self) {
        let mut seen = 0;
        loop {
            let seq = loop {
                if self.sh.quit.load(Ordering::Acquire) {
                    return;
                }
                let s = self.slot.cmd_seq.load(Ordering::Acquire);
                if s != seen {
                    break s;
                }
                thread::park();
            };
            seen = seq;
            let [kind, a, b] = [0, 1, 2].map(|j| self.slot.cmd[j].load(Ordering::Relaxed));
            match kind {
                CMD_ROUND => self.round(a, b),
                CMD_ADVANCE => self.advance(a),
                CMD_KICK => {
                    let ack = self.kick(a, b);
                    self.slot.ack_ns.store(ack, Ordering::Relaxed);
                }
                _ => self.sh.model.model_anomalies.add(1),
            }
            self.slot
                .next_ns
                .store(self.st.next_event(), Ordering::Relaxed);
            self.slot.done_seq.store(seq, Ordering::SeqCst);
            let left = self.sh.pending.fetch_sub(1, Ordering::SeqCst) - 1;
            if left <= self.sh.wake_at.load(Ordering::SeqCst) {
                self.sh.kicker.unpark();
            }
        }
    }
}

/// The kicker's side: the [`VcpuSet`] and [`Clock`] the [`Executor`] uses,
/// over modelled time.
struct Kicker<'s> {
    sh: &'s Shared,
    threads: Vec<Thread>,
    p: Params,
    deadline: Duration,
    rng: RefCell<Rng>,
    /// The kicker's modelled clock.
    now: Cell<u64>,
    /// When the gate went up in this round.
    raised_at: Cell<u64>,
    /// This round's kick: cost and vCPUs kicked.
    kick_cost: Cell<Option<u64>>,
    kicked: Cell<u32>,
    failed: Cell<Option<&'static str>>,
}

impl Kicker<'_> {
    fn command(&self, i: usize, kind: u64, a: u64, b: u64) {
        let slot = &self.sh.slots[i];
        for (cell, v) in slot.cmd.iter().zip([kind, a, b]) {
            cell.store(v, Ordering::Relaxed);
        }
        let seq = slot.cmd_seq.load(Ordering::Relaxed) + 1;
        self.sh.pending.fetch_add(1, Ordering::SeqCst);
        slot.cmd_seq.store(seq, Ordering::Release);
        self.threads[i].unpark();
    }

    fn done(&self, i: usize) -> bool {
        let slot = &self.sh.slots[i];
        slot.done_seq.load(Ordering::SeqCst) == slot.cmd_seq.load(Ordering::Relaxed)
    }

    /// Waits (host time, bounded) until `cond`; records a failure if the
    /// deadline passes. `all` says that `cond` waits for every pending
    /// command, so that only the last vCPU to finish needs to wake the
    /// kicker.
    fn wait(&self, what: &'static str, all: bool, cond: impl Fn() -> bool) -> bool {
        // Ordered before `cond`'s reads, as each vCPU orders its `done_seq`
        // before its read of `wake_at`: either the kicker sees the vCPU done
        // or the vCPU sees this value.
        let wake_at = if all { 0 } else { usize::MAX };
        self.sh.wake_at.store(wake_at, Ordering::SeqCst);
        let end = Instant::now() + self.deadline;
        while !cond() {
            let now = Instant::now();
            if now >= end {
                self.failed.set(Some(what));
                return false;
            }
            // A bound on each sleep as well, in case a wake-up is missed.
            thread::park_timeout((end - now).min(Duration::from_millis(10)));
        }
        true
    }

    fn all_done(&self) -> bool {
        (0..self.sh.slots.len()).all(|i| self.done(i))
    }

    /// Sends `kind(a, b)` to every vCPU and waits for all.
    fn broadcast(&self, kind: u64, a: u64, b: u64) {
        for i in 0..self.sh.slots.len() {
            self.command(i, kind, a, b);
        }
        self.wait("a round to start", true, || self.all_done());
    }

    /// Lets every vCPU carry out its events before modelled time `t`.
    fn advance_all(&self, t: u64) {
        let mut any = false;
        for (i, slot) in self.sh.slots.iter().enumerate() {
            if slot.next_ns.load(Ordering::Relaxed) < t {
                self.command(i, CMD_ADVANCE, t, 0);
                any = true;
            }
        }
        if any {
            self.wait("the vCPUs to advance", true, || self.all_done());
        }
    }

    /// Lets vCPU `i` carry out its events before modelled time `t`.
    fn advance_one(&self, i: usize, t: u64) {
        if self.sh.slots[i].next_ns.load(Ordering::Relaxed) < t {
            self.command(i, CMD_ADVANCE, t, 0);
            self.wait("a vCPU to advance", false, || self.done(i));
        }
    }

    /// The invariant, with the gate up: no vCPU in guest mode or in its
    /// guest section.
    fn check_no_vcpu_in_guest(&self) {
        for slot in &self.sh.slots {
            if slot.mode.load_acquire() != OUTSIDE_GUEST_MODE
                || slot.in_guest.load(Ordering::SeqCst)
            {
                self.sh.model.model_gate_violations.add(1);
            }
        }
    }
}

impl VcpuSet for Kicker<'_> {
    type Kick = KickMask;

    fn nr_vcpus(&self) -> usize {
        self.sh.slots.len()
    }

    /// Brings vCPU `i` up to the kicker's modelled time, then KVM's
    /// `kvm_vcpu_exiting_guest_mode()` on its mode.
    fn exiting_guest_mode(&self, i: usize) -> u32 {
        self.advance_one(i, self.now.get());
        exiting_guest_mode(&self.sh.slots[i].mode)
    }

    fn begin_kick(&self) -> KickMask {
        KickMask::new()
    }

    /// One IPI: the send costs the kicker [`Anchors::ipi_send_ns`]; the
    /// vCPU gets the kick as a command with the send time and its TD exit.
    fn send_kick(&self, kick: &mut KickMask, i: usize) {
        let t = self.now.get() + self.p.send_ns;
        self.now.set(t);
        let exit_ns = self
            .rng
            .borrow_mut()
            .range(self.p.exit_min_ns, self.p.exit_max_ns);
        self.command(i, CMD_KICK, t, exit_ns);
        kick.set(i);
    }

    fn wait_for_acks(&self, kick: KickMask) -> Result<(), KickTimeout> {
        // Only kicks are pending: every other command was waited for.
        if !self.wait("kick acknowledgements", true, || {
            kick.iter().all(|i| self.done(i))
        }) {
            return Err(KickTimeout);
        }
        let last_ack = kick
            .iter()
            .map(|i| self.sh.slots[i].ack_ns.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0);
        self.now.set(self.now.get().max(last_ack));
        self.kick_cost
            .set(Some(self.now.get() - self.raised_at.get()));
        self.kicked.set(kick.count() as u32);
        self.check_no_vcpu_in_guest();
        Ok(())
    }
}

impl Clock for Kicker<'_> {
    /// The kicker's modelled time: what the executor's `gate_wait_ns`
    /// counter adds up is modelled kick cost.
    fn now_ns(&self) -> u64 {
        self.now.get()
    }
}

/// The SEAMCALLs of a round: busy once, then success; each costs
/// [`Anchors::seamcall_ns`] of the kicker's modelled time.
struct ModelSeamcall<'k, 's> {
    k: &'k Kicker<'s>,
    calls: u32,
}

impl Seamcall for ModelSeamcall<'_, '_> {
    fn seamcall(&mut self, _op: &SeptOp) -> Status {
        self.calls += 1;
        let k = self.k;
        let end = k.now.get() + k.p.seamcall_ns;
        if self.calls == 1 {
            // The gate goes up right after this returns: every vCPU first
            // carries out what came before, with the gate still down.
            k.advance_all(end);
            k.now.set(end);
            k.raised_at.set(end);
            return Status::from_raw(TDX_OPERAND_BUSY | u64::from(TDX_OPERAND_ID_RCX));
        }
        // The retry, gate up: every vCPU tries the entries its timeline
        // holds until the retry ends (and the gate drops), against the real
        // gate.
        k.advance_all(end);
        k.check_no_vcpu_in_guest();
        k.now.set(end);
        Status::SUCCESS
    }
}

/// The SPTE of the faulting page before and after the map (any values but
/// `FROZEN_SPTE`).
const OLD_SPTE: u64 = SHADOW_NONPRESENT_VALUE;
const NEW_SPTE: u64 = 0x1000 | 0x7;

/// Runs the model with `n` vCPUs (1 to [`MAX_VCPUS`]).
pub fn run(n: usize, cfg: &Config) -> Result<RunResult, ModelError> {
    cfg.validate()?;
    if n == 0 || n > MAX_VCPUS {
        return Err(ModelError::Config(format!(
            "vCPUs must be 1 to {MAX_VCPUS}, not {n}"
        )));
    }
    let wall = WallClock::new();
    let p = Params::new(cfg);
    let sh = Shared {
        gate: EntryGate::new(StdAtomic64::new(0)),
        counters: Counters::new(),
        model: ModelCounters::new(),
        slots: (0..n).map(|_| Slot::default()).collect(),
        quit: AtomicBool::new(false),
        kicker: thread::current(),
        pending: AtomicUsize::new(0),
        wake_at: AtomicUsize::new(usize::MAX),
    };
    let stream = |i: u64| (n as u64) << 32 | i;
    let mut rounds = Rounds::default();
    let result = thread::scope(|s| {
        let mut threads = Vec::with_capacity(n);
        for i in 0..n {
            let vcpu = Vcpu {
                sh: &sh,
                slot: &sh.slots[i],
                p,
                rng: Rng::new(cfg.seed, stream(i as u64)),
                st: VState::Host {
                    enter_at: NEVER,
                    held_from: None,
                },
            };
            let handle = thread::Builder::new()
                .name(format!("vcpu{i}"))
                .stack_size(128 * 1024)
                .spawn_scoped(s, move || vcpu.run())
                .map_err(|e| ModelError::Config(format!("cannot start a vCPU thread: {e}")));
            match handle {
                Ok(h) => threads.push(h.thread().clone()),
                Err(e) => {
                    sh.quit.store(true, Ordering::Release);
                    threads.iter().for_each(Thread::unpark);
                    return Err(e);
                }
            }
        }
        let kicker = Kicker {
            sh: &sh,
            threads,
            p,
            deadline: cfg.deadline,
            rng: RefCell::new(Rng::new(cfg.seed, stream(u64::from(u32::MAX)))),
            now: Cell::new(0),
            raised_at: Cell::new(0),
            kick_cost: Cell::new(None),
            kicked: Cell::new(0),
            failed: Cell::new(None),
        };
        let r = rounds.run(&kicker, cfg);
        sh.quit.store(true, Ordering::Release);
        kicker.threads.iter().for_each(Thread::unpark);
        r
    });
    result?;
    Ok(RunResult {
        nr_vcpus: n,
        kick_cost_ns: rounds.cost,
        kicked: rounds.kicked,
        gated_ns: rounds.gated,
        held_out: rounds.held_out,
        policy_counters: snapshot(&sh.counters),
        model_counters: snapshot(&sh.model),
        host_ns: wall.now_ns(),
    })
}

/// Per-kick records.
#[derive(Default)]
struct Rounds {
    cost: Vec<u64>,
    kicked: Vec<u32>,
    gated: Vec<u64>,
    held_out: Vec<u32>,
}

impl Rounds {
    fn run(&mut self, k: &Kicker<'_>, cfg: &Config) -> Result<(), ModelError> {
        let sh = k.sh;
        let exec = Executor::new(Policy::DEFAULT, &sh.gate, k, &sh.counters, k);
        let spte = StdAtomic64::new(OLD_SPTE);
        let op = SeptOp::new_4k(Leaf::MemPageAug, 0x1000);
        let period = cfg.period_ns();
        let mut prev_tl = NEVER;
        for r in 0..=u64::from(cfg.kicks) {
            let t0 = if r == u64::from(cfg.kicks) {
                NEVER
            } else {
                (r + 1) * period
            };
            // Ends the previous round (gated vCPUs enter) and starts this one.
            let (gated0, held0) = (sh.model.model_gated_ns.get(), sh.model.model_held_out.get());
            k.broadcast(CMD_ROUND, prev_tl, t0);
            if r > 0 {
                self.gated.push(sh.model.model_gated_ns.get() - gated0);
                self.held_out
                    .push((sh.model.model_held_out.get() - held0) as u32);
            }
            if let Some(what) = k.failed.get() {
                return Err(ModelError::Deadline(what));
            }
            if t0 == NEVER {
                break;
            }
            k.now.set(t0);
            k.kick_cost.set(None);
            k.kicked.set(0);
            spte.store_release(OLD_SPTE);
            let mut seamcall = ModelSeamcall { k, calls: 0 };
            let out = exec.run_on_spte(&spte, OLD_SPTE, NEW_SPTE, &op, &mut seamcall);
            if let Some(what) = k.failed.get() {
                return Err(ModelError::Deadline(what));
            }
            match (out, k.kick_cost.get()) {
                (Ok(Outcome::Done { tries: 2 }), Some(cost)) if !sh.gate.is_raised() => {
                    self.cost.push(cost);
                    self.kicked.push(k.kicked.get());
                }
                (other, _) => {
                    return Err(ModelError::Outcome(format!(
                        "round {r}: {other:?}, gate count {}",
                        sh.gate.raised_count()
                    )))
                }
            }
            prev_tl = k.now.get();
        }
        Ok(())
    }
}
