// The libkbus C API against a real daemon: the same C smoke program the
// frontend tests run against a fake bus, unchanged, with the default channel
// factory (the daemon at $XKBUS_SOCKET).
#include "daemon_fixture.hpp"

#include <fcntl.h>
#include <string>
#include <xkbus/kbus.h>

extern "C" int c_smoke_run(void);

namespace xkbus::testing {
namespace {

TEST_F(DaemonTest, LibkbusProgramRunsUnchangedAgainstTheDaemon) {
    EXPECT_EQ(c_smoke_run(), 0) << "the line of c_smoke.c that failed";
}

// kbus_ksock_send_msgs: pointy and entire messages in one call, each with
// its own id and error, in order.
TEST_F(DaemonTest, SendMsgsSendsABatchWithAnOutcomeForEach) {
    const kbus_ksock_t listener = kbus_ksock_open(0, O_RDWR);
    const kbus_ksock_t sender = kbus_ksock_open(0, O_RDWR);
    ASSERT_GE(listener, 0);
    ASSERT_GE(sender, 0);
    ASSERT_EQ(kbus_ksock_bind(listener, "$.C.*", 0), 0);
    const std::string names[] = {"$.C.Pointy", "$.C.Entire", "$.C.NoReplier"};
    kbus_message_t* msgs[3] = {};
    ASSERT_EQ(kbus_msg_create(&msgs[0], names[0].c_str(), 10, "p", 1, 0), 0);
    ASSERT_EQ(kbus_msg_create_entire(&msgs[1], names[1].c_str(), 10, "e", 1, 0), 0);
    ASSERT_EQ(kbus_msg_create_request(&msgs[2], names[2].c_str(), 13, nullptr, 0, 0), 0);
    kbus_msg_id_t ids[3] = {};
    int errors[3] = {1, 1, 1};
    ASSERT_EQ(kbus_ksock_send_msgs(sender, msgs, 3, ids, errors), 0);
    EXPECT_EQ(errors[0], 0);
    EXPECT_EQ(errors[1], 0);
    EXPECT_EQ(errors[2], -EADDRNOTAVAIL) << "a request nobody serves fails alone";
    EXPECT_NE(ids[0].serial_num, ids[1].serial_num);
    for (int i = 0; i < 2; ++i) {
        kbus_message_t* got = nullptr;
        ASSERT_TRUE(waitReadable(listener)); // a kbus_ksock_t is its pollable fd
        ASSERT_GE(kbus_ksock_read_next_msg(listener, &got), 0);
        ASSERT_NE(got, nullptr);
        EXPECT_EQ(std::string(kbus_msg_name_ptr(got), got->name_len), names[i]);
        EXPECT_EQ(got->id.serial_num, ids[i].serial_num);
        kbus_msg_delete(&got);
    }
    EXPECT_EQ(kbus_ksock_send_msgs(sender, msgs, 0, ids, errors), -EINVAL);
    EXPECT_EQ(kbus_ksock_send_msgs(sender, nullptr, 3, ids, errors), -EFAULT);
    for (auto*& m : msgs) {
        kbus_msg_delete(&m);
    }
    kbus_ksock_close(sender);
    kbus_ksock_close(listener);
}

} // namespace
} // namespace xkbus::testing
