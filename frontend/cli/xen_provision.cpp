// xen-provision: what `xl` does to attach a PV device, for xkbus: the
// backend and frontend nodes of device slots for a domain, with their
// permissions, in state InitWait. xkbusd --xen maps the guests that claim them.
#include "commands.hpp"
#include "exit_codes.hpp"

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

int xenProvision(const Options& o, uint32_t domid, uint32_t slots) {
    auto store = xenstore::openXsStore();
    if (!store) {
        return failWith("cannot open xenstore", store.error());
    }
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
