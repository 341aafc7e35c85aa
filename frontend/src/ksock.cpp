// See <xkbus/ksock.hpp>.
#include "channel_factory_internal.hpp"

#include <poll.h>
#include <thread>
#include <xkbus/ksock.hpp>

namespace xkbus {
namespace {

using Clock = std::chrono::steady_clock;

// Milliseconds left until `deadline`, for poll(); -1 for no deadline.
int pollTimeout(std::optional<Clock::time_point> deadline) {
    if (!deadline) {
        return -1;
    }
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - Clock::now());
    return static_cast<int>(std::max<int64_t>(0, left.count()));
}

} // namespace

Result<Ksock> Ksock::open(uint32_t bus, bool writable) {
    auto channel = frontend::openChannel(bus, writable);
    if (!channel) {
        return fail(channel.error());
    }
    return Ksock(std::move(*channel));
}

Ksock::Ksock(std::unique_ptr<frontend::KsockChannel> channel) : m_channel(std::move(channel)) {}

Result<MsgId> Ksock::announce(std::string_view name, std::string_view data, uint32_t flags) {
    return m_channel->send(makeMessage(name, data, flags));
}

Result<MsgId> Ksock::reply(const Message& request, std::string_view data) {
    Message answer = makeMessage(request.name(), data, 0);
    answer.header.inReplyTo = request.header.id;
    answer.header.to = request.header.from;
    return m_channel->send(answer);
}

Result<std::optional<Message>> Ksock::tryReceive() {
    if (!m_held.empty()) {
        Message m = std::move(m_held.front());
        m_held.pop_front();
        return m;
    }
    auto next = m_channel->nextMessage();
    if (!next) {
        return fail(next.error());
    }
    if (!*next) {
        return std::optional<Message>();
    }
    return std::move(*next);
}

Result<Message> Ksock::receive(std::chrono::milliseconds timeout) {
    std::optional<Clock::time_point> deadline;
    if (timeout.count() >= 0) {
        deadline = Clock::now() + timeout;
    }
    for (;;) {
        auto next = tryReceive();
        if (!next) {
            return fail(next.error());
        }
        if (*next) {
            return std::move(**next);
        }
        const int wait = pollTimeout(deadline);
        if (wait == 0) {
            return fail(Errc::TIMED_OUT);
        }
        if (fd() >= 0) {
            pollfd p{fd(), POLLIN, 0};
            (void)::poll(&p, 1, wait);
        } else { // a channel without an fd (some test fakes): look again soon
            std::this_thread::sleep_for(
                std::chrono::milliseconds(std::min(wait < 0 ? 1 : wait, 1)));
        }
    }
}

Result<Message> Ksock::request(std::string_view name, std::string_view data,
                               std::chrono::milliseconds timeout) {
    auto id = m_channel->sendRequest(makeMessage(name, data, FLAG_WANT_A_REPLY));
    if (!id) {
        return fail(id.error());
    }
    const auto deadline = Clock::now() + timeout;
    std::deque<Message> others;
    for (;;) {
        auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
        auto next = receive(std::max(left, std::chrono::milliseconds(0)));
        if (!next) {
            m_held.insert(m_held.begin(), others.begin(), others.end());
            return fail(next.error());
        }
        if (next->header.inReplyTo == *id) {
            m_held.insert(m_held.begin(), others.begin(), others.end());
            return std::move(*next);
        }
        others.push_back(std::move(*next));
    }
}

} // namespace xkbus
