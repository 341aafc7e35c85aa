// libFuzzer target: bytes as the far Limpet could send them on the link. The
// stream cutter and the decoder must never crash, never buffer more than one
// frame's worth, and every frame they accept must re-encode to its own bytes.
#include "../fuzz/fuzz_target.hpp"

#include <cstdlib>
#include <xkbus/limpet/wire.hpp>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace xkbus::limpet;
    if (size == 0) {
        return 0;
    }
    // The first byte picks how the rest, the stream, is chopped into reads.
    const size_t chunk = 1 + data[0] % 64;
    const auto bytes = std::as_bytes(std::span(data + 1, size - 1));
    FrameReader reader;
    for (size_t at = 0; at < bytes.size() && !reader.failed(); at += chunk) {
        if (!reader.feed(bytes.subspan(at, std::min(chunk, bytes.size() - at)))) {
            break;
        }
        while (auto body = reader.next()) {
            auto frame = decodeFrame(*body);
            if (!frame) {
                continue;
            }
            auto again = encodeFrame(*frame);
            if (again.size() != body->size() + 4 ||
                !std::equal(body->begin(), body->end(), again.begin() + 4)) {
                std::abort(); // an accepted frame must mean exactly what it said
            }
        }
        if (reader.buffered() > MAX_FRAME_BODY + 4 + chunk) {
            std::abort();
        }
    }
    return 0;
}
