/* The libkbus C API: the same types, constants and functions as KBUS's
 * <libkbus/kbus.h> (the names and values are an interface; this text is
 * xkbus's own), so a libkbus program compiles unchanged. Installed under
 * include/xkbus/compat: build with `pkg-config --cflags --libs libkbus`.
 * C99 and C++. Differences and xkbus additions: docs/c-api.md. */
#ifndef XKBUS_COMPAT_LIBKBUS_H_INCLUDED
#define XKBUS_COMPAT_LIBKBUS_H_INCLUDED

/* libkbus's header pulled these in, and its users rely on them. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* Relative, so that <xkbus/kbus.h> finds it without the compat directory on
 * the include path. */
#include "../linux/kbus_defns.h"

#ifdef __cplusplus
extern "C" {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
#endif

/* The library is built with hidden symbols; these are what it exports. */
#pragma GCC visibility push(default)

typedef struct kbus_msg_id kbus_msg_id_t;
typedef struct kbus_orig_from kbus_orig_from_t;
typedef struct kbus_bind_request kbus_bind_request_t;
typedef struct kbus_bind_query kbus_bind_query_t;
typedef struct kbus_message_header kbus_message_t;
typedef struct kbus_entire_message kbus_entire_message_t;
typedef struct kbus_replier_bind_event_data kbus_replier_bind_event_data_t;

/* A Ksock: a pollable file descriptor (see docs/c-api.md for what it is). */
typedef int kbus_ksock_t;

/* For kbus_wait_for_message. */
#define KBUS_KSOCK_READABLE 1
#define KBUS_KSOCK_WRITABLE 2

#define KBUS_MSG_PRINT_FLAGS_ABBREVIATE (1 << 0)

/* Unless noted, functions return 0 on success or a negative errno, and a
 * failure also leaves errno set to that errno (as libkbus's ioctls did); a
 * success leaves errno alone. */

/* Opens a Ksock on bus `device_number`; `flags & O_ACCMODE` chooses read,
 * write or both. Returns the Ksock (an fd) or -errno. */
extern kbus_ksock_t kbus_ksock_open(uint32_t device_number, int flags);
/* As kbus_ksock_open for the device /dev/kbus<N> (a relative name counts from
 * the working directory); any other path gives -ENOENT. */
extern kbus_ksock_t kbus_ksock_open_by_name(const char* device_name, int flags);
extern int kbus_ksock_close(kbus_ksock_t ksock);
extern int kbus_ksock_bind(kbus_ksock_t ksock, const char* name, uint32_t is_replier);
extern int kbus_ksock_unbind(kbus_ksock_t ksock, const char* name, uint32_t is_replier);
extern int kbus_ksock_id(kbus_ksock_t ksock, uint32_t* ksock_id);
/* Pops the next message and makes it the one being read. Returns 1 and its
 * entire length when there is one, 0 and length 0 when there is none. */
extern int kbus_ksock_next_msg(kbus_ksock_t ksock, uint32_t* message_length);
extern int kbus_ksock_len_left(kbus_ksock_t ksock, uint32_t* len_left);
extern int kbus_ksock_last_msg_id(kbus_ksock_t ksock, kbus_msg_id_t* msg_id);
extern int kbus_ksock_find_replier(kbus_ksock_t ksock, const char* name,
                                   uint32_t* replier_ksock_id);
/* In: 0 queries, anything else sets the queue limit. Out: the limit. */
extern int kbus_ksock_max_messages(kbus_ksock_t ksock, uint32_t* max_messages);
extern int kbus_ksock_num_messages(kbus_ksock_t ksock, uint32_t* num_messages);
extern int kbus_ksock_num_unreplied_to(kbus_ksock_t ksock, uint32_t* num_messages);
/* Sends what has been written. -EAGAIN (ALL_OR_WAIT blocked) still sets
 * *msg_id. */
extern int kbus_ksock_send(kbus_ksock_t ksock, kbus_msg_id_t* msg_id);
extern int kbus_ksock_discard(kbus_ksock_t ksock);
/* request: 0 or 1 sets, 0xFFFFFFFF queries. Return the previous state (0 or
 * 1), or -errno. */
extern int kbus_ksock_only_once(kbus_ksock_t ksock, uint32_t request);
extern int kbus_ksock_report_replier_binds(kbus_ksock_t ksock, uint32_t request);
extern int kbus_ksock_kernel_module_verbose(kbus_ksock_t ksock, uint32_t request);
/* In: 0 queries the current limit, 1 the absolute one, else sets it. */
extern int kbus_ksock_max_message_size(kbus_ksock_t ksock, uint32_t* max_bytes);
extern int kbus_ksock_new_device(kbus_ksock_t ksock, uint32_t* device_number);
/* Waits (no timeout) until the Ksock is readable and/or writable, as asked;
 * returns a mask of KBUS_KSOCK_READABLE|KBUS_KSOCK_WRITABLE, or -errno. */
extern int kbus_wait_for_message(kbus_ksock_t ksock, int wait_for);
/* Reads msg_len bytes of the current message into a new malloc'd buffer. */
extern int kbus_ksock_read_msg(kbus_ksock_t ksock, kbus_message_t** msg, size_t msg_len);
/* next_msg then read_msg; *msg is NULL when there is no message. */
extern int kbus_ksock_read_next_msg(kbus_ksock_t ksock, kbus_message_t** msg);
/* Writes the header (pointy) or the whole entire message; does not send. */
extern int kbus_ksock_write_msg(kbus_ksock_t ksock, const kbus_message_t* msg);
extern int kbus_ksock_write_data(kbus_ksock_t ksock, uint8_t* data, size_t data_len);
extern int kbus_ksock_send_msg(kbus_ksock_t ksock, const kbus_message_t* msg,
                               kbus_msg_id_t* msg_id);
/* xkbus extension: sends `count` messages (entire or pointy, as
 * kbus_ksock_send_msg takes them) in one call. They go in order, with no other
 * sender's message between them. ids[i] and errors[i] (0 or -errno, as
 * kbus_ksock_send_msg would return) tell what became of msgs[i]. Returns 0 once
 * the batch was sent (look at errors[]), or -errno with nothing sent: -EFAULT
 * for a NULL array, -EINVAL for 0 or over 4096 messages, or one not well-formed
 * (errors[i] says which), -EMSGSIZE for over 400 KiB in all. A message written
 * with kbus_ksock_write_msg and not yet sent is left alone. */
extern int kbus_ksock_send_msgs(kbus_ksock_t ksock, const kbus_message_t* const* msgs, size_t count,
                                kbus_msg_id_t* ids, int* errors);

/* xkbus additions: what write(2) and read(2) did on a KBUS device. A Ksock is
 * not a kernel device, so plain write()/read() on it cannot reach the bus.
 * Return the bytes taken or given (read: 0 at the end of the message or with
 * none), or -errno. */
extern ssize_t kbus_ksock_write(kbus_ksock_t ksock, const void* buf, size_t len);
extern ssize_t kbus_ksock_read(kbus_ksock_t ksock, void* buf, size_t len);

/* xkbus addition: what /proc/kbus/bindings or /proc/kbus/stats showed, in the
 * kernel module's text format, for every bus the daemon serves. `name` is
 * "bindings" or "stats" (or the /proc/kbus/ path). *text is a malloc'd,
 * NUL-terminated string the caller frees. Returns 0 or -errno. */
extern int kbus_read_proc(const char* name, char** text);

/* Message builders. The pointy ones keep name and data by pointer (they must
 * live until the send); the entire ones copy them. Free with
 * kbus_msg_delete (or kbus_msg_delete_all for a pointy message that owns
 * malloc'd name and data). */
extern int kbus_msg_create(kbus_message_t** msg, const char* name, uint32_t name_len,
                           const void* data, uint32_t data_len, uint32_t flags);
extern int kbus_msg_create_entire(kbus_message_t** msg, const char* name, uint32_t name_len,
                                  const void* data, uint32_t data_len, uint32_t flags);
extern int kbus_msg_create_request(kbus_message_t** msg, const char* name, uint32_t name_len,
                                   const void* data, uint32_t data_len, uint32_t flags);
extern int kbus_msg_create_entire_request(kbus_message_t** msg, const char* name, uint32_t name_len,
                                          const void* data, uint32_t data_len, uint32_t flags);
/* -EBADMSG unless in_reply_to wants us to reply. */
extern int kbus_msg_create_reply_to(kbus_message_t** msg, const kbus_message_t* in_reply_to,
                                    const void* data, uint32_t data_len, uint32_t flags);
extern int kbus_msg_create_entire_reply_to(kbus_message_t** msg, const kbus_message_t* in_reply_to,
                                           const void* data, uint32_t data_len, uint32_t flags);
/* earlier_msg must be a reply or a stateful request, else -EBADMSG. Sets
 * WANT_A_REPLY (libkbus did not). */
extern int kbus_msg_create_stateful_request(kbus_message_t** msg, const kbus_message_t* earlier_msg,
                                            const char* name, uint32_t name_len, const void* data,
                                            uint32_t data_len, uint32_t flags);
extern int kbus_msg_create_entire_stateful_request(kbus_message_t** msg,
                                                   const kbus_message_t* earlier_msg,
                                                   const char* name, uint32_t name_len,
                                                   const void* data, uint32_t data_len,
                                                   uint32_t flags);
extern void kbus_msg_delete(kbus_message_t** msg_p);
extern void kbus_msg_delete_all(kbus_message_t** msg_p);
/* The header size (pointy) or the entire length. */
extern int kbus_msg_sizeof(const kbus_message_t* msg);
/* The name is malloc'd; the caller frees it. -EBADMSG if the data is not a
 * well-formed bind event. */
extern int kbus_msg_split_bind_event(const kbus_message_t* msg, uint32_t* is_bind, uint32_t* binder,
                                     char** name);
extern void kbus_msg_print(FILE* stream, const kbus_message_t* msg);
extern void kbus_msg_print2(FILE* stream, const kbus_message_t* msg, unsigned int flags);
extern void kbus_msg_dump(const kbus_message_t* msg, int dump_data);

static inline int kbus_msg_is_entire(const kbus_message_t* msg) {
    return msg->name == NULL;
}

static inline int kbus_msg_is_reply(const kbus_message_t* msg) {
    return msg->in_reply_to.network_id != 0 || msg->in_reply_to.serial_num != 0;
}

static inline int kbus_msg_is_request(const kbus_message_t* msg) {
    return (msg->flags & KBUS_BIT_WANT_A_REPLY) != 0;
}

static inline int kbus_msg_is_stateful_request(const kbus_message_t* msg) {
    return (msg->flags & KBUS_BIT_WANT_A_REPLY) != 0 && msg->to != 0;
}

static inline int kbus_msg_wants_us_to_reply(const kbus_message_t* msg) {
    return (msg->flags & KBUS_BIT_WANT_A_REPLY) != 0 &&
           (msg->flags & KBUS_BIT_WANT_YOU_TO_REPLY) != 0;
}

static inline int kbus_msg_compare_ids(const kbus_msg_id_t* id1, const kbus_msg_id_t* id2) {
    if (id1->network_id != id2->network_id) {
        return id1->network_id < id2->network_id ? -1 : 1;
    }
    if (id1->serial_num != id2->serial_num) {
        return id1->serial_num < id2->serial_num ? -1 : 1;
    }
    return 0;
}

#pragma GCC visibility pop

#ifdef __cplusplus
#pragma GCC diagnostic pop
} /* extern "C" */
#endif

#endif /* XKBUS_COMPAT_LIBKBUS_H_INCLUDED */
