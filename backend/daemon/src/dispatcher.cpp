// Records in, core calls, records out. See dispatcher.hpp.
#include <algorithm>
#include <fmt/format.h>
#include <limits>
#include <nlohmann/json.hpp>
#include <xkbus/common/names.hpp>
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
    Connection& c = m_connections[id];
    c.peer = peer;
    auto [state, first] = m_tenants.try_emplace(peer.chargeGroup, TenantState{peer.tenant});
    if (first) {
        applyLimits(peer.tenant);
    }
    ++state->second.connections;
    c.overLimit = state->second.connections > m_policy.limitsFor(peer.tenant).connections;
    return id;
}

void Dispatcher::setPolicy(Policy policy) {
    m_policy = std::move(policy);
    m_limitsFromPolicy = true;
    for (const auto& [group, state] : m_tenants) {
        applyLimits(state.tenant);
    }
}

// The core counts what each charge group holds; the policy says how much.
void Dispatcher::applyLimits(const Tenant& t) {
    if (!m_limitsFromPolicy) {
        return; // the core's configured limits hold for everyone
    }
    m_core.setGroupLimits(t.chargeGroup(), m_policy.limitsFor(t).core);
}

bool Dispatcher::permits(const Connection& c, Operation op, uint32_t bus, std::string_view name) {
    const Request request{op, bus, name};
    if (m_policy.allows(c.peer.tenant, request)) {
        return true;
    }
    if (onRefusal) {
        const Decision d = m_policy.decide(c.peer.tenant, request);
        onRefusal(fmt::format("refused {}: {} on bus {}{}{} (rule: {})", c.peer.tenant.label(),
                              operationName(op), bus, name.empty() ? "" : " ", name, d.rule));
    }
    return false;
}

// Rights the core enforces per Ksock as well, so a Ksock opened under a
// policy keeps that policy's bus-wide rights even if the dispatcher's own
// check were bypassed.
core::Rights Dispatcher::rightsOf(const Connection& c) const {
    const auto may = [&](Operation op) {
        return m_policy.allows(c.peer.tenant, Request{op, 0, {}});
    };
    const bool settings = may(Operation::BUS_SETTINGS);
    return core::Rights{.busSettings = settings,
                        .networkIds = may(Operation::NETWORK_IDS),
                        .blockBinds = settings}; // holding back every bind is bus-wide too
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
        // Too many connections for its tenant: the client is told EMFILE
        // and can do nothing more (every call before HELLO is a violation).
        c.greeted = !c.overLimit;
        answer(id, r, c.overLimit ? Answer{EMFILE, 0, {}} : Answer{});
        if (c.overLimit && onRefusal) {
            onRefusal(fmt::format("refused {}: a connection beyond its limit of {}",
                                  c.peer.tenant.label(),
                                  m_policy.limitsFor(c.peer.tenant).connections));
        }
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
        return newBus(c);
    case RecordType::INTROSPECT:
        return introspect(c, r);
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
        return send(c, h, r);
    case RecordType::DISCARD: {
        auto done = bus.discard(h.ksock);
        shipEvents(h.bus);
        return done ? Answer{} : Answer{toErrno(done.error()), 0, {}};
    }
    case RecordType::NEXT:
        return next(h);
    case RecordType::CONTROL:
        return control(c, h, r);
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
    if (!permits(c, Operation::OPEN_BUS, r.arg)) {
        return Answer{EPERM, 0, {}};
    }
    const core::OpenOptions options{
        .writable = (r.value & protocol::OPEN_WRITABLE) != 0,
        .ownerTag = c.peer.domid != 0 ? c.peer.domid : c.peer.pid,
        .mayMarkSynthetic = c.peer.trusted,
        .chargeGroup = c.peer.chargeGroup,
        .may = rightsOf(c),
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
    // A name that is not a valid binding gets KBUS's own error from the core.
    if (binding && checkBindName(name) &&
        !permits(c, replier ? Operation::BIND_REPLIER : Operation::BIND_LISTENER, h.bus, name)) {
        return Answer{EPERM, 0, {}};
    }
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

// Replies are always allowed: the bus guarantees every request an answer,
// and a replier was allowed to bind already.
bool Dispatcher::sendPermitted(const Connection& c, const Handle& h, const Record& r) {
    const MsgId id = r.header.id;
    if (id.networkId != 0 && !permits(c, Operation::NETWORK_IDS, h.bus)) {
        return false;
    }
    const std::string_view name = r.body.name();
    if (r.header.inReplyTo.isSet() || !checkMessageName(name)) {
        return true; // a bad name gets KBUS's own error from the core
    }
    const bool request = (r.header.flags & FLAG_WANT_A_REPLY) != 0;
    return permits(c, request ? Operation::SEND_REQUEST : Operation::SEND_ANNOUNCEMENT, h.bus,
                   name);
}

Dispatcher::Answer Dispatcher::send(const Connection& c, Handle& h, const Record& r) {
    if (!sendPermitted(c, h, r)) {
        return Answer{EPERM, 0, {}};
    }
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
        const Answer a = send(c, found->second, one);
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

// Querying a bus-wide setting is free; changing it needs the right. The
// core checks the Ksock's Rights too; asking here makes a reload apply at
// once and names the rule.
bool Dispatcher::settingPermitted(const Connection& c, const Handle& h, Control which,
                                  uint32_t value) {
    const bool sets = which == Control::MAX_MESSAGE_SIZE
                          ? value != core::QUERY_CURRENT_SIZE && value != core::QUERY_ABSOLUTE_SIZE
                          : (which == Control::VERBOSE || which == Control::REPORT_REPLIER_BINDS) &&
                                value != core::QUERY;
    return !sets || permits(c, Operation::BUS_SETTINGS, h.bus);
}

Dispatcher::Answer Dispatcher::control(const Connection& c, Handle& h, const Record& r) {
    core::Bus& bus = *m_core.bus(h.bus);
    auto arg = narrow(r.value);
    if (!arg) {
        return Answer{EINVAL, 0, {}};
    }
    if (!settingPermitted(c, h, static_cast<Control>(r.arg), *arg)) {
        return Answer{EPERM, 0, {}};
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

Dispatcher::Answer Dispatcher::newBus(const Connection& c) {
    if (!permits(c, Operation::NEW_BUS, 0)) {
        return Answer{EPERM, 0, {}};
    }
    TenantState& state = m_tenants.at(c.peer.chargeGroup);
    const uint32_t limit = m_policy.limitsFor(c.peer.tenant).busesCreated;
    if (state.busesCreated >= limit) {
        if (onRefusal) {
            onRefusal(fmt::format("refused {}: NEW_BUS beyond its limit of {} bus(es)",
                                  c.peer.tenant.label(), limit));
        }
        return Answer{ENOSPC, 0, {}};
    }
    auto created = m_core.newBus();
    if (created) {
        ++state.busesCreated;
    }
    return from(widen(created));
}

// Each tenant's usage against its limits, for `xkbus stats`.
nlohmann::json Dispatcher::tenantUsages(const Connection& asker) const {
    const bool all = m_policy.allows(asker.peer.tenant, {Operation::INTROSPECT_ALL, 0, {}});
    nlohmann::json out = nlohmann::json::array();
    for (const auto& [group, state] : m_tenants) {
        if (!all && group != asker.peer.chargeGroup) {
            continue;
        }
        const core::GroupUsage u = m_core.groupUsage(group);
        const Limits limits = m_policy.limitsFor(state.tenant);
        const auto pair = [](uint64_t used, uint64_t limit) {
            return nlohmann::json{{"used", used}, {"limit", limit}};
        };
        out.push_back({{"group", group},
                       {"tenant", state.tenant.label()},
                       {"connections", pair(state.connections, limits.connections)},
                       {"buses_created", pair(state.busesCreated, limits.busesCreated)},
                       {"ksocks", pair(u.used.ksocks, u.limits.ksocks)},
                       {"bindings", pair(u.used.bindings, u.limits.bindings)},
                       {"index_nodes", pair(u.used.indexNodes, u.limits.indexNodes)},
                       {"name_bytes", pair(u.used.nameBytes, u.limits.nameBytes)},
                       {"queued_messages", pair(u.used.queuedMessages, u.limits.queuedMessages)},
                       {"queued_bytes", pair(u.used.queuedBytes, u.limits.queuedBytes)},
                       {"pending_sends", pair(u.used.pendingSends, u.limits.pendingSends)}});
    }
    return out;
}

// Bindings and stats as JSON: what /proc/kbus/bindings and /proc/kbus/stats
// showed, as data. A tenant without INTROSPECT_ALL sees only its own Ksocks.
Dispatcher::Answer Dispatcher::introspect(const Connection& c, const Record& r) {
    const uint32_t busIndex = r.value <= UINT32_MAX ? static_cast<uint32_t>(r.value) : UINT32_MAX;
    const core::Bus* bus = m_core.bus(busIndex);
    if (bus == nullptr) {
        return Answer{ENOENT, 0, {}};
    }
    if (!permits(c, Operation::OPEN_BUS, busIndex)) {
        return Answer{EPERM, 0, {}};
    }
    const bool all = m_policy.allows(c.peer.tenant, {Operation::INTROSPECT_ALL, busIndex, {}});
    const auto visible = [&](KsockId ksock) {
        const auto k = bus->inspect(ksock);
        return all || (k && k->chargeGroup == c.peer.chargeGroup);
    };
    // Who holds each Ksock: its domain, and for a local process the pid the
    // kernel gave, so `xkbus bindings` can name the program and its user.
    const auto holder = [&](KsockId ksock) {
        nlohmann::json who = {{"domid", 0}, {"pid", 0}};
        auto owner = m_owners.find(ownerKey(busIndex, ksock));
        auto held = owner == m_owners.end() ? m_connections.end()
                                            : m_connections.find(owner->second.connection);
        if (held != m_connections.end()) {
            who = {{"domid", held->second.peer.domid}, {"pid", held->second.peer.pid}};
        }
        return who;
    };
    nlohmann::json out;
    switch (static_cast<protocol::Introspect>(r.arg)) {
    case protocol::Introspect::BINDINGS:
        out = nlohmann::json::array();
        for (const auto& b : bus->bindings()) {
            if (!visible(b.ksock)) {
                continue;
            }
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
            if (!visible(k.id)) {
                continue;
            }
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
        out["tenants"] = tenantUsages(c);
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
    --m_tenants.at(it->second.peer.chargeGroup).connections;
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
