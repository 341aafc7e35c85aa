// BackendDevices: applies the backend decisions of state_machine.hpp to
// xenstore and the Connector. Every handler re-reads the nodes it needs, so a
// repeated, late or spurious watch event does nothing new.
#include "node_reads.hpp"

#include <xkbus/xenstore/backend_device.hpp>

namespace xkbus::xenstore {

using detail::readOptional;
using detail::readState;

namespace {

constexpr std::string_view INTRODUCE_TOKEN = "xkbus:introduce";
constexpr std::string_view RELEASE_TOKEN = "xkbus:release";
constexpr std::string_view FRONTEND_TOKEN_PREFIX = "xkbus:fe:";
constexpr std::string_view SLOTS_TOKEN = "xkbus:slots";
// CLOSE can be followed by RESET_SLOT (frontend already Closed); nothing needs more.
constexpr int MAX_STEPS_PER_EVENT = 4;

std::string frontendToken(DomId domid) {
    return std::string(FRONTEND_TOKEN_PREFIX) + std::to_string(domid);
}

std::string deviceName(DeviceId device) {
    return "dom" + std::to_string(device.domid) + "/xkbus/" + std::to_string(device.devid);
}

std::vector<Permission> readableBy(DomId owner, DomId reader) {
    return {{owner, Access::NONE}, {reader, Access::READ}};
}

} // namespace

BackendDevices::BackendDevices(Store& store, Connector& connector, BackendOptions options)
    : m_store(store), m_connector(connector), m_options(std::move(options)) {}

void BackendDevices::log(std::string_view message) const {
    if (m_options.log) {
        m_options.log(message);
    }
}

Result<void> BackendDevices::start() {
    if (auto r = m_store.watch(INTRODUCE_DOMAIN, INTRODUCE_TOKEN); !r) {
        return r;
    }
    if (auto r = m_store.watch(RELEASE_DOMAIN, RELEASE_TOKEN); !r) {
        return r;
    }
    // Slots another tool provisions while we run (`xkbus xen-provision`).
    if (auto r = m_store.watch(backendRoot(), SLOTS_TOKEN); !r) {
        return r;
    }
    auto domains = m_store.list(NO_TRANSACTION, backendRoot());
    if (!domains && domains.error() != NOT_FOUND) {
        return fail(domains.error());
    }
    for (const auto& name : domains.value_or(std::vector<std::string>{})) {
        auto domid = parseDomId(name);
        if (!domid || *domid == BACKEND_DOMID) {
            log("ignoring unexpected node " + nodePath(backendRoot(), name));
            continue;
        }
        if (auto r = adoptDomain(*domid); !r) {
            return r;
        }
    }
    return onIntroduceDomain(); // domains that appeared while no backend ran
}

// A slot's bus, from our own node; a broken one cannot be trusted: bus 0.
Result<uint32_t> BackendDevices::readSlotBus(DeviceId device) {
    auto bus = readOptional(m_store, NO_TRANSACTION, nodePath(backendDir(device), key::BUS));
    if (!bus) {
        return fail(bus.error());
    }
    return *bus ? parseBus(**bus).value_or(0) : 0;
}

Result<void> BackendDevices::adoptDomain(DomId domid) {
    auto introduced = m_store.isDomainIntroduced(domid);
    if (!introduced) {
        return fail(introduced.error());
    }
    if (!*introduced) {
        log("dom" + std::to_string(domid) + " is gone: removing its devices");
        return removeDomain(domid);
    }
    auto devids = m_store.list(NO_TRANSACTION, backendDomainDir(domid));
    if (!devids) {
        return devids.error() == NOT_FOUND ? Result<void>() : fail(devids.error());
    }
    Domain& domain = m_domains[domid];
    for (const auto& name : *devids) {
        auto devid = parseDevId(name);
        if (!devid) {
            continue;
        }
        auto bus = readSlotBus({domid, *devid});
        if (!bus) {
            return fail(bus.error());
        }
        domain.devices[*devid] = Device{*bus, false};
    }
    if (auto r = watchDomain(domid); !r) {
        return r;
    }
    for (auto& [devid, device] : domain.devices) {
        if (auto r = reconcile({domid, devid}); !r) {
            return r;
        }
    }
    return {};
}

Result<void> BackendDevices::provision(DomId domid, SlotPlan plan) {
    if (domid == BACKEND_DOMID || domid > MAX_DOMID || plan.bus > MAX_BUS || plan.slotCount == 0 ||
        plan.slotCount > m_options.maxSlotsPerDomain || plan.slotCount - 1 > MAX_DEVID) {
        return fail(Errc::INVALID);
    }
    auto introduced = m_store.isDomainIntroduced(domid);
    if (!introduced) {
        return fail(introduced.error());
    }
    if (!*introduced) {
        return fail(NOT_FOUND);
    }
    m_declined.erase(domid);
    Domain& domain = m_domains[domid];
    for (DevId devid = 0; devid < plan.slotCount; ++devid) {
        if (domain.devices.contains(devid)) {
            continue;
        }
        if (auto r = writeSlot({domid, devid}, plan.bus); !r) {
            return r;
        }
        domain.devices[devid] = Device{plan.bus, false};
        log("provisioned " + deviceName({domid, devid}) + " on bus " + std::to_string(plan.bus));
    }
    return watchDomain(domid);
}

Result<void> BackendDevices::watchDomain(DomId domid) {
    // Watching twice with the same token is refused (EEXIST): ignore that.
    auto r = m_store.watch(frontendRoot(domid), frontendToken(domid));
    if (!r && r.error() != Errc::INVALID) {
        return r;
    }
    return {};
}

// Writes a free slot: both directories, their permissions, backend InitWait
// and frontend Initialising, and no leftovers of an earlier session. Used
// both to provision and to give a slot back.
Result<void> BackendDevices::writeSlot(DeviceId device, uint32_t bus) {
    const std::string back = backendDir(device);
    const std::string front = frontendDir(device);
    return withTransaction(m_store, [&](TransactionId txn) -> Result<void> {
        auto deviceDir = readOptional(m_store, txn, parentPath(frontendRoot(device.domid)));
        if (!deviceDir) {
            return fail(deviceDir.error());
        }
        if (!*deviceDir) {
            // No toolstack made ~/device: make it, readable by the guest.
            auto dir = std::string(parentPath(frontendRoot(device.domid)));
            if (auto r = m_store.mkdir(txn, dir); !r) {
                return r;
            }
            if (auto r = m_store.setPermissions(txn, dir, readableBy(BACKEND_DOMID, device.domid));
                !r) {
                return r;
            }
        }
        // Parents first, so every node created below inherits their permissions.
        for (const std::string& dir :
             {backendRoot(), backendDomainDir(device.domid), back, frontendRoot(device.domid)}) {
            if (auto r = m_store.mkdir(txn, dir); !r) {
                return r;
            }
        }
        for (const std::string& dir :
             {backendDomainDir(device.domid), back, frontendRoot(device.domid)}) {
            if (auto r = m_store.setPermissions(txn, dir, readableBy(BACKEND_DOMID, device.domid));
                !r) {
                return r;
            }
        }
        // The frontend directory belongs to the guest (and counts against its
        // node quota), as xl sets up PV frontends; dom0 can always read it.
        if (auto r = m_store.mkdir(txn, front); !r) {
            return r;
        }
        if (auto r = m_store.setPermissions(txn, front, readableBy(device.domid, BACKEND_DOMID));
            !r) {
            return r;
        }
        for (std::string_view key : FRONTEND_SESSION_KEYS) {
            if (auto r = m_store.remove(txn, nodePath(front, key)); !r) {
                return r;
            }
        }
        const std::pair<std::string, std::string> nodes[] = {
            {nodePath(back, key::FRONTEND), front},
            {nodePath(back, key::FRONTEND_ID), std::to_string(device.domid)},
            {nodePath(back, key::BUS), std::to_string(bus)},
            {nodePath(back, key::MAX_PROTOCOL_VERSION), std::to_string(PROTOCOL_VERSION)},
            {nodePath(back, key::MAX_RING_ORDER), std::to_string(MAX_RING_ORDER)},
            {nodePath(back, key::STATE), formatState(XenbusState::INIT_WAIT)},
            {nodePath(front, key::BACKEND), back},
            {nodePath(front, key::BACKEND_ID), std::to_string(BACKEND_DOMID)},
            {nodePath(front, key::STATE), formatState(XenbusState::INITIALISING)},
        };
        for (const auto& [path, value] : nodes) {
            if (auto r = m_store.write(txn, path, value); !r) {
                return r;
            }
        }
        return m_store.remove(txn, nodePath(back, key::REASON));
    });
}

Result<void> BackendDevices::handleWatchEvent(const WatchEvent& event) {
    if (event.token == INTRODUCE_TOKEN) {
        return onIntroduceDomain();
    }
    if (event.token == RELEASE_TOKEN) {
        return onReleaseDomain();
    }
    if (event.token == SLOTS_TOKEN) {
        return onSlotsChanged(event.path);
    }
    if (event.token.starts_with(FRONTEND_TOKEN_PREFIX)) {
        auto domid = parseDomId(std::string_view(event.token).substr(FRONTEND_TOKEN_PREFIX.size()));
        if (domid) {
            return onFrontendEvent(*domid, event.path);
        }
    }
    return {}; // not ours
}

Result<void> BackendDevices::onFrontendEvent(DomId domid, std::string_view path) {
    auto domain = m_domains.find(domid);
    if (domain == m_domains.end()) {
        return {}; // late event for a domain already removed
    }
    const std::string root = frontendRoot(domid);
    if (!isWithin(path, root)) {
        return {};
    }
    if (path.size() == root.size()) { // the watch's first firing, or the root changed
        for (auto& [devid, device] : domain->second.devices) {
            if (auto r = reconcile({domid, devid}); !r) {
                return r;
            }
        }
        return {};
    }
    std::string_view rest = path.substr(root.size() + 1);
    auto slash = rest.find('/');
    auto devid = parseDevId(rest.substr(0, slash));
    // Only the state node (or the whole directory) drives the handshake;
    // params are read when the state says they are complete.
    bool drivesState = slash == std::string_view::npos || rest.substr(slash + 1) == key::STATE;
    if (!devid || !drivesState || !domain->second.devices.contains(*devid)) {
        return {};
    }
    return reconcile({domid, *devid});
}

Result<void> BackendDevices::reconcile(DeviceId id) {
    for (int step = 0; step < MAX_STEPS_PER_EVENT; ++step) {
        auto domain = m_domains.find(id.domid);
        if (domain == m_domains.end() || !domain->second.devices.contains(id.devid)) {
            return {};
        }
        Device& device = domain->second.devices[id.devid];
        auto backendState = readState(m_store, NO_TRANSACTION, backendDir(id));
        if (!backendState) {
            return fail(backendState.error());
        }
        auto frontendState = readState(m_store, NO_TRANSACTION, frontendDir(id));
        if (!frontendState) {
            return fail(frontendState.error());
        }
        auto decision = decideBackend({*backendState, *frontendState, device.connected});
        if (decision.action == BackendAction::NONE) {
            return {};
        }
        if (auto r = apply(id, device, decision); !r) {
            return r;
        }
    }
    return {};
}

Result<void> BackendDevices::apply(DeviceId id, Device& device, const BackendDecision& decision) {
    switch (decision.action) {
    case BackendAction::NONE:
        return {};
    case BackendAction::PROVISION:
    case BackendAction::RESET_SLOT:
        return writeSlot(id, device.bus);
    case BackendAction::CONNECT:
        return connectDevice(id, device);
    case BackendAction::CLOSE:
        return closeDevice(id, device, decision.reason);
    }
    return {};
}

Result<void> BackendDevices::connectDevice(DeviceId id, Device& device) {
    const std::string front = frontendDir(id);
    // One transaction: a consistent snapshot even if the guest rewrites them.
    auto raw = withTransaction(m_store, [&](TransactionId txn) -> Result<RawDeviceParams> {
        RawDeviceParams params;
        std::pair<std::string_view, std::optional<std::string>*> fields[] = {
            {key::PROTOCOL_VERSION, &params.protocolVersion},
            {key::CONTROL_REF, &params.controlRef},
            {key::EVENT_CHANNEL, &params.eventChannel},
            {key::TO_BACKEND_ORDER, &params.toBackendOrder},
            {key::TO_FRONTEND_ORDER, &params.toFrontendOrder},
        };
        for (auto& [key, out] : fields) {
            auto value = readOptional(m_store, txn, nodePath(front, key));
            if (!value) {
                return fail(value.error());
            }
            *out = std::move(*value);
        }
        return params;
    });
    if (!raw) {
        return fail(raw.error());
    }
    auto params = parseDeviceParams(*raw);
    if (!params) {
        std::string reason = "bad ";
        reason += params.error().key;
        reason += ": ";
        reason += params.error().why;
        return closeDevice(id, device, reason);
    }
    if (auto connected = m_connector.connect(id, device.bus, *params); !connected) {
        return closeDevice(id, device,
                           "connect failed: " + std::string(describe(connected.error())));
    }
    device.connected = true;
    log("connected " + deviceName(id));
    return m_store.write(NO_TRANSACTION, nodePath(backendDir(id), key::STATE),
                         formatState(XenbusState::CONNECTED));
}

Result<void> BackendDevices::closeDevice(DeviceId id, Device& device, std::string_view reason) {
    const std::string back = backendDir(id);
    log("closing " + deviceName(id) + ": " + std::string(reason));
    if (auto r = m_store.write(NO_TRANSACTION, nodePath(back, key::STATE),
                               formatState(XenbusState::CLOSING));
        !r) {
        return r;
    }
    if (device.connected) {
        m_connector.disconnect(id);
        device.connected = false;
    }
    if (auto r = m_store.write(NO_TRANSACTION, nodePath(back, key::REASON), reason); !r) {
        return r;
    }
    return m_store.write(NO_TRANSACTION, nodePath(back, key::STATE),
                         formatState(XenbusState::CLOSED));
}

Result<void> BackendDevices::releaseDevice(DeviceId id) {
    auto domain = m_domains.find(id.domid);
    if (domain == m_domains.end() || !domain->second.devices.contains(id.devid)) {
        return fail(NOT_FOUND);
    }
    Device& device = domain->second.devices[id.devid];
    if (device.connected) {
        m_connector.disconnect(id);
        device.connected = false;
    }
    log("released " + deviceName(id) + ": its process is gone");
    return writeSlot(id, device.bus);
}

Result<void> BackendDevices::removeDomain(DomId domid) {
    auto domain = m_domains.find(domid);
    if (domain != m_domains.end()) {
        for (auto& [devid, device] : domain->second.devices) {
            if (device.connected) {
                m_connector.disconnect({domid, devid});
                device.connected = false;
            }
        }
        m_domains.erase(domain);
        auto r = m_store.unwatch(frontendRoot(domid), frontendToken(domid));
        if (!r && r.error() != NOT_FOUND && r.error() != Errc::INVALID) {
            return r;
        }
        log("removed the devices of dom" + std::to_string(domid));
    }
    // xenstored already dropped the nodes the guest owned; ours remain.
    if (auto r = m_store.remove(NO_TRANSACTION, backendDomainDir(domid)); !r) {
        return r;
    }
    return m_store.remove(NO_TRANSACTION, frontendRoot(domid));
}

// Adopts slots that appeared under our root without us: a new domain's, or
// new ones of a domain we serve. Our own writes land here too and change
// nothing, because we already know every slot we made.
Result<void> BackendDevices::onSlotsChanged(std::string_view path) {
    const std::string root = backendRoot();
    if (!isWithin(path, root) || path.size() <= root.size() + 1) {
        return {};
    }
    const std::string_view rest = path.substr(root.size() + 1);
    auto domid = parseDomId(rest.substr(0, rest.find('/')));
    if (!domid || *domid == BACKEND_DOMID) {
        return {};
    }
    auto devids = m_store.list(NO_TRANSACTION, backendDomainDir(*domid));
    if (!devids) {
        return devids.error() == NOT_FOUND ? Result<void>() : fail(devids.error());
    }
    auto known = m_domains.find(*domid);
    if (known == m_domains.end()) {
        return devids->empty() ? Result<void>() : adoptDomain(*domid);
    }
    for (const auto& name : *devids) {
        auto devid = parseDevId(name);
        if (!devid || known->second.devices.contains(*devid)) {
            continue;
        }
        auto bus = readSlotBus({*domid, *devid});
        if (!bus) {
            return fail(bus.error());
        }
        known->second.devices[*devid] = Device{*bus, false};
        log("adopted " + deviceName({*domid, *devid}) + ", provisioned by another tool");
        if (auto r = reconcile({*domid, *devid}); !r) {
            return r;
        }
    }
    return {};
}

Result<void> BackendDevices::onIntroduceDomain() {
    if (!m_options.policy) {
        return {};
    }
    auto names = m_store.list(NO_TRANSACTION, "/local/domain");
    if (!names) {
        return names.error() == NOT_FOUND ? Result<void>() : fail(names.error());
    }
    for (const auto& name : *names) {
        auto domid = parseDomId(name);
        if (!domid || *domid == BACKEND_DOMID || m_domains.contains(*domid) ||
            m_declined.contains(*domid)) {
            continue;
        }
        auto introduced = m_store.isDomainIntroduced(*domid);
        if (!introduced) {
            return fail(introduced.error());
        }
        if (!*introduced) {
            continue; // a directory left behind, or a domain still being built
        }
        auto plan = m_options.policy(*domid);
        if (!plan) {
            m_declined.insert(*domid);
            continue;
        }
        if (auto r = provision(*domid, *plan); !r) {
            log("cannot provision dom" + std::to_string(*domid) + ": " +
                std::string(describe(r.error())));
            m_declined.insert(*domid);
        }
    }
    return {};
}

Result<void> BackendDevices::onReleaseDomain() {
    // The event names no domain (and may repeat): ask about each one we know.
    std::vector<DomId> known;
    for (const auto& [domid, domain] : m_domains) {
        known.push_back(domid);
    }
    known.insert(known.end(), m_declined.begin(), m_declined.end());
    for (DomId domid : known) {
        auto introduced = m_store.isDomainIntroduced(domid);
        if (!introduced) {
            return fail(introduced.error());
        }
        if (*introduced) {
            continue;
        }
        m_declined.erase(domid);
        if (m_domains.contains(domid)) {
            if (auto r = removeDomain(domid); !r) {
                return r;
            }
        }
    }
    return {};
}

std::vector<DeviceSnapshot> BackendDevices::devices() const {
    std::vector<DeviceSnapshot> out;
    for (const auto& [domid, domain] : m_domains) {
        for (const auto& [devid, device] : domain.devices) {
            out.push_back({{domid, devid}, device.bus, device.connected});
        }
    }
    return out;
}

} // namespace xkbus::xenstore
