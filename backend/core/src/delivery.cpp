// KBUS delivery rules: routing, queue accounting, the reply guarantee and
// ALL_OR_WAIT sends. docs/semantics.md states the rules.
#include "bus_impl.hpp"

namespace xkbus::core {

namespace {

bool hasPlannedCopy(const Ksock& k, uint64_t stamp) {
    return k.plan.stamp == stamp && k.plan.copies > 0;
}

} // namespace

Result<std::optional<Message>> Bus::nextMessage(KsockId id) {
    auto found = m->findOrFail(id);
    if (!found) {
        return fail(found.error());
    }
    Ksock& k = **found;
    if (k.queue.empty()) {
        return std::optional<Message>();
    }
    return std::optional<Message>(m->popped(k, k.queue.takeFront()));
}

Result<Message> Bus::popCopy(KsockId id, uint64_t copyId) {
    auto found = m->findOrFail(id);
    if (!found) {
        return fail(found.error());
    }
    Ksock& k = **found;
    auto item = k.queue.take(copyId);
    if (!item) {
        return fail(Errc::INVALID);
    }
    return m->popped(k, std::move(*item));
}

Result<MsgId> Bus::lastSent(KsockId id) const {
    auto found = m->findOrFail(id);
    if (!found) {
        return fail(found.error());
    }
    return (*found)->lastSent;
}

// ---------------------------------------------------------------- sending

Result<void> Bus::Impl::checkSendable(const Message& msg) const {
    const std::string_view name = msg.name();
    if (name.empty()) {
        return fail(Errc::INVALID);
    }
    if (name.size() > MAX_NAME_LEN) {
        return fail(Errc::NAME_TOO_LONG);
    }
    if ((msg.header.flags & FLAG_ALL_OR_WAIT) != 0 && (msg.header.flags & FLAG_ALL_OR_FAIL) != 0) {
        return fail(Errc::INVALID);
    }
    if (msg.entireLength() > config.maxMessageSize) {
        return fail(Errc::MESSAGE_TOO_BIG);
    }
    if (auto ok = checkMessageName(name); !ok) {
        return ok;
    }
    // KBUS calls a request that is also a reply "undefined"; we refuse it.
    if (msg.isRequest() && msg.isReply()) {
        return fail(Errc::INVALID);
    }
    return {};
}

Result<MsgId> Bus::Impl::send(KsockId id, Message msg) {
    auto found = findOrFail(id);
    if (!found) {
        return fail(found.error());
    }
    Ksock& sender = **found;
    if (!sender.options.writable) {
        return fail(Errc::NOT_OPEN_FOR_WRITE);
    }
    if (sender.sending.msg) {
        return fail(Errc::STILL_SENDING); // the pending message is kept (KBUS freed it)
    }
    if (auto ok = checkSendable(msg); !ok) {
        return fail(ok.error());
    }
    if (msg.header.id.networkId != 0 && !sender.options.may.networkIds) {
        return fail(Errc::PERMISSION_DENIED);
    }
    if (!sender.options.mayMarkSynthetic) {
        msg.header.flags &= ~FLAG_SYNTHETIC;
    }
    msg.header.extra = 0;
    // No id and no "sending" state when the reply could not be queued.
    if (msg.isRequest() && !replySlotFree(sender)) {
        return fail(Errc::NO_REPLY_SLOT);
    }
    msg.header.from = id;
    if (msg.header.id.networkId == 0) {
        msg.header.id = nextMessageId();
    }
    sender.lastSent = msg.header.id;

    auto delivered = deliver(&sender, msg, false);
    if (!delivered) {
        forgetReplyToGoneSender(sender, msg, delivered.error());
        if (delivered.error() == Errc::TRY_AGAIN) {
            return block(sender, std::move(msg));
        }
        return fail(delivered.error());
    }
    return sender.lastSent;
}

// Keeps an ALL_OR_WAIT message that met a full queue, to retry it: TRY_AGAIN,
// unless its group may hold no more blocked messages.
Result<MsgId> Bus::Impl::block(Ksock& sender, Message msg) {
    if (auto ok = chargePendingSend(sender); !ok) {
        return fail(ok.error());
    }
    // Hold the reply slot now, so the reply (or a status) always fits.
    if (msg.isRequest()) {
        awaitReply(sender, msg.header.id);
    }
    sender.sending.msg = std::move(msg);
    waitOn(sender, scratch.obstacle);
    return fail(Errc::TRY_AGAIN);
}

Result<void> Bus::Impl::deliver(Ksock* sender, const Message& msg, bool slotReserved) {
    if (auto ok = planDelivery(sender, msg, slotReserved, scratch); !ok) {
        return ok;
    }
    commitDelivery(sender, msg, slotReserved, scratch);
    return {};
}

// Decides every recipient and checks every queue before touching any, so a
// failed send delivers nothing.
Result<void> Bus::Impl::planDelivery(Ksock* sender, const Message& msg, bool slotReserved,
                                     Plan& plan) {
    const bool waitForRoom = (msg.header.flags & FLAG_ALL_OR_WAIT) != 0;
    const bool failIfFull = (msg.header.flags & FLAG_ALL_OR_FAIL) != 0;
    const Errc fullError = waitForRoom ? Errc::TRY_AGAIN : Errc::QUEUE_FULL;
    const uint64_t bytes = msg.entireLength();

    bindingIndex.route(msg.name(), plan.route);
    plan.replyTarget = nullptr;
    plan.replier = nullptr;
    plan.accepted.clear();
    plan.obstacle = Obstacle{};
    const uint64_t stamp = ledger->nextStamp();

    if (msg.isRequest()) {
        if (plan.route.replier == nullptr) {
            return fail(Errc::NO_RECIPIENT);
        }
        if (sender != nullptr && !slotReserved) {
            reserve(*sender, stamp, 1, 0); // send() checked the room (NO_REPLY_SLOT)
        }
    }
    if (msg.isReply()) {
        if (auto ok = planReply(sender, msg, stamp, fullError, plan); !ok) {
            return ok;
        }
    }
    if (msg.isRequest()) {
        const Binding* replier = plan.route.replier;
        if (msg.header.to != 0 && replier->owner != msg.header.to) {
            return fail(Errc::WRONG_REPLIER);
        }
        plan.obstacle.replier = replier->owner;
        if (const Room room = reserve(*replier->ksock, stamp, 1, bytes); room != Room::YES) {
            return refuseFull(*replier->ksock, room, fullError, plan);
        }
        ++replier->ksock->plan.copies;
        plan.replier = replier;
    }
    for (const Binding* b : plan.route.listeners) {
        Ksock& k = *b->ksock;
        if (k.onlyOnce && hasPlannedCopy(k, stamp)) {
            continue; // it already gets this message (the replier's copy wins)
        }
        if (const Room room = reserve(k, stamp, 1, bytes); room != Room::YES) {
            if (waitForRoom || failIfFull) {
                return refuseFull(k, room, fullError, plan);
            }
            continue; // by default a full listener just misses the message
        }
        ++k.plan.copies;
        plan.accepted.push_back(b);
    }
    return {};
}

// Notes what was full, for a send that will wait for room there.
Result<void> Bus::Impl::refuseFull(Ksock& k, Room room, Errc error, Plan& plan) {
    if (room == Room::GROUP_FULL) {
        plan.obstacle.group = k.options.chargeGroup;
    } else {
        plan.obstacle.queue = k.id;
    }
    return fail(error);
}

Result<void> Bus::Impl::planReply(Ksock* sender, const Message& msg, uint64_t stamp, Errc fullError,
                                  Plan& plan) {
    Ksock* target = find(msg.header.to);
    if (target == nullptr) {
        return fail(Errc::NO_RECIPIENT);
    }
    if (!target->replies.awaits(msg.header.inReplyTo)) {
        return fail(Errc::REPLY_NOT_EXPECTED);
    }
    // Only the Ksock that popped the request may answer it (KBUS let any
    // Ksock do so, which could leave the real replier's answer refused).
    if (sender != nullptr &&
        !sender->replies.owes(OwedReply{msg.header.inReplyTo, msg.header.to})) {
        return fail(Errc::REPLY_NOT_EXPECTED);
    }
    // The reply fills the place held since the request was sent, so it fits
    // the queue even if the sender has lowered its limit since (KBUS refused
    // it with EBUSY then). Its bytes were not known then: they need room in
    // the sender's group like any copy's.
    if (const Room room = reserve(*target, stamp, 0, msg.entireLength()); room != Room::YES) {
        return refuseFull(*target, room, fullError, plan);
    }
    ++target->plan.copies;
    plan.replyTarget = target;
    return {};
}

void Bus::Impl::commitDelivery(Ksock* sender, const Message& msg, bool slotReserved,
                               const Plan& plan) {
    if (plan.replyTarget != nullptr) {
        push(*plan.replyTarget, msg, 0, false);
        // Only the original sender's copy settles the request (KBUS issue 69).
        settleReply(*plan.replyTarget, msg.header.inReplyTo);
        if (sender != nullptr) {
            sender->replies.forgive(OwedReply{msg.header.inReplyTo, msg.header.to});
        }
    }
    if (plan.replier != nullptr) {
        push(*plan.replier->ksock, msg, plan.replier->seq, true);
        if (sender != nullptr && !slotReserved) {
            awaitReply(*sender, msg.header.id);
        }
    }
    for (const Binding* b : plan.accepted) {
        push(*b->ksock, msg, b->seq, false);
    }
}

void Bus::Impl::push(Ksock& k, const Message& msg, uint64_t via, bool wantYouToReply) {
    QueuedMessage item{msg, via, nextCopyId++};
    charge(k, msg);
    if (wantYouToReply) {
        item.msg.header.flags |= FLAG_WANT_YOU_TO_REPLY;
    } else {
        item.msg.header.flags &= ~FLAG_WANT_YOU_TO_REPLY;
    }
    // URGENT goes to the head, so two urgent messages come out newest first.
    const bool urgent = (msg.header.flags & FLAG_URGENT) != 0;
    record(urgent ? QueueEvent::Kind::PUSHED_HEAD : QueueEvent::Kind::PUSHED_TAIL, k, item.copyId,
           &item.msg);
    k.queue.push(std::move(item), urgent);
    ++copiesQueued;
}

// A status stands in for the reply to `request`. It goes only to the
// request's sender, into the slot reserved at send time, and only if that
// sender still waits: a request never gets two answers.
void Bus::Impl::pushStatus(KsockId to, KsockId from, MsgId request, std::string_view name) {
    Ksock* k = find(to);
    if (k == nullptr || !k->replies.awaits(request)) {
        return;
    }
    Message status = busMessage(name, FLAG_SYNTHETIC);
    status.header.id = nextMessageId();
    status.header.from = from;
    status.header.to = to;
    status.header.inReplyTo = request;
    push(*k, status, 0, false);
    settleReply(*k, request);
}

void Bus::Impl::record(QueueEvent::Kind kind, const Ksock& k, uint64_t copyId, const Message* msg) {
    if (config.recordQueueEvents) {
        events.push_back(QueueEvent{kind, k.id, copyId, msg != nullptr ? *msg : Message{}});
    }
}

// Claims `slots` new places in k's queue (and its group's) and `bytes` in its
// group for the send being planned (stamp), on top of what the plan already
// claimed there. A reply claims no place, only bytes: its place is held.
Room Bus::Impl::reserve(Ksock& k, uint64_t stamp, uint32_t slots, uint64_t bytes) {
    if (k.plan.stamp != stamp) {
        k.plan = PlanScratch{stamp, 0, 0};
    }
    GroupAccount& g = *k.account;
    if (g.planStamp != stamp) {
        g.planStamp = stamp;
        g.plannedMessages = 0;
        g.plannedBytes = 0;
    }
    if (slots != 0 && k.slotsUsed() + k.plan.slots + slots > k.maxMessages) {
        return Room::QUEUE_FULL;
    }
    const TenantLimits& limits = limitsOf(k);
    if (uint64_t{g.used.queuedMessages} + g.plannedMessages + slots > limits.queuedMessages ||
        g.used.queuedBytes + g.plannedBytes + bytes > limits.queuedBytes) {
        return Room::GROUP_FULL;
    }
    k.plan.slots += slots;
    g.plannedMessages += slots;
    g.plannedBytes += bytes;
    return Room::YES;
}

Result<void> Bus::Impl::discard(KsockId id) {
    auto found = findOrFail(id);
    if (!found) {
        return fail(found.error());
    }
    Ksock& k = **found;
    if (k.sending.msg) {
        if (k.sending.msg->isRequest()) {
            settleReply(k, k.sending.msg->header.id); // nobody will answer it now
        }
        stopWaiting(k);
        k.sending.msg.reset();
        --k.account->used.pendingSends;
        roomMayHaveAppeared(k);
    }
    return {};
}

// A blocked ALL_OR_WAIT send is retried, oldest first, when what it waits
// for may have room: the queue that was full (or its charge group), or its
// replier, if that closes or drops it by unbinding. After a pop (Change::ROOM) the routes
// are as they were, so once the queue is full again nobody waiting on it can
// get through and the rest are not tried. KBUS retried from poll(); a daemon
// retries for the sender, whose fd turns writable when it is done.
void Bus::Impl::retryWaiters(KsockId queue, uint32_t group, Change change) {
    const bool routesChanged = change != Change::ROOM;
    const bool replierLeft = change == Change::BINDINGS;
    uint64_t after = 0;
    for (;;) {
        const Ksock* k = find(queue);
        const bool queueOpen = routesChanged || (k != nullptr && !k->full());
        const bool groupOpen = groupHasRoom(ledger->find(group));
        auto next = blocked.next(queue, group, queueOpen, groupOpen, replierLeft, after);
        if (!next) {
            break;
        }
        after = next->order;
        retry(*find(next->sender));
    }
    // Sends on other buses may wait for this group too.
    if (groupHasRoom(ledger->find(group))) {
        ledger->roomIn(group, index);
    }
}

// Another bus made room in `group`: the sends here waiting for it get their turn.
void Bus::Impl::retryGroupWaiters(uint32_t group) {
    uint64_t after = 0;
    while (groupHasRoom(ledger->find(group))) {
        auto next = blocked.next(0, group, false, true, false, after);
        if (!next) {
            return;
        }
        after = next->order;
        retry(*find(next->sender));
    }
}

void Bus::Impl::retry(Ksock& sender) {
    ++counted.retries;
    auto outcome = deliver(&sender, *sender.sending.msg, true);
    if (!outcome && outcome.error() == Errc::TRY_AGAIN) {
        waitOn(sender, scratch.obstacle);
        return;
    }
    finishPending(sender, outcome);
}

void Bus::Impl::finishPending(Ksock& k, const Result<void>& outcome) {
    stopWaiting(k);
    Message msg = std::move(*k.sending.msg);
    k.sending.msg.reset();
    --k.account->used.pendingSends;
    if (!outcome && msg.isRequest()) {
        const bool replierGone = outcome.error() == Errc::NO_RECIPIENT;
        pushStatus(k.id, 0, msg.header.id,
                   replierGone ? NAME_REPLIER_DISAPPEARED : NAME_ERROR_SENDING);
    }
    if (!outcome) {
        forgetReplyToGoneSender(k, msg, outcome.error());
    }
    record(QueueEvent::Kind::SEND_FINISHED, k, 0, nullptr);
}

// A reply whose asker has closed can never be delivered: the replier no longer
// owes it (KBUS kept counting it in UNREPLIEDTO until the replier closed).
void Bus::Impl::forgetReplyToGoneSender(Ksock& replier, const Message& msg, Errc error) {
    if (msg.isReply() && error == Errc::NO_RECIPIENT) {
        replier.replies.forgive(OwedReply{msg.header.inReplyTo, msg.header.to});
    }
}

void Bus::Impl::roomMayHaveAppeared(Ksock& k, Change change) {
    refillFromSetAside(k);
    retryWaiters(k.id, k.options.chargeGroup, change);
}

// ---------------------------------------------------------------- receiving

// Popping, not reading, is what makes the replier owe the answer: a reader
// that dies mid-read still gets its requests reported as Ignored.
Message Bus::Impl::popped(Ksock& k, QueuedMessage item) {
    uncharge(k, item.msg);
    ++copiesPopped;
    if (item.msg.wantsYouToReply()) {
        k.replies.owe(OwedReply{item.msg.header.id, item.msg.header.from});
    }
    roomMayHaveAppeared(k);
    return std::move(item.msg);
}

} // namespace xkbus::core
