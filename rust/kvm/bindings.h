/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What bindgen gives Rust (rust/kvm/bindings.rs): KVM's internal TDX types
 * (kvm_internal.h) and the C functions of the backend (helpers.h), so that
 * no prototype is copied by hand.
 */
#include "kvm_internal.h"
#include "helpers.h"
