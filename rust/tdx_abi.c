// SPDX-License-Identifier: GPL-2.0
/*
 * The kernel's own TDX ABI numbers, as its headers define them, so that a
 * KUnit suite can check the policy crate's copies against the kernel the
 * module is built for.
 */
#include <linux/types.h>
#include <asm/shared/tdx_errno.h>
#include <asm/tdx.h>
#include "tdx.h"	/* arch/x86/virt/vmx/tdx/tdx.h: SEAMCALL leaf numbers */

#include "tdx_abi.h"

#define ABI(x) { #x, x }

const struct tsg_abi_const tsg_kernel_tdx_abi[] = {
	ABI(TDX_SUCCESS),
	ABI(TDX_ERROR),
	ABI(TDX_NON_RECOVERABLE),
	ABI(TDX_SEAMCALL_STATUS_MASK),
	ABI(TDX_OPERAND_BUSY),
	ABI(TDX_PREVIOUS_TLB_EPOCH_BUSY),
	ABI(TDX_OPERAND_ID_RCX),
	ABI(TDX_OPERAND_ID_TDR),
	ABI(TDX_OPERAND_ID_SEPT),
	ABI(TDX_OPERAND_ID_TD_EPOCH),
	ABI(TDH_VP_ENTER),
	ABI(TDH_MEM_PAGE_ADD),
	ABI(TDH_MEM_SEPT_ADD),
	ABI(TDH_MEM_PAGE_AUG),
	ABI(TDH_MEM_RANGE_BLOCK),
	ABI(TDH_MEM_PAGE_REMOVE),
	ABI(TDH_MEM_TRACK),
	{ NULL, 0 },
};
