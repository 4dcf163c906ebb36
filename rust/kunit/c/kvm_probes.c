// SPDX-License-Identifier: GPL-2.0
/* The shipped module's kvm/probes.c, compiled again for the test module (see rust/Kbuild). */
#include "../../kvm/probes.c"
