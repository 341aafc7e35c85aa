// Fuzzes the parsers of guest-written xenstore values: the input is split at
// NUL bytes into the five device params plus a state and a claim token.
#include "../fuzz/fuzz_target.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <xkbus/xenstore/values.hpp>

namespace {

void checkParams(const xkbus::xenstore::DeviceParams& p) {
    using namespace xkbus::xenstore;
    // Anything accepted must be inside the documented bounds.
    if (p.controlRef < MIN_GRANT_REF || p.controlRef > MAX_GRANT_REF || p.eventChannel == 0 ||
        p.eventChannel > MAX_EVENT_CHANNEL || p.toBackendOrder < MIN_RING_ORDER ||
        p.toBackendOrder > MAX_RING_ORDER || p.toFrontendOrder < MIN_RING_ORDER ||
        p.toFrontendOrder > MAX_RING_ORDER || p.protocolVersion != PROTOCOL_VERSION) {
        __builtin_trap();
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace xkbus::xenstore;
    std::array<std::string, 7> fields;
    size_t field = 0;
    for (size_t i = 0; i < size && field < fields.size(); ++i) {
        if (data[i] == 0) {
            ++field;
        } else {
            fields[field] += static_cast<char>(data[i]);
        }
    }
    RawDeviceParams raw{fields[0], fields[1], fields[2], fields[3], fields[4]};
    if (auto params = parseDeviceParams(raw)) {
        checkParams(*params);
    }
    if (auto state = parseState(fields[5])) {
        if (static_cast<int>(*state) > 8) {
            __builtin_trap();
        }
    }
    if (auto token = parseClaimToken(fields[6])) {
        if (token->empty() || token->size() > MAX_CLAIM_TOKEN_BYTES) {
            __builtin_trap();
        }
    }
    std::string_view whole(reinterpret_cast<const char*>(data), size);
    if (auto value = parseDecimal(whole, 1000)) {
        if (*value > 1000 || std::to_string(*value) != whole) {
            __builtin_trap(); // strict: the text is exactly the canonical decimal
        }
    }
    return 0;
}
