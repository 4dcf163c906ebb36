// SPDX-License-Identifier: GPL-2.0

//! The threads that drive a simulated VM: one vCPU thread per CPU and a zap
//! thread that unmaps pages in the background, as MMU notifiers do.

use super::rng::Rng;
use super::vcpu::Vcpu;
use super::vm::Vm;
use crate::platform::thread::{
    Thread,
    ThreadBody,
    ThreadCtx, //
};
use kernel::{
    prelude::*,
    sync::Arc, //
};

/// The zap thread.
struct Zapper {
    vm: Arc<Vm>,
}

impl ThreadBody for Zapper {
    fn run(&self, ctx: &ThreadCtx) {
        let vm = &*self.vm;
        let mut rng = Rng::new((vm.cfg.seed << 32) + 0x5a9);
        while !ctx.should_stop() {
            if vm.is_stopped() || vm.vcpus_done() {
                return;
            }
            vm.release(vm.pick_gpa(&mut rng));
            ctx.pause();
        }
    }
}

/// A running simulation. Dropping it stops every thread, then drops the
/// threads' references to the VM.
pub(crate) struct Workload {
    _vcpus: KVec<Thread<Vcpu>>,
    _zapper: Option<Thread<Zapper>>,
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
        zapper: bool,
    ) -> Result<Self> {
        let mut vcpus = KVec::with_capacity(vm.vcpus.len(), GFP_KERNEL)?;
        for idx in (0..vm.vcpus.len()).filter(|i| vcpu_mask & (1 << i) != 0) {
            let vcpu = Arc::new(
                Vcpu {
                    vm: vm.clone(),
                    idx,
                    budget: ops_per_vcpu,
                },
                GFP_KERNEL,
            )?;
            // Counted before it runs, so that "every vCPU is done" cannot be
            // seen before all have started.
            vm.vcpu_thread_started();
            let thread = Thread::spawn(vcpu, Some(vm.vcpus[idx].cpu), c"tsg_vcpu/%u", 0);
            if thread.is_err() {
                vm.vcpu_thread_finished();
            }
            // On an error return the threads already started are stopped.
            vcpus.push(thread?, GFP_KERNEL)?;
        }
        let zapper = match zapper {
            true => Some(Thread::spawn(
                Arc::new(Zapper { vm: vm.clone() }, GFP_KERNEL)?,
                None,
                c"tsg_zap/%u",
                0,
            )?),
            false => None,
        };
        Ok(Self {
            _vcpus: vcpus,
            _zapper: zapper,
            vm,
        })
    }

    pub(crate) fn vm(&self) -> &Arc<Vm> {
        &self.vm
    }

    #[cfg(tsg_tests)]
    /// Waits (sleeping) until every vCPU thread is done or `timeout_ms`
    /// passed; returns whether they all are.
    pub(crate) fn wait(&self, timeout_ms: u32) -> bool {
        self.vm.wait_vcpus_done(timeout_ms)
    }
}
