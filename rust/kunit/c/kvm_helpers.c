// SPDX-License-Identifier: GPL-2.0
/* The shipped module's kvm/helpers.c, compiled again for the test module (see rust/Kbuild). */
#include "../../kvm/helpers.c"
