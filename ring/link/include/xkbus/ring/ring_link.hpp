// The client library's RecordLink over a shared ring. Sends wait until the
// whole record is in the ring (spin, then sleep); receives never wait. The
// daemon drives its side of the ring directly, without this class.
#pragma once

#include <memory>
#include <xkbus/protocol/record_link.hpp>
#include <xkbus/ring/connection.hpp>

namespace xkbus::ring {

class RingLink final : public protocol::RecordLink {
public:
    // `attachments` lives exactly as long as the link: the handshake socket
    // of the local transport, or the xenstore device of a guest.
    explicit RingLink(Connection connection, std::shared_ptr<void> attachments = {});
    ~RingLink() override;

    Result<void> send(std::span<const std::byte> record) override;
    Result<size_t> receive(const std::function<void(std::span<const std::byte>)>& deliver) override;
    Result<void> wait(int timeoutMs) override;
    int takeReceivedFd() override { return m_connection.takeDescriptor(); }
    std::vector<int> wakeFds() const override;
    Result<void> acknowledgeWakeup() override { return m_connection.onWakeup(); }
    Result<bool> armWakeup() override { return m_connection.arm(); }

private:
    std::shared_ptr<void> m_attachments; // declared first: destroyed last
    Connection m_connection;
};

} // namespace xkbus::ring
