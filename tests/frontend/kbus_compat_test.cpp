// Issue 16, differences from KBUS, each fixed: names over the limit refused
// with ENAMETOOLONG, a message over MAXMSGSIZE refused when it is written,
// and only /dev/kbusN paths opened.
#include "kbus_test_support.hpp"

#include <climits>
#include <cstring>
#include <unistd.h>

namespace xkbus::frontend::testing {
namespace {

class Issue16 : public KbusTest {};

// A bind, unbind, replier query or send with a name over 1000 bytes fails
// with ENAMETOOLONG, and the Ksock carries on.
TEST_F(Issue16, NameLongerThanTheLimitIsENAMETOOLONG) {
    const int k = open();
    for (size_t length : {size_t{1001}, size_t{1002}, size_t{10000}}) {
        const std::string name = "$." + std::string(length - 2, 'x');
        uint32_t replier = 7;
        EXPECT_EQ(kbus_ksock_bind(k, name.c_str(), 0), -ENAMETOOLONG) << length;
        EXPECT_EQ(kbus_ksock_bind(k, name.c_str(), 1), -ENAMETOOLONG) << length;
        EXPECT_EQ(kbus_ksock_unbind(k, name.c_str(), 0), -ENAMETOOLONG) << length;
        EXPECT_EQ(kbus_ksock_find_replier(k, name.c_str(), &replier), -ENAMETOOLONG) << length;
        EXPECT_EQ(errno, ENAMETOOLONG);
        kbus_message_t* pointy = nullptr;
        ASSERT_EQ(kbus_msg_create(&pointy, name.c_str(), static_cast<uint32_t>(name.size()),
                                  nullptr, 0, 0),
                  0);
        kbus_msg_id_t id{};
        EXPECT_EQ(kbus_ksock_send_msg(k, pointy, &id), -ENAMETOOLONG) << length;
        kbus_msg_delete(&pointy);
    }
    const std::string longest = "$." + std::string(998, 'x');
    EXPECT_EQ(kbus_ksock_bind(k, longest.c_str(), 0), 0) << "exactly 1000 bytes is allowed";
    EXPECT_EQ(sendEntire(k, longest, "still here"), 0);
    EXPECT_TRUE(readNext(k));
}

// KBUS refused an entire message longer than the bus's MAXMSGSIZE when its
// header was written, whichever way it was written.
TEST_F(Issue16, MessageOverMaxMsgSizeIsEMSGSIZEWhenWritten) {
    const int k = open();
    const int other = open();
    uint32_t limit = 200;
    ASSERT_EQ(kbus_ksock_max_message_size(k, &limit), 0);
    auto big = entire("$.Fred", std::string(200, 'x'));
    const auto* bytes = reinterpret_cast<uint8_t*>(big.get());
    errno = 0;
    EXPECT_EQ(kbus_ksock_write_data(other, const_cast<uint8_t*>(bytes), sizeof(kbus_message_t)),
              -EMSGSIZE);
    EXPECT_EQ(errno, EMSGSIZE);
    EXPECT_EQ(kbus_ksock_write_msg(k, big.get()), -EMSGSIZE);
    kbus_msg_id_t id{};
    EXPECT_EQ(kbus_ksock_send(k, &id), -ENOMSG) << "the refused message was forgotten";
    auto small = entire("$.Fred", "fits");
    EXPECT_EQ(kbus_ksock_write_msg(other, small.get()), 0);
    EXPECT_EQ(kbus_ksock_send(other, &id), 0);
    limit = 409600;
    ASSERT_EQ(kbus_ksock_max_message_size(other, &limit), 0);
    EXPECT_EQ(kbus_ksock_write_msg(k, big.get()), 0) << "raised again: it fits";
    EXPECT_EQ(kbus_ksock_send(k, &id), 0);
}

// kbus_ksock_open_by_name opens /dev/kbus<N> and nothing else.
TEST_F(Issue16, OpenByNameOfAPathThatIsNotAKbusDeviceIsENOENT) {
    for (const char* path : {"/nonexistent/kbus0", "/tmp/kbus0", "/dev/kbus/0", "kbus0",
                             "/dev/kbus", "/dev/kbus0x", "/dev/kbus-1", "/dev/null"}) {
        errno = 0;
        EXPECT_EQ(kbus_ksock_open_by_name(path, O_RDWR), -ENOENT) << path;
        EXPECT_EQ(errno, ENOENT) << path;
    }
    for (const char* path : {"/dev/kbus0", "/dev/../dev/kbus0", "//dev/./kbus0"}) {
        const int k = kbus_ksock_open_by_name(path, O_RDWR);
        EXPECT_GE(k, 0) << path;
        if (k >= 0) {
            m_open.push_back(k);
        }
    }
    char cwd[PATH_MAX];
    ASSERT_NE(::getcwd(cwd, sizeof cwd), nullptr);
    ASSERT_EQ(::chdir("/dev"), 0);
    const int relative = kbus_ksock_open_by_name("kbus0", O_RDWR);
    ASSERT_EQ(::chdir(cwd), 0);
    EXPECT_GE(relative, 0) << "kbus0 from /dev is /dev/kbus0";
    if (relative >= 0) {
        m_open.push_back(relative);
    }
}

} // namespace
} // namespace xkbus::frontend::testing
