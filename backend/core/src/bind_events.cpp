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

Result<uint32_t> Bus::verbose(KsockId id, uint32_t request) {
    auto found = m->findOrFail(id);
    if (!found) {
        return fail(found.error());
    }
    if (request != QUERY && !(*found)->options.may.busSettings) {
        return fail(Errc::PERMISSION_DENIED);
    }
    return verbose(request);
}

Result<uint32_t> Bus::Impl::reportReplierBinds(KsockId id, uint32_t request) {
    auto found = findOrFail(id);
    if (!found) {
        return fail(found.error());
    }
    Ksock& k = **found;
    if (request != QUERY && !k.options.may.busSettings) {
        return fail(Errc::PERMISSION_DENIED);
    }
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

// Who gets a replier bind event, and what becomes of a listener with no room
// for it. One that may hold binds back (Rights::blockBinds, KBUS's rule)
// refuses a bind's or an unbind's event, and the (un)bind with it; a close
// cannot be refused, so that listener finds the event on the set-aside list
// once it has room (KBUS set it aside for every listener, so one with an
// empty queue never saw it until something else arrived). Any other listener
// with no room misses the event and then finds one $.KBUS.UnbindEventsLost:
// it can neither hold a bind back nor fill the bus's set-aside list.
Result<void> Bus::Impl::deliverBindEvent(const Ksock& binder, bool isBind, std::string_view name,
                                         bool refusable) {
    Message event = busMessage(NAME_REPLIER_BIND_EVENT, FLAG_SYNTHETIC | FLAG_ALL_OR_FAIL,
                               encodeBindEventData(isBind, binder.id, name));
    const uint64_t bytes = event.entireLength();
    bindingIndex.route(NAME_REPLIER_BIND_EVENT, scratch.route);
    scratch.accepted.clear();
    std::vector<const Binding*> full;
    std::vector<Ksock*> missed;
    const uint64_t stamp = ledger->nextStamp();
    for (const Binding* b : scratch.route.listeners) {
        Ksock& k = *b->ksock;
        if (k.onlyOnce && k.plan.stamp == stamp && k.plan.copies > 0) {
            continue;
        }
        const bool room = reserve(k, stamp, 1, bytes) == Room::YES;
        ++k.plan.copies;
        if (room) {
            scratch.accepted.push_back(b);
        } else if (!k.options.may.blockBinds) {
            missed.push_back(&k);
        } else if (refusable) {
            return fail(Errc::TRY_AGAIN); // nothing has changed yet
        } else {
            full.push_back(b);
        }
    }
    event.header.id = nextMessageId();
    for (const Binding* b : scratch.accepted) {
        push(*b->ksock, event, b->seq, false);
    }
    setAsideForFull(event, full);
    for (Ksock* k : missed) {
        k->setAside.missedEvents = true;
        refillFromSetAside(*k); // at once if only its group was full
    }
    return {};
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
    if (k.setAside.missedEvents && !k.full()) {
        Message lost = busMessage(NAME_UNBIND_EVENTS_LOST, FLAG_SYNTHETIC);
        lost.header.id = nextMessageId();
        push(k, lost, 0, false);
        k.setAside.missedEvents = false;
    }
    while (!k.full()) {
        auto item = setAside.takeFirst(k.setAside);
        if (!item) {
            break;
        }
        push(k, item->msg, item->via, false);
    }
}

} // namespace xkbus::core
