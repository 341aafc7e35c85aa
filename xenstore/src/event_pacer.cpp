// See event_pacer.hpp.
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

bool EventPacer::runPass(const std::function<void(const WatchEvent&)>& handle) {
    m_transitions.clear();
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
    return m_waiting > 0;
}

void EventPacer::serveDomain(uint32_t key, Queue& queue,
                             const std::function<void(const WatchEvent&)>& handle) {
    for (size_t served = 0; served < m_limits.eventsPerDomainPerPass && !queue.events.empty();
         ++served) {
        if (m_transitions[key] >= m_limits.transitionsPerDomainPerPass) {
            return; // the rest waits for the next pass
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
