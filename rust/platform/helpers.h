/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel services tdx_sept_guard.ko needs that Rust-for-Linux has no
 * abstraction for (yet): string module parameters, kthreads, asynchronous
 * cross-CPU calls with acknowledgements, local interrupt control, rwlock_t,
 * and debugfs files whose file_operations pin the module while open; and
 * the wrappers that fire the trace events (events.c), and the fault
 * injection points (fault.c). This header declares every C function of
 * rust/platform/ (helpers.c, params.c, events.c, fault.c), and
 * each of those files includes it: bindgen generates the Rust declarations
 * from it at build time (scripts/bindgen.sh, rust/platform/ffi.rs).
 */
#ifndef TDX_SEPT_GUARD_HELPERS_H
#define TDX_SEPT_GUARD_HELPERS_H

#include <linux/types.h>

struct dentry;
struct lock_class_key;
struct seq_file;
struct task_struct;
struct tsg_ipi_set;
struct workqueue_struct;
typedef struct rwlock rwlock_t;

/* params.c: linked into the shipped module only. */
const char *tsg_version(void);
const char *tsg_mode_param(void);
const char *tsg_policy_param(void);

struct task_struct *tsg_kthread_start(int (*fn)(void *), void *data, int cpu, const char *name,
				      unsigned int idx);
void tsg_kthread_stop(struct task_struct *task);
bool tsg_kthread_should_stop(void);
void tsg_cond_resched(void);

unsigned long tsg_local_irq_save(void);
void tsg_local_irq_restore(unsigned long flags);
unsigned int tsg_num_online_cpus(void);
u64 tsg_local_clock(void);
bool tsg_cpu_online(unsigned int cpu);

void tsg_rwlock_init(rwlock_t *lock, const char *name, struct lock_class_key *key);
void tsg_read_lock(rwlock_t *lock);
void tsg_read_unlock(rwlock_t *lock);
void tsg_write_lock(rwlock_t *lock);
void tsg_write_unlock(rwlock_t *lock);

struct tsg_ipi_set *tsg_ipi_set_alloc(unsigned int nr);
int tsg_ipi_send(struct tsg_ipi_set *set, unsigned int slot, unsigned int cpu);
bool tsg_ipi_acked(struct tsg_ipi_set *set, unsigned int slot);
void tsg_ipi_set_free(struct tsg_ipi_set *set);

/* For the KUnit suites. */
bool tsg_debug_locks(void);

/*
 * A debugfs file served by Rust callbacks. The struct lives in the Rust
 * object that owns the file, which removes the file before freeing it.
 */
struct tsg_debugfs_file {
	/* Prints the file's content; returns 0 or a negative errno. */
	int (*show)(struct seq_file *m, const void *data);
	/* Takes one write of at most TSG_DEBUGFS_WRITE_MAX bytes. */
	int (*write)(const void *data, const char *buf, size_t len);
	const void *data;
};

#define TSG_DEBUGFS_WRITE_MAX 64

struct dentry *tsg_debugfs_create_dir(const char *name, struct dentry *parent);
struct dentry *tsg_debugfs_create_file(const char *name, struct dentry *parent,
				       struct tsg_debugfs_file *file);
void tsg_debugfs_remove(struct dentry *dentry);

void *tsg_percpu_alloc(size_t size, size_t align);
void *tsg_percpu_cpu(void *p, unsigned int cpu);
void *tsg_percpu_local(void *p);
void tsg_percpu_free(void *p);
unsigned int tsg_next_possible_cpu(int cpu);
struct workqueue_struct *tsg_workqueue_alloc(const char *name);
void tsg_workqueue_flush(struct workqueue_struct *wq);
void tsg_workqueue_destroy(struct workqueue_struct *wq);

/* The trace events' wrappers (events.c, the events in events.h). */
void tsg_trace_kick(u64 vm, u32 kicked, u64 wait_ns, bool ok, bool injected);
void tsg_trace_retry(u64 vm, u32 leaf, u64 gpa, u8 level, u64 status, u32 tries,
		     bool injected);
void tsg_trace_zero_step(u64 vm, u32 vcpu, u64 gpa);
void tsg_trace_vm_stop(u64 vm, u32 leaf, u64 status, const char *reason, bool injected);

/*
 * Fault injection (fault.c): the fail_map_busy and fail_retry_busy points,
 * and their debugfs files. Without CONFIG_FAULT_INJECTION_DEBUG_FS they
 * never fail and make no files.
 */
bool tsg_fail_map_busy(void);
bool tsg_fail_retry_busy(void);
void tsg_fault_files_create(struct dentry *parent);
void tsg_fault_files_remove(void);
/* For the KUnit suites (the test module's fault.c only). */
int tsg_fault_set(bool retry, unsigned long probability, int times);
int tsg_fault_times(bool retry);

/* For the KUnit suites: the events as text, without tracefs (events.c). */
int tsg_trace_record_start(u64 vm);
void tsg_trace_record_stop(char *buf, size_t size);

#endif
