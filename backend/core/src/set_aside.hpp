// The set-aside list of a bus (KBUS's "unsent unbind events"): replier
// unbind events caused by a close, kept for listeners that had no room, and
// handed to each as soon as it has. Bounded: past the limit the bus "goes
// tragic" and listeners get one $.KBUS.UnbindEventsLost each instead.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <xkbus/common/message.hpp>

namespace xkbus::core {

struct SetAsideItem {
    KsockId ksock = 0;
    uint64_t via = 0; // the listener binding it is for
    Message msg;
};

// A Ksock's share of the list: how many items are its, and whether one of
// them is the lost marker (it gets at most one).
struct SetAsideShare {
    uint32_t count = 0;
    bool lostMarker = false;
};

class SetAsideList {
public:
    size_t size() const noexcept { return m_items.size(); }
    bool lost() const noexcept { return m_lost; }
    void markLost() noexcept { m_lost = true; }

    void add(SetAsideShare& share, SetAsideItem item);
    // The oldest item for `ksock`, removed from the list.
    std::optional<SetAsideItem> takeFirstFor(KsockId ksock, SetAsideShare& share);
    // Drops the items for `ksock` (only those for binding `via`, if given).
    // share is null when the Ksock is already gone.
    void dropFor(KsockId ksock, std::optional<uint64_t> via, SetAsideShare* share);

private:
    void forgetOne(const SetAsideItem& item, SetAsideShare& share);
    void clearLostIfEmpty() noexcept;

    std::deque<SetAsideItem> m_items;
    bool m_lost = false;
};

} // namespace xkbus::core
