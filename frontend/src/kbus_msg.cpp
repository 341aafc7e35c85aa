// The libkbus message functions: builders (pointy and entire), deletion, size,
// bind-event decoding and printing. Plain malloc'd C structs, as libkbus.
#include "entire_layout.hpp"

#include <cctype>
#include <cerrno>
#include <cinttypes>
#include <cstdlib>
#include <cstring>
#include <xkbus/kbus.h>

namespace xkbus::frontend {

namespace {

kbus_message_t freshHeader(uint32_t nameLen, uint32_t dataLen, uint32_t flags) noexcept {
    kbus_message_t h{};
    h.start_guard = KBUS_MSG_START_GUARD;
    h.flags = flags;
    h.name_len = nameLen;
    h.data_len = dataLen;
    h.end_guard = KBUS_MSG_END_GUARD;
    return h;
}

// The request a reply answers or a stateful request follows: sets to and
// final_to, or returns -EBADMSG.
int statefulTarget(const kbus_message_t* earlier, uint32_t& to, kbus_orig_from_t& finalTo) {
    if (kbus_msg_is_reply(earlier)) {
        to = earlier->from;
        finalTo = earlier->orig_from;
        return 0;
    }
    if (kbus_msg_is_stateful_request(earlier)) {
        to = earlier->to;
        finalTo = earlier->final_to;
        return 0;
    }
    return -EBADMSG;
}

// A stateful request built by `create` (pointy or entire), addressed the way
// `earlier` says: to its replier, with final_to for a Limpet on the way.
template <class Create>
int createStateful(Create create, kbus_message_t** msg, const kbus_message_t* earlier,
                   const char* name, uint32_t name_len, const void* data, uint32_t data_len,
                   uint32_t flags) {
    uint32_t to = 0;
    kbus_orig_from_t finalTo{};
    if (const int rv = statefulTarget(earlier, to, finalTo); rv != 0) {
        return rv;
    }
    const int rv = create(msg, name, name_len, data, data_len, flags);
    if (rv == 0) {
        (*msg)->to = to;
        (*msg)->final_to = finalTo;
    }
    return rv;
}

bool isBindEvent(const kbus_message_t* msg, const char* name) {
    const size_t len = std::strlen(KBUS_MSG_NAME_REPLIER_BIND_EVENT);
    return msg->name_len == len && std::memcmp(name, KBUS_MSG_NAME_REPLIER_BIND_EVENT, len) == 0;
}

const char* kindOf(const kbus_message_t* msg, const char* name) {
    if (kbus_msg_is_reply(msg)) {
        return msg->name_len > 7 && std::strncmp("$.KBUS.", name, 7) == 0 ? "Status" : "Reply";
    }
    if (kbus_msg_is_request(msg)) {
        return "Request";
    }
    return isBindEvent(msg, name) ? "ReplierBindEvent" : "Announcement";
}

void printFields(FILE* stream, const kbus_message_t* msg) {
    if (msg->id.network_id != 0 || msg->id.serial_num != 0) {
        std::fprintf(stream, " id=[%" PRIu32 ":%" PRIu32 "]", msg->id.network_id,
                     msg->id.serial_num);
    }
    if (msg->to != 0) {
        std::fprintf(stream, " to=%" PRIu32, msg->to);
    }
    if (msg->from != 0) {
        std::fprintf(stream, " from=%" PRIu32, msg->from);
    }
    if (msg->orig_from.network_id != 0 || msg->orig_from.local_id != 0) {
        std::fprintf(stream, " orig_from=(%" PRIu32 ",%" PRIu32 ")", msg->orig_from.network_id,
                     msg->orig_from.local_id);
    }
    if (msg->final_to.network_id != 0 || msg->final_to.local_id != 0) {
        std::fprintf(stream, " final_to=(%" PRIu32 ",%" PRIu32 ")", msg->final_to.network_id,
                     msg->final_to.local_id);
    }
    if (kbus_msg_is_reply(msg)) {
        std::fprintf(stream, " in_reply_to=[%" PRIu32 ":%" PRIu32 "]", msg->in_reply_to.network_id,
                     msg->in_reply_to.serial_num);
    }
}

void printFlags(FILE* stream, uint32_t flags) {
    if (flags == 0) {
        return;
    }
    std::fprintf(stream, " flags=0x%" PRIx32, flags);
    const struct {
        uint32_t bit;
        const char* label;
    } names[] = {{KBUS_BIT_WANT_A_REPLY, " REQ"}, {KBUS_BIT_WANT_YOU_TO_REPLY, " YOU"},
                 {KBUS_BIT_SYNTHETIC, " SYN"},    {KBUS_BIT_URGENT, " URG"},
                 {KBUS_BIT_ALL_OR_FAIL, " aFL"},  {KBUS_BIT_ALL_OR_WAIT, " aWT"}};
    for (const auto& n : names) {
        if ((flags & n.bit) != 0) {
            std::fputs(n.label, stream);
        }
    }
}

void printData(FILE* stream, const kbus_message_t* msg, bool bindEvent, unsigned flags) {
    std::fputs(" data=", stream);
    if (bindEvent) {
        uint32_t isBind = 0;
        uint32_t binder = 0;
        char* bindName = nullptr;
        if (kbus_msg_split_bind_event(msg, &isBind, &binder, &bindName) == 0) {
            std::fprintf(stream, " [%s '%s' for %" PRIu32 "]", isBind != 0 ? "Bind" : "Unbind",
                         bindName, binder);
            std::free(bindName);
        }
        return;
    }
    const auto* data = static_cast<const unsigned char*>(kbus_msg_data_ptr(msg));
    uint32_t shown = msg->data_len;
    if ((flags & KBUS_MSG_PRINT_FLAGS_ABBREVIATE) != 0 && shown > 20) {
        shown = 20;
    }
    for (uint32_t i = 0; i < shown; ++i) {
        if (std::isprint(data[i]) != 0) {
            std::fputc(data[i], stream);
        } else {
            std::fprintf(stream, "\\x%02x", data[i]);
        }
    }
    if (shown < msg->data_len) {
        std::fputs("...", stream);
    }
}

void dumpText(const char* label, const unsigned char* bytes, uint32_t len) {
    std::printf("%s", label);
    for (uint32_t i = 0; i < len; ++i) {
        std::putchar(std::isgraph(bytes[i]) != 0 || bytes[i] == ' ' ? bytes[i] : '?');
    }
}

// As in kbus_ksock.cpp: a failure sets errno to match its -errno result.
template <class Call>
int withErrno(Call&& call) {
    const int saved = errno;
    const int rv = call();
    errno = rv < 0 ? -rv : saved;
    return rv;
}

} // namespace

} // namespace xkbus::frontend

using namespace xkbus::frontend;

extern "C" {

int kbus_msg_create(kbus_message_t** msg, const char* name, uint32_t name_len, const void* data,
                    uint32_t data_len, uint32_t flags) {
    return withErrno([&] {
        *msg = nullptr;
        auto* buf = static_cast<kbus_message_t*>(std::malloc(sizeof(kbus_message_t)));
        if (buf == nullptr) {
            return -ENOMEM;
        }
        *buf = freshHeader(name_len, data_len, flags);
        buf->name = const_cast<char*>(name);
        buf->data = const_cast<void*>(data);
        *msg = buf;
        return 0;
    });
}

int kbus_msg_create_entire(kbus_message_t** msg, const char* name, uint32_t name_len,
                           const void* data, uint32_t data_len, uint32_t flags) {
    return withErrno([&] {
        *msg = nullptr;
        const size_t length = entireLength(name_len, data_len);
        auto* buf = static_cast<unsigned char*>(std::calloc(1, length)); // zeroed: the padding
        if (buf == nullptr) {
            return -ENOMEM;
        }
        const kbus_message_t header = freshHeader(name_len, data_len, flags);
        std::memcpy(buf, &header, sizeof header);
        const size_t dataAt = HEADER_SIZE + paddedNameLength(name_len);
        const size_t guardAt = dataAt + paddedDataLength(data_len);
        if (name_len > 0) {
            std::memcpy(buf + HEADER_SIZE, name, name_len);
        }
        if (data_len > 0) {
            std::memcpy(buf + dataAt, data, data_len);
        }
        const uint32_t guard = KBUS_MSG_END_GUARD;
        std::memcpy(buf + guardAt, &guard, sizeof guard);
        *msg = reinterpret_cast<kbus_message_t*>(buf);
        return 0;
    });
}

int kbus_msg_create_request(kbus_message_t** msg, const char* name, uint32_t name_len,
                            const void* data, uint32_t data_len, uint32_t flags) {
    return withErrno([&] {
        return kbus_msg_create(msg, name, name_len, data, data_len, flags | KBUS_BIT_WANT_A_REPLY);
    });
}

int kbus_msg_create_entire_request(kbus_message_t** msg, const char* name, uint32_t name_len,
                                   const void* data, uint32_t data_len, uint32_t flags) {
    return withErrno([&] {
        return kbus_msg_create_entire(msg, name, name_len, data, data_len,
                                      flags | KBUS_BIT_WANT_A_REPLY);
    });
}

int kbus_msg_create_reply_to(kbus_message_t** msg, const kbus_message_t* in_reply_to,
                             const void* data, uint32_t data_len, uint32_t flags) {
    return withErrno([&] {
        if (!kbus_msg_wants_us_to_reply(in_reply_to)) {
            return -EBADMSG;
        }
        const int rv = kbus_msg_create(msg, kbus_msg_name_ptr(in_reply_to), in_reply_to->name_len,
                                       data, data_len, flags);
        if (rv == 0) {
            (*msg)->to = in_reply_to->from;
            (*msg)->in_reply_to = in_reply_to->id;
        }
        return rv;
    });
}

int kbus_msg_create_entire_reply_to(kbus_message_t** msg, const kbus_message_t* in_reply_to,
                                    const void* data, uint32_t data_len, uint32_t flags) {
    return withErrno([&] {
        if (!kbus_msg_wants_us_to_reply(in_reply_to)) {
            return -EBADMSG;
        }
        const int rv = kbus_msg_create_entire(msg, kbus_msg_name_ptr(in_reply_to),
                                              in_reply_to->name_len, data, data_len, flags);
        if (rv == 0) {
            (*msg)->to = in_reply_to->from;
            (*msg)->in_reply_to = in_reply_to->id;
        }
        return rv;
    });
}

int kbus_msg_create_stateful_request(kbus_message_t** msg, const kbus_message_t* earlier_msg,
                                     const char* name, uint32_t name_len, const void* data,
                                     uint32_t data_len, uint32_t flags) {
    return withErrno([&] {
        return createStateful(kbus_msg_create_request, msg, earlier_msg, name, name_len, data,
                              data_len, flags);
    });
}

int kbus_msg_create_entire_stateful_request(kbus_message_t** msg, const kbus_message_t* earlier_msg,
                                            const char* name, uint32_t name_len, const void* data,
                                            uint32_t data_len, uint32_t flags) {
    return withErrno([&] {
        return createStateful(kbus_msg_create_entire_request, msg, earlier_msg, name, name_len,
                              data, data_len, flags);
    });
}

void kbus_msg_delete(kbus_message_t** msg_p) {
    if (msg_p != nullptr && *msg_p != nullptr) {
        std::free(*msg_p);
        *msg_p = nullptr;
    }
}

void kbus_msg_delete_all(kbus_message_t** msg_p) {
    if (msg_p == nullptr || *msg_p == nullptr) {
        return;
    }
    if ((*msg_p)->name != nullptr) { // pointy: it owns its name and data
        std::free((*msg_p)->name);
        std::free((*msg_p)->data);
    }
    kbus_msg_delete(msg_p);
}

int kbus_msg_sizeof(const kbus_message_t* msg) {
    if (kbus_msg_is_entire(msg)) {
        return static_cast<int>(entireLength(msg->name_len, msg->data_len));
    }
    return static_cast<int>(sizeof *msg);
}

int kbus_msg_split_bind_event(const kbus_message_t* msg, uint32_t* is_bind, uint32_t* binder,
                              char** name) {
    return withErrno([&] {
        constexpr uint32_t FIXED = 3 * sizeof(uint32_t);
        const auto* data = static_cast<const unsigned char*>(kbus_msg_data_ptr(msg));
        if (data == nullptr || msg->data_len < FIXED) {
            return -EBADMSG;
        }
        uint32_t fixed[3];
        std::memcpy(fixed, data, sizeof fixed); // the data need not be aligned
        const uint32_t nameLen = fixed[2];
        if (nameLen > msg->data_len - FIXED) {
            return -EBADMSG; // never read past the data
        }
        char* copy = static_cast<char*>(std::malloc(size_t{nameLen} + 1));
        if (copy == nullptr) {
            return -ENOMEM;
        }
        std::memcpy(copy, data + FIXED, nameLen);
        copy[nameLen] = '\0';
        *is_bind = fixed[0];
        *binder = fixed[1];
        *name = copy;
        return 0;
    });
}

void kbus_msg_print(FILE* stream, const kbus_message_t* msg) {
    kbus_msg_print2(stream, msg, KBUS_MSG_PRINT_FLAGS_ABBREVIATE);
}

void kbus_msg_print2(FILE* stream, const kbus_message_t* msg, unsigned int flags) {
    const char* name = kbus_msg_name_ptr(msg);
    const bool bindEvent =
        !kbus_msg_is_reply(msg) && !kbus_msg_is_request(msg) && isBindEvent(msg, name);
    std::fprintf(stream, "<%s", kindOf(msg, name));
    if (!bindEvent) {
        std::fprintf(stream, " '%.*s'", static_cast<int>(msg->name_len), name);
    }
    printFields(stream, msg);
    printFlags(stream, msg->flags);
    if (msg->data_len > 0) {
        printData(stream, msg, bindEvent, flags);
    }
    std::fputc('>', stream);
}

void kbus_msg_dump(const kbus_message_t* msg, int dump_data) {
    std::printf("Message: %p\n", static_cast<const void*>(msg));
    std::printf("  start guard: %08" PRIx32 "\n", msg->start_guard);
    std::printf("  id:          {%" PRIu32 ",%" PRIu32 "}\n", msg->id.network_id,
                msg->id.serial_num);
    std::printf("  in_reply_to: {%" PRIu32 ",%" PRIu32 "}\n", msg->in_reply_to.network_id,
                msg->in_reply_to.serial_num);
    std::printf("  to:          %" PRIu32 "\n", msg->to);
    std::printf("  from:        %" PRIu32 "\n", msg->from);
    std::printf("  orig_from:   {%" PRIu32 ",%" PRIu32 "}\n", msg->orig_from.network_id,
                msg->orig_from.local_id);
    std::printf("  final_to:    {%" PRIu32 ",%" PRIu32 "}\n", msg->final_to.network_id,
                msg->final_to.local_id);
    std::printf("  flags:       %08" PRIx32 "\n", msg->flags);
    std::printf("  name_len:    %" PRIu32 "\n", msg->name_len);
    std::printf("  data_len:    %" PRIu32 "\n", msg->data_len);
    std::printf("  name (ptr):  %p\n", static_cast<void*>(msg->name));
    std::printf("  data (ptr):  %p\n", msg->data);
    std::printf("  end guard:   %08" PRIx32 "\n\n", msg->end_guard);
    dumpText("  Message name:   ", reinterpret_cast<const unsigned char*>(kbus_msg_name_ptr(msg)),
             msg->name_len);
    if (dump_data != 0) {
        const auto* data = static_cast<const unsigned char*>(kbus_msg_data_ptr(msg));
        dumpText("\n  Data (text):    ", data, msg->data_len);
        std::printf("\n  Data (bytes):   ");
        for (uint32_t i = 0; i < msg->data_len; ++i) {
            std::printf(i != 0 && i % 16 == 0 ? "\n                  %02x " : "%02x ", data[i]);
        }
    }
    std::printf("\n");
}

} // extern "C"
