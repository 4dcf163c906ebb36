// SPDX-License-Identifier: GPL-2.0

//! The test module's own C functions that neither the KVM backend's nor the
//! platform's headers declare (`c/calibrate.c`, built into the test module
//! only), as bindgen declares them at build time from `c/calibrate.h`
//! (`scripts/bindgen.sh`, set `kunit`, driven by `rust/Kbuild`): the only
//! declarations of them on the Rust side.

#[allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code,
    unreachable_pub,
    missing_docs,
    improper_ctypes,
    unsafe_op_in_unsafe_fn,
    clippy::all,
    clippy::undocumented_unsafe_blocks
)]
mod generated {
    use kernel::ffi;
    include!("bindings_generated.rs");
}

/// The emulation-slowdown loop of `make bench` and its fixed length.
pub(crate) use generated::{
    tsg_calibrate_loop,
    TSG_CALIBRATE_ITERATIONS, //
};
