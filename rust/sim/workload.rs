// SPDX-License-Identifier: GPL-2.0

//! The threads that drive a simulated VM: one vCPU thread per CPU and a zap
//! thread that unmaps pages in the background, as MMU notifiers do.

use super::vcpu::{vcpu_thread, Rng, Vcpu};
use super::vm::Vm;
use crate::kshim::{cond_resched, kthread_should_stop, msleep, Kthread};
use kernel::prelude::*;
use kernel::sync::atomic::Relaxed;
use kernel::sync::Arc;

/// The zap thread's state.
struct Zapper {
    vm: Arc<Vm>,
}

impl Zapper {
    fn run(&self) {
        let vm = &*self.vm;
        let mut rng = Rng::new(0x5a9);
        while !kthread_should_stop() {
            if !vm.is_stopped() && !vm.vcpus_done() {
                vm.release(vm.pick_gpa(&mut rng));
            }
            cond_resched();
        }
    }
}

/// # Safety
///
/// `data` points to a [`Zapper`] that outlives the thread.
unsafe extern "C" fn zap_thread(data: *mut core::ffi::c_void) -> core::ffi::c_int {
    // SAFETY: The caller guarantees `data` is a live `Zapper` while this
    // thread runs; it is only read.
    unsafe { &*data.cast::<Zapper>() }.run();
    0
}

/// A running simulation. Dropping it stops every thread, then frees the
/// state the threads used.
pub(crate) struct Workload {
    // Declared first, so dropped first: no thread outlives its state.
    _threads: KVec<Kthread>,
    _vcpus: KVec<KBox<Vcpu>>,
    _zapper: KBox<Zapper>,
    vm: Arc<Vm>,
}

impl Workload {
    /// Starts all of `vm`'s vCPU threads, each with a budget of
    /// `ops_per_vcpu` guest accesses, and the zap thread.
    pub(crate) fn start(vm: Arc<Vm>, ops_per_vcpu: u64) -> Result<Self> {
        Self::start_some(vm, ops_per_vcpu, u64::MAX, true)
    }

    /// Starts the vCPU threads whose bit is set in `vcpu_mask`, and the zap
    /// thread if `zapper`. Tests drive the other vCPUs themselves.
    pub(crate) fn start_some(
        vm: Arc<Vm>,
        ops_per_vcpu: u64,
        vcpu_mask: u64,
        zapper_on: bool,
    ) -> Result<Self> {
        let mut vcpus = KVec::with_capacity(vm.vcpus.len(), GFP_KERNEL)?;
        for idx in (0..vm.vcpus.len()).filter(|i| vcpu_mask & (1 << i) != 0) {
            let vcpu = Vcpu {
                vm: vm.clone(),
                idx,
                budget: ops_per_vcpu,
            };
            vcpus.push(KBox::new(vcpu, GFP_KERNEL)?, GFP_KERNEL)?;
        }
        vm.work.vcpu_threads.store(vcpus.len() as u64, Relaxed);
        let zapper = KBox::new(Zapper { vm: vm.clone() }, GFP_KERNEL)?;
        // Declared after the state: on an error return it is dropped first,
        // stopping the threads already started.
        let mut threads = KVec::with_capacity(vcpus.len() + 1, GFP_KERNEL)?;
        for vcpu in vcpus.iter() {
            let cpu = vm.vcpus[vcpu.idx].cpu;
            let data = core::ptr::from_ref::<Vcpu>(vcpu).cast_mut().cast();
            // SAFETY: The boxed `Vcpu` lives in `vcpus`, which the returned
            // `Workload` drops only after `threads`.
            let t = unsafe { Kthread::start(vcpu_thread, data, Some(cpu), c"tsg_vcpu/%u", 0)? };
            threads.push(t, GFP_KERNEL)?;
        }
        if zapper_on {
            let data = core::ptr::from_ref::<Zapper>(&zapper).cast_mut().cast();
            // SAFETY: As above, for the boxed `Zapper`.
            let t = unsafe { Kthread::start(zap_thread, data, None, c"tsg_zap/%u", 0)? };
            threads.push(t, GFP_KERNEL)?;
        }
        Ok(Self {
            _threads: threads,
            _vcpus: vcpus,
            _zapper: zapper,
            vm,
        })
    }

    pub(crate) fn vm(&self) -> &Arc<Vm> {
        &self.vm
    }

    /// Waits (sleeping) until every vCPU thread is done or `timeout_ms`
    /// passed; returns whether they all are.
    pub(crate) fn wait(&self, timeout_ms: u32) -> bool {
        for _ in 0..timeout_ms.div_ceil(10) {
            if self.vm.vcpus_done() {
                return true;
            }
            msleep(10);
        }
        self.vm.vcpus_done()
    }
}
