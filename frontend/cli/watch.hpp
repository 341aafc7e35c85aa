// The Ksocks of a long-running command (listen, monitor, reply): one per
// bus, set up alike, read together, and, with --reconnect, opened and set
// up again when the daemon comes back after going away.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <vector>
#include <xkbus/ksock.hpp>

namespace xkbus::cli {

// Binds and configures a freshly opened Ksock; run again after a reconnect.
using Setup = std::function<Result<void>(Ksock& ksock, uint32_t bus)>;

struct WatchOptions {
    bool reconnect = false;
    std::chrono::milliseconds firstRetry{100};
    std::chrono::milliseconds maxRetry{5000};
    // How long the daemon may stay silent before we ask it whether it is
    // still there (see receive in watch.cpp).
    std::chrono::milliseconds probeEvery{1000};
};

struct Delivery {
    uint32_t bus = 0;
    Message message;
};

class Watch {
public:
    Watch(std::vector<uint32_t> buses, Setup setup, WatchOptions options);

    // Opens and sets up every bus; the first failure is returned with its bus.
    Result<void> start(uint32_t& failedBus);
    // The next message on any bus, waiting up to `timeout` (negative:
    // forever); TIMED_OUT if none came. DISCONNECTED when the daemon went
    // away, unless reconnecting is on: then it waits for the daemon to come
    // back, sets every Ksock up again, and says so on standard error.
    Result<Delivery> next(std::chrono::milliseconds timeout);
    Ksock& ksock(uint32_t bus);

private:
    Result<std::optional<Delivery>> takeWaiting();
    Result<void> probe();
    Result<void> recover(Errc why);
    Result<void> openAll(uint32_t& failedBus);

    std::vector<uint32_t> m_buses;
    Setup m_setup;
    WatchOptions m_options;
    std::vector<Ksock> m_ksocks; // parallel to m_buses once started
};

// Whether `e` means the daemon (or our connection to it) is gone.
bool isConnectionLost(Errc e);

} // namespace xkbus::cli
