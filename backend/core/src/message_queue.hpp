// One Ksock's queue of copies: URGENT copies at the head, the rest at the
// tail, each named by a copy id unique on the bus.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <xkbus/core/bus.hpp>

namespace xkbus::core {

class MessageQueue {
public:
    bool empty() const noexcept { return m_items.empty(); }
    size_t size() const noexcept { return m_items.size(); }
    const QueuedMessage& front() const { return m_items.front(); }
    auto begin() const { return m_items.begin(); }
    auto end() const { return m_items.end(); }

    void push(QueuedMessage item, bool atHead);
    // nullopt if that copy is not queued here.
    std::optional<QueuedMessage> take(uint64_t copyId);
    QueuedMessage takeFront();
    // Removes every copy `drop` says yes to, in queue order; returns how many.
    template <class Drop>
    size_t removeIf(Drop&& drop) {
        return std::erase_if(m_items, drop);
    }
    void clear() { m_items.clear(); }

private:
    std::deque<QueuedMessage> m_items;
};

} // namespace xkbus::core
