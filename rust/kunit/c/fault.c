// SPDX-License-Identifier: GPL-2.0
/* The shipped module's platform/fault.c, compiled again for the test module (see rust/Kbuild). */
#include "../../platform/fault.c"
