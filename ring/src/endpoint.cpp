// Record framing over the two byte rings, status bytes and kick bookkeeping.
// Every peer-written value is read once, copied, then checked; a check that
// fails breaks the endpoint for good with a reason (never a silent stall).
#include <algorithm>
#include <cstring>
#include <xkbus/ring/endpoint.hpp>
#include <xkbus/ring/ordering.hpp>

namespace xkbus::ring {
namespace {

constexpr uint32_t PAGE = static_cast<uint32_t>(abi::PAGE_SIZE);
constexpr size_t HEADER_BYTES = abi::RECORD_HEADER_BYTES;

abi::ControlBlock& controlBlock(RingMemory memory) noexcept {
    return *reinterpret_cast<abi::ControlBlock*>(memory.controlPage.data());
}

std::byte* ringData(RingMemory memory, uint32_t offset) noexcept {
    return offset < PAGE ? memory.controlPage.data() + offset
                         : memory.ringPages.data() + (offset - PAGE);
}

bool memoryFits(RingMemory memory, const Layout& layout) noexcept {
    return memory.controlPage.size() >= abi::PAGE_SIZE &&
           reinterpret_cast<uintptr_t>(memory.controlPage.data()) % abi::CACHE_LINE == 0 &&
           memory.ringPages.size() >= size_t{layout.ringPageCount()} * abi::PAGE_SIZE;
}

// Never more than half a ring, so a waiting producer and a waiting consumer
// can never both be waiting for more than the other can give (no deadlock).
uint32_t batch(size_t remaining, uint32_t ringSize) noexcept {
    return static_cast<uint32_t>(std::clamp<size_t>(remaining, 1, ringSize / 2));
}

} // namespace

Endpoint::Endpoint(RingMemory memory, const Layout& layout, Role role, uint32_t maxRecordBytes)
    : m_layout(layout), m_role(role), m_maxRecordBytes(maxRecordBytes) {
    abi::ControlBlock& block = controlBlock(memory);
    const RingView toBackend{&block.toBackend, ringData(memory, layout.toBackendOffset),
                             layout.toBackendSize()};
    const RingView toFrontend{&block.toFrontend, ringData(memory, layout.toFrontendOffset),
                              layout.toFrontendSize()};
    const bool frontend = role == Role::FRONTEND;
    m_producer = RingProducer(frontend ? toBackend : toFrontend);
    m_consumer = RingConsumer(frontend ? toFrontend : toBackend);
    m_ownStatus = frontend ? &block.frontendStatus.status : &block.backendStatus.status;
    m_readiness = reinterpret_cast<uint16_t*>(memory.controlPage.data() + layout.readinessOffset);
    m_peerStatus = frontend ? &block.backendStatus.status : &block.frontendStatus.status;
    m_ownBacklog = frontend ? &block.frontendStatus.backlog : &block.backendStatus.backlog;
    m_peerBacklog = frontend ? &block.backendStatus.backlog : &block.frontendStatus.backlog;
}

Result<Endpoint> Endpoint::format(RingMemory memory, const Layout& layout,
                                  std::span<const uint32_t> ringPageGrants,
                                  uint32_t maxRecordBytes) {
    if (!memoryFits(memory, layout) || ringPageGrants.size() != layout.ringPageCount()) {
        return fail(Errc::INVALID);
    }
    // The backend has not been told where the pages are yet: plain writes.
    std::memset(memory.controlPage.data(), 0, abi::CONTROL_BYTES);
    writeHeader(memory.controlPage, layout);
    if (!ringPageGrants.empty()) {
        std::memcpy(memory.controlPage.data() + abi::GRANT_LIST_OFFSET, ringPageGrants.data(),
                    ringPageGrants.size_bytes());
    }
    Endpoint endpoint(memory, layout, Role::FRONTEND, maxRecordBytes);
    storeRelease(*endpoint.m_peerStatus, abi::STATUS_CONNECTING);
    storeRelease(*endpoint.m_ownStatus, abi::STATUS_LIVE);
    return endpoint;
}

Result<Endpoint> Endpoint::attach(RingMemory memory, const Layout& layout,
                                  uint32_t maxRecordBytes) {
    if (!memoryFits(memory, layout)) {
        return fail(Errc::INVALID);
    }
    Endpoint endpoint(memory, layout, Role::BACKEND, maxRecordBytes);
    // Release: our fresh indices are in place before the frontend sees us live.
    storeRelease(*endpoint.m_ownStatus, abi::STATUS_LIVE);
    return endpoint;
}

tl::unexpected<Errc> Endpoint::breakWith(std::string_view reason) noexcept {
    if (m_brokenReason.empty()) {
        m_brokenReason = reason;
    }
    return fail(Errc::PROTOCOL_VIOLATION);
}

Result<void> Endpoint::checkPeer() {
    const uint8_t status = loadAcquire(*m_peerStatus);
    if (status == abi::STATUS_GONE) {
        return fail(Errc::DISCONNECTED);
    }
    const bool connectingIsValid = m_role == Role::FRONTEND;
    if (status != abi::STATUS_LIVE && !(connectingIsValid && status == abi::STATUS_CONNECTING)) {
        return breakWith("peer status byte holds an impossible value");
    }
    return {};
}

// Copies what fits of bytes[sent..] into the ring, unpublished.
Result<void> Endpoint::stage(std::span<const std::byte> bytes, size_t& sent) {
    auto space = m_producer.freeSpace();
    if (!space) {
        return breakWith("consumer index is behind the ring or ahead of the producer");
    }
    const size_t now = std::min<size_t>(*space, bytes.size() - sent);
    m_producer.stage(bytes.subspan(sent, now));
    sent += now;
    m_halfFull = *space - now < m_producer.size() / 2;
    return {};
}

void Endpoint::publish(Kick kick) noexcept {
    const bool crossed = m_producer.publish();
    if (kick == Kick::LAZY && m_halfFull) {
        kick = Kick::IF_ASKED; // the peer must drain before we can go on
    }
    switch (kick) {
    case Kick::IF_ASKED:
        m_kick = m_kick || crossed || std::exchange(m_kickOwed, false);
        break;
    case Kick::LAZY:
        m_kickOwed = m_kickOwed || crossed;
        break;
    case Kick::NEVER:
        break;
    }
}

Result<void> Endpoint::trySend(RecordParts parts, Kick kick) {
    if (broken()) {
        return fail(Errc::PROTOCOL_VIOLATION);
    }
    size_t total = 0;
    for (const auto& part : parts) {
        total += part.size();
    }
    if (total > m_maxRecordBytes) {
        return fail(Errc::MESSAGE_TOO_BIG);
    }
    if (sendPending()) {
        return fail(Errc::TRY_AGAIN);
    }
    if (auto peer = checkPeer(); !peer) {
        return peer;
    }
    const auto length = static_cast<uint32_t>(total);
    std::byte header[HEADER_BYTES];
    std::memcpy(header, &length, HEADER_BYTES); // little-endian, checked in layout.cpp
    // The length and every part go straight into the ring, and become visible
    // together: one publish (one full barrier, at most one kick) per record
    // that fits, and the consumer never wakes for a header alone.
    size_t headerSent = 0;
    if (auto r = stage(header, headerSent); !r) {
        return r;
    }
    size_t part = 0;
    size_t partSent = 0;
    if (headerSent == HEADER_BYTES) {
        for (; part < parts.size(); ++part, partSent = 0) {
            if (auto r = stage(parts[part], partSent); !r) {
                return r;
            }
            if (partSent < parts[part].size()) {
                break;
            }
        }
    }
    publish(kick);
    if (headerSent < HEADER_BYTES || part < parts.size()) {
        // Keep the rest privately: the caller's buffers need not outlive this call.
        m_outgoing.assign(header + headerSent, header + HEADER_BYTES);
        for (size_t i = part; i < parts.size(); ++i) {
            const auto rest = parts[i].subspan(i == part ? partSent : 0);
            m_outgoing.insert(m_outgoing.end(), rest.begin(), rest.end());
        }
        m_outSent = 0;
    }
    return {};
}

Result<bool> Endpoint::flush() {
    if (broken()) {
        return fail(Errc::PROTOCOL_VIOLATION);
    }
    if (!sendPending()) {
        return true;
    }
    if (auto peer = checkPeer(); !peer) {
        return fail(peer.error());
    }
    if (auto r = stage(m_outgoing, m_outSent); !r) {
        return fail(r.error());
    }
    publish(Kick::IF_ASKED);
    if (sendPending()) {
        return false;
    }
    m_outgoing.clear();
    m_outSent = 0;
    return true;
}

Result<std::optional<std::span<const std::byte>>> Endpoint::tryReceive() {
    if (broken()) {
        return fail(Errc::PROTOCOL_VIOLATION);
    }
    if (m_inDelivered) {
        m_inDelivered = false;
        m_inHeaderHave = 0;
        m_inLength = 0;
        m_inHave = 0;
    }
    // Status first: whatever the peer published before it died is then
    // already visible when we read the ring below.
    const auto peer = checkPeer();
    if (!peer && peer.error() == Errc::PROTOCOL_VIOLATION) {
        return fail(peer.error());
    }
    auto ready = m_consumer.available();
    if (!ready) {
        return breakWith("producer index is more than a ring ahead of ours, or behind it");
    }
    uint32_t left = *ready;
    if (m_inHeaderHave < HEADER_BYTES) {
        const size_t now = std::min<size_t>(left, HEADER_BYTES - m_inHeaderHave);
        m_consumer.take(std::span(m_inHeader + m_inHeaderHave, now));
        m_inHeaderHave += now;
        left -= static_cast<uint32_t>(now);
        if (m_inHeaderHave == HEADER_BYTES) {
            // Parsed from our private copy, never from the ring.
            std::memcpy(&m_inLength, m_inHeader, HEADER_BYTES);
            if (m_inLength > m_maxRecordBytes) {
                m_kick = m_consumer.release() || m_kick;
                return breakWith("record longer than the maximum record size");
            }
            if (m_incomingCapacity < m_inLength || !m_incoming) {
                // Not zeroed: every byte is written before it is read.
                m_incoming = std::make_shared_for_overwrite<std::byte[]>(m_inLength);
                m_incomingCapacity = m_inLength;
            }
        }
    }
    if (m_inHeaderHave == HEADER_BYTES) {
        const size_t now = std::min<size_t>(left, m_inLength - m_inHave);
        m_consumer.take(std::span(m_incoming.get() + m_inHave, now));
        m_inHave += now;
    }
    m_kick = m_consumer.release() || m_kick;
    if (m_inHeaderHave == HEADER_BYTES && m_inHave == m_inLength) {
        m_inDelivered = true;
        return std::optional(std::span<const std::byte>(m_incoming.get(), m_inLength));
    }
    if (!peer) {
        return fail(peer.error());
    }
    return std::nullopt;
}

Result<bool> Endpoint::armForWakeup() {
    if (broken()) {
        return fail(Errc::PROTOCOL_VIOLATION);
    }
    if (auto peer = checkPeer(); !peer) {
        return peer.error() == Errc::DISCONNECTED ? Result<bool>(true) : fail(peer.error());
    }
    uint32_t wantData = 1;
    if (!m_inDelivered && m_inHeaderHave < HEADER_BYTES) {
        wantData = static_cast<uint32_t>(HEADER_BYTES - m_inHeaderHave);
    } else if (!m_inDelivered) {
        wantData = batch(m_inLength - m_inHave, m_consumer.size());
    }
    auto data = m_consumer.armForData(wantData);
    if (!data) {
        return breakWith("producer index is more than a ring ahead of ours, or behind it");
    }
    if (*data) {
        return true;
    }
    if (sendPending()) {
        auto space =
            m_producer.armForSpace(batch(m_outgoing.size() - m_outSent, m_producer.size()));
        if (!space) {
            return breakWith("consumer index is behind the ring or ahead of the producer");
        }
        return *space;
    }
    return false;
}

std::shared_ptr<std::byte[]> Endpoint::takeReceived() {
    const size_t length = m_inLength;
    // A buffer grown for an earlier, larger record would keep that much
    // memory alive with this one: hand over a tight copy instead.
    if (m_incomingCapacity > 2 * size_t{length} + abi::PAGE_SIZE) {
        auto copy = std::make_shared_for_overwrite<std::byte[]>(length);
        std::memcpy(copy.get(), m_incoming.get(), length);
        return copy;
    }
    m_incomingCapacity = 0;
    return std::move(m_incoming);
}

bool Endpoint::dataWaiting() noexcept {
    auto data = m_consumer.available();
    return !data || *data > 0;
}

bool Endpoint::mayProgress() noexcept {
    if (broken() || loadOnce(*m_peerStatus) == abi::STATUS_GONE) {
        return true;
    }
    auto data = m_consumer.available();
    if (!data || *data > 0) {
        return true;
    }
    if (sendPending()) {
        auto space = m_producer.freeSpace();
        return !space || *space > 0;
    }
    return false;
}

bool Endpoint::takeKick() noexcept {
    return std::exchange(m_kick, false);
}

void Endpoint::setBacklog(bool backlog) noexcept {
    storeSeqCst(*m_ownBacklog, uint8_t{backlog ? uint8_t{1} : uint8_t{0}});
}

bool Endpoint::peerBacklogged() noexcept {
    return loadSeqCst(*m_peerBacklog) != 0;
}

namespace {

// A note is the low 15 bits of a push count, with the top bit set; 0 is no
// note; TAKING is a note the backend took and whose fd it is making readable.
// Push counts differ by fewer than 2^14 between the two sides (the pushes in
// flight for one Ksock fit in its ring), so 15 bits compare safely.
constexpr uint16_t NOTE_PRESENT = 0x8000;
constexpr uint16_t COUNT_MASK = 0x7FFF;
constexpr uint16_t TAKING = 1;

constexpr uint16_t noteOf(uint16_t pushesSeen) noexcept {
    return static_cast<uint16_t>(NOTE_PRESENT | (pushesSeen & COUNT_MASK));
}

// True if push number `push` came after the `seen` pushes of the note.
constexpr bool pushUnseen(uint16_t note, uint16_t push) noexcept {
    const auto ahead = static_cast<uint16_t>((push - note) & COUNT_MASK);
    return ahead != 0 && ahead < (COUNT_MASK + 1) / 2;
}
static_assert(pushUnseen(noteOf(0), 1) && !pushUnseen(noteOf(5), 5) && !pushUnseen(noteOf(6), 5));
static_assert(pushUnseen(noteOf(0x7FFF), 0x8000) && pushUnseen(noteOf(0xFFFF), 0));

} // namespace

NoteEmptied Endpoint::noteEmptied(uint32_t slot, uint16_t pushesSeen) noexcept {
    if (slot >= m_layout.readinessSlots) {
        return NoteEmptied::FD_READABLE;
    }
    uint16_t value = loadSeqCst(m_readiness[slot]);
    while (value != TAKING) {
        if (compareExchangeSeqCst(m_readiness[slot], value, noteOf(pushesSeen))) {
            return (value & NOTE_PRESENT) != 0 ? NoteEmptied::FD_EMPTY : NoteEmptied::FD_READABLE;
        }
    }
    return NoteEmptied::BUSY;
}

bool Endpoint::retractNote(uint32_t slot, uint16_t pushesSeen) noexcept {
    uint16_t expected = noteOf(pushesSeen);
    return slot >= m_layout.readinessSlots ||
           compareExchangeSeqCst(m_readiness[slot], expected, uint16_t{0});
}

// Whatever a frontend writes here can only make its own fds wrong, and the
// backend never waits for it: a frontend that keeps rewriting its note gets
// a few attempts, not a daemon spinning on its compare-exchange (an honest
// one changes a note at most twice while the backend looks).
constexpr int NOTE_ATTEMPTS = 4;

bool Endpoint::takeNoteUnseen(uint32_t slot, uint16_t push) noexcept {
    if (slot >= m_layout.readinessSlots) {
        return false;
    }
    uint16_t note = loadSeqCst(m_readiness[slot]);
    for (int attempt = 0; attempt < NOTE_ATTEMPTS; ++attempt) {
        if ((note & NOTE_PRESENT) == 0 || !pushUnseen(note, push)) {
            return false;
        }
        if (compareExchangeSeqCst(m_readiness[slot], note, TAKING)) {
            return true;
        }
    }
    return false;
}

bool Endpoint::takeAnyNote(uint32_t slot) noexcept {
    if (slot >= m_layout.readinessSlots) {
        return false;
    }
    uint16_t note = loadSeqCst(m_readiness[slot]);
    for (int attempt = 0; attempt < NOTE_ATTEMPTS; ++attempt) {
        if ((note & NOTE_PRESENT) == 0) {
            return false;
        }
        if (compareExchangeSeqCst(m_readiness[slot], note, TAKING)) {
            return true;
        }
    }
    return false;
}

void Endpoint::takeDone(uint32_t slot) noexcept {
    uint16_t taking = TAKING;
    if (slot < m_layout.readinessSlots) {
        (void)compareExchangeSeqCst(m_readiness[slot], taking, uint16_t{0});
    }
}

bool Endpoint::hasNote(uint32_t slot) noexcept {
    return slot < m_layout.readinessSlots && (loadSeqCst(m_readiness[slot]) & NOTE_PRESENT) != 0;
}

bool Endpoint::peerAlive() noexcept {
    return loadAcquire(*m_peerStatus) != abi::STATUS_GONE;
}

void Endpoint::markPeerGone() noexcept {
    storeRelease(*m_peerStatus, abi::STATUS_GONE);
}

void Endpoint::close() noexcept {
    storeRelease(*m_ownStatus, abi::STATUS_GONE);
}

} // namespace xkbus::ring
