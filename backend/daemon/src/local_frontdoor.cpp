// See local_frontdoor.hpp.
#include <filesystem>
#include <spdlog/spdlog.h>
#include <xkbus/daemon/local_frontdoor.hpp>
#include <xkbus/ring/local/local_transport.hpp>
#include <xkbus/socket/socket_link.hpp>

namespace xkbus::daemon {

namespace {
constexpr uint32_t FIRST_LOCAL_CHARGE_GROUP = 0x20000; // Xen guests use 0x10000 + domid
} // namespace

LocalFrontdoor::LocalFrontdoor(EventLoop& loop, PeerSink sink, LocalDoorOptions options,
                               std::shared_ptr<spdlog::logger> log)
    : m_loop(loop), m_sink(std::move(sink)), m_options(std::move(options)), m_log(std::move(log)),
      m_nextChargeGroup(FIRST_LOCAL_CHARGE_GROUP) {}

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
        m_handshakes[fd] = Handshake{std::move(*accepted), pid, trusted};
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
    const PeerInfo info{
        .domid = 0, .pid = h.pid, .trusted = h.trusted, .chargeGroup = m_nextChargeGroup++};
    const std::string label = fmt::format("{} (pid {})", h.trusted ? "Limpet" : "client", h.pid);
    m_sink.adopt(std::move(*connection), info, label, std::move(h.socket));
}

} // namespace xkbus::daemon
