// Buses joined by Limpets, all in memory: each bus a core::Bus, each Limpet
// side a Limpet on a Ksock of that bus, each link a pair of frame queues.
// Deterministic: pump() runs everything until nothing moves.
#pragma once

#include <deque>
#include <gtest/gtest.h>
#include <memory>
#include <vector>
#include <xkbus/core/bus.hpp>
#include <xkbus/limpet/limpet.hpp>

namespace xkbus::limpet::testing {

class CorePort final : public BusPort {
public:
    CorePort(core::Bus& bus, bool trusted) : m_bus(bus) {
        m_id = bus.open(core::OpenOptions{.mayMarkSynthetic = trusted}).value();
    }
    ~CorePort() override {
        if (m_bus.isOpen(m_id)) {
            (void)m_bus.close(m_id);
        }
    }
    CorePort(const CorePort&) = delete;
    CorePort& operator=(const CorePort&) = delete;
    KsockId id() const override { return m_id; }
    Result<void> bind(std::string_view n, bool r) override { return m_bus.bind(m_id, n, r); }
    Result<void> unbind(std::string_view n, bool r) override { return m_bus.unbind(m_id, n, r); }
    Result<KsockId> findReplier(std::string_view n) override { return m_bus.findReplier(n); }
    Result<MsgId> send(const Message& m) override { return m_bus.send(m_id, m); }
    Result<void> onlyOnce() override {
        return m_bus.onlyOnce(m_id, 1).map([](uint32_t) {});
    }
    Result<void> reportReplierBinds() override {
        return m_bus.reportReplierBinds(m_id, 1).map([](uint32_t) {});
    }
    Result<void> setMaxMessages(uint32_t n) override {
        return m_bus.maxMessages(m_id, n).map([](uint32_t) {});
    }
    std::optional<Message> next() {
        auto m = m_bus.nextMessage(m_id);
        return m ? *m : std::nullopt;
    }

private:
    core::Bus& m_bus;
    KsockId m_id = 0;
};

struct QueueSink final : LinkSink {
    void send(const Frame& f) override {
        // Every frame crosses as bytes, so the codec is always exercised.
        auto bytes = encodeFrame(f);
        auto decoded = decodeFrame(std::span(bytes).subspan(4));
        EXPECT_TRUE(decoded.has_value());
        frames.push_back(*decoded);
    }
    std::deque<Frame> frames;
};

struct Side {
    std::unique_ptr<CorePort> port;
    QueueSink out;
    std::unique_ptr<Limpet> limpet;
};

struct Pair {
    Side a;
    Side b;
    bool up = false;
};

class World {
public:
    explicit World(size_t buses) {
        for (size_t i = 0; i < buses; ++i) {
            m_buses.push_back(std::make_unique<core::Bus>(static_cast<uint32_t>(i)));
        }
    }
    core::Bus& bus(size_t i) { return *m_buses[i]; }

    // Joins bus i (side a, network id ida) and bus j (side b, idb); link up.
    // Both sides take `base` for everything but the network id.
    Pair& join(size_t i, size_t j, uint32_t ida, uint32_t idb, const Config& base = {}) {
        auto p = std::make_unique<Pair>();
        makeSide(p->a, i, ida, base);
        makeSide(p->b, j, idb, base);
        m_pairs.push_back(std::move(p));
        connect(*m_pairs.back());
        return *m_pairs.back();
    }
    void connect(Pair& p) {
        EXPECT_TRUE(p.a.limpet->linkUp(p.b.limpet->hello()));
        EXPECT_TRUE(p.b.limpet->linkUp(p.a.limpet->hello()));
        p.up = true;
    }
    void disconnect(Pair& p) {
        p.up = false;
        p.a.out.frames.clear();
        p.b.out.frames.clear();
        for (Side* s : {&p.a, &p.b}) {
            if (s->limpet) { // a killed side has none
                s->limpet->linkDown();
            }
        }
    }
    // A Limpet process dies: its Ksock closes on its bus.
    void kill(Side& s) {
        s.limpet.reset();
        s.port.reset();
        s.out.frames.clear();
    }

    // Runs until nothing moves; returns the number of steps (bounded).
    int pump(int limit = 100000) {
        int steps = 0;
        bool moved = true;
        while (moved && steps < limit) {
            moved = false;
            for (auto& p : m_pairs) {
                moved |= pumpSide(p->a, p->b, *p, steps);
                moved |= pumpSide(p->b, p->a, *p, steps);
            }
        }
        return steps;
    }

private:
    void makeSide(Side& s, size_t bus, uint32_t id, const Config& base) {
        s.port = std::make_unique<CorePort>(*m_buses[bus], true);
        Config c = base;
        c.networkId = id;
        s.limpet = std::make_unique<Limpet>(c, *s.port, s.out);
        ASSERT_TRUE(s.limpet->start());
    }
    static bool pumpSide(Side& s, Side& other, Pair& p, int& steps) {
        if (!s.limpet) {
            return false;
        }
        bool moved = false;
        while (auto m = s.port->next()) {
            s.limpet->fromBus(*m);
            moved = true;
            ++steps;
        }
        while (!s.out.frames.empty()) {
            Frame f = std::move(s.out.frames.front());
            s.out.frames.pop_front();
            if (p.up && other.limpet) {
                (void)other.limpet->fromLink(f);
            }
            moved = true;
            ++steps;
        }
        return moved;
    }

    std::vector<std::unique_ptr<core::Bus>> m_buses;
    std::vector<std::unique_ptr<Pair>> m_pairs;
};

} // namespace xkbus::limpet::testing
