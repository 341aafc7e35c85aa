// Fuzzes the write state machine: arbitrary bytes through kbus_ksock_write in
// input-chosen chunk sizes, then SEND. A message the bus accepts must reach
// the listener with the name and data that were written.
#include "../fuzz/fuzz_target.hpp"
#include "fake_bus.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <xkbus/kbus.h>

namespace {

struct Harness {
    std::shared_ptr<xkbus::frontend::testing::FakeBusHost> host =
        xkbus::frontend::testing::installFakeBus();
    int sender = kbus_ksock_open(0, O_RDWR);
    int listener = kbus_ksock_open(0, O_RDONLY);
    Harness() {
        if (sender < 0 || listener < 0 || kbus_ksock_bind(listener, "$.*", 0) != 0) {
            std::abort();
        }
    }
};

void drain(int listener) {
    kbus_message_t* m = nullptr;
    while (kbus_ksock_read_next_msg(listener, &m) == 0 && m != nullptr) {
        kbus_msg_delete(&m);
    }
}

// The written bytes held an entire message: the listener's copy has the same
// name and data (an accepted pointy header is checked by its lengths only).
void checkDelivered(int listener, const uint8_t* written, size_t size) {
    kbus_message_t* got = nullptr;
    if (kbus_ksock_read_next_msg(listener, &got) != 0 || got == nullptr) {
        std::abort();
    }
    kbus_message_t header{};
    std::memcpy(&header, written, sizeof header);
    if (got->name_len != header.name_len || got->data_len != header.data_len) {
        std::abort();
    }
    if (header.name == nullptr) {
        if (size != static_cast<size_t>(kbus_msg_sizeof(got)) ||
            std::memcmp(kbus_msg_name_ptr(got), written + 88, header.name_len) != 0 ||
            std::memcmp(kbus_msg_data_ptr(got),
                        written + 88 + KBUS_PADDED_NAME_LEN(size_t{header.name_len}),
                        header.data_len) != 0) {
            std::abort();
        }
    }
    kbus_msg_delete(&got);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static Harness harness;
    if (size < 1) {
        return 0;
    }
    // The first byte chooses the chunk sizes: 1 + (seed * k) % 97, varying.
    unsigned seed = data[0];
    const uint8_t* bytes = data + 1;
    const size_t total = size - 1;
    size_t at = 0;
    bool failed = false;
    while (at < total && !failed) {
        seed = seed * 1103515245u + 12345u;
        const size_t chunk = std::min<size_t>(1 + (seed >> 16) % 97, total - at);
        failed = kbus_ksock_write(harness.sender, bytes + at, chunk) < 0;
        at += chunk;
    }
    kbus_msg_id_t id{};
    const int sent = kbus_ksock_send(harness.sender, &id);
    if (sent == 0) {
        if (failed || total < 88) {
            std::abort(); // nothing complete was written, yet it was sent
        }
        checkDelivered(harness.listener, bytes, total);
    }
    kbus_ksock_discard(harness.sender);
    drain(harness.listener);
    return 0;
}
