// The dispatcher asking the policy: guests (which the local e2e tests cannot
// be) kept to their slot's bus and away from bus-wide settings, a reload
// that applies to connections already open, per-tenant connection and
// NEW_BUS limits, and the one refusal line naming the tenant and the rule.
#include <gtest/gtest.h>
#include <xkbus/daemon/dispatcher.hpp>

namespace xkbus::daemon {
namespace {

using protocol::Control;
using protocol::Record;
using protocol::RecordType;

class PolicyHarness {
public:
    PolicyHarness() : core(config()), dispatcher(core) {
        dispatcher.onRefusal = [this](const std::string& line) { refusals.push_back(line); };
    }

    static core::CoreConfig config() {
        core::CoreConfig c;
        c.initialBuses = 2;
        c.bus.recordQueueEvents = true;
        return c;
    }

    ConnectionId connect(const Tenant& t) {
        PeerInfo peer;
        peer.domid = t.domid;
        peer.chargeGroup = t.chargeGroup();
        peer.tenant = t;
        return dispatcher.connect(peer);
    }

    // The errno of the call's RESULT (UINT32_MAX if none came).
    uint32_t call(ConnectionId id, Record r) {
        r.callId = ++m_calls;
        if (auto ok = dispatcher.handle(id, r); !ok) {
            violation = ok.error();
            return UINT32_MAX;
        }
        uint32_t error = UINT32_MAX;
        for (auto& out : dispatcher.takeOutgoing()) {
            if (out.record.type == RecordType::RESULT && out.to == id &&
                out.record.callId == r.callId) {
                error = out.record.arg;
            }
        }
        return error;
    }

    uint32_t hello(ConnectionId id) {
        return call(id, make(RecordType::HELLO, 0, protocol::PROTOCOL_VERSION));
    }
    uint32_t open(ConnectionId id, uint32_t handle, uint32_t bus) {
        return call(id, make(RecordType::OPEN, handle, bus, protocol::OPEN_WRITABLE));
    }
    uint32_t bind(ConnectionId id, uint32_t handle, const std::string& name, bool replier) {
        return call(id, make(RecordType::BIND, handle, replier ? 1 : 0, 0, name));
    }
    uint32_t control(ConnectionId id, uint32_t handle, Control what, uint64_t value) {
        return call(id, make(RecordType::CONTROL, handle, static_cast<uint32_t>(what), value));
    }

    static Record make(RecordType type, uint32_t handle = 0, uint32_t arg = 0, uint64_t value = 0,
                       const std::string& name = {}) {
        Record r;
        r.type = type;
        r.handle = handle;
        r.arg = arg;
        r.value = value;
        r.body = MessageBody::copyOf(name, {});
        return r;
    }

    core::Core core;
    Dispatcher dispatcher;
    std::vector<std::string> refusals;
    std::string violation;

private:
    uint32_t m_calls = 0;
};

const Tenant GUEST = Tenant::guest(5, "web", 1);

TEST(DispatcherPolicy, AGuestIsKeptToItsSlotsBusAndTheRefusalNamesTenantAndRule) {
    PolicyHarness h;
    h.dispatcher.setPolicy(Policy{});
    const ConnectionId g = h.connect(GUEST);
    ASSERT_EQ(h.hello(g), 0u);
    EXPECT_EQ(h.open(g, 1, 0), static_cast<uint32_t>(EPERM));
    ASSERT_EQ(h.refusals.size(), 1u);
    EXPECT_EQ(h.refusals[0], "refused dom5 (web): open bus on bus 0 (rule: default for guests)");
    EXPECT_EQ(h.open(g, 1, 1), 0u) << "the same connection goes on";
    EXPECT_EQ(h.bind(g, 1, "$.Any.Name", true), 0u);
}

TEST(DispatcherPolicy, AGuestMayQueryButNotChangeBusWideSettings) {
    PolicyHarness h;
    h.dispatcher.setPolicy(Policy{});
    const ConnectionId g = h.connect(GUEST);
    ASSERT_EQ(h.hello(g), 0u);
    ASSERT_EQ(h.open(g, 1, 1), 0u);
    EXPECT_EQ(h.control(g, 1, Control::MAX_MESSAGE_SIZE, 0), 0u);
    EXPECT_EQ(h.control(g, 1, Control::MAX_MESSAGE_SIZE, 500), static_cast<uint32_t>(EPERM));
    EXPECT_EQ(h.control(g, 1, Control::REPORT_REPLIER_BINDS, core::QUERY), 0u);
    EXPECT_EQ(h.control(g, 1, Control::REPORT_REPLIER_BINDS, 1), static_cast<uint32_t>(EPERM));
    EXPECT_EQ(h.control(g, 1, Control::VERBOSE, 1), static_cast<uint32_t>(EPERM));
    EXPECT_EQ(h.call(g, PolicyHarness::make(RecordType::NEW_BUS)), static_cast<uint32_t>(EPERM));
    EXPECT_EQ(h.refusals.size(), 4u);
    // dom0 changes it for everyone.
    const ConnectionId root = h.connect(Tenant::dom0());
    ASSERT_EQ(h.hello(root), 0u);
    ASSERT_EQ(h.open(root, 1, 1), 0u);
    EXPECT_EQ(h.control(root, 1, Control::MAX_MESSAGE_SIZE, 500), 0u);
}

TEST(DispatcherPolicy, AReloadAppliesToConnectionsAlreadyOpenAndSetsTheirLimits) {
    PolicyHarness h;
    h.dispatcher.setPolicy(Policy{});
    const ConnectionId g = h.connect(GUEST);
    ASSERT_EQ(h.hello(g), 0u);
    ASSERT_EQ(h.open(g, 1, 1), 0u);
    EXPECT_EQ(h.bind(g, 1, "$.A.one", false), 0u);
    auto narrower =
        parsePolicy("[tenant web]\nmatch = domain:web\nlisten = $.B.*\nbindings = 2\n", "p.conf");
    ASSERT_TRUE(narrower) << narrower.error().describe();
    h.dispatcher.setPolicy(*narrower);
    EXPECT_EQ(h.bind(g, 1, "$.A.two", false), static_cast<uint32_t>(EPERM));
    EXPECT_EQ(h.refusals.back(),
              "refused dom5 (web): bind as listener on bus 1 $.A.two (rule: p.conf:3 [tenant web] "
              "listen)");
    EXPECT_EQ(h.core.groupUsage(GUEST.chargeGroup()).limits.bindings, 2u);
    EXPECT_EQ(h.bind(g, 1, "$.B.x", false), 0u);
    EXPECT_EQ(h.bind(g, 1, "$.B.y", false), static_cast<uint32_t>(ENOMEM)) << "2 bindings held";
}

TEST(DispatcherPolicy, AConnectionBeyondItsTenantsLimitGetsEmfileOnHello) {
    PolicyHarness h;
    auto policy = parsePolicy("[tenant web]\nmatch = domid:5\nconnections = 2\n", "p.conf");
    ASSERT_TRUE(policy);
    h.dispatcher.setPolicy(*policy);
    const ConnectionId a = h.connect(GUEST);
    const ConnectionId b = h.connect(Tenant::guest(5, "web", 0)); // another slot, same domain
    const ConnectionId c = h.connect(GUEST);
    EXPECT_EQ(h.hello(a), 0u);
    EXPECT_EQ(h.hello(b), 0u);
    EXPECT_EQ(h.hello(c), static_cast<uint32_t>(EMFILE));
    EXPECT_EQ(h.open(c, 1, 1), UINT32_MAX);
    EXPECT_EQ(h.violation, "a call came before HELLO");
    // The refused one counts until it goes (its client closes it); then one
    // more going makes room for the next.
    h.dispatcher.disconnect(c);
    h.dispatcher.disconnect(a);
    const ConnectionId d = h.connect(GUEST);
    EXPECT_EQ(h.hello(d), 0u);
}

TEST(DispatcherPolicy, NewBusBeyondTheTenantsLimitIsEnospc) {
    PolicyHarness h;
    auto policy = parsePolicy("[tenant d]\nmatch = dom0\nbuses_created = 1\n", "p.conf");
    ASSERT_TRUE(policy);
    h.dispatcher.setPolicy(*policy);
    const ConnectionId root = h.connect(Tenant::dom0());
    ASSERT_EQ(h.hello(root), 0u);
    EXPECT_EQ(h.call(root, PolicyHarness::make(RecordType::NEW_BUS)), 0u);
    EXPECT_EQ(h.call(root, PolicyHarness::make(RecordType::NEW_BUS)),
              static_cast<uint32_t>(ENOSPC));
    EXPECT_EQ(h.core.busCount(), 3u);
}

TEST(DispatcherPolicy, WithoutSetPolicyTheCoresConfiguredLimitsHold) {
    PolicyHarness h;
    const ConnectionId g = h.connect(GUEST);
    ASSERT_EQ(h.hello(g), 0u);
    EXPECT_EQ(h.core.groupUsage(GUEST.chargeGroup()).limits, core::TenantLimits{});
}

} // namespace
} // namespace xkbus::daemon
