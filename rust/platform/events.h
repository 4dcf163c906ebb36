/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tdx_sept_guard's trace events: events/tdx_sept_guard/ in tracefs (see
 * Documentation/usage.rst, "Trace events").
 *
 * Declared with the kernel's TRACE_EVENT machinery, as in-tree Rust drivers
 * do (drivers/android/binder/rust_binder_events.h). The kernel crate's
 * declare_trace! calls the tracepoints through the kernel's own bindings,
 * which an out-of-tree module cannot extend, so events.c defines one small
 * wrapper per event (declared in helpers.h) and rust/platform/trace.rs
 * calls those. <trace/define_trace.h> reads this file again
 * (TRACE_INCLUDE_PATH below), which its guard lets through
 * (TRACE_HEADER_MULTI_READ).
 *
 * vm is the module's own number for the VM (rust/platform/trace.rs), not a
 * pointer. leaf is the SEAMCALL leaf number (TDH_* from
 * arch/x86/virt/vmx/tdx/tdx.h), shown by its name.
 */

#undef TRACE_SYSTEM
#ifdef TSG_TRACE_SYSTEM
#define TRACE_SYSTEM TSG_TRACE_SYSTEM
#else
#define TRACE_SYSTEM tdx_sept_guard
#endif

#if !defined(_TDX_SEPT_GUARD_EVENTS_H) || defined(TRACE_HEADER_MULTI_READ)
#define _TDX_SEPT_GUARD_EVENTS_H

#include <linux/tracepoint.h>
#include "tdx.h"	/* arch/x86/virt/vmx/tdx/tdx.h: SEAMCALL leaf numbers */

#define tsg_show_leaf(leaf)						\
	__print_symbolic(leaf,						\
			 { TDH_VP_ENTER,	"TDH.VP.ENTER" },	\
			 { TDH_MEM_PAGE_ADD,	"TDH.MEM.PAGE.ADD" },	\
			 { TDH_MEM_SEPT_ADD,	"TDH.MEM.SEPT.ADD" },	\
			 { TDH_MEM_PAGE_AUG,	"TDH.MEM.PAGE.AUG" },	\
			 { TDH_MEM_RANGE_BLOCK,	"TDH.MEM.RANGE.BLOCK" },\
			 { TDH_MEM_PAGE_REMOVE,	"TDH.MEM.PAGE.REMOVE" },\
			 { TDH_MEM_TRACK,	"TDH.MEM.TRACK" })

/*
 * A kick ended: @kicked vCPUs were in guest mode and got an IPI; the kick
 * (marking them exiting, the IPIs, the wait for the acknowledgements) took
 * @wait_ns; @ok is false if some vCPU did not acknowledge before the
 * deadline (the VM is then stopped). @injected: the kick answers a busy
 * status the module's fault injection made up (fail_map_busy,
 * fail_retry_busy); the kick itself is real.
 */
TRACE_EVENT(tsg_kick,
	TP_PROTO(u64 vm, u32 kicked, u64 wait_ns, bool ok, bool injected),
	TP_ARGS(vm, kicked, wait_ns, ok, injected),
	TP_STRUCT__entry(
		__field(u64, vm)
		__field(u64, wait_ns)
		__field(u32, kicked)
		__field(bool, ok)
		__field(bool, injected)
	),
	TP_fast_assign(
		__entry->vm = vm;
		__entry->wait_ns = wait_ns;
		__entry->kicked = kicked;
		__entry->ok = ok;
		__entry->injected = injected;
	),
	TP_printk("vm=%llu kicked=%u wait_ns=%llu ok=%d injected=%d",
		  __entry->vm, __entry->kicked, __entry->wait_ns, __entry->ok,
		  __entry->injected)
);

/*
 * A busy SEAMCALL is about to be issued again: @status is the busy status
 * it returned, @tries the tries made for it so far (the retry is try
 * @tries + 1). @level is KVM's pg_level (1: 4K, 2: 2M). @injected: @status
 * was made up by the module's fault injection, no SEAMCALL returned it.
 */
TRACE_EVENT(tsg_retry,
	TP_PROTO(u64 vm, u32 leaf, u64 gpa, u8 level, u64 status, u32 tries, bool injected),
	TP_ARGS(vm, leaf, gpa, level, status, tries, injected),
	TP_STRUCT__entry(
		__field(u64, vm)
		__field(u64, gpa)
		__field(u64, status)
		__field(u32, leaf)
		__field(u32, tries)
		__field(u8, level)
		__field(bool, injected)
	),
	TP_fast_assign(
		__entry->vm = vm;
		__entry->gpa = gpa;
		__entry->status = status;
		__entry->leaf = leaf;
		__entry->tries = tries;
		__entry->level = level;
		__entry->injected = injected;
	),
	TP_printk("vm=%llu leaf=%s gpa=0x%llx level=%u status=0x%llx tries=%u injected=%d",
		  __entry->vm, tsg_show_leaf(__entry->leaf), __entry->gpa,
		  __entry->level, __entry->status, __entry->tries, __entry->injected)
);

/* vCPU @vcpu's exits engaged the TDX module's zero-step mitigation at @gpa. */
TRACE_EVENT(tsg_zero_step,
	TP_PROTO(u64 vm, u32 vcpu, u64 gpa),
	TP_ARGS(vm, vcpu, gpa),
	TP_STRUCT__entry(
		__field(u64, vm)
		__field(u64, gpa)
		__field(u32, vcpu)
	),
	TP_fast_assign(
		__entry->vm = vm;
		__entry->gpa = gpa;
		__entry->vcpu = vcpu;
	),
	TP_printk("vm=%llu vcpu=%u gpa=0x%llx",
		  __entry->vm, __entry->vcpu, __entry->gpa)
);

/*
 * The VM is stopped (KVM_BUG_ON) after @leaf ended with @status for
 * @reason: busy_after_kick, retries_exhausted, kick_timeout, or error (a
 * status the path cannot go on after). @injected: @status was made up by
 * the module's fault injection.
 */
TRACE_EVENT(tsg_vm_stop,
	TP_PROTO(u64 vm, u32 leaf, u64 status, const char *reason, bool injected),
	TP_ARGS(vm, leaf, status, reason, injected),
	TP_STRUCT__entry(
		__field(u64, vm)
		__field(u64, status)
		__field(u32, leaf)
		__field(bool, injected)
		__string(reason, reason)
	),
	TP_fast_assign(
		__entry->vm = vm;
		__entry->status = status;
		__entry->leaf = leaf;
		__entry->injected = injected;
		__assign_str(reason);
	),
	TP_printk("vm=%llu leaf=%s status=0x%llx reason=%s injected=%d",
		  __entry->vm, tsg_show_leaf(__entry->leaf), __entry->status,
		  __get_str(reason), __entry->injected)
);

#endif /* _TDX_SEPT_GUARD_EVENTS_H */

/*
 * Out of tree, define_trace.h finds this file as <./events.h>: Kbuild adds
 * this directory to the include path (CFLAGS_platform/events.o, rust/Kbuild).
 */
#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE events
#include <trace/define_trace.h>
