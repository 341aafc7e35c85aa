// Message-name rules: what may be bound, what may be sent, and how a binding's
// name (possibly ending in ".*" or ".%") matches a message name.
#pragma once

#include <cstdint>
#include <string_view>
#include <xkbus/common/result.hpp>

namespace xkbus {

enum class WildKind : uint8_t {
    NONE,    // "$.a.b" matches only itself
    STAR,    // "$.a.*" matches every name below "$.a"
    PERCENT, // "$.a.%" matches the names exactly one word below "$.a"
};

WildKind wildKindOf(std::string_view bindName) noexcept;

// For BIND/UNBIND: empty names are BAD_NAME (as KBUS), wildcards allowed.
Result<void> checkBindName(std::string_view name) noexcept;

// For SEND: an empty name is INVALID (as KBUS), wildcards are BAD_NAME.
Result<void> checkMessageName(std::string_view name) noexcept;

// True if a binding to `bindName` receives messages named `messageName`.
// Both must already be valid. The plain-string reference form of the rule.
bool nameMatches(std::string_view bindName, std::string_view messageName) noexcept;

} // namespace xkbus
