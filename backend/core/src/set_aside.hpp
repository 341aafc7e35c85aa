// The set-aside list of a bus (KBUS's "unsent unbind events"): replier
// unbind events caused by a close, kept for listeners that had no room, and
// handed to each as soon as it has. Bounded: past the limit the bus "goes
// tragic" and listeners get one $.KBUS.UnbindEventsLost each instead.
// The bus keeps the count and the tragic flag; each Ksock keeps its own
// items, so finding or dropping them never walks another Ksock's.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <xkbus/common/message.hpp>

namespace xkbus::core {

struct SetAsideItem {
    uint64_t via = 0; // the listener binding it is for
    Message msg;
};

// A Ksock's share of the list, oldest first, and whether one of its items
// is the lost marker (it gets at most one).
struct SetAsideShare {
    std::deque<SetAsideItem> items;
    bool lostMarker = false;
    // It missed bind events (it may not hold binds back, and had no room):
    // one $.KBUS.UnbindEventsLost is owed to it, outside the list.
    bool missedEvents = false;
    // NUMMSGS counts what waits for it.
    uint32_t count() const noexcept {
        return static_cast<uint32_t>(items.size()) + (missedEvents ? 1 : 0);
    }
};

class SetAsideList {
public:
    // Every item looked at is counted in *steps (the bus's work counter).
    explicit SetAsideList(uint64_t* steps) : m_steps(steps) {}

    size_t size() const noexcept { return m_total; }
    bool lost() const noexcept { return m_lost; }
    void markLost() noexcept { m_lost = true; }

    void add(SetAsideShare& share, SetAsideItem item);
    // The share's oldest item, removed from the list.
    std::optional<SetAsideItem> takeFirst(SetAsideShare& share);
    // Drops the share's items (only those for binding `via`, if given).
    void drop(SetAsideShare& share, std::optional<uint64_t> via);

private:
    void forgetOne(const SetAsideItem& item, SetAsideShare& share);

    size_t m_total = 0;
    bool m_lost = false;
    uint64_t* m_steps;
};

} // namespace xkbus::core
