// Trie of name words. The node for "$.a.b" holds the bindings "$.a.b",
// "$.a.b.*" and "$.a.b.%"; a message "$.a.b.c" visits "$", "$.a", "$.a.b" and
// "$.a.b.c" only, so a send's cost depends on its name, not on the bus.
#include <algorithm>
#include <cassert>
#include <xkbus/core/binding_index.hpp>

namespace xkbus::core {

struct WordHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept {
        return std::hash<std::string_view>{}(s);
    }
};

struct TrieNode {
    TrieNode* parent = nullptr;
    std::string word;
    std::unordered_map<std::string, std::unique_ptr<TrieNode>, WordHash, std::equal_to<>> children;
    // Indexed by WildKind. Listener lists are in bind order, oldest first.
    std::array<std::vector<Binding*>, 3> listeners;
    std::array<Binding*, 3> repliers{};

    bool isEmpty() const noexcept {
        return children.empty() &&
               std::all_of(listeners.begin(), listeners.end(),
                           [](const auto& l) { return l.empty(); }) &&
               std::all_of(repliers.begin(), repliers.end(), [](auto* r) { return r == nullptr; });
    }
};

namespace {

size_t kindIndex(WildKind kind) noexcept {
    return static_cast<size_t>(kind);
}

// Calls visit(word) for each word after "$." of a name with the wildcard
// suffix (if any) already removed.
template <class Visit>
bool forEachWord(std::string_view words, Visit&& visit) {
    while (!words.empty()) {
        const size_t dot = words.find('.');
        if (!visit(words.substr(0, dot))) {
            return false;
        }
        if (dot == std::string_view::npos) {
            break;
        }
        words.remove_prefix(dot + 1);
    }
    return true;
}

// "$.a.b.*" -> "a.b"; "$.*" -> ""; "$.a" -> "a".
std::string_view pathWords(std::string_view bindName) noexcept {
    std::string_view s = bindName;
    if (wildKindOf(s) != WildKind::NONE) {
        s.remove_suffix(2);
    }
    return s.size() > 2 ? s.substr(2) : std::string_view();
}

} // namespace

BindingIndex::BindingIndex() : m_root(std::make_unique<TrieNode>()) {
    m_root->word = "$";
}
BindingIndex::~BindingIndex() = default;

TrieNode* BindingIndex::findNode(std::string_view bindName) const {
    TrieNode* node = m_root.get();
    forEachWord(pathWords(bindName), [&](std::string_view word) {
        auto it = node->children.find(word);
        node = it == node->children.end() ? nullptr : it->second.get();
        return node != nullptr;
    });
    return node;
}

TrieNode* BindingIndex::findOrMakeNode(std::string_view bindName) {
    TrieNode* node = m_root.get();
    forEachWord(pathWords(bindName), [&](std::string_view word) {
        auto it = node->children.find(word);
        if (it == node->children.end()) {
            auto child = std::make_unique<TrieNode>();
            child->parent = node;
            child->word.assign(word);
            it = node->children.emplace(child->word, std::move(child)).first;
        }
        node = it->second.get();
        return true;
    });
    return node;
}

void BindingIndex::pruneUpFrom(TrieNode* node) {
    while (node != m_root.get() && node->isEmpty()) {
        TrieNode* parent = node->parent;
        parent->children.erase(node->word); // destroys node
        node = parent;
    }
}

const Binding& BindingIndex::add(KsockId owner, std::string_view name, bool replier, Ksock* ksock) {
    auto binding = std::make_unique<Binding>();
    binding->seq = m_nextSeq++;
    binding->owner = owner;
    binding->replier = replier;
    binding->kind = wildKindOf(name);
    binding->name.assign(name);
    binding->ksock = ksock;
    binding->node = findOrMakeNode(name);
    const size_t k = kindIndex(binding->kind);
    if (replier) {
        assert(binding->node->repliers[k] == nullptr);
        binding->node->repliers[k] = binding.get();
    } else {
        binding->node->listeners[k].push_back(binding.get());
    }
    Binding& ref = *binding;
    m_bindings.emplace(ref.seq, std::move(binding));
    return ref;
}

void BindingIndex::remove(const Binding& binding) {
    TrieNode* node = binding.node;
    const size_t k = kindIndex(binding.kind);
    if (binding.replier) {
        node->repliers[k] = nullptr;
    } else {
        auto& list = node->listeners[k];
        list.erase(std::find(list.begin(), list.end(), &binding));
    }
    m_bindings.erase(binding.seq); // destroys binding
    pruneUpFrom(node);
}

const Binding* BindingIndex::replierBoundTo(std::string_view bindName) const {
    TrieNode* node = findNode(bindName);
    return node ? node->repliers[kindIndex(wildKindOf(bindName))] : nullptr;
}

const Binding* BindingIndex::newestBindingOf(KsockId owner, std::string_view bindName,
                                             bool replier) const {
    TrieNode* node = findNode(bindName);
    if (node == nullptr) {
        return nullptr;
    }
    const size_t k = kindIndex(wildKindOf(bindName));
    if (replier) {
        Binding* r = node->repliers[k];
        return r != nullptr && r->owner == owner ? r : nullptr;
    }
    const auto& list = node->listeners[k];
    auto it = std::find_if(list.rbegin(), list.rend(), [&](auto* b) { return b->owner == owner; });
    return it == list.rend() ? nullptr : *it;
}

void BindingIndex::walk(std::string_view messageName, Route* out, const Binding** replier) const {
    const std::string_view words = messageName.substr(2);
    const Binding* star = nullptr;
    const Binding* percent = nullptr;
    const Binding* exact = nullptr;
    auto collect = [&](const std::vector<Binding*>& list) {
        if (out != nullptr) {
            out->listeners.insert(out->listeners.end(), list.begin(), list.end());
        }
    };
    const TrieNode* node = m_root.get();
    const bool reachedEnd = forEachWord(words, [&](std::string_view word) {
        // `node` is a strict prefix of the name: its ".*" bindings match, and
        // its ".%" bindings match when `word` is the last one.
        collect(node->listeners[kindIndex(WildKind::STAR)]);
        if (node->repliers[kindIndex(WildKind::STAR)] != nullptr) {
            star = node->repliers[kindIndex(WildKind::STAR)];
        }
        if (word.end() == words.end()) {
            collect(node->listeners[kindIndex(WildKind::PERCENT)]);
            percent = node->repliers[kindIndex(WildKind::PERCENT)];
        }
        auto it = node->children.find(word);
        node = it == node->children.end() ? nullptr : it->second.get();
        return node != nullptr;
    });
    if (reachedEnd && node != nullptr) {
        collect(node->listeners[kindIndex(WildKind::NONE)]);
        exact = node->repliers[kindIndex(WildKind::NONE)];
    }
    *replier = exact != nullptr ? exact : percent != nullptr ? percent : star;
}

void BindingIndex::route(std::string_view messageName, Route& out) const {
    out.listeners.clear();
    walk(messageName, &out, &out.replier);
    std::sort(out.listeners.begin(), out.listeners.end(),
              [](const Binding* a, const Binding* b) { return a->seq > b->seq; });
}

const Binding* BindingIndex::replierFor(std::string_view messageName) const {
    const Binding* replier = nullptr;
    walk(messageName, nullptr, &replier);
    return replier;
}

void BindingIndex::forEach(const std::function<void(const Binding&)>& visit) const {
    for (const auto& [seq, binding] : m_bindings) {
        visit(*binding);
    }
}

} // namespace xkbus::core
