// The Xen transport in a build without the Xen libraries: everything links,
// and every call says the transport is not available here.
#include <xkbus/ring/xen/xen_transport.hpp>

namespace xkbus::ring::xen {

bool builtWithXen() noexcept {
    return false;
}

Result<Connection> connectFrontend(DomId, const FrontendOptions&, std::string_view* why) {
    if (why != nullptr) {
        *why = "built without the Xen libraries (XKBUS_WITH_XEN)";
    }
    return fail(Errc::NOT_SUPPORTED);
}

Result<Connection> acceptBackend(DomId, GrantRef, EventPort, const BackendOptions&,
                                 std::string_view* why) {
    if (why != nullptr) {
        *why = "built without the Xen libraries (XKBUS_WITH_XEN)";
    }
    return fail(Errc::NOT_SUPPORTED);
}

} // namespace xkbus::ring::xen
