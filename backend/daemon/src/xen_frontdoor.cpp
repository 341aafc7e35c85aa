// See xen_frontdoor.hpp.
#include "xen_frontdoor.hpp"

#include <xkbus/ring/xen/xen_transport.hpp>
#include <xkbus/xenstore/xs_store.hpp>

namespace xkbus::daemon {

namespace {

std::string deviceLabel(xenstore::DeviceId device) {
    return "dom" + std::to_string(device.domid) + " slot " + std::to_string(device.devid);
}

} // namespace

XenFrontdoor::XenFrontdoor(EventLoop& loop, PeerSink sink, std::shared_ptr<spdlog::logger> log,
                           uint32_t slotsPerGuest, ring::BackendOptions ringOptions,
                           xenstore::PacerLimits pacing)
    : m_loop(loop), m_sink(std::move(sink)), m_log(std::move(log)), m_slotsPerGuest(slotsPerGuest),
      m_ringOptions(ringOptions), m_pacer(pacing) {}

XenFrontdoor::~XenFrontdoor() = default;

Result<void> XenFrontdoor::start(std::unique_ptr<xenstore::Store> store) {
    if (!store) {
        auto opened = xenstore::openXsStore();
        if (!opened) {
            m_log->error("--xen: cannot open xenstore: {}", describe(opened.error()));
            return fail(opened.error());
        }
        store = std::move(*opened);
    }
    m_store = std::move(store);
    // Its expiry only makes a loop pass: the leftover hook serves the events.
    auto timer = LoopTimer::create(m_loop, [] {});
    if (!timer) {
        return fail(timer.error());
    }
    m_refillTimer = std::move(*timer);
    xenstore::BackendOptions options;
    options.log = [log = m_log](std::string_view message) { log->info("xen: {}", message); };
    if (m_slotsPerGuest > 0) {
        options.policy = [slots = m_slotsPerGuest](xenstore::DomId) {
            return std::optional<xenstore::SlotPlan>(xenstore::SlotPlan{0, slots});
        };
    }
    m_devices = std::make_unique<xenstore::BackendDevices>(*m_store, *this, std::move(options));
    if (auto started = m_devices->start(); !started) {
        m_log->error("--xen: cannot watch xenstore: {}", describe(started.error()));
        return started;
    }
    m_log->info("serving Xen guests through xenstore ({} slot(s) for each new guest)",
                m_slotsPerGuest);
    return {};
}

int XenFrontdoor::watchFd() const {
    return m_store ? m_store->watchFd() : -1;
}

// Reading them all keeps the level-triggered descriptor quiet; what waits
// in the pacer is bounded (a repeat of a waiting event is not kept twice).
void XenFrontdoor::onWatchReadable() {
    for (;;) {
        auto event = m_store->nextWatchEvent(std::chrono::milliseconds(0));
        if (!event) {
            if (event.error() != Errc::TIMED_OUT) {
                m_log->warn("xen: reading xenstore events: {}", describe(event.error()));
            }
            break;
        }
        m_pacer.push(std::move(*event));
    }
    // The loop's leftover hook (serveDeferred) handles them after this pass.
}

bool XenFrontdoor::serveDeferred() {
    if (m_pacer.waiting() == 0) {
        return false;
    }
    const auto now = xenstore::EventPacer::Clock::now();
    const bool more = m_pacer.runPass(
        [this](const xenstore::WatchEvent& event) {
            if (auto handled = m_devices->handleWatchEvent(event); !handled) {
                m_log->warn("xen: event on {}: {}", event.path, describe(handled.error()));
            }
        },
        now);
    if (auto refill = m_pacer.nextRefill(); !more && refill) {
        m_refillTimer->armIn(std::chrono::ceil<std::chrono::milliseconds>(*refill - now));
    }
    return more;
}

void XenFrontdoor::peerGone(ConnectionId id) {
    auto it = m_byPeer.find(id);
    if (it == m_byPeer.end()) {
        return;
    }
    const xenstore::DeviceId device = it->second;
    m_byPeer.erase(it);
    m_byDevice.erase(device);
    if (auto released = m_devices->releaseDevice(device); !released) {
        m_log->warn("xen: freeing {}: {}", deviceLabel(device), describe(released.error()));
    }
}

// The guest's values were range-checked by the xenstore layer; the ring
// layer checks the page they name before anything else uses it.
Result<void> XenFrontdoor::connect(xenstore::DeviceId device, uint32_t bus,
                                   const xenstore::DeviceParams& params) {
    m_pacer.noteTransition(device.domid);
    std::string_view why;
    auto connection = ring::xen::acceptBackend(device.domid, params.controlRef, params.eventChannel,
                                               m_ringOptions, &why);
    if (!connection) {
        m_log->warn("xen: refusing {}: {} ({})", deviceLabel(device), describe(connection.error()),
                    why);
        return fail(connection.error());
    }
    // A guest's processes share one tenant and charge group: the domain is
    // the unit dom0 can account for, whatever the guest says about its pids.
    // Its name is dom0's (xl's), not the guest's to choose.
    auto name = m_store->read(xenstore::NO_TRANSACTION,
                              "/local/domain/" + std::to_string(device.domid) + "/name");
    Tenant tenant = Tenant::guest(device.domid, name ? *name : std::string(), bus);
    const uint32_t chargeGroup = tenant.chargeGroup();
    const PeerInfo info{.domid = device.domid,
                        .pid = 0,
                        .trusted = false,
                        .chargeGroup = chargeGroup,
                        .tenant = std::move(tenant)};
    const ConnectionId id =
        m_sink.adopt(std::move(*connection), info, deviceLabel(device), UniqueFd());
    m_byDevice[device] = id;
    m_byPeer[id] = device;
    m_log->info("xen: {} connected on bus {} as peer #{}", deviceLabel(device), bus, id);
    return {};
}

void XenFrontdoor::disconnect(xenstore::DeviceId device) {
    m_pacer.noteTransition(device.domid);
    auto it = m_byDevice.find(device);
    if (it == m_byDevice.end()) {
        return;
    }
    const ConnectionId id = it->second;
    m_byDevice.erase(it);
    m_byPeer.erase(id);
    m_sink.drop(id, "its device closed (guest process or domain gone)");
}

} // namespace xkbus::daemon
