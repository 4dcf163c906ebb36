// SPDX-License-Identifier: GPL-2.0
/*
 * The trace events of events.h, and the functions Rust fires them with
 * (rust/platform/trace.rs). Each wrapper is the out-of-tree stand-in for
 * what declare_trace! generates: trace_*() tests the tracepoint's static key
 * and records the event only when it is enabled, so a disabled event costs
 * the call and that test. Below them, for the KUnit suites, probes that
 * record the events as text.
 */
#include <linux/kernel.h>
#include <linux/spinlock.h>
#include <linux/string.h>

#include "helpers.h"

#define CREATE_TRACE_POINTS
#include "events.h"

notrace void tsg_trace_kick(u64 vm, u32 kicked, u64 wait_ns, bool ok, bool injected)
{
	trace_tsg_kick(vm, kicked, wait_ns, ok, injected);
}

notrace void tsg_trace_retry(u64 vm, u32 leaf, u64 gpa, u8 level, u64 status, u32 tries,
			     bool injected)
{
	trace_tsg_retry(vm, leaf, gpa, level, status, tries, injected);
}

notrace void tsg_trace_zero_step(u64 vm, u32 vcpu, u64 gpa)
{
	trace_tsg_zero_step(vm, vcpu, gpa);
}

/* @reason: a NUL-terminated string that outlives the call. */
notrace void tsg_trace_vm_stop(u64 vm, u32 leaf, u64 status, const char *reason, bool injected)
{
	trace_tsg_vm_stop(vm, leaf, status, reason, injected);
}

#ifdef TSG_TESTS
/*
 * For the KUnit suites: probes on the four tracepoints that write the
 * events of one VM (of every VM if vm is 0) as text lines, one per event,
 * with every field but vm and wait_ns (which varies); leaf is the number,
 * and injected is a trailing " injected" when set (nothing when not, so
 * that the lines of real busies read as they always did).
 * One recording at a time (rust/platform/trace.rs sees to it).
 */
static DEFINE_SPINLOCK(tsg_rec_lock);
static char tsg_rec_buf[1024];
static size_t tsg_rec_len;
static u64 tsg_rec_vm;

static __printf(2, 3) void tsg_rec(u64 vm, const char *fmt, ...)
{
	unsigned long flags;
	va_list args;

	if (tsg_rec_vm && vm != tsg_rec_vm)
		return;
	spin_lock_irqsave(&tsg_rec_lock, flags);
	va_start(args, fmt);
	tsg_rec_len += vscnprintf(tsg_rec_buf + tsg_rec_len, sizeof(tsg_rec_buf) - tsg_rec_len,
				  fmt, args);
	va_end(args);
	spin_unlock_irqrestore(&tsg_rec_lock, flags);
}

/* The injected=1 of an event is shown as " injected"; injected=0 as nothing. */
static const char *tsg_rec_injected(bool injected)
{
	return injected ? " injected" : "";
}

static void tsg_rec_kick(void *data, u64 vm, u32 kicked, u64 wait_ns, bool ok, bool injected)
{
	tsg_rec(vm, "kick kicked=%u ok=%d%s\n", kicked, ok, tsg_rec_injected(injected));
}

static void tsg_rec_retry(void *data, u64 vm, u32 leaf, u64 gpa, u8 level, u64 status, u32 tries,
			  bool injected)
{
	tsg_rec(vm, "retry leaf=%u gpa=0x%llx level=%u status=0x%llx tries=%u%s\n", leaf, gpa,
		level, status, tries, tsg_rec_injected(injected));
}

static void tsg_rec_zero_step(void *data, u64 vm, u32 vcpu, u64 gpa)
{
	tsg_rec(vm, "zero_step vcpu=%u gpa=0x%llx\n", vcpu, gpa);
}

static void tsg_rec_vm_stop(void *data, u64 vm, u32 leaf, u64 status, const char *reason,
			    bool injected)
{
	tsg_rec(vm, "vm_stop leaf=%u status=0x%llx reason=%s%s\n", leaf, status, reason,
		tsg_rec_injected(injected));
}

/* Starts recording the events of VM @vm (0: of every VM). */
int tsg_trace_record_start(u64 vm)
{
	int ret;

	tsg_rec_vm = vm;
	tsg_rec_len = 0;
	tsg_rec_buf[0] = '\0';
	ret = register_trace_tsg_kick(tsg_rec_kick, NULL);
	if (ret)
		return ret;
	ret = register_trace_tsg_retry(tsg_rec_retry, NULL);
	if (ret)
		goto kick;
	ret = register_trace_tsg_zero_step(tsg_rec_zero_step, NULL);
	if (ret)
		goto retry;
	ret = register_trace_tsg_vm_stop(tsg_rec_vm_stop, NULL);
	if (ret)
		goto zero_step;
	return 0;

zero_step:
	unregister_trace_tsg_zero_step(tsg_rec_zero_step, NULL);
retry:
	unregister_trace_tsg_retry(tsg_rec_retry, NULL);
kick:
	unregister_trace_tsg_kick(tsg_rec_kick, NULL);
	tracepoint_synchronize_unregister();
	return ret;
}

/* Stops recording; copies the lines to @buf (@size bytes, NUL-terminated). */
void tsg_trace_record_stop(char *buf, size_t size)
{
	unregister_trace_tsg_vm_stop(tsg_rec_vm_stop, NULL);
	unregister_trace_tsg_zero_step(tsg_rec_zero_step, NULL);
	unregister_trace_tsg_retry(tsg_rec_retry, NULL);
	unregister_trace_tsg_kick(tsg_rec_kick, NULL);
	/* No probe runs after this. */
	tracepoint_synchronize_unregister();
	strscpy(buf, tsg_rec_buf, size);
}
#endif
