// The Ksock fd's promise, against a real xkbusd: readable if and only if the
// next NEXTMSG returns a message, with pops reported lazily and the fd
// emptied by the client itself (docs/architecture.md, "Readiness").
#include "daemon_fixture.hpp"

#include <atomic>
#include <map>
#include <poll.h>
#include <thread>
#include <xkbus/kbus.h>

namespace xkbus::testing {
namespace {

using frontend::openDefaultKsock;
using frontend::textMessage;

bool readableNow(int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0;
}

TEST_F(DaemonTest, TheFdIsUnreadableAsSoonAsTheLastMessageIsRead) {
    auto sender = openDefaultKsock(0, true).value();
    auto reader = openDefaultKsock(0, false).value();
    ASSERT_TRUE(reader->bind("$.x", false));
    for (int round = 0; round < 50; ++round) {
        const int count = 1 + round % 4;
        for (int i = 0; i < count; ++i) {
            ASSERT_TRUE(sender->send(textMessage("$.x")));
        }
        for (int i = 0; i < count; ++i) {
            ASSERT_TRUE(readableNow(reader->fd())) << "round " << round << ", message " << i;
            ASSERT_TRUE(reader->nextMessage().value());
        }
        // No waiting for the daemon: the pop that empties the queue empties the fd.
        EXPECT_FALSE(readableNow(reader->fd())) << "round " << round;
        EXPECT_FALSE(reader->nextMessage().value());
    }
}

// KBUS's own kmsg reads after select says readable and prints what it read:
// a NULL there is a crash. A sender in another process streams as fast as
// it can while this reader polls and reads.
TEST_F(DaemonTest, AReadableFdAlwaysHasAMessageUnderLoad) {
    constexpr int COUNT = 20000;
    Gate bound;
    const pid_t sender = spawn([&] {
        if (!bound.waitOpen()) {
            return 1;
        }
        auto k = openDefaultKsock(0, true);
        for (int i = 0; k && i < COUNT; ++i) {
            if (!(*k)->send(textMessage("$.load", std::to_string(i)))) {
                return 2;
            }
        }
        return k ? 0 : 3;
    });
    const kbus_ksock_t reader = kbus_ksock_open(0, O_RDONLY);
    ASSERT_GE(reader, 0);
    ASSERT_EQ(kbus_ksock_max_messages(reader, nullptr), -EFAULT);
    uint32_t limit = COUNT;
    ASSERT_EQ(kbus_ksock_max_messages(reader, &limit), 0);
    ASSERT_EQ(kbus_ksock_bind(reader, "$.load", 0), 0);
    bound.open();
    int next = 0;
    int wakeups = 0;
    while (next < COUNT) {
        ASSERT_EQ(kbus_wait_for_message(reader, KBUS_KSOCK_READABLE), KBUS_KSOCK_READABLE);
        ++wakeups;
        kbus_message_t* msg = nullptr;
        ASSERT_EQ(kbus_ksock_read_next_msg(reader, &msg), 0);
        ASSERT_NE(msg, nullptr) << "readable, but no message, after " << next << " messages";
        do {
            ASSERT_EQ(std::string(static_cast<const char*>(kbus_msg_data_ptr(msg)), msg->data_len),
                      std::to_string(next));
            kbus_msg_delete(&msg);
            ++next;
        } while (kbus_ksock_read_next_msg(reader, &msg) == 0 && msg != nullptr);
    }
    EXPECT_FALSE(readableNow(reader)) << "all read: not readable";
    EXPECT_EQ(reap(sender), 0);
    kbus_ksock_close(reader);
    ::testing::Test::RecordProperty("wakeups", wakeups);
}

// The other half of the promise, observed from a second connection while
// the reader pops concurrently: once a send returns, the recipient's fd is
// readable, unless the reader has already started to take the message.
TEST_F(DaemonTest, OnceASendReturnsTheRecipientFdIsReadableUntilItIsRead) {
    constexpr int COUNT = 5000;
    auto readerConnection = frontend::connectLocal(m_socket).value();
    auto reader = readerConnection->openKsock(0, false).value();
    ASSERT_TRUE(reader->bind("$.race", false));
    ASSERT_TRUE(reader->control(frontend::Control::MAX_MESSAGES, COUNT));
    auto sender = openDefaultKsock(0, true).value();
    std::atomic<int> popsStarted{0};
    std::atomic<bool> done{false};
    std::thread popper([&] {
        int got = 0;
        while (got < COUNT && !done) {
            popsStarted.fetch_add(1);
            auto m = reader->nextMessage();
            if (m && *m) {
                ++got;
            } else {
                pollfd p{reader->fd(), POLLIN, 0};
                (void)::poll(&p, 1, 10);
            }
        }
    });
    int violations = 0;
    for (int i = 0; i < COUNT; ++i) {
        const int before = popsStarted.load();
        ASSERT_TRUE(sender->send(textMessage("$.race")));
        // Unreadable is only allowed if a pop began after the send returned.
        if (!readableNow(reader->fd()) && popsStarted.load() == before) {
            ++violations;
        }
    }
    done = true;
    popper.join();
    EXPECT_EQ(violations, 0);
}

TEST_F(DaemonTest, AReaderKilledBetweenLazyPopsOwesIgnoredOnlyForWhatItPopped) {
    Gate bound;
    Gate popped;
    const pid_t replier = spawn([&] {
        auto k = openDefaultKsock(0, true);
        if (!k || !(*k)->bind("$.q", true)) {
            return 1;
        }
        bound.open();
        for (int i = 0; i < 3; ++i) {
            pollfd p{(*k)->fd(), POLLIN, 0};
            if (::poll(&p, 1, 5000) != 1 || !(*k)->nextMessage().value()) {
                return 2;
            }
        }
        popped.open(); // three pops written to the ring, none of them waited for
        ::pause();
        return 0;
    });
    ASSERT_TRUE(bound.waitOpen());
    auto sender = openDefaultKsock(0, true).value();
    std::vector<MsgId> ids;
    for (int i = 0; i < 5; ++i) {
        ids.push_back(sender->send(textMessage("$.q", "", FLAG_WANT_A_REPLY)).value());
    }
    ASSERT_TRUE(popped.waitOpen());
    ::kill(replier, SIGKILL);
    EXPECT_EQ(reap(replier), 128 + SIGKILL);
    std::map<MsgId, std::string> statuses;
    while (statuses.size() < 5 && waitReadable(sender->fd())) {
        while (auto m = sender->nextMessage().value()) {
            statuses[m->header.inReplyTo] = std::string(m->name());
        }
    }
    ASSERT_EQ(statuses.size(), 5u);
    for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(statuses[ids[static_cast<size_t>(i)]],
                  i < 3 ? NAME_REPLIER_IGNORED : NAME_REPLIER_GONE_AWAY)
            << "request " << i;
    }
}

// More than the ring holds waits in the daemon (its backlog): the reader
// still gets every message, in order, and an exact fd.
TEST_F(DaemonTest, AReaderBehindAFullRingGetsEveryMessageInOrder) {
    constexpr int COUNT = 3000; // 3000 x ~300 bytes: several times the 64 KiB ring
    auto reader = openDefaultKsock(0, false).value();
    ASSERT_TRUE(reader->bind("$.flood", false));
    ASSERT_TRUE(reader->control(frontend::Control::MAX_MESSAGES, COUNT));
    auto sender = openDefaultKsock(0, true).value();
    const std::string pad(200, 'p');
    for (int i = 0; i < COUNT; ++i) {
        ASSERT_TRUE(sender->send(textMessage("$.flood", std::to_string(i) + pad)));
    }
    for (int i = 0; i < COUNT; ++i) {
        ASSERT_TRUE(readableNow(reader->fd())) << i;
        auto m = reader->nextMessage().value();
        ASSERT_TRUE(m) << i;
        ASSERT_EQ(m->text(), std::to_string(i) + pad);
    }
    EXPECT_FALSE(readableNow(reader->fd()));
    EXPECT_FALSE(reader->nextMessage().value());
}

TEST_F(DaemonTest, AReadOnlyKsockIsNeverWritable) {
    auto reader = openDefaultKsock(0, false).value();
    auto writer = openDefaultKsock(0, true).value();
    EXPECT_FALSE(pollNow(reader->fd()) & POLLOUT);
    EXPECT_TRUE(pollNow(writer->fd()) & POLLOUT);
    ASSERT_TRUE(reader->bind("$.ro", false));
    ASSERT_TRUE(writer->send(textMessage("$.ro")));
    EXPECT_EQ(pollNow(reader->fd()) & (POLLIN | POLLOUT), POLLIN);
}

} // namespace
} // namespace xkbus::testing
