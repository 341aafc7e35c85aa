// A Ksock's state, inside the bus: one part per concern, each the owner side
// of a bus-wide registry (its bindings in the BindingIndex, its share of the
// set-aside list, its blocked send among the BlockedSenders). The host knows
// a Ksock by id only; Bus::inspect() gives it a copy of the figures.
#pragma once

#include "blocked_senders.hpp"
#include "ledger.hpp"
#include "message_queue.hpp"
#include "pending_replies.hpp"
#include "set_aside.hpp"

#include <cstdint>
#include <map>
#include <xkbus/core/binding_index.hpp>
#include <xkbus/core/bus.hpp>

namespace xkbus::core {

// What the send being planned has claimed on one Ksock (valid while stamp
// matches the plan's).
struct PlanScratch {
    uint64_t stamp = 0;
    uint32_t slots = 0;
    uint32_t copies = 0;
};

struct Ksock {
    Ksock(KsockId ksockId, const OpenOptions& openOptions, uint64_t* queueSteps)
        : id(ksockId), options(openOptions), queue(queueSteps) {}

    KsockId id = 0;
    OpenOptions options;
    uint32_t maxMessages = 0;
    bool onlyOnce = false;
    MsgId lastSent;
    MessageQueue queue;
    PendingReplies replies;
    std::map<uint64_t, const Binding*> bindings; // by seq: oldest first
    PendingSend sending;                         // its blocked ALL_OR_WAIT send, if any
    SetAsideShare setAside;
    GroupAccount* account = nullptr; // its charge group's, in the ledger
    PlanScratch plan;

    // A request's reply slot counts as used from the send until the reply.
    size_t slotsUsed() const noexcept { return queue.size() + replies.awaitingCount(); }
    bool full() const noexcept { return slotsUsed() >= maxMessages; }
};

} // namespace xkbus::core
