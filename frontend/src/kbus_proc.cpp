// kbus_read_proc: /proc/kbus/bindings and /proc/kbus/stats in the kernel
// module's text format, made from the daemon's introspection of every bus.
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <xkbus/frontend/open.hpp>
#include <xkbus/kbus.h>

namespace xkbus::frontend {

namespace {

using protocol::Introspect;

// KBUS allowed 256 devices; the daemon answers ENOENT past its last bus.
constexpr uint32_t MOST_BUSES = 256;

void appendBindings(std::string& out, uint32_t bus, const nlohmann::json& bindings) {
    for (const auto& b : bindings) {
        const auto name = b["name"].get<std::string>();
        out += fmt::format("{:3}: {:8} {:8}  {}  {}\n", bus, b["ksock"].get<uint32_t>(),
                           b["owner"].get<uint32_t>(), b["replier"].get<bool>() ? 'R' : 'L', name);
    }
}

// The read and write progress lines belong to each Ksock's own process (its
// library holds them), so they read as a Ksock between messages.
void appendStats(std::string& out, const nlohmann::json& st) {
    out +=
        fmt::format("dev {:2}: next ksock {} next msg {} unsent unbindings {}{}\n",
                    st["bus"].get<uint32_t>(), st["next_ksock_id"].get<uint32_t>(),
                    st["next_serial"].get<uint32_t>(), st["unsent_unbind_events"].get<uint32_t>(),
                    st["unbind_events_lost"].get<bool>() ? "(gone tragic)" : "");
    for (const auto& k : st["ksocks"]) {
        const uint32_t awaiting = k["awaiting_replies"].get<uint32_t>();
        out += fmt::format("    ksock {} last msg {} queue {} of {}\n", k["id"].get<uint32_t>(),
                           k["last_sent"].get<std::string>(), k["queued"].get<uint32_t>(),
                           k["max_messages"].get<uint32_t>());
        out +=
            fmt::format("      read byte 0 of 0, wrote byte 0 of HDR (not finished), {}sending\n",
                        k["sending"].get<bool>() ? "" : "not ");
        out += fmt::format("      outstanding requests {} (size {}, max {}), unsent replies 0 "
                           "(max 0)\n",
                           awaiting, awaiting, awaiting);
    }
}

Result<std::string> procText(Introspect what) {
    auto connection = connectDefault();
    if (!connection) {
        return fail(connection.error());
    }
    std::string out;
    if (what == Introspect::BINDINGS) {
        out = "# <device> is bound to <Ksock-ID> in <process-PID> as <Replier|Listener> for "
              "<message-name>\n";
    }
    for (uint32_t bus = 0; bus < MOST_BUSES; ++bus) {
        auto json = (*connection)->introspect(bus, what);
        if (!json) {
            if (json.error() == Errc::NO_SUCH_DEVICE) {
                break;
            }
            return fail(json.error());
        }
        auto parsed = nlohmann::json::parse(*json, nullptr, false);
        if (parsed.is_discarded()) {
            return fail(Errc::PROTOCOL_VIOLATION);
        }
        if (what == Introspect::BINDINGS) {
            appendBindings(out, bus, parsed);
        } else {
            appendStats(out, parsed);
        }
    }
    return out;
}

} // namespace

} // namespace xkbus::frontend

using namespace xkbus;
using namespace xkbus::frontend;

extern "C" {

int kbus_read_proc(const char* name, char** text) {
    const int saved = errno;
    int rv = 0;
    std::string_view which = name != nullptr ? name : "";
    if (which.starts_with("/proc/kbus/")) {
        which.remove_prefix(11);
    }
    if (text == nullptr) {
        rv = -EFAULT;
    } else if (which != "bindings" && which != "stats") {
        rv = -ENOENT;
    } else {
        try {
            auto got = procText(which == "bindings" ? Introspect::BINDINGS : Introspect::STATS);
            char* copy = got ? static_cast<char*>(std::malloc(got->size() + 1)) : nullptr;
            if (copy != nullptr) {
                std::memcpy(copy, got->c_str(), got->size() + 1);
                *text = copy;
            }
            rv = !got ? -toErrno(got.error()) : copy == nullptr ? -ENOMEM : 0;
        } catch (const nlohmann::json::exception&) {
            rv = -EPROTO; // a field missing from the daemon's answer
        }
    }
    errno = rv < 0 ? -rv : saved;
    return rv;
}

} // extern "C"
