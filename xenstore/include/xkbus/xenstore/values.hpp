// Strict parsers for values read from xenstore. Everything a guest wrote goes
// through these: decimal only, no signs, spaces or leading zeros, bounded
// length and range. A rejection names a static reason for the log.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <xkbus/xenstore/device_protocol.hpp>

namespace xkbus::xenstore {

// A static string saying why a value was refused (never guest text).
using Rejection = std::string_view;
template <class T>
using Parsed = tl::expected<T, Rejection>;

Parsed<uint64_t> parseDecimal(std::string_view text, uint64_t max);
Parsed<XenbusState> parseState(std::string_view text);
Parsed<uint32_t> parseGrantRef(std::string_view text);
Parsed<uint32_t> parseEventChannel(std::string_view text);
Parsed<uint8_t> parseRingOrder(std::string_view text);
Parsed<uint32_t> parseProtocolVersion(std::string_view text);
Parsed<uint32_t> parseBus(std::string_view text);
Parsed<DevId> parseDevId(std::string_view text);
Parsed<DomId> parseDomId(std::string_view text);
// Claim tokens are short identifiers: [A-Za-z0-9._:-], 1..MAX_CLAIM_TOKEN_BYTES.
Parsed<std::string_view> parseClaimToken(std::string_view text);

// The frontend's published values as read (each nullopt if the node was absent).
struct RawDeviceParams {
    std::optional<std::string> protocolVersion;
    std::optional<std::string> controlRef;
    std::optional<std::string> eventChannel;
    std::optional<std::string> toBackendOrder;
    std::optional<std::string> toFrontendOrder;
};

struct ParamsRejection {
    std::string_view key;
    Rejection why;
};
tl::expected<DeviceParams, ParamsRejection> parseDeviceParams(const RawDeviceParams& raw);

std::string formatState(XenbusState state);

} // namespace xkbus::xenstore
