// The kbus_msg_* builders and helpers: exact layouts, sizes, padding, guards,
// reply and stateful-request fields, bind-event splitting and printing.
#include "kbus_test_support.hpp"

#include <cstdio>
#include <cstring>

namespace xkbus::frontend::testing {
namespace {

uint32_t wordAt(const kbus_message_t* m, size_t offset) {
    uint32_t w = 0;
    std::memcpy(&w, reinterpret_cast<const unsigned char*>(m) + offset, sizeof w);
    return w;
}

TEST(KbusMsg, EntireLengthMacrosMatchKbus) {
    EXPECT_EQ(sizeof(kbus_message_t), 88u);
    EXPECT_EQ(KBUS_ENTIRE_MSG_LEN(6, 0), 100u);
    EXPECT_EQ(KBUS_ENTIRE_MSG_LEN(6, 7), 108u);
    EXPECT_EQ(KBUS_PADDED_NAME_LEN(3), 4u);
    EXPECT_EQ(KBUS_PADDED_NAME_LEN(4), 8u);
    EXPECT_EQ(KBUS_PADDED_DATA_LEN(0), 0u);
    EXPECT_EQ(KBUS_PADDED_DATA_LEN(5), 8u);
    EXPECT_EQ(KBUS_ENTIRE_MSG_DATA_INDEX(6), 2u);
    EXPECT_EQ(KBUS_ENTIRE_MSG_END_GUARD_INDEX(6, 7), 4u);
}

TEST(KbusMsg, PointyCreateKeepsPointersAndSetsGuards) {
    const char name[] = "$.Fred";
    const char data[] = "abcdefg";
    kbus_message_t* m = nullptr;
    ASSERT_EQ(kbus_msg_create(&m, name, 6, data, 7, 0x10000), 0);
    MessagePtr owned(m);
    EXPECT_EQ(m->start_guard, KBUS_MSG_START_GUARD);
    EXPECT_EQ(m->end_guard, KBUS_MSG_END_GUARD);
    EXPECT_EQ(m->name, name);
    EXPECT_EQ(m->data, data);
    EXPECT_EQ(m->name_len, 6u);
    EXPECT_EQ(m->data_len, 7u);
    EXPECT_EQ(m->flags, 0x10000u);
    EXPECT_FALSE(kbus_msg_is_entire(m));
    EXPECT_EQ(kbus_msg_sizeof(m), 88);
    EXPECT_EQ(m->id.serial_num, 0u);
    EXPECT_EQ(m->to, 0u);
}

TEST(KbusMsg, EntireCreateCopiesAndPadsWithZeros) {
    auto m = entire("$.Fred", "abcdefg");
    ASSERT_TRUE(m);
    EXPECT_TRUE(kbus_msg_is_entire(m.get()));
    EXPECT_EQ(m->name, nullptr);
    EXPECT_EQ(m->data, nullptr);
    EXPECT_EQ(kbus_msg_sizeof(m.get()), 108);
    const auto* bytes = reinterpret_cast<const unsigned char*>(m.get());
    EXPECT_EQ(std::memcmp(bytes + 88, "$.Fred\0\0", 8), 0); // NUL-padded to 8
    EXPECT_EQ(std::memcmp(bytes + 96, "abcdefg\0", 8), 0);  // padded to 8
    EXPECT_EQ(wordAt(m.get(), 104), KBUS_MSG_END_GUARD);
    EXPECT_EQ(wordAt(m.get(), 0), KBUS_MSG_START_GUARD);
    EXPECT_EQ(wordAt(m.get(), 80), KBUS_MSG_END_GUARD);
    EXPECT_EQ(nameOf(m.get()), "$.Fred");
    EXPECT_EQ(dataOf(m.get()), "abcdefg");
    EXPECT_EQ(*kbus_msg_end_ptr(reinterpret_cast<kbus_entire_message_t*>(m.get())),
              KBUS_MSG_END_GUARD);
}

TEST(KbusMsg, EntireWithoutDataIs100BytesForASixByteName) {
    auto m = entire("$.Fred");
    EXPECT_EQ(kbus_msg_sizeof(m.get()), 100);
    EXPECT_EQ(wordAt(m.get(), 96), KBUS_MSG_END_GUARD);
}

// libkbus swapped the arguments: name_len % 4 == 0 with data_len % 4 == 1
// came out 4 bytes short.
TEST(KbusMsg, SizeofDoesNotSwapNameAndDataLengths) {
    auto m = entire("$.ab", "x"); // name 4, data 1
    EXPECT_EQ(kbus_msg_sizeof(m.get()), static_cast<int>(KBUS_ENTIRE_MSG_LEN(4, 1)));
    EXPECT_EQ(kbus_msg_sizeof(m.get()), 88 + 8 + 4 + 4);
}

TEST(KbusMsg, RequestBuildersSetWantAReply) {
    kbus_message_t* p = nullptr;
    ASSERT_EQ(kbus_msg_create_request(&p, "$.Q", 3, nullptr, 0, KBUS_BIT_URGENT), 0);
    MessagePtr pointy(p);
    EXPECT_EQ(p->flags, KBUS_BIT_WANT_A_REPLY | KBUS_BIT_URGENT);
    kbus_message_t* e = nullptr;
    ASSERT_EQ(kbus_msg_create_entire_request(&e, "$.Q", 3, "d", 1, 0), 0);
    MessagePtr whole(e);
    EXPECT_TRUE(kbus_msg_is_request(e));
    EXPECT_FALSE(kbus_msg_is_stateful_request(e));
    EXPECT_EQ(kbus_msg_sizeof(e), 88 + 4 + 4 + 4);
}

kbus_message_t requestFrom(uint32_t from, uint32_t serial, uint32_t flags) {
    kbus_message_t r{};
    r.start_guard = KBUS_MSG_START_GUARD;
    r.end_guard = KBUS_MSG_END_GUARD;
    r.name = const_cast<char*>("$.Ask");
    r.name_len = 5;
    r.from = from;
    r.id = {0, serial};
    r.flags = flags;
    return r;
}

TEST(KbusMsg, ReplyToNeedsARequestThatWantsUsToReply) {
    kbus_message_t* m = nullptr;
    const kbus_message_t listenerCopy = requestFrom(3, 9, KBUS_BIT_WANT_A_REPLY);
    EXPECT_EQ(kbus_msg_create_reply_to(&m, &listenerCopy, nullptr, 0, 0), -EBADMSG);
    EXPECT_EQ(kbus_msg_create_entire_reply_to(&m, &listenerCopy, nullptr, 0, 0), -EBADMSG);
}

TEST(KbusMsg, ReplyToAddressesTheSenderAndNamesTheRequest) {
    const kbus_message_t request =
        requestFrom(3, 9, KBUS_BIT_WANT_A_REPLY | KBUS_BIT_WANT_YOU_TO_REPLY);
    kbus_message_t* p = nullptr;
    ASSERT_EQ(kbus_msg_create_reply_to(&p, &request, "ok", 2, 0), 0);
    MessagePtr pointy(p);
    EXPECT_EQ(p->to, 3u);
    EXPECT_EQ(p->in_reply_to.serial_num, 9u);
    EXPECT_EQ(p->name, request.name); // by pointer, as libkbus
    EXPECT_TRUE(kbus_msg_is_reply(p));
    kbus_message_t* e = nullptr;
    ASSERT_EQ(kbus_msg_create_entire_reply_to(&e, &request, "ok", 2, 0), 0);
    MessagePtr whole(e);
    EXPECT_EQ(nameOf(e), "$.Ask");
    EXPECT_EQ(dataOf(e), "ok");
    EXPECT_EQ(e->to, 3u);
    EXPECT_EQ(kbus_msg_compare_ids(&e->in_reply_to, &request.id), 0);
}

TEST(KbusMsg, StatefulRequestFollowsAReplyAndSetsWantAReply) {
    kbus_message_t reply{};
    reply.in_reply_to = {0, 4};
    reply.from = 7;
    reply.orig_from = {2, 11};
    kbus_message_t* p = nullptr;
    ASSERT_EQ(kbus_msg_create_stateful_request(&p, &reply, "$.Next", 6, nullptr, 0, 0), 0);
    MessagePtr pointy(p);
    EXPECT_EQ(p->to, 7u);
    EXPECT_EQ(p->final_to.network_id, 2u);
    EXPECT_EQ(p->final_to.local_id, 11u);
    EXPECT_TRUE(kbus_msg_is_stateful_request(p)); // libkbus forgot WANT_A_REPLY

    kbus_message_t* e = nullptr;
    ASSERT_EQ(kbus_msg_create_entire_stateful_request(&e, p, "$.Again", 7, "x", 1, 0), 0);
    MessagePtr whole(e);
    EXPECT_EQ(e->to, 7u);
    EXPECT_EQ(e->final_to.local_id, 11u);
    EXPECT_TRUE(kbus_msg_is_stateful_request(e));
    EXPECT_EQ(nameOf(e), "$.Again");
}

TEST(KbusMsg, StatefulRequestFromAnAnnouncementIsBadMsg) {
    auto announcement = entire("$.A");
    kbus_message_t* m = nullptr;
    EXPECT_EQ(kbus_msg_create_stateful_request(&m, announcement.get(), "$.B", 3, nullptr, 0, 0),
              -EBADMSG);
    EXPECT_EQ(m, nullptr);
}

TEST(KbusMsg, CompareIdsOrdersByNetworkThenSerial) {
    const kbus_msg_id_t a{0, 5};
    const kbus_msg_id_t b{0, 6};
    const kbus_msg_id_t c{1, 0};
    EXPECT_EQ(kbus_msg_compare_ids(&a, &b), -1);
    EXPECT_EQ(kbus_msg_compare_ids(&b, &a), 1);
    EXPECT_EQ(kbus_msg_compare_ids(&b, &c), -1);
    EXPECT_EQ(kbus_msg_compare_ids(&a, &a), 0);
}

TEST(KbusMsg, DeleteAllFreesAPointyMessagesNameAndData) {
    char* name = static_cast<char*>(std::malloc(4));
    std::memcpy(name, "$.X", 4);
    void* data = std::calloc(1, 3);
    kbus_message_t* m = nullptr;
    ASSERT_EQ(kbus_msg_create(&m, name, 3, data, 3, 0), 0);
    kbus_msg_delete_all(&m); // LeakSanitizer fails the test if this leaks
    EXPECT_EQ(m, nullptr);
}

std::vector<unsigned char> bindEventData(uint32_t isBind, uint32_t binder, std::string_view name,
                                         uint32_t claimedLen) {
    std::vector<unsigned char> d(12 + KBUS_PADDED_NAME_LEN(name.size()), 0);
    std::memcpy(d.data(), &isBind, 4);
    std::memcpy(d.data() + 4, &binder, 4);
    std::memcpy(d.data() + 8, &claimedLen, 4);
    std::memcpy(d.data() + 12, name.data(), name.size());
    return d;
}

TEST(KbusMsg, SplitBindEventGivesItsFields) {
    const auto data = bindEventData(1, 42, "$.Svc", 5);
    kbus_message_t* m = nullptr;
    ASSERT_EQ(kbus_msg_create_entire(&m, KBUS_MSG_NAME_REPLIER_BIND_EVENT, 23, data.data(),
                                     static_cast<uint32_t>(data.size()), 0),
              0);
    MessagePtr owned(m);
    uint32_t isBind = 0;
    uint32_t binder = 0;
    char* name = nullptr;
    ASSERT_EQ(kbus_msg_split_bind_event(m, &isBind, &binder, &name), 0);
    EXPECT_EQ(isBind, 1u);
    EXPECT_EQ(binder, 42u);
    EXPECT_STREQ(name, "$.Svc");
    std::free(name);
}

TEST(KbusMsg, SplitBindEventRefusesANameLongerThanItsData) {
    const auto data = bindEventData(1, 42, "$.Svc", 5000);
    kbus_message_t* m = nullptr;
    ASSERT_EQ(kbus_msg_create_entire(&m, KBUS_MSG_NAME_REPLIER_BIND_EVENT, 23, data.data(),
                                     static_cast<uint32_t>(data.size()), 0),
              0);
    MessagePtr owned(m);
    uint32_t isBind = 0;
    uint32_t binder = 0;
    char* name = nullptr;
    EXPECT_EQ(kbus_msg_split_bind_event(m, &isBind, &binder, &name), -EBADMSG);
    auto empty = entire("$.E");
    EXPECT_EQ(kbus_msg_split_bind_event(empty.get(), &isBind, &binder, &name), -EBADMSG);
}

std::string printed(const kbus_message_t* m, unsigned flags) {
    char* text = nullptr;
    size_t size = 0;
    FILE* out = open_memstream(&text, &size);
    kbus_msg_print2(out, m, flags);
    std::fclose(out);
    std::string s(text, size);
    std::free(text);
    return s;
}

TEST(KbusMsg, PrintDescribesTheMessage) {
    auto m = entire("$.Fred", "abcdefghijklmnopqrstuvwxyz", KBUS_BIT_WANT_A_REPLY);
    m->id = {0, 12};
    m->from = 3;
    EXPECT_EQ(printed(m.get(), KBUS_MSG_PRINT_FLAGS_ABBREVIATE),
              "<Request '$.Fred' id=[0:12] from=3 flags=0x1 REQ data=abcdefghijklmnopqrst...>");
    EXPECT_EQ(printed(m.get(), 0),
              "<Request '$.Fred' id=[0:12] from=3 flags=0x1 REQ data=abcdefghijklmnopqrstuvwxyz>");
    auto status = entire("$.KBUS.Replier.GoneAway", {}, KBUS_BIT_SYNTHETIC);
    status->in_reply_to = {0, 12};
    EXPECT_EQ(printed(status.get(), 0),
              "<Status '$.KBUS.Replier.GoneAway' in_reply_to=[0:12] flags=0x4 SYN>");
}

} // namespace
} // namespace xkbus::frontend::testing
