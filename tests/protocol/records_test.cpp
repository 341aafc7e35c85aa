// Round trips and refusals of the connection records.
#include <gtest/gtest.h>
#include <xkbus/protocol/records.hpp>

namespace xkbus::protocol {
namespace {

MessageBody bodyOf(std::string_view name, std::vector<std::byte> data = {}) {
    return MessageBody::copyOf(name, data);
}

std::vector<std::byte> bytesOf(const Record& r) {
    std::vector<std::byte> out;
    encode(r, out);
    return out;
}

Record sampleSend() {
    Record r;
    r.type = RecordType::SEND;
    r.callId = 7;
    r.handle = 3;
    r.header.id = MsgId{1, 2};
    r.header.inReplyTo = MsgId{3, 4};
    r.header.to = 5;
    r.header.flags = FLAG_WANT_A_REPLY | 0x10000;
    r.header.origFrom = OrigFrom{6, 7};
    r.header.finalTo = OrigFrom{8, 9};
    r.body = bodyOf("$.a.b", {std::byte{1}, std::byte{2}, std::byte{3}});
    return r;
}

TEST(Records, EveryTypeRoundTrips) {
    for (auto type :
         {RecordType::HELLO, RecordType::OPEN, RecordType::CLOSE, RecordType::BIND,
          RecordType::UNBIND, RecordType::FIND_REPLIER, RecordType::SEND, RecordType::DISCARD,
          RecordType::POP, RecordType::NEXT, RecordType::CONTROL, RecordType::NEW_BUS,
          RecordType::RESULT, RecordType::PUSHED, RecordType::REMOVED, RecordType::SEND_FINISHED}) {
        Record r = sampleSend();
        r.type = type;
        r.arg = 11;
        r.value = 0x1122334455667788ull;
        const bool hasMessage = type == RecordType::SEND || type == RecordType::PUSHED;
        const bool hasName = hasMessage || type == RecordType::BIND || type == RecordType::UNBIND ||
                             type == RecordType::FIND_REPLIER;
        if (!hasMessage) {
            r.header = MessageHeader{};
        }
        const bool hasData = hasMessage || type == RecordType::RESULT;
        r.body = MessageBody::copyOf(hasName ? r.body.name() : "",
                                     hasData ? r.body.data() : std::span<const std::byte>());
        auto bytes = bytesOf(r);
        EXPECT_EQ(bytes.size(), encodedSize(r));
        auto back = decode(bytes);
        ASSERT_TRUE(back) << static_cast<int>(type);
        EXPECT_EQ(*back, r) << static_cast<int>(type);
    }
}

TEST(Records, TruncationAtEveryLengthIsRefused) {
    auto bytes = bytesOf(sampleSend());
    for (size_t n = 0; n < bytes.size(); ++n) {
        auto r = decode(std::span(bytes).first(n));
        ASSERT_FALSE(r) << n;
        EXPECT_EQ(r.error(), Errc::PROTOCOL_VIOLATION);
    }
}

TEST(Records, TrailingBytesUnknownTypesAndVersionsAreRefused) {
    auto bytes = bytesOf(sampleSend());
    bytes.push_back(std::byte{0});
    EXPECT_FALSE(decode(bytes));
    auto unknown = bytesOf(sampleSend());
    unknown[0] = std::byte{99};
    EXPECT_FALSE(decode(unknown));
    auto version = bytesOf(sampleSend());
    version[2] = std::byte{PROTOCOL_VERSION + 1};
    EXPECT_FALSE(decode(version));
}

TEST(Records, LengthsOverTheLimitsAreRefusedBeforeAnyCopy) {
    Record r = sampleSend();
    r.type = RecordType::PUSHED;
    r.body = bodyOf(std::string(1001, 'x'));
    EXPECT_FALSE(decode(bytesOf(r))) << "the daemon never sends a name over the limit";
    r = sampleSend();
    r.body = bodyOf("$.a", std::vector<std::byte>(101));
    EXPECT_FALSE(decode(bytesOf(r), Limits{.maxName = 1000, .maxData = 100}));
    EXPECT_TRUE(decode(bytesOf(r), Limits{.maxName = 1000, .maxData = 101}));
}

// Issue 16: a client's name over the limit is its caller's error, which the
// bus answers (ENAMETOOLONG); the record is kept, with the name cut to one
// byte over the limit.
TEST(Records, ClientNamesOverTheLimitAreKeptCutToOneByteOver) {
    const std::string name = "$." + std::string(9998, 'x');
    const std::vector<std::byte> data{std::byte{7}, std::byte{8}};
    for (RecordType type :
         {RecordType::SEND, RecordType::BIND, RecordType::UNBIND, RecordType::FIND_REPLIER}) {
        Record r = sampleSend();
        r.type = type;
        const bool message = type == RecordType::SEND;
        if (!message) {
            r.header = {};
        }
        r.body = bodyOf(name, message ? data : std::vector<std::byte>{});
        auto decoded = decode(bytesOf(r));
        ASSERT_TRUE(decoded) << static_cast<int>(type);
        EXPECT_EQ(decoded->body.name(), name.substr(0, 1001));
        EXPECT_TRUE(std::ranges::equal(decoded->body.data(), r.body.data()));
    }
}

TEST(Records, NameRecordsCarryNoData) {
    Record r;
    r.type = RecordType::BIND;
    r.body = bodyOf("$.x");
    auto bytes = bytesOf(r);
    // Claim one byte of data and supply it: still refused for a BIND.
    bytes[24 + 4] = std::byte{1};
    bytes.push_back(std::byte{0});
    EXPECT_FALSE(decode(bytes));
}

TEST(Records, HugeClaimedLengthsDoNotOverflow) {
    auto bytes = bytesOf(sampleSend());
    const size_t lengths = 24 + 48;
    for (int i = 0; i < 8; ++i) {
        bytes[lengths + static_cast<size_t>(i)] = std::byte{0xFF};
    }
    EXPECT_FALSE(decode(bytes, Limits{.maxName = 0xFFFFFFFF, .maxData = 0xFFFFFFFF}));
}

TEST(Records, ClientAndDaemonTypesAreSeparated) {
    EXPECT_TRUE(isClientRecord(RecordType::SEND));
    EXPECT_FALSE(isClientRecord(RecordType::PUSHED));
    EXPECT_EQ(unpackMsgId(packMsgId(MsgId{0xAABBCCDD, 0x11223344})),
              (MsgId{0xAABBCCDD, 0x11223344}));
}

} // namespace
} // namespace xkbus::protocol

namespace xkbus::protocol {
namespace {

Record sendOf(std::string name, size_t dataBytes) {
    Record r;
    r.type = RecordType::SEND;
    r.handle = 3;
    r.header.flags = 0x10000u;
    r.body = bodyOf(name, std::vector<std::byte>(dataBytes, std::byte{0x5a}));
    return r;
}

TEST(SendBatch, EntriesAndOutcomesRoundTrip) {
    std::vector<Record> sends{sendOf("$.a", 0), sendOf("$.b.c", 64), sendOf("$.d", 4096)};
    std::vector<std::byte> data;
    for (const auto& s : sends) {
        appendBatchEntry(s, data);
    }
    size_t expected = 0;
    for (const auto& s : sends) {
        expected += batchEntrySize(s.body.name().size(), s.body.data().size());
    }
    EXPECT_EQ(data.size(), expected);
    auto decoded = decodeBatch(data, sends.size());
    ASSERT_TRUE(decoded);
    EXPECT_EQ(*decoded, sends);

    std::vector<std::byte> answer;
    const std::vector<BatchOutcome> outcomes{{0, packMsgId({0, 7})}, {EADDRNOTAVAIL, 0}};
    for (const auto& o : outcomes) {
        appendBatchOutcome(o, answer);
    }
    EXPECT_EQ(decodeBatchOutcomes(answer, 2).value(), outcomes);
    EXPECT_FALSE(decodeBatchOutcomes(answer, 3));
}

TEST(SendBatch, MalformedBatchesAreRefused) {
    std::vector<std::byte> data;
    appendBatchEntry(sendOf("$.a", 8), data);
    appendBatchEntry(sendOf("$.b", 8), data);
    EXPECT_FALSE(decodeBatch(data, 1)) << "more entries than counted";
    EXPECT_FALSE(decodeBatch(data, 3)) << "fewer entries than counted";
    EXPECT_FALSE(decodeBatch(data, 0));
    EXPECT_FALSE(decodeBatch({}, MAX_BATCH + 1));
    for (size_t cut = 0; cut < data.size(); ++cut) {
        EXPECT_FALSE(decodeBatch(std::span(data).first(cut), 2)) << cut;
    }
    std::vector<std::byte> notASend;
    Record bind;
    bind.type = RecordType::BIND;
    bind.body = bodyOf("$.a");
    appendBatchEntry(bind, notASend);
    EXPECT_FALSE(decodeBatch(notASend, 1)) << "only SEND records may be batched";
    std::vector<std::byte> lying = data;
    lying[0] = std::byte{0xff}; // an entry length past the end
    EXPECT_FALSE(decodeBatch(lying, 2));
}

} // namespace
} // namespace xkbus::protocol
