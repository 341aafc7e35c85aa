// A Limpet's BusPort over a real Ksock (frontend::KsockChannel).
#pragma once

#include <memory>
#include <optional>
#include <xkbus/frontend/ksock_channel.hpp>
#include <xkbus/limpet/limpet.hpp>

namespace xkbus::limpet {

class ChannelPort final : public BusPort {
public:
    explicit ChannelPort(std::unique_ptr<frontend::KsockChannel> channel);
    int fd() const noexcept { return m_channel->fd(); }
    // The next message on the Ksock, if any.
    Result<std::optional<Message>> next();
    // After poll() gave `revents` for fd(): DISCONNECTED if the fd hung up
    // because the daemon went away. Reading the ring alone cannot tell: a
    // dead daemon's ring just stays empty.
    Result<void> checkHangUp(short revents);

    KsockId id() const override { return m_channel->id(); }
    Result<void> bind(std::string_view name, bool replier) override;
    Result<void> unbind(std::string_view name, bool replier) override;
    Result<KsockId> findReplier(std::string_view name) override;
    Result<MsgId> send(const Message& msg) override;
    Result<void> onlyOnce() override;
    Result<void> reportReplierBinds() override;
    Result<void> setMaxMessages(uint32_t n) override;

private:
    std::unique_ptr<frontend::KsockChannel> m_channel;
};

// Opens a writable Ksock on `bus` of the daemon at `socketPath` (its
// trusted socket, so that the Limpet's statuses keep SYNTHETIC), or, given
// XEN_FRONTEND, of dom0's daemon through this guest's Xen frontend (a guest's
// Ksocks are not trusted: its statuses arrive on dom0 without SYNTHETIC).
inline constexpr std::string_view XEN_FRONTEND = "xen:";
Result<std::unique_ptr<ChannelPort>> openPort(const std::string& socketPath, uint32_t bus);

} // namespace xkbus::limpet
