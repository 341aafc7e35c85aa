// Opening a channel through the installed factory (kbus_ksock_open's half).
#pragma once

#include <xkbus/frontend/channel_factory.hpp>

namespace xkbus::frontend {

// NO_SUCH_DEVICE (ENOENT) when no factory is installed.
Result<std::unique_ptr<KsockChannel>> openChannel(uint32_t bus, bool writable);

} // namespace xkbus::frontend
