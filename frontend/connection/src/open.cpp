// Choosing and sharing the connection to xkbusd. See open.hpp.
#include <cstdlib>
#include <mutex>
#include <unistd.h>
#include <xkbus/frontend/open.hpp>
#include <xkbus/socket/socket_link.hpp>

namespace xkbus::frontend {

std::string defaultSocketPath() {
    const char* env = std::getenv("XKBUS_SOCKET");
    return env != nullptr && *env != '\0' ? std::string(env) : std::string(DEFAULT_SOCKET_PATH);
}

Result<std::shared_ptr<Connection>> connectLocal(const std::string& path) {
    auto link = socket::SocketLink::connectTo(path);
    if (!link) {
        return fail(link.error());
    }
    return Connection::start(std::move(*link), static_cast<uint32_t>(::getpid()));
}

Result<std::unique_ptr<KsockChannel>> openDefaultKsock(uint32_t bus, bool writable) {
    static std::mutex mutex;
    static std::shared_ptr<Connection> shared;
    static pid_t owner = 0;
    std::lock_guard lock(mutex);
    for (int attempt = 0; attempt < 2; ++attempt) {
        // A forked child must not share its parent's connection.
        if (!shared || owner != ::getpid()) {
            auto connected = connectLocal(defaultSocketPath());
            if (!connected) {
                return fail(connected.error());
            }
            shared = std::move(*connected);
            owner = ::getpid();
        }
        auto ksock = shared->openKsock(bus, writable);
        if (ksock || ksock.error() != Errc::DISCONNECTED) {
            return ksock;
        }
        shared.reset(); // the daemon restarted: connect again, once
    }
    return fail(Errc::DISCONNECTED);
}

} // namespace xkbus::frontend
