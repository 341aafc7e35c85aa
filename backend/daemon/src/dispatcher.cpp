// Records in, core calls, records out. See dispatcher.hpp.
#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>
#include <xkbus/daemon/dispatcher.hpp>

namespace xkbus::daemon {

using protocol::Control;
using protocol::Record;
using protocol::RecordType;

namespace {

Result<uint32_t> narrow(uint64_t v) {
    if (v > std::numeric_limits<uint32_t>::max()) {
        return fail(Errc::INVALID);
    }
    return static_cast<uint32_t>(v);
}

template <class T>
Result<uint64_t> widen(const Result<T>& r) {
    if (!r) {
        return fail(r.error());
    }
    return static_cast<uint64_t>(*r);
}

} // namespace

Dispatcher::Dispatcher(core::Core& core, Quotas quotas) : m_core(core), m_quotas(quotas) {}

ConnectionId Dispatcher::connect(const PeerInfo& peer) {
    const ConnectionId id = m_nextConnection++;
    m_connections[id].peer = peer;
    return id;
}

size_t Dispatcher::ksockCount(ConnectionId id) const {
    auto it = m_connections.find(id);
    return it == m_connections.end() ? 0 : it->second.handles.size();
}

std::optional<Readiness> Dispatcher::readiness(ConnectionId id, uint32_t handle) const {
    auto c = m_connections.find(id);
    if (c == m_connections.end()) {
        return std::nullopt;
    }
    auto h = c->second.handles.find(handle);
    if (h == c->second.handles.end()) {
        return std::nullopt;
    }
    const auto k = m_core.bus(h->second.bus)->inspect(h->second.ksock);
    return Readiness{k->queued != 0, k->sending};
}

void Dispatcher::takeOutgoing(std::vector<Outgoing>& into) {
    into.clear();
    into.swap(m_outgoing);
}

std::vector<Outgoing> Dispatcher::takeOutgoing() {
    std::vector<Outgoing> out;
    out.swap(m_outgoing);
    return out;
}

tl::expected<void, std::string> Dispatcher::handle(ConnectionId id, const Record& r) {
    auto it = m_connections.find(id);
    if (it == m_connections.end()) {
        return tl::unexpected<std::string>("unknown connection");
    }
    Connection& c = it->second;
    if (!protocol::isClientRecord(r.type)) {
        return tl::unexpected<std::string>("a daemon-side record came from a client");
    }
    if (r.type == RecordType::HELLO) {
        if (r.arg != protocol::PROTOCOL_VERSION) {
            return tl::unexpected<std::string>("unsupported protocol version " +
                                               std::to_string(r.arg));
        }
        c.greeted = true;
        answer(id, r, Answer{});
        return {};
    }
    if (!c.greeted) {
        return tl::unexpected<std::string>("a call came before HELLO");
    }
    if (r.type == RecordType::OPEN && c.handles.contains(r.handle)) {
        return tl::unexpected<std::string>("OPEN reused handle " + std::to_string(r.handle));
    }
    if (r.type == RecordType::POP) {
        // A copy that is no longer queued was removed by an unbind that
        // overtook the pop (a multithreaded client): nothing to do. A pop
        // with a call id wants an answer once its effects are visible.
        auto h = c.handles.find(r.handle);
        if (h != c.handles.end()) {
            (void)m_core.bus(h->second.bus)->popCopy(h->second.ksock, r.value);
            shipEvents(h->second.bus);
        }
        if (r.callId != 0) {
            answer(id, r, Answer{});
        }
        return {};
    }
    if (r.type == RecordType::SEND_BATCH) {
        auto sends = protocol::decodeBatch(r.body.data(), r.value);
        if (!sends) {
            return tl::unexpected<std::string>("a malformed SEND_BATCH");
        }
        answer(id, r, sendBatch(c, r.handle, *sends));
        return {};
    }
    answer(id, r, apply(c, id, r));
    return {};
}

void Dispatcher::answer(ConnectionId to, const Record& call, const Answer& a) {
    Record result;
    result.type = RecordType::RESULT;
    result.callId = call.callId;
    result.handle = call.handle;
    result.arg = static_cast<uint32_t>(a.error);
    result.value = a.value;
    if (!a.text.empty()) {
        result.body = MessageBody::copyOf({}, asBytes(a.text));
    }
    m_outgoing.push_back(Outgoing{to, std::move(result),
                                  (call.arg & protocol::SEND_QUIET_SUCCESS) != 0 &&
                                      call.type == RecordType::SEND && a.error == 0});
}

Dispatcher::Answer Dispatcher::apply(Connection& c, ConnectionId id, const Record& r) {
    switch (r.type) {
    case RecordType::OPEN:
        return open(c, id, r);
    case RecordType::CLOSE:
        return close(c, r);
    case RecordType::NEW_BUS:
        return from(widen(m_core.newBus()));
    case RecordType::INTROSPECT:
        return introspect(r);
    default:
        break;
    }
    auto found = c.handles.find(r.handle);
    if (found == c.handles.end()) {
        return Answer{EBADF, 0, {}};
    }
    Handle& h = found->second;
    core::Bus& bus = *m_core.bus(h.bus);
    switch (r.type) {
    case RecordType::BIND:
    case RecordType::UNBIND:
        return bindOrUnbind(c, h, r);
    case RecordType::FIND_REPLIER:
        return from(widen(bus.findReplier(r.body.name())));
    case RecordType::SEND:
        return send(h, r);
    case RecordType::DISCARD: {
        auto done = bus.discard(h.ksock);
        shipEvents(h.bus);
        return done ? Answer{} : Answer{toErrno(done.error()), 0, {}};
    }
    case RecordType::NEXT:
        return next(h);
    case RecordType::CONTROL:
        return control(h, r);
    default:
        return Answer{EINVAL, 0, {}};
    }
}

Dispatcher::Answer Dispatcher::open(Connection& c, ConnectionId id, const Record& r) {
    core::Bus* bus = m_core.bus(r.arg);
    if (bus == nullptr) {
        return Answer{ENOENT, 0, {}};
    }
    if (c.handles.size() >= m_quotas.maxKsocksPerConnection || r.handle > c.peer.maxHandle) {
        return Answer{toErrno(Errc::TOO_MANY), 0, {}};
    }
    const core::OpenOptions options{
        .writable = (r.value & protocol::OPEN_WRITABLE) != 0,
        .ownerTag = c.peer.domid != 0 ? c.peer.domid : c.peer.pid,
        .mayMarkSynthetic = c.peer.trusted,
        .chargeGroup = c.peer.chargeGroup,
    };
    auto ksock = bus->open(options);
    if (!ksock) {
        return Answer{toErrno(ksock.error()), 0, {}};
    }
    c.handles[r.handle] = Handle{r.arg, *ksock, 0};
    m_owners[ownerKey(r.arg, *ksock)] = Owner{id, r.handle};
    return Answer{0, *ksock, {}};
}

void Dispatcher::closeHandle(Connection& c, uint32_t handle) {
    auto found = c.handles.find(handle);
    if (found == c.handles.end()) {
        return;
    }
    const Handle h = found->second;
    (void)m_core.bus(h.bus)->close(h.ksock);
    // Its own queue went without events; its statuses go to others' owners.
    m_owners.erase(ownerKey(h.bus, h.ksock));
    shipEvents(h.bus);
    c.bindings -= h.bindings;
    c.handles.erase(found);
}

Dispatcher::Answer Dispatcher::close(Connection& c, const Record& r) {
    if (!c.handles.contains(r.handle)) {
        return Answer{EBADF, 0, {}};
    }
    closeHandle(c, r.handle);
    return Answer{};
}

Dispatcher::Answer Dispatcher::bindOrUnbind(Connection& c, Handle& h, const Record& r) {
    const bool binding = r.type == RecordType::BIND;
    if (binding && c.bindings >= m_quotas.maxBindingsPerConnection) {
        return Answer{toErrno(Errc::NO_MEMORY), 0, {}};
    }
    core::Bus& bus = *m_core.bus(h.bus);
    const bool replier = r.arg != 0;
    const std::string_view name = r.body.name();
    auto done = binding ? bus.bind(h.ksock, name, replier) : bus.unbind(h.ksock, name, replier);
    shipEvents(h.bus);
    if (!done) {
        return Answer{toErrno(done.error()), 0, {}};
    }
    if (binding) {
        ++h.bindings;
        ++c.bindings;
    } else {
        --h.bindings;
        --c.bindings;
    }
    return Answer{};
}

Dispatcher::Answer Dispatcher::send(Handle& h, const Record& r) {
    core::Bus& bus = *m_core.bus(h.bus);
    auto sent = bus.send(h.ksock, protocol::messageOf(r));
    shipEvents(h.bus);
    if (sent) {
        return Answer{0, protocol::packMsgId(*sent), {}};
    }
    // EAGAIN still assigned an id, which KBUS hands back with the error.
    const uint64_t id =
        sent.error() == Errc::TRY_AGAIN ? protocol::packMsgId(bus.lastSent(h.ksock).value()) : 0;
    return Answer{toErrno(sent.error()), id, {}};
}

// One record, so no other client's send lands between these: each message
// is sent as SEND would send it, in order, and gets its own outcome.
Dispatcher::Answer Dispatcher::sendBatch(Connection& c, uint32_t handle,
                                         const std::vector<protocol::Record>& sends) {
    auto found = c.handles.find(handle);
    if (found == c.handles.end()) {
        return Answer{EBADF, 0, {}};
    }
    std::vector<std::byte> outcomes;
    for (const Record& one : sends) {
        const Answer a = send(found->second, one);
        protocol::appendBatchOutcome({a.error, a.value}, outcomes);
    }
    return Answer{0, sends.size(),
                  std::string(reinterpret_cast<const char*>(outcomes.data()), outcomes.size())};
}

Dispatcher::Answer Dispatcher::next(Handle& h) {
    core::Bus& bus = *m_core.bus(h.bus);
    const auto k = bus.inspect(h.ksock);
    if (k->queued == 0) {
        return Answer{};
    }
    // The copy's PUSHED event is already ahead of this answer on the wire.
    const uint64_t copyId = k->headCopyId;
    (void)bus.nextMessage(h.ksock);
    shipEvents(h.bus);
    return Answer{0, copyId, {}};
}

Dispatcher::Answer Dispatcher::control(Handle& h, const Record& r) {
    core::Bus& bus = *m_core.bus(h.bus);
    auto arg = narrow(r.value);
    if (!arg) {
        return Answer{EINVAL, 0, {}};
    }
    Result<uint64_t> value = fail(Errc::INVALID);
    switch (static_cast<Control>(r.arg)) {
    case Control::KSOCK_ID:
        value = h.ksock;
        break;
    case Control::LAST_SENT: {
        auto id = bus.lastSent(h.ksock);
        value = id ? Result<uint64_t>(protocol::packMsgId(*id)) : fail(id.error());
        break;
    }
    case Control::MAX_MESSAGES:
        value = widen(bus.maxMessages(h.ksock, *arg));
        break;
    case Control::NUM_MESSAGES:
        value = widen(bus.numMessages(h.ksock));
        break;
    case Control::NUM_UNREPLIED_TO:
        value = widen(bus.numUnrepliedTo(h.ksock));
        break;
    case Control::ONLY_ONCE:
        value = widen(bus.onlyOnce(h.ksock, *arg));
        break;
    case Control::VERBOSE:
        value = widen(bus.verbose(h.ksock, *arg));
        break;
    case Control::REPORT_REPLIER_BINDS:
        value = widen(bus.reportReplierBinds(h.ksock, *arg));
        break;
    case Control::MAX_MESSAGE_SIZE:
        value = widen(bus.maxMessageSize(h.ksock, *arg));
        break;
    }
    shipEvents(h.bus);
    return from(value);
}

// Bindings and stats as JSON: what /proc/kbus/bindings and /proc/kbus/stats
// showed, as data.
Dispatcher::Answer Dispatcher::introspect(const Record& r) {
    const core::Bus* bus =
        r.value <= UINT32_MAX ? m_core.bus(static_cast<uint32_t>(r.value)) : nullptr;
    if (bus == nullptr) {
        return Answer{ENOENT, 0, {}};
    }
    // Who holds each Ksock: its domain, and for a local process the pid the
    // kernel gave, so `xkbus bindings` can name the program and its user.
    const auto holder = [&](KsockId ksock) {
        nlohmann::json who = {{"domid", 0}, {"pid", 0}};
        auto owner = m_owners.find(ownerKey(static_cast<uint32_t>(r.value), ksock));
        auto c = owner == m_owners.end() ? m_connections.end()
                                         : m_connections.find(owner->second.connection);
        if (c != m_connections.end()) {
            who = {{"domid", c->second.peer.domid}, {"pid", c->second.peer.pid}};
        }
        return who;
    };
    nlohmann::json out;
    switch (static_cast<protocol::Introspect>(r.arg)) {
    case protocol::Introspect::BINDINGS:
        out = nlohmann::json::array();
        for (const auto& b : bus->bindings()) {
            out.push_back({{"ksock", b.ksock},
                           {"owner", b.ownerTag},
                           {"replier", b.replier},
                           {"name", b.name}});
            out.back().update(holder(b.ksock));
        }
        break;
    case protocol::Introspect::STATS: {
        const core::BusStats st = bus->stats();
        out = {{"bus", st.index},
               {"next_ksock_id", st.nextKsockId},
               {"next_serial", st.nextSerial},
               {"max_message_size", st.maxMessageSize},
               {"report_replier_binds", st.reportReplierBinds},
               {"unsent_unbind_events", st.unsentUnbindEvents},
               {"unbind_events_lost", st.unbindEventsLost},
               {"copies_queued", st.copiesQueued},
               {"copies_popped", st.copiesPopped},
               {"copies_dropped", st.copiesDropped},
               {"ksocks", nlohmann::json::array()}};
        for (const auto& k : st.ksocks) {
            out["ksocks"].push_back({{"id", k.id},
                                     {"owner", k.ownerTag},
                                     {"last_sent", std::to_string(k.lastSent.networkId) + ":" +
                                                       std::to_string(k.lastSent.serialNum)},
                                     {"queued", k.queued},
                                     {"max_messages", k.maxMessages},
                                     {"awaiting_replies", k.awaitingReplies},
                                     {"unreplied_to", k.unrepliedTo},
                                     {"set_aside", k.setAside},
                                     {"bindings", k.bindings},
                                     {"sending", k.sending},
                                     {"only_once", k.onlyOnce}});
            out["ksocks"].back().update(holder(k.id));
        }
        break;
    }
    default:
        return Answer{EINVAL, 0, {}};
    }
    return Answer{0, 0, out.dump()};
}

// A call on one bus can let a blocked send on another through (a charge
// group's quota is shared by every bus): that bus's events go out too.
void Dispatcher::shipEvents(uint32_t busIndex) {
    shipBusEvents(busIndex);
    for (uint32_t other : m_core.takeTouchedBuses()) {
        shipBusEvents(other);
    }
}

void Dispatcher::shipBusEvents(uint32_t busIndex) {
    core::Bus& bus = *m_core.bus(busIndex);
    for (core::QueueEvent& e : bus.takeQueueEvents()) {
        auto owner = m_owners.find(ownerKey(busIndex, e.ksock));
        if (owner == m_owners.end()) {
            continue;
        }
        Record out;
        out.handle = owner->second.handle;
        out.value = e.copyId;
        switch (e.kind) {
        case core::QueueEvent::Kind::PUSHED_TAIL:
        case core::QueueEvent::Kind::PUSHED_HEAD:
            out.type = RecordType::PUSHED;
            out.arg =
                (e.kind == core::QueueEvent::Kind::PUSHED_HEAD ? protocol::PUSHED_AT_HEAD : 0) |
                (bus.underPressure(e.ksock) ? protocol::PUSHED_REPORT_POPS : 0);
            out.header = e.msg.header;
            out.body = e.msg.body; // shared, not copied
            break;
        case core::QueueEvent::Kind::REMOVED:
            out.type = RecordType::REMOVED;
            break;
        case core::QueueEvent::Kind::SEND_FINISHED:
            out.type = RecordType::SEND_FINISHED;
            break;
        }
        m_outgoing.push_back(Outgoing{owner->second.connection, std::move(out)});
    }
}

void Dispatcher::abandonOpen(ConnectionId id, const Record& open, Errc why) {
    auto it = m_connections.find(id);
    if (it == m_connections.end()) {
        return;
    }
    closeHandle(it->second, open.handle);
    for (Outgoing& out : m_outgoing) {
        if (out.to == id && out.record.type == RecordType::RESULT &&
            out.record.callId == open.callId) {
            out.record.arg = static_cast<uint32_t>(toErrno(why));
            out.record.value = 0;
        }
    }
}

void Dispatcher::disconnect(ConnectionId id) {
    auto it = m_connections.find(id);
    if (it == m_connections.end()) {
        return;
    }
    std::vector<uint32_t> handles;
    for (const auto& [handle, h] : it->second.handles) {
        handles.push_back(handle);
    }
    std::sort(handles.begin(), handles.end()); // deterministic: oldest handle first
    for (uint32_t handle : handles) {
        closeHandle(it->second, handle);
    }
    m_connections.erase(it);
    std::erase_if(m_outgoing, [&](const Outgoing& o) { return o.to == id; });
}

} // namespace xkbus::daemon
