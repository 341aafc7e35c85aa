// kmsg (tests/install/kmsg.c), a program in the style of KBUS's utility,
// built on <libkbus/kbus.h> and the shared libkbus.so.1 only, against a real
// daemon: call gets what reply answers, listen prints what send sends, and
// each failure is reported with strerror(errno) as libkbus left errno.
#include "daemon_fixture.hpp"

#include <cstring>
#include <fcntl.h>
#include <string>
#include <vector>

namespace xkbus::testing {
namespace {

struct Child {
    pid_t pid = -1;
    int out = -1; // its stdout
    int err = -1; // its stderr
};

Child start(std::vector<std::string> args) {
    args.insert(args.begin(), KMSG_PATH);
    int out[2];
    int err[2];
    EXPECT_EQ(::pipe2(out, O_CLOEXEC), 0);
    EXPECT_EQ(::pipe2(err, O_CLOEXEC), 0);
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(out[1], 1);
        ::dup2(err[1], 2);
        std::vector<char*> argv;
        for (auto& a : args) {
            argv.push_back(a.data());
        }
        argv.push_back(nullptr);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    ::close(out[1]);
    ::close(err[1]);
    return Child{pid, out[0], err[0]};
}

// Everything fd gives until it ends or `until` appears (waiting at most 10 s).
std::string readFrom(int fd, const std::string& until = {}) {
    std::string text;
    char buf[512];
    while (until.empty() || text.find(until) == std::string::npos) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 10000) != 1) {
            break;
        }
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) {
            break;
        }
        text.append(buf, static_cast<size_t>(n));
    }
    return text;
}

int reapChild(pid_t pid) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

struct Finished {
    int status;
    std::string out;
    std::string err;
};

Finished finish(Child& r) {
    Finished f{0, readFrom(r.out), readFrom(r.err)};
    f.status = reapChild(r.pid);
    ::close(r.out);
    ::close(r.err);
    return f;
}

Finished runToEnd(std::vector<std::string> args) {
    Child r = start(std::move(args));
    return finish(r);
}

class KmsgTest : public DaemonTest {};

TEST_F(KmsgTest, CallGetsWhatReplyAnswers) {
    Child replier = start({"-n", "2", "reply", "$.Kmsg.Time", "noon"});
    ASSERT_NE(readFrom(replier.out, "serving\n").find("serving"), std::string::npos);
    const Finished first = runToEnd({"call", "$.Kmsg.Time", "now?"});
    EXPECT_EQ(first.status, 0) << first.err;
    EXPECT_NE(first.out.find("<Reply '$.Kmsg.Time'"), std::string::npos) << first.out;
    EXPECT_NE(first.out.find("data=noon"), std::string::npos) << first.out;
    const Finished second = runToEnd({"call", "$.Kmsg.Time"});
    EXPECT_EQ(second.status, 0) << second.err;
    EXPECT_EQ(finish(replier).status, 0) << "the replier served two and stopped";
}

TEST_F(KmsgTest, ListenPrintsWhatSendSends) {
    Child listener = start({"-n", "2", "listen", "$.Kmsg.*"});
    ASSERT_NE(readFrom(listener.out, "listening\n").find("listening"), std::string::npos);
    EXPECT_EQ(runToEnd({"send", "$.Kmsg.One", "first"}).status, 0);
    EXPECT_EQ(runToEnd({"send", "$.Kmsg.Two"}).status, 0);
    const Finished heard = finish(listener);
    EXPECT_EQ(heard.status, 0) << heard.err;
    const size_t one = heard.out.find("<Announcement '$.Kmsg.One'");
    const size_t two = heard.out.find("<Announcement '$.Kmsg.Two'");
    EXPECT_NE(one, std::string::npos) << heard.out;
    EXPECT_NE(two, std::string::npos) << heard.out;
    EXPECT_LT(one, two);
    EXPECT_NE(heard.out.find("data=first"), std::string::npos) << heard.out;
}

// KBUS programs print strerror(errno): each failure names KBUS's errno.
TEST_F(KmsgTest, FailuresAreReportedWithStrerrorOfErrno) {
    const std::string longName = "$." + std::string(1000, 'x');
    const struct {
        std::vector<std::string> args;
        std::string message;
    } cases[] = {
        {{"call", "$.Kmsg.Nobody"}, "kmsg: send: " + std::string(std::strerror(EADDRNOTAVAIL))},
        {{"listen", "Bad"}, "kmsg: bind: " + std::string(std::strerror(EBADMSG))},
        {{"listen", longName}, "kmsg: bind: " + std::string(std::strerror(ENAMETOOLONG))},
        {{"send", "$.Kmsg.*"}, "kmsg: send: " + std::string(std::strerror(EBADMSG))},
        {{"-b", "9", "send", "$.Kmsg.X"}, "kmsg: open: " + std::string(std::strerror(ENOENT))},
    };
    for (const auto& c : cases) {
        const Finished f = runToEnd(c.args);
        EXPECT_EQ(f.status, 1) << c.message;
        EXPECT_EQ(f.err, c.message + "\n");
    }
}

} // namespace
} // namespace xkbus::testing
