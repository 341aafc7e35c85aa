// The C++ API (<xkbus/ksock.hpp>) against the real daemon, across processes:
// request() gets the reply or the bus's status, receive() waits and times
// out, and messages that arrive during a request wait for receive().
#include "daemon_fixture.hpp"

#include <csignal>
#include <unistd.h>
#include <xkbus/ksock.hpp>

namespace xkbus::testing {
namespace {

using namespace std::chrono_literals;

class CppApiTest : public DaemonTest {
protected:
    // A replier child on `name`: `behaviour` handles each request (false: stop).
    static pid_t spawnReplier(const Gate& ready, std::string_view name,
                              std::function<bool(Ksock&, const Message&)> behaviour) {
        return spawn([&ready, name = std::string(name), behaviour] {
            auto k = Ksock::open(0);
            if (!k || !k->serve(name)) {
                return 1;
            }
            ready.open();
            for (;;) {
                auto request = k->receive(-1ms);
                if (!request) {
                    return 2;
                }
                if (!behaviour(*k, *request)) {
                    return 0;
                }
            }
        });
    }
};

TEST_F(CppApiTest, RequestGetsTheReplyAcrossProcesses) {
    Gate ready;
    const pid_t replier = spawnReplier(ready, "$.Sensors.Kitchen", [](Ksock& k, const Message& m) {
        return k.reply(m, "21.5C for " + std::string(m.text())).has_value();
    });
    ASSERT_TRUE(ready.waitOpen());
    auto k = Ksock::open(0).value();
    for (int i = 0; i < 20; ++i) {
        auto answer = k.request("$.Sensors.Kitchen", std::to_string(i), 5s);
        ASSERT_TRUE(answer) << describe(answer.error());
        EXPECT_FALSE(answer->isStatus());
        EXPECT_EQ(answer->text(), "21.5C for " + std::to_string(i));
    }
    ::kill(replier, SIGKILL);
    reap(replier);
}

TEST_F(CppApiTest, RequestGetsGoneAwayWhenTheReplierIsKilled) {
    Gate ready;
    Gate readOne;
    const pid_t replier = spawnReplier(ready, "$.slow", [&readOne](Ksock&, const Message&) {
        readOne.open(); // read it, never answer, read nothing more
        ::pause();
        return true;
    });
    ASSERT_TRUE(ready.waitOpen());
    auto k = Ksock::open(0).value();
    ASSERT_TRUE(k.announce("$.slow", "", FLAG_WANT_A_REPLY)); // read, then ignored
    ASSERT_TRUE(readOne.waitOpen());
    std::thread killer([&] {
        std::this_thread::sleep_for(100ms);
        ::kill(replier, SIGKILL);
    });
    auto answer = k.request("$.slow", "queued when it dies", 5s);
    killer.join();
    reap(replier);
    ASSERT_TRUE(answer) << describe(answer.error());
    EXPECT_TRUE(answer->isStatus());
    EXPECT_EQ(answer->name(), NAME_REPLIER_GONE_AWAY);
    auto ignored = k.receive(5s);
    ASSERT_TRUE(ignored) << "the status for the request it had read";
    EXPECT_EQ(ignored->name(), NAME_REPLIER_IGNORED);
}

TEST_F(CppApiTest, ReceiveTimesOutAndRequestWithoutReplierFails) {
    auto k = Ksock::open(0).value();
    const auto start = std::chrono::steady_clock::now();
    auto nothing = k.receive(200ms);
    ASSERT_FALSE(nothing);
    EXPECT_EQ(nothing.error(), Errc::TIMED_OUT);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 200ms);
    auto noReplier = k.request("$.nobody", "", 1s);
    ASSERT_FALSE(noReplier);
    EXPECT_EQ(noReplier.error(), Errc::NO_RECIPIENT);
}

TEST_F(CppApiTest, MessagesArrivingDuringARequestWaitForReceive) {
    Gate ready;
    const pid_t replier = spawnReplier(ready, "$.ask", [](Ksock& k, const Message& m) {
        (void)k.announce("$.news", "first");
        (void)k.announce("$.news", "second");
        return k.reply(m, "answer").has_value();
    });
    ASSERT_TRUE(ready.waitOpen());
    auto k = Ksock::open(0).value();
    ASSERT_TRUE(k.listen("$.news"));
    auto answer = k.request("$.ask", "", 5s);
    ASSERT_TRUE(answer);
    EXPECT_EQ(answer->text(), "answer");
    EXPECT_EQ(k.receive(1s).value().text(), "first");
    EXPECT_EQ(k.receive(1s).value().text(), "second");
    ::kill(replier, SIGKILL);
    reap(replier);
}

TEST_F(CppApiTest, UnbindWithARequestQueuedSendsUnbound) {
    auto replier = Ksock::open(0).value();
    ASSERT_TRUE(replier.serve("$.svc"));
    auto sender = Ksock::open(0).value();
    ASSERT_TRUE(sender.announce("$.svc", "", FLAG_WANT_A_REPLY));
    ASSERT_TRUE(replier.unbind("$.svc", true));
    auto status = sender.receive(1s);
    ASSERT_TRUE(status);
    EXPECT_TRUE(status->isStatus());
    EXPECT_EQ(status->name(), NAME_REPLIER_UNBOUND);
}

} // namespace
} // namespace xkbus::testing

namespace xkbus::testing {
namespace {

frontend::Message announcementOf(std::string_view name, std::string_view text) {
    return makeMessage(name, text);
}

TEST_F(CppApiTest, ABatchArrivesInOrderWithAnOutcomeForEachMessage) {
    auto listener = Ksock::open(0).value();
    ASSERT_TRUE(listener.listen("$.Batch.*"));
    auto sender = Ksock::open(0).value();
    std::vector<frontend::Message> batch;
    for (int i = 0; i < 100; ++i) {
        batch.push_back(announcementOf("$.Batch.N", std::to_string(i)));
    }
    batch[50].header.flags = FLAG_WANT_A_REPLY; // nobody serves it: this one fails alone
    auto sent = sender.sendBatch(batch);
    ASSERT_TRUE(sent) << describe(sent.error());
    ASSERT_EQ(sent->size(), 100u);
    EXPECT_EQ((*sent)[50].error(), Errc::NO_RECIPIENT);
    for (int i = 0; i < 100; ++i) {
        if (i == 50) {
            continue;
        }
        ASSERT_TRUE((*sent)[static_cast<size_t>(i)]) << i;
        auto got = listener.receive(5s);
        ASSERT_TRUE(got) << i;
        EXPECT_EQ(got->text(), std::to_string(i));
        EXPECT_EQ(got->header.id, *(*sent)[static_cast<size_t>(i)]);
    }
    EXPECT_FALSE(listener.receive(100ms));
    EXPECT_EQ(sender.sendBatch({}).error(), Errc::INVALID);
    const std::vector<std::byte> half(frontend::MAX_BATCH_BYTES / 2);
    std::vector<frontend::Message> tooBig(2, makeMessage("$.Batch.N", half));
    EXPECT_EQ(sender.sendBatch(tooBig).error(), Errc::MESSAGE_TOO_BIG);
}

TEST_F(CppApiTest, BatchesFromTwoSendersNeverInterleave) {
    constexpr int BATCHES = 40;
    constexpr int EACH = 50;
    auto listener = Ksock::open(0).value();
    ASSERT_TRUE(listener.listen("$.Batch.*"));
    ASSERT_TRUE(listener.channel().control(frontend::Control::MAX_MESSAGES, 10000));
    auto senderBody = [](std::string who) {
        return [who] {
            auto k = Ksock::open(0);
            if (!k) {
                return 1;
            }
            std::vector<frontend::Message> batch(EACH, announcementOf("$.Batch." + who, who));
            for (int b = 0; b < BATCHES; ++b) {
                auto sent = k->sendBatch(batch);
                if (!sent) {
                    return 2;
                }
                for (const auto& one : *sent) {
                    if (!one) {
                        return 3;
                    }
                }
            }
            return 0;
        };
    };
    const pid_t a = spawn(senderBody("A"));
    const pid_t b = spawn(senderBody("B"));
    EXPECT_EQ(reap(a), 0);
    EXPECT_EQ(reap(b), 0);
    std::string run;
    int received = 0;
    while (auto m = listener.receive(1s)) {
        if (!run.empty() && run.back() != m->name().back()) {
            EXPECT_EQ(run.size() % EACH, 0u) << "a batch was cut after " << run.size();
            run.clear();
        }
        run.push_back(m->name().back());
        ++received;
    }
    EXPECT_EQ(received, 2 * BATCHES * EACH);
}

} // namespace
} // namespace xkbus::testing
