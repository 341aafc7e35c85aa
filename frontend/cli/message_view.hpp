// The one place the CLI reads and builds a message's fields, so a change in
// the shape of frontend::Message touches this file and no other.
#pragma once

#include <string_view>
#include <xkbus/ksock.hpp>

namespace xkbus::cli {

// A reply whose replier failed (reply --exec with a non-zero exit) carries
// this flag, in the 16 top bits KBUS leaves to applications.
inline constexpr uint32_t FLAG_REPLIER_ERROR = 1u << 16;

struct MessageView {
    std::string_view name;
    std::string_view data;
    MsgId id;
    MsgId inReplyTo;
    uint32_t from = 0;
    uint32_t to = 0;
    uint32_t flags = 0;
    bool isReply() const noexcept { return inReplyTo.isSet(); }
    bool isStatus() const noexcept { return isReply() && (flags & FLAG_SYNTHETIC) != 0; }
    bool isRequest() const noexcept { return (flags & FLAG_WANT_A_REPLY) != 0; }
    bool isReplierError() const noexcept { return (flags & FLAG_REPLIER_ERROR) != 0; }
};

inline MessageView view(const Message& m) {
    return MessageView{m.name(),      m.text(),    m.header.id,   m.header.inReplyTo,
                       m.header.from, m.header.to, m.header.flags};
}

// The answer to `request` that says its replier failed: `why` is its data.
inline Message errorReply(const Message& request, std::string_view why) {
    Message answer = makeMessage(request.name(), why, FLAG_REPLIER_ERROR);
    answer.header.inReplyTo = request.header.id;
    answer.header.to = request.header.from;
    return answer;
}

} // namespace xkbus::cli
