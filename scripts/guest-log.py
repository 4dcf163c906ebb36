#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Judges a `make check` guest log.

Feeds the module's part of the serial log (between the harness markers) to
the kernel's own KTAP parser, counts the results, checks that every expected
suite ran and that the kernel reported nothing wrong. Adds the guest
script's own interface checks (`check ok` / `check FAILED` lines). Prints
the totals as `kunit: N passed, N failed, N skipped` and exits non-zero on
any failure.
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


def walk(node, suites, counts, failed):
    for case in node.get("test_cases", []):
        status = case.get("status", "")
        key = {"PASS": "passed", "SKIP": "skipped"}.get(status, "failed")
        counts[key] += 1
        if key == "failed":
            failed.append(f"{node.get('name')}.{case.get('name')} ({status})")
    for sub in node.get("sub_groups", []):
        suites.add(sub.get("name"))
        walk(sub, suites, counts, failed)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("log")
    ap.add_argument("--kunit", required=True, help="path to kunit.py")
    ap.add_argument("--suite", action="append", default=[], help="expected suite")
    ap.add_argument("--checks", help="log of the interface boot (check ok/FAILED lines)")
    args = ap.parse_args()

    with open(args.log, errors="backslashreplace") as f:
        lines = f.read().splitlines()
    problems = []

    def marker(text):
        return next((i for i, l in enumerate(lines) if l.endswith(MARK + text)), None)

    begin, end = marker("ktap begin"), marker("ktap end")
    if begin is None or end is None:
        problems.append("the guest never reached the end of insmod (crash, hang or timeout)")
        begin, end = begin or 0, len(lines)
    for needed in ("rmmod ok", "done"):
        if marker(needed) is None:
            problems.append(f"missing harness step: {needed}")
    if marker("insmod FAILED") is not None:
        problems.append("insmod failed")
    if marker("rmmod FAILED") is not None:
        problems.append("rmmod failed")
    for line in lines:
        if KERNEL_TROUBLE.search(line) and MARK not in line:
            problems.append(f"kernel reported: {line.strip()}")

    base = os.path.splitext(os.path.abspath(args.log))[0]
    ktap, js = base + ".ktap", base + ".json"
    with open(ktap, "w") as f:
        f.write("\n".join(lines[begin + 1 : end]) + "\n")
    parsed = subprocess.run(
        [sys.executable, args.kunit, "parse", f"--json={js}", ktap],
        capture_output=True, text=True,
    )
    print(parsed.stdout, end="")
    if parsed.returncode and not os.path.exists(js):
        problems.append(f"kunit.py parse failed: {parsed.stderr.strip()[-400:]}")

    counts = {"passed": 0, "failed": 0, "skipped": 0}
    suites, failed = set(), []
    if os.path.exists(js):
        with open(js) as f:
            walk(json.load(f), suites, counts, failed)
    if args.checks:
        with open(args.checks, errors="backslashreplace") as f:
            check_lines = f.read().splitlines()
        if not any(l.endswith(MARK + "done") for l in check_lines):
            problems.append("the interface boot did not finish (crash, hang or timeout)")
        for line in check_lines:
            if KERNEL_TROUBLE.search(line) and MARK not in line:
                problems.append(f"kernel reported (interface boot): {line.strip()}")
            if MARK + "check ok " in line:
                counts["passed"] += 1
            elif MARK + "check FAILED " in line:
                counts["failed"] += 1
                failed.append("interface check: " + line.split(MARK + "check FAILED ", 1)[1])

    for suite in args.suite:
        if suite not in suites:
            problems.append(f"expected KUnit suite did not run: {suite}")
    problems += [f"test failed: {t}" for t in failed]

    for p in problems:
        print(f"FAIL: {p}")
    print(f"guest: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped")
    sys.exit(1 if problems or counts["failed"] else 0)


if __name__ == "__main__":
    main()
