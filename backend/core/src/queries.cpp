// Settings and introspection: the calls that read the bus or change a limit.
#include "bus_impl.hpp"

#include <algorithm>

namespace xkbus::core {

Result<KsockId> Bus::findReplier(std::string_view name) const {
    if (name.empty() || name.size() > MAX_NAME_LEN) {
        return fail(Errc::NAME_TOO_LONG);
    }
    if (!checkMessageName(name)) {
        return KsockId{0}; // no request could carry this name
    }
    const Binding* r = m->bindingIndex.replierFor(name);
    return r != nullptr ? r->owner : 0;
}

Result<uint32_t> Bus::maxMessages(KsockId id, uint32_t newLimit) {
    auto found = m->findOrFail(id);
    if (!found) {
        return fail(found.error());
    }
    Ksock& k = **found;
    if (newLimit != 0) {
        // No more than its group may queue: the answer says what is in force.
        newLimit = std::min(newLimit, m->limitsOf(k).queuedMessages);
        const bool grew = newLimit > k.maxMessages;
        k.maxMessages = newLimit;
        if (grew) {
            m->roomMayHaveAppeared(k);
        }
    }
    return k.maxMessages;
}

Result<uint32_t> Bus::numMessages(KsockId id) const {
    auto found = m->findOrFail(id);
    if (!found) {
        return fail(found.error());
    }
    return static_cast<uint32_t>((*found)->queue.size() + (*found)->setAside.count());
}

Result<uint32_t> Bus::numUnrepliedTo(KsockId id) const {
    auto found = m->findOrFail(id);
    if (!found) {
        return fail(found.error());
    }
    return static_cast<uint32_t>((*found)->replies.owedCount());
}

Result<uint32_t> Bus::maxMessageSize(uint32_t request) {
    BusConfig& config = m->config;
    if (request == QUERY_CURRENT_SIZE) {
        return config.maxMessageSize;
    }
    if (request == QUERY_ABSOLUTE_SIZE) {
        return config.absoluteMaxMessageSize;
    }
    if (request < MIN_MAX_MESSAGE_SIZE || request > config.absoluteMaxMessageSize) {
        return fail(Errc::INVALID);
    }
    config.maxMessageSize = request;
    return request;
}

Result<uint32_t> Bus::maxMessageSize(KsockId id, uint32_t request) {
    auto found = m->findOrFail(id);
    if (!found) {
        return fail(found.error());
    }
    const bool sets = request != QUERY_CURRENT_SIZE && request != QUERY_ABSOLUTE_SIZE;
    if (sets && !(*found)->options.may.busSettings) {
        return fail(Errc::PERMISSION_DENIED);
    }
    return maxMessageSize(request);
}

std::vector<QueueEvent> Bus::takeQueueEvents() {
    std::vector<QueueEvent> events;
    events.swap(m->events);
    return events;
}

bool Bus::underPressure(KsockId id) const {
    const Ksock* k = m->find(id);
    if (k == nullptr) {
        return false;
    }
    const TenantUsage& used = k->account->used;
    const TenantLimits& limits = m->limitsOf(*k);
    return 2 * uint64_t{k->slotsUsed()} >= k->maxMessages ||
           2 * uint64_t{used.queuedMessages} >= limits.queuedMessages ||
           2 * used.queuedBytes >= limits.queuedBytes;
}

KsockView Bus::Impl::viewOf(const Ksock& k) const {
    return KsockView{
        .id = k.id,
        .ownerTag = k.options.ownerTag,
        .chargeGroup = k.options.chargeGroup,
        .writable = k.options.writable,
        .lastSent = k.lastSent,
        .queued = static_cast<uint32_t>(k.queue.size()),
        .headCopyId = k.queue.empty() ? 0 : k.queue.front().copyId,
        .maxMessages = k.maxMessages,
        .slotsUsed = static_cast<uint32_t>(k.slotsUsed()),
        .awaitingReplies = static_cast<uint32_t>(k.replies.awaitingCount()),
        .unrepliedTo = static_cast<uint32_t>(k.replies.owedCount()),
        .setAside = k.setAside.count(),
        .bindings = static_cast<uint32_t>(k.bindings.size()),
        .sending = k.sending.msg.has_value(),
        .onlyOnce = k.onlyOnce,
    };
}

std::optional<KsockView> Bus::inspect(KsockId id) const {
    const Ksock* k = m->find(id);
    if (k == nullptr) {
        return std::nullopt;
    }
    return m->viewOf(*k);
}

std::optional<KsockContents> Bus::contents(KsockId id) const {
    const Ksock* k = m->find(id);
    if (k == nullptr) {
        return std::nullopt;
    }
    std::vector<QueuedMessage> queue;
    k->queue.forEach([&](const QueuedMessage& item) { queue.push_back(item); });
    return KsockContents{
        .queue = std::move(queue),
        .awaitingReplies = k->replies.awaitingList(),
        .owedReplies = k->replies.owedInOrder(),
        .pending = k->sending.msg,
    };
}

BusStats Bus::stats() const {
    BusStats s;
    s.index = m->index;
    s.nextKsockId = m->nextKsockId;
    s.nextSerial = m->nextSerial;
    s.maxMessageSize = m->config.maxMessageSize;
    s.reportReplierBinds = m->reportReplierBindsOn;
    s.verbose = m->verboseOn;
    s.unsentUnbindEvents = static_cast<uint32_t>(m->setAside.size());
    s.unbindEventsLost = m->setAside.lost();
    s.copiesQueued = m->copiesQueued;
    s.copiesPopped = m->copiesPopped;
    s.copiesDropped = m->copiesDropped;
    for (const auto& [id, k] : m->ksocks) {
        s.ksocks.push_back(m->viewOf(*k));
    }
    for (const auto& [id, k] : m->ksocks) {
        s.queuedBytesByGroup.emplace_back(k->options.chargeGroup, k->account->used.queuedBytes);
    }
    std::sort(s.queuedBytesByGroup.begin(), s.queuedBytesByGroup.end());
    s.queuedBytesByGroup.erase(
        std::unique(s.queuedBytesByGroup.begin(), s.queuedBytesByGroup.end()),
        s.queuedBytesByGroup.end());
    std::sort(s.ksocks.begin(), s.ksocks.end(),
              [](const KsockView& a, const KsockView& b) { return a.id < b.id; });
    return s;
}

BusWork Bus::work() const {
    BusWork w = m->counted;
    const IndexWork& index = m->bindingIndex.work();
    w.nodesVisited = index.nodesVisited;
    w.listenersRouted = index.listenersRouted;
    w.mergeComparisons = index.mergeComparisons;
    w.ownerScans = index.ownerScans;
    return w;
}

std::vector<BindingInfo> Bus::bindings() const {
    std::vector<BindingInfo> out;
    m->bindingIndex.forEach([&](const Binding& b) {
        out.push_back(BindingInfo{b.owner, b.ksock->options.ownerTag, b.replier, b.name});
    });
    return out;
}

} // namespace xkbus::core
