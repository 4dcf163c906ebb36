// SPDX-License-Identifier: GPL-2.0
/*
 * C side of tdx_sept_guard.ko: thin wrappers over kernel services that
 * Rust-for-Linux does not wrap (yet), or wraps in a way an out-of-tree module
 * cannot use safely. No policy lives here.
 */
#include <linux/debug_locks.h>
#include <linux/debugfs.h>
#include <linux/err.h>
#include <linux/fs.h>
#include <linux/irqflags.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/percpu.h>
#include <linux/rcupdate.h>
#include <linux/sched/clock.h>
#include <linux/rcuwait.h>
#include <linux/sched.h>
#include <linux/sched/task.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/smp.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>
#include <linux/workqueue.h>

#include "helpers.h"

/*
 * Starts fn(data) in a kthread, bound to @cpu when cpu >= 0. Holds a
 * reference on the task so that tsg_kthread_stop() is safe even if fn
 * returned long before. Returns NULL on failure.
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

unsigned int tsg_num_online_cpus(void)
{
	return num_online_cpus();
}

/* This CPU's clock in ns, for the latency histograms (see sync.rs). */
u64 tsg_local_clock(void)
{
	return local_clock();
}

bool tsg_cpu_online(unsigned int cpu)
{
	return cpu < nr_cpu_ids && cpu_online(cpu);
}

/*
 * A reader-writer spinlock, the kind KVM's x86 mmu_lock is: the simulated
 * host maps pages under the read side and zaps them under the write side.
 * rwlock_init() is a macro with one lock class per call site; this takes
 * the name and class from the Rust caller, as the kernel crate's
 * new_spinlock!() does for spinlocks.
 */
void tsg_rwlock_init(rwlock_t *lock, const char *name, struct lock_class_key *key)
{
#if defined(CONFIG_PREEMPT_RT)
	/* One class for all of them: PREEMPT_RT has no __rwlock_init(). */
	rwlock_init(lock);
#elif defined(CONFIG_DEBUG_SPINLOCK)
	__rwlock_init(lock, name, key);
#else
	*lock = __RW_LOCK_UNLOCKED(lock);
#endif
}

void tsg_read_lock(rwlock_t *lock)
{
	read_lock(lock);
}

void tsg_read_unlock(rwlock_t *lock)
{
	read_unlock(lock);
}

void tsg_write_lock(rwlock_t *lock)
{
	write_lock(lock);
}

void tsg_write_unlock(rwlock_t *lock)
{
	write_unlock(lock);
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
	struct tsg_ipi_set *set;
};

struct tsg_ipi_set {
	/* The one task freeing the set, waiting for calls still in flight. */
	struct rcuwait freeing;
	struct rcu_head rcu;
	unsigned int nr;
	struct tsg_ipi_slot slot[];
};

/*
 * Runs on the target CPU in hard interrupt context. For a vCPU that CPU is
 * only interruptible outside its guest section, so running here means "left
 * guest mode". The async csd is already unlocked when this runs.
 *
 * Only raw spinlocks may be taken here, even without PREEMPT_RT: a cross-CPU
 * call is never threaded, and a wait queue's spinlock_t is a sleeping lock
 * on RT (lockdep reports "Invalid wait context"). wake_up_var() takes one as
 * soon as anybody waits on its hashed queue; rcuwait_wake_up() only takes the
 * scheduler's raw locks. The set may be freed as soon as pending reads 0, so
 * tsg_ipi_set_free() frees it after a grace period: this handler runs with
 * interrupts off, an RCU read-side critical section. (The same grace period
 * in free_module() keeps this code itself mapped until the handler is done.)
 */
static void tsg_ipi_ack(void *info)
{
	struct tsg_ipi_slot *slot = info;
	struct tsg_ipi_set *set = slot->set;

	atomic_set_release(&slot->pending, 0);
	rcuwait_wake_up(&set->freeing);
}

/* Process context: one slot per CPU may be more than a page (kvzalloc). */
struct tsg_ipi_set *tsg_ipi_set_alloc(unsigned int nr)
{
	struct tsg_ipi_set *set = kvzalloc(struct_size(set, slot, nr), GFP_KERNEL);
	unsigned int i;

	if (!set)
		return NULL;
	rcuwait_init(&set->freeing);
	set->nr = nr;
	for (i = 0; i < nr; i++) {
		set->slot[i].set = set;
		INIT_CSD(&set->slot[i].csd, tsg_ipi_ack, &set->slot[i]);
	}
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

/*
 * Waits (sleeping) until no call is in flight, then frees the set after a
 * grace period (see tsg_ipi_ack()). A call in flight always runs: its target
 * CPU was online when it was sent, and a CPU going offline flushes its
 * queued calls first. Called once, by the set's last user.
 */
void tsg_ipi_set_free(struct tsg_ipi_set *set)
{
	unsigned int i;

	if (!set)
		return;
	for (i = 0; i < set->nr; i++)
		rcuwait_wait_event(&set->freeing,
				   !atomic_read_acquire(&set->slot[i].pending),
				   TASK_UNINTERRUPTIBLE);
	kvfree_rcu(set, rcu);
}

/* Whether lockdep is still checking (it turns itself off at its first report). */
bool tsg_debug_locks(void)
{
	return READ_ONCE(debug_locks);
}

/*
 * debugfs files with .owner = THIS_MODULE. The kernel crate's debugfs
 * file_operations carry no owner, which is harmless for built-in code but
 * not for a module: an open file would not pin it, and closing the file
 * after rmmod would call the release hook in freed module memory. With an
 * owner, debugfs takes a module reference at open and drops it at release,
 * so rmmod is refused while any file is open (as for every C debugfs file),
 * and an open racing with rmmod fails with -ENXIO.
 */
static int tsg_debugfs_show(struct seq_file *m, void *unused)
{
	const struct tsg_debugfs_file *file = m->private;

	return file->show(m, file->data);
}

static int tsg_debugfs_open(struct inode *inode, struct file *filp)
{
	return single_open(filp, tsg_debugfs_show, inode->i_private);
}

static ssize_t tsg_debugfs_write(struct file *filp, const char __user *ubuf, size_t len,
				 loff_t *ppos)
{
	const struct tsg_debugfs_file *file = file_inode(filp)->i_private;
	char buf[TSG_DEBUGFS_WRITE_MAX];
	int ret;

	if (!file->write)
		return -EINVAL;
	if (len > sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;
	ret = file->write(file->data, buf, len);
	return ret ? ret : len;
}

/* Files with content to read (and perhaps to write): seq_file based. */
static const struct file_operations tsg_debugfs_show_fops = {
	.owner = THIS_MODULE,
	.open = tsg_debugfs_open,
	.read = seq_read,
	.write = tsg_debugfs_write,
	.llseek = seq_lseek,
	.release = single_release,
};

/* Write-only files: no seq_file, nothing to seek. */
static const struct file_operations tsg_debugfs_write_fops = {
	.owner = THIS_MODULE,
	.open = nonseekable_open,
	.write = tsg_debugfs_write,
};

struct dentry *tsg_debugfs_create_dir(const char *name, struct dentry *parent)
{
	return debugfs_create_dir(name, parent);
}

struct dentry *tsg_debugfs_create_file(const char *name, struct dentry *parent,
				       struct tsg_debugfs_file *file)
{
	umode_t mode = (file->show ? 0400 : 0) | (file->write ? 0200 : 0);

	return debugfs_create_file(name, mode, parent, file,
				   file->show ? &tsg_debugfs_show_fops : &tsg_debugfs_write_fops);
}

/* Waits for the file operations in progress; later ones fail with -EIO. */
void tsg_debugfs_remove(struct dentry *dentry)
{
	debugfs_remove(dentry);
}

/*
 * Per-CPU memory for the Rust side (percpu.rs): one copy of an object per
 * possible CPU, so that counters every CPU adds to share no cache line.
 * The Rust side sees the allocation as a plain pointer; these are its only
 * uses.
 */
void *tsg_percpu_alloc(size_t size, size_t align)
{
	return (__force void *)__alloc_percpu_gfp(size, align, GFP_KERNEL);
}

/* CPU @cpu's copy. */
void *tsg_percpu_cpu(void *p, unsigned int cpu)
{
	return per_cpu_ptr((void __percpu *)(__force unsigned long)p, cpu);
}

/*
 * This CPU's copy, without preemption checks: a caller that migrates after
 * this uses another CPU's copy, which is only slower, never wrong, for
 * atomic counters.
 */
void *tsg_percpu_local(void *p)
{
	return raw_cpu_ptr((void __percpu *)(__force unsigned long)p);
}

void tsg_percpu_free(void *p)
{
	free_percpu((void __percpu *)(__force unsigned long)p);
}

/* The next possible CPU after @cpu (-1: the first), or nr_cpu_ids. */
unsigned int tsg_next_possible_cpu(int cpu)
{
	return cpumask_next(cpu, cpu_possible_mask);
}

/* A workqueue of the module's own, so that unloading can wait for its work. */
struct workqueue_struct *tsg_workqueue_alloc(const char *name)
{
	return alloc_workqueue("%s", WQ_UNBOUND, 0, name);
}

/* Waits for the work queued before the call. */
void tsg_workqueue_flush(struct workqueue_struct *wq)
{
	flush_workqueue(wq);
}

/* Runs every queued work item to completion, then frees the queue. */
void tsg_workqueue_destroy(struct workqueue_struct *wq)
{
	destroy_workqueue(wq);
}
