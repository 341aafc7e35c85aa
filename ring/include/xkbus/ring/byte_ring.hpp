// One direction of the shared ring: a power-of-two byte buffer with
// free-running producer and consumer indices and ring.h-style event indices.
// The producer and consumer halves each keep their own index privately and
// validate the peer's index on every read (XSA-86, XSA-155).
#pragma once

#include <cstdint>
#include <span>
#include <xkbus/common/result.hpp>
#include <xkbus/ring/abi.hpp>

namespace xkbus::ring {

// Where one direction lives. The pointers are into shared memory; `size` is
// our private copy (the peer cannot change it).
struct RingView {
    abi::RingIndices* indices = nullptr;
    std::byte* data = nullptr;
    uint32_t size = 0; // a power of two
};

class RingProducer {
public:
    RingProducer() = default;
    // Takes over the producer line; starts writing at 0.
    explicit RingProducer(RingView view) noexcept;

    // Bytes that can be written now. Reads the consumer index once;
    // PROTOCOL_VIOLATION if it claims more was read than was ever written.
    Result<uint32_t> freeSpace() noexcept;
    // Copies bytes into the ring (at most the last freeSpace() minus what was
    // staged since); they stay invisible to the consumer until publish().
    void stage(std::span<const std::byte> bytes) noexcept;
    // Makes staged bytes visible. True if the consumer asked to be kicked.
    bool publish() noexcept;
    // Asks to be kicked once `wanted` bytes are free, then re-checks. True if
    // they already are, so the caller must not sleep.
    Result<bool> armForSpace(uint32_t wanted) noexcept;
    uint32_t size() const noexcept { return m_view.size; }

private:
    RingView m_view;
    uint32_t m_published = 0; // prod as last published
    uint32_t m_staged = 0;    // prod including staged bytes
};

class RingConsumer {
public:
    RingConsumer() = default;
    // Takes over the consumer line; starts reading at 0.
    explicit RingConsumer(RingView view) noexcept;

    // Bytes readable now. Reads the producer index once; PROTOCOL_VIOLATION
    // if it is more than a ring ahead of us, or behind us.
    Result<uint32_t> available() noexcept;
    // Copies the next out.size() bytes (at most the last available() minus
    // what was taken since) into private memory.
    void take(std::span<std::byte> out) noexcept;
    // Hands the taken bytes' space back. True if the producer asked to be kicked.
    bool release() noexcept;
    // Asks to be kicked once `wanted` bytes are readable, then re-checks.
    // True if they already are, so the caller must not sleep.
    Result<bool> armForData(uint32_t wanted) noexcept;
    uint32_t size() const noexcept { return m_view.size; }

private:
    RingView m_view;
    uint32_t m_released = 0; // cons as last published
    uint32_t m_taken = 0;    // cons including taken bytes
};

} // namespace xkbus::ring
