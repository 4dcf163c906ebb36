// SPDX-License-Identifier: GPL-2.0

//! KUnit benchmark: KVM 7.2's own `tdx_sept_set_private_spte()` on the
//! simulated TDX module, with and without the module's hook (the fake TD of
//! [`super::kunit`]).
//!
//! The measurements, printed as `tsg-bench-kvm:` lines that `make bench`
//! turns into table rows:
//!
//! - the hook's overhead: uncontended maps of one page without the hook and
//!   with it, in alternating batches (the hook attached and detached
//!   between them) so that drift cancels; the ratio of the medians is the
//!   result, absolute times under TCG mean little;
//! - the contended rows `kvm72` and `kvm72+hook`: a fake vCPU on CPU 1 and
//!   maps of one page through KVM's real code on CPU 0; before a fixed
//!   pseudo-random half of them the vCPU is made to hold the page's S-EPT
//!   entry (a long ACCEPT, [`HOLD_US`] at most per guest entry or until
//!   kicked, then [`FREE_US`] out of the guest and again), before the others
//!   it is made to let go. Without the hook the caller retries on `-EBUSY`
//!   as `tdx_handle_ept_violation()`'s local retry does (bounded here by
//!   [`RETRY_CAP`]); with it, the hook kicks and retries inside the one
//!   call. SEAMCALLs are counted at the simulated TDX module;
//! - the hot path: 1, 2 and 3 mappers, kthreads on CPUs of their own, map
//!   and unmap pages of their own on one fake TD, in rounds that start
//!   every mapper's maps together; with the hook attached, the rounds
//!   alternate between calls without it (KVM's function entered past its
//!   ftrace call site, the code that runs when nothing is attached) and
//!   calls through it. Only the map calls are timed (inside the read side
//!   of `mmu_lock`, its acquisition not included): KVM's unmap runs under
//!   the write side and so serializes the mappers whatever the hook does.
//!   The result is the hook's cost per map and whether it grows with the
//!   number of concurrent mappers;
//! - what the latency histograms cost per map and per record
//!   ([`crate::platform::latency::recording_cost`]);
//! - zero-step on KVM, the two responses: fake vCPUs on CPUs of their own
//!   loop as KVM's vCPU threads do (enter, EPT violation, map their own
//!   fresh page through KVM's function, enter again) with the simulated TDX
//!   module's zero-step mitigation engaged by its own rules, under
//!   `upstream72`, the shipped response (option B: the tracepoints only
//!   observe, the map path kicks and retries on busy) and option A (the
//!   gate raised at `kvm_page_fault` and held until that vCPU's fault is
//!   mapped), in rotating order in one boot ([`zero_step_row`]);
//! - the emulation slowdown's guest side ([`calibrate`]): a fixed loop of C
//!   (`kunit/c/calibrate.c`) timed in this kernel under TCG; `make bench`
//!   times the same loop natively on the host, and divides the hot path's
//!   added time per map by the ratio for an estimate of the native one.
//!
//! Fixed sizes, no module parameters; only sanity assertions (every map
//! done, no VM stop), never timing ones.

use kernel::macros::kunit_tests;

use super::bindings::ffi::{
    tsg_fake_nonpresent_spte,
    tsg_fake_present_leaf_spte,
    tsg_fake_td_read_lock,
    tsg_fake_td_read_unlock,
    tsg_fake_td_set_private_spte,
    tsg_fake_td_write_lock,
    tsg_fake_td_write_unlock, //
};
use super::kunit::{
    attach,
    attach_holding,
    kvm_map_gpa,
    kvm_map_x,
    kvm_unmap_x,
    total,
    FakeTd,
    FakeVcpu,
    BUSY_STATUSES,
    PG_LEVEL_4K,
    SEAMCALLS,
    SEAMCALLS_ON,
    X, //
};
use super::{
    bindings::{
        ffi::{
            tsg_fake_trace_exit,
            tsg_fake_trace_page_fault,
            tsg_fake_vcpu_enter,
            tsg_fake_vcpu_exit, //
        },
        kvm,
        kvm_vcpu,
        Td, //
    },
    executor::GATE_HELD_NS,
    hooks,
    state::hold,
    Unavailable,
    TARGET, //
};
use crate::kunit::ffi::{
    tsg_calibrate_loop,
    TSG_CALIBRATE_ITERATIONS, //
};
use crate::platform::{
    irq::IrqsOff,
    thread::{
        run_on_cpu,
        sleep_ms,
        Thread,
        ThreadBody,
        ThreadCtx, //
    },
};
use crate::policy::{
    CounterCell,
    Policy, //
};
use crate::sim::spin::spin_us;
use crate::sim::tdx_module::{
    Accept,
    Enter,
    TdxModule,
    ZeroStepState,
    STEPPING_EPF_THRESHOLD, //
};
use kernel::{
    alloc::KVVec,
    new_mutex,
    prelude::*,
    processor::cpu_relax,
    sync::{
        atomic::{
            Acquire,
            Atomic,
            Full,
            Relaxed,
            Release, //
        },
        rcu,
        Arc,
        Mutex, //
    },
    time::{
        Instant,
        Monotonic, //
    },
};

/// Uncontended maps per batch and side (the first of each batch, a warm-up,
/// is not counted).
const OVERHEAD_OPS: usize = 200;
/// Batches per side, alternating which side goes first.
const OVERHEAD_BATCHES: usize = 8;
/// Contended maps per row.
const CONTENDED_OPS: usize = 200;
/// The hog's longest hold of the entry per guest entry, and its time out of
/// the guest between entries.
const HOLD_US: u32 = 200;
const FREE_US: u32 = 50;
/// KVM's local retry has no bound; this one does, so that the suite cannot
/// hang. Hitting it is reported.
const RETRY_CAP: u32 = 200_000;
/// The hook's kick deadline: generous, for TCG.
const KICK_TIMEOUT_US: u32 = 1_000_000;

/// The hot path's mappers, by CPU: the first N for N mappers. No fake vCPU
/// thread runs in that case; CPU 1, the fake vCPU's, is left out all the
/// same, and the batches are driven from there.
const HOT_CPUS: [u32; 3] = [0, 2, 3];
/// Pages each mapper maps (and then unmaps) per round, its own: mapper `i`
/// has the pages `1 + 5i` to `5 + 5i` of the S-EPT table `FakeTd::new()`
/// adds (pages 0 to 15).
const HOT_PAGES: u64 = 5;
/// How long the counted rounds of one mapper count run (after two warm-up
/// rounds, one of each kind), and those of the check with the hook
/// detached.
const HOT_RUN_MS: u64 = 1000;
const HOT_CHECK_MS: u64 = 400;
/// The counted time of each mapper count is split into this many batches,
/// run in rotation (1, 2, 3 mappers, 1, 2, 3, ...), so that the emulator's
/// drift over the run falls on every mapper count alike.
const HOT_CYCLES: u64 = 5;
/// Rounds 0 and 1 warm up (one of each kind), the others are counted.
const HOT_WARM_ROUNDS: u32 = 2;
/// The most maps of each kind a mapper records.
const HOT_MAX_MAPS: usize = 16384;
/// A map that took longer than this is counted as `slow` and left out of
/// the trimmed mean: under TCG that is an emulated CPU the host did not run
/// for a while (an uncontended map takes 5 to 30 µs there).
const HOT_SLOW_NS: u64 = 1_000_000;
/// Timed runs of the emulation-slowdown loop ([`calibrate`]).
const CALIBRATE_REPS: usize = 5;

/// A mapper waiting this long for the others to finish a round gives up,
/// and the batch with it (a failed map on another mapper, or a hang).
const HOT_BARRIER_TIMEOUT_NS: u64 = 2_000_000_000;

/// One map of X on the current CPU, retried as KVM's local retry does while
/// `-EBUSY`: (KVM's last result, calls made, ns).
fn map_retrying(orig: usize, kvm: *mut kvm) -> (i32, u32, u64) {
    let start = Instant::<Monotonic>::now();
    let mut calls = 0;
    let ret = loop {
        calls += 1;
        // SAFETY: The fake TD is live while its owner waits for this, and
        // `orig` is KVM's function (the callers' contract).
        let r = unsafe { kvm_map_x(orig, kvm) };
        if r != EBUSY.to_errno() || calls >= RETRY_CAP {
            break r;
        }
        cpu_relax();
    };
    let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(0);
    (ret, calls, ns)
}

/// KVM's zap of X under the write side of `mmu_lock`.
fn unmap(orig: usize, kvm: *mut kvm) -> i32 {
    // SAFETY: As in `map_retrying`.
    unsafe { kvm_unmap_x(orig, kvm) }
}

/// What a run of maps (each followed by an unmap, not timed) left.
struct Run {
    /// Per map: ns, and SEAMCALLs it took.
    ns: KVec<u64>,
    seamcalls: KVec<u64>,
    /// Maps that did not end in success (the retry cap, an error), and
    /// unmaps that failed.
    failed: u32,
    capped: u32,
    unmap_failed: u32,
    /// Maps the hog was armed for, and waits for the hog that timed out.
    contended: u32,
    unarmed: u32,
}

/// Waits (bounded: 100 ms) until the guest holds X's entry, or no longer
/// does. Returns whether it came to that.
fn wait_for_hold(vcpu: &FakeVcpu, held: bool) -> bool {
    let start = Instant::<Monotonic>::now();
    while vcpu.module.page_locked(X) != held {
        if start.elapsed().as_nanos() > 100_000_000 {
            return false;
        }
        cpu_relax();
    }
    true
}

/// `ops` maps and unmaps of X on CPU 0, away from the vCPU. With `hog`, a
/// fixed pseudo-random half of the maps meet the vCPU holding X's entry: the
/// hog is armed before those and the map starts once the guest holds the
/// entry; before the others it is disarmed and the entry free. So both rows
/// meet the same contention, whatever the emulator's timing.
fn run_maps(td: &FakeTd, ops: usize, hog: Option<Arc<FakeVcpu>>) -> Result<Run> {
    let orig = hooks::lookup(TARGET).ok_or(ENOENT)?;
    let kvm = td.kvm as usize;
    let ns = KVec::with_capacity(ops, GFP_KERNEL)?;
    let seamcalls = KVec::with_capacity(ops, GFP_KERNEL)?;
    let mut run = Run {
        ns,
        seamcalls,
        failed: 0,
        capped: 0,
        unmap_failed: 0,
        contended: 0,
        unarmed: 0,
    };
    run_on_cpu(0, move || {
        let kvm = kvm as *mut kvm;
        let mut seed: u32 = 0x2545_f491;
        for _ in 0..ops {
            if let Some(vcpu) = &hog {
                // xorshift32, fixed seed.
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                let contend = seed % 2 == 0;
                vcpu.hog.store(if contend { X + 1 } else { 0 }, Release);
                if !wait_for_hold(vcpu, contend) {
                    run.unarmed += 1;
                }
                run.contended += u32::from(contend);
            }
            let before = SEAMCALLS.load(Relaxed);
            let (ret, calls, ns) = map_retrying(orig, kvm);
            let seamcalls = SEAMCALLS.load(Relaxed) - before;
            // Capacity reserved above: these never allocate.
            let _ = run.ns.push(ns, GFP_ATOMIC);
            let _ = run.seamcalls.push(seamcalls, GFP_ATOMIC);
            if ret != 0 {
                run.failed += 1;
                if calls >= RETRY_CAP {
                    run.capped += 1;
                }
                continue;
            }
            if unmap(orig, kvm) != 0 {
                run.unmap_failed += 1;
                break;
            }
        }
        run
    })
}

/// The sorted copy's value at quantile `q` (per mille).
fn quantile(sorted: &[u64], per_mille: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[(sorted.len() * per_mille / 1000).min(sorted.len() - 1)]
}

fn sorted(v: &[u64]) -> Result<KVec<u64>> {
    let mut out = KVec::with_capacity(v.len(), GFP_KERNEL)?;
    out.extend_from_slice(v, GFP_KERNEL)?;
    out.sort_unstable();
    Ok(out)
}

fn mean(v: &[u64]) -> u64 {
    if v.is_empty() {
        0
    } else {
        v.iter().sum::<u64>() / v.len() as u64
    }
}

/// One contended row's line, and what the sanity checks need.
struct Row {
    failed: u32,
    unmap_failed: u32,
    vm_stops: u64,
    ops: usize,
}

fn contended_row(hook: bool) -> Result<Row> {
    let backend = if hook {
        Some(attach(KICK_TIMEOUT_US).map_err(Unavailable::errno)?)
    } else {
        None
    };
    let mut td = FakeTd::new()?;
    let vcpu = td.start_vcpu_cycling(Some(X), false, HOLD_US, FREE_US)?;
    let run = run_maps(&td, CONTENDED_OPS, Some(vcpu.clone()))?;
    let kicks_seen = vcpu.kicks_seen.load(Relaxed);
    let (kicks, stops) = match &backend {
        Some(b) => (
            total(b, "kicks"),
            b.state.attach_totals().kvm_vm_stops.get(),
        ),
        None => (0, 0),
    };
    let bugged = td.td().is_bugged();
    drop(td);
    drop(backend);
    let ns = sorted(&run.ns)?;
    let sc = sorted(&run.seamcalls)?;
    // KVM 7.2 itself never stops the VM on a busy AUG; a bugged TD is one.
    let vm_stops = stops.max(u64::from(bugged));
    let sc_total: u64 = run.seamcalls.iter().sum();
    pr_info!(
        "tsg-bench-kvm: row={} ops={} seamcalls={} seamcalls_mean={}.{:03} seamcalls_max={} p50_ns={} p99_ns={} max_ns={} kicks={} vm_stops={} failed={} capped={} unmap_failed={} contended={} unarmed={} busy_ops={} guest_kicks_seen={}\n",
        if hook { "kvm72+hook" } else { "kvm72" },
        run.ns.len(),
        sc_total,
        sc_total / run.ns.len().max(1) as u64,
        (sc_total * 1000 / run.ns.len().max(1) as u64) % 1000,
        sc.last().copied().unwrap_or(0),
        quantile(&ns, 500),
        quantile(&ns, 990),
        ns.last().copied().unwrap_or(0),
        kicks,
        vm_stops,
        run.failed,
        run.capped,
        run.unmap_failed,
        run.contended,
        run.unarmed,
        run.seamcalls.iter().filter(|&&n| n > 1).count(),
        kicks_seen,
    );
    Ok(Row {
        failed: run.failed,
        unmap_failed: run.unmap_failed,
        vm_stops,
        ops: run.ns.len(),
    })
}

/// What the mappers of one hot-path batch share: a barrier that starts each
/// round's maps together, and the batch's clock.
struct HotBatch {
    mappers: u32,
    /// How long the counted rounds run.
    run_ns: u64,
    base: Instant<Monotonic>,
    /// The barrier: mappers arrived, and rounds begun.
    arrived: Atomic<u32>,
    generation: Atomic<u32>,
    /// No further round (the time is up), or give up (a failure).
    stop: Atomic<bool>,
    abort: Atomic<bool>,
    /// Since `base`: the start of the first counted round and the end of
    /// the last one.
    begin_ns: Atomic<u64>,
    end_ns: Atomic<u64>,
    /// Mappers inside a map call right now (counted outside the timing).
    inside: Atomic<u32>,
    /// Mappers that have finished.
    done: Atomic<u32>,
}

impl HotBatch {
    fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos().unsigned_abs()
    }

    /// Waits until every mapper has arrived. The last to arrive decides for
    /// all whether another round runs: the counted ones run until `run_ns`
    /// has passed. Returns whether to run one.
    fn next_round(&self, ctx: &ThreadCtx) -> bool {
        let generation = self.generation.load(Acquire);
        if self.arrived.fetch_add(1, Full) + 1 == self.mappers {
            self.arrived.store(0, Relaxed);
            let now = self.now_ns();
            if generation == HOT_WARM_ROUNDS {
                self.begin_ns.store(now, Relaxed);
            } else if generation > HOT_WARM_ROUNDS
                && now - self.begin_ns.load(Relaxed) >= self.run_ns
            {
                self.end_ns.store(now, Relaxed);
                self.stop.store(true, Relaxed);
            }
            self.generation.store(generation + 1, Release);
        } else {
            let start = self.now_ns();
            while self.generation.load(Acquire) == generation {
                if self.abort.load(Relaxed)
                    || ctx.should_stop()
                    || self.now_ns() - start > HOT_BARRIER_TIMEOUT_NS
                {
                    self.abort.store(true, Relaxed);
                    return false;
                }
                cpu_relax();
            }
        }
        !self.stop.load(Relaxed) && !self.abort.load(Relaxed)
    }
}

/// What one mapper recorded, per kind of round.
struct MapperOut {
    /// Each counted map call's time, ns.
    ns: [KVVec<u64>; 2],
    /// Maps that began while another mapper was inside a map call.
    overlapped: [u64; 2],
    /// Map and unmap calls that did not return 0.
    failed: u32,
}

/// One hot-path mapper: its kthread maps and unmaps its own pages, round
/// after round, calling `entries[0]` in even rounds and `entries[1]` in odd
/// ones.
#[pin_data]
struct Mapper {
    batch: Arc<HotBatch>,
    entries: [usize; 2],
    kvm: usize,
    first_gpa: u64,
    #[pin]
    out: Mutex<MapperOut>,
}

/// `tdx_sept_set_private_spte()` at `entry`, as KVM's TDP MMU calls it: for
/// the 4K private page at `gpa`, a map (under the read side of `mmu_lock`)
/// or, with `unmap`, a zap (under the write side). Returns KVM's result and
/// the call's time in ns, the lock's acquisition not included.
///
/// # Safety
///
/// `kvm` is a live fake TD and `entry` KVM's `tdx_sept_set_private_spte()`,
/// or its code past the ftrace call site ([`past_ftrace_site`]).
unsafe fn timed_call(entry: usize, kvm: *mut kvm, gpa: u64, unmap: bool) -> (i32, u64) {
    // SAFETY: By the caller's contract; the SPTE values are KVM's for a 4K
    // private page, and `mmu_lock` is held as KVM's fault path (read) or
    // zap path (write) holds it.
    unsafe {
        let (old, new) = (
            tsg_fake_nonpresent_spte(),
            tsg_fake_present_leaf_spte(0x1234),
        );
        let (old, new) = if unmap { (new, old) } else { (old, new) };
        if unmap {
            tsg_fake_td_write_lock(kvm);
        } else {
            tsg_fake_td_read_lock(kvm);
        }
        let start = Instant::<Monotonic>::now();
        let r = tsg_fake_td_set_private_spte(entry, kvm, gpa >> 12, old, new, PG_LEVEL_4K);
        let ns = start.elapsed().as_nanos().unsigned_abs();
        if unmap {
            tsg_fake_td_write_unlock(kvm);
        } else {
            tsg_fake_td_read_unlock(kvm);
        }
        (r, ns)
    }
}

/// The code of KVM's function `orig` past its ftrace call site: what runs
/// when nothing is attached to it (the site is then a 5-byte NOP), whether
/// or not the hook is attached. `None` unless the function starts as this
/// kernel builds it (ENDBR64 under IBT, then the site, a NOP while nothing
/// is attached) and indirect branch tracking is off, so that a call may
/// land there.
fn past_ftrace_site(orig: usize) -> Option<usize> {
    const ENDBR64: [u8; 4] = [0xf3, 0x0f, 0x1e, 0xfa];
    const NOP5: [u8; 5] = [0x0f, 0x1f, 0x44, 0x00, 0x00];
    if hooks::ibt_enabled() {
        return None;
    }
    // SAFETY: `orig` is the start of a kernel function, whose text (longer
    // than 9 bytes) is mapped and readable.
    let text = unsafe { core::ptr::read_volatile(orig as *const [u8; 9]) };
    let site = if text[..4] == ENDBR64 { 4 } else { 0 };
    (text[site..site + 5] == NOP5).then_some(orig + site + 5)
}

impl ThreadBody for Mapper {
    fn run(&self, ctx: &ThreadCtx) {
        let batch = &self.batch;
        let kvm = self.kvm as *mut kvm;
        let mut out = core::mem::replace(
            &mut *self.out.lock(),
            MapperOut {
                ns: [KVVec::new(), KVVec::new()],
                overlapped: [0; 2],
                failed: 0,
            },
        );
        let mut round = 0u32;
        while batch.next_round(ctx) {
            let kind = (round % 2) as usize;
            let entry = self.entries[kind];
            let mut mapped = 0;
            for page in 0..HOT_PAGES {
                let gpa = self.first_gpa + (page << 12);
                let others = batch.inside.fetch_add(1, Full);
                // SAFETY: The fake TD outlives the batch (its owner waits for
                // the mappers); the entries are KVM's function or its code
                // past the ftrace site.
                let (ret, ns) = unsafe { timed_call(entry, kvm, gpa, false) };
                batch.inside.fetch_sub(1, Full);
                if ret != 0 {
                    out.failed += 1;
                    break;
                }
                mapped += 1;
                if round >= HOT_WARM_ROUNDS && out.ns[kind].len() < HOT_MAX_MAPS {
                    // Capacity reserved by the owner: never allocates.
                    let _ = out.ns[kind].push(ns, GFP_ATOMIC);
                    out.overlapped[kind] += u64::from(others > 0);
                }
            }
            for page in 0..mapped {
                // SAFETY: As above.
                let (ret, _) =
                    unsafe { timed_call(entry, kvm, self.first_gpa + (page << 12), true) };
                if ret != 0 {
                    out.failed += 1;
                }
            }
            if out.failed != 0 {
                batch.abort.store(true, Relaxed);
            }
            round += 1;
        }
        *self.out.lock() = out;
        batch.done.fetch_add(1, Release);
    }
}

/// What one batch recorded, per kind of round.
struct BatchOut {
    ns: [KVVec<u64>; 2],
    overlapped: [u64; 2],
    failed: u32,
    aborted: bool,
    /// The counted rounds' wall-clock time.
    wall_ns: u64,
}

impl BatchOut {
    fn empty() -> Self {
        Self {
            ns: [KVVec::new(), KVVec::new()],
            overlapped: [0; 2],
            failed: 0,
            aborted: false,
            wall_ns: 0,
        }
    }

    /// Adds another batch of the same mapper count (its maps unsorted).
    fn merge(&mut self, other: BatchOut) -> Result {
        for kind in 0..2 {
            self.ns[kind].extend_from_slice(&other.ns[kind], GFP_KERNEL)?;
            self.overlapped[kind] += other.overlapped[kind];
        }
        self.failed += other.failed;
        self.aborted |= other.aborted;
        self.wall_ns += other.wall_ns;
        Ok(())
    }
}

/// One batch: `mappers` mappers on the fake TD `kvm` for `run_ms` of
/// counted rounds, alternating the two `entries`. Runs on CPU 1, so that
/// its waiting (a sleep every 2 ms) disturbs no mapper.
fn hot_batch(kvm: usize, entries: [usize; 2], mappers: usize, run_ms: u64) -> Result<BatchOut> {
    let batch = Arc::new(
        HotBatch {
            mappers: mappers as u32,
            run_ns: run_ms * 1_000_000,
            base: Instant::<Monotonic>::now(),
            arrived: Atomic::new(0),
            generation: Atomic::new(0),
            stop: Atomic::new(false),
            abort: Atomic::new(false),
            begin_ns: Atomic::new(0),
            end_ns: Atomic::new(0),
            inside: Atomic::new(0),
            done: Atomic::new(0),
        },
        GFP_KERNEL,
    )?;
    let mut bodies = KVec::with_capacity(mappers, GFP_KERNEL)?;
    for (i, &cpu) in HOT_CPUS.iter().enumerate().take(mappers) {
        let ns = [
            KVVec::with_capacity(HOT_MAX_MAPS, GFP_KERNEL)?,
            KVVec::with_capacity(HOT_MAX_MAPS, GFP_KERNEL)?,
        ];
        let shared = batch.clone();
        let body = Arc::pin_init(
            pin_init!(Mapper {
                batch: shared,
                entries,
                kvm,
                first_gpa: (1 + HOT_PAGES * i as u64) << 12,
                out <- new_mutex!(MapperOut { ns, overlapped: [0; 2], failed: 0 }, "Mapper::out"),
            }),
            GFP_KERNEL,
        )?;
        bodies.push((body, cpu), GFP_KERNEL)?;
    }
    let mut threads = KVec::with_capacity(mappers, GFP_KERNEL)?;
    for (body, cpu) in &bodies {
        let thread = crate::platform::online_cpu(*cpu)
            .ok_or(EINVAL)
            .and_then(|c| Thread::spawn(body.clone(), Some(c), c"tsg_hot_map/%u", 0));
        match thread {
            Ok(t) => threads.push(t, GFP_KERNEL)?,
            Err(e) => {
                // The mappers started wait for this one: let them go.
                batch.abort.store(true, Relaxed);
                return Err(e);
            }
        }
    }
    // Bounded: the mappers give up at a barrier after 2 s without progress.
    let start = Instant::<Monotonic>::now();
    while batch.done.load(Acquire) != mappers as u32 {
        if start.elapsed().as_millis() > 30_000 {
            batch.abort.store(true, Relaxed);
        }
        sleep_ms(2);
    }
    drop(threads);
    let mut out = BatchOut {
        ns: [KVVec::new(), KVVec::new()],
        overlapped: [0; 2],
        failed: 0,
        aborted: batch.abort.load(Relaxed),
        wall_ns: batch
            .end_ns
            .load(Relaxed)
            .saturating_sub(batch.begin_ns.load(Relaxed)),
    };
    for (body, _) in &bodies {
        let m = body.out.lock();
        for kind in 0..2 {
            out.ns[kind].extend_from_slice(&m.ns[kind], GFP_KERNEL)?;
            out.overlapped[kind] += m.overlapped[kind];
        }
        out.failed += m.failed;
    }
    for ns in &mut out.ns {
        ns.sort_unstable();
    }
    Ok(out)
}

/// One kind of round's map times, in ns: the mean over every map, the mean
/// over those that took at most [`HOT_SLOW_NS`] (`slow`: the others), p50
/// and p99.
struct HotSummary {
    maps: u64,
    slow: u64,
    mean: u64,
    trimmed: u64,
    p50: u64,
    p99: u64,
}

impl HotSummary {
    /// From the sorted times `ns`.
    fn of(ns: &[u64]) -> Self {
        let maps = ns.len() as u64;
        let kept = ns.iter().filter(|&&v| v <= HOT_SLOW_NS);
        let (sum, n) = kept.fold((0u64, 0u64), |(s, n), &v| (s + v, n + 1));
        Self {
            maps,
            slow: maps - n,
            mean: ns.iter().sum::<u64>().checked_div(maps).unwrap_or(0),
            trimmed: sum.checked_div(n).unwrap_or(0),
            p50: quantile(ns, 500),
            p99: quantile(ns, 990),
        }
    }
}

/// The ratio `a / b`, per mille.
fn permille(a: u64, b: u64) -> u64 {
    (a * 1000).checked_div(b).unwrap_or(0)
}

/// The lines of one mapper count: one per side (`maps_per_s` is `mappers`
/// over the trimmed mean: the rate of N mappers doing nothing but map
/// calls), then the ratio of maps per second (with the hook / without, per
/// mille) and the ns the hook adds to a map, on the trimmed means and on
/// the medians.
fn hot_lines(mappers: usize, out: &BatchOut) {
    let sides = [HotSummary::of(&out.ns[0]), HotSummary::of(&out.ns[1])];
    for (hook, s) in sides.iter().enumerate() {
        pr_info!(
            "tsg-bench-kvm: hotpath mappers={} hook={} maps={} slow={} map_ns_mean={} map_ns_trimmed={} map_ns_p50={} map_ns_p99={} maps_per_s={} overlapped={} failed={} aborted={}\n",
            mappers,
            hook,
            s.maps,
            s.slow,
            s.mean,
            s.trimmed,
            s.p50,
            s.p99,
            (mappers as u64 * 1_000_000_000)
                .checked_div(s.trimmed)
                .unwrap_or(0),
            out.overlapped[hook],
            out.failed,
            u8::from(out.aborted),
        );
    }
    let [n, h] = &sides;
    pr_info!(
        "tsg-bench-kvm: hotpath-derived mappers={} ratio_permille={} added_ns={} ratio_p50_permille={} added_p50_ns={} wall_ms={} wall_maps_per_s={}\n",
        mappers,
        permille(n.trimmed, h.trimmed),
        h.trimmed as i64 - n.trimmed as i64,
        permille(n.p50, h.p50),
        h.p50 as i64 - n.p50 as i64,
        out.wall_ns / 1_000_000,
        ((n.maps + h.maps) * 1_000_000_000)
            .checked_div(out.wall_ns)
            .unwrap_or(0),
    );
}

/// The emulation slowdown's guest side: [`CALIBRATE_REPS`] runs of the fixed
/// loop of `kunit/c/calibrate.c` on CPU `cpu`, each timed on the monotonic
/// clock (never a delay loop: under TCG `udelay()` runs about three times
/// too fast). `make bench` times the same loop natively on the host and
/// divides. Returns the times, sorted, and the loop's checksum.
fn calibrate(cpu: u32) -> Result<(KVec<u64>, u64)> {
    run_on_cpu(cpu, || -> Result<(KVec<u64>, u64)> {
        let mut ns = KVec::with_capacity(CALIBRATE_REPS, GFP_KERNEL)?;
        let mut sum = 0;
        for _ in 0..CALIBRATE_REPS {
            let start = Instant::<Monotonic>::now();
            // SAFETY: the loop takes and returns plain integers and touches
            // only its own table; this thread is its only caller.
            sum = unsafe { tsg_calibrate_loop(u64::from(TSG_CALIBRATE_ITERATIONS)) };
            ns.push(start.elapsed().as_nanos().unsigned_abs(), GFP_KERNEL)?;
            // Lets anything else waiting for this CPU run between the runs.
            sleep_ms(1);
        }
        ns.sort_unstable();
        Ok((ns, sum))
    })?
}

/// The zero-step scenario's fake vCPUs, by CPU (CPU 0 is left to KUnit and
/// the driver, which sleeps).
const ZS_CPUS: [u32; 3] = [1, 2, 3];
/// Fresh pages each fake vCPU faults on and maps per batch; vCPU `i` owns
/// pages `ZS_PAGES * i` to `ZS_PAGES * (i + 1) - 1`.
const ZS_PAGES: u64 = 256;
/// Rounds; each runs every row once, in an order that rotates by one per
/// round, so that the host's drift falls on every row alike.
const ZS_ROUNDS: usize = 5;
/// A fake vCPU's time in the guest before its access, per entry (µs).
const ZS_GUEST_US: u32 = 2;
/// The fake's local retry on `-EBUSY` (KVM's has no bound). Hitting it is
/// reported and fails the batch.
const ZS_RETRY_CAP: u32 = 100_000;
/// A batch that has not finished after this long is stopped and reported.
const ZS_BATCH_TIMEOUT_MS: i64 = 30_000;

/// The rows of the zero-step case: the policy and the zero-step response.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ZsRow {
    /// `policy=upstream72`: busy maps go back to KVM (`-EBUSY`), which
    /// retries locally; no kick anywhere.
    Upstream72,
    /// The shipped response (option B): the tracepoints only observe; a busy
    /// map gets the map path's kick and one retry.
    Observe,
    /// Option A (test module only): the gate raised and the vCPUs kicked at
    /// `kvm_page_fault` when the detector engages, held until that vCPU's
    /// fault GFN is mapped (or its next exit).
    Hold,
}

impl ZsRow {
    const ALL: [ZsRow; 3] = [ZsRow::Upstream72, ZsRow::Observe, ZsRow::Hold];

    fn name(self) -> &'static str {
        match self {
            ZsRow::Upstream72 => "upstream72",
            ZsRow::Observe => "B-observe",
            ZsRow::Hold => "A-hold",
        }
    }

    fn policy(self) -> Policy {
        match self {
            ZsRow::Upstream72 => Policy::Upstream72,
            _ => Policy::DEFAULT,
        }
    }
}

/// What one fake vCPU of the zero-step case counted.
#[derive(Default)]
struct ZsOut {
    /// Per fault mapped: ns from its EPT-violation exit with the mitigation
    /// engaged for its GPA (the 7th) until KVM's map returned 0.
    fault_ns: KVec<u64>,
    /// Faults resolved (page mapped, accepted, and the guest moved on).
    faults: u64,
    /// Map sequences (one per fault, local retries included), their
    /// SEAMCALLs in all and the most one took.
    maps: u64,
    seamcalls: u64,
    seamcalls_max: u64,
    /// Calls of KVM's function that returned `-EBUSY` and were made again.
    local_retries: u64,
    /// Maps that did not end in success; of those, the retry bound hit.
    failed: u64,
    capped: u64,
    /// Entries refused by `wait_for_sept_zap`; TDH.VP.ENTERs that came back
    /// busy; faults whose GPA the module's zero-step list held.
    refused: u64,
    enter_busy: u64,
    engaged: u64,
}

/// One fake vCPU of the zero-step case: a kthread bound to its CPU that
/// loops as KVM's vCPU thread does, over fresh pages of its own.
#[pin_data]
struct ZsVcpu {
    kvm: usize,
    idx: u32,
    orig: usize,
    module: Arc<KBox<TdxModule>>,
    first_gpa: u64,
    go: Arc<Atomic<bool>>,
    done: Atomic<bool>,
    #[pin]
    out: Mutex<ZsOut>,
}

/// How a fake vCPU came back from one try to enter.
enum ZsExit {
    /// `wait_for_sept_zap` was up: no TDH.VP.ENTER (and no `kvm_exit`).
    Refused,
    /// TDH.VP.ENTER came back busy.
    EnterBusy,
    /// An EPT-violation exit (the guest's access, or the module's synthetic
    /// one under zero-step) on this GPA.
    Fault(u64),
    /// The guest accepted the page and moved on to its next instruction.
    Progress,
    /// The guest's ACCEPT found the entry busy; it tries again.
    Again,
}

impl ZsVcpu {
    /// One entry, as `vcpu_enter_guest()` and `tdx_vcpu_run()` make it:
    /// interrupts off, `IN_GUEST_MODE` published and the gate checked,
    /// TDH.VP.ENTER (with the vCPU's zero-step state), the guest's access to
    /// `gpa` at `rip`, the TD exit with the module's zero-step accounting,
    /// and `kvm_exit` fired as KVM fires it, with interrupts still off.
    fn enter(&self, vcpu: *mut kvm_vcpu, zs: &mut ZeroStepState, rip: u64, gpa: u64) -> ZsExit {
        let _irqs = IrqsOff::new();
        // SAFETY: `vcpu` is a live vCPU of the fake TD, which outlives this
        // thread; interrupts are off.
        if !unsafe { tsg_fake_vcpu_enter(vcpu) } {
            return ZsExit::Refused;
        }
        let (exit, status, ept) = match self.module.vp_enter(zs) {
            Enter::Busy(status) => (ZsExit::EnterBusy, status.raw(), false),
            Enter::EptViolation(g) => {
                self.module.ept_violation_exit(zs, rip, g);
                (ZsExit::Fault(g), 0, true)
            }
            Enter::Entered { epoch } => {
                spin_us(ZS_GUEST_US);
                let access = self.module.guest_accept(gpa);
                self.module.td_exit(epoch);
                match access {
                    Accept::Accepted | Accept::AlreadyAccepted => {
                        // The guest's next instruction: an exit that shows
                        // progress clears its zero-step state.
                        self.module.progress_exit(zs);
                        (ZsExit::Progress, 0, false)
                    }
                    Accept::EptViolation => {
                        self.module.ept_violation_exit(zs, rip, gpa);
                        (ZsExit::Fault(gpa), 0, true)
                    }
                    Accept::Busy(_) | Accept::Interrupted => (ZsExit::Again, 0, false),
                }
            }
        };
        // SAFETY: As above; KVM fires `kvm_exit` with interrupts off, before
        // the vCPU leaves guest mode.
        unsafe {
            tsg_fake_trace_exit(vcpu, status, ept);
            tsg_fake_vcpu_exit(vcpu);
        }
        exit
    }

    /// KVM's map of `gpa` for the fault, and its local retry on `-EBUSY`
    /// (bounded here): returns KVM's last result, and counts.
    fn map(&self, gpa: u64, out: &mut ZsOut) -> i32 {
        let cpu = kernel::cpu::CpuId::current().as_u32() as usize;
        let sc = || SEAMCALLS_ON.get(cpu).map_or(0, |n| n.load(Relaxed));
        let before = sc();
        let mut calls = 0;
        let ret = loop {
            calls += 1;
            // SAFETY: The fake TD outlives this thread; `orig` is KVM's
            // function; the page is this vCPU's own.
            let r = unsafe { kvm_map_gpa(self.orig, self.kvm as *mut kvm, gpa) };
            if r != EBUSY.to_errno() || calls >= ZS_RETRY_CAP {
                break r;
            }
            out.local_retries += 1;
            cpu_relax();
        };
        let n = sc() - before;
        out.maps += 1;
        out.seamcalls += n;
        out.seamcalls_max = out.seamcalls_max.max(n);
        if ret != 0 {
            out.failed += 1;
            out.capped += u64::from(calls >= ZS_RETRY_CAP);
        }
        ret
    }
}

impl ThreadBody for ZsVcpu {
    /// Page after page of its own, each at an instruction of its own: the
    /// guest's access faults; the first [`STEPPING_EPF_THRESHOLD`] faults
    /// are left unresolved (the fault handler goes back to the guest without
    /// a map, as KVM does after an exit to user space for the page: KVM's
    /// comment in `tdx_handle_ept_violation()` names TDH.VP.ENTER after
    /// `KVM_EXIT_MEMORY_FAULT` as a way into zero-step), so that the 7th
    /// fault at the same RIP puts the GPA on the module's zero-step list and
    /// the detector's streak of seven sees it at `kvm_page_fault`. That fault
    /// is mapped through KVM's function (retried locally on `-EBUSY`); every
    /// later TDH.VP.ENTER of the vCPU takes the S-EPT tree lock exclusive
    /// until the guest accepts the page and moves on.
    fn run(&self, ctx: &ThreadCtx) {
        let mut out = core::mem::take(&mut *self.out.lock());
        // SAFETY: The fake TD outlives this thread; vCPU `idx` exists.
        let vcpu = unsafe { Td::from_kvm(self.kvm as *mut kvm) }
            .and_then(|td| td.vcpu(self.idx))
            .map_or(core::ptr::null_mut(), |v| v.as_ptr());
        while !self.go.load(Acquire) && !ctx.should_stop() {
            sleep_ms(1);
        }
        let mut zs = ZeroStepState::new();
        'pages: for n in 0..ZS_PAGES {
            let gpa = self.first_gpa + (n << 12);
            let rip = n + 1;
            let mut faults = 0;
            let mut engaged_at = None;
            loop {
                if ctx.should_stop() || vcpu.is_null() {
                    break 'pages;
                }
                ctx.pause();
                let g = match self.enter(vcpu, &mut zs, rip, gpa) {
                    ZsExit::Refused => {
                        out.refused += 1;
                        continue;
                    }
                    ZsExit::EnterBusy => {
                        out.enter_busy += 1;
                        continue;
                    }
                    ZsExit::Again => continue,
                    ZsExit::Progress => break,
                    ZsExit::Fault(g) => g,
                };
                let at = Instant::<Monotonic>::now();
                faults += 1;
                // KVM's `tdx_handle_ept_violation()`: in the vCPU's task,
                // interrupts on, preemptible.
                // SAFETY: As in `enter`.
                unsafe { tsg_fake_trace_page_fault(vcpu, g) };
                if zs.active() && engaged_at.is_none() {
                    out.engaged += 1;
                    engaged_at = Some(at);
                }
                if faults <= STEPPING_EPF_THRESHOLD {
                    continue;
                }
                if self.map(g, &mut out) != 0 {
                    break 'pages;
                }
                let since = engaged_at.unwrap_or(at);
                // Capacity reserved by the driver: never allocates.
                let _ = out
                    .fault_ns
                    .push(since.elapsed().as_nanos().unsigned_abs(), GFP_ATOMIC);
            }
            out.faults += 1;
        }
        *self.out.lock() = out;
        self.done.store(true, Release);
        while !ctx.should_stop() {
            sleep_ms(1);
        }
    }
}

/// One row's totals over its batches.
#[derive(Default)]
struct ZsTotals {
    batches: u64,
    out: ZsOut,
    wall_ns: u64,
    busy_statuses: u64,
    kicks: u64,
    zero_step_events: u64,
    gate_held_ns: u64,
    vm_stops: u64,
    timed_out: u64,
    /// Kickers still counted on the gate, or the flag still up, after a
    /// batch (a leaked gate).
    gate_left: u64,
    holds: u64,
    hold_timeouts: u64,
    holds_ended_map: u64,
    holds_ended_exit: u64,
}

/// One batch of `row`: a fresh fake TD with a vCPU on each of [`ZS_CPUS`],
/// the hook attached as the row says, every vCPU through its [`ZS_PAGES`]
/// pages; adds what it saw to `t`.
fn zero_step_batch(row: ZsRow, t: &mut ZsTotals) -> Result {
    let counters = [
        &GATE_HELD_NS,
        &hold::TAKEN,
        &hold::TIMED_OUT,
        &hold::ENDED_BY_MAP,
        &hold::ENDED_BY_EXIT,
    ];
    for c in counters {
        c.store(0, Relaxed);
    }
    let backend = attach_holding(KICK_TIMEOUT_US, row.policy(), row == ZsRow::Hold)
        .map_err(Unavailable::errno)?;
    let nr = ZS_CPUS.len() as u64;
    let pages = (ZS_PAGES * nr) as usize;
    let td = FakeTd::with_pages(&ZS_CPUS, pages, pages / 16)?;
    let orig = hooks::lookup(TARGET).ok_or(ENOENT)?;
    let go = Arc::new(Atomic::new(false), GFP_KERNEL)?;
    let mut bodies = KVec::with_capacity(ZS_CPUS.len(), GFP_KERNEL)?;
    let mut threads = KVec::with_capacity(ZS_CPUS.len(), GFP_KERNEL)?;
    for (i, &cpu) in ZS_CPUS.iter().enumerate() {
        let out = ZsOut {
            fault_ns: KVec::with_capacity(ZS_PAGES as usize, GFP_KERNEL)?,
            ..ZsOut::default()
        };
        let (kvm, module, go) = (td.kvm as usize, td.module.clone(), go.clone());
        let body = Arc::pin_init(
            pin_init!(ZsVcpu {
                kvm,
                idx: i as u32,
                orig,
                module,
                first_gpa: (ZS_PAGES * i as u64) << 12,
                go,
                done: Atomic::new(false),
                out <- new_mutex!(out, "ZsVcpu::out"),
            }),
            GFP_KERNEL,
        )?;
        let cpu = crate::platform::online_cpu(cpu).ok_or(EINVAL)?;
        threads.push(
            Thread::spawn(body.clone(), Some(cpu), c"tsg_zs_vcpu/%u", 0)?,
            GFP_KERNEL,
        )?;
        bodies.push(body, GFP_KERNEL)?;
    }
    let busy_before = BUSY_STATUSES.load(Relaxed);
    let start = Instant::<Monotonic>::now();
    go.store(true, Release);
    let mut timed_out = false;
    while !bodies.iter().all(|b| b.done.load(Acquire)) {
        if start.elapsed().as_millis() > ZS_BATCH_TIMEOUT_MS {
            timed_out = true;
            break;
        }
        sleep_ms(2);
    }
    let wall_ns = start.elapsed().as_nanos().unsigned_abs();
    // Gathered with everything still up; asserted by the caller.
    t.batches += 1;
    t.wall_ns += wall_ns;
    t.timed_out += u64::from(timed_out);
    t.busy_statuses += BUSY_STATUSES.load(Relaxed) - busy_before;
    t.kicks += total(&backend, "kicks");
    t.zero_step_events += total(&backend, "zero_step_events");
    let stops = backend.state.attach_totals().kvm_vm_stops.get();
    t.vm_stops += stops.max(u64::from(td.td().is_bugged()));
    let kickers = {
        let rcu = rcu::read_lock();
        backend
            .state
            .vms
            .get(td.td(), &rcu)
            .map_or(0, |vm| *vm.kickers.lock())
    };
    t.gate_left += kickers.max(u64::from(td.td().wait_for_sept_zap()));
    // The vCPU threads stop before the hold counters are read: a vCPU
    // refused by a leaked gate stays refused.
    drop(threads);
    t.gate_held_ns += GATE_HELD_NS.load(Relaxed);
    t.holds += hold::TAKEN.load(Relaxed);
    t.hold_timeouts += hold::TIMED_OUT.load(Relaxed);
    t.holds_ended_map += hold::ENDED_BY_MAP.load(Relaxed);
    t.holds_ended_exit += hold::ENDED_BY_EXIT.load(Relaxed);
    for b in &bodies {
        let o = b.out.lock();
        let to = &mut t.out;
        to.fault_ns.extend_from_slice(&o.fault_ns, GFP_KERNEL)?;
        to.faults += o.faults;
        to.maps += o.maps;
        to.seamcalls += o.seamcalls;
        to.seamcalls_max = to.seamcalls_max.max(o.seamcalls_max);
        to.local_retries += o.local_retries;
        to.failed += o.failed;
        to.capped += o.capped;
        to.refused += o.refused;
        to.enter_busy += o.enter_busy;
        to.engaged += o.engaged;
    }
    drop(td);
    drop(backend);
    Ok(())
}

/// The zero-step case: every row [`ZS_ROUNDS`] times, in rotating order;
/// one `tsg-bench-kvm: zerostep row=...` line per row.
fn zero_step_rows() -> Result<KVec<(ZsRow, ZsTotals)>> {
    let mut rows = KVec::new();
    for row in ZsRow::ALL {
        rows.push((row, ZsTotals::default()), GFP_KERNEL)?;
    }
    let n = rows.len();
    for round in 0..ZS_ROUNDS {
        for k in 0..n {
            let (row, totals) = &mut rows[(round + k) % n];
            zero_step_batch(*row, totals)?;
        }
    }
    for (row, t) in &mut rows {
        t.out.fault_ns.sort_unstable();
        let o = &t.out;
        pr_info!(
            "tsg-bench-kvm: zerostep row={} batches={} vcpus={} faults={} wall_ns={} maps={} seamcalls={} seamcalls_max={} busy_statuses={} enter_busy={} local_retries={} kicks={} zero_step_events={} gate_held_ns={} fault_p50_ns={} fault_p99_ns={} fault_max_ns={} vm_stops={} failed={} capped={} timed_out={} gate_left={} refused={} engaged={} holds={} hold_timeouts={} holds_ended_map={} holds_ended_exit={}\n",
            row.name(),
            t.batches,
            ZS_CPUS.len(),
            o.faults,
            t.wall_ns,
            o.maps,
            o.seamcalls,
            o.seamcalls_max,
            t.busy_statuses,
            o.enter_busy,
            o.local_retries,
            t.kicks,
            t.zero_step_events,
            t.gate_held_ns,
            quantile(&o.fault_ns, 500),
            quantile(&o.fault_ns, 990),
            o.fault_ns.last().copied().unwrap_or(0),
            t.vm_stops,
            o.failed,
            o.capped,
            t.timed_out,
            t.gate_left,
            o.refused,
            o.engaged,
            t.holds,
            t.hold_timeouts,
            t.holds_ended_map,
            t.holds_ended_exit,
        );
    }
    Ok(rows)
}

#[kunit_tests(tdx_sept_guard_bench_kvm)]
mod tests {
    use super::*;

    /// The hook's cost on an uncontended map: the same maps without and
    /// with it, alternating batches, in one run.
    #[test]
    fn hook_overhead() -> Result {
        let (nohook, hook, failed) = {
            let td = FakeTd::new()?;
            let mut nohook = KVec::new();
            let mut hook = KVec::new();
            let mut failed = 0;
            for batch in 0..OVERHEAD_BATCHES {
                for side in 0..2 {
                    let with = (batch + side) % 2 == 1;
                    let backend = if with {
                        Some(attach(KICK_TIMEOUT_US).map_err(Unavailable::errno)?)
                    } else {
                        None
                    };
                    let run = run_maps(&td, OVERHEAD_OPS + 1, None)?;
                    drop(backend);
                    failed += run.failed + run.unmap_failed;
                    let out = if with { &mut hook } else { &mut nohook };
                    out.extend_from_slice(run.ns.get(1..).unwrap_or(&[]), GFP_KERNEL)?;
                }
            }
            (nohook, hook, failed)
        };
        let (n, h) = (sorted(&nohook)?, sorted(&hook)?);
        let (n50, h50) = (quantile(&n, 500), quantile(&h, 500));
        let (nm, hm) = (mean(&nohook), mean(&hook));
        // Per mille, so that the line needs no floating point.
        let ratio = |a: u64, b: u64| (a * 1000).checked_div(b).unwrap_or(0);
        pr_info!(
            "tsg-bench-kvm: overhead ops={} hook_median_ns={} nohook_median_ns={} hook_mean_ns={} nohook_mean_ns={} ratio_median_permille={} ratio_mean_permille={} failed={}\n",
            n.len().min(h.len()),
            h50,
            n50,
            hm,
            nm,
            ratio(h50, n50),
            ratio(hm, nm),
            failed,
        );
        assert_eq!(failed, 0);
        assert_eq!(n.len(), OVERHEAD_BATCHES * OVERHEAD_OPS);
        assert_eq!(h.len(), OVERHEAD_BATCHES * OVERHEAD_OPS);
        Ok(())
    }

    /// The contended rows: KVM 7.2 alone and with the hook, a vCPU hogging
    /// the page. Every map ends mapped; the correct TDX module never makes
    /// the hook stop the VM.
    #[test]
    fn contended_rows() -> Result {
        let plain = contended_row(false)?;
        let hooked = contended_row(true)?;
        for row in [&plain, &hooked] {
            assert_eq!(row.ops, CONTENDED_OPS);
            assert_eq!(row.failed, 0);
            assert_eq!(row.unmap_failed, 0);
            assert_eq!(row.vm_stops, 0);
        }
        Ok(())
    }

    /// Zero-step on KVM, the two responses and `upstream72`: every fault
    /// mapped, with the module's mitigation engaged for its GPA; no VM
    /// stopped (no SEAMCALL failed); the gate down at the end of every batch
    /// and every hold of option A ended.
    #[test]
    fn zero_step_responses() -> Result {
        pr_info!(
            "tsg-bench-kvm: zerostep-note {} fake vCPUs on CPUs {:?}, {} fresh pages each per batch, {} batches per row in rotating order; each page faults {} times at one RIP before it is mapped (the 7th puts it on the module's zero-step list), then KVM's map, retried locally on -EBUSY\n",
            ZS_CPUS.len(),
            &ZS_CPUS,
            ZS_PAGES,
            ZS_ROUNDS,
            STEPPING_EPF_THRESHOLD + 1,
        );
        let rows = zero_step_rows()?;
        let want = ZS_ROUNDS as u64 * ZS_CPUS.len() as u64 * ZS_PAGES;
        for (row, t) in &rows {
            let o = &t.out;
            assert_eq!(t.timed_out, 0);
            assert_eq!(o.faults, want);
            assert_eq!(o.maps, want);
            assert_eq!(o.failed, 0);
            assert_eq!(o.engaged, want);
            assert_eq!(t.vm_stops, 0);
            assert_eq!(t.gate_left, 0);
            assert_eq!(t.holds, t.holds_ended_map + t.holds_ended_exit);
            if *row == ZsRow::Hold {
                assert!(t.holds > 0);
            } else {
                assert_eq!(t.holds, 0);
            }
        }
        Ok(())
    }

    /// The emulation slowdown's guest side, next to the hot path it is
    /// meant for: the fixed loop of `kunit/c/calibrate.c` timed on CPU 0,
    /// where the hot path's first mapper runs. No timing assertion.
    #[test]
    fn emulation_calibrate() -> Result {
        let (ns, sum) = calibrate(HOT_CPUS[0])?;
        pr_info!(
            "tsg-bench-kvm: calibrate where=guest cpu={} iterations={} reps={} min_ns={} median_ns={} max_ns={} checksum={}\n",
            HOT_CPUS[0],
            TSG_CALIBRATE_ITERATIONS,
            ns.len(),
            ns.first().copied().unwrap_or(0),
            quantile(&ns, 500),
            ns.last().copied().unwrap_or(0),
            sum,
        );
        assert_eq!(ns.len(), CALIBRATE_REPS);
        Ok(())
    }

    /// The hot path: 1, 2 and 3 mappers at once on one fake TD, each round
    /// without the hook or with it, in turn; the time of each map call, the
    /// unmaps not timed. Every map and unmap succeeds.
    ///
    /// Without the hook means KVM's function as it runs with nothing
    /// attached: the calls enter it past its ftrace call site (a NOP when
    /// nothing is attached), while the hook stays attached for the others.
    /// So both kinds of call alternate every round, a millisecond or so
    /// apart, and meet the same host: under TCG the host's speed changes by
    /// tens of percent from one tenth of a second to the next, which
    /// batches with the hook attached and detached in between (half a
    /// second each way here) would turn into the result. A first run with
    /// the hook detached checks that entering past the site costs what
    /// entering the function does.
    #[test]
    fn hot_path_mappers() -> Result {
        let orig = hooks::lookup(TARGET).ok_or(ENOENT)?;
        let Some(past) = past_ftrace_site(orig) else {
            // Not this test kernel under TCG: no rows, and `make bench`
            // says why.
            pr_info!(
                "tsg-bench-kvm: hotpath-unavailable: indirect branch tracking is on, or the target does not start with its ftrace site as a NOP\n"
            );
            return Ok(());
        };
        pr_info!(
            "tsg-bench-kvm: hotpath-note measured: the time of each map call (KVM's tdx_sept_set_private_spte(), non-present to a 4K page, inside the read side of mmu_lock, its acquisition not included) of N mappers on CPUs {:?}, {} pages each per round, every round's maps started together, rounds without the hook (entered past the ftrace site) and with it in turn; maps_per_s: N / the mean time of the maps under 1 ms (slow: those over); the unmaps (write side of mmu_lock, which serializes them) are not timed\n",
            &HOT_CPUS,
            HOT_PAGES,
        );
        let mut bad = 0;
        let mut outs = KVec::new();
        let check = {
            let td = FakeTd::new()?;
            let kvm = td.kvm as usize;
            // The check: the hook detached, past the site and at the entry.
            let check = run_on_cpu(1, move || hot_batch(kvm, [past, orig], 1, HOT_CHECK_MS))??;
            let backend = attach(KICK_TIMEOUT_US).map_err(Unavailable::errno)?;
            for mappers in 1..=HOT_CPUS.len() {
                outs.push((mappers, BatchOut::empty()), GFP_KERNEL)?;
            }
            for _ in 0..HOT_CYCLES {
                for (mappers, sum) in outs.iter_mut() {
                    let n = *mappers;
                    let run_ms = HOT_RUN_MS / HOT_CYCLES;
                    match run_on_cpu(1, move || hot_batch(kvm, [past, orig], n, run_ms)) {
                        Ok(Ok(out)) => sum.merge(out)?,
                        _ => bad += 1,
                    }
                }
            }
            for (_, out) in outs.iter_mut() {
                for ns in &mut out.ns {
                    ns.sort_unstable();
                }
            }
            drop(backend);
            bad += u32::from(td.td().is_bugged());
            check
        };
        let c = [HotSummary::of(&check.ns[0]), HotSummary::of(&check.ns[1])];
        pr_info!(
            "tsg-bench-kvm: hotpath-check mappers=1 hook=detached maps={} past_site_ns_trimmed={} entry_ns_trimmed={} ratio_permille={} past_site_ns_p50={} entry_ns_p50={} failed={}\n",
            c[0].maps + c[1].maps,
            c[0].trimmed,
            c[1].trimmed,
            permille(c[0].trimmed, c[1].trimmed),
            c[0].p50,
            c[1].p50,
            check.failed,
        );
        for (mappers, out) in &outs {
            hot_lines(*mappers, out);
            bad += out.failed
                + u32::from(out.aborted)
                + u32::from(out.ns.iter().any(|v| v.is_empty()));
        }
        bad += check.failed + u32::from(check.aborted);
        assert_eq!(outs.len(), HOT_CPUS.len());
        assert_eq!(bad, 0);
        Ok(())
    }

    /// What the latency histograms cost per call on this CPU (`latency=1`,
    /// the default): a map's two clock reads and one record, and one record
    /// alone (`make bench` divides them by the emulation slowdown for an
    /// estimate of the native cost). Only sanity assertions.
    #[test]
    fn latency_cost() -> Result {
        let c = crate::platform::latency::recording_cost(20_000, 5)?;
        pr_info!(
            "tsg-bench-kvm: latency-cost calls=20000 reps=5 map_ns={} record_ns={} local_clock_ns={} ktime_ns={}\n",
            c.map,
            c.record,
            c.local_clock,
            c.ktime
        );
        assert!(c.map >= c.record);
        Ok(())
    }
}
