// See loop_timer.hpp.
#include <algorithm>
#include <cerrno>
#include <sys/timerfd.h>
#include <unistd.h>
#include <xkbus/daemon/loop_timer.hpp>

namespace xkbus::daemon {

Result<std::unique_ptr<LoopTimer>> LoopTimer::create(EventLoop& loop,
                                                     std::function<void()> onExpiry) {
    UniqueFd fd(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    if (!fd) {
        return fail(errno == EMFILE || errno == ENFILE ? Errc::TOO_MANY : Errc::NO_MEMORY);
    }
    const int raw = fd.get();
    std::unique_ptr<LoopTimer> timer(new LoopTimer(loop, std::move(fd), std::move(onExpiry)));
    if (auto watched = loop.watch(raw, [t = timer.get()] { t->expire(); }); !watched) {
        return fail(watched.error());
    }
    return timer;
}

LoopTimer::LoopTimer(EventLoop& loop, UniqueFd fd, std::function<void()> onExpiry)
    : m_loop(loop), m_fd(std::move(fd)), m_onExpiry(std::move(onExpiry)) {}

LoopTimer::~LoopTimer() {
    m_loop.unwatch(m_fd.get());
}

void LoopTimer::armIn(std::chrono::milliseconds delay) {
    const auto ms = std::max<long long>(delay.count(), 1); // 0 would disarm it
    itimerspec spec{};
    spec.it_value.tv_sec = static_cast<time_t>(ms / 1000);
    spec.it_value.tv_nsec = static_cast<long>((ms % 1000) * 1000000);
    m_armed = ::timerfd_settime(m_fd.get(), 0, &spec, nullptr) == 0;
}

void LoopTimer::disarm() {
    itimerspec spec{};
    (void)::timerfd_settime(m_fd.get(), 0, &spec, nullptr);
    m_armed = false;
}

void LoopTimer::expire() {
    uint64_t expirations = 0;
    if (::read(m_fd.get(), &expirations, sizeof expirations) != sizeof expirations) {
        return; // disarmed or re-armed since it became readable
    }
    m_armed = false;
    m_onExpiry();
}

} // namespace xkbus::daemon
