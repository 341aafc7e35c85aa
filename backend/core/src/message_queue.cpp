#include "message_queue.hpp"

#include <algorithm>

namespace xkbus::core {

void MessageQueue::push(QueuedMessage item, bool atHead) {
    if (atHead) {
        m_slots.push_front(Slot{std::move(item), true});
        ++m_urgent;
    } else {
        m_slots.push_back(Slot{std::move(item), true});
    }
    ++m_live;
}

std::optional<size_t> MessageQueue::indexOf(uint64_t copyId) const {
    ++*m_steps;
    if (!m_slots.empty() && m_slots.front().item.copyId == copyId) {
        return 0; // a client popping its mirror names the head, nearly always
    }
    const auto urgentEnd = m_slots.begin() + static_cast<std::ptrdiff_t>(m_urgent);
    auto at = std::lower_bound(m_slots.begin(), urgentEnd, copyId,
                               [](const Slot& s, uint64_t id) { return s.item.copyId > id; });
    if (at == urgentEnd || at->item.copyId != copyId) {
        at = std::lower_bound(urgentEnd, m_slots.end(), copyId,
                              [](const Slot& s, uint64_t id) { return s.item.copyId < id; });
    }
    if (at == m_slots.end() || at->item.copyId != copyId || !at->live) {
        return std::nullopt;
    }
    return static_cast<size_t>(at - m_slots.begin());
}

std::optional<QueuedMessage> MessageQueue::take(uint64_t copyId) {
    const auto index = indexOf(copyId);
    if (!index) {
        return std::nullopt;
    }
    Slot& slot = m_slots[*index];
    QueuedMessage item = std::move(slot.item);
    slot.item.msg = Message{}; // a gap holds no message, only its copy id
    slot.live = false;
    --m_live;
    dropDeadEnds();
    compactIfSparse();
    return item;
}

QueuedMessage MessageQueue::takeFront() {
    ++*m_steps;
    QueuedMessage item = std::move(m_slots.front().item);
    m_slots.front().live = false;
    --m_live;
    dropDeadEnds();
    return item;
}

void MessageQueue::dropDeadEnds() {
    while (!m_slots.empty() && !m_slots.front().live) {
        m_slots.pop_front();
        m_urgent -= m_urgent > 0 ? 1 : 0;
    }
    while (!m_slots.empty() && !m_slots.back().live) {
        m_slots.pop_back();
    }
    m_urgent = std::min(m_urgent, m_slots.size());
}

void MessageQueue::compactIfSparse() {
    const size_t gaps = m_slots.size() - m_live;
    if (gaps > m_live + 16) {
        (void)removeIf([](const QueuedMessage&) { return false; });
    }
}

void MessageQueue::clear() {
    *m_steps += m_slots.size();
    m_slots.clear();
    m_urgent = 0;
    m_live = 0;
}

} // namespace xkbus::core
