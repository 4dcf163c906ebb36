// SPDX-License-Identifier: GPL-2.0

//! Busy-waits timed on the monotonic clock.
//!
//! The simulated TDX module holds its locks for given lengths of time. It
//! does not use `udelay()`: that is a loop calibrated at boot, and under
//! emulation (QEMU's TCG) it was measured running three times too fast.
//! Reading the clock works with interrupts off and never sleeps.

use kernel::processor::cpu_relax;
use kernel::time::{
    Delta,
    Instant,
    Monotonic, //
};

/// Spins for `us` microseconds.
pub(crate) fn spin_us(us: u32) {
    spin_ns(u64::from(us) * 1000);
}

/// Spins for `ns` nanoseconds (the clock's resolution permitting).
pub(crate) fn spin_ns(ns: u64) {
    if ns == 0 {
        return;
    }
    let start = Instant::<Monotonic>::now();
    let length = Delta::from_nanos(i64::try_from(ns).unwrap_or(i64::MAX));
    while start.elapsed() < length {
        cpu_relax();
    }
}

/// Spins for up to `us` microseconds, while `keep_going()` holds.
pub(crate) fn spin_us_while(us: u32, keep_going: impl Fn() -> bool) {
    let start = Instant::<Monotonic>::now();
    let length = Delta::from_micros(i64::from(us));
    while keep_going() && start.elapsed() < length {
        cpu_relax();
    }
}
