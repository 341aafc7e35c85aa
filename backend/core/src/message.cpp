// Message construction and the ReplierBindEvent data layout.
#include <cstring>
#include <xkbus/core/message.hpp>

namespace xkbus::core {

Message makeMessage(std::string_view name, std::span<const std::byte> data, uint32_t flags) {
    auto body = std::make_shared<MessageBody>();
    body->name.assign(name);
    body->data.assign(data.begin(), data.end());
    Message m;
    m.flags = flags;
    m.body = std::move(body);
    return m;
}

Message makeMessage(std::string_view name, std::string_view data, uint32_t flags) {
    return makeMessage(name, std::as_bytes(std::span(data.data(), data.size())), flags);
}

namespace {
constexpr size_t BIND_EVENT_HEADER = 3 * sizeof(uint32_t);

size_t paddedNameLength(size_t n) {
    return 4 * ((n + 1 + 3) / 4);
}

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

} // namespace xkbus::core
