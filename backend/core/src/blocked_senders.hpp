// The ALL_OR_WAIT sending state of a bus. A blocked send waits on what
// blocked it: the full queue of one Ksock, or the quota of one charge group;
// a blocked request also depends on the replier it was routed to. Room on a
// queue retries only the sends waiting on that queue (or its group), oldest
// first, and stops once the queue is full again; a change of bindings on a
// Ksock (an unbind, a close) retries those waiting on it or depending on it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <unordered_map>
#include <xkbus/common/message.hpp>

namespace xkbus::core {

// What a blocked send waits for.
struct Obstacle {
    KsockId queue = 0;             // the Ksock whose queue was full, or
    std::optional<uint32_t> group; // the charge group that was over its quota
    KsockId replier = 0;           // for a request: the replier it was routed to
};

// A Ksock's side of it: its blocked message and where it is registered.
struct PendingSend {
    std::optional<Message> msg;
    uint64_t order = 0; // when it first blocked; older sends are retried first
    Obstacle waitingFor;
};

class BlockedSenders {
public:
    // Registers (or moves) `sender`'s blocked send to wait for `obstacle`.
    void wait(KsockId sender, PendingSend& send, const Obstacle& obstacle);
    void stopWaiting(PendingSend& send);

    // The oldest sender blocked after `after` among: those waiting on `queue`
    // (if queueOpen), on `group` (if groupOpen), and, if dependents, those
    // whose replier is `queue`.
    struct Waiter {
        uint64_t order = 0;
        KsockId sender = 0;
    };
    std::optional<Waiter> next(KsockId queue, std::optional<uint32_t> group, bool queueOpen,
                               bool groupOpen, bool dependents, uint64_t after) const;

private:
    using Waiters = std::map<uint64_t, KsockId>; // by order
    static void earliestAfter(const Waiters* list, uint64_t after, std::optional<Waiter>& best);
    void unlink(const PendingSend& send);

    std::unordered_map<KsockId, Waiters> m_onQueue;
    std::unordered_map<uint32_t, Waiters> m_onGroup;
    std::unordered_map<KsockId, Waiters> m_onReplier;
    uint64_t m_nextOrder = 1;
};

} // namespace xkbus::core
