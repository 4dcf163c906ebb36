// SPDX-License-Identifier: GPL-2.0
/* The shipped module's tdx_abi.c, compiled again for the test module (see rust/Kbuild). */
#include "../../tdx_abi.c"
