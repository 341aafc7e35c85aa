#include <xkbus/frontend/open.hpp>
#include <xkbus/limpet/channel_port.hpp>

namespace xkbus::limpet {

Msg fromChannel(frontend::Message m) {
    Msg out;
    const auto& h = m.header;
    out.id = h.id;
    out.inReplyTo = h.inReplyTo;
    out.to = h.to;
    out.from = h.from;
    out.origFrom = h.origFrom;
    out.finalTo = h.finalTo;
    out.flags = h.flags;
    out.name = std::string(m.name());
    out.data.assign(m.data().begin(), m.data().end());
    return out;
}

frontend::Message toChannel(const Msg& m) {
    frontend::Message out;
    out.header.id = m.id;
    out.header.inReplyTo = m.inReplyTo;
    out.header.to = m.to;
    out.header.from = m.from;
    out.header.origFrom = m.origFrom;
    out.header.finalTo = m.finalTo;
    out.header.flags = m.flags;
    out.body = MessageBody::copyOf(m.name, m.data);
    return out;
}

ChannelPort::ChannelPort(std::unique_ptr<frontend::KsockChannel> channel)
    : m_channel(std::move(channel)) {}

Result<std::optional<Msg>> ChannelPort::next() {
    auto m = m_channel->nextMessage();
    if (!m) {
        return fail(m.error());
    }
    if (!*m) {
        return std::optional<Msg>{};
    }
    return std::optional<Msg>{fromChannel(std::move(**m))};
}

Result<void> ChannelPort::bind(const std::string& name, bool replier) {
    return m_channel->bind(name, replier);
}

Result<void> ChannelPort::unbind(const std::string& name, bool replier) {
    return m_channel->unbind(name, replier);
}

Result<KsockId> ChannelPort::findReplier(const std::string& name) {
    return m_channel->findReplier(name);
}

Result<MsgId> ChannelPort::send(const Msg& msg) {
    return m_channel->send(toChannel(msg));
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
