// SPDX-License-Identifier: GPL-2.0

//! The string module parameters (`mode`, `policy`) and the module version.
//!
//! The kernel crate's `module!` macro only declares integer parameters, so
//! these are declared with `module_param(charp)` in `params.c`, which also
//! carries `MODULE_VERSION` so that `modinfo` and debugfs show one version.

use super::ffi::{
    tsg_mode_param,
    tsg_policy_param,
    tsg_version, //
};
use core::ffi::CStr;
use kernel::str::CStrExt;

/// The `mode` module parameter, as given at `insmod`.
pub(crate) fn mode() -> &'static CStr {
    // SAFETY: `tsg_mode_param` returns the charp parameter: a NUL-terminated
    // string that the module loader keeps, unchanged (the parameter is
    // read-only, 0444), for as long as the module is loaded.
    unsafe { CStr::from_char_ptr(tsg_mode_param()) }
}

/// The `policy` module parameter, as given at `insmod`.
pub(crate) fn policy() -> &'static CStr {
    // SAFETY: As for `mode`.
    unsafe { CStr::from_char_ptr(tsg_policy_param()) }
}

/// The module's version (`MODULE_VERSION`).
pub(crate) fn version() -> &'static CStr {
    // SAFETY: `tsg_version` returns a string literal.
    unsafe { CStr::from_char_ptr(tsg_version()) }
}
