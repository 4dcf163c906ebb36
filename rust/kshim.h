/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The few kernel services the Rust side needs and Rust-for-Linux has no
 * abstraction for yet: kthreads, asynchronous cross-CPU calls, local
 * interrupt control, a reader-writer spinlock, a string module parameter. Declared again in
 * rust/kshim.rs; keep the two in sync.
 */
#ifndef TDX_SEPT_GUARD_KSHIM_H
#define TDX_SEPT_GUARD_KSHIM_H

#include <linux/types.h>

struct task_struct;
struct tsg_ipi_set;
struct tsg_rwlock;

const char *tsg_mode_param(void);
const char *tsg_policy_param(void);

struct task_struct *tsg_kthread_start(int (*fn)(void *), void *data, int cpu, const char *name,
				      unsigned int idx);
void tsg_kthread_stop(struct task_struct *task);
bool tsg_kthread_should_stop(void);
void tsg_cond_resched(void);

unsigned long tsg_local_irq_save(void);
void tsg_local_irq_restore(unsigned long flags);
void tsg_msleep(unsigned int msecs);
unsigned int tsg_num_online_cpus(void);
bool tsg_cpu_online(unsigned int cpu);

struct tsg_rwlock *tsg_rwlock_alloc(void);
void tsg_rwlock_free(struct tsg_rwlock *lock);
void tsg_read_lock(struct tsg_rwlock *lock);
void tsg_read_unlock(struct tsg_rwlock *lock);
void tsg_write_lock(struct tsg_rwlock *lock);
void tsg_write_unlock(struct tsg_rwlock *lock);

struct tsg_ipi_set *tsg_ipi_set_alloc(unsigned int nr);
int tsg_ipi_send(struct tsg_ipi_set *set, unsigned int slot, unsigned int cpu);
bool tsg_ipi_acked(struct tsg_ipi_set *set, unsigned int slot);
void tsg_ipi_set_free(struct tsg_ipi_set *set);

#endif
