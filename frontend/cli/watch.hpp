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

// Binds and configures a freshly opened Ksock, through the Ksock's own calls
// (not channel()), so that Ksock::reopen makes them again after a reconnect.
using Setup = std::function<Result<void>(Ksock& ksock, uint32_t bus)>;

struct WatchOptions {
    bool reconnect = false;
    // Waits as long as it takes: a long-running command outlives restarts.
    Backoff backoff{.first = std::chrono::milliseconds(100),
                    .max = std::chrono::milliseconds(5000),
                    .attempts = 0};
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

    std::vector<uint32_t> m_buses;
    Setup m_setup;
    WatchOptions m_options;
    std::vector<Ksock> m_ksocks; // parallel to m_buses once started
};

} // namespace xkbus::cli
