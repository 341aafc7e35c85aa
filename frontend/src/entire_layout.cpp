// Conversions between Message and KBUS's entire byte layout.
#include "entire_layout.hpp"

#include <cstring>

namespace xkbus::frontend {

Header headerFrom(const kbus_message_t& c) noexcept {
    Header h;
    h.id = MsgId{c.id.network_id, c.id.serial_num};
    h.inReplyTo = MsgId{c.in_reply_to.network_id, c.in_reply_to.serial_num};
    h.to = c.to;
    h.from = c.from;
    h.origFrom = OrigFrom{c.orig_from.network_id, c.orig_from.local_id};
    h.finalTo = OrigFrom{c.final_to.network_id, c.final_to.local_id};
    h.extra = c.extra;
    h.flags = c.flags;
    return h;
}

kbus_message_t entireHeaderFor(const Message& msg) noexcept {
    kbus_message_t c{};
    const Header& h = msg.header;
    c.start_guard = KBUS_MSG_START_GUARD;
    c.id = kbus_msg_id_t{h.id.networkId, h.id.serialNum};
    c.in_reply_to = kbus_msg_id_t{h.inReplyTo.networkId, h.inReplyTo.serialNum};
    c.to = h.to;
    c.from = h.from;
    c.orig_from = kbus_orig_from_t{h.origFrom.networkId, h.origFrom.localId};
    c.final_to = kbus_orig_from_t{h.finalTo.networkId, h.finalTo.localId};
    c.extra = h.extra;
    c.flags = h.flags;
    c.name_len = static_cast<uint32_t>(msg.name().size());
    c.data_len = static_cast<uint32_t>(msg.data().size());
    c.end_guard = KBUS_MSG_END_GUARD;
    return c;
}

std::vector<std::byte> encodeEntire(const Message& msg) {
    const kbus_message_t header = entireHeaderFor(msg);
    const uint64_t nameAt = HEADER_SIZE;
    const uint64_t dataAt = nameAt + paddedNameLength(msg.name().size());
    const uint64_t guardAt = dataAt + paddedDataLength(msg.data().size());
    std::vector<std::byte> out(guardAt + GUARD_SIZE); // zeroed: the padding
    std::memcpy(out.data(), &header, sizeof header);
    if (!msg.name().empty()) {
        std::memcpy(out.data() + nameAt, msg.name().data(), msg.name().size());
    }
    if (!msg.data().empty()) {
        std::memcpy(out.data() + dataAt, msg.data().data(), msg.data().size());
    }
    const uint32_t guard = KBUS_MSG_END_GUARD;
    std::memcpy(out.data() + guardAt, &guard, sizeof guard);
    return out;
}

} // namespace xkbus::frontend
