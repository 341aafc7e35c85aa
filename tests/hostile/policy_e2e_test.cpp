// A hostile local tenant against a real xkbusd with a policy file: what the
// policy forbids it is refused with EPERM, on a connection that stays up,
// with one log line naming the tenant and the rule; a victim tenant beside
// it keeps being served; SIGHUP changes decisions, and a bad file on reload
// leaves the old policy in force.
#include "tenant_fixture.hpp"

#include <nlohmann/json.hpp>
#include <xkbus/ksock.hpp>

namespace xkbus::testing {
namespace {

using protocol::Control;

// The attacker (nobody) gets bus 0 and a few names; the victim (daemon)
// the defaults of a local user.
constexpr const char* POLICY = R"(# tests/hostile policy
[tenant attacker]
match = user:nobody
buses = 0
listen = $.Public.*
reply = none
announce = $.Public.*
request = $.Time.*
)";

class PolicyE2eTest : public TenantDaemonTest {
protected:
    void SetUp() override {
        TenantDaemonTest::SetUp();
        if (IsSkipped()) {
            return;
        }
        writePolicy(POLICY);
        startDaemon();
    }

    // A replier on $.Time.Now in a victim tenant that answers every request
    // until killed. Returns its pid once it is bound.
    pid_t startVictimReplier() {
        Gate bound;
        const pid_t pid = spawnAs(DAEMON_USER, [&] {
            auto c = connect();
            if (!c) {
                return 10;
            }
            auto channel = (*c)->openKsock(0, true);
            if (!channel) {
                return 11;
            }
            Ksock k(std::move(*channel));
            if (!k.serve("$.Time.Now")) {
                return 12;
            }
            bound.open();
            for (;;) {
                auto request = k.receive(std::chrono::milliseconds(-1));
                if (!request) {
                    return 13;
                }
                (void)k.reply(*request, "now");
            }
        });
        EXPECT_TRUE(bound.waitOpen()) << "the victim's replier did not bind";
        return pid;
    }

    // A request from `uid`'s tenant answered by the victim's replier.
    int requestAs(uid_t uid) const {
        return runAs(uid, [&] {
            auto c = connect();
            auto channel = openOn(c, 0);
            if (!channel) {
                return toErrno(channel.error());
            }
            Ksock k(std::move(*channel));
            auto answer = k.request("$.Time.Now", "", std::chrono::seconds(5));
            return answer && !answer->isStatus() && answer->text() == "now" ? 0 : 20;
        });
    }

    void stopVictim(pid_t victim) const {
        ::kill(victim, SIGKILL);
        reap(victim);
    }
};

TEST_F(PolicyE2eTest, AttackerIsRefusedABusOutsideItsRuleAndTheLogNamesTenantAndRule) {
    const size_t before = logCount("refused uid 65534 (nobody): open bus on bus 1");
    const int attacker = runAs(NOBODY, [&] {
        auto c = connect();
        if (!c) {
            return 30;
        }
        const int refused = errnoOf((*c)->openKsock(1, true));
        // The same connection still serves what the policy allows.
        return refused == EPERM && (*c)->openKsock(0, true) ? 0 : refused;
    });
    EXPECT_EQ(attacker, 0);
    EXPECT_EQ(logCount("refused uid 65534 (nobody): open bus on bus 1 (rule: " + m_policy +
                       ":4 [tenant attacker] buses)"),
              before + 1)
        << logText();
    // Root (dom0) and another local user still open that bus.
    auto c = connect();
    ASSERT_TRUE(c);
    EXPECT_TRUE((*c)->openKsock(1, true));
    EXPECT_EQ(runAs(DAEMON_USER,
                    [&] {
                        auto mine = connect();
                        return mine && (*mine)->openKsock(1, true) ? 0 : 40;
                    }),
              0);
}

TEST_F(PolicyE2eTest, AttackerIsRefusedNamesOutsideItsPatternsWhileTheVictimIsServed) {
    const pid_t victim = startVictimReplier();
    const int attacker = runAs(NOBODY, [&] {
        auto c = connect();
        auto channel = openOn(c, 0);
        if (!channel) {
            return 30;
        }
        auto& k = **channel;
        if (int e = errnoOf(k.bind("$.Time.Now", true)); e != EPERM) {
            return 31; // replier: none allowed
        }
        if (int e = errnoOf(k.bind("$.*", false)); e != EPERM) {
            return 32; // a wildcard wider than $.Public.*
        }
        if (int e = errnoOf(k.bind("$.Private.x", false)); e != EPERM) {
            return 33;
        }
        if (int e = errnoOf(k.send(makeMessage("$.Private.x", "boo"))); e != EPERM) {
            return 34; // announcement outside $.Public.*
        }
        if (int e = errnoOf(k.send(makeMessage("$.Private.x", "", FLAG_WANT_A_REPLY)));
            e != EPERM) {
            return 35; // request outside $.Time.*
        }
        // What the rule allows still works, on the same Ksock.
        if (!k.bind("$.Public.%", false) || !k.send(makeMessage("$.Public.x", "hi"))) {
            return 36;
        }
        Ksock asker(std::move(*channel));
        auto answer = asker.request("$.Time.Now", "", std::chrono::seconds(5));
        return answer && answer->text() == "now" ? 0 : 37;
    });
    EXPECT_EQ(attacker, 0) << logText();
    EXPECT_EQ(requestAs(DAEMON_USER), 0) << "the victim tenant's own request";
    EXPECT_EQ(requestAs(0), 0) << "a dom0 request";
    EXPECT_GE(logCount("[tenant attacker] reply)"), 1u) << logText();
    EXPECT_GE(logCount("send request on bus 0 $.Private.x (rule: " + m_policy +
                       ":8 [tenant attacker] request)"),
              1u)
        << logText();
    stopVictim(victim);
}

TEST_F(PolicyE2eTest, BusWideSettingsAndNewBusAreRefusedToLocalUsersAndKeptForRoot) {
    for (uid_t uid : {NOBODY, DAEMON_USER}) {
        const int tenant = runAs(uid, [&] {
            auto c = connect();
            auto channel = openOn(c, 0);
            if (!channel) {
                return 30;
            }
            auto& k = **channel;
            if (errnoOf(k.control(Control::MAX_MESSAGE_SIZE, 64)) != EPERM ||
                errnoOf(k.control(Control::REPORT_REPLIER_BINDS, 1)) != EPERM ||
                errnoOf(k.control(Control::VERBOSE, 1)) != EPERM || errnoOf(k.newBus()) != EPERM) {
                return 31;
            }
            // Asking is not changing.
            return k.control(Control::MAX_MESSAGE_SIZE, 0) ? 0 : 32;
        });
        EXPECT_EQ(tenant, 0) << "uid " << uid << "\n" << logText();
    }
    EXPECT_GE(logCount("refused uid 1 (daemon): change bus-wide settings on bus 0 (rule: "
                       "default for local users)"),
              1u)
        << logText();
    // Root keeps KBUS: it changes the setting for everyone.
    auto c = connect();
    ASSERT_TRUE(c);
    auto root = (*c)->openKsock(0, true);
    ASSERT_TRUE(root);
    EXPECT_TRUE((*root)->control(Control::MAX_MESSAGE_SIZE, 4096));
    EXPECT_EQ((*root)->control(Control::MAX_MESSAGE_SIZE, 0).value_or(0), 4096u);
    EXPECT_TRUE((*root)->newBus());
}

TEST_F(PolicyE2eTest, IntrospectionShowsAnUnprivilegedTenantOnlyItself) {
    auto c = connect();
    ASSERT_TRUE(c);
    auto root = (*c)->openKsock(0, true);
    ASSERT_TRUE(root);
    ASSERT_TRUE((*root)->bind("$.Root.Secret", false));
    const int attacker = runAs(NOBODY, [&] {
        auto mine = connect();
        auto channel = openOn(mine, 0);
        if (!channel || !(*channel)->bind("$.Public.Mine", false)) {
            return 30;
        }
        auto bindings = (*mine)->introspect(0, protocol::Introspect::BINDINGS);
        auto stats = (*mine)->introspect(0, protocol::Introspect::STATS);
        if (!bindings || !stats) {
            return 31;
        }
        const auto b = nlohmann::json::parse(*bindings);
        const auto s = nlohmann::json::parse(*stats);
        const bool onlyMine = b.size() == 1 && b[0]["name"] == "$.Public.Mine" &&
                              s["ksocks"].size() == 1 && s["tenants"].size() == 1 &&
                              s["tenants"][0]["tenant"] == "uid 65534 (nobody)";
        if (!onlyMine) {
            return 32;
        }
        // A bus it may not open, it may not look at either.
        return errnoOf((*mine)->introspect(1, protocol::Introspect::STATS)) == EPERM ? 0 : 33;
    });
    EXPECT_EQ(attacker, 0);
    auto all = (*c)->introspect(0, protocol::Introspect::BINDINGS);
    ASSERT_TRUE(all);
    EXPECT_NE(all->find("$.Root.Secret"), std::string::npos);
}

// `xkbus stats`: each tenant's usage against its limits; nobody sees only
// its own row, root every tenant's.
TEST_F(PolicyE2eTest, StatsShowTenantsAgainstTheirLimitsAndOnlyItsOwnToAnUnprivilegedUser) {
    const auto statsAs = [&](uid_t uid) {
        const std::string out = m_dir + "/stats." + std::to_string(uid);
        const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        const int status = runAs(uid, [&] {
            ::dup2(fd, STDOUT_FILENO);
            ::setenv("XKBUS_SOCKET", m_socket.c_str(), 1);
            ::execl(XKBUS_CLI_PATH, "xkbus", "stats", static_cast<char*>(nullptr));
            return 127;
        });
        ::close(fd);
        std::ifstream in(out);
        std::stringstream text;
        text << in.rdbuf();
        EXPECT_EQ(status, 0) << text.str();
        return text.str();
    };
    auto c = connect();
    auto held = openOn(c, 0); // dom0 holds one Ksock while the CLI looks
    ASSERT_TRUE(held);
    const std::string mine = statsAs(NOBODY);
    EXPECT_NE(mine.find("tenant uid 65534 (nobody) (charge group 0x2fffe): connections 1/64 "
                        "ksocks 0/2048"),
              std::string::npos)
        << mine;
    EXPECT_EQ(mine.find("tenant dom0"), std::string::npos) << mine;
    const std::string all = statsAs(0);
    EXPECT_NE(all.find("tenant dom0 (charge group 0x0): connections 2/4096 ksocks 1/65536"),
              std::string::npos)
        << all;
    EXPECT_NE(all.find("tenant uid 65534 (nobody)"), std::string::npos) << all;
}

// `xkbus monitor` asks for replier bind reports, a bus-wide setting a local
// user may not change: it says so and watches the messages anyway.
TEST_F(PolicyE2eTest, MonitorByALocalUserWatchesWithoutTurningOnBindReports) {
    const std::string out = m_dir + "/monitor.out";
    const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const pid_t monitor = spawnAs(DAEMON_USER, [&] {
        ::dup2(fd, STDOUT_FILENO);
        ::dup2(fd, STDERR_FILENO);
        ::setenv("XKBUS_SOCKET", m_socket.c_str(), 1);
        ::execl(XKBUS_CLI_PATH, "xkbus", "monitor", "$.M.*", "--count", "1", "--timeout", "30",
                static_cast<char*>(nullptr));
        return 127;
    });
    ::close(fd);
    auto c = connect();
    ASSERT_TRUE(c);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    bool bound = false;
    while (!bound && std::chrono::steady_clock::now() < deadline) {
        auto b = (*c)->introspect(0, protocol::Introspect::BINDINGS);
        bound = b && b->find("\"$.M.*\"") != std::string::npos;
        if (!bound) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    }
    ASSERT_TRUE(bound) << "the monitor never bound";
    auto sender = openOn(c, 0);
    ASSERT_TRUE(sender);
    ASSERT_TRUE((*sender)->send(makeMessage("$.M.x", "seen")));
    EXPECT_EQ(reap(monitor), 0);
    std::ifstream in(out);
    std::stringstream text;
    text << in.rdbuf();
    EXPECT_NE(text.str().find("not allowed to turn on replier bind reports"), std::string::npos)
        << text.str();
    EXPECT_NE(text.str().find("$.M.x"), std::string::npos) << text.str();
}

TEST_F(PolicyE2eTest, SighupChangesADecisionAndABadFileKeepsTheOldPolicy) {
    const auto opensBus1 = [&] {
        return runAs(NOBODY, [&] {
            auto c = connect();
            return c ? errnoOf((*c)->openKsock(1, true)) : 30;
        });
    };
    ASSERT_EQ(opensBus1(), EPERM);
    std::string wider = POLICY;
    wider.replace(wider.find("buses = 0"), 9, "buses = 0 1");
    writePolicy(wider);
    ASSERT_TRUE(reload()) << logText();
    EXPECT_EQ(opensBus1(), UNEXPECTED_OK) << "the new rule lets it in";

    writePolicy("[tenant attacker]\nmatch = user:nobody\nbuses = 0\nlisten = $.bad.*.name\n");
    EXPECT_FALSE(reload());
    EXPECT_EQ(logCount("policy not reloaded, the old one stays: " + m_policy +
                       ":4: listen: `$.bad.*.name`"),
              1u)
        << logText();
    EXPECT_EQ(opensBus1(), UNEXPECTED_OK) << "the old (wider) policy is still in force";
}

TEST_F(PolicyE2eTest, ADaemonStartedWithABadFileRefusesToStartAndSaysWhere) {
    stopDaemon();
    writePolicy("[tenant x]\nmatch = *\nbus_settings = perhaps\n");
    const pid_t daemon = ::fork();
    if (daemon == 0) {
        const int log = ::open(m_log.c_str(), O_WRONLY | O_APPEND);
        ::dup2(log, STDERR_FILENO);
        ::execl(XKBUSD_PATH, "xkbusd", "--socket", m_socket.c_str(), "--policy", m_policy.c_str(),
                static_cast<char*>(nullptr));
        ::_exit(127);
    }
    EXPECT_EQ(reap(daemon), 64);
    EXPECT_EQ(logCount("bad policy: " + m_policy + ":3: bus_settings: `perhaps` is not yes or no"),
              1u)
        << logText();
}

} // namespace
} // namespace xkbus::testing
