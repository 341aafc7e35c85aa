// The daemon's dispatcher, driven by simulated clients that keep mirrors of
// their Ksocks' queues from the records they receive.
#include <deque>
#include <gtest/gtest.h>
#include <map>
#include <xkbus/daemon/dispatcher.hpp>

namespace xkbus::daemon {
namespace {

using protocol::Control;
using protocol::Record;
using protocol::RecordType;

Record rec(RecordType type, uint32_t handle = 0, uint32_t arg = 0, uint64_t value = 0,
           std::string name = {}) {
    Record r;
    r.type = type;
    r.handle = handle;
    r.arg = arg;
    r.value = value;
    r.body = MessageBody::copyOf(name, {});
    return r;
}

struct Mirrored {
    uint64_t copyId;
    Record pushed;
};

class Harness {
public:
    explicit Harness(core::CoreConfig config = {}) : core(withEvents(config)), dispatcher(core) {}

    static core::CoreConfig withEvents(core::CoreConfig c) {
        c.bus.recordQueueEvents = true;
        return c;
    }

    ConnectionId connect(PeerInfo peer = {}) {
        const ConnectionId id = dispatcher.connect(peer);
        EXPECT_EQ(call(id, rec(RecordType::HELLO, 0, protocol::PROTOCOL_VERSION, 0, {})).arg, 0u);
        return id;
    }

    // Sends a call and returns its RESULT, applying every record that came
    // back to the receivers' mirrors first. A call the dispatcher never
    // answers fails the test, and its "result" matches no errno a test expects.
    Record call(ConnectionId id, Record r) {
        r.callId = ++m_calls;
        auto ok = dispatcher.handle(id, r);
        EXPECT_TRUE(ok) << ok.error();
        std::optional<Record> result;
        for (auto& out : dispatcher.takeOutgoing()) {
            delivered.push_back(out);
            if (out.record.type == RecordType::RESULT && out.to == id &&
                out.record.callId == r.callId) {
                EXPECT_FALSE(result) << "two RESULTs for one call";
                result = out.record;
            } else {
                apply(out);
            }
        }
        if (!result) {
            ADD_FAILURE() << "no RESULT for call " << r.callId;
            Record none;
            none.arg = UINT32_MAX;
            return none;
        }
        return *result;
    }

    void apply(const Outgoing& out) {
        auto& mirror = mirrors[{out.to, out.record.handle}];
        switch (out.record.type) {
        case RecordType::PUSHED:
            if ((out.record.arg & protocol::PUSHED_AT_HEAD) != 0) {
                mirror.push_front(Mirrored{out.record.value, out.record});
            } else {
                mirror.push_back(Mirrored{out.record.value, out.record});
            }
            break;
        case RecordType::REMOVED:
            std::erase_if(mirror, [&](const Mirrored& m) { return m.copyId == out.record.value; });
            break;
        default:
            break;
        }
    }

    uint32_t open(ConnectionId c, uint32_t handle, uint32_t bus = 0) {
        Record r = rec(RecordType::OPEN, handle, bus, protocol::OPEN_WRITABLE);
        auto res = call(c, r);
        EXPECT_EQ(res.arg, 0u);
        return static_cast<uint32_t>(res.value);
    }

    Record bind(ConnectionId c, uint32_t handle, std::string name, bool replier = false) {
        return call(c, rec(RecordType::BIND, handle, replier ? 1u : 0u, 0, std::move(name)));
    }

    Record send(ConnectionId c, uint32_t handle, std::string name, uint32_t flags = 0) {
        Record r = rec(RecordType::SEND, handle, 0, 0, std::move(name));
        r.header.flags = flags;
        return call(c, r);
    }

    // Pops from the client's mirror the way the library does.
    std::optional<Record> pop(ConnectionId c, uint32_t handle) {
        auto& mirror = mirrors[{c, handle}];
        if (mirror.empty()) {
            return std::nullopt;
        }
        Mirrored m = mirror.front();
        mirror.pop_front();
        EXPECT_TRUE(dispatcher.handle(c, rec(RecordType::POP, handle, 0, m.copyId, {})));
        for (auto& out : dispatcher.takeOutgoing()) {
            apply(out);
        }
        return m.pushed;
    }

    core::Core core;
    Dispatcher dispatcher;
    std::map<std::pair<ConnectionId, uint32_t>, std::deque<Mirrored>> mirrors;
    std::vector<Outgoing> delivered;

private:
    uint32_t m_calls = 0;
};

TEST(Dispatcher, ProtocolViolationsAreReportedNotObeyed) {
    Harness h;
    const ConnectionId c = h.dispatcher.connect(PeerInfo{});
    EXPECT_FALSE(h.dispatcher.handle(c, rec(RecordType::OPEN, 0, 0, 0, {})))
        << "a call before HELLO";
    EXPECT_FALSE(h.dispatcher.handle(c, rec(RecordType::HELLO, 0, 99, 0, {})));
    ASSERT_TRUE(
        h.dispatcher.handle(c, rec(RecordType::HELLO, 0, protocol::PROTOCOL_VERSION, 0, {})));
    EXPECT_FALSE(h.dispatcher.handle(c, rec(RecordType::PUSHED, 0, 0, 0, {})))
        << "a daemon-side record";
    h.open(c, 1);
    EXPECT_FALSE(h.dispatcher.handle(c, rec(RecordType::OPEN, 1, 0, 0, {}))) << "a reused handle";
}

TEST(Dispatcher, OpenReportsTheKsockIdAndUnknownBusesAreEnoent) {
    Harness h;
    const ConnectionId c = h.connect();
    EXPECT_EQ(h.open(c, 10), 1u);
    EXPECT_EQ(h.open(c, 11), 2u);
    auto r = h.call(c, rec(RecordType::OPEN, 12, 5, 0, {}));
    EXPECT_EQ(r.arg, static_cast<uint32_t>(ENOENT));
    auto id =
        h.call(c, rec(RecordType::CONTROL, 11, static_cast<uint32_t>(Control::KSOCK_ID), 0, {}));
    EXPECT_EQ(id.value, 2u);
    auto missing = h.call(c, rec(RecordType::CLOSE, 99, 0, 0, {}));
    EXPECT_EQ(missing.arg, static_cast<uint32_t>(EBADF));
}

TEST(Dispatcher, CopiesReachTheReceiverBeforeTheSenderHearsTheResult) {
    Harness h;
    const ConnectionId sender = h.connect();
    const ConnectionId listener = h.connect();
    h.open(sender, 1);
    h.open(listener, 7);
    h.bind(listener, 7, "$.x.*");
    h.delivered.clear();
    auto result = h.send(sender, 1, "$.x.y");
    EXPECT_EQ(result.arg, 0u);
    EXPECT_EQ(protocol::unpackMsgId(result.value), (MsgId{0, 1}));
    // The PUSHED record for the listener was produced before the RESULT.
    auto pushed = std::find_if(h.delivered.begin(), h.delivered.end(), [](const Outgoing& o) {
        return o.record.type == RecordType::PUSHED;
    });
    auto answered = std::find_if(h.delivered.begin(), h.delivered.end(), [&](const Outgoing& o) {
        return o.record.type == RecordType::RESULT && o.to == sender;
    });
    ASSERT_NE(pushed, h.delivered.end());
    EXPECT_LT(pushed - h.delivered.begin(), answered - h.delivered.begin());
    EXPECT_EQ(pushed->to, listener);
    EXPECT_EQ(pushed->record.handle, 7u);
    auto got = h.pop(listener, 7);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->body.name(), "$.x.y");
    EXPECT_EQ(got->header.from, 1u);
    auto left = h.call(
        listener, rec(RecordType::CONTROL, 7, static_cast<uint32_t>(Control::NUM_MESSAGES), 0, {}));
    EXPECT_EQ(left.value, 0u) << "the POP reached the core";
}

TEST(Dispatcher, NextPopsTheHeadForAClientWhoseMirrorIsBehind) {
    Harness h;
    const ConnectionId c = h.connect();
    h.open(c, 1);
    h.bind(c, 1, "$.x");
    h.send(c, 1, "$.x");
    const uint64_t copy = h.mirrors[std::make_pair(c, 1u)].front().copyId;
    auto r = h.call(c, rec(RecordType::NEXT, 1, 0, 0, {}));
    EXPECT_EQ(r.value, copy);
    auto empty = h.call(c, rec(RecordType::NEXT, 1, 0, 0, {}));
    EXPECT_EQ(empty.value, 0u);
}

TEST(Dispatcher, DisconnectTurnsWhatThePeerOwedIntoStatuses) {
    Harness h;
    const ConnectionId sender = h.connect();
    const ConnectionId replier = h.connect();
    h.open(sender, 1);
    h.open(replier, 1);
    h.bind(replier, 1, "$.q", true);
    h.send(sender, 1, "$.q", FLAG_WANT_A_REPLY);
    h.send(sender, 1, "$.q", FLAG_WANT_A_REPLY);
    ASSERT_TRUE(h.pop(replier, 1)); // read, never answered
    h.dispatcher.disconnect(replier);
    for (auto& out : h.dispatcher.takeOutgoing()) {
        EXPECT_NE(out.to, replier) << "nothing is sent to a gone connection";
        h.apply(out);
    }
    auto first = h.pop(sender, 1);
    auto second = h.pop(sender, 1);
    ASSERT_TRUE(first && second);
    EXPECT_EQ(first->body.name(), NAME_REPLIER_GONE_AWAY);
    EXPECT_EQ(second->body.name(), NAME_REPLIER_IGNORED);
    EXPECT_EQ(h.dispatcher.connectionCount(), 1u);
}

TEST(Dispatcher, UnbindShipsRemovalsToTheMirror) {
    Harness h;
    const ConnectionId c = h.connect();
    h.open(c, 1);
    h.bind(c, 1, "$.x");
    h.send(c, 1, "$.x");
    EXPECT_EQ(h.mirrors[std::make_pair(c, 1u)].size(), 1u);
    h.call(c, rec(RecordType::UNBIND, 1, 0, 0, "$.x"));
    EXPECT_TRUE(h.mirrors[std::make_pair(c, 1u)].empty());
}

TEST(Dispatcher, BlockedSendReturnsItsIdAndReportsWhenItFinishes) {
    Harness h;
    const ConnectionId sender = h.connect();
    const ConnectionId slow = h.connect();
    h.open(sender, 1);
    h.open(slow, 1);
    h.bind(slow, 1, "$.x");
    h.call(slow, rec(RecordType::CONTROL, 1, static_cast<uint32_t>(Control::MAX_MESSAGES), 1, {}));
    h.send(sender, 1, "$.x");
    auto blocked = h.send(sender, 1, "$.x", FLAG_ALL_OR_WAIT);
    EXPECT_EQ(blocked.arg, static_cast<uint32_t>(EAGAIN));
    EXPECT_EQ(protocol::unpackMsgId(blocked.value), (MsgId{0, 2}));
    h.delivered.clear();
    ASSERT_TRUE(h.pop(slow, 1));
    // The pop made room: the send finished, and the sender is told.
    auto more = h.call(
        slow, rec(RecordType::CONTROL, 1, static_cast<uint32_t>(Control::NUM_MESSAGES), 0, {}));
    EXPECT_EQ(more.value, 1u);
}

TEST(Dispatcher, PerConnectionQuotasOnKsocksAndBindings) {
    core::CoreConfig config;
    config.bus.recordQueueEvents = true;
    core::Core core(config);
    Dispatcher d(core, Quotas{2, 1});
    const ConnectionId c = d.connect(PeerInfo{});
    ASSERT_TRUE(d.handle(c, rec(RecordType::HELLO, 0, protocol::PROTOCOL_VERSION, 0, {})));
    ASSERT_TRUE(d.handle(c, rec(RecordType::OPEN, 1, 0, 0, {})));
    ASSERT_TRUE(d.handle(c, rec(RecordType::OPEN, 2, 0, 0, {})));
    ASSERT_TRUE(d.handle(c, rec(RecordType::OPEN, 3, 0, 0, {})));
    ASSERT_TRUE(d.handle(c, rec(RecordType::BIND, 1, 0, 0, "$.a")));
    ASSERT_TRUE(d.handle(c, rec(RecordType::BIND, 1, 0, 0, "$.b")));
    auto out = d.takeOutgoing();
    std::vector<uint32_t> errors;
    for (auto& o : out) {
        errors.push_back(o.record.arg);
    }
    EXPECT_EQ(errors, (std::vector<uint32_t>{0, 0, 0, static_cast<uint32_t>(EMFILE), 0,
                                             static_cast<uint32_t>(ENOMEM)}));
}

TEST(Dispatcher, OnlyTrustedPeersKeepTheSyntheticFlag) {
    Harness h;
    const ConnectionId plain = h.connect();
    const ConnectionId limpet = h.connect(PeerInfo{0, 0, true, 0});
    const ConnectionId listener = h.connect();
    h.open(plain, 1);
    h.open(limpet, 1);
    h.open(listener, 1);
    h.bind(listener, 1, "$.x");
    h.send(plain, 1, "$.x", FLAG_SYNTHETIC);
    h.send(limpet, 1, "$.x", FLAG_SYNTHETIC);
    EXPECT_EQ(h.pop(listener, 1)->header.flags & FLAG_SYNTHETIC, 0u);
    EXPECT_EQ(h.pop(listener, 1)->header.flags & FLAG_SYNTHETIC, FLAG_SYNTHETIC);
}

TEST(Dispatcher, AConnectionOverItsByteQuotaMissesMessagesOthersStillGet) {
    core::CoreConfig config;
    config.bus.maxQueuedBytesPerGroup = 1000;
    Harness h(config);
    const ConnectionId sender = h.connect();
    const ConnectionId hog = h.connect(PeerInfo{0, 0, false, 1});
    const ConnectionId fine = h.connect(PeerInfo{0, 0, false, 2});
    h.open(sender, 1);
    h.open(hog, 1);
    h.open(fine, 1);
    h.bind(hog, 1, "$.x");
    h.bind(fine, 1, "$.x");
    for (int i = 0; i < 20; ++i) {
        Record r = rec(RecordType::SEND, 1, 0, 0, "$.x");
        r.body = MessageBody::copyOf("$.x", std::vector<std::byte>(100, std::byte{1}));
        h.call(sender, r);
        h.pop(fine, 1); // fine keeps up; hog never reads
    }
    EXPECT_LT(h.mirrors[std::make_pair(hog, 1u)].size(), 20u);
    EXPECT_LE(h.mirrors[std::make_pair(hog, 1u)].size() * entireMessageLength(3, 100), 1000u);
}

} // namespace
} // namespace xkbus::daemon

namespace xkbus::daemon {
namespace {

TEST(DispatcherIntrospection, BindingsAndStatsComeAsJson) {
    Harness h;
    const ConnectionId c = h.connect(PeerInfo{0, 77, false, 0});
    h.open(c, 1);
    h.bind(c, 1, "$.a.*", true);
    auto bindings = h.call(c, rec(RecordType::INTROSPECT, 0,
                                  static_cast<uint32_t>(protocol::Introspect::BINDINGS), 0));
    ASSERT_EQ(bindings.arg, 0u);
    const std::string text(reinterpret_cast<const char*>(bindings.body.data().data()),
                           bindings.body.data().size());
    EXPECT_EQ(text, R"([{"domid":0,"ksock":1,"name":"$.a.*","owner":77,"pid":77,"replier":true}])");
    auto stats = h.call(
        c, rec(RecordType::INTROSPECT, 0, static_cast<uint32_t>(protocol::Introspect::STATS), 0));
    const std::string statsText(reinterpret_cast<const char*>(stats.body.data().data()),
                                stats.body.data().size());
    EXPECT_NE(statsText.find(R"("next_ksock_id":2)"), std::string::npos) << statsText;
    EXPECT_NE(statsText.find(R"("domid":0,"id":1,)"), std::string::npos) << statsText;
    EXPECT_NE(statsText.find(R"("pid":77,)"), std::string::npos) << statsText;
    auto missing = h.call(c, rec(RecordType::INTROSPECT, 0, 1, 9));
    EXPECT_EQ(missing.arg, static_cast<uint32_t>(ENOENT));
}

// A guest's Ksock says its domain, so the CLI can name it (and not take
// the domid for a pid).
TEST(DispatcherIntrospection, AGuestsKsockNamesItsDomain) {
    Harness h;
    const ConnectionId c = h.connect(PeerInfo{5, 0, false, 0});
    h.open(c, 1);
    h.bind(c, 1, "$.guest", false);
    auto bindings = h.call(c, rec(RecordType::INTROSPECT, 0,
                                  static_cast<uint32_t>(protocol::Introspect::BINDINGS), 0));
    ASSERT_EQ(bindings.arg, 0u);
    const std::string text(reinterpret_cast<const char*>(bindings.body.data().data()),
                           bindings.body.data().size());
    EXPECT_EQ(text,
              R"([{"domid":5,"ksock":1,"name":"$.guest","owner":5,"pid":0,"replier":false}])");
}

} // namespace
} // namespace xkbus::daemon
