// See ring_link.hpp.
#include <xkbus/ring/ring_link.hpp>

namespace xkbus::ring {

RingLink::RingLink(Connection connection, std::shared_ptr<void> attachments)
    : m_attachments(std::move(attachments)), m_connection(std::move(connection)) {}

// The connection closes (status byte cleared, peer kicked) before the
// attachments it ran on go.
RingLink::~RingLink() = default;

Result<void> RingLink::send(std::span<const std::byte> record) {
    return m_connection.send(record, std::chrono::milliseconds(-1));
}

Result<size_t> RingLink::receive(const std::function<void(std::span<const std::byte>)>& deliver) {
    size_t count = 0;
    for (;;) {
        auto record = m_connection.tryReceive();
        if (!record) {
            return count > 0 ? Result<size_t>(count) : fail(record.error());
        }
        if (!*record) {
            return count;
        }
        deliver(**record);
        ++count;
    }
}

Result<void> RingLink::wait(int timeoutMs) {
    auto waited = m_connection.waitForActivity(std::chrono::milliseconds(timeoutMs));
    if (!waited && waited.error() != Errc::TIMED_OUT) {
        return waited;
    }
    return {};
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
