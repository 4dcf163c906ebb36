# SPDX-License-Identifier: GPL-2.0
"""Tests of scripts/bench.py on small made-up guest logs: the lines of the
KVM benchmark suite's hot-path case become rows with the ratio and the added
time, and the two targets; those of its zero-step case become rows with
rates and shares, and their two targets; the simulator's cells become rows
with the worst case, the contended operations' mean and the fault-to-map
percentiles, and the storm targets, the SEAMCALL-cost sweep's included; the
calibration lines become the emulation slowdown and the native estimate.
Run from the repository's top:

  python3 -m unittest discover -s scripts/tests -v
"""

import importlib.util
import os
import sys
import tempfile
import unittest

SCRIPTS = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.dont_write_bytecode = True
_spec = importlib.util.spec_from_file_location("bench", os.path.join(SCRIPTS, "bench.py"))
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

PREFIX = "[   17.1] tdx_sept_guard_kunit: tsg-bench-kvm: "


def side(mappers, hook, trimmed, p50, overlapped=0, maps=1000):
    return (f"hotpath mappers={mappers} hook={hook} maps={maps} slow=1 map_ns_mean={trimmed + 500} "
            f"map_ns_trimmed={trimmed} map_ns_p50={p50} map_ns_p99={3 * p50} "
            f"maps_per_s={mappers * 10**9 // trimmed} overlapped={overlapped} failed=0 aborted=0")


LOG = [
    "hotpath-note measured: the time of each map call (...)",
    "hotpath-check mappers=1 hook=detached maps=900 past_site_ns_trimmed=10100 "
    "entry_ns_trimmed=10000 ratio_permille=1010 past_site_ns_p50=9000 entry_ns_p50=9000 failed=0",
    side(1, 0, 10000, 9000),
    side(1, 1, 14000, 12000),
    "hotpath-derived mappers=1 ratio_permille=714 added_ns=4000 ratio_p50_permille=750 "
    "added_p50_ns=3000 wall_ms=1000 wall_maps_per_s=20000",
    side(2, 0, 11000, 9500, overlapped=700),
    side(2, 1, 15000, 12500, overlapped=700),
    "hotpath-derived mappers=2 ratio_permille=733 added_ns=4000 ratio_p50_permille=760 "
    "added_p50_ns=3000 wall_ms=1000 wall_maps_per_s=15000",
    side(3, 0, 12000, 10000, overlapped=600),
    side(3, 1, 18000, 13000, overlapped=600),
    "hotpath-derived mappers=3 ratio_permille=666 added_ns=6000 ratio_p50_permille=769 "
    "added_p50_ns=3000 wall_ms=1000 wall_maps_per_s=5000",
]


class HotPath(unittest.TestCase):
    def parse(self, lines):
        with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as f:
            f.write("".join(PREFIX + line + "\n" for line in lines))
        try:
            return bench.parse_kvm(f.name)[0]
        finally:
            os.unlink(f.name)

    def test_rows(self):
        kvm = self.parse(LOG)
        self.assertEqual(kvm[("hotpath", 2, 1)]["map_ns_trimmed"], 15000)
        self.assertEqual(kvm["hotpath-check"]["ratio_permille"], 1010)
        # The hot-path lines are not KVM rows, and leave the others alone.
        self.assertNotIn("overhead", kvm)
        rows = bench.hotpath_rows(kvm)
        self.assertEqual([(r["mappers"], r["hook"]) for r in rows],
                         [(1, 0), (1, 1), (2, 0), (2, 1), (3, 0), (3, 1)])
        one = rows[1]
        self.assertEqual((one["ratio"], one["added_ns"]), (round(10000 / 14000, 3), 4000))
        self.assertEqual((one["ratio_p50"], one["added_p50_ns"]), (0.75, 3000))
        self.assertEqual(rows[0]["ratio"], "")
        self.assertEqual(rows[4]["overlap_pct"], 60.0)
        self.assertEqual(rows[5]["wall_maps_per_s"], 5000)
        self.assertIn("+4000", bench.hotpath_table(rows))

    def test_targets(self):
        rows = bench.hotpath_rows(self.parse(LOG))
        scaling, added = bench.hotpath_targets(
            rows, {"ratio": 0.7, "added_ns": 4500, "what": "before"})
        # 0.667 / 0.714 (rounded ratios): 0.934x, below 0.95.
        self.assertFalse(scaling[0])
        self.assertIn("0.934x", scaling[1])
        # 40.0% of a map without the hook, against 42.9%.
        self.assertTrue(added[0])
        self.assertIn("+40.0%", added[1])
        _, added = bench.hotpath_targets(rows, {"ratio": 0.75, "added_ns": 3000, "what": "before"})
        self.assertFalse(added[0])

    def test_negative_and_missing(self):
        lines = [line for line in LOG if "mappers=3" not in line]
        lines = [line.replace("added_p50_ns=3000", "added_p50_ns=-250") for line in lines]
        kvm = self.parse(lines)
        self.assertEqual(kvm[("hotpath-derived", 1)]["added_p50_ns"], -250)
        rows = bench.hotpath_rows(kvm)
        self.assertEqual(len(rows), 4)
        # No 3-mapper rows: no scaling verdict, the added-time one stays.
        self.assertEqual(len(bench.hotpath_targets(rows)), 1)


def zs(row, stops=0, left=0, faults=768, wall_ns=2 * 10**9, seamcalls=800, kicks=40):
    return (f"zerostep row={row} batches=5 vcpus=3 faults={faults} wall_ns={wall_ns} maps={faults} "
            f"seamcalls={seamcalls} seamcalls_max=2 busy_statuses=32 enter_busy=50 local_retries=0 "
            f"kicks={kicks} zero_step_events=800 gate_held_ns=50000000 fault_p50_ns=40000 "
            f"fault_p99_ns=900000 fault_max_ns=2000000 vm_stops={stops} failed=0 capped=0 "
            f"timed_out=0 gate_left={left} refused=10 engaged={faults} holds=0 hold_timeouts=0 "
            f"holds_ended_map=0 holds_ended_exit=0")


ZS_LOG = [
    "zerostep-note 3 fake vCPUs on CPUs [1, 2, 3], ...",
    zs("upstream72", seamcalls=900, kicks=0),
    zs("B-observe"),
    zs("A-hold", kicks=768),
]


class ZeroStep(unittest.TestCase):
    def parse(self, lines):
        with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as f:
            f.write("".join(PREFIX + line + "\n" for line in lines))
        try:
            return bench.parse_kvm(f.name)[0]
        finally:
            os.unlink(f.name)

    def test_rows(self):
        kvm = self.parse(ZS_LOG + LOG)
        # Not taken for the contended rows (which also carry row=).
        self.assertNotIn("A-hold", kvm)
        rows = bench.zerostep_rows(kvm)
        self.assertEqual([r["row"] for r in rows], ["upstream72", "B-observe", "A-hold"])
        up, b, a = rows
        self.assertEqual(up["faults_per_s"], 384)
        self.assertEqual(up["seamcalls_per_map"], round(900 / 768, 3))
        self.assertEqual(a["kicks_per_fault"], 1.0)
        self.assertEqual(b["gate_held_pct"], 2.5)
        self.assertEqual((b["fault_p50_us"], b["fault_p99_us"]), (40.0, 900.0))
        table = bench.zerostep_table(rows)
        self.assertIn("A-hold", table)
        self.assertTrue(all(met for met, _ in bench.zerostep_targets(rows)))
        # The hot-path rows are still there.
        self.assertEqual(len(bench.hotpath_rows(kvm)), 6)

    def test_stop_and_leak_miss(self):
        rows = bench.zerostep_rows(self.parse([zs("B-observe", stops=1), zs("A-hold", left=1)]))
        (stop_ok, stop_text), (left_ok, left_text) = bench.zerostep_targets(rows)
        self.assertFalse(stop_ok)
        self.assertIn("B-observe 1", stop_text)
        self.assertFalse(left_ok)
        self.assertIn("A-hold 1", left_text)

    def test_missing(self):
        self.assertEqual(bench.zerostep_rows(self.parse(LOG)), [])
        self.assertEqual(bench.zerostep_targets([]), [])


MARK = "[   42.0] tdx-sept-guard-bench: "


def cell(name, ops=1000, retried=10, seamcalls=None, max_tries=2, retried_ns=500000, stops=0,
         kicks=10, fault=((16384, 20480, 90), (40960, 49152, 9), (98304, 114688, 1))):
    """The guest's lines of one cell: its stats and latency files."""
    seamcalls = ops + retried if seamcalls is None else seamcalls
    stats = {"sim_sept_ops": ops, "sim_ops_retried": retried, "seamcalls": seamcalls,
             "sim_max_tries": max_tries, "sim_retried_op_ns": retried_ns, "sim_vm_stopped": stops,
             "kicks": kicks, "sim_gated_ns": 0}
    lines = [f"cell {name} begin vcpus=2"]
    lines += [f"stat {name} {k} {v}" for k, v in stats.items()]
    lines += [f"lat {name} op_ns 8192 10240 {ops}", f"lat {name} op_ns_max 10000"]
    lines += [f"lat {name} fault_ns {lo} {hi} {n}" for lo, hi, n in fault]
    # A histogram of a name bench.py does not know, with its maximum.
    lines += [f"lat {name} zap_wait_ns 1024 1280 5", f"lat {name} zap_wait_ns_max 1200"]
    lines.append(f"cell {name} end elapsed_ms=1000 timeout=0")
    return lines


SLOW_FAULT = ((16384, 20480, 90), (196608, 229376, 10))


def storm(suffix="", ours=None, upstream=None, blind=None, vcpus=2):
    """The zerostep cells of one row; per policy the arguments of cell()."""
    out = []
    for policy, kw in (("kick_and_retry", ours), ("upstream72", upstream), ("blind_retry", blind)):
        out += cell(f"{policy}-{vcpus}-zerostep{suffix}", **(kw or {}))
    return out


class Cells(unittest.TestCase):
    def rows(self, lines):
        with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as f:
            f.write("".join(MARK + line + "\n" for line in lines))
        try:
            cells, splats = bench.parse_log(f.name)
        finally:
            os.unlink(f.name)
        self.assertEqual(splats, [])
        return [bench.row_of(name, raw) for name, raw in cells.items()]

    def test_row_columns(self):
        rows = self.rows(cell("kick_and_retry-2-zerostep", retried=10, retried_ns=500000)
                         + cell("blind_retry-2-zerostep@50", retried=4, seamcalls=1000 + 4 * 39))
        ours, blind = rows
        self.assertEqual((ours["cost_pct"], blind["cost_pct"]), (100, 50))
        self.assertEqual((blind["policy"], blind["vcpus"], blind["shape"]), ("blind_retry", 2, "zerostep"))
        # 10 contended operations of 2 SEAMCALLs each, 50 us each on average.
        self.assertEqual((ours["seamcalls_per_busy_op"], ours["busy_op_mean_us"]), (2.0, 50.0))
        self.assertEqual(blind["seamcalls_per_busy_op"], 40.0)
        # fault_ns: 90, 9, 1 faults; p50 and p99 are bucket upper bounds.
        self.assertEqual((ours["fault_p50_us"], ours["fault_p99_us"], ours["faults"]), (20.5, 49.2, 100))

    def test_storm_targets(self):
        rows = self.rows(storm(ours={}, upstream={"fault": SLOW_FAULT},
                               blind={"retried": 5, "seamcalls": 1000 + 5 * 9}))
        res = bench.targets(rows)
        self.assertEqual(len(res), 4)
        (worst_ok, _), (stop_ok, _), (busy_ok, busy), (p99_ok, p99) = res
        self.assertTrue(worst_ok and stop_ok)
        # 10.0 against 2.0: 5.0x lower, just met.
        self.assertTrue(busy_ok)
        self.assertIn("2.0 vs 10.0 (5.0x lower", busy)
        self.assertIn("50.0 vs 100.0 us", busy)
        # 49.2 us against 229.4 us.
        self.assertTrue(p99_ok)
        self.assertIn("49.2 vs 229.4 us", p99)

    def test_storm_targets_missed(self):
        rows = self.rows(storm(ours={"fault": SLOW_FAULT}, upstream={},
                               blind={"retried": 5, "seamcalls": 1000 + 5 * 8}))
        _, _, (busy_ok, busy), (p99_ok, p99) = bench.targets(rows)
        self.assertFalse(busy_ok)
        self.assertIn("only 4.5x", busy)
        # 9.0 on average: no bound on the share that succeeded at once.
        self.assertNotIn("first retry", busy)
        self.assertFalse(p99_ok)
        self.assertIn("229.4 vs 49.2 us", p99)
        self.assertIn("4.7x upstream72's", p99)

    def test_storm_not_judged(self):
        rows = self.rows(storm(ours={"retried": 0, "retried_ns": 0}, upstream={}, blind={}))
        _, _, (busy_ok, busy), _ = bench.targets(rows)
        self.assertFalse(busy_ok)
        self.assertIn("cannot be judged: no operation of kick_and_retry", busy)

    def test_storm_first_retry(self):
        # blind_retry: 10 contended operations, 23 SEAMCALLs: 2.3 on average,
        # so at most 3 took more than 2.
        rows = self.rows(storm(ours={}, upstream={}, blind={"seamcalls": 1000 + 13}))
        _, _, (busy_ok, busy), _ = bench.targets(rows)
        self.assertFalse(busy_ok)
        self.assertIn("at least 70% of them succeeded on their first retry", busy)

    def test_sweep(self):
        lines = (storm(ours={}, upstream={}, blind={"retried": 5, "seamcalls": 1000 + 5 * 19})
                 + storm("@50", ours={}, upstream={}, blind={"retried": 5, "seamcalls": 1000 + 5 * 19})
                 + storm("@200", ours={"max_tries": 3}, upstream={}, blind={}))
        rows = self.rows(lines)
        main, sweep = bench.split_rows(rows)
        self.assertEqual(len(main), 3)
        self.assertEqual(sorted(sweep[2]), [50, 100, 200])
        table = bench.sweep_table(sweep)
        self.assertEqual(len(table.splitlines()), 2 + 9)
        self.assertIn("x0.5", table)
        # blind_retry's SC/busy against ours: 20.0 / 2.0.
        self.assertIn("10.0x", table)
        res = bench.targets(rows)
        worst_ok, worst = res[0]
        self.assertFalse(worst_ok)
        self.assertIn("exceeded in 2/zerostep x2 (max 3)", worst)
        self.assertIn("(3 cells", worst)
        texts = [t for _, t in res]
        # The storm targets of x1 (the main table), x0.5 and x2.
        self.assertEqual(len(texts), 2 + 3 * 2)
        self.assertTrue(any("SEAMCALL cost x0.5" in t for t in texts))
        self.assertTrue(any("SEAMCALL cost x2" in t for t in texts))
        # x2: blind_retry's contended operations took 2 SEAMCALLs, as ours.
        x2 = [(ok, t) for ok, t in res if "x2:" in t and "contended" in t]
        self.assertEqual(len(x2), 1)
        self.assertFalse(x2[0][0])


GUEST_CAL = ("calibrate where=guest cpu=0 iterations=20000000 reps=5 min_ns=800000000 "
             "median_ns=900000000 max_ns=950000000 checksum=1234")


class Calibrate(unittest.TestCase):
    def host(self, lines):
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write("".join(line + "\n" for line in lines))
        try:
            return bench.parse_host_calibrate(f.name)
        finally:
            os.unlink(f.name)

    def kvm(self, lines):
        with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as f:
            f.write("".join(PREFIX + line + "\n" for line in lines))
        try:
            return bench.parse_kvm(f.name)[0]
        finally:
            os.unlink(f.name)

    HOST = ["calibrate where=host iterations=20000000 reps=7 min_ns=42000000 median_ns=44000000 "
            "checksum=1234 when=before",
            "calibrate where=host iterations=20000000 reps=7 min_ns=40000000 median_ns=46000000 "
            "checksum=1234 when=after"]

    def test_slowdown_and_estimate(self):
        kvm = self.kvm([GUEST_CAL] + LOG)
        self.assertEqual(kvm["calibrate"]["min_ns"], 800000000)
        slow = bench.slowdown(kvm["calibrate"], self.host(self.HOST))
        # The fastest runs: 800 ms against 40 ms; the medians 900 against 45.
        self.assertEqual(slow["factor"], 20.0)
        self.assertEqual(slow["factor_median"], 20.0)
        self.assertEqual((slow["host_runs"], slow["host_reps"]), (2, 14))
        self.assertTrue(slow["same"])
        ests = bench.native_estimates(bench.hotpath_rows(kvm), slow)
        self.assertEqual([e["mappers"] for e in ests], [1, 2, 3])
        # +4000 ns under TCG / 20.
        self.assertEqual((ests[0]["added_ns"], ests[0]["est_native_added_ns"]), (4000, 200))
        self.assertEqual(ests[0]["est_native_added_p50_ns"], 150)
        self.assertIn("ESTIMATE", bench.estimate_table(ests))
        self.assertIn("20.0x", bench.slowdown_text(slow))

    def test_latency_cost_and_its_estimate(self):
        kvm = self.kvm(["latency-cost calls=20000 reps=5 map_ns=600 record_ns=200 local_clock_ns=150 "
                        "ktime_ns=900"] + LOG)
        slow = bench.slowdown(self.kvm([GUEST_CAL])["calibrate"], self.host(self.HOST))
        text = bench.latency_cost_text(kvm["latency-cost"], slow)
        self.assertIn("600 ns per map call", text)
        self.assertIn("local_clock() 150 ns, ktime_get() 900 ns", text)
        # 600 ns and 200 ns under TCG / 20.
        self.assertIn("ESTIMATE native: 30 ns per map, 10 ns per record", text)
        self.assertNotIn("ESTIMATE", bench.latency_cost_text(kvm["latency-cost"], None))

    def test_checksum_mismatch(self):
        kvm = self.kvm([GUEST_CAL.replace("checksum=1234", "checksum=99")] + LOG)
        slow = bench.slowdown(kvm["calibrate"], self.host(self.HOST))
        self.assertFalse(slow["same"])
        self.assertEqual(bench.native_estimates(bench.hotpath_rows(kvm), slow), [])
        self.assertIn("no estimate", bench.slowdown_text(slow))

    def test_missing_side(self):
        self.assertIsNone(bench.slowdown(None, self.host(self.HOST)))
        self.assertIsNone(bench.slowdown(self.kvm([GUEST_CAL])["calibrate"], []))


if __name__ == "__main__":
    unittest.main()
