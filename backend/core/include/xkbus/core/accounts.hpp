// Accounting by tenant. Every Ksock belongs to a charge group (a guest
// domain, a local user: OpenOptions::chargeGroup), and everything a group can
// make the bus hold is counted against the group's limits, across every bus
// of a Core: its Ksocks, its bindings and the trie nodes and name bytes they
// keep, the copies queued to it and the places it holds for replies, their
// bytes, and its blocked ALL_OR_WAIT sends. docs/security.md lists each
// limit, its default and the errno a tenant gets when it reaches it.
#pragma once

#include <cstdint>
#include <limits>

namespace xkbus::core {

struct TenantLimits {
    uint32_t ksocks = 2048;           // open Ksocks: EMFILE beyond
    uint32_t bindings = 16384;        // bindings: ENOMEM beyond
    uint32_t indexNodes = 32768;      // trie nodes its bindings keep (a word each): ENOMEM
    uint64_t nameBytes = 1u << 20;    // bytes of its binding names: ENOMEM
    uint32_t queuedMessages = 16384;  // copies queued to it + places held for replies: full
    uint64_t queuedBytes = 16u << 20; // KBUS "entire" bytes of those copies: full
    uint32_t pendingSends = 16;       // blocked ALL_OR_WAIT messages held for it: ENOMEM

    // No limit at all: KBUS's own behaviour, for tests and benchmarks.
    static constexpr TenantLimits unlimited() {
        constexpr uint32_t many = std::numeric_limits<uint32_t>::max();
        constexpr uint64_t huge = std::numeric_limits<uint64_t>::max() / 2;
        return TenantLimits{many, many, many, huge, many, huge, many};
    }
    friend bool operator==(const TenantLimits&, const TenantLimits&) = default;
};

// What a charge group holds now, in the units of TenantLimits.
struct TenantUsage {
    uint32_t ksocks = 0;
    uint32_t bindings = 0;
    uint32_t indexNodes = 0;
    uint64_t nameBytes = 0;
    uint32_t queuedMessages = 0;
    uint64_t queuedBytes = 0;
    uint32_t pendingSends = 0;
    friend bool operator==(const TenantUsage&, const TenantUsage&) = default;
};

struct GroupUsage {
    uint32_t group = 0;
    TenantUsage used;
    TenantLimits limits; // the limits in force for it
};

} // namespace xkbus::core
