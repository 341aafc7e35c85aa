// See watch.hpp.
//
// A Ksock fd that hangs up (POLLHUP/POLLERR) means the daemon is gone. A
// library that never wakes the fds when a local daemon dies (as before the
// hot-path rewrite) would leave Ksock::receive in poll() for ever, so the
// wait is also cut into slices, and after a silent slice the daemon is
// asked a question (NUM_MESSAGES): a dead one answers DISCONNECTED.
#include "watch.hpp"

#include <algorithm>
#include <fmt/core.h>
#include <poll.h>
#include <xkbus/frontend/open.hpp>

namespace xkbus::cli {

namespace {

using Clock = std::chrono::steady_clock;

} // namespace

Watch::Watch(std::vector<uint32_t> buses, Setup setup, WatchOptions options)
    : m_buses(std::move(buses)), m_setup(std::move(setup)), m_options(options) {}

Result<void> Watch::start(uint32_t& failedBus) {
    std::vector<Ksock> opened;
    for (uint32_t bus : m_buses) {
        failedBus = bus;
        auto k = Ksock::open(bus);
        if (!k) {
            return fail(k.error());
        }
        if (auto ok = m_setup(*k, bus); !ok) {
            return ok;
        }
        opened.push_back(std::move(*k));
    }
    m_ksocks = std::move(opened);
    return {};
}

Ksock& Watch::ksock(uint32_t bus) {
    const auto at = std::find(m_buses.begin(), m_buses.end(), bus) - m_buses.begin();
    return m_ksocks.at(static_cast<size_t>(at));
}

Result<std::optional<Delivery>> Watch::takeWaiting() {
    for (size_t i = 0; i < m_ksocks.size(); ++i) {
        auto m = m_ksocks[i].tryReceive();
        if (!m) {
            return fail(m.error());
        }
        if (*m) {
            return std::optional<Delivery>(Delivery{m_buses[i], std::move(**m)});
        }
    }
    return std::optional<Delivery>();
}

Result<void> Watch::probe() {
    for (auto& k : m_ksocks) {
        if (auto asked = k.channel().control(protocol::Control::NUM_MESSAGES, 0); !asked) {
            return fail(asked.error());
        }
    }
    return {};
}

// Waits for the daemon to come back; each Ksock reopens itself with what it
// had bound and set (Ksock::reopen).
Result<void> Watch::recover(Errc why) {
    const std::string path = frontend::defaultSocketPath();
    if (!m_options.reconnect || !isConnectionLost(why)) {
        return fail(why);
    }
    fmt::print(stderr, "xkbus: lost the daemon at {} ({}); reconnecting\n", path, describe(why));
    int attempts = 0;
    for (size_t i = 0; i < m_ksocks.size(); ++i) {
        auto reopened = m_ksocks[i].reopen(m_options.backoff);
        if (!reopened) {
            fmt::print(stderr, "xkbus: bus {}: {} (errno {}); not retrying\n", m_buses[i],
                       frontend::explainOpenError(reopened.error(), path),
                       toErrno(reopened.error()));
            return fail(reopened.error());
        }
        attempts = std::max(attempts, reopened->attempts);
    }
    fmt::print(stderr, "xkbus: reconnected to {} after {} attempt(s); bindings restored\n", path,
               attempts);
    return {};
}

Result<Delivery> Watch::next(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        auto waiting = takeWaiting();
        if (!waiting) {
            if (auto back = recover(waiting.error()); !back) {
                return fail(back.error());
            }
            continue;
        }
        if (*waiting) {
            return std::move(**waiting);
        }
        auto slice = m_options.probeEvery;
        if (timeout.count() >= 0) {
            const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
            if (left.count() <= 0) {
                return fail(Errc::TIMED_OUT);
            }
            slice = std::min(slice, left);
        }
        std::vector<pollfd> fds;
        for (auto& k : m_ksocks) {
            fds.push_back(pollfd{k.fd(), POLLIN, 0});
        }
        const int ready = ::poll(fds.data(), fds.size(), static_cast<int>(slice.count()));
        // A library that reports the daemon's death hangs up the Ksock fds;
        // one that does not is asked after a silent slice.
        const bool hungUp = std::any_of(fds.begin(), fds.end(), [](const pollfd& p) {
            return (p.revents & (POLLHUP | POLLERR | POLLNVAL)) != 0;
        });
        if (hungUp || ready == 0) {
            auto alive = probe();
            if (alive && hungUp) {
                alive = fail(Errc::DISCONNECTED);
            }
            if (!alive) {
                if (auto back = recover(alive.error()); !back) {
                    return fail(back.error());
                }
            }
        }
    }
}

} // namespace xkbus::cli
