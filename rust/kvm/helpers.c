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
#include <linux/version.h>

#include <asm/cfi.h>

#include "kvm_internal.h"
#include "helpers.h"

#if LINUX_VERSION_CODE < KERNEL_VERSION(7, 2, 0) || LINUX_VERSION_CODE >= KERNEL_VERSION(7, 4, 0)
#error "tdx_sept_guard's KVM backend follows KVM 7.2.x and 7.3.x only: see Documentation/attach.rst"
#endif

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
 * The backend's per-VM state, found from the struct kvm * KVM passes by
 * every map call and every zero-step tracepoint of every TD: an RCU hash
 * table, so that finding it takes no lock and writes no shared cache line.
 * Entries are added when a VM is first seen and removed when KVM destroys it
 * or the backend detaches, under tsg_vms_lock (with interrupts off: the
 * kvm_exit probe runs with them off). A removed entry's state is freed by
 * the Rust side after a grace period; the entry itself with kfree_rcu().
 */
struct tsg_vm_entry {
	struct hlist_node node;
	struct kvm *kvm;
	const void *state;
	struct rcu_head rcu;
};

static DEFINE_HASHTABLE(tsg_vms, 8);
static DEFINE_SPINLOCK(tsg_vms_lock);

/* @kvm's state, or NULL. Call under rcu_read_lock(). */
const void *tsg_vm_lookup(struct kvm *kvm)
{
	struct tsg_vm_entry *e;

	hash_for_each_possible_rcu(tsg_vms, e, node, (unsigned long)kvm)
		if (e->kvm == kvm)
			return e->state;
	return NULL;
}

/*
 * Adds @state for @kvm unless the VM has state already. Returns the state
 * in the table (@state, or the one another task added first), or NULL if no
 * entry could be allocated. Any context; allocates an entry of 40 bytes.
 */
const void *tsg_vm_insert(struct kvm *kvm, const void *state)
{
	struct tsg_vm_entry *e = kmalloc(sizeof(*e), GFP_ATOMIC), *old;
	const void *ret = NULL;
	unsigned long flags;

	if (!e)
		return NULL;
	e->kvm = kvm;
	e->state = state;
	spin_lock_irqsave(&tsg_vms_lock, flags);
	hash_for_each_possible(tsg_vms, old, node, (unsigned long)kvm) {
		if (old->kvm == kvm) {
			ret = old->state;
			break;
		}
	}
	if (!ret) {
		hash_add_rcu(tsg_vms, &e->node, (unsigned long)kvm);
		ret = state;
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

/* Removes any one entry and returns its state; NULL when the table is empty. */
const void *tsg_vm_remove_any(void)
{
	struct tsg_vm_entry *e;
	const void *state = NULL;
	unsigned long flags;
	int bkt;

	spin_lock_irqsave(&tsg_vms_lock, flags);
	hash_for_each(tsg_vms, bkt, e, node) {
		state = tsg_vm_unlink(e);
		break;
	}
	spin_unlock_irqrestore(&tsg_vms_lock, flags);
	return state;
}

/* Calls @fn on each state in the table, under rcu_read_lock(). */
void tsg_vm_for_each(void (*fn)(const void *state, void *data), void *data)
{
	struct tsg_vm_entry *e;
	int bkt;

	guard(rcu)();
	hash_for_each_rcu(tsg_vms, bkt, e, node)
		fn(e->state, data);
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
