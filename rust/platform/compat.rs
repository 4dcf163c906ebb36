// SPDX-License-Identifier: GPL-2.0

//! Where the kernel crate's API differs between the supported kernel
//! series, in one place: the rest of the module calls these wrappers.
//!
//! `rust/Kbuild` sets the cfgs below from what the target kernel's own
//! `rust/kernel/` sources define (feature detection, not a version number):
//!
//! - `tsg_smp_mb_ordering`: `sync::barrier::smp_mb` takes an ordering
//!   argument, `smp_mb(Full)` (7.3); before, `smp_mb()` (7.2).
//! - `tsg_param_value_copy`: a module parameter's
//!   `ModuleParamAccess::value()` returns `T` (7.3); before, `&T` (7.2).

use kernel::module_param::ModuleParamAccess;

/// A full memory barrier between CPUs, the kernel's `smp_mb()`.
#[inline]
pub(crate) fn smp_mb() {
    #[cfg(tsg_smp_mb_ordering)]
    kernel::sync::barrier::smp_mb(kernel::sync::barrier::Full);
    #[cfg(not(tsg_smp_mb_ordering))]
    kernel::sync::barrier::smp_mb();
}

/// The value of a module parameter declared in `module!`: the one given at
/// `insmod`, or its default.
#[cfg(tsg_param_value_copy)]
#[inline]
pub(crate) fn param_value<T: Copy>(param: &ModuleParamAccess<T>) -> T {
    param.value()
}

/// The value of a module parameter declared in `module!`: the one given at
/// `insmod`, or its default.
#[cfg(not(tsg_param_value_copy))]
#[inline]
pub(crate) fn param_value<T: Copy>(param: &ModuleParamAccess<T>) -> T {
    *param.value()
}
