// The CLI's data in and out: decoding what a person types, and showing what
// arrives so that a person or a program can read it back exactly.
#include "data_format.hpp"

#include <cstdio>
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

namespace xkbus::cli {
namespace {

const std::string BINARY("\x00\x01\xfe\xff", 4);

TEST(DataFormat, HexDecodesIgnoringSpaceAndRefusesOddOrForeignDigits) {
    EXPECT_EQ(decodeData("de ad\nBE ef", Encoding::HEX).value(), "\xde\xad\xbe\xef");
    EXPECT_EQ(decodeData("000102", Encoding::HEX).value(), std::string("\x00\x01\x02", 3));
    EXPECT_EQ(decodeData("abc", Encoding::HEX).error(), Errc::INVALID);
    EXPECT_EQ(decodeData("zz", Encoding::HEX).error(), Errc::INVALID);
    EXPECT_EQ(decodeData("+1", Encoding::HEX).error(), Errc::INVALID);
}

TEST(DataFormat, Base64RoundTripsEveryLengthAndRefusesGarbage) {
    std::string bytes;
    for (int n = 0; n < 40; ++n) {
        EXPECT_EQ(decodeData(toBase64(bytes), Encoding::BASE64).value(), bytes) << n;
        bytes += static_cast<char>(n * 37);
    }
    EXPECT_EQ(toBase64("hello"), "aGVsbG8=");
    EXPECT_EQ(decodeData("aGVs\nbG8=", Encoding::BASE64).value(), "hello");
    EXPECT_EQ(decodeData("aGVsbG8", Encoding::BASE64).error(), Errc::INVALID);
    EXPECT_EQ(decodeData("aG!sbG8=", Encoding::BASE64).error(), Errc::INVALID);
}

TEST(DataFormat, TextIsTakenAsItIs) {
    EXPECT_EQ(decodeData(" spaced \n", Encoding::TEXT).value(), " spaced \n");
}

TEST(DataFormat, SourcesAreAnArgumentAFileOrStandardInput) {
    char path[] = "/tmp/xkbus-data-XXXXXX";
    const int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, BINARY.data(), BINARY.size()), 4);
    ::close(fd);
    EXPECT_EQ(readDataSource(std::string("@") + path).value(), BINARY);
    EXPECT_EQ(loadData(std::string("@") + path, Encoding::TEXT).value(), BINARY);
    ::unlink(path);
    EXPECT_EQ(readDataSource(std::string("@") + path).error(), Errc::NO_SUCH_DEVICE);
    EXPECT_EQ(readDataSource("plain words").value(), "plain words");
    EXPECT_EQ(loadData("6869", Encoding::HEX).value(), "hi");
}

TEST(DataFormat, PrintableMeansUtf8WithoutControlsButLineBreaksAndTabs) {
    EXPECT_TRUE(isPrintableText("Tue Jun  4 10:00:00 UTC 2024\n"));
    EXPECT_TRUE(isPrintableText("caf\xc3\xa9\tok\r\n"));
    EXPECT_TRUE(isPrintableText(""));
    EXPECT_FALSE(isPrintableText(BINARY));
    EXPECT_FALSE(isPrintableText("bell\a"));
    EXPECT_FALSE(isPrintableText("\xc3")); // a cut UTF-8 sequence
    EXPECT_FALSE(isPrintableText("del\x7f"));
}

TEST(DataFormat, ALineShowsTextEscapedAndBytesAsHexOrBase64) {
    EXPECT_EQ(renderForLine("date\n", DataFormat::AUTO), "\"date\\n\"");
    EXPECT_EQ(renderForLine("say \"hi\"", DataFormat::AUTO), "\"say \\\"hi\\\"\"");
    EXPECT_EQ(renderForLine(BINARY, DataFormat::AUTO), "hex:0001feff");
    EXPECT_EQ(renderForLine(BINARY, DataFormat::BASE64), "base64:AAH+/w==");
    EXPECT_EQ(renderForLine("hi", DataFormat::HEX), "hex:6869");
    EXPECT_EQ(renderForLine(std::string("a\0b", 3), DataFormat::TEXT), "\"a\\x00b\"");
}

TEST(DataFormat, JsonAlwaysCarriesTheDataAndNamesItsEncoding) {
    nlohmann::json j;
    addToJson(j, "date\n", DataFormat::AUTO);
    EXPECT_EQ(j["data"], "date\n");
    EXPECT_EQ(j["data_encoding"], "utf-8");
    addToJson(j, BINARY, DataFormat::AUTO);
    EXPECT_EQ(j["data_encoding"], "base64");
    EXPECT_EQ(decodeData(j["data"].get<std::string>(), Encoding::BASE64).value(), BINARY);
    addToJson(j, BINARY, DataFormat::TEXT); // not UTF-8: a JSON string cannot hold it
    EXPECT_EQ(j["data_encoding"], "base64");
    addToJson(j, "hi", DataFormat::HEX);
    EXPECT_EQ(j["data"], "6869");
    EXPECT_EQ(j["data_encoding"], "hex");
    addToJson(j, std::string("\x00\x01", 2), DataFormat::AUTO); // UTF-8, but not text
    EXPECT_EQ(j["data"], "AAE=");
    addToJson(j, "", DataFormat::AUTO);
    EXPECT_EQ(j["data"], "");
}

} // namespace
} // namespace xkbus::cli
