// The ALL_OR_WAIT sending state of a bus: which Ksocks have a send blocked
// on a full queue, in the order they blocked, so the oldest is retried first.
#pragma once

#include <vector>
#include <xkbus/common/kbus_types.hpp>

namespace xkbus::core {

class BlockedSenders {
public:
    bool empty() const noexcept { return m_order.empty(); }
    void add(KsockId id) { m_order.push_back(id); }
    void remove(KsockId id) { std::erase(m_order, id); }
    // Every blocked sender, oldest first; the caller adds back those that stay blocked.
    std::vector<KsockId> takeAll() {
        std::vector<KsockId> all;
        all.swap(m_order);
        return all;
    }

private:
    std::vector<KsockId> m_order;
};

} // namespace xkbus::core
