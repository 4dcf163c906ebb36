// SPDX-License-Identifier: GPL-2.0
/*
 * The trace events of events.h, and the functions Rust fires them with
 * (rust/platform/trace.rs). Each wrapper is the out-of-tree stand-in for
 * what declare_trace! generates: trace_*() tests the tracepoint's static key
 * and records the event only when it is enabled, so a disabled event costs
 * the call and that test. Nothing else lives here.
 */
#define CREATE_TRACE_POINTS
#include "events.h"

notrace void tsg_trace_kick(u64 vm, u32 kicked, u64 wait_ns, bool ok)
{
	trace_tsg_kick(vm, kicked, wait_ns, ok);
}

notrace void tsg_trace_retry(u64 vm, u32 leaf, u64 gpa, u8 level, u64 status, u32 tries)
{
	trace_tsg_retry(vm, leaf, gpa, level, status, tries);
}

notrace void tsg_trace_zero_step(u64 vm, u32 vcpu, u64 gpa)
{
	trace_tsg_zero_step(vm, vcpu, gpa);
}

/* @reason: a NUL-terminated string that outlives the call. */
notrace void tsg_trace_vm_stop(u64 vm, u32 leaf, u64 status, const char *reason)
{
	trace_tsg_vm_stop(vm, leaf, status, reason);
}
