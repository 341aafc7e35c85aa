// A guest process's connection to dom0's xkbusd: claim a device slot in
// xenstore, share a ring through grant tables, publish it, wait for the
// backend to say Connected.
#pragma once

#include <memory>
#include <xkbus/protocol/record_link.hpp>

namespace xkbus::frontend {

// True when this process runs in a Xen guest (not dom0), or when
// XKBUS_TRANSPORT=xen forces it; XKBUS_TRANSPORT=local forces local mode.
bool inXenGuest();

Result<std::unique_ptr<protocol::RecordLink>> connectXenGuest();

} // namespace xkbus::frontend
