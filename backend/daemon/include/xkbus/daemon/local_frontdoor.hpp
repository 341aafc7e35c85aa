// How local clients reach xkbusd: a Unix socket on which each client hands
// over the pages and eventfd of its ring (ring::local), and a second one
// for trusted clients (Limpets, which may send SYNTHETIC messages). A
// completed handshake becomes a peer of the hub.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <xkbus/common/unique_fd.hpp>
#include <xkbus/daemon/event_loop.hpp>
#include <xkbus/daemon/peer_hub.hpp>

namespace spdlog {
class logger;
}

namespace xkbus::daemon {

struct LocalDoorOptions {
    std::string socketPath;
    std::string trustedSocketPath; // empty: none
    ring::BackendOptions ring;
    size_t maxPendingHandshakes = 128;
};

class LocalFrontdoor {
public:
    LocalFrontdoor(EventLoop& loop, PeerSink sink, LocalDoorOptions options,
                   std::shared_ptr<spdlog::logger> log);
    ~LocalFrontdoor();
    LocalFrontdoor(const LocalFrontdoor&) = delete;
    LocalFrontdoor& operator=(const LocalFrontdoor&) = delete;

    // Listens on the socket(s).
    Result<void> start();
    // Stops listening and removes the socket files.
    void stop();

private:
    struct Handshake {
        UniqueFd socket;
        uint32_t pid = 0;
        bool trusted = false;
        Tenant tenant; // from SO_PEERCRED at accept
    };

    Result<UniqueFd> listen(const std::string& path, bool trusted);
    void acceptAll(int listener, bool trusted);
    void continueHandshake(int fd);

    EventLoop& m_loop;
    PeerSink m_sink;
    LocalDoorOptions m_options;
    std::shared_ptr<spdlog::logger> m_log;
    UniqueFd m_listener;
    UniqueFd m_trustedListener;
    std::unordered_map<int, Handshake> m_handshakes;
};

} // namespace xkbus::daemon
