/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The KVM backend's C side: what Rust cannot do or reach for an out-of-tree
 * module (kprobe symbol lookup, ftrace function redirection, KVM's macros
 * and static inlines). bindgen generates the Rust declarations from this
 * header at build time (rust/kvm/bindings.h, scripts/bindgen.sh).
 */
#ifndef TDX_SEPT_GUARD_KVM_HELPERS_H
#define TDX_SEPT_GUARD_KVM_HELPERS_H

#include <linux/types.h>

struct kvm;
struct kvm_vcpu;
struct tsg_redirect;

unsigned long tsg_kvm_lookup(const char *name);
bool tsg_kvm_ibt_enabled(void);
bool tsg_kvm_has_endbr(unsigned long addr);
bool tsg_kvm_fineibt_guarded(unsigned long addr);
bool tsg_kvm_ftrace_jumps_to_list_func(void);
bool tsg_kvm_tdx_host_platform(void);
int tsg_kvm_tdx_param(void);
int tsg_kvm_nr_vms(void);
unsigned long tsg_kvm_external_spte_op(void);

struct tsg_redirect *tsg_redirect_new(const char *name, unsigned long target,
				      unsigned long replacement);
int tsg_redirect_enable(struct tsg_redirect *r);
void tsg_redirect_disable(struct tsg_redirect *r);
void tsg_redirect_free(struct tsg_redirect *r);
int tsg_kvm_watch_owner(struct tsg_redirect *r, struct tsg_redirect *create);
void tsg_kvm_unwatch_owner(void);
bool tsg_kvm_vendor_is_module(void);
int tsg_kvm_vendor_watch(void);
void tsg_kvm_vendor_unwatch(void);

int tsg_kvm_call_set_private_spte(unsigned long fn, struct kvm *kvm, u64 gfn, u64 old_spte,
				  u64 new_spte, int level, u64 *status);
unsigned int tsg_kvm_leaf_probes_register(bool timed);
struct tdx_td;
void tsg_kvm_leaf_status(struct tdx_td *td, u64 leaf, u64 status, u64 ns);
bool tsg_kvm_destroy_probe_register(void);
bool tsg_kvm_tracepoints_register(void);
void tsg_kvm_tracepoints_unregister(void);
struct kvm *tsg_kvm_vcpu_kvm(struct kvm_vcpu *vcpu);
void tsg_kvm_destroy_probe_unregister(void);
unsigned long tsg_kvm_destroy_probe_missed(void);
void tsg_kvm_leaf_probes_unregister(void);
unsigned long tsg_kvm_set_private_spte_replacement(void);
unsigned long tsg_kvm_vm_init_replacement(unsigned long orig);
void tsg_kvm_vm_init_quiesce(void);

const void *tsg_vm_lookup(struct kvm *kvm, bool *known);
int tsg_vm_insert(struct kvm *kvm, const void *state);
const void *tsg_vm_remove(struct kvm *kvm);
bool tsg_vm_remove_any(const void **state);
int tsg_kvm_for_each_new_td(bool (*fn)(struct kvm *kvm, void *data), void *data);
void tsg_vm_for_each(void (*fn)(const void *state, void *data), void *data);
unsigned int tsg_kvm_max_vcpus(struct kvm *kvm);
void tsg_kvm_synchronize_rcu(void);
unsigned int tsg_kvm_online_vcpus(struct kvm *kvm);
struct kvm_vcpu *tsg_kvm_get_vcpu(struct kvm *kvm, unsigned int i);
int tsg_kvm_vcpu_exiting_guest_mode(struct kvm_vcpu *vcpu);
void tsg_kvm_request_vm_dead(struct kvm_vcpu *vcpu);
bool tsg_kvm_is_shadow_present(u64 spte);
bool tsg_kvm_is_last_spte(u64 spte, int level);

/* For the KUnit suite (fake_td.c, and helpers.c built for the test module). */
struct list_head;
struct mutex;
void tsg_fake_vm_list_set(struct list_head *list, struct mutex *lock);
void tsg_fake_external_spte_op_set(unsigned long op);
int tsg_fake_vendor_event(const char *name, bool live);
struct kvm *tsg_fake_td_new(unsigned int nr_vcpus, const unsigned int *cpus);
void tsg_fake_td_free(struct kvm *kvm);
void tsg_fake_td_read_lock(struct kvm *kvm);
void tsg_fake_td_read_unlock(struct kvm *kvm);
void tsg_fake_td_write_lock(struct kvm *kvm);
void tsg_fake_td_write_unlock(struct kvm *kvm);
bool tsg_fake_vcpu_enter(struct kvm_vcpu *vcpu);
bool tsg_fake_vcpu_kicked(struct kvm_vcpu *vcpu);
void tsg_fake_vcpu_exit(struct kvm_vcpu *vcpu);
bool tsg_fake_vcpu_vm_dead_requested(struct kvm_vcpu *vcpu);
bool tsg_fake_fail_nth(unsigned int n);
bool tsg_fake_fail_nth_pending(void);
void tsg_fake_td_listed(struct kvm *kvm, bool on);
int tsg_fake_td_vm_init(unsigned long fn, struct kvm *kvm);
int tsg_fake_counting_ops_register(unsigned long target);
unsigned int tsg_fake_counting_ops_unregister(void);
unsigned long tsg_fake_seamcall_wrapper(unsigned int i, const char **name);
int tsg_fake_td_set_private_spte(unsigned long fn, struct kvm *kvm, u64 gfn, u64 old_spte,
				 u64 new_spte, int level);
u64 tsg_fake_present_leaf_spte(u64 pfn);
u64 tsg_fake_nonpresent_spte(void);
void tsg_fake_trace_page_fault(struct kvm_vcpu *vcpu, u64 gpa);
void tsg_fake_trace_busy_enter(struct kvm_vcpu *vcpu, u64 status);
void tsg_fake_trace_exit(struct kvm_vcpu *vcpu, u64 status, bool ept_violation);
void tsg_fake_preempt_disable(void);
void tsg_fake_preempt_enable(void);
u64 tsg_fake_now_ns(void);

#endif
