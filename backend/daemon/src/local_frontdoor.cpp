// See local_frontdoor.hpp.
#include <algorithm>
#include <filesystem>
#include <grp.h>
#include <pwd.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <xkbus/daemon/local_frontdoor.hpp>
#include <xkbus/ring/local/local_transport.hpp>
#include <xkbus/socket/socket_link.hpp>

namespace xkbus::daemon {

namespace {

std::string userName(uid_t uid) {
    std::vector<char> buffer(4096);
    passwd pw{};
    passwd* found = nullptr;
    ::getpwuid_r(uid, &pw, buffer.data(), buffer.size(), &found);
    return found != nullptr ? found->pw_name : std::string();
}

std::string groupName(gid_t gid) {
    std::vector<char> buffer(4096);
    group gr{};
    group* found = nullptr;
    ::getgrgid_r(gid, &gr, buffer.data(), buffer.size(), &found);
    return found != nullptr ? found->gr_name : std::string();
}

// Who the kernel says connected: its uid and groups at connect() time, which
// the client cannot forge. A local tenant is a Unix user; root is dom0.
Tenant tenantOf(int fd, bool trusted) {
    ucred cred{};
    socklen_t length = sizeof cred;
    if (trusted || ::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0) {
        // The trusted socket's file mode already chose who may reach it.
        return Tenant::dom0();
    }
    std::vector<gid_t> gids(64);
    length = static_cast<socklen_t>(gids.size() * sizeof(gid_t));
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, gids.data(), &length) != 0) {
        length = 0; // then only its primary group counts
    }
    gids.resize(length / sizeof(gid_t));
    if (std::find(gids.begin(), gids.end(), cred.gid) == gids.end()) {
        gids.push_back(cred.gid);
    }
    std::vector<uint32_t> ids(gids.begin(), gids.end());
    std::vector<std::string> names;
    names.reserve(gids.size());
    for (gid_t g : gids) {
        names.push_back(groupName(g));
    }
    return Tenant::localUser(cred.uid, std::move(ids), userName(cred.uid), std::move(names));
}

constexpr mode_t CLIENT_SOCKET_MODE = 0660;
constexpr mode_t TRUSTED_SOCKET_MODE = 0600;
using Clock = std::chrono::steady_clock;
} // namespace

LocalFrontdoor::LocalFrontdoor(EventLoop& loop, PeerSink sink, LocalDoorOptions options,
                               std::shared_ptr<spdlog::logger> log)
    : m_loop(loop), m_sink(std::move(sink)), m_options(std::move(options)), m_log(std::move(log)) {
    m_doors[CLIENTS].path = m_options.socketPath;
    m_doors[CLIENTS].limits = m_options.clientLimits;
    m_doors[TRUSTED].path = m_options.trustedSocketPath;
    m_doors[TRUSTED].limits = m_options.trustedLimits;
}

LocalFrontdoor::~LocalFrontdoor() = default;

// The socket file has its mode and group before anyone can connect, and is
// never looser than them in between (socket::listenOn).
Result<UniqueFd> LocalFrontdoor::listen(const std::string& path, DoorKind kind) {
    std::error_code ec;
    const auto dir = std::filesystem::path(path).parent_path();
    if (!dir.empty()) {
        std::filesystem::create_directories(dir, ec);
    }
    socket::SocketAccess access{.mode = TRUSTED_SOCKET_MODE, .group = std::nullopt};
    if (kind == CLIENTS) {
        access = {.mode = CLIENT_SOCKET_MODE, .group = m_options.socketGroup};
    }
    auto listening = socket::listenOn(path, access);
    if (!listening) {
        m_log->error("cannot listen on {} (mode {:o}{}): {}", path, access.mode,
                     access.group ? fmt::format(", group {}", *access.group) : "",
                     describe(listening.error()));
    }
    return listening;
}

Result<void> LocalFrontdoor::watchListener(DoorKind kind) {
    return m_loop.watch(m_doors[kind].listener.get(), [this, kind] { acceptAll(kind); });
}

Result<void> LocalFrontdoor::open(DoorKind kind) {
    auto listening = listen(m_doors[kind].path, kind);
    if (!listening) {
        return fail(listening.error());
    }
    m_doors[kind].listener = std::move(*listening);
    return watchListener(kind);
}

Result<void> LocalFrontdoor::start() {
    // Both timers exist before the daemon can run out of descriptors.
    auto deadlines = LoopTimer::create(m_loop, [this] { expireHandshakes(); });
    auto backoff = LoopTimer::create(m_loop, [this] { resumeAccepting(); });
    if (!deadlines || !backoff) {
        return fail(Errc::TOO_MANY);
    }
    m_deadlineTimer = std::move(*deadlines);
    m_backoffTimer = std::move(*backoff);
    if (auto opened = open(CLIENTS); !opened) {
        return opened;
    }
    if (!m_options.trustedSocketPath.empty()) {
        if (auto opened = open(TRUSTED); !opened) {
            return opened;
        }
        m_log->info("Limpets may connect on {}", m_options.trustedSocketPath);
    }
    return {};
}

void LocalFrontdoor::stop() {
    for (auto& [fd, pending] : m_handshakes) {
        m_loop.unwatch(fd);
    }
    m_handshakes.clear();
    for (Door& door : m_doors) {
        door.pending = 0;
        door.pendingByUser.clear();
        if (!door.listener) {
            continue;
        }
        m_loop.unwatch(door.listener.get());
        door.listener.reset();
        std::error_code ec;
        std::filesystem::remove(door.path, ec);
    }
    m_deadlineTimer.reset();
    m_backoffTimer.reset();
}

// At most acceptsPerWakeup connections a pass: the listener is level-
// triggered, so the rest are taken on the next pass, after the rings had
// theirs (a connect flood must not keep the loop in accept()).
void LocalFrontdoor::acceptAll(DoorKind kind) {
    Door& door = m_doors[kind];
    for (size_t taken = 0; taken < m_options.acceptsPerWakeup; ++taken) {
        socket::PeerCredentials who;
        auto accepted = socket::acceptPeer(door.listener.get(), who);
        if (!accepted) {
            if (accepted.error() == Errc::TOO_MANY || accepted.error() == Errc::NO_MEMORY) {
                pauseAccepting(kind);
            } else if (accepted.error() != Errc::TRY_AGAIN) {
                m_log->warn("accept failed: {}", describe(accepted.error()));
            }
            return;
        }
        m_shortageLogged = false;
        if (!admit(kind, who.pid, who.uid)) {
            continue; // closed at once: the client sees the connection reset
        }
        const int fd = accepted->get();
        ++door.pending;
        ++door.pendingByUser[who.uid];
        m_handshakes[fd] = Handshake{std::move(*accepted),
                                     who.pid,
                                     who.uid,
                                     kind,
                                     Clock::now() + m_options.handshakeTimeout,
                                     tenantOf(fd, kind == TRUSTED)};
        if (!m_deadlineTimer->armed()) {
            m_deadlineTimer->armIn(m_options.handshakeTimeout);
        }
        (void)m_loop.watch(fd, [this, fd] { continueHandshake(fd); });
        continueHandshake(fd); // it is usually there already
    }
}

// Within this socket's bounds, overall and for this user.
bool LocalFrontdoor::admit(DoorKind kind, uint32_t pid, uint32_t uid) {
    const Door& door = m_doors[kind];
    const auto mine = door.pendingByUser.find(uid);
    const size_t byUser = mine == door.pendingByUser.end() ? 0 : mine->second;
    if (door.pending < door.limits.maxPending && byUser < door.limits.maxPendingPerUser) {
        return true;
    }
    m_log->debug("refusing pid {} (uid {}) on {}: {} handshakes pending, {} of them its user's",
                 pid, uid, door.path, door.pending, byUser);
    return false;
}

// Out of descriptors: a level-triggered listener would report the same
// waiting connection on every pass. Stop watching it for a moment instead.
void LocalFrontdoor::pauseAccepting(DoorKind kind) {
    Door& door = m_doors[kind];
    if (!door.paused) {
        m_loop.unwatch(door.listener.get());
        door.paused = true;
    }
    if (!m_shortageLogged) {
        m_log->warn("out of descriptors: not accepting connections for {} ms at a time",
                    m_options.acceptBackoff.count());
        m_shortageLogged = true;
    }
    if (!m_backoffTimer->armed()) {
        m_backoffTimer->armIn(m_options.acceptBackoff);
    }
}

void LocalFrontdoor::resumeAccepting() {
    for (const DoorKind kind : {CLIENTS, TRUSTED}) {
        Door& door = m_doors[kind];
        if (door.paused && door.listener) {
            door.paused = false;
            (void)watchListener(kind); // a connection waiting makes it readable at once
        }
    }
}

LocalFrontdoor::Handshake LocalFrontdoor::forget(int fd) {
    auto pending = m_handshakes.find(fd);
    m_loop.unwatch(fd);
    Handshake h = std::move(pending->second);
    m_handshakes.erase(pending);
    Door& door = m_doors[h.door];
    --door.pending;
    if (auto mine = door.pendingByUser.find(h.uid); mine != door.pendingByUser.end()) {
        if (--mine->second == 0) {
            door.pendingByUser.erase(mine);
        }
    }
    return h;
}

// Takes the ring a local client offers. Its descriptors and its ring header
// are checked by the local transport before anything is mapped or used.
void LocalFrontdoor::continueHandshake(int fd) {
    if (!m_handshakes.contains(fd)) {
        return;
    }
    std::string_view why;
    auto connection = ring::local::acceptBackend(fd, m_options.ring, &why);
    if (!connection && connection.error() == Errc::TRY_AGAIN) {
        return;
    }
    Handshake h = forget(fd);
    if (!connection) {
        // A connect-and-close is a liveness probe, not an attack.
        m_log->log(connection.error() == Errc::DISCONNECTED ? spdlog::level::debug
                                                            : spdlog::level::warn,
                   "refusing pid {}: {} ({})", h.pid, describe(connection.error()), why);
        return;
    }
    const bool trusted = h.door == TRUSTED;
    const std::string label =
        fmt::format("{} (pid {}, {})", trusted ? "Limpet" : "client", h.pid, h.tenant.label());
    const PeerInfo info{.domid = 0,
                        .pid = h.pid,
                        .trusted = trusted,
                        .chargeGroup = h.tenant.chargeGroup(),
                        .tenant = std::move(h.tenant)};
    m_sink.adopt(std::move(*connection), info, label, std::move(h.socket));
}

// Closes every handshake past its deadline; the timer then waits for the
// next deadline, so an idle front door makes no wakeups.
void LocalFrontdoor::expireHandshakes() {
    const auto now = Clock::now();
    std::vector<int> late;
    for (const auto& [fd, h] : m_handshakes) {
        if (h.deadline <= now) {
            late.push_back(fd);
        }
    }
    for (int fd : late) {
        const Handshake h = forget(fd);
        m_log->debug("closing pid {} (uid {}): no handshake within {} ms", h.pid, h.uid,
                     m_options.handshakeTimeout.count());
    }
    armDeadline();
}

void LocalFrontdoor::armDeadline() {
    if (m_handshakes.empty()) {
        return;
    }
    auto earliest = Clock::time_point::max();
    for (const auto& [fd, h] : m_handshakes) {
        earliest = std::min(earliest, h.deadline);
    }
    const auto wait = std::chrono::ceil<std::chrono::milliseconds>(earliest - Clock::now());
    m_deadlineTimer->armIn(wait);
}

} // namespace xkbus::daemon
