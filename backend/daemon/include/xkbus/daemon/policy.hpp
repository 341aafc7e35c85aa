// Who may do what on xkbusd (issue 15): the tenant model and the policy file
// (/etc/xkbus/policy.conf, docs/security.md). Pure logic: text in, a Policy
// out, and decide(tenant, operation) answers allowed or refused together
// with the rule that said so, for the one log line a refusal gets. The
// dispatcher asks it in one place; parsing is done once per (re)load.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include <xkbus/common/result.hpp>
#include <xkbus/core/accounts.hpp>

namespace xkbus::daemon {

// Who is asking. Guests are whole domains; local clients are Unix users.
struct Tenant {
    enum class Kind : uint8_t {
        DOM0,  // local root, or a client of the trusted (Limpet) socket
        GUEST, // every slot of one Xen domain
        LOCAL, // every connection of one local Unix user
    };
    Kind kind = Kind::DOM0;
    uint32_t domid = 0;         // GUEST
    std::string domainName;     // GUEST, when xenstore names it
    uint32_t slotBus = 0;       // GUEST: the bus its device slot is on
    uint32_t uid = 0;           // LOCAL (and local root)
    std::vector<uint32_t> gids; // LOCAL: its primary and supplementary groups
    std::string userName;       // LOCAL, when the passwd database names it
    std::vector<std::string> groupNames;

    static Tenant dom0() { return Tenant{}; }
    static Tenant guest(uint32_t domid, std::string name, uint32_t slotBus);
    static Tenant localUser(uint32_t uid, std::vector<uint32_t> gids, std::string userName,
                            std::vector<std::string> groupNames);

    // The core charge group: one per tenant, so its limits hold across all
    // its connections and buses.
    uint32_t chargeGroup() const noexcept;
    // For log lines and `xkbus stats`: "dom0", "dom5 (web)", "uid 65534 (nobody)".
    std::string label() const;
};

enum class Operation : uint8_t {
    OPEN_BUS,          // open a Ksock on (or introspect) a bus
    BIND_LISTENER,     // bind a name (maybe a wildcard) as listener
    BIND_REPLIER,      // bind a name as replier
    SEND_ANNOUNCEMENT, // send a message that wants no reply (replies are always allowed)
    SEND_REQUEST,      // send a message that wants a reply
    BUS_SETTINGS,      // set MAXMSGSIZE, REPORT_REPLIER_BINDS, VERBOSE
    NEW_BUS,           // create a bus
    INTROSPECT_ALL,    // see other tenants' Ksocks and bindings in introspection
    NETWORK_IDS,       // send with a non-zero network id (Limpets)
};
std::string_view operationName(Operation op) noexcept;

struct Request {
    Operation op = Operation::OPEN_BUS;
    uint32_t bus = 0;
    std::string_view name; // the binding or message name, for binds and sends
};

struct Decision {
    bool allowed = false;
    std::string rule; // "policy.conf:12 [tenant web] listen", or "default for guests"
};

// The limits a tenant's charge group gets, with what the core does not count.
struct Limits {
    core::TenantLimits core;
    uint32_t connections = 64; // local connections, or a guest's device slots
    uint32_t busesCreated = 0; // NEW_BUS calls (the default forbids NEW_BUS anyway)
};

// One [tenant NAME] section. Every field is optional: what it leaves out
// comes from the tenant's defaults.
// The buses a rule opens (Rule::buses).
struct RuleBuses {
    bool all = false;
    bool slot = false; // a guest's own slot bus
    std::vector<uint32_t> listed;
};

struct Rule {
    struct Matcher {
        enum class Kind : uint8_t {
            ANY,
            GUESTS,
            LOCAL,
            DOM0,
            DOMID,
            DOMAIN,
            UID,
            USER,
            GID,
            GROUP
        };
        Kind kind = Kind::ANY;
        uint32_t number = 0;
        std::string text;
    };
    template <class T>
    struct Field {
        std::optional<T> value;
        unsigned line = 0; // where it was set, for the decision's rule
    };
    // At namespace scope: a nested struct with member initializers is not
    // default-constructible inside its enclosing class, which clang enforces
    // for std::optional<Buses>::emplace().
    using Buses = RuleBuses;

    std::string name;
    unsigned line = 0;
    std::vector<Matcher> match; // any one matching is enough
    Field<Buses> buses;
    Field<std::vector<std::string>> listen, reply, announce, request;
    Field<bool> busSettings, newBus, introspectAll, networkIds;
    // Limits given in this section; the others keep the tenant's defaults.
    std::vector<std::pair<std::string, uint64_t>> limits;

    bool matches(const Tenant& t) const;
};

// A decision without its text: the rule (nullptr: the defaults) and where.
struct Verdict {
    bool allowed = false;
    const Rule* rule = nullptr;
    unsigned line = 0;
    std::string_view key;
};

struct Policy {
    std::string file = "built-in defaults"; // for the rule names in decisions
    std::vector<Rule> rules;                // first match wins
    core::TenantLimits baseLimits;          // guests' and local users' core limits (xkbusd options)

    // The first rule matching `t`, or nullptr (the defaults apply).
    const Rule* ruleFor(const Tenant& t) const;
    Verdict judge(const Tenant& t, const Request& r) const;
    bool allows(const Tenant& t, const Request& r) const { return judge(t, r).allowed; }
    // The same with the rule spelt out, for the log line of a refusal.
    Decision decide(const Tenant& t, const Request& r) const;
    Limits limitsFor(const Tenant& t) const;
};

// What a bad file gets: its path, the line, and what is wrong there.
struct PolicyError {
    std::string file;
    unsigned line = 0; // 0: the file as a whole (cannot be read)
    std::string message;
    std::string describe() const; // "FILE:LINE: MESSAGE"
};

tl::expected<Policy, PolicyError> parsePolicy(std::string_view text, std::string file);
// A missing file is the built-in defaults; an unreadable one is an error,
// and so is one its group, others, or a user other than root or the
// daemon's own could write.
tl::expected<Policy, PolicyError> loadPolicy(const std::string& path);

// The defaults of each kind of tenant (docs/security.md), from the limits
// the daemon's options give guests and local users.
Limits defaultLimits(Tenant::Kind kind, const core::TenantLimits& base);

// True if every name the binding `bindName` can match is matched by the
// policy pattern `pattern` (KBUS `*` / `%` syntax). For a plain message
// name this is nameMatches(pattern, name).
bool patternCovers(std::string_view pattern, std::string_view bindName) noexcept;

} // namespace xkbus::daemon
