#include <poll.h>
#include <xkbus/frontend/open.hpp>
#include <xkbus/limpet/channel_port.hpp>

namespace xkbus::limpet {

ChannelPort::ChannelPort(std::unique_ptr<frontend::KsockChannel> channel)
    : m_channel(std::move(channel)) {}

// The channel's messages are the Limpet's: header and shared body as read.
Result<std::optional<Message>> ChannelPort::next() {
    return m_channel->nextMessage();
}

Result<void> ChannelPort::checkHangUp(short revents) {
    if ((revents & (POLLHUP | POLLERR | POLLNVAL)) == 0) {
        return {};
    }
    // A question only a living daemon answers.
    return m_channel->control(frontend::Control::NUM_MESSAGES, 0).map([](uint64_t) {});
}

Result<void> ChannelPort::bind(std::string_view name, bool replier) {
    return m_channel->bind(name, replier);
}

Result<void> ChannelPort::unbind(std::string_view name, bool replier) {
    return m_channel->unbind(name, replier);
}

Result<KsockId> ChannelPort::findReplier(std::string_view name) {
    return m_channel->findReplier(name);
}

Result<MsgId> ChannelPort::send(const Message& msg) {
    return m_channel->send(msg);
}

Result<void> ChannelPort::onlyOnce() {
    return m_channel->control(frontend::Control::ONLY_ONCE, 1).map([](uint64_t) {});
}

Result<void> ChannelPort::reportReplierBinds() {
    return m_channel->control(frontend::Control::REPORT_REPLIER_BINDS, 1).map([](uint64_t) {});
}

Result<void> ChannelPort::setMaxMessages(uint32_t n) {
    return m_channel->control(frontend::Control::MAX_MESSAGES, n).map([](uint64_t) {});
}

Result<std::unique_ptr<ChannelPort>> openPort(const std::string& socketPath, uint32_t bus) {
    // "xen:" is dom0's bus, reached from a guest through its Xen frontend.
    auto connection = socketPath == XEN_FRONTEND ? frontend::connectDefault()
                                                 : frontend::connectLocal(socketPath);
    if (!connection) {
        return fail(connection.error());
    }
    auto channel = (*connection)->openKsock(bus, true);
    if (!channel) {
        return fail(channel.error());
    }
    return std::make_unique<ChannelPort>(std::move(*channel));
}

} // namespace xkbus::limpet
