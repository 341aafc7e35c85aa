// libFuzzer target: the backend endpoint over a page the frontend controls.
// The input is a script: after two ring orders, each step either rewrites
// part of the shared pages (indices, status bytes, header, ring bytes) or
// runs a backend operation, so the page changes between the backend's reads.
// Whatever the script does, the backend must not crash, must not deliver a
// record over its limit, and must stay broken once it says so.
#include "../fuzz/fuzz_target.hpp"

#include <cstdlib>
#include <cstring>
#include <optional>
#include <vector>
#include <xkbus/ring/endpoint.hpp>
#include <xkbus/ring/layout.hpp>
#include <xkbus/ring/ordering.hpp>

namespace {

using namespace xkbus;
using namespace xkbus::ring;

constexpr uint32_t MAX_RECORD = 1 << 16;

class Script {
public:
    Script(const uint8_t* data, size_t size) : m_data(data), m_size(size) {}
    bool done() const { return m_pos >= m_size; }
    uint8_t byte() { return m_pos < m_size ? m_data[m_pos++] : 0; }
    uint32_t u32() {
        uint32_t v = 0;
        for (int i = 0; i < 4; ++i) {
            v = v << 8 | byte();
        }
        return v;
    }
    std::span<const uint8_t> bytes(size_t n) {
        n = std::min(n, m_size - std::min(m_pos, m_size));
        std::span<const uint8_t> s(m_data + m_pos, n);
        m_pos += n;
        return s;
    }

private:
    const uint8_t* m_data;
    size_t m_size;
    size_t m_pos = 0;
};

struct Pages {
    std::byte* control = static_cast<std::byte*>(std::aligned_alloc(4096, 4096));
    std::vector<std::byte*> ringPages;
    std::byte* ring = nullptr;
    size_t ringBytes = 0;
    explicit Pages(const Layout& layout) {
        ringBytes = size_t{layout.ringPageCount()} * 4096;
        if (ringBytes > 0) {
            ring = static_cast<std::byte*>(std::aligned_alloc(4096, ringBytes));
            std::memset(ring, 0, ringBytes);
        }
    }
    ~Pages() {
        std::free(control);
        std::free(ring);
    }
    Pages(const Pages&) = delete;
    Pages& operator=(const Pages&) = delete;
    RingMemory memory() { return {{control, 4096}, {ring, ringBytes}}; }
    abi::ControlBlock& block() { return *reinterpret_cast<abi::ControlBlock*>(control); }
};

void check(bool condition) {
    if (!condition) {
        std::abort();
    }
}

// The frontend's own well-formed writes, so the fuzzer reaches deep states.
void produceRecord(Pages& pages, const Layout& layout, uint32_t& prod, Script& script) {
    const uint32_t size = layout.toBackendSize();
    std::byte* data = layout.toBackendOffset < 4096 ? pages.control + layout.toBackendOffset
                                                    : pages.ring + (layout.toBackendOffset - 4096);
    const uint32_t length = script.byte();
    std::vector<uint8_t> frame(4 + length);
    std::memcpy(frame.data(), &length, 4);
    auto body = script.bytes(length);
    std::memcpy(frame.data() + 4, body.data(), body.size());
    for (uint8_t b : frame) {
        data[prod & (size - 1)] = std::byte{b};
        ++prod;
    }
    storeRelease(pages.block().toBackend.producer.prod, prod);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    Script script(data, size);
    const auto toBackendOrder = static_cast<uint8_t>(8 + script.byte() % 6);
    const auto toFrontendOrder = static_cast<uint8_t>(8 + script.byte() % 6);
    auto layout = computeLayout(toBackendOrder, toFrontendOrder);
    if (!layout) {
        return 0;
    }
    Pages pages(*layout);
    std::vector<uint32_t> grants(layout->ringPageCount(), 7);
    auto frontend = Endpoint::format(pages.memory(), *layout, grants, MAX_RECORD);
    check(frontend.has_value());
    auto checked = readHeader(pages.memory().controlPage);
    check(checked.has_value());
    auto backend = Endpoint::attach(pages.memory(), *checked, MAX_RECORD);
    check(backend.has_value());

    uint32_t prod = 0;
    bool wasBroken = false;
    for (int steps = 0; !script.done() && steps < 4096; ++steps) {
        switch (script.byte() % 10) {
        case 0:
            produceRecord(pages, *layout, prod, script);
            break;
        case 1: // an arbitrary producer index
            prod = script.u32();
            storeRelease(pages.block().toBackend.producer.prod, prod);
            break;
        case 2: // any byte of the control page: header, status, events, grants
        {
            const uint32_t offset = script.u32() % 4096;
            pages.control[offset] = std::byte{script.byte()};
            break;
        }
        case 3:
            storeRelease(pages.block().frontendStatus.status, script.byte());
            break;
        case 4:
            storeRelease(pages.block().toFrontend.consumer.cons, script.u32());
            break;
        case 5: { // a rescan as after a fresh mapping: must refuse or accept cleanly
            std::string_view why;
            auto reread = readHeader(pages.memory().controlPage, &why);
            check(reread.has_value() || !why.empty());
            break;
        }
        case 6:
        case 7: {
            for (int i = 0; i < 4; ++i) {
                auto record = backend->tryReceive();
                if (!record || !*record) {
                    break;
                }
                check((*record)->size() <= MAX_RECORD);
            }
            break;
        }
        case 8: {
            std::vector<std::byte> reply(script.byte() * 37u);
            (void)backend->trySend(reply);
            (void)backend->flush();
            break;
        }
        default:
            (void)backend->armForWakeup();
            (void)backend->mayProgress();
            (void)backend->takeKick();
            break;
        }
        check(!wasBroken || backend->broken());
        wasBroken = backend->broken();
        check(backend->broken() == !backend->brokenReason().empty());
    }
    return 0;
}
