// How long a waiting client polls its ring before it sleeps, for both
// transports: XKBUS_SPIN_US in the environment (docs/performance.md, "Wake
// strategy"), else the ring's default. 0 never spins; a process confined to
// one CPU never spins whatever it says (ring::spinWhereUseful).
#pragma once

#include <xkbus/ring/connection.hpp>

namespace xkbus::frontend {

ring::SpinPolicy clientSpin();

} // namespace xkbus::frontend
