// Messages from and to text: what the CLI, the demo and tests share.
#pragma once

#include <string>
#include <string_view>
#include <xkbus/frontend/ksock_channel.hpp>

namespace xkbus::frontend {

// A message whose data is the bytes of `data`.
Message textMessage(std::string_view name, std::string_view data = {}, uint32_t flags = 0);

std::string dataText(const Message& m);
// "{network:serial}" as KBUS wrote ids: "[0:42]".
std::string idText(MsgId id);
// "announcement", "request", "reply" or "status".
std::string kindOf(const Message& m);
// One line a person can read: kind, name, id, sender, what it answers, data.
std::string describe(const Message& m);

} // namespace xkbus::frontend
