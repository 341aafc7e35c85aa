// Request/reply round trip across a Limpet pair joined by TLS on 127.0.0.1,
// next to the same round trip on one bus, measured in the same run:
//   sender ─ xkbusd 0 ─ replier                         (one bus)
//   sender ─ xkbusd 0 ─ Limpet ═TLS═ Limpet ─ xkbusd 1 ─ replier   (across)
// Writes limpet.json to --results-dir.
#include "../common/machine.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <arpa/inet.h>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>
#include <xkbus/frontend/open.hpp>
#include <xkbus/ksock.hpp>
#include <xkbus/socket/socket_link.hpp>

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::vector<pid_t> g_children;

void killChildren() {
    // Newest first: the Limpets and repliers go before their daemons.
    for (auto it = g_children.rbegin(); it != g_children.rend(); ++it) {
        if (const pid_t pid = *it; pid > 0) { // never kill(0) or kill(-1)
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    }
    g_children.clear();
}

pid_t start(const std::vector<std::string>& argv) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        std::vector<char*> args;
        for (const auto& a : argv) {
            args.push_back(const_cast<char*>(a.c_str()));
        }
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    g_children.push_back(pid);
    return pid;
}

bool waitForSocket(const std::string& path) {
    for (int i = 0; i < 2000; ++i) {
        if (xkbus::socket::connectUnix(path)) {
            return true;
        }
        std::this_thread::sleep_for(5ms);
    }
    return false;
}

xkbus::Ksock openOn(const std::string& socketPath) {
    auto connection = xkbus::frontend::connectLocal(socketPath);
    if (!connection) {
        std::fprintf(stderr, "cannot reach %s\n", socketPath.c_str());
        std::exit(1);
    }
    return xkbus::Ksock(std::move((*connection)->openKsock(0, true).value()));
}

// A replier process that echoes every request.
void startReplier(const std::string& socketPath, const std::string& name) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        xkbus::Ksock k = openOn(socketPath);
        if (!k.serve(name)) {
            ::_exit(1);
        }
        for (;;) {
            auto m = k.receive(-1ms);
            if (!m) {
                ::_exit(2);
            }
            if (m->wantsYouToReply()) {
                (void)k.reply(*m, m->text());
            }
        }
    }
    g_children.push_back(pid);
}

uint16_t freePort() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    (void)::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    (void)::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

void makeCertificates(const std::string& dir) {
    const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes ";
    const std::string cmd =
        "cd " + dir + " && openssl req -x509 " + ec + "-days 1 -subj /CN=bench-ca -keyout ca.key " +
        "-out ca.crt && for n in a b; do openssl req " + ec + "-subj /CN=$n -keyout $n.key " +
        "-out $n.csr && openssl x509 -req -days 1 -in $n.csr -CA ca.crt -CAkey ca.key " +
        "-CAcreateserial -out $n.crt; done";
    if (std::system((cmd + " >/dev/null 2>&1").c_str()) != 0) {
        std::fprintf(stderr, "openssl failed\n");
        std::exit(1);
    }
}

struct Figures {
    double p50 = 0;
    double p99 = 0;
};

Figures roundTrips(xkbus::Ksock& sender, const std::string& name, size_t size, int count) {
    const std::string payload(size, 'x');
    std::vector<double> us;
    for (int i = 0; i < count + count / 10; ++i) {
        const auto t0 = Clock::now();
        auto reply = sender.request(name, payload, 10s);
        const auto t1 = Clock::now();
        if (!reply || reply->isStatus() || reply->data().size() != size) {
            std::fprintf(stderr, "round trip %d on %s failed\n", i, name.c_str());
            killChildren();
            std::exit(1);
        }
        if (i >= count / 10) { // the first tenth warms up
            us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
        }
    }
    std::sort(us.begin(), us.end());
    return {us[us.size() / 2], us[us.size() * 99 / 100]};
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"Request/reply across a Limpet pair (TLS, loopback) vs one bus"};
    std::string resultsDir = "bench/results";
    int count = 2000;
    app.add_option("--results-dir", resultsDir, "where limpet.json goes");
    app.add_option("--count", count, "round trips per size")->check(CLI::Range(10, 10000000));
    CLI11_PARSE(app, argc, argv);
    std::signal(SIGPIPE, SIG_IGN);
    ::alarm(600); // a hung run must not hang CI

    char tmp[] = "/tmp/xkbus-bench-limpet-XXXXXX";
    const std::string dir = ::mkdtemp(tmp);
    makeCertificates(dir);
    for (int d = 0; d < 2; ++d) {
        const std::string s = dir + "/d" + std::to_string(d);
        start(
            {XKBUSD_PATH, "--socket", s, "--trusted-socket", s + ".limpet", "--log-level", "warn"});
        if (!waitForSocket(s) || !waitForSocket(s + ".limpet")) {
            killChildren();
            return 1;
        }
    }
    const std::string port = std::to_string(freePort());
    auto limpet = [&](const std::string& mode, int d, const std::string& me,
                      const std::string& peer) {
        start({LIMPET_PATH, mode, "--socket", dir + "/d" + std::to_string(d) + ".limpet", "--id",
               std::to_string(d + 1), "--address", "tcp:127.0.0.1:" + port, "--cert",
               dir + "/" + me + ".crt", "--key", dir + "/" + me + ".key", "--ca", dir + "/ca.crt",
               "--peer-name", peer});
    };
    limpet("listen", 1, "b", "a");
    limpet("connect", 0, "a", "b");
    startReplier(dir + "/d0", "$.Bench.Here");
    startReplier(dir + "/d1", "$.Bench.Far");

    xkbus::Ksock sender = openOn(dir + "/d0");
    for (int i = 0; i < 1000 && sender.channel().findReplier("$.Bench.Far").value_or(0) == 0; ++i) {
        std::this_thread::sleep_for(10ms);
    }
    nlohmann::json rows = nlohmann::json::array();
    std::printf("%-8s %14s %14s %14s %14s %8s\n", "size", "one bus p50", "p99", "Limpet p50", "p99",
                "ratio");
    for (size_t size : {size_t{64}, size_t{4096}, size_t{65536}}) {
        const Figures here = roundTrips(sender, "$.Bench.Here", size, count);
        const Figures far = roundTrips(sender, "$.Bench.Far", size, count);
        std::printf("%-8zu %12.1fus %12.1fus %12.1fus %12.1fus %7.1fx\n", size, here.p50, here.p99,
                    far.p50, far.p99, far.p50 / here.p50);
        rows.push_back({{"size", size},
                        {"one_bus", {{"p50_us", here.p50}, {"p99_us", here.p99}}},
                        {"across_limpet_tls", {{"p50_us", far.p50}, {"p99_us", far.p99}}},
                        {"ratio_p50", far.p50 / here.p50}});
    }
    killChildren();
    std::filesystem::remove_all(dir);
    nlohmann::json out = {{"machine", xkbus::bench::describeMachine()},
                          {"round_trips_per_size", count},
                          {"request_reply", rows}};
    std::filesystem::create_directories(resultsDir);
    std::ofstream(std::filesystem::path(resultsDir) / "limpet.json") << out.dump(2) << '\n';
    return 0;
}
