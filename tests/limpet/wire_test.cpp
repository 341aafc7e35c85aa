// The Limpet wire format: every frame survives a round trip, and every
// malformed one is refused (docs/limpet.md, "Wire format").
#include <gtest/gtest.h>
#include <xkbus/limpet/wire.hpp>

namespace xkbus::limpet {
namespace {

std::vector<std::byte> bodyOf(const Frame& f) {
    auto bytes = encodeFrame(f);
    return {bytes.begin() + 4, bytes.end()};
}

Msg sampleMessage() {
    Msg m;
    m.id = {7, 42};
    m.to = 3;
    m.from = 4;
    m.origFrom = {7, 4};
    m.finalTo = {9, 2};
    m.flags = FLAG_WANT_A_REPLY | 0x10000u;
    m.name = "$.Sensors.Kitchen";
    m.data = {std::byte{1}, std::byte{2}, std::byte{3}};
    return m;
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
}

TEST(LimpetWire, MalformedFramesAreRefused) {
    Msg noNetworkId = sampleMessage();
    noNetworkId.id.networkId = 0;
    Msg badName = sampleMessage();
    badName.name = "$.Bad..Name";
    Msg requestAndReply = sampleMessage();
    requestAndReply.inReplyTo = {7, 1};
    Msg unknownFlag = sampleMessage();
    unknownFlag.flags |= 1u << 12;
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
    EXPECT_TRUE(std::holds_alternative<Msg>(decodeFrame(bodies[1]).value()));
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
