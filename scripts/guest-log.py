#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Judges the `make check` guest logs.

Both boots print KTAP between the harness markers `ktap begin` and
`ktap end`: the first the module's KUnit suites, the second (--interface)
the interface checks of scripts/guest/interface, written with the kernel's
kselftest ktap_helpers.sh. Each part goes to the kernel's own KTAP parser
(`kunit.py parse`), and the results are counted by the same code. Checks
that every expected suite ran, that each boot finished and that the kernel
reported nothing wrong. Prints the totals as `kunit: N passed, N failed,
N skipped` and exits non-zero on any failure.
"""

import argparse
import json
import os
import re
import subprocess
import sys

MARK = "tdx-sept-guard-harness: "

# Anything the kernel prints when it catches a bug, a lock-order problem,
# a sleep in atomic context or a stall.
KERNEL_TROUBLE = re.compile(
    r"BUG:|WARNING:|Oops|Kernel panic|general protection fault|"
    r"possible (circular|recursive) locking|inconsistent lock state|"
    r"turning off the locking correctness validator|DEBUG_LOCKS_WARN_ON|sleeping function called from invalid context|"
    r"rcu_.*(stall|self-detected)|soft lockup|hard LOCKUP|blocked for more than|"
    r"UBSAN|refcount_t:"
)

# A top-level KTAP result or plan line, after the kernel's "[ time] " prefix.
TOP_RESULT = re.compile(r"^(?:\[[ 0-9.]+\] )?(?:ok|not ok) ([0-9]+)\b")
TOP_PLAN = re.compile(r"^(?:\[[ 0-9.]+\] )?1\.\.([0-9]+)\s*$")


def walk(node, suites, counts, failed, label=None):
    """Counts the test cases of a `kunit.py parse --json` tree."""
    for case in node.get("test_cases", []):
        status = case.get("status", "")
        key = {"PASS": "passed", "SKIP": "skipped"}.get(status, "failed")
        counts[key] += 1
        if key == "failed":
            name = case.get("name") or "<no result: the guest stopped before it>"
            where = f"{label}: " if label else f"{node.get('name')}."
            failed.append(f"{where}{name} ({status})")
    for sub in node.get("sub_groups", []):
        suites.add(sub.get("name"))
        walk(sub, suites, counts, failed)


def read_log(path):
    with open(path, errors="backslashreplace") as f:
        return f.read().splitlines()


def marker(lines, text):
    return next((i for i, l in enumerate(lines) if l.endswith(MARK + text)), None)


def parse_ktap(lines, path, what, kunit, problems):
    """Hands the KTAP between the markers of one boot's log to kunit.py
    parse; returns the JSON tree (None if there is none) and the KTAP lines."""
    begin, end = marker(lines, "ktap begin"), marker(lines, "ktap end")
    if begin is None or end is None:
        problems.append(f"{what}: the guest never reached the end of its KTAP (crash, hang or timeout)")
        begin = -1 if begin is None else begin
        end = len(lines) if end is None else end
    ktap_lines = lines[begin + 1 : end]
    base = os.path.splitext(os.path.abspath(path))[0]
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
        problems.append(f"{what}: kunit.py parse failed: {parsed.stderr.strip()[-400:]}")
        return None, ktap_lines
    with open(js) as f:
        return json.load(f), ktap_lines


def check_kernel(lines, what, problems):
    for line in lines:
        if KERNEL_TROUBLE.search(line) and MARK not in line:
            problems.append(f"kernel reported ({what}): {line.strip()}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("log", help="serial log of the KUnit boot")
    ap.add_argument("--kunit", required=True, help="path to kunit.py")
    ap.add_argument("--suite", action="append", default=[], help="expected suite")
    ap.add_argument("--interface", help="serial log of the interface boot")
    args = ap.parse_args()

    problems = []
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    suites, failed = set(), []

    # First boot: the KUnit suites run at insmod.
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

    # Second boot: the interface checks, flat KTAP from ktap_helpers.sh.
    if args.interface:
        lines = read_log(args.interface)
        if marker(lines, "done") is None:
            problems.append("interface boot: the guest did not finish (crash, hang or timeout)")
        check_kernel(lines, "interface boot", problems)
        tree, ktap_lines = parse_ktap(lines, args.interface, "interface boot", args.kunit, problems)
        if tree:
            walk(tree, suites, counts, failed, label="interface")
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
    sys.exit(1 if problems or counts["failed"] else 0)


if __name__ == "__main__":
    main()
