// Messages from and to text. See message_text.hpp.
#include <xkbus/frontend/message_text.hpp>

namespace xkbus::frontend {

Message textMessage(std::string_view name, std::string_view data, uint32_t flags) {
    return makeMessage(name, data, flags);
}

std::string dataText(const Message& m) {
    return std::string(m.text());
}

std::string idText(MsgId id) {
    return "[" + std::to_string(id.networkId) + ":" + std::to_string(id.serialNum) + "]";
}

std::string kindOf(const Message& m) {
    if (m.isReply()) {
        return (m.header.flags & FLAG_SYNTHETIC) != 0 ? "status" : "reply";
    }
    return m.isRequest() ? "request" : "announcement";
}

namespace {
bool printable(const std::string& s) {
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c > 0x7E) {
            return false;
        }
    }
    return true;
}
} // namespace

std::string describe(const Message& m) {
    std::string text = kindOf(m) + " " + std::string(m.name()) + " " + idText(m.header.id) +
                       " from Ksock " + std::to_string(m.header.from);
    if (m.isReply()) {
        text += " answering " + idText(m.header.inReplyTo);
    }
    const std::string data = dataText(m);
    if (!data.empty()) {
        text +=
            printable(data) ? " \"" + data + "\"" : " (" + std::to_string(data.size()) + " bytes)";
    }
    if ((m.header.flags & FLAG_URGENT) != 0) {
        text += " (urgent)";
    }
    if (m.wantsYouToReply()) {
        text += " (you must reply)";
    }
    return text;
}

} // namespace xkbus::frontend
