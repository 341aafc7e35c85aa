// The device handshake scenarios, written once as a typed test suite and run
// on the in-memory store (device_test.cpp) and on the real xenstored
// (handshake_integration_test.cpp). A Harness supplies connections and the
// toolstack's domain life cycle.
#pragma once

#include <deque>
#include <functional>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <latch>
#include <map>
#include <poll.h>
#include <set>
#include <thread>
#include <xkbus/xenstore/backend_device.hpp>
#include <xkbus/xenstore/frontend_device.hpp>

namespace xkbus::xenstore::testing {

using namespace std::chrono_literals;

// A bound for a failing test, never a delay: every wait ends on an event.
inline constexpr auto PUMP_TIMEOUT = 5000ms;
inline const DeviceParams GOOD_PARAMS{PROTOCOL_VERSION, 4242, 17, 12, 16};

// Stands in for the daemon's ring layer: records what it was asked to map.
struct FakeConnector final : Connector {
    std::map<DeviceId, DeviceParams> active;
    int connects = 0;
    int disconnects = 0;
    std::set<uint32_t> refusedRefs; // connect() fails for these control refs

    Result<void> connect(DeviceId device, uint32_t, const DeviceParams& params) override {
        if (active.contains(device)) {
            ADD_FAILURE() << "connected twice: dom" << device.domid << "/" << device.devid;
        }
        if (refusedRefs.contains(params.controlRef)) {
            return fail(Errc::PERMISSION_DENIED);
        }
        active[device] = params;
        ++connects;
        return {};
    }
    void disconnect(DeviceId device) override {
        if (active.erase(device) == 0) {
            ADD_FAILURE() << "disconnect without connect: dom" << device.domid;
        }
        ++disconnects;
    }
};

struct Guest {
    DomId domid = 0;
    std::unique_ptr<Store> store;
    std::optional<FrontendDevice> device;
};

template <class Harness>
class HandshakeScenarios : public ::testing::Test {
protected:
    void SetUp() override {
        if (auto why = Harness::skipReason(); !why.empty()) {
            GTEST_SKIP() << why;
        }
        ASSERT_EQ(m_harness.start(), "");
        m_observer = m_harness.connect(0);
        ASSERT_TRUE(m_observer);
        startBackend();
    }

    void startBackend(ProvisionPolicy policy = {}) {
        m_backend.reset();
        m_backendStore = m_harness.connect(0);
        ASSERT_TRUE(m_backendStore);
        m_backend = std::make_unique<BackendDevices>(
            *m_backendStore, *m_connector,
            BackendOptions{std::move(policy),
                           [this](std::string_view line) { m_log.emplace_back(line); }});
        ASSERT_TRUE(m_backend->start());
    }

    // The daemon process dies: its watches, connection and mappings go with it.
    void crashBackend() {
        m_backend.reset();
        m_backendStore.reset();
        m_connector = std::make_unique<FakeConnector>();
    }

    Guest& newGuest(DomId domid) {
        m_guests.push_back(Guest{domid, m_harness.connect(domid), std::nullopt});
        return m_guests.back();
    }

    // The guest process (or its whole domain) is gone, and its connection.
    static void vanish(Guest& guest) {
        guest.device.reset();
        guest.store.reset();
    }

    static FrontendOptions options(DomId domid, std::string token) {
        return FrontendOptions{domid, std::nullopt, std::move(token), {}};
    }

    // Claims, publishes and waits for Connected.
    ::testing::AssertionResult connectGuest(Guest& guest, std::string token,
                                            DeviceParams params = GOOD_PARAMS) {
        auto device = FrontendDevice::claim(*guest.store, options(guest.domid, token));
        if (!device) {
            return ::testing::AssertionFailure() << "claim: " << describe(device.error());
        }
        guest.device.emplace(std::move(*device));
        if (auto r = guest.device->publish(params); !r) {
            return ::testing::AssertionFailure() << "publish: " << describe(r.error());
        }
        return pumpUntil([&] { return guest.device->phase() == FrontendPhase::CONNECTED; });
    }

    // Delivers every party's watch events until done() holds.
    ::testing::AssertionResult pumpUntil(const std::function<bool()>& done) {
        const auto deadline = std::chrono::steady_clock::now() + PUMP_TIMEOUT;
        for (;;) {
            bool progressed = false;
            if (auto r = drainAll(progressed); !r) {
                return r;
            }
            if (done()) {
                return ::testing::AssertionSuccess();
            }
            if (progressed) {
                continue;
            }
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0 || !waitForAnyEvent(left)) {
                return ::testing::AssertionFailure() << "timed out waiting for the condition";
            }
        }
    }

    std::string value(std::string_view path) {
        auto v = m_observer->read(NO_TRANSACTION, path);
        return v ? *v : "<" + std::string(describe(v.error())) + ">";
    }
    std::string backendState(DeviceId d) { return value(nodePath(backendDir(d), key::STATE)); }
    std::string frontendState(DeviceId d) { return value(nodePath(frontendDir(d), key::STATE)); }
    bool isFreeSlot(DeviceId d) {
        return backendState(d) == "2" && frontendState(d) == "1" &&
               value(nodePath(frontendDir(d), key::CLAIMED_BY)).starts_with("<");
    }
    size_t devicesOf(DomId domid) {
        size_t n = 0;
        for (const auto& snapshot : m_backend->devices()) {
            n += snapshot.device.domid == domid;
        }
        return n;
    }
    bool logMentions(std::string_view text) {
        for (const auto& line : m_log) {
            if (line.find(text) != std::string::npos) {
                return true;
            }
        }
        return false;
    }

    Harness m_harness;
    std::unique_ptr<Store> m_observer;
    std::unique_ptr<Store> m_backendStore;
    std::unique_ptr<FakeConnector> m_connector = std::make_unique<FakeConnector>();
    std::unique_ptr<BackendDevices> m_backend;
    std::deque<Guest> m_guests;
    std::vector<std::string> m_log;

private:
    ::testing::AssertionResult drainAll(bool& progressed) {
        if (m_backendStore) {
            while (auto event = m_backendStore->nextWatchEvent(0ms)) {
                progressed = true;
                if (auto r = m_backend->handleWatchEvent(*event); !r) {
                    return ::testing::AssertionFailure()
                           << "backend failed on " << event->path << ": " << describe(r.error());
                }
            }
        }
        for (Guest& guest : m_guests) {
            while (guest.store) {
                auto event = guest.store->nextWatchEvent(0ms);
                if (!event) {
                    break;
                }
                progressed = true;
                if (guest.device) {
                    if (auto r = guest.device->update(); !r) {
                        return ::testing::AssertionFailure()
                               << "frontend update: " << describe(r.error());
                    }
                }
            }
        }
        return ::testing::AssertionSuccess();
    }

    bool waitForAnyEvent(std::chrono::milliseconds timeout) {
        std::vector<pollfd> fds;
        if (m_backendStore) {
            fds.push_back({m_backendStore->watchFd(), POLLIN, 0});
        }
        for (Guest& guest : m_guests) {
            if (guest.store) {
                fds.push_back({guest.store->watchFd(), POLLIN, 0});
            }
        }
        return ::poll(fds.data(), fds.size(), static_cast<int>(timeout.count())) > 0;
    }
};

TYPED_TEST_SUITE_P(HandshakeScenarios);

TYPED_TEST_P(HandshakeScenarios, ConnectCloseAndReconnect) {
    ASSERT_TRUE(this->m_harness.introduceDomain(5));
    ASSERT_TRUE(this->m_backend->provision(5, {3, 2}));
    const DeviceId slot{5, 0};
    EXPECT_TRUE(this->isFreeSlot(slot));
    Guest& guest = this->newGuest(5);
    ASSERT_TRUE(this->connectGuest(guest, "proc1"));
    EXPECT_EQ(guest.device->device(), slot);
    EXPECT_EQ(guest.device->bus(), 3u);
    EXPECT_EQ(this->m_connector->active.at(slot), GOOD_PARAMS);
    ASSERT_TRUE(this->pumpUntil([&] { return this->frontendState(slot) == "4"; }));
    EXPECT_EQ(this->backendState(slot), "4");

    ASSERT_TRUE(guest.device->close());
    ASSERT_TRUE(this->pumpUntil(
        [&] { return guest.device->phase() == FrontendPhase::CLOSED && this->isFreeSlot(slot); }));
    EXPECT_TRUE(this->m_connector->active.empty());
    EXPECT_EQ(this->m_connector->disconnects, 1);

    guest.device.reset();
    ASSERT_TRUE(this->connectGuest(guest, "proc2"));
    EXPECT_EQ(guest.device->device(), slot);
    EXPECT_EQ(this->m_connector->connects, 2);
}

TYPED_TEST_P(HandshakeScenarios, TwoGuestProcessesRaceForSlots) {
    ASSERT_TRUE(this->m_harness.introduceDomain(5));
    ASSERT_TRUE(this->m_backend->provision(5, {0, 3}));
    constexpr int PROCESSES = 8;
    std::vector<std::unique_ptr<Store>> stores;
    for (int i = 0; i < PROCESSES; ++i) {
        stores.push_back(this->m_harness.connect(5));
    }
    std::vector<Result<DevId>> results(PROCESSES, fail(Errc::INVALID));
    std::latch go(PROCESSES);
    std::vector<std::thread> threads;
    for (int i = 0; i < PROCESSES; ++i) {
        threads.emplace_back([&, i] {
            go.arrive_and_wait();
            auto device = FrontendDevice::claim(*stores[static_cast<size_t>(i)],
                                                this->options(5, "p" + std::to_string(i)));
            results[static_cast<size_t>(i)] =
                device ? Result<DevId>(device->device().devid) : fail(device.error());
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    std::set<DevId> won;
    int lost = 0;
    for (int i = 0; i < PROCESSES; ++i) {
        const auto& r = results[static_cast<size_t>(i)];
        if (r) {
            EXPECT_TRUE(won.insert(*r).second) << "slot " << *r << " claimed twice";
            EXPECT_EQ(this->value(nodePath(frontendDir({5, *r}), key::CLAIMED_BY)),
                      "p" + std::to_string(i));
        } else {
            EXPECT_EQ(r.error(), Errc::TOO_MANY);
            ++lost;
        }
    }
    EXPECT_EQ(won, (std::set<DevId>{0, 1, 2}));
    EXPECT_EQ(lost, PROCESSES - 3);
}

TYPED_TEST_P(HandshakeScenarios, SpuriousWatchStormChangesNothing) {
    ASSERT_TRUE(this->m_harness.introduceDomain(5));
    ASSERT_TRUE(this->m_backend->provision(5, {0, 2}));
    Guest& guest = this->newGuest(5);
    ASSERT_TRUE(this->connectGuest(guest, "steady"));
    const std::string root = frontendRoot(5);
    const WatchEvent storm[] = {
        {root, "xkbus:fe:5"},
        {root + "/0", "xkbus:fe:5"},
        {root + "/0/state", "xkbus:fe:5"},
        {root + "/0/page-ref", "xkbus:fe:5"},
        {root + "/abc/state", "xkbus:fe:5"},
        {root + "/99999/state", "xkbus:fe:5"},
        {root + "/0/state", "xkbus:fe:77"},
        {root + "/0/state", "xkbus:fe:banana"},
        {"/elsewhere", "xkbus:fe:5"},
        {std::string(RELEASE_DOMAIN), "xkbus:release"},
        {std::string(INTRODUCE_DOMAIN), "xkbus:introduce"},
        {"", ""},
    };
    for (int round = 0; round < 100; ++round) {
        for (const auto& event : storm) {
            ASSERT_TRUE(this->m_backend->handleWatchEvent(event));
        }
    }
    // Real events too: the guest rewrites the same values over and over.
    for (int i = 0; i < 50; ++i) {
        ASSERT_TRUE(
            guest.store->write(NO_TRANSACTION, nodePath(frontendDir({5, 0}), key::STATE), "4"));
        ASSERT_TRUE(guest.store->write(NO_TRANSACTION,
                                       nodePath(frontendDir({5, 0}), key::CONTROL_REF), "4242"));
    }
    // Events are handled in order: once a second device connects, the storm is over.
    Guest& marker = this->newGuest(5);
    ASSERT_TRUE(this->connectGuest(marker, "marker"));
    EXPECT_EQ(this->m_connector->connects, 2);
    EXPECT_EQ(this->m_connector->disconnects, 0);
    EXPECT_EQ(this->backendState({5, 0}), "4");
    EXPECT_EQ(guest.device->phase(), FrontendPhase::CONNECTED);
}

TYPED_TEST_P(HandshakeScenarios, BadFrontendValuesCloseOnlyThatDevice) {
    struct Case {
        std::string_view key;
        std::optional<std::string> value; // nullopt: node missing
        std::string_view reasonMentions;
    };
    const std::vector<Case> cases = {
        {key::CONTROL_REF, "7", "page-ref"},
        {key::CONTROL_REF, "0x10", "page-ref"},
        {key::CONTROL_REF, "+12", "page-ref"},
        {key::CONTROL_REF, std::nullopt, "page-ref: missing"},
        {key::CONTROL_REF, "99999999999999999999999", "page-ref"},
        {key::EVENT_CHANNEL, "0", "event-channel"},
        {key::EVENT_CHANNEL, "131072", "event-channel"},
        {key::EVENT_CHANNEL, " 5", "event-channel"},
        {key::EVENT_CHANNEL, std::string(2000, '9'), "event-channel"},
        {key::TO_BACKEND_ORDER, "21", "to-backend-order"},
        {key::TO_FRONTEND_ORDER, "012", "to-frontend-order"},
        {key::PROTOCOL_VERSION, "2", "protocol-version"},
        {key::STATE, "abc", "unreadable"},
        {key::STATE, "9", "unreadable"},
        {key::STATE, "", "unreadable"},
        {key::STATE, "7", "unexpected"},
    };
    const DevId slots = static_cast<DevId>(cases.size()) + 2;
    ASSERT_TRUE(this->m_harness.introduceDomain(5));
    ASSERT_TRUE(this->m_backend->provision(5, {0, slots}));
    Guest& good = this->newGuest(5);
    ASSERT_TRUE(this->connectGuest(good, "good"));

    Guest& bad = this->newGuest(5);
    std::vector<DeviceId> badDevices;
    for (size_t i = 0; i <= cases.size(); ++i) {
        auto device =
            FrontendDevice::claim(*bad.store, this->options(5, "bad" + std::to_string(i)));
        ASSERT_TRUE(device);
        const std::string dir = frontendDir(device->device());
        badDevices.push_back(device->device());
        const std::pair<std::string_view, std::string> params[] = {
            {key::PROTOCOL_VERSION, "1"},   {key::CONTROL_REF, "100"},
            {key::EVENT_CHANNEL, "9"},      {key::TO_BACKEND_ORDER, "12"},
            {key::TO_FRONTEND_ORDER, "12"},
        };
        for (const auto& [key, v] : params) {
            ASSERT_TRUE(bad.store->write(NO_TRANSACTION, nodePath(dir, key), v));
        }
        if (i == cases.size()) { // last one: good values the connector refuses
            this->m_connector->refusedRefs.insert(1100);
            ASSERT_TRUE(bad.store->write(NO_TRANSACTION, nodePath(dir, key::CONTROL_REF), "1100"));
            ASSERT_TRUE(bad.store->write(NO_TRANSACTION, nodePath(dir, key::STATE), "3"));
            continue;
        }
        const Case& c = cases[i];
        if (c.key != key::STATE) {
            if (c.value) {
                ASSERT_TRUE(bad.store->write(NO_TRANSACTION, nodePath(dir, c.key), *c.value));
            } else {
                ASSERT_TRUE(bad.store->remove(NO_TRANSACTION, nodePath(dir, c.key)));
            }
        }
        ASSERT_TRUE(bad.store->write(NO_TRANSACTION, nodePath(dir, key::STATE),
                                     c.key == key::STATE ? *c.value : "3"));
    }
    ASSERT_TRUE(this->pumpUntil([&] {
        for (DeviceId d : badDevices) {
            if (this->backendState(d) != "6") {
                return false;
            }
        }
        return true;
    }));
    for (size_t i = 0; i < cases.size(); ++i) {
        EXPECT_THAT(this->value(nodePath(backendDir(badDevices[i]), key::REASON)),
                    ::testing::HasSubstr(std::string(cases[i].reasonMentions)))
            << "case " << i;
    }
    EXPECT_THAT(this->value(nodePath(backendDir(badDevices.back()), key::REASON)),
                ::testing::HasSubstr("connect failed"));
    EXPECT_EQ(this->m_connector->connects, 1);
    EXPECT_EQ(this->m_connector->disconnects, 0);
    EXPECT_EQ(this->backendState(good.device->device()), "4");
    EXPECT_TRUE(this->logMentions("bad page-ref"));

    // The frontend acknowledges with Closed: the slot is free again.
    ASSERT_TRUE(
        bad.store->write(NO_TRANSACTION, nodePath(frontendDir(badDevices[0]), key::STATE), "6"));
    ASSERT_TRUE(this->pumpUntil([&] { return this->isFreeSlot(badDevices[0]); }));
    EXPECT_EQ(this->value(nodePath(backendDir(badDevices[0]), key::REASON)).front(), '<');
}

TYPED_TEST_P(HandshakeScenarios, GuestProcessVanishesMidHandshake) {
    ASSERT_TRUE(this->m_harness.introduceDomain(5));
    ASSERT_TRUE(this->m_backend->provision(5, {0, 2}));
    const DeviceId slot0{5, 0};

    // Published, then died before answering Connected: the daemon sees its
    // status byte cleared and releases the slot.
    Guest& doomed = this->newGuest(5);
    {
        auto device = FrontendDevice::claim(*doomed.store, this->options(5, "doomed"));
        ASSERT_TRUE(device);
        ASSERT_TRUE(device->publish(GOOD_PARAMS));
    }
    this->vanish(doomed);
    ASSERT_TRUE(this->pumpUntil([&] { return this->m_connector->active.contains(slot0); }));
    ASSERT_TRUE(this->m_backend->releaseDevice(slot0));
    EXPECT_TRUE(this->m_connector->active.empty());
    EXPECT_TRUE(this->isFreeSlot(slot0));
    EXPECT_TRUE(this->m_backend->releaseDevice({5, 9}).error() == NOT_FOUND);

    // Claimed, then died before publishing: nothing is mapped, so only the
    // guest side can tell. A claim naming a dead process can be taken over.
    Guest& quitter = this->newGuest(5);
    ASSERT_TRUE(FrontendDevice::claim(*quitter.store, this->options(5, "quitter")));
    this->vanish(quitter);
    Guest& polite = this->newGuest(5);
    auto other = FrontendDevice::claim(*polite.store, this->options(5, "polite"));
    ASSERT_TRUE(other);
    EXPECT_EQ(other->device().devid, 1u); // slot 0 still looks taken
    Guest& heir = this->newGuest(5);
    auto opts = this->options(5, "heir");
    opts.isClaimAbandoned = [](std::string_view token) { return token == "quitter"; };
    auto inherited = FrontendDevice::claim(*heir.store, opts);
    ASSERT_TRUE(inherited);
    EXPECT_EQ(inherited->device(), slot0);
    heir.device.emplace(std::move(*inherited));
    ASSERT_TRUE(heir.device->publish(GOOD_PARAMS));
    ASSERT_TRUE(this->pumpUntil([&] { return heir.device->phase() == FrontendPhase::CONNECTED; }));
}

TYPED_TEST_P(HandshakeScenarios, DomainDeathUnmapsAndRemovesOnlyThatDomain) {
    for (DomId d : std::initializer_list<DomId>{5, 6, 7}) {
        ASSERT_TRUE(this->m_harness.introduceDomain(d));
    }
    ASSERT_TRUE(this->m_backend->provision(5, {0, 2}));
    ASSERT_TRUE(this->m_backend->provision(6, {0, 2}));
    Guest& g5 = this->newGuest(5);
    Guest& g6 = this->newGuest(6);
    ASSERT_TRUE(this->connectGuest(g5, "a"));
    ASSERT_TRUE(this->connectGuest(g6, "b"));

    ASSERT_TRUE(this->m_harness.killDomain(5));
    this->vanish(g5); // the guest's connection died with it
    ASSERT_TRUE(this->pumpUntil([&] { return this->devicesOf(5) == 0; }));
    EXPECT_FALSE(this->m_connector->active.contains({5, 0}));
    EXPECT_EQ(this->value(backendDomainDir(5)), "<" + std::string(describe(NOT_FOUND)) + ">");
    EXPECT_EQ(this->value(frontendRoot(5)), "<" + std::string(describe(NOT_FOUND)) + ">");

    // @releaseDomain again, for a domain without devices: nothing else moves.
    ASSERT_TRUE(this->m_harness.releaseDomain(7));
    Guest& marker = this->newGuest(6);
    ASSERT_TRUE(this->connectGuest(marker, "marker"));
    EXPECT_EQ(this->m_connector->disconnects, 1);
    EXPECT_EQ(this->backendState({6, 0}), "4");
    EXPECT_EQ(this->devicesOf(6), 2u);
}

TYPED_TEST_P(HandshakeScenarios, BackendRestartAdoptsDevicesInXenstore) {
    ASSERT_TRUE(this->m_harness.introduceDomain(5));
    ASSERT_TRUE(this->m_harness.introduceDomain(6));
    ASSERT_TRUE(this->m_backend->provision(5, {0, 3}));
    ASSERT_TRUE(this->m_backend->provision(6, {0, 1}));
    Guest& connected = this->newGuest(5);
    ASSERT_TRUE(this->connectGuest(connected, "was-connected"));
    Guest& other = this->newGuest(6);
    ASSERT_TRUE(this->connectGuest(other, "dom6"));

    this->crashBackend();
    // While no backend runs: a guest publishes, and dom6 dies.
    Guest& late = this->newGuest(5);
    auto device = FrontendDevice::claim(*late.store, this->options(5, "late"));
    ASSERT_TRUE(device);
    ASSERT_EQ(device->device().devid, 1u);
    late.device.emplace(std::move(*device));
    ASSERT_TRUE(late.device->publish(GOOD_PARAMS));
    ASSERT_TRUE(this->m_harness.releaseDomain(6));
    this->vanish(other);

    this->startBackend();
    ASSERT_TRUE(this->pumpUntil([&] {
        return late.device->phase() == FrontendPhase::CONNECTED &&
               connected.device->phase() == FrontendPhase::CLOSED && this->isFreeSlot({5, 0});
    }));
    EXPECT_EQ(this->m_connector->connects, 1); // only the pending handshake
    EXPECT_TRUE(this->isFreeSlot({5, 2}));
    EXPECT_EQ(this->devicesOf(5), 3u);
    EXPECT_EQ(this->devicesOf(6), 0u);
    EXPECT_EQ(this->value(backendDomainDir(6)), "<" + std::string(describe(NOT_FOUND)) + ">");
    EXPECT_TRUE(this->logMentions("backend restarted"));
    // The dropped guest simply connects again.
    connected.device.reset();
    ASSERT_TRUE(this->connectGuest(connected, "again"));
    EXPECT_EQ(connected.device->device().devid, 0u);
}

TYPED_TEST_P(HandshakeScenarios, NewDomainsGetSlotsByPolicy) {
    this->startBackend([](DomId domid) -> std::optional<SlotPlan> {
        if (domid >= 10 && domid < 20) {
            return SlotPlan{7, 2};
        }
        return std::nullopt;
    });
    ASSERT_TRUE(this->m_harness.introduceDomain(12));
    ASSERT_TRUE(this->pumpUntil([&] { return this->devicesOf(12) == 2; }));
    ASSERT_TRUE(this->m_harness.introduceDomain(30));
    ASSERT_TRUE(this->m_harness.introduceDomain(13));
    ASSERT_TRUE(this->pumpUntil([&] { return this->devicesOf(13) == 2; }));
    EXPECT_EQ(this->devicesOf(30), 0u);
    EXPECT_EQ(this->value(nodePath(backendDir({12, 1}), key::BUS)), "7");
    Guest& guest = this->newGuest(12);
    ASSERT_TRUE(this->connectGuest(guest, "auto"));
    EXPECT_EQ(guest.device->bus(), 7u);
}

TYPED_TEST_P(HandshakeScenarios, PermissionsAreSetAsDocumented) {
    ASSERT_TRUE(this->m_harness.introduceDomain(5));
    ASSERT_TRUE(this->m_harness.introduceDomain(6));
    ASSERT_TRUE(this->m_backend->provision(5, {0, 1}));
    ASSERT_TRUE(this->m_backend->provision(6, {0, 1}));
    const DeviceId d{5, 0};
    auto perms = [&](const std::string& path) {
        return this->m_observer->getPermissions(NO_TRANSACTION, path).value();
    };
    const std::vector<Permission> backendPerms{{0, Access::NONE}, {5, Access::READ}};
    const std::vector<Permission> frontendPerms{{5, Access::NONE}, {0, Access::READ}};
    EXPECT_EQ(perms(backendDir(d)), backendPerms);
    EXPECT_EQ(perms(nodePath(backendDir(d), key::STATE)), backendPerms);
    EXPECT_EQ(perms(frontendDir(d)), frontendPerms);
    EXPECT_EQ(perms(nodePath(frontendDir(d), key::STATE)), frontendPerms);
    EXPECT_EQ(perms(frontendRoot(5)), backendPerms);
}

TYPED_TEST_P(HandshakeScenarios, GuestsCannotTouchOthersNodes) {
    if (!TypeParam::ENFORCES_GUEST_PERMISSIONS) {
        GTEST_SKIP() << "xenstored treats every socket client as dom0: enforced only in memory";
    }
    ASSERT_TRUE(this->m_harness.introduceDomain(5));
    ASSERT_TRUE(this->m_harness.introduceDomain(6));
    ASSERT_TRUE(this->m_backend->provision(5, {0, 1}));
    ASSERT_TRUE(this->m_backend->provision(6, {0, 1}));
    const DeviceId d{5, 0};
    Guest& g5 = this->newGuest(5);
    Guest& g6 = this->newGuest(6);
    const std::string backState = nodePath(backendDir(d), key::STATE);
    EXPECT_EQ(g5.store->read(NO_TRANSACTION, backState).value(), "2");
    EXPECT_EQ(g5.store->write(NO_TRANSACTION, backState, "4").error(), Errc::PERMISSION_DENIED);
    EXPECT_EQ(g5.store->setPermissions(NO_TRANSACTION, backState, {{5, Access::BOTH}}).error(),
              Errc::PERMISSION_DENIED);
    EXPECT_TRUE(g5.store->write(NO_TRANSACTION, nodePath(frontendDir(d), key::CONTROL_REF), "9"));
    EXPECT_EQ(g6.store->read(NO_TRANSACTION, nodePath(frontendDir(d), key::STATE)).error(),
              Errc::PERMISSION_DENIED);
    EXPECT_EQ(g6.store->read(NO_TRANSACTION, backState).error(), Errc::PERMISSION_DENIED);
    EXPECT_EQ(g6.store->write(NO_TRANSACTION, nodePath(frontendDir(d), key::STATE), "3").error(),
              Errc::PERMISSION_DENIED);
    EXPECT_EQ(FrontendDevice::claim(*g6.store, this->options(5, "thief")).error(),
              Errc::PERMISSION_DENIED);
    EXPECT_EQ(g5.store->write(NO_TRANSACTION, nodePath(frontendRoot(5), "77/state"), "3").error(),
              Errc::PERMISSION_DENIED);
}

REGISTER_TYPED_TEST_SUITE_P(HandshakeScenarios, ConnectCloseAndReconnect,
                            TwoGuestProcessesRaceForSlots, SpuriousWatchStormChangesNothing,
                            BadFrontendValuesCloseOnlyThatDevice, GuestProcessVanishesMidHandshake,
                            DomainDeathUnmapsAndRemovesOnlyThatDomain,
                            BackendRestartAdoptsDevicesInXenstore, NewDomainsGetSlotsByPolicy,
                            PermissionsAreSetAsDocumented, GuestsCannotTouchOthersNodes);

} // namespace xkbus::xenstore::testing
