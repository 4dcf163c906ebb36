// SPDX-License-Identifier: GPL-2.0

//! What the module's entry, parameters and debugfs files need from whatever
//! runs the policy: the simulated TDX module ([`crate::sim`]) today, KVM's TDX
//! code once the attach layer exists, or nothing at all ([`Idle`]).
//!
//! As nova-core's HAL, the choice is made once, at `insmod`; everything
//! after that sees a `dyn Backend`. The policy core (`policy/`) knows none of
//! this.

use crate::platform::debugfs::Dir;
use core::fmt;
use kernel::{
    prelude::*,
    sync::Arc, //
};

/// A running backend. Dropping the last reference stops it: threads are
/// stopped, hooks removed, memory freed.
pub(crate) trait Backend: Send + Sync {
    /// The `mode` it runs in, for the log: `sim`, `kvm`, `idle`.
    fn mode(&self) -> &'static str;

    /// Writes every counter as one `name value` line (debugfs `stats`).
    fn render_stats(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;

    /// Zeroes every counter (debugfs `reset`); `ENODEV` if there are none.
    fn reset_stats(&self) -> Result;

    /// The module's debugfs root, for a backend with files of its own (the
    /// KVM backend's per-VM directories).
    fn debugfs(&self, _root: &Arc<Dir>) {}

    /// Writes the latency histograms (debugfs `latency`), or a `#` line
    /// saying there are none.
    fn render_latency(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "# no latency histograms in mode={}", self.mode())
    }

    /// Why nothing runs, for a backend that does nothing.
    fn idle_reason(&self) -> Option<&'static str> {
        None
    }
}

/// No backend: the module only shows why.
pub(crate) struct Idle {
    /// Why the module is idle, for the log and the `stats` file.
    pub(crate) reason: &'static str,
}

impl Backend for Idle {
    fn mode(&self) -> &'static str {
        "idle"
    }

    fn render_stats(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "# idle: {}", self.reason)
    }

    fn reset_stats(&self) -> Result {
        Err(ENODEV)
    }

    fn idle_reason(&self) -> Option<&'static str> {
        Some(self.reason)
    }
}
