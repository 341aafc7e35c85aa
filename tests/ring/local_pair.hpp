// Helpers for tests over the local transport: a socketpair, and a backend
// accept that waits (bounded) for the handshake to arrive.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <xkbus/ring/local/local_transport.hpp>

namespace xkbus::ring::test {

struct SocketPair {
    int frontend = -1;
    int backend = -1;
    SocketPair() {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0) {
            frontend = sv[0];
            backend = sv[1];
        }
    }
    ~SocketPair() {
        closeFrontend();
        closeBackend();
    }
    void closeFrontend() {
        if (frontend >= 0) {
            ::close(frontend);
            frontend = -1;
        }
    }
    void closeBackend() {
        if (backend >= 0) {
            ::close(backend);
            backend = -1;
        }
    }
};

inline Result<Connection> acceptWithin(int socketFd, int timeoutMs,
                                       const BackendOptions& options = {},
                                       std::string_view* why = nullptr) {
    pollfd p{socketFd, POLLIN, 0};
    if (::poll(&p, 1, timeoutMs) <= 0) {
        return fail(Errc::TIMED_OUT);
    }
    return local::acceptBackend(socketFd, options, why);
}

} // namespace xkbus::ring::test
