// xkbus: the command-line client, in the spirit of KBUS's kmsg. Listens,
// sends, calls and replies on a bus, and shows its bindings and statistics,
// for a person or (--json) for a program.
#include "run_command.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fmt/core.h>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <string>
#include <vector>
#include <xkbus/frontend/message_text.hpp>
#include <xkbus/frontend/open.hpp>
#include <xkbus/xenstore/backend_device.hpp>
#include <xkbus/xenstore/xs_store.hpp>

namespace {

using xkbus::MsgId;
using xkbus::frontend::KsockChannel;
using xkbus::frontend::Message;
using namespace xkbus::frontend;

struct Common {
    uint32_t bus = 0;
    bool json = false;
};

// A status's JSON has the request it answers; data is included when printable.
void printMessage(const Message& m, bool json) {
    if (!json) {
        fmt::print("{}\n", describe(m));
        std::fflush(stdout);
        return;
    }
    const std::string data = dataText(m);
    nlohmann::json j = {{"kind", kindOf(m)},          {"name", std::string(m.name())},
                        {"id", idText(m.header.id)},  {"from", m.header.from},
                        {"to", m.header.to},          {"flags", m.header.flags},
                        {"data_len", m.data().size()}};
    if (m.isReply()) {
        j["in_reply_to"] = idText(m.header.inReplyTo);
    }
    if (std::all_of(data.begin(), data.end(),
                    [](unsigned char c) { return c >= 0x20 && c <= 0x7E; })) {
        j["data"] = data;
    }
    fmt::print("{}\n", j.dump());
    std::fflush(stdout);
}

int failWith(const std::string& what, xkbus::Errc e) {
    fmt::print(stderr, "xkbus: {}: {} (errno {})\n", what, xkbus::describe(e), xkbus::toErrno(e));
    return 1;
}

// Waits for the next message, at most timeoutMs (< 0: forever).
xkbus::Result<std::optional<Message>> receive(KsockChannel& k, int timeoutMs) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
    for (;;) {
        auto m = k.nextMessage();
        if (!m || *m) {
            return m;
        }
        int wait = -1;
        if (timeoutMs >= 0) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                return std::optional<Message>();
            }
            wait = static_cast<int>(left.count());
        }
        pollfd p{k.fd(), POLLIN, 0};
        (void)::poll(&p, 1, wait);
    }
}

xkbus::Result<std::unique_ptr<KsockChannel>> openKsock(const Common& c) {
    return xkbus::frontend::openDefaultKsock(c.bus, true);
}

int listen(const Common& c, const std::vector<std::string>& names, int count, double timeout) {
    auto k = openKsock(c);
    if (!k) {
        return failWith("cannot reach xkbusd at " + xkbus::frontend::defaultSocketPath(),
                        k.error());
    }
    for (const auto& name : names) {
        if (auto ok = (*k)->bind(name, false); !ok) {
            return failWith("bind " + name, ok.error());
        }
    }
    const int timeoutMs = timeout < 0 ? -1 : static_cast<int>(timeout * 1000);
    for (int seen = 0; count <= 0 || seen < count; ++seen) {
        auto m = receive(**k, timeoutMs);
        if (!m) {
            return failWith("receive", m.error());
        }
        if (!*m) {
            return seen > 0 ? 0 : 2; // timed out
        }
        printMessage(**m, c.json);
    }
    return 0;
}

int send(const Common& c, const std::string& name, const std::string& data, bool urgent) {
    auto k = openKsock(c);
    if (!k) {
        return failWith("cannot reach xkbusd", k.error());
    }
    auto id = (*k)->send(textMessage(name, data, urgent ? xkbus::FLAG_URGENT : 0));
    if (!id) {
        return failWith("send " + name, id.error());
    }
    if (c.json) {
        fmt::print("{}\n", nlohmann::json({{"id", idText(*id)}}).dump());
    } else {
        fmt::print("sent {}\n", idText(*id));
    }
    return 0;
}

int call(const Common& c, const std::string& name, const std::string& data, double timeout) {
    auto k = openKsock(c);
    if (!k) {
        return failWith("cannot reach xkbusd", k.error());
    }
    auto id = (*k)->send(textMessage(name, data, xkbus::FLAG_WANT_A_REPLY));
    if (!id) {
        return failWith("request " + name, id.error());
    }
    const int timeoutMs = timeout < 0 ? -1 : static_cast<int>(timeout * 1000);
    for (;;) {
        auto m = receive(**k, timeoutMs);
        if (!m) {
            return failWith("receive", m.error());
        }
        if (!*m) {
            fmt::print(stderr, "xkbus: no reply within {} s\n", timeout);
            return 2;
        }
        if ((*m)->header.inReplyTo == *id) {
            printMessage(**m, c.json);
            // A status (GoneAway, Ignored...) is an answer, but not a success.
            return ((*m)->header.flags & xkbus::FLAG_SYNTHETIC) != 0 ? 3 : 0;
        }
    }
}

std::string runCommand(const std::string& command, const std::string& input) {
    // The request's data goes to the command's stdin through a temporary file,
    // so a command that ignores its input cannot deadlock us.
    char path[] = "/tmp/xkbus-reply-XXXXXX";
    const int fd = ::mkstemp(path);
    if (fd < 0) {
        return {};
    }
    (void)!::write(fd, input.data(), input.size());
    ::close(fd);
    std::string output;
    if (FILE* p = ::popen((command + " < " + path).c_str(), "r")) {
        char buf[4096];
        size_t n = 0;
        while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) {
            output.append(buf, n);
        }
        ::pclose(p);
    }
    ::unlink(path);
    return output;
}

int reply(const Common& c, const std::string& name, const std::string& data,
          const std::string& command, int count) {
    auto k = openKsock(c);
    if (!k) {
        return failWith("cannot reach xkbusd", k.error());
    }
    if (auto ok = (*k)->bind(name, true); !ok) {
        return failWith("bind " + name + " as replier", ok.error());
    }
    for (int served = 0; count <= 0 || served < count;) {
        auto m = receive(**k, -1);
        if (!m) {
            return failWith("receive", m.error());
        }
        if (!*m || !(*m)->wantsYouToReply()) {
            continue;
        }
        printMessage(**m, c.json);
        const std::string answer = command.empty() ? data : runCommand(command, dataText(**m));
        Message r = textMessage((*m)->name(), answer, 0);
        r.header.inReplyTo = (*m)->header.id;
        r.header.to = (*m)->header.from;
        if (auto sent = (*k)->send(r); !sent) {
            fmt::print(stderr, "xkbus: reply to {}: {}\n", idText((*m)->header.id),
                       xkbus::describe(sent.error()));
        }
        ++served;
    }
    return 0;
}

int introspect(const Common& c, xkbus::protocol::Introspect what) {
    auto connection = xkbus::frontend::connectDefault();
    if (!connection) {
        return failWith("cannot reach xkbusd", connection.error());
    }
    auto text = (*connection)->introspect(c.bus, what);
    if (!text) {
        return failWith("introspect", text.error());
    }
    const auto j = nlohmann::json::parse(*text, nullptr, false);
    if (j.is_discarded()) {
        return failWith("the daemon's answer is not JSON", xkbus::Errc::PROTOCOL_VIOLATION);
    }
    if (c.json) {
        fmt::print("{}\n", j.dump());
        return 0;
    }
    if (what == xkbus::protocol::Introspect::BINDINGS) {
        fmt::print("# bus {}: <Ksock> <owner> <R|L> <name>\n", c.bus);
        for (const auto& b : j) {
            fmt::print("{:8} {:8}  {}  {}\n", b["ksock"].get<uint32_t>(),
                       b["owner"].get<uint32_t>(), b["replier"].get<bool>() ? 'R' : 'L',
                       b["name"].get<std::string>());
        }
        return 0;
    }
    fmt::print("bus {}: next ksock {} next msg {} unsent unbindings {}{}\n", j["bus"].get<int>(),
               j["next_ksock_id"].get<uint32_t>(), j["next_serial"].get<uint32_t>(),
               j["unsent_unbind_events"].get<uint32_t>(),
               j["unbind_events_lost"].get<bool>() ? " (gone tragic)" : "");
    for (const auto& k : j["ksocks"]) {
        fmt::print("  ksock {} (owner {}) last msg {} queue {} of {}, awaiting {} replies, owes "
                   "{}{}\n",
                   k["id"].get<uint32_t>(), k["owner"].get<uint32_t>(),
                   k["last_sent"].get<std::string>(), k["queued"].get<uint32_t>(),
                   k["max_messages"].get<uint32_t>(), k["awaiting_replies"].get<uint32_t>(),
                   k["unreplied_to"].get<uint32_t>(), k["sending"].get<bool>() ? ", sending" : "");
    }
    return 0;
}

// Refuses to connect anything: the CLI only writes slots; xkbusd --xen maps
// the guests that claim them.
class NoConnector final : public xkbus::xenstore::Connector {
public:
    xkbus::Result<void> connect(xkbus::xenstore::DeviceId, uint32_t,
                                const xkbus::xenstore::DeviceParams&) override {
        return xkbus::fail(xkbus::Errc::NOT_SUPPORTED);
    }
    void disconnect(xkbus::xenstore::DeviceId) override {}
};

// What `xl` does to attach a PV device: the backend and frontend nodes of
// device slots for a domain, with their permissions, in state InitWait.
int xenProvision(uint32_t domid, uint32_t bus, uint32_t slots, bool json) {
    auto store = xkbus::xenstore::openXsStore();
    if (!store) {
        return failWith("cannot open xenstore", store.error());
    }
    NoConnector none;
    xkbus::xenstore::BackendDevices backend(**store, none, {});
    if (auto ok = backend.provision(static_cast<xkbus::xenstore::DomId>(domid),
                                    xkbus::xenstore::SlotPlan{bus, slots});
        !ok) {
        return failWith("provision domain " + std::to_string(domid), ok.error());
    }
    if (json) {
        fmt::print("{}\n",
                   nlohmann::json({{"domid", domid}, {"bus", bus}, {"slots", slots}}).dump());
    } else {
        fmt::print("domain {}: {} xkbus slot(s) on bus {}\n", domid, slots, bus);
    }
    return 0;
}

int newBus(const Common& c) {
    auto k = openKsock(c);
    if (!k) {
        return failWith("cannot reach xkbusd", k.error());
    }
    auto index = (*k)->newBus();
    if (!index) {
        return failWith("new-bus", index.error());
    }
    if (c.json) {
        fmt::print("{}\n", nlohmann::json({{"bus", *index}}).dump());
    } else {
        fmt::print("new bus {}\n", *index);
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"xkbus: talk to an xkbus bus (XKBUS_SOCKET names the daemon's socket)"};
    app.require_subcommand(1);
    Common common;
    auto addCommon = [&](CLI::App* sub) {
        sub->add_option("--bus", common.bus, "bus number (default 0)");
        sub->add_flag("--json", common.json, "one JSON object per line");
    };
    std::vector<std::string> names;
    std::string name;
    std::string data;
    std::string command;
    int count = 0;
    double timeout = -1;
    bool urgent = false;

    auto* listenCmd = app.add_subcommand("listen", "print messages matching NAMEs (wildcards ok)");
    listenCmd->add_option("names", names, "names to listen to")->required();
    listenCmd->add_option("--count", count, "stop after this many messages");
    listenCmd->add_option("--timeout", timeout, "give up after this many seconds");
    addCommon(listenCmd);

    auto* sendCmd = app.add_subcommand("send", "send an announcement");
    sendCmd->add_option("name", name)->required();
    sendCmd->add_option("data", data);
    sendCmd->add_flag("--urgent", urgent, "put it at the head of every queue");
    addCommon(sendCmd);

    auto* callCmd = app.add_subcommand("call", "send a request and print its reply");
    callCmd->add_option("name", name)->required();
    callCmd->add_option("data", data);
    callCmd->add_option("--timeout", timeout, "give up after this many seconds");
    addCommon(callCmd);

    auto* replyCmd = app.add_subcommand("reply", "serve requests as the replier for NAME");
    replyCmd->add_option("name", name)->required();
    auto* dataOpt = replyCmd->add_option("--data", data, "reply with this");
    replyCmd->add_option("--exec", command, "reply with this shell command's output")
        ->excludes(dataOpt);
    replyCmd->add_option("--count", count, "stop after serving this many requests");
    addCommon(replyCmd);

    auto* bindingsCmd = app.add_subcommand("bindings", "list the bus's bindings");
    addCommon(bindingsCmd);
    auto* statsCmd = app.add_subcommand("stats", "show the bus's statistics");
    addCommon(statsCmd);
    auto* newBusCmd = app.add_subcommand("new-bus", "add a bus (NEWDEVICE)");
    addCommon(newBusCmd);

    uint32_t domid = 0;
    uint32_t slots = 1;
    auto* provisionCmd = app.add_subcommand(
        "xen-provision", "dom0: give a Xen domain device slots on a bus (as xl attaches devices)");
    provisionCmd->add_option("domid", domid, "the guest domain")->required();
    provisionCmd->add_option("--slots", slots, "how many slots (one per guest process)");
    addCommon(provisionCmd);

    xkbus::cli::RunCommand run;
    xkbus::cli::addRunCommand(app, run);

    CLI11_PARSE(app, argc, argv);
    if (*run.command) {
        return xkbus::cli::runProgram(run);
    }
    if (*listenCmd) {
        return listen(common, names, count, timeout);
    }
    if (*sendCmd) {
        return send(common, name, data, urgent);
    }
    if (*callCmd) {
        return call(common, name, data, timeout);
    }
    if (*replyCmd) {
        return reply(common, name, data, command, count);
    }
    if (*bindingsCmd) {
        return introspect(common, xkbus::protocol::Introspect::BINDINGS);
    }
    if (*statsCmd) {
        return introspect(common, xkbus::protocol::Introspect::STATS);
    }
    if (*provisionCmd) {
        return xenProvision(domid, common.bus, slots, common.json);
    }
    return newBus(common);
}
