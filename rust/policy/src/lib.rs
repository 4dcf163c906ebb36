// SPDX-License-Identifier: GPL-2.0
#![cfg_attr(not(in_kernel), no_std)]

//! Policy core of tdx-sept-guard: how a host runs S-EPT SEAMCALLs on a TDX VM
//! without blind retry loops.
//!
//! When a TDX S-EPT SEAMCALL returns `TDX_OPERAND_BUSY`, the lock it lost is
//! held either by another host task or by a vCPU (a guest TDCALL such as
//! ACCEPT, or TDH.VP.ENTER under zero-step mitigation). The default policy
//! removes both: the SPTE stays frozen across the whole operation so no other
//! host task can touch the entry, and on busy the vCPUs are kicked out of the
//! guest and held out by an entry gate, so the single retry must succeed. A
//! second busy is a bug and stops the VM; nothing loops.
//!
//! Modules, one job each:
//! - [`sync`]: the [`Atomic64`] and [`Clock`] traits the platform implements.
//! - [`status`]: SEAMCALL status decoding ([`Status`], [`Operand`]) and leaf
//!   numbers ([`Leaf`]).
//! - [`op`]: an S-EPT operation ([`SeptOp`]) and the [`Seamcall`] issuer.
//! - [`spte`]: the frozen-SPTE lock ([`FrozenSpte`]).
//! - [`gate`]: the per-VM entry gate, the vCPU side ([`vcpu_try_enter`],
//!   [`vcpu_exit`]) and the kick ([`KickGuard`], [`VcpuSet`]), with the
//!   ordering argument.
//! - [`retry`]: the retry [`Policy`]: `KickAndRetry` (default) and the
//!   `BlindRetry` and `Upstream72` baselines.
//! - [`executor`]: runs one operation under a policy ([`Executor`],
//!   [`Outcome`]).
//! - [`zero_step`]: the per-vCPU zero-step detector ([`ZeroStep`]).
//! - [`counters`]: [`Counters`] and their `name value` rendering.
//!
//! The crate uses only `core`: no allocation, no atomics of its own, no
//! floating point, no `unsafe`, no panics outside tests. The kernel module
//! compiles these same files as a module (with `--cfg in_kernel`), so paths
//! inside the crate are written relative (`super::`), never `crate::`.

#[cfg(test)]
extern crate std;

pub mod counters;
pub mod executor;
pub mod gate;
pub mod op;
pub mod retry;
pub mod spte;
pub mod status;
pub mod sync;
pub mod zero_step;

pub use self::counters::{CounterCell, Counters};
pub use self::executor::{Executor, Outcome, VmBugReason};
pub use self::gate::{
    vcpu_exit, vcpu_try_enter, EntryGate, GateRaised, KickGuard, KickTimeout, VcpuSet,
};
pub use self::op::{Seamcall, SeptOp};
pub use self::retry::{MaxTries, Policy, PolicyError};
pub use self::spte::{FrozenSpte, SpteError, FROZEN_SPTE};
pub use self::status::{Leaf, Operand, Status, StatusKind};
pub use self::sync::{Atomic64, Clock};
pub use self::zero_step::{ZeroStep, ZeroStepVerdict};
