// SPDX-License-Identifier: GPL-2.0
/*
 * C side of tdx_sept_guard.ko: thin wrappers over kernel services that
 * Rust-for-Linux does not wrap yet. No policy lives here.
 */
#include <linux/delay.h>
#include <linux/err.h>
#include <linux/irqflags.h>
#include <linux/kthread.h>
#include <linux/moduleparam.h>
#include <linux/sched.h>
#include <linux/sched/task.h>
#include <linux/slab.h>
#include <linux/smp.h>
#include <linux/spinlock.h>

#include "kshim.h"

/* The kernel crate's module! macro only knows integer parameters. */
static char *mode = "sim";
module_param(mode, charp, 0444);
MODULE_PARM_DESC(mode, "sim: run the simulated TDX contention workload (default); idle: counters and KUnit only");

static char *policy = "kick_and_retry";
module_param(policy, charp, 0444);
MODULE_PARM_DESC(policy, "S-EPT SEAMCALL policy: kick_and_retry (default), upstream72 or blind_retry (baselines)");

const char *tsg_mode_param(void)
{
	return mode;
}

const char *tsg_policy_param(void)
{
	return policy;
}

/*
 * Starts fn(data) in a kthread, bound to @cpu when cpu >= 0. Holds a
 * reference on the task so that tsg_kthread_stop() is safe even if fn
 * returns early. Returns NULL on failure.
 */
struct task_struct *tsg_kthread_start(int (*fn)(void *), void *data, int cpu, const char *name,
				      unsigned int idx)
{
	struct task_struct *task;

	if (cpu >= 0)
		task = kthread_create_on_cpu(fn, data, cpu, name);
	else
		task = kthread_create(fn, data, name, idx);
	if (IS_ERR(task))
		return NULL;
	get_task_struct(task);
	wake_up_process(task);
	return task;
}

void tsg_kthread_stop(struct task_struct *task)
{
	kthread_stop_put(task);
}

bool tsg_kthread_should_stop(void)
{
	return kthread_should_stop();
}

void tsg_cond_resched(void)
{
	cond_resched();
}

unsigned long tsg_local_irq_save(void)
{
	unsigned long flags;

	local_irq_save(flags);
	return flags;
}

void tsg_local_irq_restore(unsigned long flags)
{
	local_irq_restore(flags);
}

void tsg_msleep(unsigned int msecs)
{
	msleep(msecs);
}

unsigned int tsg_num_online_cpus(void)
{
	return num_online_cpus();
}

bool tsg_cpu_online(unsigned int cpu)
{
	return cpu < nr_cpu_ids && cpu_online(cpu);
}

/*
 * A reader-writer spinlock, the kind KVM's x86 mmu_lock is: the simulated
 * host maps pages under the read side and zaps them under the write side.
 */
struct tsg_rwlock {
	rwlock_t lock;
};

struct tsg_rwlock *tsg_rwlock_alloc(void)
{
	struct tsg_rwlock *l = kmalloc(sizeof(*l), GFP_KERNEL);

	if (l)
		rwlock_init(&l->lock);
	return l;
}

void tsg_rwlock_free(struct tsg_rwlock *l)
{
	kfree(l);
}

void tsg_read_lock(struct tsg_rwlock *l)
{
	read_lock(&l->lock);
}

void tsg_read_unlock(struct tsg_rwlock *l)
{
	read_unlock(&l->lock);
}

void tsg_write_lock(struct tsg_rwlock *l)
{
	write_lock(&l->lock);
}

void tsg_write_unlock(struct tsg_rwlock *l)
{
	write_unlock(&l->lock);
}

/*
 * Asynchronous cross-CPU calls with acknowledgements, one slot per vCPU.
 * smp_call_function_many(..., wait=true) cannot time out; a kicker that
 * must not hang sends one async call per target and polls the slots'
 * pending flags against its own deadline instead.
 */
struct tsg_ipi_slot {
	call_single_data_t csd;
	atomic_t pending;
};

struct tsg_ipi_set {
	unsigned int nr;
	struct tsg_ipi_slot slot[];
};

/*
 * Runs on the target CPU in interrupt context. For a vCPU that CPU is only
 * interruptible outside its guest section, so running here means "left
 * guest mode". The async csd is already unlocked when this runs and the
 * slot is not touched after the release store.
 */
static void tsg_ipi_ack(void *info)
{
	struct tsg_ipi_slot *slot = info;

	atomic_set_release(&slot->pending, 0);
}

struct tsg_ipi_set *tsg_ipi_set_alloc(unsigned int nr)
{
	struct tsg_ipi_set *set = kzalloc(struct_size(set, slot, nr), GFP_KERNEL);
	unsigned int i;

	if (!set)
		return NULL;
	set->nr = nr;
	for (i = 0; i < nr; i++)
		INIT_CSD(&set->slot[i].csd, tsg_ipi_ack, &set->slot[i]);
	return set;
}

/*
 * Sends the slot's call to @cpu. Returns -EBUSY while the previous call of
 * this slot is still in flight (a vCPU that did not acknowledge it yet).
 */
int tsg_ipi_send(struct tsg_ipi_set *set, unsigned int slot, unsigned int cpu)
{
	struct tsg_ipi_slot *s;
	int ret;

	if (slot >= set->nr)
		return -EINVAL;
	s = &set->slot[slot];
	if (atomic_cmpxchg(&s->pending, 0, 1) != 0)
		return -EBUSY;
	ret = smp_call_function_single_async(cpu, &s->csd);
	if (ret)
		atomic_set(&s->pending, 0);
	return ret;
}

bool tsg_ipi_acked(struct tsg_ipi_set *set, unsigned int slot)
{
	return slot < set->nr && atomic_read_acquire(&set->slot[slot].pending) == 0;
}

/* Waits (sleeping) until no call is in flight, then frees the set. */
void tsg_ipi_set_free(struct tsg_ipi_set *set)
{
	unsigned int i;

	if (!set)
		return;
	for (i = 0; i < set->nr; i++)
		while (atomic_read_acquire(&set->slot[i].pending))
			msleep(1);
	kfree(set);
}
