#include "set_aside.hpp"

#include <algorithm>

namespace xkbus::core {

void SetAsideList::add(SetAsideShare& share, SetAsideItem item) {
    if (item.msg.name() == NAME_UNBIND_EVENTS_LOST) {
        share.lostMarker = true;
    }
    ++share.count;
    m_items.push_back(std::move(item));
}

void SetAsideList::forgetOne(const SetAsideItem& item, SetAsideShare& share) {
    --share.count;
    if (item.msg.name() == NAME_UNBIND_EVENTS_LOST) {
        share.lostMarker = false;
    }
}

void SetAsideList::clearLostIfEmpty() noexcept {
    if (m_items.empty()) {
        m_lost = false;
    }
}

std::optional<SetAsideItem> SetAsideList::takeFirstFor(KsockId ksock, SetAsideShare& share) {
    auto it = std::find_if(m_items.begin(), m_items.end(),
                           [&](const SetAsideItem& item) { return item.ksock == ksock; });
    if (it == m_items.end()) {
        return std::nullopt;
    }
    SetAsideItem item = std::move(*it);
    m_items.erase(it);
    forgetOne(item, share);
    clearLostIfEmpty();
    return item;
}

void SetAsideList::dropFor(KsockId ksock, std::optional<uint64_t> via, SetAsideShare* share) {
    std::erase_if(m_items, [&](const SetAsideItem& item) {
        if (item.ksock != ksock || (via && item.via != *via)) {
            return false;
        }
        if (share != nullptr) {
            forgetOne(item, *share);
        }
        return true;
    });
    clearLostIfEmpty();
}

} // namespace xkbus::core
