// The xkbus command-line client against a real daemon: data in and out,
// call/reply/--exec, monitor, buses, bindings and stats with program and
// user, option positions, exit codes, --version, and --reconnect.
// XKBUS_CLI_PATH and the other binaries' paths are set by CMake.
#include "daemon_fixture.hpp"
#include "run_command.hpp"

#include <chrono>
#include <cstdio>
#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <pwd.h>
#include <regex>
#include <thread>
#include <xkbus/ksock.hpp>

namespace xkbus::testing {
namespace {

using namespace std::chrono_literals;

const std::string CLI = XKBUS_CLI_PATH;

// A CLI process running beside the test, its output going to files.
class Background {
public:
    Background(const std::string& dir, const std::string& args) {
        static int serial = 0;
        const std::string base = dir + "/bg" + std::to_string(++serial);
        m_out = base + ".out";
        m_err = base + ".err";
        m_pid = ::fork();
        if (m_pid == 0) {
            ::setpgid(0, 0);
            ::execl("/bin/sh", "sh", "-c",
                    ("exec " + CLI + " " + args + " >" + m_out + " 2>" + m_err).c_str(),
                    static_cast<char*>(nullptr));
            ::_exit(127);
        }
    }
    ~Background() {
        if (m_pid > 0) {
            ::kill(m_pid, SIGKILL);
            finish();
        }
    }
    pid_t pid() const { return m_pid; }
    std::string out() const { return readWholeFile(m_out); }
    std::string err() const { return readWholeFile(m_err); }
    // Waits until `text` shows in its standard output (or error).
    bool waitFor(const std::string& text, bool inErr = false, int seconds = 10) const {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
        while (std::chrono::steady_clock::now() < deadline) {
            if ((inErr ? err() : out()).find(text) != std::string::npos) {
                return true;
            }
            std::this_thread::sleep_for(10ms);
        }
        return false;
    }
    // Its exit code (128 + signal if killed).
    int finish() {
        int status = 0;
        ::waitpid(m_pid, &status, 0);
        m_pid = 0;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }

private:
    pid_t m_pid = 0;
    std::string m_out;
    std::string m_err;
};

class CliTest : public DaemonTest {
protected:
    static CommandResult cli(const std::string& args) { return runCommand(CLI + " " + args); }
    // Ready once `count` bindings of `name` show up in `xkbus bindings`.
    static bool waitBound(const std::string& name, uint32_t bus = 0, size_t count = 1) {
        for (int i = 0; i < 1000; ++i) {
            auto all = nlohmann::json::parse(
                cli("bindings --json --bus " + std::to_string(bus)).out, nullptr, false);
            size_t found = 0;
            for (const auto& b : all.is_array() ? all : nlohmann::json::array()) {
                found += b["name"] == name ? 1 : 0;
            }
            if (found >= count) {
                return true;
            }
            std::this_thread::sleep_for(10ms);
        }
        return false;
    }
    static nlohmann::json json(const std::string& text) {
        auto j = nlohmann::json::parse(text, nullptr, false);
        EXPECT_FALSE(j.is_discarded()) << text;
        return j;
    }
    // The next message on `k` as bytes, or "" after 5 s.
    static std::string nextData(Ksock& k) {
        auto m = k.receive(5s);
        return m ? std::string(m->text()) : std::string("<nothing>");
    }
};

// ------------------------------------------------------------- data in

TEST_F(CliTest, DataComesFromTheArgumentStdinAFileHexOrBase64) {
    auto k = Ksock::open(0).value();
    ASSERT_TRUE(k.listen("$.In"));
    const std::string binary("\x00\x01\xfe\xff", 4);
    const std::string file = m_dir + "/data.bin";
    {
        std::FILE* f = std::fopen(file.c_str(), "wb");
        std::fwrite(binary.data(), 1, binary.size(), f);
        std::fclose(f);
    }
    EXPECT_EQ(cli("send '$.In' 'as typed'").status, 0);
    EXPECT_EQ(nextData(k), "as typed");
    EXPECT_EQ(runCommand("printf 'piped\\n' | " + CLI + " send '$.In' -").status, 0);
    EXPECT_EQ(nextData(k), "piped\n");
    EXPECT_EQ(cli("send '$.In' @" + file).status, 0);
    EXPECT_EQ(nextData(k), binary);
    EXPECT_EQ(cli("send '$.In' '00 01 fe ff' --input-format hex").status, 0);
    EXPECT_EQ(nextData(k), binary);
    EXPECT_EQ(cli("send '$.In' AAH+/w== --input-format base64").status, 0);
    EXPECT_EQ(nextData(k), binary);
}

TEST_F(CliTest, DataThatCannotBeReadOrDecodedIsAUsageError) {
    auto missing = cli("send '$.In' @" + m_dir + "/missing");
    EXPECT_EQ(missing.status, 64);
    EXPECT_NE(missing.err.find("cannot be read"), std::string::npos) << missing.err;
    auto badHex = cli("send '$.In' xyz --input-format hex");
    EXPECT_EQ(badHex.status, 64);
    EXPECT_NE(badHex.err.find("not valid"), std::string::npos) << badHex.err;
}

// ------------------------------------------------------------ data out

TEST_F(CliTest, DataIsShownAsTextWhenPrintableElseHexOrBase64OrRaw) {
    Background listener(m_dir, "listen '$.Out' --count 3");
    ASSERT_TRUE(waitBound("$.Out"));
    ASSERT_EQ(cli("send '$.Out' 'line one'").status, 0);
    ASSERT_EQ(cli("send '$.Out' 00ff --input-format hex").status, 0);
    ASSERT_EQ(cli("send '$.Out' 'a\\b'").status, 0);
    EXPECT_EQ(listener.finish(), 0);
    const std::string out = listener.out();
    EXPECT_NE(out.find(": \"line one\""), std::string::npos) << out;
    EXPECT_NE(out.find(": hex:00ff"), std::string::npos) << out;
    EXPECT_NE(out.find(": \"a\\\\b\""), std::string::npos) << out;

    Background b64(m_dir, "listen '$.Out' --count 1 --data-format base64");
    Background raw(m_dir, "listen '$.Out' --count 1 --raw");
    ASSERT_TRUE(waitBound("$.Out", 0, 2));
    ASSERT_EQ(cli("send '$.Out' 00ff0a --input-format hex").status, 0);
    EXPECT_EQ(b64.finish(), 0);
    EXPECT_EQ(raw.finish(), 0);
    EXPECT_NE(b64.out().find(": base64:AP8K"), std::string::npos) << b64.out();
    EXPECT_EQ(raw.out(), std::string("\x00\xff\n", 3));
}

TEST_F(CliTest, JsonAlwaysHasTheDataWithItsEncoding) {
    Background listener(m_dir, "listen '$.Json' --count 2 --json");
    ASSERT_TRUE(waitBound("$.Json"));
    ASSERT_EQ(cli("send '$.Json' 'text\n'").status, 0);
    ASSERT_EQ(cli("send '$.Json' 0001 --input-format hex").status, 0);
    EXPECT_EQ(listener.finish(), 0);
    std::istringstream lines(listener.out());
    std::string line;
    std::getline(lines, line);
    auto text = json(line);
    EXPECT_EQ(text["data"], "text\n");
    EXPECT_EQ(text["data_encoding"], "utf-8");
    std::getline(lines, line);
    auto bytes = json(line);
    EXPECT_EQ(bytes["data"], "AAE=");
    EXPECT_EQ(bytes["data_encoding"], "base64");
    EXPECT_EQ(bytes["data_len"], 2);
}

// ------------------------------------------------------ call and reply

TEST_F(CliTest, CliCallGetsTheCliRepliersAnswer) {
    Background replier(m_dir, "reply '$.Time.*' --exec 'tr a-z A-Z' --count 1");
    ASSERT_TRUE(waitBound("$.Time.*"));
    auto r = cli("call '$.Time.Now' hello --json --timeout 5");
    EXPECT_EQ(r.status, 0) << r.err;
    auto j = json(r.out);
    EXPECT_EQ(j["kind"], "reply");
    EXPECT_EQ(j["data"], "HELLO");
    EXPECT_EQ(replier.finish(), 0);
}

// The README's example: the reply is `date`'s output, and call shows it.
TEST_F(CliTest, TheReadmeExampleShowsTheDate) {
    Background replier(m_dir, "reply '$.Time.*' --exec date");
    ASSERT_TRUE(waitBound("$.Time.*"));
    const std::string dateText = R"(\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \w+ \d{4})";
    auto shown = cli("call '$.Time.Now'");
    EXPECT_EQ(shown.status, 0) << shown.err;
    EXPECT_TRUE(std::regex_match(
        shown.out, std::regex(R"(reply \$\.Time\.Now \[0:\d+\] from Ksock \d+ answering )"
                              R"(\[0:\d+\]: ")" +
                              dateText + R"(\\n"\n)")))
        << shown.out;
    auto raw = cli("call '$.Time.Now' --raw");
    EXPECT_TRUE(std::regex_match(raw.out, std::regex(dateText + "\n"))) << raw.out;
}

TEST_F(CliTest, AFailingExecBecomesAnErrorTheCallerSees) {
    Background replier(m_dir, "reply '$.Fail' --exec 'echo half; echo disk full >&2; exit 3'");
    ASSERT_TRUE(waitBound("$.Fail"));
    auto r = cli("call '$.Fail'");
    EXPECT_EQ(r.status, 4) << r.err;
    EXPECT_NE(r.err.find("the replier failed"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("exited with status 3: disk full"), std::string::npos) << r.err;
    auto j = json(cli("call '$.Fail' --json").out);
    EXPECT_EQ(j["kind"], "error");
    EXPECT_EQ(j["flags"].get<uint32_t>() & 0x10000u, 0x10000u);
}

TEST_F(CliTest, ExecGetsTheRequestsDataOnStdin) {
    Background replier(m_dir, "reply '$.Count' --exec 'wc -c'");
    ASSERT_TRUE(waitBound("$.Count"));
    auto r = runCommand("head -c 5000 /dev/zero | " + CLI + " call '$.Count' - --raw");
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(std::stoi(r.out), 5000);
}

TEST_F(CliTest, AKilledReplierLeavesNoChildAndNoTemporaryFile) {
    const std::string tmp = m_dir + "/tmp";
    std::filesystem::create_directory(tmp);
    const std::string pids = m_dir + "/pids";
    Background replier(m_dir, "reply '$.Slow' --exec 'echo $$ > " + pids +
                                  "; sleep 300 & echo $! >> " + pids + "; wait'");
    ASSERT_TRUE(waitBound("$.Slow"));
    Background caller(m_dir, "call '$.Slow' secret-token-17");
    std::vector<pid_t> children;
    for (int i = 0; i < 1000 && children.size() < 2; ++i) {
        std::this_thread::sleep_for(10ms);
        std::istringstream in(readWholeFile(pids));
        children.clear();
        for (pid_t p = 0; in >> p;) {
            children.push_back(p);
        }
    }
    ASSERT_EQ(children.size(), 2u) << "the command did not start";
    ::kill(replier.pid(), SIGKILL);
    EXPECT_EQ(replier.finish(), 128 + SIGKILL);
    // The caller hears the bus answer for the dead replier.
    EXPECT_EQ(caller.finish(), 3);
    EXPECT_NE(caller.out().find("$.KBUS.Replier.Ignored"), std::string::npos) << caller.out();
    const auto alive = [](pid_t p) {
        std::ifstream stat("/proc/" + std::to_string(p) + "/stat");
        std::string pidText, comm, state;
        stat >> pidText >> comm >> state;
        return stat && state != "Z";
    };
    for (pid_t p : children) {
        bool gone = false;
        for (int i = 0; i < 500 && !gone; ++i) {
            gone = !alive(p);
            std::this_thread::sleep_for(10ms);
        }
        EXPECT_TRUE(gone) << "pid " << p << " was left behind";
    }
    // No file anywhere in /tmp holds the request's data (the old CLI wrote it there).
    auto found = runCommand("grep -rl secret-token-17 /tmp --include='xkbus-reply-*' 2>/dev/null");
    EXPECT_EQ(found.out, "");
}

TEST_F(CliTest, CliCallWithNoReplierFailsClearly) {
    auto r = cli("call '$.Nobody'");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("no replier"), std::string::npos) << r.err;
}

TEST_F(CliTest, ACallAnsweredByTheBusExitsThree) {
    Gate ready;
    Gate readIt;
    const pid_t replier = spawn([&] {
        auto k = Ksock::open(0);
        if (!k || !k->serve("$.Vanish")) {
            return 1;
        }
        ready.open();
        auto m = k->receive(10s);
        readIt.open();
        ::pause(); // killed holding the request
        return 0;
    });
    ASSERT_TRUE(ready.waitOpen());
    Background caller(m_dir, "call '$.Vanish'");
    ASSERT_TRUE(readIt.waitOpen());
    ::kill(replier, SIGKILL);
    reap(replier);
    EXPECT_EQ(caller.finish(), 3);
    EXPECT_NE(caller.err().find("the bus answered $.KBUS.Replier.Ignored"), std::string::npos)
        << caller.err();
}

// -------------------------------------------------------------- monitor

TEST_F(CliTest, MonitorSeesEverythingOnSeveralBusesWithReplierBindEvents) {
    Background monitor(m_dir, "monitor --bus 0 --bus 1 --json");
    ASSERT_TRUE(waitBound("$.*", 0) && waitBound("$.*", 1));
    Background replier(m_dir, "reply '$.Svc' --data ok --bus 1 --count 1");
    ASSERT_TRUE(monitor.waitFor("\"bind_event\":\"bind $.Svc by Ksock"));
    ASSERT_EQ(cli("send '$.News' extra --bus 0").status, 0);
    ASSERT_EQ(cli("call '$.Svc' question --bus 1").status, 0);
    EXPECT_EQ(replier.finish(), 0);
    ASSERT_TRUE(monitor.waitFor("\"bind_event\":\"unbind $.Svc by Ksock"));
    std::map<std::string, nlohmann::json> seen;
    std::istringstream lines(monitor.out());
    for (std::string line; std::getline(lines, line);) {
        auto j = json(line);
        seen[j["kind"].get<std::string>() + " " + j["name"].get<std::string>()] = j;
    }
    ASSERT_TRUE(seen.count("announcement $.News")) << monitor.out();
    EXPECT_EQ(seen["announcement $.News"]["bus"], 0);
    ASSERT_TRUE(seen.count("request $.Svc")) << monitor.out();
    EXPECT_EQ(seen["request $.Svc"]["bus"], 1);
    ASSERT_TRUE(seen.count("reply $.Svc")) << monitor.out();
    EXPECT_EQ(seen["reply $.Svc"]["data"], "ok");
}

TEST_F(CliTest, MonitorAllBusesPrefixesEachLineWithItsBus) {
    Background monitor(m_dir, "monitor --all-buses --no-bind-events");
    ASSERT_TRUE(waitBound("$.*", 0) && waitBound("$.*", 1));
    ASSERT_EQ(cli("send '$.Hi' there --bus 1").status, 0);
    EXPECT_TRUE(monitor.waitFor("bus 1: announcement $.Hi")) << monitor.out();
}

// ----------------------------------------------- buses, bindings, stats

TEST_F(CliTest, BusesListsEveryBusTheDaemonHas) {
    auto before = json(cli("buses --json").out);
    ASSERT_EQ(before.size(), 2u) << "the fixture starts two buses";
    EXPECT_EQ(json(cli("new-bus --json").out)["bus"], 2);
    auto after = json(cli("buses --json").out);
    ASSERT_EQ(after.size(), 3u);
    EXPECT_EQ(after[2]["bus"], 2);
    EXPECT_NE(cli("buses").out.find("BUS"), std::string::npos);
}

TEST_F(CliTest, BindingsAndStatsNameEachKsocksProgramAndUser) {
    Background replier(m_dir, "reply '$.Who' --data me");
    ASSERT_TRUE(waitBound("$.Who"));
    const std::string me = ::getpwuid(::geteuid())->pw_name;
    nlohmann::json binding;
    for (const auto& b : json(cli("bindings --json").out)) {
        if (b["name"] == "$.Who") {
            binding = b;
        }
    }
    EXPECT_EQ(binding["process"], "xkbus");
    EXPECT_EQ(binding["user"], me);
    EXPECT_EQ(binding["pid"], replier.pid());
    EXPECT_EQ(binding["domid"], 0);
    auto text = cli("bindings").out;
    EXPECT_TRUE(std::regex_search(
        text, std::regex(std::to_string(replier.pid()) + " +xkbus +" + me + " +\\$\\.Who")))
        << text;
    auto stats = json(cli("stats --json").out);
    bool named = false;
    for (const auto& k : stats["ksocks"]) {
        named |= k["pid"] == replier.pid() && k["process"] == "xkbus" && k["user"] == me;
    }
    EXPECT_TRUE(named) << stats.dump();
    EXPECT_NE(cli("stats").out.find("(xkbus pid " + std::to_string(replier.pid()) + ", user " + me),
              std::string::npos);
}

TEST_F(CliTest, CliStatsAndNewBusAsJson) {
    auto r = cli("new-bus --json");
    EXPECT_EQ(r.status, 0);
    EXPECT_EQ(json(r.out)["bus"], 2) << "the fixture starts two buses";
    EXPECT_EQ(json(cli("stats --bus 2 --json").out)["bus"], 2);
}

// ------------------------------------------- options and exit codes

TEST_F(CliTest, GlobalOptionsWorkBeforeAndAfterTheCommand) {
    for (const auto& args : {"--json --bus 1 new-bus", "new-bus --json --bus 1",
                             "--bus 1 new-bus --json", "new-bus --json -b 1"}) {
        auto r = cli(args);
        EXPECT_EQ(r.status, 0) << args << ": " << r.err;
        EXPECT_TRUE(json(r.out).contains("bus")) << args << ": " << r.out;
    }
    const std::string other = m_dir + "/elsewhere.sock";
    auto before = cli("--socket " + other + " buses");
    auto after = cli("buses --socket " + other);
    EXPECT_EQ(before.status, 69);
    EXPECT_EQ(after.status, 69);
    EXPECT_NE(after.err.find(other), std::string::npos) << after.err;
}

TEST_F(CliTest, ExitCodesAreTheDocumentedOnes) {
    auto alone = cli("");
    EXPECT_EQ(alone.status, 0);
    EXPECT_NE(alone.out.find("Subcommands:"), std::string::npos) << alone.out;
    EXPECT_NE(alone.out.find("Exit status:"), std::string::npos) << alone.out;
    EXPECT_EQ(cli("--help").status, 0);
    EXPECT_EQ(cli("frobnicate").status, 64);
    EXPECT_EQ(cli("send").status, 64);
    EXPECT_EQ(cli("send '$.x' --bus 0 --bus 1").status, 64);
    EXPECT_EQ(cli("listen '$.Quiet' --timeout 0.2").status, 2);
    EXPECT_EQ(cli("call '$.Nobody'").status, 1);
    EXPECT_EQ(cli("wait --timeout 5").status, 0);
    EXPECT_EQ(cli("wait --replier '$.None' --timeout 0.3").status, 2);
}

TEST_F(CliTest, WaitReturnsOnceTheDaemonAndTheReplierAreThere) {
    stopDaemon(SIGTERM);
    Background waiter(m_dir, "wait --replier '$.Late.Name' --timeout 20");
    startDaemon();
    Background replier(m_dir, "reply '$.Late.*' --data here");
    EXPECT_EQ(waiter.finish(), 0) << waiter.err();
    EXPECT_EQ(cli("call '$.Late.Name' --raw").out, "here");
}

TEST_F(CliTest, EveryBinaryHasVersion) {
    for (const auto& [path, name] : std::vector<std::pair<std::string, std::string>>{
             {CLI, "xkbus"}, {XKBUSD_PATH, "xkbusd"}, {XKBUS_LIMPET_PATH, "xkbus-limpet"}}) {
        auto r = runCommand(path + " --version");
        EXPECT_EQ(r.status, 0) << name;
        EXPECT_EQ(r.out, name + " " + XKBUS_VERSION + "\n");
    }
}

// --------------------------------------------------------- reconnecting

TEST_F(CliTest, WithoutReconnectALostDaemonEndsListenWithAnError) {
    Background listener(m_dir, "listen '$.*'");
    ASSERT_TRUE(waitBound("$.*"));
    stopDaemon(SIGKILL);
    EXPECT_EQ(listener.finish(), 69);
    EXPECT_NE(listener.err().find("lost the daemon at " + m_socket), std::string::npos)
        << listener.err();
}

TEST_F(CliTest, ListenAndReplyReconnectAfterTheDaemonRestarts) {
    Background listener(m_dir, "listen '$.Back' --reconnect --count 1");
    Background replier(m_dir, "reply '$.Svc' --data still-here --reconnect");
    ASSERT_TRUE(waitBound("$.Back") && waitBound("$.Svc"));
    stopDaemon(SIGKILL);
    ASSERT_TRUE(listener.waitFor("lost the daemon", true));
    startDaemon();
    ASSERT_TRUE(listener.waitFor("reconnected to " + m_socket, true)) << listener.err();
    ASSERT_TRUE(replier.waitFor("bindings restored", true)) << replier.err();
    ASSERT_EQ(cli("send '$.Back' again").status, 0);
    EXPECT_EQ(listener.finish(), 0);
    EXPECT_NE(listener.out().find("\"again\""), std::string::npos) << listener.out();
    auto answered = cli("call '$.Svc' --raw --timeout 5");
    EXPECT_EQ(answered.out, "still-here");
}

} // namespace
} // namespace xkbus::testing
