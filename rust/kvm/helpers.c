// SPDX-License-Identifier: GPL-2.0
/*
 * The KVM backend's C side. Three jobs, each something Rust-for-Linux has no
 * abstraction for:
 *
 * - finding a kernel function by name (KVM's internals are not exported):
 *   a kprobe is registered on the name and removed again, which gives its
 *   address without calling anything unexported;
 * - redirecting a function with ftrace (IPMODIFY), the mechanism livepatch
 *   is built on, so that the original can still be called;
 * - KVM's static inlines and macros, which bindgen cannot give Rust.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/fs.h>
#include <linux/hashtable.h>
#include <linux/ftrace.h>
#include <linux/kprobes.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/tracepoint.h>
#include <linux/uaccess.h>
#include <linux/version.h>

#include <asm/cfi.h>

#include "kvm_internal.h"
#include "helpers.h"

#if LINUX_VERSION_CODE < KERNEL_VERSION(7, 2, 0) || LINUX_VERSION_CODE >= KERNEL_VERSION(7, 3, 0)
#error "tdx_sept_guard's KVM backend follows KVM 7.2.x only: see Documentation/attach.rst"
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

typedef int (*tsg_set_private_spte_fn)(struct kvm *kvm, gfn_t gfn, u64 old_spte, u64 new_spte,
				       enum pg_level level);

/* The status of the last map-leaf SEAMCALL wrapper this CPU returned from. */
static DEFINE_PER_CPU(u64, tsg_last_map_status);

/*
 * KVM's tdx_sept_set_private_spte(), at @fn, past the redirection. *@status
 * gets the raw status of the map SEAMCALL it made, if the per-leaf
 * kretprobes saw one (KVM turns a busy status into -EBUSY and drops the
 * operand; this keeps it), else 0.
 */
int tsg_kvm_call_set_private_spte(unsigned long fn, struct kvm *kvm, u64 gfn, u64 old_spte,
				  u64 new_spte, int level, u64 *status)
{
	tsg_set_private_spte_fn orig = (tsg_set_private_spte_fn)fn;
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

/*
 * Serialises placing and removing the probes below: detach (rmmod) can race
 * kvm_intel going away (tsg_module_notify()), and both remove them.
 */
static DEFINE_MUTEX(tsg_probe_lock);

/*
 * Per-leaf outcomes: a kretprobe on each S-EPT SEAMCALL wrapper reads the
 * raw TDX status it returns. Map leaves (AUG, SEPT.ADD, PAGE.ADD) run inside
 * the module's hook, which counts them with the status kept above; unmap
 * leaves (BLOCK, TRACK, REMOVE) run in KVM's tdh_do_no_vcpus() and are
 * counted here, through tsg_kvm_tdh_returned() (rust/kvm/mod.rs).
 */
void tsg_kvm_tdh_returned(unsigned int leaf, u64 status);

struct tsg_leaf_probe {
	struct kretprobe rp;
	unsigned int leaf;	/* TSG_LEAF_* */
	bool map;
	bool registered;
};

enum { TSG_LEAF_AUG, TSG_LEAF_SEPT_ADD, TSG_LEAF_PAGE_ADD, TSG_LEAF_BLOCK, TSG_LEAF_TRACK,
	TSG_LEAF_REMOVE, TSG_NR_LEAF_PROBES };

static struct tsg_leaf_probe tsg_leaf_probes[TSG_NR_LEAF_PROBES] = {
	[TSG_LEAF_AUG] = { .rp.kp.symbol_name = "tdh_mem_page_aug", .map = true },
	[TSG_LEAF_SEPT_ADD] = { .rp.kp.symbol_name = "tdh_mem_sept_add", .map = true },
	[TSG_LEAF_PAGE_ADD] = { .rp.kp.symbol_name = "tdh_mem_page_add", .map = true },
	[TSG_LEAF_BLOCK] = { .rp.kp.symbol_name = "tdh_mem_range_block" },
	[TSG_LEAF_TRACK] = { .rp.kp.symbol_name = "tdh_mem_track" },
	[TSG_LEAF_REMOVE] = { .rp.kp.symbol_name = "tdh_mem_page_remove" },
};

/* A SEAMCALL wrapper returned @status: keep it (map) or count it (unmap). */
void tsg_kvm_leaf_status(unsigned int leaf, u64 status)
{
	if (leaf >= TSG_NR_LEAF_PROBES)
		return;
	if (tsg_leaf_probes[leaf].map)
		this_cpu_write(tsg_last_map_status, status);
	else
		tsg_kvm_tdh_returned(leaf, status);
}

static int tsg_leaf_returned(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	struct tsg_leaf_probe *p = container_of(get_kretprobe(ri), struct tsg_leaf_probe, rp);

	tsg_kvm_leaf_status(p->leaf, regs_return_value(regs));
	return 0;
}

/* Registers the probes; returns how many of them could be placed. */
unsigned int tsg_kvm_leaf_probes_register(void)
{
	unsigned int i, n = 0;

	guard(mutex)(&tsg_probe_lock);
	for (i = 0; i < TSG_NR_LEAF_PROBES; i++) {
		struct tsg_leaf_probe *p = &tsg_leaf_probes[i];

		p->leaf = i;
		p->rp.handler = tsg_leaf_returned;
		p->rp.kp.addr = NULL;
		p->rp.kp.flags = 0;
		p->registered = !register_kretprobe(&p->rp);
		n += p->registered;
	}
	return n;
}

/* Removes them; handlers in progress have finished when this returns. */
void tsg_kvm_leaf_probes_unregister(void)
{
	unsigned int i;

	guard(mutex)(&tsg_probe_lock);
	for (i = 0; i < TSG_NR_LEAF_PROBES; i++) {
		if (tsg_leaf_probes[i].registered)
			unregister_kretprobe(&tsg_leaf_probes[i].rp);
		tsg_leaf_probes[i].registered = false;
	}
}

/* In rust/kvm/hooks.rs. */
int tsg_kvm_set_private_spte(struct kvm *kvm, u64 gfn, u64 old_spte, u64 new_spte, int level);

/* The replacement has tdx_sept_set_private_spte()'s own prototype. */
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

/*
 * KVM's destruction of a VM, seen as kvm_arch_destroy_vm() starts: by then
 * the VM is off KVM's list, its last reference is gone and its vCPUs stopped
 * running, so no map call and no zero-step tracepoint can come for it any
 * more (the zaps that follow are unmap calls, which use no per-VM state).
 * Its state must go before the struct kvm can be reused. A kprobe at entry,
 * not a kretprobe: a kretprobe misses returns once its instances run out,
 * and a missed destruction would hand the state of a dead VM to the next VM
 * allocated at its address. The kprobe misses only when it fires inside
 * another kprobe's handler; tsg_kvm_destroy_probe_missed() tells.
 */
void tsg_kvm_vm_destroyed(struct kvm *kvm);

static int tsg_destroy_pre(struct kprobe *p, struct pt_regs *regs)
{
	tsg_kvm_vm_destroyed((struct kvm *)regs_get_kernel_argument(regs, 0));
	return 0;
}

static struct kprobe tsg_destroy_probe = {
	.symbol_name = "kvm_arch_destroy_vm",
	.pre_handler = tsg_destroy_pre,
};
static bool tsg_destroy_probe_registered;

bool tsg_kvm_destroy_probe_register(void)
{
	guard(mutex)(&tsg_probe_lock);
	tsg_destroy_probe.addr = NULL;
	tsg_destroy_probe.flags = 0;
	tsg_destroy_probe_registered = !register_kprobe(&tsg_destroy_probe);
	return tsg_destroy_probe_registered;
}

void tsg_kvm_destroy_probe_unregister(void)
{
	guard(mutex)(&tsg_probe_lock);
	if (tsg_destroy_probe_registered)
		unregister_kprobe(&tsg_destroy_probe);
	tsg_destroy_probe_registered = false;
}

/* Destructions the probe missed (it fired inside another kprobe handler). */
unsigned long tsg_kvm_destroy_probe_missed(void)
{
	return READ_ONCE(tsg_destroy_probe.nmissed);
}

/*
 * Zero-step, from KVM's own (exported) tracepoints: kvm_page_fault, which
 * tdx_handle_ept_violation() fires for each EPT violation (a vCPU task,
 * preemptible), and kvm_exit, which tdx_vcpu_run() fires after each
 * TDH.VP.ENTER with interrupts off, when vp_enter_ret holds its status and
 * the exit reason is decoded. 7.2 runs tracepoint probes under SRCU, not with
 * preemption off: the probes themselves disable nothing. Only TD vCPUs
 * reach Rust (rust/kvm/mod.rs): private-GPA faults, busy entries, and every
 * other exit that is not an EPT violation, which ends the vCPU's fault
 * streak (an EPT violation's exit is followed by its kvm_page_fault).
 */
void tsg_kvm_zero_step_fault(struct kvm_vcpu *vcpu, u64 gpa);
void tsg_kvm_zero_step_enter_busy(struct kvm_vcpu *vcpu, u64 status);
void tsg_kvm_zero_step_progress(struct kvm_vcpu *vcpu);

static void tsg_on_page_fault(void *data, struct kvm_vcpu *vcpu, u64 gpa, u64 error_code)
{
	if (is_td_vcpu(vcpu) && vt_is_tdx_private_gpa(vcpu->kvm, gpa))
		tsg_kvm_zero_step_fault(vcpu, gpa & PAGE_MASK);
}

static void tsg_on_exit(void *data, struct kvm_vcpu *vcpu, u32 isa)
{
	u64 ret;

	if (!is_td_vcpu(vcpu))
		return;
	ret = container_of(vcpu, struct vcpu_tdx, vcpu)->vp_enter_ret;
	if ((ret & TDX_SEAMCALL_STATUS_MASK) == TDX_OPERAND_BUSY)
		tsg_kvm_zero_step_enter_busy(vcpu, ret);
	else if (to_vt(vcpu)->exit_reason.basic != EXIT_REASON_EPT_VIOLATION)
		tsg_kvm_zero_step_progress(vcpu);
}

/*
 * The tracepoints are found by name among the kernel's own, not linked to:
 * a reference to __tracepoint_kvm_exit would make this module depend on
 * kvm.ko where KVM is a module, and fail to load (even in mode=sim) without
 * it. Where KVM is a module its tracepoints are not among the kernel's, and
 * the zero-step probes are simply not placed (attach says so).
 */
struct tsg_tp_lookup {
	const char *name;
	struct tracepoint *tp;
};

static void tsg_tp_match(struct tracepoint *tp, void *priv)
{
	struct tsg_tp_lookup *l = priv;

	if (!strcmp(tp->name, l->name))
		l->tp = tp;
}

static struct tracepoint *tsg_tracepoint(const char *name)
{
	struct tsg_tp_lookup l = { .name = name };

	for_each_kernel_tracepoint(tsg_tp_match, &l);
	return l.tp;
}

static struct tracepoint *tsg_tp_page_fault, *tsg_tp_exit;

bool tsg_kvm_tracepoints_register(void)
{
	guard(mutex)(&tsg_probe_lock);
	/* Type-check the probes against KVM's prototypes. */
	void (*fault_probe)(void *, struct kvm_vcpu *, u64, u64) = tsg_on_page_fault;
	void (*exit_probe)(void *, struct kvm_vcpu *, u32) = tsg_on_exit;
	struct tracepoint *fault = tsg_tracepoint("kvm_page_fault");
	struct tracepoint *exit = tsg_tracepoint("kvm_exit");

	if (!fault || !exit)
		return false;
	if (tracepoint_probe_register(fault, (void *)fault_probe, NULL))
		return false;
	if (tracepoint_probe_register(exit, (void *)exit_probe, NULL)) {
		tracepoint_probe_unregister(fault, (void *)fault_probe, NULL);
		tracepoint_synchronize_unregister();
		return false;
	}
	tsg_tp_page_fault = fault;
	tsg_tp_exit = exit;
	return true;
}

/* Removes the probes; when this returns none is running. */
void tsg_kvm_tracepoints_unregister(void)
{
	guard(mutex)(&tsg_probe_lock);
	if (!tsg_tp_page_fault)
		return;
	tracepoint_probe_unregister(tsg_tp_exit, (void *)tsg_on_exit, NULL);
	tracepoint_probe_unregister(tsg_tp_page_fault, (void *)tsg_on_page_fault, NULL);
	tracepoint_synchronize_unregister();
	tsg_tp_page_fault = NULL;
	tsg_tp_exit = NULL;
}

struct kvm *tsg_kvm_vcpu_kvm(struct kvm_vcpu *vcpu)
{
	return vcpu->kvm;
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
static struct tsg_redirect *tsg_watched;

static int tsg_module_notify(struct notifier_block *nb, unsigned long action, void *data)
{
	struct module *mod = data;
	struct tsg_redirect *r = READ_ONCE(tsg_watched);

	if (action == MODULE_STATE_GOING && r && within_module(r->target, mod)) {
		tsg_redirect_disable(r);
		tsg_kvm_tracepoints_unregister();
		tsg_kvm_leaf_probes_unregister();
		tsg_kvm_destroy_probe_unregister();
		pr_info("kvm: %s is being unloaded: detached from it, every probe removed (reload tdx_sept_guard once it is back)\n",
			mod->name);
	}
	return NOTIFY_DONE;
}

static struct notifier_block tsg_module_nb = { .notifier_call = tsg_module_notify };

int tsg_kvm_watch_owner(struct tsg_redirect *r)
{
	WRITE_ONCE(tsg_watched, r);
	return register_module_notifier(&tsg_module_nb);
}

void tsg_kvm_unwatch_owner(void)
{
	unregister_module_notifier(&tsg_module_nb);
	WRITE_ONCE(tsg_watched, NULL);
}
