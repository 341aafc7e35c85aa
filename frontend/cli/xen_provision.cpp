// xen-provision: what `xl` does to attach a PV device, for xkbus: the
// backend and frontend nodes of device slots for a domain, with their
// permissions, in state InitWait. xkbusd --xen maps the guests that claim them.
#include "xen_provision.hpp"

#include "commands.hpp"
#include "exit_codes.hpp"

#include <charconv>
#include <fmt/core.h>
#include <nlohmann/json.hpp>
#include <xkbus/xenstore/backend_device.hpp>
#include <xkbus/xenstore/xs_store.hpp>

namespace xkbus::cli {

namespace {

// Refuses to connect anything: the CLI only writes slots.
class NoConnector final : public xenstore::Connector {
public:
    Result<void> connect(xenstore::DeviceId, uint32_t, const xenstore::DeviceParams&) override {
        return fail(Errc::NOT_SUPPORTED);
    }
    void disconnect(xenstore::DeviceId) override {}
};

} // namespace

Result<uint32_t> findDomain(xenstore::Store& store, const std::string& which) {
    uint32_t domid = 0;
    auto [end, ec] = std::from_chars(which.data(), which.data() + which.size(), domid);
    if (ec == std::errc() && end == which.data() + which.size()) {
        return domid;
    }
    auto ids = store.list(xenstore::NO_TRANSACTION, "/local/domain");
    if (!ids) {
        return fail(ids.error());
    }
    for (const auto& id : *ids) {
        auto name = store.read(xenstore::NO_TRANSACTION, "/local/domain/" + id + "/name");
        if (name && *name == which) {
            return static_cast<uint32_t>(std::stoul(id));
        }
    }
    return fail(Errc::NO_SUCH_DEVICE);
}

int xenProvision(const Options& o, const std::string& which, uint32_t slots) {
    auto store = xenstore::openXsStore();
    if (!store) {
        return failWith("cannot open xenstore", store.error());
    }
    auto found = findDomain(**store, which);
    if (!found) {
        return failWith("no running domain " + which, found.error());
    }
    const uint32_t domid = *found;
    NoConnector none;
    xenstore::BackendDevices backend(**store, none, {});
    if (auto ok = backend.provision(static_cast<xenstore::DomId>(domid),
                                    xenstore::SlotPlan{o.bus(), slots});
        !ok) {
        return failWith(fmt::format("provision domain {}", domid), ok.error());
    }
    printResult(o.output,
                fmt::format("domain {}: {} xkbus slot(s) on bus {}", domid, slots, o.bus()),
                nlohmann::json({{"domid", domid}, {"bus", o.bus()}, {"slots", slots}}).dump());
    return EXIT_OK;
}

} // namespace xkbus::cli
