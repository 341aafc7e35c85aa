// xkbusd's event loop for local clients. See server.hpp.
#include <cerrno>
#include <csignal>
#include <cstring>
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

struct Peer {
    ConnectionId id = 0;
    uint32_t pid = 0;
    std::unique_ptr<socket::SocketLink> link;
    std::unordered_map<uint32_t, KsockSignal> signals; // by handle
    std::unordered_map<uint32_t, uint32_t> fdForCall;  // OPEN call id -> handle
    bool wantsOut = false;
};

void raiseFileLimit(spdlog::logger& log) {
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max; // each Ksock costs the daemon two descriptors
        if (::setrlimit(RLIMIT_NOFILE, &lim) == 0) {
            log.info("descriptor limit raised to {}", lim.rlim_cur);
        }
    }
}

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
    void loop();
    void acceptAll();
    void serve(Peer& peer);
    void route(std::vector<std::pair<ConnectionId, uint32_t>> touched);
    void drop(ConnectionId id, const std::string& reason);
    void watch(Peer& peer);
    void shutdown();

    ServerOptions options;
    std::shared_ptr<spdlog::logger> log;
    core::Core core;
    Dispatcher dispatcher;
    UniqueFd epoll;
    UniqueFd listener;
    UniqueFd signals;
    std::unordered_map<ConnectionId, Peer> peers;
    std::unordered_map<int, ConnectionId> byFd;
    std::unordered_set<ConnectionId> doomed;
    uint32_t nextChargeGroup = 1;
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

Result<void> Server::Impl::start() {
    raiseFileLimit(*log);
    std::error_code ec;
    const auto dir = std::filesystem::path(options.socketPath).parent_path();
    if (!dir.empty()) {
        std::filesystem::create_directories(dir, ec);
    }
    auto listening = socket::listenOn(options.socketPath);
    if (!listening) {
        log->error("cannot listen on {}: {}", options.socketPath, describe(listening.error()));
        return fail(listening.error());
    }
    listener = std::move(*listening);
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
    for (int fd : {listener.get(), signals.get()}) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        ::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, fd, &ev);
    }
    log->info("serving {} bus(es) on {}", core.busCount(), options.socketPath);
    return {};
}

void Server::Impl::loop() {
    epoll_event events[64];
    for (;;) {
        const int n = ::epoll_wait(epoll.get(), events, 64, -1);
        if (n < 0 && errno != EINTR) {
            log->error("epoll_wait: {}", std::strerror(errno));
            return;
        }
        for (int i = 0; i < n; ++i) {
            const int fd = events[i].data.fd;
            if (fd == signals.get()) {
                signalfd_siginfo info{};
                (void)!::read(signals.get(), &info, sizeof info);
                log->info("stopping on signal {}", info.ssi_signo);
                return;
            }
            if (fd == listener.get()) {
                acceptAll();
                continue;
            }
            auto id = byFd.find(fd);
            if (id == byFd.end()) {
                continue;
            }
            Peer& peer = peers.at(id->second);
            if ((events[i].events & EPOLLOUT) != 0) {
                auto flushed = peer.link->flush();
                if (!flushed) {
                    doomed.insert(peer.id);
                } else {
                    watch(peer);
                }
            }
            if ((events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) != 0) {
                serve(peer);
            }
        }
        for (ConnectionId id : std::vector<ConnectionId>(doomed.begin(), doomed.end())) {
            drop(id, "it stopped reading or its socket failed");
        }
        doomed.clear();
    }
}

void Server::Impl::acceptAll() {
    for (;;) {
        uint32_t pid = 0;
        auto accepted = socket::acceptFrom(listener.get(), pid);
        if (!accepted) {
            if (accepted.error() != Errc::TRY_AGAIN) {
                log->warn("accept failed: {}", describe(accepted.error()));
            }
            return;
        }
        const ConnectionId id = dispatcher.connect(
            PeerInfo{.domid = 0, .pid = pid, .trusted = false, .chargeGroup = nextChargeGroup++});
        Peer& peer = peers[id];
        peer.id = id;
        peer.pid = pid;
        const int fd = accepted->get();
        peer.link = std::make_unique<socket::SocketLink>(std::move(*accepted));
        byFd[fd] = id;
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLRDHUP;
        ev.data.fd = fd;
        ::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, fd, &ev);
        log->info("client #{} connected (pid {})", id, pid);
    }
}

void Server::Impl::serve(Peer& peer) {
    const ConnectionId id = peer.id;
    std::string violation;
    std::vector<std::pair<ConnectionId, uint32_t>> touched;
    auto received = peer.link->receive([&](std::span<const std::byte> bytes) {
        if (!violation.empty()) {
            return;
        }
        // The bytes were copied out of the socket into the link's own buffer;
        // decode() checks every field before the dispatcher sees the record.
        auto record = protocol::decode(bytes);
        if (!record) {
            violation = "sent a malformed record";
            return;
        }
        auto handled = dispatcher.handle(id, *record);
        if (!handled) {
            violation = handled.error();
            return;
        }
        if (record->type == RecordType::OPEN && dispatcher.readiness(id, record->handle)) {
            auto signal = KsockSignal::create();
            if (signal) {
                peer.signals.insert_or_assign(record->handle, std::move(*signal));
                peer.fdForCall[record->callId] = record->handle;
            }
        }
        touched.emplace_back(id, record->handle);
        route(std::move(touched));
        touched.clear();
    });
    if (!violation.empty()) {
        drop(id, "protocol violation: " + violation);
    } else if (!received) {
        drop(id, received.error() == Errc::DISCONNECTED ? "disconnected"
                                                        : std::string(describe(received.error())));
    }
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
    std::vector<std::byte> bytes;
    for (const Outgoing& out : outgoing) {
        auto peer = peers.find(out.to);
        if (peer == peers.end()) {
            continue;
        }
        bytes.clear();
        protocol::encode(out.record, bytes);
        Result<void> sent;
        auto withFd = peer->second.fdForCall.find(out.record.callId);
        if (out.record.type == RecordType::RESULT && withFd != peer->second.fdForCall.end()) {
            auto signal = peer->second.signals.find(withFd->second);
            const int fd = signal == peer->second.signals.end() ? -1 : signal->second.appFd();
            sent = peer->second.link->sendWithFd(bytes, fd);
            peer->second.fdForCall.erase(withFd);
        } else {
            sent = peer->second.link->send(bytes);
        }
        if (!sent) {
            doomed.insert(out.to);
        } else {
            watch(peer->second);
        }
    }
}

// Asks for EPOLLOUT only while output is waiting.
void Server::Impl::watch(Peer& peer) {
    const bool wants = peer.link->hasPendingOutput();
    if (wants == peer.wantsOut) {
        return;
    }
    peer.wantsOut = wants;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | (wants ? EPOLLOUT : 0u);
    ev.data.fd = peer.link->fd();
    ::epoll_ctl(epoll.get(), EPOLL_CTL_MOD, peer.link->fd(), &ev);
}

void Server::Impl::drop(ConnectionId id, const std::string& reason) {
    auto it = peers.find(id);
    if (it == peers.end()) {
        return;
    }
    log->info("client #{} (pid {}) gone: {}; closing its {} Ksock(s)", id, it->second.pid, reason,
              dispatcher.ksockCount(id));
    ::epoll_ctl(epoll.get(), EPOLL_CTL_DEL, it->second.link->fd(), nullptr);
    byFd.erase(it->second.link->fd());
    peers.erase(it);
    doomed.erase(id);
    dispatcher.disconnect(id); // what it owed others becomes status replies
    route({});
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
    log->info("stopped");
}

} // namespace xkbus::daemon
