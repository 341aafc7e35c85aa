// listen, monitor, send, call, reply, wait and new-bus: the commands that
// open Ksocks and move messages, over the C++ API (<xkbus/ksock.hpp>).
#include "commands.hpp"
#include "exec_command.hpp"
#include "exit_codes.hpp"
#include "watch.hpp"

#include <chrono>
#include <fmt/core.h>
#include <nlohmann/json.hpp>
#include <thread>
#include <xkbus/frontend/open.hpp>

namespace xkbus::cli {

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr std::string_view BIND_EVENT_NAME = "$.KBUS.ReplierBindEvent";
// Deep enough that a burst (or the bind events of a bus full of repliers)
// does not make other clients' sends fail for want of room in ours.
constexpr uint64_t WATCH_QUEUE_DEPTH = 1000;
// request() needs a deadline; "none" is a year.
constexpr std::chrono::milliseconds FOREVER = std::chrono::hours(24 * 365);

// The data an argument names, or the exit code after saying why not.
Result<std::string> dataOrSay(const std::string& spec, Encoding encoding) {
    auto data = loadData(spec, encoding);
    if (!data) {
        const char* why =
            data.error() == Errc::INVALID ? "is not valid for --input-format" : "cannot be read";
        fmt::print(stderr, "xkbus: the data {} {}\n", spec.starts_with('@') ? spec : "given", why);
    }
    return data;
}

// A failure to open is explained; a failure to set up (bind, serve) was
// already told by the setup, which knows the name.
int failToStart(uint32_t bus, Errc e) {
    const bool opening = e == Errc::NO_DAEMON || e == Errc::ACCESS_DENIED ||
                         e == Errc::NOT_A_SOCKET || e == Errc::NAME_TOO_LONG ||
                         e == Errc::NO_SUCH_DEVICE || e == Errc::DISCONNECTED ||
                         e == Errc::PERMISSION_DENIED; // the daemon's policy keeps the bus from us
    return opening ? failToOpen(bus, e) : EXIT_FAILED;
}

// Runs `handle` on every message until --count messages, --timeout, or an
// error. The exit code: 0, or 2 if the timeout passed before any message.
int pump(Watch& watch, const Options& o, const std::function<Result<void>(Delivery&)>& handle) {
    const auto deadline = Clock::now() + o.timeoutMs();
    for (int seen = 0; o.count <= 0 || seen < o.count; ++seen) {
        auto left = o.timeout < 0 ? -1ms
                                  : std::max(0ms, std::chrono::ceil<std::chrono::milliseconds>(
                                                      deadline - Clock::now()));
        auto d = watch.next(left);
        if (!d) {
            if (d.error() == Errc::TIMED_OUT) {
                return seen > 0 ? EXIT_OK : EXIT_TIMED_OUT;
            }
            if (isConnectionLost(d.error())) {
                fmt::print(stderr,
                           "xkbus: lost the daemon at {} ({}); --reconnect waits for it to come "
                           "back\n",
                           frontend::defaultSocketPath(), describe(d.error()));
                return EXIT_UNREACHABLE;
            }
            return failWith("receive", d.error());
        }
        if (auto ok = handle(*d); !ok) {
            return failWith("handle", ok.error());
        }
    }
    return EXIT_OK;
}

Result<void> bindAll(Ksock& k, const std::vector<std::string>& names) {
    for (const auto& name : names) {
        if (auto ok = k.listen(name); !ok) {
            fmt::print(stderr, "xkbus: listen to {}: {}\n", name, describe(ok.error()));
            return ok;
        }
    }
    return {};
}

WatchOptions watchOptions(const Options& o) {
    WatchOptions w;
    w.reconnect = o.reconnect;
    return w;
}

std::string failureText(const std::string& command, const CommandOutcome& r) {
    std::string why = r.timedOut        ? "ran out of time and was killed"
                      : r.tooMuchOutput ? "wrote more than a message can carry and was killed"
                      : r.status > 128  ? fmt::format("was killed by signal {}", r.status - 128)
                                        : fmt::format("exited with status {}", r.status);
    std::string text = fmt::format("xkbus reply --exec: `{}` {}", command, why);
    return r.errorTail.empty() ? text : text + ": " + r.errorTail;
}

// The answer to one request: --data, or what --exec's command printed, or
// an error reply if the command failed.
Result<MsgId> answer(Ksock& k, const Message& request, const std::string& data,
                     const std::string& command, const CommandLimits& limits) {
    if (command.empty()) {
        return k.reply(request, data);
    }
    auto ran = runCommand(command, view(request).data, limits);
    if (!ran) {
        return k.send(errorReply(request, "xkbus reply --exec: cannot start the command"));
    }
    if (!ran->succeeded()) {
        const std::string why = failureText(command, *ran);
        fmt::print(stderr, "{}\n", why);
        return k.send(errorReply(request, why));
    }
    return k.reply(request, ran->output);
}

} // namespace

int listen(const Options& o, const std::vector<std::string>& names) {
    Watch watch(
        {o.bus()}, [&](Ksock& k, uint32_t) { return bindAll(k, names); }, watchOptions(o));
    uint32_t bus = 0;
    if (auto started = watch.start(bus); !started) {
        return failToStart(bus, started.error());
    }
    return pump(watch, o, [&](Delivery& d) {
        printMessage(view(d.message), d.bus, o.output);
        return Result<void>();
    });
}

// Every Ksock listens to `names` (`$.*` catches everything, KBUS's own
// messages included) and, with bindEvents, turns on replier bind events for
// its bus. That switch is bus-wide and stays on after we leave, as it does
// for a Limpet: turning it off could break one.
int monitor(const Options& o, std::vector<std::string> names, bool allBuses, bool bindEvents) {
    if (names.empty()) {
        names.push_back("$.*");
    }
    std::vector<uint32_t> watched = o.buses.empty() ? std::vector<uint32_t>{0} : o.buses;
    if (allBuses) {
        watched.clear();
        for (uint32_t bus = 0;; ++bus) {
            auto k = Ksock::open(bus, false);
            if (!k) {
                if (k.error() != Errc::NO_SUCH_DEVICE || bus == 0) {
                    return failToStart(bus, k.error());
                }
                break;
            }
            watched.push_back(bus);
        }
    }
    Options shown = o;
    shown.output.showBus = watched.size() > 1;
    const Setup setup = [&](Ksock& k, uint32_t) -> Result<void> {
        (void)k.control(protocol::Control::MAX_MESSAGES, WATCH_QUEUE_DEPTH);
        // One copy of each message, however many of our bindings match it.
        (void)k.control(protocol::Control::ONLY_ONCE, 1);
        if (auto ok = bindAll(k, names); !ok) {
            return ok;
        }
        if (bindEvents) {
            if (auto ok = k.listen(BIND_EVENT_NAME); !ok) {
                return fail(ok.error());
            }
            // QUEUE_FULL: reporting is on, but not every existing replier fitted.
            auto on = k.control(protocol::Control::REPORT_REPLIER_BINDS, 1);
            if (!on && on.error() == Errc::PERMISSION_DENIED) {
                // The daemon's policy keeps bus-wide settings from this user:
                // the messages are still worth watching.
                fmt::print(stderr, "xkbus: monitor: not allowed to turn on replier bind "
                                   "reports; bind events show only if someone else did\n");
            } else if (!on && on.error() != Errc::QUEUE_FULL) {
                return fail(on.error());
            }
        }
        return {};
    };
    Watch watch(watched, setup, watchOptions(o));
    uint32_t failed = 0;
    if (auto started = watch.start(failed); !started) {
        return failToStart(failed, started.error());
    }
    return pump(watch, shown, [&](Delivery& d) {
        printMessage(view(d.message), d.bus, shown.output);
        return Result<void>();
    });
}

int send(const Options& o, const std::string& name, const std::string& dataSpec, bool urgent) {
    auto data = dataOrSay(dataSpec, o.inputEncoding);
    if (!data) {
        return EXIT_USAGE;
    }
    auto k = Ksock::open(o.bus());
    if (!k) {
        return failToOpen(o.bus(), k.error());
    }
    auto id = k->announce(name, *data, urgent ? FLAG_URGENT : 0);
    if (!id) {
        return failWith("send " + name, id.error());
    }
    printResult(o.output, "sent " + idText(*id), nlohmann::json({{"id", idText(*id)}}).dump());
    return EXIT_OK;
}

int call(const Options& o, const std::string& name, const std::string& dataSpec) {
    auto data = dataOrSay(dataSpec, o.inputEncoding);
    if (!data) {
        return EXIT_USAGE;
    }
    auto k = Ksock::open(o.bus());
    if (!k) {
        return failToOpen(o.bus(), k.error());
    }
    auto answered = k->request(name, *data, o.timeout < 0 ? FOREVER : o.timeoutMs());
    if (!answered) {
        if (answered.error() == Errc::TIMED_OUT) {
            fmt::print(stderr, "xkbus: no reply to {} within {} s\n", name, o.timeout);
            return EXIT_TIMED_OUT;
        }
        return failWith("request " + name, answered.error());
    }
    const MessageView m = view(*answered);
    if (m.isReplierError()) {
        fmt::print(stderr, "xkbus: the replier failed: {}\n", m.data);
    } else if (m.isStatus()) {
        fmt::print(stderr, "xkbus: no reply: the bus answered {} for the replier\n", m.name);
    }
    if (!(o.output.raw && m.isReplierError())) {
        printMessage(m, o.bus(), o.output);
    }
    return m.isReplierError() ? EXIT_REPLIER_ERROR : m.isStatus() ? EXIT_STATUS : EXIT_OK;
}

int reply(const Options& o, const std::string& name, const std::string& dataSpec,
          const std::string& command, double commandTimeout) {
    auto data = dataOrSay(dataSpec, o.inputEncoding);
    if (!data) {
        return EXIT_USAGE;
    }
    CommandLimits limits;
    limits.timeout = std::chrono::milliseconds(
        commandTimeout < 0 ? -1 : static_cast<int64_t>(commandTimeout * 1000));
    const Setup setup = [&](Ksock& k, uint32_t) -> Result<void> {
        if (auto ok = k.serve(name); !ok) {
            fmt::print(stderr, "xkbus: serve {}: {}\n", name, describe(ok.error()));
            return ok;
        }
        auto max = k.channel().control(protocol::Control::MAX_MESSAGE_SIZE, 0);
        limits.maxOutput = max ? static_cast<size_t>(*max) : 0;
        return {};
    };
    Watch watch({o.bus()}, setup, watchOptions(o));
    uint32_t bus = 0;
    if (auto started = watch.start(bus); !started) {
        return failToStart(bus, started.error());
    }
    return pump(watch, o, [&](Delivery& d) -> Result<void> {
        const MessageView m = view(d.message);
        if ((m.flags & FLAG_WANT_YOU_TO_REPLY) == 0) {
            return {};
        }
        printMessage(m, d.bus, o.output);
        if (auto sent = answer(watch.ksock(d.bus), d.message, *data, command, limits); !sent) {
            // The asker may have gone; the next request still deserves an answer.
            fmt::print(stderr, "xkbus: reply to {}: {}\n", idText(m.id), describe(sent.error()));
        }
        return {};
    });
}

// Until a Ksock opens (a script has just started xkbusd), and if `replier`
// is given, until a request of that name would reach a replier (a script
// has just started one in the background).
int waitForDaemon(const Options& o, const std::string& replier) {
    const auto deadline = Clock::now() + (o.timeout < 0 ? 10s : o.timeoutMs());
    auto pause = 10ms;
    const auto again = [&] {
        if (Clock::now() + pause > deadline) {
            return false;
        }
        std::this_thread::sleep_for(pause);
        pause = std::min(pause * 2, std::chrono::milliseconds(200));
        return true;
    };
    auto k = Ksock::open(o.bus());
    while (!k) {
        if (k.error() != Errc::NO_DAEMON || !again()) {
            const int code = failToOpen(o.bus(), k.error());
            return k.error() == Errc::NO_DAEMON ? EXIT_TIMED_OUT : code;
        }
        k = Ksock::open(o.bus());
    }
    while (!replier.empty()) {
        auto found = k->channel().findReplier(replier);
        if (!found) {
            return failWith("find the replier of " + replier, found.error());
        }
        if (*found != 0) {
            break;
        }
        if (!again()) {
            fmt::print(stderr, "xkbus: nobody serves {} yet\n", replier);
            return EXIT_TIMED_OUT;
        }
    }
    return EXIT_OK;
}

int newBus(const Options& o) {
    auto k = Ksock::open(o.bus());
    if (!k) {
        return failToOpen(o.bus(), k.error());
    }
    auto index = k->channel().newBus();
    if (!index) {
        return failWith("new-bus", index.error());
    }
    printResult(o.output, fmt::format("new bus {}", *index),
                nlohmann::json({{"bus", *index}}).dump());
    return EXIT_OK;
}

} // namespace xkbus::cli
