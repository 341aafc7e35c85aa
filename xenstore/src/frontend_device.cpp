// FrontendDevice: claims a slot and applies the frontend decisions of
// state_machine.hpp. The backend's nodes are read like any other peer input.
#include "node_reads.hpp"

#include <algorithm>
#include <xkbus/xenstore/frontend_device.hpp>

namespace xkbus::xenstore {

using detail::readOptional;
using detail::readState;

namespace {

bool stateIs(const Parsed<XenbusState>& state, XenbusState expected) {
    return state && *state == expected;
}

struct Slot {
    DevId devid;
    uint32_t bus;
};

struct SlotCheck {
    bool free = false;
    uint32_t bus = 0;
};

// Whether `device` can be claimed now; reads inside `txn` so that a
// concurrent claim makes our commit fail.
Result<SlotCheck> checkSlot(Store& store, TransactionId txn, DeviceId device,
                            const FrontendOptions& options) {
    auto front = readState(store, txn, frontendDir(device));
    if (!front) {
        return fail(front.error());
    }
    auto back = readState(store, txn, backendDir(device));
    if (!back) {
        return fail(back.error());
    }
    if (!stateIs(*front, XenbusState::INITIALISING) || !stateIs(*back, XenbusState::INIT_WAIT)) {
        return SlotCheck{};
    }
    auto busText = readOptional(store, txn, nodePath(backendDir(device), key::BUS));
    if (!busText) {
        return fail(busText.error());
    }
    auto bus =
        *busText ? parseBus(**busText) : Parsed<uint32_t>(tl::unexpected(Rejection{"missing"}));
    if (!bus || (options.bus && *options.bus != *bus)) {
        return SlotCheck{};
    }
    auto holder = readOptional(store, txn, nodePath(frontendDir(device), key::CLAIMED_BY));
    if (!holder) {
        return fail(holder.error());
    }
    bool taken = *holder && !(options.isClaimAbandoned && options.isClaimAbandoned(**holder));
    return SlotCheck{!taken, *bus};
}

} // namespace

FrontendDevice::FrontendDevice(Store& store, DeviceId device, uint32_t bus, std::string token)
    : m_store(&store), m_device(device), m_bus(bus), m_token(std::move(token)) {}

FrontendDevice::FrontendDevice(FrontendDevice&& other) noexcept
    : m_store(other.m_store), m_device(other.m_device), m_bus(other.m_bus),
      m_token(std::move(other.m_token)), m_phase(other.m_phase), m_watching(other.m_watching) {
    other.m_watching = false;
}

FrontendDevice::~FrontendDevice() {
    if (m_watching) {
        (void)m_store->unwatch(nodePath(backendDir(m_device), key::STATE), watchToken());
    }
}

std::string FrontendDevice::watchToken() const {
    return "xkbus-fe:" + std::to_string(m_device.domid) + ":" + std::to_string(m_device.devid);
}

Result<FrontendDevice> FrontendDevice::claim(Store& store, FrontendOptions options) {
    if (!parseClaimToken(options.claimToken) || options.domid == BACKEND_DOMID) {
        return fail(Errc::INVALID);
    }
    auto names = store.list(NO_TRANSACTION, frontendRoot(options.domid));
    if (!names) {
        return fail(names.error());
    }
    std::vector<DevId> devids;
    for (const auto& name : *names) {
        if (auto devid = parseDevId(name)) {
            devids.push_back(*devid);
        }
    }
    if (devids.empty()) {
        return fail(NOT_FOUND);
    }
    std::sort(devids.begin(), devids.end());
    auto claimed = withTransaction(store, [&](TransactionId txn) -> Result<Slot> {
        for (DevId devid : devids) {
            DeviceId device{options.domid, devid};
            auto slot = checkSlot(store, txn, device, options);
            if (!slot) {
                return fail(slot.error());
            }
            if (!slot->free) {
                continue;
            }
            auto written = store.write(txn, nodePath(frontendDir(device), key::CLAIMED_BY),
                                       options.claimToken);
            if (!written) {
                return fail(written.error());
            }
            return Slot{devid, slot->bus};
        }
        return fail(Errc::TOO_MANY);
    });
    if (!claimed) {
        return fail(claimed.error());
    }
    return FrontendDevice(store, {options.domid, claimed->devid}, claimed->bus,
                          std::move(options.claimToken));
}

Result<void> FrontendDevice::publish(const DeviceParams& params) {
    if (m_phase != FrontendPhase::CLAIMED) {
        return fail(Errc::INVALID);
    }
    const std::string front = frontendDir(m_device);
    auto published = withTransaction(*m_store, [&](TransactionId txn) -> Result<bool> {
        auto holder = readOptional(*m_store, txn, nodePath(front, key::CLAIMED_BY));
        if (!holder) {
            return fail(holder.error());
        }
        if (!*holder || **holder != m_token) {
            return false;
        }
        const std::pair<std::string_view, uint32_t> nodes[] = {
            {key::PROTOCOL_VERSION, params.protocolVersion},
            {key::CONTROL_REF, params.controlRef},
            {key::EVENT_CHANNEL, params.eventChannel},
            {key::TO_BACKEND_ORDER, params.toBackendOrder},
            {key::TO_FRONTEND_ORDER, params.toFrontendOrder},
            {key::STATE, static_cast<uint32_t>(XenbusState::INITIALISED)},
        };
        for (const auto& [key, value] : nodes) {
            if (auto r = m_store->write(txn, nodePath(front, key), std::to_string(value)); !r) {
                return fail(r.error());
            }
        }
        return true;
    });
    if (!published) {
        return fail(published.error());
    }
    if (!*published) {
        m_phase = FrontendPhase::CLOSED;
        return fail(Errc::DISCONNECTED); // the slot was taken from us
    }
    m_phase = FrontendPhase::PUBLISHED;
    if (auto r = m_store->watch(nodePath(backendDir(m_device), key::STATE), watchToken()); !r) {
        return r;
    }
    m_watching = true;
    return {};
}

Result<void> FrontendDevice::writeState(XenbusState state) {
    const std::string front = frontendDir(m_device);
    auto written = withTransaction(*m_store, [&](TransactionId txn) -> Result<bool> {
        auto holder = readOptional(*m_store, txn, nodePath(front, key::CLAIMED_BY));
        if (!holder) {
            return fail(holder.error());
        }
        if (!*holder || **holder != m_token) {
            return false;
        }
        if (auto r = m_store->write(txn, nodePath(front, key::STATE), formatState(state)); !r) {
            return fail(r.error());
        }
        return true;
    });
    if (!written) {
        return fail(written.error());
    }
    if (!*written) {
        m_phase = FrontendPhase::CLOSED;
    }
    return {};
}

Result<FrontendPhase> FrontendDevice::update() {
    if (m_phase == FrontendPhase::CLOSED) {
        return m_phase;
    }
    auto backend = readState(*m_store, NO_TRANSACTION, backendDir(m_device));
    if (!backend) {
        return fail(backend.error());
    }
    auto decision = decideFrontend(m_phase, *backend);
    m_phase = decision.next;
    if (decision.action == FrontendAction::WRITE_CONNECTED) {
        if (auto r = writeState(XenbusState::CONNECTED); !r) {
            return fail(r.error());
        }
    } else if (decision.action == FrontendAction::WRITE_CLOSED) {
        if (auto r = writeState(XenbusState::CLOSED); !r) {
            return fail(r.error());
        }
    }
    return m_phase;
}

Result<void> FrontendDevice::close() {
    switch (m_phase) {
    case FrontendPhase::CLAIMED:
        m_phase = FrontendPhase::CLOSED;
        return writeState(XenbusState::CLOSED); // the backend frees the slot
    case FrontendPhase::PUBLISHED:
    case FrontendPhase::CONNECTED:
        m_phase = FrontendPhase::CLOSING;
        return writeState(XenbusState::CLOSING);
    case FrontendPhase::CLOSING:
    case FrontendPhase::CLOSED:
        break;
    }
    return {};
}

std::string FrontendDevice::backendReason() const {
    auto reason = m_store->read(NO_TRANSACTION, nodePath(backendDir(m_device), key::REASON));
    if (!reason || reason->size() > MAX_GUEST_VALUE_BYTES * 4) {
        return {};
    }
    return *reason;
}

} // namespace xkbus::xenstore
