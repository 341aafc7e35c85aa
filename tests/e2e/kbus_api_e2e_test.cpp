// The libkbus C API against a real daemon: the same C smoke program the
// frontend tests run against a fake bus, unchanged, with the default channel
// factory (the daemon at $XKBUS_SOCKET).
#include "daemon_fixture.hpp"

#include <fcntl.h>
#include <string>
#include <xkbus/kbus.h>
#include <xkbus/ksock.hpp>

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

namespace xkbus::testing {
namespace {

// Issue 16: a name over the limit fails the one call with ENAMETOOLONG,
// through the C API and the C++ API, and the process's other Ksocks (which
// share its connection to the daemon) carry on.
TEST_F(DaemonTest, Issue16NameOverTheLimitIsENAMETOOLONGAndNothingIsDisconnected) {
    const kbus_ksock_t k = kbus_ksock_open(0, O_RDWR);
    const kbus_ksock_t bystander = kbus_ksock_open(0, O_RDWR);
    ASSERT_GE(k, 0);
    ASSERT_GE(bystander, 0);
    ASSERT_EQ(kbus_ksock_bind(bystander, "$.Still.Here", 0), 0);
    for (size_t length : {size_t{1002}, size_t{10000}}) {
        const std::string name = "$." + std::string(length - 2, 'n');
        uint32_t replier = 0;
        EXPECT_EQ(kbus_ksock_bind(k, name.c_str(), 1), -ENAMETOOLONG);
        EXPECT_EQ(kbus_ksock_unbind(k, name.c_str(), 0), -ENAMETOOLONG);
        EXPECT_EQ(kbus_ksock_find_replier(k, name.c_str(), &replier), -ENAMETOOLONG);
        kbus_message_t* msg = nullptr;
        ASSERT_EQ(kbus_msg_create(&msg, name.c_str(), static_cast<uint32_t>(length), nullptr, 0, 0),
                  0);
        kbus_msg_id_t id{};
        EXPECT_EQ(kbus_ksock_send_msg(k, msg, &id), -ENAMETOOLONG);
        kbus_msg_delete(&msg);

        auto cpp = Ksock::open(0).value();
        EXPECT_EQ(cpp.listen(name).error(), Errc::NAME_TOO_LONG);
        EXPECT_EQ(cpp.announce(name).error(), Errc::NAME_TOO_LONG);
        EXPECT_EQ(cpp.request(name, "", std::chrono::seconds(1)).error(), Errc::NAME_TOO_LONG);
    }
    kbus_message_t* hello = nullptr;
    ASSERT_EQ(kbus_msg_create_entire(&hello, "$.Still.Here", 12, "yes", 3, 0), 0);
    kbus_msg_id_t id{};
    EXPECT_EQ(kbus_ksock_send_msg(k, hello, &id), 0);
    kbus_msg_delete(&hello);
    ASSERT_TRUE(waitReadable(bystander));
    kbus_message_t* got = nullptr;
    EXPECT_EQ(kbus_ksock_read_next_msg(bystander, &got), 0);
    EXPECT_NE(got, nullptr);
    kbus_msg_delete(&got);
    kbus_ksock_close(k);
    kbus_ksock_close(bystander);
}

// The daemon's side of the same: a client that does not check (an older
// library, a Limpet) gets ENAMETOOLONG for the record, not a dropped
// connection.
TEST_F(DaemonTest, Issue16DaemonAnswersENAMETOOLONGForAnOverlongNameRecord) {
    auto connection = frontend::connectLocal(m_socket).value();
    auto raw = connection->openKsock(0, true).value();
    auto other = connection->openKsock(0, true).value();
    const std::string name = "$." + std::string(9998, 'r');
    EXPECT_EQ(raw->bind(name, false).error(), Errc::NAME_TOO_LONG);
    EXPECT_EQ(raw->unbind(name, true).error(), Errc::NAME_TOO_LONG);
    EXPECT_EQ(raw->findReplier(name).error(), Errc::NAME_TOO_LONG);
    Message m = makeMessage(name);
    EXPECT_EQ(raw->send(m).error(), Errc::NAME_TOO_LONG);
    EXPECT_EQ(raw->sendBatch(std::span(&m, 1)).value().at(0).error(), Errc::NAME_TOO_LONG);
    ASSERT_TRUE(other->bind("$.Alive", false));
    EXPECT_TRUE(raw->send(makeMessage("$.Alive"))) << "the connection is still up";
    ASSERT_TRUE(waitReadable(other->fd()));
    EXPECT_TRUE(other->nextMessage().value());
}

// Issue 16: after MAXMSGSIZE is lowered (here by another Ksock), writing a
// message over it with kbus_ksock_write_data fails then, with EMSGSIZE.
TEST_F(DaemonTest, Issue16WriteDataOverMaxMsgSizeIsEMSGSIZE) {
    const kbus_ksock_t setter = kbus_ksock_open(0, O_RDWR);
    const kbus_ksock_t writer = kbus_ksock_open(0, O_RDWR);
    ASSERT_GE(setter, 0);
    ASSERT_GE(writer, 0);
    uint32_t limit = 300;
    ASSERT_EQ(kbus_ksock_max_message_size(setter, &limit), 0);
    kbus_message_t* big = nullptr;
    const std::string data(300, 'd');
    ASSERT_EQ(kbus_msg_create_entire(&big, "$.Big", 5, data.data(), 300, 0), 0);
    errno = 0;
    EXPECT_EQ(kbus_ksock_write_data(writer, reinterpret_cast<uint8_t*>(big),
                                    static_cast<size_t>(kbus_msg_sizeof(big))),
              -EMSGSIZE);
    EXPECT_EQ(errno, EMSGSIZE);
    kbus_msg_delete(&big);
    limit = 0;
    EXPECT_EQ(kbus_ksock_max_message_size(writer, &limit), 0);
    EXPECT_EQ(limit, 300u);
    kbus_ksock_close(setter);
    kbus_ksock_close(writer);
}

} // namespace
} // namespace xkbus::testing

namespace xkbus::testing {
namespace {

// kbus_read_proc: /proc/kbus/bindings and /proc/kbus/stats as the kernel
// module printed them ("%3u: %8u %8lu  %c  %.*s"), for every bus.
TEST_F(DaemonTest, ReadProcGivesBindingsAndStatsInTheKernelFormat) {
    const kbus_ksock_t replier = kbus_ksock_open(0, O_RDWR);
    const kbus_ksock_t listener = kbus_ksock_open(1, O_RDONLY);
    ASSERT_GE(replier, 0);
    ASSERT_GE(listener, 0);
    ASSERT_EQ(kbus_ksock_bind(replier, "$.Proc.Served", 1), 0);
    ASSERT_EQ(kbus_ksock_bind(listener, "$.Proc.*", 0), 0);
    char* text = nullptr;
    ASSERT_EQ(kbus_read_proc("/proc/kbus/bindings", &text), 0);
    const std::string bindings(text);
    std::free(text);
    const std::string pid = std::to_string(::getpid());
    const auto line = [&](int bus, uint32_t id, char kind, const char* name) {
        char expected[128];
        std::snprintf(expected, sizeof expected, "%3d: %8u %8s  %c  %s\n", bus, id, pid.c_str(),
                      kind, name);
        return std::string(expected);
    };
    EXPECT_EQ(bindings.rfind("# <device> is bound to <Ksock-ID> in <process-PID> as "
                             "<Replier|Listener> for <message-name>\n",
                             0),
              0u)
        << bindings;
    EXPECT_NE(bindings.find(line(0, 1, 'R', "$.Proc.Served")), std::string::npos) << bindings;
    EXPECT_NE(bindings.find(line(1, 1, 'L', "$.Proc.*")), std::string::npos) << bindings;

    ASSERT_EQ(kbus_read_proc("stats", &text), 0);
    const std::string stats(text);
    std::free(text);
    EXPECT_NE(stats.find("dev  0: next ksock 2 next msg 1 unsent unbindings 0\n"),
              std::string::npos)
        << stats;
    EXPECT_NE(stats.find("    ksock 1 last msg 0:0 queue 0 of 100\n"), std::string::npos) << stats;
    EXPECT_NE(stats.find("dev  1: "), std::string::npos) << stats;
    EXPECT_EQ(kbus_read_proc("/proc/kbus/other", &text), -ENOENT);
    kbus_ksock_close(replier);
    kbus_ksock_close(listener);
}

} // namespace
} // namespace xkbus::testing

namespace xkbus::testing {
namespace {

// After fork() a Ksock stays with the parent: it travels on the parent's
// connection, whose records a child would take off their shared ring. The
// child gets EBADF on it, closing it there lets go without closing it for
// the parent, and the child's own Ksocks work.
TEST_F(DaemonTest, AForkedChildCannotUseOrCloseItsParentsKsocks) {
    const kbus_ksock_t listener = kbus_ksock_open(0, O_RDWR);
    ASSERT_GE(listener, 0);
    ASSERT_EQ(kbus_ksock_bind(listener, "$.Family", 0), 0);
    const pid_t child = spawn([listener] {
        if (kbus_ksock_bind(listener, "$.Other", 0) != -EBADF || errno != EBADF) {
            return 1;
        }
        if (kbus_ksock_close(listener) != 0) {
            return 2;
        }
        const kbus_ksock_t own = kbus_ksock_open(0, O_RDWR);
        kbus_message_t* msg = nullptr;
        kbus_msg_id_t id{};
        if (own < 0 || kbus_msg_create_entire(&msg, "$.Family", 8, "child", 5, 0) != 0 ||
            kbus_ksock_send_msg(own, msg, &id) != 0) {
            return 3;
        }
        kbus_msg_delete(&msg);
        return 0;
    });
    EXPECT_EQ(reap(child), 0);
    ASSERT_TRUE(waitReadable(listener));
    kbus_message_t* got = nullptr;
    ASSERT_EQ(kbus_ksock_read_next_msg(listener, &got), 0);
    ASSERT_NE(got, nullptr);
    EXPECT_EQ(std::string(static_cast<char*>(kbus_msg_data_ptr(got)), got->data_len), "child");
    kbus_msg_delete(&got);
    EXPECT_EQ(kbus_ksock_close(listener), 0);
}

} // namespace
} // namespace xkbus::testing
