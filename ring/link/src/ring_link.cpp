// See ring_link.hpp.
#include <xkbus/ring/ring_link.hpp>

namespace xkbus::ring {

Result<void> trySendRecord(Connection& connection, const protocol::Record& record, Kick kick) {
    const protocol::EncodedRecord encoded = protocol::encodeParts(record);
    const auto parts = encoded.parts();
    return connection.trySend(parts, kick);
}

Result<std::optional<protocol::Record>> tryReceiveRecord(Connection& connection,
                                                         const protocol::Limits& limits) {
    auto bytes = connection.tryReceive();
    if (!bytes) {
        return fail(bytes.error());
    }
    if (!*bytes) {
        return std::optional<protocol::Record>();
    }
    const size_t size = (*bytes)->size();
    // The ring copied the bytes into private memory; decode() checks every
    // field there, and the body is adopted from that copy, not made again.
    auto record = protocol::decodeAdopting(connection.takeReceived(), size, limits);
    if (!record) {
        return fail(record.error());
    }
    return std::optional<protocol::Record>(std::move(*record));
}

RingLink::RingLink(Connection connection, std::shared_ptr<void> attachments)
    : m_attachments(std::move(attachments)), m_connection(std::move(connection)) {}

// The connection closes (status byte cleared, peer kicked) before the
// attachments it ran on go.
RingLink::~RingLink() = default;

Result<void> RingLink::send(const protocol::Record& record, bool lazy) {
    const protocol::EncodedRecord encoded = protocol::encodeParts(record);
    const auto parts = encoded.parts();
    return m_connection.send(parts, lazy ? Kick::LAZY : Kick::IF_ASKED,
                             std::chrono::milliseconds(-1));
}

Result<size_t> RingLink::receive(const std::function<void(protocol::Record&&)>& deliver,
                                 const protocol::Limits& limits) {
    size_t count = 0;
    for (;;) {
        auto record = tryReceiveRecord(m_connection, limits);
        if (!record) {
            // Records delivered before a disconnect count; a bad one never does.
            const bool keep = count > 0 && record.error() == Errc::DISCONNECTED;
            return keep ? Result<size_t>(count) : fail(record.error());
        }
        if (!*record) {
            return count;
        }
        deliver(std::move(**record));
        ++count;
    }
}

Result<bool> RingLink::wait(int timeoutMs, int extraFd) {
    auto waited = m_connection.waitForActivity(std::chrono::milliseconds(timeoutMs), extraFd);
    if (!waited && waited.error() == Errc::TIMED_OUT) {
        return false;
    }
    return waited;
}

std::vector<int> RingLink::wakeFds() const {
    std::vector<int> fds;
    for (int fd : m_connection.pollFds()) {
        if (fd >= 0) {
            fds.push_back(fd);
        }
    }
    return fds;
}

} // namespace xkbus::ring
