// xkbusd's event loop for local clients: accepts connections on a Unix
// socket, moves records between them and the Dispatcher, keeps each Ksock's
// pollable fd in step with its queue, and stops cleanly on SIGTERM or SIGINT.
// One thread; it never blocks on a peer.
#pragma once

#include <memory>
#include <string>
#include <xkbus/common/result.hpp>
#include <xkbus/daemon/dispatcher.hpp>

namespace spdlog {
class logger;
}

namespace xkbus::daemon {

// Where clients look for the daemon unless XKBUS_SOCKET says otherwise.
inline constexpr const char* DEFAULT_SOCKET_PATH = "/run/xkbus/xkbusd.sock";

struct ServerOptions {
    std::string socketPath = DEFAULT_SOCKET_PATH;
    uint32_t buses = 1;
    uint64_t maxQueuedBytesPerPeer = 64ull << 20;
    Quotas quotas;
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
