// One side of a Limpet pair over a network link: poll the Ksock, the link
// and the connections that have not yet proved who they are; frame and check
// what arrives; heartbeat; and bound what is buffered, and for how long.
#include <algorithm>
#include <cstdio>
#include <poll.h>
#include <vector>
#include <xkbus/limpet/channel_port.hpp>
#include <xkbus/limpet/drivers.hpp>
#include <xkbus/limpet/rate_limit.hpp>

namespace xkbus::limpet {
namespace {

using Clock = std::chrono::steady_clock;

// Frames for one connection, encoded into one buffer.
class BufferSink final : public LinkSink {
public:
    void send(const Frame& frame) override {
        auto bytes = encodeFrame(frame);
        out.insert(out.end(), bytes.begin(), bytes.end());
    }
    size_t pending() const noexcept { return out.size() - sent; }
    void clear() {
        out.clear();
        sent = 0;
    }
    std::vector<std::byte> out;
    size_t sent = 0;
};

// A connection: pending until the peer's HELLO is accepted, the link after.
struct Conn {
    std::unique_ptr<Stream> stream;
    BufferSink out;
    FrameReader reader;
    bool handshaken = false;
    bool helloIn = false;
    Clock::time_point deadline; // pending: TLS and HELLO done by then
    Clock::time_point lastRx;
    Clock::time_point lastTx;
    Clock::time_point lastTaken;                // the peer last took bytes, or had none waiting
    std::optional<Clock::time_point> fullSince; // buffer over half full since
};

// The Limpet's frames go to the link, if there is one.
class ToLink final : public LinkSink {
public:
    void send(const Frame& frame) override {
        if (conn != nullptr) {
            conn->out.send(frame);
        }
    }
    Conn* conn = nullptr;
};

// A HELLO frame, length word included, is far smaller: more before the first
// frame is complete means the peer is not speaking our protocol.
constexpr size_t MAX_BYTES_BEFORE_HELLO = 256;
constexpr int MAX_ACCEPTS_PER_TURN = 16;

std::string ms(std::chrono::milliseconds d) {
    return std::to_string(d.count()) + " ms";
}

class NetRunner {
public:
    NetRunner(const NetOptions& o, std::string& error) : m_o(o), m_error(error) {}
    Result<void> run(const KeepGoing& keepGoing);

private:
    Result<void> setUp();
    Result<void> openBus();
    Result<void> rejoinBus(const KeepGoing& keepGoing);
    void step();
    void tryConnect();
    void connecting(Clock::time_point now);
    void acceptAll();
    void addPending(UniqueFd fd);
    void servicePending(const std::vector<pollfd>& fds, size_t first);
    bool serviceConn(Conn& c, short revents);
    bool readConn(Conn& c);
    bool onFrame(Conn& c, std::span<const std::byte> body);
    bool onHello(Conn& c, const Frame& frame);
    bool flush(Conn& c);
    void closeConn(Conn& c, const std::string& why, std::optional<Goodbye> bye);
    void dropLink(const std::string& why, std::optional<Goodbye> bye = std::nullopt);
    void linkTimers(Clock::time_point now);
    std::optional<std::string> stalled(Conn& c, Clock::time_point now);
    void pendingTimers(Clock::time_point now);
    Result<void> drainBus(int budget);
    bool congested() const { return m_link && m_link->out.pending() > m_o.maxOutBytes / 2; }
    bool isLink(const Conn& c) const { return m_toLink.conn == &c; }

    const NetOptions& m_o;
    std::string& m_error;
    std::unique_ptr<ChannelPort> m_port;
    RateLimitedLog m_log{stderrLine};
    ToLink m_toLink;
    std::unique_ptr<Limpet> m_limpet;
    std::shared_ptr<TlsContext> m_tls;
    UniqueFd m_listener;
    std::unique_ptr<Conn> m_link;
    std::vector<std::unique_ptr<Conn>> m_pending; // oldest first
    std::unique_ptr<Connector> m_connecting;      // connector: a connect under way
    Clock::time_point m_connectBy;
    Clock::time_point m_nextTry;
    bool m_lostBus = false;
};

// The Ksock and a fresh Limpet on it: at start, and after the daemon came
// back (the old Limpet's state belonged to the dead bus).
Result<void> NetRunner::openBus() {
    m_limpet.reset();
    m_port.reset();
    auto port = openPort(m_o.end.socketPath, m_o.end.bus);
    if (!port) {
        m_error = "cannot open a Ksock on the bus (is the trusted socket right?)";
        return fail(port.error());
    }
    m_port = std::move(*port);
    Config config = m_o.end.config;
    config.heartbeatMs = static_cast<uint32_t>(m_o.heartbeat.count());
    config.log = [this](std::string_view line) { m_log.note(line, Clock::now()); };
    m_limpet = std::make_unique<Limpet>(config, *m_port, m_toLink);
    if (auto ok = m_limpet->start(); !ok) {
        m_error = "cannot set up the Limpet's Ksock";
        return ok;
    }
    return {};
}

// The far side must not keep proxies for repliers of a bus that is gone:
// the link is dropped (it withdraws them and answers what crossed with
// GoneAway), and made again once the daemon is back, when this side
// announces the repliers of the new bus.
Result<void> NetRunner::rejoinBus(const KeepGoing& keepGoing) {
    stderrLine("lost the daemon at " + m_o.end.socketPath + "; reconnecting");
    dropLink("lost its daemon", Goodbye{ByeReason::SHUTDOWN, "lost its daemon"});
    m_pending.clear();
    m_connecting.reset();
    int tries = 0;
    auto opened = retryWhileDaemonAway(
        *m_o.end.reconnect, [this] { return openBus(); }, tries, keepGoing);
    if (!opened) {
        return opened;
    }
    m_lostBus = false;
    m_nextTry = Clock::now();
    stderrLine("reconnected to " + m_o.end.socketPath + " after " + std::to_string(tries) +
               " attempt(s); the repliers are announced anew when the link is back");
    return {};
}

Result<void> NetRunner::setUp() {
    if (auto ok = checkNetOptions(m_o, m_error); !ok) {
        return ok;
    }
    if (auto ok = openBus(); !ok) {
        return ok;
    }
    if (m_o.tls) {
        auto tls = TlsContext::make(m_o.tlsFiles, m_o.listen, m_error);
        if (!tls) {
            return fail(tls.error());
        }
        m_tls = std::move(*tls);
    }
    if (m_o.listen) {
        auto l = listenOn(m_o.address);
        if (!l) {
            m_error = "cannot listen on " + m_o.address;
            return fail(l.error());
        }
        m_listener = std::move(*l);
    }
    return {};
}

void NetRunner::addPending(UniqueFd fd) {
    auto c = std::make_unique<Conn>();
    if (m_tls) {
        std::string why;
        auto s = m_tls->wrap(std::move(fd), why);
        if (!s) {
            m_log.note("cannot start TLS on a new connection: " + why, Clock::now());
            return;
        }
        c->stream = std::move(*s);
    } else {
        c->stream = plainStream(std::move(fd));
    }
    const auto now = Clock::now();
    c->deadline = now + m_o.handshake;
    c->lastRx = c->lastTx = c->lastTaken = now;
    m_pending.push_back(std::move(c));
}

void NetRunner::tryConnect() {
    const auto now = Clock::now();
    if (m_o.listen || m_link || !m_pending.empty() || m_connecting || now < m_nextTry) {
        return;
    }
    m_nextTry = now + m_o.retry;
    if (auto c = Connector::start(m_o.address)) {
        m_connecting = std::move(*c);
        m_connectBy = now + m_o.handshake;
    }
}

// The connection under way becomes a pending one once it is made; a peer
// host that does not answer costs an attempt, never the bus.
void NetRunner::connecting(Clock::time_point now) {
    if (!m_connecting) {
        return;
    }
    auto fd = m_connecting->finish();
    if (fd) {
        addPending(std::move(*fd));
    } else if (fd.error() == Errc::TRY_AGAIN && now <= m_connectBy) {
        return;
    } else {
        m_log.note("could not connect to " + m_o.address, now);
        m_nextTry = now + m_o.retry;
    }
    m_connecting.reset();
}

// Nobody is known before the handshake, so a stranger must not hold the
// door: several connections may be pending at once, each for a short time,
// and the oldest gives way to a newcomer.
void NetRunner::acceptAll() {
    for (int i = 0; i < MAX_ACCEPTS_PER_TURN; ++i) {
        auto fd = acceptFrom(m_listener.get());
        if (!fd) {
            return;
        }
        if (m_link) {
            continue; // one peer at a time: the newcomer is closed at once
        }
        if (m_pending.size() >= m_o.maxPending) {
            m_log.note("too many connections without a HELLO: the oldest is closed", Clock::now());
            m_pending.erase(m_pending.begin());
        }
        addPending(std::move(*fd));
    }
}

// Writes as much of the buffer as the stream takes. False if it broke.
bool NetRunner::flush(Conn& c) {
    const auto now = Clock::now();
    while (c.handshaken && c.out.pending() > 0) {
        auto n = c.stream->write(std::span(c.out.out).subspan(c.out.sent));
        if (!n) {
            return false;
        }
        if (*n == 0) {
            break;
        }
        c.out.sent += *n;
        c.lastTx = c.lastTaken = now;
    }
    if (c.out.pending() == 0) {
        c.out.clear();
        c.lastTaken = now;
    }
    return true;
}

void NetRunner::closeConn(Conn& c, const std::string& why, std::optional<Goodbye> bye) {
    if (bye && c.handshaken) {
        c.out.clear();
        c.out.send(Frame{*bye});
        (void)flush(c);
    }
    m_log.note("closed a connection before it became the link: " + why, Clock::now());
    c.stream.reset();
}

void NetRunner::dropLink(const std::string& why, std::optional<Goodbye> bye) {
    if (!m_link) {
        return;
    }
    if (bye && m_link->handshaken) {
        m_link->out.clear();
        m_link->out.send(Frame{*bye});
        (void)flush(*m_link);
    }
    stderrLine("link dropped: " + why);
    m_limpet->linkDown();
    m_toLink.conn = nullptr;
    m_link.reset();
    m_nextTry = Clock::now() + m_o.retry;
}

// The peer's first frame: its HELLO, which makes this connection the link.
bool NetRunner::onHello(Conn& c, const Frame& frame) {
    const auto* hello = std::get_if<Hello>(&frame);
    if (hello == nullptr) {
        closeConn(c, "its first frame was not HELLO",
                  Goodbye{ByeReason::PROTOCOL, "expected HELLO"});
        return false;
    }
    if (m_link) {
        closeConn(c, "another connection became the link first",
                  Goodbye{ByeReason::SHUTDOWN, "already linked"});
        return false;
    }
    m_toLink.conn = &c;
    if (!m_limpet->linkUp(*hello)) {
        m_toLink.conn = nullptr;
        const Goodbye bye = m_limpet->goodbye();
        closeConn(c, "refused the peer's HELLO: " + bye.text, bye);
        return false;
    }
    c.helloIn = true;
    // The object stays where it is; only its owner changes.
    auto it = std::find_if(m_pending.begin(), m_pending.end(),
                           [&](const auto& p) { return p.get() == &c; });
    m_link = std::move(*it);
    m_pending.erase(it);
    return true;
}

bool NetRunner::onFrame(Conn& c, std::span<const std::byte> body) {
    auto frame = decodeFrame(body);
    if (!frame) {
        const Goodbye bye{ByeReason::PROTOCOL, "malformed frame"};
        isLink(c) ? dropLink("malformed frame", bye) : closeConn(c, "malformed frame", bye);
        return false;
    }
    if (!c.helloIn) {
        return onHello(c, *frame);
    }
    if (auto ok = m_limpet->fromLink(*frame); !ok) {
        const bool bye = ok.error() == Errc::PROTOCOL_VIOLATION;
        dropLink(bye ? "protocol violation" : "the peer said goodbye",
                 bye ? std::optional<Goodbye>(m_limpet->goodbye()) : std::nullopt);
        return false;
    }
    return true;
}

// Reads what the peer sent and acts on each whole frame. False once the
// connection is closed.
bool NetRunner::readConn(Conn& c) {
    std::byte buf[65536];
    const int reads = c.helloIn ? 64 : 2;
    for (int i = 0; i < reads; ++i) {
        auto n = c.stream->read(buf);
        const bool link = isLink(c);
        if (!n) {
            link ? dropLink("the peer closed the link") : closeConn(c, "closed by the peer", {});
            return false;
        }
        if (*n == 0) {
            break;
        }
        c.lastRx = Clock::now();
        if (!c.reader.feed(std::span(buf, *n))) {
            const Goodbye bye{ByeReason::PROTOCOL, "bad frame length"};
            link ? dropLink("bad frame length", bye) : closeConn(c, "bad frame length", bye);
            return false;
        }
        while (auto body = c.reader.next()) {
            if (!onFrame(c, *body)) {
                return false;
            }
        }
        if (!c.helloIn && c.reader.buffered() > MAX_BYTES_BEFORE_HELLO) {
            closeConn(c, "too many bytes before its HELLO",
                      Goodbye{ByeReason::PROTOCOL, "expected HELLO"});
            return false;
        }
    }
    return true;
}

// Moves a connection on: TLS handshake, then our HELLO, then frames both
// ways. False once it is closed.
bool NetRunner::serviceConn(Conn& c, short revents) {
    if (!c.handshaken) {
        auto done = c.stream->handshake();
        if (!done) {
            closeConn(c, "TLS handshake refused (wrong key or certificate?)", {});
            return false;
        }
        if (!*done) {
            return true;
        }
        c.handshaken = true;
        c.out.send(Frame{m_limpet->hello()});
    }
    if ((revents & (POLLIN | POLLHUP | POLLERR)) != 0 || m_tls) {
        if (!readConn(c)) {
            return false;
        }
    }
    if (!flush(c)) {
        isLink(c) ? dropLink("write failed") : closeConn(c, "write failed", {});
        return false;
    }
    return true;
}

// A connection that says HELLO moves to m_link while this runs, and one that
// is closed keeps its place (without a stream) until the end.
void NetRunner::servicePending(const std::vector<pollfd>& fds, size_t first) {
    std::vector<std::pair<Conn*, short>> turn;
    for (size_t i = 0; i < m_pending.size(); ++i) {
        turn.emplace_back(m_pending[i].get(), fds[first + i].revents);
    }
    for (auto [c, revents] : turn) {
        (void)serviceConn(*c, revents);
    }
    const auto before = m_pending.size();
    std::erase_if(m_pending, [](const auto& c) { return !c->stream; });
    if (!m_o.listen && m_pending.size() != before) {
        m_nextTry = Clock::now() + m_o.retry;
    }
}

// The peer took nothing for too long, or kept the buffer over half full (and
// so this bus's traffic shed) for too long, however often it heartbeats.
std::optional<std::string> NetRunner::stalled(Conn& c, Clock::time_point now) {
    if (c.out.pending() > 0 && now - c.lastTaken > m_o.stallAfter) {
        return "the peer took none of its frames for " + ms(m_o.stallAfter);
    }
    if (!congested()) {
        c.fullSince.reset();
        return std::nullopt;
    }
    if (!c.fullSince) {
        c.fullSince = now;
    }
    if (now - *c.fullSince > m_o.stallAfter) {
        return "the peer kept this Limpet's buffer over half full for " + ms(m_o.stallAfter);
    }
    return std::nullopt;
}

void NetRunner::linkTimers(Clock::time_point now) {
    if (!m_link) {
        return;
    }
    Conn& c = *m_link;
    if (now - c.lastRx > m_o.deadAfter) {
        dropLink("no heartbeat from the peer");
        return;
    }
    if (c.out.pending() > m_o.maxOutBytes) {
        dropLink("the peer does not keep up (send buffer full)");
        return;
    }
    if (auto why = stalled(c, now)) {
        dropLink(*why);
        return;
    }
    if (now - c.lastTx >= m_o.heartbeat && c.out.pending() == 0) {
        c.out.send(Frame{Heartbeat{}});
        if (!flush(c)) {
            dropLink("write failed");
        }
    }
}

void NetRunner::pendingTimers(Clock::time_point now) {
    const auto late = [&](const std::unique_ptr<Conn>& c) { return now > c->deadline; };
    const auto before = m_pending.size();
    std::erase_if(m_pending, late);
    if (m_pending.size() != before) {
        m_log.note("closed a connection that did not finish its handshake and HELLO within " +
                       ms(m_o.handshake),
                   now);
        if (!m_o.listen) {
            m_nextTry = now + m_o.retry;
        }
    }
}

// Always reads, congested or not (see Limpet::setLinkCongested): a slow peer
// costs its own traffic, never room on this bus.
Result<void> NetRunner::drainBus(int budget) {
    for (int i = 0; i < budget; ++i) {
        auto m = m_port->next();
        if (!m) {
            return fail(m.error());
        }
        if (!*m) {
            break;
        }
        m_limpet->setLinkCongested(congested());
        m_limpet->fromBus(**m);
    }
    return {};
}

void NetRunner::step() {
    tryConnect();
    std::vector<pollfd> fds;
    fds.push_back({m_port->fd(), POLLIN, 0});
    fds.push_back({m_link ? m_link->stream->fd() : -1, 0, 0});
    if (m_link) {
        const bool out = m_link->out.pending() > 0 || m_link->stream->wantsWrite();
        fds[1].events = static_cast<short>(POLLIN | (out ? POLLOUT : 0));
    }
    fds.push_back({m_listener ? m_listener.get() : -1, POLLIN, 0});
    fds.push_back({m_connecting ? m_connecting->fd() : -1, POLLOUT, 0});
    const size_t first = fds.size();
    for (const auto& c : m_pending) {
        const bool out = c->out.pending() > 0 || c->stream->wantsWrite() || !c->handshaken;
        fds.push_back({c->stream->fd(), static_cast<short>(POLLIN | (out ? POLLOUT : 0)), 0});
    }
    const int timeout = static_cast<int>(std::min<int64_t>(m_o.heartbeat.count() / 2, 100));
    if (::poll(fds.data(), fds.size(), timeout) < 0 && errno != EINTR) {
        return;
    }
    if (m_link) {
        (void)serviceConn(*m_link, fds[1].revents);
    }
    servicePending(fds, first);
    if ((fds[2].revents & POLLIN) != 0) {
        acceptAll();
    }
    if (!m_port->checkHangUp(fds[0].revents) || !drainBus(64)) {
        m_lostBus = true;
    }
    if (m_link && !flush(*m_link)) {
        dropLink("write failed");
    }
    const auto now = Clock::now();
    connecting(now);
    linkTimers(now);
    pendingTimers(now);
}

Result<void> NetRunner::run(const KeepGoing& keepGoing) {
    if (auto ok = setUp(); !ok) {
        return ok;
    }
    while (keepGoing() && m_limpet->fatalError().empty() && !m_lostBus) {
        step();
        if (m_lostBus && m_o.end.reconnect && keepGoing()) {
            if (auto back = rejoinBus(keepGoing); !back) {
                return keepGoing() ? back : Result<void>{}; // a signal stopped the wait
            }
        }
    }
    if (!m_limpet->fatalError().empty()) {
        m_error = m_limpet->fatalError();
        dropLink(m_error, m_limpet->goodbye());
        return fail(Errc::PROTOCOL_VIOLATION);
    }
    dropLink("shutting down", Goodbye{ByeReason::SHUTDOWN, "shutting down"});
    if (m_lostBus) {
        m_error = "lost the daemon at " + m_o.end.socketPath + " (--reconnect waits for it)";
        return fail(Errc::DISCONNECTED);
    }
    return {};
}

} // namespace

Result<void> checkNetOptions(const NetOptions& o, std::string& error) {
    const bool unix = o.address.starts_with("unix:");
    if (!o.tls && !unix) {
        error = "--plain is only for unix: addresses; a TCP link needs TLS";
        return fail(Errc::INVALID);
    }
    if (!o.tls && (!o.tlsFiles.peerName.empty() || o.anyPeer)) {
        error = "--peer-name and --any-peer need TLS (not --plain)";
        return fail(Errc::INVALID);
    }
    if (o.tls && (o.tlsFiles.cert.empty() || o.tlsFiles.key.empty() || o.tlsFiles.ca.empty())) {
        error = "--cert, --key and --ca are required (or --plain on a unix: address)";
        return fail(Errc::INVALID);
    }
    if (o.tls && o.tlsFiles.peerName.empty() == !o.anyPeer) {
        error = o.anyPeer ? "give --peer-name or --any-peer, not both"
                          : "--peer-name is required: the name the peer's certificate must carry "
                            "(--any-peer accepts any certificate the CA signed)";
        return fail(Errc::INVALID);
    }
    if (o.maxPending == 0) {
        error = "--max-pending must be at least 1";
        return fail(Errc::INVALID);
    }
    return {};
}

Result<void> runNet(const NetOptions& options, const KeepGoing& keepGoing, std::string& error) {
    NetRunner runner(options, error);
    return runner.run(keepGoing);
}

} // namespace xkbus::limpet
