// See peer_hub.hpp. The order of the steps in route() is what keeps KBUS's
// promises across processes; docs/architecture.md walks through it.
#include "peer_link.hpp"

#include <algorithm>
#include <spdlog/spdlog.h>
#include <unordered_map>
#include <unordered_set>
#include <xkbus/daemon/peer_hub.hpp>
#include <xkbus/ring/spin.hpp>

namespace xkbus::daemon {

using protocol::Record;
using protocol::RecordType;

namespace {

constexpr size_t MAX_ANSWERERS_WATCHED = 16;

} // namespace

struct PeerHub::Impl {
    Impl(EventLoop& l, Dispatcher& d, HubOptions o, std::shared_ptr<spdlog::logger> lg)
        : loop(l), dispatcher(d), options(o), log(std::move(lg)) {
        options.spin = std::chrono::duration_cast<std::chrono::microseconds>(
            ring::spinWhereUseful(ring::SpinPolicy{options.spin}).maxSpin);
        loop.setHooks([this] { return serveReady(); }, [this] { return beforeSleep(); });
    }

    ConnectionId adopt(ring::Connection ring, const PeerInfo& info, std::string label,
                       UniqueFd socket);
    void drop(ConnectionId id, const std::string& reason);
    void wake(ConnectionId id, bool livenessReadable);
    void serve(PeerLink& peer);
    size_t handle(PeerLink& peer, Record&& record);
    size_t route(ConnectionId caller, uint32_t callerHandle, uint32_t openCall);
    void deliver(ConnectionId to, const Record& record, ring::Kick kick = ring::Kick::IF_ASKED);
    void doom(ConnectionId id, std::string reason);
    std::string faultOf(PeerLink& peer, Errc e);
    bool serveReady();
    bool beforeSleep();
    bool spinForWork();

    PeerLink* find(ConnectionId id) {
        auto it = peers.find(id);
        return it == peers.end() || doomed.contains(id) ? nullptr : it->second.get();
    }

    EventLoop& loop;
    Dispatcher& dispatcher;
    HubOptions options;
    std::shared_ptr<spdlog::logger> log;
    std::unordered_map<ConnectionId, std::unique_ptr<PeerLink>> peers;
    std::unordered_set<ConnectionId> ready;   // serve again before sleeping
    std::unordered_set<ConnectionId> unarmed; // served since the loop last slept
    // Delivered to since the loop last slept: the peers likely to answer
    // next (a replier, a listener popping), watched while we spin. Bounded,
    // so a fan-out to thousands costs the spin nothing per recipient.
    std::vector<ConnectionId> answerers;
    std::unordered_map<ConnectionId, std::string> doomed;
    bool workedSinceSleep = false;
    std::vector<Outgoing> outgoing; // route()'s, kept for its capacity
    std::function<void(ConnectionId)>* onDropped = nullptr;
};

PeerHub::PeerHub(EventLoop& loop, Dispatcher& dispatcher, HubOptions options,
                 std::shared_ptr<spdlog::logger> log)
    : m_impl(std::make_unique<Impl>(loop, dispatcher, options, std::move(log))) {
    m_impl->onDropped = &onDropped;
}

PeerHub::~PeerHub() = default;

PeerSink PeerHub::sink() {
    PeerSink s;
    s.adopt = [this](ring::Connection ring, const PeerInfo& info, std::string label,
                     UniqueFd socket) {
        return adopt(std::move(ring), info, std::move(label), std::move(socket));
    };
    s.drop = [this](ConnectionId id, const std::string& reason) { drop(id, reason); };
    return s;
}

ConnectionId PeerHub::adopt(ring::Connection ring, const PeerInfo& info, std::string label,
                            UniqueFd socket) {
    return m_impl->adopt(std::move(ring), info, std::move(label), std::move(socket));
}

void PeerHub::drop(ConnectionId id, const std::string& reason) {
    m_impl->drop(id, reason);
}

void PeerHub::dropAll(const std::string& reason) {
    std::vector<ConnectionId> ids;
    for (const auto& [id, peer] : m_impl->peers) {
        ids.push_back(id);
    }
    for (ConnectionId id : ids) {
        m_impl->drop(id, reason);
    }
}

size_t PeerHub::peerCount() const noexcept {
    return m_impl->peers.size();
}

ConnectionId PeerHub::Impl::adopt(ring::Connection ring, const PeerInfo& info, std::string label,
                                  UniqueFd socket) {
    PeerInfo peerInfo = info;
    if (socket) {
        // Each Ksock's fd has one readiness byte in page 0: no more handles.
        peerInfo.maxHandle = ring.endpoint().readinessSlots() - 1;
    }
    const ConnectionId id = dispatcher.connect(peerInfo);
    const auto fds = ring.pollFds();
    const bool edge = ring.edgeTriggered();
    auto peer = std::make_unique<PeerLink>(id, std::move(ring), std::move(socket), std::move(label),
                                           options.maxBufferedPerPeer);
    log->info("#{} connected: {}", id, peer->label());
    peers.emplace(id, std::move(peer));
    if (fds[0] >= 0) {
        (void)loop.watch(
            fds[0], [this, id] { wake(id, false); }, edge ? Trigger::EDGE : Trigger::LEVEL);
    }
    if (fds[1] >= 0 && fds[1] != fds[0]) {
        (void)loop.watch(fds[1], [this, id] { wake(id, true); });
    }
    ready.insert(id); // it may have written before we watched
    return id;
}

// A kick or a liveness event: consume it, then serve.
void PeerHub::Impl::wake(ConnectionId id, bool livenessReadable) {
    PeerLink* peer = find(id);
    if (peer == nullptr) {
        return;
    }
    if (auto woke = peer->ring().onWakeup(livenessReadable); !woke) {
        doom(id, faultOf(*peer, woke.error()));
        return;
    }
    serve(*peer);
}

// A peer's turn ends when its records have cost the budget in work (the
// bytes it sent and the bytes and recipients they reached), not after a
// count of records: one SEND_BATCH to a thousand listeners is not one unit.
void PeerHub::Impl::serve(PeerLink& peer) {
    const ConnectionId id = peer.id();
    if (doomed.contains(id)) {
        return; // it is being dropped: nothing more is built for it
    }
    if (auto flushed = peer.flush(); !flushed) {
        doom(id, faultOf(peer, flushed.error()));
        return;
    }
    size_t handled = 0;
    size_t work = 0;
    for (; handled < options.maxRecordsPerWakeup && work < options.workPerWakeup; ++handled) {
        auto record = peer.receive();
        if (!record) {
            doom(id, faultOf(peer, record.error()));
            return;
        }
        if (!*record) {
            break;
        }
        work += protocol::encodedSize(**record);
        work += handle(peer, std::move(**record));
        if (doomed.contains(id)) {
            return;
        }
    }
    if (auto flushed = peer.flush(); !flushed) {
        doom(id, faultOf(peer, flushed.error()));
        return;
    }
    workedSinceSleep = workedSinceSleep || handled > 0;
    // Armed (asked for a kick) only just before the loop sleeps: until then
    // the peer writes without kicking, and a record that arrives while we
    // spin costs it no system call.
    unarmed.insert(id);
    if (handled == options.maxRecordsPerWakeup || work >= options.workPerWakeup) {
        ready.insert(id); // there may be more: others get their turn first
    } else {
        ready.erase(id);
    }
}

// Returns the work the record caused (see route()).
size_t PeerHub::Impl::handle(PeerLink& peer, Record&& record) {
    const ConnectionId id = peer.id();
    auto handled = dispatcher.handle(id, record);
    if (!handled) {
        doom(id, "protocol violation: " + handled.error());
        return 0;
    }
    if (record.type == RecordType::HELLO) {
        peer.setRingWoken((record.handle & protocol::HELLO_RING_WOKEN) != 0);
    }
    uint32_t openCall = 0;
    if (record.type == RecordType::OPEN && peer.keepsFds() &&
        dispatcher.readiness(id, record.handle)) {
        const bool writable = (record.value & protocol::OPEN_WRITABLE) != 0;
        if (auto opened = peer.openFd(record.handle, writable); !opened) {
            // The daemon's fault, not the client's: close the Ksock again
            // and tell the client why.
            log->warn("#{}: no descriptor for a Ksock: {}", id, describe(opened.error()));
            dispatcher.abandonOpen(id, record, opened.error());
        } else {
            openCall = record.callId;
        }
    }
    return route(id, record.handle, openCall);
}

// Writes what the Dispatcher produced, in order, the RESULT last: every copy
// is in its recipient's ring and its fd readable (PeerLink::deliver), and
// every blocked sender's fd unwritable, before the caller hears its result.
// So when a send returns, every recipient's fd is already readable, across
// processes, as KBUS promised.
// Returns the work done: the bytes of every record produced plus a fixed
// cost for each (a recipient's fd and ring to update).
size_t PeerHub::Impl::route(ConnectionId caller, uint32_t callerHandle, uint32_t openCall) {
    dispatcher.takeOutgoing(outgoing);
    size_t work = 0;
    for (const Outgoing& out : outgoing) {
        work += protocol::encodedSize(out.record) + options.workPerRecord;
    }
    for (const Outgoing& out : outgoing) {
        if (out.record.type == RecordType::RESULT) {
            continue;
        }
        deliver(out.to, out.record);
        if (PeerLink* peer = find(out.to);
            peer != nullptr && out.record.type == RecordType::SEND_FINISHED) {
            peer->showSending(out.record.handle, false);
        }
    }
    if (PeerLink* peer = find(caller); peer != nullptr && peer->hasFd(callerHandle)) {
        auto state = dispatcher.readiness(caller, callerHandle);
        if (state) {
            peer->showSending(callerHandle, state->blocked);
        } else {
            peer->closeFd(callerHandle); // the Ksock was closed
        }
    }
    for (const Outgoing& out : outgoing) {
        if (out.record.type != RecordType::RESULT) {
            continue;
        }
        PeerLink* peer = find(out.to);
        if (peer == nullptr) {
            continue;
        }
        if (openCall != 0 && out.record.callId == openCall && out.to == caller) {
            // The fd goes first, so it is there when the client reads the result.
            if (auto sent = peer->handOverFd(out.record.handle); !sent) {
                doom(out.to, "cannot hand it a Ksock's fd: " + std::string(describe(sent.error())));
                continue;
            }
        }
        // A request's sender that emptied its fd sleeps on it for the reply:
        // waking it for the send's success would only cost it a wakeup.
        const bool quiet = out.quiet && peer->fdEmptied(out.record.handle);
        deliver(out.to, out.record, quiet ? ring::Kick::NEVER : ring::Kick::IF_ASKED);
    }
    return work;
}

void PeerHub::Impl::deliver(ConnectionId to, const Record& record, ring::Kick kick) {
    PeerLink* peer = find(to);
    if (peer == nullptr) {
        return;
    }
    if (auto delivered = peer->deliver(record, kick); !delivered) {
        doom(to,
             delivered.error() == Errc::NO_MEMORY
                 ? fmt::format("it stopped reading ({} bytes waiting for it)", peer->bytesWaiting())
                 : faultOf(*peer, delivered.error()));
        return;
    }
    if (answerers.size() < MAX_ANSWERERS_WATCHED &&
        std::find(answerers.begin(), answerers.end(), to) == answerers.end()) {
        answerers.push_back(to);
    }
    if (peer->hasBacklog() && peer->ringWoken()) {
        // Its ring is full and nothing but its ring wakes it: only its kick
        // for space brings the rest out, and the ring asks for that kick when
        // it is armed before the loop sleeps. A client that polls our fds
        // asks for the rest itself (NEXT), without a kick per half ring.
        unarmed.insert(to);
    }
}

std::string PeerHub::Impl::faultOf(PeerLink& peer, Errc e) {
    if (e == Errc::DISCONNECTED) {
        return "disconnected";
    }
    const std::string_view why = peer.ring().brokenReason();
    return why.empty() ? std::string(describe(e)) : "protocol violation: " + std::string(why);
}

// Drops at the end of the loop pass, never in the middle of serving.
void PeerHub::Impl::doom(ConnectionId id, std::string reason) {
    doomed.emplace(id, std::move(reason));
}

bool PeerHub::Impl::serveReady() {
    for (ConnectionId id : std::vector<ConnectionId>(ready.begin(), ready.end())) {
        if (PeerLink* peer = find(id)) {
            serve(*peer);
        } else {
            ready.erase(id);
        }
    }
    for (auto& [id, reason] : std::exchange(doomed, {})) {
        drop(id, reason);
    }
    return !ready.empty();
}

// Nothing left to do: look at the rings just served a little longer (where
// that can help), then ask each of them for a kick and look once more.
bool PeerHub::Impl::beforeSleep() {
    if (std::exchange(workedSinceSleep, false) && spinForWork()) {
        return true;
    }
    answerers.clear();
    for (ConnectionId id : std::exchange(unarmed, {})) {
        PeerLink* peer = find(id);
        if (peer == nullptr) {
            continue;
        }
        auto armed = peer->ring().arm();
        if (!armed) {
            doom(id, faultOf(*peer, armed.error()));
            ready.insert(id); // drop it before sleeping
        } else if (*armed) {
            ready.insert(id);
        }
    }
    return !ready.empty() || !doomed.empty();
}

// The spin watches the rings just served and those just delivered to: an
// answer to what we delivered (a reply, a pop) is the likeliest next work,
// and its peer's ring may be armed from before, so without this the spin
// would not see it until the deadline and the epoll wakeup that follows.
bool PeerHub::Impl::spinForWork() {
    if (options.spin.count() <= 0 || (unarmed.empty() && answerers.empty())) {
        return false;
    }
    const auto progressed = [this](ConnectionId id) {
        PeerLink* peer = find(id);
        if (peer != nullptr && peer->ring().endpoint().mayProgress()) {
            ready.insert(id);
            return true;
        }
        return false;
    };
    return ring::spinFor(options.spin, [&] {
               return std::ranges::any_of(unarmed, progressed) ||
                      std::ranges::any_of(answerers, progressed);
           }).count() >= 0;
}

void PeerHub::Impl::drop(ConnectionId id, const std::string& reason) {
    auto it = peers.find(id);
    if (it == peers.end()) {
        return;
    }
    log->info("#{} ({}) gone: {}; closing its {} Ksock(s)", id, it->second->label(), reason,
              dispatcher.ksockCount(id));
    for (int fd : it->second->ring().pollFds()) {
        if (fd >= 0) {
            loop.unwatch(fd);
        }
    }
    peers.erase(it); // closes the ring: our status byte is cleared, the peer kicked
    ready.erase(id);
    unarmed.erase(id);
    doomed.erase(id);
    dispatcher.disconnect(id); // what it owed others becomes status replies
    route(0, 0, 0);
    if (*onDropped) {
        (*onDropped)(id);
    }
}

} // namespace xkbus::daemon
