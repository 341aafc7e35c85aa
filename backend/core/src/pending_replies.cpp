#include "pending_replies.hpp"

namespace xkbus::core {

bool PendingReplies::settle(MsgId request) {
    auto it = m_awaiting.find(request);
    if (it == m_awaiting.end()) {
        return false;
    }
    m_awaiting.erase(it);
    return true;
}

void PendingReplies::owe(const OwedReply& owed) {
    const uint64_t order = m_nextOrder++;
    m_owed.emplace(order, owed);
    m_owedIndex.emplace(owed, order);
}

bool PendingReplies::forgive(const OwedReply& owed) {
    auto it = m_owedIndex.lower_bound(owed); // the first of equal keys: the oldest
    if (it == m_owedIndex.end() || it->first != owed) {
        return false;
    }
    m_owed.erase(it->second);
    m_owedIndex.erase(it);
    return true;
}

std::vector<OwedReply> PendingReplies::owedInOrder() const {
    std::vector<OwedReply> out;
    out.reserve(m_owed.size());
    forEachOwedInOrder([&](const OwedReply& o) { out.push_back(o); });
    return out;
}

} // namespace xkbus::core
