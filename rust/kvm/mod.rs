// SPDX-License-Identifier: GPL-2.0

//! The KVM TDX backend: hooks into KVM's TDX page-fault and S-EPT paths.
//!
//! Not written yet. Until it is, `mode=auto` stays idle and says so, and
//! `mode=kvm` fails the load with `ENODEV`; the module never touches KVM.
//! See `Documentation/usage.rst`.

use crate::backend::Backend;
use kernel::{
    prelude::*,
    sync::Arc, //
};

/// Why the module did not attach to KVM TDX.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Unavailable {
    /// This version of the module has no attach layer.
    NotImplemented,
}

impl Unavailable {
    /// One line for the log.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Self::NotImplemented => {
                "this version cannot attach to KVM TDX yet (mode=sim runs the simulated TDX module)"
            }
        }
    }

    /// The `insmod` error for `mode=kvm`.
    pub(crate) fn errno(self) -> Error {
        ENODEV
    }
}

/// Attaches to KVM TDX if it is usable.
pub(crate) fn attach() -> Result<Arc<dyn Backend>, Unavailable> {
    Err(Unavailable::NotImplemented)
}
