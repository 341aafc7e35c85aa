// See event_loop.hpp.
#include <cerrno>
#include <sys/epoll.h>
#include <vector>
#include <xkbus/daemon/event_loop.hpp>

namespace xkbus::daemon {

Result<std::unique_ptr<EventLoop>> EventLoop::create() {
    UniqueFd epoll(::epoll_create1(EPOLL_CLOEXEC));
    if (!epoll) {
        return fail(errno == EMFILE || errno == ENFILE ? Errc::TOO_MANY : Errc::NO_MEMORY);
    }
    return std::unique_ptr<EventLoop>(new EventLoop(std::move(epoll)));
}

Result<void> EventLoop::watch(int fd, Handler onReadable, Trigger trigger) {
    const uint64_t token = m_nextToken++;
    epoll_event ev{};
    ev.events = EPOLLIN | (trigger == Trigger::EDGE ? EPOLLET : 0u);
    ev.data.u64 = token;
    if (::epoll_ctl(m_epoll.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
        return fail(errno == ENOMEM || errno == ENOSPC ? Errc::NO_MEMORY : Errc::INVALID);
    }
    m_handlers.emplace(token, std::move(onReadable));
    m_tokens[fd] = token;
    return {};
}

void EventLoop::unwatch(int fd) {
    auto token = m_tokens.find(fd);
    if (token == m_tokens.end()) {
        return;
    }
    ::epoll_ctl(m_epoll.get(), EPOLL_CTL_DEL, fd, nullptr);
    m_handlers.erase(token->second);
    m_tokens.erase(token);
}

void EventLoop::setHooks(std::function<bool()> leftover, std::function<bool()> beforeSleep) {
    m_leftover = std::move(leftover);
    m_beforeSleep = std::move(beforeSleep);
}

void EventLoop::addLeftover(std::function<bool()> leftover) {
    m_moreLeftovers.push_back(std::move(leftover));
}

Result<void> EventLoop::run() {
    m_stopping = false;
    m_workLeft = true; // what was set up before the loop ran gets its pass first
    for (;;) {
        const int timeout = sleepTimeout();
        if (m_stopping) {
            return {}; // stopped by a hook: never sleep after that
        }
        if (auto pass = runOnce(timeout); !pass) {
            return pass;
        }
        if (m_stopping) {
            return {};
        }
    }
}

// 0 while work is left or found in the last look; otherwise sleep.
int EventLoop::sleepTimeout() {
    if (m_workLeft) {
        return 0;
    }
    return m_beforeSleep && m_beforeSleep() ? 0 : -1;
}

Result<void> EventLoop::runOnce(int timeoutMs) {
    epoll_event events[64];
    const int n = ::epoll_wait(m_epoll.get(), events, 64, timeoutMs);
    if (n < 0 && errno != EINTR) {
        return fail(Errc::INVALID);
    }
    ++m_passes;
    for (int i = 0; i < n; ++i) {
        // A handler may unwatch another fd whose event is further down.
        auto handler = m_handlers.find(events[i].data.u64);
        if (handler != m_handlers.end()) {
            Handler copy = handler->second; // it may unwatch itself
            copy();
        }
    }
    m_workLeft = m_leftover && m_leftover();
    for (const auto& more : m_moreLeftovers) {
        m_workLeft = more() || m_workLeft;
    }
    return {};
}

} // namespace xkbus::daemon
