// Where things lie in the shared pages, computed from the two ring orders.
// The frontend writes the header from it; the backend recomputes it from the
// header's orders and refuses a header that disagrees.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <xkbus/common/result.hpp>

namespace xkbus::ring {

struct Layout {
    uint8_t toBackendOrder = 0;
    uint8_t toFrontendOrder = 0;
    uint32_t pageCount = 0;
    // Byte offsets in the logical layout: page 0 is the control page, the
    // ring pages follow it (they may be a separate mapping, see Endpoint).
    uint32_t toBackendOffset = 0;
    uint32_t toFrontendOffset = 0;
    // Page 0's free bytes between the grant list and the in-page rings: one
    // u16 readiness note per Ksock handle (docs/ring.md, "Readiness notes").
    uint32_t readinessOffset = 0;
    uint32_t readinessSlots = 0;

    uint32_t toBackendSize() const noexcept { return 1u << toBackendOrder; }
    uint32_t toFrontendSize() const noexcept { return 1u << toFrontendOrder; }
    uint32_t layoutBytes() const noexcept;
    uint32_t ringPageCount() const noexcept { return pageCount - 1; }
};

// A layout for the two orders, or INVALID if an order is out of range.
Result<Layout> computeLayout(uint8_t toBackendOrder, uint8_t toFrontendOrder);

// Frontend: writes the header into a zeroed control page.
void writeHeader(std::span<std::byte> controlPage, const Layout& layout) noexcept;

// Backend: copies the peer-written header out of the control page, then
// validates it. On PROTOCOL_VIOLATION, *why (if given) says what was wrong.
Result<Layout> readHeader(std::span<const std::byte> controlPage, std::string_view* why = nullptr);

} // namespace xkbus::ring
