// The request/reply/status rules of docs/semantics.md, driven through the C
// API as a libkbus program would, plus the ioctl-like settings and opening.
#include "kbus_test_support.hpp"

#include <xkbus/frontend/channel_factory.hpp>

namespace xkbus::frontend::testing {
namespace {

using KbusScenario = KbusTest;

// A request sent by `sender` and popped by `replier`; returns the request.
MessagePtr requestAndPop(int sender, int replier, kbus_msg_id_t* id) {
    kbus_message_t* req = nullptr;
    EXPECT_EQ(kbus_msg_create_entire_request(&req, "$.Svc", 5, "q", 1, 0), 0);
    MessagePtr owned(req);
    EXPECT_EQ(kbus_ksock_send_msg(sender, req, id), 0);
    return readNext(replier);
}

TEST_F(KbusScenario, AnnouncementReachesEveryListener) {
    const int sender = open();
    const int a = open();
    const int b = open(O_RDONLY);
    ASSERT_EQ(kbus_ksock_bind(a, "$.News", 0), 0);
    ASSERT_EQ(kbus_ksock_bind(b, "$.*", 0), 0);
    ASSERT_EQ(sendEntire(sender, "$.News", "hi"), 0);
    EXPECT_EQ(dataOf(readNext(a).get()), "hi");
    EXPECT_EQ(dataOf(readNext(b).get()), "hi");
    EXPECT_EQ(numMessages(sender), 0u);
}

TEST_F(KbusScenario, RequestAndReply) {
    const int sender = open();
    const int replier = open();
    ASSERT_EQ(kbus_ksock_bind(replier, "$.Svc", 1), 0);
    kbus_msg_id_t id{};
    auto req = requestAndPop(sender, replier, &id);
    ASSERT_TRUE(req);
    EXPECT_TRUE(kbus_msg_wants_us_to_reply(req.get()));
    EXPECT_EQ(req->from, ksockId(sender));
    uint32_t owed = 0;
    ASSERT_EQ(kbus_ksock_num_unreplied_to(replier, &owed), 0);
    EXPECT_EQ(owed, 1u);

    kbus_message_t* reply = nullptr;
    ASSERT_EQ(kbus_msg_create_entire_reply_to(&reply, req.get(), "answer", 6, 0), 0);
    MessagePtr ownedReply(reply);
    kbus_msg_id_t replyId{};
    ASSERT_EQ(kbus_ksock_send_msg(replier, reply, &replyId), 0);
    ASSERT_EQ(kbus_ksock_num_unreplied_to(replier, &owed), 0);
    EXPECT_EQ(owed, 0u);

    auto got = readNext(sender);
    ASSERT_TRUE(got);
    EXPECT_TRUE(kbus_msg_is_reply(got.get()));
    EXPECT_EQ(kbus_msg_compare_ids(&got->in_reply_to, &id), 0);
    EXPECT_EQ(dataOf(got.get()), "answer");
    EXPECT_EQ(got->from, ksockId(replier));
}

TEST_F(KbusScenario, PointyReplyWorksToo) {
    const int sender = open();
    const int replier = open();
    ASSERT_EQ(kbus_ksock_bind(replier, "$.Svc", 1), 0);
    kbus_msg_id_t id{};
    auto req = requestAndPop(sender, replier, &id);
    ASSERT_TRUE(req);
    kbus_message_t* reply = nullptr;
    ASSERT_EQ(kbus_msg_create_reply_to(&reply, req.get(), "p", 1, 0), 0);
    MessagePtr ownedReply(reply);
    kbus_msg_id_t replyId{};
    ASSERT_EQ(kbus_ksock_send_msg(replier, reply, &replyId), 0);
    EXPECT_EQ(dataOf(readNext(sender).get()), "p");
}

TEST_F(KbusScenario, RequestWithoutReplierIsEADDRNOTAVAIL) {
    const int sender = open();
    EXPECT_EQ(sendEntire(sender, "$.Nobody", "", KBUS_BIT_WANT_A_REPLY), -EADDRNOTAVAIL);
}

TEST_F(KbusScenario, SecondReplyIsECONNREFUSED) {
    const int sender = open();
    const int replier = open();
    ASSERT_EQ(kbus_ksock_bind(replier, "$.Svc", 1), 0);
    kbus_msg_id_t id{};
    auto req = requestAndPop(sender, replier, &id);
    ASSERT_TRUE(req);
    kbus_message_t* reply = nullptr;
    ASSERT_EQ(kbus_msg_create_entire_reply_to(&reply, req.get(), nullptr, 0, 0), 0);
    MessagePtr owned(reply);
    kbus_msg_id_t replyId{};
    ASSERT_EQ(kbus_ksock_send_msg(replier, reply, &replyId), 0);
    EXPECT_EQ(kbus_ksock_send_msg(replier, reply, &replyId), -ECONNREFUSED);
}

TEST_F(KbusScenario, ReplyToAClosedSenderIsEADDRNOTAVAIL) {
    const int sender = open();
    const int replier = open();
    ASSERT_EQ(kbus_ksock_bind(replier, "$.Svc", 1), 0);
    kbus_msg_id_t id{};
    auto req = requestAndPop(sender, replier, &id);
    ASSERT_TRUE(req);
    close(sender);
    kbus_message_t* reply = nullptr;
    ASSERT_EQ(kbus_msg_create_entire_reply_to(&reply, req.get(), nullptr, 0, 0), 0);
    MessagePtr owned(reply);
    kbus_msg_id_t replyId{};
    EXPECT_EQ(kbus_ksock_send_msg(replier, reply, &replyId), -EADDRNOTAVAIL);
}

TEST_F(KbusScenario, ReplierClosingWithTheRequestQueuedGivesGoneAway) {
    const int sender = open();
    const int replier = open();
    ASSERT_EQ(kbus_ksock_bind(replier, "$.Svc", 1), 0);
    kbus_msg_id_t id{};
    ASSERT_EQ(sendEntire(sender, "$.Svc", "", KBUS_BIT_WANT_A_REPLY, &id), 0);
    const uint32_t replierId = ksockId(replier);
    close(replier);
    auto status = readNext(sender);
    ASSERT_TRUE(status);
    EXPECT_EQ(nameOf(status.get()), KBUS_MSG_NAME_REPLIER_GONEAWAY);
    EXPECT_EQ(status->flags, KBUS_BIT_SYNTHETIC);
    EXPECT_EQ(status->from, replierId);
    EXPECT_EQ(kbus_msg_compare_ids(&status->in_reply_to, &id), 0);
}

TEST_F(KbusScenario, ReplierClosingAfterPoppingGivesIgnored) {
    const int sender = open();
    const int replier = open();
    ASSERT_EQ(kbus_ksock_bind(replier, "$.Svc", 1), 0);
    kbus_msg_id_t id{};
    ASSERT_TRUE(requestAndPop(sender, replier, &id));
    close(replier);
    auto status = readNext(sender);
    ASSERT_TRUE(status);
    EXPECT_EQ(nameOf(status.get()), KBUS_MSG_NAME_REPLIER_IGNORED);
    EXPECT_EQ(kbus_msg_compare_ids(&status->in_reply_to, &id), 0);
}

TEST_F(KbusScenario, UnbindingWithTheRequestQueuedGivesUnbound) {
    const int sender = open();
    const int replier = open();
    ASSERT_EQ(kbus_ksock_bind(replier, "$.Svc", 1), 0);
    kbus_msg_id_t id{};
    ASSERT_EQ(sendEntire(sender, "$.Svc", "", KBUS_BIT_WANT_A_REPLY, &id), 0);
    EXPECT_EQ(numMessages(replier), 1u);
    ASSERT_EQ(kbus_ksock_unbind(replier, "$.Svc", 1), 0);
    EXPECT_EQ(numMessages(replier), 0u);
    EXPECT_FALSE(pollReadable(replier));
    auto status = readNext(sender);
    ASSERT_TRUE(status);
    EXPECT_EQ(nameOf(status.get()), KBUS_MSG_NAME_REPLIER_UNBOUND);
    EXPECT_EQ(kbus_ksock_unbind(replier, "$.Svc", 1), -EINVAL);
}

TEST_F(KbusScenario, StatefulRequestToTheWrongReplierIsEPIPE) {
    const int sender = open();
    const int first = open();
    ASSERT_EQ(kbus_ksock_bind(first, "$.Svc", 1), 0);
    kbus_msg_id_t id{};
    auto req = requestAndPop(sender, first, &id);
    ASSERT_TRUE(req);
    kbus_message_t* reply = nullptr;
    ASSERT_EQ(kbus_msg_create_entire_reply_to(&reply, req.get(), nullptr, 0, 0), 0);
    MessagePtr ownedReply(reply);
    kbus_msg_id_t replyId{};
    ASSERT_EQ(kbus_ksock_send_msg(first, reply, &replyId), 0);
    auto gotReply = readNext(sender);
    ASSERT_TRUE(gotReply);

    kbus_message_t* stateful = nullptr;
    ASSERT_EQ(kbus_msg_create_entire_stateful_request(&stateful, gotReply.get(), "$.Svc", 5,
                                                      nullptr, 0, 0),
              0);
    MessagePtr ownedStateful(stateful);
    EXPECT_EQ(kbus_ksock_send_msg(sender, stateful, &id), 0); // same replier: fine
    ASSERT_EQ(kbus_ksock_unbind(first, "$.Svc", 1), 0);
    (void)readNext(sender); // the Unbound status for it
    const int second = open();
    ASSERT_EQ(kbus_ksock_bind(second, "$.Svc", 1), 0);
    EXPECT_EQ(kbus_ksock_send_msg(sender, stateful, &id), -EPIPE);
    ASSERT_EQ(kbus_ksock_unbind(second, "$.Svc", 1), 0);
    EXPECT_EQ(kbus_ksock_send_msg(sender, stateful, &id), -EADDRNOTAVAIL);
}

TEST_F(KbusScenario, RequestWithNoRoomForItsReplyIsENOLCK) {
    const int sender = open();
    const int replier = open();
    ASSERT_EQ(kbus_ksock_bind(replier, "$.Svc", 1), 0);
    uint32_t limit = 1;
    ASSERT_EQ(kbus_ksock_max_messages(sender, &limit), 0);
    EXPECT_EQ(limit, 1u);
    kbus_msg_id_t first{};
    ASSERT_EQ(sendEntire(sender, "$.Svc", "", KBUS_BIT_WANT_A_REPLY, &first), 0);
    kbus_msg_id_t second{};
    EXPECT_EQ(sendEntire(sender, "$.Svc", "", KBUS_BIT_WANT_A_REPLY, &second), -ENOLCK);
    kbus_msg_id_t last{};
    ASSERT_EQ(kbus_ksock_last_msg_id(sender, &last), 0);
    EXPECT_EQ(kbus_msg_compare_ids(&last, &first), 0); // ENOLCK gives no id
    EXPECT_TRUE(pollWritable(sender));                 // and is not "sending"
}

TEST_F(KbusScenario, FullReplierIsEBUSYWithAnId) {
    const int sender = open();
    const int replier = open();
    ASSERT_EQ(kbus_ksock_bind(replier, "$.Svc", 1), 0);
    uint32_t limit = 1;
    ASSERT_EQ(kbus_ksock_max_messages(replier, &limit), 0);
    ASSERT_EQ(sendEntire(sender, "$.Svc", "", KBUS_BIT_WANT_A_REPLY), 0);
    EXPECT_EQ(sendEntire(sender, "$.Svc", "", KBUS_BIT_WANT_A_REPLY), -EBUSY);
}

class KbusAllOrWait : public KbusTest {
protected:
    void SetUp() override {
        KbusTest::SetUp();
        m_sender = open();
        m_listener = open();
        ASSERT_EQ(kbus_ksock_bind(m_listener, "$.Fred", 0), 0);
        uint32_t limit = 1;
        ASSERT_EQ(kbus_ksock_max_messages(m_listener, &limit), 0);
        ASSERT_EQ(sendEntire(m_sender, "$.Fred", "fills"), 0);
        ASSERT_EQ(sendEntire(m_sender, "$.Fred", "waits", KBUS_BIT_ALL_OR_WAIT, &m_blocked),
                  -EAGAIN);
    }
    int m_sender = -1;
    int m_listener = -1;
    kbus_msg_id_t m_blocked{};
};

TEST_F(KbusAllOrWait, BlockedSendHasAnIdAndMakesTheKsockUnwritable) {
    EXPECT_NE(m_blocked.serial_num, 0u);
    kbus_msg_id_t last{};
    ASSERT_EQ(kbus_ksock_last_msg_id(m_sender, &last), 0);
    EXPECT_EQ(kbus_msg_compare_ids(&last, &m_blocked), 0);
    EXPECT_FALSE(pollWritable(m_sender));
    EXPECT_FALSE(selectWritable(m_sender));
    EXPECT_EQ(kbus_wait_for_message(m_listener, KBUS_KSOCK_READABLE), KBUS_KSOCK_READABLE);
}

TEST_F(KbusAllOrWait, WriteWhileBlockedIsEALREADYAndKeepsTheBlockedMessage) {
    const auto m = entire("$.Fred", "other");
    EXPECT_EQ(kbus_ksock_write(m_sender, m.get(), 88), -EALREADY);
    kbus_msg_id_t id{};
    EXPECT_EQ(kbus_ksock_send(m_sender, &id), -EAGAIN); // still trying
    EXPECT_EQ(kbus_msg_compare_ids(&id, &m_blocked), 0);

    EXPECT_EQ(dataOf(readNext(m_listener).get()), "fills"); // room appears: it goes
    EXPECT_TRUE(pollWritable(m_sender));
    auto got = readNext(m_listener);
    ASSERT_TRUE(got);
    EXPECT_EQ(dataOf(got.get()), "waits");
    EXPECT_EQ(kbus_msg_compare_ids(&got->id, &m_blocked), 0);
    EXPECT_EQ(kbus_ksock_send(m_sender, &id), 0); // how SEND reports the finished send
    EXPECT_EQ(sendEntire(m_sender, "$.Fred", "next"), 0);
}

TEST_F(KbusAllOrWait, DiscardDropsTheBlockedMessage) {
    EXPECT_EQ(kbus_ksock_discard(m_sender), 0);
    EXPECT_TRUE(pollWritable(m_sender));
    EXPECT_EQ(dataOf(readNext(m_listener).get()), "fills");
    EXPECT_FALSE(readNext(m_listener)); // "waits" never arrives
    EXPECT_EQ(sendEntire(m_sender, "$.Fred", "after"), 0);
    EXPECT_EQ(dataOf(readNext(m_listener).get()), "after");
}

TEST_F(KbusScenario, DiscardForgetsAPartWrittenMessage) {
    const int sender = open();
    const auto m = entire("$.Fred", "abc");
    ASSERT_EQ(kbus_ksock_write(sender, m.get(), 90), 90);
    EXPECT_EQ(kbus_ksock_discard(sender), 0);
    kbus_msg_id_t id{};
    EXPECT_EQ(kbus_ksock_send(sender, &id), -ENOMSG);
}

TEST_F(KbusScenario, OnlyOnceReturnsThePreviousState) {
    const int k = open();
    EXPECT_EQ(kbus_ksock_only_once(k, 0xFFFFFFFF), 0);
    EXPECT_EQ(kbus_ksock_only_once(k, 1), 0);
    EXPECT_EQ(kbus_ksock_only_once(k, 0xFFFFFFFF), 1);
    EXPECT_EQ(kbus_ksock_only_once(k, 0), 1);
    EXPECT_EQ(kbus_ksock_only_once(k, 0xFFFFFFFF), 0);
    EXPECT_EQ(kbus_ksock_only_once(k, 2), -EINVAL);
}

TEST_F(KbusScenario, OnlyOnceGivesOneCopyPerSend) {
    const int sender = open();
    const int k = open();
    ASSERT_EQ(kbus_ksock_bind(k, "$.Fred", 0), 0);
    ASSERT_EQ(kbus_ksock_bind(k, "$.*", 0), 0);
    ASSERT_EQ(kbus_ksock_only_once(k, 1), 0);
    ASSERT_EQ(sendEntire(sender, "$.Fred"), 0);
    EXPECT_EQ(numMessages(k), 1u);
}

TEST_F(KbusScenario, ReportReplierBindsReturnsThePreviousStateAndSendsEvents) {
    const int watcher = open();
    const int replier = open();
    ASSERT_EQ(kbus_ksock_bind(watcher, KBUS_MSG_NAME_REPLIER_BIND_EVENT, 0), 0);
    EXPECT_EQ(kbus_ksock_report_replier_binds(watcher, 1), 0);
    EXPECT_EQ(kbus_ksock_report_replier_binds(watcher, 0xFFFFFFFF), 1);
    ASSERT_EQ(kbus_ksock_bind(replier, "$.Svc", 1), 0);
    auto event = readNext(watcher);
    ASSERT_TRUE(event);
    EXPECT_EQ(nameOf(event.get()), KBUS_MSG_NAME_REPLIER_BIND_EVENT);
    EXPECT_EQ(event->flags, KBUS_BIT_SYNTHETIC | KBUS_BIT_ALL_OR_FAIL);
    uint32_t isBind = 0;
    uint32_t binder = 0;
    char* name = nullptr;
    ASSERT_EQ(kbus_msg_split_bind_event(event.get(), &isBind, &binder, &name), 0);
    EXPECT_EQ(isBind, 1u);
    EXPECT_EQ(binder, ksockId(replier));
    EXPECT_STREQ(name, "$.Svc");
    std::free(name);
    EXPECT_EQ(kbus_ksock_report_replier_binds(watcher, 0), 1);
    EXPECT_EQ(kbus_ksock_report_replier_binds(watcher, 7), -EINVAL);
}

TEST_F(KbusScenario, VerboseReturnsThePreviousState) {
    const int k = open();
    EXPECT_EQ(kbus_ksock_kernel_module_verbose(k, 1), 0);
    EXPECT_EQ(kbus_ksock_kernel_module_verbose(k, 0), 1);
    EXPECT_EQ(kbus_ksock_kernel_module_verbose(k, 0xFFFFFFFF), 0);
}

TEST_F(KbusScenario, FindReplierGivesTheReplierOrZero) {
    const int k = open();
    const int replier = open();
    uint32_t found = 99;
    ASSERT_EQ(kbus_ksock_find_replier(k, "$.Svc", &found), 0);
    EXPECT_EQ(found, 0u);
    ASSERT_EQ(kbus_ksock_bind(replier, "$.Svc", 1), 0);
    ASSERT_EQ(kbus_ksock_find_replier(k, "$.Svc", &found), 0);
    EXPECT_EQ(found, ksockId(replier));
    EXPECT_EQ(kbus_ksock_bind(k, "$.Svc", 1), -EADDRINUSE);
    EXPECT_EQ(kbus_ksock_bind(k, "$.bad..name", 0), -EBADMSG);
    EXPECT_EQ(kbus_ksock_bind(k, "", 0), -EBADMSG);
}

TEST_F(KbusScenario, MaxMessageSizeQueriesAndSets) {
    const int k = open();
    uint32_t size = 0;
    ASSERT_EQ(kbus_ksock_max_message_size(k, &size), 0);
    EXPECT_EQ(size, 409600u);
    size = 1;
    ASSERT_EQ(kbus_ksock_max_message_size(k, &size), 0);
    EXPECT_EQ(size, 409600u); // the absolute limit
    size = 50;
    EXPECT_EQ(kbus_ksock_max_message_size(k, &size), -EINVAL);
}

TEST_F(KbusScenario, NewDeviceAddsABusThatCanBeOpened) {
    const int k = open();
    uint32_t bus = 0;
    ASSERT_EQ(kbus_ksock_new_device(k, &bus), 0);
    EXPECT_EQ(bus, 1u);
    const int onNewBus = kbus_ksock_open_by_name("/dev/kbus1", O_RDWR);
    ASSERT_GE(onNewBus, 0);
    m_open.push_back(onNewBus);
    EXPECT_EQ(ksockId(onNewBus), 1u); // ids are per bus
    EXPECT_EQ(kbus_ksock_open(7, O_RDWR), -ENOENT);
}

TEST_F(KbusScenario, OpenByNameTakesOnlyKbusDeviceNames) {
    const int k = kbus_ksock_open_by_name("/dev/kbus0", O_RDWR);
    ASSERT_GE(k, 0);
    m_open.push_back(k);
    EXPECT_EQ(kbus_ksock_open_by_name("/dev/kbus", O_RDWR), -ENOENT);
    EXPECT_EQ(kbus_ksock_open_by_name("/dev/kbus0x", O_RDWR), -ENOENT);
    EXPECT_EQ(kbus_ksock_open_by_name("/dev/null", O_RDWR), -ENOENT);
    EXPECT_EQ(kbus_ksock_open_by_name("/dev/kbus99999999999", O_RDWR), -ENOENT);
    EXPECT_EQ(kbus_ksock_open_by_name("/dev/kbus-1", O_RDWR), -ENOENT);
}

TEST(KbusOpen, WithoutAFactoryOpenIsENOENT) {
    setChannelFactory({});
    EXPECT_EQ(kbus_ksock_open(0, O_RDWR), -ENOENT);
}

} // namespace
} // namespace xkbus::frontend::testing
