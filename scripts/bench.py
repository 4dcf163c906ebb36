#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Host side of `make bench`: turns the guest's serial log into a table,
a CSV file and PNG plots.

    scripts/bench.py LOG OUTDIR [--plots]

The guest (scripts/guest/bench) prints, per cell, between
`tdx-sept-guard-bench: cell NAME begin ...` and `... cell NAME end ...`,
every line of the module's debugfs `stats` (`stat NAME key value`) and
`latency` (`lat NAME hist low high count`, `lat NAME hist_max ns`) files.
A cell is named POLICY-VCPUS-SHAPE, or POLICY-VCPUS-SHAPE@PERCENT in the
SEAMCALL-cost sweep (the module's seamcall_cost_pct). Per cell: the worst
case (SCmax, the most SEAMCALLs one operation took), the mean SEAMCALLs and
mean time of the contended operations (those that met a busy status, so
issued more than one SEAMCALL: SC/busy and busyus, from sim_ops_retried and
sim_retried_op_ns), and the fault-to-map p50/p99 of faulting guest accesses
(the fault_ns histogram). Histograms of other names in `latency` are kept
but not used. The targets: ours' worst case at most 2 in every cell, the
sweep's included; in the zero-step storm (per vCPU count, and per cost of
the sweep), ours' mean SEAMCALLs per contended operation at least
CONTENDED_TARGET times lower than blind_retry's, and ours' fault-to-map p99
no worse than upstream72's. The sweep (the zerostep cells of one vCPU count
at x0.5, x1 and x2 of the assumed SEAMCALL cost, x1 being the main table's
cells) is printed as a table of its own.

Before the cells, the KUnit suite tdx_sept_guard_bench_kvm (in the test
module, tdx_sept_guard_kunit.ko) prints
`tsg-bench-kvm: row=kvm72 key=value...`, `... row=kvm72+hook ...` (KVM 7.2's
real tdx_sept_set_private_spte() on the simulated TDX module, without and
with the module's hook, one vCPU holding the page before half of the maps)
and `tsg-bench-kvm: overhead key=value...` (the hook's cost on an
uncontended map, as a ratio measured in one run). They become the rows
kvm72 and kvm72+hook (shape kvm_hog50) and the hook-overhead target.

The same suite's hot-path case prints `tsg-bench-kvm: hotpath mappers=N
hook=0|1 key=value...` for 1, 2 and 3 mappers mapping at once on one fake
TD, rounds without and with the hook in turn (the time of each map call;
the unmaps are not timed), `tsg-bench-kvm: hotpath-derived mappers=N ...`
(the kernel's own ratio and added time, and the wall-clock rate) and
`tsg-bench-kvm: hotpath-check ...` (the two ways into KVM's function, the
hook detached). They become the hot-path table, build/bench/hotpath.csv
(the ratio and the added time computed here from the sides' trimmed means
and medians) and two targets: the ratio of maps per second (with the hook
/ without) at 3 mappers at least 0.95 times the one at 1 mapper, and the
hook's added time per map (1 mapper) lower than the previous
implementation's, measured with the same case (HOTPATH_BASELINE,
Documentation/performance.rst).

The same suite's zero-step case prints `tsg-bench-kvm: zerostep row=NAME
key=value...` for upstream72, B-observe (the shipped response: the
tracepoints only observe, a busy map gets the map path's kick and retry)
and A-hold (the gate raised at kvm_page_fault and held until that vCPU's
fault is mapped): fake vCPUs mapping their own fresh pages with the
simulated TDX module's zero-step mitigation engaged, the rows in rotating
order in one boot. They become the zero-step table, build/bench/zerostep.csv
(faults resolved per second, SEAMCALLs per map, busy statuses, kicks per
fault, gate-held time, fault-to-map p50/p99, VM stops) and two targets: no
VM stop under either response, and no gate left up.

The same suite's `tsg-bench-kvm: calibrate where=guest ...` line is the
guest's time of the fixed loop of rust/kunit/c/calibrate.c; --host-calibrate
FILE holds the host's (`calibrate where=host ...`, scripts/calibrate-host.c,
before and after the boot). Their ratio (fastest run over fastest run) is
the emulation slowdown of this run, and the hot path's added time per map
divided by it an ESTIMATE of the native added time
(build/bench/estimate.csv), printed as such.

Percentiles come from the module's log-linear histogram buckets (four per
power of two): a percentile is reported as the upper bound of the bucket
that holds it, so it is at most 25% above the true value. Maxima are exact.

Exit status: 0 when every cell ran (whatever the targets say: a missed
target is a result, reported with its reason), 1 when a cell is missing or
failed to load, or the guest log shows a kernel splat (the patterns are in
scripts/kernel_trouble.py, shared with scripts/guest-log.py).
"""

import argparse
import csv
import os
import re
import sys

# The shared pattern list sits next to this script; no __pycache__ there.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernel_trouble import KERNEL_TROUBLE  # noqa: E402

POLICIES = ["kick_and_retry", "upstream72", "blind_retry"]
OURS = "kick_and_retry"
# The simulated SEAMCALL cost of the main table's cells, in percent of the
# assumed one (module parameter seamcall_cost_pct).
DEFAULT_COST_PCT = 100
# In the zero-step storm, ours' mean SEAMCALLs per contended operation at
# least this many times lower than blind_retry's.
CONTENDED_TARGET = 5
SHAPES = ["none", "accept", "zerostep"]
MARK = "tdx-sept-guard-bench: "
STOP = re.compile(r"sim VM stopped: (.*)$")
KVM_MARK = "tsg-bench-kvm: "
KVM_SUITE = re.compile(r"^\s*(not ok|ok) \d+ tdx_sept_guard_bench_kvm\b")
KVM_OURS = "kvm72+hook"
KVM_ROWS = ["kvm72", KVM_OURS]
# The hook's overhead target: at most 2% of an uncontended operation.
OVERHEAD_TARGET = 1.02
HOTPATH = re.compile(r"^hotpath(-derived|-check)?$")
HOTPATH_MAPPERS = [1, 2, 3]
# Nothing serializes: the ratio at 3 mappers at least this times the one at 1.
HOTPATH_SCALING_TARGET = 0.95
# The previous implementation (commit 70e000b: a global spinlock around the
# per-VM list and a reference count per call), measured with the same
# hot-path case under the same test kernel, in runs that alternated with
# this code's: with 1 mapper, the ratio of maps per second (with the hook /
# without) and what the hook added to a map, in ns, on the trimmed means
# (the means of the runs). See "Hot path" in Documentation/performance.rst.
HOTPATH_BASELINE = {
    "ratio": 0.709, "added_ns": 5347,
    "what": "the previous implementation, commit 70e000b: the same case, the mean of 5 runs "
            "alternating with this code's, 2026-12-07",
}
ZEROSTEP_ROWS = ["upstream72", "B-observe", "A-hold"]
ZEROSTEP_OPTIONS = ["B-observe", "A-hold"]
ZEROSTEP_COLUMNS = [
    "row", "batches", "vcpus", "faults", "wall_ms", "faults_per_s", "maps", "seamcalls_per_map",
    "seamcalls_max", "busy_statuses", "enter_busy", "local_retries", "kicks", "kicks_per_fault",
    "gate_held_ms", "gate_held_pct", "fault_p50_us", "fault_p99_us", "fault_max_us", "vm_stops",
    "failed", "capped", "timed_out", "gate_left", "refused", "engaged", "zero_step_events", "holds",
    "hold_timeouts", "holds_ended_map", "holds_ended_exit",
]
HOTPATH_COLUMNS = [
    "mappers", "hook", "maps", "slow", "map_ns_mean", "map_ns_trimmed", "map_ns_p50",
    "map_ns_p99", "maps_per_s", "overlap_pct", "failed", "aborted", "ratio", "added_ns",
    "ratio_p50", "added_p50_ns", "wall_maps_per_s",
]

COLUMNS = [
    "policy", "vcpus", "shape", "cost_pct", "ops", "ops_retried", "seamcalls", "seamcalls_per_op",
    "seamcalls_max", "seamcalls_per_busy_op", "busy_op_mean_us", "op_p50_us", "op_p99_us", "op_max_us", "fault_p50_us",
    "fault_p99_us", "fault_max_us", "faults", "kicks", "gated_ms",
    "gated_pct", "zero_step_engaged", "zero_step_detected", "vm_stops",
    "stop_reason", "local_retries", "vp_enters", "guest_ops", "elapsed_ms",
    "timeout",
]


def parse_log(path):
    """Returns ({cell: raw}, [splat lines]) from the serial log."""
    cells, splats, current = {}, [], None
    with open(path, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    for line in text.splitlines():
        if MARK not in line:
            if KERNEL_TROUBLE.search(line):
                splats.append(line.strip())
            m = STOP.search(line)
            if m and current:
                cells[current]["stop_reason"] = m.group(1)
            continue
        words = line.split(MARK, 1)[1].split()
        if not words:
            continue
        kind = words[0]
        if kind == "cell" and len(words) >= 3:
            name, what = words[1], words[2]
            if what == "begin":
                current = name
                cells[name] = {"stats": {}, "hist": {}, "max": {},
                               "params": words[3:], "stop_reason": ""}
            elif what == "end":
                for kv in words[3:]:
                    key, _, value = kv.partition("=")
                    cells[name][key] = int(value) if value.isdigit() else value
                current = None
        elif kind == "stat" and len(words) == 4 and words[1] in cells:
            cells[words[1]]["stats"][words[2]] = int(words[3])
        elif kind == "lat" and words[1] in cells:
            c = cells[words[1]]
            if len(words) == 6:
                c["hist"].setdefault(words[2], []).append(
                    (int(words[3]), int(words[4]), int(words[5])))
            elif len(words) == 4 and words[2].endswith("_max"):
                c["max"][words[2][:-4]] = int(words[3])
    return cells, splats


def parse_kvm(path):
    """Returns ({row, "overhead", ("hotpath", mappers, hook),
    ("hotpath-derived", mappers) or "hotpath-check": {key: value}}, suite
    result or None)."""
    out, result = {}, None
    with open(path, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    for line in text.splitlines():
        line = re.sub(r"^\[[ 0-9.]+\] ", "", line)
        m = KVM_SUITE.match(line)
        if m:
            result = m.group(1)
        if KVM_MARK not in line:
            continue
        words = line.split(KVM_MARK, 1)[1].split()
        kv = dict(w.partition("=")[::2] for w in words if "=" in w)
        kv = {k: int(v) if v.isdigit() else v for k, v in kv.items()}
        if words and words[0] == "overhead":
            out["overhead"] = kv
        elif words and words[0] == "hotpath-unavailable:":
            out["hotpath-unavailable"] = " ".join(words[1:])
        elif words and words[0] == "zerostep" and "row" in kv:
            out[("zerostep", kv["row"])] = kv
        elif words and words[0] == "calibrate" and kv.get("where") == "guest":
            out["calibrate"] = kv
        elif words and words[0] == "latency-cost":
            out["latency-cost"] = kv
        elif words and words[0] == "zerostep-note":
            out["zerostep-note"] = " ".join(words[1:])
        elif words and HOTPATH.match(words[0]):
            kv = {k: int(v) if re.fullmatch(r"-?[0-9]+", str(v)) else v for k, v in kv.items()}
            if words[0] == "hotpath" and "mappers" in kv and "hook" in kv:
                out[("hotpath", kv["mappers"], kv["hook"])] = kv
            elif words[0] == "hotpath-derived" and "mappers" in kv:
                out[("hotpath-derived", kv["mappers"])] = kv
            elif words[0] == "hotpath-check":
                out["hotpath-check"] = kv
        elif "row" in kv:
            out[kv["row"]] = kv
    return out, result


def kvm_row(raw):
    """A CSV row for a KVM row (the columns it has; the rest stay empty)."""
    us = lambda ns: round(ns / 1000, 1)
    ops = raw.get("ops", 0)
    busy = raw.get("busy_ops", 0)
    return {
        "policy": raw["row"], "vcpus": 1, "shape": "kvm_hog50",
        "ops": ops, "ops_retried": busy, "seamcalls": raw.get("seamcalls", 0),
        "seamcalls_per_op": round(raw.get("seamcalls", 0) / ops, 3) if ops else 0,
        "seamcalls_max": raw.get("seamcalls_max", 0),
        "seamcalls_per_busy_op": round((raw.get("seamcalls", 0) - ops + busy) / busy, 1) if busy else 0,
        "op_p50_us": us(raw.get("p50_ns", 0)), "op_p99_us": us(raw.get("p99_ns", 0)),
        "op_max_us": us(raw.get("max_ns", 0)),
        "kicks": raw.get("kicks", 0), "vm_stops": raw.get("vm_stops", 0),
        "local_retries": raw.get("seamcalls", 0) - ops if raw["row"] == "kvm72" else 0,
    }


def kvm_table(rows):
    by = {r["policy"]: r for r in rows}
    ours = by.get(KVM_OURS)
    head = (f"{'row':<11} {'ops':>4} {'busy':>4} {'SC/op':>7} {'(ratio)':>8} {'SCmax':>6} "
            f"{'SC/busy':>7} {'p50us':>8} {'p99us':>9} {'(ratio)':>8} {'maxus':>10} "
            f"{'kicks':>6} {'stop':>4}")
    out = [head, "-" * len(head)]
    for name in KVM_ROWS:
        r = by.get(name)
        if not r:
            continue
        spo = ratio(r["seamcalls_per_op"], ours["seamcalls_per_op"]) if ours else "-"
        p99 = ratio(r["op_p99_us"], ours["op_p99_us"]) if ours else "-"
        out.append(
            f"{name:<11} {r['ops']:>4} {r['ops_retried']:>4} {r['seamcalls_per_op']:>7.3f} {spo:>8} "
            f"{r['seamcalls_max']:>6} {r['seamcalls_per_busy_op']:>7} {r['op_p50_us']:>8} "
            f"{r['op_p99_us']:>9} {p99:>8} {r['op_max_us']:>10} {r['kicks']:>6} {r['vm_stops']:>4}")
    return "\n".join(out)


def kvm_targets(kvm):
    """The KVM rows' targets and the hook-overhead target: (met, text) each."""
    res = []
    hook = kvm.get(KVM_OURS)
    if hook:
        res.append((hook.get("seamcalls_max", 99) <= 2,
                    f"{KVM_OURS}: at most 2 SEAMCALLs per operation (max {hook.get('seamcalls_max')})"))
        res.append((hook.get("vm_stops", 1) == 0 and hook.get("failed", 1) == 0,
                    f"{KVM_OURS}: every map done, no VM stop (stops {hook.get('vm_stops')}, "
                    f"failed {hook.get('failed')})"))
    o = kvm.get("overhead")
    if o:
        r = o["ratio_median_permille"] / 1000
        pct = (r - 1) * 100
        text = (f"hook overhead at most 2% of an uncontended map: {pct:+.1f}% "
                f"(median {o['hook_median_ns']} ns with the hook vs {o['nohook_median_ns']} ns "
                f"without, {o['ops']} maps each, alternating batches, one run; means "
                f"{o['hook_mean_ns']} vs {o['nohook_mean_ns']} ns, {(o['ratio_mean_permille'] - 1000) / 10:+.1f}%)")
        if r > OVERHEAD_TARGET:
            text += (f": missed under TCG. The hook adds ~{o['hook_median_ns'] - o['nohook_median_ns']} ns "
                     "of emulated instructions (ftrace trampoline, per-VM lookup, policy executor) "
                     "to an operation whose simulated SEAMCALL is 1 us of wall-clock spin, while "
                     "all of KVM's and the hook's code runs emulated, many times slower than on "
                     "hardware (where a TDH.MEM.PAGE.AUG alone takes microseconds), and the ratio "
                     "moves by tens of percent from run to run. Not a hardware measurement")
        res.append((r <= OVERHEAD_TARGET, text))
    return res


def zerostep_rows(kvm):
    """The zero-step case's rows, with the derived columns."""
    rows = []
    for name in ZEROSTEP_ROWS:
        r = kvm.get(("zerostep", name))
        if not r:
            continue
        row = {k: r.get(k, "") for k in ZEROSTEP_COLUMNS}
        wall, faults, maps = r.get("wall_ns", 0), r.get("faults", 0), r.get("maps", 0)
        row["row"] = name
        row["wall_ms"] = round(wall / 1e6, 1)
        row["faults_per_s"] = round(faults / (wall / 1e9)) if wall else 0
        row["seamcalls_per_map"] = round(r.get("seamcalls", 0) / maps, 3) if maps else 0
        row["kicks_per_fault"] = round(r.get("kicks", 0) / faults, 3) if faults else 0
        row["gate_held_ms"] = round(r.get("gate_held_ns", 0) / 1e6, 2)
        row["gate_held_pct"] = round(100 * r.get("gate_held_ns", 0) / wall, 1) if wall else 0
        for q in ("p50", "p99", "max"):
            row[f"fault_{q}_us"] = round(r.get(f"fault_{q}_ns", 0) / 1000, 1)
        rows.append(row)
    return rows


def zerostep_table(rows):
    head = (f"{'row':<10} {'faults':>6} {'faults/s':>8} {'SC/map':>6} {'SCmax':>5} {'busy':>5} "
            f"{'enterbusy':>9} {'kicks/fault':>11} {'gate ms':>8} {'gate%':>5} {'p50us':>7} "
            f"{'p99us':>8} {'refused':>8} {'stop':>4}")
    out = [head, "-" * len(head)]
    for r in rows:
        out.append(
            f"{r['row']:<10} {r['faults']:>6} {r['faults_per_s']:>8} {r['seamcalls_per_map']:>6.3f} "
            f"{r['seamcalls_max']:>5} {r['busy_statuses']:>5} {r['enter_busy']:>9} "
            f"{r['kicks_per_fault']:>11.3f} {r['gate_held_ms']:>8.1f} {r['gate_held_pct']:>5.1f} "
            f"{r['fault_p50_us']:>7.1f} {r['fault_p99_us']:>8.1f} {r['refused']:>8} {r['vm_stops']:>4}")
    return "\n".join(out)


def zerostep_targets(rows):
    """The zero-step case's targets: (met, text) each."""
    by = {r["row"]: r for r in rows}
    res = []
    opts = [by[n] for n in ZEROSTEP_OPTIONS if n in by]
    if opts:
        stops = ", ".join(f"{r['row']} {r['vm_stops']}" for r in opts)
        res.append((all(r["vm_stops"] == 0 and r["failed"] == 0 for r in opts),
                    f"zero-step: no VM stop and every fault mapped under both responses "
                    f"(stops: {stops})"))
    if rows:
        left = ", ".join(f"{r['row']} {r['gate_left']}" for r in rows)
        res.append((all(r["gate_left"] == 0 for r in rows),
                     f"zero-step: no gate left up after any batch (left: {left})"))
    return res


def hotpath_rows(kvm):
    """The hot path's rows, one per mapper count and side, with the ratio
    and the added time on the hook rows (from the trimmed means and the
    medians the kernel printed)."""
    rows = []
    for n in HOTPATH_MAPPERS:
        sides = [kvm.get(("hotpath", n, h)) for h in (0, 1)]
        if not all(sides):
            continue
        base = sides[0]
        for hook, r in enumerate(sides):
            row = {k: r.get(k, "") for k in HOTPATH_COLUMNS}
            maps = r.get("maps", 0)
            row["overlap_pct"] = round(100 * r.get("overlapped", 0) / maps, 1) if maps else 0
            for k in ("ratio", "added_ns", "ratio_p50", "added_p50_ns"):
                row[k] = ""
            if hook and base.get("map_ns_trimmed") and r.get("map_ns_trimmed"):
                row["ratio"] = round(base["map_ns_trimmed"] / r["map_ns_trimmed"], 3)
                row["added_ns"] = r["map_ns_trimmed"] - base["map_ns_trimmed"]
            if hook and base.get("map_ns_p50") and r.get("map_ns_p50"):
                row["ratio_p50"] = round(base["map_ns_p50"] / r["map_ns_p50"], 3)
                row["added_p50_ns"] = r["map_ns_p50"] - base["map_ns_p50"]
            row["wall_maps_per_s"] = kvm.get(("hotpath-derived", n), {}).get("wall_maps_per_s", "")
            rows.append(row)
    return rows


def hotpath_table(rows):
    by = {(r["mappers"], r["hook"]): r for r in rows}
    f = lambda v, spec: "-" if v == "" or v is None else format(v, spec)
    head = (f"{'mappers':>7} {'maps/s no hook':>14} {'maps/s hook':>12} {'ratio':>6} "
            f"{'added ns/map':>12} {'p50 ratio':>9} {'p50 added ns':>12} {'overlap%':>9} "
            f"{'maps':>11} {'slow':>7}")
    out = [head, "-" * len(head)]
    for n in HOTPATH_MAPPERS:
        a, b = by.get((n, 0)), by.get((n, 1))
        if not (a and b):
            continue
        out.append(
            f"{n:>7} {f(a['maps_per_s'], '>14')} {f(b['maps_per_s'], '>12')} {f(b['ratio'], '>6.3f')} "
            f"{f(b['added_ns'], '>+12')} {f(b['ratio_p50'], '>9.3f')} {f(b['added_p50_ns'], '>+12')} "
            f"{f(a['overlap_pct'], '>4.0f')}/{f(b['overlap_pct'], '<4.0f')} "
            f"{f(a['maps'], '>5')}/{f(b['maps'], '<5')} {f(a['slow'], '>3')}/{f(b['slow'], '<3')}")
    return "\n".join(out)


def hotpath_targets(rows, baseline=None):
    """The hot path's targets: (met, text) each."""
    baseline = HOTPATH_BASELINE if baseline is None else baseline
    by = {(r["mappers"], r["hook"]): r for r in rows}
    one, three = by.get((1, 1)), by.get((3, 1))
    res = []
    if one and three and one["ratio"] and three["ratio"]:
        f = three["ratio"] / one["ratio"]
        f50 = three["ratio_p50"] / one["ratio_p50"] if one["ratio_p50"] and three["ratio_p50"] else 0
        overlap = min(by[(3, 0)]["overlap_pct"], three["overlap_pct"])
        text = (f"hot path: ratio at 3 mappers >= {HOTPATH_SCALING_TARGET} x the ratio at 1 mapper: "
                f"{three['ratio']:.3f} vs {one['ratio']:.3f} ({f:.3f}x; on the medians "
                f"{three['ratio_p50']:.3f} vs {one['ratio_p50']:.3f}, {f50:.3f}x); the 3 mappers' "
                f"maps began while another mapper's was running in {by[(3, 0)]['overlap_pct']:.0f}% / "
                f"{three['overlap_pct']:.0f}% of them (without / with the hook)")
        if overlap < 50:
            text += (": fewer than half ran beside another, three busy emulated CPUs sharing a "
                     "2-core host with whatever else it runs, so this is weak evidence either way")
        res.append((f >= HOTPATH_SCALING_TARGET, text))
    if one and one["ratio"]:
        share = one["added_ns"] / by[(1, 0)]["map_ns_trimmed"]
        old_share = 1 / baseline["ratio"] - 1
        text = (f"hot path: added time per map (1 mapper) lower than the previous implementation's: "
                f"{one['added_ns']:+} ns, {100 * share:+.1f}% of a map without the hook, vs "
                f"{baseline['added_ns']:+} ns, {100 * old_share:+.1f}% ({baseline['what']}); judged "
                f"on the share: the host's speed moves both figures by tens of percent from one "
                f"run to the next, and cancels in the share")
        res.append((share < old_share, text))
    return res


def parse_host_calibrate(path):
    """The host's runs of the calibration loop: [{key: value}] from the lines
    `calibrate where=host ... when=before|after` of PATH."""
    runs = []
    with open(path) as f:
        for line in f:
            words = line.split()
            if words[:2] != ["calibrate", "where=host"]:
                continue
            kv = dict(w.partition("=")[::2] for w in words[1:] if "=" in w)
            runs.append({k: int(v) if v.isdigit() else v for k, v in kv.items()})
    return runs


def slowdown(guest, host_runs):
    """The emulation slowdown from the guest's and the host's times of the
    same loop: {guest_min_ns, guest_median_ns, host_min_ns, host_median_ns,
    factor (min / min), factor_median, host_runs, checksum_ok}, or None
    when a side is missing or the two did not run the same loop."""
    if not guest or not host_runs or not guest.get("min_ns"):
        return None
    hosts = [r for r in host_runs if r.get("min_ns")]
    if not hosts:
        return None
    same = all(r.get("iterations") == guest.get("iterations") for r in hosts)
    checksum_ok = all(r.get("checksum") == guest.get("checksum") for r in hosts)
    host_min = min(r["min_ns"] for r in hosts)
    medians = sorted(r["median_ns"] for r in hosts)
    host_median = medians[len(medians) // 2] if len(medians) % 2 else \
        (medians[len(medians) // 2 - 1] + medians[len(medians) // 2]) / 2
    return {
        "iterations": guest.get("iterations"), "guest_reps": guest.get("reps"),
        "guest_min_ns": guest["min_ns"], "guest_median_ns": guest["median_ns"],
        "host_min_ns": host_min, "host_median_ns": host_median,
        "host_runs": len(hosts), "host_reps": sum(r.get("reps", 0) for r in hosts),
        "factor": guest["min_ns"] / host_min,
        "factor_median": guest["median_ns"] / host_median if host_median else 0,
        "same": same and checksum_ok,
    }


def native_estimates(hot_rows, slow):
    """Per mapper count: the hook's added ns per map under TCG (trimmed
    means and medians, from the hot path) and each divided by the
    slowdown: an estimate of the native added time, not a measurement."""
    out = []
    if not slow or not slow["same"] or not slow["factor"]:
        return out
    for r in hot_rows:
        if r["hook"] != 1 or r["added_ns"] == "":
            continue
        est = {"mappers": r["mappers"], "added_ns": r["added_ns"],
               "added_p50_ns": r["added_p50_ns"], "slowdown": round(slow["factor"], 2),
               "est_native_added_ns": round(r["added_ns"] / slow["factor"]),
               "est_native_added_ns_median_slowdown": round(r["added_ns"] / slow["factor_median"])
               if slow["factor_median"] else "",
               "est_native_added_p50_ns": round(r["added_p50_ns"] / slow["factor"])
               if r["added_p50_ns"] != "" else ""}
        out.append(est)
    return out


ESTIMATE_COLUMNS = ["mappers", "added_ns", "added_p50_ns", "slowdown", "est_native_added_ns",
                    "est_native_added_ns_median_slowdown", "est_native_added_p50_ns"]


def slowdown_text(slow):
    ms = lambda ns: f"{ns / 1e6:.1f} ms"
    text = (f"Emulation slowdown: the loop of rust/kunit/c/calibrate.c ({slow['iterations']} "
            f"iterations) took {ms(slow['guest_min_ns'])} in the guest kernel under TCG (fastest "
            f"of {slow['guest_reps']}; median {ms(slow['guest_median_ns'])}) and "
            f"{ms(slow['host_min_ns'])} natively on the host (fastest of {slow['host_reps']} in "
            f"{slow['host_runs']} runs, before and after the boot; median "
            f"{ms(slow['host_median_ns'])}): {slow['factor']:.1f}x (on the medians "
            f"{slow['factor_median']:.1f}x).")
    if not slow["same"]:
        text += (" The guest's and the host's checksums or lengths differ: not the same "
                 "computation, so no estimate.")
    return text


def estimate_table(ests):
    head = (f"{'mappers':>7} {'added ns/map (TCG)':>18} {'p50 added (TCG)':>15} "
            f"{'ESTIMATE native ns/map':>22} {'(median slowdown)':>17} {'p50 estimate':>12}")
    out = [head, "-" * len(head)]
    f = lambda v, spec: "-" if v == "" else format(v, spec)
    for e in ests:
        out.append(f"{e['mappers']:>7} {f(e['added_ns'], '>+18')} {f(e['added_p50_ns'], '>+15')} "
                   f"{f(e['est_native_added_ns'], '>+22')} "
                   f"{f(e['est_native_added_ns_median_slowdown'], '>+17')} "
                   f"{f(e['est_native_added_p50_ns'], '>+12')}")
    return "\n".join(out)


def latency_cost_text(cost, slow):
    """The latency histograms' recording cost the suite measured under TCG
    (`latency-cost`), and the same divided by the slowdown: an estimate."""
    text = (f"Latency histograms (latency=1, the default), recording cost under TCG: "
            f"{cost['map_ns']} ns per map call (two local_clock() reads and one record), "
            f"{cost['record_ns']} ns per record alone (a kick, a gate hold, a SEAMCALL's time); "
            f"one clock read: local_clock() {cost.get('local_clock_ns', '?')} ns, ktime_get() "
            f"{cost.get('ktime_ns', '?')} ns; one CPU, best of {cost.get('reps', '?')} loops of "
            f"{cost.get('calls', '?')} calls.")
    if slow and slow["same"] and slow["factor"]:
        text += (f" ESTIMATE native: {cost['map_ns'] / slow['factor']:.0f} ns per map, "
                 f"{cost['record_ns'] / slow['factor']:.0f} ns per record (/ {slow['factor']:.1f}x), "
                 f"a weak one: TCG emulates the clock's RDTSC with a call into the emulator, not "
                 f"slowed as the loop is; uncontended: concurrent mappers of one VM share its "
                 f"histograms' cache lines.")
    return text


def percentile(buckets, q):
    """Upper bound (exclusive) of the bucket holding quantile q, in ns."""
    total = sum(n for _, _, n in buckets)
    if total == 0:
        return 0
    rank = q * total
    seen = 0
    for _, high, n in sorted(buckets):
        seen += n
        if seen >= rank:
            return high
    return sorted(buckets)[-1][1]


def row_of(name, raw):
    """A CSV row for the cell NAME: POLICY-VCPUS-SHAPE, or
    POLICY-VCPUS-SHAPE@PERCENT for a cell of the SEAMCALL-cost sweep."""
    base, _, cost = name.partition("@")
    policy, vcpus, shape = base.rsplit("-", 2)[0], int(base.rsplit("-", 2)[1]), base.rsplit("-", 2)[2]
    s = raw["stats"]
    retried = s.get("sim_ops_retried", 0)
    ops = s.get("sim_sept_ops", 0)
    seamcalls = s.get("seamcalls", 0)
    op_h, fault_h = raw["hist"].get("op_ns", []), raw["hist"].get("fault_ns", [])
    elapsed = raw.get("elapsed_ms", 0)
    gated_ms = s.get("sim_gated_ns", 0) / 1e6
    us = lambda ns: round(ns / 1000, 1)
    return {
        "policy": policy, "vcpus": vcpus, "shape": shape,
        "cost_pct": int(cost) if cost.isdigit() else DEFAULT_COST_PCT,
        "ops": ops, "ops_retried": s.get("sim_ops_retried", 0), "seamcalls": seamcalls,
        "seamcalls_per_op": round(seamcalls / ops, 3) if ops else 0,
        "seamcalls_max": s.get("sim_max_tries", 0),
        # Operations that met a busy status: their SEAMCALLs, on average.
        "seamcalls_per_busy_op": round(
            (seamcalls - ops + s.get("sim_ops_retried", 0)) / s["sim_ops_retried"], 1)
        if s.get("sim_ops_retried") else 0,
        # Their mean time (a module without the counter: empty).
        "busy_op_mean_us": (us(s["sim_retried_op_ns"] / retried) if retried else 0)
        if "sim_retried_op_ns" in s else "",
        "op_p50_us": us(percentile(op_h, 0.50)),
        "op_p99_us": us(percentile(op_h, 0.99)),
        "op_max_us": us(raw["max"].get("op_ns", 0)),
        "fault_p50_us": us(percentile(fault_h, 0.50)),
        "fault_p99_us": us(percentile(fault_h, 0.99)),
        "fault_max_us": us(raw["max"].get("fault_ns", 0)),
        "faults": sum(n for _, _, n in fault_h),
        "kicks": s.get("kicks", 0),
        "gated_ms": round(gated_ms, 1),
        "gated_pct": round(100 * gated_ms / (elapsed * vcpus), 1) if elapsed else 0,
        "zero_step_engaged": s.get("sim_mitigation_engaged", 0),
        "zero_step_detected": s.get("zero_step_events", 0),
        "vm_stops": s.get("sim_vm_stopped", 0),
        "stop_reason": raw.get("stop_reason", ""),
        "local_retries": s.get("sim_local_retries", 0),
        "vp_enters": s.get("sim_vp_enters", 0),
        "guest_ops": s.get("sim_guest_ops", 0),
        "elapsed_ms": elapsed,
        "timeout": raw.get("timeout", 0),
    }


def ratio(a, b):
    if not b:
        return "-"
    return f"{a / b:.1f}x"


def table(rows):
    by = {(r["policy"], r["vcpus"], r["shape"]): r for r in rows}
    out = []
    head = (f"{'shape':<9} {'vcpus':>5} {'policy':<15} {'SC/op':>7} {'(ratio)':>8} "
            f"{'SCmax':>6} {'SC/busy':>7} {'busyus':>8} {'p50us':>8} {'p99us':>9} {'(ratio)':>8} "
            f"{'maxus':>10} {'flt50us':>8} {'flt99us':>9} {'kicks':>6} {'gated%':>6} {'0step':>5} "
            f"{'stop':>4}")
    out.append(head)
    out.append("-" * len(head))
    for shape in SHAPES:
        for vcpus in sorted({r["vcpus"] for r in rows}):
            ours = by.get((OURS, vcpus, shape))
            for policy in POLICIES:
                r = by.get((policy, vcpus, shape))
                if not r:
                    continue
                spo_ratio = ratio(r["seamcalls_per_op"], ours["seamcalls_per_op"]) if ours else "-"
                p99_ratio = ratio(r["op_p99_us"], ours["op_p99_us"]) if ours else "-"
                out.append(
                    f"{shape:<9} {vcpus:>5} {policy:<15} {r['seamcalls_per_op']:>7.3f} "
                    f"{spo_ratio:>8} {r['seamcalls_max']:>6} {r['seamcalls_per_busy_op']:>7} "
                    f"{r['busy_op_mean_us']:>8} {r['op_p50_us']:>8} "
                    f"{r['op_p99_us']:>9} {p99_ratio:>8} {r['op_max_us']:>10} "
                    f"{r['fault_p50_us']:>8} {r['fault_p99_us']:>9} "
                    f"{r['kicks']:>6} {r['gated_pct']:>6} {r['zero_step_engaged']:>5} "
                    f"{r['vm_stops']:>4}")
        out.append("")
    return "\n".join(out)


def cost_label(pct):
    """x0.5 for 50 (percent of the assumed SEAMCALL cost)."""
    return f"x{pct / 100:g}"


def split_rows(rows):
    """(the main table's rows: the assumed SEAMCALL cost; the sweep's rows:
    {vcpus: {cost_pct: {policy: row}}} for the zerostep cells of the vCPU
    counts that were run at another cost, the main table's cells as x1)."""
    main = [r for r in rows if r["cost_pct"] == DEFAULT_COST_PCT]
    swept = {r["vcpus"] for r in rows if r["cost_pct"] != DEFAULT_COST_PCT and r["shape"] == "zerostep"}
    sweep = {}
    for r in rows:
        if r["shape"] == "zerostep" and r["vcpus"] in swept:
            sweep.setdefault(r["vcpus"], {}).setdefault(r["cost_pct"], {})[r["policy"]] = r
    return main, sweep


def sweep_table(sweep):
    """The SEAMCALL-cost sweep: the targets' quantities per cost and policy."""
    head = (f"{'vcpus':>5} {'cost':>5} {'policy':<15} {'ops':>6} {'busy':>5} {'SCmax':>6} "
            f"{'SC/busy':>7} {'(ratio)':>8} {'busyus':>8} {'flt50us':>8} {'flt99us':>9} "
            f"{'(ratio)':>8} {'stop':>4}")
    out = [head, "-" * len(head)]
    for vcpus in sorted(sweep):
        for cost in sorted(sweep[vcpus]):
            cell = sweep[vcpus][cost]
            ours = cell.get(OURS)
            for policy in POLICIES:
                r = cell.get(policy)
                if not r:
                    continue
                busy = ratio(r["seamcalls_per_busy_op"], ours["seamcalls_per_busy_op"]) if ours else "-"
                f99 = ratio(r["fault_p99_us"], ours["fault_p99_us"]) if ours else "-"
                out.append(
                    f"{vcpus:>5} {cost_label(cost):>5} {policy:<15} {r['ops']:>6} "
                    f"{r['ops_retried']:>5} {r['seamcalls_max']:>6} {r['seamcalls_per_busy_op']:>7} "
                    f"{busy:>8} {r['busy_op_mean_us']:>8} {r['fault_p50_us']:>8} "
                    f"{r['fault_p99_us']:>9} {f99:>8} {r['vm_stops']:>4}")
    return "\n".join(out)


def storm_targets(cell, vcpus, cost=DEFAULT_COST_PCT):
    """The zero-step storm's two targets for one cell row ({policy: row}):
    (met, text) each."""
    o, b, u = cell.get(OURS), cell.get("blind_retry"), cell.get("upstream72")
    where = f"zero-step storm, {vcpus} vCPU(s)"
    if cost != DEFAULT_COST_PCT:
        where += f", SEAMCALL cost {cost_label(cost)}"
    res = []
    if o and b:
        ob, bb = o["seamcalls_per_busy_op"], b["seamcalls_per_busy_op"]
        text = (f"{where}: ours' mean SEAMCALLs per contended operation (one that met a busy "
                f"status) >= {CONTENDED_TARGET}x lower than blind_retry's: ")
        if not (o["ops_retried"] and b["ops_retried"]):
            met = False
            none = [n for n, r in ((OURS, o), ("blind_retry", b)) if not r["ops_retried"]]
            text += (f"cannot be judged: no operation of {' or '.join(none)} met a busy status "
                     f"in this cell ({o['ops_retried']} and {b['ops_retried']} contended operations)")
        else:
            f = bb / ob
            met = f >= CONTENDED_TARGET
            text += (f"{ob} vs {bb} ({f:.1f}x lower; over {o['ops_retried']} and "
                     f"{b['ops_retried']} contended operations; their mean time "
                     f"{o['busy_op_mean_us']} vs {b['busy_op_mean_us']} us)")
            if not met:
                text += (f": only {f:.1f}x; blind_retry's contended operations took "
                         f"{bb} SEAMCALLs on average, at most {b['seamcalls_max']}")
                if bb < 3:
                    # Each took at least 2: at most (bb - 2) of them took more.
                    text += (f", so at least {1 - (bb - 2):.0%} of them succeeded on their first "
                             f"retry, as every one of ours did")
        if b["vm_stops"]:
            text += " (blind_retry's VM stopped: its numbers cover the run until then)"
        res.append((met, text))
    if o and u:
        text = (f"{where}: ours' fault-to-map p99 no worse than upstream72's: "
                f"{o['fault_p99_us']} vs {u['fault_p99_us']} us (p50 {o['fault_p50_us']} vs "
                f"{u['fault_p50_us']} us; {o['faults']} and {u['faults']} faulting accesses; "
                f"percentiles are bucket upper bounds)")
        if not (o["faults"] and u["faults"]):
            met = False
            text += ": cannot be judged, a cell without a resolved fault"
        else:
            met = o["fault_p99_us"] <= u["fault_p99_us"]
            if not met:
                text += (f": {o['fault_p99_us'] / u['fault_p99_us']:.1f}x upstream72's; ours' "
                         f"contended faults wait for kicks ({o['kicks']} in the cell against "
                         f"{u['kicks']}), IPIs between emulated CPUs that the host schedules, "
                         f"where upstream72 retries at once")
        res.append((met, text))
    return res


def targets(rows):
    """The issue's targets over every cell, the sweep's included: (met, text)
    each."""
    main, sweep = split_rows(rows)
    ours = [r for r in rows if r["policy"] == OURS]
    res = []

    def cell_name(r):
        extra = "" if r["cost_pct"] == DEFAULT_COST_PCT else f" {cost_label(r['cost_pct'])}"
        return f"{r['vcpus']}/{r['shape']}{extra}"

    over = [r for r in ours if r["seamcalls_max"] > 2]
    worst = max((r["seamcalls_max"] for r in ours), default=0)
    res.append((not over, f"ours: worst case at most 2 SEAMCALLs per operation in every cell "
                f"({len(ours)} cells, the sweep's included; most in one operation: {worst})" + (
                    "" if not over else ": exceeded in " + ", ".join(
                        f"{cell_name(r)} (max {r['seamcalls_max']})" for r in over))))

    stops = [r for r in ours if r["vm_stops"]]
    res.append((not stops, "ours: no VM stop in any cell (the simulated TDX module is correct in all)" + (
        "" if not stops else ": stopped in " + ", ".join(
            f"{cell_name(r)} ({r['stop_reason'] or 'see log'})" for r in stops))))

    by = {}
    for r in main:
        if r["shape"] == "zerostep":
            by.setdefault(r["vcpus"], {})[r["policy"]] = r
    for vcpus in sorted(by):
        res += storm_targets(by[vcpus], vcpus)
    for vcpus in sorted(sweep):
        for cost in sorted(sweep[vcpus]):
            if cost != DEFAULT_COST_PCT:
                res += storm_targets(sweep[vcpus][cost], vcpus, cost)
    return res


def plots(rows, outdir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = [(s, v) for s in SHAPES for v in sorted({r["vcpus"] for r in rows})]
    by = {(r["policy"], r["vcpus"], r["shape"]): r for r in rows}
    colors = {"kick_and_retry": "#1b9e77", "upstream72": "#7570b3", "blind_retry": "#d95f02"}
    labels = [f"{s}\n{v} vCPU" for s, v in cells]
    width = 0.27
    files = []

    def bars(ax, key, title, ylabel, log=True, marker_key=None):
        for i, p in enumerate(POLICIES):
            xs = [j + (i - 1) * width for j in range(len(cells))]
            ys = [by.get((p, v, s), {}).get(key, 0) for s, v in cells]
            stopped = [bool(by.get((p, v, s), {}).get("vm_stops")) for s, v in cells]
            ax.bar(xs, ys, width, label=p, color=colors[p],
                   hatch=["xx" if st else "" for st in stopped],
                   edgecolor=["red" if st else colors[p] for st in stopped])
            if marker_key:
                ms = [by.get((p, v, s), {}).get(marker_key, 0) for s, v in cells]
                ax.scatter(xs, ms, marker="_", s=120, color="black", zorder=3)
        ax.set_xticks(range(len(cells)))
        ax.set_xticklabels(labels, fontsize=8)
        ax.set_title(title + ("\n(red hatched: the VM was stopped in that cell)"
                              if any(r["vm_stops"] for r in rows) else ""), fontsize=10)
        ax.set_ylabel(ylabel)
        if log:
            ax.set_yscale("log")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)

    fig, ax = plt.subplots(figsize=(12, 5))
    bars(ax, "seamcalls_per_op", "SEAMCALLs per S-EPT operation (bar: mean; dash: max)",
         "SEAMCALLs", marker_key="seamcalls_max")
    ax.axhline(2, color="gray", linestyle="--", linewidth=0.8)
    fig.tight_layout()
    files.append(os.path.join(outdir, "seamcalls_per_op.png"))
    fig.savefig(files[-1], dpi=110)

    fig, axes = plt.subplots(2, 1, figsize=(12, 9))
    bars(axes[0], "op_p99_us", "S-EPT operation latency p99 (dash: p50)", "µs", marker_key="op_p50_us")
    bars(axes[1], "fault_p99_us", "Fault resolution latency p99 (dash: p50)", "µs", marker_key="fault_p50_us")
    fig.tight_layout()
    files.append(os.path.join(outdir, "latency.png"))
    fig.savefig(files[-1], dpi=110)

    fig, axes = plt.subplots(2, 2, figsize=(15, 10))
    bars(axes[0][0], "kicks", "Kicks", "kicks")
    bars(axes[0][1], "gated_pct", "vCPU time refused by the entry gate", "% of vCPU time", log=False)
    bars(axes[1][0], "zero_step_engaged", "Zero-step mitigation engaged (simulated TDX module)", "times")
    bars(axes[1][1], "local_retries", "Faults re-run locally (KVM 7.2's local retry)", "re-runs")
    fig.tight_layout()
    files.append(os.path.join(outdir, "events.png"))
    fig.savefig(files[-1], dpi=110)
    plt.close("all")
    return files


def write_csv(path, columns, rows):
    """Writes `rows` (dicts) to `path` as CSV with the header `columns`."""
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("log")
    ap.add_argument("outdir")
    ap.add_argument("--expect", type=int, default=0, help="number of cells the run should have")
    ap.add_argument("--kvm", action="store_true",
                    help="the log must hold the KVM benchmark suite's rows and overhead")
    ap.add_argument("--plots", action="store_true")
    ap.add_argument("--host-calibrate", metavar="FILE",
                    help="the host's runs of the calibration loop (scripts/calibrate-host.c)")
    args = ap.parse_args()

    cells, splats = parse_log(args.log)
    ok = True
    rows = []
    for name, raw in cells.items():
        if raw.get("insmod_failed"):
            print(f"cell {name}: insmod failed", file=sys.stderr)
            ok = False
            continue
        if "elapsed_ms" not in raw:
            print(f"cell {name}: did not finish", file=sys.stderr)
            ok = False
            continue
        rows.append(row_of(name, raw))
    if args.expect and len(rows) != args.expect:
        print(f"{len(rows)} of {args.expect} cells ran", file=sys.stderr)
        ok = False
    for line in splats:
        print(f"kernel: {line}", file=sys.stderr)
        ok = False

    kvm, kvm_result = parse_kvm(args.log)
    kvm_rows = [kvm_row(kvm[n]) for n in KVM_ROWS if n in kvm]
    hot_rows = hotpath_rows(kvm)
    zs_rows = zerostep_rows(kvm)
    host_runs = []
    if args.host_calibrate and os.path.exists(args.host_calibrate):
        host_runs = parse_host_calibrate(args.host_calibrate)
    slow = slowdown(kvm.get("calibrate"), host_runs)
    ests = native_estimates(hot_rows, slow)
    main_rows, sweep = split_rows(rows)
    if args.kvm:
        missing = [n for n in KVM_ROWS + ["overhead"] if n not in kvm]
        missing += [f"hotpath mappers={n} hook={h}" for n in HOTPATH_MAPPERS for h in (0, 1)
                    if ("hotpath", n, h) not in kvm]
        missing += [f"zerostep row={n}" for n in ZEROSTEP_ROWS if ("zerostep", n) not in kvm]
        missing += [n for n in ("calibrate", "latency-cost") if n not in kvm]
        if "hotpath-unavailable" in kvm:
            print(f"KVM benchmark: hot path not run: {kvm['hotpath-unavailable']}", file=sys.stderr)
        if missing:
            print(f"KVM benchmark: no line for {', '.join(missing)}", file=sys.stderr)
            ok = False
        if kvm_result != "ok":
            print(f"KVM benchmark suite: {kvm_result or 'no result'}", file=sys.stderr)
            ok = False

    os.makedirs(args.outdir, exist_ok=True)
    path = os.path.join(args.outdir, "results.csv")
    write_csv(path, COLUMNS, rows + kvm_rows)
    zs_path = os.path.join(args.outdir, "zerostep.csv")
    if zs_rows:
        write_csv(zs_path, ZEROSTEP_COLUMNS, zs_rows)
    est_path = os.path.join(args.outdir, "estimate.csv")
    if ests:
        write_csv(est_path, ESTIMATE_COLUMNS, ests)
    hot_path = os.path.join(args.outdir, "hotpath.csv")
    if hot_rows:
        write_csv(hot_path, HOTPATH_COLUMNS, hot_rows)

    print(table(main_rows))
    print("SC/op: SEAMCALLs per S-EPT operation (mean; ratio: policy / kick_and_retry); "
          "SCmax: the worst case, most SEAMCALLs in one operation;")
    print("SC/busy, busyus: mean SEAMCALLs and mean time of the contended operations (those that "
          "met a busy status: more than one SEAMCALL);")
    print("p50us/p99us/maxus: operation latency (percentiles: bucket upper bounds); "
          "flt50us/flt99us: fault-to-map time of faulting guest accesses;")
    print("gated%: vCPU time refused by the gate;")
    print("0step: zero-step mitigation engagements in the simulated TDX module; "
          "stop: the VM was stopped.")
    print("All numbers: the simulator under QEMU TCG (a model), not TDX hardware.")
    if sweep:
        print()
        print("SEAMCALL-cost sweep, zero-step storm: the simulated SEAMCALL cost (1 us round trip + "
              "2 us inside with the locks held) x0.5, x1, x2:")
        print(sweep_table(sweep))
        print("busy: contended operations; SC/busy (ratio: policy / kick_and_retry), busyus: their "
              "mean SEAMCALLs and time; flt50us/flt99us (ratio: policy /")
        print("kick_and_retry): fault-to-map time. x1: the main table's cells.")
    if kvm_rows:
        print()
        print("KVM's real tdx_sept_set_private_spte() (the test kernel's series) on the simulated TDX module, 1 vCPU "
              "holding the page's S-EPT entry before half of the maps (shape kvm_hog50):")
        print(kvm_table(kvm_rows))
        print("kvm72: KVM alone, its local retry emulated (one SEAMCALL per try); kvm72+hook: "
              "with the module's hook; ratios: row / kvm72+hook; busy: maps that met a busy status.")
    if hot_rows:
        print()
        print("Hot path: 1, 2 and 3 mappers (kthreads on CPUs 0, 2, 3) mapping at once on one fake "
              "TD, rounds without and with the hook in turn:")
        print(hotpath_table(hot_rows))
        print("Measured: each map call (KVM's tdx_sept_set_private_spte(), non-present to 4K, inside "
              "mmu_lock's read side, not its acquisition);")
        print("the unmaps (write side, serialized) are not timed. Without the hook: KVM's function "
              "entered past its ftrace site, as when")
        print("nothing is attached. maps/s: mappers / mean map time over the maps under 1 ms (slow: "
              "the others, no hook/hook); ratio: maps/s")
        print("with the hook / without; added: hook - no hook per map; p50: the same on the medians; "
              "overlap%: maps begun while another")
        print("mapper was inside one (no hook/hook). Under TCG: emulated code, not hardware.")
        c = kvm.get("hotpath-check")
        if c:
            r = c.get("ratio_permille", 0) / 1000
            print(f"Check, the hook detached, 1 mapper: entered past the ftrace site "
                  f"{c.get('past_site_ns_trimmed')} ns, at the entry {c.get('entry_ns_trimmed')} ns "
                  f"per map (ratio {r:.3f}; medians {c.get('past_site_ns_p50')} vs "
                  f"{c.get('entry_ns_p50')} ns).")
    if slow or kvm.get("calibrate") or host_runs or kvm.get("latency-cost"):
        print()
        print("The hook's added time per map under TCG, the emulation slowdown measured in this "
              "run, and the native added time ESTIMATED from them:")
        if slow:
            print(slowdown_text(slow))
        if kvm.get("latency-cost"):
            print(latency_cost_text(kvm["latency-cost"], slow))
        else:
            print(f"Emulation slowdown: not measured in this run (guest line: "
                  f"{'yes' if kvm.get('calibrate') else 'no'}, host runs: {len(host_runs)}).")
        if ests:
            print(estimate_table(ests))
            print("added: the hot path's added ns per map under TCG (trimmed means; p50: medians); "
                  "ESTIMATE: added / slowdown (median slowdown: on the medians' slowdown).")
            print("An estimate, not a measurement: TCG slows each kind of instruction by its own "
                  "factor. The loop (loads, stores, multiplies in one")
            print("block) is what TCG emulates best; the hook's code (calls, indirect jumps, atomics, "
                  "the ftrace trampoline, this test kernel's")
            print("lockdep) likely slows more, which would make the estimate high. The order of "
                  "magnitude, for this test kernel's configuration.")
    if zs_rows:
        print()
        print("Zero-step on KVM: fake vCPUs mapping their own fresh pages through KVM's function, the "
              "simulated TDX module's zero-step")
        print("mitigation engaged for each (the 7th fault at one RIP); rows in rotating order, "
              "one boot:")
        print(zerostep_table(zs_rows))
        print("upstream72: pass-through, KVM's local retry; B-observe: shipped (tracepoints observe, "
              "the map path kicks and retries on busy);")
        print("A-hold: gate raised and vCPUs kicked at kvm_page_fault, held until that vCPU's fault "
              "GFN is mapped. SC/map: SEAMCALLs per fault's")
        print("map, local retries included; busy: busy statuses of map SEAMCALLs; enterbusy: busy "
              "TDH.VP.ENTERs; gate ms/%: time the gate was up")
        print("(share of the wall time); p50/p99: from the fault with the mitigation engaged to its "
              "map; refused: entries refused by the gate.")
    print()
    print("Targets:")
    for met, text in (targets(rows) + kvm_targets(kvm) + hotpath_targets(hot_rows)
                      + zerostep_targets(zs_rows)):
        print(f"  [{'met' if met else 'MISSED'}] {text}")
    print()
    print(f"CSV: {path}")
    if hot_rows:
        print(f"CSV: {hot_path}")
    if zs_rows:
        print(f"CSV: {zs_path}")
    if ests:
        print(f"CSV: {est_path}")
    if args.plots and main_rows:
        for p in plots(main_rows, args.outdir):
            print(f"plot: {p}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
