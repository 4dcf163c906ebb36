// SPDX-License-Identifier: GPL-2.0
/*
 * The module's fault injection points, the kernel's way
 * (Documentation/fault-injection/fault-injection.rst): one struct
 * fault_attr each, asked with should_fail() where the backends issue a map
 * SEAMCALL, and set through the standard debugfs files that
 * fault_create_debugfs_attr() makes (probability, interval, times, space,
 * verbose, ...) in the module's debugfs directory:
 *
 * - fail_map_busy: a map's first try is answered "busy" without a
 *   SEAMCALL, so the gate, the kick and the one real retry all run;
 * - fail_retry_busy: the retry is answered "busy" too: the VM is stopped.
 *   For deliberate tests only.
 *
 * The points exist only with CONFIG_FAULT_INJECTION_DEBUG_FS: without it
 * there are no files and nothing is ever injected. Each module (the shipped
 * one and the test module) has attributes of its own.
 *
 * Lifetime (rust/platform/fault.rs, Documentation/usage.rst): the files
 * lib/fault-inject.c makes are served by the kernel's own file_operations
 * (owner NULL), so an open one does not pin this module. debugfs_remove()
 * of their directories waits for every read and write in progress, and a
 * later one fails with EIO before it touches the attribute; closing such a
 * file runs only kernel code. The attributes, in this module's data, are
 * therefore unused once the directories are removed, which the module does
 * before it is freed. Up to 7.2, fault_create_debugfs_attr() also keeps a
 * reference on its directory's dentry in the attribute (attr->dname, which
 * a verbose injection prints); tsg_fault_files_remove() drops it after an
 * RCU grace period, and every should_fail() here runs inside an RCU
 * read-side section, so no injection in progress can still be printing it.
 * From 7.3 the attribute holds a copy of the name (FAULT_ATTR_DNAME_LEN),
 * and there is no reference to drop.
 */
#include <linux/atomic.h>
#include <linux/compiler.h>
#include <linux/dcache.h>
#include <linux/debugfs.h>
#include <linux/err.h>
#include <linux/errno.h>
#include <linux/fault-inject.h>
#include <linux/rcupdate.h>

#include "helpers.h"

#ifdef CONFIG_FAULT_INJECTION_DEBUG_FS

static DECLARE_FAULT_ATTR(fail_map_busy_attr);
static DECLARE_FAULT_ATTR(fail_retry_busy_attr);

/* The directories fault_create_debugfs_attr() made, or NULL. */
static struct dentry *fail_map_busy_dir;
static struct dentry *fail_retry_busy_dir;

/*
 * A task's fail-nth (/proc/<pid>/fail-nth) counts every should_fail() call
 * the task makes, whatever the attribute's settings: without the test of
 * probability first, loading this module would make each map of a vCPU
 * task a fail-nth point, and fail-nth aimed at an allocation on KVM_RUN's
 * path would land on the map instead. With the test, fail-nth reaches these
 * points only while their probability is above 0; the map path pays one
 * load and compare while it is 0.
 */
static bool tsg_should_fail(struct fault_attr *attr)
{
	bool fail;

	if (likely(!READ_ONCE(attr->probability)))
		return false;
	/* attr->dname stays valid until the section ends (see above). */
	rcu_read_lock();
	fail = should_fail(attr, 1);
	rcu_read_unlock();
	return fail;
}

bool tsg_fail_map_busy(void)
{
	return tsg_should_fail(&fail_map_busy_attr);
}

bool tsg_fail_retry_busy(void)
{
	return tsg_should_fail(&fail_retry_busy_attr);
}

static struct dentry *tsg_fault_dir(const char *name, struct dentry *parent,
				    struct fault_attr *attr)
{
	struct dentry *dir = fault_create_debugfs_attr(name, parent, attr);

	return IS_ERR(dir) ? NULL : dir;
}

/*
 * Makes fail_map_busy/ and fail_retry_busy/ in @parent (which may be an
 * error pointer: debugfs unavailable). As everywhere in debugfs, failure is
 * not an error: the files are then absent. Once per load of the module.
 */
void tsg_fault_files_create(struct dentry *parent)
{
	if (IS_ERR_OR_NULL(parent))
		return;
	fail_map_busy_dir = tsg_fault_dir("fail_map_busy", parent, &fail_map_busy_attr);
	fail_retry_busy_dir = tsg_fault_dir("fail_retry_busy", parent,
						&fail_retry_busy_attr);
}

/*
 * Removes both directories, waiting for the reads and writes of their files
 * in progress; later ones fail with EIO (files held open) or ENOENT (opens).
 * Up to 7.2, then drops the references fault_create_debugfs_attr() took on
 * them (attr->dname), once no injection in progress can print them: a
 * later verbose injection prints the name as "(null)". Process context.
 */
void tsg_fault_files_remove(void)
{
#ifdef FAULT_ATTR_DNAME_LEN
	/* 7.3 on: the attribute keeps a copy of the name, no reference. */
	debugfs_remove(fail_map_busy_dir);
	debugfs_remove(fail_retry_busy_dir);
	fail_map_busy_dir = NULL;
	fail_retry_busy_dir = NULL;
#else
	struct dentry *map_dname = fail_map_busy_attr.dname;
	struct dentry *retry_dname = fail_retry_busy_attr.dname;

	debugfs_remove(fail_map_busy_dir);
	debugfs_remove(fail_retry_busy_dir);
	fail_map_busy_dir = NULL;
	fail_retry_busy_dir = NULL;
	WRITE_ONCE(fail_map_busy_attr.dname, NULL);
	WRITE_ONCE(fail_retry_busy_attr.dname, NULL);
	synchronize_rcu();
	dput(map_dname);
	dput(retry_dname);
#endif
}

#ifdef TSG_TESTS
static struct fault_attr *tsg_fault_attr(bool retry)
{
	return retry ? &fail_retry_busy_attr : &fail_map_busy_attr;
}

/*
 * For the KUnit suites: makes fail_retry_busy (@retry) or fail_map_busy
 * fail @probability percent of the calls, at most @times times (-1: no
 * limit), with interval 1, space 0, no task filter and quietly (verbose 0),
 * as writing those files would; probability 0 turns it off. Returns
 * -ENODEV without CONFIG_FAULT_INJECTION_DEBUG_FS.
 */
int tsg_fault_set(bool retry, unsigned long probability, int times)
{
	struct fault_attr *attr = tsg_fault_attr(retry);

	WRITE_ONCE(attr->probability, 0);
	attr->interval = 1;
	attr->verbose = 0;
	attr->task_filter = false;
	atomic_set(&attr->space, 0);
	atomic_set(&attr->times, times);
	WRITE_ONCE(attr->probability, probability);
	return 0;
}

/* For the KUnit suites: the attribute's times left (-1: no limit). */
int tsg_fault_times(bool retry)
{
	return atomic_read(&tsg_fault_attr(retry)->times);
}
#endif

#else /* CONFIG_FAULT_INJECTION_DEBUG_FS */

bool tsg_fail_map_busy(void)
{
	return false;
}

bool tsg_fail_retry_busy(void)
{
	return false;
}

void tsg_fault_files_create(struct dentry *parent)
{
}

void tsg_fault_files_remove(void)
{
}

#ifdef TSG_TESTS
int tsg_fault_set(bool retry, unsigned long probability, int times)
{
	return -ENODEV;
}

int tsg_fault_times(bool retry)
{
	return 0;
}
#endif

#endif /* CONFIG_FAULT_INJECTION_DEBUG_FS */
