// libFuzzer target: the input is a script of bus operations with hostile
// arguments (arbitrary name bytes, flags, ids, Ksock numbers), as a broken or
// malicious client could send them. The bus must never crash, and after every
// operation every request it still awaits must be owed by someone.
#include "../fuzz/fuzz_target.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>
#include <xkbus/core/bus.hpp>

namespace {

using namespace xkbus;
using namespace xkbus::core;

class Script {
public:
    Script(const uint8_t* data, size_t size) : m_data(data), m_size(size) {}
    bool done() const { return m_pos >= m_size; }
    uint8_t byte() { return m_pos < m_size ? m_data[m_pos++] : 0; }
    uint32_t word() {
        uint32_t v = 0;
        for (int i = 0; i < 4; ++i) {
            v = (v << 8) | byte();
        }
        return v;
    }
    // A name: usually built from a small valid vocabulary, sometimes raw bytes.
    std::string name() {
        static const char* const WORDS[] = {
            "$.a", "$.a.b",  "$.*", "$.%", "$.a.*", "$.a.%", "$.KBUS.ReplierBindEvent",
            "$.b", "$.a.b.c"};
        const uint8_t selector = byte();
        if (selector < 224) {
            return WORDS[selector % 9];
        }
        std::string raw;
        const size_t len = byte() % 24;
        for (size_t i = 0; i < len; ++i) {
            raw.push_back(static_cast<char>(byte()));
        }
        return raw;
    }

private:
    const uint8_t* m_data;
    size_t m_size;
    size_t m_pos = 0;
};

void checkGuarantee(const Bus& bus, const std::vector<KsockId>& ids) {
    std::set<std::pair<KsockId, MsgId>> owed;
    for (KsockId id : ids) {
        const Ksock* k = bus.inspect(id);
        if (k == nullptr) {
            continue;
        }
        for (const auto& item : k->queue) {
            if (item.msg.wantsYouToReply()) {
                owed.emplace(item.msg.header.from, item.msg.header.id);
            }
        }
        for (const auto& o : k->owedReplies) {
            owed.emplace(o.to, o.request);
        }
        if (k->pending && k->pending->isRequest()) {
            owed.emplace(id, k->pending->header.id);
        }
    }
    for (KsockId id : ids) {
        const Ksock* k = bus.inspect(id);
        if (k == nullptr) {
            continue;
        }
        for (const MsgId& awaited : k->awaitingReplies) {
            if (!owed.contains({id, awaited})) {
                std::abort(); // a request nobody will ever answer
            }
        }
        if (k->queue.size() > 1000) {
            std::abort(); // the limits bound every queue
        }
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    Script s(data, size);
    Bus bus{0};
    std::vector<KsockId> ids;
    std::vector<Message> seen; // popped messages, to build replies from
    auto ksock = [&]() -> KsockId {
        const uint8_t b = s.byte();
        return ids.empty() || b == 255 ? b : ids[b % ids.size()]; // sometimes a bogus id
    };
    for (int step = 0; step < 400 && !s.done(); ++step) {
        switch (s.byte() % 12) {
        case 0:
            if (ids.size() < 16) {
                ids.push_back(bus.open(OpenOptions{.writable = s.byte() % 8 != 0}).value());
            }
            break;
        case 1:
            (void)bus.close(ksock());
            break;
        case 2:
            (void)bus.bind(ksock(), s.name(), s.byte() % 3 == 0);
            break;
        case 3:
            (void)bus.unbind(ksock(), s.name(), s.byte() % 3 == 0);
            break;
        case 4:
        case 5: {
            Message m = makeMessage(s.name(), std::string(s.byte() % 8, 'd'), s.word());
            m.header.to = s.byte() % 4 == 0 ? ksock() : 0;
            m.header.id = MsgId{s.byte() % 8 == 0 ? s.word() : 0, s.word()};
            (void)bus.send(ksock(), m);
            break;
        }
        case 6:
        case 7: {
            auto m = bus.nextMessage(ksock());
            if (m && *m && seen.size() < 64) {
                seen.push_back(**m);
            }
            break;
        }
        case 8: {
            if (seen.empty()) {
                break;
            }
            const Message& req = seen[s.byte() % seen.size()];
            Message reply = makeMessage(req.name(), "r", s.word() & ~FLAG_WANT_A_REPLY);
            reply.header.inReplyTo = s.byte() % 8 == 0 ? MsgId{s.word(), s.word()} : req.header.id;
            reply.header.to = s.byte() % 8 == 0 ? ksock() : req.header.from;
            (void)bus.send(ksock(), reply);
            break;
        }
        case 9:
            (void)bus.discard(ksock());
            break;
        case 10:
            (void)bus.maxMessages(ksock(), s.byte() % 10);
            break;
        default:
            (void)bus.onlyOnce(ksock(), s.byte() % 3);
            (void)bus.reportReplierBinds(ksock(), s.byte() % 3);
            (void)bus.maxMessageSize(s.word());
            (void)bus.findReplier(s.name());
            break;
        }
        (void)bus.takeWakeups();
        checkGuarantee(bus, ids);
    }
    return 0;
}
