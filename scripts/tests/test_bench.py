# SPDX-License-Identifier: GPL-2.0
"""Tests of scripts/bench.py's hot-path and zero-step parts on small made-up
guest logs: the lines of the KVM benchmark suite's hot-path case become
rows with the ratio and the added time, and the two targets; those of its
zero-step case become rows with rates and shares, and their two targets. Run from the repository's
top:

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


if __name__ == "__main__":
    unittest.main()
