// Bus: the public operations, and opening, closing and binding. Where each
// rule lives is listed in bus_impl.hpp; docs/semantics.md states the rules,
// and comments here say why the code is shaped the way it is.
#include "bus_impl.hpp"

#include <xkbus/core/bus.hpp>

namespace xkbus::core {

// ---------------------------------------------------------------- the public face

Bus::Bus(uint32_t index, BusConfig config)
    : Bus(index, config, std::make_shared<Ledger>(config.limits)) {}
Bus::Bus(uint32_t index, BusConfig config, std::shared_ptr<Ledger> ledger)
    : m(std::make_unique<Impl>(index, config, std::move(ledger))) {}
Bus::~Bus() = default;

uint32_t Bus::index() const noexcept {
    return m->index;
}
Result<KsockId> Bus::open(OpenOptions options) {
    return m->open(options);
}
Result<void> Bus::close(KsockId id) {
    return m->close(id);
}
Result<void> Bus::bind(KsockId id, std::string_view name, bool replier) {
    return m->bind(id, name, replier);
}
Result<void> Bus::unbind(KsockId id, std::string_view name, bool replier) {
    return m->unbind(id, name, replier);
}
Result<MsgId> Bus::send(KsockId id, Message msg) {
    return m->send(id, std::move(msg));
}
Result<void> Bus::discard(KsockId id) {
    return m->discard(id);
}
Result<uint32_t> Bus::reportReplierBinds(KsockId id, uint32_t request) {
    return m->reportReplierBinds(id, request);
}
bool Bus::isOpen(KsockId id) const {
    return m->find(id) != nullptr;
}

Bus::Impl::Impl(uint32_t busIndex, BusConfig busConfig, std::shared_ptr<Ledger> sharedLedger)
    : index(busIndex), config(busConfig), ledger(std::move(sharedLedger)) {
    ledger->attach(index, [this](uint32_t group) { retryGroupWaiters(group); });
}

Bus::Impl::~Impl() {
    ledger->detach(index);
}

// ---------------------------------------------------------------- lookups

Ksock* Bus::Impl::find(KsockId id) const {
    auto it = ksocks.find(id);
    return it == ksocks.end() ? nullptr : it->second.get();
}

Result<Ksock*> Bus::Impl::findOrFail(KsockId id) const {
    Ksock* k = find(id);
    if (k == nullptr) {
        return fail(Errc::INVALID);
    }
    return k;
}

MsgId Bus::Impl::nextMessageId() {
    const uint32_t serial = nextSerial++;
    if (nextSerial == 0) {
        nextSerial = 1; // {0,0} means "no id"
    }
    return MsgId{0, serial};
}

Message Bus::Impl::busMessage(std::string_view name, uint32_t flags, std::vector<std::byte> data) {
    Message m;
    m.header.flags = flags;
    m.body = MessageBody::copyOf(name, data);
    return m;
}

// ---------------------------------------------------------------- open and close

Result<KsockId> Bus::Impl::open(OpenOptions options) {
    GroupAccount& account = ledger->account(options.chargeGroup);
    if (auto ok = chargeKsock(account); !ok) {
        ledger->dropIfIdle(account);
        return fail(ok.error());
    }
    while (nextKsockId == 0 || ksocks.contains(nextKsockId)) {
        ++nextKsockId; // ids are not reused while open; 0 is the bus itself
    }
    const KsockId id = nextKsockId++;
    auto k = std::make_unique<Ksock>(id, options, &counted.queueSteps);
    k->account = &account;
    k->maxMessages = std::min(config.defaultMaxMessages, limitsOf(*k).queuedMessages);
    ksocks.emplace(id, std::move(k));
    return id;
}

Result<void> Bus::Impl::close(KsockId id) {
    auto found = findOrFail(id);
    if (!found) {
        return fail(found.error());
    }
    Ksock& k = **found;
    dropQueueOnClose(k);
    removeBindingsOnClose(k);
    setAside.drop(k.setAside, std::nullopt);

    // Requests it popped but never answered: Ignored, in the order popped.
    k.replies.forEachOwedInOrder([&](const OwedReply& owed) {
        if (owed.to != id) {
            pushStatus(owed.to, id, owed.request, NAME_REPLIER_IGNORED);
        }
    });
    stopWaiting(k);
    releaseCloser(k);
    const uint32_t group = k.options.chargeGroup;
    GroupAccount& account = *k.account;
    ksocks.erase(id); // k is gone from here on
    ledger->dropIfIdle(account);
    retryWaiters(id, group, Change::BINDINGS);
    return {};
}

// Requests still queued here will never be read: GoneAway. A request it sent
// to itself needs nothing, since its sender is going too.
void Bus::Impl::dropQueueOnClose(Ksock& k) {
    k.queue.forEach([&](const QueuedMessage& item) {
        if (item.msg.wantsYouToReply() && item.msg.header.from != k.id) {
            pushStatus(item.msg.header.from, k.id, item.msg.header.id, NAME_REPLIER_GONE_AWAY);
        }
        uncharge(k, item.msg);
    });
    copiesDropped += k.queue.size();
    k.queue.clear();
}

// Listener bindings go first, so the Ksock cannot receive the unbind events
// its own replier bindings are about to cause. Newest first, as KBUS.
void Bus::Impl::removeBindingsOnClose(Ksock& k) {
    std::vector<const Binding*> repliers;
    for (auto it = k.bindings.rbegin(); it != k.bindings.rend(); ++it) {
        if (it->second->replier) {
            repliers.push_back(it->second);
        } else {
            releaseBinding(k, it->second->name);
            bindingIndex.remove(*it->second);
        }
    }
    k.bindings.clear();
    for (const Binding* b : repliers) {
        if (reportReplierBindsOn) {
            (void)deliverBindEvent(k, false, b->name, false); // a close cannot be refused
        }
        releaseBinding(k, b->name);
        bindingIndex.remove(*b);
    }
}

// ---------------------------------------------------------------- bindings

Result<void> Bus::Impl::bind(KsockId id, std::string_view name, bool replier) {
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
    if (replier && bindingIndex.replierBoundTo(name) != nullptr) {
        return fail(Errc::REPLIER_EXISTS);
    }
    if (auto ok = chargeBinding(k, name); !ok) {
        return ok;
    }
    // The event goes out before the binding exists, as in KBUS: if a listener
    // cannot take it, nothing changes.
    if (replier && reportReplierBindsOn) {
        if (auto ok = deliverBindEvent(k, true, name, true); !ok) {
            releaseBinding(k, name);
            return ok;
        }
    }
    const Binding& added = bindingIndex.add(id, name, replier, &k);
    k.bindings.emplace(added.seq, &added);
    return {};
}

Result<void> Bus::Impl::unbind(KsockId id, std::string_view name, bool replier) {
    auto found = findOrFail(id);
    if (!found) {
        return fail(found.error());
    }
    Ksock& k = **found;
    if (auto ok = checkBindName(name); !ok) {
        return ok;
    }
    const Binding* binding = bindingIndex.newestBindingOf(id, name, replier);
    if (binding == nullptr) {
        return fail(Errc::INVALID);
    }
    if (replier && reportReplierBindsOn) {
        if (auto ok = deliverBindEvent(k, false, name, true); !ok) {
            return ok;
        }
    }
    const size_t held = k.queue.size() + k.setAside.count();
    removeBinding(k, *binding);
    const bool dropped = k.queue.size() + k.setAside.count() < held;
    roomMayHaveAppeared(k, dropped ? Change::BINDINGS : Change::UNBOUND);
    return {};
}

// Drops what the binding queued. Requests among them get Unbound, even when
// they are stateful or were sent by this same Ksock (KBUS skipped both).
void Bus::Impl::removeBinding(Ksock& k, const Binding& binding) {
    std::vector<std::pair<KsockId, MsgId>> unbound;
    copiesDropped += k.queue.removeIf([&](const QueuedMessage& item) {
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
    setAside.drop(k.setAside, binding.seq);
    k.bindings.erase(binding.seq);
    releaseBinding(k, binding.name);
    bindingIndex.remove(binding);
    for (const auto& [sender, request] : unbound) {
        pushStatus(sender, k.id, request, NAME_REPLIER_UNBOUND);
    }
}

} // namespace xkbus::core
