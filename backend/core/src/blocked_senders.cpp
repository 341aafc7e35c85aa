#include "blocked_senders.hpp"

namespace xkbus::core {

namespace {

template <class Map, class Key>
void eraseWaiter(Map& lists, const Key& key, uint64_t order) {
    auto it = lists.find(key);
    if (it == lists.end()) {
        return;
    }
    it->second.erase(order);
    if (it->second.empty()) {
        lists.erase(it);
    }
}

template <class Map, class Key>
const std::map<uint64_t, KsockId>* listOf(const Map& lists, const Key& key) {
    auto it = lists.find(key);
    return it == lists.end() ? nullptr : &it->second;
}

} // namespace

void BlockedSenders::unlink(const PendingSend& send) {
    const Obstacle& o = send.waitingFor;
    if (o.group) {
        eraseWaiter(m_onGroup, *o.group, send.order);
    } else if (o.queue != 0) {
        eraseWaiter(m_onQueue, o.queue, send.order);
    }
    if (o.replier != 0) {
        eraseWaiter(m_onReplier, o.replier, send.order);
    }
}

void BlockedSenders::wait(KsockId sender, PendingSend& send, const Obstacle& obstacle) {
    if (send.order == 0) {
        send.order = m_nextOrder++;
    } else {
        unlink(send);
    }
    send.waitingFor = obstacle;
    if (obstacle.group) {
        m_onGroup[*obstacle.group].emplace(send.order, sender);
    } else if (obstacle.queue != 0) {
        m_onQueue[obstacle.queue].emplace(send.order, sender);
    }
    if (obstacle.replier != 0) {
        m_onReplier[obstacle.replier].emplace(send.order, sender);
    }
}

void BlockedSenders::stopWaiting(PendingSend& send) {
    if (send.order != 0) {
        unlink(send);
    }
    send.order = 0;
    send.waitingFor = Obstacle{};
}

void BlockedSenders::earliestAfter(const Waiters* list, uint64_t after,
                                   std::optional<Waiter>& best) {
    if (list == nullptr) {
        return;
    }
    auto it = list->upper_bound(after);
    if (it != list->end() && (!best || it->first < best->order)) {
        best = Waiter{it->first, it->second};
    }
}

std::optional<BlockedSenders::Waiter> BlockedSenders::next(KsockId queue,
                                                           std::optional<uint32_t> group,
                                                           bool queueOpen, bool groupOpen,
                                                           bool dependents, uint64_t after) const {
    std::optional<Waiter> best;
    if (queueOpen) {
        earliestAfter(listOf(m_onQueue, queue), after, best);
    }
    if (group && groupOpen) {
        earliestAfter(listOf(m_onGroup, *group), after, best);
    }
    if (dependents) {
        earliestAfter(listOf(m_onReplier, queue), after, best);
    }
    return best;
}

} // namespace xkbus::core
