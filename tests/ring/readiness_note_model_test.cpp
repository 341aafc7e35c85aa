// The readiness-note handshake (docs/ring.md, "Readiness notes"), checked in
// every interleaving. The note is the real one, in a real Endpoint pair's
// control page; the ring, the client's mirror and the fd's packets are
// counters. The daemon publishes pushes and takes notes as PeerLink does;
// the client pumps, pops and settles its fd as the client library's
// Connection does. A depth-first search over the two programs' steps (each
// Endpoint call is one atomic step: it linearises at its compare-exchange)
// checks that whenever both sides are between operations, the fd holds one
// packet if a message can be read and none otherwise, and that nobody waits
// for ever.
#include "heap_ring.hpp"

#include <gtest/gtest.h>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

namespace xkbus::ring {
namespace {

constexpr uint32_t SLOT = 3;

enum class DaemonAt : uint8_t {
    IDLE,
    TAKE_ANY_NOTE,
    PUBLISH_HELD,
    TAKE_NOTE,
    ADD_PACKET,
    TAKE_DONE
};
enum class ClientAt : uint8_t { IDLE, NOTE, LOOK, RETRACT, TAKE_PACKET };

struct State {
    uint16_t note = 0;
    uint8_t published = 0; // pushes in the ring
    uint8_t pumped = 0;    // of those, applied to the client's mirror
    uint8_t packets = 0;   // readiness packets on the fd
    DaemonAt daemon = DaemonAt::IDLE;
    uint8_t daemonPushes = 0;
    bool holding = false; // the daemon holds a copy back (its ring was full)
    ClientAt client = ClientAt::IDLE;
    uint8_t mirror = 0;
    uint8_t seen = 0;         // PUSHED records applied
    uint8_t noted = 0;        // `seen` when the client began settling: its note's count
    bool holdsPacket = false; // what the client's note replaced says the fd holds
    uint8_t popped = 0;
    bool fdReadable = false;   // the client's "settle the fd when the mirror empties"
    bool missedPacket = false; // the client went to take a packet that was not there

    auto key() const {
        return std::tuple(note, published, pumped, packets, daemon, daemonPushes, holding, client,
                          mirror, seen, noted, holdsPacket, popped, fdReadable, missedPacket);
    }
    bool operator<(const State& other) const { return key() < other.key(); }

    std::string describe() const {
        std::ostringstream out;
        out << "note=0x" << std::hex << note << std::dec << " published=" << int(published)
            << " pumped=" << int(pumped) << " packets=" << int(packets) << " daemon=" << int(daemon)
            << " client=" << int(client) << " mirror=" << int(mirror) << " seen=" << int(seen)
            << " popped=" << int(popped) << " fdReadable=" << fdReadable;
        return out.str();
    }
};

class NoteModel {
public:
    explicit NoteModel(uint8_t pushes) : m_pushes(pushes), m_ring(test::makeHeapRing(10, 10)) {}

    // Explores every interleaving from a freshly opened Ksock; returns the
    // first broken rule, or "" once every reachable state is checked.
    std::string explore() {
        State start;
        m_ring->frontend->noteEmptied(SLOT, 0); // openKsock: the fd starts empty
        start.note = rawNote();
        return visit(start);
    }

    size_t statesSeen() const { return m_visited.size(); }

private:
    std::string visit(const State& s) {
        if (!m_visited.insert(s).second) {
            return {};
        }
        m_path.push_back(s);
        if (auto broken = check(s); !broken.empty()) {
            return broken + ", reached through:" + describePath();
        }
        bool moved = false;
        for (int step = 0; step < 4; ++step) {
            State next = s;
            setRawNote(s.note);
            const bool moves = step == 0   ? daemonStep(next, false)
                               : step == 1 ? daemonStep(next, true)
                               : step == 2 ? clientStep(next)
                                           : pumpOnly(next);
            if (!moves) {
                continue;
            }
            moved = true;
            next.note = rawNote();
            if (auto broken = visit(next); !broken.empty()) {
                return broken;
            }
        }
        if (!moved && !finished(s)) {
            return "nobody can move, reached through:" + describePath();
        }
        m_path.pop_back();
        return {};
    }

    std::string describePath() const {
        std::string path;
        for (const State& s : m_path) {
            path += "\n  " + s.describe();
        }
        return path;
    }

    bool finished(const State& s) const {
        return s.daemon == DaemonAt::IDLE && s.daemonPushes == m_pushes &&
               s.client == ClientAt::IDLE && s.popped == m_pushes;
    }

    static std::string check(const State& s) {
        if (s.missedPacket) {
            return "the client's note said the fd held a packet, and it held none";
        }
        if (s.daemon != DaemonAt::IDLE || s.client != ClientAt::IDLE) {
            return {};
        }
        if (s.packets > 1) {
            return "an fd holds " + std::to_string(s.packets) + " packets";
        }
        const int unread = (s.published - s.pumped) + s.mirror;
        if (unread > 0 && s.packets != 1) {
            return "a message waits behind an fd with " + std::to_string(s.packets) + " packets";
        }
        if (unread == 0 && s.packets != 0) {
            return "an fd with nothing to read shows " + std::to_string(s.packets) + " packets";
        }
        return {};
    }

    // PeerLink::pushPublished: the copy first, then the note. Or, `holdBack`,
    // PeerLink::pushHeldBack: any note at once, then the copy when it fits.
    bool daemonStep(State& s, bool holdBack) {
        Endpoint& backend = *m_ring->backend;
        if (holdBack && s.daemon != DaemonAt::IDLE) {
            return false;
        }
        switch (s.daemon) {
        case DaemonAt::IDLE:
            if (s.daemonPushes == m_pushes) {
                return false;
            }
            if (holdBack) {
                s.holding = true;
                s.daemon = DaemonAt::TAKE_ANY_NOTE;
                return true;
            }
            ++s.published;
            ++s.daemonPushes;
            s.daemon = DaemonAt::TAKE_NOTE;
            return true;
        case DaemonAt::TAKE_ANY_NOTE:
            s.daemon = backend.takeAnyNote(SLOT) ? DaemonAt::ADD_PACKET : DaemonAt::PUBLISH_HELD;
            return true;
        case DaemonAt::PUBLISH_HELD:
            ++s.published;
            ++s.daemonPushes;
            s.holding = false;
            s.daemon = DaemonAt::TAKE_NOTE;
            return true;
        case DaemonAt::TAKE_NOTE:
            s.daemon = backend.takeNoteUnseen(SLOT, s.daemonPushes) ? DaemonAt::ADD_PACKET
                                                                    : DaemonAt::IDLE;
            return true;
        case DaemonAt::ADD_PACKET:
            ++s.packets;
            s.daemon = DaemonAt::TAKE_DONE;
            return true;
        case DaemonAt::TAKE_DONE:
            backend.takeDone(SLOT);
            s.daemon = s.holding ? DaemonAt::PUBLISH_HELD : DaemonAt::IDLE;
            return true;
        }
        return false;
    }

    static void pump(State& s) {
        const uint8_t arrived = s.published - s.pumped;
        s.mirror += arrived;
        s.seen += arrived;
        s.pumped = s.published;
        if (arrived > 0) {
            s.fdReadable = true;
        }
    }

    // Any call of the client library applies what has arrived.
    bool pumpOnly(State& s) {
        if (s.client != ClientAt::IDLE || s.published == s.pumped) {
            return false;
        }
        pump(s);
        return true;
    }

    // Connection::nextMessage, then settleFdLocked() and ring::Connection's
    // noteEmptied()/retractNote().
    bool clientStep(State& s) {
        Endpoint& frontend = *m_ring->frontend;
        switch (s.client) {
        case ClientAt::IDLE:
            pump(s);
            if (s.mirror == 0) {
                return false;
            }
            --s.mirror;
            ++s.popped;
            if (s.mirror == 0 && s.fdReadable) {
                s.client = ClientAt::NOTE;
                s.noted = s.seen;
            }
            return true;
        case ClientAt::NOTE: {
            const NoteEmptied replaced = frontend.noteEmptied(SLOT, s.noted);
            s.holdsPacket = replaced == NoteEmptied::FD_READABLE;
            s.client = replaced == NoteEmptied::BUSY ? ClientAt::NOTE : ClientAt::LOOK; // yield
            return true;
        }
        case ClientAt::LOOK:
            pump(s);
            if (s.mirror == 0) {
                s.client = ClientAt::TAKE_PACKET;
            } else if (s.holdsPacket) {
                s.client = ClientAt::RETRACT;
            } else {
                s.fdReadable = true; // the daemon takes the note for this copy
                s.client = ClientAt::IDLE;
            }
            return true;
        case ClientAt::RETRACT:
            if (frontend.retractNote(SLOT, s.noted)) {
                s.fdReadable = true;
                s.client = ClientAt::IDLE;
            } else {
                s.client = ClientAt::TAKE_PACKET;
            }
            return true;
        case ClientAt::TAKE_PACKET:
            if (s.holdsPacket) {
                s.missedPacket = s.packets == 0;
                s.packets = static_cast<uint8_t>(s.packets > 0 ? s.packets - 1 : 0);
            }
            s.fdReadable = s.mirror > 0;
            s.client = ClientAt::IDLE;
            return true;
        }
        return false;
    }

    uint16_t* slot() {
        return reinterpret_cast<uint16_t*>(m_ring->control.get() + m_ring->layout.readinessOffset) +
               SLOT;
    }
    uint16_t rawNote() { return *slot(); }
    void setRawNote(uint16_t note) { *slot() = note; }

    uint8_t m_pushes;
    std::unique_ptr<test::HeapRing> m_ring;
    std::set<State> m_visited;
    std::vector<State> m_path; // from the start to the state being visited
};

TEST(ReadinessNoteModel, EveryInterleavingLeavesTheFdReadableExactlyWhileAMessageWaits) {
    for (uint8_t pushes = 1; pushes <= 4; ++pushes) {
        NoteModel model(pushes);
        EXPECT_EQ(model.explore(), "") << pushes << " pushes";
        EXPECT_GT(model.statesSeen(), 10u * pushes); // the search did explore
    }
}

} // namespace
} // namespace xkbus::ring
