// One side's view of a connected ring pair: record framing on top of the two
// byte rings, the status bytes, and the "do I need to kick the peer" state.
// Pure memory operations: no syscalls, so it runs the same over Xen grants,
// local shared memory, or heap memory in tests.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>
#include <xkbus/common/kbus_types.hpp>
#include <xkbus/common/result.hpp>
#include <xkbus/ring/byte_ring.hpp>
#include <xkbus/ring/layout.hpp>

namespace xkbus::ring {

enum class Role : uint8_t { FRONTEND, BACKEND };

// The shared memory as mapped: page 0, and the ring pages (pageCount - 1 of
// them, possibly a separate mapping; empty when both rings fit in page 0).
struct RingMemory {
    std::span<std::byte> controlPage;
    std::span<std::byte> ringPages;
};

class Endpoint {
public:
    // Frontend: formats zeroed pages for `layout` (header, indices, grant
    // list) and marks itself live. The backend's status starts CONNECTING.
    static Result<Endpoint> format(RingMemory memory, const Layout& layout,
                                   std::span<const uint32_t> ringPageGrants,
                                   uint32_t maxRecordBytes = DEFAULT_MAX_MESSAGE_SIZE);
    // Backend: attaches to pages whose header readHeader() accepted as `layout`
    // (our private copy from now on) and marks itself live.
    static Result<Endpoint> attach(RingMemory memory, const Layout& layout,
                                   uint32_t maxRecordBytes = DEFAULT_MAX_MESSAGE_SIZE);

    // Sending; never waits. Starts one record: writes what fits and keeps the
    // rest privately, to stream it as the peer frees space (see flush()).
    // TRY_AGAIN while an earlier record is still streaming; MESSAGE_TOO_BIG
    // over the limit; DISCONNECTED if the peer is gone; PROTOCOL_VIOLATION
    // once the ring is broken.
    Result<void> trySend(std::span<const std::byte> record);
    // Streams more of the pending record. True when nothing is pending.
    Result<bool> flush();
    bool sendPending() const noexcept { return m_outSent < m_outgoing.size(); }

    // Receiving; never waits. Copies at most one record out of the ring into
    // private memory and returns it once complete (the span lives until the
    // next call). nullopt: nothing complete yet. DISCONNECTED once the peer is
    // gone and nothing complete is left; PROTOCOL_VIOLATION on a broken ring.
    Result<std::optional<std::span<const std::byte>>> tryReceive();

    // Before sleeping: asks the peer to kick us on new data (and on free
    // space while a send is pending), then re-checks. True if progress is
    // already possible (or the peer is gone), so the caller must not sleep.
    Result<bool> armForWakeup();
    // A read-only check for spinning: could trySend/flush/tryReceive progress?
    bool mayProgress() noexcept;
    // True once after an operation whose effect the peer asked to be kicked for.
    bool takeKick() noexcept;

    bool peerAlive() noexcept;
    // The local transport's liveness check found the peer dead: apply the
    // unmap-notify contract (zero its status byte) as its kernel would have.
    void markPeerGone() noexcept;
    // Clears our own status byte; the caller then kicks the peer.
    void close() noexcept;

    bool broken() const noexcept { return !m_brokenReason.empty(); }
    // Why the ring was declared broken; empty while it is healthy.
    std::string_view brokenReason() const noexcept { return m_brokenReason; }
    const Layout& layout() const noexcept { return m_layout; }
    Role role() const noexcept { return m_role; }

private:
    Endpoint(RingMemory memory, const Layout& layout, Role role, uint32_t maxRecordBytes);
    tl::unexpected<Errc> breakWith(std::string_view reason) noexcept;
    Result<void> checkPeer();
    Result<void> streamOut(std::span<const std::byte> bytes, size_t& sent, bool publish = true);

    Layout m_layout; // private copy: the peer cannot resize our rings
    Role m_role = Role::FRONTEND;
    uint32_t m_maxRecordBytes = 0;
    uint8_t* m_ownStatus = nullptr;
    uint8_t* m_peerStatus = nullptr;
    RingProducer m_producer;
    RingConsumer m_consumer;
    bool m_kick = false;
    std::string_view m_brokenReason;

    std::vector<std::byte> m_outgoing; // the rest of a record that did not fit
    size_t m_outSent = 0;

    std::byte m_inHeader[abi::RECORD_HEADER_BYTES] = {};
    size_t m_inHeaderHave = 0;
    uint32_t m_inLength = 0;           // of the record being assembled
    size_t m_inHave = 0;               // bytes of it copied so far
    bool m_inDelivered = false;        // the last call returned it
    std::vector<std::byte> m_incoming; // private copy; grows, never shrinks
};

} // namespace xkbus::ring
