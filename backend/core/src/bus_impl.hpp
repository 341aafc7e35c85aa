// The bus behind Bus's public operations. It owns the registries, one per
// concern, and the rules that tie them together: bus.cpp opens, closes and
// binds; delivery.cpp routes, queues, pops and answers; bind_events.cpp
// reports replier binds and keeps the set-aside list; queries.cpp answers
// the settings and introspection calls.
#pragma once

#include "blocked_senders.hpp"
#include "ksock.hpp"
#include "set_aside.hpp"

#include <memory>
#include <unordered_map>
#include <vector>
#include <xkbus/core/binding_index.hpp>
#include <xkbus/core/bus.hpp>

namespace xkbus::core {

// The delivery planner's result: every recipient of one send, decided before
// any queue is touched; or, when a queue had no room, what was full.
struct Plan {
    Route route;
    Ksock* replyTarget = nullptr;
    const Binding* replier = nullptr;
    std::vector<const Binding*> accepted; // listener bindings that get a copy
    Obstacle obstacle;
};

enum class Room : uint8_t { YES, QUEUE_FULL, GROUP_FULL };

// What happened on a Ksock that may let a blocked send through.
enum class Change : uint8_t {
    ROOM,     // it made room (a pop, a discard, a raised limit): routes are as they were
    BINDINGS, // it closed, or an unbind dropped what it held: routes through it changed
    // An unbind that dropped nothing: sends blocked on its queue may now pass
    // it by, but requests it was the replier of wait on for room, as in KBUS
    // (retried only when their sender polled: a replaced replier meant
    // ErrorSending, not Disappeared).
    UNBOUND,
};

struct Bus::Impl {
    Impl(uint32_t busIndex, BusConfig busConfig, std::shared_ptr<Ledger> sharedLedger);
    ~Impl();
    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;

    // ---- lookups (bus.cpp)
    Ksock* find(KsockId id) const;
    Result<Ksock*> findOrFail(KsockId id) const;
    MsgId nextMessageId();
    static Message busMessage(std::string_view name, uint32_t flags,
                              std::vector<std::byte> data = {});

    // ---- open, close, bindings (bus.cpp)
    Result<KsockId> open(OpenOptions options);
    Result<void> close(KsockId id);
    void dropQueueOnClose(Ksock& k);
    void removeBindingsOnClose(Ksock& k);
    Result<void> bind(KsockId id, std::string_view name, bool replier);
    Result<void> unbind(KsockId id, std::string_view name, bool replier);
    void removeBinding(Ksock& k, const Binding& binding);

    // ---- accounting by charge group (accounts.cpp)
    const TenantLimits& limitsOf(const Ksock& k) const { return ledger->limitsOf(*k.account); }
    Result<void> chargeKsock(GroupAccount& g);
    Result<void> chargeBinding(Ksock& k, std::string_view name);
    void releaseBinding(Ksock& k, std::string_view name);
    void charge(Ksock& k, const Message& msg);
    void uncharge(Ksock& k, const Message& msg);
    void awaitReply(Ksock& k, MsgId request);
    void settleReply(Ksock& k, MsgId request);
    bool replySlotFree(const Ksock& k) const;
    Result<void> chargePendingSend(Ksock& k);
    void releaseCloser(Ksock& k);
    bool groupHasRoom(const GroupAccount* g) const;
    void waitOn(Ksock& sender, const Obstacle& obstacle);
    void stopWaiting(Ksock& sender);

    // ---- sending and receiving (delivery.cpp)
    Result<void> checkSendable(const Message& msg) const;
    Result<MsgId> send(KsockId id, Message msg);
    Result<MsgId> block(Ksock& sender, Message msg);
    Result<void> deliver(Ksock* sender, const Message& msg, bool slotReserved);
    Result<void> planDelivery(Ksock* sender, const Message& msg, bool slotReserved, Plan& plan);
    Result<void> planReply(Ksock* sender, const Message& msg, uint64_t stamp, Errc fullError,
                           Plan& plan);
    Result<void> refuseFull(Ksock& k, Room room, Errc error, Plan& plan);
    void commitDelivery(Ksock* sender, const Message& msg, bool slotReserved, const Plan& plan);
    void push(Ksock& k, const Message& msg, uint64_t via, bool wantYouToReply);
    void pushStatus(KsockId to, KsockId from, MsgId request, std::string_view name);
    Room reserve(Ksock& k, uint64_t stamp, uint32_t slots, uint64_t bytes);
    void record(QueueEvent::Kind kind, const Ksock& k, uint64_t copyId, const Message* msg);
    Message popped(Ksock& k, QueuedMessage item);
    Result<void> discard(KsockId id);
    void retryWaiters(KsockId queue, uint32_t group, Change change);
    void retryGroupWaiters(uint32_t group);
    void retry(Ksock& sender);
    void finishPending(Ksock& k, const Result<void>& outcome);
    void roomMayHaveAppeared(Ksock& k, Change change = Change::ROOM);
    void forgetReplyToGoneSender(Ksock& replier, const Message& msg, Errc error);

    // ---- replier bind events and the set-aside list (bind_events.cpp)
    Result<void> deliverBindEvent(const Ksock& binder, bool isBind, std::string_view name,
                                  bool refusable);
    void setAsideForFull(const Message& event, const std::vector<const Binding*>& full);
    void refillFromSetAside(Ksock& k);
    Result<uint32_t> reportReplierBinds(KsockId id, uint32_t request);

    // ---- introspection (queries.cpp)
    KsockView viewOf(const Ksock& k) const;

    uint32_t index;
    BusConfig config;
    BindingIndex bindingIndex;
    std::unordered_map<KsockId, std::unique_ptr<Ksock>> ksocks;
    KsockId nextKsockId = 1;
    uint32_t nextSerial = 1;
    bool reportReplierBindsOn = false;
    bool verboseOn = false;
    BusWork counted; // the steps not counted by the index (see work())
    SetAsideList setAside{&counted.setAsideSteps};
    BlockedSenders blocked;
    uint64_t copiesQueued = 0;
    uint64_t copiesPopped = 0;
    uint64_t copiesDropped = 0;
    uint64_t nextCopyId = 1;
    std::shared_ptr<Ledger> ledger; // the accounts of every charge group, maybe shared
    std::vector<QueueEvent> events;
    Plan scratch; // reused by every send, so routing does not allocate
};

} // namespace xkbus::core
