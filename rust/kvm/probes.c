// SPDX-License-Identifier: GPL-2.0
/*
 * The backend's probes on KVM: kretprobes on the S-EPT SEAMCALL wrappers
 * (per-leaf outcomes and durations), a kprobe on kvm_arch_destroy_vm()
 * (per-VM state lifetime) and probes on KVM's kvm_page_fault and kvm_exit
 * tracepoints (zero-step). Leaves are numbered as the TDX module numbers them, the
 * kernel's TDH_* (arch/x86/virt/vmx/tdx/tdx.h), as the policy's Leaf is.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kprobes.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/percpu.h>
#include <linux/string.h>
#include <linux/sched/clock.h>
#include <linux/tracepoint.h>

#include "kvm_internal.h"
/* The TDX module's leaf numbers (TDH_*), beside KVM's own tdx.h. */
#include "vmx/tdx/tdx.h"
#include "helpers.h"

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
 * counted here, through tsg_kvm_tdh_returned() (rust/kvm/entry.rs).
 *
 * Per-leaf durations: with latency histograms on, the kretprobe's entry
 * handler also notes the TD (the wrappers' first argument) and the time
 * (local_clock(), as the module's other histograms, rust/platform/sync.rs),
 * and the return handler hands the wrapper's duration to
 * tsg_kvm_leaf_time(). The duration is the wrapper's: the SEAMCALL and the
 * few instructions around it, plus the return probe's own trampoline (a
 * few dozen ns natively).
 */
void tsg_kvm_tdh_returned(u64 leaf, u64 status);
void tsg_kvm_leaf_time(struct kvm *kvm, u64 leaf, u64 ns);

/* The status of the last map-leaf SEAMCALL wrapper this CPU returned from. */
DEFINE_PER_CPU(u64, tsg_last_map_status);

struct tsg_leaf_probe {
	struct kretprobe rp;
	u64 leaf;	/* TDH_* */
	bool map;
	bool registered;
};

static struct tsg_leaf_probe tsg_leaf_probes[] = {
	{ .rp.kp.symbol_name = "tdh_mem_page_aug", .leaf = TDH_MEM_PAGE_AUG, .map = true },
	{ .rp.kp.symbol_name = "tdh_mem_sept_add", .leaf = TDH_MEM_SEPT_ADD, .map = true },
	{ .rp.kp.symbol_name = "tdh_mem_page_add", .leaf = TDH_MEM_PAGE_ADD, .map = true },
	{ .rp.kp.symbol_name = "tdh_mem_range_block", .leaf = TDH_MEM_RANGE_BLOCK },
	{ .rp.kp.symbol_name = "tdh_mem_track", .leaf = TDH_MEM_TRACK },
	{ .rp.kp.symbol_name = "tdh_mem_page_remove", .leaf = TDH_MEM_PAGE_REMOVE },
};
#define TSG_NR_LEAF_PROBES ARRAY_SIZE(tsg_leaf_probes)

/*
 * The TD whose struct tdx_td is @td: KVM embeds both in its struct kvm_tdx.
 * Pointer arithmetic only: the result is a key for the per-VM table, never
 * dereferenced here.
 */
static struct kvm *tsg_td_kvm(struct tdx_td *td)
{
	return &container_of(td, struct kvm_tdx, td)->kvm;
}

/*
 * The SEAMCALL wrapper of leaf @leaf (TDH_*) returned @status for @td after
 * @ns (U64_MAX: not timed): record the time, and keep the status (map
 * leaves) or count it (unmap leaves).
 */
void tsg_kvm_leaf_status(struct tdx_td *td, u64 leaf, u64 status, u64 ns)
{
	if (ns != U64_MAX)
		tsg_kvm_leaf_time(tsg_td_kvm(td), leaf, ns);
	switch (leaf) {
	case TDH_MEM_PAGE_AUG:
	case TDH_MEM_SEPT_ADD:
	case TDH_MEM_PAGE_ADD:
		this_cpu_write(tsg_last_map_status, status);
		break;
	default:
		tsg_kvm_tdh_returned(leaf, status);
	}
}

/* A timed call of a wrapper, in its kretprobe instance's data. */
struct tsg_leaf_call {
	struct tdx_td *td;
	u64 start_ns;
};

static int tsg_leaf_entered(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	struct tsg_leaf_call *c = (struct tsg_leaf_call *)ri->data;

	c->td = (struct tdx_td *)regs_get_kernel_argument(regs, 0);
	c->start_ns = local_clock();
	return 0;
}

static int tsg_leaf_returned(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	struct tsg_leaf_probe *p = container_of(get_kretprobe(ri), struct tsg_leaf_probe, rp);
	struct tsg_leaf_call *c = (struct tsg_leaf_call *)ri->data;
	u64 now;

	if (p->rp.entry_handler) {
		/*
		 * A wrapper preempted and resumed on another CPU reads two
		 * CPUs' clocks, which may disagree slightly: never negative.
		 */
		now = local_clock();
		tsg_kvm_leaf_status(c->td, p->leaf, regs_return_value(regs),
				    now > c->start_ns ? now - c->start_ns : 0);
	} else {
		tsg_kvm_leaf_status(NULL, p->leaf, regs_return_value(regs), U64_MAX);
	}
	return 0;
}

/*
 * Registers the probes, timing the wrappers if @timed; returns how many of
 * them could be placed.
 */
unsigned int tsg_kvm_leaf_probes_register(bool timed)
{
	unsigned int i, n = 0;

	guard(mutex)(&tsg_probe_lock);
	for (i = 0; i < TSG_NR_LEAF_PROBES; i++) {
		struct tsg_leaf_probe *p = &tsg_leaf_probes[i];

		p->rp.handler = tsg_leaf_returned;
		p->rp.entry_handler = timed ? tsg_leaf_entered : NULL;
		p->rp.data_size = timed ? sizeof(struct tsg_leaf_call) : 0;
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
