// See ksock_fd.hpp.
#include "ksock_fd.hpp"

#include <cerrno>
#include <sys/socket.h>

namespace xkbus::daemon {

Result<KsockFd> KsockFd::create(bool writable) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
        return fail(errno == EMFILE || errno == ENFILE ? Errc::TOO_MANY : Errc::NO_MEMORY);
    }
    KsockFd k;
    k.m_app = UniqueFd(fds[0]);
    k.m_peer = UniqueFd(fds[1]);
    k.m_writable = writable;
    // The smallest send buffer: a few packets make the application end unwritable.
    const int smallest = 1;
    (void)::setsockopt(k.m_app.get(), SOL_SOCKET, SO_SNDBUF, &smallest, sizeof smallest);
    if (!writable) {
        k.fill();
    }
    return k;
}

void KsockFd::makeReadable() noexcept {
    const char token = 'r';
    (void)::send(m_peer.get(), &token, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
}

void KsockFd::showSending(bool blocked) noexcept {
    if (blocked == m_blocked || !m_writable) {
        return;
    }
    m_blocked = blocked;
    if (blocked) {
        fill();
    } else {
        drain();
    }
}

void KsockFd::fill() noexcept {
    const char token = 'w';
    while (::send(m_app.get(), &token, 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1) {
    }
}

void KsockFd::drain() noexcept {
    char sink[64];
    while (::recv(m_peer.get(), sink, sizeof sink, MSG_DONTWAIT) > 0) {
    }
}

} // namespace xkbus::daemon
