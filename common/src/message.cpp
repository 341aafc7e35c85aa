// Message bodies and construction, and the ReplierBindEvent data layout.
#include <cassert>
#include <cstring>
#include <xkbus/common/message.hpp>

namespace xkbus {

MessageBody::Unwritten MessageBody::allocate(size_t nameLength, size_t dataLength) {
    Unwritten out;
    if (nameLength + dataLength == 0) {
        return out;
    }
    // One allocation for both; name first, data after it.
    auto bytes = std::make_shared_for_overwrite<std::byte[]>(nameLength + dataLength);
    out.name = std::span(bytes.get(), nameLength);
    out.data = std::span(bytes.get() + nameLength, dataLength);
    out.body.m_bytes = std::move(bytes);
    out.body.m_nameLength = static_cast<uint32_t>(nameLength);
    out.body.m_dataOffset = static_cast<uint32_t>(nameLength);
    out.body.m_dataLength = static_cast<uint32_t>(dataLength);
    return out;
}

MessageBody MessageBody::copyOf(std::string_view name, std::span<const std::byte> data) {
    Unwritten out = allocate(name.size(), data.size());
    if (!name.empty()) {
        std::memcpy(out.name.data(), name.data(), name.size());
    }
    if (!data.empty()) {
        std::memcpy(out.data.data(), data.data(), data.size());
    }
    return std::move(out.body);
}

MessageBody MessageBody::within(SharedBytes buffer, size_t bufferSize, size_t nameOffset,
                                size_t nameLength, size_t dataOffset, size_t dataLength) {
    assert(buffer && nameOffset + nameLength <= bufferSize &&
           dataOffset + dataLength <= bufferSize);
    (void)bufferSize;
    MessageBody body;
    body.m_bytes = std::move(buffer);
    body.m_nameOffset = static_cast<uint32_t>(nameOffset);
    body.m_nameLength = static_cast<uint32_t>(nameLength);
    body.m_dataOffset = static_cast<uint32_t>(dataOffset);
    body.m_dataLength = static_cast<uint32_t>(dataLength);
    return body;
}

Message makeMessage(std::string_view name, std::span<const std::byte> data, uint32_t flags) {
    Message m;
    m.header.flags = flags;
    m.body = MessageBody::copyOf(name, data);
    return m;
}

Message makeMessage(std::string_view name, std::string_view data, uint32_t flags) {
    return makeMessage(name, asBytes(data), flags);
}

namespace {
constexpr size_t BIND_EVENT_HEADER = 3 * sizeof(uint32_t);

void putWord(std::byte* at, uint32_t value) {
    std::memcpy(at, &value, sizeof value);
}

uint32_t getWord(const std::byte* at) {
    uint32_t value = 0;
    std::memcpy(&value, at, sizeof value);
    return value;
}
} // namespace

std::vector<std::byte> encodeBindEventData(bool isBind, KsockId binder, std::string_view name) {
    std::vector<std::byte> data(BIND_EVENT_HEADER + paddedNameLength(name.size()));
    putWord(data.data(), isBind ? 1 : 0);
    putWord(data.data() + 4, binder);
    putWord(data.data() + 8, static_cast<uint32_t>(name.size()));
    std::memcpy(data.data() + BIND_EVENT_HEADER, name.data(), name.size());
    return data;
}

bool decodeBindEventData(std::span<const std::byte> data, BindEvent& out) {
    if (data.size() < BIND_EVENT_HEADER) {
        return false;
    }
    const uint32_t isBind = getWord(data.data());
    const uint32_t nameLen = getWord(data.data() + 8);
    if (isBind > 1 || nameLen > MAX_NAME_LEN ||
        data.size() != BIND_EVENT_HEADER + paddedNameLength(nameLen)) {
        return false;
    }
    out.isBind = isBind == 1;
    out.binder = getWord(data.data() + 4);
    out.name.assign(reinterpret_cast<const char*>(data.data() + BIND_EVENT_HEADER), nameLen);
    return true;
}

} // namespace xkbus
