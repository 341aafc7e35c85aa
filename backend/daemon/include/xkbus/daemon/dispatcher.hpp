// The daemon's logic between connections and the bus core, with no I/O: it
// takes validated records from client connections, calls the core, and
// produces the records to send back, in order, including the queue events
// that keep each client's mirrors (docs/architecture.md). The event loop
// moves bytes; this decides what they mean.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <tl/expected.hpp>
#include <unordered_map>
#include <vector>
#include <xkbus/core/core.hpp>
#include <xkbus/daemon/policy.hpp>
#include <xkbus/protocol/records.hpp>

namespace xkbus::daemon {

using ConnectionId = uint32_t;

struct PeerInfo {
    uint32_t domid = 0;       // 0 for a process on this host
    uint32_t pid = 0;         // as the peer claims (Xen) or as the kernel says (local)
    bool trusted = false;     // may send SYNTHETIC messages (a Limpet)
    uint32_t chargeGroup = 0; // whose byte quota its Ksocks' queues count against
    // Who it is for the policy (issue 15); front doors set chargeGroup from it.
    Tenant tenant = Tenant::dom0();
    // The largest Ksock handle it may use (a local client's fds have one
    // readiness byte per handle in its ring's page 0).
    uint32_t maxHandle = UINT32_MAX;
};

struct Quotas {
    uint32_t maxKsocksPerConnection = 1100; // the KBUS suite opens 1000 listeners
    uint32_t maxBindingsPerConnection = 16384;
};

// What a Ksock's pollable fd should say, from the core's point of view.
struct Readiness {
    bool readable = false; // its queue is not empty
    bool blocked = false;  // an ALL_OR_WAIT send is still pending
};

struct Outgoing {
    ConnectionId to = 0;
    protocol::Record record;
    // A successful RESULT its caller asked not to be woken for (SEND_QUIET_SUCCESS).
    bool quiet = false;
};

class Dispatcher {
public:
    Dispatcher(core::Core& core, Quotas quotas = {});

    ConnectionId connect(const PeerInfo& peer);
    // Replaces the policy (SIGHUP): decisions from now on follow it, and
    // every connected tenant's limits are set again from it.
    void setPolicy(Policy policy);
    const Policy& policy() const noexcept { return m_policy; }
    // Told of every refusal, once, with the tenant and the rule (a log line).
    std::function<void(const std::string&)> onRefusal;
    // Applies one record from `from`. A record no honest client sends (a
    // daemon-side type, a bad version, a reused handle, a call before HELLO)
    // is a protocol violation: the reason comes back, and the caller logs it
    // and calls disconnect().
    tl::expected<void, std::string> handle(ConnectionId from, const protocol::Record& record);
    // Takes back an OPEN that handle() granted, because the daemon could not
    // give the Ksock its fd: closes it and turns its RESULT into `why`.
    void abandonOpen(ConnectionId id, const protocol::Record& open, Errc why);
    // Closes everything the connection held, as if each Ksock were closed:
    // whatever it owed others becomes a status reply.
    void disconnect(ConnectionId id);

    // Records to send since the last call, in the order they must arrive.
    std::vector<Outgoing> takeOutgoing();
    // The same into `into` (cleared first): the two buffers swap, so a busy
    // daemon reuses their memory instead of allocating per record.
    void takeOutgoing(std::vector<Outgoing>& into);

    size_t connectionCount() const noexcept { return m_connections.size(); }
    size_t ksockCount(ConnectionId id) const;
    // nullopt if the connection has no such handle.
    std::optional<Readiness> readiness(ConnectionId id, uint32_t handle) const;

private:
    struct Handle {
        uint32_t bus = 0;
        KsockId ksock = 0;
        uint32_t bindings = 0;
    };
    struct Connection {
        PeerInfo peer;
        bool greeted = false;
        bool overLimit = false; // its tenant had all its connections already: HELLO fails
        std::unordered_map<uint32_t, Handle> handles;
        uint32_t bindings = 0;
    };
    // What the daemon counts per tenant beside the core's accounts.
    struct TenantState {
        Tenant tenant;
        uint32_t connections = 0;
        uint32_t busesCreated = 0;
    };
    struct Owner {
        ConnectionId connection = 0;
        uint32_t handle = 0;
    };

    // What a RESULT record carries: an errno (0 for success) and a value.
    struct Answer {
        int error = 0;
        uint64_t value = 0;
        std::string text; // INTROSPECT's JSON, SEND_BATCH's outcomes
    };
    static Answer from(const Result<uint64_t>& r) {
        return r ? Answer{0, *r, {}} : Answer{toErrno(r.error()), 0, {}};
    }

    void answer(ConnectionId to, const protocol::Record& call, const Answer& a);
    Answer apply(Connection& c, ConnectionId id, const protocol::Record& r);
    Answer open(Connection& c, ConnectionId id, const protocol::Record& r);
    Answer close(Connection& c, const protocol::Record& r);
    Answer bindOrUnbind(Connection& c, Handle& h, const protocol::Record& r);
    Answer send(const Connection& c, Handle& h, const protocol::Record& r);
    Answer sendBatch(Connection& c, uint32_t handle, const std::vector<protocol::Record>& sends);
    Answer next(Handle& h);
    Answer control(const Connection& c, Handle& h, const protocol::Record& r);
    Answer introspect(const Connection& c, const protocol::Record& r);
    Answer newBus(const Connection& c);
    // The one place the policy is asked; a refusal is told to onRefusal.
    bool permits(const Connection& c, Operation op, uint32_t bus, std::string_view name = {});
    bool sendPermitted(const Connection& c, const Handle& h, const protocol::Record& r);
    bool settingPermitted(const Connection& c, const Handle& h, protocol::Control which,
                          uint32_t value);
    core::Rights rightsOf(const Connection& c) const;
    void applyLimits(const Tenant& t);
    nlohmann::json tenantUsages(const Connection& asker) const;
    void closeHandle(Connection& c, uint32_t handle);
    void shipEvents(uint32_t bus);
    void shipBusEvents(uint32_t bus);
    static uint64_t ownerKey(uint32_t bus, KsockId ksock) noexcept {
        return (uint64_t{bus} << 32) | ksock;
    }

    core::Core& m_core;
    Quotas m_quotas;
    std::unordered_map<ConnectionId, Connection> m_connections;
    std::unordered_map<uint64_t, Owner> m_owners;
    ConnectionId m_nextConnection = 1;
    std::vector<Outgoing> m_outgoing;
    Policy m_policy;
    bool m_limitsFromPolicy = false; // until setPolicy(), the core's config sets every limit
    std::unordered_map<uint32_t, TenantState> m_tenants; // by charge group
};

} // namespace xkbus::daemon
