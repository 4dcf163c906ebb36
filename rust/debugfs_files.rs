// SPDX-License-Identifier: GPL-2.0

//! The module's debugfs files under `/sys/kernel/debug/tdx_sept_guard/`:
//!
//! - `version`: the module's version;
//! - `stats`: the running simulation's counters, one `name value` line each;
//! - `reset`: write `1` to zero the counters; anything else is `-EINVAL`.
//!
//! The kernel's debugfs abstraction creates every file root-only (0400 to
//! read, 0200 to write).

use crate::sim::vm::Vm;
use core::fmt;
use kernel::{
    debugfs::{Dir, File},
    prelude::*,
    sync::Arc,
    uaccess::UserSliceReader,
};

/// The debugfs root and its files; removed when dropped.
#[pin_data]
pub(crate) struct Files {
    #[pin]
    version: File<()>,
    #[pin]
    stats: File<Option<Arc<Vm>>>,
    #[pin]
    reset: File<Option<Arc<Vm>>>,
    _root: Dir,
}

fn show_version(_: &(), f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "{}", crate::VERSION)
}

fn show_stats(vm: &Option<Arc<Vm>>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match vm {
        Some(vm) => vm.render_stats(f),
        None => writeln!(f, "# no simulation running (mode=idle)"),
    }
}

/// Accepts exactly `1`, with or without a trailing newline.
fn write_reset(vm: &Option<Arc<Vm>>, input: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; 3];
    let len = input.len();
    if len > buf.len() {
        return Err(EINVAL);
    }
    input.read_slice(&mut buf[..len])?;
    match &buf[..len] {
        b"1" | b"1\n" => {}
        _ => return Err(EINVAL),
    }
    vm.as_ref().ok_or(ENODEV)?.counters.reset();
    Ok(())
}

impl Files {
    pub(crate) fn new(vm: Option<Arc<Vm>>) -> impl PinInit<Self, Error> {
        let root = Dir::new(c"tdx_sept_guard");
        try_pin_init!(Self {
            version <- root.read_callback_file(c"version", (), &show_version),
            stats <- root.read_callback_file(c"stats", vm.clone(), &show_stats),
            reset <- root.write_callback_file(c"reset", vm, &write_reset),
            _root: root,
        })
    }
}
