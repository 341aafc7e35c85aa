// An in-process daemon for tests: client RecordLinks wired straight into a
// real Dispatcher over a real Core, synchronously, one thread. Each link can
// be throttled to hand over only a few records per receive(), as a full ring
// would, so client mirrors lag the daemon.
#pragma once

#include <deque>
#include <memory>
#include <unordered_map>
#include <vector>
#include <xkbus/daemon/dispatcher.hpp>
#include <xkbus/protocol/record_link.hpp>

namespace xkbus::testing {

class LoopbackDaemon {
public:
    explicit LoopbackDaemon(core::CoreConfig config = withEvents({}))
        : core(config), dispatcher(core) {}

    static core::CoreConfig withEvents(core::CoreConfig c) {
        c.bus.recordQueueEvents = true;
        return c;
    }

    class Link final : public protocol::RecordLink {
    public:
        Link(LoopbackDaemon& daemon, daemon::ConnectionId id) : m_daemon(daemon), m_id(id) {}
        ~Link() override { m_daemon.drop(m_id); }

        // Every record goes through the codec, as it would through a ring. A
        // lazy record waits, as in a ring whose reader was not kicked, until
        // the next record that is not lazy (or the process dies).
        Result<void> send(const protocol::Record& record, bool lazy) override {
            if (!m_daemon.alive(m_id)) {
                return fail(Errc::DISCONNECTED);
            }
            std::vector<std::byte> bytes;
            protocol::encode(record, bytes);
            m_lazy.push_back(std::move(bytes));
            if (lazy) {
                return {};
            }
            holdUntilNextSend = false; // the daemon had its chance to flush
            deliverWaiting();
            return {};
        }
        // What the daemon does when the process dies: it reads what is left.
        void deliverWaiting() {
            for (auto& bytes : std::exchange(m_lazy, {})) {
                if (m_daemon.alive(m_id)) {
                    m_daemon.fromClient(m_id, bytes);
                }
            }
        }
        size_t lazyWaiting() const { return m_lazy.size(); }
        Result<size_t> receive(const std::function<void(protocol::Record&&)>& deliver,
                               const protocol::Limits& limits) override {
            auto& inbox = m_daemon.m_inboxes[m_id];
            if (holdUntilNextSend) {
                return size_t{0}; // as if the daemon's records were still in its outbox
            }
            size_t n = 0;
            while (!inbox.empty() && n < maxPerReceive) {
                auto record = protocol::decode(inbox.front(), limits);
                inbox.pop_front();
                if (!record) {
                    return fail(record.error());
                }
                deliver(std::move(*record));
                ++n;
            }
            if (n == 0 && !m_daemon.alive(m_id)) {
                return fail(Errc::DISCONNECTED);
            }
            return n;
        }
        Result<bool> wait(int, int) override {
            if (!m_daemon.alive(m_id) && m_daemon.m_inboxes[m_id].empty()) {
                return fail(Errc::DISCONNECTED);
            }
            return false;
        }
        // What it holds back is what a ring too full to take it would.
        bool backlogged() override {
            return holdUntilNextSend || !m_daemon.m_inboxes[m_id].empty();
        }
        daemon::ConnectionId id() const { return m_id; }
        size_t maxPerReceive = SIZE_MAX;
        bool holdUntilNextSend = false;

    private:
        LoopbackDaemon& m_daemon;
        daemon::ConnectionId m_id;
        std::vector<std::vector<std::byte>> m_lazy;
    };

    std::unique_ptr<Link> connect(daemon::PeerInfo peer = {}) {
        const auto id = dispatcher.connect(peer);
        m_alive[id] = true;
        return std::make_unique<Link>(*this, id);
    }

    // A process dies: the daemon reads what it wrote, then drops it.
    void kill(Link& link) {
        link.deliverWaiting();
        drop(link.id());
    }

    // What the event loop does when a peer dies or misbehaves.
    void drop(daemon::ConnectionId id) {
        if (m_alive[id]) {
            m_alive[id] = false;
            dispatcher.disconnect(id);
            route();
        }
    }

    bool alive(daemon::ConnectionId id) { return m_alive[id]; }
    std::vector<std::string> violations;
    std::vector<protocol::RecordType> received; // every record type clients sent
    core::Core core;
    daemon::Dispatcher dispatcher;

private:
    void fromClient(daemon::ConnectionId id, std::span<const std::byte> bytes) {
        auto record = protocol::decode(bytes);
        if (record) {
            received.push_back(record->type);
        }
        if (!record) {
            violations.push_back("undecodable record");
            drop(id);
            return;
        }
        auto handled = dispatcher.handle(id, *record);
        if (!handled) {
            violations.push_back(handled.error());
            drop(id);
            return;
        }
        route();
    }

    void route() {
        for (auto& out : dispatcher.takeOutgoing()) {
            std::vector<std::byte> bytes;
            protocol::encode(out.record, bytes);
            m_inboxes[out.to].push_back(std::move(bytes));
        }
    }

    std::unordered_map<daemon::ConnectionId, std::deque<std::vector<std::byte>>> m_inboxes;
    std::unordered_map<daemon::ConnectionId, bool> m_alive;
};

} // namespace xkbus::testing
