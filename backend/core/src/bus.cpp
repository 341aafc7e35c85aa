// KBUS delivery rules: routing, queue accounting, the reply guarantee,
// ALL_OR_WAIT sends, replier bind events and their set-aside list.
// docs/semantics.md states the rules; comments here say why the code is shaped
// the way it is.
#include <algorithm>
#include <cassert>
#include <xkbus/core/bus.hpp>

namespace xkbus::core {

struct Bus::Plan {
    Route route;
    Ksock* replyTarget = nullptr;
    const Binding* replier = nullptr;
    std::vector<const Binding*> accepted; // listener bindings that get a copy
};

namespace {

template <class T>
bool eraseFirst(std::vector<T>& v, const T& value) {
    auto it = std::find(v.begin(), v.end(), value);
    if (it == v.end()) {
        return false;
    }
    v.erase(it);
    return true;
}

bool hasPlannedCopy(const Ksock& k, uint64_t stamp) {
    return k.planStamp == stamp && k.plannedCopies > 0;
}

uint64_t copyBytes(const Message& msg) noexcept {
    return entireMessageLength(msg.name().size(), msg.data().size());
}

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

Bus::Bus(uint32_t index, BusConfig config)
    : m_index(index), m_config(config), m_plan(std::make_unique<Plan>()) {}

Bus::~Bus() = default;

// ---------------------------------------------------------------- lookups

Ksock* Bus::find(KsockId id) const {
    auto it = m_ksocks.find(id);
    return it == m_ksocks.end() ? nullptr : it->second.get();
}

Result<Ksock*> Bus::findOrFail(KsockId id) const {
    Ksock* k = find(id);
    if (k == nullptr) {
        return fail(Errc::INVALID);
    }
    return k;
}

MsgId Bus::nextMessageId() {
    const uint32_t serial = m_nextSerial++;
    if (m_nextSerial == 0) {
        m_nextSerial = 1; // {0,0} means "no id"
    }
    return MsgId{0, serial};
}

Message Bus::busMessage(std::string_view name, uint32_t flags, std::vector<std::byte> data) {
    Message m;
    m.header.flags = flags;
    m.body = MessageBody::copyOf(name, data);
    return m;
}

// ---------------------------------------------------------------- open and close

Result<KsockId> Bus::open(OpenOptions options) {
    while (m_nextKsockId == 0 || m_ksocks.contains(m_nextKsockId)) {
        ++m_nextKsockId; // ids are not reused while open; 0 is the bus itself
    }
    const KsockId id = m_nextKsockId++;
    auto k = std::make_unique<Ksock>();
    k->id = id;
    k->options = options;
    k->maxMessages = m_config.defaultMaxMessages;
    k->charge = &m_charges[options.chargeGroup];
    m_ksocks.emplace(id, std::move(k));
    return id;
}

Result<void> Bus::close(KsockId id) {
    auto found = findOrFail(id);
    if (!found) {
        return fail(found.error());
    }
    Ksock& k = **found;

    // Requests still queued here will never be read: GoneAway. A request it
    // sent to itself needs nothing, since its sender is going too.
    for (const QueuedMessage& item : k.queue) {
        if (item.msg.wantsYouToReply() && item.msg.header.from != id) {
            pushStatus(item.msg.header.from, id, item.msg.header.id, NAME_REPLIER_GONE_AWAY);
        }
    }
    m_copiesDropped += k.queue.size();
    for (const QueuedMessage& item : k.queue) {
        uncharge(k, item.msg);
    }
    k.queue.clear();

    // Listener bindings go first, so the Ksock cannot receive the unbind
    // events its own replier bindings are about to cause. Newest first, as KBUS.
    std::vector<const Binding*> repliers;
    for (auto it = k.bindings.rbegin(); it != k.bindings.rend(); ++it) {
        if ((*it)->replier) {
            repliers.push_back(*it);
        } else {
            m_bindingIndex.remove(**it);
        }
    }
    k.bindings.clear();
    for (const Binding* b : repliers) {
        if (m_reportReplierBinds) {
            reportUnbindOnClose(k, b->name);
        }
        m_bindingIndex.remove(*b);
    }
    dropSetAside(id, std::nullopt);

    // Requests it popped but never answered: Ignored, in the order popped.
    for (const OwedReply& owed : k.owedReplies) {
        if (owed.to != id) {
            pushStatus(owed.to, id, owed.request, NAME_REPLIER_IGNORED);
        }
    }
    m_copiesDropped += k.queue.size();
    std::erase(m_sending, id);
    m_ksocks.erase(id); // k is gone from here on
    retryPendingSends();
    return {};
}

// ---------------------------------------------------------------- bindings

Result<void> Bus::bind(KsockId id, std::string_view name, bool replier) {
    auto found = findOrFail(id);
    if (!found) {
        return fail(found.error());
    }
    Ksock& k = **found;
    if (auto ok = checkBindName(name); !ok) {
        return ok;
    }
    if (replier && name == NAME_REPLIER_BIND_EVENT) {
        return fail(Errc::BAD_NAME);
    }
    if (replier && m_bindingIndex.replierBoundTo(name) != nullptr) {
        return fail(Errc::REPLIER_EXISTS);
    }
    // The event goes out before the binding exists, as in KBUS: if a listener
    // cannot take it, nothing changes.
    if (replier && m_reportReplierBinds) {
        if (auto ok = reportBindEvent(k, true, name); !ok) {
            return ok;
        }
    }
    k.bindings.push_back(&m_bindingIndex.add(id, name, replier, &k));
    return {};
}

Result<void> Bus::unbind(KsockId id, std::string_view name, bool replier) {
    auto found = findOrFail(id);
    if (!found) {
        return fail(found.error());
    }
    Ksock& k = **found;
    if (auto ok = checkBindName(name); !ok) {
        return ok;
    }
    const Binding* binding = m_bindingIndex.newestBindingOf(id, name, replier);
    if (binding == nullptr) {
        return fail(Errc::INVALID);
    }
    if (replier && m_reportReplierBinds) {
        if (auto ok = reportBindEvent(k, false, name); !ok) {
            return ok;
        }
    }
    const size_t held = k.queue.size() + k.setAside;
    removeBinding(k, *binding);
    // Only an unbind that emptied something makes room. Retrying blocked
    // sends after any unbind would settle a stateful request in the moment
    // its replier is unbound and not yet replaced (Disappeared); KBUS retried
    // when the sender polled, and found the new replier (ErrorSending).
    if (k.queue.size() + k.setAside < held) {
        roomMayHaveAppeared(k);
    }
    return {};
}

// Drops what the binding queued. Requests among them get Unbound, even when
// they are stateful or were sent by this same Ksock (KBUS skipped both).
void Bus::removeBinding(Ksock& k, const Binding& binding) {
    std::vector<std::pair<KsockId, MsgId>> unbound;
    const auto removed = std::erase_if(k.queue, [&](const QueuedMessage& item) {
        if (item.via != binding.seq) {
            return false;
        }
        if (item.msg.wantsYouToReply()) {
            unbound.emplace_back(item.msg.header.from, item.msg.header.id);
        }
        record(QueueEvent::Kind::REMOVED, k, item.copyId, nullptr);
        uncharge(k, item.msg);
        return true;
    });
    m_copiesDropped += removed;
    dropSetAside(k.id, binding.seq);
    eraseFirst(k.bindings, &binding);
    m_bindingIndex.remove(binding);
    for (const auto& [sender, request] : unbound) {
        pushStatus(sender, k.id, request, NAME_REPLIER_UNBOUND);
    }
}

Result<KsockId> Bus::findReplier(std::string_view name) const {
    if (name.empty() || name.size() > MAX_NAME_LEN) {
        return fail(Errc::NAME_TOO_LONG);
    }
    if (!checkMessageName(name)) {
        return KsockId{0}; // no request could carry this name
    }
    const Binding* r = m_bindingIndex.replierFor(name);
    return r != nullptr ? r->owner : 0;
}

// ---------------------------------------------------------------- sending

Result<void> Bus::checkSendable(const Message& msg) const {
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
    if (entireMessageLength(name.size(), msg.data().size()) > m_config.maxMessageSize) {
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

Result<MsgId> Bus::send(KsockId id, Message msg) {
    auto found = findOrFail(id);
    if (!found) {
        return fail(found.error());
    }
    Ksock& sender = **found;
    if (!sender.options.writable) {
        return fail(Errc::NOT_OPEN_FOR_WRITE);
    }
    if (sender.pending) {
        return fail(Errc::STILL_SENDING); // the pending message is kept (KBUS freed it)
    }
    if (auto ok = checkSendable(msg); !ok) {
        return fail(ok.error());
    }
    if (!sender.options.mayMarkSynthetic) {
        msg.header.flags &= ~FLAG_SYNTHETIC;
    }
    msg.header.extra = 0;
    // No id and no "sending" state when the reply could not be queued.
    if (msg.isRequest() && sender.slotsUsed() >= sender.maxMessages) {
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
            // Hold the reply slot now, so the reply (or a status) always fits.
            if (msg.isRequest()) {
                sender.awaitingReplies.push_back(msg.header.id);
            }
            sender.pending = std::move(msg);
            m_sending.push_back(id);
        }
        return fail(delivered.error());
    }
    return sender.lastSent;
}

Result<void> Bus::deliver(Ksock* sender, const Message& msg, bool slotReserved) {
    Plan& plan = *m_plan;
    if (auto ok = planDelivery(sender, msg, slotReserved, plan); !ok) {
        return ok;
    }
    commitDelivery(sender, msg, slotReserved, plan);
    return {};
}

// Decides every recipient and checks every queue before touching any, so a
// failed send delivers nothing.
Result<void> Bus::planDelivery(Ksock* sender, const Message& msg, bool slotReserved, Plan& plan) {
    const bool waitForRoom = (msg.header.flags & FLAG_ALL_OR_WAIT) != 0;
    const bool failIfFull = (msg.header.flags & FLAG_ALL_OR_FAIL) != 0;
    const Errc fullError = waitForRoom ? Errc::TRY_AGAIN : Errc::QUEUE_FULL;
    const uint64_t bytes = copyBytes(msg);

    m_bindingIndex.route(msg.name(), plan.route);
    plan.replyTarget = nullptr;
    plan.replier = nullptr;
    plan.accepted.clear();
    const uint64_t stamp = ++m_planStamp;

    if (msg.isRequest()) {
        if (plan.route.replier == nullptr) {
            return fail(Errc::NO_RECIPIENT);
        }
        if (sender != nullptr && !slotReserved) {
            reserve(*sender, stamp, 1, 0); // send() checked the room (NO_REPLY_SLOT)
        }
    }
    if (msg.isReply()) {
        Ksock* target = find(msg.header.to);
        if (target == nullptr) {
            return fail(Errc::NO_RECIPIENT);
        }
        if (std::find(target->awaitingReplies.begin(), target->awaitingReplies.end(),
                      msg.header.inReplyTo) == target->awaitingReplies.end()) {
            return fail(Errc::REPLY_NOT_EXPECTED);
        }
        // Only the Ksock that popped the request may answer it (KBUS let any
        // Ksock do so, which could leave the real replier's answer refused).
        if (sender != nullptr && std::find(sender->owedReplies.begin(), sender->owedReplies.end(),
                                           OwedReply{msg.header.inReplyTo, msg.header.to}) ==
                                     sender->owedReplies.end()) {
            return fail(Errc::REPLY_NOT_EXPECTED);
        }
        // The reply fills the slot reserved when the request was sent, so it
        // always fits, even if the sender has lowered its limit since (KBUS
        // refused it with EBUSY then).
        reserve(*target, stamp, 0, 0);
        ++target->plannedCopies;
        plan.replyTarget = target;
    }
    if (msg.isRequest()) {
        const Binding* replier = plan.route.replier;
        if (msg.header.to != 0 && replier->owner != msg.header.to) {
            return fail(Errc::WRONG_REPLIER);
        }
        if (!reserve(*replier->ksock, stamp, 1, bytes)) {
            return fail(fullError);
        }
        ++replier->ksock->plannedCopies;
        plan.replier = replier;
    }
    for (const Binding* b : plan.route.listeners) {
        Ksock& k = *b->ksock;
        if (k.onlyOnce && hasPlannedCopy(k, stamp)) {
            continue; // it already gets this message (the replier's copy wins)
        }
        if (!reserve(k, stamp, 1, bytes)) {
            if (waitForRoom || failIfFull) {
                return fail(fullError);
            }
            continue; // by default a full listener just misses the message
        }
        ++k.plannedCopies;
        plan.accepted.push_back(b);
    }
    return {};
}

void Bus::commitDelivery(Ksock* sender, const Message& msg, bool slotReserved, const Plan& plan) {
    if (plan.replyTarget != nullptr) {
        push(*plan.replyTarget, msg, 0, false);
        // Only the original sender's copy settles the request (KBUS issue 69).
        eraseFirst(plan.replyTarget->awaitingReplies, msg.header.inReplyTo);
        if (sender != nullptr) {
            eraseFirst(sender->owedReplies, OwedReply{msg.header.inReplyTo, msg.header.to});
        }
    }
    if (plan.replier != nullptr) {
        push(*plan.replier->ksock, msg, plan.replier->seq, true);
        if (sender != nullptr && !slotReserved) {
            sender->awaitingReplies.push_back(msg.header.id);
        }
    }
    for (const Binding* b : plan.accepted) {
        push(*b->ksock, msg, b->seq, false);
    }
}

void Bus::push(Ksock& k, const Message& msg, uint64_t via, bool wantYouToReply) {
    QueuedMessage item{msg, via, m_nextCopyId++};
    k.charge->bytes += copyBytes(msg);
    if (wantYouToReply) {
        item.msg.header.flags |= FLAG_WANT_YOU_TO_REPLY;
    } else {
        item.msg.header.flags &= ~FLAG_WANT_YOU_TO_REPLY;
    }
    // URGENT goes to the head, so two urgent messages come out newest first.
    const bool urgent = (msg.header.flags & FLAG_URGENT) != 0;
    record(urgent ? QueueEvent::Kind::PUSHED_HEAD : QueueEvent::Kind::PUSHED_TAIL, k, item.copyId,
           &item.msg);
    if (urgent) {
        k.queue.push_front(std::move(item));
    } else {
        k.queue.push_back(std::move(item));
    }
    ++m_copiesQueued;
    wake(k);
}

// A status stands in for the reply to `request`. It goes only to the
// request's sender, into the slot reserved at send time, and only if that
// sender still waits: a request never gets two answers.
void Bus::pushStatus(KsockId to, KsockId from, MsgId request, std::string_view name) {
    Ksock* k = find(to);
    if (k == nullptr || std::find(k->awaitingReplies.begin(), k->awaitingReplies.end(), request) ==
                            k->awaitingReplies.end()) {
        return;
    }
    Message status = busMessage(name, FLAG_SYNTHETIC);
    status.header.id = nextMessageId();
    status.header.from = from;
    status.header.to = to;
    status.header.inReplyTo = request;
    push(*k, status, 0, false);
    eraseFirst(k->awaitingReplies, request);
}

void Bus::record(QueueEvent::Kind kind, const Ksock& k, uint64_t copyId, const Message* msg) {
    if (m_config.recordQueueEvents) {
        m_events.push_back(QueueEvent{kind, k.id, copyId, msg != nullptr ? *msg : Message{}});
    }
}

// Claims room for `copies` copies of `bytesEach` bytes on `k` for the send
// being planned (stamp), on top of what the plan already claimed there and in
// k's charge group. copies == 0 checks only that the slots in use still fit:
// a reply into its reserved slot.
bool Bus::reserve(Ksock& k, uint64_t stamp, uint32_t copies, uint64_t bytesEach) {
    if (k.planStamp != stamp) {
        k.planStamp = stamp;
        k.plannedSlots = 0;
        k.plannedCopies = 0;
    }
    GroupCharge& g = *k.charge;
    if (g.planStamp != stamp) {
        g.planStamp = stamp;
        g.plannedBytes = 0;
    }
    if (k.slotsUsed() + k.plannedSlots + copies > k.maxMessages) {
        return false;
    }
    const uint64_t limit = m_config.maxQueuedBytesPerGroup;
    const uint64_t bytes = bytesEach * copies;
    if (limit != 0 && copies != 0 && g.bytes + g.plannedBytes + bytes > limit) {
        return false;
    }
    k.plannedSlots += copies;
    g.plannedBytes += bytes;
    return true;
}

void Bus::uncharge(Ksock& k, const Message& msg) {
    k.charge->bytes -= copyBytes(msg);
}

void Bus::wake(Ksock& k) {
    if (!k.wakeQueued) {
        k.wakeQueued = true;
        m_wakeups.push_back(k.id);
    }
}

Result<void> Bus::discard(KsockId id) {
    auto found = findOrFail(id);
    if (!found) {
        return fail(found.error());
    }
    Ksock& k = **found;
    if (k.pending) {
        if (k.pending->isRequest()) {
            eraseFirst(k.awaitingReplies, k.pending->header.id); // nobody will answer it now
        }
        k.pending.reset();
        std::erase(m_sending, id);
        roomMayHaveAppeared(k);
    }
    return {};
}

// ALL_OR_WAIT sends blocked on a full queue are retried, in the order they
// blocked, after anything that may have made room. KBUS retried from poll();
// a daemon retries for the sender, whose fd turns writable when it is done.
void Bus::retryPendingSends() {
    if (m_sending.empty()) {
        return;
    }
    std::vector<KsockId> blocked;
    blocked.swap(m_sending);
    for (KsockId id : blocked) {
        Ksock* k = find(id);
        if (k == nullptr || !k->pending) {
            continue;
        }
        auto outcome = deliver(k, *k->pending, true);
        if (!outcome && outcome.error() == Errc::TRY_AGAIN) {
            m_sending.push_back(id);
            continue;
        }
        finishPending(*k, outcome);
    }
}

void Bus::finishPending(Ksock& k, const Result<void>& outcome) {
    Message msg = std::move(*k.pending);
    k.pending.reset();
    if (!outcome && msg.isRequest()) {
        const bool replierGone = outcome.error() == Errc::NO_RECIPIENT;
        pushStatus(k.id, 0, msg.header.id,
                   replierGone ? NAME_REPLIER_DISAPPEARED : NAME_ERROR_SENDING);
    }
    if (!outcome) {
        forgetReplyToGoneSender(k, msg, outcome.error());
    }
    record(QueueEvent::Kind::SEND_FINISHED, k, 0, nullptr);
    wake(k);
}

// A reply whose asker has closed can never be delivered: the replier no longer
// owes it (KBUS kept counting it in UNREPLIEDTO until the replier closed).
void Bus::forgetReplyToGoneSender(Ksock& replier, const Message& msg, Errc error) {
    if (msg.isReply() && error == Errc::NO_RECIPIENT) {
        eraseFirst(replier.owedReplies, OwedReply{msg.header.inReplyTo, msg.header.to});
    }
}

void Bus::roomMayHaveAppeared(Ksock& k) {
    refillFromSetAside(k);
    retryPendingSends();
}

// ---------------------------------------------------------------- receiving

Result<std::optional<Message>> Bus::nextMessage(KsockId id) {
    auto found = findOrFail(id);
    if (!found) {
        return fail(found.error());
    }
    Ksock& k = **found;
    if (k.queue.empty()) {
        return std::optional<Message>();
    }
    return std::optional<Message>(takeFromQueue(k, k.queue.begin()));
}

Result<Message> Bus::popCopy(KsockId id, uint64_t copyId) {
    auto found = findOrFail(id);
    if (!found) {
        return fail(found.error());
    }
    Ksock& k = **found;
    auto at = std::find_if(k.queue.begin(), k.queue.end(),
                           [&](const QueuedMessage& item) { return item.copyId == copyId; });
    if (at == k.queue.end()) {
        return fail(Errc::INVALID);
    }
    return takeFromQueue(k, at);
}

// Popping, not reading, is what makes the replier owe the answer: a reader
// that dies mid-read still gets its requests reported as Ignored.
Message Bus::takeFromQueue(Ksock& k, std::deque<QueuedMessage>::iterator at) {
    uncharge(k, at->msg);
    Message msg = std::move(at->msg);
    k.queue.erase(at);
    ++m_copiesPopped;
    if (msg.wantsYouToReply()) {
        k.owedReplies.push_back(OwedReply{msg.header.id, msg.header.from});
    }
    roomMayHaveAppeared(k);
    return msg;
}

Result<MsgId> Bus::lastSent(KsockId id) const {
    auto found = findOrFail(id);
    if (!found) {
        return fail(found.error());
    }
    return (*found)->lastSent;
}

// ---------------------------------------------------------------- settings

Result<uint32_t> Bus::maxMessages(KsockId id, uint32_t newLimit) {
    auto found = findOrFail(id);
    if (!found) {
        return fail(found.error());
    }
    Ksock& k = **found;
    if (newLimit != 0) {
        const bool grew = newLimit > k.maxMessages;
        k.maxMessages = newLimit;
        if (grew) {
            roomMayHaveAppeared(k);
        }
    }
    return k.maxMessages;
}

Result<uint32_t> Bus::numMessages(KsockId id) const {
    auto found = findOrFail(id);
    if (!found) {
        return fail(found.error());
    }
    return static_cast<uint32_t>((*found)->queue.size() + (*found)->setAside);
}

Result<uint32_t> Bus::numUnrepliedTo(KsockId id) const {
    auto found = findOrFail(id);
    if (!found) {
        return fail(found.error());
    }
    return static_cast<uint32_t>((*found)->owedReplies.size());
}

Result<uint32_t> Bus::onlyOnce(KsockId id, uint32_t request) {
    auto found = findOrFail(id);
    if (!found) {
        return fail(found.error());
    }
    return applySwitch((*found)->onlyOnce, request);
}

Result<uint32_t> Bus::verbose(uint32_t request) {
    return applySwitch(m_verbose, request);
}

Result<uint32_t> Bus::reportReplierBinds(KsockId id, uint32_t request) {
    auto found = findOrFail(id);
    if (!found) {
        return fail(found.error());
    }
    Ksock& k = **found;
    auto previous = applySwitch(m_reportReplierBinds, request);
    if (!previous || request != 1) {
        return previous;
    }
    // Tell the caller (a Limpet, typically) about the repliers already bound,
    // newest first. If its queue fills, the switch stays on (as KBUS).
    std::vector<const Binding*> repliers;
    m_bindingIndex.forEach([&](const Binding& b) {
        if (b.replier) {
            repliers.push_back(&b);
        }
    });
    for (auto it = repliers.rbegin(); it != repliers.rend(); ++it) {
        if (k.slotsUsed() >= k.maxMessages) {
            return fail(Errc::QUEUE_FULL);
        }
        Message event = busMessage(NAME_REPLIER_BIND_EVENT, FLAG_SYNTHETIC | FLAG_ALL_OR_FAIL,
                                   encodeBindEventData(true, (*it)->owner, (*it)->name));
        event.header.id = nextMessageId();
        push(k, event, 0, false);
    }
    return previous;
}

Result<uint32_t> Bus::maxMessageSize(uint32_t request) {
    if (request == QUERY_CURRENT_SIZE) {
        return m_config.maxMessageSize;
    }
    if (request == QUERY_ABSOLUTE_SIZE) {
        return m_config.absoluteMaxMessageSize;
    }
    if (request < MIN_MAX_MESSAGE_SIZE || request > m_config.absoluteMaxMessageSize) {
        return fail(Errc::INVALID);
    }
    m_config.maxMessageSize = request;
    return request;
}

// ---------------------------------------------------------------- replier bind events

Result<void> Bus::reportBindEvent(const Ksock& binder, bool isBind, std::string_view name) {
    Message event = busMessage(NAME_REPLIER_BIND_EVENT, FLAG_SYNTHETIC | FLAG_ALL_OR_FAIL,
                               encodeBindEventData(isBind, binder.id, name));
    Plan& plan = *m_plan;
    if (auto ok = planDelivery(nullptr, event, false, plan); !ok) {
        return fail(Errc::TRY_AGAIN); // a listener is full; the (un)bind is refused
    }
    event.header.id = nextMessageId();
    commitDelivery(nullptr, event, false, plan);
    return {};
}

// A closing Ksock cannot be refused its unbind, so its events must not be
// lost either: listeners with room get the event now, full ones find it on
// the set-aside list once they make room. KBUS set the event aside for every
// listener, so one with an empty queue never saw it until something else
// arrived.
void Bus::reportUnbindOnClose(const Ksock& binder, std::string_view name) {
    Message event = busMessage(NAME_REPLIER_BIND_EVENT, FLAG_SYNTHETIC | FLAG_ALL_OR_FAIL,
                               encodeBindEventData(false, binder.id, name));
    Plan& plan = *m_plan;
    if (planDelivery(nullptr, event, false, plan)) {
        event.header.id = nextMessageId();
        commitDelivery(nullptr, event, false, plan);
        return;
    }
    event.header.id = nextMessageId();
    const uint64_t stamp = ++m_planStamp;
    std::vector<const Binding*> full;
    for (const Binding* b : plan.route.listeners) {
        Ksock& k = *b->ksock;
        if (k.onlyOnce && hasPlannedCopy(k, stamp)) {
            continue;
        }
        const bool room = reserve(k, stamp, 1, copyBytes(event));
        ++k.plannedCopies;
        if (room) {
            push(k, event, b->seq, false);
        } else {
            full.push_back(b);
        }
    }
    if (m_unbindEventsLost || m_setAside.size() + full.size() > m_config.maxUnsentUnbindEvents) {
        m_unbindEventsLost = true;
        for (const Binding* b : full) {
            if (!b->ksock->lostMarkerSetAside) {
                Message lost = busMessage(NAME_UNBIND_EVENTS_LOST, FLAG_SYNTHETIC);
                lost.header.id = nextMessageId();
                setAside(*b->ksock, b->seq, lost);
                b->ksock->lostMarkerSetAside = true;
            }
        }
        return;
    }
    for (const Binding* b : full) {
        setAside(*b->ksock, b->seq, event);
    }
}

void Bus::setAside(Ksock& k, uint64_t via, const Message& msg) {
    m_setAside.push_back(SetAsideItem{k.id, via, msg});
    ++k.setAside;
}

void Bus::refillFromSetAside(Ksock& k) {
    while (k.setAside > 0 && k.slotsUsed() < k.maxMessages) {
        auto it = std::find_if(m_setAside.begin(), m_setAside.end(),
                               [&](const SetAsideItem& item) { return item.ksock == k.id; });
        assert(it != m_setAside.end());
        if (it->msg.name() == NAME_UNBIND_EVENTS_LOST) {
            k.lostMarkerSetAside = false;
        }
        push(k, it->msg, it->via, false);
        m_setAside.erase(it);
        --k.setAside;
    }
    if (m_setAside.empty()) {
        m_unbindEventsLost = false;
    }
}

void Bus::dropSetAside(KsockId id, std::optional<uint64_t> via) {
    Ksock* k = find(id);
    std::erase_if(m_setAside, [&](const SetAsideItem& item) {
        if (item.ksock != id || (via && item.via != *via)) {
            return false;
        }
        if (k != nullptr) {
            --k->setAside;
            if (item.msg.name() == NAME_UNBIND_EVENTS_LOST) {
                k->lostMarkerSetAside = false;
            }
        }
        return true;
    });
    if (m_setAside.empty()) {
        m_unbindEventsLost = false;
    }
}

// ---------------------------------------------------------------- introspection

Result<PollState> Bus::poll(KsockId id) const {
    auto found = findOrFail(id);
    if (!found) {
        return fail(found.error());
    }
    const Ksock& k = **found;
    return PollState{!k.queue.empty(), k.options.writable && !k.pending};
}

std::vector<KsockId> Bus::takeWakeups() {
    std::vector<KsockId> woken;
    woken.swap(m_wakeups);
    for (KsockId id : woken) {
        if (Ksock* k = find(id)) {
            k->wakeQueued = false;
        }
    }
    std::erase_if(woken, [&](KsockId id) { return !m_ksocks.contains(id); });
    return woken;
}

std::vector<QueueEvent> Bus::takeQueueEvents() {
    std::vector<QueueEvent> events;
    events.swap(m_events);
    return events;
}

bool Bus::underPressure(KsockId id) const {
    const Ksock* k = find(id);
    if (k == nullptr) {
        return false;
    }
    const uint64_t quota = m_config.maxQueuedBytesPerGroup;
    return 2 * uint64_t{k->slotsUsed()} >= k->maxMessages ||
           (quota != 0 && 2 * k->charge->bytes >= quota);
}

BusStats Bus::stats() const {
    BusStats s;
    s.index = m_index;
    s.nextKsockId = m_nextKsockId;
    s.nextSerial = m_nextSerial;
    s.maxMessageSize = m_config.maxMessageSize;
    s.reportReplierBinds = m_reportReplierBinds;
    s.verbose = m_verbose;
    s.unsentUnbindEvents = static_cast<uint32_t>(m_setAside.size());
    s.unbindEventsLost = m_unbindEventsLost;
    s.copiesQueued = m_copiesQueued;
    s.copiesPopped = m_copiesPopped;
    s.copiesDropped = m_copiesDropped;
    for (const auto& [id, k] : m_ksocks) {
        s.ksocks.push_back(KsockStats{
            .id = id,
            .ownerTag = k->options.ownerTag,
            .lastSent = k->lastSent,
            .queued = static_cast<uint32_t>(k->queue.size()),
            .maxMessages = k->maxMessages,
            .awaitingReplies = static_cast<uint32_t>(k->awaitingReplies.size()),
            .unrepliedTo = static_cast<uint32_t>(k->owedReplies.size()),
            .setAside = k->setAside,
            .bindings = static_cast<uint32_t>(k->bindings.size()),
            .sending = k->pending.has_value(),
            .onlyOnce = k->onlyOnce,
        });
    }
    for (const auto& [group, charge] : m_charges) {
        s.queuedBytesByGroup.emplace_back(group, charge.bytes);
    }
    std::sort(s.queuedBytesByGroup.begin(), s.queuedBytesByGroup.end());
    std::sort(s.ksocks.begin(), s.ksocks.end(),
              [](const KsockStats& a, const KsockStats& b) { return a.id < b.id; });
    return s;
}

std::vector<BindingInfo> Bus::bindings() const {
    std::vector<BindingInfo> out;
    m_bindingIndex.forEach([&](const Binding& b) {
        out.push_back(BindingInfo{b.owner, b.ksock->options.ownerTag, b.replier, b.name});
    });
    return out;
}

} // namespace xkbus::core
