// SPDX-License-Identifier: GPL-2.0

//! The hook shape: which KVM functions the backend redirects, by the shape
//! of KVM's TDX interface this build follows. `shape.h` reads that shape
//! from the kernel the module is built against (the prototypes of
//! `kvm_x86_ops.set_external_spte` and `vm_init`) and fails the build with
//! one line naming what differs; attach checks at run time that KVM's live
//! op points to the function redirected (`Unavailable::OtherShape`). The
//! known shapes and what the others would take are listed in `shape.h`
//! and `Documentation/usage.rst`.

use kernel::prelude::*;

/// A hook shape, as far as attach needs it.
pub(crate) struct Shape {
    /// Its name, as `shape.h` and the documentation call it.
    pub(crate) name: &'static str,
    /// The function behind `kvm_x86_ops.set_external_spte` for TDs:
    /// redirected, every map of a private SPTE goes through it.
    pub(crate) set_external_spte: &'static CStr,
    /// The function behind `kvm_x86_ops.vm_init`: redirected, a new TD's
    /// state is made there.
    pub(crate) vm_init: &'static CStr,
}

/// KVM 7.2 and 7.3: one op for a private SPTE's map and remove, with the
/// mirror SPTE frozen (`shape.h`).
pub(crate) const SHAPE: Shape = Shape {
    name: "external-spte",
    set_external_spte: c"tdx_sept_set_private_spte",
    vm_init: c"vt_vm_init",
};
