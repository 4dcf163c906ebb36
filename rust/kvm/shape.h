/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The hook shape: how the target kernel's KVM hands a TD's S-EPT changes to
 * its TDX code, as far as this module depends on it. It is read from what
 * the kernel being built against declares, not from its version number:
 * each assertion below fails the build with one line naming what differs.
 *
 * Known shapes (rust/kvm/shape.rs names the functions of the one this
 * build follows; Documentation/usage.rst has the support table):
 *
 * "external-spte" (KVM 7.2, 7.3; built and tested here)
 *	kvm_x86_ops.set_external_spte(kvm, gfn, old_spte, new_spte, level) is
 *	the one op for a private SPTE's map and remove, called with the mirror
 *	SPTE frozen (FROZEN_SPTE) and mmu_lock held; TDX implements it in
 *	tdx_sept_set_private_spte(), which the module redirects (attach checks
 *	at run time that the op points there). kvm_x86_ops.vm_init(kvm)
 *	creates a VM (vt_vm_init(), redirected for per-VM state).
 *
 * "set-level-mirror" (KVM 6.19 to 7.1; not supported)
 *	set_external_spte(kvm, gfn, level, mirror_spte) maps only; removal is
 *	remove_external_spte(), whose BLOCK/TRACK/REMOVE KVM already kicks and
 *	retries once itself (tdh_do_no_vcpus()). Supporting it would take a
 *	second replacement prototype and map-only redirection.
 *
 * "set-level-pfn" (KVM 6.16 to 6.18; not supported)
 *	set_external_spte(kvm, gfn, level, pfn), static from 6.17.
 */
#ifndef TDX_SEPT_GUARD_KVM_SHAPE_H
#define TDX_SEPT_GUARD_KVM_SHAPE_H

#include <linux/build_bug.h>
#include <linux/kvm_host.h>

/* The prototype of kvm_x86_ops.set_external_spte, and so of the function redirected. */
typedef int tsg_set_external_spte_t(struct kvm *kvm, gfn_t gfn, u64 old_spte, u64 new_spte,
				    enum pg_level level);
/* The prototype of kvm_x86_ops.vm_init. */
typedef int tsg_vm_init_t(struct kvm *kvm);

static_assert(__same_type(((struct kvm_x86_ops *)NULL)->set_external_spte,
			  tsg_set_external_spte_t *),
	      "unknown hook shape: kvm_x86_ops.set_external_spte is not int (*)(struct kvm *, gfn_t, u64 old_spte, u64 new_spte, enum pg_level), the external-spte shape of KVM 7.2 and 7.3 (rust/kvm/shape.h)");
static_assert(__same_type(((struct kvm_x86_ops *)NULL)->vm_init, tsg_vm_init_t *),
	      "unknown hook shape: kvm_x86_ops.vm_init is not int (*)(struct kvm *) (rust/kvm/shape.h)");

#endif
