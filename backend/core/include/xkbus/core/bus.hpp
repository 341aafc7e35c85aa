// One bus (a KBUS "device"): its Ksocks, bindings, queues and the rules that
// connect them. Pure logic: no I/O, no threads, no clocks. Every call takes
// full effect before it returns; the host learns what changed for each Ksock
// from takeQueueEvents().
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>
#include <xkbus/common/message.hpp>
#include <xkbus/common/result.hpp>
#include <xkbus/core/accounts.hpp>

namespace xkbus::core {

// For the 0/1/QUERY switches (MSGONLYONCE, VERBOSE, REPORTREPLIERBINDS).
inline constexpr uint32_t QUERY = 0xFFFFFFFF;
// For maxMessageSize(): 0 queries the current limit, 1 the absolute one.
inline constexpr uint32_t QUERY_CURRENT_SIZE = 0;
inline constexpr uint32_t QUERY_ABSOLUTE_SIZE = 1;

struct BusConfig {
    uint32_t maxMessageSize = DEFAULT_MAX_MESSAGE_SIZE;
    uint32_t absoluteMaxMessageSize = DEFAULT_MAX_MESSAGE_SIZE;
    uint32_t defaultMaxMessages = 100;     // each Ksock's queue limit when opened
    uint32_t maxUnsentUnbindEvents = 1000; // the set-aside list's limit
    bool recordQueueEvents = false;        // keep QueueEvents for takeQueueEvents()
    // What each charge group may make the bus hold (a Core's buses share one
    // account per group); the host may override it per group.
    TenantLimits limits = {};
};

// What a Ksock may do that reaches beyond its own queue and bindings. KBUS
// lets every Ksock do all of it, and so does the default; a host withdraws
// rights from tenants it does not trust. A refusal is EPERM (PERMISSION_DENIED).
struct Rights {
    // Set MAXMSGSIZE, REPORTREPLIERBINDS and VERBOSE, which hold for the whole bus.
    bool busSettings = true;
    // Send a message with a non-zero network id (as a Limpet does): such ids
    // are kept, and a Limpet that sees its own or a repeated one stops.
    bool networkIds = true;
    // As a listener of $.KBUS.ReplierBindEvent with no room, make replier
    // binds and unbinds fail with EAGAIN, and have a close's unbind events
    // set aside for it (KBUS). Without it, such a listener misses the event
    // and later finds one $.KBUS.UnbindEventsLost: it holds nobody back.
    bool blockBinds = true;
};

struct OpenOptions {
    bool writable = true;          // a read-only Ksock may listen but not send
    uint32_t ownerTag = 0;         // who opened it (a pid, or a domid): for introspection
    bool mayMarkSynthetic = false; // trusted (a Limpet): its SYNTHETIC flag is kept
    uint32_t chargeGroup = 0;      // the tenant everything it holds is charged to
    Rights may = {};
};

struct BindingInfo {
    KsockId ksock = 0;
    uint32_t ownerTag = 0;
    bool replier = false;
    std::string name;
};

// What the bus says about one Ksock: plain values, a copy.
struct KsockView {
    KsockId id = 0;
    uint32_t ownerTag = 0;
    uint32_t chargeGroup = 0;
    bool writable = false; // opened for writing
    MsgId lastSent;
    uint32_t queued = 0;     // messages waiting to be popped
    uint64_t headCopyId = 0; // the copy NEXTMSG would pop; 0 when the queue is empty
    uint32_t maxMessages = 0;
    uint32_t slotsUsed = 0;       // queued plus places held for replies
    uint32_t awaitingReplies = 0; // requests it sent that are still owed a reply
    uint32_t unrepliedTo = 0;     // requests it popped and still owes a reply to
    uint32_t setAside = 0;        // its unbind events waiting on the set-aside list
    uint32_t bindings = 0;
    bool sending = false; // an ALL_OR_WAIT send is still in progress
    bool onlyOnce = false;
};
using KsockStats = KsockView;

struct BusStats {
    uint32_t index = 0;
    KsockId nextKsockId = 0;
    uint32_t nextSerial = 0;
    uint32_t maxMessageSize = 0;
    bool reportReplierBinds = false;
    bool verbose = false;
    uint32_t unsentUnbindEvents = 0;
    bool unbindEventsLost = false; // the set-aside list overflowed ("gone tragic")
    uint64_t copiesQueued = 0;     // every copy ever pushed to a queue
    uint64_t copiesPopped = 0;
    uint64_t copiesDropped = 0; // removed by unbind or close
    // Charge groups with a Ksock here, and the bytes queued to each (on every
    // bus that shares this bus's accounts).
    std::vector<std::pair<uint32_t, uint64_t>> queuedBytesByGroup;
    std::vector<KsockView> ksocks; // by id
};

struct QueuedMessage {
    Message msg;
    uint64_t via = 0;    // the binding that caused it (0: a reply or a status)
    uint64_t copyId = 0; // unique on the bus: names this copy in this queue
};

struct OwedReply {
    MsgId request;
    KsockId to = 0; // the request's sender
    friend auto operator<=>(const OwedReply&, const OwedReply&) = default;
};

// Everything a Ksock holds, copied out: for tests and debugging, not for a
// hot path (it copies the whole queue).
struct KsockContents {
    std::vector<QueuedMessage> queue;   // head first
    std::vector<MsgId> awaitingReplies; // in no particular order
    std::vector<OwedReply> owedReplies; // in the order popped
    std::optional<Message> pending;     // the ALL_OR_WAIT message still being sent
};

// The steps the bus has taken since it was made, by kind: tests bound an
// operation's work by counting them instead of timing it (docs/semantics.md
// states each bound). Never reset.
struct BusWork {
    uint64_t nodesVisited = 0;     // binding-trie nodes looked at
    uint64_t listenersRouted = 0;  // listener bindings routes produced
    uint64_t mergeComparisons = 0; // comparisons merging a route's listener lists
    uint64_t ownerScans = 0;       // a Ksock's own bindings to one name looked at
    uint64_t queueSteps = 0;       // queued copies looked at
    uint64_t setAsideSteps = 0;    // set-aside events looked at
    uint64_t retries = 0;          // blocked ALL_OR_WAIT sends tried again
};

// A change to a Ksock's queue that its owner did not ask for, or the end of
// its blocked send. A daemon ships these to the owning client, in order, so
// the client can keep a mirror of the queue (docs/architecture.md).
struct QueueEvent {
    enum class Kind : uint8_t {
        PUSHED_TAIL,   // msg was queued at the tail
        PUSHED_HEAD,   // msg was queued at the head (URGENT)
        REMOVED,       // the copy was dropped by an unbind
        SEND_FINISHED, // the Ksock's blocked ALL_OR_WAIT send completed or failed
    };
    Kind kind = Kind::PUSHED_TAIL;
    KsockId ksock = 0;
    uint64_t copyId = 0;
    Message msg; // for the PUSHED kinds
};

class Ledger;

class Bus {
public:
    // A bus with accounts of its own.
    explicit Bus(uint32_t index, BusConfig config = {});
    // A bus whose charge groups are accounted in `ledger`, with other buses.
    Bus(uint32_t index, BusConfig config, std::shared_ptr<Ledger> ledger);
    ~Bus();
    Bus(const Bus&) = delete;
    Bus& operator=(const Bus&) = delete;

    uint32_t index() const noexcept;

    Result<KsockId> open(OpenOptions options = {});
    // Queued requests get GoneAway, popped-but-unreplied ones get Ignored.
    Result<void> close(KsockId id);

    Result<void> bind(KsockId id, std::string_view name, bool replier);
    Result<void> unbind(KsockId id, std::string_view name, bool replier);
    // The Ksock a request with this name would reach, wildcards included; 0 if none.
    Result<KsockId> findReplier(std::string_view name) const;

    // KBUS's write + SEND. Returns the message id. On TRY_AGAIN the message
    // stays pending (lastSent() has its id) until it completes or discard().
    Result<MsgId> send(KsockId id, Message msg);
    Result<void> discard(KsockId id);
    // NEXTMSG: pops the next message; nullopt when the queue is empty.
    Result<std::optional<Message>> nextMessage(KsockId id);
    // Pops one particular copy, wherever it is in the queue: a client that
    // pops from its mirror names the copy it took. INVALID if it is not queued.
    Result<Message> popCopy(KsockId id, uint64_t copyId);
    Result<MsgId> lastSent(KsockId id) const;

    // MAXMSGS: 0 queries; returns the limit now in force.
    Result<uint32_t> maxMessages(KsockId id, uint32_t newLimit);
    // NUMMSGS: queued messages plus set-aside unbind events.
    Result<uint32_t> numMessages(KsockId id) const;
    Result<uint32_t> numUnrepliedTo(KsockId id) const;
    // 0, 1 or QUERY; returns the previous setting.
    Result<uint32_t> onlyOnce(KsockId id, uint32_t request);
    Result<uint32_t> verbose(uint32_t request);
    // The same, asked by Ksock `id`: setting it needs Rights::busSettings.
    Result<uint32_t> verbose(KsockId id, uint32_t request);
    // Turning it on also queues, to `id` only, a bind event per existing
    // replier. Setting it needs Rights::busSettings.
    Result<uint32_t> reportReplierBinds(KsockId id, uint32_t request);
    // 0 / 1 query the current / absolute limit; any other value sets it.
    Result<uint32_t> maxMessageSize(uint32_t request);
    // The same, asked by Ksock `id`: setting it needs Rights::busSettings.
    Result<uint32_t> maxMessageSize(KsockId id, uint32_t request);

    // The queue events since the last call (only with recordQueueEvents).
    std::vector<QueueEvent> takeQueueEvents();

    // True while the Ksock's queue is at least half full, or its charge group
    // holds at least half its message or byte quota: its owner should report
    // pops at once rather than when convenient, or copies may be refused for
    // room it has already made.
    bool underPressure(KsockId id) const;

    // What a charge group holds, against its limits (across every bus that
    // shares this bus's accounts).
    GroupUsage groupUsage(uint32_t group) const;
    // Replaces the group's limits (nullopt: back to BusConfig::limits). What
    // it holds already stays; new charges meet the new limits.
    void setGroupLimits(uint32_t group, std::optional<TenantLimits> limits);

    BusStats stats() const;
    BusWork work() const;
    std::vector<BindingInfo> bindings() const; // in bind order
    bool isOpen(KsockId id) const;
    // A Ksock's state as plain values; nullopt if it is not open.
    std::optional<KsockView> inspect(KsockId id) const;
    // A Ksock's queue and reply bookkeeping, copied; nullopt if it is not open.
    std::optional<KsockContents> contents(KsockId id) const;

private:
    struct Impl;
    std::unique_ptr<Impl> m;
};

} // namespace xkbus::core
