// One side's view of a connected ring pair: record framing on top of the two
// byte rings, the status bytes, and the "do I need to kick the peer" state.
// Pure memory operations: no syscalls, so it runs the same over Xen grants,
// local shared memory, or heap memory in tests.
#pragma once

#include <cstdint>
#include <memory>
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

// Whether publishing a record may kick the peer (when the peer asked to be).
enum class Kick : uint8_t {
    IF_ASKED, // the default: kick now if the peer is waiting for this
    // Not now: the peer looks at this record when it next wakes for another
    // reason. The kick is owed, and the next IF_ASKED record pays it; over
    // half a ring pending, LAZY acts as IF_ASKED so the peer drains it.
    LAZY,
    NEVER, // the peer waits for something else and needs no wakeup for this
};

// What the frontend's new note replaced, and so what its fd holds.
enum class NoteEmptied : uint8_t {
    FD_READABLE, // no note, or a finished take: the fd holds its one packet
    FD_EMPTY,    // our last note, never taken: the fd holds no packet
    BUSY,        // a take in progress: try again
};

// A record in parts, written back to back (a fixed part, then a body).
using RecordParts = std::span<const std::span<const std::byte>>;

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
    Result<void> trySend(RecordParts parts, Kick kick = Kick::IF_ASKED);
    Result<void> trySend(std::span<const std::byte> record, Kick kick = Kick::IF_ASKED) {
        const std::span<const std::byte> one[] = {record};
        return trySend(one, kick);
    }
    // Streams more of the pending record. True when nothing is pending.
    Result<bool> flush();
    bool sendPending() const noexcept { return m_outSent < m_outgoing.size(); }

    // Receiving; never waits. Copies at most one record out of the ring into
    // private memory and returns it once complete (the span lives until the
    // next call). nullopt: nothing complete yet. DISCONNECTED once the peer is
    // gone and nothing complete is left; PROTOCOL_VIOLATION on a broken ring.
    Result<std::optional<std::span<const std::byte>>> tryReceive();
    // The record the last tryReceive() returned, as a buffer of its own (the
    // endpoint starts a new one), so that its bytes need not be copied again.
    // Its size is the span tryReceive() returned.
    std::shared_ptr<std::byte[]> takeReceived();
    // True if the peer has published bytes we have not taken. A seq_cst read:
    // the second half of a "store my flag, then look at the ring" handshake.
    bool dataWaiting() noexcept;

    // Before sleeping: asks the peer to kick us on new data (and on free
    // space while a send is pending), then re-checks. True if progress is
    // already possible (or the peer is gone), so the caller must not sleep.
    Result<bool> armForWakeup();
    // A read-only check for spinning: could trySend/flush/tryReceive progress?
    bool mayProgress() noexcept;
    // True once after an operation whose effect the peer asked to be kicked for.
    bool takeKick() noexcept;

    // Readiness notes: one shared u16 per Ksock handle, for the backend that
    // keeps the Ksocks' pollable fds (docs/ring.md, "Readiness notes"). The
    // frontend notes "I emptied that fd, having seen `pushesSeen` PUSHED
    // records for it"; the backend, having published push number `push`
    // for it, takes the note only if the frontend had not seen that push,
    // makes the fd readable, and then says it is done (takeDone). Until
    // then the frontend must not write a new note (noteEmptied says BUSY:
    // try again). Out-of-range slots: no note, nothing to take.
    uint32_t readinessSlots() const noexcept { return m_layout.readinessSlots; }
    NoteEmptied noteEmptied(uint32_t slot, uint16_t pushesSeen) noexcept;
    // Takes our own note back; false if the backend took it first (its
    // packet is on the fd, or on its way).
    bool retractNote(uint32_t slot, uint16_t pushesSeen) noexcept;
    bool takeNoteUnseen(uint32_t slot, uint16_t push) noexcept;
    bool takeAnyNote(uint32_t slot) noexcept; // for a push not published yet
    void takeDone(uint32_t slot) noexcept;
    bool hasNote(uint32_t slot) noexcept;

    // Whether this side holds records back that did not fit in the ring (the
    // backend's queue for a slow reader). Set before the held record's
    // effects are visible, cleared after the last of them is published: a
    // reader that sees it clear, then reads the ring, has everything.
    void setBacklog(bool backlog) noexcept;
    bool peerBacklogged() noexcept;

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
    Result<void> stage(std::span<const std::byte> bytes, size_t& sent);
    void publish(Kick kick) noexcept;

    Layout m_layout; // private copy: the peer cannot resize our rings
    Role m_role = Role::FRONTEND;
    uint32_t m_maxRecordBytes = 0;
    uint8_t* m_ownStatus = nullptr;
    uint8_t* m_peerStatus = nullptr;
    uint8_t* m_ownBacklog = nullptr;
    uint8_t* m_peerBacklog = nullptr;
    uint16_t* m_readiness = nullptr; // readinessSlots() notes in page 0
    RingProducer m_producer;
    RingConsumer m_consumer;
    bool m_kick = false;
    bool m_kickOwed = false; // a LAZY publish passed the peer's event index
    bool m_halfFull = false; // after the last stage(): over half the ring unread
    std::string_view m_brokenReason;

    std::vector<std::byte> m_outgoing; // the rest of a record that did not fit
    size_t m_outSent = 0;

    std::byte m_inHeader[abi::RECORD_HEADER_BYTES] = {};
    size_t m_inHeaderHave = 0;
    uint32_t m_inLength = 0;                 // of the record being assembled
    size_t m_inHave = 0;                     // bytes of it copied so far
    bool m_inDelivered = false;              // the last call returned it
    std::shared_ptr<std::byte[]> m_incoming; // private copy; grows, never shrinks
    size_t m_incomingCapacity = 0;
};

} // namespace xkbus::ring
