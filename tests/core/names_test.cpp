// Name validation, limits and wildcard matching (KBUS spec "Message names").
#include <gtest/gtest.h>
#include <string>
#include <xkbus/common/message.hpp>
#include <xkbus/common/names.hpp>

namespace xkbus::core {
namespace {

Errc bindErr(std::string_view n) {
    auto r = checkBindName(n);
    return r ? Errc{} : r.error();
}
Errc sendErr(std::string_view n) {
    auto r = checkMessageName(n);
    return r ? Errc{} : r.error();
}

TEST(Names, PlainNamesAreWordsAfterDollarDot) {
    EXPECT_EQ(sendErr("$.Sensors.Kitchen"), Errc{});
    EXPECT_EQ(sendErr("$.a"), Errc{});
    EXPECT_EQ(sendErr("$.A1.b2.C3"), Errc{});
}

TEST(Names, MalformedNamesAreBadMessage) {
    for (const char* bad : {"$.", "$..x", "$.x.", "$.x..y", "x.y", "$x", "$.a-b", "$.a b",
                            "$.a.*.b", "$.Fred*", "$.*.Fred", "$.a_b", "$.%x"}) {
        EXPECT_EQ(bindErr(bad), Errc::BAD_NAME) << bad;
    }
}

TEST(Names, WildcardsMayBeBoundButNotSent) {
    for (const char* wild : {"$.*", "$.%", "$.a.*", "$.a.b.%"}) {
        EXPECT_EQ(bindErr(wild), Errc{}) << wild;
        EXPECT_EQ(sendErr(wild), Errc::BAD_NAME) << wild;
    }
}

TEST(Names, EmptyNameIsBadForBindButInvalidForSend) {
    EXPECT_EQ(bindErr(""), Errc::BAD_NAME);
    EXPECT_EQ(sendErr(""), Errc::INVALID);
}

TEST(Names, LengthLimitIsOneThousandBytes) {
    std::string name = "$.";
    name.append(MAX_NAME_LEN - 2, 'x');
    EXPECT_EQ(sendErr(name), Errc{});
    name.push_back('y');
    EXPECT_EQ(sendErr(name), Errc::NAME_TOO_LONG);
    EXPECT_EQ(bindErr(name), Errc::NAME_TOO_LONG);
}

TEST(Names, Latin1LettersPassLikeTheKernelIsalnum) {
    EXPECT_EQ(sendErr("$.caf\xE9"), Errc{}); // e-acute
    EXPECT_EQ(sendErr("$.\xC0\xFF"), Errc{});
    EXPECT_EQ(sendErr("$.a\xD7"), Errc::BAD_NAME); // multiplication sign
    EXPECT_EQ(sendErr("$.a\xF7"), Errc::BAD_NAME); // division sign
    EXPECT_EQ(sendErr("$.a\xA9"), Errc::BAD_NAME); // copyright sign
}

TEST(Names, StarMatchesEverythingBelow) {
    EXPECT_TRUE(nameMatches("$.Sensors.*", "$.Sensors.Kitchen"));
    EXPECT_TRUE(nameMatches("$.Sensors.*", "$.Sensors.Kitchen.Toaster"));
    EXPECT_FALSE(nameMatches("$.Sensors.*", "$.Sensors"));
    EXPECT_FALSE(nameMatches("$.Sensors.*", "$.SensorsX.a"));
    EXPECT_TRUE(nameMatches("$.*", "$.a"));
}

TEST(Names, PercentMatchesOneLevelOnly) {
    EXPECT_TRUE(nameMatches("$.Sensors.%", "$.Sensors.Kitchen"));
    EXPECT_FALSE(nameMatches("$.Sensors.%", "$.Sensors.Kitchen.Toaster"));
    EXPECT_FALSE(nameMatches("$.Sensors.%", "$.Sensors"));
    EXPECT_TRUE(nameMatches("$.%", "$.a"));
    EXPECT_FALSE(nameMatches("$.%", "$.a.b"));
}

TEST(Names, PlainBindingMatchesExactlyAndCaseMatters) {
    EXPECT_TRUE(nameMatches("$.Fred", "$.Fred"));
    EXPECT_FALSE(nameMatches("$.Fred", "$.fred"));
    EXPECT_FALSE(nameMatches("$.Fred", "$.Fred.Jim"));
}

TEST(Names, EntireLengthMatchesKbusMacro) {
    // KBUS_ENTIRE_MSG_LEN(6,0) == 100 and (6,7) == 108 on x86_64.
    EXPECT_EQ(entireMessageLength(6, 0), 100u);
    EXPECT_EQ(entireMessageLength(6, 7), 108u);
}

TEST(Names, BindEventDataRoundTripsAndRejectsGarbage) {
    auto data = encodeBindEventData(true, 7, "$.Fred");
    EXPECT_EQ(data.size(), 12u + 8u);
    BindEvent e;
    ASSERT_TRUE(decodeBindEventData(data, e));
    EXPECT_TRUE(e.isBind);
    EXPECT_EQ(e.binder, 7u);
    EXPECT_EQ(e.name, "$.Fred");
    data.pop_back();
    EXPECT_FALSE(decodeBindEventData(data, e));
}

} // namespace
} // namespace xkbus::core
