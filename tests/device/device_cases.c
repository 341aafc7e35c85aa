/* A KBUS program that uses the device directly, as KBUS's Python module,
 * cppkbus and jkbus do: open("/dev/kbus0"), raw ioctl(), read(), write(),
 * poll(), select(), epoll, dup(), fork() and close(), and /proc/kbus. It
 * links nothing of xkbus; run under `xkbus run`, every ioctl of
 * <linux/kbus_defns.h> must behave as the kernel module's did.
 *
 *   device_cases CASE    runs one case; exits 0, or with the failing line */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kbus_defns.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "device_cases: %s failed at line %d (errno %d: %s)\n", #cond,          \
                    __LINE__, errno, strerror(errno));                                             \
            return __LINE__;                                                                       \
        }                                                                                          \
    } while (0)

/* An ioctl or call that must fail with exactly `err`. */
#define FAILS_WITH(call, err) CHECK((call) == -1 && errno == (err))

#define WAIT_MS 10000

static int open_kbus(int flags) {
    return open("/dev/kbus0", flags);
}

static uint32_t ksock_id(int fd) {
    uint32_t id = 0;
    return ioctl(fd, KBUS_IOC_KSOCKID, &id) == 0 ? id : 0;
}

static int bind_as(int fd, const char* name, uint32_t replier, unsigned long request) {
    struct kbus_bind_request r;
    r.is_replier = replier;
    r.name_len = (uint32_t)strlen(name);
    r.name = (char*)name;
    return ioctl(fd, request, &r);
}

static int bind_name(int fd, const char* name, uint32_t replier) {
    return bind_as(fd, name, replier, KBUS_IOC_BIND);
}

/* 0 if none is bound; -1 with errno on failure. */
static int find_replier(int fd, const char* name, uint32_t* id) {
    struct kbus_bind_query q;
    q.return_id = 77;
    q.name_len = (uint32_t)strlen(name);
    q.name = (char*)name;
    const int rv = ioctl(fd, KBUS_IOC_REPLIER, &q);
    *id = q.return_id;
    return rv;
}

/* An entire message in buf (at least KBUS_ENTIRE_MSG_LEN bytes). */
static size_t entire(unsigned char* buf, const char* name, const void* data, uint32_t data_len,
                     uint32_t flags) {
    struct kbus_message_header h;
    const uint32_t name_len = (uint32_t)strlen(name);
    const size_t length = KBUS_ENTIRE_MSG_LEN(name_len, data_len);
    const uint32_t guard = KBUS_MSG_END_GUARD;
    memset(&h, 0, sizeof h);
    memset(buf, 0, length);
    h.start_guard = KBUS_MSG_START_GUARD;
    h.end_guard = KBUS_MSG_END_GUARD;
    h.flags = flags;
    h.name_len = name_len;
    h.data_len = data_len;
    memcpy(buf, &h, sizeof h);
    memcpy(buf + sizeof h, name, name_len);
    if (data_len > 0) {
        memcpy(buf + sizeof h + KBUS_PADDED_NAME_LEN(name_len), data, data_len);
    }
    memcpy(buf + length - 4, &guard, 4);
    return length;
}

static struct kbus_message_header* header_of(unsigned char* buf) {
    return (struct kbus_message_header*)(void*)buf;
}

/* write() then SEND: 0, or -1 with errno. */
static int send_message(int fd, const unsigned char* buf, size_t length, struct kbus_msg_id* id) {
    if (write(fd, buf, length) != (ssize_t)length) {
        return -1;
    }
    return ioctl(fd, KBUS_IOC_SEND, id);
}

static int announce(int fd, const char* name, const char* data, uint32_t flags,
                    struct kbus_msg_id* id) {
    unsigned char buf[512];
    const size_t length = entire(buf, name, data, (uint32_t)strlen(data), flags);
    return send_message(fd, buf, length, id);
}

/* NEXTMSG and read() the whole message into buf: its length, or 0 if none. */
static uint32_t next_message(int fd, unsigned char* buf, size_t size) {
    uint32_t length = 0;
    uint32_t got = 0;
    if (ioctl(fd, KBUS_IOC_NEXTMSG, &length) < 0 || length == 0 || length > size) {
        return 0;
    }
    while (got < length) {
        const ssize_t n = read(fd, buf + got, length - got);
        if (n <= 0) {
            return 0;
        }
        got += (uint32_t)n;
    }
    return length;
}

static int poll_for(int fd, short events, int timeout_ms) {
    struct pollfd p;
    p.fd = fd;
    p.events = events;
    p.revents = 0;
    return poll(&p, 1, timeout_ms) == 1 ? (p.revents & events) : 0;
}

static int set_u32(int fd, unsigned long request, uint32_t value, uint32_t* out) {
    uint32_t cell = value;
    const int rv = ioctl(fd, request, &cell);
    *out = cell;
    return rv;
}

/* open, KSOCKID, RESET, and the kernel's refusals. */
static int case_open(void) {
    const int a = open_kbus(O_RDWR);
    const int b = open_kbus(O_RDONLY | O_CLOEXEC);
    uint32_t id = 0;
    CHECK(a >= 0 && b >= 0 && a != b);
    CHECK(ksock_id(a) == 1 && ksock_id(b) == 2);
    CHECK((fcntl(b, F_GETFD) & FD_CLOEXEC) != 0);
    CHECK(ioctl(a, KBUS_IOC_RESET) == 0);
    FAILS_WITH(open("/dev/kbus7", O_RDWR), ENOENT);
    FAILS_WITH(ioctl(a, _IO('x', 1)), ENOTTY);
    FAILS_WITH(ioctl(a, _IOR('k', 19, char*)), ENOTTY);
    FAILS_WITH(ioctl(a, KBUS_IOC_BIND, NULL), EFAULT);
    FAILS_WITH(ioctl(a, KBUS_IOC_KSOCKID, NULL), EFAULT);
    FAILS_WITH(ioctl(a, KBUS_IOC_KSOCKID, (void*)8), EFAULT);
    FAILS_WITH(ioctl(a, TCGETS, &id), ENOTTY); /* isatty() on a Ksock */
    CHECK(isatty(a) == 0);
    CHECK(close(a) == 0 && close(b) == 0);
    FAILS_WITH(ioctl(a, KBUS_IOC_KSOCKID, &id), EBADF);
    return 0;
}

/* BIND, UNBIND and REPLIER, with the kernel's errors for each. */
static int case_bind(void) {
    const int r = open_kbus(O_RDWR);
    const int other = open_kbus(O_RDWR);
    struct kbus_bind_request bad;
    char long_name[1003];
    uint32_t id = 0;
    CHECK(r >= 0 && other >= 0);
    CHECK(bind_name(r, "$.Fred", 0) == 0);
    CHECK(bind_name(r, "$.Fred", 1) == 0);
    FAILS_WITH(bind_name(other, "$.Fred", 1), EADDRINUSE);
    FAILS_WITH(bind_name(other, "", 0), EBADMSG);
    FAILS_WITH(bind_name(other, "Fred", 0), EBADMSG);
    FAILS_WITH(bind_name(other, "$.Fred*", 0), EBADMSG);
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[0] = '$';
    long_name[1] = '.';
    long_name[sizeof long_name - 1] = '\0';
    FAILS_WITH(bind_name(other, long_name, 0), ENAMETOOLONG);
    bad.is_replier = 0;
    bad.name_len = 6;
    bad.name = (char*)16;
    FAILS_WITH(ioctl(other, KBUS_IOC_BIND, &bad), EFAULT);

    CHECK(find_replier(other, "$.Fred", &id) == 1 && id == ksock_id(r));
    CHECK(find_replier(other, "$.Nobody", &id) == 0 && id == 0);
    FAILS_WITH(find_replier(other, "", &id), ENAMETOOLONG);
    FAILS_WITH(find_replier(other, long_name, &id), ENAMETOOLONG);

    CHECK(bind_as(r, "$.Fred", 0, KBUS_IOC_UNBIND) == 0);
    FAILS_WITH(bind_as(r, "$.Fred", 0, KBUS_IOC_UNBIND), EINVAL);
    CHECK(bind_as(r, "$.Fred", 1, KBUS_IOC_UNBIND) == 0);
    CHECK(find_replier(other, "$.Fred", &id) == 0);
    CHECK(close(r) == 0 && close(other) == 0);
    return 0;
}

/* write in pieces, SEND, LASTSENT, NEXTMSG, LENLEFT, read in pieces,
 * NUMMSGS, DISCARD, pointy messages, readv and writev. */
static int case_send_read(void) {
    const int sender = open_kbus(O_RDWR);
    const int listener = open_kbus(O_RDONLY);
    unsigned char msg[512];
    unsigned char got[512];
    struct kbus_msg_id id;
    struct kbus_msg_id last;
    struct kbus_message_header pointy;
    struct iovec pieces[3];
    uint32_t length = 0;
    uint32_t left = 0;
    uint32_t n = 0;
    const size_t size = entire(msg, "$.Fred", "abc1234", 7, 0);
    CHECK(sender >= 0 && listener >= 0);
    CHECK(bind_name(listener, "$.Fred", 0) == 0);
    CHECK(size == KBUS_ENTIRE_MSG_LEN(6, 7));
    CHECK(write(sender, msg, 10) == 10);
    CHECK(write(sender, msg + 10, 80) == 80);
    CHECK(write(sender, msg + 90, size - 90) == (ssize_t)(size - 90));
    CHECK(ioctl(sender, KBUS_IOC_SEND, &id) == 0 && id.network_id == 0 && id.serial_num == 1);
    CHECK(ioctl(sender, KBUS_IOC_LASTSENT, &last) == 0 && last.serial_num == 1);

    CHECK(poll_for(listener, POLLIN, WAIT_MS) == POLLIN);
    CHECK(ioctl(listener, KBUS_IOC_NUMMSGS, &n) == 0 && n == 1);
    CHECK(ioctl(listener, KBUS_IOC_NEXTMSG, &length) == 1 && length == size);
    CHECK(ioctl(listener, KBUS_IOC_LENLEFT, &left) == 0 && left == size);
    CHECK(read(listener, got, 10) == 10);
    CHECK(ioctl(listener, KBUS_IOC_LENLEFT, &left) == 0 && left == size - 10);
    CHECK(read(listener, got + 10, sizeof got - 10) == (ssize_t)(size - 10));
    CHECK(read(listener, got, sizeof got) == 0);
    CHECK(header_of(got)->from == ksock_id(sender) && header_of(got)->id.serial_num == 1);
    CHECK(memcmp(kbus_msg_name_ptr(header_of(got)), "$.Fred", 6) == 0);
    CHECK(memcmp(kbus_msg_data_ptr(header_of(got)), "abc1234", 7) == 0);
    CHECK(ioctl(listener, KBUS_IOC_NEXTMSG, &length) == 0 && length == 0);

    FAILS_WITH(ioctl(sender, KBUS_IOC_SEND, &id), ENOMSG);
    CHECK(write(sender, msg, sizeof(struct kbus_message_header)) ==
          (ssize_t)sizeof(struct kbus_message_header));
    CHECK(ioctl(sender, KBUS_IOC_DISCARD) == 0);
    FAILS_WITH(ioctl(sender, KBUS_IOC_SEND, &id), ENOMSG);
    FAILS_WITH(write(sender, msg, size + 4), EMSGSIZE);
    FAILS_WITH(write(listener, msg, size), EBADF);

    /* A pointy message: only the header is written; SEND follows it. */
    memset(&pointy, 0, sizeof pointy);
    pointy.start_guard = KBUS_MSG_START_GUARD;
    pointy.end_guard = KBUS_MSG_END_GUARD;
    pointy.name_len = 6;
    pointy.data_len = 5;
    pointy.name = (char*)"$.Fred";
    pointy.data = (void*)"point";
    CHECK(send_message(sender, (unsigned char*)&pointy, sizeof pointy, &id) == 0);
    CHECK(poll_for(listener, POLLIN, WAIT_MS) == POLLIN);
    CHECK(next_message(listener, got, sizeof got) == KBUS_ENTIRE_MSG_LEN(6, 5));
    CHECK(header_of(got)->name == NULL && header_of(got)->data == NULL); /* read: entire */
    CHECK(memcmp(kbus_msg_data_ptr(header_of(got)), "point", 5) == 0);

    /* writev and readv, one piece at a time as the kernel did. */
    pieces[0].iov_base = msg;
    pieces[0].iov_len = 40;
    pieces[1].iov_base = msg + 40;
    pieces[1].iov_len = 60;
    pieces[2].iov_base = msg + 100;
    pieces[2].iov_len = size - 100;
    CHECK(writev(sender, pieces, 3) == (ssize_t)size);
    CHECK(ioctl(sender, KBUS_IOC_SEND, &id) == 0);
    CHECK(poll_for(listener, POLLIN, WAIT_MS) == POLLIN);
    CHECK(ioctl(listener, KBUS_IOC_NEXTMSG, &length) == 1 && length == size);
    pieces[0].iov_base = got;
    pieces[0].iov_len = 50;
    pieces[1].iov_base = got + 50;
    pieces[1].iov_len = sizeof got - 50;
    CHECK(readv(listener, pieces, 2) == (ssize_t)size);
    CHECK(header_of(got)->id.serial_num == id.serial_num);
    CHECK(close(sender) == 0 && close(listener) == 0);
    return 0;
}

/* A request, its reply, UNREPLIEDTO and MSGONLYONCE. */
static int case_request_reply(void) {
    const int replier = open_kbus(O_RDWR);
    const int asker = open_kbus(O_RDWR);
    unsigned char buf[512];
    unsigned char got[512];
    struct kbus_msg_id id;
    struct kbus_msg_id reply_id;
    uint32_t n = 0;
    size_t size = 0;
    CHECK(replier >= 0 && asker >= 0);
    CHECK(bind_name(replier, "$.Time", 1) == 0);
    CHECK(announce(asker, "$.Time", "now?", KBUS_BIT_WANT_A_REPLY, &id) == 0);
    CHECK(poll_for(replier, POLLIN, WAIT_MS) == POLLIN);
    CHECK(next_message(replier, got, sizeof got) > 0);
    CHECK((header_of(got)->flags & KBUS_BIT_WANT_YOU_TO_REPLY) != 0);
    CHECK(header_of(got)->id.serial_num == id.serial_num);
    CHECK(ioctl(replier, KBUS_IOC_UNREPLIEDTO, &n) == 0 && n == 1);
    size = entire(buf, "$.Time", "noon", 4, 0);
    header_of(buf)->in_reply_to = header_of(got)->id;
    header_of(buf)->to = header_of(got)->from;
    CHECK(send_message(replier, buf, size, &reply_id) == 0);
    CHECK(ioctl(replier, KBUS_IOC_UNREPLIEDTO, &n) == 0 && n == 0);
    CHECK(poll_for(asker, POLLIN, WAIT_MS) == POLLIN);
    CHECK(next_message(asker, got, sizeof got) > 0);
    CHECK(header_of(got)->in_reply_to.serial_num == id.serial_num);
    CHECK(memcmp(kbus_msg_data_ptr(header_of(got)), "noon", 4) == 0);
    FAILS_WITH(send_message(replier, buf, size, &reply_id), ECONNREFUSED);
    FAILS_WITH(announce(asker, "$.Nobody", "", KBUS_BIT_WANT_A_REPLY, &id), EADDRNOTAVAIL);

    /* Only once: the replier bound as listener too gets one copy. */
    CHECK(bind_name(replier, "$.Time", 0) == 0);
    CHECK(set_u32(replier, KBUS_IOC_MSGONLYONCE, 1, &n) == 0 && n == 0);
    CHECK(set_u32(replier, KBUS_IOC_MSGONLYONCE, 0xFFFFFFFF, &n) == 0 && n == 1);
    FAILS_WITH(set_u32(replier, KBUS_IOC_MSGONLYONCE, 2, &n), EINVAL);
    CHECK(announce(asker, "$.Time", "", KBUS_BIT_WANT_A_REPLY, &id) == 0);
    CHECK(poll_for(replier, POLLIN, WAIT_MS) == POLLIN);
    CHECK(ioctl(replier, KBUS_IOC_NUMMSGS, &n) == 0 && n == 1);
    CHECK(close(replier) == 0);
    /* The replier closed with the request unread: the bus answers. */
    CHECK(poll_for(asker, POLLIN, WAIT_MS) == POLLIN);
    CHECK(next_message(asker, got, sizeof got) > 0);
    CHECK(memcmp(kbus_msg_name_ptr(header_of(got)), "$.KBUS.Replier.GoneAway", 23) == 0);
    CHECK((header_of(got)->flags & KBUS_BIT_SYNTHETIC) != 0);
    CHECK(close(asker) == 0);
    return 0;
}

/* MAXMSGS, ALL_OR_FAIL, MAXMSGSIZE. */
static int case_limits(void) {
    const int sender = open_kbus(O_RDWR);
    const int listener = open_kbus(O_RDWR);
    unsigned char buf[512];
    struct kbus_msg_id id;
    uint32_t n = 0;
    const char data[300] = {0};
    CHECK(sender >= 0 && listener >= 0);
    CHECK(bind_name(listener, "$.Busy", 0) == 0);
    CHECK(set_u32(listener, KBUS_IOC_MAXMSGS, 0, &n) == 0 && n == 100);
    CHECK(set_u32(listener, KBUS_IOC_MAXMSGS, 1, &n) == 0 && n == 1);
    CHECK(announce(sender, "$.Busy", "1", 0, &id) == 0);
    CHECK(announce(sender, "$.Busy", "2", 0, &id) == 0);
    CHECK(ioctl(listener, KBUS_IOC_NUMMSGS, &n) == 0 && n == 1);
    FAILS_WITH(announce(sender, "$.Busy", "3", KBUS_BIT_ALL_OR_FAIL, &id), EBUSY);

    CHECK(set_u32(sender, KBUS_IOC_MAXMSGSIZE, 0, &n) == 0 && n == 409600);
    CHECK(set_u32(sender, KBUS_IOC_MAXMSGSIZE, 1, &n) == 0 && n == 409600);
    CHECK(set_u32(sender, KBUS_IOC_MAXMSGSIZE, 200, &n) == 0 && n == 200);
    FAILS_WITH(set_u32(sender, KBUS_IOC_MAXMSGSIZE, 99, &n), EINVAL);
    entire(buf, "$.Busy", data, sizeof data, 0);
    FAILS_WITH(write(listener, buf, sizeof(struct kbus_message_header)), EMSGSIZE);
    CHECK(set_u32(listener, KBUS_IOC_MAXMSGSIZE, 0, &n) == 0 && n == 200);
    CHECK(close(sender) == 0 && close(listener) == 0);
    return 0;
}

/* poll, select and epoll see what the kernel's poll said, including a
 * blocked ALL_OR_WAIT send (unwritable, write gives EALREADY). */
static int case_poll(void) {
    const int sender = open_kbus(O_RDWR);
    const int listener = open_kbus(O_RDWR);
    unsigned char got[512];
    struct kbus_msg_id id;
    struct kbus_msg_id blocked;
    struct epoll_event event;
    struct epoll_event seen;
    struct timeval now = {0, 0};
    fd_set readable;
    const int ep = epoll_create1(EPOLL_CLOEXEC);
    uint32_t n = 0;
    CHECK(sender >= 0 && listener >= 0 && ep >= 0);
    CHECK(bind_name(listener, "$.Slow", 0) == 0);
    CHECK(poll_for(listener, POLLIN, 0) == 0);
    CHECK(poll_for(sender, POLLOUT, 0) == POLLOUT);
    event.events = EPOLLIN;
    event.data.fd = listener;
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, listener, &event) == 0);
    CHECK(epoll_wait(ep, &seen, 1, 0) == 0);

    CHECK(set_u32(listener, KBUS_IOC_MAXMSGS, 1, &n) == 0);
    CHECK(announce(sender, "$.Slow", "first", 0, &id) == 0);
    CHECK(epoll_wait(ep, &seen, 1, WAIT_MS) == 1 && seen.data.fd == listener);
    FD_ZERO(&readable);
    FD_SET(listener, &readable);
    CHECK(select(listener + 1, &readable, NULL, NULL, &now) == 1);

    memset(&blocked, 0, sizeof blocked);
    FAILS_WITH(announce(sender, "$.Slow", "second", KBUS_BIT_ALL_OR_WAIT, &blocked), EAGAIN);
    CHECK(blocked.serial_num == id.serial_num + 1); /* SEND gave the id with EAGAIN */
    CHECK(poll_for(sender, POLLOUT, 0) == 0);
    FAILS_WITH(write(sender, got, 4), EALREADY);
    CHECK(next_message(listener, got, sizeof got) > 0);
    CHECK(poll_for(sender, POLLOUT, WAIT_MS) == POLLOUT);
    CHECK(poll_for(listener, POLLIN, WAIT_MS) == POLLIN);
    CHECK(next_message(listener, got, sizeof got) > 0);
    CHECK(header_of(got)->id.serial_num == blocked.serial_num);
    CHECK(memcmp(kbus_msg_data_ptr(header_of(got)), "second", 6) == 0);
    CHECK(close(ep) == 0 && close(sender) == 0 && close(listener) == 0);
    return 0;
}

/* REPORTREPLIERBINDS with its event, VERBOSE and NEWDEVICE. */
static int case_device_settings(void) {
    const int watcher = open_kbus(O_RDWR);
    const int replier = open_kbus(O_RDWR);
    unsigned char got[512];
    struct kbus_replier_bind_event_data event;
    uint32_t n = 0;
    uint32_t bus = 0;
    int on_new_bus = -1;
    char path[32];
    CHECK(watcher >= 0 && replier >= 0);
    CHECK(bind_name(watcher, KBUS_MSG_NAME_REPLIER_BIND_EVENT, 0) == 0);
    CHECK(set_u32(watcher, KBUS_IOC_REPORTREPLIERBINDS, 1, &n) == 0 && n == 0);
    CHECK(set_u32(replier, KBUS_IOC_REPORTREPLIERBINDS, 0xFFFFFFFF, &n) == 0 && n == 1);
    CHECK(bind_name(replier, "$.Served", 1) == 0);
    CHECK(poll_for(watcher, POLLIN, WAIT_MS) == POLLIN);
    CHECK(next_message(watcher, got, sizeof got) > 0);
    CHECK(memcmp(kbus_msg_name_ptr(header_of(got)), KBUS_MSG_NAME_REPLIER_BIND_EVENT, 23) == 0);
    memcpy(&event, kbus_msg_data_ptr(header_of(got)), sizeof event);
    CHECK(event.is_bind == 1 && event.binder == ksock_id(replier) && event.name_len == 8);
    CHECK(memcmp((char*)kbus_msg_data_ptr(header_of(got)) + sizeof event, "$.Served", 8) == 0);
    CHECK(set_u32(watcher, KBUS_IOC_REPORTREPLIERBINDS, 0, &n) == 0 && n == 1);
    FAILS_WITH(set_u32(watcher, KBUS_IOC_REPORTREPLIERBINDS, 5, &n), EINVAL);

    CHECK(set_u32(watcher, KBUS_IOC_VERBOSE, 1, &n) == 0 && n == 0);
    CHECK(set_u32(watcher, KBUS_IOC_VERBOSE, 0xFFFFFFFF, &n) == 0 && n == 1);
    CHECK(set_u32(watcher, KBUS_IOC_VERBOSE, 0, &n) == 0 && n == 1);

    CHECK(ioctl(watcher, KBUS_IOC_NEWDEVICE, &bus) == 0 && bus >= 1);
    snprintf(path, sizeof path, "/dev/kbus%u", bus);
    on_new_bus = open(path, O_RDWR);
    CHECK(on_new_bus >= 0 && ksock_id(on_new_bus) == 1);
    CHECK(close(on_new_bus) == 0 && close(watcher) == 0 && close(replier) == 0);
    return 0;
}

/* dup, dup2, dup3 and F_DUPFD name the same Ksock, which closes with the
 * last of them; after fork() the Ksocks stay with the parent. */
static int case_dup_fork(void) {
    const int fd = open_kbus(O_RDWR);
    const int observer = open_kbus(O_RDWR);
    const int listener = open_kbus(O_RDWR);
    unsigned char got[512];
    struct kbus_msg_id id;
    uint32_t replier = 0;
    int status = 0;
    pid_t child;
    int copy;
    int high;
    CHECK(fd >= 0 && observer >= 0 && listener >= 0);
    copy = dup(fd);
    high = fcntl(copy, F_DUPFD_CLOEXEC, 100);
    CHECK(copy >= 0 && high >= 100 && ksock_id(copy) == ksock_id(fd) && ksock_id(high) == 1);
    CHECK(dup2(copy, 60) == 60 && dup3(copy, 61, O_CLOEXEC) == 61 && ksock_id(61) == 1);
    CHECK(close(fd) == 0);
    CHECK(bind_name(copy, "$.Dup", 1) == 0);
    CHECK(find_replier(observer, "$.Dup", &replier) == 1 && replier == 1);
    CHECK(close(copy) == 0 && close(high) == 0 && close(60) == 0);
    CHECK(find_replier(observer, "$.Dup", &replier) == 1);
    CHECK(close(61) == 0); /* the last one: the Ksock closes */
    CHECK(find_replier(observer, "$.Dup", &replier) == 0);

    CHECK(bind_name(listener, "$.Forked", 0) == 0);
    child = fork();
    if (child == 0) {
        /* The parent's Ksocks stay the parent's (their connection to the
         * daemon is the parent's): the child gets EBADF on them, may close
         * them without closing them for the parent, and opens its own. */
        uint32_t id_seen = 0;
        const int own = open_kbus(O_RDWR);
        int rv = ioctl(observer, KBUS_IOC_KSOCKID, &id_seen) == -1 && errno == EBADF ? 0 : 1;
        rv |= close(listener) == 0 ? 0 : 2;
        rv |= own >= 0 && announce(own, "$.Forked", "from the child", 0, &id) == 0 ? 0 : 4;
        rv |= own >= 0 && ksock_id(own) == 4 ? 0 : 8;
        _exit(rv);
    }
    CHECK(child > 0 && waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(poll_for(listener, POLLIN, WAIT_MS) == POLLIN);
    CHECK(next_message(listener, got, sizeof got) > 0);
    CHECK(header_of(got)->from == 4);
    CHECK(announce(observer, "$.Forked", "from the parent", 0, &id) == 0);
    CHECK(poll_for(listener, POLLIN, WAIT_MS) == POLLIN);
    CHECK(next_message(listener, got, sizeof got) > 0);
    CHECK(header_of(got)->from == ksock_id(observer));
    CHECK(close(observer) == 0 && close(listener) == 0);
    return 0;
}

/* /proc/kbus/bindings and /proc/kbus/stats, with open/read and with stdio. */
static int case_proc(void) {
    const int k = open_kbus(O_RDWR);
    char text[4096];
    char expected[128];
    char line[256];
    ssize_t n;
    int fd;
    FILE* stats;
    CHECK(k >= 0);
    CHECK(bind_name(k, "$.Proc.Served", 1) == 0);
    fd = open("/proc/kbus/bindings", O_RDONLY);
    CHECK(fd >= 0);
    n = read(fd, text, sizeof text - 1);
    CHECK(n > 0);
    text[n] = '\0';
    CHECK(strncmp(text, "# <device> is bound to <Ksock-ID> in <process-PID> as", 53) == 0);
    snprintf(expected, sizeof expected, "  0: %8u %8lu  R  $.Proc.Served\n", ksock_id(k),
             (unsigned long)getpid());
    CHECK(strstr(text, expected) != NULL);
    CHECK(close(fd) == 0);
    stats = fopen("/proc/kbus/stats", "r");
    CHECK(stats != NULL);
    CHECK(fgets(line, sizeof line, stats) != NULL);
    CHECK(strncmp(line, "dev  0: next ksock 2 next msg 1 unsent unbindings 0", 51) == 0);
    CHECK(fgets(line, sizeof line, stats) != NULL);
    CHECK(strcmp(line, "    ksock 1 last msg 0:0 queue 0 of 100\n") == 0);
    CHECK(fclose(stats) == 0);
    FAILS_WITH(open("/proc/kbus/bindings", O_WRONLY), EACCES);
    CHECK(close(k) == 0);
    return 0;
}

struct device_case {
    const char* name;
    int (*run)(void);
};

static const struct device_case cases[] = {
    {"open", case_open},
    {"bind", case_bind},
    {"send_read", case_send_read},
    {"request_reply", case_request_reply},
    {"limits", case_limits},
    {"poll", case_poll},
    {"device_settings", case_device_settings},
    {"dup_fork", case_dup_fork},
    {"proc", case_proc},
};

int main(int argc, char** argv) {
    size_t i;
    if (argc != 2) {
        fprintf(stderr, "usage: device_cases CASE\n");
        return 2;
    }
    for (i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
        if (strcmp(argv[1], cases[i].name) == 0) {
            return cases[i].run() == 0 ? 0 : 1;
        }
    }
    fprintf(stderr, "device_cases: no case %s\n", argv[1]);
    return 2;
}
