// Waiting for a daemon that went away to come back: which errors mean it is
// gone, and how often to try again. Header-only, so the C++ API, the CLI and
// the Limpets share one rule without a new exported symbol.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <thread>
#include <xkbus/common/result.hpp>

namespace xkbus {

// Whether `e` means the daemon (or this process's connection to it) is gone,
// so that trying again later may succeed: a restarted daemon takes new
// connections, and a dead one answers nothing.
constexpr bool isConnectionLost(Errc e) noexcept {
    return e == Errc::DISCONNECTED || e == Errc::NO_DAEMON || e == Errc::PROTOCOL_VIOLATION;
}

// Bounded exponential backoff: the pause after each failed attempt doubles
// from `first` up to `max`; after `attempts` attempts (0: no limit) the
// waiting gives up with the last error. The defaults wait about 4.5 minutes.
struct Backoff {
    std::chrono::milliseconds first{100};
    std::chrono::milliseconds max{5000};
    int attempts = 60;

    // The pause after failed attempt number `attempt` (1, 2, ...).
    std::chrono::milliseconds pauseAfter(int attempt) const noexcept {
        auto pause = std::max(first, std::chrono::milliseconds(1));
        for (int i = 1; i < attempt && pause < max; ++i) {
            pause *= 2;
        }
        return std::min(pause, std::max(max, first));
    }
};

// Says whether to keep waiting (a signal may ask a program to stop).
using KeepWaiting = std::function<bool()>;

// Calls `attempt` until it succeeds, fails for a reason other than a lost
// daemon, uses up `backoff.attempts`, or keepWaiting() says stop (the last
// error is returned then). `tries` is the number of attempts made. The
// pauses are cut into slices of at most 100 ms so that a stop is seen soon.
template <class Attempt>
auto retryWhileDaemonAway(const Backoff& backoff, Attempt&& attempt, int& tries,
                          const KeepWaiting& keepWaiting = {}) -> decltype(attempt()) {
    using Clock = std::chrono::steady_clock;
    for (tries = 1;; ++tries) {
        auto result = attempt();
        const bool spent = backoff.attempts > 0 && tries >= backoff.attempts;
        if (result || !isConnectionLost(result.error()) || spent) {
            return result;
        }
        const auto until = Clock::now() + backoff.pauseAfter(tries);
        while (Clock::now() < until) {
            if (keepWaiting && !keepWaiting()) {
                return result;
            }
            const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - Clock::now());
            std::this_thread::sleep_for(std::min(left, std::chrono::milliseconds(100)));
        }
    }
}

} // namespace xkbus
