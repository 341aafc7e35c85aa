// xkbusd's event loop: takes local clients' rings (handed over on a Unix
// socket) and, with --xen, guests' rings (set up through xenstore), moves
// records between them and the Dispatcher, keeps each local Ksock's pollable
// fd in step with its queue, and stops cleanly on SIGTERM or SIGINT. One
// thread; it never blocks on a peer.
#pragma once

#include <memory>
#include <string>
#include <xkbus/common/result.hpp>
#include <xkbus/daemon/dispatcher.hpp>
#include <xkbus/ring/connection.hpp>

namespace spdlog {
class logger;
}

namespace xkbus::daemon {

// Where clients look for the daemon unless XKBUS_SOCKET says otherwise.
inline constexpr const char* DEFAULT_SOCKET_PATH = "/run/xkbus/xkbusd.sock";

struct ServerOptions {
    std::string socketPath = DEFAULT_SOCKET_PATH;
    // Clients connecting here are trusted as Limpets (may send SYNTHETIC
    // messages); protect it with file permissions. Empty: none.
    std::string trustedSocketPath;
    bool xen = false;           // also serve Xen guests through xenstore
    uint32_t slotsPerGuest = 0; // device slots each new guest gets (0: only provisioned ones)
    uint32_t buses = 1;
    uint64_t maxQueuedBytesPerPeer = 64ull << 20;
    // Records waiting for a client whose ring is full; past this it is not
    // reading, and it is disconnected rather than buffered without bound.
    size_t maxBufferedPerPeer = 64u << 20;
    Quotas quotas;
    ring::BackendOptions ring;
    size_t maxRecordsPerWakeup = 256; // per peer, so one busy peer cannot starve the rest
};

class Server {
public:
    Server(ServerOptions options, std::shared_ptr<spdlog::logger> log);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Listens; then serves until SIGTERM or SIGINT (blocked for the thread
    // that calls it). Returns an error only if it could not start.
    Result<void> run();

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

} // namespace xkbus::daemon
