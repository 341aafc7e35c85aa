// One side of a Limpet pair: the KBUS Limpet rules (reference §5) as a pure,
// deterministic state machine. It talks to its bus through a BusPort and to
// the other side through a LinkSink; drivers (local_driver, net_driver) do
// the I/O. docs/limpet.md explains every rule and what it fixes.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>
#include <xkbus/limpet/wire.hpp>

namespace xkbus::limpet {

// What a Limpet needs from its Ksock on the bus. The real one wraps a
// frontend::KsockChannel; tests wrap a core::Bus.
class BusPort {
public:
    virtual ~BusPort() = default;
    virtual KsockId id() const = 0;
    virtual Result<void> bind(std::string_view name, bool replier) = 0;
    virtual Result<void> unbind(std::string_view name, bool replier) = 0;
    virtual Result<KsockId> findReplier(std::string_view name) = 0;
    virtual Result<MsgId> send(const Message& msg) = 0;
    virtual Result<void> onlyOnce() = 0;           // MSGONLYONCE(1)
    virtual Result<void> reportReplierBinds() = 0; // REPORTREPLIERBINDS(1)
    virtual Result<void> setMaxMessages(uint32_t n) = 0;
};

// Where a Limpet's frames for the other side go.
class LinkSink {
public:
    virtual ~LinkSink() = default;
    virtual void send(const Frame& frame) = 0;
};

struct Config {
    uint32_t networkId = 0;      // non-zero, unique among all Limpets joined
    std::string filter = "$.*";  // the names that cross (a bind name)
    uint32_t maxMessages = 1000; // MAXMSGS of the Limpet's Ksock
    size_t maxInFlight = 1000;   // requests forwarded and not yet answered
    size_t maxProxies = 16384;   // proxy replier bindings held for the other side
    size_t dedupWindow = 4096;   // ids remembered to refuse a message seen twice
    uint32_t heartbeatMs = 1000; // sent in HELLO
    // Where the Limpet says what it refused and why. Bus clients can make it
    // refuse at will, so the drivers rate-limit it; empty means silent.
    std::function<void(std::string_view)> log;
};

inline constexpr std::string_view NAME_PROBE = "$.KBUS.Limpet.Probe";
inline constexpr std::string_view NAME_NOT_SAME_KSOCK = "$.KBUS.Replier.NotSameKsock";
inline constexpr std::string_view REMOTE_ERROR_PREFIX = "$.KBUS.RemoteError.";
// A probe's data: a random token, so that only a probe this Limpet really
// sent can tell it that it stands in a cycle.
inline constexpr size_t PROBE_TOKEN_SIZE = 8;

// The serials of the ids a Limpet gives: every one distinct (a bijection of
// a counter, 2^32 of them before one repeats) and, with a secret key,
// unpredictable. A bus's own serials count up, and a forger who guessed the
// id of a coming message could send it first and have the Limpets drop the
// real one as seen.
class IdMint {
public:
    IdMint(); // a random key
    explicit IdMint(uint64_t key);
    uint32_t next() noexcept { return scramble(m_count++); }
    uint32_t scramble(uint32_t value) const noexcept;

private:
    uint64_t m_key[4]{};
    uint32_t m_count = 0;
};

struct LimpetStats {
    uint64_t toLink = 0;       // messages sent to the other side
    uint64_t toBus = 0;        // messages sent on the bus
    uint64_t statuses = 0;     // status replies this Limpet made
    uint64_t dropped = 0;      // messages not forwarded (echoes, listener copies, ...)
    uint64_t refused = 0;      // forged: an id of this or the far network, or seen; foreign probes
    uint64_t shed = 0;         // not sent because the link was congested (statuses for requests)
    size_t inFlight = 0;       // requests awaiting the far side's reply
    size_t injected = 0;       // requests sent on the bus for the far side
    size_t proxies = 0;        // proxy replier bindings
    size_t unbindsWaiting = 0; // proxies withdrawn whose unbind waits for room
    size_t localRepliers = 0;  // repliers on this bus announced to the far side
};

class Limpet {
public:
    Limpet(Config config, BusPort& bus, LinkSink& link);

    // MSGONLYONCE, the listener bindings, REPORTREPLIERBINDS: the bus then
    // reports every replier already bound.
    Result<void> start();
    // The link is up and the other side said HELLO. ID_CLASH-type errors are
    // PERMISSION_DENIED (the caller sends the GOODBYE from goodbye()).
    Result<void> linkUp(const Hello& peer);
    // The link is gone: every request forwarded over it gets GoneAway, and
    // the proxy bindings are withdrawn.
    void linkDown();
    bool isLinkUp() const noexcept { return m_up; }

    // A message read from the bus.
    void fromBus(const Message& msg);
    // The driver's buffer for the link is over its mark (the peer reads
    // slowly, or not at all). The driver keeps reading the bus regardless: a
    // Limpet that stopped would let its Ksock's queue fill, and then every
    // replier bind on its bus fails with EAGAIN (the bind event has nowhere
    // to go). So while congested, what would only add to the backlog is shed,
    // as a full listener misses it: announcements are dropped, and a request
    // this Limpet holds is answered at once with RemoteError.<EBUSY>. Replies,
    // bind notices and probes still go: they are small, and without them the
    // reply guarantee, the proxies or cycle detection would break.
    void setLinkCongested(bool congested) noexcept { m_congested = congested; }
    // A frame from the other side, after HELLO. PROTOCOL_VIOLATION: drop the link.
    Result<void> fromLink(const Frame& frame);

    Hello hello() const { return Hello{WIRE_VERSION, m_config.networkId, m_config.heartbeatMs}; }
    // Set once this Limpet's own probe came back over its link: it stands in
    // a cycle and must stop. Nothing a bus client sends can set it, and
    // neither can the other side's GOODBYE. The text says why.
    const std::string& fatalError() const noexcept { return m_fatal; }
    // The GOODBYE to send before closing, after an error.
    Goodbye goodbye() const { return m_bye; }
    LimpetStats stats() const;

private:
    struct Pending {
        MsgId localId; // the request's id as read from the bus
        uint32_t from = 0;
    };

    Message leaving(const Message& msg);
    void remember(MsgId id);
    const char* forgedOnBus(MsgId id) const;
    void refuseFromBus(const Message& msg, std::string_view why);
    void refuseFromLink(const Message& msg, std::string_view why);
    void refused(const Message& msg, std::string_view where, std::string_view why);
    void probeFromBus(const Message& msg);
    void probeFromLink(Message msg);
    bool isOurProbe(const Message& msg) const;
    void bindEventFromBus(const Message& msg);
    void replyFromBus(const Message& msg);
    void requestFromBus(MsgId asRead, Message msg);
    void forward(Message msg);
    void bindFromLink(const BindNotice& b);
    void unbindProxy(const std::string& name);
    void retryUnbinds();
    void msgFromLink(Message msg);
    void replyFromLink(Message msg);
    void requestFromLink(Message msg);
    void announcementFromLink(Message msg);
    void statusToLink(const Message& request, std::string_view name);
    void statusToBus(const Pending& p, std::string_view name);
    bool covered(std::string_view bindName) const;
    void cycle(const std::string& why);
    void sendProbe();

    Config m_config;
    BusPort& m_bus;
    LinkSink& m_link;
    bool m_up = false;
    bool m_congested = false;
    uint32_t m_peerId = 0;
    IdMint m_ids;
    std::map<std::string, KsockId> m_localRepliers; // name -> binder, never ourselves
    std::set<std::string> m_proxies;                // bound for the other side
    // Proxies whose unbind met a full bind-event listener (EAGAIN): still
    // bound, so retried each time the Limpet reads its bus, which makes room
    // at least on its own Ksock.
    std::set<std::string> m_unbindLater;
    std::map<MsgId, Pending> m_pending; // forwarded id -> original
    std::set<MsgId> m_injected;         // requests we sent for the far side
    std::set<MsgId> m_seen;             // dedup window
    std::deque<MsgId> m_seenOrder;
    std::deque<std::vector<std::byte>> m_probeTokens; // the last probes sent
    std::string m_fatal;
    Goodbye m_bye;
    LimpetStats m_stats;
};

// "$.KBUS.RemoteError.<errno>", the status for a request the far bus refused.
std::string remoteErrorName(Errc e);

} // namespace xkbus::limpet
