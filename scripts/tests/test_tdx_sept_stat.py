# SPDX-License-Identifier: GPL-2.0
"""Tests of scripts/tdx-sept-stat against fake debugfs trees.

Most tests run the script as a subprocess, as a person would; a few import
it (it has no .py suffix, hence SourceFileLoader) to reach a case a file
tree cannot set up, such as a directory that vanishes between listing and
reading. Run from the repository's top:

  python3 -m unittest discover -s scripts/tests -v
"""

import contextlib
import importlib.machinery
import importlib.util
import io
import json
import os
import queue
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from unittest import mock

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tdx-sept-stat")
SCRIPT = os.path.normpath(SCRIPT)

TOTAL = """\
ops 123
seamcalls 130
retries 2
kicks 2
zero_step_events 0
vm_bugs 0
gate_wait_ns 12345
sim_guest_ops 55
"""
VM_A = "ops 100\nseamcalls 101\nretries 0\n"
# The totals' latency file: 1000 AUGs of 2-2.5 us but 10 of 40.96-49.15 us
# (max 45 us), 2 kicks, the other histograms empty.
LATENCY = """\
seamcall_aug_ns_max 45000
seamcall_aug_ns 2048 2560 1000
seamcall_aug_ns 40960 49152 10
seamcall_remove_ns_max 0
kick_ns_max 90500
kick_ns 81920 98304 2
gate_ns_max 0
"""
VM_B = "ops 23\nseamcalls 29\nretries 2\n"


def load_module():
    loader = importlib.machinery.SourceFileLoader("tdx_sept_stat", SCRIPT)
    spec = importlib.util.spec_from_loader("tdx_sept_stat", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def write(path, text):
    """Replaces `path` at once, so the script never reads half a file."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def sections(text):
    """The text view's counter sections as {section title: {counter: (value,
    rate or None)}} (the latency sections are left out)."""
    out, cur = {}, None
    for line in text.splitlines():
        if line and not line.startswith(" "):
            if line.startswith("tdx_sept_guard "):
                continue
            cur = None if line.startswith("latency ") else out.setdefault(line, {})
        elif cur is not None and line.startswith("  ") and not line.startswith("  #"):
            parts = line.split()
            if parts[0] in ("counter", "(") or parts[0].startswith("("):
                continue
            rate = parts[2] if len(parts) > 2 else None
            cur[parts[0]] = (int(parts[1]), rate)
    return out


class Tree(unittest.TestCase):
    """A fake /sys/kernel/debug/tdx_sept_guard per test."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="tdx-sept-stat-test-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.root = os.path.join(self.tmp, "tdx_sept_guard")
        write(os.path.join(self.root, "version"), "0.1.0\n")
        write(os.path.join(self.root, "stats"), TOTAL)
        write(os.path.join(self.root, "1234-7", "stats"), VM_A)
        write(os.path.join(self.root, "99-1", "stats"), VM_B)

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def run_tool(self, *args, env=None, timeout=20):
        full_env = dict(os.environ)
        full_env.pop("TDX_SEPT_GUARD_DEBUGFS", None)
        full_env.update(env or {})
        return subprocess.run(
            [sys.executable, SCRIPT, *args],
            capture_output=True, text=True, timeout=timeout, env=full_env,
        )

    def assert_one_line_error(self, proc, status, words):
        self.assertEqual(proc.returncode, status, proc.stderr)
        self.assertEqual(proc.stdout, "")
        self.assertNotIn("Traceback", proc.stderr)
        self.assertEqual(len(proc.stderr.splitlines()), 1, proc.stderr)
        self.assertIn(words, proc.stderr)

    def start_live(self, *args):
        """Starts a live JSON Lines run; returns (process, queue of lines)."""
        proc = subprocess.Popen(
            [sys.executable, SCRIPT, "--root", self.root, "--json", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )

        def stop():
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()
            proc.stderr.close()

        self.addCleanup(stop)
        lines = queue.Queue()

        def pump():
            for line in proc.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        return proc, lines

    def next_object(self, lines, timeout=10):
        line = lines.get(timeout=timeout)
        self.assertIsNotNone(line, "the script stopped writing")
        return json.loads(line)


class Once(Tree):
    def test_text_totals_and_vms(self):
        p = self.run_tool("--root", self.root, "--once", "--delay", "0")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, "")
        self.assertIn("tdx_sept_guard 0.1.0", p.stdout)
        got = sections(p.stdout)
        self.assertEqual(list(got), ["total", "vm 99-1", "vm 1234-7"])
        # Values only with --delay 0, zero rows hidden.
        self.assertEqual(
            got["total"],
            {
                "gate_wait_ns": (12345, None), "seamcalls": (130, None),
                "ops": (123, None), "sim_guest_ops": (55, None),
                "kicks": (2, None), "retries": (2, None),
            },
        )
        self.assertEqual(got["vm 1234-7"], {"seamcalls": (101, None), "ops": (100, None)})
        self.assertEqual(got["vm 99-1"], {"seamcalls": (29, None), "ops": (23, None), "retries": (2, None)})
        self.assertIn("2 zero counters hidden", p.stdout)
        # Sorted by value, descending (no rates to sort by).
        self.assertEqual(list(got["total"]), ["gate_wait_ns", "seamcalls", "ops", "sim_guest_ops", "kicks", "retries"])

    def test_text_all_and_fields(self):
        p = self.run_tool("--root", self.root, "--once", "--delay", "0", "-a", "-f", "^(ops|retries|vm_bugs)$")
        self.assertEqual(p.returncode, 0, p.stderr)
        got = sections(p.stdout)
        self.assertEqual(got["total"], {"ops": (123, None), "retries": (2, None), "vm_bugs": (0, None)})
        self.assertEqual(got["vm 1234-7"], {"ops": (100, None), "retries": (0, None)})

    def test_text_with_rates(self):
        p = self.run_tool("--root", self.root, "--once", "--delay", "0.2")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("rates over 0.2", p.stdout)
        self.assertEqual(sections(p.stdout)["total"]["ops"], (123, "0.0"))

    def test_json_values_only(self):
        p = self.run_tool("--root", self.root, "--once", "--json", "--delay", "0")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(p.stdout.splitlines()), 1)
        snap = json.loads(p.stdout)
        self.assertEqual(set(snap), {"time", "version", "interval_s", "total", "vms", "latency"})
        self.assertEqual(snap["version"], "0.1.0")
        self.assertIsNone(snap["interval_s"])
        self.assertAlmostEqual(snap["time"], time.time(), delta=60)
        # JSON keeps zero counters: its keys do not come and go.
        self.assertEqual(snap["total"]["vm_bugs"], {"value": 0, "delta_per_s": None})
        self.assertEqual(snap["total"]["ops"], {"value": 123, "delta_per_s": None})
        self.assertEqual(list(snap["vms"]), ["99-1", "1234-7"])
        self.assertEqual(snap["vms"]["1234-7"]["seamcalls"], {"value": 101, "delta_per_s": None})
        self.assertEqual(snap["vms"]["99-1"]["retries"]["value"], 2)

    def test_json_two_samples(self):
        p = self.run_tool("--root", self.root, "--once", "--json", "--delay", "0.2")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(p.stdout.splitlines()), 1)
        snap = json.loads(p.stdout)
        self.assertGreaterEqual(snap["interval_s"], 0.2)
        self.assertEqual(snap["total"]["ops"], {"value": 123, "delta_per_s": 0.0})

    def test_root_from_environment(self):
        p = self.run_tool("--once", "--json", "--delay", "0", env={"TDX_SEPT_GUARD_DEBUGFS": self.root})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["total"]["seamcalls"]["value"], 130)

    def test_non_integer_lines_skipped(self):
        write(self.path("stats"), (
            "ops 7\n# idle: no simulation\n\nratio 1.5\nhex 0x10\nthree 1 2\nlonely\n"
            "name_only \nneg -3\nbig 18446744073709551615\nunder 1_000\n"
        ))
        p = self.run_tool("--root", self.root, "--once", "--json", "--delay", "0")
        self.assertEqual(p.returncode, 0, p.stderr)
        total = json.loads(p.stdout)["total"]
        self.assertEqual({k: v["value"] for k, v in total.items()},
                         {"ops": 7, "neg": -3, "big": 18446744073709551615})
        p = self.run_tool("--root", self.root, "--once", "--delay", "0")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("  # idle: no simulation", p.stdout)

    def test_vm_directories_that_are_gone_or_odd(self):
        os.makedirs(self.path("5-1"))  # listed, no stats: removed meanwhile
        os.symlink(os.path.join(self.tmp, "nowhere"), self.path("6-1"))
        write(self.path("7-1"), "ops 1\n")  # a file, not a directory
        write(self.path("sim", "stats"), "ops 1\n")  # not a VM's name
        p = self.run_tool("--root", self.root, "--once", "--json", "--delay", "0")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(list(json.loads(p.stdout)["vms"]), ["99-1", "1234-7"])

    def test_idle_module(self):
        write(self.path("stats"), "# no simulation running (mode=idle)\n")
        shutil.rmtree(self.path("1234-7"))
        shutil.rmtree(self.path("99-1"))
        p = self.run_tool("--root", self.root, "--once", "--delay", "0")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("# no simulation running (mode=idle)", p.stdout)


class Latency(Tree):
    def setUp(self):
        super().setUp()
        write(self.path("latency"), LATENCY)
        write(self.path("99-1", "latency"), "kick_ns_max 700\nkick_ns 640 768 1\n")
        write(self.path("1234-7", "latency"), "# no latency histograms: the module was loaded with latency=0\n")

    def latency_rows(self, text, title):
        """{histogram: [count, p50, p99, max]} of section `title`."""
        rows, inside = {}, False
        for line in text.splitlines():
            if line and not line.startswith(" "):
                inside = line == title
            elif inside and line.startswith("  ") and not line.startswith(("  #", "  (", "  histogram")):
                parts = line.split()
                rows[parts[0]] = parts[1:5]
        return rows

    def test_text(self):
        p = self.run_tool("--root", self.root, "--once", "--delay", "0")
        self.assertEqual(p.returncode, 0, p.stderr)
        # p50 in the 2-2.5 us bucket; p99 too (1000 of 1010); max exact.
        self.assertEqual(self.latency_rows(p.stdout, "latency total"), {
            "seamcall_aug_ns": ["1010", "2.6us", "2.6us", "45.0us"],
            "kick_ns": ["2", "90.5us", "90.5us", "90.5us"],
        })
        self.assertIn("2 empty histograms hidden", p.stdout)
        self.assertEqual(self.latency_rows(p.stdout, "latency vm 99-1"), {"kick_ns": ["1", "700ns", "700ns", "700ns"]})
        self.assertIn("latency vm 1234-7\n  # no latency histograms: the module was loaded with latency=0", p.stdout)
        # The counters' sections are as before.
        self.assertEqual(sections(p.stdout)["total"]["ops"], (123, None))

    def test_text_all_and_fields(self):
        p = self.run_tool("--root", self.root, "--once", "--delay", "0", "-a", "-f", "^(gate|kick)_ns$")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.latency_rows(p.stdout, "latency total"), {
            "kick_ns": ["2", "90.5us", "90.5us", "90.5us"], "gate_ns": ["0", "-", "-", "-"],
        })

    def test_p99_in_the_tail(self):
        write(self.path("latency"), "seamcall_aug_ns_max 45000\nseamcall_aug_ns 2048 2560 90\n"
                                    "seamcall_aug_ns 40960 49152 10\n")
        p = self.run_tool("--root", self.root, "--once", "--delay", "0")
        # The bucket's upper bound (49152) is above the max: the max caps it.
        self.assertEqual(self.latency_rows(p.stdout, "latency total")["seamcall_aug_ns"],
                         ["100", "2.6us", "45.0us", "45.0us"])

    def test_json(self):
        p = self.run_tool("--root", self.root, "--once", "--json", "--delay", "0.2")
        self.assertEqual(p.returncode, 0, p.stderr)
        lat = json.loads(p.stdout)["latency"]
        self.assertEqual(lat["total"]["seamcall_aug_ns"], {
            "count": 1010, "p50_ns": 2560, "p99_ns": 2560, "max_ns": 45000, "delta_per_s": 0.0,
        })
        # JSON keeps empty histograms.
        self.assertEqual(lat["total"]["gate_ns"], {
            "count": 0, "p50_ns": None, "p99_ns": None, "max_ns": None, "delta_per_s": 0.0,
        })
        self.assertEqual(lat["vms"]["99-1"]["kick_ns"]["max_ns"], 700)
        self.assertEqual(lat["vms"]["1234-7"], {})

    def test_without_latency_files(self):
        os.remove(self.path("latency"))
        p = self.run_tool("--root", self.root, "--once", "--json", "--delay", "0")
        self.assertIsNone(json.loads(p.stdout)["latency"]["total"])
        p = self.run_tool("--root", self.root, "--once", "--delay", "0")
        self.assertNotIn("latency total", p.stdout)


class Errors(Tree):
    def test_missing_root(self):
        p = self.run_tool("--root", os.path.join(self.tmp, "absent"), "--once")
        self.assert_one_line_error(p, 2, "module not loaded")

    def test_missing_root_live(self):
        p = self.run_tool("--root", os.path.join(self.tmp, "absent"))
        self.assert_one_line_error(p, 2, "module not loaded")

    def test_missing_totals(self):
        os.unlink(self.path("stats"))
        p = self.run_tool("--root", self.root, "--once")
        self.assert_one_line_error(p, 2, "module not loaded")

    def test_unreadable_totals(self):
        # A directory where the file should be: unreadable even for root.
        os.unlink(self.path("stats"))
        os.mkdir(self.path("stats"))
        p = self.run_tool("--root", self.root, "--once")
        self.assert_one_line_error(p, 2, "cannot read " + self.path("stats"))

    @unittest.skipIf(os.geteuid() == 0, "root reads a file whatever its mode")
    def test_permission_denied(self):
        os.chmod(self.path("stats"), 0)
        p = self.run_tool("--root", self.root, "--once")
        self.assert_one_line_error(p, 2, "permission denied")

    @unittest.skipIf(os.geteuid() == 0, "root reads a directory whatever its mode")
    def test_permission_denied_directory(self):
        os.chmod(self.root, 0)
        self.addCleanup(os.chmod, self.root, 0o755)
        p = self.run_tool("--root", self.root, "--once")
        self.assert_one_line_error(p, 2, "permission denied")

    def test_bad_arguments(self):
        for args in (["--delay", "-1"], ["--delay", "x"], ["-f", "("], ["--delay", "0"], ["--bogus"]):
            p = self.run_tool("--root", self.root, *args)
            self.assertEqual(p.returncode, 2, args)
            self.assertIn("usage:", p.stderr)
            self.assertNotIn("Traceback", p.stderr)

    def test_help(self):
        p = self.run_tool("--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn("examples:", p.stdout)
        self.assertIn("--once", p.stdout)


class Live(Tree):
    def test_json_lines_rates(self):
        proc, lines = self.start_live("--delay", "1")
        first = self.next_object(lines)
        self.assertIsNone(first["interval_s"])
        self.assertIsNone(first["total"]["ops"]["delta_per_s"])
        # Between the two samples: counters go up, one goes down (reset),
        # a VM goes away, another comes, a counter appears.
        write(self.path("stats"), TOTAL.replace("ops 123", "ops 223").replace("retries 2", "retries 1")
              + "kick_timeouts 4\n")
        write(self.path("1234-7", "stats"), "ops 150\nseamcalls 101\nretries 0\n")
        shutil.rmtree(self.path("99-1"))
        write(self.path("42-3", "stats"), "ops 5\n")
        second = self.next_object(lines)
        dt = second["interval_s"]
        self.assertGreater(dt, 0.5)
        self.assertLess(dt, 5)
        total = second["total"]
        self.assertEqual(total["ops"]["value"], 223)
        self.assertAlmostEqual(total["ops"]["delta_per_s"], 100 / dt, places=2)
        self.assertEqual(total["seamcalls"]["delta_per_s"], 0.0)
        self.assertIsNone(total["retries"]["delta_per_s"])
        self.assertEqual(total["kick_timeouts"], {"value": 4, "delta_per_s": None})
        self.assertEqual(list(second["vms"]), ["42-3", "1234-7"])
        self.assertAlmostEqual(second["vms"]["1234-7"]["ops"]["delta_per_s"], 50 / dt, places=2)
        self.assertIsNone(second["vms"]["42-3"]["ops"]["delta_per_s"])
        proc.send_signal(signal.SIGINT)
        self.assertEqual(proc.wait(timeout=10), 0)
        self.assertEqual(proc.stderr.read(), "")

    def test_module_unloaded(self):
        proc, lines = self.start_live("--delay", "0.3")
        self.next_object(lines)
        shutil.rmtree(self.root)
        self.assertEqual(proc.wait(timeout=10), 1)
        err = proc.stderr.read()
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertIn("module unloaded", err)

    def test_sigterm(self):
        proc, lines = self.start_live("--delay", "0.3")
        self.next_object(lines)
        proc.terminate()
        self.assertEqual(proc.wait(timeout=10), 0)
        self.assertEqual(proc.stderr.read(), "")

    def test_terminal_quit_with_q(self):
        import pty
        import termios

        pid, fd = pty.fork()
        if pid == 0:
            try:
                os.execv(sys.executable, [sys.executable, SCRIPT, "--root", self.root, "--delay", "0.2"])
            finally:
                os._exit(127)
        self.addCleanup(os.close, fd)

        def read_for(seconds):
            out, end = b"", time.monotonic() + seconds
            while time.monotonic() < end:
                ready, _, _ = select.select([fd], [], [], 0.05)
                if ready:
                    try:
                        chunk = os.read(fd, 65536)
                    except OSError:
                        break
                    if not chunk:
                        break
                    out += chunk
            return out

        out = b""
        deadline = time.monotonic() + 10
        while out.count(b"\x1b[H") < 2 and time.monotonic() < deadline:
            out += read_for(0.1)
        self.assertGreaterEqual(out.count(b"\x1b[H"), 2, out)  # redrawn in place
        self.assertFalse(termios.tcgetattr(fd)[3] & termios.ICANON)  # keys without Enter
        os.write(fd, b"q")
        deadline = time.monotonic() + 10
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done or time.monotonic() > deadline:
                break
            out += read_for(0.1)
            time.sleep(0.01)  # the read fails at once when the child is gone
        if not done:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            self.fail("q did not stop the live view")
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)
        out += read_for(0.2)
        text = out.decode(errors="replace")
        self.assertIn("vm 1234-7", text)
        self.assertNotIn("Traceback", text)
        self.assertTrue(out.rstrip().endswith(b"\x1b[?25h"), out[-40:])  # cursor shown again
        self.assertTrue(termios.tcgetattr(fd)[3] & termios.ICANON)  # terminal restored


class Functions(unittest.TestCase):
    """The script's functions, imported."""

    @classmethod
    def setUpClass(cls):
        cls.mod = load_module()

    def test_rates(self):
        got = self.mod.rates({"a": 10, "b": 5, "gone": 1}, {"a": 30, "b": 4, "c": 1}, 2.0)
        self.assertEqual(got, {
            "a": {"value": 30, "delta_per_s": 10.0},
            "b": {"value": 4, "delta_per_s": None},
            "c": {"value": 1, "delta_per_s": None},
        })
        self.assertEqual(self.mod.rates(None, {"a": 1}, None), {"a": {"value": 1, "delta_per_s": None}})

    def test_snapshot(self):
        prev = {"mono": 10.0, "time": 1.0, "version": "v", "total": ({"x": 1}, []),
                "vms": {"1-1": ({"x": 4}, []), "2-2": ({"x": 9}, [])}}
        cur = {"mono": 12.5, "time": 3.5, "version": "v", "total": ({"x": 11, "y": 0}, []),
               "vms": {"1-1": ({"x": 9}, []), "3-3": ({"x": 2}, [])}}
        snap = self.mod.snapshot(prev, cur)
        self.assertEqual(snap["interval_s"], 2.5)
        self.assertEqual(snap["total"]["x"], {"value": 11, "delta_per_s": 4.0})
        self.assertEqual(snap["total"]["y"], {"value": 0, "delta_per_s": None})
        self.assertEqual(snap["vms"]["1-1"]["x"]["delta_per_s"], 2.0)
        self.assertIsNone(snap["vms"]["3-3"]["x"]["delta_per_s"])
        self.assertNotIn("2-2", snap["vms"])
        only_y = self.mod.snapshot(prev, cur, self.mod.re.compile("y"))
        self.assertEqual(list(only_y["total"]), ["y"])

    def test_sort_rows(self):
        section = {
            "low_rate_high_value": {"value": 1000, "delta_per_s": 1.0},
            "high_rate": {"value": 10, "delta_per_s": 5.0},
            "no_rate": {"value": 50, "delta_per_s": None},
            "b_tie": {"value": 7, "delta_per_s": 0.0},
            "a_tie": {"value": 7, "delta_per_s": 0.0},
        }
        self.assertEqual([r[0] for r in self.mod.sort_rows(section)],
                         ["high_rate", "low_rate_high_value", "no_rate", "a_tie", "b_tie"])

    def test_summarize(self):
        hists, notes = self.mod.parse_latency("# n\nx_ns_max 300\nx_ns 256 320 3\nbad line\ny_ns_max 0\n")
        self.assertEqual(notes, ["# n"])
        self.assertEqual(hists, {"x_ns": {"max": 300, "buckets": [(256, 320, 3)]}, "y_ns": {"max": 0, "buckets": []}})
        before = {"x_ns": {"max": 280, "buckets": [(256, 320, 1)]}}
        got = self.mod.summarize(hists, before, 2.0)
        self.assertEqual(got["x_ns"], {"count": 3, "p50_ns": 300, "p99_ns": 300, "max_ns": 300, "delta_per_s": 1.0})
        self.assertEqual(got["y_ns"], {"count": 0, "p50_ns": None, "p99_ns": None, "max_ns": None,
                                       "delta_per_s": None})

    def test_parse_stats(self):
        self.assertEqual(self.mod.parse_stats("a 1\n# c\nb x\n  c 2  \n"), ({"a": 1, "c": 2}, ["# c"]))

    def test_debugfs_mount_check(self):
        with tempfile.TemporaryDirectory() as d:
            mounts = os.path.join(d, "mounts")
            cases = [
                ("sysfs /sys sysfs rw 0 0\ndebugfs /sys/kernel/debug debugfs rw 0 0\n", None),
                ("sysfs /sys sysfs rw 0 0\n", "not mounted at /sys/kernel/debug"),
                ("none /mnt/dbg debugfs rw 0 0\n", "use --root /mnt/dbg/tdx_sept_guard"),
            ]
            for text, want in cases:
                with open(mounts, "w") as f:
                    f.write(text)
                got = self.mod.debugfs_problem(mounts)
                if want is None:
                    self.assertIsNone(got)
                else:
                    self.assertIn(want, got)

    def run_main(self, argv):
        err = io.StringIO()
        out = io.StringIO()
        saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
                status = self.mod.main(argv)
        finally:
            for sig, handler in saved.items():
                signal.signal(sig, handler)
        return status, out.getvalue(), err.getvalue()

    def test_vm_vanishes_between_listing_and_reading(self):
        with tempfile.TemporaryDirectory() as d:
            root = os.path.join(d, "tdx_sept_guard")
            write(os.path.join(root, "stats"), "ops 1\n")
            write(os.path.join(root, "1-1", "stats"), "ops 2\n")
            write(os.path.join(root, "2-2", "stats"), "ops 3\n")
            real_listdir = os.listdir

            def listdir_then_remove(path):
                names = real_listdir(path)
                if os.path.samefile(path, root):
                    shutil.rmtree(os.path.join(root, "1-1"))
                return names

            with mock.patch.object(self.mod.os, "listdir", listdir_then_remove):
                status, out, err = self.run_main(["--root", root, "--once", "--json", "--delay", "0"])
            self.assertEqual((status, err), (0, ""))
            self.assertEqual(list(json.loads(out)["vms"]), ["2-2"])

    def test_permission_denied_as_root_too(self):
        with tempfile.TemporaryDirectory() as d:
            root = os.path.join(d, "tdx_sept_guard")
            write(os.path.join(root, "stats"), "ops 1\n")

            def denied(path, *args, **kwargs):
                raise PermissionError(13, "Permission denied", path)

            with mock.patch.object(self.mod, "open", denied, create=True):
                status, out, err = self.run_main(["--root", root, "--once", "--delay", "0"])
            self.assertEqual((status, out), (2, ""))
            self.assertIn("permission denied", err)
            self.assertIn("run as root", err)
            self.assertEqual(len(err.splitlines()), 1)

    def test_debugfs_not_mounted_message(self):
        # Only the default root is checked against the mounts.
        with mock.patch.object(self.mod, "debugfs_problem", return_value="debugfs is not mounted at X"):
            self.assertEqual(self.mod.not_loaded_message("/nope", True), "debugfs is not mounted at X")
            self.assertIn("module not loaded", self.mod.not_loaded_message("/nope", False))
        with mock.patch.object(self.mod, "debugfs_problem", return_value=None):
            self.assertIn("module not loaded", self.mod.not_loaded_message("/nope", True))


if __name__ == "__main__":
    unittest.main()
