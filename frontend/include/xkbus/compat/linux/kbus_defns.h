/* The KBUS device ABI: the message layout, flags, limits and ioctl numbers of
 * /dev/kbusN, as KBUS's <linux/kbus_defns.h> declared them (the names and
 * values are an interface; this text is xkbus's own). Installed under
 * include/xkbus/compat, never into the system's linux/ directory: build with
 * `pkg-config --cflags libkbus` to reach it as <linux/kbus_defns.h>.
 * C99 and C++. */
#ifndef XKBUS_COMPAT_KBUS_DEFNS_H_INCLUDED
#define XKBUS_COMPAT_KBUS_DEFNS_H_INCLUDED

#include <linux/ioctl.h>
#include <linux/types.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
/* The layout and helpers are C (a flexible array member, C casts), kept so
 * that C and C++ agree on the ABI. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wcast-align"
#pragma GCC diagnostic ignored "-Wcast-qual"
#endif

/* {0,0} is "no id". KBUS assigns the serial number when network_id is 0. */
struct kbus_msg_id {
    __u32 network_id;
    __u32 serial_num;
};

/* Limpet linkage; the bus carries it untouched. */
struct kbus_orig_from {
    __u32 network_id;
    __u32 local_id;
};

/* The argument of KBUS_IOC_BIND and KBUS_IOC_UNBIND. */
struct kbus_bind_request {
    __u32 is_replier;
    __u32 name_len;
    char* name;
};

/* The argument of KBUS_IOC_REPLIER; return_id is the answer. */
struct kbus_bind_query {
    __u32 return_id;
    __u32 name_len;
    char* name;
};

/* A message header. With name == NULL the name, data and a final end guard
 * follow it in memory ("entire"); otherwise name and data point elsewhere
 * ("pointy") and are only followed at SEND. */
struct kbus_message_header {
    __u32 start_guard;
    struct kbus_msg_id id;
    struct kbus_msg_id in_reply_to;
    __u32 to;
    __u32 from;
    struct kbus_orig_from orig_from;
    struct kbus_orig_from final_to;
    __u32 extra;
    __u32 flags;
    __u32 name_len;
    __u32 data_len;
    char* name;
    void* data;
    __u32 end_guard;
};

#define KBUS_MSG_START_GUARD 0x7375624B
#define KBUS_MSG_END_GUARD 0x4B627573

struct kbus_entire_message {
    struct kbus_message_header header;
    __u32 rest[];
};

#define KBUS_MAX_NAME_LEN 1000
#define KBUS_PADDED_NAME_LEN(name_len) (4 * ((name_len + 1 + 3) / 4))
#define KBUS_PADDED_DATA_LEN(data_len) (4 * ((data_len + 3) / 4))
#define KBUS_ENTIRE_MSG_LEN(name_len, data_len)                                                    \
    (sizeof(struct kbus_entire_message) + KBUS_PADDED_NAME_LEN(name_len) +                         \
     KBUS_PADDED_DATA_LEN(data_len) + 4)
/* Indices into kbus_entire_message.rest[]. */
#define KBUS_ENTIRE_MSG_DATA_INDEX(name_len) ((name_len + 1 + 3) / 4)
#define KBUS_ENTIRE_MSG_END_GUARD_INDEX(name_len, data_len)                                        \
    ((name_len + 1 + 3) / 4 + (data_len + 3) / 4)

#if defined(__x86_64__) || defined(__aarch64__)
#if defined(__cplusplus)
#define XKBUS_STATIC_ASSERT_(cond, msg) static_assert(cond, msg)
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define XKBUS_STATIC_ASSERT_(cond, msg) _Static_assert(cond, msg)
#else /* C99: a negative array size fails the build */
#define XKBUS_CONCAT2_(a, b) a##b
#define XKBUS_CONCAT_(a, b) XKBUS_CONCAT2_(a, b)
#define XKBUS_STATIC_ASSERT_(cond, msg)                                                            \
    typedef char XKBUS_CONCAT_(xkbus_layout_check_, __LINE__)[(cond) ? 1 : -1]
#endif
/* The layout KBUS has on a 64-bit Linux host. */
XKBUS_STATIC_ASSERT_(sizeof(struct kbus_message_header) == 88, "KBUS header is 88 bytes");
XKBUS_STATIC_ASSERT_(offsetof(struct kbus_message_header, id) == 4, "id at 4");
XKBUS_STATIC_ASSERT_(offsetof(struct kbus_message_header, in_reply_to) == 12, "in_reply_to");
XKBUS_STATIC_ASSERT_(offsetof(struct kbus_message_header, to) == 20, "to at 20");
XKBUS_STATIC_ASSERT_(offsetof(struct kbus_message_header, from) == 24, "from at 24");
XKBUS_STATIC_ASSERT_(offsetof(struct kbus_message_header, orig_from) == 28, "orig_from");
XKBUS_STATIC_ASSERT_(offsetof(struct kbus_message_header, final_to) == 36, "final_to");
XKBUS_STATIC_ASSERT_(offsetof(struct kbus_message_header, extra) == 44, "extra at 44");
XKBUS_STATIC_ASSERT_(offsetof(struct kbus_message_header, flags) == 48, "flags at 48");
XKBUS_STATIC_ASSERT_(offsetof(struct kbus_message_header, name_len) == 52, "name_len");
XKBUS_STATIC_ASSERT_(offsetof(struct kbus_message_header, data_len) == 56, "data_len");
XKBUS_STATIC_ASSERT_(offsetof(struct kbus_message_header, name) == 64, "name at 64");
XKBUS_STATIC_ASSERT_(offsetof(struct kbus_message_header, data) == 72, "data at 72");
XKBUS_STATIC_ASSERT_(offsetof(struct kbus_message_header, end_guard) == 80, "end_guard");
XKBUS_STATIC_ASSERT_(sizeof(struct kbus_entire_message) == 88, "entire header is 88 bytes");
XKBUS_STATIC_ASSERT_(sizeof(struct kbus_bind_request) == 16, "bind request is 16 bytes");
#undef XKBUS_STATIC_ASSERT_
#endif

/* The data of a $.KBUS.ReplierBindEvent: the name, NUL-padded to 4, follows. */
struct kbus_replier_bind_event_data {
    __u32 is_bind; /* 1 = bind, 0 = unbind */
    __u32 binder;  /* the binder's Ksock id */
    __u32 name_len;
    __u32 rest[];
};

#ifndef BIT
#define BIT(num) (1u << (num))
#endif

/* Flag bits. The top 16 bits are the application's. */
#define KBUS_BIT_WANT_A_REPLY BIT(0)
#define KBUS_BIT_WANT_YOU_TO_REPLY BIT(1)
#define KBUS_BIT_SYNTHETIC BIT(2)
#define KBUS_BIT_URGENT BIT(3)
#define KBUS_BIT_ALL_OR_WAIT BIT(8)
#define KBUS_BIT_ALL_OR_FAIL BIT(9)

/* Names the bus itself sends. */
#define KBUS_MSG_NAME_REPLIER_GONEAWAY "$.KBUS.Replier.GoneAway"
#define KBUS_MSG_NAME_REPLIER_IGNORED "$.KBUS.Replier.Ignored"
#define KBUS_MSG_NAME_REPLIER_UNBOUND "$.KBUS.Replier.Unbound"
#define KBUS_MSG_NAME_REPLIER_DISAPPEARED "$.KBUS.Replier.Disappeared"
#define KBUS_MSG_NAME_ERROR_SENDING "$.KBUS.ErrorSending"
#define KBUS_MSG_NAME_UNBIND_EVENTS_LOST "$.KBUS.UnbindEventsLost"
#define KBUS_MSG_NAME_REPLIER_BIND_EVENT "$.KBUS.ReplierBindEvent"

static inline char* kbus_msg_name_ptr(const struct kbus_message_header* hdr) {
    if (hdr->name) {
        return hdr->name;
    }
    return (char*)&((struct kbus_entire_message*)hdr)->rest[0];
}

static inline void* kbus_msg_data_ptr(const struct kbus_message_header* hdr) {
    if (hdr->data) {
        return hdr->data;
    }
    return (void*)&((struct kbus_entire_message*)hdr)
        ->rest[KBUS_ENTIRE_MSG_DATA_INDEX(hdr->name_len)];
}

static inline __u32* kbus_msg_end_ptr(struct kbus_entire_message* entire) {
    return &entire->rest[KBUS_ENTIRE_MSG_END_GUARD_INDEX(entire->header.name_len,
                                                         entire->header.data_len)];
}

/* ---- ioctls ---------------------------------------------------------------
 * The size field of every number is sizeof(char *), whatever the argument
 * really is: that is how KBUS numbered them. Each returns 0 or -1 with errno
 * unless noted. */
#define KBUS_IOC_MAGIC 'k'
/* No effect. */
#define KBUS_IOC_RESET _IO(KBUS_IOC_MAGIC, 1)
/* arg: struct kbus_bind_request *. */
#define KBUS_IOC_BIND _IOW(KBUS_IOC_MAGIC, 2, char*)
/* arg: struct kbus_bind_request *; must match a binding exactly. */
#define KBUS_IOC_UNBIND _IOW(KBUS_IOC_MAGIC, 3, char*)
/* arg: __u32 * (out): this Ksock's id. */
#define KBUS_IOC_KSOCKID _IOR(KBUS_IOC_MAGIC, 4, char*)
/* arg: struct kbus_bind_query *; returns 1 if a replier is bound to exactly
 * that name (its id in return_id), else 0. */
#define KBUS_IOC_REPLIER _IOWR(KBUS_IOC_MAGIC, 5, char*)
/* arg: __u32 * (out): the entire length of the message now being read, 0 if
 * none; returns 1 when there is a message, 0 when not. */
#define KBUS_IOC_NEXTMSG _IOR(KBUS_IOC_MAGIC, 6, char*)
/* arg: __u32 * (out): bytes of the current message not yet read. */
#define KBUS_IOC_LENLEFT _IOR(KBUS_IOC_MAGIC, 7, char*)
/* arg: struct kbus_msg_id * (out): the id given, also on EAGAIN. */
#define KBUS_IOC_SEND _IOR(KBUS_IOC_MAGIC, 8, char*)
/* Forgets the message being written (or blocked in sending). */
#define KBUS_IOC_DISCARD _IO(KBUS_IOC_MAGIC, 9)
/* arg: struct kbus_msg_id * (out): the id of the last message sent. */
#define KBUS_IOC_LASTSENT _IOR(KBUS_IOC_MAGIC, 10, char*)
/* arg: __u32 * (in: 0 asks, else the new queue limit; out: the limit). */
#define KBUS_IOC_MAXMSGS _IOWR(KBUS_IOC_MAGIC, 11, char*)
/* arg: __u32 * (out): messages queued for this Ksock. */
#define KBUS_IOC_NUMMSGS _IOR(KBUS_IOC_MAGIC, 12, char*)
/* arg: __u32 * (out): requests read and not yet replied to. */
#define KBUS_IOC_UNREPLIEDTO _IOR(KBUS_IOC_MAGIC, 13, char*)
/* arg: __u32 * (in: 0 or 1 sets, 0xFFFFFFFF asks; out: the previous value). */
#define KBUS_IOC_MSGONLYONCE _IOWR(KBUS_IOC_MAGIC, 14, char*)
/* As MSGONLYONCE, for the whole device. */
#define KBUS_IOC_VERBOSE _IOWR(KBUS_IOC_MAGIC, 15, char*)
/* arg: __u32 * (out): the number of the device just added. */
#define KBUS_IOC_NEWDEVICE _IOR(KBUS_IOC_MAGIC, 16, char*)
/* As MSGONLYONCE, for the whole device; 1 also queues, to the caller only,
 * a ReplierBindEvent for every replier already bound. */
#define KBUS_IOC_REPORTREPLIERBINDS _IOWR(KBUS_IOC_MAGIC, 17, char*)
/* arg: __u32 * (in: 0 asks the limit, 1 the absolute limit, else sets it;
 * out: the limit). */
#define KBUS_IOC_MAXMSGSIZE _IOWR(KBUS_IOC_MAGIC, 18, char*)
#define KBUS_IOC_MAXNR 18

#ifdef __cplusplus
#pragma GCC diagnostic pop
} /* extern "C" */
#endif

#endif /* XKBUS_COMPAT_KBUS_DEFNS_H_INCLUDED */
