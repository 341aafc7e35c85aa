// bindings, stats and buses: what /proc/kbus/bindings and /proc/kbus/stats
// showed, from the daemon's INTROSPECT JSON, with each Ksock's program and
// user added.
#include "commands.hpp"
#include "exit_codes.hpp"
#include "peers.hpp"

#include <fmt/core.h>
#include <nlohmann/json.hpp>
#include <xkbus/frontend/open.hpp>

namespace xkbus::cli {

namespace {

using protocol::Introspect;
using Json = nlohmann::json;

// The daemon's answer for `bus`, parsed; an Errc if there is none.
Result<Json> ask(frontend::Connection& c, uint32_t bus, Introspect what) {
    auto text = c.introspect(bus, what);
    if (!text) {
        return fail(text.error());
    }
    Json j = Json::parse(*text, nullptr, false);
    if (j.is_discarded()) {
        return fail(Errc::PROTOCOL_VIOLATION);
    }
    return j;
}

// Adds "process" and "user" where the daemon said "domid" and "pid".
void addHolder(Json& entry) {
    const Holder h = describeHolder(entry.value("domid", 0u), entry.value("pid", 0u));
    entry["process"] = h.process;
    entry["user"] = h.user;
}

Result<std::shared_ptr<frontend::Connection>> connect() {
    return frontend::connectDefault();
}

void printBindings(uint32_t bus, const Json& j) {
    fmt::print("# bus {}\n{:>6} {:1} {:>7} {:<16} {:<10} {}\n", bus, "KSOCK", "", "PID", "PROCESS",
               "USER", "NAME");
    for (const auto& b : j) {
        fmt::print("{:>6} {:1} {:>7} {:<16} {:<10} {}\n", b["ksock"].get<uint32_t>(),
                   b["replier"].get<bool>() ? 'R' : 'L', b.value("pid", 0u),
                   b["process"].get<std::string>(), b["user"].get<std::string>(),
                   b["name"].get<std::string>());
    }
}

// Each tenant's usage against its limits (a tenant without the policy's
// `introspect = all` is sent only its own row).
void printTenants(const Json& j) {
    if (!j.contains("tenants")) {
        return; // an older daemon
    }
    constexpr const char* COLUMNS[] = {"connections",  "ksocks",        "bindings",
                                       "index_nodes",  "name_bytes",    "queued_messages",
                                       "queued_bytes", "pending_sends", "buses_created"};
    for (const auto& t : j["tenants"]) {
        fmt::print("tenant {} (charge group {:#x}):", t["tenant"].get<std::string>(),
                   t["group"].get<uint32_t>());
        for (const char* column : COLUMNS) {
            fmt::print(" {} {}/{}", column, t[column]["used"].get<uint64_t>(),
                       t[column]["limit"].get<uint64_t>());
        }
        fmt::print("\n");
    }
}

void printStats(const Json& j) {
    fmt::print("bus {}: next ksock {} next msg {} unsent unbindings {}{}\n", j["bus"].get<int>(),
               j["next_ksock_id"].get<uint32_t>(), j["next_serial"].get<uint32_t>(),
               j["unsent_unbind_events"].get<uint32_t>(),
               j["unbind_events_lost"].get<bool>() ? " (gone tragic)" : "");
    for (const auto& k : j["ksocks"]) {
        fmt::print("  ksock {} ({} pid {}, user {}) last msg {} queue {} of {}, awaiting {} "
                   "replies, owes {}{}\n",
                   k["id"].get<uint32_t>(), k["process"].get<std::string>(), k.value("pid", 0u),
                   k["user"].get<std::string>(), k["last_sent"].get<std::string>(),
                   k["queued"].get<uint32_t>(), k["max_messages"].get<uint32_t>(),
                   k["awaiting_replies"].get<uint32_t>(), k["unreplied_to"].get<uint32_t>(),
                   k["sending"].get<bool>() ? ", sending" : "");
    }
    printTenants(j);
}

} // namespace

int bindings(const Options& o) {
    auto c = connect();
    if (!c) {
        return failToOpen(o.bus(), c.error());
    }
    auto j = ask(**c, o.bus(), Introspect::BINDINGS);
    if (!j) {
        return j.error() == Errc::NO_SUCH_DEVICE ? failToOpen(o.bus(), j.error())
                                                 : failWith("bindings", j.error());
    }
    for (auto& b : *j) {
        addHolder(b);
    }
    if (o.output.json) {
        fmt::print("{}\n", j->dump());
    } else {
        printBindings(o.bus(), *j);
    }
    return EXIT_OK;
}

int stats(const Options& o) {
    auto c = connect();
    if (!c) {
        return failToOpen(o.bus(), c.error());
    }
    auto j = ask(**c, o.bus(), Introspect::STATS);
    if (!j) {
        return j.error() == Errc::NO_SUCH_DEVICE ? failToOpen(o.bus(), j.error())
                                                 : failWith("stats", j.error());
    }
    for (auto& k : (*j)["ksocks"]) {
        addHolder(k);
    }
    if (o.output.json) {
        fmt::print("{}\n", j->dump());
    } else {
        printStats(*j);
    }
    return EXIT_OK;
}

// Every bus the daemon has, from 0 up to the first it does not.
int buses(const Options& o) {
    auto c = connect();
    if (!c) {
        return failToOpen(o.bus(), c.error());
    }
    Json all = Json::array();
    for (uint32_t bus = 0;; ++bus) {
        auto st = ask(**c, bus, Introspect::STATS);
        auto bound = ask(**c, bus, Introspect::BINDINGS);
        if (!st || !bound) {
            const Errc e = !st ? st.error() : bound.error();
            if (e == Errc::PERMISSION_DENIED) {
                continue; // the policy keeps this bus from us; later ones may be ours
            }
            if (e != Errc::NO_SUCH_DEVICE) {
                return failWith(fmt::format("bus {}", bus), e);
            }
            break;
        }
        all.push_back({{"bus", bus},
                       {"ksocks", (*st)["ksocks"].size()},
                       {"bindings", bound->size()},
                       {"max_message_size", (*st)["max_message_size"]},
                       {"report_replier_binds", (*st)["report_replier_binds"]}});
    }
    if (o.output.json) {
        fmt::print("{}\n", all.dump());
        return EXIT_OK;
    }
    fmt::print("{:>4} {:>7} {:>9} {:>9}\n", "BUS", "KSOCKS", "BINDINGS", "MAXSIZE");
    for (const auto& b : all) {
        fmt::print("{:>4} {:>7} {:>9} {:>9}\n", b["bus"].get<uint32_t>(), b["ksocks"].get<size_t>(),
                   b["bindings"].get<size_t>(), b["max_message_size"].get<uint64_t>());
    }
    return EXIT_OK;
}

} // namespace xkbus::cli
