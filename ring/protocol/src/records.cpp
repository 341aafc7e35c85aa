// Encoding and strict decoding of connection records.
#include <algorithm>
#include <bit>
#include <cstring>
#include <xkbus/protocol/records.hpp>

namespace xkbus::protocol {
namespace {

// Which sections follow the fixed prefix, by record type.
enum class Body { NONE, NAME, DATA, MESSAGE };

constexpr size_t PREFIX = 2 + 2 + 4 + 4 + 4 + 8;         // type, version, call, handle, arg, value
constexpr size_t HEADER = 8 + 8 + 4 + 4 + 8 + 8 + 4 + 4; // Header fields
constexpr size_t LENGTHS = 4 + 4;                        // name length, data length

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

class Writer {
public:
    explicit Writer(std::vector<std::byte>& out) : m_out(out) {}
    template <class T>
    void put(T v) {
        // Little-endian on the wire; every host we build for is little-endian,
        // which the static_assert below pins down.
        static_assert(std::endian::native == std::endian::little);
        const auto* p = reinterpret_cast<const std::byte*>(&v);
        m_out.insert(m_out.end(), p, p + sizeof v);
    }
    void bytes(const void* p, size_t n) {
        const auto* b = static_cast<const std::byte*>(p);
        m_out.insert(m_out.end(), b, b + n);
    }

private:
    std::vector<std::byte>& m_out;
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
    std::span<const std::byte> take(size_t n) {
        auto s = m_in.subspan(m_pos, n);
        m_pos += n;
        return s;
    }
    size_t left() const { return m_in.size() - m_pos; }

private:
    std::span<const std::byte> m_in;
    size_t m_pos = 0;
};

void putHeader(Writer& w, const Header& h) {
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

bool getHeader(Reader& r, Header& h) {
    return r.get(h.id.networkId) && r.get(h.id.serialNum) && r.get(h.inReplyTo.networkId) &&
           r.get(h.inReplyTo.serialNum) && r.get(h.to) && r.get(h.from) &&
           r.get(h.origFrom.networkId) && r.get(h.origFrom.localId) && r.get(h.finalTo.networkId) &&
           r.get(h.finalTo.localId) && r.get(h.extra) && r.get(h.flags);
}

} // namespace

bool isClientRecord(RecordType t) noexcept {
    return static_cast<uint16_t>(t) < 256;
}

size_t encodedSize(const Record& rec) noexcept {
    Body body = Body::NONE;
    knownType(static_cast<uint16_t>(rec.type), body);
    switch (body) {
    case Body::NONE:
        return PREFIX;
    case Body::NAME:
        return PREFIX + LENGTHS + rec.name.size();
    case Body::DATA:
        return PREFIX + LENGTHS + rec.data.size();
    case Body::MESSAGE:
        return PREFIX + HEADER + LENGTHS + rec.name.size() + rec.data.size();
    }
    return PREFIX;
}

void encode(const Record& rec, std::vector<std::byte>& out) {
    Body body = Body::NONE;
    knownType(static_cast<uint16_t>(rec.type), body);
    out.reserve(out.size() + encodedSize(rec));
    Writer w(out);
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
        const bool hasName = body == Body::NAME || body == Body::MESSAGE;
        const bool hasData = body == Body::DATA || body == Body::MESSAGE;
        w.put(static_cast<uint32_t>(hasName ? rec.name.size() : 0));
        w.put(static_cast<uint32_t>(hasData ? rec.data.size() : 0));
        if (hasName) {
            w.bytes(rec.name.data(), rec.name.size());
        }
        if (hasData) {
            w.bytes(rec.data.data(), rec.data.size());
        }
    }
}

Result<Record> decode(std::span<const std::byte> bytes, const Limits& limits) {
    Reader r(bytes);
    Record rec;
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
    if (body != Body::NONE) {
        uint32_t nameLen = 0;
        uint32_t dataLen = 0;
        // A client's over-long name is its caller's mistake, not a broken
        // peer (issue 16): the record is kept with the name cut to one byte
        // over the limit, so the bus answers ENAMETOOLONG.
        const bool nameMayOverrun = isClientRecord(rec.type);
        if (!r.get(nameLen) || !r.get(dataLen) || (nameLen > limits.maxName && !nameMayOverrun) ||
            dataLen > limits.maxData || (body == Body::NAME && dataLen != 0) ||
            (body == Body::DATA && nameLen != 0) || r.left() != uint64_t{nameLen} + dataLen) {
            return fail(Errc::PROTOCOL_VIOLATION);
        }
        auto name = r.take(nameLen).first(
            static_cast<size_t>(std::min<uint64_t>(nameLen, uint64_t{limits.maxName} + 1)));
        rec.name.assign(reinterpret_cast<const char*>(name.data()), name.size());
        auto data = r.take(dataLen);
        rec.data.assign(data.begin(), data.end());
    }
    if (r.left() != 0) {
        return fail(Errc::PROTOCOL_VIOLATION);
    }
    return rec;
}

size_t batchEntrySize(size_t nameLen, size_t dataLen) noexcept {
    return sizeof(uint32_t) + PREFIX + HEADER + LENGTHS + nameLen + dataLen;
}

void appendBatchEntry(const Record& send, std::vector<std::byte>& out) {
    Writer(out).put(static_cast<uint32_t>(encodedSize(send)));
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
        auto send = decode(r.take(length), limits);
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
    Writer w(out);
    w.put(outcome.error);
    w.put(outcome.id);
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
