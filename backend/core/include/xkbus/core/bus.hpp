// One bus (a KBUS "device"): its Ksocks, bindings, queues and the rules that
// connect them. Pure logic: no I/O, no threads, no clocks. Every call takes
// full effect before it returns; the host learns which Ksocks to wake from
// takeWakeups().
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>
#include <xkbus/common/message.hpp>
#include <xkbus/common/result.hpp>
#include <xkbus/core/binding_index.hpp>

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
    bool recordQueueEvents = false;
    // Bytes (in KBUS "entire" size) that the queues of one charge group may
    // hold on this bus; 0 for no limit. A group over it is full for new copies.
    uint64_t maxQueuedBytesPerGroup = 0; // keep QueueEvents for takeQueueEvents()
};

struct OpenOptions {
    bool writable = true;          // a read-only Ksock may listen but not send
    uint32_t ownerTag = 0;         // who opened it (a pid, or a domid): for introspection
    bool mayMarkSynthetic = false; // trusted (a Limpet): its SYNTHETIC flag is kept
    uint32_t chargeGroup = 0;      // whose quota its queued bytes count against (a peer, a domain)
};

struct PollState {
    bool readable = false; // a message is queued
    bool writable = false; // open for writing and not blocked in an ALL_OR_WAIT send
};

struct BindingInfo {
    KsockId ksock = 0;
    uint32_t ownerTag = 0;
    bool replier = false;
    std::string name;
};

struct KsockStats {
    KsockId id = 0;
    uint32_t ownerTag = 0;
    MsgId lastSent;
    uint32_t queued = 0; // messages waiting to be popped
    uint32_t maxMessages = 0;
    uint32_t awaitingReplies = 0; // requests it sent that are still owed a reply
    uint32_t unrepliedTo = 0;     // requests it popped and still owes a reply to
    uint32_t setAside = 0;        // its unbind events waiting on the set-aside list
    uint32_t bindings = 0;
    bool sending = false; // an ALL_OR_WAIT send is still in progress
    bool onlyOnce = false;
};

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
    uint64_t copiesDropped = 0;                                    // removed by unbind or close
    std::vector<std::pair<uint32_t, uint64_t>> queuedBytesByGroup; // charge group, bytes
    std::vector<KsockStats> ksocks;
};

struct QueuedMessage {
    Message msg;
    uint64_t via = 0;    // the binding that caused it (0: a reply or a status)
    uint64_t copyId = 0; // unique on the bus: names this copy in this queue
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

// Queued bytes of one charge group, and the delivery planner's scratch.
struct GroupCharge {
    uint64_t bytes = 0;
    uint64_t planStamp = 0;
    uint64_t plannedBytes = 0;
};

struct OwedReply {
    MsgId request;
    KsockId to = 0; // the request's sender
    friend bool operator==(const OwedReply&, const OwedReply&) = default;
};

// A Ksock's state. Lives inside the bus; the host knows it by id only.
struct Ksock {
    KsockId id = 0;
    OpenOptions options;
    std::deque<QueuedMessage> queue;
    uint32_t maxMessages = 0;
    std::vector<MsgId> awaitingReplies;
    std::vector<OwedReply> owedReplies;   // in the order they were popped
    std::vector<const Binding*> bindings; // oldest first
    std::optional<Message> pending;       // the ALL_OR_WAIT message still being sent
    MsgId lastSent;
    bool onlyOnce = false;
    uint32_t setAside = 0;
    bool lostMarkerSetAside = false;
    bool wakeQueued = false;
    GroupCharge* charge = nullptr; // owned by the bus, one per charge group
    // Scratch space of the delivery planner (valid while planStamp matches).
    uint64_t planStamp = 0;
    uint32_t plannedSlots = 0;
    uint32_t plannedCopies = 0;

    // A request's reply slot counts as used from the send until the reply.
    size_t slotsUsed() const noexcept { return queue.size() + awaitingReplies.size(); }
};

class Bus {
public:
    explicit Bus(uint32_t index, BusConfig config = {});
    ~Bus();
    Bus(const Bus&) = delete;
    Bus& operator=(const Bus&) = delete;

    uint32_t index() const noexcept { return m_index; }

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
    // Turning it on also queues, to `id` only, a bind event per existing replier.
    Result<uint32_t> reportReplierBinds(KsockId id, uint32_t request);
    // 0 / 1 query the current / absolute limit; any other value sets it.
    Result<uint32_t> maxMessageSize(uint32_t request);

    Result<PollState> poll(KsockId id) const;
    // Ksocks that became readable, or whose pending send finished, since the
    // last call. The host wakes their pollable fds.
    std::vector<KsockId> takeWakeups();
    // The queue events since the last call (only with recordQueueEvents).
    std::vector<QueueEvent> takeQueueEvents();

    // True while the Ksock's queue is at least half full, or its charge group
    // holds at least half its byte quota: its owner should report pops at
    // once rather than when convenient, or copies may be refused for room
    // it has already made.
    bool underPressure(KsockId id) const;

    BusStats stats() const;
    std::vector<BindingInfo> bindings() const; // in bind order
    bool isOpen(KsockId id) const { return m_ksocks.contains(id); }
    // Read-only view of a Ksock's state (queue, reply bookkeeping); nullptr if
    // not open. For introspection and tests; valid until the next call.
    const Ksock* inspect(KsockId id) const { return find(id); }

private:
    struct Plan;
    struct SetAsideItem {
        KsockId ksock = 0;
        uint64_t via = 0;
        Message msg;
    };

    Ksock* find(KsockId id) const;
    Result<Ksock*> findOrFail(KsockId id) const;
    Result<void> checkSendable(const Message& msg) const;
    MsgId nextMessageId();
    Message busMessage(std::string_view name, uint32_t flags, std::vector<std::byte> data = {});

    Result<void> planDelivery(Ksock* sender, const Message& msg, bool slotReserved, Plan& plan);
    void commitDelivery(Ksock* sender, const Message& msg, bool slotReserved, const Plan& plan);
    Result<void> deliver(Ksock* sender, const Message& msg, bool slotReserved);
    void push(Ksock& k, const Message& msg, uint64_t via, bool wantYouToReply);
    void pushStatus(KsockId to, KsockId from, MsgId request, std::string_view name);
    void wake(Ksock& k);
    bool reserve(Ksock& k, uint64_t stamp, uint32_t copies, uint64_t bytesEach);
    void uncharge(Ksock& k, const Message& msg);
    void record(QueueEvent::Kind kind, const Ksock& k, uint64_t copyId, const Message* msg);
    Message takeFromQueue(Ksock& k, std::deque<QueuedMessage>::iterator at);

    Result<void> reportBindEvent(const Ksock& binder, bool isBind, std::string_view name);
    void reportUnbindOnClose(const Ksock& binder, std::string_view name);
    void setAside(Ksock& k, uint64_t via, const Message& msg);
    void refillFromSetAside(Ksock& k);
    void dropSetAside(KsockId id, std::optional<uint64_t> via);

    void removeBinding(Ksock& k, const Binding& binding);
    void retryPendingSends();
    void finishPending(Ksock& k, const Result<void>& outcome);
    void roomMayHaveAppeared(Ksock& k);
    void forgetReplyToGoneSender(Ksock& replier, const Message& msg, Errc error);

    uint32_t m_index;
    BusConfig m_config;
    BindingIndex m_bindingIndex;
    std::unordered_map<KsockId, std::unique_ptr<Ksock>> m_ksocks;
    KsockId m_nextKsockId = 1;
    uint32_t m_nextSerial = 1;
    bool m_reportReplierBinds = false;
    bool m_verbose = false;
    std::deque<SetAsideItem> m_setAside;
    bool m_unbindEventsLost = false;
    std::vector<KsockId> m_sending; // Ksocks with a pending send, in the order they blocked
    std::vector<KsockId> m_wakeups;
    uint64_t m_planStamp = 0;
    uint64_t m_copiesQueued = 0;
    uint64_t m_copiesPopped = 0;
    uint64_t m_copiesDropped = 0;
    uint64_t m_nextCopyId = 1;
    std::unordered_map<uint32_t, GroupCharge> m_charges; // element addresses are stable
    std::vector<QueueEvent> m_events;
    std::unique_ptr<Plan> m_plan; // reused by every send, so routing does not allocate
};

} // namespace xkbus::core
