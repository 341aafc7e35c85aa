// Limpets between real daemons: the xkbus-limpet binary joining buses of one
// xkbusd, of two over TLS on loopback, and four in a chain; and what happens
// when Limpets, repliers or links die, or the far side is hostile.
#include <arpa/inet.h>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <deque>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sstream>
#include <stop_token>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <xkbus/frontend/open.hpp>
#include <xkbus/ksock.hpp>
#include <xkbus/limpet/limpet.hpp>
#include <xkbus/limpet/wire.hpp>
#include <xkbus/socket/socket_link.hpp>

namespace xkbus::testing {
namespace {

using namespace std::chrono_literals;

// Certificates for the TLS links, made once with the openssl command: a CA,
// two Limpets it signed, and an impostor signed by another CA.
class Certificates {
public:
    static const Certificates& get() {
        static Certificates certs;
        return certs;
    }
    std::string dir;

private:
    Certificates() {
        char tmp[] = "/tmp/xkbus-limpet-certs-XXXXXX";
        dir = ::mkdtemp(tmp);
        run("req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
            "-subj /CN=xkbus-test-ca -keyout ca.key -out ca.crt");
        run("req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
            "-subj /CN=rogue-ca -keyout rogue-ca.key -out rogue-ca.crt");
        leaf("limpet-a", "ca");
        leaf("limpet-b", "ca");
        leaf("impostor", "rogue-ca");
    }
    void leaf(const std::string& name, const std::string& ca) {
        run("req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=" + name +
            " -addext subjectAltName=DNS:" + name + " -keyout " + name + ".key -out " + name +
            ".csr");
        run("x509 -req -days 2 -copy_extensions copy -in " + name + ".csr -CA " + ca +
            ".crt -CAkey " + ca + ".key -CAcreateserial -out " + name + ".crt");
    }
    void run(const std::string& args) const {
        const std::string cmd = "cd " + dir + " && openssl " + args + " >/dev/null 2>&1";
        if (std::system(cmd.c_str()) != 0) {
            ADD_FAILURE() << "failed: " << cmd;
        }
    }
};

frontend::Message requestFor(std::string_view name) {
    return makeMessage(name, "", FLAG_WANT_A_REPLY);
}

// A process this test started; killed and reaped when the test ends.
struct Child {
    pid_t pid = 0;
};

class LimpetE2E : public ::testing::Test {
protected:
    void SetUp() override {
        char dir[] = "/tmp/xkbus-limpet-XXXXXX";
        ASSERT_NE(::mkdtemp(dir), nullptr);
        m_dir = dir;
    }

    void TearDown() override {
        for (auto it = m_children.rbegin(); it != m_children.rend(); ++it) {
            stop(*it, SIGKILL);
        }
        for (auto& d : m_daemons) {
            stop(d, SIGTERM);
        }
        std::filesystem::remove_all(m_dir);
    }

    std::string socketOf(int daemon) const { return m_dir + "/d" + std::to_string(daemon); }
    std::string trustedOf(int daemon) const { return socketOf(daemon) + ".limpet"; }
    std::string cert(const std::string& file) const { return Certificates::get().dir + "/" + file; }

    // Daemons 0 to count - 1 (those not yet started).
    void startDaemons(int count) {
        for (int d = static_cast<int>(m_daemons.size()); d < count; ++d) {
            const std::string s = socketOf(d);
            const std::string t = trustedOf(d);
            m_daemons.push_back(startProcess(
                {XKBUSD_PATH, "--socket", s, "--trusted-socket", t, "--buses", "2", "--log-level",
                 std::getenv("XKBUS_TEST_LOG") ? std::getenv("XKBUS_TEST_LOG") : "warn"}));
            ASSERT_TRUE(waitForSocket(s) && waitForSocket(t)) << "xkbusd " << d;
        }
    }

    // SIGKILLs daemon `d` (its socket files stay behind, as after a crash).
    void killDaemon(int d) {
        const pid_t pid = m_daemons[static_cast<size_t>(d)].pid;
        stop(m_daemons[static_cast<size_t>(d)], SIGKILL);
        for (auto& c : m_children) {
            if (c.pid == pid) {
                c.pid = 0; // reaped: never signal a pid that may be reused
            }
        }
    }

    // Starts daemon `d` again on the same sockets.
    void restartDaemon(int d) {
        const std::string s = socketOf(d);
        const std::string t = trustedOf(d);
        m_daemons[static_cast<size_t>(d)] =
            startProcess({XKBUSD_PATH, "--socket", s, "--trusted-socket", t, "--buses", "2",
                          "--log-level", "warn"});
        ASSERT_TRUE(waitForSocket(s) && waitForSocket(t)) << "xkbusd " << d << " again";
    }

    // Waits (at most 20 s) until the file at `path` contains `text`.
    static bool waitForText(const std::string& path, const std::string& text) {
        const auto deadline = std::chrono::steady_clock::now() + 20s;
        while (std::chrono::steady_clock::now() < deadline) {
            std::ifstream in(path);
            std::stringstream all;
            all << in.rdbuf();
            if (all.str().find(text) != std::string::npos) {
                return true;
            }
            std::this_thread::sleep_for(20ms);
        }
        return false;
    }

    static std::string textOf(const std::string& path) {
        std::ifstream in(path);
        std::stringstream all;
        all << in.rdbuf();
        return all.str();
    }

    // The exit status of `c` once it exits (at most 10 s), or -1.
    static int exitStatus(Child& c) {
        for (int i = 0; i < 1000 && c.pid > 0; ++i) {
            int status = 0;
            if (::waitpid(c.pid, &status, WNOHANG) == c.pid) {
                c.pid = 0;
                return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            }
            std::this_thread::sleep_for(10ms);
        }
        return -1;
    }

    static bool waitForSocket(const std::string& path) {
        for (int i = 0; i < 1000; ++i) {
            if (socket::connectUnix(path)) {
                return true;
            }
            std::this_thread::sleep_for(5ms);
        }
        return false;
    }

    // With `errPath`, the process's stderr goes to that file.
    Child& startProcess(const std::vector<std::string>& argv, const std::string& errPath = {}) {
        const pid_t pid = ::fork();
        if (pid == 0) {
            if (!errPath.empty()) {
                const int err = ::open(errPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
                ::dup2(err, STDERR_FILENO);
            }
            std::vector<char*> args;
            for (const auto& a : argv) {
                args.push_back(const_cast<char*>(a.c_str()));
            }
            args.push_back(nullptr);
            ::execv(args[0], args.data());
            ::_exit(127);
        }
        m_children.push_back(Child{pid});
        return m_children.back();
    }

    // Fast heartbeats so that dead links show within a second.
    static std::vector<std::string> timing() {
        return {"--heartbeat-ms", "100", "--dead-after-ms", "600", "--retry-ms", "100"};
    }

    Child& limpetLocal(int dx, uint32_t bx, uint32_t idx, int dy, uint32_t by, uint32_t idy) {
        return startProcess({LIMPET_PATH, "local", "--x-socket", trustedOf(dx), "--x-bus",
                             std::to_string(bx), "--x-id", std::to_string(idx), "--y-socket",
                             trustedOf(dy), "--y-bus", std::to_string(by), "--y-id",
                             std::to_string(idy)});
    }

    // One side of a TLS pair on 127.0.0.1:port; `me` names its certificate.
    Child& limpetTls(const std::string& mode, int daemon, uint32_t id, uint16_t port,
                     const std::string& me, const std::string& peer) {
        std::vector<std::string> argv{LIMPET_PATH,   mode,
                                      "--socket",    trustedOf(daemon),
                                      "--id",        std::to_string(id),
                                      "--address",   tcpAddress(port),
                                      "--cert",      cert(me + ".crt"),
                                      "--key",       cert(me + ".key"),
                                      "--ca",        cert("ca.crt"),
                                      "--peer-name", peer};
        for (auto& t : timing()) {
            argv.push_back(t);
        }
        return startProcess(argv);
    }

    // One side of a plain pair over a Unix socket (allowed for tests only),
    // with `extra` options and its stderr in `errPath` if given.
    Child& limpetPlain(const std::string& mode, int daemon, uint32_t id, const std::string& path,
                       const std::vector<std::string>& extra = {},
                       const std::string& errPath = {}) {
        std::vector<std::string> argv{LIMPET_PATH,       mode,           "--socket",
                                      trustedOf(daemon), "--id",         std::to_string(id),
                                      "--address",       "unix:" + path, "--plain"};
        for (auto& t : timing()) {
            argv.push_back(t);
        }
        argv.insert(argv.end(), extra.begin(), extra.end());
        return startProcess(argv, errPath);
    }

    static uint16_t freePort() {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
        ::close(fd);
        return ntohs(a.sin_port);
    }

    static std::string tcpAddress(uint16_t port) { return "tcp:127.0.0.1:" + std::to_string(port); }

    // A TCP connection to the listener on 127.0.0.1:port that never says a word.
    static UniqueFd connectTcp(uint16_t port) {
        UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(port);
        if (!fd || ::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            return UniqueFd{};
        }
        return fd;
    }

    // Whether the other end closed `fd`: EOF at once, or nothing to read at
    // all (a listener that waits for a TLS ClientHello sends nothing).
    static bool closedByPeer(int fd) {
        pollfd p{fd, POLLIN, 0};
        char c = 0;
        return ::poll(&p, 1, 0) == 1 && ::recv(fd, &c, 1, MSG_DONTWAIT) == 0;
    }

    // The same, waiting (at most 5 s) for the Limpet to listen.
    static UniqueFd connectTcpOnceUp(uint16_t port) {
        const auto deadline = std::chrono::steady_clock::now() + 5s;
        UniqueFd fd = connectTcp(port);
        while (!fd && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(10ms);
            fd = connectTcp(port);
        }
        return fd;
    }

    Ksock open(int daemon, uint32_t bus) {
        auto connection = frontend::connectLocal(socketOf(daemon));
        EXPECT_TRUE(connection) << "daemon " << daemon;
        auto channel = (*connection)->openKsock(bus, true);
        EXPECT_TRUE(channel);
        return Ksock(std::move(*channel));
    }

    // A replier in its own process: answers "echo:<data>", or with `hold` > 0
    // reads that many requests, never answers, and then stops reading.
    // Says on a pipe once it is bound, and as it reads each held request.
    Child& replier(int daemon, uint32_t bus, const std::string& name, int hold = 0) {
        int ready[2];
        EXPECT_EQ(::pipe(ready), 0);
        const pid_t pid = ::fork();
        if (pid == 0) {
            ::close(ready[0]);
            Ksock k = open(daemon, bus);
            if (!k.serve(name)) {
                ::_exit(1);
            }
            (void)!::write(ready[1], "r", 1);
            for (;;) {
                auto m = k.receive(-1ms);
                if (!m) {
                    ::_exit(2);
                }
                if (m->wantsYouToReply() && hold == 0) {
                    (void)k.reply(*m, "echo:" + std::string(m->text()));
                } else if (m->wantsYouToReply()) {
                    (void)!::write(ready[1], "h", 1);
                    if (--hold == 0) {
                        ::pause(); // what comes next stays queued
                    }
                }
            }
        }
        ::close(ready[1]);
        m_children.push_back(Child{pid});
        m_replierPipe = ready[0];
        char c = 0;
        pollfd p{ready[0], POLLIN, 0};
        EXPECT_TRUE(::poll(&p, 1, 10000) == 1 && ::read(ready[0], &c, 1) == 1 && c == 'r');
        return m_children.back();
    }

    // The held replier read a request.
    bool replierHolds() const {
        pollfd p{m_replierPipe, POLLIN, 0};
        char c = 0;
        return ::poll(&p, 1, 10000) == 1 && ::read(m_replierPipe, &c, 1) == 1 && c == 'h';
    }

    // Waits until a request for `name` would reach a replier (or, with
    // `present` false, until none would).
    static bool waitForReplier(Ksock& k, std::string_view name, bool present = true,
                               std::chrono::milliseconds timeout = 10s) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            auto r = k.channel().findReplier(name);
            if (r && (*r != 0) == present) {
                return true;
            }
            std::this_thread::sleep_for(10ms);
        }
        return false;
    }

    static void stop(Child& c, int sig) {
        if (c.pid <= 0) {
            return; // never kill(0) or kill(-1)
        }
        ::kill(c.pid, sig);
        ::waitpid(c.pid, nullptr, 0);
        c.pid = 0;
    }

    // Request and reply, a stateful request, and an announcement to a
    // wildcard listener, from `sender` to the replier and `listener` far away.
    static void exerciseAcross(Ksock& sender, Ksock& listener) {
        ASSERT_TRUE(waitForReplier(sender, "$.Svc.Echo"));
        auto reply = sender.request("$.Svc.Echo", "hello", 10s);
        ASSERT_TRUE(reply) << describe(reply.error());
        EXPECT_FALSE(reply->isStatus()) << reply->name();
        EXPECT_EQ(reply->text(), "echo:hello");

        frontend::Message stateful = makeMessage("$.Svc.Echo", "again", FLAG_WANT_A_REPLY);
        stateful.header.to = reply->header.from;
        stateful.header.finalTo = reply->header.origFrom;
        auto id = sender.send(stateful);
        ASSERT_TRUE(id) << describe(id.error());
        auto second = sender.receive(10s);
        ASSERT_TRUE(second);
        EXPECT_EQ(second->header.inReplyTo, *id);
        EXPECT_EQ(second->text(), "echo:again");

        ASSERT_TRUE(sender.announce("$.News.Today", "sunny"));
        auto news = listener.receive(10s);
        ASSERT_TRUE(news);
        EXPECT_EQ(news->name(), "$.News.Today");
        EXPECT_EQ(news->text(), "sunny");
        EXPECT_FALSE(listener.receive(200ms)) << "exactly one copy";
    }

    std::string m_dir;
    std::deque<Child> m_daemons; // a deque: references to its elements stay valid
    std::deque<Child> m_children;
    int m_replierPipe = -1;
};

TEST_F(LimpetE2E, TwoBusesOfOneDaemonJoinedInOneProcess) {
    startDaemons(1);
    replier(0, 1, "$.Svc.*"); // a wildcard replier, before the Limpet starts
    limpetLocal(0, 0, 1, 0, 1, 2);
    Ksock listener = open(0, 1);
    ASSERT_TRUE(listener.listen("$.News.%"));
    Ksock sender = open(0, 0);
    exerciseAcross(sender, listener);
}

TEST_F(LimpetE2E, TwoDaemonsJoinedOverTlsOnLoopback) {
    startDaemons(2);
    const uint16_t port = freePort();
    limpetTls("listen", 1, 2, port, "limpet-b", "limpet-a");
    limpetTls("connect", 0, 1, port, "limpet-a", "limpet-b");
    replier(1, 0, "$.Svc.Echo");
    Ksock listener = open(1, 0);
    ASSERT_TRUE(listener.listen("$.News.*"));
    Ksock sender = open(0, 0);
    exerciseAcross(sender, listener);
}

TEST_F(LimpetE2E, AChainOfFourBusesOverEveryKindOfLink) {
    startDaemons(4);
    const uint16_t port = freePort();
    limpetLocal(0, 0, 1, 1, 0, 2);
    limpetTls("listen", 2, 4, port, "limpet-b", "limpet-a");
    limpetTls("connect", 1, 3, port, "limpet-a", "limpet-b");
    limpetPlain("listen", 3, 6, m_dir + "/link23");
    limpetPlain("connect", 2, 5, m_dir + "/link23");
    replier(3, 0, "$.Svc.Echo");
    Ksock listener = open(3, 0);
    ASSERT_TRUE(listener.listen("$.News.*"));
    Ksock middle = open(2, 0);
    ASSERT_TRUE(middle.listen("$.News.*"));
    Ksock sender = open(0, 0);
    exerciseAcross(sender, listener);
    auto seen = middle.receive(5s);
    ASSERT_TRUE(seen);
    EXPECT_EQ(seen->text(), "sunny");
    EXPECT_FALSE(middle.receive(200ms)) << "one copy on the middle bus too";
}

TEST_F(LimpetE2E, ALimpetKilledMidRequestLeavesExactlyOneStatus) {
    startDaemons(2);
    replier(1, 0, "$.Svc.Echo", 2);
    Child& near = limpetPlain("listen", 0, 1, m_dir + "/link");
    Child& far = limpetPlain("connect", 1, 2, m_dir + "/link");
    Ksock sender = open(0, 0);
    ASSERT_TRUE(waitForReplier(sender, "$.Svc.Echo"));

    ASSERT_TRUE(sender.send(requestFor("$.Svc.Echo")));
    ASSERT_TRUE(replierHolds());
    stop(far, SIGKILL); // the far Limpet: the link drops under the request
    auto status = sender.receive(5s);
    ASSERT_TRUE(status);
    EXPECT_TRUE(status->isStatus());
    EXPECT_EQ(status->name(), NAME_REPLIER_GONE_AWAY);
    EXPECT_TRUE(waitForReplier(sender, "$.Svc.Echo", false)) << "proxy withdrawn";

    Child& again = limpetPlain("connect", 1, 2, m_dir + "/link");
    ASSERT_TRUE(waitForReplier(sender, "$.Svc.Echo"));
    ASSERT_TRUE(sender.send(requestFor("$.Svc.Echo")));
    ASSERT_TRUE(replierHolds());
    stop(near, SIGKILL); // now the near one, which holds the request on our bus
    status = sender.receive(5s);
    ASSERT_TRUE(status);
    EXPECT_TRUE(status->isStatus());
    EXPECT_FALSE(sender.receive(500ms)) << "exactly one answer per request";
    (void)again;
}

TEST_F(LimpetE2E, AReplierKilledOnTheFarBusAnswersAcross) {
    startDaemons(2);
    Child& held = replier(1, 0, "$.Svc.Echo", 1);
    limpetPlain("listen", 0, 1, m_dir + "/link");
    limpetPlain("connect", 1, 2, m_dir + "/link");
    Ksock sender = open(0, 0);
    ASSERT_TRUE(waitForReplier(sender, "$.Svc.Echo"));
    const auto request = requestFor("$.Svc.Echo");
    ASSERT_TRUE(sender.send(request));
    ASSERT_TRUE(replierHolds());
    ASSERT_TRUE(sender.send(request)); // this one stays queued
    std::this_thread::sleep_for(200ms);
    stop(held, SIGKILL);
    std::multiset<std::string> names;
    for (int i = 0; i < 2; ++i) {
        auto status = sender.receive(5s);
        ASSERT_TRUE(status);
        EXPECT_TRUE(status->isStatus());
        names.emplace(status->name());
    }
    EXPECT_EQ(names, (std::multiset<std::string>{std::string(NAME_REPLIER_GONE_AWAY),
                                                 std::string(NAME_REPLIER_IGNORED)}));
    EXPECT_FALSE(sender.receive(300ms));
}

TEST_F(LimpetE2E, ASilentPeerIsDeclaredDeadAndTheLinkComesBack) {
    startDaemons(2);
    replier(1, 0, "$.Svc.Echo");
    limpetPlain("listen", 0, 1, m_dir + "/link");
    Child& far = limpetPlain("connect", 1, 2, m_dir + "/link");
    Ksock sender = open(0, 0);
    ASSERT_TRUE(waitForReplier(sender, "$.Svc.Echo"));
    ::kill(far.pid, SIGSTOP); // alive, but silent: only heartbeats can tell
    ASSERT_TRUE(sender.send(requestFor("$.Svc.Echo")));
    const auto start = std::chrono::steady_clock::now();
    auto status = sender.receive(5s);
    ASSERT_TRUE(status);
    EXPECT_EQ(status->name(), NAME_REPLIER_GONE_AWAY);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 3s) << "bounded by --dead-after-ms";
    ::kill(far.pid, SIGCONT);
    ASSERT_TRUE(waitForReplier(sender, "$.Svc.Echo"));
    auto reply = sender.request("$.Svc.Echo", "back", 10s);
    ASSERT_TRUE(reply) << describe(reply.error());
    EXPECT_EQ(reply->text(), "echo:back");
    EXPECT_FALSE(sender.receive(300ms)) << "nothing delivered twice";
}

TEST_F(LimpetE2E, APeerWithTheWrongCertificateIsRefused) {
    startDaemons(2);
    const uint16_t port = freePort();
    Child& listener = limpetTls("listen", 1, 2, port, "limpet-b", "limpet-a");
    replier(1, 0, "$.Svc.Echo");
    Child& impostor = limpetTls("connect", 0, 1, port, "impostor", "limpet-b");
    Ksock sender = open(0, 0);
    EXPECT_FALSE(waitForReplier(sender, "$.Svc.Echo", true, 1500ms));
    stop(impostor, SIGKILL);
    // A certificate from the right CA but for another name is refused too.
    Child& misnamed = limpetTls("connect", 0, 1, port, "limpet-b", "limpet-b");
    EXPECT_FALSE(waitForReplier(sender, "$.Svc.Echo", true, 1500ms));
    stop(misnamed, SIGKILL);
    EXPECT_EQ(::kill(listener.pid, 0), 0) << "the listener survives";
    limpetTls("connect", 0, 1, port, "limpet-a", "limpet-b");
    ASSERT_TRUE(waitForReplier(sender, "$.Svc.Echo"));
    auto reply = sender.request("$.Svc.Echo", "real", 10s);
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->text(), "echo:real");
}

TEST_F(LimpetE2E, ACycleOfLimpetsIsRefusedWithAClearError) {
    startDaemons(3);
    std::vector<pid_t> limpets{limpetLocal(0, 0, 1, 1, 0, 2).pid, limpetLocal(1, 0, 3, 2, 0, 4).pid,
                               limpetLocal(2, 0, 5, 0, 0, 6).pid};
    // The probe each Limpet sends when its link comes up goes round the
    // ring: every Limpet whose probe came back stops with the "cycle
    // detected" exit status (3): at least one, and never a storm.
    int refused = 0;
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
        for (pid_t pid : limpets) {
            int status = 0;
            if (pid > 0 && ::waitpid(pid, &status, WNOHANG) == pid) {
                EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 3) << status;
                if (++refused == 1) {
                    deadline = std::chrono::steady_clock::now() + 1s; // collect the others
                }
                for (auto& c : m_children) {
                    c.pid = c.pid == pid ? 0 : c.pid; // reaped already
                }
            }
        }
        std::this_thread::sleep_for(10ms);
    }
    ASSERT_GE(refused, 1) << "the cycle went unnoticed";
    // Every bus still carries its own traffic.
    replier(2, 0, "$.Svc.Echo");
    Ksock local = open(2, 0);
    auto reply = local.request("$.Svc.Echo", "x", 10s);
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->text(), "echo:x");
}

// A Limpet still running; one that ended is reaped here (and never killed later).
bool running(Child& c) {
    int status = 0;
    if (c.pid > 0 && ::waitpid(c.pid, &status, WNOHANG) == c.pid) {
        c.pid = 0;
    }
    return c.pid > 0;
}

// Issue 15, item 6: the bus keeps any sender's network id, and two
// announcements with one id used to make the Limpet declare a cycle and stop
// both ends. Now each forgery is dropped and the bridge carries on.
TEST_F(LimpetE2E, IdsForgedByABusClientDoNotStopTheBridge) {
    startDaemons(2);
    replier(1, 0, "$.Svc.Echo");
    Child& near = limpetPlain("listen", 0, 1, m_dir + "/link");
    Child& far = limpetPlain("connect", 1, 2, m_dir + "/link");
    Ksock listener = open(1, 0);
    ASSERT_TRUE(listener.listen("$.News.*"));
    Ksock sender = open(0, 0);
    ASSERT_TRUE(waitForReplier(sender, "$.Svc.Echo"));

    Ksock attacker = open(0, 0);
    auto forge = [&](std::string_view name, MsgId id, uint32_t flags = 0) {
        frontend::Message m = makeMessage(name, "forged", flags);
        m.header.id = id;
        return attacker.send(m);
    };
    ASSERT_TRUE(forge("$.News.Forged", {7, 1}));
    ASSERT_TRUE(forge("$.News.Forged", {7, 1}));
    ASSERT_TRUE(forge("$.News.Forged", {1, 5})); // the near Limpet's network id
    ASSERT_TRUE(forge("$.News.Forged", {2, 5})); // the far one's
    ASSERT_TRUE(forge(limpet::NAME_PROBE, {1, 0x80000001}, FLAG_SYNTHETIC));
    ASSERT_TRUE(forge(limpet::NAME_PROBE, {2, 0x80000001}, FLAG_SYNTHETIC));
    // Sent last, so its answer says the Limpet has read all of the above.
    const auto dup = forge("$.Svc.Echo", {7, 1}, FLAG_WANT_A_REPLY);
    ASSERT_TRUE(dup);
    auto status = attacker.receive(5s);
    ASSERT_TRUE(status) << "a forged request held by the Limpet is answered";
    EXPECT_EQ(status->header.inReplyTo, *dup);
    EXPECT_EQ(status->name(), limpet::remoteErrorName(Errc::INVALID));

    EXPECT_TRUE(running(near));
    EXPECT_TRUE(running(far));
    auto first = listener.receive(5s);
    ASSERT_TRUE(first);
    EXPECT_EQ(first->header.id, (MsgId{7, 1}));
    EXPECT_FALSE(listener.receive(300ms)) << "no other forgery crossed";
    exerciseAcross(sender, listener);
    EXPECT_TRUE(running(near));
    EXPECT_TRUE(running(far));
}

// Bytes a hostile far side could send; each must cost it the link.
std::vector<std::string> garbage() {
    auto bytesOf = [](const limpet::Frame& f) {
        auto b = limpet::encodeFrame(f);
        return std::string(reinterpret_cast<const char*>(b.data()), b.size());
    };
    const std::string hello = bytesOf(limpet::Hello{limpet::WIRE_VERSION, 9, 1000});
    Message msg = makeMessage("$.News.Today");
    msg.header.id = {9, 1};
    const std::string message = bytesOf(msg);
    std::string wrongVersion = hello;
    wrongVersion[9] = '\x07';
    return {
        std::string("\xff\xff\xff\xff", 4),                                 // a 4 GiB frame
        std::string("\0\0\0\x05\x63", 5) + "garb",                          // an unknown type
        message,                                                            // no HELLO first
        hello + message.substr(0, message.size() - 1) + "\x01\x02\x03\x04", // a bad length
        hello + hello,                                                      // HELLO twice
        wrongVersion,                                                       // an unknown version
    };
}

TEST_F(LimpetE2E, AFarSideSendingGarbageIsDroppedAndTheBusCarriesOn) {
    startDaemons(2);
    replier(0, 0, "$.Svc.Echo");
    const std::string link = m_dir + "/link";
    limpetPlain("listen", 0, 1, link);
    ASSERT_TRUE(waitForSocket(link));
    Ksock local = open(0, 0);
    for (const std::string& bytes : garbage()) {
        auto fd = socket::connectUnix(link);
        ASSERT_TRUE(fd);
        ASSERT_EQ(::write(fd->get(), bytes.data(), bytes.size()),
                  static_cast<ssize_t>(bytes.size()));
        // The Limpet closes the link: EOF (after its HELLO or GOODBYE).
        pollfd p{fd->get(), POLLIN, 0};
        char buf[512];
        ssize_t n = 1;
        while (n > 0 && ::poll(&p, 1, 5000) == 1) {
            n = ::read(fd->get(), buf, sizeof buf);
        }
        EXPECT_EQ(n, 0) << "still open after " << bytes.size() << " bad bytes";
        auto reply = local.request("$.Svc.Echo", "still here", 5s);
        ASSERT_TRUE(reply);
        EXPECT_EQ(reply->text(), "echo:still here");
    }
    // And a real peer is served afterwards.
    replier(1, 0, "$.Far");
    limpetPlain("connect", 1, 2, link);
    ASSERT_TRUE(waitForReplier(local, "$.Far"));
}

// How a Limpet process ended: its exit status and what it said on stderr.
struct Ended {
    int status = -1;
    std::string stderrText;
};

// Runs the Limpet with `args` and waits (at most 10 s) for it to end.
Ended runLimpet(const std::vector<std::string>& args) {
    int err[2];
    EXPECT_EQ(::pipe(err), 0);
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(err[1], STDERR_FILENO);
        std::vector<char*> argv{const_cast<char*>(LIMPET_PATH)};
        for (const auto& a : args) {
            argv.push_back(const_cast<char*>(a.c_str()));
        }
        argv.push_back(nullptr);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    ::close(err[1]);
    Ended out;
    char buf[1024];
    pollfd p{err[0], POLLIN, 0};
    ssize_t n = 1;
    while (n > 0 && ::poll(&p, 1, 10000) == 1) {
        n = ::read(err[0], buf, sizeof buf);
        out.stderrText.append(buf, static_cast<size_t>(std::max<ssize_t>(n, 0)));
    }
    ::close(err[0]);
    if (n != 0) {
        ::kill(pid, SIGKILL); // still running: a failure below
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    out.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return out;
}

// Issue 15, item 9: TCP without TLS, and TLS that takes any certificate the
// CA signed by accident, are refused before anything starts.
TEST_F(LimpetE2E, PlainTcpAndAMissingPeerNameAreRefusedAtStart) {
    const std::vector<std::string> common{"--socket", "/nonexistent", "--id", "1"};
    auto with = [&](std::vector<std::string> extra) {
        std::vector<std::string> args{"listen"};
        args.insert(args.end(), common.begin(), common.end());
        args.insert(args.end(), extra.begin(), extra.end());
        return runLimpet(args);
    };
    const std::vector<std::string> tlsFiles{
        "--cert", cert("limpet-a.crt"), "--key", cert("limpet-a.key"), "--ca", cert("ca.crt")};
    auto plainTcp = with({"--address", "tcp:127.0.0.1:1", "--plain"});
    EXPECT_EQ(plainTcp.status, 2);
    // The messages docs/limpet.md quotes, whole.
    EXPECT_NE(plainTcp.stderrText.find(
                  "xkbus-limpet: --plain is only for unix: addresses; a TCP link needs TLS\n"),
              std::string::npos)
        << plainTcp.stderrText;

    std::vector<std::string> noName{"--address", "tcp:127.0.0.1:1"};
    noName.insert(noName.end(), tlsFiles.begin(), tlsFiles.end());
    auto anonymous = with(noName);
    EXPECT_EQ(anonymous.status, 2);
    EXPECT_NE(anonymous.stderrText.find(
                  "xkbus-limpet: --peer-name is required: the name the peer's certificate must "
                  "carry (--any-peer accepts any certificate the CA signed)\n"),
              std::string::npos)
        << anonymous.stderrText;

    auto both = noName;
    both.insert(both.end(), {"--peer-name", "limpet-b", "--any-peer"});
    EXPECT_EQ(with(both).status, 2);
    auto plainNamed = with({"--address", "unix:/tmp/x", "--plain", "--peer-name", "limpet-b"});
    EXPECT_EQ(plainNamed.status, 2);
    EXPECT_NE(plainNamed.stderrText.find("need TLS"), std::string::npos) << plainNamed.stderrText;
}

TEST_F(LimpetE2E, AnyPeerTakesEveryCertificateOfTheCaAndNoOther) {
    startDaemons(2);
    const uint16_t port = freePort();
    std::vector<std::string> argv{LIMPET_PATH, "listen",
                                  "--socket",  trustedOf(1),
                                  "--id",      "2",
                                  "--address", tcpAddress(port),
                                  "--cert",    cert("limpet-b.crt"),
                                  "--key",     cert("limpet-b.key"),
                                  "--ca",      cert("ca.crt"),
                                  "--any-peer"};
    for (auto& t : timing()) {
        argv.push_back(t);
    }
    startProcess(argv);
    replier(1, 0, "$.Svc.Echo");
    Ksock sender = open(0, 0);
    Child& impostor = limpetTls("connect", 0, 1, port, "impostor", "limpet-b");
    EXPECT_FALSE(waitForReplier(sender, "$.Svc.Echo", true, 1500ms)) << "another CA's certificate";
    stop(impostor, SIGKILL);
    // A certificate the CA issued to another name: refused with --peer-name,
    // taken with --any-peer.
    limpetTls("connect", 0, 1, port, "limpet-b", "limpet-b");
    ASSERT_TRUE(waitForReplier(sender, "$.Svc.Echo"));
    auto reply = sender.request("$.Svc.Echo", "any", 10s);
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->text(), "echo:any");
}

// Issue 15, item 9: one TCP connection that never starts TLS held the
// listener's only place for --dead-after-ms. Now several wait at once, each
// for --handshake-ms at most, and a newcomer pushes out the oldest.
TEST_F(LimpetE2E, IdleUnauthenticatedConnectionsDoNotKeepTheRealPeerOut) {
    startDaemons(2);
    const uint16_t port = freePort();
    std::vector<std::string> argv{LIMPET_PATH,
                                  "listen",
                                  "--socket",
                                  trustedOf(1),
                                  "--id",
                                  "2",
                                  "--address",
                                  tcpAddress(port),
                                  "--cert",
                                  cert("limpet-b.crt"),
                                  "--key",
                                  cert("limpet-b.key"),
                                  "--ca",
                                  cert("ca.crt"),
                                  "--peer-name",
                                  "limpet-a",
                                  "--heartbeat-ms",
                                  "100",
                                  "--dead-after-ms",
                                  "20000",
                                  "--handshake-ms",
                                  "20000",
                                  "--max-pending",
                                  "4"};
    startProcess(argv);
    replier(1, 0, "$.Svc.Echo");
    Ksock sender = open(0, 0);
    std::vector<UniqueFd> idle;
    idle.push_back(connectTcpOnceUp(port));
    for (int i = 1; i < 6; ++i) { // more than --max-pending
        idle.push_back(connectTcp(port));
    }
    for (const auto& fd : idle) {
        ASSERT_TRUE(fd);
    }
    const auto start = std::chrono::steady_clock::now();
    limpetTls("connect", 0, 1, port, "limpet-a", "limpet-b");
    ASSERT_TRUE(waitForReplier(sender, "$.Svc.Echo", true, 10s));
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s)
        << "the idle connections held the door (they may stay 20 s)";
    auto reply = sender.request("$.Svc.Echo", "through", 10s);
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->text(), "echo:through");
    // Several waited side by side: the three newest idle ones still hold
    // their places (until --handshake-ms), and only the oldest three, pushed
    // out by the newcomers, were closed.
    for (size_t i = 0; i < idle.size(); ++i) {
        const bool pushedOut = i < 3;
        EXPECT_EQ(closedByPeer(idle[i].get()), pushedOut) << "idle connection " << i;
    }
}

TEST_F(LimpetE2E, AConnectionThatNeverSaysHelloIsClosedAfterTheHandshakeTime) {
    startDaemons(1);
    const uint16_t port = freePort();
    startProcess({LIMPET_PATH,
                  "listen",
                  "--socket",
                  trustedOf(0),
                  "--id",
                  "2",
                  "--address",
                  tcpAddress(port),
                  "--cert",
                  cert("limpet-b.crt"),
                  "--key",
                  cert("limpet-b.key"),
                  "--ca",
                  cert("ca.crt"),
                  "--peer-name",
                  "limpet-a",
                  "--dead-after-ms",
                  "20000",
                  "--handshake-ms",
                  "300"});
    UniqueFd idle = connectTcpOnceUp(port);
    ASSERT_TRUE(idle);
    const auto start = std::chrono::steady_clock::now();
    pollfd p{idle.get(), POLLIN, 0};
    char buf[256];
    ssize_t n = 1;
    while (n > 0 && ::poll(&p, 1, 10000) == 1) {
        n = ::read(idle.get(), buf, sizeof buf);
    }
    EXPECT_EQ(n, 0) << "closed by the Limpet";
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_GE(took, 250ms);
    EXPECT_LT(took, 3s) << "bounded by --handshake-ms, not --dead-after-ms";
}

// Issue 15, item 9: a peer that heartbeats but never reads made the Limpet
// stop draining its bus: its Ksock's queue filled, and every replier bind on
// the bus failed with EAGAIN (the bind event had nowhere to go) for as long
// as the peer stayed. Now the Limpet reads its bus throughout, shedding what
// the peer cannot take, and drops the peer after --stall-ms.
TEST_F(LimpetE2E, APeerThatNeverReadsIsDroppedAndTheBusKeepsDraining) {
    constexpr auto STALL = 6s; // long enough for the checks made while it lasts
    startDaemons(1);
    const std::string link = m_dir + "/link";
    std::vector<std::string> argv{LIMPET_PATH, "listen",     "--socket",  trustedOf(0),
                                  "--id",      "1",          "--address", "unix:" + link,
                                  "--plain",   "--stall-ms", "6000"};
    for (auto& t : timing()) {
        argv.push_back(t);
    }
    Child& limpet = startProcess(argv);
    ASSERT_TRUE(waitForSocket(link));
    Ksock probes = open(0, 0);
    ASSERT_TRUE(probes.listen(limpet::NAME_PROBE));

    // The fake peer: says HELLO, binds a replier, then only heartbeats, until
    // the Limpet hangs up.
    auto peer = socket::connectUnix(link);
    ASSERT_TRUE(peer);
    auto greeting = limpet::encodeFrame(limpet::Hello{limpet::WIRE_VERSION, 9, 100});
    const auto bind = limpet::encodeFrame(limpet::BindNotice{true, "$.Far.Svc"});
    greeting.insert(greeting.end(), bind.begin(), bind.end());
    ASSERT_EQ(::send(peer->get(), greeting.data(), greeting.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(greeting.size()));
    ASSERT_TRUE(probes.receive(5s)) << "the Limpet took the HELLO (its probe went out)";
    Ksock sender = open(0, 0);
    ASSERT_TRUE(waitForReplier(sender, "$.Far.Svc")) << "the peer's replier is proxied";
    std::atomic<int64_t> droppedAt{0};
    // A jthread: a failed assertion below leaves the test with it joined.
    std::jthread heartbeats([&](const std::stop_token& stop) {
        const auto beat = limpet::encodeFrame(limpet::Heartbeat{});
        const auto deadline = std::chrono::steady_clock::now() + 20s;
        while (!stop.stop_requested() && std::chrono::steady_clock::now() < deadline) {
            if (::send(peer->get(), beat.data(), beat.size(), MSG_NOSIGNAL) < 0) {
                droppedAt = std::chrono::steady_clock::now().time_since_epoch().count();
                return;
            }
            std::this_thread::sleep_for(50ms);
        }
    });

    // More than the Limpet may buffer for the peer (half of 8 MiB) and queue
    // on its Ksock (MAXMSGS 1000) together.
    const auto floodStart = std::chrono::steady_clock::now();
    const std::string data(8192, 'x');
    for (int i = 0; i < 1600; ++i) {
        ASSERT_TRUE(sender.announce("$.News.Flood", data)) << i;
    }
    const auto floodEnd = std::chrono::steady_clock::now();

    // While the peer still holds the link, the bus is served: a replier
    // bind finds room for its bind event on the Limpet's Ksock at once, and a
    // request to the peer's replier is answered at once.
    Ksock replierKsock = open(0, 0);
    auto bound = replierKsock.serve("$.Svc.Late");
    EXPECT_TRUE(bound) << "a replier bind failed while the peer stalled the link: "
                       << describe(bound.error());
    auto answer = sender.request("$.Far.Svc", "now", 5s);
    EXPECT_TRUE(answer) << "a request to the peer's replier failed: " << describe(answer.error());
    if (answer) {
        EXPECT_EQ(answer->name(), limpet::remoteErrorName(Errc::QUEUE_FULL));
    }
    EXPECT_EQ(droppedAt.load(), 0)
        << "the peer was dropped before the checks above; the flood took "
        << std::chrono::duration_cast<std::chrono::milliseconds>(floodEnd - floodStart).count()
        << " ms";

    heartbeats.join();
    ASSERT_NE(droppedAt.load(), 0) << "the peer that never reads was never dropped";
    const auto dropped =
        std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(droppedAt));
    EXPECT_LT(dropped - floodEnd, STALL + 3s) << "bounded by --stall-ms";
    EXPECT_TRUE(waitForReplier(sender, "$.Far.Svc", false)) << "its proxy is withdrawn";
    EXPECT_TRUE(running(limpet));

    // And a real peer is served afterwards.
    startDaemons(2); // daemon 1 too
    replier(1, 0, "$.Far");
    limpetPlain("connect", 1, 2, link);
    ASSERT_TRUE(waitForReplier(sender, "$.Far"));
}

// TcpExt ListenDrops: SYNs the kernel dropped at a listener (this network
// namespace; other tests may add to it, never take away).
uint64_t listenDrops() {
    std::ifstream in("/proc/net/netstat");
    std::string names;
    std::string values;
    while (std::getline(in, names) && std::getline(in, values)) {
        if (!names.starts_with("TcpExt:")) {
            continue;
        }
        std::istringstream n(names);
        std::istringstream v(values);
        std::string name;
        std::string value;
        while (n >> name && v >> value) {
            if (name == "ListenDrops") {
                return std::stoull(value);
            }
        }
    }
    return 0;
}

// A connect that the far host never answers used to block the connecting
// Limpet (and so its bus) for the kernel's SYN timeout, minutes long.
TEST_F(LimpetE2E, APeerHostThatDoesNotAnswerNeverKeepsTheConnectorFromItsBus) {
    startDaemons(1);
    // A listener whose accept queue is full: the kernel drops every new SYN,
    // and the connect waits as for a host that does not answer.
    UniqueFd hung(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ASSERT_EQ(::bind(hung.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(hung.get(), 0), 0);
    ASSERT_EQ(::getsockname(hung.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
    const uint16_t port = ntohs(a.sin_port);
    UniqueFd filler = connectTcp(port);
    ASSERT_TRUE(filler);
    const uint64_t dropsBefore = listenDrops();
    limpetTls("connect", 0, 1, port, "limpet-a", "limpet-b");
    // The Limpet is up (its Ksock is set up before it first connects) and
    // its connect met the full queue.
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (listenDrops() == dropsBefore && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(10ms);
    }
    ASSERT_GT(listenDrops(), dropsBefore) << "the Limpet never tried to connect";

    // More than its Ksock's queue holds (MAXMSGS 1000): only a Limpet that
    // reads its bus leaves room for a replier's bind event.
    Ksock sender = open(0, 0);
    for (int i = 0; i < 1100; ++i) {
        ASSERT_TRUE(sender.announce("$.News.Flood", "x")) << i;
    }
    Ksock replierKsock = open(0, 0);
    bool bound = false;
    const auto bindBy = std::chrono::steady_clock::now() + 3s;
    while (!bound && std::chrono::steady_clock::now() < bindBy) {
        bound = static_cast<bool>(replierKsock.serve("$.Svc.Late"));
        if (!bound) {
            std::this_thread::sleep_for(20ms);
        }
    }
    EXPECT_TRUE(bound) << "the connecting Limpet stopped reading its bus";
}

// The near daemon of a pair restarts under a Limpet started with
// --reconnect: it says so, the far side drops the repliers of the dead bus,
// and once the daemon is back both ways work again with the proxies bound.
TEST_F(LimpetE2E, WithReconnectALimpetRejoinsItsRestartedDaemonOverANetLink) {
    startDaemons(2);
    replier(1, 0, "$.Svc.Echo");
    replier(0, 0, "$.Svc.Old");
    const std::string log = m_dir + "/near.err";
    limpetPlain("listen", 0, 1, m_dir + "/link", {"--reconnect"}, log);
    limpetPlain("connect", 1, 2, m_dir + "/link");
    Ksock far = open(1, 0);
    ASSERT_TRUE(waitForReplier(far, "$.Svc.Old"));
    {
        Ksock near = open(0, 0);
        ASSERT_TRUE(waitForReplier(near, "$.Svc.Echo"));
    }

    killDaemon(0);
    ASSERT_TRUE(waitForText(log, "lost the daemon at " + trustedOf(0) + "; reconnecting"))
        << textOf(log);
    EXPECT_TRUE(waitForReplier(far, "$.Svc.Old", false)) << "the dead bus's replier withdrawn";
    restartDaemon(0);
    ASSERT_TRUE(waitForText(log, "reconnected to " + trustedOf(0))) << textOf(log);

    Ksock sender = open(0, 0);
    ASSERT_TRUE(waitForReplier(sender, "$.Svc.Echo")) << "the proxy is bound again";
    auto reply = sender.request("$.Svc.Echo", "back", 10s);
    ASSERT_TRUE(reply) << describe(reply.error());
    EXPECT_EQ(reply->text(), "echo:back");

    replier(0, 0, "$.Svc.Near");
    ASSERT_TRUE(waitForReplier(far, "$.Svc.Near")) << "announced to the far side";
    auto across = far.request("$.Svc.Near", "over", 10s);
    ASSERT_TRUE(across) << describe(across.error());
    EXPECT_EQ(across->text(), "echo:over");

    Ksock listener = open(1, 0);
    ASSERT_TRUE(listener.listen("$.News.*"));
    std::this_thread::sleep_for(100ms); // the far Limpet hears only what it sees bound
    ASSERT_TRUE(sender.announce("$.News.Today", "sunny"));
    auto news = listener.receive(10s);
    ASSERT_TRUE(news) << describe(news.error());
    EXPECT_EQ(news->text(), "sunny");
}

TEST_F(LimpetE2E, WithReconnectALocalLimpetRejoinsItsRestartedDaemon) {
    startDaemons(2);
    replier(1, 0, "$.Svc.Echo");
    const std::string log = m_dir + "/local.err";
    startProcess({LIMPET_PATH, "local", "--x-socket", trustedOf(0), "--x-id", "1", "--y-socket",
                  trustedOf(1), "--y-id", "2", "--reconnect"},
                 log);
    {
        Ksock near = open(0, 0);
        ASSERT_TRUE(waitForReplier(near, "$.Svc.Echo"));
    }
    killDaemon(0);
    ASSERT_TRUE(waitForText(log, "lost the daemon at " + trustedOf(0) + "; reconnecting"))
        << textOf(log);
    restartDaemon(0);
    ASSERT_TRUE(waitForText(log, "reconnected after")) << textOf(log);
    Ksock sender = open(0, 0);
    ASSERT_TRUE(waitForReplier(sender, "$.Svc.Echo")) << "the proxy is bound again";
    auto reply = sender.request("$.Svc.Echo", "back", 10s);
    ASSERT_TRUE(reply) << describe(reply.error());
    EXPECT_EQ(reply->text(), "echo:back");
}

TEST_F(LimpetE2E, WithoutReconnectALimpetWhoseDaemonDiesExitsWithStatusOne) {
    startDaemons(2);
    const std::string log = m_dir + "/near.err";
    Child& near = limpetPlain("listen", 0, 1, m_dir + "/link", {}, log);
    limpetPlain("connect", 1, 2, m_dir + "/link");
    replier(0, 0, "$.Svc.Old");
    Ksock far = open(1, 0);
    ASSERT_TRUE(waitForReplier(far, "$.Svc.Old"));
    killDaemon(0);
    EXPECT_EQ(exitStatus(near), 1);
    EXPECT_NE(
        textOf(log).find("lost the daemon at " + trustedOf(0) + " (--reconnect waits for it)"),
        std::string::npos)
        << textOf(log);
}

} // namespace
} // namespace xkbus::testing
