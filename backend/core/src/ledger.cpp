#include "ledger.hpp"

#include <algorithm>

namespace xkbus::core {

GroupAccount& Ledger::account(uint32_t group) {
    auto [it, made] = m_accounts.try_emplace(group);
    it->second.group = group;
    return it->second;
}

GroupAccount* Ledger::find(uint32_t group) {
    auto it = m_accounts.find(group);
    return it == m_accounts.end() ? nullptr : &it->second;
}

void Ledger::dropIfIdle(GroupAccount& account) {
    if (account.used == TenantUsage{} && !account.override) {
        m_accounts.erase(account.group);
    }
}

void Ledger::setLimits(uint32_t group, const TenantLimits& limits) {
    account(group).override = limits;
}

void Ledger::clearLimits(uint32_t group) {
    auto it = m_accounts.find(group);
    if (it != m_accounts.end()) {
        it->second.override.reset();
        dropIfIdle(it->second);
    }
}

GroupUsage Ledger::usage(uint32_t group) const {
    auto it = m_accounts.find(group);
    if (it == m_accounts.end()) {
        return GroupUsage{group, {}, m_defaults};
    }
    return GroupUsage{group, it->second.used, limitsOf(it->second)};
}

std::vector<GroupUsage> Ledger::usages() const {
    std::vector<GroupUsage> out;
    out.reserve(m_accounts.size());
    for (const auto& [group, account] : m_accounts) {
        out.push_back(GroupUsage{group, account.used, limitsOf(account)});
    }
    std::sort(out.begin(), out.end(),
              [](const GroupUsage& a, const GroupUsage& b) { return a.group < b.group; });
    return out;
}

void Ledger::attach(uint32_t bus, Waker waker) {
    m_wakers[bus] = std::move(waker);
}

void Ledger::detach(uint32_t bus) {
    m_wakers.erase(bus);
    for (auto& [group, buses] : m_waiting) {
        buses.erase(bus);
    }
    std::erase_if(m_waiting, [](const auto& entry) { return entry.second.empty(); });
}

void Ledger::waiting(uint32_t group, uint32_t bus, bool starts) {
    if (starts) {
        ++m_waiting[group][bus];
        return;
    }
    auto it = m_waiting.find(group);
    if (it == m_waiting.end()) {
        return;
    }
    auto b = it->second.find(bus);
    if (b != it->second.end() && --b->second == 0) {
        it->second.erase(b);
    }
    if (it->second.empty()) {
        m_waiting.erase(it);
    }
}

void Ledger::roomIn(uint32_t group, uint32_t fromBus) {
    auto it = m_waiting.find(group);
    if (it == m_waiting.end()) {
        return;
    }
    std::vector<uint32_t> others;
    for (const auto& [bus, sends] : it->second) {
        if (bus != fromBus) {
            others.push_back(bus);
        }
    }
    for (uint32_t bus : others) { // a waker changes m_waiting: walk a copy
        auto waker = m_wakers.find(bus);
        if (waker == m_wakers.end()) {
            continue;
        }
        waker->second(group);
        if (std::find(m_touched.begin(), m_touched.end(), bus) == m_touched.end()) {
            m_touched.push_back(bus);
        }
    }
}

std::vector<uint32_t> Ledger::takeTouched() {
    std::vector<uint32_t> touched;
    touched.swap(m_touched);
    return touched;
}

} // namespace xkbus::core
