/* The libkbus C API under its xkbus name. KBUS programs include it as
 * <libkbus/kbus.h> (see docs/c-api.md); both are the same header. */
#ifndef XKBUS_KBUS_H_INCLUDED
#define XKBUS_KBUS_H_INCLUDED

#include "compat/libkbus/kbus.h"

#endif /* XKBUS_KBUS_H_INCLUDED */
