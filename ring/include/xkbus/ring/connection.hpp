// A ring connection: the Endpoint plus the transport objects it runs on.
// Record-level send/receive for the client library (blocking, spin-then-sleep)
// and for the daemon's event loop (non-blocking, pollable). The records are
// opaque here; the bus protocol defines what is inside them.
#pragma once

#include <array>
#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <xkbus/common/kbus_types.hpp>
#include <xkbus/common/result.hpp>
#include <xkbus/ring/endpoint.hpp>
#include <xkbus/ring/spin.hpp>
#include <xkbus/ring/transport.hpp>

namespace xkbus::ring {

struct FrontendOptions {
    uint8_t toBackendOrder = 12; // 4 KiB each way: 3 pages in all
    uint8_t toFrontendOrder = 12;
    uint32_t maxRecordBytes = DEFAULT_MAX_MESSAGE_SIZE;
    SpinPolicy spin;
};

struct BackendOptions {
    uint32_t maxRecordBytes = DEFAULT_MAX_MESSAGE_SIZE;
    uint8_t maxRingOrder = abi::MAX_RING_ORDER; // caps the pages a frontend makes us map
    SpinPolicy spin;
};

// The transport objects a connection owns.
struct Transport {
    std::unique_ptr<EventChannel> events;
    std::unique_ptr<Liveness> liveness; // null when the event channel covers death
};

class Connection {
public:
    Connection(Connection&&) noexcept = default;
    Connection& operator=(Connection&&) noexcept = default;
    // Closes: clears our status byte, kicks the peer, unmaps.
    ~Connection();

    // --- Non-blocking, for an event loop. Each kicks the peer when it asked
    // (see Kick for the exceptions).
    Result<void> trySend(RecordParts parts, Kick kick = Kick::IF_ASKED); // see Endpoint::trySend
    Result<void> trySend(std::span<const std::byte> record, Kick kick = Kick::IF_ASKED) {
        const std::span<const std::byte> one[] = {record};
        return trySend(one, kick);
    }
    Result<bool> flush(); // true: nothing pending
    // One record, valid until the next receive call; nullopt: none yet.
    Result<std::optional<std::span<const std::byte>>> tryReceive();
    // The record tryReceive() just returned, as a buffer of its own.
    std::shared_ptr<std::byte[]> takeReceived() { return m_endpoint.takeReceived(); }
    // Descriptors to poll for readability (-1 entries: none). When one is
    // readable call onWakeup(), then tryReceive()/flush() until they stall.
    std::array<int, 2> pollFds() const noexcept;
    // True if pollFds()[0] must be watched edge-triggered (EPOLLET).
    bool edgeTriggered() const noexcept { return m_transport.events->edgeTriggered(); }
    // Consumes the kick and, if pollFds()[1] was readable, applies the
    // liveness contract if the peer died.
    Result<void> onWakeup(bool livenessReadable = true);

    // --- Blocking, for a client. Spin, then arm and sleep; TIMED_OUT after
    // `timeout` (negative: wait forever). Returns once the whole record is
    // in the ring.
    Result<void> send(RecordParts parts, Kick kick, std::chrono::milliseconds timeout);
    Result<void> send(std::span<const std::byte> record, std::chrono::milliseconds timeout) {
        const std::span<const std::byte> one[] = {record};
        return send(one, Kick::IF_ASKED, timeout);
    }
    Result<std::span<const std::byte>> receive(std::chrono::milliseconds timeout);
    // Waits (spin, then sleep) until a record or free space may be there,
    // `extraFd` (if >= 0) is readable, or the timeout passes (TIMED_OUT);
    // returns at once if progress is possible. True if extraFd is readable.
    Result<bool> waitForActivity(std::chrono::milliseconds timeout, int extraFd = -1);
    // True if the peer has published bytes not taken yet (a seq_cst read).
    bool dataWaiting() noexcept { return m_endpoint.dataWaiting(); }
    // The frontend's readiness notes (Endpoint). True if the fd holds its
    // readiness packet (our last note was taken, or retracted). A backend
    // busy with the slot is between taking our last note and making the fd
    // readable, a few instructions and one system call: we yield to it,
    // since it may share our CPU (docs/performance.md measures why a yield
    // and not a look at the fd).
    bool noteEmptied(uint32_t slot, uint16_t pushesSeen);
    // True if retracted; false if the backend took it: its packet for the
    // copy is on the fd, or on its way.
    bool retractNote(uint32_t slot, uint16_t pushesSeen);
    // A descriptor the peer handed over with the local transport, or -1.
    int takeDescriptor() {
        return m_transport.liveness ? m_transport.liveness->takeDescriptor() : -1;
    }
    // Asks the peer to kick us on new data (or space, while a send is
    // pending). False: nothing to do until a kick. True: progress is already
    // possible, so serve again before sleeping. For event loops.
    Result<bool> arm() { return m_endpoint.armForWakeup(); }

    // Frontend: the grant of page 0 and our event port, for the backend.
    GrantRef controlRef() const noexcept { return m_controlRef; }
    EventPort localPort() const noexcept { return m_transport.events->localPort(); }
    bool peerAlive() noexcept { return m_endpoint.peerAlive(); }
    std::string_view brokenReason() const noexcept { return m_endpoint.brokenReason(); }
    Endpoint& endpoint() noexcept { return m_endpoint; }
    std::chrono::nanoseconds spinBudget() const noexcept { return m_spin.budget(); }

private:
    friend Result<Connection> openFrontend(PageSharer&, Transport, const FrontendOptions&);
    friend Result<Connection> openBackend(PageMapper&, Transport, GrantRef, const BackendOptions&,
                                          std::string_view*);
    Connection(std::unique_ptr<Mapping> control, std::unique_ptr<Mapping> ringPages,
               Transport transport, Endpoint endpoint, SpinPolicy spin, GrantRef controlRef);
    Result<void> kickIfAsked();
    Result<void> checkLiveness();
    Result<bool> waitForProgress(std::chrono::steady_clock::time_point deadline, bool forever,
                                 int extraFd = -1);

    std::unique_ptr<Mapping> m_control;
    std::unique_ptr<Mapping> m_ringPages;
    Transport m_transport;
    Endpoint m_endpoint;
    AdaptiveSpin m_spin;
    GrantRef m_controlRef = 0;
};

// Frontend: shares the pages (page 0 with unmap notify on our status byte),
// formats them and returns the connection. Give the backend controlRef() and
// localPort() (xenstore, or the local handshake).
Result<Connection> openFrontend(PageSharer& sharer, Transport transport,
                                const FrontendOptions& options = {});

// Backend: maps page 0 (unmap notify on our status byte), checks the header,
// maps the ring pages the grant list names, attaches. A refused header gives
// PROTOCOL_VIOLATION with the reason in *why.
Result<Connection> openBackend(PageMapper& mapper, Transport transport, GrantRef controlRef,
                               const BackendOptions& options = {}, std::string_view* why = nullptr);

} // namespace xkbus::ring
