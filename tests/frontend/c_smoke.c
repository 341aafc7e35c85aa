/* A libkbus-style C99 program: must compile as C with -Wall -Wextra -Werror
 * against <xkbus/kbus.h>, and run against the fake bus (c_smoke_main.cpp). */
#include <poll.h>
#include <xkbus/kbus.h>

int c_smoke_run(void);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "c_smoke: %s failed at line %d\n", #cond, __LINE__);                   \
            return __LINE__;                                                                       \
        }                                                                                          \
    } while (0)

int c_smoke_run(void) {
    kbus_ksock_t replier = kbus_ksock_open(0, O_RDWR);
    kbus_ksock_t sender = kbus_ksock_open_by_name("/dev/kbus0", O_RDWR);
    kbus_message_t* request = NULL;
    kbus_message_t* got = NULL;
    kbus_message_t* reply = NULL;
    kbus_msg_id_t id;
    uint32_t length = 0;
    const char data[] = "ping";
    CHECK(replier >= 0 && sender >= 0);
    CHECK(kbus_ksock_bind(replier, "$.Smoke", 1) == 0);

    CHECK(kbus_msg_create_request(&request, "$.Smoke", 7, data, 4, 0) == 0);
    CHECK(kbus_ksock_send_msg(sender, request, &id) == 0);
    kbus_msg_delete(&request);

    CHECK(kbus_wait_for_message(replier, KBUS_KSOCK_READABLE) == KBUS_KSOCK_READABLE);
    CHECK(kbus_ksock_next_msg(replier, &length) == 1);
    CHECK(length == KBUS_ENTIRE_MSG_LEN(7, 4));
    CHECK(kbus_ksock_read_msg(replier, &got, length) == 0);
    CHECK(kbus_msg_wants_us_to_reply(got));
    CHECK(memcmp(kbus_msg_data_ptr(got), "ping", 4) == 0);
    CHECK(kbus_msg_compare_ids(&got->id, &id) == 0);

    CHECK(kbus_msg_create_entire_reply_to(&reply, got, "pong", 4, 0) == 0);
    CHECK(kbus_msg_sizeof(reply) == (int)KBUS_ENTIRE_MSG_LEN(7, 4));
    CHECK(kbus_ksock_send_msg(replier, reply, &id) == 0);
    kbus_msg_delete(&reply);
    kbus_msg_delete(&got);

    CHECK(kbus_ksock_read_next_msg(sender, &got) == 0);
    CHECK(got != NULL && kbus_msg_is_reply(got));
    CHECK(strncmp(kbus_msg_name_ptr(got), "$.Smoke", 7) == 0);
    kbus_msg_print(stdout, got);
    printf("\n");
    kbus_msg_delete(&got);

    CHECK(kbus_ksock_only_once(sender, 1) == 0);
    CHECK(kbus_ksock_only_once(sender, 0xFFFFFFFF) == 1);
    CHECK(kbus_ksock_close(sender) == 0);
    CHECK(kbus_ksock_close(replier) == 0);
    return 0;
}
