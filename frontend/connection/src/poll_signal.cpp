// PollSignal: a datagram socketpair driven so that the application's end polls
// readable while messages are queued and unwritable while a send is blocked.
#include <cerrno>
#include <sys/socket.h>
#include <unistd.h>
#include <xkbus/frontend/poll_signal.hpp>

namespace xkbus::frontend {

namespace {

constexpr char TOKEN = 0;

// The smallest send buffer the kernel allows, so that few datagrams make the
// application's end unwritable (the request is rounded up to the minimum).
void shrinkSendBuffer(int fd) {
    const int smallest = 1;
    (void)::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &smallest, sizeof smallest);
}

} // namespace

Result<std::unique_ptr<PollSignal>> PollSignal::create(bool writable) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
        return fail(errno == EMFILE || errno == ENFILE ? Errc::TOO_MANY : Errc::NO_MEMORY);
    }
    shrinkSendBuffer(fds[0]);
    std::unique_ptr<PollSignal> signal(new PollSignal(fds[0], fds[1], writable));
    if (!writable) {
        signal->showWritable(false);
    }
    return signal;
}

PollSignal::PollSignal(int app, int peer, bool writable) noexcept
    : m_app(app), m_peer(peer), m_openForWrite(writable) {}

PollSignal::~PollSignal() {
    ::close(m_app);
    ::close(m_peer);
}

void PollSignal::messageQueued() {
    std::lock_guard lock(m_mutex);
    ++m_queued;
    showReadable(true);
}

void PollSignal::messageTaken() {
    std::lock_guard lock(m_mutex);
    if (m_queued > 0) {
        --m_queued;
    }
    showReadable(m_queued > 0);
}

void PollSignal::setQueued(uint32_t count) {
    std::lock_guard lock(m_mutex);
    m_queued = count;
    showReadable(count > 0);
}

void PollSignal::setSending(bool blocked) {
    std::lock_guard lock(m_mutex);
    m_sending = blocked;
    showWritable(m_openForWrite && !blocked);
}

uint32_t PollSignal::queued() const {
    std::lock_guard lock(m_mutex);
    return m_queued;
}

bool PollSignal::sending() const {
    std::lock_guard lock(m_mutex);
    return m_sending;
}

// One datagram at most waits on the application's end: the count lives here,
// so no queue limit of the socket can bound the number of messages.
void PollSignal::showReadable(bool readable) {
    if (readable == m_readableShown) {
        return;
    }
    char sink = 0;
    if (readable) {
        m_readableShown = ::send(m_peer, &TOKEN, 1, MSG_DONTWAIT) == 1;
    } else {
        m_readableShown = ::recv(m_app, &sink, 1, MSG_DONTWAIT) != 1;
    }
}

void PollSignal::showWritable(bool writable) {
    if (writable == m_writableShown) {
        return;
    }
    if (writable) {
        char sink[64];
        while (::recv(m_peer, sink, sizeof sink, MSG_DONTWAIT) > 0) {
        }
    } else {
        while (::send(m_app, &TOKEN, 1, MSG_DONTWAIT) == 1) {
        }
    }
    m_writableShown = writable;
}

} // namespace xkbus::frontend
