// The xenstore connection in a build without libxenstore (XKBUS_WITH_XEN=OFF
// or not found): everything says NOT_SUPPORTED, so callers still link.
#include <xkbus/xenstore/xs_store.hpp>

namespace xkbus::xenstore {

bool xsStoreAvailable() {
    return false;
}

Result<std::unique_ptr<Store>> openXsStore() {
    return fail(Errc::NOT_SUPPORTED);
}

} // namespace xkbus::xenstore
