// The Store over the real libxenstore: xenstored's Unix socket in dom0
// (XENSTORED_PATH or XENSTORED_RUNDIR pick another one), /dev/xen/xenbus in
// a guest. Built without libxenstore it returns Errc::NOT_SUPPORTED.
#pragma once

#include <memory>
#include <xkbus/xenstore/store.hpp>

namespace xkbus::xenstore {

// True if this build has libxenstore.
bool xsStoreAvailable();
Result<std::unique_ptr<Store>> openXsStore();

} // namespace xkbus::xenstore
