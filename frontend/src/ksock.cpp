// See <xkbus/ksock.hpp>.
#include "channel_factory_internal.hpp"

#include <algorithm>
#include <poll.h>
#include <thread>
#include <utility>
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

// The switches take 0 or 1 (anything else asks); MAX_MESSAGES 0 asks.
bool isSetting(frontend::Control what, uint64_t arg) {
    switch (what) {
    case frontend::Control::MAX_MESSAGES:
        return arg != 0;
    case frontend::Control::ONLY_ONCE:
    case frontend::Control::VERBOSE:
    case frontend::Control::REPORT_REPLIER_BINDS:
        return arg <= 1;
    default:
        return false;
    }
}

// QUEUE_FULL from REPORT_REPLIER_BINDS: reporting is on, but not every
// replier already bound fitted in the queue.
bool settingTookEffect(frontend::Control what, const Result<uint64_t>& done) {
    return done ||
           (what == frontend::Control::REPORT_REPLIER_BINDS && done.error() == Errc::QUEUE_FULL);
}

} // namespace

Result<Ksock> Ksock::open(uint32_t bus, bool writable) {
    auto channel = frontend::openChannel(bus, writable);
    if (!channel) {
        return fail(channel.error());
    }
    Ksock k(std::move(*channel));
    k.m_bus = bus;
    k.m_writable = writable;
    return k;
}

Ksock::Ksock(std::unique_ptr<frontend::KsockChannel> channel) : m_channel(std::move(channel)) {}

Result<void> Ksock::bind(std::string_view name, bool replier) {
    auto bound = lostIf(m_channel->bind(name, replier));
    if (bound) {
        m_binds.emplace_back(name, replier);
    }
    return bound;
}

Result<void> Ksock::unbind(std::string_view name, bool replier) {
    auto unbound = lostIf(m_channel->unbind(name, replier));
    if (unbound) {
        const auto it =
            std::find(m_binds.begin(), m_binds.end(), std::pair<std::string, bool>(name, replier));
        if (it != m_binds.end()) {
            m_binds.erase(it);
        }
    }
    return unbound;
}

Result<uint64_t> Ksock::control(frontend::Control what, uint64_t arg) {
    auto done = m_channel->control(what, arg);
    if (isSetting(what, arg) && settingTookEffect(what, done)) {
        m_settings[what] = arg;
    }
    return lostIf(done);
}

// Settings first (MAX_MESSAGES before any message can arrive), then the
// bindings, then REPORT_REPLIER_BINDS: the bus reports the repliers already
// bound at once, and a Ksock listening to the bind events must be bound by
// then, as it was when it first asked.
Result<void> Ksock::restoreOn(frontend::KsockChannel& channel) const {
    constexpr auto REPORT = frontend::Control::REPORT_REPLIER_BINDS;
    for (const auto& [what, arg] : m_settings) {
        if (what != REPORT) {
            if (auto set = channel.control(what, arg); !set) {
                return fail(set.error());
            }
        }
    }
    for (const auto& [name, replier] : m_binds) {
        if (auto bound = channel.bind(name, replier); !bound) {
            return bound;
        }
    }
    if (const auto report = m_settings.find(REPORT); report != m_settings.end()) {
        if (auto set = channel.control(REPORT, report->second); !settingTookEffect(REPORT, set)) {
            return fail(set.error());
        }
    }
    return {};
}

Result<Reopened> Ksock::reopen(const Backoff& backoff) {
    if (!m_bus) {
        return fail(Errc::NOT_SUPPORTED);
    }
    const auto openAndRestore = [&]() -> Result<std::unique_ptr<frontend::KsockChannel>> {
        auto channel = frontend::openChannel(*m_bus, m_writable);
        if (!channel) {
            return channel;
        }
        if (auto restored = restoreOn(**channel); !restored) {
            return fail(restored.error());
        }
        return channel;
    };
    Reopened done;
    auto channel = retryWhileDaemonAway(backoff, openAndRestore, done.attempts);
    if (!channel) {
        return fail(channel.error());
    }
    done.oldId = id();
    m_channel = std::move(*channel);
    done.newId = id();
    return done;
}

bool Ksock::reopenedAfter(Errc e, Errc& reported) {
    if (!m_reconnect || !isConnectionLost(e)) {
        return false;
    }
    auto reopened = reopen(m_reconnect->backoff);
    if (!reopened) {
        reported = reopened.error();
        return false;
    }
    if (m_reconnect->onReopened) {
        m_reconnect->onReopened(*reopened);
    }
    return true;
}

Result<MsgId> Ksock::announce(std::string_view name, std::string_view data, uint32_t flags) {
    return send(makeMessage(name, data, flags));
}

Result<MsgId> Ksock::reply(const Message& request, std::string_view data) {
    Message answer = makeMessage(request.name(), data, 0);
    answer.header.inReplyTo = request.header.id;
    answer.header.to = request.header.from;
    return send(answer);
}

// An empty queue is also where a daemon's death shows: its end of the fd
// closed, and the ring alone cannot tell a dead daemon from a quiet one.
Result<std::optional<Message>> Ksock::tryReceive() {
    auto next = tryReceiveHere();
    if (next && !*next) {
        pollfd p{fd(), POLLIN, 0};
        if (fd() >= 0 && ::poll(&p, 1, 0) > 0) {
            if (auto alive = checkHangUp(p.revents); !alive) {
                return lostIf(Result<std::optional<Message>>(fail(alive.error())));
            }
        }
    }
    return lostIf(std::move(next));
}

Result<void> Ksock::checkHangUp(short revents) {
    if ((revents & (POLLHUP | POLLERR)) == 0) {
        return {};
    }
    // Ask the daemon, whose silence the connection may not have noticed yet.
    return m_channel->control(frontend::Control::NUM_MESSAGES, 0).map([](uint64_t) {});
}

Result<std::optional<Message>> Ksock::tryReceiveHere() {
    if (!m_held.empty()) {
        Message m = std::move(m_held.front());
        m_held.pop_front();
        return m;
    }
    return m_channel->nextMessage();
}

Result<Message> Ksock::receive(std::chrono::milliseconds timeout) {
    std::optional<Clock::time_point> deadline;
    if (timeout.count() >= 0) {
        deadline = Clock::now() + timeout;
    }
    for (;;) {
        auto next = receiveHere(deadline);
        if (next) {
            return next;
        }
        Errc reported = next.error();
        if (!reopenedAfter(next.error(), reported)) {
            return fail(reported);
        }
        // Nothing this call did was lost: wait on, on the new daemon.
    }
}

Result<Message> Ksock::receiveHere(std::optional<std::chrono::steady_clock::time_point> deadline) {
    bool maySpin = true; // once per sleep: what the spin saw may be for another Ksock
    for (;;) {
        auto next = tryReceiveHere();
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
        if (std::exchange(maySpin, false) && m_channel->awaitMessageBriefly()) {
            continue;
        }
        maySpin = true;
        if (fd() >= 0) {
            pollfd p{fd(), POLLIN, 0};
            if (::poll(&p, 1, wait) > 0) {
                if (auto alive = checkHangUp(p.revents); !alive) {
                    return fail(alive.error());
                }
            }
        } else { // a channel without an fd (some test fakes): look again soon
            std::this_thread::sleep_for(
                std::chrono::milliseconds(std::min(wait < 0 ? 1 : wait, 1)));
        }
    }
}

// A daemon that goes away while we wait takes the request with it: nobody
// will answer, so the wait ends with its error (after a reopen, if asked).
Result<Message> Ksock::request(std::string_view name, std::string_view data,
                               std::chrono::milliseconds timeout) {
    auto id = lostIf(m_channel->sendRequest(makeMessage(name, data, FLAG_WANT_A_REPLY)));
    if (!id) {
        return fail(id.error());
    }
    const auto deadline = Clock::now() + timeout;
    std::deque<Message> others;
    for (;;) {
        auto next = receiveHere(deadline);
        if (!next) {
            m_held.insert(m_held.begin(), others.begin(), others.end());
            return lostIf(std::move(next));
        }
        if (next->header.inReplyTo == *id) {
            m_held.insert(m_held.begin(), others.begin(), others.end());
            return std::move(*next);
        }
        others.push_back(std::move(*next));
    }
}

} // namespace xkbus
