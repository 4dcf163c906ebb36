// SPDX-License-Identifier: GPL-2.0

//! Host implementations of the platform traits, shared by the tests.

#![allow(dead_code, unreachable_pub)]

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};

use tdx_sept_guard_policy::gate::OUTSIDE_GUEST_MODE;
use tdx_sept_guard_policy::{
    exiting_guest_mode, Atomic32, Clock, CounterCell, Counters, EntryGate, KickTimeout, Seamcall,
    SeptOp, Status, VcpuSet,
};

/// `Atomic64` over `std` atomics; fully ordered RMWs are `SeqCst`.
#[derive(Debug, Default)]
pub struct HostAtomic(AtomicU64);

impl HostAtomic {
    pub fn new(v: u64) -> Self {
        Self(AtomicU64::new(v))
    }
}

/// `Atomic32` over `std` atomics, for vCPU modes; fully ordered RMWs are
/// `SeqCst`.
#[derive(Debug, Default)]
pub struct HostAtomic32(AtomicU32);

impl HostAtomic32 {
    pub fn new(v: u32) -> Self {
        Self(AtomicU32::new(v))
    }
}

include!("atomics.rs");
impl_atomic!(Atomic64 for HostAtomic);
impl_atomic!(Atomic32 for HostAtomic32);

/// `CounterCell` over a relaxed `std` atomic.
#[derive(Debug, Default)]
pub struct HostCounter(AtomicU64);

impl CounterCell for HostCounter {
    fn add(&self, n: u64) {
        self.0.fetch_add(n, Relaxed);
    }
    fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
    fn reset(&self) {
        self.0.store(0, Relaxed)
    }
}

pub type HostCounters = Counters<HostCounter>;

/// A clock that advances by `step` ns on every read.
pub struct StepClock {
    now: Cell<u64>,
    step: u64,
}

impl StepClock {
    pub fn new(step: u64) -> Self {
        Self {
            now: Cell::new(0),
            step,
        }
    }
}

impl Clock for StepClock {
    fn now_ns(&self) -> u64 {
        let t = self.now.get() + self.step;
        self.now.set(t);
        t
    }
}

/// A SEAMCALL issuer from a closure.
pub struct FnSeamcall<F: FnMut(&SeptOp) -> Status>(pub F);

impl<F: FnMut(&SeptOp) -> Status> Seamcall for FnSeamcall<F> {
    fn seamcall(&mut self, op: &SeptOp) -> Status {
        (self.0)(op)
    }
}

/// Returns the scripted statuses in turn, then `after` forever; counts calls.
pub struct Script {
    pub statuses: Vec<Status>,
    pub after: Status,
    pub calls: usize,
}

impl Script {
    pub fn new(statuses: &[u64]) -> Self {
        Self::then(statuses, 0)
    }
    pub fn then(statuses: &[u64], after: u64) -> Self {
        Self {
            statuses: statuses.iter().copied().map(Status::from_raw).collect(),
            after: Status::from_raw(after),
            calls: 0,
        }
    }
}

impl Seamcall for Script {
    fn seamcall(&mut self, _op: &SeptOp) -> Status {
        let st = self.statuses.get(self.calls).copied().unwrap_or(self.after);
        self.calls += 1;
        st
    }
}

/// Single-threaded vCPUs: a kick makes the vCPU leave guest mode at once
/// (it "exits and acks"), unless `ack` is false, which makes the wait time out.
pub struct FakeVcpus {
    pub modes: Vec<HostAtomic32>,
    pub ack: Cell<bool>,
    /// Every vCPU index kicked, in order.
    pub kicked: RefCell<Vec<usize>>,
    /// Number of waits.
    pub waits: Cell<usize>,
}

impl FakeVcpus {
    pub fn new(modes: &[u32]) -> Self {
        Self {
            modes: modes.iter().map(|&m| HostAtomic32::new(m)).collect(),
            ack: Cell::new(true),
            kicked: RefCell::new(Vec::new()),
            waits: Cell::new(0),
        }
    }
}

impl VcpuSet for FakeVcpus {
    type Kick = Vec<usize>;

    fn nr_vcpus(&self) -> usize {
        self.modes.len()
    }
    fn exiting_guest_mode(&self, i: usize) -> u32 {
        exiting_guest_mode(&self.modes[i])
    }
    fn begin_kick(&self) -> Vec<usize> {
        Vec::new()
    }
    fn send_kick(&self, kick: &mut Vec<usize>, i: usize) {
        kick.push(i);
        self.kicked.borrow_mut().push(i);
    }
    fn wait_for_acks(&self, kick: Vec<usize>) -> Result<(), KickTimeout> {
        self.waits.set(self.waits.get() + 1);
        if !self.ack.get() && !kick.is_empty() {
            return Err(KickTimeout);
        }
        for i in kick {
            self.modes[i].store_release(OUTSIDE_GUEST_MODE);
        }
        Ok(())
    }
}

/// A gate over a host atomic.
pub fn host_gate() -> EntryGate<HostAtomic> {
    EntryGate::new(HostAtomic::new(0))
}
