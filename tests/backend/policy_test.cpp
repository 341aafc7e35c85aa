// The policy module on its own: parsing (a good file, each kind of bad
// file and its message) and a matrix of tenants x operations x rules.
#include <cstdlib>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xkbus/daemon/policy.hpp>

namespace xkbus::daemon {
namespace {

using Op = Operation;

constexpr std::string_view GOOD = R"(# a complete policy
[tenant web]
match = domain:web domid:7
buses = slot 1
listen = $.Sensors.* $.Time.%
reply = $.Web.Status
announce = $.Web.*
request = $.Time.*
introspect = own
ksocks = 8
queued_bytes = 1M
connections = 2

[tenant staff]
match = group:staff uid:1000
bus_settings = yes
new_bus = yes
introspect = all
network_ids = no
buses_created = 3

[tenant dom0]
match = dom0
bindings = 100

[tenant others]
match = *
buses = 0
)";

Policy parsed(std::string_view text) {
    auto p = parsePolicy(text, "policy.conf");
    EXPECT_TRUE(p) << (p ? "" : p.error().describe());
    return p ? *p : Policy{};
}

PolicyError refused(std::string_view text) {
    auto p = parsePolicy(text, "policy.conf");
    EXPECT_FALSE(p) << "accepted:\n" << text;
    return p ? PolicyError{} : p.error();
}

const Tenant WEB = Tenant::guest(7, "web", 0);
const Tenant WEB_BY_NAME = Tenant::guest(9, "web", 2);
const Tenant OTHER_GUEST = Tenant::guest(5, "db", 0);
const Tenant STAFF = Tenant::localUser(1000, {1000}, "alice", {"alice"});
const Tenant STAFF_BY_GROUP = Tenant::localUser(1001, {50}, "bob", {"staff"});
const Tenant NOBODY = Tenant::localUser(65534, {65534}, "nobody", {"nogroup"});
const Tenant ROOT = Tenant::localUser(0, {0}, "root", {"root"});

bool allows(const Policy& p, const Tenant& t, Op op, uint32_t bus = 0, std::string_view name = {}) {
    return p.decide(t, Request{op, bus, name}).allowed;
}

TEST(PolicyParse, GoodFileGivesEachRuleInOrder) {
    const Policy p = parsed(GOOD);
    ASSERT_EQ(p.rules.size(), 4u);
    EXPECT_EQ(p.rules[0].name, "web");
    EXPECT_EQ(p.rules[0].line, 2u);
    EXPECT_EQ(p.rules[0].match.size(), 2u);
    EXPECT_EQ(p.rules[0].listen.value->size(), 2u);
    EXPECT_EQ(p.rules[1].name, "staff");
    EXPECT_EQ(p.rules[3].name, "others");
}

TEST(PolicyParse, RepeatedListKeysAddUp) {
    const Policy p = parsed("[tenant a]\nmatch = *\nlisten = $.A.*\nlisten = $.B.*\n");
    EXPECT_TRUE(allows(p, NOBODY, Op::BIND_LISTENER, 0, "$.A.x"));
    EXPECT_TRUE(allows(p, NOBODY, Op::BIND_LISTENER, 0, "$.B.x"));
    EXPECT_FALSE(allows(p, NOBODY, Op::BIND_LISTENER, 0, "$.C.x"));
}

TEST(PolicyParse, EmptyFileIsTheDefaults) {
    const Policy p = parsed("# nothing\n");
    EXPECT_TRUE(p.rules.empty());
    EXPECT_EQ(p.decide(NOBODY, {Op::BUS_SETTINGS, 0, {}}).rule, "default for local users");
}

struct BadFile {
    const char* text;
    unsigned line;
    const char* message; // a part of it
};

class PolicyBadFile : public ::testing::TestWithParam<BadFile> {};

TEST_P(PolicyBadFile, IsRefusedNamingFileLineAndFault) {
    const PolicyError e = refused(GetParam().text);
    EXPECT_EQ(e.file, "policy.conf");
    EXPECT_EQ(e.line, GetParam().line);
    EXPECT_NE(e.message.find(GetParam().message), std::string::npos) << e.describe();
    EXPECT_EQ(e.describe().rfind("policy.conf:" + std::to_string(GetParam().line) + ": ", 0), 0u);
}

INSTANTIATE_TEST_SUITE_P(
    EachFault, PolicyBadFile,
    ::testing::Values(
        BadFile{"listen = $.A\n", 1, "before any [tenant NAME] section"},
        BadFile{"[users]\nmatch = *\n", 2, "sections are [tenant NAME]"},
        BadFile{"[tenant a]\nmatch = *\nthis line has no equals\n", 3, "expected `[tenant NAME]`"},
        BadFile{"[tenant a]\nmatch = *\ncolour = blue\n", 3, "unknown key `colour`"},
        BadFile{"[tenant a]\nmatch = dom:3\n", 2, "match: `dom:3`"},
        BadFile{"[tenant a]\nmatch = domid:x\n", 2, "match: `domid:x`"},
        BadFile{"[tenant a]\nmatch = *\nbuses = 0 300\n", 3, "buses: `300`"},
        BadFile{"[tenant a]\nmatch = *\nlisten = Sensors.*\n", 3, "not a KBUS name pattern"},
        BadFile{"[tenant a]\nmatch = *\nreply = $.a.*.b\n", 3, "reply: `$.a.*.b`"},
        BadFile{"[tenant a]\nmatch = *\nbus_settings = maybe\n", 3, "is not yes or no"},
        BadFile{"[tenant a]\nmatch = *\nintrospect = yes\n", 3, "is not all or own"},
        BadFile{"[tenant a]\nmatch = *\nksocks = lots\n", 3, "ksocks: `lots` is not a number"},
        BadFile{"[tenant a]\nmatch = *\nbindings = 5T\n", 3, "bindings: `5T`"},
        BadFile{"[tenant a]\nmatch = *\nksocks = 8G\n", 3, "ksocks: `8G`"},
        BadFile{"[tenant a]\nbuses = 0\n", 1, "has no `match = ...`"},
        BadFile{"[tenant a]\nmatch = *\n[tenant b]\nmatch = *\n[tenant a]\nbuses = 1\n", 6,
                "appears twice"},
        BadFile{"[tenant a]\nmatch = *\nlisten = $.Abcdefgh.* $.Abcdefgh.* $.Abcdefgh.* "
                "$.Abcdefgh.* $.Abcdefgh.* $.Abcdefgh.* $.Abcdefgh.* "
                "$.Abcdefgh.* $.Abcdefgh.* $.Abcdefgh.* $.Abcdefgh.* $.Abcdefgh.* $.Abcdefgh.* "
                "$.Abcdefgh.* $.Abcdefgh.* $.Abcdefgh.* $.Abcdefgh.* $.Abcdefgh.* $.Abcdefgh.* "
                "$.Abcdefgh.* "
                "$.Abcdefgh.* $.Abcdefgh.* $.Abcdefgh.* $.Abcdefgh.* $.Abcdefgh.* $.Abcdefgh.* "
                "$.Abcdefgh.* $.Abcdefgh.* $.Abcdefgh.* $.Abcdefgh.*\n",
                3, "line longer than"}));

TEST(PolicyLoad, MissingFileIsTheDefaultsAndABadOneNamesItsPath) {
    auto missing = loadPolicy("/nonexistent/xkbus/policy.conf");
    ASSERT_TRUE(missing);
    EXPECT_TRUE(missing->rules.empty());
    char path[] = "/tmp/xkbus-policy-XXXXXX";
    const int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    const std::string text = "[tenant a]\nmatch = nobody\n";
    ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    ::close(fd);
    auto bad = loadPolicy(path);
    ::unlink(path);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().describe().rfind(std::string(path) + ":2: match: `nobody`", 0), 0u)
        << bad.error().describe();
}

TEST(PolicyLoad, AFileOthersCanWriteIsNotTrusted) {
    char path[] = "/tmp/xkbus-policy-XXXXXX";
    const int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    ::close(fd);
    ASSERT_TRUE(loadPolicy(path)) << "an empty file of ours: the defaults";
    ASSERT_EQ(::chmod(path, 0666), 0);
    auto refused = loadPolicy(path);
    ::unlink(path);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().describe(),
              std::string(path) + ": not trusted: writable by its group or by others (chmod go-w " +
                  path + ")");
}

// The example shipped in packaging/ (and shown in docs/security.md) parses.
TEST(PolicyLoad, TheShippedExampleIsAValidPolicy) {
    auto example = loadPolicy(XKBUS_POLICY_EXAMPLE);
    ASSERT_TRUE(example) << example.error().describe();
    EXPECT_EQ(example->rules.size(), 5u);
    const Tenant web = Tenant::guest(7, "web", 3);
    EXPECT_TRUE(example->decide(web, {Operation::OPEN_BUS, 3, {}}).allowed);
    EXPECT_FALSE(example->decide(web, {Operation::OPEN_BUS, 2, {}}).allowed);
    EXPECT_EQ(example->limitsFor(web).core.queuedBytes, 4u << 20);
}

TEST(PolicyPatterns, CoverPlainNamesAndNarrowerWildcards) {
    EXPECT_TRUE(patternCovers("$.A.*", "$.A.b"));
    EXPECT_TRUE(patternCovers("$.A.*", "$.A.b.c"));
    EXPECT_TRUE(patternCovers("$.A.*", "$.A.*"));
    EXPECT_TRUE(patternCovers("$.A.*", "$.A.%"));
    EXPECT_TRUE(patternCovers("$.A.*", "$.A.b.*"));
    EXPECT_FALSE(patternCovers("$.A.*", "$.*"));
    EXPECT_FALSE(patternCovers("$.A.*", "$.AB.c"));
    EXPECT_TRUE(patternCovers("$.A.%", "$.A.b"));
    EXPECT_FALSE(patternCovers("$.A.%", "$.A.b.c"));
    EXPECT_TRUE(patternCovers("$.A.%", "$.A.%"));
    EXPECT_FALSE(patternCovers("$.A.%", "$.A.*"));
    EXPECT_TRUE(patternCovers("$.A.b", "$.A.b"));
    EXPECT_FALSE(patternCovers("$.A.b", "$.A.%"));
    EXPECT_TRUE(patternCovers("$.*", "$.*"));
}

// The defaults, tenant kind by operation.
TEST(PolicyDefaults, Matrix) {
    const Policy none;
    const Tenant guest = Tenant::guest(3, "g", 1);
    struct Row {
        Op op;
        bool dom0, guest, local;
    };
    const Row rows[] = {
        {Op::BIND_LISTENER, true, true, true},     {Op::BIND_REPLIER, true, true, true},
        {Op::SEND_ANNOUNCEMENT, true, true, true}, {Op::SEND_REQUEST, true, true, true},
        {Op::BUS_SETTINGS, true, false, false},    {Op::NEW_BUS, true, false, false},
        {Op::INTROSPECT_ALL, true, false, false},  {Op::NETWORK_IDS, true, false, true},
    };
    for (const Row& r : rows) {
        SCOPED_TRACE(std::string(operationName(r.op)));
        EXPECT_EQ(allows(none, ROOT, r.op, 1, "$.X"), r.dom0);
        EXPECT_EQ(allows(none, guest, r.op, 1, "$.X"), r.guest);
        EXPECT_EQ(allows(none, NOBODY, r.op, 1, "$.X"), r.local);
    }
    // Buses: a guest only its slot's, everyone else every bus.
    EXPECT_TRUE(allows(none, guest, Op::OPEN_BUS, 1));
    EXPECT_FALSE(allows(none, guest, Op::OPEN_BUS, 0));
    EXPECT_TRUE(allows(none, NOBODY, Op::OPEN_BUS, 5));
    EXPECT_TRUE(allows(none, ROOT, Op::OPEN_BUS, 5));
    EXPECT_EQ(none.decide(guest, {Op::OPEN_BUS, 0, {}}).rule, "default for guests");
}

// Rules, tenant by operation: which rule matches, what it allows, and the
// rule named in the decision.
TEST(PolicyRules, Matrix) {
    const Policy p = parsed(GOOD);
    struct Row {
        const Tenant* tenant;
        Op op;
        uint32_t bus;
        const char* name;
        bool allowed;
        const char* rule;
    };
    const Row rows[] = {
        {&WEB, Op::OPEN_BUS, 0, "", true, "policy.conf:4 [tenant web] buses"},
        {&WEB, Op::OPEN_BUS, 1, "", true, "policy.conf:4 [tenant web] buses"},
        {&WEB, Op::OPEN_BUS, 2, "", false, "policy.conf:4 [tenant web] buses"},
        {&WEB_BY_NAME, Op::OPEN_BUS, 2, "", true, "policy.conf:4 [tenant web] buses"},
        {&WEB, Op::BIND_LISTENER, 0, "$.Sensors.Kitchen", true,
         "policy.conf:5 [tenant web] listen"},
        {&WEB, Op::BIND_LISTENER, 0, "$.Sensors.*", true, "policy.conf:5 [tenant web] listen"},
        {&WEB, Op::BIND_LISTENER, 0, "$.*", false, "policy.conf:5 [tenant web] listen"},
        {&WEB, Op::BIND_LISTENER, 0, "$.Time.Now", true, "policy.conf:5 [tenant web] listen"},
        {&WEB, Op::BIND_LISTENER, 0, "$.Time.Now.Utc", false, "policy.conf:5 [tenant web] listen"},
        {&WEB, Op::BIND_REPLIER, 0, "$.Web.Status", true, "policy.conf:6 [tenant web] reply"},
        {&WEB, Op::BIND_REPLIER, 0, "$.Web.Other", false, "policy.conf:6 [tenant web] reply"},
        {&WEB, Op::SEND_ANNOUNCEMENT, 0, "$.Web.x", true, "policy.conf:7 [tenant web] announce"},
        {&WEB, Op::SEND_ANNOUNCEMENT, 0, "$.Time.x", false, "policy.conf:7 [tenant web] announce"},
        {&WEB, Op::SEND_REQUEST, 0, "$.Time.Now", true, "policy.conf:8 [tenant web] request"},
        {&WEB, Op::SEND_REQUEST, 0, "$.Web.x", false, "policy.conf:8 [tenant web] request"},
        {&WEB, Op::BUS_SETTINGS, 0, "", false, "default for guests"},
        {&WEB, Op::INTROSPECT_ALL, 0, "", false, "policy.conf:9 [tenant web] introspect"},
        {&OTHER_GUEST, Op::OPEN_BUS, 0, "", true, "policy.conf:28 [tenant others] buses"},
        {&OTHER_GUEST, Op::OPEN_BUS, 1, "", false, "policy.conf:28 [tenant others] buses"},
        {&OTHER_GUEST, Op::BIND_REPLIER, 0, "$.Any", true, "default for guests"},
        {&STAFF, Op::BUS_SETTINGS, 0, "", true, "policy.conf:16 [tenant staff] bus_settings"},
        {&STAFF_BY_GROUP, Op::NEW_BUS, 0, "", true, "policy.conf:17 [tenant staff] new_bus"},
        {&STAFF_BY_GROUP, Op::INTROSPECT_ALL, 0, "", true,
         "policy.conf:18 [tenant staff] introspect"},
        {&STAFF, Op::NETWORK_IDS, 0, "", false, "policy.conf:19 [tenant staff] network_ids"},
        {&STAFF, Op::OPEN_BUS, 9, "", true, "default for local users"},
        {&NOBODY, Op::OPEN_BUS, 1, "", false, "policy.conf:28 [tenant others] buses"},
        {&NOBODY, Op::BUS_SETTINGS, 0, "", false, "default for local users"},
        // A catch-all never demotes dom0; only `match = dom0` reaches it.
        {&ROOT, Op::OPEN_BUS, 1, "", true, "default for dom0"},
        {&ROOT, Op::BUS_SETTINGS, 0, "", true, "default for dom0"},
    };
    for (const Row& r : rows) {
        SCOPED_TRACE(r.tenant->label() + " " + std::string(operationName(r.op)) + " " + r.name);
        const Decision d = p.decide(*r.tenant, Request{r.op, r.bus, r.name});
        EXPECT_EQ(d.allowed, r.allowed);
        EXPECT_EQ(d.rule, r.rule);
    }
}

TEST(PolicyLimits, RuleOverridesOnlyWhatItNames) {
    const Policy p = parsed(GOOD);
    const core::TenantLimits base;
    const Limits web = p.limitsFor(WEB);
    EXPECT_EQ(web.core.ksocks, 8u);
    EXPECT_EQ(web.core.queuedBytes, 1u << 20);
    EXPECT_EQ(web.connections, 2u);
    EXPECT_EQ(web.core.bindings, base.bindings);
    EXPECT_EQ(p.limitsFor(STAFF).busesCreated, 3u);
    EXPECT_EQ(p.limitsFor(NOBODY).busesCreated, 0u);
    EXPECT_EQ(p.limitsFor(NOBODY).core, base);
    const Limits root = p.limitsFor(ROOT);
    EXPECT_EQ(root.core.bindings, 100u);
    EXPECT_GT(root.core.ksocks, base.ksocks);
    EXPECT_GT(root.connections, p.limitsFor(NOBODY).connections);
}

TEST(Tenants, ChargeGroupsAreOnePerTenant) {
    EXPECT_EQ(ROOT.chargeGroup(), 0u);
    EXPECT_EQ(Tenant::dom0().chargeGroup(), 0u);
    EXPECT_EQ(WEB.chargeGroup(), 0x10007u);
    EXPECT_EQ(Tenant::guest(7, "", 3).chargeGroup(), WEB.chargeGroup());
    EXPECT_EQ(NOBODY.chargeGroup(), 0x20000u + 65534);
    EXPECT_NE(STAFF.chargeGroup(), STAFF_BY_GROUP.chargeGroup());
    EXPECT_EQ(NOBODY.label(), "uid 65534 (nobody)");
    EXPECT_EQ(WEB.label(), "dom7 (web)");
}

} // namespace
} // namespace xkbus::daemon
