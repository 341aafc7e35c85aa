// The reply bookkeeping of one Ksock, from both ends: the requests it sent
// that still await an answer (each holds a place in its queue), and the
// requests it popped and owes an answer to, in the order popped. Every reply
// is checked against both, so both are indexed; ordered containers, since the
// ids come from other tenants and must not be able to pick hash collisions.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <vector>
#include <xkbus/core/bus.hpp>

namespace xkbus::core {

class PendingReplies {
public:
    size_t awaitingCount() const noexcept { return m_awaiting.size(); }
    bool awaits(MsgId request) const { return m_awaiting.contains(request); }
    void await(MsgId request) { m_awaiting.insert(request); }
    // Forgets one wait for `request` (ids with a network id may repeat).
    bool settle(MsgId request);

    size_t owedCount() const noexcept { return m_owed.size(); }
    bool owes(const OwedReply& owed) const { return m_owedIndex.contains(owed); }
    void owe(const OwedReply& owed);
    // Forgets the oldest debt equal to `owed`.
    bool forgive(const OwedReply& owed);

    template <class Visit>
    void forEachOwedInOrder(Visit&& visit) const {
        for (const auto& [order, owed] : m_owed) {
            visit(owed);
        }
    }
    std::vector<MsgId> awaitingList() const { return {m_awaiting.begin(), m_awaiting.end()}; }
    std::vector<OwedReply> owedInOrder() const;

private:
    std::multiset<MsgId> m_awaiting;
    std::map<uint64_t, OwedReply> m_owed; // by pop order
    // Equal keys keep their insertion order, so the first is the oldest.
    std::multimap<OwedReply, uint64_t> m_owedIndex;
    uint64_t m_nextOrder = 0;
};

} // namespace xkbus::core
