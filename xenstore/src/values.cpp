// Strict parsers for xenstore values; see values.hpp for the rules.
#include <xkbus/xenstore/values.hpp>

namespace xkbus::xenstore {

Parsed<uint64_t> parseDecimal(std::string_view text, uint64_t max) {
    if (text.empty()) {
        return tl::unexpected(Rejection{"empty"});
    }
    // 20 digits hold any uint64_t; longer input is refused before any arithmetic.
    if (text.size() > 20) {
        return tl::unexpected(Rejection{"too long"});
    }
    if (text.size() > 1 && text[0] == '0') {
        return tl::unexpected(Rejection{"leading zero"});
    }
    uint64_t value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') {
            return tl::unexpected(Rejection{"not a decimal number"});
        }
        auto digit = static_cast<uint64_t>(c - '0');
        if (value > max / 10 || digit > max - value * 10) {
            return tl::unexpected(Rejection{"out of range"});
        }
        value = value * 10 + digit;
    }
    return value;
}

namespace {

template <class T>
Parsed<T> parseInRange(std::string_view text, uint64_t min, uint64_t max) {
    auto value = parseDecimal(text, max);
    if (!value) {
        return tl::unexpected(value.error());
    }
    if (*value < min) {
        return tl::unexpected(Rejection{"out of range"});
    }
    return static_cast<T>(*value);
}

} // namespace

Parsed<XenbusState> parseState(std::string_view text) {
    return parseInRange<XenbusState>(text, 0, static_cast<uint64_t>(XenbusState::RECONFIGURED));
}

Parsed<uint32_t> parseGrantRef(std::string_view text) {
    return parseInRange<uint32_t>(text, MIN_GRANT_REF, MAX_GRANT_REF);
}

Parsed<uint32_t> parseEventChannel(std::string_view text) {
    return parseInRange<uint32_t>(text, 1, MAX_EVENT_CHANNEL);
}

Parsed<uint8_t> parseRingOrder(std::string_view text) {
    return parseInRange<uint8_t>(text, MIN_RING_ORDER, MAX_RING_ORDER);
}

Parsed<uint32_t> parseProtocolVersion(std::string_view text) {
    return parseInRange<uint32_t>(text, 1, PROTOCOL_VERSION);
}

Parsed<uint32_t> parseBus(std::string_view text) {
    return parseInRange<uint32_t>(text, 0, MAX_BUS);
}

Parsed<DevId> parseDevId(std::string_view text) {
    return parseInRange<DevId>(text, 0, MAX_DEVID);
}

Parsed<DomId> parseDomId(std::string_view text) {
    return parseInRange<DomId>(text, 0, MAX_DOMID);
}

Parsed<std::string_view> parseClaimToken(std::string_view text) {
    if (text.empty() || text.size() > MAX_CLAIM_TOKEN_BYTES) {
        return tl::unexpected(Rejection{"bad length"});
    }
    for (char c : text) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == ':' || c == '-';
        if (!ok) {
            return tl::unexpected(Rejection{"bad character"});
        }
    }
    return text;
}

namespace {

template <class T, class Parser>
bool parseField(const std::optional<std::string>& raw, std::string_view key, Parser parser, T& out,
                ParamsRejection& rejection) {
    if (!raw) {
        rejection = {key, "missing"};
        return false;
    }
    auto value = parser(*raw);
    if (!value) {
        rejection = {key, value.error()};
        return false;
    }
    out = *value;
    return true;
}

} // namespace

tl::expected<DeviceParams, ParamsRejection> parseDeviceParams(const RawDeviceParams& raw) {
    DeviceParams params;
    ParamsRejection rejection;
    bool ok =
        parseField(raw.protocolVersion, key::PROTOCOL_VERSION, parseProtocolVersion,
                   params.protocolVersion, rejection) &&
        parseField(raw.controlRef, key::CONTROL_REF, parseGrantRef, params.controlRef, rejection) &&
        parseField(raw.eventChannel, key::EVENT_CHANNEL, parseEventChannel, params.eventChannel,
                   rejection) &&
        parseField(raw.toBackendOrder, key::TO_BACKEND_ORDER, parseRingOrder, params.toBackendOrder,
                   rejection) &&
        parseField(raw.toFrontendOrder, key::TO_FRONTEND_ORDER, parseRingOrder,
                   params.toFrontendOrder, rejection);
    if (!ok) {
        return tl::unexpected(rejection);
    }
    return params;
}

std::string formatState(XenbusState state) {
    return std::to_string(static_cast<unsigned>(state));
}

} // namespace xkbus::xenstore
