# SPDX-License-Identifier: GPL-2.0
"""Tests of scripts/tdx-host-check and scripts/tdx-host-check-module.

The report logic runs on recorded collections: made-up but consistent
stats, latency and trace texts of a clean and a busy run on a TDX host, and
failing ones (a map with three SEAMCALLs, a VM stop, an injected busy
without a kick, a TD that did not finish, a lost trace). The preflight
must refuse on this machine, which is no TDX host. The module-side
helper's collect and arm steps run against a fake debugfs and tracefs. Run
from the repository's top:

  python3 -m unittest discover -s scripts/tests -v
"""

import gzip
import importlib.machinery
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.normpath(os.path.join(HERE, "..", "tdx-host-check"))
HELPER = os.path.normpath(os.path.join(HERE, "..", "tdx-host-check-module"))


def load_module():
    loader = importlib.machinery.SourceFileLoader("tdx_host_check", SCRIPT)
    spec = importlib.util.spec_from_loader("tdx_host_check", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


HC = load_module()

# --- recorded data -------------------------------------------------------------

KVM_COUNTERS = """\
ops {ops}
seamcalls {seamcalls}
busy_enter 0
busy_aug {busy}
busy_operand_sept {busy}
kicks {kicks}
vcpus_kicked {vcpus_kicked}
kick_timeouts {kick_timeouts}
retries {retries}
retry_successes {retry_successes}
retry_warnings 0
busy_returned 0
vm_bugs {vm_bugs}
errors 0
freeze_contended 2
entries_refused 0
zero_step_events 0
zero_step_kicks 0
gate_wait_ns {gate_wait_ns}
kvm_map_calls {ops}
kvm_unmap_calls 4096
kvm_untracked_calls 0
kvm_stopped_vm_calls 0
kvm_vm_stops {vm_stops}
kvm_vms_tracked 0
kvm_vm_state_failures 0
kvm_destroy_probe_missed 0
injected_busy {injected}
injected_retry_busy 0
"""

LATENCY = """\
seamcall_aug_ns_max 48211
seamcall_aug_ns 2048 2560 3100
seamcall_aug_ns 2560 3072 802
seamcall_aug_ns 40960 49152 3
kick_ns_max 91022
kick_ns 16384 20480 9
kick_ns 81920 98304 4
gate_ns_max 120344
gate_ns 98304 114688 6
gate_ns 114688 131072 1
map_ns_max 130101
map_ns 2048 2560 3000
map_ns 2560 3072 902
map_ns 114688 131072 13
page_walk_ns 512 640 7
"""


def counters(ops=3906, retries=1, injected=0, kicks=None, retry_successes=None, extra=0, vm_bugs=0, vm_stops=0,
             kick_timeouts=0):
    kicks = retries + kick_timeouts if kicks is None else kicks
    # As the module counts: an injected busy is answered without a SEAMCALL.
    return KVM_COUNTERS.format(
        ops=ops, seamcalls=ops + retries + extra - injected, busy=retries + vm_bugs, kicks=kicks,
        vcpus_kicked=kicks * 3, kick_timeouts=kick_timeouts, retries=retries,
        retry_successes=retries if retry_successes is None else retry_successes,
        vm_bugs=vm_bugs, gate_wait_ns=kicks * 21000, vm_stops=vm_stops, injected=injected)


def kick(ts, vm=0, ok=1):
    return f"   qemu-system-x86-4242    [003] ...1.  {ts:.6f}: tsg_kick: vm={vm} kicked=3 wait_ns=20411 ok={ok}"


def retry(ts, gpa, vm=0, tries=1, injected=None):
    inj = "" if injected is None else f" injected={injected}"
    return (f"   qemu-system-x86-4243    [005] ...1.  {ts:.6f}: tsg_retry: vm={vm} leaf=TDH.MEM.PAGE.AUG "
            f"gpa=0x{gpa:x} level=1 status=0x8000020000000092 tries={tries}{inj}")


def vm_stop(ts, vm=0):
    return (f"   qemu-system-x86-4243    [005] ...1.  {ts:.6f}: tsg_vm_stop: vm={vm} leaf=TDH.MEM.PAGE.AUG "
            f"status=0x8000020000000092 reason=busy_after_kick")


def pairs(n, start=100.0, injected=None):
    """n busies, each kicked then retried."""
    lines = []
    for i in range(n):
        ts = start + i * 0.01
        lines += [kick(ts), retry(ts + 0.000050, 0x80000000 + i * 0x1000, injected=injected)]
    return lines


def bundle(stats, trace=(), meta=None, latency=LATENCY, overrun=0, end=True, prefix=""):
    """A collection as the helper prints it (with `prefix` before each line,
    as the kernel's timestamp in a serial log)."""
    meta = {"run": "clean", "mode": "kvm", "inject": "none", "guest": "done", "guest_touched_mib": "768",
            **(meta or {})}
    out = ["tsg-collect: begin"]
    out += [f"tsg-collect: meta: {k} {v}" for k, v in meta.items()]
    out += ["tsg-collect: version: 0.2.0"]
    out += [f"tsg-collect: stats: {l}" for l in stats.splitlines()]
    out += [f"tsg-collect: latency: {l}" for l in latency.splitlines()]
    out += ["tsg-collect: 4242-0/stats: ops 12", "tsg-collect: fail_map_busy/probability: 0"]
    out += [f"tsg-collect: trace: {l}" for l in trace]
    if overrun is not None:
        out += [f"tsg-collect: meta: trace_overrun {overrun}"]
    if end:
        out += ["tsg-collect: end"]
    return "".join(f"{prefix}{l}\n" for l in out)


def clean_run():
    return bundle(counters(retries=1), pairs(1))


def busy_run(injected=12, natural=1):
    n = injected + natural
    return bundle(counters(retries=n, injected=injected), pairs(n),
                  meta={"run": "busy", "inject": "fail_map_busy:10"})


def judge_text(text):
    runs = [HC.run_report(HC.load_run(b, i)) for i, b in enumerate(HC.parse_bundles(text))]
    return HC.make_report(runs)


def check(report, run, cid):
    r = report["runs"][run]
    return next(c for c in r["checks"] if c["id"] == cid)


# --- the report logic on recorded data ------------------------------------------


class Verdicts(unittest.TestCase):
    def test_clean_and_busy_pass(self):
        rep = judge_text(clean_run() + busy_run())
        self.assertEqual(rep["verdict"], "PASS", json.dumps(rep["runs"], indent=1))
        self.assertEqual(rep["exit_status"], 0)
        self.assertEqual([r["name"] for r in rep["runs"]], ["clean", "busy"])
        self.assertEqual(check(rep, 1, "injected")["status"], "pass")
        self.assertIn("injected_busy 12", check(rep, 1, "injected")["detail"])
        self.assertEqual(check(rep, 0, "injected")["status"], "skip")
        self.assertEqual(rep["module_version"], "0.2.0")

    def test_trace_marked_injected(self):
        text = bundle(counters(retries=5, injected=5), pairs(5, injected=1),
                      meta={"run": "busy", "inject": "fail_map_busy:50"})
        self.assertEqual(judge_text(text)["verdict"], "PASS")
        # Marked lines that disagree with the counter.
        lines = pairs(4, injected=1) + pairs(1, start=200.0, injected=0)
        text = bundle(counters(retries=5, injected=5), lines, meta={"run": "busy", "inject": "fail_map_busy:50"})
        rep = judge_text(text)
        self.assertEqual(check(rep, 0, "injected")["status"], "fail")
        self.assertIn("4 tsg_retry lines marked injected", check(rep, 0, "injected")["detail"])

    def test_map_with_three_seamcalls(self):
        # One map: busy, kick, retry busy again, kick, a third SEAMCALL.
        lines = pairs(2) + [kick(300.0), retry(300.00005, 0x90000000), kick(300.1),
                            retry(300.10005, 0x90000000, tries=2)]
        text = bundle(counters(retries=4, retry_successes=3), lines)
        rep = judge_text(text)
        self.assertEqual(rep["verdict"], "FAIL")
        self.assertEqual(rep["exit_status"], 1)
        c = check(rep, 0, "two_seamcalls")
        self.assertEqual(c["status"], "fail")
        self.assertIn("a map with 3 SEAMCALLs", c["detail"])
        self.assertIn("gpa=0x90000000", c["detail"])
        self.assertIn("retry_successes 3 != retries 4", check(rep, 0, "kick_per_retry")["detail"])

    def test_seamcalls_not_explained_by_retries(self):
        rep = judge_text(bundle(counters(retries=1, extra=2), pairs(1)))
        c = check(rep, 0, "two_seamcalls")
        self.assertEqual(c["status"], "fail")
        self.assertIn("= 3 tries after the first, but retries 1", c["detail"])

    def test_max_tries_counter(self):
        stats = counters(retries=1) + "sim_max_tries 3\n"
        self.assertIn("sim_max_tries 3", check(judge_text(bundle(stats, pairs(1))), 0, "two_seamcalls")["detail"])
        self.assertEqual(check(judge_text(bundle(stats, pairs(1))), 0, "two_seamcalls")["status"], "fail")

    def test_vm_stop(self):
        lines = pairs(2) + [kick(400.0), vm_stop(400.0002)]
        # The stopped map: busy, kick, retry busy: a retry, no success, a VM bug.
        lines.insert(-1, retry(400.0001, 0xa0000000))
        stats = counters(retries=3, retry_successes=2, vm_bugs=1, vm_stops=1)
        rep = judge_text(bundle(stats, lines))
        self.assertEqual(rep["verdict"], "FAIL")
        c = check(rep, 0, "no_vm_stop")
        self.assertEqual(c["status"], "fail")
        self.assertIn("kvm_vm_stops 1", c["detail"])
        self.assertIn("1 tsg_vm_stop event(s), first: vm=0 leaf=TDH.MEM.PAGE.AUG reason=busy_after_kick",
                      c["detail"])

    def test_kick_timeout_is_a_stop(self):
        rep = judge_text(bundle(counters(retries=0, kick_timeouts=1), [kick(10.0, ok=0)]))
        self.assertEqual(check(rep, 0, "no_vm_stop")["status"], "fail")
        self.assertIn("kick_timeouts 1", check(rep, 0, "no_vm_stop")["detail"])

    def test_injected_busy_without_a_kick(self):
        # 12 injected, 12 retried, one retry with no kick before it.
        lines = pairs(11) + [retry(500.0, 0xb0000000)]
        text = bundle(counters(retries=12, kicks=11, injected=12), lines,
                      meta={"run": "busy", "inject": "fail_map_busy:10"})
        rep = judge_text(text)
        self.assertEqual(rep["verdict"], "FAIL")
        k = check(rep, 0, "kick_per_retry")
        self.assertEqual(k["status"], "fail")
        self.assertIn("kicks 11 != retries 12", k["detail"])
        self.assertIn("1 retry without a kick before", k["detail"])
        i = check(rep, 0, "injected")
        self.assertEqual(i["status"], "fail")
        self.assertIn("injected_busy 12 > kicks 11: an injected busy without a kick", i["detail"])

    def test_kick_of_another_vm_does_not_count(self):
        lines = [kick(1.0, vm=1), retry(1.1, 0x1000, vm=0)]
        rep = judge_text(bundle(counters(retries=1), lines))
        self.assertIn("1 retry without a kick before", check(rep, 0, "kick_per_retry")["detail"])

    def test_armed_but_nothing_injected(self):
        text = bundle(counters(retries=0), [], meta={"run": "busy", "inject": "fail_map_busy:10"})
        c = check(judge_text(text), 0, "injected")
        self.assertEqual(c["status"], "fail")
        self.assertIn("nothing was injected", c["detail"])

    def test_armed_without_a_counter(self):
        stats = "\n".join(l for l in counters(retries=1).splitlines() if not l.startswith("injected_"))
        text = bundle(stats, pairs(1), meta={"run": "busy", "inject": "fail_map_busy:10"})
        self.assertIn("no injected-busy counter", check(judge_text(text), 0, "injected")["detail"])

    def test_clean_run_with_injections_fails(self):
        rep = judge_text(bundle(counters(retries=3, injected=3), pairs(3)))
        self.assertEqual(check(rep, 0, "injected")["status"], "fail")
        self.assertIn("left armed", check(rep, 0, "injected")["detail"])

    def test_absent_attribute_is_incomplete(self):
        text = clean_run() + bundle(counters(retries=0), [], meta={"run": "busy", "inject": "absent:fail_map_busy"})
        rep = judge_text(text)
        self.assertEqual(rep["verdict"], "INCOMPLETE")
        self.assertEqual(rep["exit_status"], 4)
        self.assertIn("no fail_map_busy/", check(rep, 1, "injected")["detail"])

    def test_td_did_not_finish(self):
        text = bundle(counters(retries=1), pairs(1), meta={"guest": "timeout", "guest_detail": "killed"})
        c = check(judge_text(text), 0, "guest")
        self.assertEqual(c["status"], "fail")
        self.assertIn("did not finish its work: timeout", c["detail"])

    def test_trace_lost_events(self):
        rep = judge_text(bundle(counters(retries=1), pairs(1), overrun=17))
        c = check(rep, 0, "trace")
        self.assertEqual(c["status"], "fail")
        self.assertIn("lost 17 events", c["detail"])
        # Without a complete trace, only the counters are used.
        self.assertEqual(check(rep, 0, "kick_per_retry")["status"], "pass")

    def test_trace_disagrees_with_counters(self):
        c = check(judge_text(bundle(counters(retries=2), pairs(1))), 0, "trace")
        self.assertEqual(c["status"], "fail")
        self.assertIn("1 tsg_kick lines, kicks 2", c["detail"])

    def test_idle_module(self):
        text = bundle("# idle: this CPU is not a TDX host platform (no X86_FEATURE_TDX_HOST_PLATFORM)\n", [])
        c = check(judge_text(text), 0, "attached")
        self.assertEqual(c["status"], "fail")
        self.assertIn("idle: this CPU is not a TDX host platform", c["detail"])

    def test_no_map_under_the_policy(self):
        c = check(judge_text(bundle(counters(ops=0, retries=0), [])), 0, "attached")
        self.assertEqual(c["status"], "fail")
        self.assertIn("kvm_map_calls 0", c["detail"])

    def test_unfinished_collection(self):
        rep = judge_text(bundle(counters(retries=1), pairs(1), end=False))
        self.assertEqual(check(rep, 0, "collected")["status"], "fail")
        self.assertEqual(rep["verdict"], "FAIL")

    def test_sim_run(self):
        stats = ("ops 1200\nseamcalls 1207\nkicks 177\nretries 7\nretry_successes 7\nkick_timeouts 0\nvm_bugs 0\n"
                 "sim_max_tries 2\nsim_vm_stopped 0\nsim_vcpus_done 1\n")
        lines = [kick(1.0 + i / 100) for i in range(170)] + pairs(7, start=5.0)
        text = bundle(stats, lines, meta={"mode": "sim", "guest": None}, latency="op_ns_max 9\nop_ns 8 10 1200\n")
        rep = judge_text(text.replace("tsg-collect: meta: guest None\n", ""))
        self.assertEqual(rep["verdict"], "PASS", json.dumps(rep["runs"][0]["checks"], indent=1))
        self.assertIn("sim_max_tries 2", check(rep, 0, "two_seamcalls")["detail"])
        self.assertEqual(check(rep, 0, "guest")["detail"], "sim_vcpus_done 1")
        # The same with the vCPUs unfinished, and kicks below retries.
        rep = judge_text(text.replace("sim_vcpus_done 1", "sim_vcpus_done 0").replace("kicks 177", "kicks 3"))
        self.assertEqual(check(rep, 0, "guest")["status"], "fail")
        self.assertIn("kicks 3 < retries 7", check(rep, 0, "kick_per_retry")["detail"])


class Parsing(unittest.TestCase):
    def test_bundles_in_a_serial_log(self):
        log = ("[    1.000000] Linux version 7.2.13\n"
               + bundle(counters(retries=1), pairs(1), prefix="[   15.123456] ").replace("\n", "\r\n")
               + "[   16.0] tdx-sept-guard-harness: ktap end\n"
               + bundle(counters(retries=0), [], meta={"run": "busy"}, prefix="[   17.0] "))
        bundles = HC.parse_bundles(log)
        self.assertEqual(len(bundles), 2)
        self.assertTrue(all(b["complete"] for b in bundles))
        run = HC.load_run(bundles[0])
        self.assertEqual(run.counters["ops"], 3906)
        self.assertEqual(run.vms, {"4242-0": {"ops": 12}})
        self.assertEqual(run.fault_attrs, {"fail_map_busy": {"probability": "0"}})
        self.assertEqual(run.trace_overrun, 0)
        self.assertEqual([e["event"] for e in run.events], ["tsg_kick", "tsg_retry"])
        self.assertEqual(HC.load_run(bundles[1]).name, "busy")

    def test_trace_line_from_the_simulator(self):
        line = ("tsg_zap/0-131 [002] ...1. 15.873885: tsg_retry: vm=0 leaf=TDH.MEM.RANGE.BLOCK gpa=0x4000 level=1 "
                "status=0x8000020000000001 tries=1")
        ev = HC.parse_trace([line, "garbage", "  <idle>-0 [000] d.h1. 1.0: sched_switch: x=1"])
        self.assertEqual(len(ev), 1)
        self.assertEqual(ev[0]["event"], "tsg_retry")
        self.assertEqual((ev[0]["leaf"], ev[0]["tries"], ev[0]["cpu"]), ("TDH.MEM.RANGE.BLOCK", "1", 2))
        self.assertAlmostEqual(ev[0]["ts"], 15.873885)

    def test_histograms_table_driven_and_tolerant(self):
        hists = HC.parse_histograms((LATENCY + "bogus line\nodd_max x\nthree 1 2\n").splitlines())
        self.assertEqual(set(hists), {"seamcall_aug_ns", "kick_ns", "gate_ns", "map_ns", "page_walk_ns"})
        self.assertEqual(hists["kick_ns"]["max"], 91022)
        self.assertIsNone(hists["page_walk_ns"]["max"])
        s = HC.summarize_histograms(hists)
        self.assertEqual(s["seamcall_aug_ns"]["what"], "one TDH.MEM.PAGE.AUG, timed around KVM's SEAMCALL wrapper")
        self.assertEqual(s["seamcall_aug_ns"]["count"], 3905)
        self.assertEqual(s["seamcall_aug_ns"]["p50_ns"], 2560)
        self.assertEqual(s["seamcall_aug_ns"]["p99_ns"], 3072)
        self.assertEqual(s["kick_ns"]["p50_ns"], 20480)
        self.assertEqual(s["kick_ns"]["p99_ns"], 91022)  # the bucket's bound, capped at the maximum
        self.assertIn("round trip", s["kick_ns"]["what"])
        self.assertIn("not known", s["page_walk_ns"]["what"])
        self.assertIsNone(HC.percentile([], 0.5))

    def test_stats_tolerant(self):
        c, notes = HC.parse_stats(["ops 1", "# idle: x", "x 1.5", "three 1 2", "", "neg -2"])
        self.assertEqual((c, notes), ({"ops": 1, "neg": -2}, ["# idle: x"]))

    def test_render_text(self):
        rep = judge_text(clean_run() + busy_run())
        text = "\n".join(HC.render(rep))
        self.assertTrue(text.startswith("tdx-host-check: PASS\n"))
        self.assertIn("run busy (mode=kvm, fail_map_busy at 10%): PASS", text)
        self.assertIn("  PASS at most 2 SEAMCALLs per map:", text)
        self.assertIn("injected_busy", text)
        self.assertIn("seamcall_aug_ns", text)
        self.assertIn("48.2 us", text)
        self.assertTrue(text.endswith("verdict: PASS (2 runs; exit status 0)"))


# --- the command line ------------------------------------------------------------


class Command(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="tdx-host-check-test-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    def run_tool(self, *args):
        return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=60)

    def saved(self, text):
        path = os.path.join(self.tmp, "collected.txt")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_judge_pass_text_and_json(self):
        path = self.saved(clean_run() + busy_run())
        p = self.run_tool("--judge", path)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("verdict: PASS", p.stdout)
        p = self.run_tool("--judge", path, "--json")
        self.assertEqual(p.returncode, 0)
        rep = json.loads(p.stdout)
        self.assertEqual((rep["verdict"], rep["exit_status"]), ("PASS", 0))
        self.assertEqual(rep["runs"][1]["inject"], {"state": "armed", "attribute": "fail_map_busy", "percent": "10"})
        self.assertEqual(rep["runs"][1]["counters"]["injected_busy"], 12)
        self.assertEqual(rep["runs"][1]["trace"]["events"], {"tsg_kick": 13, "tsg_retry": 13})
        self.assertIn("kick_ns", rep["runs"][0]["histograms"])

    def test_judge_fail(self):
        lines = pairs(11) + [retry(500.0, 0xb0000000)]
        path = self.saved(bundle(counters(retries=12, kicks=11, injected=12), lines,
                                 meta={"run": "busy", "inject": "fail_map_busy:10"}))
        p = self.run_tool("--judge", path)
        self.assertEqual(p.returncode, 1)
        self.assertIn("  FAIL each busy: one kick, then one retry:", p.stdout)
        self.assertIn("verdict: FAIL", p.stdout)

    def test_judge_errors(self):
        p = self.run_tool("--judge", os.path.join(self.tmp, "absent"))
        self.assertEqual(p.returncode, 3)
        self.assertIn("cannot read", p.stderr)
        p = self.run_tool("--judge", self.saved("nothing collected here\n"))
        self.assertEqual(p.returncode, 3)
        self.assertIn("no collected run", p.stderr)
        self.assertNotIn("Traceback", p.stderr)

    @unittest.skipIf("tdx_host_platform" in HC.cpu_flags(HC.read("/proc/cpuinfo")), "this is a TDX host")
    def test_refuses_here(self):
        p = self.run_tool()
        self.assertEqual(p.returncode, 2)
        self.assertEqual(p.stdout, "")
        first = p.stderr.splitlines()[0]
        self.assertTrue(first.startswith("tdx-host-check: not a TDX host: "), first)
        self.assertIn("tdx_host_platform", first)
        self.assertIn("refused:", p.stderr.splitlines()[-1])
        self.assertNotIn("Traceback", p.stderr)
        p = self.run_tool("--json")
        self.assertEqual(p.returncode, 2)
        rep = json.loads(p.stdout)
        self.assertEqual(rep["verdict"], "REFUSED")
        self.assertFalse(rep["preflight"][0]["ok"])

    def test_bad_arguments(self):
        for args in (["--busy-rate", "0"], ["--mode", "sim"], ["--module-only"], ["--vcpus", "0"],
                     ["--image", "x", "--kernel", "y"], ["--bogus"]):
            p = self.run_tool(*args)
            self.assertEqual(p.returncode, 2, args)
            self.assertIn("usage:", p.stderr)

    def test_help(self):
        p = self.run_tool("--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn("exit status:", p.stdout)


class Preflight(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="tdx-host-check-pre-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    def paths(self, flags, tdx):
        def put(name, text):
            path = os.path.join(self.tmp, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
            return path

        kvm = os.path.join(self.tmp, "kvm_intel")
        os.makedirs(kvm, exist_ok=True)
        return HC.Paths(
            cpuinfo=put("cpuinfo", f"processor\t: 0\nflags\t\t: fpu vme {flags}\n"),
            kvm_tdx=put("kvm_intel/parameters/tdx", tdx) if tdx is not None else os.path.join(kvm, "none"),
            kvm_intel=kvm if tdx is not None else os.path.join(self.tmp, "no_kvm_intel"),
            mounts=put("mounts", "debugfs /sys/kernel/debug debugfs rw 0 0\nnone /mnt/t tracefs rw 0 0\n"),
            modules=put("modules", "kvm_intel 1 0 - Live 0x0\n"),
        )

    def test_platform_and_kvm(self):
        p = self.paths("tdx_host_platform vmx", "Y\n")
        self.assertIsNone(HC.check_platform(p))
        self.assertIsNone(HC.check_kvm_tdx(p))
        p = self.paths("vmx", "N\n")
        self.assertIn("not a TDX host: ", HC.check_platform(p))
        self.assertIn("kvm_intel.tdx is N", HC.check_kvm_tdx(p))
        self.assertIn("kvm_intel is not loaded", HC.check_kvm_tdx(self.paths("vmx", None)))

    def test_mounts(self):
        p = self.paths("", "Y")
        self.assertIsNone(HC.mounted(p, "debugfs", "/sys/kernel/debug"))
        self.assertIn("mounted at /mnt/t, not /sys/kernel/tracing", HC.mounted(p, "tracefs", "/sys/kernel/tracing"))
        self.assertFalse(HC.module_loaded(p))

    def test_vermagic(self):
        ko = os.path.join(self.tmp, "m.ko")
        with open(ko, "w") as f:
            f.write("")
        args = HC.parse_args(["--module", ko])
        real = HC.run_cmd
        try:
            HC.run_cmd = lambda argv, timeout=30: (0, "6.99.0-tdx SMP preempt mod_unload\n", "")
            self.assertIn("is built for 6.99.0-tdx, the running kernel is",
                          HC.check_module_file(args, self.paths("", "Y")))
            HC.run_cmd = lambda argv, timeout=30: (0, HC.platform.release() + " SMP\n", "")
            self.assertIsNone(HC.check_module_file(args, self.paths("", "Y")))
        finally:
            HC.run_cmd = real


class TdPieces(unittest.TestCase):
    def test_qemu_command(self):
        args = HC.parse_args(["--vcpus", "8", "--memory", "4096", "--qemu-arg", "-d guest_errors"])
        cmd = HC.qemu_command(args, "/fw.fd", "/tmp/log", "/tmp/initrd")
        joined = " ".join(cmd)
        for want in ("-accel kvm", "-cpu host", "-smp 8", "-m 4096M", "-object tdx-guest,id=tdx0",
                     "confidential-guest-support=tdx0", "kernel-irqchip=split", "-bios /fw.fd",
                     "-initrd /tmp/initrd", "tsg_touch_mib=1536", "-serial file:/tmp/log", "-d guest_errors"):
            self.assertIn(want, joined)
        img = HC.qemu_command(HC.parse_args(["--image", "/td.qcow2"]), "/fw.fd", "/l", None)
        self.assertIn("file=/td.qcow2,if=virtio", img)
        self.assertNotIn("-kernel", img)

    def test_sim_params(self):
        self.assertEqual(HC.sim_params([]), ["vcpus=2", "ops=5000", "contention=50"])
        self.assertEqual(HC.sim_params(["ops=5", "seed=3"]), ["vcpus=2", "contention=50", "ops=5", "seed=3"])

    def test_guest_result(self):
        m = HC.GUEST_MARK
        self.assertEqual(HC.guest_result(f"x\n{m}start vcpus=4\n{m}done touched_mib=768\n", 0, False),
                         {"guest": "done", "guest_touched_mib": "768"})
        self.assertEqual(HC.guest_result(f"{m}failed: 1 of 4 writers failed\n", 0, False)["guest"], "failed")
        self.assertEqual(HC.guest_result("", 124, True)["guest"], "timeout")
        self.assertEqual(HC.guest_result("", 1, False), {"guest": "error", "guest_detail": "qemu_exit_1"})

    def test_initrd(self):
        with tempfile.TemporaryDirectory() as d:
            bb = os.path.join(d, "busybox")
            with open(bb, "wb") as f:
                f.write(b"\x7fELF-not-really")
            out = os.path.join(d, "i.cpio.gz")
            HC.build_initrd(bb, out)
            with gzip.open(out) as f:
                data = f.read()
        self.assertTrue(data.startswith(b"070701"))
        self.assertIn(b"init\0", data)
        self.assertIn(b'say() { echo "tdx-host-check-guest: $*"; }', data)
        self.assertIn(b'say "done touched_mib=', data)
        self.assertIn(b"TRAILER!!!\0", data)
        self.assertEqual(len(data) % 4, 0)

    def test_static_elf(self):
        self.assertFalse(HC.elf_is_static(sys.executable) and os.path.realpath(sys.executable).startswith("/usr"))
        self.assertFalse(HC.elf_is_static(SCRIPT))


# --- the module-side helper against a fake debugfs and tracefs ---------------------


class Helper(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="tdx-host-check-helper-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.dir = os.path.join(self.tmp, "debug", "tdx_sept_guard")
        self.tracefs = os.path.join(self.tmp, "tracing")
        self.inst = os.path.join(self.tracefs, "instances", "tdx_host_check")
        self.put("version", "0.2.0\n")
        self.put("stats", counters(retries=1))
        self.put("latency", LATENCY)
        self.put("reset", "")
        self.put("4242-0/stats", "ops 12\n")
        for f in ("probability", "interval", "times", "space", "verbose"):
            self.put(f"fail_map_busy/{f}", "0\n")
        os.makedirs(os.path.join(self.inst, "per_cpu", "cpu0"))
        with open(os.path.join(self.inst, "trace"), "w") as f:
            f.write("# tracer: nop\n" + "\n".join(pairs(1)) + "\n  <idle>-0 [000] 1.0: other_event: a=1\n")
        with open(os.path.join(self.inst, "per_cpu", "cpu0", "stats"), "w") as f:
            f.write("entries: 2\noverrun: 0\n")

    def put(self, name, text):
        path = os.path.join(self.dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)

    def get(self, name):
        with open(os.path.join(self.dir, name)) as f:
            return f.read().strip()

    def helper(self, *args):
        env = dict(os.environ, TSG_DEBUGFS=self.dir, TSG_TRACEFS=self.tracefs)
        return subprocess.run(["sh", HELPER, *args], capture_output=True, text=True, env=env, timeout=30)

    def test_collect_then_judge(self):
        p = self.helper("collect", "run=clean", "mode=kvm", "inject=none", "guest=done")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("reset", p.stdout)
        self.assertNotIn("other_event", p.stdout)
        self.assertIn("tsg-collect: meta: trace_overrun 0", p.stdout)
        rep = judge_text(p.stdout)
        self.assertEqual(rep["verdict"], "PASS", json.dumps(rep["runs"][0]["checks"], indent=1))
        run = HC.load_run(HC.parse_bundles(p.stdout)[0])
        self.assertEqual(run.version, "0.2.0")
        self.assertEqual(run.vms, {"4242-0": {"ops": 12}})
        self.assertEqual(set(run.histograms), {"seamcall_aug_ns", "kick_ns", "gate_ns", "map_ns", "page_walk_ns"})

    def test_arm_and_disarm(self):
        p = self.helper("arm", "fail_map_busy", "25", "100")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual((self.get("fail_map_busy/probability"), self.get("fail_map_busy/times"),
                          self.get("fail_map_busy/interval"), self.get("fail_map_busy/verbose")),
                         ("25", "100", "1", "0"))
        self.assertEqual(self.helper("disarm", "fail_map_busy").returncode, 0)
        self.assertEqual(self.get("fail_map_busy/probability"), "0")

    def test_arm_absent_attribute(self):
        p = self.helper("arm", "fail_retry_busy", "10")
        self.assertEqual(p.returncode, 3)
        self.assertIn("no fault injection attribute fail_retry_busy", p.stderr)

    def test_module_not_there(self):
        shutil.rmtree(self.dir)
        for step in (["collect"], ["reset"], ["arm", "fail_map_busy", "10"]):
            p = self.helper(*step)
            self.assertEqual(p.returncode, 1, step)
            self.assertIn("is the module loaded?", p.stderr)
        self.assertEqual(self.helper("bogus").returncode, 2)


if __name__ == "__main__":
    unittest.main()
