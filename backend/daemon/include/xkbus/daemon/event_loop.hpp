// xkbusd's one event loop: epoll over every descriptor the daemon watches,
// plus the two hooks the peer hub needs, work left over from a pass and the
// last look before sleeping. One thread; nothing here knows about peers.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>
#include <xkbus/common/result.hpp>
#include <xkbus/common/unique_fd.hpp>

namespace xkbus::daemon {

enum class Trigger : uint8_t {
    LEVEL, // reported while readable
    EDGE,  // reported once per change: for descriptors the handler never drains
};

class EventLoop {
public:
    using Handler = std::function<void()>;

    static Result<std::unique_ptr<EventLoop>> create();
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    // Calls `onReadable` when fd is readable. An fd is watched at most once.
    Result<void> watch(int fd, Handler onReadable, Trigger trigger = Trigger::LEVEL);
    // Stops watching; events already fetched for it are dropped.
    void unwatch(int fd);

    // `leftover` runs after every pass and returns true while work is left
    // (the loop then does not sleep); `beforeSleep` runs when none is, and
    // returns true if it found some after all (it may spin, and must ask to
    // be woken for whatever it leaves).
    void setHooks(std::function<bool()> leftover, std::function<bool()> beforeSleep);
    // Another source of leftover work (the Xen front door's deferred
    // xenstore events): run after `leftover`, on every pass, same contract.
    void addLeftover(std::function<bool()> leftover);

    // Runs until stop(). Returns an error only if epoll itself fails.
    Result<void> run();
    void stop() noexcept { m_stopping = true; }
    // One pass: waits up to timeoutMs for events (0: none), handles them and
    // the leftover work. For tests and for run().
    Result<void> runOnce(int timeoutMs);
    // Times epoll_wait returned: the loop's wakeups, which an idle daemon
    // should not make (tests count them).
    uint64_t passes() const noexcept { return m_passes; }

private:
    explicit EventLoop(UniqueFd epoll) : m_epoll(std::move(epoll)) {}
    int sleepTimeout();

    UniqueFd m_epoll;
    // Tokens, not fds, in the epoll data: a closed fd's number may be reused
    // by a new watch before the old one's fetched events are handled.
    std::unordered_map<uint64_t, Handler> m_handlers;
    std::unordered_map<int, uint64_t> m_tokens;
    uint64_t m_nextToken = 1;
    std::function<bool()> m_leftover;
    std::function<bool()> m_beforeSleep;
    std::vector<std::function<bool()>> m_moreLeftovers;
    bool m_workLeft = false;
    bool m_stopping = false;
    uint64_t m_passes = 0;
};

} // namespace xkbus::daemon
