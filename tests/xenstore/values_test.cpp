// Strict parsing of guest-written xenstore values.
#include <gtest/gtest.h>
#include <xkbus/xenstore/values.hpp>

namespace xkbus::xenstore {
namespace {

TEST(ParseDecimal, AcceptsPlainDecimalsUpToMax) {
    EXPECT_EQ(parseDecimal("0", 10).value(), 0u);
    EXPECT_EQ(parseDecimal("10", 10).value(), 10u);
    EXPECT_EQ(parseDecimal("18446744073709551615", UINT64_MAX).value(), UINT64_MAX);
}

TEST(ParseDecimal, RefusesEverythingElse) {
    const std::string_view bads[] = {"",
                                     " 1",
                                     "1 ",
                                     "+1",
                                     "-1",
                                     "01",
                                     "00",
                                     "0x10",
                                     "1e3",
                                     "1.0",
                                     "11",
                                     "18446744073709551616",
                                     "123456789012345678901",
                                     std::string_view("1\0", 2)};
    for (std::string_view bad : bads) {
        EXPECT_FALSE(parseDecimal(bad, 10).has_value()) << "accepted '" << bad << "'";
    }
}

TEST(ParseDecimal, SingleDigitAboveMaxIsOutOfRange) {
    EXPECT_EQ(parseDecimal("9", 8).error(), "out of range");
    EXPECT_EQ(parseDecimal("8", 8).value(), 8u);
}

TEST(ParseValues, RangesFollowTheProtocol) {
    EXPECT_FALSE(parseGrantRef("7")); // reserved refs
    EXPECT_TRUE(parseGrantRef("8"));
    EXPECT_TRUE(parseGrantRef(std::to_string(MAX_GRANT_REF)));
    EXPECT_FALSE(parseGrantRef(std::to_string(MAX_GRANT_REF + 1)));
    EXPECT_FALSE(parseEventChannel("0"));
    EXPECT_TRUE(parseEventChannel("1"));
    EXPECT_FALSE(parseEventChannel(std::to_string(MAX_EVENT_CHANNEL + 1)));
    EXPECT_FALSE(parseRingOrder("7"));
    EXPECT_EQ(parseRingOrder("8").value(), 8);
    EXPECT_FALSE(parseRingOrder("21"));
    EXPECT_FALSE(parseProtocolVersion("0"));
    EXPECT_FALSE(parseProtocolVersion("2"));
    EXPECT_EQ(parseState("6").value(), XenbusState::CLOSED);
    EXPECT_FALSE(parseState("9"));
    EXPECT_FALSE(parseDomId("32752"));
    EXPECT_FALSE(parseDevId("4096"));
}

TEST(ParseClaimToken, BoundedIdentifiers) {
    EXPECT_TRUE(parseClaimToken("1234.5678:a-b_c"));
    EXPECT_FALSE(parseClaimToken(""));
    EXPECT_FALSE(parseClaimToken("a b"));
    EXPECT_FALSE(parseClaimToken("a/b"));
    EXPECT_FALSE(parseClaimToken(std::string(MAX_CLAIM_TOKEN_BYTES + 1, 'a')));
}

RawDeviceParams goodRaw() {
    return {"1", "4242", "17", "12", "16"};
}

TEST(ParseDeviceParams, GoodSet) {
    auto params = parseDeviceParams(goodRaw());
    ASSERT_TRUE(params);
    EXPECT_EQ(*params, (DeviceParams{1, 4242, 17, 12, 16}));
}

TEST(ParseDeviceParams, NamesTheFirstBadKey) {
    auto raw = goodRaw();
    raw.eventChannel = "017";
    EXPECT_EQ(parseDeviceParams(raw).error().key, key::EVENT_CHANNEL);
    raw = goodRaw();
    raw.controlRef.reset();
    EXPECT_EQ(parseDeviceParams(raw).error().key, key::CONTROL_REF);
    EXPECT_EQ(parseDeviceParams(raw).error().why, "missing");
}

} // namespace
} // namespace xkbus::xenstore
