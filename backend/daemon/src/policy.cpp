// The policy file and its decisions. See policy.hpp and docs/security.md.
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <ini.h>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>
#include <xkbus/common/names.hpp>
#include <xkbus/daemon/policy.hpp>

namespace xkbus::daemon {

namespace {

constexpr uint32_t GUEST_GROUP_BASE = 0x10000; // + domid
constexpr uint32_t LOCAL_GROUP_BASE = 0x20000; // + uid (dom0 is group 0)

std::vector<std::string> words(std::string_view text) {
    std::vector<std::string> out;
    std::istringstream in{std::string(text)};
    for (std::string w; in >> w;) {
        out.push_back(w);
    }
    return out;
}

std::optional<uint64_t> number(std::string_view text) {
    uint64_t value = 0;
    const char* end = text.data() + text.size();
    auto [rest, ec] = std::from_chars(text.data(), end, value);
    if (ec != std::errc{} || rest == text.data()) {
        return std::nullopt;
    }
    const std::string_view unit(rest, static_cast<size_t>(end - rest));
    const uint64_t scale = unit.empty()  ? 1
                           : unit == "K" ? 1ull << 10
                           : unit == "M" ? 1ull << 20
                           : unit == "G" ? 1ull << 30
                                         : 0;
    if (scale == 0 || value > UINT64_MAX / 2 / scale) {
        return std::nullopt;
    }
    return value * scale;
}

std::optional<bool> yesNo(std::string_view text) {
    if (text == "yes" || text == "true") {
        return true;
    }
    if (text == "no" || text == "false") {
        return false;
    }
    return std::nullopt;
}

std::string_view kindName(Tenant::Kind kind) {
    switch (kind) {
    case Tenant::Kind::DOM0:
        return "dom0";
    case Tenant::Kind::GUEST:
        return "guests";
    case Tenant::Kind::LOCAL:
        return "local users";
    }
    return "?";
}

// The state of one parse: the section being filled and the first error.
struct Parser {
    Policy policy;
    unsigned line = 0;        // the line the reader handed out last
    unsigned sectionLine = 0; // the line of the last `[...]` header
    std::string_view rest;    // text not yet handed out
    bool lineTooLong = false;
    std::optional<PolicyError> error;

    void failAt(std::string message) {
        if (!error) {
            error = PolicyError{policy.file, line, std::move(message)};
        }
    }
};

// inih's reader: hands out one line at a time, so that every handler call
// knows the line it comes from.
char* readLine(char* buffer, int size, void* stream) {
    auto& p = *static_cast<Parser*>(stream);
    if (p.rest.empty()) {
        return nullptr;
    }
    ++p.line;
    const size_t eol = p.rest.find('\n');
    const size_t length = eol == std::string_view::npos ? p.rest.size() : eol + 1;
    const size_t room = static_cast<size_t>(size) - 1;
    if (length > room) {
        p.failAt("line longer than " + std::to_string(room - 1) +
                 " characters: split a list over several `key = ...` lines");
    }
    const size_t copied = std::min(length, room);
    if (const size_t start = p.rest.find_first_not_of(" \t");
        start < length && p.rest[start] == '[') {
        p.sectionLine = p.line;
    }
    std::memcpy(buffer, p.rest.data(), copied);
    buffer[copied] = '\0';
    p.rest.remove_prefix(length);
    return buffer;
}

std::optional<Rule::Matcher> parseMatcher(const std::string& word) {
    using K = Rule::Matcher::Kind;
    if (word == "*") {
        return Rule::Matcher{K::ANY, 0, {}};
    }
    if (word == "guests" || word == "local" || word == "dom0") {
        return Rule::Matcher{word == "guests"  ? K::GUESTS
                             : word == "local" ? K::LOCAL
                                               : K::DOM0,
                             0,
                             {}};
    }
    const size_t colon = word.find(':');
    if (colon == std::string::npos || colon + 1 == word.size()) {
        return std::nullopt;
    }
    const std::string key = word.substr(0, colon);
    const std::string value = word.substr(colon + 1);
    const auto id = number(value);
    if (key == "domid" || key == "uid" || key == "gid") {
        if (!id || *id > UINT32_MAX) {
            return std::nullopt;
        }
        const K kind = key == "domid" ? K::DOMID : key == "uid" ? K::UID : K::GID;
        return Rule::Matcher{kind, static_cast<uint32_t>(*id), {}};
    }
    if (key == "domain" || key == "user" || key == "group") {
        const K kind = key == "domain" ? K::DOMAIN : key == "user" ? K::USER : K::GROUP;
        return Rule::Matcher{kind, 0, value};
    }
    return std::nullopt;
}

bool setMatch(Parser& p, Rule& rule, std::string_view value) {
    for (const std::string& w : words(value)) {
        auto m = parseMatcher(w);
        if (!m) {
            p.failAt("match: `" + w +
                     "` is not *, guests, local, dom0, domid:N, domain:NAME, uid:N, user:NAME, "
                     "gid:N or group:NAME");
            return false;
        }
        rule.match.push_back(*m);
    }
    return true;
}

bool setBuses(Parser& p, Rule& rule, std::string_view value) {
    Rule::Buses& b = rule.buses.value ? *rule.buses.value : rule.buses.value.emplace();
    rule.buses.line = p.line;
    for (const std::string& w : words(value)) {
        const auto id = number(w);
        if (w == "*") {
            b.all = true;
        } else if (w == "slot") {
            b.slot = true;
        } else if (id && *id < 256) {
            b.listed.push_back(static_cast<uint32_t>(*id));
        } else {
            p.failAt("buses: `" + w + "` is not a bus number (0-255), `slot` or `*`");
            return false;
        }
    }
    return true;
}

// Repeated keys add to the list, so long lists can be split over lines.
bool setPatterns(Parser& p, Rule::Field<std::vector<std::string>>& field, std::string_view key,
                 std::string_view value) {
    auto& list = field.value ? *field.value : field.value.emplace();
    field.line = p.line;
    for (const std::string& w : words(value)) {
        if (w == "none") {
            continue;
        }
        if (!checkBindName(w)) {
            p.failAt(std::string(key) + ": `" + w +
                     "` is not a KBUS name pattern ($.A.B, $.A.*, $.A.%)");
            return false;
        }
        list.push_back(w);
    }
    return true;
}

bool setFlag(Parser& p, Rule::Field<bool>& field, std::string_view key, std::string_view value,
             std::string_view yes = "yes", std::string_view no = "no") {
    std::optional<bool> v = value == yes   ? std::optional(true)
                            : value == no  ? std::optional(false)
                            : yes == "yes" ? yesNo(value)
                                           : std::nullopt;
    if (!v) {
        p.failAt(std::string(key) + ": `" + std::string(value) + "` is not " + std::string(yes) +
                 " or " + std::string(no));
        return false;
    }
    field = {v, p.line};
    return true;
}

constexpr std::string_view LIMIT_KEYS[] = {"ksocks",        "bindings",        "index_nodes",
                                           "name_bytes",    "queued_messages", "queued_bytes",
                                           "pending_sends", "connections",     "buses_created"};

bool setLimit(Parser& p, Rule& rule, std::string_view key, std::string_view value) {
    const auto n = number(value);
    const bool wide = key == "name_bytes" || key == "queued_bytes";
    if (!n || (!wide && *n > UINT32_MAX)) {
        p.failAt(std::string(key) + ": `" + std::string(value) +
                 "` is not a number (a K, M or G suffix multiplies by 1024, 1024², 1024³)");
        return false;
    }
    rule.limits.emplace_back(std::string(key), *n);
    return true;
}

bool setKey(Parser& p, Rule& rule, std::string_view key, std::string_view value) {
    if (key == "match") {
        return setMatch(p, rule, value);
    }
    if (key == "buses") {
        return setBuses(p, rule, value);
    }
    if (key == "listen" || key == "reply" || key == "announce" || key == "request") {
        auto& field = key == "listen"     ? rule.listen
                      : key == "reply"    ? rule.reply
                      : key == "announce" ? rule.announce
                                          : rule.request;
        return setPatterns(p, field, key, value);
    }
    if (key == "bus_settings" || key == "new_bus" || key == "network_ids") {
        auto& field = key == "bus_settings" ? rule.busSettings
                      : key == "new_bus"    ? rule.newBus
                                            : rule.networkIds;
        return setFlag(p, field, key, value);
    }
    if (key == "introspect") {
        return setFlag(p, rule.introspectAll, key, value, "all", "own");
    }
    if (std::find(std::begin(LIMIT_KEYS), std::end(LIMIT_KEYS), key) != std::end(LIMIT_KEYS)) {
        return setLimit(p, rule, key, value);
    }
    p.failAt("unknown key `" + std::string(key) + "`");
    return false;
}

int onEntry(void* user, const char* section, const char* name, const char* value) {
    auto& p = *static_cast<Parser*>(user);
    const std::string_view sectionName(section);
    constexpr std::string_view PREFIX = "tenant ";
    if (!sectionName.starts_with(PREFIX) || sectionName.size() == PREFIX.size()) {
        p.failAt(sectionName.empty()
                     ? "`" + std::string(name) + "` before any [tenant NAME] section"
                     : "[" + std::string(sectionName) + "]: sections are [tenant NAME]");
        return 0;
    }
    const std::string ruleName(sectionName.substr(PREFIX.size()));
    if (p.policy.rules.empty() || p.policy.rules.back().name != ruleName) {
        const bool taken = std::any_of(p.policy.rules.begin(), p.policy.rules.end(),
                                       [&](const Rule& r) { return r.name == ruleName; });
        if (taken) {
            p.failAt("[tenant " + ruleName + "] appears twice");
            return 0;
        }
        Rule& added = p.policy.rules.emplace_back();
        added.name = ruleName;
        added.line = p.sectionLine;
    }
    return setKey(p, p.policy.rules.back(), name, value) ? 1 : 0;
}

std::string ruleLabel(const Policy& policy, const Rule& rule, unsigned line, std::string_view key) {
    return policy.file + ":" + std::to_string(line) + " [tenant " + rule.name + "] " +
           std::string(key);
}

bool coveredByAny(const std::vector<std::string>& patterns, std::string_view name) {
    return std::any_of(patterns.begin(), patterns.end(),
                       [&](const std::string& p) { return patternCovers(p, name); });
}

bool busAllowed(const Rule::Buses& b, const Tenant& t, uint32_t bus) {
    return b.all || (b.slot && t.kind == Tenant::Kind::GUEST && bus == t.slotBus) ||
           std::find(b.listed.begin(), b.listed.end(), bus) != b.listed.end();
}

// What a tenant of this kind may do when no rule says otherwise.
bool defaultAllows(const Tenant& t, const Request& r) {
    if (t.kind == Tenant::Kind::DOM0) {
        return true;
    }
    switch (r.op) {
    case Operation::OPEN_BUS:
        return t.kind == Tenant::Kind::LOCAL || r.bus == t.slotBus;
    case Operation::BIND_LISTENER:
    case Operation::BIND_REPLIER:
    case Operation::SEND_ANNOUNCEMENT:
    case Operation::SEND_REQUEST:
        return true;
    case Operation::NETWORK_IDS:
        return t.kind == Tenant::Kind::LOCAL;
    case Operation::BUS_SETTINGS:
    case Operation::NEW_BUS:
    case Operation::INTROSPECT_ALL:
        return false;
    }
    return false;
}

void applyLimit(Limits& l, std::string_view key, uint64_t v) {
    const auto n32 = static_cast<uint32_t>(v);
    if (key == "ksocks") {
        l.core.ksocks = n32;
    } else if (key == "bindings") {
        l.core.bindings = n32;
    } else if (key == "index_nodes") {
        l.core.indexNodes = n32;
    } else if (key == "name_bytes") {
        l.core.nameBytes = v;
    } else if (key == "queued_messages") {
        l.core.queuedMessages = n32;
    } else if (key == "queued_bytes") {
        l.core.queuedBytes = v;
    } else if (key == "pending_sends") {
        l.core.pendingSends = n32;
    } else if (key == "connections") {
        l.connections = n32;
    } else if (key == "buses_created") {
        l.busesCreated = n32;
    }
}

} // namespace

Tenant Tenant::guest(uint32_t domid, std::string name, uint32_t slotBus) {
    Tenant t;
    t.kind = Kind::GUEST;
    t.domid = domid;
    t.domainName = std::move(name);
    t.slotBus = slotBus;
    return t;
}

Tenant Tenant::localUser(uint32_t uid, std::vector<uint32_t> gids, std::string userName,
                         std::vector<std::string> groupNames) {
    Tenant t;
    t.kind = uid == 0 ? Kind::DOM0 : Kind::LOCAL;
    t.uid = uid;
    t.gids = std::move(gids);
    t.userName = std::move(userName);
    t.groupNames = std::move(groupNames);
    return t;
}

uint32_t Tenant::chargeGroup() const noexcept {
    switch (kind) {
    case Kind::DOM0:
        return 0;
    case Kind::GUEST:
        return GUEST_GROUP_BASE + domid;
    case Kind::LOCAL:
        return LOCAL_GROUP_BASE + uid;
    }
    return 0;
}

std::string Tenant::label() const {
    switch (kind) {
    case Kind::DOM0:
        return "dom0";
    case Kind::GUEST:
        return "dom" + std::to_string(domid) + (domainName.empty() ? "" : " (" + domainName + ")");
    case Kind::LOCAL:
        return "uid " + std::to_string(uid) + (userName.empty() ? "" : " (" + userName + ")");
    }
    return "?";
}

std::string_view operationName(Operation op) noexcept {
    switch (op) {
    case Operation::OPEN_BUS:
        return "open bus";
    case Operation::BIND_LISTENER:
        return "bind as listener";
    case Operation::BIND_REPLIER:
        return "bind as replier";
    case Operation::SEND_ANNOUNCEMENT:
        return "send announcement";
    case Operation::SEND_REQUEST:
        return "send request";
    case Operation::BUS_SETTINGS:
        return "change bus-wide settings";
    case Operation::NEW_BUS:
        return "create a bus";
    case Operation::INTROSPECT_ALL:
        return "see other tenants";
    case Operation::NETWORK_IDS:
        return "send with a network id";
    }
    return "?";
}

bool patternCovers(std::string_view pattern, std::string_view bindName) noexcept {
    const WildKind bound = wildKindOf(bindName);
    if (bound == WildKind::NONE) {
        return nameMatches(pattern, bindName);
    }
    const WildKind allowed = wildKindOf(pattern);
    if (allowed == WildKind::NONE) {
        return false; // a plain name cannot cover a wildcard
    }
    // "$.a.*" -> "$.a": the name whose descendants the wildcard reaches.
    const std::string_view boundStem = bindName.substr(0, bindName.size() - 2);
    const std::string_view allowedStem = pattern.substr(0, pattern.size() - 2);
    if (allowed == WildKind::PERCENT) {
        return bound == WildKind::PERCENT && boundStem == allowedStem;
    }
    return boundStem == allowedStem || nameMatches(pattern, boundStem);
}

bool Rule::matches(const Tenant& t) const {
    using K = Matcher::Kind;
    const auto one = [&t](const Matcher& m) {
        const bool dom0 = t.kind == Tenant::Kind::DOM0;
        const bool guest = t.kind == Tenant::Kind::GUEST;
        const bool local = t.kind == Tenant::Kind::LOCAL;
        switch (m.kind) {
        case K::ANY:
            return !dom0; // dom0 is matched only by name: a catch-all must not demote it
        case K::GUESTS:
            return guest;
        case K::LOCAL:
            return local;
        case K::DOM0:
            return dom0;
        case K::DOMID:
            return guest && t.domid == m.number;
        case K::DOMAIN:
            return guest && t.domainName == m.text;
        case K::UID:
            return local && t.uid == m.number;
        case K::USER:
            return local && t.userName == m.text;
        case K::GID:
            return local && std::find(t.gids.begin(), t.gids.end(), m.number) != t.gids.end();
        case K::GROUP:
            return local && std::find(t.groupNames.begin(), t.groupNames.end(), m.text) !=
                                t.groupNames.end();
        }
        return false;
    };
    return std::any_of(match.begin(), match.end(), one);
}

const Rule* Policy::ruleFor(const Tenant& t) const {
    auto it =
        std::find_if(rules.begin(), rules.end(), [&t](const Rule& r) { return r.matches(t); });
    return it == rules.end() ? nullptr : &*it;
}

// No strings are built here: the dispatcher asks on every bind and send,
// and only a refusal needs its rule spelt out (decide()).
Verdict Policy::judge(const Tenant& t, const Request& r) const {
    const Rule* rule = ruleFor(t);
    const Verdict byDefault{defaultAllows(t, r), nullptr, 0, {}};
    if (rule == nullptr) {
        return byDefault;
    }
    const auto byFlag = [&](const Rule::Field<bool>& f, std::string_view key) {
        return f.value ? Verdict{*f.value, rule, f.line, key} : byDefault;
    };
    const auto byNames = [&](const Rule::Field<std::vector<std::string>>& f, std::string_view key) {
        return f.value ? Verdict{coveredByAny(*f.value, r.name), rule, f.line, key} : byDefault;
    };
    switch (r.op) {
    case Operation::OPEN_BUS:
        return rule->buses.value ? Verdict{busAllowed(*rule->buses.value, t, r.bus), rule,
                                           rule->buses.line, "buses"}
                                 : byDefault;
    case Operation::BIND_LISTENER:
        return byNames(rule->listen, "listen");
    case Operation::BIND_REPLIER:
        return byNames(rule->reply, "reply");
    case Operation::SEND_ANNOUNCEMENT:
        return byNames(rule->announce, "announce");
    case Operation::SEND_REQUEST:
        return byNames(rule->request, "request");
    case Operation::BUS_SETTINGS:
        return byFlag(rule->busSettings, "bus_settings");
    case Operation::NEW_BUS:
        return byFlag(rule->newBus, "new_bus");
    case Operation::INTROSPECT_ALL:
        return byFlag(rule->introspectAll, "introspect");
    case Operation::NETWORK_IDS:
        return byFlag(rule->networkIds, "network_ids");
    }
    return byDefault;
}

Decision Policy::decide(const Tenant& t, const Request& r) const {
    const Verdict v = judge(t, r);
    return Decision{v.allowed, v.rule != nullptr ? ruleLabel(*this, *v.rule, v.line, v.key)
                                                 : "default for " + std::string(kindName(t.kind))};
}

Limits defaultLimits(Tenant::Kind kind, const core::TenantLimits& base) {
    Limits l;
    l.core = base;
    if (kind == Tenant::Kind::DOM0) {
        // Still counted, so a runaway dom0 client is bounded too, but wide
        // enough for KBUS's own test suites and a Limpet carrying a host.
        // Queued bytes stay the operator's --max-queued-bytes: memory is what
        // runs out first, and that option is the operator's word on it.
        l.core = core::TenantLimits{65536,    1u << 20,         1u << 21, 64ull << 20,
                                    1u << 20, base.queuedBytes, 4096};
        l.connections = 4096;
        l.busesCreated = 256;
    }
    return l;
}

Limits Policy::limitsFor(const Tenant& t) const {
    Limits l = defaultLimits(t.kind, baseLimits);
    if (const Rule* rule = ruleFor(t)) {
        for (const auto& [key, value] : rule->limits) {
            applyLimit(l, key, value);
        }
    }
    return l;
}

std::string PolicyError::describe() const {
    return line == 0 ? file + ": " + message : file + ":" + std::to_string(line) + ": " + message;
}

tl::expected<Policy, PolicyError> parsePolicy(std::string_view text, std::string file) {
    Parser p;
    p.policy.file = std::move(file);
    p.rest = text;
    const int bad = ini_parse_stream(readLine, &p, onEntry, &p);
    if (p.error) {
        return tl::unexpected(*p.error);
    }
    if (bad != 0) {
        // inih's own complaint: a line that is neither `[section]` nor `key = value`.
        return tl::unexpected(PolicyError{p.policy.file, static_cast<unsigned>(std::max(bad, 0)),
                                          "expected `[tenant NAME]` or `key = value`"});
    }
    for (const Rule& r : p.policy.rules) {
        if (r.match.empty()) {
            return tl::unexpected(
                PolicyError{p.policy.file, r.line, "[tenant " + r.name + "] has no `match = ...`"});
        }
    }
    return std::move(p.policy);
}

// Whoever may write the policy may give themselves every right: a file
// others could change is refused rather than trusted.
static std::optional<std::string> unsafeOwnership(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        return std::nullopt; // the open below says why
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        return "writable by its group or by others (chmod go-w " + path + ")";
    }
    if (st.st_uid != 0 && st.st_uid != ::geteuid()) {
        return "owned by uid " + std::to_string(st.st_uid) + ", neither root nor xkbusd's user";
    }
    return std::nullopt;
}

tl::expected<Policy, PolicyError> loadPolicy(const std::string& path) {
    if (auto unsafe = unsafeOwnership(path)) {
        return tl::unexpected(PolicyError{path, 0, "not trusted: " + *unsafe});
    }
    std::ifstream in(path);
    if (!in) {
        if (errno == ENOENT) {
            Policy defaults;
            defaults.file = path + " (absent: built-in defaults)";
            return defaults;
        }
        return tl::unexpected(
            PolicyError{path, 0, std::string("cannot read: ") + std::strerror(errno)});
    }
    std::ostringstream text;
    text << in.rdbuf();
    return parsePolicy(text.str(), path);
}

} // namespace xkbus::daemon
