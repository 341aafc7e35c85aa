// See event_pacer.hpp.
#include <algorithm>
#include <charconv>
#include <vector>
#include <xkbus/xenstore/event_pacer.hpp>

namespace xkbus::xenstore {

namespace {

constexpr std::string_view DOMAIN_PREFIX = "/local/domain/";
constexpr std::string_view BACKEND_PREFIX = "/local/domain/0/backend/";

std::optional<DomId> leadingDomId(std::string_view text) {
    const auto end = text.find('/');
    const std::string_view digits = text.substr(0, end);
    unsigned value = 0;
    const auto [last, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (error != std::errc() || last != digits.data() + digits.size() || value > 0xffff) {
        return std::nullopt;
    }
    return static_cast<DomId>(value);
}

} // namespace

std::optional<DomId> guestOfEvent(std::string_view path) {
    if (path.starts_with(BACKEND_PREFIX)) {
        std::string_view rest = path.substr(BACKEND_PREFIX.size()); // TYPE/N/...
        const auto slash = rest.find('/');
        if (slash == std::string_view::npos) {
            return std::nullopt;
        }
        return leadingDomId(rest.substr(slash + 1));
    }
    if (!path.starts_with(DOMAIN_PREFIX)) {
        return std::nullopt;
    }
    auto domid = leadingDomId(path.substr(DOMAIN_PREFIX.size()));
    return domid && *domid != 0 ? domid : std::nullopt;
}

void EventPacer::push(WatchEvent event) {
    const auto guest = guestOfEvent(event.path);
    Queue& queue = m_queues[guest ? uint32_t{*guest} : HOST];
    if (!queue.keys.emplace(event.path, event.token).second) {
        return; // the same event already waits: handling it once re-reads all
    }
    queue.events.push_back(std::move(event));
    ++m_waiting;
}

bool EventPacer::runPass(const std::function<void(const WatchEvent&)>& handle,
                         Clock::time_point now) {
    m_transitions.clear();
    for (auto& [key, bucket] : m_buckets) {
        refill(bucket, now);
    }
    // Keys first: a handler may push events (none today), and a domain's
    // queue may not be erased while it is being served.
    std::vector<uint32_t> keys;
    for (const auto& [key, queue] : m_queues) {
        keys.push_back(key);
    }
    for (uint32_t key : keys) {
        serveDomain(key, m_queues[key], handle);
    }
    std::erase_if(m_queues, [](const auto& entry) { return entry.second.events.empty(); });
    // A full bucket is the same as none: forget it.
    std::erase_if(m_buckets, [this](const auto& entry) {
        return entry.second.tokens >= m_limits.transitionBurst && !m_queues.contains(entry.first);
    });
    for (const auto& [key, queue] : m_queues) {
        if (!throttled(key)) {
            return true;
        }
    }
    return false;
}

void EventPacer::noteTransition(DomId domid, Clock::time_point now) {
    ++m_transitions[domid];
    auto [bucket, fresh] = m_buckets.try_emplace(domid);
    if (fresh) {
        bucket->second = {m_limits.transitionBurst, now};
    }
    bucket->second.tokens -= 1; // may go below zero: a debt paid back in time
}

// Tokens come back at transitionsPerSecond, up to transitionBurst.
void EventPacer::refill(Bucket& bucket, Clock::time_point now) const {
    const std::chrono::duration<double> elapsed = now - bucket.refilled;
    if (elapsed.count() > 0) {
        bucket.tokens = std::min(m_limits.transitionBurst,
                                 bucket.tokens + elapsed.count() * m_limits.transitionsPerSecond);
        bucket.refilled = now;
    }
}

bool EventPacer::throttled(uint32_t key) const {
    auto bucket = m_buckets.find(key);
    return bucket != m_buckets.end() && bucket->second.tokens < 1;
}

std::optional<EventPacer::Clock::time_point> EventPacer::nextRefill() const {
    std::optional<Clock::time_point> first;
    for (const auto& [key, queue] : m_queues) {
        if (!throttled(key)) {
            continue;
        }
        const Bucket& bucket = m_buckets.at(key);
        const std::chrono::duration<double> wait((1 - bucket.tokens) /
                                                 m_limits.transitionsPerSecond);
        const auto at = bucket.refilled + std::chrono::duration_cast<Clock::duration>(wait);
        first = first ? std::min(*first, at) : at;
    }
    return first;
}

void EventPacer::serveDomain(uint32_t key, Queue& queue,
                             const std::function<void(const WatchEvent&)>& handle) {
    for (size_t served = 0; served < m_limits.eventsPerDomainPerPass && !queue.events.empty();
         ++served) {
        if (m_transitions[key] >= m_limits.transitionsPerDomainPerPass || throttled(key)) {
            return; // the rest waits for the next pass, or for its budget
        }
        WatchEvent event = std::move(queue.events.front());
        queue.events.pop_front();
        queue.keys.erase({event.path, event.token});
        --m_waiting;
        ++m_handled[key];
        handle(event);
    }
}

size_t EventPacer::handled(DomId domid) const {
    auto it = m_handled.find(domid);
    return it == m_handled.end() ? 0 : it->second;
}

} // namespace xkbus::xenstore
