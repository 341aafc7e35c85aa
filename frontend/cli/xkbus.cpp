// xkbus: the command-line client, in the spirit of KBUS's kmsg and of
// busctl. Listens, monitors, sends, calls and replies on a bus, and shows
// its buses, bindings and statistics, for a person or (--json) a program.
// This file reads the command line; commands.hpp does the work.
#include "commands.hpp"
#include "exit_codes.hpp"
#include "run_command.hpp"

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <fmt/core.h>
#include <map>

namespace {

using namespace xkbus::cli;

const char* const FOOTER =
    R"(Data (send, call, reply --data): the argument itself, `-` for standard input,
or `@FILE` for a file's contents; --input-format hex|base64 decodes it.

Exit status: 0 success; 1 the daemon or the bus refused (the message says why);
2 timed out; 3 the bus answered a request for a replier that went away
($.KBUS.Replier.*); 4 the replier answered with an error (reply --exec failed);
64 bad command line; 69 no daemon could be reached.

Environment: XKBUS_SOCKET is the daemon's socket (default /run/xkbus/xkbusd.sock).
See xkbus(1).)";

struct Args {
    Options options;
    std::vector<std::string> names;
    std::string name;
    std::string data;
    std::string command;
    std::string socket;
    double execTimeout = -1;
    bool urgent = false;
    bool allBuses = false;
    bool noBindEvents = false;
    std::string domain;
    uint32_t slots = 1;
};

void addGlobals(CLI::App& app, Args& a) {
    const std::map<std::string, DataFormat> out{{"auto", DataFormat::AUTO},
                                                {"text", DataFormat::TEXT},
                                                {"hex", DataFormat::HEX},
                                                {"base64", DataFormat::BASE64}};
    const std::map<std::string, Encoding> in{
        {"text", Encoding::TEXT}, {"hex", Encoding::HEX}, {"base64", Encoding::BASE64}};
    auto* g = app.add_option_group("Global options (before or after the command)");
    g->add_option("-b,--bus", a.options.buses, "bus number (default 0; monitor takes several)");
    g->add_flag("--json", a.options.output.json, "one JSON object per line");
    g->add_flag("--raw", a.options.output.raw, "write only the data, as is");
    g->add_option("--data-format", a.options.output.dataFormat,
                  "show data as auto (text if printable, else hex), text, hex or base64")
        ->transform(CLI::CheckedTransformer(out, CLI::ignore_case).description(""))
        ->type_name("auto|text|hex|base64");
    g->add_option("--input-format", a.options.inputEncoding,
                  "data given as text (default), hex or base64")
        ->transform(CLI::CheckedTransformer(in, CLI::ignore_case).description(""))
        ->type_name("text|hex|base64");
    g->add_option("--socket", a.socket, "the daemon's socket (default: $XKBUS_SOCKET)");
    g->add_flag("--reconnect", a.options.reconnect,
                "listen, monitor, reply: when the daemon goes away, wait for it to come "
                "back and bind again");
}

CLI::App* command(CLI::App& app, const std::string& name, const std::string& help) {
    auto* sub = app.add_subcommand(name, help);
    sub->fallthrough(); // so global options may come after the command too
    return sub;
}

void addLimits(CLI::App* sub, Args& a, const std::string& what) {
    sub->add_option("--count", a.options.count, "stop after this many " + what);
    sub->add_option("--timeout", a.options.timeout, "give up after this many seconds");
}

int run(const std::string& which, Args& a) {
    const Options& o = a.options;
    if (which == "listen") {
        return listen(o, a.names);
    }
    if (which == "monitor") {
        return monitor(o, a.names, a.allBuses, !a.noBindEvents);
    }
    if (which == "send") {
        return send(o, a.name, a.data, a.urgent);
    }
    if (which == "call") {
        return call(o, a.name, a.data);
    }
    if (which == "reply") {
        return reply(o, a.name, a.data, a.command, a.execTimeout);
    }
    if (which == "bindings") {
        return bindings(o);
    }
    if (which == "stats") {
        return stats(o);
    }
    if (which == "buses") {
        return buses(o);
    }
    if (which == "wait") {
        return waitForDaemon(o, a.name);
    }
    if (which == "new-bus") {
        return newBus(o);
    }
    return xenProvision(o, a.domain, a.slots);
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"xkbus: talk to an xkbus message bus (KBUS semantics)"};
    app.set_version_flag("--version", std::string("xkbus ") + XKBUS_VERSION);
    app.footer(FOOTER);
    app.require_subcommand(0, 1);
    Args a;
    addGlobals(app, a);

    auto* listenCmd = command(app, "listen", "print messages whose names match NAMES (wildcards)");
    listenCmd->add_option("names", a.names, "names to listen to ($.Sensors.*, $.a.%)")->required();
    addLimits(listenCmd, a, "messages");

    auto* monitorCmd = command(app, "monitor",
                               "print everything on one or several buses: messages, replies, "
                               "replier bind events");
    monitorCmd->add_option("names", a.names, "names to watch (default $.*)");
    monitorCmd->add_flag("--all-buses", a.allBuses, "every bus the daemon has");
    monitorCmd->add_flag("--no-bind-events", a.noBindEvents,
                         "do not turn on replier bind events (a bus-wide switch)");
    addLimits(monitorCmd, a, "messages");

    auto* sendCmd = command(app, "send", "send an announcement");
    sendCmd->add_option("name", a.name)->required();
    sendCmd->add_option("data", a.data, "the data: TEXT, - (stdin) or @FILE");
    sendCmd->add_flag("--urgent", a.urgent, "put it at the head of every queue");

    auto* callCmd = command(app, "call", "send a request and print its reply");
    callCmd->add_option("name", a.name)->required();
    callCmd->add_option("data", a.data, "the data: TEXT, - (stdin) or @FILE");
    callCmd->add_option("--timeout", a.options.timeout, "give up after this many seconds");

    auto* replyCmd = command(app, "reply", "serve requests as the replier for NAME");
    replyCmd->add_option("name", a.name)->required();
    auto* dataOpt = replyCmd->add_option("--data", a.data, "reply with this: TEXT, - or @FILE");
    replyCmd
        ->add_option("--exec", a.command,
                     "reply with what this shell command prints; it reads the request's data "
                     "on stdin; a non-zero exit becomes an error reply")
        ->excludes(dataOpt);
    replyCmd->add_option("--exec-timeout", a.execTimeout, "kill the command after this many s");
    replyCmd->add_option("--count", a.options.count, "stop after this many requests");

    command(app, "bindings", "list the bus's bindings, with each Ksock's program and user");
    command(app, "stats", "show the bus's statistics, with each Ksock's program and user");
    command(app, "buses", "list the daemon's buses");
    auto* waitCmd =
        command(app, "wait", "wait until the daemon accepts clients (and a replier serves a name)");
    waitCmd->add_option("--timeout", a.options.timeout, "give up after this many seconds");
    waitCmd->add_option("--replier", a.name, "also wait until a request NAME would be answered");
    command(app, "new-bus", "add a bus (NEWDEVICE)");

    auto* provisionCmd =
        command(app, "xen-provision",
                "dom0: give a Xen domain device slots on a bus (as xl attaches devices)");
    provisionCmd->add_option("domain", a.domain, "the guest: its domid or its name")->required();
    provisionCmd->add_option("--slots", a.slots, "how many slots (one per guest process)");

    xkbus::cli::RunCommand runCommand;
    xkbus::cli::addRunCommand(app, runCommand);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? EXIT_OK : EXIT_USAGE;
    }
    const auto chosen = app.get_subcommands();
    if (chosen.empty()) {
        fmt::print("{}", app.help());
        return EXIT_OK;
    }
    const std::string which = chosen.front()->get_name();
    if (a.options.buses.size() > 1 && which != "monitor") {
        fmt::print(stderr, "xkbus: only monitor takes several --bus\n");
        return EXIT_USAGE;
    }
    if (!a.socket.empty()) {
        ::setenv("XKBUS_SOCKET", a.socket.c_str(), 1);
    }
    if (*runCommand.command) {
        return xkbus::cli::runProgram(runCommand);
    }
    return run(which, a);
}
