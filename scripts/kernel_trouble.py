# SPDX-License-Identifier: GPL-2.0
"""What the kernel prints when it catches a bug: the one list of patterns
the harness fails a guest log on.

scripts/guest-log.py (`make check`) and scripts/bench.py (`make bench`)
both import it; add a pattern here and both see it.
"""

import re

PATTERNS = (
    r"BUG:",
    r"WARNING:",
    r"Oops",
    r"Kernel panic",
    r"general protection fault",
    # lockdep; it switches itself off at its first report.
    r"possible (circular|recursive) locking",
    r"inconsistent lock state",
    r"turning off the locking correctness validator",
    r"DEBUG_LOCKS_WARN_ON",
    # CONFIG_DEBUG_ATOMIC_SLEEP
    r"sleeping function called from invalid context",
    # Stalls and lockups: RCU's reports, and any other stall (a word, so
    # that "install" is none).
    r"rcu_.*(stall|self-detected)",
    r"\bstall",
    r"soft lockup",
    r"hard LOCKUP",
    r"blocked for more than",
    r"UBSAN",
    r"refcount_t:",
)

KERNEL_TROUBLE = re.compile("|".join(f"(?:{p})" for p in PATTERNS))
