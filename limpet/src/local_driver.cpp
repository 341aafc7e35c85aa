// One process, two buses: the link is two in-memory queues.
#include <chrono>
#include <cstdio>
#include <deque>
#include <poll.h>
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

} // namespace

void stderrLine(std::string_view line) {
    std::fprintf(stderr, "xkbus-limpet: %.*s\n", static_cast<int>(line.size()), line.data());
}

Result<void> runLocal(const BusEnd& x, const BusEnd& y, const KeepGoing& keepGoing,
                      std::string& error) {
    RateLimitedLog log{stderrLine};
    Side a;
    Side b;
    if (auto ok = openSide(x, a, log); !ok) {
        error = "cannot open a Ksock on the first bus";
        return ok;
    }
    if (auto ok = openSide(y, b, log); !ok) {
        error = "cannot open a Ksock on the second bus";
        return ok;
    }
    if (!a.limpet->linkUp(b.limpet->hello()) || !b.limpet->linkUp(a.limpet->hello())) {
        error = a.limpet->goodbye().text;
        return fail(Errc::PERMISSION_DENIED);
    }
    while (keepGoing() && fatalOf(a, b).empty()) {
        deliver(a, b);
        deliver(b, a);
        pollfd fds[2] = {{a.port->fd(), POLLIN, 0}, {b.port->fd(), POLLIN, 0}};
        if (::poll(fds, 2, 100) < 0 && errno != EINTR) {
            return fail(Errc::DISCONNECTED);
        }
        for (auto ok : {drainBus(a, 64), drainBus(b, 64)}) {
            if (!ok) {
                error = "lost the daemon";
                return ok;
            }
        }
    }
    a.limpet->linkDown();
    b.limpet->linkDown();
    error = fatalOf(a, b);
    return error.empty() ? Result<void>{} : fail(Errc::PROTOCOL_VIOLATION);
}

} // namespace xkbus::limpet
