// SPDX-License-Identifier: GPL-2.0
/*
 * The host side of `make bench`'s emulation slowdown: runs the loop of
 * rust/kunit/c/calibrate.c (compiled with this file) natively, REPS times,
 * and prints one line with the times on the monotonic clock:
 *
 *   calibrate where=host iterations=N reps=R min_ns=... median_ns=... checksum=...
 *
 * scripts/bench.py divides the guest's time of the same loop by min_ns.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../rust/kunit/c/calibrate.h"

static u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (u64)ts.tv_sec * 1000000000ULL + (u64)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	int reps = argc > 1 ? atoi(argv[1]) : 7;
	u64 ns[64], sum = 0;
	int i;

	if (reps < 1 || reps > 64) {
		fprintf(stderr, "usage: %s [REPS (1-64)]\n", argv[0]);
		return 2;
	}
	for (i = 0; i < reps; i++) {
		u64 start = now_ns();

		sum = tsg_calibrate_loop(TSG_CALIBRATE_ITERATIONS);
		ns[i] = now_ns() - start;
	}
	qsort(ns, reps, sizeof(ns[0]), cmp);
	printf("calibrate where=host iterations=%llu reps=%d min_ns=%llu median_ns=%llu checksum=%llu\n",
	       (unsigned long long)TSG_CALIBRATE_ITERATIONS, reps, (unsigned long long)ns[0],
	       (unsigned long long)ns[reps / 2], (unsigned long long)sum);
	return 0;
}
