// Conversions between Message and KBUS's entire byte layout.
#include "entire_layout.hpp"

#include <algorithm>
#include <array>
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

// The entire form as pieces in order; a piece without bytes is zero padding.
namespace {
struct Piece {
    uint64_t size;
    const std::byte* bytes;
};

constexpr std::byte ZEROS[4]{};
const uint32_t END_GUARD = KBUS_MSG_END_GUARD;

std::array<Piece, 6> piecesOf(const Message& msg, const kbus_message_t& header) noexcept {
    const auto name = std::as_bytes(std::span(msg.name()));
    const auto data = msg.data();
    return {Piece{HEADER_SIZE, reinterpret_cast<const std::byte*>(&header)},
            Piece{name.size(), name.data()},
            Piece{paddedNameLength(name.size()) - name.size(), ZEROS},
            Piece{data.size(), data.data()},
            Piece{paddedDataLength(data.size()) - data.size(), ZEROS},
            Piece{GUARD_SIZE, reinterpret_cast<const std::byte*>(&END_GUARD)}};
}
} // namespace

void copyEntire(const Message& msg, const kbus_message_t& header, uint64_t at,
                std::span<std::byte> out) noexcept {
    uint64_t pieceStart = 0;
    for (const Piece& piece : piecesOf(msg, header)) {
        const uint64_t pieceEnd = pieceStart + piece.size;
        if (!out.empty() && at < pieceEnd) {
            const uint64_t n = std::min<uint64_t>(out.size(), pieceEnd - at);
            std::memcpy(out.data(), piece.bytes + (at - pieceStart), n);
            out = out.subspan(n);
            at += n;
        }
        pieceStart = pieceEnd;
    }
}

std::vector<std::byte> encodeEntire(const Message& msg) {
    std::vector<std::byte> out(entireLength(msg.name().size(), msg.data().size()));
    copyEntire(msg, entireHeaderFor(msg), 0, out);
    return out;
}

} // namespace xkbus::frontend
