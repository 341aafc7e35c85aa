// Paths and names of the xkbus device protocol.
#include <xkbus/xenstore/device_protocol.hpp>

namespace xkbus::xenstore {

std::string_view stateName(XenbusState state) {
    switch (state) {
    case XenbusState::UNKNOWN:
        return "Unknown";
    case XenbusState::INITIALISING:
        return "Initialising";
    case XenbusState::INIT_WAIT:
        return "InitWait";
    case XenbusState::INITIALISED:
        return "Initialised";
    case XenbusState::CONNECTED:
        return "Connected";
    case XenbusState::CLOSING:
        return "Closing";
    case XenbusState::CLOSED:
        return "Closed";
    case XenbusState::RECONFIGURING:
        return "Reconfiguring";
    case XenbusState::RECONFIGURED:
        return "Reconfigured";
    }
    return "?";
}

std::string domainPath(DomId domid) {
    return "/local/domain/" + std::to_string(domid);
}

std::string backendRoot() {
    return domainPath(BACKEND_DOMID) + "/backend/xkbus";
}

std::string backendDomainDir(DomId domid) {
    return backendRoot() + "/" + std::to_string(domid);
}

std::string backendDir(DeviceId device) {
    return backendDomainDir(device.domid) + "/" + std::to_string(device.devid);
}

std::string frontendRoot(DomId domid) {
    return domainPath(domid) + "/device/xkbus";
}

std::string frontendDir(DeviceId device) {
    return frontendRoot(device.domid) + "/" + std::to_string(device.devid);
}

std::string nodePath(std::string_view dir, std::string_view key) {
    std::string path(dir);
    path += '/';
    path += key;
    return path;
}

} // namespace xkbus::xenstore
