// The client library's RecordLink over a shared ring. Sends wait until the
// whole record is in the ring (spin, then sleep); receives never wait. The
// daemon drives its side of the ring directly, with the same record framing
// (sendRecord, receiveRecord).
#pragma once

#include <memory>
#include <optional>
#include <xkbus/protocol/record_link.hpp>
#include <xkbus/ring/connection.hpp>

namespace xkbus::ring {

class RingLink final : public protocol::RecordLink {
public:
    // `attachments` lives exactly as long as the link: the handshake socket
    // of the local transport, or the xenstore device of a guest.
    explicit RingLink(Connection connection, std::shared_ptr<void> attachments = {});
    ~RingLink() override;

    Result<void> send(const protocol::Record& record, bool lazy) override;
    Result<size_t> receive(const std::function<void(protocol::Record&&)>& deliver,
                           const protocol::Limits& limits) override;
    Result<bool> wait(int timeoutMs, int extraFd) override;
    int takeReceivedFd() override { return m_connection.takeDescriptor(); }
    bool noteEmptied(uint32_t handle, uint16_t pushesSeen) override {
        return m_connection.noteEmptied(handle, pushesSeen);
    }
    bool retractNote(uint32_t handle, uint16_t pushesSeen) override {
        return m_connection.retractNote(handle, pushesSeen);
    }
    bool recordsWaiting() override { return m_connection.dataWaiting(); }
    bool backlogged() override { return m_connection.endpoint().peerBacklogged(); }
    std::vector<int> wakeFds() const override;
    Result<void> acknowledgeWakeup() override { return m_connection.onWakeup(); }
    Result<bool> armWakeup() override { return m_connection.arm(); }

private:
    std::shared_ptr<void> m_attachments; // declared first: destroyed last
    Connection m_connection;
};

// Writes `record` into the ring without waiting: its fixed part and body go
// straight in (see Endpoint::trySend for TRY_AGAIN and the rest).
Result<void> trySendRecord(Connection& connection, const protocol::Record& record,
                           Kick kick = Kick::IF_ASKED);
// Takes the next whole record out of the ring, decoded: its body stays in the
// buffer it was received into. nullopt: none complete yet;
// PROTOCOL_VIOLATION if it does not decode.
Result<std::optional<protocol::Record>> tryReceiveRecord(Connection& connection,
                                                         const protocol::Limits& limits);

} // namespace xkbus::ring
