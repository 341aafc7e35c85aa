// Encoding and checked decoding of the Limpet link frames (docs/limpet.md).
#include <algorithm>
#include <xkbus/common/names.hpp>
#include <xkbus/limpet/wire.hpp>

namespace xkbus::limpet {
namespace {

constexpr uint32_t KNOWN_FLAGS = FLAG_WANT_A_REPLY | FLAG_WANT_YOU_TO_REPLY | FLAG_SYNTHETIC |
                                 FLAG_URGENT | FLAG_ALL_OR_WAIT | FLAG_ALL_OR_FAIL;
constexpr uint32_t USER_FLAGS = 0xFFFF0000u;
constexpr size_t MAX_BYE_TEXT = 200;

class Writer {
public:
    void u8(uint8_t v) { m_out.push_back(std::byte{v}); }
    void u16(uint16_t v) {
        u8(static_cast<uint8_t>(v >> 8));
        u8(static_cast<uint8_t>(v));
    }
    void u32(uint32_t v) {
        u16(static_cast<uint16_t>(v >> 16));
        u16(static_cast<uint16_t>(v));
    }
    void bytes(std::span<const std::byte> b) { m_out.insert(m_out.end(), b.begin(), b.end()); }
    void text(std::string_view s) { bytes(std::as_bytes(std::span(s.data(), s.size()))); }
    std::vector<std::byte> finish() {
        const auto len = static_cast<uint32_t>(m_out.size() - 4);
        for (int i = 0; i < 4; ++i) {
            m_out[static_cast<size_t>(i)] = std::byte{static_cast<uint8_t>(len >> (24 - 8 * i))};
        }
        return std::move(m_out);
    }
    Writer() { m_out.resize(4); }

private:
    std::vector<std::byte> m_out;
};

// Reads big-endian fields; any read past the end sets `bad` and returns 0.
class Reader {
public:
    explicit Reader(std::span<const std::byte> in) : m_in(in) {}
    uint8_t u8() {
        if (m_pos >= m_in.size()) {
            m_bad = true;
            return 0;
        }
        return std::to_integer<uint8_t>(m_in[m_pos++]);
    }
    uint16_t u16() { return static_cast<uint16_t>((u8() << 8) | u8()); }
    uint32_t u32() {
        const uint32_t hi = u16();
        return (hi << 16) | u16();
    }
    std::span<const std::byte> take(size_t n) {
        if (n > m_in.size() - m_pos) {
            m_bad = true;
            return {};
        }
        auto out = m_in.subspan(m_pos, n);
        m_pos += n;
        return out;
    }
    bool ok() const noexcept { return !m_bad; }
    bool done() const noexcept { return !m_bad && m_pos == m_in.size(); }

private:
    std::span<const std::byte> m_in;
    size_t m_pos = 0;
    bool m_bad = false;
};

std::string_view asText(std::span<const std::byte> b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

std::string toString(std::span<const std::byte> b) {
    return std::string(asText(b));
}

void encodeBody(Writer& w, const Hello& h) {
    w.u8(static_cast<uint8_t>(FrameType::HELLO));
    w.u32(WIRE_MAGIC);
    w.u16(h.version);
    w.u32(h.networkId);
    w.u32(h.heartbeatMs);
}

void encodeBody(Writer& w, const Heartbeat&) {
    w.u8(static_cast<uint8_t>(FrameType::HEARTBEAT));
}

void encodeBody(Writer& w, const BindNotice& b) {
    w.u8(static_cast<uint8_t>(FrameType::BIND));
    w.u8(b.isBind ? 1 : 0);
    w.u16(static_cast<uint16_t>(b.name.size()));
    w.text(b.name);
}

// `extra` is not carried: the bus clears it on every send.
void encodeBody(Writer& w, const Message& m) {
    const MessageHeader& h = m.header;
    w.u8(static_cast<uint8_t>(FrameType::MESSAGE));
    for (uint32_t v : {h.id.networkId, h.id.serialNum, h.inReplyTo.networkId, h.inReplyTo.serialNum,
                       h.to, h.from, h.origFrom.networkId, h.origFrom.localId, h.finalTo.networkId,
                       h.finalTo.localId, h.flags}) {
        w.u32(v);
    }
    w.u32(static_cast<uint32_t>(m.name().size()));
    w.u32(static_cast<uint32_t>(m.data().size()));
    w.text(m.name());
    w.bytes(m.data());
}

void encodeBody(Writer& w, const Goodbye& g) {
    w.u8(static_cast<uint8_t>(FrameType::GOODBYE));
    w.u8(static_cast<uint8_t>(g.reason));
    const std::string_view text = std::string_view(g.text).substr(0, MAX_BYE_TEXT);
    w.u8(static_cast<uint8_t>(text.size()));
    w.text(text);
}

Result<Frame> decodeHello(Reader& r) {
    Hello h;
    const uint32_t magic = r.u32();
    h.version = r.u16();
    h.networkId = r.u32();
    h.heartbeatMs = r.u32();
    if (!r.done() || magic != WIRE_MAGIC || h.networkId == 0 || h.heartbeatMs < MIN_HEARTBEAT_MS ||
        h.heartbeatMs > MAX_HEARTBEAT_MS) {
        return fail(Errc::PROTOCOL_VIOLATION);
    }
    return Frame{h};
}

Result<Frame> decodeBind(Reader& r) {
    BindNotice b;
    const uint8_t isBind = r.u8();
    const uint16_t len = r.u16();
    if (!r.ok() || isBind > 1 || len == 0 || len > MAX_NAME_LEN) {
        return fail(Errc::PROTOCOL_VIOLATION);
    }
    b.isBind = isBind == 1;
    b.name = toString(r.take(len));
    if (!r.done() || !checkBindName(b.name) || b.name == NAME_REPLIER_BIND_EVENT) {
        return fail(Errc::PROTOCOL_VIOLATION);
    }
    return Frame{std::move(b)};
}

bool flagsValid(const Message& m) {
    const uint32_t flags = m.header.flags;
    if ((flags & ~(KNOWN_FLAGS | USER_FLAGS)) != 0) {
        return false;
    }
    if ((flags & FLAG_ALL_OR_WAIT) != 0 && (flags & FLAG_ALL_OR_FAIL) != 0) {
        return false;
    }
    return !(m.isRequest() && m.isReply());
}

Result<Frame> decodeMessage(Reader& r) {
    Message m;
    MessageHeader& h = m.header;
    h.id = {r.u32(), r.u32()};
    h.inReplyTo = {r.u32(), r.u32()};
    h.to = r.u32();
    h.from = r.u32();
    h.origFrom = {r.u32(), r.u32()};
    h.finalTo = {r.u32(), r.u32()};
    h.flags = r.u32();
    const uint32_t nameLen = r.u32();
    const uint32_t dataLen = r.u32();
    if (!r.ok() || nameLen == 0 || nameLen > MAX_NAME_LEN || dataLen > DEFAULT_MAX_MESSAGE_SIZE) {
        return fail(Errc::PROTOCOL_VIOLATION);
    }
    const auto name = r.take(nameLen);
    const auto data = r.take(dataLen);
    if (!r.done()) {
        return fail(Errc::PROTOCOL_VIOLATION);
    }
    // Copied once, into the body every later holder shares; checked there.
    m.body = MessageBody::copyOf(asText(name), data);
    // Every crossing message carries a network id (the Limpet that let it out).
    if (h.id.networkId == 0 || !flagsValid(m) || !checkMessageName(m.name())) {
        return fail(Errc::PROTOCOL_VIOLATION);
    }
    return Frame{std::move(m)};
}

bool printable(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

Result<Frame> decodeGoodbye(Reader& r) {
    Goodbye g;
    const uint8_t reason = r.u8();
    const uint8_t len = r.u8();
    g.text = toString(r.take(len));
    if (!r.done() || reason < 1 || reason > 4 || len > MAX_BYE_TEXT || !printable(g.text)) {
        return fail(Errc::PROTOCOL_VIOLATION);
    }
    g.reason = static_cast<ByeReason>(reason);
    return Frame{std::move(g)};
}

} // namespace

std::vector<std::byte> encodeFrame(const Frame& frame) {
    Writer w;
    std::visit([&](const auto& f) { encodeBody(w, f); }, frame);
    return w.finish();
}

Result<Frame> decodeFrame(std::span<const std::byte> body) {
    if (body.empty() || body.size() > MAX_FRAME_BODY) {
        return fail(Errc::PROTOCOL_VIOLATION);
    }
    Reader r(body.subspan(1));
    switch (static_cast<FrameType>(std::to_integer<uint8_t>(body[0]))) {
    case FrameType::HELLO:
        return decodeHello(r);
    case FrameType::HEARTBEAT:
        return r.done() ? Result<Frame>(Frame{Heartbeat{}}) : fail(Errc::PROTOCOL_VIOLATION);
    case FrameType::BIND:
        return decodeBind(r);
    case FrameType::MESSAGE:
        return decodeMessage(r);
    case FrameType::GOODBYE:
        return decodeGoodbye(r);
    }
    return fail(Errc::PROTOCOL_VIOLATION);
}

Result<void> FrameReader::feed(std::span<const std::byte> bytes) {
    if (m_bad) {
        return fail(Errc::PROTOCOL_VIOLATION);
    }
    if (m_start > 0 && m_start == m_buffer.size()) {
        m_buffer.clear();
        m_start = 0;
    }
    m_buffer.insert(m_buffer.end(), bytes.begin(), bytes.end());
    if (buffered() >= 4) {
        uint32_t len = 0;
        for (size_t i = 0; i < 4; ++i) {
            len = (len << 8) | std::to_integer<uint8_t>(m_buffer[m_start + i]);
        }
        if (len == 0 || len > MAX_FRAME_BODY) {
            m_bad = true;
            return fail(Errc::PROTOCOL_VIOLATION);
        }
    }
    return {};
}

std::optional<std::vector<std::byte>> FrameReader::next() {
    if (m_bad || buffered() < 4) {
        return std::nullopt;
    }
    uint32_t len = 0;
    for (size_t i = 0; i < 4; ++i) {
        len = (len << 8) | std::to_integer<uint8_t>(m_buffer[m_start + i]);
    }
    if (len == 0 || len > MAX_FRAME_BODY) {
        m_bad = true;
        return std::nullopt;
    }
    if (buffered() < 4 + static_cast<size_t>(len)) {
        return std::nullopt;
    }
    const auto first = m_buffer.begin() + static_cast<std::ptrdiff_t>(m_start + 4);
    std::vector<std::byte> body(first, first + len);
    m_start += 4 + len;
    if (m_start > (1u << 16) && m_start * 2 > m_buffer.size()) {
        m_buffer.erase(m_buffer.begin(), m_buffer.begin() + static_cast<std::ptrdiff_t>(m_start));
        m_start = 0;
    }
    return body;
}

} // namespace xkbus::limpet
