// SPDX-License-Identifier: GPL-2.0
/*
 * A fixed loop, timed by `make bench` in the guest kernel under QEMU's TCG
 * (the KVM benchmark suite, rust/kvm/bench.rs) and natively on the host
 * (scripts/calibrate-host.c, which compiles this file too): the ratio of
 * the two times is the emulation slowdown of this run.
 *
 * Each iteration loads a word of a 4 KiB table at an index taken from the
 * running value, mixes it in (xor, multiply, add, shift), and stores the
 * value back: a chain of dependent loads, stores and integer operations
 * that no compiler can fold, vectorise or run in parallel; the empty asm
 * with a memory clobber keeps every iteration's load and store. The
 * result is a checksum: the guest and the host print it, and it must be
 * the same (the same computation ran).
 */
#include "calibrate.h"

#define TSG_CALIBRATE_WORDS 512

static u64 tsg_calibrate_table[TSG_CALIBRATE_WORDS];

__attribute__((__noinline__)) u64 tsg_calibrate_loop(u64 iterations)
{
	u64 x = 0x9e3779b97f4a7c15ULL;
	u64 i;

	for (i = 0; i < TSG_CALIBRATE_WORDS; i++)
		tsg_calibrate_table[i] = i;
	for (i = 0; i < iterations; i++) {
		u64 *slot = &tsg_calibrate_table[(x >> 7) & (TSG_CALIBRATE_WORDS - 1)];

		x ^= *slot;
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		x ^= x >> 29;
		*slot = x;
		__asm__ __volatile__("" : "+r"(x) : : "memory");
	}
	return x;
}
