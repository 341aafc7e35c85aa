// How kbus_ksock_open reaches a bus: a factory that opens a KsockChannel. By
// default it is openDefaultKsock (the daemon at $XKBUS_SOCKET or the default
// path); tests install a fake. With the factory removed, kbus_ksock_open fails
// with -ENOENT, as opening a missing /dev/kbusN would.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <xkbus/common/result.hpp>
#include <xkbus/frontend/ksock_channel.hpp>

namespace xkbus::frontend {

// Opens a Ksock on bus `bus`, read-write or read-only. The channel's fd() must
// be a valid descriptor, distinct from every other open channel's, that stays
// open until the channel is destroyed: it is the Ksock the C API hands out.
using ChannelFactory =
    std::function<Result<std::unique_ptr<KsockChannel>>(uint32_t bus, bool writable)>;

// Replaces the process-wide factory (an empty function removes it). Ksocks
// already open keep their channels. Thread-safe.
void setChannelFactory(ChannelFactory factory);

} // namespace xkbus::frontend
