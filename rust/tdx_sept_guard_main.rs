// SPDX-License-Identifier: GPL-2.0

//! tdx-sept-guard: bounded, lock-respecting S-EPT SEAMCALL policy for KVM TDX hosts.
//!
//! The decisions live in [`policy`], a `no_std` crate shared with the host
//! tests. This module wires it to the kernel: debugfs counters and KUnit suites.

use kernel::prelude::*;




mod debugfs_files;

module! {
    type: TdxSeptGuard,
    name: "tdx_sept_guard",
    authors: ["tdx-sept-guard developers"],
    description: "Bounded kick-and-retry policy for TDX S-EPT SEAMCALLs",
    license: "GPL",
}

/// The module's version, shown in debugfs as `version`.
pub(crate) const VERSION: &str = "0.1.0";

#[pin_data(PinnedDrop)]
struct TdxSeptGuard {
    #[pin]
    files: debugfs_files::Files,
}

impl kernel::InPlaceModule for TdxSeptGuard {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        pr_info!("tdx_sept_guard {} loaded\n", VERSION);
        try_pin_init!(Self {
            files <- debugfs_files::Files::new(),
        })
    }
}

#[pinned_drop]
impl PinnedDrop for TdxSeptGuard {
    fn drop(self: Pin<&mut Self>) {
        pr_info!("tdx_sept_guard unloaded\n");
    }
}

#[kunit_tests(tdx_sept_guard_smoke)]
mod tests {
    #[test]
    fn version_is_semver() {
        assert_eq!(super::VERSION.split('.').count(), 3);
    }
}
