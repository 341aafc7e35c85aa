// Trie of name words. The node for "$.a.b" holds the bindings "$.a.b",
// "$.a.b.*" and "$.a.b.%"; a message "$.a.b.c" visits "$", "$.a", "$.a.b" and
// "$.a.b.c" only, so a send's cost depends on its name, not on the bus.
// Each node keeps its listeners of one kind in a list in bind order, so a
// binding leaves in O(1), and a route merges at most (words + 2) lists that
// are each already newest first, instead of sorting what it found.
#include <algorithm>
#include <cassert>
#include <xkbus/core/binding_index.hpp>

namespace xkbus::core {

struct ListenerList {
    Binding* oldest = nullptr;
    Binding* newest = nullptr;
    bool empty() const noexcept { return newest == nullptr; }
};

struct TrieNode {
    TrieNode* parent = nullptr;
    std::string word;
    // Ordered, not hashed: the words come from clients, who must not be able
    // to pick colliding ones and slow every lookup down.
    std::map<std::string, std::unique_ptr<TrieNode>, std::less<>> children;
    std::array<ListenerList, 3> listeners; // indexed by WildKind
    std::array<Binding*, 3> repliers{};

    bool isEmpty() const noexcept {
        return children.empty() &&
               std::all_of(listeners.begin(), listeners.end(),
                           [](const ListenerList& l) { return l.empty(); }) &&
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

size_t BindingIndex::OwnerKeyHash::operator()(const OwnerKey& k) const noexcept {
    // Node addresses and Ksock ids are the bus's own, not a client's choice.
    const size_t h = std::hash<const void*>{}(k.node);
    return h ^ (std::hash<uint64_t>{}((uint64_t{k.owner} << 2) | kindIndex(k.kind)) +
                0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2));
}

BindingIndex::BindingIndex() : m_root(std::make_unique<TrieNode>()) {
    m_root->word = "$";
}
BindingIndex::~BindingIndex() = default;

TrieNode* BindingIndex::findNode(std::string_view bindName) const {
    TrieNode* node = m_root.get();
    forEachWord(pathWords(bindName), [&](std::string_view word) {
        ++m_work.nodesVisited;
        auto it = node->children.find(word);
        node = it == node->children.end() ? nullptr : it->second.get();
        return node != nullptr;
    });
    return node;
}

TrieNode* BindingIndex::findOrMakeNode(std::string_view bindName) {
    TrieNode* node = m_root.get();
    forEachWord(pathWords(bindName), [&](std::string_view word) {
        ++m_work.nodesVisited;
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
        ++m_work.nodesVisited;
        TrieNode* parent = node->parent;
        auto it = parent->children.find(node->word);
        parent->children.erase(it); // destroys node
        node = parent;
    }
}

const Binding& BindingIndex::add(KsockId owner, std::string_view name, bool replier, Ksock* ksock) {
    auto binding = std::make_unique<Binding>();
    Binding& b = *binding;
    b.seq = m_nextSeq++;
    b.owner = owner;
    b.replier = replier;
    b.kind = wildKindOf(name);
    b.name.assign(name);
    b.ksock = ksock;
    b.node = findOrMakeNode(name);
    const size_t k = kindIndex(b.kind);
    if (replier) {
        assert(b.node->repliers[k] == nullptr);
        b.node->repliers[k] = &b;
        m_repliers.emplace(b.seq, &b);
    } else {
        ListenerList& list = b.node->listeners[k];
        b.older = list.newest;
        (list.newest != nullptr ? list.newest->newer : list.oldest) = &b;
        list.newest = &b;
        m_byOwner[OwnerKey{b.node, b.kind, owner}].push_back(&b);
    }
    m_bindings.emplace(b.seq, std::move(binding));
    return b;
}

void BindingIndex::unlinkListener(Binding& b) {
    ListenerList& list = b.node->listeners[kindIndex(b.kind)];
    (b.older != nullptr ? b.older->newer : list.oldest) = b.newer;
    (b.newer != nullptr ? b.newer->older : list.newest) = b.older;
    auto same = m_byOwner.find(OwnerKey{b.node, b.kind, b.owner});
    assert(same != m_byOwner.end());
    std::vector<Binding*>& mine = same->second;
    // Usually the newest goes first (UNBIND, close), so look from the back.
    for (auto it = mine.rbegin(); it != mine.rend(); ++it) {
        ++m_work.ownerScans;
        if (*it == &b) {
            mine.erase(std::next(it).base());
            break;
        }
    }
    if (mine.empty()) {
        m_byOwner.erase(same);
    }
}

void BindingIndex::remove(const Binding& binding) {
    auto it = m_bindings.find(binding.seq);
    assert(it != m_bindings.end());
    Binding& b = *it->second;
    TrieNode* node = b.node;
    if (b.replier) {
        node->repliers[kindIndex(b.kind)] = nullptr;
        m_repliers.erase(b.seq);
    } else {
        unlinkListener(b);
    }
    m_bindings.erase(it); // destroys b
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
    const WildKind kind = wildKindOf(bindName);
    if (replier) {
        Binding* r = node->repliers[kindIndex(kind)];
        return r != nullptr && r->owner == owner ? r : nullptr;
    }
    auto mine = m_byOwner.find(OwnerKey{node, kind, owner});
    ++m_work.ownerScans;
    return mine == m_byOwner.end() ? nullptr : mine->second.back();
}

void BindingIndex::walk(std::string_view messageName, Route* out, const Binding** replier) const {
    const std::string_view words = messageName.substr(2);
    const Binding* star = nullptr;
    const Binding* percent = nullptr;
    const Binding* exact = nullptr;
    auto collect = [&](const ListenerList& list) {
        if (out != nullptr && !list.empty()) {
            out->heads.push_back(list.newest);
        }
    };
    const TrieNode* node = m_root.get();
    const bool reachedEnd = forEachWord(words, [&](std::string_view word) {
        ++m_work.nodesVisited;
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
        ++m_work.nodesVisited;
        collect(node->listeners[kindIndex(WildKind::NONE)]);
        exact = node->repliers[kindIndex(WildKind::NONE)];
    }
    *replier = exact != nullptr ? exact : percent != nullptr ? percent : star;
}

// Each list is already newest first from its head, so one list is copied as
// it is, and several are merged through a heap of their heads: the work is
// the matches times log(lists), never a sort of everything that matched.
void BindingIndex::mergeNewestFirst(Route& out) const {
    std::vector<const Binding*>& heads = out.heads;
    if (heads.size() == 1) {
        for (const Binding* b = heads.front(); b != nullptr; b = b->older) {
            out.listeners.push_back(b);
        }
    } else {
        auto olderFirst = [this](const Binding* a, const Binding* b) {
            ++m_work.mergeComparisons;
            return a->seq < b->seq;
        };
        std::make_heap(heads.begin(), heads.end(), olderFirst);
        while (!heads.empty()) {
            std::pop_heap(heads.begin(), heads.end(), olderFirst);
            const Binding* newest = heads.back();
            out.listeners.push_back(newest);
            if (newest->older != nullptr) {
                heads.back() = newest->older;
                std::push_heap(heads.begin(), heads.end(), olderFirst);
            } else {
                heads.pop_back();
            }
        }
    }
    m_work.listenersRouted += out.listeners.size();
}

void BindingIndex::route(std::string_view messageName, Route& out) const {
    out.listeners.clear();
    out.heads.clear();
    walk(messageName, &out, &out.replier);
    mergeNewestFirst(out);
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

void BindingIndex::forEachReplierNewestFirst(
    const std::function<bool(const Binding&)>& visit) const {
    for (auto it = m_repliers.rbegin(); it != m_repliers.rend(); ++it) {
        if (!visit(*it->second)) {
            return;
        }
    }
}

} // namespace xkbus::core
