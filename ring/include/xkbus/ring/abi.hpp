// The shared-ring wire ABI: what lies in the pages a frontend shares with the
// backend. Every field says who writes it and whether it may change after the
// pages are shared. docs/ring.md explains the protocol around it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace xkbus::ring::abi {

inline constexpr uint32_t MAGIC = 0x52424b58; // "XKBR" in a little-endian dump
inline constexpr uint16_t VERSION = 1;
inline constexpr size_t PAGE_SIZE = 4096;
inline constexpr size_t CACHE_LINE = 64;

// Ring sizes are 1 << order bytes. Rings under a page live in the tail of
// page 0; larger rings take whole pages of their own after page 0.
inline constexpr uint8_t MIN_RING_ORDER = 8;  // 256 bytes
inline constexpr uint8_t MAX_RING_ORDER = 20; // 1 MiB: 256 grants per direction

// Status byte values. 0 must mean "gone": the grant drivers zero the byte when
// its process dies (unmap notify), and a closing side clears its own byte.
inline constexpr uint8_t STATUS_GONE = 0;
inline constexpr uint8_t STATUS_LIVE = 1;
inline constexpr uint8_t STATUS_CONNECTING = 2; // backend byte before the backend attaches

// Written once by the frontend before sharing; never changes afterwards. The
// backend copies and validates it; a mismatch refuses the connection.
struct Header {
    uint32_t magic;         // MAGIC
    uint16_t version;       // VERSION
    uint16_t controlBytes;  // CONTROL_BYTES: where the grant list starts
    uint32_t layoutBytes;   // pageCount * PAGE_SIZE
    uint32_t pageCount;     // page 0 plus the ring pages
    uint8_t toBackendOrder; // frontend -> backend ring is 1 << order bytes
    uint8_t toFrontendOrder;
    uint8_t reserved[46]; // zero
};

// One side's status, alone on its line: it is also the unmap-notify byte.
struct StatusLine {
    uint8_t status;  // STATUS_LIVE while that side's process holds the pages
    uint8_t backlog; // non-zero while that side holds records back for want of room
    uint8_t pad[CACHE_LINE - 2];
};

// Written only by the ring's producer.
struct ProducerLine {
    uint32_t prod;      // free-running count of bytes written
    uint32_t consEvent; // "kick me when cons passes this": producer wants space
    uint8_t pad[CACHE_LINE - 8];
};

// Written only by the ring's consumer.
struct ConsumerLine {
    uint32_t cons;      // free-running count of bytes read
    uint32_t prodEvent; // "kick me when prod passes this": consumer wants data
    uint8_t pad[CACHE_LINE - 8];
};

struct RingIndices {
    ProducerLine producer;
    ConsumerLine consumer;
};

// The start of page 0. The grant list (uint32 per ring page, pageCount - 1
// entries, written once by the frontend) follows at CONTROL_BYTES.
struct alignas(CACHE_LINE) ControlBlock {
    Header header;
    StatusLine frontendStatus; // frontend writes; gntalloc zeroes it on frontend death
    StatusLine backendStatus;  // backend writes; gntdev zeroes it on backend death
    RingIndices toBackend;     // frontend produces, backend consumes
    RingIndices toFrontend;    // backend produces, frontend consumes
    uint8_t reserved[CACHE_LINE];
};

inline constexpr size_t CONTROL_BYTES = 512;
inline constexpr size_t GRANT_LIST_OFFSET = CONTROL_BYTES;
inline constexpr size_t FRONTEND_STATUS_OFFSET = offsetof(ControlBlock, frontendStatus);
inline constexpr size_t BACKEND_STATUS_OFFSET = offsetof(ControlBlock, backendStatus);

static_assert(std::is_standard_layout_v<ControlBlock>);
static_assert(std::is_trivially_copyable_v<Header>);
static_assert(sizeof(Header) == CACHE_LINE);
static_assert(sizeof(ControlBlock) == CONTROL_BYTES);
static_assert(offsetof(Header, magic) == 0);
static_assert(offsetof(Header, version) == 4);
static_assert(offsetof(Header, controlBytes) == 6);
static_assert(offsetof(Header, layoutBytes) == 8);
static_assert(offsetof(Header, pageCount) == 12);
static_assert(offsetof(Header, toBackendOrder) == 16);
static_assert(offsetof(Header, toFrontendOrder) == 17);
static_assert(FRONTEND_STATUS_OFFSET == 64);
static_assert(BACKEND_STATUS_OFFSET == 128);
static_assert(offsetof(ControlBlock, toBackend) == 192);
static_assert(offsetof(ControlBlock, toFrontend) == 320);
static_assert(offsetof(RingIndices, consumer) == CACHE_LINE);
static_assert(offsetof(ProducerLine, consEvent) == 4);
static_assert(offsetof(ConsumerLine, prodEvent) == 4);
static_assert(CONTROL_BYTES <= PAGE_SIZE / 2);

// Each record in a ring is a little-endian uint32 length, then that many
// bytes. A record longer than the ring streams through it in pieces.
inline constexpr size_t RECORD_HEADER_BYTES = 4;

} // namespace xkbus::ring::abi
