// Accounting by charge group: every charge is checked against the group's
// limits before the bus holds anything for it, and released when the thing
// goes. docs/security.md ("Limits and accounting") states the rules.
#include "bus_impl.hpp"

namespace xkbus::core {

namespace {

// The trie nodes a binding can keep alive: one per word before any wildcard
// ("$.a.b.*" keeps "a" and "b"). Shared nodes are counted once per binding,
// so the sum bounds what the trie holds.
uint32_t indexNodesFor(std::string_view bindName) {
    std::string_view path = bindName;
    if (wildKindOf(path) != WildKind::NONE) {
        path.remove_suffix(2);
    }
    return static_cast<uint32_t>(std::count(path.begin(), path.end(), '.'));
}

} // namespace

Result<void> Bus::Impl::chargeKsock(GroupAccount& g) {
    if (g.used.ksocks >= ledger->limitsOf(g).ksocks) {
        return fail(Errc::TOO_MANY);
    }
    ++g.used.ksocks;
    return {};
}

Result<void> Bus::Impl::chargeBinding(Ksock& k, std::string_view name) {
    GroupAccount& g = *k.account;
    const TenantLimits& limits = limitsOf(k);
    const uint32_t nodes = indexNodesFor(name);
    if (g.used.bindings >= limits.bindings ||
        uint64_t{g.used.indexNodes} + nodes > limits.indexNodes ||
        g.used.nameBytes + name.size() > limits.nameBytes) {
        return fail(Errc::NO_MEMORY);
    }
    ++g.used.bindings;
    g.used.indexNodes += nodes;
    g.used.nameBytes += name.size();
    return {};
}

void Bus::Impl::releaseBinding(Ksock& k, std::string_view name) {
    GroupAccount& g = *k.account;
    --g.used.bindings;
    g.used.indexNodes -= indexNodesFor(name);
    g.used.nameBytes -= name.size();
}

// A copy takes a place in its group's queues and weighs its bytes there.
// Replies and statuses land in a place already held for them (awaitReply),
// so their place moves rather than adds.
void Bus::Impl::charge(Ksock& k, const Message& msg) {
    ++k.account->used.queuedMessages;
    k.account->used.queuedBytes += msg.entireLength();
}

void Bus::Impl::uncharge(Ksock& k, const Message& msg) {
    --k.account->used.queuedMessages;
    k.account->used.queuedBytes -= msg.entireLength();
}

void Bus::Impl::awaitReply(Ksock& k, MsgId request) {
    k.replies.await(request);
    ++k.account->used.queuedMessages;
}

void Bus::Impl::settleReply(Ksock& k, MsgId request) {
    if (k.replies.settle(request)) {
        --k.account->used.queuedMessages;
    }
}

// Room for one more request's reply: in the Ksock's queue (MAXMSGS) and in
// its group's.
bool Bus::Impl::replySlotFree(const Ksock& k) const {
    return !k.full() && k.account->used.queuedMessages < limitsOf(k).queuedMessages;
}

Result<void> Bus::Impl::chargePendingSend(Ksock& k) {
    GroupAccount& g = *k.account;
    if (g.used.pendingSends >= limitsOf(k).pendingSends) {
        return fail(Errc::NO_MEMORY);
    }
    ++g.used.pendingSends;
    return {};
}

// What a closing Ksock still held besides its queue and bindings: the places
// kept for replies, its blocked send, itself.
void Bus::Impl::releaseCloser(Ksock& k) {
    GroupAccount& g = *k.account;
    g.used.queuedMessages -= static_cast<uint32_t>(k.replies.awaitingCount());
    if (k.sending.msg) {
        --g.used.pendingSends;
    }
    --g.used.ksocks;
}

bool Bus::Impl::groupHasRoom(const GroupAccount* g) const {
    if (g == nullptr) {
        return true; // nobody of the group is left to be full
    }
    const TenantLimits& limits = ledger->limitsOf(*g);
    return g->used.queuedMessages < limits.queuedMessages &&
           g->used.queuedBytes < limits.queuedBytes;
}

void Bus::Impl::waitOn(Ksock& sender, const Obstacle& obstacle) {
    if (sender.sending.waitingFor.group) {
        ledger->waiting(*sender.sending.waitingFor.group, index, false);
    }
    blocked.wait(sender.id, sender.sending, obstacle);
    if (obstacle.group) {
        ledger->waiting(*obstacle.group, index, true);
    }
}

void Bus::Impl::stopWaiting(Ksock& sender) {
    if (sender.sending.waitingFor.group) {
        ledger->waiting(*sender.sending.waitingFor.group, index, false);
    }
    blocked.stopWaiting(sender.sending);
}

GroupUsage Bus::groupUsage(uint32_t group) const {
    return m->ledger->usage(group);
}

void Bus::setGroupLimits(uint32_t group, std::optional<TenantLimits> limits) {
    if (limits) {
        m->ledger->setLimits(group, *limits);
    } else {
        m->ledger->clearLimits(group);
    }
}

} // namespace xkbus::core
