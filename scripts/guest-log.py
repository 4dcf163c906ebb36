#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Judges the `make check` guest logs.

The boots print KTAP between harness markers, and each such segment goes
to the kernel's own KTAP parser (`kunit.py parse`); the results are
counted by the same code.

The first boot (LOG) has these segments:

- `ktap begin` .. `ktap end`: the test module's insmod with every KUnit
  suite; each --suite must be among them.
- `ktap begin coexist-NAME` .. `ktap end coexist-NAME`, one per --coexist
  NAME: the KVM suites (those --suite that match --coexist-glob, and at
  least tdx_sept_guard_kvm) run again while the tracer NAME is on KVM's
  tdx_sept_set_private_spte(). Every suite in the segment must pass, and
  the guest's `coexist NAME traced N` must say that the tracer saw the
  function (N > 0). Each coexistence check that fails (segment missing or
  unfinished, tracer not set up, suite missing, nothing traced, insmod,
  teardown or rmmod failed) counts as one failed test, and a traced count
  above zero as one passed test.

The second boot (--interface) holds the interface checks of
scripts/guest/interface, written with the kernel's kselftest
ktap_helpers.sh, between `ktap begin` and `ktap end`.

Checks that every expected suite ran, that each boot finished and that the
kernel reported nothing wrong anywhere in either log (the patterns are in
scripts/kernel_trouble.py). Prints the totals as `guest: N passed,
N failed, N skipped` and exits non-zero on any failure.
"""

import argparse
import fnmatch
import json
import os
import re
import subprocess
import sys

# The shared pattern list sits next to this script; no __pycache__ there.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernel_trouble import KERNEL_TROUBLE  # noqa: E402

MARK = "tdx-sept-guard-harness: "

# The KVM suite every coexistence run must contain, and the KUnit
# filter_glob the guest uses for those runs (check.sh passes both sides).
COEXIST_SUITE = "tdx_sept_guard_kvm"
COEXIST_GLOB = "tdx_sept_guard_kvm*"

# A top-level KTAP result or plan line, after the kernel's "[ time] " prefix.
TOP_RESULT = re.compile(r"^(?:\[[ 0-9.]+\] )?(?:ok|not ok) ([0-9]+)\b")
TOP_PLAN = re.compile(r"^(?:\[[ 0-9.]+\] )?1\.\.([0-9]+)\s*$")


def walk(node, suites, counts, failed, label=None, prefix=""):
    """Counts the test cases of a `kunit.py parse --json` tree."""
    for case in node.get("test_cases", []):
        status = case.get("status", "")
        key = {"PASS": "passed", "SKIP": "skipped"}.get(status, "failed")
        counts[key] += 1
        if key == "failed":
            name = case.get("name") or "<no result: the guest stopped before it>"
            where = f"{label}: " if label else f"{node.get('name')}."
            failed.append(f"{prefix}{where}{name} ({status})")
    for sub in node.get("sub_groups", []):
        suites.add(sub.get("name"))
        walk(sub, suites, counts, failed, prefix=prefix)


def read_log(path):
    with open(path, errors="backslashreplace") as f:
        return f.read().splitlines()


def marker(lines, text):
    """Index of the first line that is the harness marker `text`, or None."""
    return next((i for i, l in enumerate(lines) if l.endswith(MARK + text)), None)


def marker_value(lines, text):
    """What follows the first harness marker that starts with `text`, or None."""
    for line in lines:
        _, found, rest = line.partition(MARK + text)
        if found:
            return rest.strip()
    return None


def run_parser(ktap_lines, path, segment, kunit):
    """Hands KTAP lines to kunit.py parse; returns (JSON tree or None, error).
    The KTAP and JSON stay next to the log: LOG.ktap and LOG.json, or
    LOG.SEGMENT.ktap and LOG.SEGMENT.json for a named segment."""
    base = os.path.splitext(os.path.abspath(path))[0]
    if segment:
        base += "." + segment
    ktap, js = base + ".ktap", base + ".json"
    with open(ktap, "w") as f:
        f.write("\n".join(ktap_lines) + "\n")
    if os.path.exists(js):
        os.remove(js)
    parsed = subprocess.run(
        [sys.executable, kunit, "parse", f"--json={js}", ktap],
        capture_output=True, text=True,
    )
    print(parsed.stdout, end="")
    if not os.path.exists(js):
        return None, f"kunit.py parse failed: {parsed.stderr.strip()[-400:]}"
    with open(js) as f:
        return json.load(f), None


def parse_ktap(lines, path, what, kunit, problems):
    """Hands the KTAP between the `ktap begin` and `ktap end` markers of one
    boot's log to kunit.py parse; returns the JSON tree (None if there is
    none) and the KTAP lines."""
    begin, end = marker(lines, "ktap begin"), marker(lines, "ktap end")
    if begin is None or end is None:
        problems.append(f"{what}: the guest never reached the end of its KTAP (crash, hang or timeout)")
        begin = -1 if begin is None else begin
        end = len(lines) if end is None else end
    ktap_lines = lines[begin + 1 : end]
    tree, error = run_parser(ktap_lines, path, None, kunit)
    if error:
        problems.append(f"{what}: {error}")
    return tree, ktap_lines


def check_kernel(lines, what, problems):
    for line in lines:
        if KERNEL_TROUBLE.search(line) and MARK not in line:
            problems.append(f"kernel reported ({what}): {line.strip()}")


def check_coexist(lines, path, name, kunit, required, counts, failed):
    """One coexistence run: the KVM suites under tracer `name`. Each failed
    check is one failed test named `coexist-NAME: what went wrong`."""
    seg = f"coexist-{name}"

    def fail(text):
        counts["failed"] += 1
        failed.append(f"{seg}: {text}")

    why = marker_value(lines, f"coexist {name} setup FAILED:")
    if why is not None:
        fail(f"tracer not set up: {why or 'no reason given'}")
        return
    begin, end = marker(lines, f"ktap begin {seg}"), marker(lines, f"ktap end {seg}")
    if begin is None:
        fail("no KTAP segment (the guest stopped before this run)")
        return
    finished = end is not None and end > begin
    ktap_lines = lines[begin + 1 : end if finished else len(lines)]
    # Whatever ran is counted, finished or not.
    tree, error = run_parser(ktap_lines, path, seg, kunit)
    suites = set()
    if tree:
        walk(tree, suites, counts, failed, prefix=f"{seg}: ")
    elif marker(lines, f"coexist {name} insmod FAILED") is None:
        fail(error or "kunit.py parse gave nothing")
    if not finished:
        fail("the run did not finish (crash, hang or timeout)")
        return
    if marker(lines, f"coexist {name} insmod FAILED") is not None:
        fail("insmod of the test module failed")
        return
    for suite in sorted(required):
        if suite not in suites:
            fail(f"suite {suite} did not run")
    traced = marker_value(lines, f"coexist {name} traced ")
    if traced is None or not traced.isdigit():
        fail(f"no trace line count from the guest ({traced!r})")
    elif int(traced) == 0:
        fail("tracer saw no call of tdx_sept_set_private_spte")
    else:
        counts["passed"] += 1
        print(f"{seg}: the tracer saw {traced} trace lines of tdx_sept_set_private_spte")
    why = marker_value(lines, f"coexist {name} teardown FAILED:")
    if why is not None:
        fail(f"tracer teardown failed: {why or 'no reason given'}")
    if marker(lines, f"coexist {name} rmmod ok") is None:
        fail("rmmod of the test module failed")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("log", help="serial log of the KUnit boot")
    ap.add_argument("--kunit", required=True, help="path to kunit.py")
    ap.add_argument("--suite", action="append", default=[], help="expected suite (repeatable)")
    ap.add_argument("--coexist", action="append", default=[], metavar="NAME",
                    help="expected coexistence run with tracer NAME (repeatable)")
    ap.add_argument("--coexist-glob", default=COEXIST_GLOB, metavar="GLOB",
                    help=f"KUnit filter_glob of the coexistence runs (default {COEXIST_GLOB})")
    ap.add_argument("--interface", help="serial log of the interface boot")
    args = ap.parse_args(argv)

    problems = []
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    suites, failed = set(), []

    # First boot: every KUnit suite at the test module's insmod.
    lines = read_log(args.log)
    for needed in ("rmmod ok", "done"):
        if marker(lines, needed) is None:
            problems.append(f"KUnit boot: missing harness step: {needed}")
    if marker(lines, "insmod FAILED") is not None:
        problems.append("KUnit boot: insmod failed")
    if marker(lines, "rmmod FAILED") is not None:
        problems.append("KUnit boot: rmmod failed")
    check_kernel(lines, "KUnit boot", problems)
    tree, _ = parse_ktap(lines, args.log, "KUnit boot", args.kunit, problems)
    if tree:
        walk(tree, suites, counts, failed)
    for suite in args.suite:
        if suite not in suites:
            problems.append(f"expected KUnit suite did not run: {suite}")

    # Same boot: the KVM suites again, beside another tracer each time.
    required = {COEXIST_SUITE} | {s for s in args.suite if fnmatch.fnmatchcase(s, args.coexist_glob)}
    for name in args.coexist:
        check_coexist(lines, args.log, name, args.kunit, required, counts, failed)

    # Second boot: the interface checks, flat KTAP from ktap_helpers.sh.
    if args.interface:
        lines = read_log(args.interface)
        if marker(lines, "done") is None:
            problems.append("interface boot: the guest did not finish (crash, hang or timeout)")
        check_kernel(lines, "interface boot", problems)
        tree, ktap_lines = parse_ktap(lines, args.interface, "interface boot", args.kunit, problems)
        if tree:
            walk(tree, set(), counts, failed, label="interface")
        # A second KTAP header (KUnit's, printed at insmod unless
        # kunit.autorun=0) would nest the rest under it.
        headers = [l for l in ktap_lines if re.search(r"\bK?TAP version [0-9]+$", l)]
        if len(headers) != 1:
            problems.append(f"interface boot: {len(headers)} KTAP headers, expected 1: {headers[:3]}")
        # The parser stops at the plan's count: more results than planned
        # would go unseen.
        plans = [int(m.group(1)) for m in map(TOP_PLAN.match, ktap_lines) if m]
        results = [int(m.group(1)) for m in map(TOP_RESULT.match, ktap_lines) if m]
        if plans and results and max(results) > plans[0]:
            problems.append(f"interface boot: KTAP plan 1..{plans[0]} but {max(results)} results")

    problems += [f"test failed: {t}" for t in failed]
    for p in problems:
        print(f"FAIL: {p}")
    print(f"guest: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped")
    return 1 if problems or counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
