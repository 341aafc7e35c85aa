// See output.hpp.
#include "output.hpp"

#include "exit_codes.hpp"

#include <cstdio>
#include <cstring>
#include <fmt/core.h>
#include <nlohmann/json.hpp>
#include <unistd.h>
#include <xkbus/frontend/open.hpp>

namespace xkbus::cli {

namespace {

constexpr std::string_view BIND_EVENT_NAME = "$.KBUS.ReplierBindEvent";

uint32_t readU32(std::string_view data, size_t at) {
    uint32_t v = 0;
    std::memcpy(&v, data.data() + at, sizeof v);
    return v;
}

std::string line(const MessageView& m, uint32_t bus, const OutputOptions& o) {
    std::string text = o.showBus ? fmt::format("bus {}: ", bus) : std::string();
    text += fmt::format("{} {} {} from Ksock {}", kindOf(m), m.name, idText(m.id), m.from);
    if (m.isReply()) {
        text += " answering " + idText(m.inReplyTo);
    }
    if ((m.flags & FLAG_URGENT) != 0) {
        text += " (urgent)";
    }
    if ((m.flags & FLAG_WANT_YOU_TO_REPLY) != 0) {
        text += " (you must reply)";
    }
    if (auto event = bindEventText(m)) {
        return text + ": " + *event;
    }
    if (!m.data.empty()) {
        text += ": " + renderForLine(m.data, o.dataFormat);
    }
    return text;
}

nlohmann::json json(const MessageView& m, uint32_t bus, const OutputOptions& o) {
    nlohmann::json j = {
        {"kind", kindOf(m)}, {"name", m.name},   {"id", idText(m.id)}, {"from", m.from},
        {"to", m.to},        {"flags", m.flags}, {"bus", bus},         {"data_len", m.data.size()}};
    if (m.isReply()) {
        j["in_reply_to"] = idText(m.inReplyTo);
    }
    if (auto event = bindEventText(m)) {
        j["bind_event"] = *event;
    }
    addToJson(j, m.data, o.dataFormat);
    return j;
}

void writeAll(std::string_view bytes) {
    while (!bytes.empty()) {
        const ssize_t n = ::write(STDOUT_FILENO, bytes.data(), bytes.size());
        if (n <= 0) {
            return;
        }
        bytes.remove_prefix(static_cast<size_t>(n));
    }
}

} // namespace

std::string kindOf(const MessageView& m) {
    if (m.isReplierError()) {
        return "error";
    }
    if (m.isReply()) {
        return m.isStatus() ? "status" : "reply";
    }
    return m.isRequest() ? "request" : "announcement";
}

std::string idText(MsgId id) {
    return fmt::format("[{}:{}]", id.networkId, id.serialNum);
}

// The data is {is_bind, binder, name_len} as native u32s, then the name
// padded to 4 bytes (docs/semantics.md, "Replier bind events").
std::optional<std::string> bindEventText(const MessageView& m) {
    constexpr size_t HEAD = 3 * sizeof(uint32_t);
    if (m.name != BIND_EVENT_NAME || m.data.size() < HEAD) {
        return std::nullopt;
    }
    const uint32_t nameLen = readU32(m.data, 8);
    if (nameLen > m.data.size() - HEAD) {
        return std::nullopt;
    }
    return fmt::format("{} {} by Ksock {}", readU32(m.data, 0) != 0 ? "bind" : "unbind",
                       m.data.substr(HEAD, nameLen), readU32(m.data, 4));
}

void printMessage(const MessageView& m, uint32_t bus, const OutputOptions& o) {
    if (o.raw) {
        writeAll(m.data);
        return;
    }
    const std::string text = o.json ? json(m, bus, o).dump() : line(m, bus, o);
    fmt::print("{}\n", text);
    std::fflush(stdout);
}

void printResult(const OutputOptions& o, const std::string& text, const std::string& jsonText) {
    fmt::print("{}\n", o.json ? jsonText : text);
    std::fflush(stdout);
}

int failWith(const std::string& what, Errc e) {
    fmt::print(stderr, "xkbus: {}: {} (errno {})\n", what, describe(e), toErrno(e));
    return EXIT_FAILED;
}

int failToOpen(uint32_t bus, Errc e) {
    std::string why = frontend::explainOpenError(e, frontend::defaultSocketPath());
    if (e == Errc::NO_SUCH_DEVICE) {
        why = fmt::format("bus {}: {}", bus, why);
    }
    fmt::print(stderr, "xkbus: {} (errno {})\n", why, toErrno(e));
    const bool unreachable = e == Errc::NO_DAEMON || e == Errc::ACCESS_DENIED ||
                             e == Errc::NOT_A_SOCKET || e == Errc::NAME_TOO_LONG;
    return unreachable ? EXIT_UNREACHABLE : EXIT_FAILED;
}

} // namespace xkbus::cli
