// A one-shot timer on the event loop: a timerfd the loop watches. The front
// door uses it for handshake deadlines and for backing off when the daemon
// runs out of descriptors; it is created before that can happen.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <xkbus/common/result.hpp>
#include <xkbus/common/unique_fd.hpp>
#include <xkbus/daemon/event_loop.hpp>

namespace xkbus::daemon {

class LoopTimer {
public:
    // Watches a new timerfd on `loop`; `onExpiry` runs once per armIn().
    static Result<std::unique_ptr<LoopTimer>> create(EventLoop& loop,
                                                     std::function<void()> onExpiry);
    ~LoopTimer();
    LoopTimer(const LoopTimer&) = delete;
    LoopTimer& operator=(const LoopTimer&) = delete;

    // (Re)arms it to fire once after `delay` (at least 1 ms).
    void armIn(std::chrono::milliseconds delay);
    void disarm();
    bool armed() const noexcept { return m_armed; }

private:
    LoopTimer(EventLoop& loop, UniqueFd fd, std::function<void()> onExpiry);
    void expire();

    EventLoop& m_loop;
    UniqueFd m_fd;
    std::function<void()> m_onExpiry;
    bool m_armed = false;
};

} // namespace xkbus::daemon
