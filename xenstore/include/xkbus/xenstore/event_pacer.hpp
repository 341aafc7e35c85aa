// Paces xenstore watch events per guest domain, so that one guest writing
// its nodes in a loop cannot keep the daemon's single loop in xenstore work
// while the rings wait (issue 15, docs/security.md "xenstore"). Events wait
// here, per domain, and each loop pass handles at most a few of each
// domain's, and none more from a domain that already made its quota of
// device state transitions in that pass, or that used up its budget of
// transitions per second (a token bucket: connecting maps grant pages, the
// dearest thing a guest can make dom0 do). Nothing is dropped: a repeat of an
// event still waiting is the same event (handlers re-read the store anyway,
// store.hpp), which also bounds what waits by the nodes a guest may have.
#pragma once

#include <chrono>
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
    double transitionsPerSecond = 20;       // per domain, on average
    double transitionBurst = 10;            // per domain, at once
};

// The guest an event concerns, from its path ("/local/domain/N/...", or
// dom0's "/local/domain/0/backend/TYPE/N/..."); nullopt for the host's own
// events (@introduceDomain, @releaseDomain, dom0's other nodes).
std::optional<DomId> guestOfEvent(std::string_view path);

class EventPacer {
public:
    using Clock = std::chrono::steady_clock;

    explicit EventPacer(PacerLimits limits = {}) : m_limits(limits) {}

    // Queues an event behind the others of its domain, unless the same one
    // still waits.
    void push(WatchEvent event);
    // One pass: hands each domain's oldest events to `handle`, within the
    // limits. Returns true while events wait that the next pass may handle;
    // false when none waits, or only those of domains out of transitions
    // for now (nextRefill() says until when).
    bool runPass(const std::function<void(const WatchEvent&)>& handle,
                 Clock::time_point now = Clock::now());
    // The handler tells the pacer that `domid` connected or disconnected a
    // device; `now` is the time of the pass.
    void noteTransition(DomId domid, Clock::time_point now = Clock::now());
    // When the first domain whose events wait for its transition budget may
    // go on; nullopt if none waits for that.
    std::optional<Clock::time_point> nextRefill() const;

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

    struct Bucket {
        double tokens = 0;
        Clock::time_point refilled;
    };

    void serveDomain(uint32_t key, Queue& queue,
                     const std::function<void(const WatchEvent&)>& handle);
    void refill(Bucket& bucket, Clock::time_point now) const;
    bool throttled(uint32_t key) const;

    PacerLimits m_limits;
    std::map<uint32_t, Queue> m_queues;
    std::map<uint32_t, size_t> m_transitions; // this pass
    std::map<uint32_t, Bucket> m_buckets;     // domains that made transitions
    std::map<uint32_t, size_t> m_handled;
    size_t m_waiting = 0;
};

} // namespace xkbus::xenstore
