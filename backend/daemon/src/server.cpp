// xkbusd's event loop. See server.hpp.
#include "xen_frontdoor.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <deque>
#include <filesystem>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <unordered_map>
#include <unordered_set>
#include <xkbus/daemon/server.hpp>
#include <xkbus/ring/local/local_transport.hpp>
#include <xkbus/socket/socket_link.hpp>

namespace xkbus::daemon {

using protocol::Record;
using protocol::RecordType;
using socket::UniqueFd;

namespace {

// The pollable fd of one Ksock: a datagram socketpair whose application end
// goes to the client. The daemon alone decides what poll() says on it:
// readable while one datagram waits on the application end, unwritable while
// the peer end's receive queue is full.
class KsockSignal {
public:
    static Result<KsockSignal> create() {
        int fds[2];
        if (::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
            return fail(Errc::NO_MEMORY);
        }
        KsockSignal s;
        s.m_app = UniqueFd(fds[0]);
        s.m_peer = UniqueFd(fds[1]);
        return s;
    }

    int appFd() const noexcept { return m_app.get(); }

    void apply(const Readiness& r) {
        if (r.readable != m_readable) {
            const char token = 'r';
            char sink = 0;
            // One datagram makes the application end readable; taking it back
            // (the daemon holds that end too) makes it unreadable.
            m_readable = r.readable ? ::send(m_peer.get(), &token, 1, MSG_DONTWAIT) == 1
                                    : ::recv(m_app.get(), &sink, 1, MSG_DONTWAIT) != 1;
        }
        if (r.blocked != m_blocked) {
            m_blocked = r.blocked;
            const char token = 'w';
            char sink[64];
            if (r.blocked) {
                while (::send(m_app.get(), &token, 1, MSG_DONTWAIT) == 1) {
                }
            } else {
                while (::recv(m_peer.get(), sink, sizeof sink, MSG_DONTWAIT) > 0) {
                }
            }
        }
    }

private:
    UniqueFd m_app;
    UniqueFd m_peer;
    bool m_readable = false;
    bool m_blocked = false;
};

// One client connection: its ring, and for a local client the handshake
// socket, which carries the Ksocks' pollable fds to it.
struct Peer {
    ConnectionId id = 0;
    std::string label;
    std::optional<ring::Connection> ring;
    UniqueFd socket; // local clients only
    bool xen = false;
    std::unordered_map<uint32_t, KsockSignal> signals; // by handle
    std::unordered_map<uint32_t, uint32_t> fdForCall;  // OPEN call id -> handle
    std::deque<std::vector<std::byte>> out;            // records the ring has no room for yet
    size_t outBytes = 0;
};

// A local client whose ring handshake has not fully arrived.
struct Handshake {
    UniqueFd socket;
    uint32_t pid = 0;
    bool trusted = false;
};

// What an epoll event is about: the kind in the top byte, an id below.
// PEER: a peer's kick; PEER_LIVENESS: its liveness fd (maybe death).
enum class Watch : uint64_t {
    LISTENER = 1,
    TRUSTED_LISTENER,
    SIGNALS,
    HANDSHAKE,
    PEER,
    PEER_LIVENESS,
    XENSTORE
};

uint64_t tag(Watch kind, uint64_t id = 0) {
    return static_cast<uint64_t>(kind) << 56 | id;
}

void raiseFileLimit(spdlog::logger& log) {
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max; // each Ksock costs the daemon two descriptors
        if (::setrlimit(RLIMIT_NOFILE, &lim) == 0) {
            log.info("descriptor limit raised to {}", lim.rlim_cur);
        }
    }
}

constexpr size_t MAX_PENDING_HANDSHAKES = 128;
constexpr uint32_t FIRST_LOCAL_CHARGE_GROUP = 0x20000; // Xen guests use 0x10000 + domid

} // namespace

struct Server::Impl {
    Impl(ServerOptions opts, std::shared_ptr<spdlog::logger> logger)
        : options(std::move(opts)), log(std::move(logger)), core(coreConfig(options)),
          dispatcher(core, options.quotas) {}

    static core::CoreConfig coreConfig(const ServerOptions& o) {
        core::CoreConfig c;
        c.initialBuses = o.buses;
        c.bus.recordQueueEvents = true;
        c.bus.maxQueuedBytesPerGroup = o.maxQueuedBytesPerPeer;
        return c;
    }

    Result<void> start();
    Result<UniqueFd> listen(const std::string& path, Watch kind);
    Result<void> startXen();
    void loop();
    void onEvent(uint64_t data);
    void acceptAll(int listener, bool trusted);
    void continueHandshake(int fd);
    ConnectionId adopt(ring::Connection connection, const PeerInfo& info, std::string label,
                       UniqueFd socket);
    void wake(Peer& peer, bool livenessReadable);
    void serve(Peer& peer);
    bool receiveBatch(Peer& peer);
    void handleRecord(Peer& peer, std::span<const std::byte> bytes, std::string& violation);
    void route(std::vector<std::pair<ConnectionId, uint32_t>> touched);
    void deliver(Peer& peer, const protocol::Record& record);
    void queueOut(Peer& peer, std::vector<std::byte> bytes);
    bool flushOut(Peer& peer);
    void drop(ConnectionId id, const std::string& reason);
    void doom(Peer& peer, std::string reason);
    void watchFd(int fd, uint64_t data);
    void shutdown();

    ServerOptions options;
    std::shared_ptr<spdlog::logger> log;
    core::Core core;
    Dispatcher dispatcher;
    UniqueFd epoll;
    UniqueFd listener;
    UniqueFd trustedListener;
    UniqueFd signals;
    std::unique_ptr<XenFrontdoor> xen;
    std::unordered_map<ConnectionId, Peer> peers;
    std::unordered_map<int, Handshake> handshakes;
    std::unordered_set<ConnectionId> ready; // serve again before sleeping
    std::unordered_map<ConnectionId, std::string> doomed;
    uint32_t nextChargeGroup = FIRST_LOCAL_CHARGE_GROUP;
    bool stopping = false;
};

Server::Server(ServerOptions options, std::shared_ptr<spdlog::logger> log)
    : m_impl(std::make_unique<Impl>(std::move(options), std::move(log))) {}

Server::~Server() = default;

Result<void> Server::run() {
    if (auto started = m_impl->start(); !started) {
        return started;
    }
    m_impl->loop();
    m_impl->shutdown();
    return {};
}

void Server::Impl::watchFd(int fd, uint64_t data) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = data;
    ::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, fd, &ev);
}

Result<UniqueFd> Server::Impl::listen(const std::string& path, Watch kind) {
    std::error_code ec;
    const auto dir = std::filesystem::path(path).parent_path();
    if (!dir.empty()) {
        std::filesystem::create_directories(dir, ec);
    }
    auto listening = socket::listenOn(path);
    if (!listening) {
        log->error("cannot listen on {}: {}", path, describe(listening.error()));
        return fail(listening.error());
    }
    watchFd(listening->get(), tag(kind));
    return listening;
}

Result<void> Server::Impl::start() {
    raiseFileLimit(*log);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    ::pthread_sigmask(SIG_BLOCK, &mask, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
    signals = UniqueFd(::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
    epoll = UniqueFd(::epoll_create1(EPOLL_CLOEXEC));
    if (!signals || !epoll) {
        return fail(Errc::NO_MEMORY);
    }
    watchFd(signals.get(), tag(Watch::SIGNALS));
    auto local = listen(options.socketPath, Watch::LISTENER);
    if (!local) {
        return fail(local.error());
    }
    listener = std::move(*local);
    if (!options.trustedSocketPath.empty()) {
        auto trusted = listen(options.trustedSocketPath, Watch::TRUSTED_LISTENER);
        if (!trusted) {
            return fail(trusted.error());
        }
        trustedListener = std::move(*trusted);
        log->info("Limpets may connect on {}", options.trustedSocketPath);
    }
    if (options.xen) {
        if (auto started = startXen(); !started) {
            return started;
        }
    }
    log->info("serving {} bus(es) on {}", core.busCount(), options.socketPath);
    return {};
}

Result<void> Server::Impl::startXen() {
    PeerSink sink;
    sink.adopt = [this](ring::Connection c, const PeerInfo& info, std::string label) {
        return adopt(std::move(c), info, std::move(label), UniqueFd());
    };
    sink.drop = [this](ConnectionId id, const std::string& reason) { drop(id, reason); };
    xen = std::make_unique<XenFrontdoor>(std::move(sink), log, options.slotsPerGuest, options.ring);
    if (auto started = xen->start(); !started) {
        return started;
    }
    watchFd(xen->watchFd(), tag(Watch::XENSTORE));
    return {};
}

void Server::Impl::loop() {
    epoll_event events[64];
    while (!stopping) {
        const int n = ::epoll_wait(epoll.get(), events, 64, ready.empty() ? -1 : 0);
        if (n < 0 && errno != EINTR) {
            log->error("epoll_wait: {}", std::strerror(errno));
            return;
        }
        for (int i = 0; i < n; ++i) {
            onEvent(events[i].data.u64);
        }
        for (ConnectionId id : std::vector<ConnectionId>(ready.begin(), ready.end())) {
            auto peer = peers.find(id);
            if (peer == peers.end()) {
                ready.erase(id);
            } else {
                serve(peer->second);
            }
        }
        for (auto& [id, reason] : std::exchange(doomed, {})) {
            drop(id, reason);
        }
    }
}

void Server::Impl::onEvent(uint64_t data) {
    const uint64_t id = data & ((uint64_t{1} << 56) - 1);
    switch (static_cast<Watch>(data >> 56)) {
    case Watch::SIGNALS: {
        signalfd_siginfo info{};
        (void)!::read(signals.get(), &info, sizeof info);
        log->info("stopping on signal {}", info.ssi_signo);
        stopping = true;
        break;
    }
    case Watch::LISTENER:
        acceptAll(listener.get(), false);
        break;
    case Watch::TRUSTED_LISTENER:
        acceptAll(trustedListener.get(), true);
        break;
    case Watch::HANDSHAKE:
        continueHandshake(static_cast<int>(id));
        break;
    case Watch::PEER:
    case Watch::PEER_LIVENESS:
        if (auto peer = peers.find(static_cast<ConnectionId>(id)); peer != peers.end()) {
            wake(peer->second, static_cast<Watch>(data >> 56) == Watch::PEER_LIVENESS);
        }
        break;
    case Watch::XENSTORE:
        xen->onWatchReadable();
        break;
    }
}

void Server::Impl::acceptAll(int listeningFd, bool trusted) {
    for (;;) {
        uint32_t pid = 0;
        auto accepted = socket::acceptFrom(listeningFd, pid);
        if (!accepted) {
            if (accepted.error() != Errc::TRY_AGAIN) {
                log->warn("accept failed: {}", describe(accepted.error()));
            }
            return;
        }
        if (handshakes.size() >= MAX_PENDING_HANDSHAKES) {
            log->warn("refusing pid {}: {} handshakes already pending", pid, handshakes.size());
            continue;
        }
        const int fd = accepted->get();
        handshakes[fd] = Handshake{std::move(*accepted), pid, trusted};
        watchFd(fd, tag(Watch::HANDSHAKE, static_cast<uint64_t>(fd)));
        continueHandshake(fd); // it is usually there already
    }
}

// Takes the ring a local client offers. Its descriptors and its ring header
// are checked by the local transport before anything is mapped or used.
void Server::Impl::continueHandshake(int fd) {
    auto pending = handshakes.find(fd);
    if (pending == handshakes.end()) {
        return;
    }
    std::string_view why;
    auto connection = ring::local::acceptBackend(fd, options.ring, &why);
    if (!connection && connection.error() == Errc::TRY_AGAIN) {
        return;
    }
    ::epoll_ctl(epoll.get(), EPOLL_CTL_DEL, fd, nullptr);
    Handshake h = std::move(pending->second);
    handshakes.erase(pending);
    if (!connection) {
        // A connect-and-close is a liveness probe, not an attack.
        log->log(connection.error() == Errc::DISCONNECTED ? spdlog::level::debug
                                                          : spdlog::level::warn,
                 "refusing pid {}: {} ({})", h.pid, describe(connection.error()), why);
        return;
    }
    const PeerInfo info{
        .domid = 0, .pid = h.pid, .trusted = h.trusted, .chargeGroup = nextChargeGroup++};
    const std::string label = fmt::format("{} (pid {})", h.trusted ? "Limpet" : "client", h.pid);
    adopt(std::move(*connection), info, label, std::move(h.socket));
}

ConnectionId Server::Impl::adopt(ring::Connection connection, const PeerInfo& info,
                                 std::string label, UniqueFd socket) {
    const ConnectionId id = dispatcher.connect(info);
    Peer& peer = peers[id];
    peer.id = id;
    peer.label = std::move(label);
    peer.xen = info.domid != 0;
    peer.socket = std::move(socket);
    peer.ring.emplace(std::move(connection));
    const auto fds = peer.ring->pollFds();
    if (fds[0] >= 0) {
        watchFd(fds[0], tag(Watch::PEER, id));
    }
    if (fds[1] >= 0) {
        watchFd(fds[1], tag(Watch::PEER_LIVENESS, id));
    }
    log->info("#{} connected: {}", id, peer.label);
    ready.insert(id); // it may have written before we watched
    return id;
}

// A kick or a liveness event: consume it, then serve.
void Server::Impl::wake(Peer& peer, bool livenessReadable) {
    if (auto woke = peer.ring->onWakeup(livenessReadable); !woke) {
        doom(peer, std::string(describe(woke.error())));
        return;
    }
    serve(peer);
}

void Server::Impl::serve(Peer& peer) {
    if (doomed.contains(peer.id) || !flushOut(peer)) {
        ready.erase(peer.id);
        return;
    }
    const bool more = receiveBatch(peer);
    if (doomed.contains(peer.id) || !flushOut(peer)) {
        ready.erase(peer.id);
        return;
    }
    auto armed = peer.ring->arm(); // ask for a kick before we sleep
    if (!armed) {
        doom(peer, std::string(peer.ring->brokenReason()));
        return;
    }
    if (more || *armed || !peer.out.empty()) {
        ready.insert(peer.id);
    } else {
        ready.erase(peer.id);
    }
}

// Handles up to maxRecordsPerWakeup records; true if there may be more.
bool Server::Impl::receiveBatch(Peer& peer) {
    for (size_t n = 0; n < options.maxRecordsPerWakeup; ++n) {
        auto record = peer.ring->tryReceive();
        if (!record) {
            doom(peer, record.error() == Errc::DISCONNECTED
                           ? std::string("disconnected")
                           : "protocol violation: " + std::string(peer.ring->brokenReason()));
            return false;
        }
        if (!*record) {
            return false;
        }
        std::string violation;
        handleRecord(peer, **record, violation);
        if (!violation.empty()) {
            doom(peer, "protocol violation: " + violation);
            return false;
        }
    }
    return true;
}

void Server::Impl::handleRecord(Peer& peer, std::span<const std::byte> bytes,
                                std::string& violation) {
    // The ring copied the bytes out of shared memory before handing them
    // over; decode() checks every field before the dispatcher sees them.
    auto record = protocol::decode(bytes);
    if (!record) {
        violation = "sent a malformed record";
        return;
    }
    auto handled = dispatcher.handle(peer.id, *record);
    if (!handled) {
        violation = handled.error();
        return;
    }
    if (record->type == RecordType::OPEN && peer.socket &&
        dispatcher.readiness(peer.id, record->handle)) {
        auto signal = KsockSignal::create();
        if (!signal) {
            violation = "(none: the daemon is out of descriptors)";
            return;
        }
        peer.signals.insert_or_assign(record->handle, std::move(*signal));
        peer.fdForCall[record->callId] = record->handle;
    }
    route({{peer.id, record->handle}});
}

// Sends what the dispatcher produced. Every affected Ksock's fd is brought up
// to date first, so that when a caller hears its result, the fds of everyone
// it reached are already readable.
void Server::Impl::route(std::vector<std::pair<ConnectionId, uint32_t>> touched) {
    std::vector<Outgoing> outgoing = dispatcher.takeOutgoing();
    for (const Outgoing& out : outgoing) {
        const RecordType t = out.record.type;
        if (t == RecordType::PUSHED || t == RecordType::REMOVED || t == RecordType::SEND_FINISHED) {
            touched.emplace_back(out.to, out.record.handle);
        }
    }
    for (const auto& [connection, handle] : touched) {
        auto peer = peers.find(connection);
        if (peer == peers.end()) {
            continue;
        }
        auto signal = peer->second.signals.find(handle);
        if (signal == peer->second.signals.end()) {
            continue;
        }
        auto readiness = dispatcher.readiness(connection, handle);
        if (readiness) {
            signal->second.apply(*readiness);
        } else {
            peer->second.signals.erase(signal); // the Ksock was closed
        }
    }
    for (const Outgoing& out : outgoing) {
        if (auto peer = peers.find(out.to); peer != peers.end() && !doomed.contains(out.to)) {
            deliver(peer->second, out.record);
        }
    }
}

void Server::Impl::deliver(Peer& peer, const protocol::Record& record) {
    auto withFd = peer.fdForCall.find(record.callId);
    if (record.type == RecordType::RESULT && withFd != peer.fdForCall.end()) {
        // The fd goes first, so it is there when the client reads the result.
        auto signal = peer.signals.find(withFd->second);
        peer.fdForCall.erase(withFd);
        if (signal != peer.signals.end()) {
            if (auto sent = ring::local::sendDescriptor(peer.socket.get(), signal->second.appFd());
                !sent) {
                doom(peer, "cannot hand it a Ksock's fd: " + std::string(describe(sent.error())));
                return;
            }
        }
    }
    std::vector<std::byte> bytes;
    protocol::encode(record, bytes);
    queueOut(peer, std::move(bytes));
}

void Server::Impl::queueOut(Peer& peer, std::vector<std::byte> bytes) {
    if (peer.out.empty()) {
        auto sent = peer.ring->trySend(bytes);
        if (sent) {
            if (peer.ring->endpoint().sendPending()) {
                ready.insert(peer.id); // arm for space before we sleep
            }
            return;
        }
        if (sent.error() != Errc::TRY_AGAIN) {
            doom(peer, std::string(describe(sent.error())));
            return;
        }
    }
    peer.outBytes += bytes.size();
    peer.out.push_back(std::move(bytes));
    ready.insert(peer.id);
    if (peer.outBytes > options.maxBufferedPerPeer) {
        doom(peer, fmt::format("it stopped reading ({} bytes waiting for it)", peer.outBytes));
    }
}

// Moves queued records into the ring while it has room; false if the peer broke.
bool Server::Impl::flushOut(Peer& peer) {
    for (;;) {
        auto flushed = peer.ring->flush();
        if (!flushed) {
            doom(peer, std::string(describe(flushed.error())));
            return false;
        }
        if (!*flushed || peer.out.empty()) {
            return true;
        }
        auto sent = peer.ring->trySend(peer.out.front());
        if (!sent) {
            if (sent.error() == Errc::TRY_AGAIN) {
                return true;
            }
            doom(peer, std::string(describe(sent.error())));
            return false;
        }
        peer.outBytes -= peer.out.front().size();
        peer.out.pop_front();
    }
}

// Drops at the end of the loop pass, never in the middle of serving.
void Server::Impl::doom(Peer& peer, std::string reason) {
    doomed.emplace(peer.id, std::move(reason));
}

void Server::Impl::drop(ConnectionId id, const std::string& reason) {
    auto it = peers.find(id);
    if (it == peers.end()) {
        return;
    }
    log->info("#{} ({}) gone: {}; closing its {} Ksock(s)", id, it->second.label, reason,
              dispatcher.ksockCount(id));
    for (int fd : it->second.ring->pollFds()) {
        if (fd >= 0) {
            ::epoll_ctl(epoll.get(), EPOLL_CTL_DEL, fd, nullptr);
        }
    }
    const bool wasXen = it->second.xen;
    peers.erase(it); // closes the ring: our status byte is cleared, the peer kicked
    ready.erase(id);
    doomed.erase(id);
    dispatcher.disconnect(id); // what it owed others becomes status replies
    route({});
    if (wasXen && xen) {
        xen->peerGone(id);
    }
}

void Server::Impl::shutdown() {
    std::vector<ConnectionId> ids;
    for (const auto& [id, peer] : peers) {
        ids.push_back(id);
    }
    for (ConnectionId id : ids) {
        drop(id, "the daemon is stopping");
    }
    std::error_code ec;
    std::filesystem::remove(options.socketPath, ec);
    if (!options.trustedSocketPath.empty()) {
        std::filesystem::remove(options.trustedSocketPath, ec);
    }
    log->info("stopped");
}

} // namespace xkbus::daemon
