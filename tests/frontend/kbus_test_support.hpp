// Shared helpers for the C API tests: a fixture that installs a fresh fake
// bus, and small wrappers for the usual open/send/read/poll steps.
#pragma once

#include "fake_bus.hpp"

#include <cstdlib>
#include <gtest/gtest.h>
#include <memory>
#include <poll.h>
#include <string>
#include <string_view>
#include <sys/select.h>
#include <vector>
#include <xkbus/kbus.h>

namespace xkbus::frontend::testing {

struct FreeMessage {
    void operator()(kbus_message_t* m) const { kbus_msg_delete(&m); }
};
using MessagePtr = std::unique_ptr<kbus_message_t, FreeMessage>;

class KbusTest : public ::testing::Test {
protected:
    void SetUp() override { m_host = installFakeBus(); }
    void TearDown() override {
        for (const int fd : m_open) {
            kbus_ksock_close(fd);
        }
    }

    // Opens a Ksock on bus 0 (or `bus`) and closes it at the end of the test.
    int open(int flags = O_RDWR, uint32_t bus = 0) {
        const int fd = kbus_ksock_open(bus, flags);
        EXPECT_GE(fd, 0) << "kbus_ksock_open: " << fd;
        if (fd >= 0) {
            m_open.push_back(fd);
        }
        return fd;
    }
    void close(int fd) {
        std::erase(m_open, fd);
        EXPECT_EQ(kbus_ksock_close(fd), 0);
    }

    std::shared_ptr<FakeBusHost> m_host;
    std::vector<int> m_open;
};

inline MessagePtr entire(std::string_view name, std::string_view data = {}, uint32_t flags = 0) {
    kbus_message_t* m = nullptr;
    EXPECT_EQ(kbus_msg_create_entire(&m, name.data(), static_cast<uint32_t>(name.size()),
                                     data.data(), static_cast<uint32_t>(data.size()), flags),
              0);
    return MessagePtr(m);
}

// Sends an entire message; returns the send's result and sets *id.
inline int sendEntire(int fd, std::string_view name, std::string_view data = {}, uint32_t flags = 0,
                      kbus_msg_id_t* id = nullptr) {
    kbus_msg_id_t ignored{};
    auto m = entire(name, data, flags);
    return kbus_ksock_send_msg(fd, m.get(), id != nullptr ? id : &ignored);
}

// The next message, or null if there is none.
inline MessagePtr readNext(int fd) {
    kbus_message_t* m = nullptr;
    const int rv = kbus_ksock_read_next_msg(fd, &m);
    EXPECT_GE(rv, 0);
    return MessagePtr(m);
}

inline std::string nameOf(const kbus_message_t* m) {
    return std::string(kbus_msg_name_ptr(m), m->name_len);
}
inline std::string dataOf(const kbus_message_t* m) {
    return std::string(static_cast<const char*>(kbus_msg_data_ptr(m)), m->data_len);
}

inline short pollNow(int fd, short events) {
    pollfd p{fd, events, 0};
    return ::poll(&p, 1, 0) == 1 ? p.revents : 0;
}
inline bool pollReadable(int fd) {
    return (pollNow(fd, POLLIN) & POLLIN) != 0;
}
inline bool pollWritable(int fd) {
    return (pollNow(fd, POLLOUT) & POLLOUT) != 0;
}
// select() as the KBUS specification's examples use it.
inline bool selectReadable(int fd) {
    fd_set set;
    FD_ZERO(&set);
    FD_SET(fd, &set);
    timeval now{0, 0};
    return ::select(fd + 1, &set, nullptr, nullptr, &now) == 1 && FD_ISSET(fd, &set);
}
inline bool selectWritable(int fd) {
    fd_set set;
    FD_ZERO(&set);
    FD_SET(fd, &set);
    timeval now{0, 0};
    return ::select(fd + 1, nullptr, &set, nullptr, &now) == 1 && FD_ISSET(fd, &set);
}

inline uint32_t numMessages(int fd) {
    uint32_t n = 0;
    EXPECT_EQ(kbus_ksock_num_messages(fd, &n), 0);
    return n;
}
inline uint32_t ksockId(int fd) {
    uint32_t id = 0;
    EXPECT_EQ(kbus_ksock_id(fd, &id), 0);
    return id;
}

} // namespace xkbus::frontend::testing
