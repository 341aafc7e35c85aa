// Choosing and sharing the connection to xkbusd. See open.hpp.
#include "client_spin.hpp"
#include "xen_guest.hpp"

#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <grp.h>
#include <mutex>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <utility>
#include <vector>
#include <xkbus/frontend/open.hpp>
#include <xkbus/frontend/poll_signal.hpp>
#include <xkbus/ring/local/local_transport.hpp>
#include <xkbus/ring/ring_link.hpp>
#include <xkbus/socket/socket_link.hpp>

namespace xkbus::frontend {

namespace {

class PollReadiness final : public ReadinessSignal {
public:
    explicit PollReadiness(std::unique_ptr<PollSignal> signal) : m_signal(std::move(signal)) {}
    int fd() const noexcept override { return m_signal->fd(); }
    void messageQueued() override { m_signal->messageQueued(); }
    void messageTaken() override { m_signal->messageTaken(); }
    void setSending(bool blocked) override { m_signal->setSending(blocked); }

private:
    std::unique_ptr<PollSignal> m_signal;
};

// No grant budget on one host: rings big enough that a 64 KiB message and
// its record's fixed part cross in one piece (a guest keeps the 4 KiB
// default, docs/ring.md). At 64 KiB each it streamed in two, with a wakeup
// between: rr 64 KiB took 134 against 88 us on one CPU.
ring::FrontendOptions localRingOptions() {
    ring::FrontendOptions options;
    options.toBackendOrder = 17;
    options.toFrontendOrder = 17;
    options.spin = clientSpin();
    return options;
}

// socket::connectUnix keeps no errno, and every case looked alike ("no
// such bus"): look at the path itself to tell a person what is wrong.
Errc diagnoseConnectFailure(const std::string& path, Errc failed) {
    if (failed == Errc::NAME_TOO_LONG) {
        return failed;
    }
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        return errno == EACCES ? Errc::ACCESS_DENIED : Errc::NO_DAEMON;
    }
    if (!S_ISSOCK(st.st_mode)) {
        return Errc::NOT_A_SOCKET;
    }
    if (::faccessat(AT_FDCWD, path.c_str(), W_OK, AT_EACCESS) != 0 && errno == EACCES) {
        return Errc::ACCESS_DENIED;
    }
    return failed == Errc::NO_SUCH_DEVICE ? Errc::NO_DAEMON : failed;
}

std::string userName(uid_t uid) {
    const passwd* pw = ::getpwuid(uid);
    return pw != nullptr ? pw->pw_name : std::to_string(uid);
}

std::string groupName(gid_t gid) {
    const group* gr = ::getgrgid(gid);
    return gr != nullptr ? gr->gr_name : std::to_string(gid);
}

// "owner root, group xkbus, mode 0660", or empty if `path` cannot be seen.
std::string ownership(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        return {};
    }
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
    return "owner " + userName(st.st_uid) + ", group " + groupName(st.st_gid) + ", mode " + mode;
}

// The first folder on the way to `path` that we may not search.
std::string blockedFolder(const std::string& path) {
    std::filesystem::path walked;
    for (const auto& part : std::filesystem::path(path).parent_path()) {
        walked /= part;
        if (::faccessat(AT_FDCWD, walked.c_str(), X_OK, AT_EACCESS) != 0) {
            return walked.string();
        }
    }
    return {};
}

std::string explainAccessDenied(const std::string& path) {
    const std::string folder = blockedFolder(path);
    const std::string what = folder.empty() ? path : folder;
    std::string text = "permission denied on " + what;
    if (const std::string owned = ownership(what); !owned.empty()) {
        text += " (" + owned + ")";
    }
    return text + "; you are " + userName(::geteuid()) +
           ": join the socket's group (the xkbus package's is `xkbus`) or run as its owner";
}

std::string explainNotASocket(const std::string& path) {
    struct stat st {};
    const bool known = ::stat(path.c_str(), &st) == 0;
    const char* kind = !known                 ? "not a socket"
                       : S_ISDIR(st.st_mode)  ? "a directory"
                       : S_ISREG(st.st_mode)  ? "a regular file"
                       : S_ISFIFO(st.st_mode) ? "a FIFO"
                                              : "not a socket";
    return path + " is " + kind +
           ", not xkbusd's socket: set XKBUS_SOCKET (or --socket) to the path xkbusd listens on";
}

std::string explainNoDaemon(const std::string& path) {
    struct stat st {};
    const bool stale = ::lstat(path.c_str(), &st) == 0;
    return "no xkbusd is listening at " + path +
           (stale ? " (the socket is there, but its daemon has stopped)" : " (no such file)") +
           "; start one with `xkbusd --socket " + path +
           " &` or `systemctl start xkbusd`, or set XKBUS_SOCKET to the socket it listens on";
}

} // namespace

std::string explainOpenError(Errc error, const std::string& socketPath) {
    switch (error) {
    case Errc::NO_DAEMON:
        return explainNoDaemon(socketPath);
    case Errc::ACCESS_DENIED:
        return explainAccessDenied(socketPath);
    case Errc::NOT_A_SOCKET:
        return explainNotASocket(socketPath);
    case Errc::NAME_TOO_LONG:
        return "the socket path " + socketPath + " is " + std::to_string(socketPath.size()) +
               " bytes long; a Unix socket path must be shorter than " +
               std::to_string(sizeof(sockaddr_un::sun_path)) + " bytes";
    case Errc::NO_SUCH_DEVICE:
        return "no such bus on the daemon at " + socketPath +
               " (`xkbus buses` lists them; `xkbus new-bus` adds one)";
    default:
        return std::string(describe(error));
    }
}

SignalFactory pollSignals() {
    return []() -> std::unique_ptr<ReadinessSignal> {
        auto signal = PollSignal::create();
        return signal ? std::make_unique<PollReadiness>(std::move(*signal)) : nullptr;
    };
}

std::string defaultSocketPath() {
    const char* env = std::getenv("XKBUS_SOCKET");
    return env != nullptr && *env != '\0' ? std::string(env) : std::string(DEFAULT_SOCKET_PATH);
}

Result<std::shared_ptr<Connection>> connectLocal(const std::string& path) {
    auto socket = socket::connectUnix(path);
    if (!socket) {
        return fail(diagnoseConnectFailure(path, socket.error()));
    }
    // The ring keeps its own duplicate of the socket: it watches it for the
    // daemon's death and takes the Ksocks' fds from it.
    auto ring = ring::local::connectFrontend(socket->get(), localRingOptions());
    if (!ring) {
        return fail(ring.error());
    }
    return Connection::start(std::make_unique<ring::RingLink>(std::move(*ring)),
                             static_cast<uint32_t>(::getpid()));
}

Result<std::shared_ptr<Connection>> connectDefault() {
    if (!inXenGuest()) {
        return connectLocal(defaultSocketPath());
    }
    auto link = connectXenGuest();
    if (!link) {
        return fail(link.error());
    }
    // dom0 cannot hand a guest descriptors: the library keeps the Ksocks' fds.
    return Connection::start(std::move(*link), static_cast<uint32_t>(::getpid()), pollSignals());
}

Result<std::unique_ptr<KsockChannel>> openDefaultKsock(uint32_t bus, bool writable) {
    static std::mutex mutex;
    static std::shared_ptr<Connection> shared;
    // A forked child keeps its parent's connection alive but never uses it:
    // closing it would clear the ring's status byte the parent still uses.
    static std::vector<std::shared_ptr<Connection>> inherited;
    static pid_t owner = 0;
    std::lock_guard lock(mutex);
    for (int attempt = 0; attempt < 2; ++attempt) {
        if (shared && owner != ::getpid()) {
            inherited.push_back(std::exchange(shared, nullptr));
        }
        if (!shared) {
            auto connected = connectDefault();
            if (!connected) {
                return fail(connected.error());
            }
            shared = std::move(*connected);
            owner = ::getpid();
        }
        auto ksock = shared->openKsock(bus, writable);
        if (ksock || ksock.error() != Errc::DISCONNECTED) {
            return ksock;
        }
        shared.reset(); // the daemon restarted: connect again, once
    }
    return fail(Errc::DISCONNECTED);
}

} // namespace xkbus::frontend
