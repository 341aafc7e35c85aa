// The process-wide channel factory behind kbus_ksock_open.
#include "channel_factory_internal.hpp"

#include <mutex>
#include <xkbus/frontend/open.hpp>

namespace xkbus::frontend {

namespace {

std::mutex& factoryMutex() {
    static auto* mutex = new std::mutex;
    return *mutex;
}

// Until a process installs its own, Ksocks come from the daemon, the way an
// unchanged libkbus program expects kbus_ksock_open to work.
ChannelFactory& installedFactory() {
    static auto* factory = new ChannelFactory(openDefaultKsock);
    return *factory;
}

} // namespace

void setChannelFactory(ChannelFactory factory) {
    std::lock_guard lock(factoryMutex());
    installedFactory() = std::move(factory);
}

Result<std::unique_ptr<KsockChannel>> openChannel(uint32_t bus, bool writable) {
    ChannelFactory factory;
    {
        std::lock_guard lock(factoryMutex());
        factory = installedFactory();
    }
    if (!factory) {
        return fail(Errc::NO_SUCH_DEVICE);
    }
    return factory(bus, writable);
}

} // namespace xkbus::frontend
