// The records a client and the daemon exchange over their connection (one
// ring pair per client process). The ring moves opaque records; this is what
// is inside them. Fixed little-endian layout, documented in docs/protocol.md.
// decode() is the only way bytes from a peer become a Record, and it checks
// every length and field before anything else looks at them.
//
// A record is a fixed part (prefix, for messages the header, for bodies the
// two lengths) followed by its body's name and data. The fixed part is small
// and built on the stack; the body's bytes go straight from the message body
// into the transport, and a received body can stay in the buffer it arrived
// in: a message is never copied to be framed or unframed.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>
#include <xkbus/common/kbus_types.hpp>
#include <xkbus/common/message.hpp>
#include <xkbus/common/result.hpp>

namespace xkbus::protocol {

inline constexpr uint16_t PROTOCOL_VERSION = 2;

enum class RecordType : uint16_t {
    // client -> daemon; each has a call id and gets one RESULT, except POP
    HELLO = 1,        // arg: protocol version; value: the client's pid (for logs);
                      // handle: HELLO_* flags
    OPEN = 2,         // handle: the client's name for the new Ksock; arg: bus; value: OPEN_* flags
    CLOSE = 3,        // handle
    BIND = 4,         // handle, arg: is_replier, name
    UNBIND = 5,       // handle, arg: is_replier, name
    FIND_REPLIER = 6, // handle, name; RESULT value: the replier's Ksock id or 0
    SEND = 7,         // handle, arg: SEND_* flags, message; RESULT value: the message id
    DISCARD = 8,      // handle
    POP = 9,          // handle, value: copy id: the client popped that copy. One-way
    NEXT = 10,        // handle; the daemon pops the head for the client: RESULT value:
                      // copy id, or 0 if empty. The PUSHED events before it hold the copy
    CONTROL = 11,     // handle, arg: Control, value: its argument; RESULT value: the answer
    NEW_BUS = 12,     // RESULT value: the new bus index
    INTROSPECT = 13,  // arg: Introspect, value: bus; RESULT data: JSON
    SEND_BATCH = 14,  // handle, value: count, data: the messages (appendBatchEntry); sent in
                      // order, no other client's record in between. RESULT data: per
                      // message, its errno and id (appendBatchOutcome)
    // daemon -> client
    RESULT = 256,        // call id, arg: errno (0 = success), value
    PUSHED = 257,        // handle, arg: PUSHED_* bits, value: copy id, message
    REMOVED = 258,       // handle, value: copy id (an unbind dropped it)
    SEND_FINISHED = 259, // handle: its blocked ALL_OR_WAIT send is over
};

// The per-Ksock settings and queries KBUS made ioctls of.
enum class Control : uint32_t {
    KSOCK_ID = 1,
    LAST_SENT = 2, // value: packMsgId
    MAX_MESSAGES = 3,
    NUM_MESSAGES = 4,
    NUM_UNREPLIED_TO = 5,
    ONLY_ONCE = 6,
    VERBOSE = 7,
    REPORT_REPLIER_BINDS = 8,
    MAX_MESSAGE_SIZE = 9,
};

// What INTROSPECT reports, as JSON (docs/protocol.md has the fields).
enum class Introspect : uint32_t {
    BINDINGS = 1, // what /proc/kbus/bindings showed
    STATS = 2,    // what /proc/kbus/stats showed
};

inline constexpr uint64_t OPEN_WRITABLE = 1;
// HELLO handle bit: the client keeps its Ksocks' fds itself and is woken by
// its ring alone (a Xen guest's library, or one that drops our fds), so a
// copy held back for want of room needs the ring's kick for space; a client
// that polls our fds asks for it (NEXT) instead.
inline constexpr uint32_t HELLO_RING_WOKEN = 1;
// SEND arg: do not wake the sender for a successful RESULT (it waits for
// something else: the reply to its request). An error still wakes it.
inline constexpr uint32_t SEND_QUIET_SUCCESS = 1;
// PUSHED arg bits.
inline constexpr uint32_t PUSHED_AT_HEAD = 1; // URGENT: queued at the head
// The queue is filling: report pops promptly (kick the daemon for them), so
// that it does not refuse copies for room the client has already made.
inline constexpr uint32_t PUSHED_REPORT_POPS = 2;

struct Record {
    RecordType type = RecordType::HELLO;
    uint32_t callId = 0;
    uint32_t handle = 0;
    uint32_t arg = 0;
    uint64_t value = 0;
    MessageHeader header; // SEND, PUSHED
    MessageBody body;     // name: BIND, UNBIND, FIND_REPLIER; data: RESULT, SEND_BATCH;
                          // both: SEND, PUSHED

    // Field by field, bodies by their bytes.
    friend bool operator==(const Record& a, const Record& b) noexcept;
};

// The most messages one SEND_BATCH may carry.
inline constexpr uint32_t MAX_BATCH = 4096;

struct Limits {
    uint32_t maxName = MAX_NAME_LEN;
    uint32_t maxData = DEFAULT_MAX_MESSAGE_SIZE; // no record carries more data than this
};

// The largest fixed part: prefix, header, lengths.
inline constexpr size_t MAX_FIXED_BYTES = 24 + 48 + 8;

// A record ready to be written: its fixed part, then the body's name and data.
struct EncodedRecord {
    std::array<std::byte, MAX_FIXED_BYTES> fixed;
    size_t fixedSize = 0;
    std::string_view name;
    std::span<const std::byte> data;

    std::array<std::span<const std::byte>, 3> parts() const noexcept;
    size_t size() const noexcept { return fixedSize + name.size() + data.size(); }
};
// The record's bytes by parts; valid while `r`'s body lives.
EncodedRecord encodeParts(const Record& r) noexcept;

// Bytes encode() appends for `r`.
size_t encodedSize(const Record& r) noexcept;
// Appends the encoding of `r` to `out`.
void encode(const Record& r, std::vector<std::byte>& out);
// Parses exactly one record; its body is copied out of `bytes`.
// PROTOCOL_VIOLATION for anything malformed: unknown type, wrong length for
// the type, over the limits, trailing bytes.
Result<Record> decode(std::span<const std::byte> bytes, const Limits& limits = {});
// As decode(), but the body stays in `bytes` (`size` of them), which the
// record then shares.
Result<Record> decodeAdopting(SharedBytes bytes, size_t size, const Limits& limits = {});
// The type of an encoded record, if its prefix is there (for routing a
// record before decoding it); nothing is validated.
std::optional<RecordType> peekType(std::span<const std::byte> bytes) noexcept;

// True for the types a client may send, false for the daemon's.
bool isClientRecord(RecordType t) noexcept;

// One message of a SEND_BATCH: a u32 length, then the message as a SEND record.
// A batch's data, the sum of its entries, is limited like any record's data.
size_t batchEntrySize(size_t nameLen, size_t dataLen) noexcept;
void appendBatchEntry(const Record& send, std::vector<std::byte>& out);
// The `count` SEND records of a SEND_BATCH's data. PROTOCOL_VIOLATION unless
// it is exactly `count` (1 to MAX_BATCH) well-formed SEND records.
Result<std::vector<Record>> decodeBatch(std::span<const std::byte> data, uint64_t count,
                                        const Limits& limits = {});

// What happened to one message of a batch: 0 or an errno, and its id.
struct BatchOutcome {
    int32_t error = 0;
    uint64_t id = 0; // packMsgId
    friend bool operator==(const BatchOutcome&, const BatchOutcome&) = default;
};
void appendBatchOutcome(const BatchOutcome& outcome, std::vector<std::byte>& out);
// The daemon's answer to a SEND_BATCH of `count` messages.
Result<std::vector<BatchOutcome>> decodeBatchOutcomes(std::span<const std::byte> data,
                                                      uint64_t count);

constexpr uint64_t packMsgId(MsgId id) noexcept {
    return (uint64_t{id.networkId} << 32) | id.serialNum;
}
constexpr MsgId unpackMsgId(uint64_t v) noexcept {
    return MsgId{static_cast<uint32_t>(v >> 32), static_cast<uint32_t>(v)};
}

// A record that carries a message (SEND or PUSHED) of the given header and body.
inline Message messageOf(const Record& r) {
    return Message{r.header, r.body};
}

} // namespace xkbus::protocol
