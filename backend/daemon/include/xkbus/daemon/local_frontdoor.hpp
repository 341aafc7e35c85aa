// How local clients reach xkbusd: a Unix socket on which each client hands
// over the pages and eventfd of its ring (ring::local), and a second one
// for trusted clients (Limpets, which may send SYNTHETIC messages). A
// completed handshake becomes a peer of the hub.
//
// Hostile local users (docs/security.md, "Front doors"): a handshake must
// complete within a deadline; the handshakes pending are bounded per socket
// and per Unix user, the trusted socket's places apart from the clients', so
// clients cannot lock Limpets out; running out of descriptors stops the
// accepting for a moment instead of spinning on a readable listener.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <sys/types.h>
#include <unordered_map>
#include <xkbus/common/unique_fd.hpp>
#include <xkbus/daemon/event_loop.hpp>
#include <xkbus/daemon/loop_timer.hpp>
#include <xkbus/daemon/peer_hub.hpp>

namespace spdlog {
class logger;
}

namespace xkbus::daemon {

// The bounds of one socket's handshakes.
struct DoorLimits {
    size_t maxPending = 128;       // handshakes in progress on this socket
    size_t maxPendingPerUser = 32; // of those, from one Unix user (SO_PEERCRED uid)
};

struct LocalDoorOptions {
    std::string socketPath;
    std::string trustedSocketPath; // empty: none
    ring::BackendOptions ring;
    DoorLimits clientLimits;
    DoorLimits trustedLimits{16, 8};
    // A connection whose handshake has not arrived by then is closed.
    std::chrono::milliseconds handshakeTimeout{2000};
    // Connections taken from one socket per loop pass.
    size_t acceptsPerWakeup = 16;
    // How long accepting pauses when the daemon is out of descriptors.
    std::chrono::milliseconds acceptBackoff{100};
    // The client socket is mode 0660, group socketGroup (nullopt: the
    // daemon's own); the trusted socket is 0600.
    std::optional<gid_t> socketGroup;
};

class LocalFrontdoor {
public:
    LocalFrontdoor(EventLoop& loop, PeerSink sink, LocalDoorOptions options,
                   std::shared_ptr<spdlog::logger> log);
    ~LocalFrontdoor();
    LocalFrontdoor(const LocalFrontdoor&) = delete;
    LocalFrontdoor& operator=(const LocalFrontdoor&) = delete;

    // Listens on the socket(s).
    Result<void> start();
    // Stops listening and removes the socket files.
    void stop();

    size_t pendingHandshakes() const noexcept { return m_handshakes.size(); }

private:
    enum DoorKind : uint8_t { CLIENTS = 0, TRUSTED = 1 };
    struct Door {
        UniqueFd listener;
        std::string path;
        DoorLimits limits;
        size_t pending = 0;
        std::unordered_map<uint32_t, size_t> pendingByUser;
        bool paused = false; // not watched while the daemon is out of descriptors
    };
    struct Handshake {
        UniqueFd socket;
        uint32_t pid = 0;
        uint32_t uid = 0;
        DoorKind door = CLIENTS;
        std::chrono::steady_clock::time_point deadline;
        Tenant tenant; // from SO_PEERCRED at accept
    };

    Result<void> open(DoorKind kind);
    Result<UniqueFd> listen(const std::string& path, DoorKind kind);
    Result<void> watchListener(DoorKind kind);
    void acceptAll(DoorKind kind);
    bool admit(DoorKind kind, uint32_t pid, uint32_t uid);
    void pauseAccepting(DoorKind kind);
    void resumeAccepting();
    void continueHandshake(int fd);
    Handshake forget(int fd);
    void expireHandshakes();
    void armDeadline();

    EventLoop& m_loop;
    PeerSink m_sink;
    LocalDoorOptions m_options;
    std::shared_ptr<spdlog::logger> m_log;
    Door m_doors[2];
    std::unordered_map<int, Handshake> m_handshakes;
    std::unique_ptr<LoopTimer> m_deadlineTimer;
    std::unique_ptr<LoopTimer> m_backoffTimer;
    bool m_shortageLogged = false;
};

} // namespace xkbus::daemon
