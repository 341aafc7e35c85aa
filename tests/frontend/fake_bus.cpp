// FakeBusHost and its KsockChannel: the core's calls, plus the fd bookkeeping a
// daemon connection does (queue events -> PollSignal).
#include "fake_bus.hpp"

#include <xkbus/frontend/channel_factory.hpp>

namespace xkbus::frontend::testing {

namespace {

uint64_t keyOf(uint32_t bus, KsockId id) {
    return (uint64_t{bus} << 32) | id;
}

class FakeChannel final : public KsockChannel {
public:
    FakeChannel(std::shared_ptr<FakeBusHost> host, uint32_t bus, KsockId id,
                std::unique_ptr<PollSignal> signal)
        : m_host(std::move(host)), m_bus(bus), m_id(id), m_signal(std::move(signal)) {}
    ~FakeChannel() override {
        m_host->onBus(m_bus, [&](core::Bus& b) { return b.close(m_id); });
        m_host->forget(m_bus, m_id);
    }

    int fd() const noexcept override { return m_signal->fd(); }
    KsockId id() const noexcept override { return m_id; }

    Result<void> bind(std::string_view name, bool replier) override {
        return m_host->onBus(m_bus, [&](core::Bus& b) { return b.bind(m_id, name, replier); });
    }
    Result<void> unbind(std::string_view name, bool replier) override {
        return m_host->onBus(m_bus, [&](core::Bus& b) { return b.unbind(m_id, name, replier); });
    }
    Result<KsockId> findReplier(std::string_view name) override {
        return m_host->onBus(m_bus, [&](core::Bus& b) { return b.findReplier(name); });
    }
    Result<MsgId> send(const Message& msg) override {
        auto sent = m_host->onBus(m_bus, [&](core::Bus& b) { return b.send(m_id, msg); });
        if (!sent && sent.error() == Errc::TRY_AGAIN) {
            m_host->markSending(m_bus, m_id, true);
        }
        return sent;
    }
    Result<void> discard() override {
        auto done = m_host->onBus(m_bus, [&](core::Bus& b) { return b.discard(m_id); });
        m_host->markSending(m_bus, m_id, false);
        return done;
    }
    Result<std::optional<Message>> nextMessage() override {
        auto next = m_host->onBus(m_bus, [&](core::Bus& b) { return b.nextMessage(m_id); });
        if (!next) {
            return fail(next.error());
        }
        if (!*next) {
            return std::optional<Message>();
        }
        m_host->taken(m_bus, m_id);
        return std::optional<Message>((**next));
    }
    Result<uint64_t> control(Control what, uint64_t arg) override {
        const auto arg32 = static_cast<uint32_t>(arg);
        return m_host->onBus(m_bus, [&](core::Bus& b) -> Result<uint64_t> {
            switch (what) {
            case Control::KSOCK_ID:
                return m_id;
            case Control::LAST_SENT:
                return b.lastSent(m_id).map(protocol::packMsgId);
            case Control::MAX_MESSAGES:
                return b.maxMessages(m_id, arg32);
            case Control::NUM_MESSAGES:
                return b.numMessages(m_id);
            case Control::NUM_UNREPLIED_TO:
                return b.numUnrepliedTo(m_id);
            case Control::ONLY_ONCE:
                return b.onlyOnce(m_id, arg32);
            case Control::VERBOSE:
                return b.verbose(arg32);
            case Control::REPORT_REPLIER_BINDS:
                return b.reportReplierBinds(m_id, arg32);
            case Control::MAX_MESSAGE_SIZE:
                return b.maxMessageSize(arg32);
            }
            return fail(Errc::INVALID);
        });
    }
    Result<uint32_t> newBus() override { return m_host->newBus(); }

private:
    std::shared_ptr<FakeBusHost> m_host;
    uint32_t m_bus;
    KsockId m_id;
    std::unique_ptr<PollSignal> m_signal;
};

core::BusConfig fakeConfig() {
    core::BusConfig config;
    config.recordQueueEvents = true;
    return config;
}

} // namespace

FakeBusHost::FakeBusHost() {
    m_buses.push_back(std::make_unique<core::Bus>(0, fakeConfig()));
}

void FakeBusHost::install() {
    std::weak_ptr<FakeBusHost> weak = weak_from_this();
    setChannelFactory([weak](uint32_t bus, bool writable) -> Result<std::unique_ptr<KsockChannel>> {
        auto host = weak.lock();
        if (!host) {
            return fail(Errc::NO_SUCH_DEVICE);
        }
        return host->open(bus, writable);
    });
}

Result<std::unique_ptr<KsockChannel>> FakeBusHost::open(uint32_t bus, bool writable) {
    auto signal = PollSignal::create(writable);
    if (!signal) {
        return fail(signal.error());
    }
    std::lock_guard lock(m_mutex);
    if (bus >= m_buses.size()) {
        return fail(Errc::NO_SUCH_DEVICE);
    }
    auto id = m_buses[bus]->open(core::OpenOptions{.writable = writable});
    if (!id) {
        return fail(id.error());
    }
    m_signals[keyOf(bus, *id)] = signal->get();
    return std::unique_ptr<KsockChannel>(
        std::make_unique<FakeChannel>(shared_from_this(), bus, *id, std::move(*signal)));
}

Result<uint32_t> FakeBusHost::newBus() {
    std::lock_guard lock(m_mutex);
    if (m_buses.size() >= 256) {
        return fail(Errc::TOO_MANY);
    }
    const auto index = static_cast<uint32_t>(m_buses.size());
    m_buses.push_back(std::make_unique<core::Bus>(index, fakeConfig()));
    return index;
}

void FakeBusHost::forget(uint32_t bus, KsockId id) {
    std::lock_guard lock(m_mutex);
    m_signals.erase(keyOf(bus, id));
}

void FakeBusHost::markSending(uint32_t bus, KsockId id, bool blocked) {
    std::lock_guard lock(m_mutex);
    if (PollSignal* s = signalOf(bus, id)) {
        s->setSending(blocked);
    }
}

void FakeBusHost::taken(uint32_t bus, KsockId id) {
    std::lock_guard lock(m_mutex);
    if (PollSignal* s = signalOf(bus, id)) {
        s->messageTaken();
    }
}

PollSignal* FakeBusHost::signalOf(uint32_t bus, KsockId id) {
    auto it = m_signals.find(keyOf(bus, id));
    return it == m_signals.end() ? nullptr : it->second;
}

void FakeBusHost::applyEvents(uint32_t bus) {
    for (const core::QueueEvent& e : m_buses[bus]->takeQueueEvents()) {
        PollSignal* s = signalOf(bus, e.ksock);
        if (s == nullptr) {
            continue;
        }
        switch (e.kind) {
        case core::QueueEvent::Kind::PUSHED_TAIL:
        case core::QueueEvent::Kind::PUSHED_HEAD:
            s->messageQueued();
            break;
        case core::QueueEvent::Kind::REMOVED:
            s->messageTaken();
            break;
        case core::QueueEvent::Kind::SEND_FINISHED:
            s->setSending(false);
            break;
        }
    }
    (void)m_buses[bus]->takeWakeups();
}

std::shared_ptr<FakeBusHost> installFakeBus() {
    auto host = std::make_shared<FakeBusHost>();
    host->install();
    return host;
}

} // namespace xkbus::frontend::testing
