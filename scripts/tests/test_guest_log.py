# SPDX-License-Identifier: GPL-2.0
"""Tests of scripts/guest-log.py and scripts/kernel_trouble.py on small
synthetic guest logs.

guest-log.py hands each KTAP segment to the kernel's `kunit.py parse`. The
host tests need no kernel tree, so a small stand-in parser (below) reads
the simple KTAP these logs hold and writes the same JSON shape; with
KUNIT_PY=/path/to/tools/testing/kunit/kunit.py in the environment the
kernel's own parser is used instead. Run from the repository's top:

  python3 -m unittest discover -s scripts/tests -v
"""

import importlib.machinery
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import unittest

SCRIPTS = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
GUEST_LOG = os.path.join(SCRIPTS, "guest-log.py")

sys.dont_write_bytecode = True
sys.path.insert(0, SCRIPTS)
from kernel_trouble import KERNEL_TROUBLE, PATTERNS  # noqa: E402

# A stand-in for `kunit.py parse --json=FILE KTAP`: KUnit's nesting (a
# suite's "# Subtest:" and its cases one level in) and flat KTAP.
FAKE_KUNIT = textwrap.dedent('''\
    import json, re, sys
    js = sys.argv[2].split("=", 1)[1]
    top = {"name": "KUnit Test Group", "sub_groups": [], "test_cases": []}
    suite = None
    for raw in open(sys.argv[3]).read().splitlines():
        line = re.sub(r"^\\[[ 0-9.]+\\] ", "", raw)
        indent = len(line) - len(line.lstrip(" "))
        line = line.strip()
        m = re.match(r"# Subtest: (\\S+)", line)
        if m and indent:
            suite = {"name": m.group(1), "sub_groups": [], "test_cases": []}
            top["sub_groups"].append(suite)
            continue
        m = re.match(r"(not ok|ok) [0-9]+ (\\S+)( # SKIP)?", line)
        if not m:
            continue
        status = "SKIP" if m.group(3) else ("PASS" if m.group(1) == "ok" else "FAIL")
        if indent and suite is not None:
            suite["test_cases"].append({"name": m.group(2), "status": status})
        elif suite is not None and m.group(2) == suite["name"]:
            suite = None
        else:
            top["test_cases"].append({"name": m.group(2), "status": status})
    json.dump(top, open(js, "w"))
''')

TRACERS = ["function", "function_graph", "kprobe", "kretprobe"]


class Log:
    """Builds a serial log line by line, with the kernel's time prefix."""

    def __init__(self):
        self.lines = []

    def kernel(self, text):
        self.lines.append(f"[{len(self.lines) / 100:12.6f}] {text}")
        return self

    def mark(self, text):
        return self.kernel(f"tdx-sept-guard-harness: {text}")

    def suites(self, results):
        """KUnit's KTAP for {suite: [(case, ok)...]}, as printed at insmod."""
        self.kernel("KTAP version 1")
        self.kernel(f"1..{len(results)}")
        for i, (suite, cases) in enumerate(results.items(), 1):
            self.kernel("    KTAP version 1")
            self.kernel(f"    # Subtest: {suite}")
            self.kernel("    # module: tdx_sept_guard_kunit")
            self.kernel(f"    1..{len(cases)}")
            for j, (case, ok) in enumerate(cases, 1):
                self.kernel(f"    {'ok' if ok else 'not ok'} {j} {case}")
            good = all(ok for _, ok in cases)
            self.kernel(f"{'ok' if good else 'not ok'} {i} {suite}")
        return self

    def text(self):
        return "\n".join(self.lines) + "\n"


FULL = {
    "tdx_sept_guard_spte": [("freeze", True), ("thaw", True)],
    "tdx_sept_guard_kvm": [("map", True), ("remove", True)],
    "tdx_sept_guard_bench_kvm": [("hook_overhead", True)],
}
KVM = {"tdx_sept_guard_kvm": [("map", True), ("remove", True)]}


def coexist(log, name, suites=None, traced=7, end=True, insmod=True, teardown=True, rmmod=True):
    """One coexistence run as scripts/guest/check prints it."""
    log.mark(f"ktap begin coexist-{name}")
    if insmod:
        log.suites(KVM if suites is None else suites)
    if not end:
        return log
    log.mark(f"ktap end coexist-{name}")
    if not insmod:
        log.mark(f"coexist {name} insmod FAILED")
    log.mark(f"coexist {name} traced {traced}")
    if not teardown:
        log.mark(f"coexist {name} teardown FAILED: still set: current_tracer={name}")
    if insmod:
        log.mark(f"coexist {name} rmmod {'ok' if rmmod else 'FAILED'}")
    return log


def check_boot(skip=(), done=True, **per_tracer):
    """A whole check boot: the full run, then one coexistence run per tracer
    (per_tracer[name]: coexist() arguments, or a function that writes the
    run itself), except those in skip."""
    log = Log().kernel("Linux version 7.2.13 (tinyconfig)").kernel("KTAP version 1").kernel("1..0")
    log.mark("ktap begin").suites(FULL).mark("ktap end").mark("rmmod ok")
    for name in TRACERS:
        if name in skip:
            continue
        how = per_tracer.get(name, {})
        if callable(how):
            how(log)
        else:
            coexist(log, name, **how)
    if done:
        log.mark("done")
    return log


class GuestLogTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.kunit = os.environ.get("KUNIT_PY")
        if not self.kunit:
            self.kunit = os.path.join(self.tmp.name, "kunit.py")
            with open(self.kunit, "w") as f:
                f.write(FAKE_KUNIT)

    def judge(self, log, suites=tuple(FULL), tracers=TRACERS, extra=()):
        """Runs guest-log.py on the log; returns (exit status, output, totals)."""
        path = os.path.join(self.tmp.name, "check.log")
        with open(path, "w") as f:
            f.write(log.text())
        args = [sys.executable, GUEST_LOG, path, "--kunit", self.kunit]
        args += [a for s in suites for a in ("--suite", s)]
        args += [a for t in tracers for a in ("--coexist", t)]
        run = subprocess.run(args + list(extra), capture_output=True, text=True,
                             env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
        last = run.stdout.strip().splitlines()[-1]
        m = re.fullmatch(r"guest: ([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped", last)
        self.assertIsNotNone(m, f"no totals line: {run.stdout}\n{run.stderr}")
        return run.returncode, run.stdout, tuple(map(int, m.groups()))

    def fails(self, out):
        return [l[len("FAIL: "):] for l in out.splitlines() if l.startswith("FAIL: ")]

    def test_all_good(self):
        rc, out, totals = self.judge(check_boot())
        self.assertEqual(rc, 0, out)
        # 5 cases in the full run; per coexistence run 2 cases and the
        # tracer's count.
        self.assertEqual(totals, (5 + 4 * 3, 0, 0))
        self.assertEqual(self.fails(out), [])
        self.assertIn("coexist-kretprobe: the tracer saw 7 trace lines", out)

    def test_without_coexist_runs_asked_for(self):
        rc, out, totals = self.judge(check_boot(skip=TRACERS), tracers=())
        self.assertEqual(rc, 0, out)
        self.assertEqual(totals, (5, 0, 0))

    def test_coexist_segment_missing(self):
        rc, out, totals = self.judge(check_boot(skip=("function_graph",)))
        self.assertEqual(rc, 1)
        self.assertEqual(totals, (5 + 3 * 3, 1, 0))
        self.assertEqual(self.fails(out),
                         ["test failed: coexist-function_graph: no KTAP segment "
                          "(the guest stopped before this run)"])

    def test_guest_stopped_during_coexist_run(self):
        log = check_boot(skip=("kprobe", "kretprobe"), done=False)
        coexist(log, "kprobe", suites={"tdx_sept_guard_kvm": [("map", True)]}, end=False)
        rc, out, totals = self.judge(log)
        self.assertEqual(rc, 1)
        fails = self.fails(out)
        self.assertIn("KUnit boot: missing harness step: done", fails)
        self.assertIn("test failed: coexist-kprobe: the run did not finish (crash, hang or timeout)", fails)
        self.assertIn("test failed: coexist-kretprobe: no KTAP segment "
                      "(the guest stopped before this run)", fails)
        # What ran before the stop is counted.
        self.assertEqual(totals, (5 + 2 * 3 + 1, 2, 0))

    def test_traced_zero(self):
        rc, out, totals = self.judge(check_boot(kprobe={"traced": 0}))
        self.assertEqual(rc, 1)
        self.assertEqual(totals, (5 + 3 * 3 + 2, 1, 0))
        self.assertEqual(self.fails(out),
                         ["test failed: coexist-kprobe: tracer saw no call of tdx_sept_set_private_spte"])

    def test_tracer_not_set_up(self):
        def no_kprobes(log):
            log.mark("coexist kretprobe setup FAILED: no kprobe_events (CONFIG_KPROBE_EVENTS)")
        rc, out, totals = self.judge(check_boot(kretprobe=no_kprobes))
        self.assertEqual(rc, 1)
        self.assertEqual(totals, (5 + 3 * 3, 1, 0))
        self.assertEqual(self.fails(out),
                         ["test failed: coexist-kretprobe: tracer not set up: "
                          "no kprobe_events (CONFIG_KPROBE_EVENTS)"])

    def test_failed_case_in_coexist_run(self):
        bad = {"tdx_sept_guard_kvm": [("map", True), ("remove", False)]}
        rc, out, totals = self.judge(check_boot(function_graph={"suites": bad}))
        self.assertEqual(rc, 1)
        self.assertEqual(totals, (5 + 4 * 3 - 1, 1, 0))
        self.assertEqual(len(self.fails(out)), 1)
        self.assertRegex(self.fails(out)[0],
                         r"^test failed: coexist-function_graph: tdx_sept_guard_kvm\.remove \(FAIL\)$")

    def test_kvm_suite_missing_in_coexist_run(self):
        other = {"tdx_sept_guard_kvm_attach": [("attach", True)]}
        rc, out, totals = self.judge(check_boot(function={"suites": other}))
        self.assertEqual(rc, 1)
        self.assertEqual(totals, (5 + 3 * 3 + 2, 1, 0))
        self.assertEqual(self.fails(out),
                         ["test failed: coexist-function: suite tdx_sept_guard_kvm did not run"])

    def test_declared_kvm_suites_are_required_in_coexist_runs(self):
        # A declared suite that matches the glob must run beside each tracer;
        # the benchmark suite (tdx_sept_guard_bench_kvm) matches none.
        suites = tuple(FULL) + ("tdx_sept_guard_kvm_attach",)
        log = Log().mark("ktap begin").suites(
            dict(FULL, tdx_sept_guard_kvm_attach=[("attach", True)])).mark("ktap end").mark("rmmod ok")
        coexist(log, "function")
        log.mark("done")
        rc, out, totals = self.judge(log, suites=suites, tracers=["function"])
        self.assertEqual(rc, 1)
        self.assertEqual(self.fails(out),
                         ["test failed: coexist-function: suite tdx_sept_guard_kvm_attach did not run"])
        rc, out, _ = self.judge(log, suites=suites, tracers=["function"],
                                extra=["--coexist-glob", "tdx_sept_guard_kvm"])
        self.assertEqual(rc, 0, out)

    def test_insmod_failed_in_coexist_run(self):
        rc, out, totals = self.judge(check_boot(kprobe={"insmod": False, "traced": 0}))
        self.assertEqual(rc, 1)
        self.assertEqual(totals, (5 + 3 * 3, 1, 0))
        self.assertEqual(self.fails(out), ["test failed: coexist-kprobe: insmod of the test module failed"])

    def test_teardown_and_rmmod_failed(self):
        rc, out, totals = self.judge(check_boot(function={"teardown": False, "rmmod": False}))
        self.assertEqual(rc, 1)
        self.assertEqual(totals, (5 + 4 * 3, 2, 0))
        self.assertEqual(self.fails(out), [
            "test failed: coexist-function: tracer teardown failed: still set: current_tracer=function",
            "test failed: coexist-function: rmmod of the test module failed",
        ])

    def test_full_run_suite_missing(self):
        rc, out, _ = self.judge(check_boot(), suites=tuple(FULL) + ("tdx_sept_guard_platform",))
        self.assertEqual(rc, 1)
        self.assertEqual(self.fails(out), ["expected KUnit suite did not run: tdx_sept_guard_platform"])

    def test_full_run_failed_case(self):
        log = Log().mark("ktap begin").suites(
            dict(FULL, tdx_sept_guard_spte=[("freeze", False), ("thaw", True)])).mark("ktap end")
        log.mark("rmmod ok").mark("done")
        rc, out, totals = self.judge(log, tracers=())
        self.assertEqual(rc, 1)
        self.assertEqual(totals, (4, 1, 0))
        self.assertEqual(self.fails(out), ["test failed: tdx_sept_guard_spte.freeze (FAIL)"])

    def test_kernel_splat_anywhere_in_the_boot(self):
        log = check_boot(function_graph=lambda log: (
            coexist(log, "function_graph"),
            log.kernel("WARNING: CPU: 1 PID: 80 at kernel/trace/ftrace.c:2345 ftrace_bug+0x1/0x2")))
        rc, out, _ = self.judge(log)
        self.assertEqual(rc, 1)
        self.assertEqual(len(self.fails(out)), 1)
        self.assertRegex(self.fails(out)[0], r"^kernel reported \(KUnit boot\): .*WARNING: CPU: 1")

    def test_segments_are_found_by_exact_name(self):
        # "coexist-function" must not take function_graph's markers, nor
        # "ktap begin" a coexistence run's.
        log = check_boot(skip=("function",))
        rc, out, _ = self.judge(log)
        self.assertEqual(rc, 1)
        self.assertEqual(self.fails(out),
                         ["test failed: coexist-function: no KTAP segment (the guest stopped before this run)"])


class KernelTroubleTest(unittest.TestCase):
    def test_each_pattern_has_a_report_it_catches(self):
        reports = [
            "BUG: kernel NULL pointer dereference, address: 0000000000000000",
            "WARNING: CPU: 0 PID: 1 at lib/foo.c:1 foo+0x1/0x2",
            "Oops: general protection fault, probably for non-canonical address",
            "Kernel panic - not syncing: Fatal exception",
            "general protection fault, probably for non-canonical address 0xdead",
            "WARNING: possible circular locking dependency detected",
            "WARNING: possible recursive locking detected",
            "WARNING: inconsistent lock state",
            "turning off the locking correctness validator.",
            "DEBUG_LOCKS_WARN_ON(1)",
            "BUG: sleeping function called from invalid context at mm/slab.c:1",
            "rcu: INFO: rcu_preempt self-detected stall on CPU",
            "rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:",
            "watchdog: BUG: soft lockup - CPU#1 stuck for 22s!",
            "NMI watchdog: Watchdog detected hard LOCKUP on cpu 2",
            "INFO: task insmod:70 blocked for more than 120 seconds.",
            "UBSAN: shift-out-of-bounds in foo.c:1:2",
            "refcount_t: underflow; use-after-free.",
        ]
        for pattern in PATTERNS:
            self.assertTrue(any(re.search(pattern, r) for r in reports), pattern)
        for r in reports:
            self.assertRegex(r, KERNEL_TROUBLE)

    def test_quiet_lines(self):
        for line in [
            "[    0.5] Run /init as init process",
            "[    1.0] tdx_sept_guard: mode=auto: no TDX host platform, staying idle",
            "[    0.1] x86/fpu: x87 FPU will use FXSAVE, installed handlers",
            "[    2.0]     ok 3 kick_does_not_wait_forever",
        ]:
            self.assertIsNone(KERNEL_TROUBLE.search(line), line)


def load(name, path):
    loader = importlib.machinery.SourceFileLoader(name, path)
    spec = importlib.util.spec_from_loader(name, loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


class BenchSharesTheListTest(unittest.TestCase):
    def test_bench_uses_the_shared_list_and_the_renamed_suite(self):
        bench = load("bench", os.path.join(SCRIPTS, "bench.py"))
        self.assertIs(bench.KERNEL_TROUBLE, KERNEL_TROUBLE)
        self.assertTrue(bench.KVM_SUITE.match("ok 1 tdx_sept_guard_bench_kvm"))
        self.assertFalse(bench.KVM_SUITE.match("ok 1 tdx_sept_guard_kvm"))
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "bench.log")
            with open(path, "w") as f:
                f.write("[ 1.0] tdx-sept-guard-bench: cell a-1-none begin vcpus=1\n"
                        "[ 1.1] BUG: soft lockup - CPU#0 stuck for 23s!\n"
                        "[ 1.2] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:\n"
                        "[ 1.3] tdx-sept-guard-bench: cell a-1-none end elapsed_ms=5 timeout=0\n")
            _, splats = bench.parse_log(path)
        self.assertEqual(len(splats), 2)


if __name__ == "__main__":
    unittest.main()
