// SPDX-License-Identifier: GPL-2.0
/*
 * For the KUnit suite only: a fake TD as KVM would allocate it, with fake
 * vCPUs driven by the simulator's threads, and stand-ins for the SEAMCALL
 * wrappers that send each S-EPT SEAMCALL to the simulated TDX module. With
 * these, the suite runs KVM 7.2's real tdx_sept_set_private_spte() (and
 * tdh_do_no_vcpus(), kvm_make_all_cpus_request(), ...) without TDX hardware.
 */
#include <linux/ftrace.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/sched/clock.h>
#include <linux/vmalloc.h>

#include "kvm_internal.h"
#include "shape.h"
#include "trace.h"
#include "vmx/tdx/tdx.h"
#include "helpers.h"



/* tdx.c's own to_kvm_tdx() and to_tdx() are local to it. */
static struct kvm_tdx *fake_to_kvm_tdx(struct kvm *kvm)
{
	return container_of(kvm, struct kvm_tdx, kvm);
}

static struct vcpu_tdx *fake_to_tdx(struct kvm_vcpu *vcpu)
{
	return container_of(vcpu, struct vcpu_tdx, vcpu);
}

struct kvm *tsg_fake_td_new(unsigned int nr_vcpus, const unsigned int *cpus)
{
	struct kvm_tdx *kvm_tdx = kvzalloc(sizeof(*kvm_tdx), GFP_KERNEL_ACCOUNT);
	struct kvm *kvm;
	unsigned int i;

	if (!kvm_tdx)
		return NULL;
	kvm = &kvm_tdx->kvm;
	rwlock_init(&kvm->mmu_lock);
	xa_init(&kvm->vcpu_array);
	kvm_tdx->state = TD_STATE_RUNNABLE;
	kvm_tdx->hkid = 1;
	/* The VMM's reference, so that kvm_get_kvm_safe() takes one. */
	refcount_set(&kvm->users_count, 1);
	INIT_LIST_HEAD(&kvm->vm_list);
	/* A TD, whose shared bit is GPA bit 47: lower GPAs are private. */
	kvm->arch.vm_type = KVM_X86_TDX_VM;
	kvm->arch.gfn_direct_bits = gpa_to_gfn(BIT_ULL(47));
	/* As tdx_vm_init() limits it: no more than the present CPUs. */
	kvm->max_vcpus = nr_vcpus;
	for (i = 0; i < nr_vcpus; i++) {
		struct vcpu_tdx *tdx = kzalloc(sizeof(*tdx), GFP_KERNEL_ACCOUNT);

		if (!tdx || xa_store(&kvm->vcpu_array, i, &tdx->vcpu, GFP_KERNEL)) {
			kfree(tdx);
			tsg_fake_td_free(kvm);
			return NULL;
		}
		tdx->vcpu.kvm = kvm;
		tdx->vcpu.vcpu_id = i;
		tdx->vcpu.vcpu_idx = i;
		tdx->vcpu.cpu = cpus[i];
		tdx->vcpu.mode = OUTSIDE_GUEST_MODE;
		atomic_set(&kvm->online_vcpus, i + 1);
	}
	return kvm;
}

void tsg_fake_td_free(struct kvm *kvm)
{
	struct kvm_vcpu *vcpu;
	unsigned long i;

	if (!kvm)
		return;
	xa_for_each(&kvm->vcpu_array, i, vcpu)
		kfree(fake_to_tdx(vcpu));
	xa_destroy(&kvm->vcpu_array);
	kvfree(fake_to_kvm_tdx(kvm));
}

void tsg_fake_td_read_lock(struct kvm *kvm)
{
	read_lock(&kvm->mmu_lock);
}

void tsg_fake_td_read_unlock(struct kvm *kvm)
{
	read_unlock(&kvm->mmu_lock);
}

void tsg_fake_td_write_lock(struct kvm *kvm)
{
	write_lock(&kvm->mmu_lock);
}

void tsg_fake_td_write_unlock(struct kvm *kvm)
{
	write_unlock(&kvm->mmu_lock);
}

/*
 * The fake vCPU's side of vcpu_enter_guest() and tdx_vcpu_run(): publish
 * IN_GUEST_MODE with a full barrier, then refuse to enter while
 * wait_for_sept_zap is set. Call with interrupts off. Returns whether the
 * vCPU entered.
 */
bool tsg_fake_vcpu_enter(struct kvm_vcpu *vcpu)
{
	smp_store_mb(vcpu->mode, IN_GUEST_MODE);
	if (READ_ONCE(fake_to_kvm_tdx(vcpu->kvm)->wait_for_sept_zap)) {
		smp_store_release(&vcpu->mode, OUTSIDE_GUEST_MODE);
		return false;
	}
	return true;
}

/* Whether a kicker asked the vCPU to exit (kvm_vcpu_exiting_guest_mode()). */
bool tsg_fake_vcpu_kicked(struct kvm_vcpu *vcpu)
{
	return READ_ONCE(vcpu->mode) == EXITING_GUEST_MODE;
}

void tsg_fake_vcpu_exit(struct kvm_vcpu *vcpu)
{
	smp_store_release(&vcpu->mode, OUTSIDE_GUEST_MODE);
}


/* Calls tdx_sept_set_private_spte() at @fn as KVM's TDP MMU does (redirected if hooked). */
int tsg_fake_td_set_private_spte(unsigned long fn, struct kvm *kvm, u64 gfn, u64 old_spte,
				 u64 new_spte, int level)
{
	return ((tsg_set_external_spte_t *)fn)(kvm, gfn, old_spte, new_spte, level);
}

/* The SPTE values KVM would pass for a 4K private page at @pfn. */
u64 tsg_fake_present_leaf_spte(u64 pfn)
{
	return (pfn << PAGE_SHIFT) | VMX_EPT_RWX_MASK | SPTE_MMU_PRESENT_MASK;
}

u64 tsg_fake_nonpresent_spte(void)
{
	return SHADOW_NONPRESENT_VALUE;
}

/* What tdx_handle_ept_violation() traces for a private EPT violation. */
void tsg_fake_trace_page_fault(struct kvm_vcpu *vcpu, u64 gpa)
{
	trace_kvm_page_fault(vcpu, gpa, EPT_VIOLATION_ACC_WRITE);
}

/* What tdx_vcpu_run() leaves after a TDH.VP.ENTER that returned @status. */
void tsg_fake_trace_busy_enter(struct kvm_vcpu *vcpu, u64 status)
{
	fake_to_tdx(vcpu)->vp_enter_ret = status;
	trace_kvm_exit(vcpu, KVM_ISA_VMX);
	fake_to_tdx(vcpu)->vp_enter_ret = 0;
}

/*
 * What tdx_vcpu_run() fires after a TDH.VP.ENTER that returned @status:
 * kvm_exit, with vp_enter_ret and the exit reason as KVM has them then (an
 * EPT violation with @ept_violation, else the zeroed reason, which is not
 * one). Call with interrupts off, as KVM fires it.
 */
void tsg_fake_trace_exit(struct kvm_vcpu *vcpu, u64 status, bool ept_violation)
{
	struct vcpu_vt *vt = to_vt(vcpu);
	u32 reason = vt->exit_reason.full;

	if (ept_violation)
		vt->exit_reason.basic = EXIT_REASON_EPT_VIOLATION;
	fake_to_tdx(vcpu)->vp_enter_ret = status;
	trace_kvm_exit(vcpu, KVM_ISA_VMX);
	fake_to_tdx(vcpu)->vp_enter_ret = 0;
	vt->exit_reason.full = reason;
}

/* For the zero-step benchmark's option A, which kicks from a preemptible probe. */
void tsg_fake_preempt_disable(void)
{
	preempt_disable();
}

void tsg_fake_preempt_enable(void)
{
	preempt_enable();
}

/* The monotonic clock, for the suites' gate-held time. */
u64 tsg_fake_now_ns(void)
{
	return ktime_get_ns();
}

/*
 * Makes the @n-th next fault-injection point this task reaches fail (the
 * kernel's fail-nth, as /proc/<pid>/fail-nth sets it): with failslab, the
 * n-th slab allocation. Returns false without CONFIG_FAULT_INJECTION.
 */
bool tsg_fake_fail_nth(unsigned int n)
{
#ifdef CONFIG_FAULT_INJECTION
	WRITE_ONCE(current->fail_nth, n);
	return true;
#else
	return false;
#endif
}

/* Whether this task's fail-nth is still pending: no fault-injection point consumed it. */
bool tsg_fake_fail_nth_pending(void)
{
#ifdef CONFIG_FAULT_INJECTION
	return READ_ONCE(current->fail_nth);
#else
	return false;
#endif
}

/*
 * The suite's stand-in for KVM's VM list: fake TDs put on it are what
 * attaching finds (tsg_kvm_for_each_new_td()), while any is on it.
 */
static LIST_HEAD(tsg_fake_vms);
static DEFINE_MUTEX(tsg_fake_vms_lock);

void tsg_fake_td_listed(struct kvm *kvm, bool on)
{
	bool empty;

	mutex_lock(&tsg_fake_vms_lock);
	if (on)
		list_add(&kvm->vm_list, &tsg_fake_vms);
	else
		list_del_init(&kvm->vm_list);
	empty = list_empty(&tsg_fake_vms);
	mutex_unlock(&tsg_fake_vms_lock);
	if (empty)
		tsg_fake_vm_list_set(NULL, NULL);
	else
		tsg_fake_vm_list_set(&tsg_fake_vms, &tsg_fake_vms_lock);
}

/*
 * Calls vt_vm_init() at @fn on the fake TD as kvm_arch_init_vm() does
 * (redirected while the hook is attached), then puts back what
 * tdx_vm_init() changed that the suite's maps need: a runnable TD.
 */
int tsg_fake_td_vm_init(unsigned long fn, struct kvm *kvm)
{
	tsg_vm_init_t *vm_init = (tsg_vm_init_t *)fn;
	unsigned int max_vcpus = kvm->max_vcpus;
	int ret = vm_init(kvm);

	fake_to_kvm_tdx(kvm)->state = TD_STATE_RUNNABLE;
	kvm->max_vcpus = max_vcpus;
	return ret;
}

/*
 * An ftrace_ops of the suite's own on @target, as a tracer or a BPF fentry
 * program would sit there beside the module's redirect: neither IPMODIFY
 * nor SAVE_REGS, it only counts the calls it sees.
 */
static atomic_t tsg_fake_ops_calls;

static void notrace tsg_fake_ops_count(unsigned long ip, unsigned long parent_ip,
				       struct ftrace_ops *op, struct ftrace_regs *fregs)
{
	atomic_inc(&tsg_fake_ops_calls);
}

static struct ftrace_ops tsg_fake_ops = {
	.func = tsg_fake_ops_count,
	.flags = FTRACE_OPS_FL_RECURSION,
};

int tsg_fake_counting_ops_register(unsigned long target)
{
	int ret = ftrace_set_filter_ip(&tsg_fake_ops, target, 0, 0);

	if (ret)
		return ret;
	atomic_set(&tsg_fake_ops_calls, 0);
	ret = register_ftrace_function(&tsg_fake_ops);
	if (ret)
		ftrace_free_filter(&tsg_fake_ops);
	return ret;
}

/* Removes it; returns the calls it saw. */
unsigned int tsg_fake_counting_ops_unregister(void)
{
	unregister_ftrace_function(&tsg_fake_ops);
	ftrace_free_filter(&tsg_fake_ops);
	return atomic_read(&tsg_fake_ops_calls);
}

bool tsg_fake_vcpu_vm_dead_requested(struct kvm_vcpu *vcpu)
{
	return kvm_test_request(KVM_REQ_VM_DEAD, vcpu);
}

/*
 * In rust/kvm/kunit.rs: runs one SEAMCALL on the simulated TDX module.
 * @leaf: its TDH_* number.
 */
u64 tsg_fake_seamcall(u64 leaf, u64 gpa, int level);

/*
 * A kretprobe cannot sit on a function ftrace redirects (both want its
 * entry), so in the suite the stand-ins report their status and duration
 * themselves, timed as the kretprobes time the wrappers, to the same place
 * the kretprobes report to (probes.c's leaf numbering).
 */
static u64 fake_seamcall(struct tdx_td *td, u64 leaf, u64 gpa, int level)
{
	u64 start = local_clock();
	u64 status = tsg_fake_seamcall(leaf, gpa, level);

	tsg_kvm_leaf_status(td, leaf, status, local_clock() - start);
	return status;
}

static u64 fake_tdh_mem_page_aug(struct tdx_td *td, u64 gpa, enum pg_level level, kvm_pfn_t pfn,
				 u64 *ext_err1, u64 *ext_err2)
{
	*ext_err1 = *ext_err2 = 0;
	return fake_seamcall(td, TDH_MEM_PAGE_AUG, gpa, level);
}

static u64 fake_tdh_mem_sept_add(struct tdx_td *td, u64 gpa, enum pg_level level, struct page *page,
				 u64 *ext_err1, u64 *ext_err2)
{
	*ext_err1 = *ext_err2 = 0;
	return fake_seamcall(td, TDH_MEM_SEPT_ADD, gpa, level);
}

static u64 fake_tdh_mem_range_block(struct tdx_td *td, u64 gpa, enum pg_level level,
				    u64 *ext_err1, u64 *ext_err2)
{
	*ext_err1 = *ext_err2 = 0;
	return fake_seamcall(td, TDH_MEM_RANGE_BLOCK, gpa, level);
}

static u64 fake_tdh_mem_track(struct tdx_td *td)
{
	return fake_seamcall(td, TDH_MEM_TRACK, 0, 0);
}

static u64 fake_tdh_mem_page_remove(struct tdx_td *td, u64 gpa, enum pg_level level,
				    u64 *ext_err1, u64 *ext_err2)
{
	*ext_err1 = *ext_err2 = 0;
	return fake_seamcall(td, TDH_MEM_PAGE_REMOVE, gpa, level);
}

static u64 fake_tdh_phymem_page_wbinvd_hkid(u64 hkid, kvm_pfn_t pfn)
{
	return 0;
}

/* The stand-in for SEAMCALL wrapper @i (0..5), its name in *name. */
unsigned long tsg_fake_seamcall_wrapper(unsigned int i, const char **name)
{
	static const struct {
		const char *name;
		unsigned long fn;
	} table[] = {
		{ "tdh_mem_page_aug", (unsigned long)fake_tdh_mem_page_aug },
		{ "tdh_mem_sept_add", (unsigned long)fake_tdh_mem_sept_add },
		{ "tdh_mem_range_block", (unsigned long)fake_tdh_mem_range_block },
		{ "tdh_mem_track", (unsigned long)fake_tdh_mem_track },
		{ "tdh_mem_page_remove", (unsigned long)fake_tdh_mem_page_remove },
		{ "tdh_phymem_page_wbinvd_hkid", (unsigned long)fake_tdh_phymem_page_wbinvd_hkid },
	};

	if (i >= ARRAY_SIZE(table))
		return 0;
	*name = table[i].name;
	return table[i].fn;
}


