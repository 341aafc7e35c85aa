// Naming a Xen guest for `xkbus xen-provision`.
#pragma once

#include <cstdint>
#include <string>
#include <xkbus/xenstore/store.hpp>

namespace xkbus::cli {

// A domain by number, or by the name `xl create` gave it
// (/local/domain/ID/name), so a systemd unit can name the guest it is for.
// NO_SUCH_DEVICE if no running domain has that name.
Result<uint32_t> findDomain(xenstore::Store& store, const std::string& which);

} // namespace xkbus::cli
