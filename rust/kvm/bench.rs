// SPDX-License-Identifier: GPL-2.0

//! KUnit benchmark: KVM 7.2's own `tdx_sept_set_private_spte()` on the
//! simulated TDX module, with and without the module's hook (the fake TD of
//! [`super::kunit`]).
//!
//! Two measurements, printed as `tsg-bench-kvm:` lines that `make bench`
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
//!   call. SEAMCALLs are counted at the simulated TDX module.
//!
//! Fixed sizes, no module parameters; only sanity assertions (every map
//! done, no VM stop), never timing ones.

use kernel::macros::kunit_tests;

use super::kunit::{
    attach,
    kvm_map_x,
    kvm_unmap_x,
    FakeTd,
    FakeVcpu,
    SEAMCALLS,
    X, //
};
use super::{
    bindings::kvm,
    hooks,
    KvmBackend,
    Unavailable,
    TARGET, //
};
use crate::platform::sync::KCounter;
use crate::platform::thread::run_on_cpu;
use crate::policy::{
    CounterCell,
    CounterTable,
    Counters, //
};
use kernel::{
    prelude::*,
    processor::cpu_relax,
    sync::{
        atomic::{
            Relaxed,
            Release, //
        },
        Arc,
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

/// A policy counter of the backend, over every VM.
fn policy_counter(b: &KvmBackend, name: &str) -> u64 {
    let totals = b.state.vms.totals(&b.state.counters);
    Counters::<KCounter>::COUNTERS
        .iter()
        .position(|d| d.name == name)
        .and_then(|i| totals.get(i).copied())
        .unwrap_or(0)
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
            policy_counter(b, "kicks"),
            b.state
                .attach
                .counter("kvm_vm_stops")
                .map_or(0, CounterCell::get),
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
}
