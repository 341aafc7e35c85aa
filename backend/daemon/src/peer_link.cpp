// See peer_link.hpp.
#include "peer_link.hpp"

#include <xkbus/ring/local/local_transport.hpp>
#include <xkbus/ring/ring_link.hpp>

namespace xkbus::daemon {

PeerLink::PeerLink(ConnectionId id, ring::Connection ring, UniqueFd socket, std::string label,
                   size_t maxBuffered)
    : m_id(id), m_ring(std::move(ring)), m_socket(std::move(socket)), m_label(std::move(label)),
      m_maxBuffered(maxBuffered) {}

Result<void> PeerLink::deliver(const protocol::Record& record, ring::Kick kick) {
    if (m_waiting.empty()) {
        auto sent = ring::trySendRecord(m_ring, record, kick);
        if (sent || sent.error() != Errc::TRY_AGAIN) {
            updateBacklog();
            return sent;
        }
    }
    // Held back, with its body shared, not copied. The backlog flag goes up
    // before anything it caused is visible (the fd of a copy it carries).
    m_waitingBytes += protocol::encodedSize(record);
    m_waiting.push_back(record);
    updateBacklog();
    if (m_waitingBytes > m_maxBuffered) {
        return fail(Errc::NO_MEMORY); // it stopped reading
    }
    return {};
}

Result<void> PeerLink::flush() {
    for (;;) {
        auto flushed = m_ring.flush();
        if (!flushed) {
            return fail(flushed.error());
        }
        if (!*flushed || m_waiting.empty()) {
            break;
        }
        const protocol::Record& next = m_waiting.front();
        auto sent = ring::trySendRecord(m_ring, next);
        if (!sent && sent.error() == Errc::TRY_AGAIN) {
            break;
        }
        if (!sent) {
            return sent;
        }
        if (next.type == protocol::RecordType::PUSHED) {
            // The client may have emptied the fd while this waited here.
            copyQueued(next.handle);
        }
        m_waitingBytes -= protocol::encodedSize(next);
        m_waiting.pop_front();
    }
    updateBacklog();
    return {};
}

void PeerLink::updateBacklog() {
    const bool backlog = !m_waiting.empty() || m_ring.endpoint().sendPending();
    if (backlog != m_backlogShown) {
        m_ring.endpoint().setBacklog(backlog);
        m_backlogShown = backlog;
    }
}

Result<std::optional<protocol::Record>> PeerLink::receive() {
    // The ring copied the bytes out of shared memory before decode() checks
    // every field; the message body stays in that private copy.
    return ring::tryReceiveRecord(m_ring, protocol::Limits{});
}

Result<void> PeerLink::openFd(uint32_t handle, bool writable) {
    auto fd = KsockFd::create(writable);
    if (!fd) {
        return fail(fd.error());
    }
    m_fds.insert_or_assign(handle, std::move(*fd));
    return {};
}

Result<void> PeerLink::handOverFd(uint32_t handle) {
    auto fd = m_fds.find(handle);
    if (fd == m_fds.end()) {
        return {};
    }
    return ring::local::sendDescriptor(m_socket.get(), fd->second.appFd());
}

void PeerLink::copyQueued(uint32_t handle) {
    auto fd = m_fds.find(handle);
    // Taken after the copy's record is published: see settleFdLocked() in
    // the client library for the other half of this handshake.
    if (fd != m_fds.end() && m_ring.endpoint().takeClearNote(handle)) {
        fd->second.makeReadable();
    }
}

bool PeerLink::fdEmptied(uint32_t handle) {
    return m_fds.contains(handle) && m_ring.endpoint().hasClearNote(handle);
}

void PeerLink::showSending(uint32_t handle, bool blocked) {
    if (auto fd = m_fds.find(handle); fd != m_fds.end()) {
        fd->second.showSending(blocked);
    }
}

} // namespace xkbus::daemon
