/* <libkbus/kbus.h> and <linux/kbus_defns.h> as a KBUS program reaches them
 * (with include/xkbus/compat on the include path), compiled as C99 with
 * -pedantic -Werror: every ioctl number, flag and layout figure KBUS
 * programs were built with is checked at compile time, and the two headers
 * may be included together with <xkbus/kbus.h>. */
#include <libkbus/kbus.h>
#include <linux/kbus_defns.h>
#include <xkbus/kbus.h>

#define EXPECT_EQ(a, b) typedef char XKBUS_CAT(check_, __LINE__)[((a) == (b)) ? 1 : -1]
#define XKBUS_CAT2(a, b) a##b
#define XKBUS_CAT(a, b) XKBUS_CAT2(a, b)

/* The x86_64 values of KBUS's ioctl numbers (magic 'k', size sizeof(char *)). */
#if defined(__x86_64__) || defined(__aarch64__)
EXPECT_EQ(KBUS_IOC_RESET, 0x6b01);
EXPECT_EQ(KBUS_IOC_BIND, 0x40086b02);
EXPECT_EQ(KBUS_IOC_UNBIND, 0x40086b03);
EXPECT_EQ(KBUS_IOC_KSOCKID, 0x80086b04);
EXPECT_EQ(KBUS_IOC_REPLIER, 0xc0086b05);
EXPECT_EQ(KBUS_IOC_NEXTMSG, 0x80086b06);
EXPECT_EQ(KBUS_IOC_LENLEFT, 0x80086b07);
EXPECT_EQ(KBUS_IOC_SEND, 0x80086b08);
EXPECT_EQ(KBUS_IOC_DISCARD, 0x6b09);
EXPECT_EQ(KBUS_IOC_LASTSENT, 0x80086b0a);
EXPECT_EQ(KBUS_IOC_MAXMSGS, 0xc0086b0b);
EXPECT_EQ(KBUS_IOC_NUMMSGS, 0x80086b0c);
EXPECT_EQ(KBUS_IOC_UNREPLIEDTO, 0x80086b0d);
EXPECT_EQ(KBUS_IOC_MSGONLYONCE, 0xc0086b0e);
EXPECT_EQ(KBUS_IOC_VERBOSE, 0xc0086b0f);
EXPECT_EQ(KBUS_IOC_NEWDEVICE, 0x80086b10);
EXPECT_EQ(KBUS_IOC_REPORTREPLIERBINDS, 0xc0086b11);
EXPECT_EQ(KBUS_IOC_MAXMSGSIZE, 0xc0086b12);
EXPECT_EQ(sizeof(struct kbus_bind_request), 16);
EXPECT_EQ(sizeof(struct kbus_bind_query), 16);
EXPECT_EQ(KBUS_ENTIRE_MSG_LEN(6, 0), 100);
EXPECT_EQ(KBUS_ENTIRE_MSG_LEN(6, 7), 108);
#endif
EXPECT_EQ(KBUS_IOC_MAGIC, 0x6b);
EXPECT_EQ(KBUS_IOC_MAXNR, 18);
EXPECT_EQ(KBUS_MSG_START_GUARD, 0x7375624B);
EXPECT_EQ(KBUS_MSG_END_GUARD, 0x4B627573);
EXPECT_EQ(KBUS_BIT_WANT_A_REPLY, 0x1);
EXPECT_EQ(KBUS_BIT_WANT_YOU_TO_REPLY, 0x2);
EXPECT_EQ(KBUS_BIT_SYNTHETIC, 0x4);
EXPECT_EQ(KBUS_BIT_URGENT, 0x8);
EXPECT_EQ(KBUS_BIT_ALL_OR_WAIT, 0x100);
EXPECT_EQ(KBUS_BIT_ALL_OR_FAIL, 0x200);
EXPECT_EQ(KBUS_MAX_NAME_LEN, 1000);
EXPECT_EQ(KBUS_PADDED_NAME_LEN(6), 8);
EXPECT_EQ(KBUS_PADDED_DATA_LEN(7), 8);
EXPECT_EQ(KBUS_ENTIRE_MSG_DATA_INDEX(6), 2);
EXPECT_EQ(KBUS_ENTIRE_MSG_END_GUARD_INDEX(6, 7), 4);
EXPECT_EQ(KBUS_KSOCK_READABLE, 1);
EXPECT_EQ(KBUS_KSOCK_WRITABLE, 2);
EXPECT_EQ(KBUS_MSG_PRINT_FLAGS_ABBREVIATE, 1);
EXPECT_EQ(sizeof(KBUS_MSG_NAME_REPLIER_BIND_EVENT), sizeof("$.KBUS.ReplierBindEvent"));

int main(void) {
    /* The typedefs are the structs, and the helpers work on a built message. */
    struct kbus_message_header* header = NULL;
    kbus_message_t* msg = NULL;
    int ok = kbus_msg_create_entire(&msg, "$.Fred", 6, "abc1234", 7, 0) == 0;
    header = msg;
    ok = ok && kbus_msg_is_entire(header) && memcmp(kbus_msg_name_ptr(msg), "$.Fred", 7) == 0;
    ok = ok && memcmp(kbus_msg_data_ptr(msg), "abc1234", 7) == 0;
    ok = ok && *kbus_msg_end_ptr((kbus_entire_message_t*)msg) == KBUS_MSG_END_GUARD;
    kbus_msg_delete(&msg);
    return ok ? 0 : 1;
}
