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
#include <linux/ftrace.h>
#include <linux/kprobes.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/version.h>

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
int tsg_redirect_enable(struct tsg_redirect *r)
{
	int ret = ftrace_set_filter_ip(&r->ops, r->target, 0, 0);

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

/* KVM's tdx_sept_set_private_spte(), at @fn, past the redirection. */
int tsg_kvm_call_set_private_spte(unsigned long fn, struct kvm *kvm, u64 gfn, u64 old_spte,
				  u64 new_spte, int level)
{
	tsg_set_private_spte_fn orig = (tsg_set_private_spte_fn)fn;
	unsigned long outer;
	int ret;

	preempt_disable();
	outer = this_cpu_xchg(tsg_calling_original, fn);
	ret = orig(kvm, gfn, old_spte, new_spte, level);
	this_cpu_write(tsg_calling_original, outer);
	preempt_enable();
	return ret;
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

void tsg_kvm_synchronize_rcu(void)
{
	synchronize_rcu();
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
