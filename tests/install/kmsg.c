/* kmsg: send, call, listen and reply from the command line, written the way
 * KBUS's own utilities were: against <libkbus/kbus.h> only, and reporting a
 * failure with strerror(errno), which libkbus left set. It builds unchanged
 * with `cc kmsg.c $(pkg-config --cflags --libs libkbus)`.
 *
 *   kmsg [-b BUS] [-n COUNT] listen NAME...    print messages (COUNT of them)
 *   kmsg [-b BUS] send NAME [DATA]             send an announcement
 *   kmsg [-b BUS] call NAME [DATA]             send a request, print its answer
 *   kmsg [-b BUS] [-n COUNT] reply NAME [DATA] answer requests with DATA (else
 *                                              with the request's own data)
 * Exit status: 0, or 1 with the failure on stderr. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <libkbus/kbus.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failed(const char* what) {
    fprintf(stderr, "kmsg: %s: %s\n", what, strerror(errno));
    return 1;
}

static void print_message(const kbus_message_t* msg) {
    kbus_msg_print(stdout, msg);
    fputc('\n', stdout);
    fflush(stdout);
}

/* The next message, waiting for one. NULL (with errno) on failure. */
static kbus_message_t* next_message(kbus_ksock_t ksock) {
    kbus_message_t* msg = NULL;
    while (msg == NULL) {
        if (kbus_wait_for_message(ksock, KBUS_KSOCK_READABLE) < 0) {
            return NULL;
        }
        if (kbus_ksock_read_next_msg(ksock, &msg) < 0) {
            return NULL;
        }
    }
    return msg;
}

static int send_message(kbus_ksock_t ksock, const char* name, const char* data, int request,
                        kbus_msg_id_t* id) {
    kbus_message_t* msg = NULL;
    const uint32_t data_len = data != NULL ? (uint32_t)strlen(data) : 0;
    int rv = request
                 ? kbus_msg_create_request(&msg, name, (uint32_t)strlen(name), data, data_len, 0)
                 : kbus_msg_create(&msg, name, (uint32_t)strlen(name), data, data_len, 0);
    if (rv == 0) {
        rv = kbus_ksock_send_msg(ksock, msg, id);
    }
    kbus_msg_delete(&msg);
    return rv;
}

static int listen_to(kbus_ksock_t ksock, char** names, int count, long limit) {
    long seen = 0;
    int i;
    for (i = 0; i < count; ++i) {
        if (kbus_ksock_bind(ksock, names[i], 0) < 0) {
            return failed("bind");
        }
    }
    printf("listening\n");
    fflush(stdout);
    while (limit < 0 || seen < limit) {
        kbus_message_t* msg = next_message(ksock);
        if (msg == NULL) {
            return failed("read");
        }
        print_message(msg);
        kbus_msg_delete(&msg);
        ++seen;
    }
    return 0;
}

static int call(kbus_ksock_t ksock, const char* name, const char* data) {
    kbus_msg_id_t id;
    if (send_message(ksock, name, data, 1, &id) < 0) {
        return failed("send");
    }
    for (;;) {
        kbus_message_t* msg = next_message(ksock);
        int answer;
        if (msg == NULL) {
            return failed("read");
        }
        answer = kbus_msg_is_reply(msg) && kbus_msg_compare_ids(&msg->in_reply_to, &id) == 0;
        if (answer) {
            print_message(msg);
        }
        kbus_msg_delete(&msg);
        if (answer) {
            return 0;
        }
    }
}

static int reply(kbus_ksock_t ksock, const char* name, const char* data, long limit) {
    long answered = 0;
    if (kbus_ksock_bind(ksock, name, 1) < 0) {
        return failed("bind");
    }
    printf("serving\n");
    fflush(stdout);
    while (limit < 0 || answered < limit) {
        kbus_message_t* request = next_message(ksock);
        kbus_message_t* answer = NULL;
        kbus_msg_id_t id;
        int rv;
        if (request == NULL) {
            return failed("read");
        }
        if (!kbus_msg_wants_us_to_reply(request)) {
            kbus_msg_delete(&request);
            continue;
        }
        rv =
            data != NULL
                ? kbus_msg_create_entire_reply_to(&answer, request, data, (uint32_t)strlen(data), 0)
                : kbus_msg_create_entire_reply_to(&answer, request, kbus_msg_data_ptr(request),
                                                  request->data_len, 0);
        if (rv == 0) {
            rv = kbus_ksock_send_msg(ksock, answer, &id);
        }
        kbus_msg_delete(&answer);
        kbus_msg_delete(&request);
        if (rv < 0) {
            return failed("reply");
        }
        ++answered;
    }
    return 0;
}

static int usage(void) {
    fprintf(stderr, "usage: kmsg [-b BUS] [-n COUNT] listen NAME... | send NAME [DATA] | "
                    "call NAME [DATA] | reply NAME [DATA]\n");
    return 2;
}

int main(int argc, char** argv) {
    unsigned long bus = 0;
    long count = -1;
    kbus_ksock_t ksock;
    const char* command;
    int opt;
    int rv;
    while ((opt = getopt(argc, argv, "b:n:")) != -1) {
        if (opt == 'b') {
            bus = strtoul(optarg, NULL, 10);
        } else if (opt == 'n') {
            count = strtol(optarg, NULL, 10);
        } else {
            return usage();
        }
    }
    if (argc - optind < 2) {
        return usage();
    }
    command = argv[optind];
    ksock = kbus_ksock_open((uint32_t)bus, O_RDWR);
    if (ksock < 0) {
        return failed("open");
    }
    if (strcmp(command, "listen") == 0) {
        rv = listen_to(ksock, argv + optind + 1, argc - optind - 1, count);
    } else if (strcmp(command, "send") == 0) {
        kbus_msg_id_t id;
        rv = send_message(ksock, argv[optind + 1], argv[optind + 2], 0, &id) < 0 ? failed("send")
                                                                                 : 0;
    } else if (strcmp(command, "call") == 0) {
        rv = call(ksock, argv[optind + 1], argv[optind + 2]);
    } else if (strcmp(command, "reply") == 0) {
        rv = reply(ksock, argv[optind + 1], argv[optind + 2], count);
    } else {
        rv = usage();
    }
    kbus_ksock_close(ksock);
    return rv;
}
