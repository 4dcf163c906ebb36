// SPDX-License-Identifier: GPL-2.0

//! tdx_sept_guard_kunit: the KUnit suites of tdx-sept-guard, as a module of
//! their own beside the one operators load (the kernel's `*_kunit` module
//! convention). KUnit runs a module's suites when it is loaded.
//!
//! It is built from the same sources as `tdx_sept_guard.ko`, with
//! `--cfg tsg_tests`, which adds the suites, the fake TD, the KVM benchmark
//! suite and their helpers; the shipped module has none of them. Some suites
//! redirect KVM's functions (`tdx_sept_set_private_spte()`, the S-EPT
//! SEAMCALL wrappers) for every caller on the host, so the module refuses to
//! load where that could touch a real TD: on a TDX host platform, or while
//! KVM has any VM. It is never installed (`make install` builds without it).

// The shipped module's sources, compiled again: what only its entry point
// uses (module parameters, debugfs, the backend trait) is dead here. The
// shipped build (`tdx_sept_guard_main.rs`) checks for dead code.
#![allow(dead_code)]

use kernel::prelude::*;

#[path = "policy/src/lib.rs"]
pub mod policy;

mod backend;
mod kunit;
mod kvm;
mod platform;
mod sim;

module! {
    type: TdxSeptGuardKunit,
    name: "tdx_sept_guard_kunit",
    authors: ["tdx-sept-guard developers"],
    description: "KUnit suites of tdx_sept_guard (for testing only: redirects KVM functions, never load on a TDX host)",
    license: "GPL",
}

struct TdxSeptGuardKunit;

impl kernel::Module for TdxSeptGuardKunit {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        kvm::test_host_check().inspect_err(|_| {
            pr_err!("refusing to load: the suites would redirect KVM's functions on this host\n")
        })?;
        Ok(Self)
    }
}
