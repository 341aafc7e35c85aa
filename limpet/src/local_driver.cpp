// One process, two buses: the link is two in-memory queues.
#include <chrono>
#include <cstdio>
#include <deque>
#include <memory>
#include <poll.h>
#include <string>
#include <tuple>
#include <utility>
#include <xkbus/limpet/channel_port.hpp>
#include <xkbus/limpet/drivers.hpp>
#include <xkbus/limpet/rate_limit.hpp>

namespace xkbus::limpet {
namespace {

class QueueSink final : public LinkSink {
public:
    void send(const Frame& frame) override { frames.push_back(frame); }
    std::deque<Frame> frames;
};

struct Side {
    std::unique_ptr<ChannelPort> port;
    QueueSink out;
    std::unique_ptr<Limpet> limpet;
};

Result<void> openSide(const BusEnd& end, Side& side, RateLimitedLog& log) {
    auto port = openPort(end.socketPath, end.bus);
    if (!port) {
        return fail(port.error());
    }
    side.port = std::move(*port);
    Config config = end.config;
    config.log = [&log](std::string_view line) {
        log.note(line, std::chrono::steady_clock::now());
    };
    side.limpet = std::make_unique<Limpet>(config, *side.port, side.out);
    return side.limpet->start();
}

// Reads what the bus has (at most `budget` messages) into the Limpet.
Result<void> drainBus(Side& side, int budget) {
    for (int i = 0; i < budget; ++i) {
        auto m = side.port->next();
        if (!m) {
            return fail(m.error());
        }
        if (!*m) {
            break;
        }
        side.limpet->fromBus(**m);
    }
    return {};
}

void deliver(Side& from, Side& to) {
    while (!from.out.frames.empty()) {
        Frame f = std::move(from.out.frames.front());
        from.out.frames.pop_front();
        (void)to.limpet->fromLink(f);
    }
}

std::string fatalOf(const Side& x, const Side& y) {
    return !x.limpet->fatalError().empty() ? x.limpet->fatalError() : y.limpet->fatalError();
}

// Both sides, each bound to the other: it must not move (each Limpet keeps a
// reference to its side's port and queue).
struct Pair {
    Side a;
    Side b;
};

Result<void> openPair(const BusEnd& x, const BusEnd& y, Pair& p, RateLimitedLog& log,
                      std::string& error) {
    if (auto ok = openSide(x, p.a, log); !ok) {
        error = "cannot open a Ksock on the first bus";
        return ok;
    }
    if (auto ok = openSide(y, p.b, log); !ok) {
        error = "cannot open a Ksock on the second bus";
        return ok;
    }
    if (!p.a.limpet->linkUp(p.b.limpet->hello()) || !p.b.limpet->linkUp(p.a.limpet->hello())) {
        error = p.a.limpet->goodbye().text;
        return fail(Errc::PERMISSION_DENIED);
    }
    return {};
}

// Carries messages both ways until told to stop, a cycle is found, or a
// daemon goes away (DISCONNECTED, with its socket in `error`).
Result<void> runPair(const BusEnd& x, const BusEnd& y, Pair& p, const KeepGoing& keepGoing,
                     std::string& error) {
    while (keepGoing() && fatalOf(p.a, p.b).empty()) {
        deliver(p.a, p.b);
        deliver(p.b, p.a);
        pollfd fds[2] = {{p.a.port->fd(), POLLIN, 0}, {p.b.port->fd(), POLLIN, 0}};
        if (::poll(fds, 2, 100) < 0 && errno != EINTR) {
            return fail(Errc::DISCONNECTED);
        }
        for (auto [side, end, revents] :
             {std::tuple(&p.a, &x, fds[0].revents), std::tuple(&p.b, &y, fds[1].revents)}) {
            auto ok = side->port->checkHangUp(revents);
            if (ok) {
                ok = drainBus(*side, 64);
            }
            if (!ok) {
                error = "lost the daemon at " + end->socketPath;
                return ok;
            }
        }
    }
    p.a.limpet->linkDown();
    p.b.limpet->linkDown();
    error = fatalOf(p.a, p.b);
    return error.empty() ? Result<void>{} : fail(Errc::PROTOCOL_VIOLATION);
}

// The link goes down first, so that the bus that is still there withdraws
// its proxies and answers what crossed with GoneAway; then both sides are
// opened again from scratch once the daemon is back.
Result<std::unique_ptr<Pair>> reopenPair(const BusEnd& x, const BusEnd& y,
                                         std::unique_ptr<Pair> old, RateLimitedLog& log,
                                         const KeepGoing& keepGoing, std::string& error) {
    stderrLine(error + "; reconnecting");
    old->a.limpet->linkDown();
    old->b.limpet->linkDown();
    old.reset();
    std::unique_ptr<Pair> p;
    const auto attempt = [&]() -> Result<void> {
        p = std::make_unique<Pair>();
        return openPair(x, y, *p, log, error);
    };
    int tries = 0;
    if (auto opened = retryWhileDaemonAway(*x.reconnect, attempt, tries, keepGoing); !opened) {
        return fail(opened.error());
    }
    stderrLine("reconnected after " + std::to_string(tries) +
               " attempt(s); the link is up again and the repliers announced anew");
    return p;
}

} // namespace

void stderrLine(std::string_view line) {
    std::fprintf(stderr, "xkbus-limpet: %.*s\n", static_cast<int>(line.size()), line.data());
}

Result<void> runLocal(const BusEnd& x, const BusEnd& y, const KeepGoing& keepGoing,
                      std::string& error) {
    RateLimitedLog log{stderrLine};
    auto p = std::make_unique<Pair>();
    if (auto ok = openPair(x, y, *p, log, error); !ok) {
        return ok;
    }
    for (;;) {
        auto ran = runPair(x, y, *p, keepGoing, error);
        const bool lost = !ran && ran.error() == Errc::DISCONNECTED;
        if (lost && !x.reconnect) {
            error += " (--reconnect waits for it)";
        }
        if (!lost || !x.reconnect || !keepGoing()) {
            return ran;
        }
        auto again = reopenPair(x, y, std::move(p), log, keepGoing, error);
        if (!again) { // stopped by a signal while waiting: a clean stop
            return keepGoing() ? fail(again.error()) : Result<void>{};
        }
        p = std::move(*again);
    }
}

} // namespace xkbus::limpet
