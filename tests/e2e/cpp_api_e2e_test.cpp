// The C++ API (<xkbus/ksock.hpp>) against the real daemon, across processes:
// request() gets the reply or the bus's status, receive() waits and times
// out, and messages that arrive during a request wait for receive().
#include "daemon_fixture.hpp"

#include <csignal>
#include <thread>
#include <unistd.h>
#include <vector>
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

// Binds and settings a Ksock made through the API, for the restart tests.
void setUpForRestart(Ksock& k) {
    ASSERT_TRUE(k.control(frontend::Control::MAX_MESSAGES, 7));
    ASSERT_TRUE(k.control(frontend::Control::ONLY_ONCE, 1));
    ASSERT_TRUE(k.serve("$.Svc"));
    ASSERT_TRUE(k.listen("$.News.*"));
    ASSERT_TRUE(k.listen("$.News.Today")); // two bindings, one copy: ONLY_ONCE
    ASSERT_TRUE(k.listen("$.Gone"));
    ASSERT_TRUE(k.unbind("$.Gone")); // not made again
}

TEST_F(CppApiTest, AKsockThatReconnectsIsBackOnTheBusWithItsBindingsAfterARestart) {
    auto k = Ksock::open(0).value();
    setUpForRestart(k);
    std::vector<Reopened> told;
    k.setReconnect(Reconnect{.backoff = Backoff{.first = 20ms, .max = 200ms, .attempts = 100},
                             .onReopened = [&told](const Reopened& r) { told.push_back(r); }});
    ASSERT_EQ(stopDaemon(SIGKILL), -SIGKILL);
    std::jthread restarter([this] {
        std::this_thread::sleep_for(300ms); // the Ksock must wait for it
        startDaemon();
    });
    auto first = k.tryReceive();
    ASSERT_FALSE(first) << "the call that met the death says so";
    EXPECT_EQ(first.error(), Errc::DISCONNECTED);
    restarter.join();
    ASSERT_EQ(told.size(), 1u) << "and the Ksock said it reopened";
    EXPECT_GT(told[0].attempts, 1) << "it waited for the daemon";
    EXPECT_EQ(told[0].newId, k.id());

    auto other = Ksock::open(0).value();
    EXPECT_EQ(other.channel().findReplier("$.Svc").value(), k.id());
    EXPECT_EQ(k.channel().control(frontend::Control::MAX_MESSAGES, 0).value(), 7u);
    EXPECT_EQ(other.channel().findReplier("$.Gone").value(), 0u);
    ASSERT_TRUE(other.announce("$.News.Today", "sunny"));
    auto news = k.receive(5s);
    ASSERT_TRUE(news) << describe(news.error());
    EXPECT_EQ(news->text(), "sunny");
    EXPECT_FALSE(k.tryReceive().value()) << "one copy: ONLY_ONCE was set again";

    auto id = other.send(makeMessage("$.Svc", "ping", FLAG_WANT_A_REPLY));
    ASSERT_TRUE(id);
    auto request = k.receive(5s);
    ASSERT_TRUE(request);
    ASSERT_TRUE(k.reply(*request, "pong"));
    auto reply = other.receive(5s);
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->header.inReplyTo, *id);
    EXPECT_EQ(reply->text(), "pong");
}

TEST_F(CppApiTest, ReceiveWaitsThroughADaemonRestartWhenReconnecting) {
    auto k = Ksock::open(0).value();
    setUpForRestart(k);
    int reopened = 0;
    k.setReconnect(Reconnect{.backoff = Backoff{.first = 20ms, .max = 200ms, .attempts = 100},
                             .onReopened = [&reopened](const Reopened&) { ++reopened; }});
    ASSERT_EQ(stopDaemon(SIGKILL), -SIGKILL);
    std::jthread announcer([this] {
        std::this_thread::sleep_for(300ms);
        startDaemon();
        auto sender = Ksock::open(0);
        ASSERT_TRUE(sender);
        // Once the listener has served $.Svc again, its bindings are back.
        for (int i = 0; i < 500; ++i) {
            auto replier = sender->channel().findReplier("$.Svc");
            if (replier && *replier != 0) {
                break;
            }
            std::this_thread::sleep_for(10ms);
        }
        EXPECT_TRUE(sender->announce("$.News.Back", "after the restart"));
    });
    auto news = k.receive(20s);
    ASSERT_TRUE(news) << describe(news.error());
    EXPECT_EQ(news->name(), "$.News.Back");
    EXPECT_EQ(news->text(), "after the restart");
    EXPECT_EQ(reopened, 1);
}

TEST_F(CppApiTest, WithoutReconnectTheKsockStaysDeadAndReopenGivesUpAfterItsAttempts) {
    auto k = Ksock::open(0).value();
    ASSERT_TRUE(k.serve("$.Svc"));
    ASSERT_EQ(stopDaemon(SIGKILL), -SIGKILL);
    auto lost = k.receive(5s);
    ASSERT_FALSE(lost);
    EXPECT_EQ(lost.error(), Errc::DISCONNECTED) << "a clear error, never a hang";
    EXPECT_EQ(k.send(makeMessage("$.x", "", 0)).error(), Errc::DISCONNECTED);
    const auto start = std::chrono::steady_clock::now();
    auto gaveUp = k.reopen(Backoff{.first = 10ms, .max = 40ms, .attempts = 4});
    ASSERT_FALSE(gaveUp);
    EXPECT_EQ(gaveUp.error(), Errc::NO_DAEMON);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 10ms + 20ms + 40ms);
    startDaemon();
    auto back = k.reopen();
    ASSERT_TRUE(back) << describe(back.error());
    EXPECT_EQ(back->attempts, 1);
    auto other = Ksock::open(0).value();
    EXPECT_EQ(other.channel().findReplier("$.Svc").value(), k.id());
}

} // namespace
} // namespace xkbus::testing
