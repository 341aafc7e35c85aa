// The byte-ring algorithm: copies with wrap-around, index validation and the
// event-index handshake that decides when to kick the peer.
#include <algorithm>
#include <cassert>
#include <cstring>
#include <xkbus/ring/byte_ring.hpp>
#include <xkbus/ring/ordering.hpp>

namespace xkbus::ring {
namespace {

// ring.h's rule: kick iff the peer's event index lies in (oldIndex, newIndex].
// Unsigned wrap-around makes it correct across the 2^32 boundary.
bool eventCrossed(uint32_t event, uint32_t oldIndex, uint32_t newIndex) noexcept {
    return static_cast<uint32_t>(newIndex - event) < static_cast<uint32_t>(newIndex - oldIndex);
}

void copyIn(const RingView& view, uint32_t index, std::span<const std::byte> bytes) noexcept {
    if (bytes.empty()) {
        return; // an empty span may have a null data() that memcpy must not see
    }
    const uint32_t offset = index & (view.size - 1);
    const size_t first = std::min<size_t>(bytes.size(), view.size - offset);
    std::memcpy(view.data + offset, bytes.data(), first);
    std::memcpy(view.data, bytes.data() + first, bytes.size() - first);
}

void copyOut(const RingView& view, uint32_t index, std::span<std::byte> out) noexcept {
    if (out.empty()) {
        return;
    }
    const uint32_t offset = index & (view.size - 1);
    const size_t first = std::min<size_t>(out.size(), view.size - offset);
    std::memcpy(out.data(), view.data + offset, first);
    std::memcpy(out.data() + first, view.data, out.size() - first);
}

} // namespace

RingProducer::RingProducer(RingView view) noexcept : m_view(view) {
    storeRelease(m_view.indices->producer.consEvent, uint32_t{0});
    storeRelease(m_view.indices->producer.prod, uint32_t{0});
}

Result<uint32_t> RingProducer::freeSpace() noexcept {
    // Acquire: the consumer finished copying bytes out before it released
    // them. Seq_cst: the re-check half of armForSpace()'s handshake.
    const uint32_t cons = loadSeqCst(m_view.indices->consumer.cons);
    const uint32_t used = m_staged - cons;
    if (used > m_view.size) {
        return fail(Errc::PROTOCOL_VIOLATION);
    }
    return m_view.size - used;
}

void RingProducer::stage(std::span<const std::byte> bytes) noexcept {
    copyIn(m_view, m_staged, bytes);
    m_staged += static_cast<uint32_t>(bytes.size());
}

bool RingProducer::publish() noexcept {
    if (m_staged == m_published) {
        return false;
    }
    const uint32_t old = m_published;
    m_published = m_staged;
    // Release (implied): the bytes are in the ring before the consumer can see
    // prod move. Seq_cst: prod is published before we read prodEvent, pairing
    // with armForData() (store prodEvent, then read prod).
    storeSeqCst(m_view.indices->producer.prod, m_published);
    return eventCrossed(loadSeqCst(m_view.indices->consumer.prodEvent), old, m_published);
}

Result<bool> RingProducer::armForSpace(uint32_t wanted) noexcept {
    assert(wanted > 0 && wanted <= m_view.size && m_staged == m_published);
    // Arm before re-checking (freeSpace() reads cons seq_cst); pairs with
    // RingConsumer::release() (store cons, then read consEvent).
    storeSeqCst(m_view.indices->producer.consEvent, m_published + wanted - m_view.size);
    auto space = freeSpace();
    if (!space) {
        return fail(space.error());
    }
    return *space >= wanted;
}

RingConsumer::RingConsumer(RingView view) noexcept : m_view(view) {
    // Ask for a kick on the first byte, as ring.h's SHARED_RING_INIT does.
    storeRelease(m_view.indices->consumer.prodEvent, uint32_t{1});
    storeRelease(m_view.indices->consumer.cons, uint32_t{0});
}

Result<uint32_t> RingConsumer::available() noexcept {
    // Acquire: the bytes up to prod were written before prod was published.
    // Seq_cst: the re-check half of armForData()'s handshake.
    const uint32_t prod = loadSeqCst(m_view.indices->producer.prod);
    const uint32_t ready = prod - m_taken;
    if (ready > m_view.size) {
        return fail(Errc::PROTOCOL_VIOLATION);
    }
    return ready;
}

void RingConsumer::take(std::span<std::byte> out) noexcept {
    copyOut(m_view, m_taken, out);
    m_taken += static_cast<uint32_t>(out.size());
}

bool RingConsumer::release() noexcept {
    if (m_taken == m_released) {
        return false;
    }
    const uint32_t old = m_released;
    m_released = m_taken;
    // Release (implied): our copies out of the ring finish before the producer
    // may reuse it. Seq_cst: cons is published before we read consEvent,
    // pairing with armForSpace().
    storeSeqCst(m_view.indices->consumer.cons, m_released);
    return eventCrossed(loadSeqCst(m_view.indices->producer.consEvent), old, m_released);
}

Result<bool> RingConsumer::armForData(uint32_t wanted) noexcept {
    assert(wanted > 0 && wanted <= m_view.size && m_taken == m_released);
    // Arm before re-checking (available() reads prod seq_cst); pairs with
    // RingProducer::publish().
    storeSeqCst(m_view.indices->consumer.prodEvent, m_released + wanted);
    auto ready = available();
    if (!ready) {
        return fail(ready.error());
    }
    return *ready >= wanted;
}

} // namespace xkbus::ring
