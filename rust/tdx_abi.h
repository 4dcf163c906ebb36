/* SPDX-License-Identifier: GPL-2.0 */
#ifndef TDX_SEPT_GUARD_TDX_ABI_H
#define TDX_SEPT_GUARD_TDX_ABI_H

#include <linux/types.h>

/* One named constant; the table ends with a NULL name. */
struct tsg_abi_const {
	const char *name;
	u64 value;
};

extern const struct tsg_abi_const tsg_kernel_tdx_abi[];

#endif
