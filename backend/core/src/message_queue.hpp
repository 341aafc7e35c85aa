// One Ksock's queue of copies: URGENT copies at the head, the rest at the
// tail, each named by a copy id unique on the bus.
//
// Copy ids grow with every push, and every push goes to one end, so the
// queue is two sorted runs: the urgent copies at the head (ids falling from
// the front) and the rest (ids rising to the back). A copy is found by a
// binary search of each run, never by a scan. A copy taken from the middle
// leaves a gap that is skipped; gaps at either end are dropped at once, and
// the queue is compacted before gaps outnumber copies, so a pop by id costs
// O(log n) (amortised) and the memory stays under twice the queue.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <xkbus/core/bus.hpp>

namespace xkbus::core {

class MessageQueue {
public:
    // Every copy looked at is counted in *steps (the bus's work counter).
    explicit MessageQueue(uint64_t* steps) : m_steps(steps) {}

    bool empty() const noexcept { return m_live == 0; }
    size_t size() const noexcept { return m_live; }
    const QueuedMessage& front() const { return m_slots.front().item; }

    // Head first.
    template <class Visit>
    void forEach(Visit&& visit) const {
        for (const Slot& s : m_slots) {
            if (s.live) {
                visit(s.item);
            }
        }
    }

    void push(QueuedMessage item, bool atHead);
    // nullopt if that copy is not queued here.
    std::optional<QueuedMessage> take(uint64_t copyId);
    QueuedMessage takeFront();
    // Removes every copy `drop` says yes to, in queue order; returns how many.
    // It looks at the whole queue: an unbind costs the unbinder's own queue.
    template <class Drop>
    size_t removeIf(Drop&& drop) {
        *m_steps += m_slots.size();
        const size_t before = m_live;
        size_t index = 0;
        size_t urgentKept = 0;
        std::erase_if(m_slots, [&](Slot& s) {
            const bool wasUrgent = index++ < m_urgent;
            const bool gone = !s.live || drop(static_cast<const QueuedMessage&>(s.item));
            if (s.live && gone) {
                --m_live;
            }
            urgentKept += (wasUrgent && !gone) ? 1 : 0;
            return gone;
        });
        m_urgent = urgentKept;
        return before - m_live;
    }
    void clear();

private:
    struct Slot {
        QueuedMessage item;
        bool live = true;
    };
    std::optional<size_t> indexOf(uint64_t copyId) const;
    void dropDeadEnds();
    void compactIfSparse();

    std::deque<Slot> m_slots;
    size_t m_urgent = 0; // slots [0, m_urgent) were pushed at the head
    size_t m_live = 0;
    uint64_t* m_steps;
};

} // namespace xkbus::core
