// libFuzzer: records from four tenants (dom0, a guest, two local users),
// interleaved as the input says, into one Dispatcher over a real Core. Each
// record is decoded as the daemon decodes a peer's bytes; a violation drops
// that peer, as the hub does. When every peer has left, the accounting
// invariant must hold: no charge group holds anything (issue 15).
//
// Input: chunks of [peer: u8][length: u16 little-endian][record bytes].
#include "../fuzz/fuzz_target.hpp"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <span>
#include <xkbus/daemon/dispatcher.hpp>

namespace {

using namespace xkbus;
using namespace xkbus::daemon;

constexpr size_t PEERS = 4;

PeerInfo peerFor(size_t which) {
    PeerInfo peer;
    switch (which) {
    case 0:
        peer.tenant = Tenant::dom0();
        break;
    case 1:
        peer.domid = 5;
        peer.tenant = Tenant::guest(5, "guest5", 0);
        break;
    default:
        peer.tenant = Tenant::localUser(static_cast<uint32_t>(1000 + which), {100}, "user", {});
        break;
    }
    peer.pid = static_cast<uint32_t>(100 + which);
    peer.chargeGroup = peer.tenant.chargeGroup();
    return peer;
}

protocol::Record hello(uint32_t pid) {
    protocol::Record r;
    r.type = protocol::RecordType::HELLO;
    r.callId = 1;
    r.arg = protocol::PROTOCOL_VERSION;
    r.value = pid;
    return r;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    core::CoreConfig config;
    config.initialBuses = 2;
    config.bus.recordQueueEvents = true;
    core::Core core(config);
    Dispatcher dispatcher(core);
    std::array<ConnectionId, PEERS> ids{};
    std::array<bool, PEERS> gone{};
    for (size_t i = 0; i < PEERS; ++i) {
        const PeerInfo peer = peerFor(i);
        ids[i] = dispatcher.connect(peer);
        gone[i] = !dispatcher.handle(ids[i], hello(peer.pid));
    }
    const auto* bytes = reinterpret_cast<const std::byte*>(data);
    for (size_t at = 0; at + 3 <= size;) {
        const size_t peer = data[at] % PEERS;
        const size_t length =
            std::min<size_t>(data[at + 1] | (size_t{data[at + 2]} << 8), size - at - 3);
        const auto record = protocol::decode(std::span(bytes + at + 3, length));
        at += 3 + length;
        if (gone[peer] || !record) {
            continue; // the hub drops a peer whose bytes do not decode; here we go on
        }
        if (!dispatcher.handle(ids[peer], *record)) {
            dispatcher.disconnect(ids[peer]);
            gone[peer] = true;
        }
        (void)dispatcher.takeOutgoing();
    }
    for (size_t i = 0; i < PEERS; ++i) {
        if (!gone[i]) {
            dispatcher.disconnect(ids[i]);
        }
    }
    (void)dispatcher.takeOutgoing();
    if (!core.groupUsages().empty()) {
        std::abort(); // a charge outlived every tenant that could release it
    }
    return 0;
}
