// How the CLI shows messages and failures: a line a person reads, one JSON
// object per line for a program (--json), or the bare data (--raw).
#pragma once

#include "data_format.hpp"
#include "message_view.hpp"

#include <optional>
#include <string>
#include <xkbus/common/result.hpp>

namespace xkbus::cli {

struct OutputOptions {
    bool json = false;
    bool raw = false;
    DataFormat dataFormat = DataFormat::AUTO;
    bool showBus = false; // several buses at once (monitor): say which
};

// "announcement", "request", "reply", "status" or "error" (a replier's).
std::string kindOf(const MessageView& m);
// "[0:42]", as KBUS wrote ids.
std::string idText(MsgId id);
// A `$.KBUS.ReplierBindEvent`'s data as words ("bind $.Foo by Ksock 3"),
// or nullopt if the message is not one or is malformed.
std::optional<std::string> bindEventText(const MessageView& m);

void printMessage(const MessageView& m, uint32_t bus, const OutputOptions& options);
// Prints `{"key": value}` (JSON) or "text" (a person): for results that are
// not messages.
void printResult(const OutputOptions& options, const std::string& text,
                 const std::string& jsonText);

// "xkbus: WHAT: why (errno N)" on standard error; returns EXIT_FAILED.
int failWith(const std::string& what, Errc e);
// For a failure to reach the daemon or open a Ksock: says what is wrong and
// what to do (explainOpenError), and returns EXIT_UNREACHABLE or EXIT_FAILED.
int failToOpen(uint32_t bus, Errc e);

} // namespace xkbus::cli
