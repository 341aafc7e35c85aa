// Shared helpers for the bus-core tests: a bus, and one-line ways to open,
// bind, send, reply and pop.
#pragma once

#include <gtest/gtest.h>
#include <optional>
#include <string>
#include <vector>
#include <xkbus/core/bus.hpp>

namespace xkbus::core::testing {

class BusTest : public ::testing::Test {
protected:
    Bus bus{0};

    KsockId open(bool writable = true) {
        return bus.open(OpenOptions{.writable = writable}).value();
    }

    void bind(KsockId k, std::string_view name, bool replier = false) {
        auto r = bus.bind(k, name, replier);
        ASSERT_TRUE(r) << "bind " << name << " failed: errno " << static_cast<int>(r.error());
    }

    Result<MsgId> announce(KsockId k, std::string_view name, uint32_t flags = 0,
                           std::string_view data = "") {
        return bus.send(k, makeMessage(name, data, flags));
    }

    Result<MsgId> request(KsockId k, std::string_view name, uint32_t flags = 0, KsockId to = 0) {
        Message m = makeMessage(name, "", flags | FLAG_WANT_A_REPLY);
        m.header.to = to;
        return bus.send(k, m);
    }

    Result<MsgId> reply(KsockId k, const Message& req, std::string_view data = "",
                        uint32_t flags = 0) {
        Message m = makeMessage(req.name(), data, flags);
        m.header.inReplyTo = req.header.id;
        m.header.to = req.header.from;
        return bus.send(k, m);
    }

    std::optional<Message> pop(KsockId k) { return bus.nextMessage(k).value(); }

    // Pops everything; returns the names in the order they came out.
    std::vector<std::string> drainNames(KsockId k) {
        std::vector<std::string> names;
        while (auto m = pop(k)) {
            names.emplace_back(m->name());
        }
        return names;
    }

    uint32_t queued(KsockId k) { return bus.numMessages(k).value(); }
};

inline Errc errOf(const Result<MsgId>& r) {
    return r ? Errc{} : r.error();
}
inline Errc errOf(const Result<void>& r) {
    return r ? Errc{} : r.error();
}

} // namespace xkbus::core::testing
