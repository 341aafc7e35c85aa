// One side of a Limpet pair over a network link: poll the Ksock and the
// link, frame and check what arrives, heartbeat, and bound what is buffered.
#include <cstdio>
#include <poll.h>
#include <vector>
#include <xkbus/limpet/channel_port.hpp>
#include <xkbus/limpet/drivers.hpp>
#include <xkbus/limpet/rate_limit.hpp>

namespace xkbus::limpet {
namespace {

using Clock = std::chrono::steady_clock;

// Frames for the other side, encoded into one bounded buffer.
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

class NetRunner {
public:
    NetRunner(const NetOptions& o, std::string& error) : m_o(o), m_error(error) {}
    Result<void> run(const KeepGoing& keepGoing);

private:
    Result<void> setUp();
    void step();
    void tryConnect();
    void tryAccept();
    void startLink(UniqueFd fd);
    void dropLink(const std::string& why, std::optional<Goodbye> bye = std::nullopt);
    void serviceLink(short revents);
    bool readLink();
    bool handleBody(std::span<const std::byte> body);
    bool flush();
    void timers();
    Result<void> drainBus(int budget);
    bool congested() const { return m_sink.pending() > m_o.maxOutBytes / 2; }

    const NetOptions& m_o;
    std::string& m_error;
    std::unique_ptr<ChannelPort> m_port;
    RateLimitedLog m_log{stderrLine};
    BufferSink m_sink;
    std::unique_ptr<Limpet> m_limpet;
    std::shared_ptr<TlsContext> m_tls;
    UniqueFd m_listener;
    std::unique_ptr<Stream> m_link;
    bool m_handshaken = false;
    bool m_helloIn = false;
    FrameReader m_reader;
    Clock::time_point m_lastRx;
    Clock::time_point m_lastTx;
    Clock::time_point m_nextTry;
    bool m_lostBus = false;
};

Result<void> NetRunner::setUp() {
    auto port = openPort(m_o.end.socketPath, m_o.end.bus);
    if (!port) {
        m_error = "cannot open a Ksock on the bus (is the trusted socket right?)";
        return fail(port.error());
    }
    m_port = std::move(*port);
    Config config = m_o.end.config;
    config.heartbeatMs = static_cast<uint32_t>(m_o.heartbeat.count());
    config.log = [this](std::string_view line) { m_log.note(line, Clock::now()); };
    m_limpet = std::make_unique<Limpet>(config, *m_port, m_sink);
    if (auto ok = m_limpet->start(); !ok) {
        m_error = "cannot set up the Limpet's Ksock";
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

void NetRunner::startLink(UniqueFd fd) {
    if (m_tls) {
        std::string why;
        auto s = m_tls->wrap(std::move(fd), why);
        if (!s) {
            return;
        }
        m_link = std::move(*s);
    } else {
        m_link = plainStream(std::move(fd));
    }
    m_handshaken = false;
    m_helloIn = false;
    m_reader = FrameReader{};
    m_sink.clear();
    m_lastRx = m_lastTx = Clock::now();
}

void NetRunner::dropLink(const std::string& why, std::optional<Goodbye> bye) {
    if (!m_link) {
        return;
    }
    if (bye && m_handshaken) {
        m_sink.clear();
        m_sink.send(Frame{*bye});
        (void)flush();
    }
    std::fprintf(stderr, "xkbus-limpet: link dropped: %s\n", why.c_str());
    m_limpet->linkDown();
    m_link.reset();
    m_sink.clear();
    m_nextTry = Clock::now() + m_o.retry;
}

void NetRunner::tryConnect() {
    if (m_o.listen || m_link || Clock::now() < m_nextTry) {
        return;
    }
    m_nextTry = Clock::now() + m_o.retry;
    if (auto fd = connectTo(m_o.address)) {
        startLink(std::move(*fd));
    }
}

void NetRunner::tryAccept() {
    auto fd = acceptFrom(m_listener.get());
    if (!fd) {
        return;
    }
    if (m_link) {
        return; // one peer at a time: the newcomer is closed at once
    }
    startLink(std::move(*fd));
}

// Writes as much of the buffer as the stream takes. False if it broke.
bool NetRunner::flush() {
    while (m_link && m_handshaken && m_sink.pending() > 0) {
        auto n = m_link->write(std::span(m_sink.out).subspan(m_sink.sent));
        if (!n) {
            return false;
        }
        if (*n == 0) {
            break;
        }
        m_sink.sent += *n;
        m_lastTx = Clock::now();
    }
    if (m_sink.pending() == 0) {
        m_sink.clear();
    }
    return true;
}

bool NetRunner::handleBody(std::span<const std::byte> body) {
    auto frame = decodeFrame(body);
    if (!frame) {
        dropLink("malformed frame", Goodbye{ByeReason::PROTOCOL, "malformed frame"});
        return false;
    }
    if (!m_helloIn) {
        const auto* hello = std::get_if<Hello>(&*frame);
        if (hello == nullptr || !m_limpet->linkUp(*hello)) {
            const Goodbye bye =
                hello ? m_limpet->goodbye() : Goodbye{ByeReason::PROTOCOL, "expected HELLO"};
            dropLink("refused the peer's HELLO: " + bye.text, bye);
            return false;
        }
        m_helloIn = true;
        return true;
    }
    if (auto ok = m_limpet->fromLink(*frame); !ok) {
        const bool bye = ok.error() == Errc::PROTOCOL_VIOLATION;
        dropLink(bye ? "protocol violation" : "the peer said goodbye",
                 bye ? std::optional<Goodbye>(m_limpet->goodbye()) : std::nullopt);
        return false;
    }
    return true;
}

bool NetRunner::readLink() {
    std::byte buf[65536];
    for (int i = 0; i < 64 && m_link; ++i) {
        auto n = m_link->read(buf);
        if (!n) {
            dropLink("the peer closed the link");
            return false;
        }
        if (*n == 0) {
            break;
        }
        m_lastRx = Clock::now();
        if (!m_reader.feed(std::span(buf, *n))) {
            dropLink("bad frame length", Goodbye{ByeReason::PROTOCOL, "bad frame length"});
            return false;
        }
        while (auto body = m_reader.next()) {
            if (!handleBody(*body)) {
                return false;
            }
        }
        if (m_reader.failed()) {
            dropLink("bad frame length", Goodbye{ByeReason::PROTOCOL, "bad frame length"});
            return false;
        }
    }
    return true;
}

void NetRunner::serviceLink(short revents) {
    if (!m_handshaken) {
        auto done = m_link->handshake();
        if (!done) {
            dropLink("TLS handshake refused (wrong key or certificate?)");
            return;
        }
        if (!*done) {
            return;
        }
        m_handshaken = true;
        m_sink.send(Frame{m_limpet->hello()});
    }
    if ((revents & (POLLIN | POLLHUP | POLLERR)) != 0 || m_tls) {
        if (!readLink()) {
            return;
        }
    }
    if (!flush()) {
        dropLink("write failed");
    }
}

void NetRunner::timers() {
    if (!m_link) {
        return;
    }
    const auto now = Clock::now();
    if (now - m_lastRx > m_o.deadAfter) {
        dropLink(m_helloIn ? "no heartbeat from the peer" : "no HELLO from the peer in time");
        return;
    }
    if (m_helloIn && now - m_lastTx >= m_o.heartbeat && m_sink.pending() == 0) {
        m_sink.send(Frame{Heartbeat{}});
        if (!flush()) {
            dropLink("write failed");
        }
    }
    if (m_link && m_sink.pending() > m_o.maxOutBytes) {
        dropLink("the peer does not keep up (send buffer full)");
    }
}

Result<void> NetRunner::drainBus(int budget) {
    for (int i = 0; i < budget && !congested(); ++i) {
        auto m = m_port->next();
        if (!m) {
            return fail(m.error());
        }
        if (!*m) {
            break;
        }
        m_limpet->fromBus(**m);
    }
    return {};
}

void NetRunner::step() {
    tryConnect();
    std::vector<pollfd> fds;
    fds.push_back({m_port->fd(), static_cast<short>(congested() ? 0 : POLLIN), 0});
    if (m_link) {
        const bool out = m_sink.pending() > 0 || m_link->wantsWrite() || !m_handshaken;
        fds.push_back({m_link->fd(), static_cast<short>(POLLIN | (out ? POLLOUT : 0)), 0});
    } else if (m_listener) {
        fds.push_back({m_listener.get(), POLLIN, 0});
    }
    const int timeout = static_cast<int>(std::min<int64_t>(m_o.heartbeat.count() / 2, 100));
    if (::poll(fds.data(), fds.size(), timeout) < 0 && errno != EINTR) {
        return;
    }
    if (fds.size() > 1 && m_link) {
        serviceLink(fds[1].revents);
    } else if (fds.size() > 1 && (fds[1].revents & POLLIN) != 0) {
        tryAccept();
    }
    if (!drainBus(64)) {
        m_lostBus = true;
    }
    if (m_link && !flush()) {
        dropLink("write failed");
    }
    timers();
}

Result<void> NetRunner::run(const KeepGoing& keepGoing) {
    if (auto ok = setUp(); !ok) {
        return ok;
    }
    while (keepGoing() && m_limpet->fatalError().empty() && !m_lostBus) {
        step();
    }
    if (!m_limpet->fatalError().empty()) {
        m_error = m_limpet->fatalError();
        dropLink(m_error, m_limpet->goodbye());
        return fail(Errc::PROTOCOL_VIOLATION);
    }
    dropLink("shutting down", Goodbye{ByeReason::SHUTDOWN, "shutting down"});
    if (m_lostBus) {
        m_error = "lost the daemon";
        return fail(Errc::DISCONNECTED);
    }
    return {};
}

} // namespace

Result<void> runNet(const NetOptions& options, const KeepGoing& keepGoing, std::string& error) {
    NetRunner runner(options, error);
    return runner.run(keepGoing);
}

} // namespace xkbus::limpet
