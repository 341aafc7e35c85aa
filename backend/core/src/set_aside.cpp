#include "set_aside.hpp"

namespace xkbus::core {

void SetAsideList::add(SetAsideShare& share, SetAsideItem item) {
    if (item.msg.name() == NAME_UNBIND_EVENTS_LOST) {
        share.lostMarker = true;
    }
    share.items.push_back(std::move(item));
    ++m_total;
}

void SetAsideList::forgetOne(const SetAsideItem& item, SetAsideShare& share) {
    if (item.msg.name() == NAME_UNBIND_EVENTS_LOST) {
        share.lostMarker = false;
    }
    if (--m_total == 0) {
        m_lost = false; // the list has drained: events flow again
    }
}

std::optional<SetAsideItem> SetAsideList::takeFirst(SetAsideShare& share) {
    if (share.items.empty()) {
        return std::nullopt;
    }
    ++*m_steps;
    SetAsideItem item = std::move(share.items.front());
    share.items.pop_front();
    forgetOne(item, share);
    return item;
}

void SetAsideList::drop(SetAsideShare& share, std::optional<uint64_t> via) {
    *m_steps += share.items.size();
    std::erase_if(share.items, [&](const SetAsideItem& item) {
        if (via && item.via != *via) {
            return false;
        }
        forgetOne(item, share);
        return true;
    });
}

} // namespace xkbus::core
