// KBUS's rule for a name a message may be sent to, checked here so that an
// entire message's bad name fails at the write of its name, as in KBUS.
#pragma once

#include <string_view>
#include <xkbus/common/kbus_types.hpp>
#include <xkbus/common/result.hpp>

namespace xkbus::frontend {

// BAD_NAME for a malformed name or a wildcard; NAME_TOO_LONG over 1000 bytes.
Result<void> checkSendName(std::string_view name) noexcept;

} // namespace xkbus::frontend
