/* SPDX-License-Identifier: GPL-2.0 */
/*
 * KVM's internal TDX types, included in the order arch/x86/kvm/vmx/tdx.c
 * includes them (Kbuild adds -I$(srctree)/arch/x86/kvm{,/vmx}). Used by
 * helpers.c and, through bindgen, by bindings.rs.
 */
#include <linux/cpu.h>
#include <asm/cpufeature.h>
#include <linux/misc_cgroup.h>
#include <linux/mmu_context.h>
#include <asm/tdx.h>
#include "capabilities.h"
#include "mmu.h"
#include "x86_ops.h"
#include "lapic.h"
#include "tdx.h"
#include "vmx.h"
#include "mmu/spte.h"
#include "common.h"
