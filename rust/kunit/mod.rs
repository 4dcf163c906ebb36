// SPDX-License-Identifier: GPL-2.0

//! The KUnit suites of the shared policy core. They run at `insmod` on a
//! kernel with `CONFIG_KUNIT=y`; `make check` runs them under lockdep in
//! QEMU. Their sizes and deadlines are their own: no suite reads a module
//! parameter. The other suites live beside what they test: the simulator's
//! in `sim/kunit/`, the kernel glue's in `platform/kunit.rs`, the KVM
//! backend's in `kvm/`.

mod executor;
pub(crate) mod ffi;
mod spte;
mod status;
