// See xen_guest.hpp. The slot is claimed with a token naming this process
// (pid and start time), so a slot left by a crashed process can be taken
// over, and a recycled pid cannot pass for the process that died.
#include "xen_guest.hpp"

#include "client_spin.hpp"

#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <unistd.h>
#include <xkbus/ring/ring_link.hpp>
#include <xkbus/ring/xen/xen_transport.hpp>
#include <xkbus/xenstore/frontend_device.hpp>
#include <xkbus/xenstore/values.hpp>
#include <xkbus/xenstore/xs_store.hpp>

namespace xkbus::frontend {
namespace {

constexpr auto CONNECT_TIMEOUT = std::chrono::seconds(10);

// Field 22 of /proc/<pid>/stat, after the parenthesised command name.
std::optional<std::string> startTime(long pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto close = stat.rfind(')');
    if (close == std::string::npos) {
        return std::nullopt;
    }
    std::istringstream fields(stat.substr(close + 2));
    std::string field;
    for (int i = 3; i <= 22 && fields >> field; ++i) {
        if (i == 22) {
            return field;
        }
    }
    return std::nullopt;
}

std::string ownClaimToken() {
    const long pid = ::getpid();
    return std::to_string(pid) + "." + startTime(pid).value_or("0");
}

// A claim is abandoned when its process is gone or its pid was reused.
bool claimAbandoned(std::string_view token) {
    const auto dot = token.find('.');
    if (dot == std::string_view::npos) {
        return false;
    }
    const std::string pid(token.substr(0, dot));
    char* end = nullptr;
    const long value = std::strtol(pid.c_str(), &end, 10);
    if (end == pid.c_str() || *end != '\0' || value <= 0) {
        return false;
    }
    auto started = startTime(value);
    return !started || *started != token.substr(dot + 1);
}

// Owns what the ring runs on; the device is closed before the store goes.
struct GuestAttachments {
    std::unique_ptr<xenstore::Store> store;
    std::optional<xenstore::FrontendDevice> device;
};

Result<xenstore::DomId> ownDomain(xenstore::Store& store) {
    auto text = store.read(xenstore::NO_TRANSACTION, "domid");
    if (!text) {
        return fail(text.error());
    }
    auto domid = xenstore::parseDomId(*text);
    return domid ? Result<xenstore::DomId>(*domid) : fail(Errc::PROTOCOL_VIOLATION);
}

Result<void> awaitConnected(GuestAttachments& guest) {
    const auto deadline = std::chrono::steady_clock::now() + CONNECT_TIMEOUT;
    for (;;) {
        auto phase = guest.device->update();
        if (!phase) {
            return fail(phase.error());
        }
        if (*phase == xenstore::FrontendPhase::CONNECTED) {
            return {};
        }
        if (*phase == xenstore::FrontendPhase::CLOSED) {
            return fail(Errc::DISCONNECTED); // the backend refused or dropped the slot
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            return fail(Errc::TIMED_OUT);
        }
        auto event = guest.store->nextWatchEvent(left);
        if (!event && event.error() != Errc::TIMED_OUT) {
            return fail(event.error());
        }
    }
}

} // namespace

bool inXenGuest() {
    const char* forced = std::getenv("XKBUS_TRANSPORT");
    if (forced != nullptr && *forced != '\0') {
        return std::string_view(forced) == "xen";
    }
    std::ifstream caps("/proc/xen/capabilities");
    if (!caps) {
        return false;
    }
    std::string text((std::istreambuf_iterator<char>(caps)), std::istreambuf_iterator<char>());
    return text.find("control_d") == std::string::npos; // dom0 says control_d
}

Result<std::unique_ptr<protocol::RecordLink>> connectXenGuest() {
    auto guest = std::make_shared<GuestAttachments>();
    auto store = xenstore::openXsStore();
    if (!store) {
        return fail(store.error());
    }
    guest->store = std::move(*store);
    auto domid = ownDomain(*guest->store);
    if (!domid) {
        return fail(domid.error());
    }
    xenstore::FrontendOptions options;
    options.domid = *domid;
    options.claimToken = ownClaimToken();
    options.isClaimAbandoned = claimAbandoned;
    auto device = xenstore::FrontendDevice::claim(*guest->store, std::move(options));
    if (!device) {
        return fail(device.error());
    }
    guest->device.emplace(std::move(*device));
    ring::FrontendOptions ringOptions;
    ringOptions.spin = clientSpin();
    auto connection = ring::xen::connectFrontend(xenstore::BACKEND_DOMID, ringOptions);
    if (!connection) {
        return fail(connection.error());
    }
    const xenstore::DeviceParams params{xenstore::PROTOCOL_VERSION, connection->controlRef(),
                                        connection->localPort(), ringOptions.toBackendOrder,
                                        ringOptions.toFrontendOrder};
    if (auto published = guest->device->publish(params); !published) {
        return fail(published.error());
    }
    if (auto connected = awaitConnected(*guest); !connected) {
        return fail(connected.error());
    }
    return std::unique_ptr<protocol::RecordLink>(
        std::make_unique<ring::RingLink>(std::move(*connection), guest));
}

} // namespace xkbus::frontend
