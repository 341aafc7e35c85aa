// The process-wide channel factory behind kbus_ksock_open and Ksock::open.
#include "channel_factory_internal.hpp"

#include <mutex>
#include <xkbus/frontend/open.hpp>

namespace xkbus::frontend {

namespace {

std::mutex& factoryMutex() {
    static auto* mutex = new std::mutex;
    return *mutex;
}

// Until a process installs its own, Ksocks come from the daemon, the way an
// unchanged libkbus program expects kbus_ksock_open to work.
ChannelFactory& installedFactory() {
    static auto* factory = new ChannelFactory(openDefaultKsock);
    return *factory;
}

bool tooLong(std::string_view name) noexcept {
    return name.size() > MAX_NAME_LEN;
}

// A name over 1000 bytes fails with ENAMETOOLONG here, as KBUS failed the
// call: a record carrying it would break the protocol's name limit, and the
// daemon would drop the whole connection with every Ksock on it.
class NameCheckedChannel final : public KsockChannel {
public:
    explicit NameCheckedChannel(std::unique_ptr<KsockChannel> inner) : m_inner(std::move(inner)) {}

    int fd() const noexcept override { return m_inner->fd(); }
    KsockId id() const noexcept override { return m_inner->id(); }
    Result<void> bind(std::string_view name, bool replier) override {
        return tooLong(name) ? fail(Errc::NAME_TOO_LONG) : m_inner->bind(name, replier);
    }
    Result<void> unbind(std::string_view name, bool replier) override {
        return tooLong(name) ? fail(Errc::NAME_TOO_LONG) : m_inner->unbind(name, replier);
    }
    Result<KsockId> findReplier(std::string_view name) override {
        return tooLong(name) ? fail(Errc::NAME_TOO_LONG) : m_inner->findReplier(name);
    }
    Result<MsgId> send(const Message& msg) override {
        return tooLong(msg.name()) ? fail(Errc::NAME_TOO_LONG) : m_inner->send(msg);
    }
    Result<std::vector<Result<MsgId>>> sendBatch(std::span<const Message> msgs) override {
        for (const Message& m : msgs) {
            if (tooLong(m.name())) {
                return fail(Errc::NAME_TOO_LONG); // nothing sent, as for any bad batch
            }
        }
        return m_inner->sendBatch(msgs);
    }
    Result<void> discard() override { return m_inner->discard(); }
    Result<std::optional<Message>> nextMessage() override { return m_inner->nextMessage(); }
    Result<uint64_t> control(Control what, uint64_t arg) override {
        return m_inner->control(what, arg);
    }
    Result<uint32_t> newBus() override { return m_inner->newBus(); }

private:
    std::unique_ptr<KsockChannel> m_inner;
};

} // namespace

void setChannelFactory(ChannelFactory factory) {
    std::lock_guard lock(factoryMutex());
    installedFactory() = std::move(factory);
}

Result<std::unique_ptr<KsockChannel>> openChannel(uint32_t bus, bool writable) {
    ChannelFactory factory;
    {
        std::lock_guard lock(factoryMutex());
        factory = installedFactory();
    }
    if (!factory) {
        return fail(Errc::NO_SUCH_DEVICE);
    }
    auto channel = factory(bus, writable);
    if (!channel) {
        return channel;
    }
    return std::unique_ptr<KsockChannel>(std::make_unique<NameCheckedChannel>(std::move(*channel)));
}

} // namespace xkbus::frontend
