// `./run demo`: the local-mode bus in action. Starts xkbusd on a private
// socket, forks a replier and two wildcard listeners (separate processes that
// use the client library), and tells what happens: announcements, a request
// and its reply, an urgent message, and a replier killed with SIGKILL while
// one request is read but unanswered and another is still queued.
#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fmt/core.h>
#include <map>
#include <poll.h>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>
#include <xkbus/frontend/message_text.hpp>
#include <xkbus/frontend/open.hpp>
#include <xkbus/socket/socket_link.hpp>

namespace {

using xkbus::frontend::describe;
using xkbus::frontend::idText;
using xkbus::frontend::KsockChannel;
using xkbus::frontend::Message;
using xkbus::frontend::textMessage;

// A child process of the story. It reports what it sees on `report`, and
// obeys one-letter orders on `orders`: p(ause reading), r(esume), h(old: read
// one more request, then neither answer it nor read on).
struct Actor {
    std::string role;
    pid_t pid = 0;
    int orders = -1;
};

void say(int report, const std::string& role, const std::string& text) {
    const std::string line = role + "|" + text + "\n";
    (void)!::write(report, line.data(), line.size());
}

int actorMain(const std::string& role, const std::vector<std::pair<std::string, bool>>& binds,
              int orders, int report) {
    auto k = xkbus::frontend::openDefaultKsock(0, true);
    if (!k) {
        say(report, role, "could not reach xkbusd");
        return 1;
    }
    for (const auto& [name, replier] : binds) {
        (void)(*k)->bind(name, replier);
    }
    say(report, role, "ready");
    bool paused = false;
    bool hold = false;
    for (;;) {
        pollfd fds[2] = {{orders, POLLIN, 0},
                         {(*k)->fd(), static_cast<short>(paused ? 0 : POLLIN), 0}};
        if (::poll(fds, 2, -1) < 0) {
            continue;
        }
        if ((fds[0].revents & POLLIN) != 0) {
            char order = 0;
            if (::read(orders, &order, 1) != 1 || order == 'q') {
                return 0; // the story is over
            }
            paused = order == 'p';
            hold = hold || order == 'h';
            say(report, role, "ok");
            continue;
        }
        auto m = (*k)->nextMessage();
        if (!m || !*m) {
            continue;
        }
        say(report, role, "got " + describe(**m));
        if (!(*m)->wantsYouToReply()) {
            continue;
        }
        if (hold) {
            say(report, role, "read " + idText((*m)->header.id) + " and will never answer it");
            paused = true;
            continue;
        }
        Message answer = textMessage((*m)->name(), "40%");
        answer.header.inReplyTo = (*m)->header.id;
        answer.header.to = (*m)->header.from;
        (void)(*k)->send(answer);
    }
}

class Story {
public:
    Story() {
        int fds[2];
        if (::pipe(fds) != 0) {
            std::exit(1);
        }
        m_reports = fds[0];
        m_reportWrite = fds[1];
    }

    Actor spawn(const std::string& role, std::vector<std::pair<std::string, bool>> binds) {
        int orders[2];
        if (::pipe(orders) != 0) {
            std::exit(1);
        }
        std::fflush(stdout); // or the child would inherit unwritten output
        const pid_t pid = ::fork();
        if (pid == 0) {
            ::close(orders[1]);
            ::_exit(actorMain(role, binds, orders[0], m_reportWrite));
        }
        ::close(orders[0]);
        Actor a{role, pid, orders[1]};
        expect(1);
        return a;
    }

    void order(const Actor& a, char what) {
        (void)!::write(a.orders, &what, 1);
        expect(1);
    }

    // Prints the next `count` reports from the actors (5 s at most).
    void expect(int count) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (count > 0 && std::chrono::steady_clock::now() < deadline) {
            const auto nl = m_pending.find('\n');
            if (nl != std::string::npos) {
                const std::string line = m_pending.substr(0, nl);
                m_pending.erase(0, nl + 1);
                const auto bar = line.find('|');
                const std::string text = line.substr(bar + 1);
                if (text != "ok" && text != "ready") {
                    fmt::print("    {:<10} {}\n", line.substr(0, bar), text);
                }
                --count;
                continue;
            }
            pollfd p{m_reports, POLLIN, 0};
            if (::poll(&p, 1, 100) == 1) {
                char buf[4096];
                const ssize_t n = ::read(m_reports, buf, sizeof buf);
                if (n > 0) {
                    m_pending.append(buf, static_cast<size_t>(n));
                }
            }
        }
        if (count > 0) {
            fmt::print("    (the story is missing {} event(s))\n", count);
            m_complete = false;
        }
    }

    bool complete() const { return m_complete; }

private:
    int m_reports;
    int m_reportWrite;
    std::string m_pending;
    bool m_complete = true;
};

std::optional<Message> waitFor(KsockChannel& k) {
    for (int i = 0; i < 50; ++i) {
        if (auto m = k.nextMessage(); m && *m) {
            return **m;
        }
        pollfd p{k.fd(), POLLIN, 0};
        (void)::poll(&p, 1, 100);
    }
    return std::nullopt;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"xkbus demo: the local-mode bus in action"};
    std::string daemonPath = XKBUSD_PATH;
    app.add_option("--daemon", daemonPath, "the xkbusd binary");
    CLI11_PARSE(app, argc, argv);

    const auto dir =
        std::filesystem::temp_directory_path() / ("xkbus-demo-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const std::string socketPath = (dir / "xkbusd.sock").string();
    ::setenv("XKBUS_SOCKET", socketPath.c_str(), 1);

    fmt::print("xkbus demo: one daemon, three client processes, one bus.\n\n");
    std::fflush(stdout);
    const pid_t daemon = ::fork();
    if (daemon == 0) {
        ::execl(daemonPath.c_str(), "xkbusd", "--socket", socketPath.c_str(), "--log-level", "warn",
                static_cast<char*>(nullptr));
        ::_exit(127);
    }
    for (int i = 0; i < 500 && !xkbus::socket::connectUnix(socketPath); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    fmt::print("1. xkbusd (pid {}) listens on {}.\n", daemon, socketPath);

    Story story;
    Actor replier = story.spawn("replier", {{"$.Sensors.*", true}});
    Actor kitchen = story.spawn("kitchen", {{"$.Sensors.Kitchen.%", false}});
    Actor everything = story.spawn("all", {{"$.*", false}});
    fmt::print("   The replier serves $.Sensors.*; 'kitchen' listens to $.Sensors.Kitchen.%;\n"
               "   'all' listens to $.*.\n\n");

    auto sender = xkbus::frontend::openDefaultKsock(0, true).value();
    fmt::print("2. Announcements reach every matching listener, in order:\n");
    (void)sender->send(textMessage("$.Sensors.Kitchen.Temperature", "21.5C"));
    (void)sender->send(textMessage("$.Lights.Hall", "on"));
    story.expect(3);

    fmt::print(
        "\n3. A request goes to the one replier (and to listeners); the reply comes back:\n");
    auto request =
        sender->send(textMessage("$.Sensors.Kitchen.Humidity", "", xkbus::FLAG_WANT_A_REPLY));
    story.expect(3);
    auto answer = waitFor(*sender);
    fmt::print("    {:<10} got {}\n", "sender", answer ? describe(*answer) : "nothing!");
    story.expect(2); // both listeners hear the reply too: its name matches their wildcards

    fmt::print("\n4. An urgent message jumps the queue ('all' reads after both are queued):\n");
    story.order(everything, 'p');
    (void)sender->send(textMessage("$.Lights.Porch", "dim"));
    (void)sender->send(textMessage("$.Alarm.Smoke", "kitchen", xkbus::FLAG_URGENT));
    story.order(everything, 'r');
    story.expect(2);

    fmt::print("\n5. The replier reads one request and never answers; a second stays queued.\n"
               "   Then it is killed with SIGKILL:\n");
    story.order(replier, 'h');
    auto ignored = sender->send(textMessage("$.Sensors.Hall", "", xkbus::FLAG_WANT_A_REPLY));
    story.expect(3); // the replier reads it; 'all' hears it
    auto goneAway = sender->send(textMessage("$.Sensors.Attic", "", xkbus::FLAG_WANT_A_REPLY));
    story.expect(1); // 'all' hears it; the replier does not read it
    ::kill(replier.pid, SIGKILL);
    ::waitpid(replier.pid, nullptr, 0);
    fmt::print("    {:<10} killed (pid {})\n", "replier", replier.pid);
    std::map<std::string, xkbus::MsgId> statuses; // status name -> the request it answers
    for (int i = 0; i < 2; ++i) {
        auto status = waitFor(*sender);
        fmt::print("    {:<10} got {}\n", "sender", status ? describe(*status) : "nothing!");
        if (status) {
            statuses[std::string(status->name())] = status->header.inReplyTo;
        }
    }

    for (const Actor& a : {kitchen, everything}) {
        const char quit = 'q';
        (void)!::write(a.orders, &quit, 1);
        ::waitpid(a.pid, nullptr, 0);
    }
    sender.reset();
    ::kill(daemon, SIGTERM);
    int status = 0;
    ::waitpid(daemon, &status, 0);
    std::filesystem::remove_all(dir);

    const bool guaranteed = answer && ignored && goneAway && statuses.size() == 2 &&
                            statuses[std::string(xkbus::NAME_REPLIER_IGNORED)] == *ignored &&
                            statuses[std::string(xkbus::NAME_REPLIER_GONE_AWAY)] == *goneAway;
    fmt::print("\nThe story: the humidity request {} got its reply \"40%\". Request {} was read "
               "but never\nanswered, so when the replier died the bus answered "
               "$.KBUS.Replier.Ignored; request {}\nwas still queued, so it answered "
               "$.KBUS.Replier.GoneAway. Every request got exactly one\nanswer, even from a "
               "process killed with SIGKILL. xkbusd stopped cleanly (exit {}).\n",
               request ? idText(*request) : "?", ignored ? idText(*ignored) : "?",
               goneAway ? idText(*goneAway) : "?", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    const bool ok = guaranteed && story.complete() && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok) {
        fmt::print("\nDEMO FAILED: the story above did not go as it should.\n");
    }
    return ok ? 0 : 1;
}
