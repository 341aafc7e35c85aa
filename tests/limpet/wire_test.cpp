// The Limpet wire format: every frame survives a round trip, and every
// malformed one is refused (docs/limpet.md, "Wire format").
#include <algorithm>
#include <gtest/gtest.h>
#include <xkbus/limpet/wire.hpp>

namespace xkbus::limpet {
namespace {

std::vector<std::byte> bodyOf(const Frame& f) {
    auto bytes = encodeFrame(f);
    return {bytes.begin() + 4, bytes.end()};
}

Message sampleMessage() {
    const std::byte data[] = {std::byte{1}, std::byte{2}, std::byte{3}};
    Message m = makeMessage("$.Sensors.Kitchen", data, FLAG_WANT_A_REPLY | 0x10000u);
    m.header.id = {7, 42};
    m.header.to = 3;
    m.header.from = 4;
    m.header.origFrom = {7, 4};
    m.header.finalTo = {9, 2};
    return m;
}

Message renamed(const Message& m, std::string_view name) {
    Message out = makeMessage(name, m.data(), m.header.flags);
    out.header = m.header;
    return out;
}

TEST(LimpetWire, EveryFrameTypeRoundTrips) {
    const Frame frames[] = {Hello{WIRE_VERSION, 5, 250}, Heartbeat{}, BindNotice{false, "$.Svc.*"},
                            sampleMessage(), Goodbye{ByeReason::CYCLE, "cycle detected"}};
    for (const Frame& f : frames) {
        auto decoded = decodeFrame(bodyOf(f));
        ASSERT_TRUE(decoded) << f.index();
        EXPECT_EQ(decoded->index(), f.index());
        EXPECT_EQ(bodyOf(*decoded), bodyOf(f)) << "re-encodes to the same bytes";
    }
    const auto decoded = std::get<Message>(decodeFrame(bodyOf(sampleMessage())).value());
    const Message sample = sampleMessage();
    EXPECT_EQ(decoded.header, sample.header);
    EXPECT_EQ(decoded.name(), sample.name());
    EXPECT_TRUE(std::ranges::equal(decoded.data(), sample.data()));
}

// Version 1 as docs/limpet.md lays it out, written here byte by byte: a
// MESSAGE frame must not change with the types the Limpet holds it in.
TEST(LimpetWire, AMessageFrameKeepsTheVersion1Layout) {
    std::vector<std::byte> expected;
    auto u32 = [&](uint32_t v) {
        for (int shift = 24; shift >= 0; shift -= 8) {
            expected.push_back(std::byte{static_cast<uint8_t>(v >> shift)});
        }
    };
    const std::string name = "$.Sensors.Kitchen";
    u32(1 + 13 * 4 + static_cast<uint32_t>(name.size()) + 3); // body length
    expected.push_back(std::byte{4});                         // MESSAGE
    for (uint32_t v : {7u, 42u, 0u, 0u, 3u, 4u, 7u, 4u, 9u, 2u, FLAG_WANT_A_REPLY | 0x10000u}) {
        u32(v); // id, in_reply_to, to, from, orig_from, final_to, flags
    }
    u32(static_cast<uint32_t>(name.size()));
    u32(3);
    for (char c : name) {
        expected.push_back(static_cast<std::byte>(c));
    }
    expected.insert(expected.end(), {std::byte{1}, std::byte{2}, std::byte{3}});
    EXPECT_EQ(encodeFrame(sampleMessage()), expected);
}

TEST(LimpetWire, MalformedFramesAreRefused) {
    Message noNetworkId = sampleMessage();
    noNetworkId.header.id.networkId = 0;
    const Message badName = renamed(sampleMessage(), "$.Bad..Name");
    Message requestAndReply = sampleMessage();
    requestAndReply.header.inReplyTo = {7, 1};
    Message unknownFlag = sampleMessage();
    unknownFlag.header.flags |= 1u << 12;
    for (const Frame& f :
         {Frame{noNetworkId}, Frame{badName}, Frame{requestAndReply}, Frame{unknownFlag},
          Frame{Hello{WIRE_VERSION, 0, 250}}, Frame{Hello{WIRE_VERSION, 5, 1}},
          Frame{BindNotice{true, "$.a.*.b"}}, Frame{Goodbye{ByeReason::SHUTDOWN, "bell\a"}}}) {
        EXPECT_EQ(decodeFrame(bodyOf(f)).error(), Errc::PROTOCOL_VIOLATION) << f.index();
    }
    auto good = bodyOf(sampleMessage());
    for (size_t cut = 0; cut < good.size(); ++cut) {
        EXPECT_FALSE(decodeFrame(std::span(good).first(cut))) << "truncated at " << cut;
    }
    good.push_back(std::byte{0});
    EXPECT_FALSE(decodeFrame(good)) << "a trailing byte";
    std::vector<std::byte> unknownType{std::byte{99}};
    EXPECT_FALSE(decodeFrame(unknownType));
}

TEST(LimpetWire, TheReaderCutsAStreamFedOneByteAtATime) {
    std::vector<std::byte> stream;
    for (const Frame& f : {Frame{Heartbeat{}}, Frame{sampleMessage()}, Frame{Heartbeat{}}}) {
        auto bytes = encodeFrame(f);
        stream.insert(stream.end(), bytes.begin(), bytes.end());
    }
    FrameReader reader;
    std::vector<std::vector<std::byte>> bodies;
    for (std::byte b : stream) {
        ASSERT_TRUE(reader.feed(std::span(&b, 1)));
        while (auto body = reader.next()) {
            bodies.push_back(std::move(*body));
        }
    }
    ASSERT_EQ(bodies.size(), 3u);
    EXPECT_TRUE(std::holds_alternative<Message>(decodeFrame(bodies[1]).value()));
    EXPECT_EQ(reader.buffered(), 0u);
}

TEST(LimpetWire, AnOversizedLengthIsRefusedBeforeAnythingIsBuffered) {
    FrameReader reader;
    const uint32_t len = MAX_FRAME_BODY + 1;
    std::byte word[4];
    for (size_t i = 0; i < 4; ++i) {
        word[i] = std::byte{static_cast<uint8_t>(len >> (24 - 8 * i))};
    }
    EXPECT_EQ(reader.feed(word).error(), Errc::PROTOCOL_VIOLATION);
    EXPECT_TRUE(reader.failed());
    EXPECT_FALSE(reader.next());
}

} // namespace
} // namespace xkbus::limpet
