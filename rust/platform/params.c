// SPDX-License-Identifier: GPL-2.0
/*
 * The shipped module's string parameters and version: the kernel crate's
 * module! macro only declares integer parameters. Linked into
 * tdx_sept_guard.ko only; the test module takes no parameters.
 */
#include <linux/module.h>
#include <linux/moduleparam.h>

#include "helpers.h"

/* TSG_VERSION comes from Kbuild: one version for modinfo and debugfs. */
MODULE_VERSION(TSG_VERSION);

const char *tsg_version(void)
{
	return TSG_VERSION;
}

/* The kernel crate's module! macro only knows integer parameters. */
static char *mode = "auto";
module_param(mode, charp, 0444);
MODULE_PARM_DESC(mode,
		 "auto (default): attach to KVM TDX if usable, else stay idle; idle: counters only; sim: run the simulated TDX workload (starts one thread per simulated vCPU, each bound to a CPU, and a zap thread); kvm: attach to KVM TDX or fail");

static char *policy = "kick_and_retry";
module_param(policy, charp, 0444);
MODULE_PARM_DESC(policy, "S-EPT SEAMCALL policy: kick_and_retry (default), upstream72 or blind_retry (baselines)");

const char *tsg_mode_param(void)
{
	return mode;
}

const char *tsg_policy_param(void)
{
	return policy;
}
