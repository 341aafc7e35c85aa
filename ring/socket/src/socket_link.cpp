// Length-framed records over a Unix stream socket. See socket_link.hpp.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <xkbus/socket/socket_link.hpp>

namespace xkbus::socket {

namespace {

constexpr size_t MAX_FDS_PER_READ = 16;
constexpr size_t READ_CHUNK = 64 * 1024;

Errc errcFromErrno(int e) {
    switch (e) {
    case EPIPE:
    case ECONNRESET:
    case ENOTCONN:
        return Errc::DISCONNECTED;
    case ENOMEM:
    case ENOBUFS:
        return Errc::NO_MEMORY;
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

SocketLink::SocketLink(UniqueFd fd, SocketLinkLimits limits)
    : m_fd(std::move(fd)), m_limits(limits) {}

Result<std::unique_ptr<SocketLink>> SocketLink::connectTo(const std::string& path,
                                                          SocketLinkLimits limits) {
    auto fd = connectUnix(path);
    if (!fd) {
        return fail(fd.error());
    }
    limits.blockingSend = true;
    return std::make_unique<SocketLink>(std::move(*fd), limits);
}

Result<void> SocketLink::send(std::span<const std::byte> record) {
    return sendWithFd(record, -1);
}

Result<void> SocketLink::sendWithFd(std::span<const std::byte> record, int fd) {
    if (record.size() > m_limits.maxRecord) {
        return fail(Errc::MESSAGE_TOO_BIG);
    }
    Chunk chunk;
    const auto length = static_cast<uint32_t>(record.size());
    chunk.bytes.resize(sizeof length + record.size());
    std::memcpy(chunk.bytes.data(), &length, sizeof length);
    std::memcpy(chunk.bytes.data() + sizeof length, record.data(), record.size());
    if (fd >= 0) {
        chunk.fd = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (chunk.fd < 0) {
            return fail(errcFromErrno(errno));
        }
    }
    m_outBytes += chunk.bytes.size();
    m_out.push_back(std::move(chunk));
    if (m_outBytes > m_limits.maxBufferedOut) {
        return fail(Errc::NO_MEMORY); // the peer stopped reading
    }
    if (m_limits.blockingSend) {
        return flushBlocking();
    }
    auto flushed = flush();
    return flushed ? Result<void>() : fail(flushed.error());
}

Result<bool> SocketLink::flush() {
    while (!m_out.empty()) {
        Chunk& c = m_out.front();
        iovec iov{c.bytes.data() + c.written, c.bytes.size() - c.written};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
        if (c.fd >= 0 && c.written == 0) {
            msg.msg_control = control;
            msg.msg_controllen = sizeof control;
            cmsghdr* cm = CMSG_FIRSTHDR(&msg);
            cm->cmsg_level = SOL_SOCKET;
            cm->cmsg_type = SCM_RIGHTS;
            cm->cmsg_len = CMSG_LEN(sizeof(int));
            std::memcpy(CMSG_DATA(cm), &c.fd, sizeof(int));
        }
        const ssize_t n = ::sendmsg(m_fd.get(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return false;
            }
            return fail(errcFromErrno(errno));
        }
        if (c.fd >= 0) {
            ::close(c.fd); // the kernel holds its own reference now
            c.fd = -1;
        }
        c.written += static_cast<size_t>(n);
        if (c.written == c.bytes.size()) {
            m_outBytes -= c.bytes.size();
            m_out.pop_front();
        }
    }
    return true;
}

Result<void> SocketLink::flushBlocking() {
    for (;;) {
        auto done = flush();
        if (!done) {
            return fail(done.error());
        }
        if (*done) {
            return {};
        }
        pollfd p{m_fd.get(), POLLOUT, 0};
        if (::poll(&p, 1, -1) < 0 && errno != EINTR) {
            return fail(errcFromErrno(errno));
        }
    }
}

Result<void> SocketLink::readAvailable() {
    size_t budget = m_limits.maxReadPerReceive;
    while (!m_eof && budget > 0) {
        const size_t old = m_in.size();
        m_in.resize(old + READ_CHUNK);
        iovec iov{m_in.data() + old, READ_CHUNK};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * MAX_FDS_PER_READ)];
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        const ssize_t n = ::recvmsg(m_fd.get(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        m_in.resize(old + static_cast<size_t>(n > 0 ? n : 0));
        for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); n >= 0 && cm != nullptr;
             cm = CMSG_NXTHDR(&msg, cm)) {
            if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
                const size_t count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < count; ++i) {
                    int received = -1;
                    std::memcpy(&received, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
                    m_inFds.emplace_back(received);
                }
            }
        }
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return {};
            }
            return fail(errcFromErrno(errno));
        }
        if (n == 0) {
            m_eof = true;
        }
        budget -= std::min(budget, static_cast<size_t>(n));
        if ((msg.msg_flags & MSG_CTRUNC) != 0) {
            return fail(Errc::PROTOCOL_VIOLATION); // more descriptors than any record carries
        }
    }
    return {};
}

Result<size_t> SocketLink::receive(const std::function<void(std::span<const std::byte>)>& deliver) {
    if (auto read = readAvailable(); !read) {
        return fail(read.error());
    }
    size_t pos = 0;
    size_t count = 0;
    while (m_in.size() - pos >= sizeof(uint32_t)) {
        uint32_t length = 0;
        std::memcpy(&length, m_in.data() + pos, sizeof length);
        if (length > m_limits.maxRecord) {
            return fail(Errc::PROTOCOL_VIOLATION);
        }
        if (m_in.size() - pos - sizeof length < length) {
            break;
        }
        deliver(std::span<const std::byte>(m_in.data() + pos + sizeof length, length));
        pos += sizeof length + length;
        ++count;
    }
    m_in.erase(m_in.begin(), m_in.begin() + static_cast<std::ptrdiff_t>(pos));
    if (count == 0 && m_eof) {
        return fail(Errc::DISCONNECTED);
    }
    return count;
}

Result<void> SocketLink::wait(int timeoutMs) {
    if (m_eof) {
        return fail(Errc::DISCONNECTED);
    }
    pollfd p{m_fd.get(), POLLIN, 0};
    if (::poll(&p, 1, timeoutMs) < 0 && errno != EINTR) {
        return fail(errcFromErrno(errno));
    }
    return {};
}

int SocketLink::takeReceivedFd() {
    if (m_inFds.empty()) {
        return -1;
    }
    const int fd = m_inFds.front().release();
    m_inFds.pop_front();
    return fd;
}

Result<UniqueFd> listenOn(const std::string& path) {
    auto addr = addressOf(path);
    if (!addr) {
        return fail(addr.error());
    }
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
        ::unlink(path.c_str()); // a stale socket from a daemon that died
    }
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) {
        return fail(errcFromErrno(errno));
    }
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr) != 0 ||
        ::listen(fd.get(), 128) != 0) {
        return fail(errno == EADDRINUSE ? Errc::REPLIER_EXISTS : errcFromErrno(errno));
    }
    return fd;
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
    UniqueFd fd(::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) {
        return fail(errno == EAGAIN || errno == EWOULDBLOCK ? Errc::TRY_AGAIN
                                                            : errcFromErrno(errno));
    }
    ucred cred{};
    socklen_t len = sizeof cred;
    peerPid = ::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0
                  ? static_cast<uint32_t>(cred.pid)
                  : 0;
    return fd;
}

} // namespace xkbus::socket
