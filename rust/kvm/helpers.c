// SPDX-License-Identifier: GPL-2.0
/*
 * The KVM backend's C helpers: what Rust-for-Linux has no abstraction for
 * and bindgen cannot give Rust. Finding kernel symbols by name (KVM's
 * internals are not exported), the checks attach makes of the running
 * kernel, the RCU table of per-VM state, and KVM's static inlines and
 * macros. The ftrace redirect is in redirect.c, the probes in probes.c.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/fs.h>
#include <linux/ftrace.h>
#include <linux/hashtable.h>
#include <linux/kprobes.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include <asm/cfi.h>

#include "kvm_internal.h"
#include "shape.h"
#include "helpers.h"


/* is_endbr() is not exported; this is it, reading the text safely. */
static bool tsg_is_endbr(unsigned long addr)
{
#ifdef CONFIG_X86_KERNEL_IBT
	u32 insn;

	if (get_kernel_nofault(insn, (u32 *)addr))
		return false;
	return __is_endbr(insn);
#else
	return false;
#endif
}

unsigned long tsg_kvm_lookup(const char *name)
{
	struct kprobe kp = { .symbol_name = name };
	unsigned long addr;

	if (register_kprobe(&kp))
		return 0;
	addr = (unsigned long)kp.addr;
	unregister_kprobe(&kp);
	/* A kprobe sits after the function's ENDBR; the function starts at it. */
	if (tsg_is_endbr(addr - ENDBR_INSN_SIZE))
		addr -= ENDBR_INSN_SIZE;
	return addr;
}

/*
 * The address of a kernel symbol that kprobes refuse: a data symbol, or a
 * function on the kprobe blacklist. KVM's VM list (vm_list and the kvm_lock
 * mutex that guards it) is not exported, and neither is
 * kallsyms_lookup_name(). register_kprobe() resolves a name through
 * kallsyms and stores the address in kp.addr before it refuses it with
 * -EINVAL (outside kernel text, or blacklisted): the refusal yields the
 * address. Data symbols are in kallsyms with CONFIG_KALLSYMS_ALL, which
 * distribution kernels enable. The callers check what they find.
 */
static void *tsg_refused_symbol(const char *name)
{
	struct kprobe kp = { .symbol_name = name };
	int ret = register_kprobe(&kp);

	if (!ret) {
		/* Probe-able text: not what the caller looks for. */
		unregister_kprobe(&kp);
		return NULL;
	}
	return ret == -EINVAL ? (void *)kp.addr : NULL;
}

/* Whether @head reads as a list head: its neighbours point back at it. */
static bool tsg_list_sane(struct list_head *head)
{
	struct list_head *next, *back;

	if (get_kernel_nofault(next, &head->next) || get_kernel_nofault(back, &next->prev))
		return false;
	return back == head;
}

/* KVM's list of VMs and its lock, found once; NULL if not found. */
static struct list_head *tsg_vm_list;
static struct mutex *tsg_vm_list_lock;

static bool tsg_find_vm_list(void)
{
	struct list_head *vms;
	struct mutex *lock;

	if (READ_ONCE(tsg_vm_list))
		return true;
	vms = tsg_refused_symbol("vm_list");
	lock = tsg_refused_symbol("kvm_lock");
	/*
	 * Both are defined side by side in kvm_main.c: a kvm_lock far from
	 * vm_list is another symbol of that name.
	 */
	if (!vms || !lock || !tsg_list_sane(vms) ||
	    abs_diff((unsigned long)vms, (unsigned long)lock) > SZ_64K)
		return false;
	tsg_vm_list_lock = lock;
	WRITE_ONCE(tsg_vm_list, vms);
	return true;
}

/*
 * The list tsg_kvm_for_each_new_td() walks: KVM's, or (the test module
 * only) a list of the KUnit suite's fake TDs, of the same shape, so that the
 * walk is tested without putting fake VMs on KVM's list.
 */
#ifdef TSG_TESTS
static struct list_head *tsg_fake_list;
static struct mutex *tsg_fake_list_lock;

/* @list, guarded by @lock, stands in for KVM's VM list in the walk (NULL: no more). */
void tsg_fake_vm_list_set(struct list_head *list, struct mutex *lock)
{
	WRITE_ONCE(tsg_fake_list_lock, lock);
	WRITE_ONCE(tsg_fake_list, list);
}
#endif

static bool tsg_walk_list(struct list_head **list, struct mutex **lock)
{
#ifdef TSG_TESTS
	if (READ_ONCE(tsg_fake_list)) {
		*lock = READ_ONCE(tsg_fake_list_lock);
		*list = READ_ONCE(tsg_fake_list);
		return true;
	}
#endif
	if (!tsg_find_vm_list())
		return false;
	*list = tsg_vm_list;
	*lock = tsg_vm_list_lock;
	return true;
}

#ifdef TSG_TESTS
/* For the KUnit suite: what the op is said to point to (0: KVM's own). */
static unsigned long tsg_fake_op;

void tsg_fake_external_spte_op_set(unsigned long op)
{
	WRITE_ONCE(tsg_fake_op, op);
}
#endif

/*
 * What KVM's live kvm_x86_ops.set_external_spte points to: the function
 * that makes a TD's S-EPT changes on this kernel, which attach expects to
 * be the one it redirects. 0 if the op is unset (KVM's TDX is not set up:
 * no TDX host, kvm_intel.tdx=N, or VMX is missing, as in QEMU) or
 * kvm_x86_ops is not found.
 */
unsigned long tsg_kvm_external_spte_op(void)
{
	struct kvm_x86_ops *ops;
	tsg_set_external_spte_t *op;

#ifdef TSG_TESTS
	if (READ_ONCE(tsg_fake_op))
		return READ_ONCE(tsg_fake_op);
#endif
	ops = tsg_refused_symbol("kvm_x86_ops");
	if (!ops || get_kernel_nofault(op, &ops->set_external_spte))
		return 0;
	return (unsigned long)op;
}

/* How many VMs KVM has (of any type), or -ENOENT if its list was not found. */
int tsg_kvm_nr_vms(void)
{
	struct list_head *pos;
	int n = 0;

	if (!tsg_find_vm_list())
		return -ENOENT;
	mutex_lock(tsg_vm_list_lock);
	list_for_each(pos, tsg_vm_list)
		n++;
	mutex_unlock(tsg_vm_list_lock);
	return n;
}

bool tsg_kvm_ibt_enabled(void)
{
	return cpu_feature_enabled(X86_FEATURE_IBT);
}

/*
 * Whether an indirect call to @addr is allowed under IBT: the function must
 * start with ENDBR. The kernel seals (overwrites) the ENDBR of functions
 * whose address is never taken, and calling those through a pointer faults.
 */
bool tsg_kvm_has_endbr(unsigned long addr)
{
	return tsg_is_endbr(addr);
}

/*
 * Whether FineIBT guards indirect calls to @addr, a function whose own ENDBR
 * is missing: FineIBT poisons the ENDBR at a function's entry and sends
 * indirect calls to the CFI preamble 16 bytes before it, which starts with
 * ENDBR and checks the caller's type hash. (A sealed function, never
 * called through a pointer, has no ENDBR at either place.)
 */
bool tsg_kvm_fineibt_guarded(unsigned long addr)
{
#ifdef CONFIG_FINEIBT
	return !tsg_is_endbr(addr) && tsg_is_endbr(addr - CFI_OFFSET);
#else
	return false;
#endif
}

/*
 * Whether this kernel's ftrace would jump, not call, into its list function.
 * With DYNAMIC_FTRACE_WITH_JMP, ftrace reads bit 0 of a callback's address
 * as "jump there" (ftrace_is_jmp()) and jumps to the address without it.
 * Functions are 16-byte aligned in kernels built as distributions build
 * them, but a kernel built with -Os by a GCC without -fmin-function-alignment
 * (GCC < 14) places functions at any address. When arch_ftrace_ops_list_func
 * lands on an odd one, the first function traced by two ftrace users at once
 * (this module's redirect and a function tracer, a kprobe, ...) makes the
 * trampoline jump one byte before it, and the list function then returns
 * into the trampoline's saved registers: the kernel crashes.
 */
bool tsg_kvm_ftrace_jumps_to_list_func(void)
{
#ifdef CONFIG_DYNAMIC_FTRACE_WITH_JMP
	/* Blacklisted for kprobes (NOKPROBE_SYMBOL), so refused: found. */
	unsigned long list_func = (unsigned long)tsg_refused_symbol("arch_ftrace_ops_list_func");

	return list_func && ftrace_is_jmp(list_func);
#else
	return false;
#endif
}

/*
 * kvm_intel's "tdx" parameter (enable_tdx, not exported), read where every
 * user reads it: 1 (Y), 0 (N), or -1 when there is no such parameter.
 */
int tsg_kvm_tdx_param(void)
{
	struct file *f = filp_open("/sys/module/kvm_intel/parameters/tdx", O_RDONLY, 0);
	loff_t pos = 0;
	char c = 0;
	ssize_t n;

	if (IS_ERR(f))
		return -1;
	n = kernel_read(f, &c, 1, &pos);
	filp_close(f, NULL);
	if (n != 1)
		return -1;
	return c == 'Y' || c == 'y' || c == '1';
}

bool tsg_kvm_tdx_host_platform(void)
{
	return boot_cpu_has(X86_FEATURE_TDX_HOST_PLATFORM);
}

/*
 * The per-VM state of every TD the backend knows, found from its struct kvm on
 * every map call and every zero-step tracepoint of every TD: an RCU hash
 * table, so that finding it takes no lock and writes no shared cache line.
 * Entries are added in process context, when KVM creates a TD or when
 * attaching finds one, and removed when KVM destroys it or the backend
 * detaches, under tsg_vms_lock (with interrupts off: the kvm_exit probe and
 * the destroy kprobe read the table there). An entry's state is NULL when it
 * could not be allocated: the VM is known and runs without the policy. A
 * removed entry's state is freed by the Rust side after a grace period; the
 * entry itself with kfree_rcu().
 */
struct tsg_vm_entry {
	struct hlist_node node;
	struct kvm *kvm;
	const void *state;
	struct rcu_head rcu;
};

static DEFINE_HASHTABLE(tsg_vms, 8);
static DEFINE_SPINLOCK(tsg_vms_lock);

static struct tsg_vm_entry *tsg_vm_find_rcu(struct kvm *kvm)
{
	struct tsg_vm_entry *e;

	hash_for_each_possible_rcu(tsg_vms, e, node, (unsigned long)kvm)
		if (e->kvm == kvm)
			return e;
	return NULL;
}

/*
 * @kvm's state, or NULL; *@known tells whether the VM has an entry at all
 * (with a NULL state when none could be allocated). Call under
 * rcu_read_lock().
 */
const void *tsg_vm_lookup(struct kvm *kvm, bool *known)
{
	struct tsg_vm_entry *e = tsg_vm_find_rcu(kvm);

	*known = e;
	return e ? e->state : NULL;
}

/*
 * Adds @state (NULL: none could be allocated) for @kvm. Returns 0, -EEXIST
 * if the VM has an entry already (the caller keeps @state), or -ENOMEM.
 * Process context: allocates the entry with GFP_KERNEL.
 */
int tsg_vm_insert(struct kvm *kvm, const void *state)
{
	struct tsg_vm_entry *e = kmalloc(sizeof(*e), GFP_KERNEL), *old;
	unsigned long flags;
	int ret = 0;

	might_sleep();
	if (!e)
		return -ENOMEM;
	e->kvm = kvm;
	e->state = state;
	spin_lock_irqsave(&tsg_vms_lock, flags);
	hash_for_each_possible(tsg_vms, old, node, (unsigned long)kvm) {
		if (old->kvm == kvm) {
			ret = -EEXIST;
			break;
		}
	}
	if (!ret) {
		hash_add_rcu(tsg_vms, &e->node, (unsigned long)kvm);
		e = NULL;
	}
	spin_unlock_irqrestore(&tsg_vms_lock, flags);
	kfree(e);
	return ret;
}

static const void *tsg_vm_unlink(struct tsg_vm_entry *e)
{
	const void *state = e->state;

	hash_del_rcu(&e->node);
	kfree_rcu(e, rcu);
	return state;
}

/*
 * Removes @kvm's entry. Returns its state, which readers may use until a
 * grace period has passed, or NULL if the VM had none.
 */
const void *tsg_vm_remove(struct kvm *kvm)
{
	struct tsg_vm_entry *e;
	const void *state = NULL;
	unsigned long flags;

	spin_lock_irqsave(&tsg_vms_lock, flags);
	hash_for_each_possible(tsg_vms, e, node, (unsigned long)kvm) {
		if (e->kvm == kvm) {
			state = tsg_vm_unlink(e);
			break;
		}
	}
	spin_unlock_irqrestore(&tsg_vms_lock, flags);
	return state;
}

/*
 * Removes any one entry and stores its state (maybe NULL) in *@state.
 * Returns false when the table is empty.
 */
bool tsg_vm_remove_any(const void **state)
{
	struct tsg_vm_entry *e;
	unsigned long flags;
	bool found = false;
	int bkt;

	spin_lock_irqsave(&tsg_vms_lock, flags);
	hash_for_each(tsg_vms, bkt, e, node) {
		*state = tsg_vm_unlink(e);
		found = true;
		break;
	}
	spin_unlock_irqrestore(&tsg_vms_lock, flags);
	return found;
}

/* Calls @fn on each state in the table (not the NULL ones), under rcu_read_lock(). */
void tsg_vm_for_each(void (*fn)(const void *state, void *data), void *data)
{
	struct tsg_vm_entry *e;
	int bkt;

	guard(rcu)();
	hash_for_each_rcu(tsg_vms, bkt, e, node)
		if (e->state)
			fn(e->state, data);
}

/* TDs taken from KVM's VM list at a time, each with a reference. */
#define TSG_TD_BATCH 16

/*
 * Calls @fn on every TD in KVM's VM list that has no entry in the table,
 * from process context and without kvm_lock held: @fn allocates, and an
 * allocation under kvm_lock could recurse into KVM's MMU shrinker, which
 * takes it. The TDs are taken a batch at a time under kvm_lock, each with
 * a reference (kvm_get_kvm_safe(): a VM being destroyed is skipped), which
 * is dropped after @fn; dropping the last one destroys the VM, which the
 * destroy probe sees as any other. @fn returns whether the VM now has an
 * entry; a batch that gave none stops the walk. Returns how many TDs @fn
 * was called on, or -ENOENT if KVM's list was not found.
 *
 * The reference functions are exported by kvm.ko, which this module does
 * not link against (it loads where there is no KVM): symbol_get() finds
 * them, and holds kvm.ko, only while walking.
 */
int tsg_kvm_for_each_new_td(bool (*fn)(struct kvm *kvm, void *data), void *data)
{
	bool (*get)(struct kvm *kvm);
	void (*put)(struct kvm *kvm);
	struct list_head *list;
	struct mutex *lock;
	int total = 0;

	might_sleep();
	if (!tsg_walk_list(&list, &lock))
		return -ENOENT;
	get = symbol_get(kvm_get_kvm_safe);
	put = symbol_get(kvm_put_kvm);
	if (!get || !put) {
		total = -ENOENT;
		goto out;
	}
	for (;;) {
		struct kvm *batch[TSG_TD_BATCH], *kvm;
		int n = 0, i, entered = 0;

		mutex_lock(lock);
		list_for_each_entry(kvm, list, vm_list) {
			bool known;

			if (!is_td(kvm))
				continue;
			scoped_guard(rcu)
				tsg_vm_lookup(kvm, &known);
			if (known || !get(kvm))
				continue;
			batch[n++] = kvm;
			if (n == TSG_TD_BATCH)
				break;
		}
		mutex_unlock(lock);
		for (i = 0; i < n; i++) {
			entered += fn(batch[i], data);
			put(batch[i]);
		}
		total += n;
		if (n < TSG_TD_BATCH || !entered)
			break;
	}
out:
	if (get)
		symbol_put(kvm_get_kvm_safe);
	if (put)
		symbol_put(kvm_put_kvm);
	return total;
}

void tsg_kvm_synchronize_rcu(void)
{
	synchronize_rcu();
}

unsigned int tsg_kvm_max_vcpus(struct kvm *kvm)
{
	return READ_ONCE(kvm->max_vcpus);
}

unsigned int tsg_kvm_online_vcpus(struct kvm *kvm)
{
	return atomic_read(&kvm->online_vcpus);
}

struct kvm_vcpu *tsg_kvm_get_vcpu(struct kvm *kvm, unsigned int i)
{
	return kvm_get_vcpu(kvm, i);
}

int tsg_kvm_vcpu_exiting_guest_mode(struct kvm_vcpu *vcpu)
{
	return kvm_vcpu_exiting_guest_mode(vcpu);
}

void tsg_kvm_request_vm_dead(struct kvm_vcpu *vcpu)
{
	kvm_make_request(KVM_REQ_VM_DEAD, vcpu);
}

bool tsg_kvm_is_shadow_present(u64 spte)
{
	return is_shadow_present_pte(spte);
}

bool tsg_kvm_is_last_spte(u64 spte, int level)
{
	return is_last_spte(spte, level);
}

struct kvm *tsg_kvm_vcpu_kvm(struct kvm_vcpu *vcpu)
{
	return vcpu->kvm;
}
