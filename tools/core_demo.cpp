// `./run demo` until the daemon lands: the bus core on its own, telling the
// story of a small bus. Announcements, a request and its reply, an urgent
// message, then a replier that dies with one request queued and one read but
// unanswered, and the GoneAway and Ignored replies that the bus sends for it.
#include <cstdio>
#include <string>
#include <xkbus/core/bus.hpp>

namespace {

using namespace xkbus;
using namespace xkbus::core;

std::string describe(const Message& m) {
    std::string kind = m.isReply()     ? ((m.flags & FLAG_SYNTHETIC) ? "status" : "reply")
                       : m.isRequest() ? "request"
                                       : "announcement";
    std::string text = kind + " " + std::string(m.name()) + " [" + std::to_string(m.id.networkId) +
                       ":" + std::to_string(m.id.serialNum) + "] from " + std::to_string(m.from);
    if (m.isReply()) {
        text += " in reply to [" + std::to_string(m.inReplyTo.networkId) + ":" +
                std::to_string(m.inReplyTo.serialNum) + "]";
    }
    if (!m.data().empty()) {
        text += " \"" +
                std::string(reinterpret_cast<const char*>(m.data().data()), m.data().size()) + "\"";
    }
    if (m.flags & FLAG_URGENT) {
        text += " (urgent)";
    }
    return text;
}

void drain(Bus& bus, KsockId k, const char* who) {
    while (auto m = bus.nextMessage(k).value()) {
        std::printf("    %-9s <- %s\n", who, describe(*m).c_str());
    }
}

bool check(bool ok, const char* what) {
    if (!ok) {
        std::printf("demo failed: %s\n", what);
    }
    return ok;
}

} // namespace

int main() {
    Bus bus{0};
    const KsockId sender = bus.open().value();
    const KsockId replier = bus.open().value();
    const KsockId kitchenWatcher = bus.open().value();
    const KsockId everything = bus.open().value();
    std::printf("xkbus core demo: one bus, Ksocks sender=%u replier=%u kitchen=%u all=%u\n\n",
                sender, replier, kitchenWatcher, everything);

    std::printf("1. Bindings: the replier serves $.Sensors.*, listeners use wildcards\n");
    (void)bus.bind(replier, "$.Sensors.*", true);
    (void)bus.bind(kitchenWatcher, "$.Sensors.Kitchen.%", false);
    (void)bus.bind(everything, "$.*", false);

    std::printf("2. Announcements reach every matching listener\n");
    (void)bus.send(sender, makeMessage("$.Sensors.Kitchen.Temperature", "21.5C"));
    (void)bus.send(sender, makeMessage("$.Lights.Hall", "on"));
    drain(bus, kitchenWatcher, "kitchen");
    drain(bus, everything, "all");

    std::printf("3. A request reaches the replier; its reply goes back to the sender\n");
    auto id = bus.send(sender, makeMessage("$.Sensors.Kitchen.Humidity", "", FLAG_WANT_A_REPLY));
    if (!check(id.has_value(), "request")) {
        return 1;
    }
    auto request = bus.nextMessage(replier).value();
    std::printf("    replier   <- %s%s\n", describe(*request).c_str(),
                request->wantsYouToReply() ? " (you must reply)" : "");
    Message answer = makeMessage(request->name(), "40%");
    answer.inReplyTo = request->id;
    answer.to = request->from;
    (void)bus.send(replier, answer);
    drain(bus, sender, "sender");
    drain(bus, everything, "all");
    drain(bus, kitchenWatcher, "kitchen");

    std::printf("4. Urgent messages jump the queue\n");
    (void)bus.send(sender, makeMessage("$.Lights.Porch", "dim"));
    (void)bus.send(sender, makeMessage("$.Alarm.Smoke", "kitchen", FLAG_URGENT));
    drain(bus, everything, "all");

    std::printf("5. Two requests: the replier reads one and dies with the other queued\n");
    auto first = bus.send(sender, makeMessage("$.Sensors.Hall", "", FLAG_WANT_A_REPLY));
    auto second = bus.send(sender, makeMessage("$.Sensors.Attic", "", FLAG_WANT_A_REPLY));
    (void)bus.nextMessage(replier);
    (void)bus.close(replier); // as if the process were killed
    std::printf("    the bus answers both on the replier's behalf:\n");
    drain(bus, sender, "sender");
    drain(bus, everything, "all");
    drain(bus, kitchenWatcher, "kitchen");

    const auto stats = bus.stats();
    std::printf("\nStory: %llu copies queued, %llu read. Request [0:%u] got Ignored (read, "
                "never answered), [0:%u] got GoneAway (never read). Every request got exactly "
                "one answer.\n",
                static_cast<unsigned long long>(stats.copiesQueued),
                static_cast<unsigned long long>(stats.copiesPopped), first->serialNum,
                second->serialNum);
    for (const auto& k : stats.ksocks) {
        if (!check(k.awaitingReplies == 0, "a request was left unanswered")) {
            return 1;
        }
    }
    return 0;
}
