// "A user-space daemon and unix sockets": the smallest broker that routes like
// a bus, as the baseline the issue #7 comparison starts from.
//
// One broker process with epoll and non-blocking AF_UNIX stream sockets;
// clients block. Clients register names: SERVE (the one replier of a name) or
// LISTEN (every listener of a name). A REQUEST to a name goes to its replier
// under an id of the broker's; the REPLY with that id goes back to the
// requester under the requester's own id; an ANNOUNCE goes to every listener.
// Frames are a 16-byte header, then the name, then the payload.
#include "peer_common.hpp"

#include <memory>
#include <optional>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unordered_map>

namespace {

using namespace xkbus::bench::peers;

// ---------------------------------------------------------------- wire

enum class Kind : uint16_t {
    SERVE = 1,      // name: be its replier
    LISTEN = 2,     // name: receive its announcements
    REGISTERED = 3, // the broker's answer to SERVE and LISTEN
    REQUEST = 4,    // name, payload; id: the requester's (to broker) or the broker's (to replier)
    REPLY = 5,      // payload; id: as in the request the replier got, then the requester's
    ANNOUNCE = 6,   // name, payload
    NO_REPLIER = 7, // the answer to a request for a name nobody serves
};

struct FrameHeader {
    uint32_t bodyBytes = 0; // name and payload
    uint16_t kind = 0;
    uint16_t nameBytes = 0;
    uint64_t id = 0;
};
static_assert(sizeof(FrameHeader) == 16);

constexpr uint32_t MAX_BODY_BYTES = 64u << 20;
constexpr std::size_t READ_CHUNK = 256 * 1024;

struct Frame {
    Kind kind{};
    uint64_t id = 0;
    std::string_view name;
    std::span<const std::byte> payload;
};

// The frame at the front of `bytes`, and its length; nullopt: not all there yet.
std::optional<std::pair<Frame, std::size_t>> parseFrame(std::span<const std::byte> bytes) {
    FrameHeader h;
    if (bytes.size() < sizeof h) {
        return std::nullopt;
    }
    std::memcpy(&h, bytes.data(), sizeof h);
    if (h.bodyBytes > MAX_BODY_BYTES || h.nameBytes > h.bodyBytes) {
        die("malformed frame");
    }
    const std::size_t total = sizeof h + h.bodyBytes;
    if (bytes.size() < total) {
        return std::nullopt;
    }
    const auto body = bytes.subspan(sizeof h, h.bodyBytes);
    const std::string_view name(reinterpret_cast<const char*>(body.data()), h.nameBytes);
    return std::pair{Frame{Kind(h.kind), h.id, name, body.subspan(h.nameBytes)}, total};
}

// The header, name and payload of one frame, ready for writev/sendmsg.
struct OutFrame {
    FrameHeader header;
    std::array<iovec, 3> iov{};

    OutFrame(Kind kind, uint64_t id, std::string_view name, std::span<const std::byte> payload) {
        header.bodyBytes = static_cast<uint32_t>(name.size() + payload.size());
        header.kind = static_cast<uint16_t>(kind);
        header.nameBytes = static_cast<uint16_t>(name.size());
        header.id = id;
        iov[0] = {&header, sizeof header};
        iov[1] = {const_cast<char*>(name.data()), name.size()};
        iov[2] = {const_cast<std::byte*>(payload.data()), payload.size()};
    }
    OutFrame(const OutFrame&) = delete;
    OutFrame& operator=(const OutFrame&) = delete;
    std::size_t bytes() const { return sizeof header + header.bodyBytes; }
};

// Bytes received and not yet parsed.
class InBuffer {
public:
    // Room for at least `bytes` more at the end.
    std::span<std::byte> space(std::size_t bytes) {
        if (m_data.size() - m_end < bytes) {
            std::memmove(m_data.data(), m_data.data() + m_start, m_end - m_start);
            m_end -= m_start;
            m_start = 0;
            if (m_data.size() - m_end < bytes) {
                m_data.resize(m_end + bytes);
            }
        }
        return {m_data.data() + m_end, m_data.size() - m_end};
    }
    void added(std::size_t bytes) { m_end += bytes; }
    std::span<const std::byte> pending() const {
        return {m_data.data() + m_start, m_end - m_start};
    }
    void consume(std::size_t bytes) {
        m_start += bytes;
        if (m_start == m_end) {
            m_start = m_end = 0;
        }
    }

private:
    std::vector<std::byte> m_data;
    std::size_t m_start = 0;
    std::size_t m_end = 0;
};

// ---------------------------------------------------------------- sockets

sockaddr_un addressOf(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) {
        die("socket path too long: " + path);
    }
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    return addr;
}

int listenAt(const std::string& path) {
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const sockaddr_un addr = addressOf(path);
    if (fd < 0 || bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
        listen(fd, 128) != 0) {
        dieErrno("listen at " + path);
    }
    return fd;
}

// A blocking client connection.
class FrameSocket {
public:
    explicit FrameSocket(const std::string& path)
        : m_fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
        const sockaddr_un addr = addressOf(path);
        if (m_fd < 0 || connect(m_fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
            dieErrno("connect to the broker");
        }
    }
    FrameSocket(const FrameSocket&) = delete;
    FrameSocket& operator=(const FrameSocket&) = delete;
    ~FrameSocket() { close(m_fd); }

    void send(Kind kind, uint64_t id, std::string_view name, std::span<const std::byte> payload) {
        OutFrame frame(kind, id, name, payload);
        writeAll(frame);
    }

    // The next frame, valid until the next call; nullopt: the broker closed.
    std::optional<Frame> receive() {
        m_in.consume(m_lastBytes);
        m_lastBytes = 0;
        for (;;) {
            if (auto parsed = parseFrame(m_in.pending())) {
                m_lastBytes = parsed->second;
                return parsed->first;
            }
            const auto space = m_in.space(READ_CHUNK);
            const ssize_t n = read(m_fd, space.data(), space.size());
            if (n == 0) {
                return std::nullopt;
            }
            if (n < 0 && errno != EINTR) {
                dieErrno("read from the broker");
            }
            m_in.added(n > 0 ? static_cast<std::size_t>(n) : 0);
        }
    }

    Frame receiveOrDie(Kind expected) {
        const auto frame = receive();
        if (!frame) {
            die("the broker closed the connection");
        }
        if (frame->kind != expected) {
            die("unexpected frame kind " + std::to_string(static_cast<int>(frame->kind)));
        }
        return *frame;
    }

    void registerName(Kind how, std::string_view name) {
        send(how, 0, name, {});
        (void)receiveOrDie(Kind::REGISTERED);
    }

private:
    void writeAll(OutFrame& frame) {
        msghdr msg{};
        msg.msg_iov = frame.iov.data();
        msg.msg_iovlen = frame.iov.size();
        std::size_t left = frame.bytes();
        while (left > 0) {
            const ssize_t n = sendmsg(m_fd, &msg, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                dieErrno("write to the broker");
            }
            left -= static_cast<std::size_t>(n);
            skip(msg, static_cast<std::size_t>(n));
        }
    }

    // Advances the iovecs of `msg` past `bytes` already written.
    static void skip(msghdr& msg, std::size_t bytes) {
        while (bytes > 0 && msg.msg_iovlen > 0) {
            iovec& first = msg.msg_iov[0];
            const std::size_t step = std::min(bytes, first.iov_len);
            first.iov_base = static_cast<char*>(first.iov_base) + step;
            first.iov_len -= step;
            bytes -= step;
            if (first.iov_len == 0) {
                ++msg.msg_iov;
                --msg.msg_iovlen;
            }
        }
    }

    int m_fd;
    InBuffer m_in;
    std::size_t m_lastBytes = 0;
};

// ---------------------------------------------------------------- broker

class Broker {
public:
    explicit Broker(int listenFd) : m_listenFd(listenFd), m_epoll(epoll_create1(EPOLL_CLOEXEC)) {
        if (m_epoll < 0) {
            dieErrno("epoll_create1");
        }
        watch(m_listenFd, EPOLLIN);
    }

    [[noreturn]] void run() {
        std::array<epoll_event, 64> events{};
        for (;;) {
            const int n = epoll_wait(m_epoll, events.data(), static_cast<int>(events.size()), -1);
            if (n < 0 && errno != EINTR) {
                dieErrno("epoll_wait");
            }
            for (int i = 0; i < n; ++i) {
                handle(events[static_cast<std::size_t>(i)]);
            }
            closeDead();
        }
    }

private:
    struct Connection {
        int fd = -1;
        InBuffer in;
        std::vector<std::byte> out; // what the socket did not take yet
        std::size_t outStart = 0;
        bool dead = false;
    };
    struct PendingRequest {
        int requesterFd;
        uint64_t requesterId;
    };

    void watch(int fd, uint32_t events, int op = EPOLL_CTL_ADD) {
        epoll_event e{};
        e.events = events;
        e.data.fd = fd;
        if (epoll_ctl(m_epoll, op, fd, &e) != 0) {
            dieErrno("epoll_ctl");
        }
    }

    void handle(const epoll_event& e) {
        if (e.data.fd == m_listenFd) {
            accept();
            return;
        }
        const auto it = m_connections.find(e.data.fd);
        if (it == m_connections.end() || it->second->dead) {
            return;
        }
        Connection& c = *it->second;
        if ((e.events & EPOLLOUT) != 0) {
            flush(c);
        }
        if ((e.events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) {
            receive(c);
        }
    }

    void accept() {
        const int fd = accept4(m_listenFd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            return; // the client gave up already
        }
        auto c = std::make_unique<Connection>();
        c->fd = fd;
        m_connections.emplace(fd, std::move(c));
        watch(fd, EPOLLIN);
    }

    // One read per readiness event keeps one busy client from starving the rest.
    void receive(Connection& c) {
        const auto space = c.in.space(READ_CHUNK);
        const ssize_t n = read(c.fd, space.data(), space.size());
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            c.dead = true;
            return;
        }
        c.in.added(n > 0 ? static_cast<std::size_t>(n) : 0);
        while (!c.dead) {
            const auto parsed = parseFrame(c.in.pending());
            if (!parsed) {
                break;
            }
            route(c, parsed->first);
            c.in.consume(parsed->second);
        }
    }

    void route(Connection& from, const Frame& f) {
        switch (f.kind) {
        case Kind::SERVE:
            m_repliers[std::string(f.name)] = from.fd;
            send(from, Kind::REGISTERED, 0, f.name, {});
            break;
        case Kind::LISTEN:
            m_listeners[std::string(f.name)].push_back(from.fd);
            send(from, Kind::REGISTERED, 0, f.name, {});
            break;
        case Kind::REQUEST:
            routeRequest(from, f);
            break;
        case Kind::REPLY:
            routeReply(f);
            break;
        case Kind::ANNOUNCE:
            routeAnnouncement(f);
            break;
        default:
            from.dead = true; // not a client's frame
        }
    }

    void routeRequest(Connection& from, const Frame& f) {
        const auto replier = m_repliers.find(std::string(f.name));
        Connection* to = replier == m_repliers.end() ? nullptr : live(replier->second);
        if (to == nullptr) {
            send(from, Kind::NO_REPLIER, f.id, {}, {});
            return;
        }
        const uint64_t id = m_nextId++;
        m_pending.emplace(id, PendingRequest{from.fd, f.id});
        send(*to, Kind::REQUEST, id, f.name, f.payload);
    }

    void routeReply(const Frame& f) {
        const auto pending = m_pending.find(f.id);
        if (pending == m_pending.end()) {
            return; // the requester has gone
        }
        const PendingRequest request = pending->second;
        m_pending.erase(pending);
        if (Connection* to = live(request.requesterFd)) {
            send(*to, Kind::REPLY, request.requesterId, {}, f.payload);
        }
    }

    void routeAnnouncement(const Frame& f) {
        const auto listeners = m_listeners.find(std::string(f.name));
        if (listeners == m_listeners.end()) {
            return;
        }
        for (const int fd : listeners->second) {
            if (Connection* to = live(fd)) {
                send(*to, Kind::ANNOUNCE, f.id, f.name, f.payload);
            }
        }
    }

    Connection* live(int fd) {
        const auto it = m_connections.find(fd);
        return it == m_connections.end() || it->second->dead ? nullptr : it->second.get();
    }

    // Writes now when nothing is queued; queues what the socket does not take.
    void send(Connection& to, Kind kind, uint64_t id, std::string_view name,
              std::span<const std::byte> payload) {
        OutFrame frame(kind, id, name, payload);
        std::size_t written = 0;
        if (to.out.size() == to.outStart) {
            msghdr msg{};
            msg.msg_iov = frame.iov.data();
            msg.msg_iovlen = frame.iov.size();
            const ssize_t n = sendmsg(to.fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0 && errno != EAGAIN) {
                to.dead = true;
                return;
            }
            written = n > 0 ? static_cast<std::size_t>(n) : 0;
            if (written == frame.bytes()) {
                return;
            }
            watch(to.fd, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
        }
        queue(to, frame, written);
    }

    static void queue(Connection& to, const OutFrame& frame, std::size_t skip) {
        for (const iovec& part : frame.iov) {
            const auto* bytes = static_cast<const std::byte*>(part.iov_base);
            const std::size_t from = std::min(skip, part.iov_len);
            to.out.insert(to.out.end(), bytes + from, bytes + part.iov_len);
            skip -= from;
        }
    }

    void flush(Connection& c) {
        while (c.outStart < c.out.size()) {
            const ssize_t n = ::send(c.fd, c.out.data() + c.outStart, c.out.size() - c.outStart,
                                     MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0 && errno == EAGAIN) {
                return;
            }
            if (n <= 0) {
                c.dead = true;
                return;
            }
            c.outStart += static_cast<std::size_t>(n);
        }
        c.out.clear();
        c.outStart = 0;
        watch(c.fd, EPOLLIN, EPOLL_CTL_MOD);
    }

    void closeDead() {
        for (auto it = m_connections.begin(); it != m_connections.end();) {
            if (!it->second->dead) {
                ++it;
                continue;
            }
            forgetNames(it->first);
            close(it->first); // also leaves the epoll set
            it = m_connections.erase(it);
        }
    }

    void forgetNames(int fd) {
        std::erase_if(m_repliers, [fd](const auto& entry) { return entry.second == fd; });
        for (auto& [name, fds] : m_listeners) {
            std::erase(fds, fd);
        }
    }

    int m_listenFd;
    int m_epoll;
    std::unordered_map<int, std::unique_ptr<Connection>> m_connections;
    std::unordered_map<std::string, int> m_repliers;
    std::unordered_map<std::string, std::vector<int>> m_listeners;
    std::unordered_map<uint64_t, PendingRequest> m_pending;
    uint64_t m_nextId = 1;
};

// ---------------------------------------------------------------- scenarios

constexpr std::string_view SERVICE = "peer.echo";
constexpr std::string_view TOPIC = "peer.news";

// Listens before forking, so clients can connect before the broker runs.
pid_t startBroker(const std::string& path) {
    const int listenFd = listenAt(path);
    const pid_t pid = spawnChild("broker", [listenFd]() -> int { Broker(listenFd).run(); });
    close(listenFd);
    return pid;
}

int echoReplies(const std::string& path, const AckPipe& acks, const Options& o) {
    FrameSocket broker(path);
    broker.registerName(Kind::SERVE, SERVICE);
    Acker(acks, 0, o).ready();
    while (const auto request = broker.receive()) {
        if (request->kind != Kind::REQUEST) {
            die("the replier got an unexpected frame");
        }
        broker.send(Kind::REPLY, request->id, {}, request->payload);
    }
    return 0; // the broker went away: the run is over
}

Measured runRoundTrips(const Options& o, const std::string& path) {
    AckPipe acks;
    const pid_t replier = spawnChild("replier", [&] { return echoReplies(path, acks, o); });
    CreditWindow ready(acks, 1, 1);
    ready.watch({replier}, 1);
    ready.waitReady();
    FrameSocket broker(path);
    std::vector<std::byte> request = makePayload(o.size);
    const Measured m = measureRoundTrips(o, [&](uint64_t seq) {
        stampSequence(request, seq);
        broker.send(Kind::REQUEST, seq, SERVICE, request);
        const Frame reply = broker.receiveOrDie(Kind::REPLY);
        if (reply.id != seq) {
            die("reply for request " + std::to_string(reply.id) + ", expected " +
                std::to_string(seq));
        }
        checkPayload(reply.payload, o.size, seq);
    });
    stopChild(replier);
    return m;
}

int listenForAnnouncements(const std::string& path, const AckPipe& acks, uint32_t index,
                           const Options& o) {
    FrameSocket broker(path);
    broker.registerName(Kind::LISTEN, TOPIC);
    Acker acker(acks, index, o);
    acker.ready();
    for (uint64_t seq = 0; seq < o.count; ++seq) {
        const Frame f = broker.receiveOrDie(Kind::ANNOUNCE);
        checkPayload(f.payload, o.size, seq);
        acker.received(seq + 1);
    }
    return 0;
}

Measured runAnnouncements(const Options& o, const std::string& path) {
    AckPipe acks;
    std::vector<pid_t> listeners;
    for (uint32_t i = 0; i < o.listeners; ++i) {
        listeners.push_back(
            spawnChild("listener", [&, i] { return listenForAnnouncements(path, acks, i, o); }));
    }
    CreditWindow credit(acks, o.listeners, o.window);
    credit.watch(listeners, o.count);
    credit.waitReady();
    FrameSocket broker(path);
    std::vector<std::byte> payload = makePayload(o.size);
    const Measured m = measureAnnouncements(
        o, credit,
        [&](uint64_t seq) {
            stampSequence(payload, seq);
            broker.send(Kind::ANNOUNCE, 0, TOPIC, payload);
        },
        [] {});
    const bool allOk = waitListeners(listeners);
    if (!allOk) {
        die("a listener failed");
    }
    return m;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app("A minimal AF_UNIX broker (epoll daemon, blocking clients)", "bench_peer_afunix");
    Options o;
    if (const int rc = parseOptions(app, o, argc, argv); rc >= 0) {
        return rc;
    }
    armTimeout(o.timeoutSeconds);
    const TempDir dir;
    const std::string path = dir.file("broker.sock");
    const pid_t broker = startBroker(path);
    const Measured m = o.isRoundTrip() ? runRoundTrips(o, path) : runAnnouncements(o, path);
    stopChild(broker);
    printResult("afunix", o, m);
    return 0;
}
