// Layout arithmetic and the header check the backend applies before trusting
// anything else in the pages.
#include <algorithm>
#include <bit>
#include <cstring>
#include <xkbus/ring/abi.hpp>
#include <xkbus/ring/layout.hpp>

namespace xkbus::ring {

static_assert(std::endian::native == std::endian::little,
              "the ABI is little-endian; a big-endian port must byte-swap the header");

uint32_t Layout::layoutBytes() const noexcept {
    return pageCount * static_cast<uint32_t>(abi::PAGE_SIZE);
}

namespace {

bool orderInRange(uint8_t order) noexcept {
    return order >= abi::MIN_RING_ORDER && order <= abi::MAX_RING_ORDER;
}

constexpr uint32_t PAGE = static_cast<uint32_t>(abi::PAGE_SIZE);

// Rings under a page share page 0's tail, packed down from its end; larger
// rings take whole pages after page 0. Returns the offset and moves the cursors.
uint32_t place(uint8_t order, uint32_t& tailCursor, uint32_t& nextPage) noexcept {
    const uint32_t size = 1u << order;
    if (size < PAGE) {
        tailCursor -= size;
        return tailCursor;
    }
    const uint32_t offset = nextPage * PAGE;
    nextPage += size / PAGE;
    return offset;
}

void fail(std::string_view* why, std::string_view reason) noexcept {
    if (why != nullptr) {
        *why = reason;
    }
}

} // namespace

Result<Layout> computeLayout(uint8_t toBackendOrder, uint8_t toFrontendOrder) {
    if (!orderInRange(toBackendOrder) || !orderInRange(toFrontendOrder)) {
        return fail(Errc::INVALID);
    }
    Layout layout;
    layout.toBackendOrder = toBackendOrder;
    layout.toFrontendOrder = toFrontendOrder;
    uint32_t tailCursor = PAGE;
    uint32_t nextPage = 1;
    layout.toBackendOffset = place(toBackendOrder, tailCursor, nextPage);
    layout.toFrontendOffset = place(toFrontendOrder, tailCursor, nextPage);
    layout.pageCount = nextPage;
    // The grant list must fit between the control block and the in-page rings.
    const size_t grantListEnd = abi::GRANT_LIST_OFFSET + 4 * size_t{layout.ringPageCount()};
    if (grantListEnd > tailCursor) {
        return fail(Errc::INVALID);
    }
    const size_t line = abi::CACHE_LINE;
    layout.readinessOffset = static_cast<uint32_t>((grantListEnd + line - 1) / line * line);
    layout.readinessSlots =
        tailCursor > layout.readinessOffset ? (tailCursor - layout.readinessOffset) / 2 : 0;
    return layout;
}

void writeHeader(std::span<std::byte> controlPage, const Layout& layout) noexcept {
    abi::Header header{};
    header.magic = abi::MAGIC;
    header.version = abi::VERSION;
    header.controlBytes = static_cast<uint16_t>(abi::CONTROL_BYTES);
    header.layoutBytes = layout.layoutBytes();
    header.pageCount = layout.pageCount;
    header.toBackendOrder = layout.toBackendOrder;
    header.toFrontendOrder = layout.toFrontendOrder;
    // Written before the pages are shared, so no ordering is needed here.
    std::memcpy(controlPage.data(), &header, sizeof header);
}

Result<Layout> readHeader(std::span<const std::byte> controlPage, std::string_view* why) {
    if (controlPage.size() < abi::PAGE_SIZE) {
        fail(why, "control page mapping is shorter than a page");
        return fail(Errc::INVALID);
    }
    // Copy first: the peer may rewrite the header while we check it.
    abi::Header header;
    std::memcpy(&header, controlPage.data(), sizeof header);
    if (header.magic != abi::MAGIC) {
        fail(why, "bad magic: not an xkbus ring");
        return fail(Errc::PROTOCOL_VIOLATION);
    }
    if (header.version != abi::VERSION) {
        fail(why, "unsupported ring protocol version");
        return fail(Errc::PROTOCOL_VIOLATION);
    }
    if (header.controlBytes != abi::CONTROL_BYTES) {
        fail(why, "control block size differs from this build's ABI");
        return fail(Errc::PROTOCOL_VIOLATION);
    }
    if (std::any_of(std::begin(header.reserved), std::end(header.reserved),
                    [](uint8_t b) { return b != 0; })) {
        fail(why, "reserved header bytes are not zero (newer protocol?)");
        return fail(Errc::PROTOCOL_VIOLATION);
    }
    auto layout = computeLayout(header.toBackendOrder, header.toFrontendOrder);
    if (!layout) {
        fail(why, "ring order out of range or rings do not fit");
        return fail(Errc::PROTOCOL_VIOLATION);
    }
    if (header.pageCount != layout->pageCount || header.layoutBytes != layout->layoutBytes()) {
        fail(why, "page count or layout size disagrees with the ring orders");
        return fail(Errc::PROTOCOL_VIOLATION);
    }
    return layout;
}

} // namespace xkbus::ring
