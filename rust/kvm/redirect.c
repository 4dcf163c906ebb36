// SPDX-License-Identifier: GPL-2.0
/*
 * Redirecting a kernel function with ftrace (IPMODIFY, the mechanism
 * livepatch is built on) so that the replacement can still call the
 * original, and watching the module that owns the function go away.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/delay.h>
#include <linux/ftrace.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/percpu.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "kvm_internal.h"
#include "shape.h"
#include "helpers.h"

/*
 * One function redirected to a replacement. The ftrace callback sends every
 * call to the replacement, except the one call the replacement makes to the
 * original: tsg_kvm_call_set_private_spte() marks this CPU with the target
 * it is calling (and runs with preemption off), and the callback lets that
 * call through. The guard is per target, so the original's own callees stay
 * redirected (the KUnit suite redirects the SEAMCALL wrappers below it), and
 * it is not "any call from this module", so that the KUnit suite can call
 * KVM's function, as KVM does, and be redirected.
 */
static DEFINE_PER_CPU(unsigned long, tsg_calling_original);
struct tsg_redirect {
	struct ftrace_ops ops;
	unsigned long target;
	unsigned long replacement;
	bool enabled;
};

static void notrace tsg_redirect_callback(unsigned long ip, unsigned long parent_ip,
					  struct ftrace_ops *ops, struct ftrace_regs *fregs)
{
	struct tsg_redirect *r = container_of(ops, struct tsg_redirect, ops);

	if (this_cpu_read(tsg_calling_original) != r->target)
		ftrace_regs_set_instruction_pointer(fregs, r->replacement);
}

struct tsg_redirect *tsg_redirect_new(const char *name, unsigned long target,
				      unsigned long replacement)
{
	struct tsg_redirect *r = kzalloc(sizeof(*r), GFP_KERNEL);

	if (!r)
		return NULL;
	r->target = target;
	r->replacement = replacement;
	r->ops.func = tsg_redirect_callback;
	r->ops.flags = FTRACE_OPS_FL_SAVE_REGS | FTRACE_OPS_FL_RECURSION | FTRACE_OPS_FL_IPMODIFY;
	return r;
}

/*
 * Returns 0, or -EBUSY when another IPMODIFY user (a livepatch, a BPF
 * trampoline, another hook) owns the function, or another negative errno.
 */
/* Serialises enabling and disabling (rmmod against kvm_intel going away). */
static DEFINE_MUTEX(tsg_redirect_lock);

int tsg_redirect_enable(struct tsg_redirect *r)
{
	int ret;

	guard(mutex)(&tsg_redirect_lock);
	ret = ftrace_set_filter_ip(&r->ops, r->target, 0, 0);

	if (ret)
		return ret;
	ret = register_ftrace_function(&r->ops);
	if (ret) {
		ftrace_set_filter_ip(&r->ops, r->target, 1, 0);
		return ret;
	}
	r->enabled = true;
	return 0;
}

/*
 * Removes the redirection. When this returns, ftrace sends no new call to
 * the replacement; calls already in it are the caller's business (the Rust
 * side counts them and waits).
 */
void tsg_redirect_disable(struct tsg_redirect *r)
{
	guard(mutex)(&tsg_redirect_lock);
	if (!r->enabled)
		return;
	WARN_ON_ONCE(unregister_ftrace_function(&r->ops));
	ftrace_set_filter_ip(&r->ops, r->target, 1, 0);
	ftrace_free_filter(&r->ops);
	r->enabled = false;
}

void tsg_redirect_free(struct tsg_redirect *r)
{
	if (r)
		tsg_redirect_disable(r);
	kfree(r);
}

/* The status of the last map-leaf SEAMCALL wrapper this CPU returned from (probes.c). */
DECLARE_PER_CPU(u64, tsg_last_map_status);

/*
 * KVM's tdx_sept_set_private_spte(), at @fn, past the redirection. *@status
 * gets the raw status of the map SEAMCALL it made, if the per-leaf
 * kretprobes saw one (KVM turns a busy status into -EBUSY and drops the
 * operand; this keeps it), else 0.
 */
int tsg_kvm_call_set_private_spte(unsigned long fn, struct kvm *kvm, u64 gfn, u64 old_spte,
				  u64 new_spte, int level, u64 *status)
{
	tsg_set_external_spte_t *orig = (tsg_set_external_spte_t *)fn;
	unsigned long outer;
	int ret;

	preempt_disable();
	outer = this_cpu_xchg(tsg_calling_original, fn);
	this_cpu_write(tsg_last_map_status, 0);
	ret = orig(kvm, gfn, old_spte, new_spte, level);
	*status = this_cpu_read(tsg_last_map_status);
	this_cpu_write(tsg_calling_original, outer);
	preempt_enable();
	return ret;
}

/* In rust/kvm/hooks.rs. */
int tsg_kvm_set_private_spte(struct kvm *kvm, u64 gfn, u64 old_spte, u64 new_spte, int level);

/* The replacement has tdx_sept_set_private_spte()'s own prototype. */
static tsg_set_external_spte_t tsg_set_private_spte_hook;

static int tsg_set_private_spte_hook(struct kvm *kvm, gfn_t gfn, u64 old_spte, u64 new_spte,
				     enum pg_level level)
{
	return tsg_kvm_set_private_spte(kvm, gfn, old_spte, new_spte, level);
}

unsigned long tsg_kvm_set_private_spte_replacement(void)
{
	return (unsigned long)tsg_set_private_spte_hook;
}

/*
 * KVM's VM creation: vt_vm_init(), kvm_x86_ops.vm_init, called by
 * kvm_arch_init_vm() in the VMM's ioctl(KVM_CREATE_VM), in process context
 * with no lock held. Redirected so that a TD's per-VM state is allocated
 * there, where it may sleep, before KVM can map anything for the TD:
 * tdx_vm_init() has set max_vcpus for good by then, and a VM whose creation
 * fails later is destroyed through kvm_arch_destroy_vm(), which the destroy
 * probe sees. The original runs with preemption off (the per-CPU guard);
 * it does not sleep (it sets fields, and vmx_vm_init() may print once).
 *
 * The replacement sleeps (GFP_KERNEL), so the grace period that covers the
 * map hook does not cover it: tasks inside it are counted, and
 * tsg_kvm_vm_init_quiesce() waits for them after the redirection is gone.
 */
static unsigned long tsg_vm_init_orig;
static atomic_t tsg_vm_init_inside = ATOMIC_INIT(0);

/* In rust/kvm/entry.rs: KVM created the TD @kvm. May sleep. */
void tsg_kvm_vm_created(struct kvm *kvm);

static tsg_vm_init_t tsg_vm_init_hook;

static int tsg_vm_init_hook(struct kvm *kvm)
{
	tsg_vm_init_t *orig = (tsg_vm_init_t *)READ_ONCE(tsg_vm_init_orig);
	unsigned long outer;
	int ret;

	atomic_inc(&tsg_vm_init_inside);
	preempt_disable();
	outer = this_cpu_xchg(tsg_calling_original, (unsigned long)orig);
	ret = orig(kvm);
	this_cpu_write(tsg_calling_original, outer);
	preempt_enable();
	if (!ret && is_td(kvm))
		tsg_kvm_vm_created(kvm);
	atomic_dec(&tsg_vm_init_inside);
	return ret;
}

/* The replacement for vt_vm_init(), which is at @orig. */
unsigned long tsg_kvm_vm_init_replacement(unsigned long orig)
{
	WRITE_ONCE(tsg_vm_init_orig, orig);
	return (unsigned long)tsg_vm_init_hook;
}

/*
 * Waits until no task is inside tsg_vm_init_hook(); call once its
 * redirection is disabled. A task that ftrace sent there but that has not
 * counted itself yet was preempted (nothing before the count sleeps): the
 * first RCU-tasks grace period waits until it has counted itself (its next
 * voluntary switch is inside or after the hook). Then the count drains,
 * and a second grace period waits for tasks preempted in the hook's last
 * instructions, after the count.
 */
void tsg_kvm_vm_init_quiesce(void)
{
	synchronize_rcu_tasks();
	while (atomic_read(&tsg_vm_init_inside))
		msleep(1);
	synchronize_rcu_tasks();
}

/*
 * Where kvm_intel is a module, it may be unloaded while the module is
 * attached (only once its VMs are gone, as they hold it). Its functions go
 * with it, and so does everything of the backend that acts on its TDs: the
 * redirection, the per-leaf and destroy probes and the zero-step tracepoint
 * probes (on kvm.ko's tracepoints, which a reloaded kvm_intel would fire for
 * TDs this attach never saw created). All are removed then, and the log
 * says so; a reloaded kvm_intel is not hooked again until tdx_sept_guard is
 * reloaded. Detaching later removes what is left, which is nothing.
 */
static struct tsg_redirect *tsg_watched, *tsg_watched_create;

static int tsg_module_notify(struct notifier_block *nb, unsigned long action, void *data)
{
	struct module *mod = data;
	struct tsg_redirect *r = READ_ONCE(tsg_watched);

	if (action == MODULE_STATE_GOING && r && within_module(r->target, mod)) {
		tsg_redirect_disable(r);
		/* No VM is left to create: no task is inside its replacement. */
		tsg_redirect_disable(READ_ONCE(tsg_watched_create));
		tsg_kvm_tracepoints_unregister();
		tsg_kvm_leaf_probes_unregister();
		tsg_kvm_destroy_probe_unregister();
		pr_info("kvm: %s is being unloaded: detached from it, every probe removed (reload tdx_sept_guard once it is back)\n",
			mod->name);
	}
	return NOTIFY_DONE;
}

static struct notifier_block tsg_module_nb = { .notifier_call = tsg_module_notify };

/* Watches @r's target's module; @create, vt_vm_init()'s redirection, goes with it. */
int tsg_kvm_watch_owner(struct tsg_redirect *r, struct tsg_redirect *create)
{
	WRITE_ONCE(tsg_watched_create, create);
	WRITE_ONCE(tsg_watched, r);
	return register_module_notifier(&tsg_module_nb);
}

void tsg_kvm_unwatch_owner(void)
{
	unregister_module_notifier(&tsg_module_nb);
	WRITE_ONCE(tsg_watched, NULL);
	WRITE_ONCE(tsg_watched_create, NULL);
}

/*
 * mode=auto where kvm_intel is a module: a second module notifier tells the
 * Rust side (auto.rs) when kvm_intel has come up (LIVE: its init succeeded,
 * so KVM's TDX is set up if it will be) and when it goes (GOING, also after
 * a failed init). The Rust side attaches and detaches from a work item: a
 * notifier may not register another one, as attaching does.
 */
#define TSG_KVM_VENDOR "kvm_intel"

/* In rust/kvm/auto.rs. */
void tsg_kvm_vendor_event(bool live);

static int tsg_vendor_notify(struct notifier_block *nb, unsigned long action, void *data)
{
	struct module *mod = data;

	if (strcmp(mod->name, TSG_KVM_VENDOR))
		return NOTIFY_DONE;
	if (action == MODULE_STATE_LIVE)
		tsg_kvm_vendor_event(true);
	else if (action == MODULE_STATE_GOING)
		tsg_kvm_vendor_event(false);
	return NOTIFY_DONE;
}

static struct notifier_block tsg_vendor_nb = { .notifier_call = tsg_vendor_notify };

/* Whether kvm_intel, with its TDX code, is a module here, so worth waiting for. */
bool tsg_kvm_vendor_is_module(void)
{
	return IS_MODULE(CONFIG_KVM_INTEL) && IS_ENABLED(CONFIG_KVM_INTEL_TDX);
}

int tsg_kvm_vendor_watch(void)
{
	return register_module_notifier(&tsg_vendor_nb);
}

/* Returns once no notifier call is in progress. */
void tsg_kvm_vendor_unwatch(void)
{
	unregister_module_notifier(&tsg_vendor_nb);
}

#ifdef TSG_TESTS
/*
 * For the KUnit suite: the notifier's call for a module called @name
 * changing to @live (LIVE) or not (GOING), as the module loader makes it.
 */
int tsg_fake_vendor_event(const char *name, bool live)
{
	struct module *mod = kzalloc(sizeof(*mod), GFP_KERNEL);

	if (!mod)
		return -ENOMEM;
	strscpy(mod->name, name, sizeof(mod->name));
	tsg_vendor_notify(&tsg_vendor_nb, live ? MODULE_STATE_LIVE : MODULE_STATE_GOING, mod);
	kfree(mod);
	return 0;
}
#endif
