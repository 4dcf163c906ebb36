// SPDX-License-Identifier: GPL-2.0

//! The module's debugfs files under `/sys/kernel/debug/tdx_sept_guard/`.
//!
//! The kernel's debugfs abstraction creates every file root-only (0400 for
//! read-only files), which is what counters of a host security feature want.

use core::fmt;
use kernel::{
    debugfs::{Dir, File},
    prelude::*,
};

/// The debugfs root and its files; removed when dropped.
#[pin_data]
pub(crate) struct Files {
    #[pin]
    version: File<()>,
    _root: Dir,
}

fn show_version(_: &(), f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "{}", crate::VERSION)
}

impl Files {
    pub(crate) fn new() -> impl PinInit<Self, Error> {
        let root = Dir::new(c"tdx_sept_guard");
        try_pin_init!(Self {
            version <- root.read_callback_file(c"version", (), &show_version),
            _root: root,
        })
    }
}
