// Choosing and sharing the connection to xkbusd. See open.hpp.
#include "xen_guest.hpp"

#include <cstdlib>
#include <mutex>
#include <unistd.h>
#include <vector>
#include <xkbus/frontend/open.hpp>
#include <xkbus/frontend/poll_signal.hpp>
#include <xkbus/ring/local/local_transport.hpp>
#include <xkbus/ring/ring_link.hpp>
#include <xkbus/socket/socket_link.hpp>

namespace xkbus::frontend {

namespace {

class PollReadiness final : public ReadinessSignal {
public:
    explicit PollReadiness(std::unique_ptr<PollSignal> signal) : m_signal(std::move(signal)) {}
    int fd() const noexcept override { return m_signal->fd(); }
    void messageQueued() override { m_signal->messageQueued(); }
    void messageTaken() override { m_signal->messageTaken(); }
    void setSending(bool blocked) override { m_signal->setSending(blocked); }

private:
    std::unique_ptr<PollSignal> m_signal;
};

// No grant budget on one host: rings big enough that a 64 KiB message
// crosses in one piece (a guest keeps the 4 KiB default, docs/ring.md).
ring::FrontendOptions localRingOptions() {
    ring::FrontendOptions options;
    options.toBackendOrder = 16;
    options.toFrontendOrder = 16;
    return options;
}

} // namespace

SignalFactory pollSignals() {
    return []() -> std::unique_ptr<ReadinessSignal> {
        auto signal = PollSignal::create();
        return signal ? std::make_unique<PollReadiness>(std::move(*signal)) : nullptr;
    };
}

std::string defaultSocketPath() {
    const char* env = std::getenv("XKBUS_SOCKET");
    return env != nullptr && *env != '\0' ? std::string(env) : std::string(DEFAULT_SOCKET_PATH);
}

Result<std::shared_ptr<Connection>> connectLocal(const std::string& path) {
    auto socket = socket::connectUnix(path);
    if (!socket) {
        return fail(socket.error());
    }
    // The ring keeps its own duplicate of the socket: it watches it for the
    // daemon's death and takes the Ksocks' fds from it.
    auto ring = ring::local::connectFrontend(socket->get(), localRingOptions());
    if (!ring) {
        return fail(ring.error());
    }
    return Connection::start(std::make_unique<ring::RingLink>(std::move(*ring)),
                             static_cast<uint32_t>(::getpid()));
}

Result<std::shared_ptr<Connection>> connectDefault() {
    if (!inXenGuest()) {
        return connectLocal(defaultSocketPath());
    }
    auto link = connectXenGuest();
    if (!link) {
        return fail(link.error());
    }
    // dom0 cannot hand a guest descriptors: the library keeps the Ksocks' fds.
    return Connection::start(std::move(*link), static_cast<uint32_t>(::getpid()), pollSignals());
}

Result<std::unique_ptr<KsockChannel>> openDefaultKsock(uint32_t bus, bool writable) {
    static std::mutex mutex;
    static std::shared_ptr<Connection> shared;
    // A forked child keeps its parent's connection alive but never uses it:
    // closing it would clear the ring's status byte the parent still uses.
    static std::vector<std::shared_ptr<Connection>> inherited;
    static pid_t owner = 0;
    std::lock_guard lock(mutex);
    for (int attempt = 0; attempt < 2; ++attempt) {
        if (shared && owner != ::getpid()) {
            inherited.push_back(std::move(shared));
        }
        if (!shared) {
            auto connected = connectDefault();
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
