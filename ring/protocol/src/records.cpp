// Encoding and strict decoding of connection records.
#include <algorithm>
#include <bit>
#include <cstring>
#include <memory>
#include <optional>
#include <xkbus/protocol/records.hpp>

namespace xkbus::protocol {
namespace {

// Which sections follow the fixed prefix, by record type.
enum class Body { NONE, NAME, DATA, MESSAGE };

constexpr size_t PREFIX = 2 + 2 + 4 + 4 + 4 + 8;         // type, version, call, handle, arg, value
constexpr size_t HEADER = 8 + 8 + 4 + 4 + 8 + 8 + 4 + 4; // MessageHeader fields
constexpr size_t LENGTHS = 4 + 4;                        // name length, data length
static_assert(PREFIX + HEADER + LENGTHS == MAX_FIXED_BYTES);
// Little-endian on the wire; every host we build for is little-endian.
static_assert(std::endian::native == std::endian::little);

bool knownType(uint16_t t, Body& body) noexcept {
    switch (static_cast<RecordType>(t)) {
    case RecordType::HELLO:
    case RecordType::OPEN:
    case RecordType::CLOSE:
    case RecordType::DISCARD:
    case RecordType::POP:
    case RecordType::NEXT:
    case RecordType::CONTROL:
    case RecordType::NEW_BUS:
    case RecordType::INTROSPECT:
    case RecordType::REMOVED:
    case RecordType::SEND_FINISHED:
        body = Body::NONE;
        return true;
    case RecordType::BIND:
    case RecordType::UNBIND:
    case RecordType::FIND_REPLIER:
        body = Body::NAME;
        return true;
    case RecordType::RESULT:
    case RecordType::SEND_BATCH:
        body = Body::DATA;
        return true;
    case RecordType::SEND:
    case RecordType::PUSHED:
        body = Body::MESSAGE;
        return true;
    }
    return false;
}

Body bodyOf(RecordType t) noexcept {
    Body body = Body::NONE;
    knownType(static_cast<uint16_t>(t), body);
    return body;
}

bool hasName(Body b) noexcept {
    return b == Body::NAME || b == Body::MESSAGE;
}
bool hasData(Body b) noexcept {
    return b == Body::DATA || b == Body::MESSAGE;
}

class Writer {
public:
    explicit Writer(std::byte* out) : m_out(out) {}
    template <class T>
    void put(T v) {
        std::memcpy(m_out + m_pos, &v, sizeof v);
        m_pos += sizeof v;
    }
    size_t written() const { return m_pos; }

private:
    std::byte* m_out;
    size_t m_pos = 0;
};

class Reader {
public:
    explicit Reader(std::span<const std::byte> in) : m_in(in) {}
    template <class T>
    bool get(T& v) {
        if (m_in.size() - m_pos < sizeof v) {
            return false;
        }
        std::memcpy(&v, m_in.data() + m_pos, sizeof v);
        m_pos += sizeof v;
        return true;
    }
    size_t position() const { return m_pos; }
    void skip(size_t n) { m_pos += n; }
    size_t left() const { return m_in.size() - m_pos; }

private:
    std::span<const std::byte> m_in;
    size_t m_pos = 0;
};

void putHeader(Writer& w, const MessageHeader& h) {
    w.put(h.id.networkId);
    w.put(h.id.serialNum);
    w.put(h.inReplyTo.networkId);
    w.put(h.inReplyTo.serialNum);
    w.put(h.to);
    w.put(h.from);
    w.put(h.origFrom.networkId);
    w.put(h.origFrom.localId);
    w.put(h.finalTo.networkId);
    w.put(h.finalTo.localId);
    w.put(h.extra);
    w.put(h.flags);
}

bool getHeader(Reader& r, MessageHeader& h) {
    return r.get(h.id.networkId) && r.get(h.id.serialNum) && r.get(h.inReplyTo.networkId) &&
           r.get(h.inReplyTo.serialNum) && r.get(h.to) && r.get(h.from) &&
           r.get(h.origFrom.networkId) && r.get(h.origFrom.localId) && r.get(h.finalTo.networkId) &&
           r.get(h.finalTo.localId) && r.get(h.extra) && r.get(h.flags);
}

// Where a record's body lies in its bytes, once the fixed part checked out.
struct BodySpan {
    size_t nameOffset = 0;
    size_t nameLength = 0;
    size_t dataOffset = 0;
    size_t dataLength = 0;
};

// Everything but the body's bytes: the fields, and where the body lies.
Result<BodySpan> parseFixed(std::span<const std::byte> bytes, const Limits& limits, Record& rec) {
    Reader r(bytes);
    uint16_t type = 0;
    uint16_t version = 0;
    Body body = Body::NONE;
    if (!r.get(type) || !r.get(version) || !knownType(type, body) || version != PROTOCOL_VERSION ||
        !r.get(rec.callId) || !r.get(rec.handle) || !r.get(rec.arg) || !r.get(rec.value)) {
        return fail(Errc::PROTOCOL_VIOLATION);
    }
    rec.type = static_cast<RecordType>(type);
    if (body == Body::MESSAGE && !getHeader(r, rec.header)) {
        return fail(Errc::PROTOCOL_VIOLATION);
    }
    BodySpan span;
    if (body != Body::NONE) {
        uint32_t nameLen = 0;
        uint32_t dataLen = 0;
        // A client's over-long name is its caller's mistake, not a broken
        // peer (issue 16): the record is kept with the name cut to one byte
        // over the limit, so the bus answers ENAMETOOLONG.
        const bool nameMayOverrun = isClientRecord(rec.type);
        if (!r.get(nameLen) || !r.get(dataLen) || (nameLen > limits.maxName && !nameMayOverrun) ||
            dataLen > limits.maxData || (!hasName(body) && nameLen != 0) ||
            (!hasData(body) && dataLen != 0) || r.left() != uint64_t{nameLen} + dataLen) {
            return fail(Errc::PROTOCOL_VIOLATION);
        }
        const auto kept =
            static_cast<size_t>(std::min<uint64_t>(nameLen, uint64_t{limits.maxName} + 1));
        span = BodySpan{r.position(), kept, r.position() + nameLen, dataLen};
        r.skip(uint64_t{nameLen} + dataLen);
    }
    if (r.left() != 0) {
        return fail(Errc::PROTOCOL_VIOLATION);
    }
    return span;
}

} // namespace

bool operator==(const Record& a, const Record& b) noexcept {
    const auto data = [](const Record& r) { return r.body.data(); };
    return a.type == b.type && a.callId == b.callId && a.handle == b.handle && a.arg == b.arg &&
           a.value == b.value && a.header == b.header && a.body.name() == b.body.name() &&
           std::equal(data(a).begin(), data(a).end(), data(b).begin(), data(b).end());
}

bool isClientRecord(RecordType t) noexcept {
    return static_cast<uint16_t>(t) < 256;
}

std::array<std::span<const std::byte>, 3> EncodedRecord::parts() const noexcept {
    return {std::span<const std::byte>(fixed.data(), fixedSize), asBytes(name), data};
}

EncodedRecord encodeParts(const Record& rec) noexcept {
    const Body body = bodyOf(rec.type);
    EncodedRecord out;
    Writer w(out.fixed.data());
    w.put(static_cast<uint16_t>(rec.type));
    w.put(PROTOCOL_VERSION);
    w.put(rec.callId);
    w.put(rec.handle);
    w.put(rec.arg);
    w.put(rec.value);
    if (body == Body::MESSAGE) {
        putHeader(w, rec.header);
    }
    if (body != Body::NONE) {
        out.name = hasName(body) ? rec.body.name() : std::string_view();
        out.data = hasData(body) ? rec.body.data() : std::span<const std::byte>();
        w.put(static_cast<uint32_t>(out.name.size()));
        w.put(static_cast<uint32_t>(out.data.size()));
    }
    out.fixedSize = w.written();
    return out;
}

size_t encodedSize(const Record& rec) noexcept {
    return encodeParts(rec).size();
}

void encode(const Record& rec, std::vector<std::byte>& out) {
    const EncodedRecord encoded = encodeParts(rec);
    out.reserve(out.size() + encoded.size());
    for (const auto& part : encoded.parts()) {
        out.insert(out.end(), part.begin(), part.end());
    }
}

Result<Record> decode(std::span<const std::byte> bytes, const Limits& limits) {
    Record rec;
    auto body = parseFixed(bytes, limits, rec);
    if (!body) {
        return fail(body.error());
    }
    if (body->nameLength + body->dataLength > 0) {
        rec.body = MessageBody::copyOf(
            std::string_view(reinterpret_cast<const char*>(bytes.data() + body->nameOffset),
                             body->nameLength),
            bytes.subspan(body->dataOffset, body->dataLength));
    }
    return rec;
}

Result<Record> decodeAdopting(SharedBytes bytes, size_t size, const Limits& limits) {
    Record rec;
    auto body = parseFixed(std::span(bytes.get(), size), limits, rec);
    if (!body) {
        return fail(body.error());
    }
    if (body->nameLength + body->dataLength > 0) {
        rec.body = MessageBody::within(std::move(bytes), size, body->nameOffset, body->nameLength,
                                       body->dataOffset, body->dataLength);
    }
    return rec;
}

std::optional<RecordType> peekType(std::span<const std::byte> bytes) noexcept {
    uint16_t type = 0;
    if (!Reader(bytes).get(type)) {
        return std::nullopt;
    }
    return static_cast<RecordType>(type);
}

size_t batchEntrySize(size_t nameLen, size_t dataLen) noexcept {
    return sizeof(uint32_t) + PREFIX + HEADER + LENGTHS + nameLen + dataLen;
}

void appendBatchEntry(const Record& send, std::vector<std::byte>& out) {
    const auto length = static_cast<uint32_t>(encodedSize(send));
    const auto* p = reinterpret_cast<const std::byte*>(&length);
    out.insert(out.end(), p, p + sizeof length);
    encode(send, out);
}

Result<std::vector<Record>> decodeBatch(std::span<const std::byte> data, uint64_t count,
                                        const Limits& limits) {
    if (count == 0 || count > MAX_BATCH) {
        return fail(Errc::PROTOCOL_VIOLATION);
    }
    Reader r(data);
    std::vector<Record> sends;
    sends.reserve(count);
    for (uint64_t i = 0; i < count; ++i) {
        uint32_t length = 0;
        if (!r.get(length) || length > r.left()) {
            return fail(Errc::PROTOCOL_VIOLATION);
        }
        // Each message gets a body of its own: a small message must not keep
        // the whole batch alive in somebody's queue.
        auto send = decode(data.subspan(r.position(), length), limits);
        r.skip(length);
        if (!send || send->type != RecordType::SEND) {
            return fail(Errc::PROTOCOL_VIOLATION);
        }
        sends.push_back(std::move(*send));
    }
    if (r.left() != 0) {
        return fail(Errc::PROTOCOL_VIOLATION);
    }
    return sends;
}

void appendBatchOutcome(const BatchOutcome& outcome, std::vector<std::byte>& out) {
    std::byte bytes[sizeof outcome.error + sizeof outcome.id];
    Writer w(bytes);
    w.put(outcome.error);
    w.put(outcome.id);
    out.insert(out.end(), bytes, bytes + sizeof bytes);
}

Result<std::vector<BatchOutcome>> decodeBatchOutcomes(std::span<const std::byte> data,
                                                      uint64_t count) {
    constexpr size_t EACH = sizeof(int32_t) + sizeof(uint64_t);
    if (count > MAX_BATCH || data.size() != count * EACH) {
        return fail(Errc::PROTOCOL_VIOLATION);
    }
    Reader r(data);
    std::vector<BatchOutcome> outcomes(count);
    for (auto& o : outcomes) {
        (void)r.get(o.error);
        (void)r.get(o.id);
    }
    return outcomes;
}

} // namespace xkbus::protocol
