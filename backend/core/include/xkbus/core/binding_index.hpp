// The bindings of one bus, indexed by name words so that routing a message
// touches only the bindings that can match it, however many the bus holds.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>
#include <xkbus/common/message.hpp>
#include <xkbus/common/names.hpp>

namespace xkbus::core {

struct Ksock;
struct TrieNode;

struct Binding {
    uint64_t seq = 0; // bus-wide bind order: a larger seq is a newer binding
    KsockId owner = 0;
    bool replier = false;
    WildKind kind = WildKind::NONE;
    std::string name;
    Ksock* ksock = nullptr; // the owner's state, for the bus's routing
    TrieNode* node = nullptr;
};

struct Route {
    const Binding* replier = nullptr;      // the most specific matching replier
    std::vector<const Binding*> listeners; // matching listener bindings, newest first
};

class BindingIndex {
public:
    BindingIndex();
    ~BindingIndex();
    BindingIndex(const BindingIndex&) = delete;
    BindingIndex& operator=(const BindingIndex&) = delete;

    // `name` must be a valid bind name. A replier name must not already have
    // a replier (check with replierBoundTo first).
    const Binding& add(KsockId owner, std::string_view name, bool replier, Ksock* ksock = nullptr);
    void remove(const Binding& binding);

    // The replier bound to exactly this name, if any (KBUS's uniqueness rule).
    const Binding* replierBoundTo(std::string_view bindName) const;
    // The newest binding of `owner` to exactly `bindName` with this replier flag.
    const Binding* newestBindingOf(KsockId owner, std::string_view bindName, bool replier) const;

    // Fills `out` for a valid message name. Replier precedence: the exact name,
    // then "%" one level up, then the deepest matching "*".
    void route(std::string_view messageName, Route& out) const;
    const Binding* replierFor(std::string_view messageName) const;

    size_t size() const noexcept { return m_bindings.size(); }
    // In bind order, oldest first.
    void forEach(const std::function<void(const Binding&)>& visit) const;

private:
    TrieNode* findNode(std::string_view bindName) const;
    TrieNode* findOrMakeNode(std::string_view bindName);
    void pruneUpFrom(TrieNode* node);
    void walk(std::string_view messageName, Route* out, const Binding** replier) const;

    std::unique_ptr<TrieNode> m_root;
    std::map<uint64_t, std::unique_ptr<Binding>> m_bindings;
    uint64_t m_nextSeq = 1;
};

} // namespace xkbus::core
