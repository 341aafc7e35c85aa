#include "message_queue.hpp"

#include <algorithm>

namespace xkbus::core {

void MessageQueue::push(QueuedMessage item, bool atHead) {
    if (atHead) {
        m_items.push_front(std::move(item));
    } else {
        m_items.push_back(std::move(item));
    }
}

std::optional<QueuedMessage> MessageQueue::take(uint64_t copyId) {
    auto at = std::find_if(m_items.begin(), m_items.end(),
                           [&](const QueuedMessage& item) { return item.copyId == copyId; });
    if (at == m_items.end()) {
        return std::nullopt;
    }
    QueuedMessage item = std::move(*at);
    m_items.erase(at);
    return item;
}

QueuedMessage MessageQueue::takeFront() {
    QueuedMessage item = std::move(m_items.front());
    m_items.pop_front();
    return item;
}

} // namespace xkbus::core
