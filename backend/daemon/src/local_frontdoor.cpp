// See local_frontdoor.hpp.
#include <algorithm>
#include <filesystem>
#include <grp.h>
#include <pwd.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
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
    for (gid_t g : gids) {
        names.push_back(groupName(g));
    }
    return Tenant::localUser(cred.uid, std::move(ids), userName(cred.uid), std::move(names));
}

} // namespace

LocalFrontdoor::LocalFrontdoor(EventLoop& loop, PeerSink sink, LocalDoorOptions options,
                               std::shared_ptr<spdlog::logger> log)
    : m_loop(loop), m_sink(std::move(sink)), m_options(std::move(options)), m_log(std::move(log)) {}

LocalFrontdoor::~LocalFrontdoor() = default;

Result<UniqueFd> LocalFrontdoor::listen(const std::string& path, bool trusted) {
    std::error_code ec;
    const auto dir = std::filesystem::path(path).parent_path();
    if (!dir.empty()) {
        std::filesystem::create_directories(dir, ec);
    }
    auto listening = socket::listenOn(path);
    if (!listening) {
        m_log->error("cannot listen on {}: {}", path, describe(listening.error()));
        return fail(listening.error());
    }
    const int fd = listening->get();
    if (auto watched = m_loop.watch(fd, [this, fd, trusted] { acceptAll(fd, trusted); });
        !watched) {
        return fail(watched.error());
    }
    return listening;
}

Result<void> LocalFrontdoor::start() {
    auto local = listen(m_options.socketPath, false);
    if (!local) {
        return fail(local.error());
    }
    m_listener = std::move(*local);
    if (!m_options.trustedSocketPath.empty()) {
        auto trusted = listen(m_options.trustedSocketPath, true);
        if (!trusted) {
            return fail(trusted.error());
        }
        m_trustedListener = std::move(*trusted);
        m_log->info("Limpets may connect on {}", m_options.trustedSocketPath);
    }
    return {};
}

void LocalFrontdoor::stop() {
    for (auto& [fd, pending] : m_handshakes) {
        m_loop.unwatch(fd);
    }
    m_handshakes.clear();
    std::error_code ec;
    if (m_listener) {
        m_loop.unwatch(m_listener.get());
        m_listener.reset();
        std::filesystem::remove(m_options.socketPath, ec);
    }
    if (m_trustedListener) {
        m_loop.unwatch(m_trustedListener.get());
        m_trustedListener.reset();
        std::filesystem::remove(m_options.trustedSocketPath, ec);
    }
}

void LocalFrontdoor::acceptAll(int listeningFd, bool trusted) {
    for (;;) {
        uint32_t pid = 0;
        auto accepted = socket::acceptFrom(listeningFd, pid);
        if (!accepted) {
            if (accepted.error() != Errc::TRY_AGAIN) {
                m_log->warn("accept failed: {}", describe(accepted.error()));
            }
            return;
        }
        if (m_handshakes.size() >= m_options.maxPendingHandshakes) {
            m_log->warn("refusing pid {}: {} handshakes already pending", pid, m_handshakes.size());
            continue;
        }
        const int fd = accepted->get();
        m_handshakes[fd] = Handshake{std::move(*accepted), pid, trusted, tenantOf(fd, trusted)};
        (void)m_loop.watch(fd, [this, fd] { continueHandshake(fd); });
        continueHandshake(fd); // it is usually there already
    }
}

// Takes the ring a local client offers. Its descriptors and its ring header
// are checked by the local transport before anything is mapped or used.
void LocalFrontdoor::continueHandshake(int fd) {
    auto pending = m_handshakes.find(fd);
    if (pending == m_handshakes.end()) {
        return;
    }
    std::string_view why;
    auto connection = ring::local::acceptBackend(fd, m_options.ring, &why);
    if (!connection && connection.error() == Errc::TRY_AGAIN) {
        return;
    }
    m_loop.unwatch(fd);
    Handshake h = std::move(pending->second);
    m_handshakes.erase(pending);
    if (!connection) {
        // A connect-and-close is a liveness probe, not an attack.
        m_log->log(connection.error() == Errc::DISCONNECTED ? spdlog::level::debug
                                                            : spdlog::level::warn,
                   "refusing pid {}: {} ({})", h.pid, describe(connection.error()), why);
        return;
    }
    const std::string label =
        fmt::format("{} (pid {}, {})", h.trusted ? "Limpet" : "client", h.pid, h.tenant.label());
    const PeerInfo info{.domid = 0,
                        .pid = h.pid,
                        .trusted = h.trusted,
                        .chargeGroup = h.tenant.chargeGroup(),
                        .tenant = std::move(h.tenant)};
    m_sink.adopt(std::move(*connection), info, label, std::move(h.socket));
}

} // namespace xkbus::daemon
