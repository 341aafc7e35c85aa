// Unix stream sockets for the front door and clients. See socket_link.hpp.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <xkbus/socket/socket_link.hpp>

namespace xkbus::socket {

namespace {

Errc errcFromErrno(int e) {
    switch (e) {
    case EPIPE:
    case ECONNRESET:
    case ENOTCONN:
        return Errc::DISCONNECTED;
    case ENOMEM:
    case ENOBUFS:
        return Errc::NO_MEMORY;
    case EMFILE:
    case ENFILE:
        return Errc::TOO_MANY; // out of descriptors: the caller backs off
    default:
        return Errc::INVALID;
    }
}

Result<sockaddr_un> addressOf(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof addr.sun_path) {
        return fail(Errc::NAME_TOO_LONG);
    }
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    return addr;
}

} // namespace

namespace {

// A new listening-to-be socket bound at `path` (a stale socket from a daemon
// that died is replaced), under `umaskWhileBinding` if given, so that the
// file is never looser than that, even for a moment.
Result<UniqueFd> boundSocket(const std::string& path, std::optional<mode_t> umaskWhileBinding) {
    auto addr = addressOf(path);
    if (!addr) {
        return fail(addr.error());
    }
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
        ::unlink(path.c_str());
    }
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) {
        return fail(errcFromErrno(errno));
    }
    const mode_t previous = umaskWhileBinding ? ::umask(*umaskWhileBinding) : 0;
    const int bound = ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr);
    const int bindErrno = errno;
    if (umaskWhileBinding) {
        ::umask(previous);
    }
    if (bound != 0) {
        return fail(bindErrno == EADDRINUSE ? Errc::REPLIER_EXISTS : errcFromErrno(bindErrno));
    }
    return fd;
}

Result<UniqueFd> listening(UniqueFd fd) {
    if (::listen(fd.get(), 128) != 0) {
        return fail(errcFromErrno(errno));
    }
    return fd;
}

} // namespace

Result<UniqueFd> listenOn(const std::string& path) {
    auto fd = boundSocket(path, std::nullopt);
    if (!fd) {
        return fd;
    }
    return listening(std::move(*fd));
}

Result<UniqueFd> listenOn(const std::string& path, const SocketAccess& access) {
    auto fd = boundSocket(path, mode_t{0177}); // never looser than 0600
    if (!fd) {
        return fd;
    }
    if ((access.group && ::chown(path.c_str(), static_cast<uid_t>(-1), *access.group) != 0) ||
        ::chmod(path.c_str(), static_cast<mode_t>(access.mode)) != 0) {
        return fail(Errc::PERMISSION_DENIED);
    }
    return listening(std::move(*fd));
}

Result<UniqueFd> connectUnix(const std::string& path) {
    auto addr = addressOf(path);
    if (!addr) {
        return fail(addr.error());
    }
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) {
        return fail(errcFromErrno(errno));
    }
    // A local connect completes at once or fails; it never stays in progress.
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr) != 0) {
        return fail(errno == ENOENT || errno == ECONNREFUSED ? Errc::NO_SUCH_DEVICE
                                                             : errcFromErrno(errno));
    }
    return fd;
}

Result<UniqueFd> acceptFrom(int listener, uint32_t& peerPid) {
    PeerCredentials who;
    auto fd = acceptPeer(listener, who);
    peerPid = who.pid;
    return fd;
}

Result<UniqueFd> acceptPeer(int listener, PeerCredentials& who) {
    UniqueFd fd(::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) {
        return fail(errno == EAGAIN || errno == EWOULDBLOCK ? Errc::TRY_AGAIN
                                                            : errcFromErrno(errno));
    }
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
        who = {static_cast<uint32_t>(cred.pid), static_cast<uint32_t>(cred.uid)};
    } else {
        who = {};
    }
    return fd;
}

} // namespace xkbus::socket
