// The binding index: replier precedence, listener order, and a differential
// test against a linear-scan reference matcher written for clarity only.
#include <gtest/gtest.h>
#include <random>
#include <string>
#include <vector>
#include <xkbus/core/binding_index.hpp>

namespace xkbus::core {
namespace {

// ---- the reference: scan every binding, in the plainest possible way.
struct RefBinding {
    uint64_t seq;
    KsockId owner;
    bool replier;
    std::string name;
};

// Larger is more specific: exact, then "%", then "*" with a longer prefix.
size_t specificity(const std::string& bindName) {
    switch (wildKindOf(bindName)) {
    case WildKind::NONE:
        return 3000;
    case WildKind::PERCENT:
        return 2000;
    case WildKind::STAR:
        return bindName.size(); // names are at most 1000 bytes
    }
    return 0;
}

struct RefRoute {
    uint64_t replierSeq = 0;
    std::vector<uint64_t> listenerSeqs;
};

RefRoute referenceRoute(const std::vector<RefBinding>& all, const std::string& name) {
    RefRoute out;
    size_t best = 0;
    for (const auto& b : all) {
        if (!nameMatches(b.name, name)) {
            continue;
        }
        if (!b.replier) {
            out.listenerSeqs.push_back(b.seq);
        } else if (specificity(b.name) > best) {
            best = specificity(b.name);
            out.replierSeq = b.seq;
        }
    }
    std::sort(out.listenerSeqs.rbegin(), out.listenerSeqs.rend()); // newest first
    return out;
}

RefRoute indexedRoute(const BindingIndex& index, const std::string& name) {
    Route r;
    index.route(name, r);
    RefRoute out;
    out.replierSeq = r.replier ? r.replier->seq : 0;
    for (const auto* b : r.listeners) {
        out.listenerSeqs.push_back(b->seq);
    }
    return out;
}

TEST(Router, ReplierPrecedenceSpecificThenPercentThenStar) {
    // The KBUS spec's example, bound least specific last so order cannot help.
    BindingIndex index;
    const auto& specific = index.add(3, "$.Sensors.Kitchen.Temperature", true);
    const auto& percent = index.add(2, "$.Sensors.%", true);
    const auto& star = index.add(1, "$.Sensors.*", true);
    EXPECT_EQ(index.replierFor("$.Sensors.Kitchen.Temperature"), &specific);
    EXPECT_EQ(index.replierFor("$.Sensors.Kitchen"), &percent);
    EXPECT_EQ(index.replierFor("$.Sensors.LivingRoom"), &percent);
    EXPECT_EQ(index.replierFor("$.Sensors.LivingRoom.Temperature"), &star);
    EXPECT_EQ(index.replierFor("$.Other"), nullptr);
}

TEST(Router, DeeperStarReplierWinsOverShallowerOne) {
    BindingIndex index;
    const auto& deep = index.add(2, "$.a.b.*", true);
    const auto& shallow = index.add(1, "$.*", true); // newer, but less specific
    EXPECT_EQ(index.replierFor("$.a.b.c.d"), &deep);
    EXPECT_EQ(index.replierFor("$.a.x"), &shallow);
}

TEST(Router, ListenersComeNewestBindingFirstOneEntryPerBinding) {
    BindingIndex index;
    const auto& first = index.add(1, "$.a.b", false);
    const auto& second = index.add(2, "$.a.*", false);
    const auto& third = index.add(1, "$.a.b", false); // duplicate binding: its own copy
    const auto& fourth = index.add(3, "$.a.%", false);
    Route r;
    index.route("$.a.b", r);
    ASSERT_EQ(r.listeners.size(), 4u);
    EXPECT_EQ(r.listeners[0], &fourth);
    EXPECT_EQ(r.listeners[1], &third);
    EXPECT_EQ(r.listeners[2], &second);
    EXPECT_EQ(r.listeners[3], &first);
}

TEST(Router, RemovingBindingsPrunesAndStopsMatching) {
    BindingIndex index;
    const auto& b = index.add(1, "$.x.y.z", false);
    index.remove(b);
    Route r;
    index.route("$.x.y.z", r);
    EXPECT_TRUE(r.listeners.empty());
    EXPECT_EQ(index.size(), 0u);
}

// ---- the differential test
std::string randomWord(std::mt19937& rng) {
    static const char* words[] = {"a", "b", "c", "Kitchen", "x1"};
    return words[rng() % 5];
}

std::string randomMessageName(std::mt19937& rng) {
    std::string name = "$";
    const int depth = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < depth; ++i) {
        name += "." + randomWord(rng);
    }
    return name;
}

std::string randomBindName(std::mt19937& rng) {
    std::string name = "$";
    const int depth = static_cast<int>(rng() % 4);
    for (int i = 0; i < depth; ++i) {
        name += "." + randomWord(rng);
    }
    switch (rng() % 3) {
    case 0:
        return depth == 0 ? "$.*" : name;
    case 1:
        return name + ".*";
    default:
        return name + ".%";
    }
}

TEST(Router, DifferentialAgainstLinearScanReference) {
    const unsigned seed = std::random_device{}();
    std::printf("router differential seed %u\n", seed);
    std::mt19937 rng(seed);
    for (int round = 0; round < 200; ++round) {
        BindingIndex index;
        std::vector<RefBinding> ref;
        const int ops = 1 + static_cast<int>(rng() % 60);
        for (int i = 0; i < ops; ++i) {
            if (!ref.empty() && rng() % 4 == 0) { // remove a random binding
                const size_t victim = rng() % ref.size();
                const auto* b =
                    index.newestBindingOf(ref[victim].owner, ref[victim].name, ref[victim].replier);
                ASSERT_NE(b, nullptr);
                std::erase_if(ref, [&](const RefBinding& r) { return r.seq == b->seq; });
                index.remove(*b);
                continue;
            }
            const std::string name = randomBindName(rng);
            const bool replier = rng() % 3 == 0;
            if (replier && index.replierBoundTo(name) != nullptr) {
                continue; // one replier per exact name
            }
            const auto owner = static_cast<KsockId>(1 + rng() % 5);
            const auto& b = index.add(owner, name, replier);
            ref.push_back(RefBinding{b.seq, owner, replier, name});
        }
        for (int q = 0; q < 30; ++q) {
            const std::string name = randomMessageName(rng);
            const RefRoute want = referenceRoute(ref, name);
            const RefRoute got = indexedRoute(index, name);
            ASSERT_EQ(got.replierSeq, want.replierSeq) << "seed " << seed << " name " << name;
            ASSERT_EQ(got.listenerSeqs, want.listenerSeqs) << "seed " << seed << " name " << name;
        }
    }
}

} // namespace
} // namespace xkbus::core
