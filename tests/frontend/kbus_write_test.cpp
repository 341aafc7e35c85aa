// The write state machine through kbus_ksock_write / kbus_ksock_send: entire
// messages in any number of pieces, pointy messages followed at SEND, and each
// of KBUS's write errors with its errno.
#include "kbus_test_support.hpp"

#include <cstring>

namespace xkbus::frontend::testing {
namespace {

class KbusWrite : public KbusTest {
protected:
    void SetUp() override {
        KbusTest::SetUp();
        m_sender = open();
        m_listener = open();
        ASSERT_EQ(kbus_ksock_bind(m_listener, "$.Fred", 0), 0);
    }

    // Bytes of an entire message, to corrupt before writing.
    static std::vector<unsigned char> bytesOf(const kbus_message_t* m) {
        const auto* p = reinterpret_cast<const unsigned char*>(m);
        return {p, p + kbus_msg_sizeof(m)};
    }
    static std::vector<unsigned char> entireBytes(std::string_view name, std::string_view data) {
        return bytesOf(entire(name, data).get());
    }
    ssize_t write(const std::vector<unsigned char>& bytes) {
        return kbus_ksock_write(m_sender, bytes.data(), bytes.size());
    }
    int send() {
        kbus_msg_id_t id{};
        return kbus_ksock_send(m_sender, &id);
    }
    // After an error nothing of the message is left: SEND has nothing.
    void expectForgotten() { EXPECT_EQ(send(), -ENOMSG); }

    int m_sender = -1;
    int m_listener = -1;
};

TEST_F(KbusWrite, EntireMessageWrittenByteByByteIsSent) {
    const auto bytes = entireBytes("$.Fred", "hello, bus");
    for (const unsigned char b : bytes) {
        ASSERT_EQ(kbus_ksock_write(m_sender, &b, 1), 1);
    }
    kbus_msg_id_t id{};
    ASSERT_EQ(kbus_ksock_send(m_sender, &id), 0);
    EXPECT_NE(id.serial_num, 0u);
    auto got = readNext(m_listener);
    ASSERT_TRUE(got);
    EXPECT_EQ(nameOf(got.get()), "$.Fred");
    EXPECT_EQ(dataOf(got.get()), "hello, bus");
    EXPECT_EQ(got->id.serial_num, id.serial_num);
    EXPECT_EQ(got->from, ksockId(m_sender));
}

TEST_F(KbusWrite, EntireMessageInUnevenPiecesIsSent) {
    const auto bytes = entireBytes("$.Fred", "0123456789abcdef");
    const size_t cuts[] = {0, 50, 89, 90, 97, 110, bytes.size()};
    for (size_t i = 0; i + 1 < std::size(cuts); ++i) {
        ASSERT_EQ(kbus_ksock_write(m_sender, bytes.data() + cuts[i], cuts[i + 1] - cuts[i]),
                  static_cast<ssize_t>(cuts[i + 1] - cuts[i]));
    }
    ASSERT_EQ(send(), 0);
    auto got = readNext(m_listener);
    ASSERT_TRUE(got);
    EXPECT_EQ(dataOf(got.get()), "0123456789abcdef");
}

TEST_F(KbusWrite, PointyMessageIsFollowedOnlyAtSend) {
    char data[] = "before";
    kbus_message_t* m = nullptr;
    ASSERT_EQ(kbus_msg_create(&m, "$.Fred", 6, data, 6, 0), 0);
    MessagePtr owned(m);
    ASSERT_EQ(kbus_ksock_write_msg(m_sender, m), 0);
    std::memcpy(data, "after!", 6); // changed between the write and the SEND
    ASSERT_EQ(send(), 0);
    auto got = readNext(m_listener);
    ASSERT_TRUE(got);
    EXPECT_TRUE(kbus_msg_is_entire(got.get())); // reads are always entire
    EXPECT_EQ(dataOf(got.get()), "after!");
}

TEST_F(KbusWrite, SendWithNothingWrittenIsENOMSG) {
    EXPECT_EQ(send(), -ENOMSG);
}

TEST_F(KbusWrite, SendOfAnIncompleteEntireMessageIsEINVALAndForgetsIt) {
    const auto bytes = entireBytes("$.Fred", "abc");
    ASSERT_EQ(kbus_ksock_write(m_sender, bytes.data(), bytes.size() - 1), bytes.size() - 1);
    EXPECT_EQ(send(), -EINVAL);
    expectForgotten();
    ASSERT_EQ(kbus_ksock_write(m_sender, bytes.data(), 40), 40);
    EXPECT_EQ(send(), -EINVAL); // a partial header too
}

TEST_F(KbusWrite, BadStartGuardIsEINVAL) {
    auto bytes = entireBytes("$.Fred", "");
    bytes[0] ^= 1;
    EXPECT_EQ(write(bytes), -EINVAL);
    expectForgotten();
}

TEST_F(KbusWrite, BadHeaderEndGuardIsEINVAL) {
    auto bytes = entireBytes("$.Fred", "");
    bytes[80] ^= 1;
    EXPECT_EQ(write(bytes), -EINVAL);
    expectForgotten();
}

TEST_F(KbusWrite, BadFinalEndGuardIsEINVALOnlyWhenItsLastByteArrives) {
    auto bytes = entireBytes("$.Fred", "xy");
    bytes.back() ^= 1;
    ASSERT_EQ(kbus_ksock_write(m_sender, bytes.data(), bytes.size() - 1), bytes.size() - 1);
    EXPECT_EQ(kbus_ksock_write(m_sender, &bytes.back(), 1), -EINVAL);
    expectForgotten();
}

TEST_F(KbusWrite, ZeroNameLengthIsEINVAL) {
    auto m = entire("$.Fred");
    m->name_len = 0;
    EXPECT_EQ(kbus_ksock_write(m_sender, m.get(), 88), -EINVAL);
    expectForgotten();
}

TEST_F(KbusWrite, NameLongerThan1000IsENAMETOOLONG) {
    const std::string longName = "$." + std::string(999, 'a'); // 1001 bytes
    auto m = entire(longName);
    EXPECT_EQ(kbus_ksock_write_msg(m_sender, m.get()), -ENAMETOOLONG);
    expectForgotten();
    const std::string longest = "$." + std::string(998, 'a');
    EXPECT_EQ(sendEntire(m_sender, longest), 0);
}

TEST_F(KbusWrite, BothAllOrFlagsAreEINVAL) {
    auto m = entire("$.Fred", "", KBUS_BIT_ALL_OR_WAIT | KBUS_BIT_ALL_OR_FAIL);
    EXPECT_EQ(kbus_ksock_write(m_sender, m.get(), 88), -EINVAL);
    expectForgotten();
}

TEST_F(KbusWrite, InlineNameWithDataPointerIsEINVAL) {
    char data[] = "d";
    auto m = entire("$.Fred");
    m->data = data;
    m->data_len = 1;
    EXPECT_EQ(kbus_ksock_write(m_sender, m.get(), 88), -EINVAL);
}

TEST_F(KbusWrite, DataPointerWithZeroDataLengthIsEINVAL) {
    char data[] = "d";
    kbus_message_t* m = nullptr;
    ASSERT_EQ(kbus_msg_create(&m, "$.Fred", 6, data, 0, 0), 0);
    MessagePtr owned(m);
    EXPECT_EQ(kbus_ksock_write_msg(m_sender, m), -EINVAL);
}

TEST_F(KbusWrite, PointyDataLengthWithoutDataPointerIsEINVAL) {
    kbus_message_t* m = nullptr;
    ASSERT_EQ(kbus_msg_create(&m, "$.Fred", 6, nullptr, 4, 0), 0);
    MessagePtr owned(m);
    EXPECT_EQ(kbus_ksock_write_msg(m_sender, m), -EINVAL);
}

TEST_F(KbusWrite, BytesAfterTheFinalEndGuardAreEMSGSIZE) {
    auto bytes = entireBytes("$.Fred", "abc");
    ASSERT_EQ(write(bytes), static_cast<ssize_t>(bytes.size()));
    const unsigned char extra = 0;
    EXPECT_EQ(kbus_ksock_write(m_sender, &extra, 1), -EMSGSIZE);
    expectForgotten();
    bytes.push_back(0); // in the same write: the whole write fails
    EXPECT_EQ(write(bytes), -EMSGSIZE);
    expectForgotten();
}

TEST_F(KbusWrite, BytesAfterAPointyHeaderAreEMSGSIZE) {
    kbus_message_t* m = nullptr;
    ASSERT_EQ(kbus_msg_create(&m, "$.Fred", 6, nullptr, 0, 0), 0);
    MessagePtr owned(m);
    std::vector<unsigned char> bytes(89, 0);
    std::memcpy(bytes.data(), m, 88);
    EXPECT_EQ(write(bytes), -EMSGSIZE);
    expectForgotten();
}

TEST_F(KbusWrite, EntireBadNameIsEBADMSGWhenTheNameIsWritten) {
    const auto bytes = entireBytes("$.a..b", "");
    ASSERT_EQ(kbus_ksock_write(m_sender, bytes.data(), 88), 88); // the header is fine
    EXPECT_EQ(kbus_ksock_write(m_sender, bytes.data() + 88, 6), -EBADMSG);
    expectForgotten();
}

TEST_F(KbusWrite, EntireWildcardNameIsEBADMSG) {
    EXPECT_EQ(write(entireBytes("$.Fred.*", "")), -EBADMSG);
    EXPECT_EQ(write(entireBytes("$.%", "")), -EBADMSG);
    EXPECT_EQ(write(entireBytes("Fred", "")), -EBADMSG);
}

TEST_F(KbusWrite, PointyBadNameIsEBADMSGAtSend) {
    kbus_message_t* m = nullptr;
    ASSERT_EQ(kbus_msg_create(&m, "$.Fred.", 7, nullptr, 0, 0), 0);
    MessagePtr owned(m);
    ASSERT_EQ(kbus_ksock_write_msg(m_sender, m), 0);
    EXPECT_EQ(send(), -EBADMSG);
    expectForgotten();
}

TEST_F(KbusWrite, PointyBadPointerIsEFAULTAtSend) {
    kbus_message_t* m = nullptr;
    ASSERT_EQ(kbus_msg_create(&m, reinterpret_cast<const char*>(16), 6, nullptr, 0, 0), 0);
    MessagePtr owned(m);
    ASSERT_EQ(kbus_ksock_write_msg(m_sender, m), 0);
    EXPECT_EQ(send(), -EFAULT);
}

TEST_F(KbusWrite, MessageOverTheLargestSizeIsEMSGSIZEAtTheHeader) {
    auto m = entire("$.Fred");
    m->data_len = 409600;
    EXPECT_EQ(kbus_ksock_write(m_sender, m.get(), 88), -EMSGSIZE);
}

TEST_F(KbusWrite, MessageOverTheBusLimitIsEMSGSIZEAtSend) {
    uint32_t limit = 200;
    ASSERT_EQ(kbus_ksock_max_message_size(m_sender, &limit), 0);
    EXPECT_EQ(limit, 200u);
    EXPECT_EQ(sendEntire(m_sender, "$.Fred", std::string(200, 'x')), -EMSGSIZE);
    EXPECT_EQ(sendEntire(m_sender, "$.Fred", std::string(8, 'x')), 0);
}

TEST_F(KbusWrite, AfterAnErrorTheNextMessageStartsAfresh) {
    auto bad = entireBytes("$.Fred", "");
    bad[0] = 0;
    ASSERT_EQ(write(bad), -EINVAL);
    EXPECT_EQ(sendEntire(m_sender, "$.Fred", "fresh"), 0);
    auto got = readNext(m_listener);
    ASSERT_TRUE(got);
    EXPECT_EQ(dataOf(got.get()), "fresh");
}

TEST_F(KbusWrite, ReadOnlyKsockCannotWrite) {
    const int reader = open(O_RDONLY);
    const auto bytes = entireBytes("$.Fred", "");
    EXPECT_EQ(kbus_ksock_write(reader, bytes.data(), bytes.size()), -EBADF);
    EXPECT_EQ(kbus_ksock_bind(reader, "$.Fred", 0), 0); // it may still listen
}

TEST_F(KbusWrite, SendClearsSyntheticAndExtraAndSetsFrom) {
    auto m = entire("$.Fred", "", KBUS_BIT_SYNTHETIC | 0x10000u);
    m->extra = 77;
    m->from = 999;
    kbus_msg_id_t id{};
    ASSERT_EQ(kbus_ksock_send_msg(m_sender, m.get(), &id), 0);
    auto got = readNext(m_listener);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->flags, 0x10000u);
    EXPECT_EQ(got->extra, 0u);
    EXPECT_EQ(got->from, ksockId(m_sender));
}

TEST_F(KbusWrite, UnknownKsockIsEBADF) {
    kbus_msg_id_t id{};
    EXPECT_EQ(kbus_ksock_write(12345, "x", 1), -EBADF);
    EXPECT_EQ(kbus_ksock_send(12345, &id), -EBADF);
    EXPECT_EQ(kbus_ksock_close(12345), -EBADF);
}

} // namespace
} // namespace xkbus::frontend::testing
