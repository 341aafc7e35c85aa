// The read state machine: NEXTMSG, reads in small chunks, LENLEFT at every
// position (KBUS counted data bytes four times), and NEXTMSG dropping a
// part-read message.
#include "kbus_test_support.hpp"

#include <cstring>

namespace xkbus::frontend::testing {
namespace {

class KbusRead : public KbusTest {
protected:
    void SetUp() override {
        KbusTest::SetUp();
        m_sender = open();
        m_listener = open();
        ASSERT_EQ(kbus_ksock_bind(m_listener, "$.Fred", 0), 0);
    }
    uint32_t lenLeft() {
        uint32_t left = 12345;
        EXPECT_EQ(kbus_ksock_len_left(m_listener, &left), 0);
        return left;
    }

    int m_sender = -1;
    int m_listener = -1;
};

TEST_F(KbusRead, NextMsgReturnsOneAndTheEntireLength) {
    ASSERT_EQ(sendEntire(m_sender, "$.Fred", "abcdefg"), 0);
    uint32_t length = 0;
    EXPECT_EQ(kbus_ksock_next_msg(m_listener, &length), 1);
    EXPECT_EQ(length, 108u);
    EXPECT_EQ(lenLeft(), 108u);
}

TEST_F(KbusRead, NextMsgWithNothingQueuedReturnsZero) {
    uint32_t length = 99;
    EXPECT_EQ(kbus_ksock_next_msg(m_listener, &length), 0);
    EXPECT_EQ(length, 0u);
    EXPECT_EQ(lenLeft(), 0u);
    kbus_message_t* m = reinterpret_cast<kbus_message_t*>(1);
    EXPECT_EQ(kbus_ksock_read_next_msg(m_listener, &m), 0);
    EXPECT_EQ(m, nullptr);
}

TEST_F(KbusRead, ReadWithNoCurrentMessageReturnsZero) {
    char buf[8];
    EXPECT_EQ(kbus_ksock_read(m_listener, buf, sizeof buf), 0);
}

TEST_F(KbusRead, SmallChunksReassembleTheEntireMessageAndLenLeftCountsEachByteOnce) {
    kbus_msg_id_t id{};
    ASSERT_EQ(sendEntire(m_sender, "$.Fred", "0123456789", 0, &id), 0);
    uint32_t length = 0;
    ASSERT_EQ(kbus_ksock_next_msg(m_listener, &length), 1);
    ASSERT_EQ(length, 88u + 8 + 12 + 4);
    std::vector<unsigned char> got;
    for (size_t chunk = 1; lenLeft() > 0; chunk = chunk % 5 + 1) {
        EXPECT_EQ(lenLeft(), length - got.size()); // every position, data part included
        unsigned char buf[5];
        const ssize_t n = kbus_ksock_read(m_listener, buf, chunk);
        ASSERT_GT(n, 0);
        got.insert(got.end(), buf, buf + n);
    }
    ASSERT_EQ(got.size(), length);
    EXPECT_EQ(lenLeft(), 0u);
    char buf[4];
    EXPECT_EQ(kbus_ksock_read(m_listener, buf, sizeof buf), 0); // the end

    kbus_message_t header{};
    std::memcpy(&header, got.data(), sizeof header);
    EXPECT_EQ(header.start_guard, KBUS_MSG_START_GUARD);
    EXPECT_EQ(header.end_guard, KBUS_MSG_END_GUARD);
    EXPECT_EQ(header.name, nullptr);
    EXPECT_EQ(header.data, nullptr);
    EXPECT_EQ(header.id.serial_num, id.serial_num);
    EXPECT_EQ(header.from, ksockId(m_sender));
    EXPECT_EQ(header.name_len, 6u);
    EXPECT_EQ(header.data_len, 10u);
    EXPECT_EQ(std::memcmp(got.data() + 88, "$.Fred\0\0", 8), 0);
    EXPECT_EQ(std::memcmp(got.data() + 96, "0123456789\0\0", 12), 0);
    uint32_t guard = 0;
    std::memcpy(&guard, got.data() + 108, 4);
    EXPECT_EQ(guard, KBUS_MSG_END_GUARD);
}

TEST_F(KbusRead, NextMsgDropsAPartReadMessage) {
    ASSERT_EQ(sendEntire(m_sender, "$.Fred", "first"), 0);
    ASSERT_EQ(sendEntire(m_sender, "$.Fred", "second"), 0);
    uint32_t length = 0;
    ASSERT_EQ(kbus_ksock_next_msg(m_listener, &length), 1);
    char buf[20];
    ASSERT_EQ(kbus_ksock_read(m_listener, buf, sizeof buf), 20);
    auto next = readNext(m_listener);
    ASSERT_TRUE(next);
    EXPECT_EQ(dataOf(next.get()), "second");
    EXPECT_EQ(kbus_ksock_next_msg(m_listener, &length), 0);
}

TEST_F(KbusRead, ReadMsgOfMoreThanIsLeftIsEBADMSG) {
    ASSERT_EQ(sendEntire(m_sender, "$.Fred", "x"), 0);
    uint32_t length = 0;
    ASSERT_EQ(kbus_ksock_next_msg(m_listener, &length), 1);
    kbus_message_t* m = nullptr;
    EXPECT_EQ(kbus_ksock_read_msg(m_listener, &m, length + 4), -EBADMSG);
    EXPECT_EQ(m, nullptr);
}

TEST_F(KbusRead, ReadMsgErrorsAreNegative) {
    const int writeOnly = open(O_WRONLY);
    ASSERT_EQ(kbus_ksock_bind(writeOnly, "$.Fred", 0), 0);
    ASSERT_EQ(sendEntire(m_sender, "$.Fred", "x"), 0);
    uint32_t length = 0;
    ASSERT_EQ(kbus_ksock_next_msg(writeOnly, &length), 1);
    kbus_message_t* m = nullptr;
    EXPECT_EQ(kbus_ksock_read_msg(writeOnly, &m, length), -EBADF); // libkbus gave +EBADF
    EXPECT_EQ(kbus_ksock_read_msg(9999, &m, 4), -EBADF);
}

TEST_F(KbusRead, ReadNextMsgGivesAnEntireMessageToFree) {
    ASSERT_EQ(sendEntire(m_sender, "$.Fred", "payload"), 0);
    auto m = readNext(m_listener);
    ASSERT_TRUE(m);
    EXPECT_TRUE(kbus_msg_is_entire(m.get()));
    EXPECT_EQ(kbus_msg_sizeof(m.get()), 108);
    EXPECT_EQ(nameOf(m.get()), "$.Fred");
    EXPECT_EQ(dataOf(m.get()), "payload");
    EXPECT_EQ(*kbus_msg_end_ptr(reinterpret_cast<kbus_entire_message_t*>(m.get())),
              KBUS_MSG_END_GUARD);
}

TEST_F(KbusRead, UrgentMessagesComeFirstNewestFirst) {
    ASSERT_EQ(sendEntire(m_sender, "$.Fred", "plain"), 0);
    ASSERT_EQ(sendEntire(m_sender, "$.Fred", "urgent1", KBUS_BIT_URGENT), 0);
    ASSERT_EQ(sendEntire(m_sender, "$.Fred", "urgent2", KBUS_BIT_URGENT), 0);
    EXPECT_EQ(dataOf(readNext(m_listener).get()), "urgent2");
    EXPECT_EQ(dataOf(readNext(m_listener).get()), "urgent1");
    EXPECT_EQ(dataOf(readNext(m_listener).get()), "plain");
}

} // namespace
} // namespace xkbus::frontend::testing
