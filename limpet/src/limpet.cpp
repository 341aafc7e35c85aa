// The Limpet rules. See docs/limpet.md for the reasoning behind each one.
#include <functional>
#include <string>
#include <xkbus/common/message.hpp>
#include <xkbus/common/names.hpp>
#include <xkbus/limpet/limpet.hpp>

namespace xkbus::limpet {
namespace {

constexpr uint32_t BUS_SET_FLAGS = FLAG_WANT_YOU_TO_REPLY;

std::string idText(MsgId id) {
    return "[" + std::to_string(id.networkId) + ":" + std::to_string(id.serialNum) + "]";
}

// A Limpet never blocks in a send: ALL_OR_WAIT becomes ALL_OR_FAIL.
uint32_t flagsForBus(uint32_t flags) {
    flags &= ~BUS_SET_FLAGS;
    if ((flags & FLAG_ALL_OR_WAIT) != 0) {
        flags = (flags & ~FLAG_ALL_OR_WAIT) | FLAG_ALL_OR_FAIL;
    }
    return flags;
}

bool busOwnName(std::string_view name) {
    return name.starts_with("$.KBUS.") && name != NAME_PROBE;
}

} // namespace

std::string remoteErrorName(Errc e) {
    return std::string(REMOTE_ERROR_PREFIX) + std::to_string(toErrno(e));
}

Limpet::Limpet(Config config, BusPort& bus, LinkSink& link)
    : m_config(std::move(config)), m_bus(bus), m_link(link) {}

Result<void> Limpet::start() {
    if (m_config.networkId == 0 || !checkBindName(m_config.filter)) {
        return fail(Errc::INVALID);
    }
    // In this order, stopping at the first failure: REPORTREPLIERBINDS last,
    // once the bind events it triggers have a binding to arrive on.
    const std::function<Result<void>()> steps[] = {
        [&] { return m_bus.setMaxMessages(m_config.maxMessages); },
        [&] { return m_bus.onlyOnce(); },
        [&] { return m_bus.bind(m_config.filter, false); },
        [&] { return m_bus.bind(std::string(NAME_PROBE), false); },
        [&] { return m_bus.bind(std::string(NAME_REPLIER_BIND_EVENT), false); },
        [&] { return m_bus.reportReplierBinds(); },
    };
    for (const auto& step : steps) {
        if (auto done = step(); !done) {
            return done;
        }
    }
    return {};
}

Result<void> Limpet::linkUp(const Hello& peer) {
    if (peer.version != WIRE_VERSION) {
        m_bye = {ByeReason::PROTOCOL, "unsupported wire version " + std::to_string(peer.version)};
        return fail(Errc::PROTOCOL_VIOLATION);
    }
    if (peer.networkId == 0 || peer.networkId == m_config.networkId) {
        m_bye = {ByeReason::ID_CLASH,
                 "both Limpets have network id " + std::to_string(peer.networkId)};
        return fail(Errc::PERMISSION_DENIED);
    }
    m_up = true;
    m_peerId = peer.networkId;
    for (const auto& [name, binder] : m_localRepliers) {
        m_link.send(Frame{BindNotice{true, name}});
    }
    sendProbe();
    return {};
}

// The probe travels every Limpet from this bus on; if it ever comes back to
// us over our own link, the Limpets form a cycle.
void Limpet::sendProbe() {
    Msg probe;
    probe.name = std::string(NAME_PROBE);
    probe.id = {m_config.networkId, PROBE_SERIAL_BASE | m_nextSerial++};
    probe.origFrom = {m_config.networkId, m_bus.id()};
    if (m_bus.send(probe)) {
        ++m_stats.toBus;
    }
}

void Limpet::linkDown() {
    if (!m_up) {
        return;
    }
    m_up = false;
    // Unbind first: a sender that sees the status can no longer reach the
    // dead link (requests still queued for the proxy get Unbound).
    for (const auto& name : m_proxies) {
        (void)m_bus.unbind(name, true);
    }
    m_proxies.clear();
    auto pending = std::move(m_pending);
    m_pending.clear();
    for (const auto& [id, p] : pending) {
        statusToBus(p, NAME_REPLIER_GONE_AWAY);
    }
    m_injected.clear();
}

// ------------------------------------------------------------ from the bus

// A message read from this bus, as it leaves: KBUS's id and orig_from rules
// (a local id and sender get this side's network id).
Msg Limpet::leaving(const Msg& msg) const {
    Msg out = msg;
    if (out.id.networkId == 0) {
        out.id.networkId = m_config.networkId;
    }
    if (out.origFrom.networkId == 0) {
        out.origFrom = {m_config.networkId, msg.from};
    }
    return out;
}

// Ids in the dedup window: one seen again means the Limpets form a cycle.
void Limpet::remember(MsgId id) {
    m_seen.insert(id);
    m_seenOrder.push_back(id);
    if (m_seenOrder.size() > m_config.dedupWindow) {
        m_seen.erase(m_seenOrder.front());
        m_seenOrder.pop_front();
    }
}

void Limpet::fromBus(const Msg& msg) {
    if (!m_fatal.empty() || msg.from == m_bus.id()) {
        ++m_stats.dropped; // our own injection, read back as a listener
        return;
    }
    if (msg.name == NAME_REPLIER_BIND_EVENT && msg.from == 0) {
        bindEventFromBus(msg);
        return;
    }
    if (msg.isReply()) {
        replyFromBus(msg);
        return;
    }
    if (busOwnName(msg.name)) {
        ++m_stats.dropped; // the bus's own announcements stay on their bus
        return;
    }
    if (!checkLoop(msg, "on its bus")) {
        return;
    }
    Msg out = leaving(msg);
    if (out.isRequest()) {
        requestFromBus(std::move(out));
    } else if (m_up) {
        forward(std::move(out));
    } else {
        ++m_stats.dropped;
    }
}

void Limpet::bindEventFromBus(const Msg& msg) {
    BindEvent event;
    if (!decodeBindEventData(msg.data, event) || event.binder == m_bus.id() ||
        !covered(event.name)) {
        return; // our own proxy bind, or a name that does not cross
    }
    if (event.isBind) {
        if (m_localRepliers.size() >= m_config.maxProxies) {
            return;
        }
        m_localRepliers[event.name] = event.binder;
    } else {
        m_localRepliers.erase(event.name);
    }
    if (m_up) {
        m_link.send(Frame{BindNotice{event.isBind, event.name}});
    }
}

// Only a reply to a request we sent for the far side crosses back; a
// listener's copy of somebody else's reply does not.
void Limpet::replyFromBus(const Msg& msg) {
    if (msg.to != m_bus.id() || m_injected.erase(msg.inReplyTo) == 0) {
        ++m_stats.dropped;
        return;
    }
    Msg out = leaving(msg);
    if (m_up) {
        forward(std::move(out));
    }
}

// We get a request to answer only as the proxy replier; a listener's copy of
// a request answered on this bus does not cross (the original re-sent it as
// a request on the far side, where nobody could answer it).
void Limpet::requestFromBus(Msg msg) {
    if (!msg.wantsYouToReply()) {
        ++m_stats.dropped;
        return;
    }
    Pending p{
        MsgId{msg.id.networkId == m_config.networkId ? 0 : msg.id.networkId, msg.id.serialNum},
        msg.from};
    if (!m_up) {
        statusToBus(p, NAME_REPLIER_GONE_AWAY);
        return;
    }
    if (m_pending.size() >= m_config.maxInFlight || m_pending.contains(msg.id)) {
        statusToBus(p, remoteErrorName(Errc::QUEUE_FULL));
        return;
    }
    m_pending[msg.id] = p;
    forward(std::move(msg));
}

void Limpet::forward(Msg msg) {
    if (!msg.isReply()) {
        remember(msg.id);
    }
    msg.flags &= ~BUS_SET_FLAGS;
    ++m_stats.toLink;
    m_link.send(Frame{std::move(msg)});
}

// A message must never reach a Limpet twice. Ours coming back, or any id
// seen before, means the Limpets form a cycle: refuse to go on.
bool Limpet::checkLoop(const Msg& msg, const char* where) {
    if (msg.id.networkId == m_config.networkId) {
        cycle("message " + msg.name + " " + idText(msg.id) + " that this Limpet (network id " +
              std::to_string(m_config.networkId) + ") let out came back " + where);
        return false;
    }
    if (msg.id.networkId != 0 && m_seen.contains(msg.id)) {
        cycle("message " + msg.name + " " + idText(msg.id) + " reached network id " +
              std::to_string(m_config.networkId) + " twice (" + where + ")");
        return false;
    }
    return true;
}

void Limpet::cycle(const std::string& why) {
    if (m_fatal.empty()) {
        m_fatal = "cycle detected: " + why + "; Limpets must join buses as a tree";
        m_bye = {ByeReason::CYCLE, m_fatal.substr(0, 200)};
    }
}

// ------------------------------------------------------------ from the link

Result<void> Limpet::fromLink(const Frame& frame) {
    if (!m_up) {
        return fail(Errc::PROTOCOL_VIOLATION);
    }
    if (const auto* b = std::get_if<BindNotice>(&frame)) {
        bindFromLink(*b);
    } else if (const auto* m = std::get_if<Msg>(&frame)) {
        msgFromLink(*m);
    } else if (const auto* g = std::get_if<Goodbye>(&frame)) {
        if (g->reason == ByeReason::CYCLE) {
            m_fatal = "the other Limpet refused the link: " + g->text;
        }
        return fail(Errc::DISCONNECTED);
    } else if (std::holds_alternative<Hello>(frame)) {
        m_bye = {ByeReason::PROTOCOL, "HELLO twice"};
        return fail(Errc::PROTOCOL_VIOLATION);
    }
    return {};
}

void Limpet::bindFromLink(const BindNotice& b) {
    if (!covered(b.name)) {
        return;
    }
    if (!b.isBind) {
        if (m_proxies.erase(b.name) != 0) {
            (void)m_bus.unbind(b.name, true);
        }
        return;
    }
    if (m_proxies.contains(b.name) || m_proxies.size() >= m_config.maxProxies) {
        return;
    }
    // A replier on this bus keeps the name (REPLIER_EXISTS): requests here
    // go to it, as they did before the Limpet came.
    if (m_bus.bind(b.name, true)) {
        m_proxies.insert(b.name);
    }
}

void Limpet::msgFromLink(Msg msg) {
    if (!m_fatal.empty()) {
        return;
    }
    if (msg.isReply()) {
        replyFromLink(std::move(msg));
        return;
    }
    if (busOwnName(msg.name)) {
        ++m_stats.dropped;
        return;
    }
    if (!checkLoop(msg, "over its link")) {
        return;
    }
    msg.flags &= ~FLAG_SYNTHETIC; // only a status may claim to come from a bus
    remember(msg.id);
    msg.flags = flagsForBus(msg.flags);
    if (msg.isRequest()) {
        requestFromLink(std::move(msg));
    } else {
        announcementFromLink(std::move(msg));
    }
}

void Limpet::replyFromLink(Msg msg) {
    auto it = m_pending.find(msg.inReplyTo);
    if (it == m_pending.end()) {
        ++m_stats.dropped; // late (after a status), or never asked for
        return;
    }
    const Pending p = it->second;
    m_pending.erase(it);
    msg.inReplyTo = p.localId;
    msg.to = p.from;
    if (p.localId.networkId == 0) {
        msg.id = {}; // the last hop: the bus gives it a local id
    }
    msg.flags = flagsForBus(msg.flags) & ~FLAG_ALL_OR_FAIL;
    if (m_bus.send(msg)) {
        ++m_stats.toBus;
    }
}

// Stateful requests name their replier by final_to; anything else goes to
// whoever replies to the name here (wildcards included).
void Limpet::requestFromLink(Msg msg) {
    if (msg.to != 0) {
        const bool here = msg.finalTo.networkId == m_config.networkId;
        auto replier = m_bus.findReplier(msg.name);
        if (!replier || *replier == 0) {
            statusToLink(msg, NAME_REPLIER_GONE_AWAY);
            return;
        }
        if (here && *replier != msg.finalTo.localId) {
            statusToLink(msg, NAME_NOT_SAME_KSOCK);
            return;
        }
        msg.to = *replier;
    }
    auto sent = m_bus.send(msg);
    if (!sent) {
        statusToLink(msg, sent.error() == Errc::NO_RECIPIENT ? std::string(NAME_REPLIER_GONE_AWAY)
                                                             : remoteErrorName(sent.error()));
        return;
    }
    ++m_stats.toBus;
    m_injected.insert(msg.id);
}

void Limpet::announcementFromLink(Msg msg) {
    msg.to = 0;
    if (m_bus.send(msg)) {
        ++m_stats.toBus;
    } else {
        ++m_stats.dropped;
    }
}

// ------------------------------------------------------------ statuses

void Limpet::statusToLink(const Msg& request, std::string_view name) {
    Msg status;
    status.name = std::string(name);
    status.id = {m_config.networkId, m_nextSerial++};
    status.inReplyTo = request.id;
    status.to = request.from;
    status.origFrom = {m_config.networkId, 0};
    status.flags = FLAG_SYNTHETIC;
    ++m_stats.statuses;
    ++m_stats.toLink;
    m_link.send(Frame{std::move(status)});
}

void Limpet::statusToBus(const Pending& p, std::string_view name) {
    Msg status;
    status.name = std::string(name);
    status.inReplyTo = p.localId;
    status.to = p.from;
    status.origFrom = {m_config.networkId, 0};
    status.flags = FLAG_SYNTHETIC;
    ++m_stats.statuses;
    if (m_bus.send(status)) {
        ++m_stats.toBus;
    }
}

bool Limpet::covered(std::string_view bindName) const {
    if (bindName == m_config.filter) {
        return true;
    }
    std::string asName(bindName);
    if (wildKindOf(asName) != WildKind::NONE) {
        asName.back() = 'x'; // "$.a.*" is covered if "$.a.x" is
    }
    return checkMessageName(asName) && nameMatches(m_config.filter, asName);
}

LimpetStats Limpet::stats() const {
    LimpetStats s = m_stats;
    s.inFlight = m_pending.size();
    s.injected = m_injected.size();
    s.proxies = m_proxies.size();
    s.localRepliers = m_localRepliers.size();
    return s;
}

} // namespace xkbus::limpet
