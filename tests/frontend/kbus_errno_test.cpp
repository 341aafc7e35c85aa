// The libkbus contract on errno (issue 16): libkbus returned -errno and left
// errno set by the failing ioctl, and KBUS programs print strerror(errno).
// Every failure of the C API sets errno to the errno it returns; a success
// leaves errno alone.
#include "kbus_test_support.hpp"

#include <cstring>
#include <functional>

namespace xkbus::frontend::testing {
namespace {

constexpr int UNTOUCHED = 12345; // no errno has this value

class KbusErrno : public KbusTest {};

struct Failure {
    const char* what;
    int expected; // the errno
    std::function<long()> call;
};

TEST_F(KbusErrno, EveryFailureSetsErrnoToTheErrnoItReturns) {
    const int k = open();
    const int reader = open(O_RDONLY);
    const int unknown = 999;
    uint32_t value = 0;
    kbus_msg_id_t id{};
    kbus_message_t* msg = nullptr;
    char buf[8];
    auto announcement = entire("$.Fred");
    auto request = entire("$.Nobody", "", KBUS_BIT_WANT_A_REPLY);
    const kbus_message_t* batch[1] = {announcement.get()};
    int errors[1] = {};
    uint32_t tooSmall = 5;
    const std::vector<Failure> failures = {
        {"open", ENOENT, [] { return kbus_ksock_open(77, O_RDWR); }},
        {"open_by_name", ENOENT, [] { return kbus_ksock_open_by_name("/dev/null", O_RDWR); }},
        {"close", EBADF, [&] { return kbus_ksock_close(unknown); }},
        {"bind", EBADMSG, [&] { return kbus_ksock_bind(k, "Fred", 0); }},
        {"unbind", EINVAL, [&] { return kbus_ksock_unbind(k, "$.NotBound", 0); }},
        {"id", EBADF, [&] { return kbus_ksock_id(unknown, &value); }},
        {"next_msg", EBADF, [&] { return kbus_ksock_next_msg(unknown, &value); }},
        {"len_left", EFAULT, [&] { return kbus_ksock_len_left(k, nullptr); }},
        {"last_msg_id", EBADF, [&] { return kbus_ksock_last_msg_id(unknown, &id); }},
        {"find_replier", EFAULT, [&] { return kbus_ksock_find_replier(k, "$.x", nullptr); }},
        {"max_messages", EFAULT, [&] { return kbus_ksock_max_messages(k, nullptr); }},
        {"num_messages", EBADF, [&] { return kbus_ksock_num_messages(unknown, &value); }},
        {"num_unreplied_to", EBADF, [&] { return kbus_ksock_num_unreplied_to(unknown, &value); }},
        {"send", ENOMSG, [&] { return kbus_ksock_send(k, &id); }},
        {"discard", EBADF, [&] { return kbus_ksock_discard(unknown); }},
        {"only_once", EINVAL, [&] { return kbus_ksock_only_once(k, 2); }},
        {"report_replier_binds", EINVAL, [&] { return kbus_ksock_report_replier_binds(k, 7); }},
        {"kernel_module_verbose", EINVAL, [&] { return kbus_ksock_kernel_module_verbose(k, 3); }},
        {"max_message_size", EINVAL, [&] { return kbus_ksock_max_message_size(k, &tooSmall); }},
        {"new_device", EBADF, [&] { return kbus_ksock_new_device(unknown, &value); }},
        {"read_msg", EBADMSG, [&] { return kbus_ksock_read_msg(k, &msg, 4); }},
        {"read_next_msg", EBADF, [&] { return kbus_ksock_read_next_msg(unknown, &msg); }},
        {"write_msg", EFAULT, [&] { return kbus_ksock_write_msg(k, nullptr); }},
        {"write_data", EBADF,
         [&] { return kbus_ksock_write_data(reader, reinterpret_cast<uint8_t*>(buf), 4); }},
        {"send_msg", EADDRNOTAVAIL, [&] { return kbus_ksock_send_msg(k, request.get(), &id); }},
        {"send_msgs", EINVAL, [&] { return kbus_ksock_send_msgs(k, batch, 0, &id, errors); }},
        {"write", EBADF, [&] { return kbus_ksock_write(unknown, buf, 1); }},
        {"read", EBADF, [&] { return kbus_ksock_read(unknown, buf, 1); }},
        {"msg_create_reply_to", EBADMSG,
         [&] { return kbus_msg_create_reply_to(&msg, announcement.get(), nullptr, 0, 0); }},
        {"msg_create_entire_reply_to", EBADMSG,
         [&] { return kbus_msg_create_entire_reply_to(&msg, announcement.get(), nullptr, 0, 0); }},
        {"msg_create_stateful_request", EBADMSG,
         [&] {
             return kbus_msg_create_stateful_request(&msg, announcement.get(), "$.x", 3, nullptr, 0,
                                                     0);
         }},
        {"msg_create_entire_stateful_request", EBADMSG,
         [&] {
             return kbus_msg_create_entire_stateful_request(&msg, announcement.get(), "$.x", 3,
                                                            nullptr, 0, 0);
         }},
        {"msg_split_bind_event", EBADMSG,
         [&] {
             uint32_t isBind = 0;
             uint32_t binder = 0;
             char* name = nullptr;
             return kbus_msg_split_bind_event(announcement.get(), &isBind, &binder, &name);
         }},
    };
    for (const Failure& f : failures) {
        errno = UNTOUCHED;
        const long rv = f.call();
        const int seen = errno;
        EXPECT_EQ(rv, -f.expected) << f.what;
        EXPECT_EQ(seen, f.expected) << f.what << ": errno is " << std::strerror(seen);
    }
}

TEST_F(KbusErrno, SuccessLeavesErrnoAlone) {
    const int listener = open();
    const int sender = open();
    errno = UNTOUCHED;
    ASSERT_EQ(kbus_ksock_bind(listener, "$.Fred", 0), 0);
    ASSERT_EQ(sendEntire(sender, "$.Fred", "hi"), 0);
    EXPECT_TRUE(readNext(listener));
    EXPECT_FALSE(readNext(listener)) << "nothing more: still not a failure";
    EXPECT_EQ(errno, UNTOUCHED);
}

} // namespace
} // namespace xkbus::frontend::testing
