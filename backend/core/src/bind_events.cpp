// Replier bind events ($.KBUS.ReplierBindEvent) and the set-aside list that
// keeps the unbind events a close could not deliver at once.
#include "bus_impl.hpp"

namespace xkbus::core {

namespace {

Result<uint32_t> applySwitch(bool& setting, uint32_t request) {
    const uint32_t previous = setting ? 1 : 0;
    switch (request) {
    case 0:
        setting = false;
        break;
    case 1:
        setting = true;
        break;
    case QUERY:
        break;
    default:
        return fail(Errc::INVALID);
    }
    return previous;
}

} // namespace

Result<uint32_t> Bus::onlyOnce(KsockId id, uint32_t request) {
    auto found = m->findOrFail(id);
    if (!found) {
        return fail(found.error());
    }
    return applySwitch((*found)->onlyOnce, request);
}

Result<uint32_t> Bus::verbose(uint32_t request) {
    return applySwitch(m->verboseOn, request);
}

Result<uint32_t> Bus::Impl::reportReplierBinds(KsockId id, uint32_t request) {
    auto found = findOrFail(id);
    if (!found) {
        return fail(found.error());
    }
    Ksock& k = **found;
    auto previous = applySwitch(reportReplierBindsOn, request);
    if (!previous || request != 1) {
        return previous;
    }
    // Tell the caller (a Limpet, typically) about the repliers already bound,
    // newest first. If its queue fills, the switch stays on (as KBUS); the
    // walk stops there, so its cost is what the caller can take.
    bool full = false;
    bindingIndex.forEachReplierNewestFirst([&](const Binding& b) {
        Message event = busMessage(NAME_REPLIER_BIND_EVENT, FLAG_SYNTHETIC | FLAG_ALL_OR_FAIL,
                                   encodeBindEventData(true, b.owner, b.name));
        if (reserve(k, ledger->nextStamp(), 1, event.entireLength()) != Room::YES) {
            full = true;
            return false;
        }
        event.header.id = nextMessageId();
        push(k, event, 0, false);
        return true;
    });
    if (full) {
        return fail(Errc::QUEUE_FULL);
    }
    return previous;
}

Result<void> Bus::Impl::reportBindEvent(const Ksock& binder, bool isBind, std::string_view name) {
    Message event = busMessage(NAME_REPLIER_BIND_EVENT, FLAG_SYNTHETIC | FLAG_ALL_OR_FAIL,
                               encodeBindEventData(isBind, binder.id, name));
    if (auto ok = planDelivery(nullptr, event, false, scratch); !ok) {
        return fail(Errc::TRY_AGAIN); // a listener is full; the (un)bind is refused
    }
    event.header.id = nextMessageId();
    commitDelivery(nullptr, event, false, scratch);
    return {};
}

// A closing Ksock cannot be refused its unbind, so its events must not be
// lost either: listeners with room get the event now, full ones find it on
// the set-aside list once they make room. KBUS set the event aside for every
// listener, so one with an empty queue never saw it until something else
// arrived.
void Bus::Impl::reportUnbindOnClose(const Ksock& binder, std::string_view name) {
    Message event = busMessage(NAME_REPLIER_BIND_EVENT, FLAG_SYNTHETIC | FLAG_ALL_OR_FAIL,
                               encodeBindEventData(false, binder.id, name));
    if (planDelivery(nullptr, event, false, scratch)) {
        event.header.id = nextMessageId();
        commitDelivery(nullptr, event, false, scratch);
        return;
    }
    event.header.id = nextMessageId();
    const uint64_t stamp = ledger->nextStamp();
    std::vector<const Binding*> full;
    for (const Binding* b : scratch.route.listeners) {
        Ksock& k = *b->ksock;
        if (k.onlyOnce && k.plan.stamp == stamp && k.plan.copies > 0) {
            continue;
        }
        const bool room = reserve(k, stamp, 1, event.entireLength()) == Room::YES;
        ++k.plan.copies;
        if (room) {
            push(k, event, b->seq, false);
        } else {
            full.push_back(b);
        }
    }
    setAsideForFull(event, full);
}

void Bus::Impl::setAsideForFull(const Message& event, const std::vector<const Binding*>& full) {
    if (setAside.lost() || setAside.size() + full.size() > config.maxUnsentUnbindEvents) {
        setAside.markLost();
        for (const Binding* b : full) {
            if (!b->ksock->setAside.lostMarker) {
                Message lost = busMessage(NAME_UNBIND_EVENTS_LOST, FLAG_SYNTHETIC);
                lost.header.id = nextMessageId();
                setAside.add(b->ksock->setAside, SetAsideItem{b->seq, lost});
            }
        }
        return;
    }
    for (const Binding* b : full) {
        setAside.add(b->ksock->setAside, SetAsideItem{b->seq, event});
    }
}

void Bus::Impl::refillFromSetAside(Ksock& k) {
    while (!k.full()) {
        auto item = setAside.takeFirst(k.setAside);
        if (!item) {
            break;
        }
        push(k, item->msg, item->via, false);
    }
}

} // namespace xkbus::core
