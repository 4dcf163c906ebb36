// SPDX-License-Identifier: GPL-2.0
#![cfg_attr(not(in_kernel), no_std)]
// An inner attribute, so that it also holds where the kernel module includes
// this file as its module `policy` (Cargo.toml's lint covers only the host).
#![forbid(unsafe_code)]

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
//! - [`sync`]: the [`Atomic64`], [`Atomic32`] and [`Clock`] traits the
//!   platform implements.
//! - [`status`]: SEAMCALL status decoding ([`Status`], [`Operand`]) and leaf
//!   numbers ([`Leaf`]).
//! - [`op`]: an S-EPT operation ([`SeptOp`]) and the [`Seamcall`] issuer.
//! - [`spte`]: the frozen-SPTE lock ([`FrozenSpte`]).
//! - [`gate`]: the per-VM entry gate, the vCPU side ([`vcpu_try_enter`],
//!   [`vcpu_exit`]) and the kick ([`KickGuard`], [`VcpuSet`], with KVM's
//!   [`exiting_guest_mode`]) over KVM's 32-bit vCPU mode, with the ordering
//!   argument.
//! - [`retry`]: the retry [`Policy`]: `KickAndRetry` (default) and the
//!   `BlindRetry` and `Upstream72` baselines.
//! - [`executor`]: runs one operation under a policy ([`Executor`],
//!   [`Outcome`]).
//! - [`events`]: what the executor reports as it goes, to an [`Events`]
//!   observer (the module's trace events); [`NoEvents`] by default.
//! - [`zero_step`]: the per-vCPU zero-step detector ([`ZeroStep`]).
//! - [`counters`]: the [`counter_table!`] macro, which declares a table of
//!   counters once each (name, help text, group); the [`CounterTable`] trait
//!   that renders (`name value` lines) and resets any such table; and the
//!   policy's own table, [`Counters`].
//!
//! The crate uses only `core`: no allocation, no atomics of its own, no
//! floating point, no `unsafe` (forbidden in both builds), no panics outside
//! tests. The kernel module compiles these same files as a module (with
//! `--cfg in_kernel`), so paths inside the crate are written relative
//! (`super::`), never `crate::`; the one exception is the re-export of the
//! `#[macro_export]`ed [`counter_table!`], which is at `crate::` in both
//! builds.

#[cfg(test)]
extern crate std;

pub mod counters;
pub mod events;
pub mod executor;
pub mod gate;
pub mod op;
pub mod retry;
pub mod spte;
pub mod status;
pub mod sync;
pub mod zero_step;

pub use self::counters::{CounterCell, CounterDesc, CounterTable, Counters};
// On the host `#[macro_export]` already put the macro here, at the crate root.
#[cfg(in_kernel)]
pub use self::counters::counter_table;
pub use self::events::{Events, NoEvents};
pub use self::executor::{Executor, Outcome, VmBugReason};
pub use self::gate::{
    exiting_guest_mode, vcpu_exit, vcpu_try_enter, EntryGate, GateRaised, KickGuard, KickTimeout,
    VcpuSet,
};
pub use self::op::{Seamcall, SeptOp};
pub use self::retry::{MaxTries, Policy, PolicyError};
pub use self::spte::{FrozenSpte, SpteError, FROZEN_SPTE};
pub use self::status::{Leaf, Operand, Status, StatusKind};
pub use self::sync::{Atomic32, Atomic64, Clock};
pub use self::zero_step::{ZeroStep, ZeroStepVerdict};
