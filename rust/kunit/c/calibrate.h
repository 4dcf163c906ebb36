/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The emulation-slowdown loop of `make bench` (calibrate.c): one source,
 * built into the test module and into a native host program
 * (scripts/calibrate-host.c), so that the guest kernel under QEMU's TCG and
 * the host run the same instructions.
 */
#ifndef TSG_CALIBRATE_H
#define TSG_CALIBRATE_H

#ifdef __KERNEL__
#include <linux/types.h>
#else
#include <stdint.h>
typedef uint64_t u64;
#endif

/* Iterations of one timed run: tens of ms natively. */
#define TSG_CALIBRATE_ITERATIONS 20000000ULL

u64 tsg_calibrate_loop(u64 iterations);

#endif
