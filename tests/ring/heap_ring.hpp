// A frontend/backend endpoint pair over page-aligned heap memory, the control
// page and the ring pages allocated apart as under Xen. For unit tests.
#pragma once

#include <cstdlib>
#include <cstring>
#include <gtest/gtest.h>
#include <memory>
#include <vector>
#include <xkbus/ring/abi.hpp>
#include <xkbus/ring/endpoint.hpp>
#include <xkbus/ring/layout.hpp>

namespace xkbus::ring::test {

struct FreeDeleter {
    void operator()(std::byte* p) const noexcept { std::free(p); }
};
using Pages = std::unique_ptr<std::byte[], FreeDeleter>;

inline Pages allocatePages(size_t count) {
    const size_t bytes = std::max<size_t>(count, 1) * abi::PAGE_SIZE;
    auto* p = static_cast<std::byte*>(std::aligned_alloc(abi::PAGE_SIZE, bytes));
    std::memset(p, 0xa5, bytes); // not zero: format() must not rely on it
    return Pages(p);
}

struct HeapRing {
    Layout layout;
    Pages control;
    Pages ringPages;
    std::optional<Endpoint> frontend;
    std::optional<Endpoint> backend;

    abi::ControlBlock& block() { return *reinterpret_cast<abi::ControlBlock*>(control.get()); }
    RingMemory memory() {
        return {std::span(control.get(), abi::PAGE_SIZE),
                std::span(ringPages.get(), layout.ringPageCount() * abi::PAGE_SIZE)};
    }
};

inline std::unique_ptr<HeapRing> makeHeapRing(uint8_t toBackendOrder, uint8_t toFrontendOrder,
                                              uint32_t maxRecord = 409600) {
    auto ring = std::make_unique<HeapRing>();
    auto layout = computeLayout(toBackendOrder, toFrontendOrder);
    EXPECT_TRUE(layout.has_value());
    ring->layout = *layout;
    ring->control = allocatePages(1);
    ring->ringPages = allocatePages(layout->ringPageCount());
    std::vector<uint32_t> grants(layout->ringPageCount());
    for (size_t i = 0; i < grants.size(); ++i) {
        grants[i] = static_cast<uint32_t>(100 + i);
    }
    auto frontend = Endpoint::format(ring->memory(), *layout, grants, maxRecord);
    EXPECT_TRUE(frontend.has_value());
    ring->frontend.emplace(std::move(*frontend));
    std::string_view why;
    auto checked = readHeader(ring->memory().controlPage, &why);
    EXPECT_TRUE(checked.has_value()) << why;
    auto backend = Endpoint::attach(ring->memory(), *checked, maxRecord);
    EXPECT_TRUE(backend.has_value());
    ring->backend.emplace(std::move(*backend));
    return ring;
}

inline std::vector<std::byte> patterned(size_t size, uint32_t seed) {
    std::vector<std::byte> bytes(size);
    uint32_t x = seed * 2654435761u + 1;
    for (auto& b : bytes) {
        x = x * 1103515245u + 12345u;
        b = static_cast<std::byte>(x >> 24);
    }
    return bytes;
}

inline std::vector<std::byte> toVector(std::span<const std::byte> s) {
    return {s.begin(), s.end()};
}

} // namespace xkbus::ring::test
