// SPDX-License-Identifier: GPL-2.0

//! The module's debugfs files under `/sys/kernel/debug/tdx_sept_guard/`:
//!
//! - `version`: the module's version (as `modinfo` shows it);
//! - `stats`: the backend's counters, one `name value` line each (or a
//!   `# idle: ...` line saying why there are none);
//! - `latency`: the backend's latency histograms (the simulator's), one
//!   `name low high count` line per non-empty bucket;
//! - `reset`: write `1` to zero the counters and histograms; anything else
//!   is `EINVAL`;
//! - `fail_map_busy/`, `fail_retry_busy/`: the fault injection points'
//!   standard attribute files, with `CONFIG_FAULT_INJECTION_DEBUG_FS` only
//!   (see [`crate::platform::fault`]).
//!
//! Every file is root-only (0400 to read, 0200 to write; the fault
//! attribute files 0600), and an open file of the module's own keeps the
//! module loaded (see [`crate::platform::debugfs`]); the fault attribute
//! files are the kernel's and do not.

use crate::backend::Backend;
use crate::platform::{
    debugfs::{
        Dir,
        File, //
    },
    fault, param,
};
use core::fmt;
use kernel::{
    prelude::*,
    sync::Arc, //
};

/// A backend shared with the files that show it.
type Shared = Arc<dyn Backend>;

/// The debugfs root and its files; removed when dropped.
pub(crate) struct Files {
    root: Arc<Dir>,
    _version: Pin<KBox<File<()>>>,
    _stats: Pin<KBox<File<Shared>>>,
    _latency: Pin<KBox<File<Shared>>>,
    _reset: Pin<KBox<File<Shared>>>,
    _faults: fault::Files,
}

fn show_version(_: &(), f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "{}", param::version().to_str().unwrap_or("?"))
}

fn show_stats(backend: &Shared, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    backend.render_stats(f)
}

fn show_latency(backend: &Shared, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    backend.render_latency(f)
}

/// Accepts exactly `1`, with or without a trailing newline.
fn write_reset(backend: &Shared, input: &[u8]) -> Result {
    match input {
        b"1" | b"1\n" => backend.reset_stats(),
        _ => Err(EINVAL),
    }
}

impl Files {
    /// The `tdx_sept_guard` directory.
    pub(crate) fn root(&self) -> &Arc<Dir> {
        &self.root
    }

    pub(crate) fn new(backend: &Shared) -> Result<Self> {
        let root = Dir::new(c"tdx_sept_guard", None)?;
        Ok(Self {
            root: root.clone(),
            _version: File::new(&root, c"version", (), Some(show_version), None)?,
            _stats: File::new(&root, c"stats", backend.clone(), Some(show_stats), None)?,
            _latency: File::new(&root, c"latency", backend.clone(), Some(show_latency), None)?,
            _reset: File::new(&root, c"reset", backend.clone(), None, Some(write_reset))?,
            _faults: fault::Files::new(&root)?,
        })
    }
}
