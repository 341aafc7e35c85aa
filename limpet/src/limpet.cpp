// The Limpet rules. See docs/limpet.md for the reasoning behind each one.
#include <algorithm>
#include <functional>
#include <random>
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

// Nobody else answers a request the Limpet reads as its (proxy) replier.
bool heldByUs(const Message& msg) {
    return msg.isRequest() && msg.wantsYouToReply();
}

// What a log line may show of a name a bus client or the peer chose.
std::string shortName(std::string_view name) {
    constexpr size_t MAX_SHOWN = 80;
    return name.size() <= MAX_SHOWN ? std::string(name)
                                    : std::string(name.substr(0, MAX_SHOWN)) + "...";
}

constexpr size_t PROBES_REMEMBERED = 8;

std::vector<std::byte> randomToken() {
    std::random_device random;
    std::vector<std::byte> token(PROBE_TOKEN_SIZE);
    for (size_t i = 0; i < token.size(); i += 4) {
        const uint32_t r = random();
        for (size_t j = 0; j < 4; ++j) {
            token[i + j] = static_cast<std::byte>(r >> (8 * j));
        }
    }
    return token;
}

} // namespace

IdMint::IdMint() : IdMint((uint64_t{std::random_device{}()} << 32) | std::random_device{}()) {}

IdMint::IdMint(uint64_t key) {
    // Four round keys from one (splitmix64).
    for (auto& k : m_key) {
        key += 0x9E3779B97F4A7C15ull;
        uint64_t z = key;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        k = z ^ (z >> 31);
    }
}

// A four-round Feistel network on the two 16-bit halves: a bijection
// whatever the round function, so no two counts give one serial.
uint32_t IdMint::scramble(uint32_t value) const noexcept {
    auto left = static_cast<uint16_t>(value >> 16);
    auto right = static_cast<uint16_t>(value);
    for (uint64_t k : m_key) {
        uint64_t z = (right + k) * 0x9E3779B97F4A7C15ull;
        z ^= z >> 29;
        z *= 0xBF58476D1CE4E5B9ull;
        const auto f = static_cast<uint16_t>(z >> 32);
        const uint16_t next = static_cast<uint16_t>(left ^ f);
        left = right;
        right = next;
    }
    return (uint32_t{left} << 16) | right;
}

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
        [&] { return m_bus.bind(NAME_PROBE, false); },
        [&] { return m_bus.bind(NAME_REPLIER_BIND_EVENT, false); },
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
// us over our own link, the Limpets form a cycle. It is SYNTHETIC, which
// only a Ksock its daemon trusts can send, and carries a token nobody can
// guess: so a bus client cannot make one up to stop a Limpet.
void Limpet::sendProbe() {
    auto token = randomToken();
    Message probe = makeMessage(NAME_PROBE, token, FLAG_SYNTHETIC);
    probe.header.id = {m_config.networkId, m_ids.next()};
    probe.header.origFrom = {m_config.networkId, m_bus.id()};
    m_probeTokens.push_back(std::move(token));
    if (m_probeTokens.size() > PROBES_REMEMBERED) {
        m_probeTokens.pop_front();
    }
    if (m_bus.send(probe)) {
        ++m_stats.toBus;
    }
}

bool Limpet::isOurProbe(const Message& msg) const {
    if (msg.header.id.networkId != m_config.networkId) {
        return false;
    }
    return std::ranges::any_of(
        m_probeTokens, [&](const auto& token) { return std::ranges::equal(token, msg.data()); });
}

void Limpet::linkDown() {
    if (!m_up) {
        return;
    }
    m_up = false;
    // Unbind first: a sender that sees the status can no longer reach the
    // dead link (requests still queued for the proxy get Unbound).
    for (const auto& name : m_proxies) {
        unbindProxy(name);
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
Message Limpet::leaving(const Message& msg) {
    Message out = msg;
    if (out.header.id.networkId == 0) {
        out.header.id = {m_config.networkId, m_ids.next()};
    }
    if (out.header.origFrom.networkId == 0) {
        out.header.origFrom = {m_config.networkId, msg.header.from};
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

void Limpet::fromBus(const Message& msg) {
    if (!m_unbindLater.empty()) {
        retryUnbinds();
    }
    if (!m_fatal.empty() || msg.header.from == m_bus.id()) {
        ++m_stats.dropped; // our own injection, read back as a listener
        return;
    }
    if (msg.name() == NAME_REPLIER_BIND_EVENT && msg.header.from == 0) {
        bindEventFromBus(msg);
        return;
    }
    if (msg.isReply()) {
        replyFromBus(msg);
        return;
    }
    if (msg.name() == NAME_PROBE) {
        probeFromBus(msg);
        return;
    }
    if (busOwnName(msg.name())) {
        ++m_stats.dropped; // the bus's own announcements stay on their bus
        if (heldByUs(msg)) {
            statusToBus(Pending{msg.header.id, msg.header.from}, remoteErrorName(Errc::INVALID));
        }
        return;
    }
    if (const char* why = forgedOnBus(msg.header.id)) {
        refuseFromBus(msg, why);
        return;
    }
    Message out = leaving(msg);
    if (out.isRequest()) {
        requestFromBus(msg.header.id, std::move(out));
    } else if (!m_up) {
        ++m_stats.dropped;
    } else if (m_congested) {
        ++m_stats.shed; // missed, as by a listener whose queue is full
    } else {
        forward(std::move(out));
    }
}

void Limpet::bindEventFromBus(const Message& msg) {
    BindEvent event;
    if (!decodeBindEventData(msg.data(), event) || event.binder == m_bus.id() ||
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
void Limpet::replyFromBus(const Message& msg) {
    if (msg.header.to != m_bus.id() || m_injected.erase(msg.header.inReplyTo) == 0) {
        ++m_stats.dropped;
        return;
    }
    Message out = leaving(msg);
    if (m_up) {
        forward(std::move(out));
    }
}

// We get a request to answer only as the proxy replier; a listener's copy of
// a request answered on this bus does not cross (the original re-sent it as
// a request on the far side, where nobody could answer it).
// `asRead` is the request's id on this bus, which its answer must name.
void Limpet::requestFromBus(MsgId asRead, Message msg) {
    if (!msg.wantsYouToReply()) {
        ++m_stats.dropped;
        return;
    }
    const Pending p{asRead, msg.header.from};
    if (!m_up) {
        statusToBus(p, NAME_REPLIER_GONE_AWAY);
        return;
    }
    if (m_congested) {
        ++m_stats.shed;
        statusToBus(p, remoteErrorName(Errc::QUEUE_FULL));
        return;
    }
    if (m_pending.size() >= m_config.maxInFlight || m_pending.contains(msg.header.id)) {
        statusToBus(p, remoteErrorName(Errc::QUEUE_FULL));
        return;
    }
    m_pending[msg.header.id] = p;
    forward(std::move(msg));
}

void Limpet::forward(Message msg) {
    if (!msg.isReply()) {
        remember(msg.header.id);
    }
    msg.header.flags &= ~BUS_SET_FLAGS;
    ++m_stats.toLink;
    m_link.send(Frame{std::move(msg)});
}

// Any sender may set a non-zero network id (KBUS), so an id on the bus
// proves nothing. One that only a Limpet could have made, or one already
// seen, is a forgery (or the echo of a cycle, which the probe finds): it is
// dropped, and never stops the Limpet.
const char* Limpet::forgedOnBus(MsgId id) const {
    if (id.networkId == m_config.networkId) {
        return "its id claims this Limpet's network id";
    }
    // Only our own Ksock brings the far side's ids onto this bus.
    if (m_peerId != 0 && id.networkId == m_peerId) {
        return "its id claims the network id of the Limpet across the link";
    }
    if (id.networkId != 0 && m_seen.contains(id)) {
        return "its id repeats one this Limpet has seen";
    }
    return nullptr;
}

void Limpet::refuseFromBus(const Message& msg, std::string_view why) {
    refused(msg, "on its bus from Ksock " + std::to_string(msg.header.from), why);
    if (heldByUs(msg)) {
        statusToBus(Pending{msg.header.id, msg.header.from}, remoteErrorName(Errc::INVALID));
    }
}

void Limpet::refuseFromLink(const Message& msg, std::string_view why) {
    refused(msg, "over its link", why);
    if (msg.isRequest()) {
        statusToLink(msg, remoteErrorName(Errc::INVALID));
    }
}

void Limpet::refused(const Message& msg, std::string_view where, std::string_view why) {
    ++m_stats.refused;
    if (m_config.log) {
        m_config.log("limpet " + std::to_string(m_config.networkId) + ": refused " +
                     shortName(msg.name()) + " " + idText(msg.header.id) + " " +
                     std::string(where) + ": " + std::string(why));
    }
}

void Limpet::probeFromBus(const Message& msg) {
    if ((msg.header.flags & FLAG_SYNTHETIC) == 0) {
        refuseFromBus(msg, "a probe from a Ksock its daemon does not trust");
        return;
    }
    // Another Limpet's probe with our id is made up; the far side's own probe
    // does reach this bus round a cycle, so it may pass.
    if (msg.header.id.networkId == m_config.networkId) {
        refuseFromBus(msg, "a probe that claims this Limpet's network id");
        return;
    }
    if (m_seen.contains(msg.header.id) || !m_up) {
        ++m_stats.dropped;
        return;
    }
    forward(msg);
}

void Limpet::probeFromLink(Message msg) {
    if (isOurProbe(msg)) {
        cycle("this Limpet's probe " + idText(msg.header.id) + " came back over its link");
        return;
    }
    if (msg.header.id.networkId == m_config.networkId) {
        refuseFromLink(msg, "a probe that claims this Limpet's network id but is not one it sent");
        return;
    }
    if (m_seen.contains(msg.header.id)) {
        ++m_stats.dropped;
        return;
    }
    remember(msg.header.id);
    msg.header.to = 0;
    msg.header.flags = FLAG_SYNTHETIC; // the far Limpet checked it came from a trusted Ksock
    if (m_bus.send(msg)) {
        ++m_stats.toBus;
    }
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
    } else if (const auto* m = std::get_if<Message>(&frame)) {
        msgFromLink(*m);
    } else if (const auto* g = std::get_if<Goodbye>(&frame)) {
        // The far side's word that it found a cycle ends the link, not this
        // Limpet: only our own probe coming back can prove that to us.
        if (g->reason == ByeReason::CYCLE && m_config.log) {
            m_config.log("limpet " + std::to_string(m_config.networkId) +
                         ": the other Limpet found a cycle and left: " + g->text);
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
            unbindProxy(b.name);
        }
        return;
    }
    if (m_proxies.contains(b.name) || m_proxies.size() >= m_config.maxProxies) {
        return;
    }
    if (m_unbindLater.erase(b.name) != 0) {
        m_proxies.insert(b.name); // never unbound: it serves the far side again
        return;
    }
    // A replier on this bus keeps the name (REPLIER_EXISTS): requests here
    // go to it, as they did before the Limpet came.
    if (m_bus.bind(b.name, true)) {
        m_proxies.insert(b.name);
    }
}

void Limpet::msgFromLink(Message msg) {
    if (!m_fatal.empty()) {
        return;
    }
    if (msg.isReply()) {
        replyFromLink(std::move(msg));
        return;
    }
    if (msg.name() == NAME_PROBE) {
        probeFromLink(std::move(msg));
        return;
    }
    if (busOwnName(msg.name())) {
        ++m_stats.dropped;
        return;
    }
    // The far side forwards what its bus clients made up, too.
    if (msg.header.id.networkId == m_config.networkId) {
        refuseFromLink(msg, "its id claims this Limpet's network id");
        return;
    }
    if (m_seen.contains(msg.header.id)) {
        refuseFromLink(msg, "its id repeats one this Limpet has seen");
        return;
    }
    msg.header.flags &= ~FLAG_SYNTHETIC; // only a status may claim to come from a bus
    remember(msg.header.id);
    msg.header.flags = flagsForBus(msg.header.flags);
    if (msg.isRequest()) {
        requestFromLink(std::move(msg));
    } else {
        announcementFromLink(std::move(msg));
    }
}

void Limpet::replyFromLink(Message msg) {
    auto it = m_pending.find(msg.header.inReplyTo);
    if (it == m_pending.end()) {
        ++m_stats.dropped; // late (after a status), or never asked for
        return;
    }
    const Pending p = it->second;
    m_pending.erase(it);
    msg.header.inReplyTo = p.localId;
    msg.header.to = p.from;
    if (p.localId.networkId == 0) {
        msg.header.id = {}; // the last hop: the bus gives it a local id
    }
    msg.header.flags = flagsForBus(msg.header.flags) & ~FLAG_ALL_OR_FAIL;
    if (m_bus.send(msg)) {
        ++m_stats.toBus;
    }
}

// An unbind that a full bind-event listener refused (KBUS: the bind event
// must reach every listener, or the unbind does not happen) leaves the proxy
// bound; without a retry it would stay for good, answering for a replier the
// far side no longer has, and block that name's bind when the link returns.
void Limpet::unbindProxy(const std::string& name) {
    if (auto done = m_bus.unbind(name, true); !done && done.error() == Errc::TRY_AGAIN) {
        m_unbindLater.insert(name);
    }
}

void Limpet::retryUnbinds() {
    std::erase_if(m_unbindLater, [&](const std::string& name) {
        auto done = m_bus.unbind(name, true);
        return done || done.error() != Errc::TRY_AGAIN;
    });
}

// Stateful requests name their replier by final_to; anything else goes to
// whoever replies to the name here (wildcards included).
void Limpet::requestFromLink(Message msg) {
    if (msg.header.to != 0) {
        const bool here = msg.header.finalTo.networkId == m_config.networkId;
        auto replier = m_bus.findReplier(msg.name());
        if (!replier || *replier == 0) {
            statusToLink(msg, NAME_REPLIER_GONE_AWAY);
            return;
        }
        if (here && *replier != msg.header.finalTo.localId) {
            statusToLink(msg, NAME_NOT_SAME_KSOCK);
            return;
        }
        msg.header.to = *replier;
    }
    auto sent = m_bus.send(msg);
    if (!sent) {
        statusToLink(msg, sent.error() == Errc::NO_RECIPIENT ? std::string(NAME_REPLIER_GONE_AWAY)
                                                             : remoteErrorName(sent.error()));
        return;
    }
    ++m_stats.toBus;
    m_injected.insert(msg.header.id);
}

void Limpet::announcementFromLink(Message msg) {
    msg.header.to = 0;
    if (m_bus.send(msg)) {
        ++m_stats.toBus;
    } else {
        ++m_stats.dropped;
    }
}

// ------------------------------------------------------------ statuses

void Limpet::statusToLink(const Message& request, std::string_view name) {
    Message status = makeMessage(name, std::span<const std::byte>{}, FLAG_SYNTHETIC);
    status.header.id = {m_config.networkId, m_ids.next()};
    status.header.inReplyTo = request.header.id;
    status.header.to = request.header.from;
    status.header.origFrom = {m_config.networkId, 0};
    ++m_stats.statuses;
    ++m_stats.toLink;
    m_link.send(Frame{std::move(status)});
}

void Limpet::statusToBus(const Pending& p, std::string_view name) {
    Message status = makeMessage(name, std::span<const std::byte>{}, FLAG_SYNTHETIC);
    status.header.inReplyTo = p.localId;
    status.header.to = p.from;
    status.header.origFrom = {m_config.networkId, 0};
    ++m_stats.statuses;
    if (m_bus.send(status)) {
        ++m_stats.toBus;
    }
}

// Never the bus's own names: a proxy for one would hold requests that no
// Limpet forwards.
bool Limpet::covered(std::string_view bindName) const {
    if (bindName.starts_with("$.KBUS.")) {
        return false;
    }
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
    s.unbindsWaiting = m_unbindLater.size();
    s.localRepliers = m_localRepliers.size();
    return s;
}

} // namespace xkbus::limpet
