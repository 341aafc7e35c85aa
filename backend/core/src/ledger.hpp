// The accounts of every charge group, shared by the buses of a Core: what
// each group holds (TenantUsage) against its limits (a default, or an
// override the host set for that group). Buses sharing a ledger also tell
// each other when a group they wait on gains room (a send blocked on a
// group's quota on one bus, room made on another).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <unordered_map>
#include <vector>
#include <xkbus/core/accounts.hpp>

namespace xkbus::core {

struct GroupAccount {
    uint32_t group = 0;
    TenantUsage used;
    std::optional<TenantLimits> override;
    // What the send being planned claims in the group (valid while planStamp
    // matches the plan's).
    uint64_t planStamp = 0;
    uint32_t plannedMessages = 0;
    uint64_t plannedBytes = 0;
};

class Ledger {
public:
    explicit Ledger(const TenantLimits& defaults) : m_defaults(defaults) {}

    // The group's account, made if it has none; drop() it again if the
    // caller ends up charging nothing to it.
    GroupAccount& account(uint32_t group);
    GroupAccount* find(uint32_t group);
    // Forgets an account that holds nothing and has no override.
    void dropIfIdle(GroupAccount& account);
    const TenantLimits& limitsOf(const GroupAccount& account) const {
        return account.override ? *account.override : m_defaults;
    }

    void setLimits(uint32_t group, const TenantLimits& limits);
    void clearLimits(uint32_t group);
    GroupUsage usage(uint32_t group) const;
    std::vector<GroupUsage> usages() const; // by group

    // Plan stamps unique across the buses sharing the ledger.
    uint64_t nextStamp() noexcept { return ++m_stamp; }

    // Cross-bus waits. A bus attaches a waker, says when its sends start and
    // stop waiting on a group, and reports room in a group; the ledger wakes
    // the other buses waiting on it and remembers them as touched.
    using Waker = std::function<void(uint32_t group)>;
    void attach(uint32_t bus, Waker waker);
    void detach(uint32_t bus);
    void waiting(uint32_t group, uint32_t bus, bool starts);
    void roomIn(uint32_t group, uint32_t fromBus);
    std::vector<uint32_t> takeTouched();

private:
    TenantLimits m_defaults;
    std::unordered_map<uint32_t, GroupAccount> m_accounts; // node-based: addresses are stable
    std::unordered_map<uint32_t, std::map<uint32_t, uint32_t>> m_waiting; // group -> bus -> sends
    std::map<uint32_t, Waker> m_wakers;
    std::vector<uint32_t> m_touched;
    uint64_t m_stamp = 0;
};

} // namespace xkbus::core
