// See peer_link.hpp.
#include "peer_link.hpp"

#include <xkbus/ring/local/local_transport.hpp>
#include <xkbus/ring/ring_link.hpp>

namespace xkbus::daemon {

namespace {
bool isPush(const protocol::Record& r) {
    return r.type == protocol::RecordType::PUSHED;
}
} // namespace

PeerLink::PeerLink(ConnectionId id, ring::Connection ring, UniqueFd socket, std::string label,
                   size_t maxBuffered)
    : m_id(id), m_ring(std::move(ring)), m_socket(std::move(socket)), m_label(std::move(label)),
      m_maxBuffered(maxBuffered) {}

Result<void> PeerLink::deliver(const protocol::Record& record, ring::Kick kick) {
    if (m_waiting.empty()) {
        auto sent = ring::trySendRecord(m_ring, record, kick);
        if (sent || sent.error() != Errc::TRY_AGAIN) {
            // A copy still streaming in is held back: the flag goes up
            // before pushWritten() may make its fd readable, or the client
            // would find the fd readable, its mirror empty, and no backlog.
            updateBacklog();
            if (sent && isPush(record)) {
                pushWritten(record.handle);
            }
            return sent;
        }
    }
    // Held back, with its body shared, not copied. The backlog flag goes up
    // before anything it caused is visible (the fd of a copy it carries).
    m_waitingBytes += protocol::encodedSize(record);
    m_waiting.push_back(record);
    updateBacklog();
    if (isPush(record)) {
        pushHeldBack(record.handle);
    }
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
        if (*flushed && m_streamingPush) {
            pushPublished(*std::exchange(m_streamingPush, std::nullopt));
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
        const bool push = isPush(next);
        const uint32_t handle = next.handle;
        m_waitingBytes -= protocol::encodedSize(next);
        m_waiting.pop_front();
        updateBacklog(); // before any fd turns readable, as in deliver()
        if (push) {
            pushWritten(handle); // the client may have emptied the fd meanwhile
        }
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
    m_fds.insert_or_assign(handle, FdState{std::move(*fd), 0});
    return {};
}

Result<void> PeerLink::handOverFd(uint32_t handle) {
    auto fd = m_fds.find(handle);
    if (fd == m_fds.end()) {
        return {};
    }
    return ring::local::sendDescriptor(m_socket.get(), fd->second.fd.appFd());
}

// A copy's record went into the ring: whole, or the start of it.
void PeerLink::pushWritten(uint32_t handle) {
    if (m_ring.endpoint().sendPending()) {
        m_streamingPush = handle;
        pushHeldBack(handle);
    } else {
        pushPublished(handle);
    }
}

// The note is looked at after the copy's record is published: see
// settleFdLocked() in the client library for the other half of this handshake.
void PeerLink::pushPublished(uint32_t handle) {
    auto state = m_fds.find(handle);
    if (state == m_fds.end()) {
        return;
    }
    const uint16_t push = ++state->second.pushes;
    if (m_ring.endpoint().takeNoteUnseen(handle, push)) {
        state->second.fd.makeReadable();
        m_ring.endpoint().takeDone(handle);
    }
}

// The client cannot have seen a copy that is not in the ring yet.
void PeerLink::pushHeldBack(uint32_t handle) {
    auto state = m_fds.find(handle);
    if (state != m_fds.end() && m_ring.endpoint().takeAnyNote(handle)) {
        state->second.fd.makeReadable();
        m_ring.endpoint().takeDone(handle);
    }
}

bool PeerLink::fdEmptied(uint32_t handle) {
    return m_fds.contains(handle) && m_ring.endpoint().hasNote(handle);
}

void PeerLink::showSending(uint32_t handle, bool blocked) {
    if (auto state = m_fds.find(handle); state != m_fds.end()) {
        state->second.fd.showSending(blocked);
    }
}

} // namespace xkbus::daemon
