// The pollable fd: PollSignal on its own, then select()/poll() on Ksocks as in
// the KBUS specification's examples, and 1000 Ksocks open in one process.
#include "kbus_test_support.hpp"

#include <algorithm>
#include <string>
#include <sys/resource.h>
#include <thread>
#include <xkbus/frontend/poll_signal.hpp>

namespace xkbus::frontend::testing {
namespace {

std::unique_ptr<PollSignal> makeSignal(bool writable = true) {
    auto s = PollSignal::create(writable);
    EXPECT_TRUE(s.has_value());
    return s ? std::move(*s) : nullptr;
}

TEST(PollSignal, StartsUnreadableAndWritable) {
    auto s = makeSignal();
    EXPECT_FALSE(pollReadable(s->fd()));
    EXPECT_TRUE(pollWritable(s->fd()));
}

TEST(PollSignal, ReadableExactlyWhileMessagesAreQueued) {
    auto s = makeSignal();
    for (int i = 0; i < 1000; ++i) { // more than any socket queue would hold
        s->messageQueued();
    }
    EXPECT_TRUE(pollReadable(s->fd()));
    for (int i = 0; i < 999; ++i) {
        s->messageTaken();
    }
    EXPECT_TRUE(pollReadable(s->fd()));
    s->messageTaken();
    EXPECT_FALSE(pollReadable(s->fd()));
    s->messageTaken(); // never below zero
    s->messageQueued();
    EXPECT_TRUE(pollReadable(s->fd()));
    s->setQueued(0);
    EXPECT_FALSE(pollReadable(s->fd()));
    EXPECT_EQ(s->queued(), 0u);
}

TEST(PollSignal, UnwritableWhileSendingWithReadabilityUntouched) {
    auto s = makeSignal();
    s->messageQueued();
    s->setSending(true);
    EXPECT_FALSE(pollWritable(s->fd()));
    EXPECT_TRUE(pollReadable(s->fd()));
    EXPECT_TRUE(s->sending());
    s->messageTaken();
    EXPECT_FALSE(pollReadable(s->fd()));
    EXPECT_FALSE(pollWritable(s->fd()));
    s->setSending(false);
    EXPECT_TRUE(pollWritable(s->fd()));
    s->setSending(true);
    s->setSending(true); // idempotent
    EXPECT_FALSE(pollWritable(s->fd()));
    s->setSending(false);
    EXPECT_TRUE(pollWritable(s->fd()));
}

TEST(PollSignal, ReadOnlyIsNeverWritable) {
    auto s = makeSignal(false);
    EXPECT_FALSE(pollWritable(s->fd()));
    s->setSending(false);
    EXPECT_FALSE(pollWritable(s->fd()));
}

TEST(PollSignal, PollWakesWhenTheSignalChanges) {
    auto s = makeSignal();
    s->setSending(true);
    pollfd p{s->fd(), POLLIN | POLLOUT, 0};
    EXPECT_EQ(::poll(&p, 1, 0), 0);
    s->messageQueued();
    s->setSending(false);
    EXPECT_EQ(::poll(&p, 1, 1000), 1);
    EXPECT_EQ(p.revents & (POLLIN | POLLOUT), POLLIN | POLLOUT);
}

using KbusSelect = KbusTest;

// The specification's first example: readable once a message is queued.
TEST_F(KbusSelect, ListenerBecomesReadableWhenAMessageIsQueued) {
    const int sender = open(O_RDWR);
    const int listener = open(O_RDONLY);
    EXPECT_FALSE(selectReadable(listener));
    ASSERT_EQ(kbus_ksock_bind(listener, "$.Fred", 0), 0);
    ASSERT_EQ(sendEntire(sender, "$.Fred", "data"), 0);
    EXPECT_TRUE(selectReadable(listener));
    EXPECT_TRUE(pollReadable(listener));
    EXPECT_EQ(kbus_wait_for_message(listener, KBUS_KSOCK_READABLE), KBUS_KSOCK_READABLE);
    EXPECT_TRUE(readNext(listener));
    EXPECT_FALSE(selectReadable(listener));
}

// The second example: only Ksocks open for writing are writable.
TEST_F(KbusSelect, OnlyWritableKsocksSelectWritable) {
    const int sender = open(O_RDWR);
    const int listener1 = open(O_RDONLY);
    EXPECT_TRUE(selectWritable(sender));
    EXPECT_FALSE(selectWritable(listener1));
    EXPECT_FALSE(selectReadable(listener1));
    const int listener2 = open(O_RDWR);
    EXPECT_TRUE(selectWritable(listener2));
    EXPECT_FALSE(selectReadable(listener2));
    EXPECT_EQ(kbus_wait_for_message(sender, KBUS_KSOCK_READABLE | KBUS_KSOCK_WRITABLE),
              KBUS_KSOCK_WRITABLE);
}

TEST_F(KbusSelect, ReadableUntilTheLastMessageIsPopped) {
    const int sender = open();
    const int listener = open();
    ASSERT_EQ(kbus_ksock_bind(listener, "$.Fred", 0), 0);
    ASSERT_EQ(sendEntire(sender, "$.Fred", "1"), 0);
    ASSERT_EQ(sendEntire(sender, "$.Fred", "2"), 0);
    uint32_t length = 0;
    ASSERT_EQ(kbus_ksock_next_msg(listener, &length), 1);
    EXPECT_TRUE(pollReadable(listener)); // one more queued
    ASSERT_EQ(kbus_ksock_next_msg(listener, &length), 1);
    EXPECT_FALSE(pollReadable(listener)); // popped, though not yet read
    EXPECT_EQ(numMessages(listener), 0u);
}

TEST_F(KbusSelect, UnwritableWhileAnAllOrWaitSendIsBlocked) {
    const int sender = open();
    const int listener = open();
    ASSERT_EQ(kbus_ksock_bind(listener, "$.Fred", 0), 0);
    uint32_t limit = 1;
    ASSERT_EQ(kbus_ksock_max_messages(listener, &limit), 0);
    ASSERT_EQ(sendEntire(sender, "$.Fred", "1"), 0);
    EXPECT_TRUE(selectWritable(sender));
    ASSERT_EQ(sendEntire(sender, "$.Fred", "2", KBUS_BIT_ALL_OR_WAIT), -EAGAIN);
    EXPECT_FALSE(selectWritable(sender));
    EXPECT_FALSE(pollWritable(sender));
    EXPECT_TRUE(selectReadable(listener));
    ASSERT_TRUE(readNext(listener)); // makes room: the bus finishes the send
    EXPECT_TRUE(selectWritable(sender));
    EXPECT_TRUE(selectReadable(listener));
    EXPECT_EQ(kbus_wait_for_message(sender, KBUS_KSOCK_WRITABLE), KBUS_KSOCK_WRITABLE);
}

TEST_F(KbusSelect, ThousandKsocksInOneProcess) {
    rlimit lim{};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &lim), 0);
    if (lim.rlim_cur < 2200 && lim.rlim_max >= 2200) {
        lim.rlim_cur = 2200; // a PollSignal holds two descriptors
        ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &lim), 0);
    }
    ASSERT_GE(lim.rlim_cur, 2200u) << "descriptor limit too low for 1000 Ksocks";
    const int sender = open();
    std::vector<int> ksocks;
    for (int i = 0; i < 1000; ++i) {
        const int fd = open(O_RDWR);
        ASSERT_GE(fd, 0) << "Ksock " << i;
        ksocks.push_back(fd);
        ASSERT_EQ(kbus_ksock_bind(fd, "$.All", 0), 0);
    }
    ASSERT_EQ(sendEntire(sender, "$.All", "everyone"), 0);
    std::vector<pollfd> fds;
    for (const int fd : ksocks) {
        fds.push_back(pollfd{fd, POLLIN, 0});
    }
    EXPECT_EQ(::poll(fds.data(), fds.size(), 0), 1000);
    std::vector<uint32_t> ids;
    for (const int fd : ksocks) {
        auto m = readNext(fd);
        ASSERT_TRUE(m);
        EXPECT_EQ(dataOf(m.get()), "everyone");
        ids.push_back(ksockId(fd));
    }
    std::sort(ids.begin(), ids.end());
    EXPECT_EQ(std::unique(ids.begin(), ids.end()), ids.end());
    EXPECT_EQ(::poll(fds.data(), fds.size(), 0), 0);
    for (const int fd : ksocks) {
        close(fd);
    }
}

} // namespace
} // namespace xkbus::frontend::testing

namespace xkbus::frontend::testing {
namespace {

// Threads opening, sending, reading and closing their own Ksocks at once: the
// registry and the per-Ksock locks must keep every message (and ASan quiet).
TEST_F(KbusSelect, ThreadsUseTheirOwnKsocksConcurrently) {
    constexpr int THREADS = 4;
    constexpr int ROUNDS = 100;
    std::vector<std::thread> threads;
    std::vector<int> delivered(THREADS, 0);
    for (int t = 0; t < THREADS; ++t) {
        threads.emplace_back([t, &delivered] {
            const std::string name = "$.T" + std::to_string(t);
            for (int i = 0; i < ROUNDS; ++i) {
                const int a = kbus_ksock_open(0, O_RDWR);
                const int b = kbus_ksock_open(0, O_RDWR);
                if (a < 0 || b < 0 || kbus_ksock_bind(b, name.c_str(), 0) != 0 ||
                    sendEntire(a, name, "x") != 0) {
                    return;
                }
                kbus_message_t* m = nullptr;
                if (kbus_ksock_read_next_msg(b, &m) == 0 && m != nullptr) {
                    ++delivered[static_cast<size_t>(t)];
                    kbus_msg_delete(&m);
                }
                kbus_ksock_close(a);
                kbus_ksock_close(b);
            }
        });
    }
    for (auto& th : threads) {
        th.join();
    }
    EXPECT_EQ(delivered, std::vector<int>(THREADS, ROUNDS));
}

} // namespace
} // namespace xkbus::frontend::testing
