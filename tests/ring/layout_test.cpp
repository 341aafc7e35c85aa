// The shared layout: where rings go for each pair of orders, and the header
// check that refuses pages from another protocol version or a lying peer.
#include "heap_ring.hpp"

#include <gtest/gtest.h>
#include <xkbus/ring/abi.hpp>
#include <xkbus/ring/layout.hpp>

namespace xkbus::ring {
namespace {

bool overlaps(uint32_t a, uint32_t aSize, uint32_t b, uint32_t bSize) {
    return a < b + bSize && b < a + aSize;
}

TEST(Layout, SmallRingsShareTheControlPage) {
    auto layout = computeLayout(10, 10);
    ASSERT_TRUE(layout);
    EXPECT_EQ(layout->pageCount, 1u);
    EXPECT_EQ(layout->toBackendOffset, 3072u);
    EXPECT_EQ(layout->toFrontendOffset, 2048u);
    EXPECT_GE(layout->toFrontendOffset, abi::CONTROL_BYTES);
}

TEST(Layout, PageSizedRingsTakeTheirOwnPages) {
    auto layout = computeLayout(12, 14);
    ASSERT_TRUE(layout);
    EXPECT_EQ(layout->pageCount, 1u + 1u + 4u);
    EXPECT_EQ(layout->toBackendOffset, 4096u);
    EXPECT_EQ(layout->toFrontendOffset, 8192u);
    EXPECT_EQ(layout->layoutBytes(), 6u * 4096u);
}

TEST(Layout, EveryValidPairIsDisjointAndInBounds) {
    for (uint8_t a = abi::MIN_RING_ORDER; a <= abi::MAX_RING_ORDER; ++a) {
        for (uint8_t b = abi::MIN_RING_ORDER; b <= abi::MAX_RING_ORDER; ++b) {
            auto layout = computeLayout(a, b);
            if (!layout) {
                // Only two rings that cannot both fit beside the control block.
                EXPECT_TRUE(a == 11 && b == 11) << int(a) << "," << int(b);
                continue;
            }
            const uint32_t grantsEnd =
                static_cast<uint32_t>(abi::GRANT_LIST_OFFSET + 4 * layout->ringPageCount());
            EXPECT_FALSE(overlaps(layout->toBackendOffset, layout->toBackendSize(),
                                  layout->toFrontendOffset, layout->toFrontendSize()));
            EXPECT_FALSE(overlaps(0, grantsEnd, layout->toBackendOffset, layout->toBackendSize()));
            EXPECT_FALSE(
                overlaps(0, grantsEnd, layout->toFrontendOffset, layout->toFrontendSize()));
            EXPECT_LE(layout->toBackendOffset + layout->toBackendSize(), layout->layoutBytes());
            EXPECT_LE(layout->toFrontendOffset + layout->toFrontendSize(), layout->layoutBytes());
        }
    }
}

TEST(Layout, OrdersOutOfRangeAreInvalid) {
    EXPECT_EQ(computeLayout(7, 10).error(), Errc::INVALID);
    EXPECT_EQ(computeLayout(10, 21).error(), Errc::INVALID);
}

class HeaderCheck : public ::testing::Test {
protected:
    void SetUp() override {
        m_page = test::allocatePages(1);
        std::memset(m_page.get(), 0, abi::PAGE_SIZE);
        writeHeader(page(), *computeLayout(12, 10));
    }
    std::span<std::byte> page() { return {m_page.get(), abi::PAGE_SIZE}; }
    abi::Header& header() { return *reinterpret_cast<abi::Header*>(m_page.get()); }
    std::string refusal() {
        std::string_view why;
        auto layout = readHeader(page(), &why);
        EXPECT_FALSE(layout.has_value());
        if (layout) {
            return "accepted";
        }
        EXPECT_EQ(layout.error(), Errc::PROTOCOL_VIOLATION);
        return std::string(why);
    }

    test::Pages m_page;
};

TEST_F(HeaderCheck, AcceptsWhatWriteHeaderWrote) {
    auto layout = readHeader(page());
    ASSERT_TRUE(layout);
    EXPECT_EQ(layout->toBackendOrder, 12);
    EXPECT_EQ(layout->toFrontendOrder, 10);
    EXPECT_EQ(layout->pageCount, 2u);
}

TEST_F(HeaderCheck, RefusesBadMagic) {
    header().magic ^= 1;
    EXPECT_NE(refusal().find("magic"), std::string::npos);
}

TEST_F(HeaderCheck, RefusesOtherVersion) {
    header().version = abi::VERSION + 1;
    EXPECT_NE(refusal().find("version"), std::string::npos);
}

TEST_F(HeaderCheck, RefusesOtherControlSize) {
    header().controlBytes = 256;
    EXPECT_NE(refusal().find("control block"), std::string::npos);
}

TEST_F(HeaderCheck, RefusesNonZeroReserved) {
    header().reserved[45] = 1;
    EXPECT_NE(refusal().find("reserved"), std::string::npos);
}

TEST_F(HeaderCheck, RefusesOrderOutOfRange) {
    header().toFrontendOrder = 40;
    EXPECT_NE(refusal().find("order"), std::string::npos);
}

TEST_F(HeaderCheck, RefusesPageCountThatDisagreesWithOrders) {
    header().pageCount = 3;
    EXPECT_NE(refusal().find("page count"), std::string::npos);
    header().pageCount = 2;
    header().layoutBytes = 3 * 4096;
    EXPECT_NE(refusal().find("layout size"), std::string::npos);
}

TEST_F(HeaderCheck, RefusesShortMapping) {
    EXPECT_EQ(readHeader(page().first(100)).error(), Errc::INVALID);
}

TEST(Format, WritesTheGrantListAndStatusBytes) {
    auto ring = test::makeHeapRing(12, 13);
    const auto* grants =
        reinterpret_cast<const uint32_t*>(ring->control.get() + abi::GRANT_LIST_OFFSET);
    EXPECT_EQ(grants[0], 100u);
    EXPECT_EQ(grants[2], 102u);
    EXPECT_EQ(ring->block().frontendStatus.status, abi::STATUS_LIVE);
    EXPECT_EQ(ring->block().backendStatus.status, abi::STATUS_LIVE);
}

TEST(Format, RefusesMisalignedOrShortMemory) {
    auto layout = *computeLayout(12, 12);
    auto control = test::allocatePages(1);
    auto pages = test::allocatePages(2);
    std::vector<uint32_t> grants(2);
    RingMemory shortMemory{{control.get(), abi::PAGE_SIZE}, {pages.get(), abi::PAGE_SIZE}};
    EXPECT_EQ(Endpoint::format(shortMemory, layout, grants).error(), Errc::INVALID);
    RingMemory misaligned{{control.get() + 8, abi::PAGE_SIZE - 8}, {pages.get(), 2 * 4096}};
    EXPECT_EQ(Endpoint::attach(misaligned, layout).error(), Errc::INVALID);
}

} // namespace
} // namespace xkbus::ring
