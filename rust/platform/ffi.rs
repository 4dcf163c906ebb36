// SPDX-License-Identifier: GPL-2.0

//! The platform's C functions (`helpers.c`, `params.c`, `events.c`,
//! `fault.c`), as bindgen declares them at build time from `helpers.h`
//! (`scripts/bindgen.sh`, driven by `rust/Kbuild`): the only declarations
//! of them on the Rust side. The kernel's types they take (`dentry`,
//! `rwlock_t`, `seq_file`, ...) are the kernel crate's own
//! ([`kernel::bindings`]); the types of the C side's own (`tsg_ipi_set`,
//! `tsg_debugfs_file`) are generated, with compile-time checks of their
//! layout.

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
    clippy::undocumented_unsafe_blocks,
    clippy::ptr_as_ptr,
    clippy::ref_as_ptr,
    clippy::cast_lossless,
    clippy::as_underscore,
    clippy::ptr_offset_with_cast
)]
mod generated {
    use kernel::bindings::{
        dentry,
        lock_class_key,
        rwlock_t,
        seq_file,
        task_struct,
        workqueue_struct, //
    };
    use kernel::ffi;
    include!("bindings_generated.rs");
}

/// What both modules use.
pub(crate) use generated::{
    tsg_cond_resched,
    tsg_cpu_online,
    tsg_debugfs_create_dir,
    tsg_debugfs_create_file,
    tsg_debugfs_file,
    tsg_debugfs_remove,
    tsg_fail_map_busy,
    tsg_fail_retry_busy,
    tsg_fault_files_create,
    tsg_fault_files_remove,
    tsg_ipi_acked,
    tsg_ipi_send,
    tsg_ipi_set,
    tsg_ipi_set_alloc,
    tsg_ipi_set_free,
    tsg_kthread_should_stop,
    tsg_kthread_start,
    tsg_kthread_stop,
    tsg_local_clock,
    tsg_local_irq_restore,
    tsg_local_irq_save,
    tsg_next_possible_cpu,
    tsg_num_online_cpus,
    tsg_percpu_alloc,
    tsg_percpu_cpu,
    tsg_percpu_free,
    tsg_percpu_local,
    tsg_read_lock,
    tsg_read_unlock,
    tsg_rwlock_init,
    tsg_trace_kick,
    tsg_trace_retry,
    tsg_trace_vm_stop,
    tsg_trace_zero_step,
    tsg_workqueue_alloc,
    tsg_workqueue_destroy,
    tsg_workqueue_flush,
    tsg_write_lock,
    tsg_write_unlock, //
};
/// What only the test module uses: lockdep's state, the recording of the
/// trace events and the setting of the fault injection points (`events.c`
/// and `fault.c` have them only with `TSG_TESTS`).
#[cfg(tsg_tests)]
pub(crate) use generated::{
    tsg_debug_locks,
    tsg_fault_set,
    tsg_fault_times,
    tsg_trace_record_start,
    tsg_trace_record_stop, //
};
/// The string module parameters and the version (`params.c`, linked into
/// the shipped module only).
#[cfg(not(tsg_tests))]
pub(crate) use generated::{
    tsg_mode_param,
    tsg_policy_param,
    tsg_version, //
};
