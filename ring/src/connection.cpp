// Connection setup over the transport seam, and the wait strategy: adaptive
// spin, then "arm, full barrier, re-check" and sleep on the event channel.
#include <algorithm>
#include <cstring>
#include <sched.h>
#include <xkbus/ring/connection.hpp>

namespace xkbus::ring {
namespace {

using Clock = std::chrono::steady_clock;

std::span<std::byte> bytesOf(const std::unique_ptr<Mapping>& mapping) noexcept {
    return mapping ? mapping->bytes() : std::span<std::byte>();
}

// A wait's deadline, read from the clock only once the call has to wait: a
// call that finds its record or room at once never reads it (a clock read
// can be a system call, as on a Xen PV guest without a vDSO clock).
class LazyDeadline {
public:
    explicit LazyDeadline(std::chrono::milliseconds timeout) : m_timeout(timeout) {}
    bool forever() const noexcept { return m_timeout.count() < 0; }
    Clock::time_point get() {
        if (!m_read) {
            m_at = Clock::now() + (forever() ? std::chrono::milliseconds(0) : m_timeout);
            m_read = true;
        }
        return m_at;
    }

private:
    std::chrono::milliseconds m_timeout;
    Clock::time_point m_at{};
    bool m_read = false;
};

void explain(std::string_view* why, std::string_view reason) noexcept {
    if (why != nullptr) {
        *why = reason;
    }
}

} // namespace

Connection::Connection(std::unique_ptr<Mapping> control, std::unique_ptr<Mapping> ringPages,
                       Transport transport, Endpoint endpoint, SpinPolicy spin, GrantRef controlRef)
    : m_control(std::move(control)), m_ringPages(std::move(ringPages)),
      m_transport(std::move(transport)), m_endpoint(std::move(endpoint)), m_spin(spin),
      m_controlRef(controlRef) {}

Connection::~Connection() {
    if (m_control && m_transport.events) {
        m_endpoint.close();
        (void)m_transport.events->notify(); // best effort: the peer may be gone
    }
}

Result<void> Connection::kickIfAsked() {
    if (!m_endpoint.takeKick()) {
        return {};
    }
    auto kicked = m_transport.events->notify();
    if (!kicked && kicked.error() == Errc::DISCONNECTED) {
        // The kick found the peer gone (the local socket's EPIPE): apply the
        // unmap-notify contract now. What it wrote before it died can still
        // be read; after that the ring reports DISCONNECTED itself.
        m_endpoint.markPeerGone();
        return {};
    }
    return kicked;
}

Result<void> Connection::checkLiveness() {
    if (!m_transport.liveness) {
        return {};
    }
    auto died = m_transport.liveness->peerDied();
    if (!died) {
        return fail(died.error());
    }
    if (*died && m_endpoint.peerAlive()) {
        // The unmap-notify contract, applied by the survivor: the dead side's
        // status byte reads zero from now on, as gntalloc would have left it.
        m_endpoint.markPeerGone();
    }
    return {};
}

Result<void> Connection::trySend(RecordParts parts, Kick kick) {
    auto sent = m_endpoint.trySend(parts, kick);
    auto kicked = kickIfAsked();
    return sent ? kicked : sent;
}

Result<bool> Connection::flush() {
    auto flushed = m_endpoint.flush();
    if (auto kicked = kickIfAsked(); !kicked && flushed) {
        return fail(kicked.error());
    }
    return flushed;
}

Result<std::optional<std::span<const std::byte>>> Connection::tryReceive() {
    auto record = m_endpoint.tryReceive();
    if (auto kicked = kickIfAsked(); !kicked && record) {
        return fail(kicked.error());
    }
    return record;
}

std::array<int, 2> Connection::pollFds() const noexcept {
    return {m_transport.events->pollFd(),
            m_transport.liveness ? m_transport.liveness->pollFd() : -1};
}

Result<void> Connection::onWakeup(bool livenessReadable) {
    if (m_transport.events->edgeTriggered()) {
        // Nothing to consume: every kick is reported once.
    } else if (auto acked = m_transport.events->acknowledge(); !acked) {
        return acked;
    }
    return livenessReadable ? checkLiveness() : Result<void>{};
}

bool Connection::noteEmptied(uint32_t slot, uint16_t pushesSeen) {
    for (;;) {
        switch (m_endpoint.noteEmptied(slot, pushesSeen)) {
        case NoteEmptied::FD_READABLE:
            return true;
        case NoteEmptied::FD_EMPTY:
            return false;
        case NoteEmptied::BUSY:
            ::sched_yield();
            break;
        }
    }
}

bool Connection::retractNote(uint32_t slot, uint16_t pushesSeen) {
    return m_endpoint.retractNote(slot, pushesSeen);
}

Result<bool> Connection::waitForProgress(Clock::time_point deadline, bool forever, int extraFd) {
    if (extraFd < 0 && m_spin.until([this] { return m_endpoint.mayProgress(); })) {
        return false;
    }
    auto armed = m_endpoint.armForWakeup();
    if (!armed) {
        return fail(armed.error());
    }
    if (*armed) {
        return false; // progress arrived between the spin and the arming
    }
    std::chrono::milliseconds timeout(-1);
    if (!forever) {
        const auto left = deadline - Clock::now();
        if (left <= Clock::duration::zero()) {
            return fail(Errc::TIMED_OUT);
        }
        // Round up so a sub-millisecond remainder still sleeps.
        timeout = std::chrono::ceil<std::chrono::milliseconds>(left);
    }
    auto waited = m_transport.events->wait(timeout, extraFd);
    if (!waited) {
        return fail(waited.error());
    }
    // The event channel watches for death as it waits (the local socket's
    // EOF, or Xen's unmap notify): only apply what it saw.
    if (auto live = checkLiveness(); !live) {
        return fail(live.error());
    }
    return *waited;
}

Result<void> Connection::send(RecordParts parts, Kick kick, std::chrono::milliseconds timeout) {
    LazyDeadline deadline(timeout);
    bool started = false;
    for (;;) {
        if (!started) {
            auto sent = trySend(parts, kick);
            if (sent) {
                started = true;
            } else if (sent.error() != Errc::TRY_AGAIN) {
                return sent;
            }
        }
        auto flushed = flush();
        if (!flushed) {
            return fail(flushed.error());
        }
        if (started && *flushed) {
            return {};
        }
        if (auto waited = waitForProgress(deadline.get(), deadline.forever()); !waited) {
            return fail(waited.error());
        }
    }
}

Result<std::span<const std::byte>> Connection::receive(std::chrono::milliseconds timeout) {
    LazyDeadline deadline(timeout);
    for (;;) {
        auto record = tryReceive();
        if (!record) {
            return fail(record.error());
        }
        if (*record) {
            return **record;
        }
        // Keep our own pending send moving: the peer may need it to answer.
        if (auto flushed = flush(); !flushed) {
            return fail(flushed.error());
        }
        if (auto waited = waitForProgress(deadline.get(), deadline.forever()); !waited) {
            return fail(waited.error());
        }
    }
}

Result<bool> Connection::waitForActivity(std::chrono::milliseconds timeout, int extraFd) {
    if (m_endpoint.mayProgress()) {
        return false;
    }
    const bool forever = timeout.count() < 0;
    const auto deadline = Clock::now() + (forever ? std::chrono::milliseconds(0) : timeout);
    return waitForProgress(deadline, forever, extraFd);
}

Result<Connection> openFrontend(PageSharer& sharer, Transport transport,
                                const FrontendOptions& options) {
    if (!transport.events) {
        return fail(Errc::INVALID);
    }
    auto layout = computeLayout(options.toBackendOrder, options.toFrontendOrder);
    if (!layout) {
        return fail(layout.error());
    }
    const UnmapNotify notify{static_cast<uint32_t>(abi::FRONTEND_STATUS_OFFSET),
                             transport.events->localPort()};
    auto control = sharer.share(1, &notify);
    if (!control) {
        return fail(control.error());
    }
    SharedPages ring;
    if (layout->ringPageCount() > 0) {
        auto shared = sharer.share(layout->ringPageCount(), nullptr);
        if (!shared) {
            return fail(shared.error());
        }
        ring = std::move(*shared);
    }
    auto endpoint = Endpoint::format({bytesOf(control->mapping), bytesOf(ring.mapping)}, *layout,
                                     ring.refs, options.maxRecordBytes);
    if (!endpoint) {
        return fail(endpoint.error());
    }
    return Connection(std::move(control->mapping), std::move(ring.mapping), std::move(transport),
                      std::move(*endpoint), options.spin, control->refs.at(0));
}

Result<Connection> openBackend(PageMapper& mapper, Transport transport, GrantRef controlRef,
                               const BackendOptions& options, std::string_view* why) {
    if (!transport.events) {
        return fail(Errc::INVALID);
    }
    const UnmapNotify notify{static_cast<uint32_t>(abi::BACKEND_STATUS_OFFSET),
                             transport.events->localPort()};
    auto control = mapper.map(std::span(&controlRef, 1), &notify);
    if (!control) {
        explain(why, "cannot map the control page");
        return fail(control.error());
    }
    auto layout = readHeader((*control)->bytes(), why);
    if (!layout) {
        return fail(layout.error());
    }
    if (std::max(layout->toBackendOrder, layout->toFrontendOrder) > options.maxRingOrder) {
        explain(why, "rings larger than this backend allows");
        return fail(Errc::PROTOCOL_VIOLATION);
    }
    // Copy the grant list out before using it: the peer may rewrite it.
    std::vector<GrantRef> refs(layout->ringPageCount());
    std::unique_ptr<Mapping> ring;
    if (!refs.empty()) {
        std::memcpy(refs.data(), (*control)->bytes().data() + abi::GRANT_LIST_OFFSET,
                    refs.size() * sizeof(GrantRef));
        auto mapped = mapper.map(refs, nullptr);
        if (!mapped) {
            explain(why, "cannot map the ring pages the grant list names");
            return fail(mapped.error());
        }
        ring = std::move(*mapped);
    }
    auto endpoint =
        Endpoint::attach({(*control)->bytes(), bytesOf(ring)}, *layout, options.maxRecordBytes);
    if (!endpoint) {
        explain(why, "mapped pages are smaller than the layout");
        return fail(endpoint.error());
    }
    auto connection = Connection(std::move(*control), std::move(ring), std::move(transport),
                                 std::move(*endpoint), options.spin, controlRef);
    // The frontend may have sent before we attached and may be asleep.
    if (auto kicked = connection.m_transport.events->notify(); !kicked) {
        return fail(kicked.error());
    }
    return connection;
}

} // namespace xkbus::ring
