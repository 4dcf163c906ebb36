// SPDX-License-Identifier: GPL-2.0

//! One copy of a value per possible CPU (the kernel's per-CPU allocator,
//! through `helpers.c`), for counters that every CPU adds to: each adds to
//! its own copy, so concurrent map calls share no counter cache line, and a
//! reader sums the copies.

use super::ffi::{
    tsg_next_possible_cpu,
    tsg_percpu_alloc,
    tsg_percpu_cpu,
    tsg_percpu_free,
    tsg_percpu_local, //
};
use super::sync::KCounter;
use crate::policy::{
    CounterCell,
    CounterTable, //
};
use core::ffi::c_void;
use core::marker::PhantomData;
use core::ptr::NonNull;
use kernel::{
    cpu::nr_cpu_ids,
    prelude::*, //
};

/// A `T` per possible CPU.
///
/// # Invariants
///
/// `ptr` came from `tsg_percpu_alloc()` for the size and alignment of `T`,
/// is freed only in `drop`, and every possible CPU's copy holds a valid `T`
/// from [`PerCpu::new`] until `drop`.
pub(crate) struct PerCpu<T> {
    ptr: NonNull<c_void>,
    _t: PhantomData<T>,
}

// SAFETY: The copies are `T`s that any task may reach; sending the set
// sends them.
unsafe impl<T: Send> Send for PerCpu<T> {}
// SAFETY: Every access is a shared reference to a copy; `T: Sync` makes
// that sound from any task, on any CPU.
unsafe impl<T: Sync> Sync for PerCpu<T> {}

/// The possible CPUs, in order.
fn possible_cpus() -> impl Iterator<Item = u32> {
    let mut cpu: i32 = -1;
    core::iter::from_fn(move || {
        // SAFETY: No preconditions; returns `nr_cpu_ids` after the last.
        let next = unsafe { tsg_next_possible_cpu(cpu) };
        if next >= nr_cpu_ids() {
            return None;
        }
        cpu = next as i32;
        Some(next)
    })
}

impl<T> PerCpu<T> {
    /// Allocates the copies, each made by `init`. Process context.
    pub(crate) fn new(init: impl Fn() -> T) -> Result<Self> {
        // SAFETY: No preconditions; NULL means out of memory.
        let raw = unsafe { tsg_percpu_alloc(size_of::<T>(), align_of::<T>()) };
        let ptr = NonNull::new(raw).ok_or(ENOMEM)?;
        for cpu in possible_cpus() {
            // SAFETY: `ptr` is a live per-CPU allocation and `cpu` possible;
            // the copy is sized and aligned for a `T`, and not yet
            // initialised, so written without dropping anything.
            unsafe { tsg_percpu_cpu(ptr.as_ptr(), cpu).cast::<T>().write(init()) };
        }
        // INVARIANT: Allocated for `T` and every copy initialised above.
        Ok(Self {
            ptr,
            _t: PhantomData,
        })
    }

    /// This CPU's copy (another's, if the task has migrated since: only
    /// slower for the atomic counters kept here).
    pub(crate) fn local(&self) -> &T {
        // SAFETY: By the type invariant the copy is a valid `T` until
        // `self` drops.
        unsafe { &*tsg_percpu_local(self.ptr.as_ptr()).cast::<T>() }
    }

    /// Calls `f` on every possible CPU's copy.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&T)) {
        for cpu in possible_cpus() {
            // SAFETY: As in `local`, for CPU `cpu`'s copy.
            f(unsafe { &*tsg_percpu_cpu(self.ptr.as_ptr(), cpu).cast::<T>() });
        }
    }
}

impl<T> Drop for PerCpu<T> {
    fn drop(&mut self) {
        for cpu in possible_cpus() {
            // SAFETY: Every copy is a valid `T` (type invariant), dropped
            // once, here.
            unsafe { core::ptr::drop_in_place(tsg_percpu_cpu(self.ptr.as_ptr(), cpu).cast::<T>()) };
        }
        // SAFETY: From `tsg_percpu_alloc()` (type invariant), freed once.
        unsafe { tsg_percpu_free(self.ptr.as_ptr()) };
    }
}

impl<T: CounterTable<Cell = KCounter>> PerCpu<T> {
    /// Adds every copy's counters into `into`'s, counter by counter (for
    /// `stats`: a sum over the CPUs, not an atomic snapshot).
    pub(crate) fn sum_into(&self, into: &T) {
        self.for_each(|copy| {
            copy.for_each_counter(&mut |desc, cell| {
                if let Some(sum) = into.counter(desc.name) {
                    sum.add(cell.get());
                }
            })
        });
    }

    /// Zeroes every copy's counters.
    pub(crate) fn reset(&self) {
        self.for_each(|copy| copy.reset());
    }
}
