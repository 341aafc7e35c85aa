// Path helpers shared by every Store user.
#include <xkbus/xenstore/store.hpp>

namespace xkbus::xenstore {

std::string_view parentPath(std::string_view path) {
    if (path.size() < 2 || path[0] != '/') {
        return {};
    }
    auto slash = path.rfind('/');
    return slash == 0 ? path.substr(0, 1) : path.substr(0, slash);
}

bool isWithin(std::string_view path, std::string_view ancestor) {
    if (!path.starts_with(ancestor)) {
        return false;
    }
    return path.size() == ancestor.size() || ancestor == "/" || path[ancestor.size()] == '/';
}

} // namespace xkbus::xenstore
