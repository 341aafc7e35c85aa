// Paces xenstore watch events per guest domain, so that one guest writing
// its nodes in a loop cannot keep the daemon's single loop in xenstore work
// while the rings wait (issue 15, docs/security.md "xenstore"). Events wait
// here, per domain, and each loop pass handles at most a few of each
// domain's, and none more from a domain that already made its quota of
// device state transitions in that pass. Nothing is dropped: a repeat of an
// event still waiting is the same event (handlers re-read the store anyway,
// store.hpp), which also bounds what waits by the nodes a guest may have.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <xkbus/xenstore/store.hpp>

namespace xkbus::xenstore {

struct PacerLimits {
    size_t eventsPerDomainPerPass = 8;
    size_t transitionsPerDomainPerPass = 2; // connects and disconnects
};

// The guest an event concerns, from its path ("/local/domain/N/...", or
// dom0's "/local/domain/0/backend/TYPE/N/..."); nullopt for the host's own
// events (@introduceDomain, @releaseDomain, dom0's other nodes).
std::optional<DomId> guestOfEvent(std::string_view path);

class EventPacer {
public:
    explicit EventPacer(PacerLimits limits = {}) : m_limits(limits) {}

    // Queues an event behind the others of its domain, unless the same one
    // still waits.
    void push(WatchEvent event);
    // One pass: hands each domain's oldest events to `handle`, within the
    // limits. Returns true while events wait.
    bool runPass(const std::function<void(const WatchEvent&)>& handle);
    // The handler tells the pacer that `domid` connected or disconnected a device.
    void noteTransition(DomId domid) { ++m_transitions[domid]; }

    size_t waiting() const noexcept { return m_waiting; }
    // Events handled so far for a domain (tests, statistics).
    size_t handled(DomId domid) const;

private:
    // The host's events under a key no guest has (DomId is 16 bits).
    static constexpr uint32_t HOST = 0x10000;
    struct Queue {
        std::deque<WatchEvent> events;
        std::set<std::pair<std::string, std::string>> keys; // (path, token) waiting
    };

    void serveDomain(uint32_t key, Queue& queue,
                     const std::function<void(const WatchEvent&)>& handle);

    PacerLimits m_limits;
    std::map<uint32_t, Queue> m_queues;
    std::map<uint32_t, size_t> m_transitions; // this pass
    std::map<uint32_t, size_t> m_handled;
    size_t m_waiting = 0;
};

} // namespace xkbus::xenstore
