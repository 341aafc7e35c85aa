// The largest message the bus takes (409600 bytes in all, its default
// MAXMSGSIZE) between a guest and dom0 through xkbusd, with the libkbus C API.
//
//   xkbus-xen-bigmsg listen NAME [TIMEOUT_S]   binds NAME as a listener, prints
//                                              "bound", checks the one message
//   xkbus-xen-bigmsg send NAME                 sends it; one 4 more bytes must
//                                              be refused
// Both sides derive the data size from NAME, so nothing else is exchanged. The
// listener checks every byte of what it got before saying PASS.
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <poll.h>
#include <string>
#include <vector>
#include <xkbus/kbus.h>

namespace {

constexpr uint32_t MAX_ENTIRE = 409600;

uint32_t dataLengthFor(const std::string& name) {
    const auto nameLen = static_cast<uint32_t>(name.size());
    uint32_t data = MAX_ENTIRE - static_cast<uint32_t>(KBUS_ENTIRE_MSG_LEN(nameLen, 0));
    data -= data % 4;
    while (KBUS_ENTIRE_MSG_LEN(nameLen, data) > MAX_ENTIRE) {
        data -= 4;
    }
    return data;
}

std::vector<uint8_t> pattern(uint32_t size) {
    std::vector<uint8_t> out(size);
    for (uint32_t i = 0; i < size; ++i) {
        out[i] = static_cast<uint8_t>((i * 31u + (i >> 10) + 7u) & 0xffu);
    }
    return out;
}

int listen(const std::string& name, int timeoutSeconds) {
    const kbus_ksock_t ks = kbus_ksock_open(0, O_RDWR);
    if (ks < 0 || kbus_ksock_bind(ks, name.c_str(), 0) != 0) {
        std::printf("FAIL: cannot open a ksock and bind %s (%d)\n", name.c_str(), ks);
        return 1;
    }
    std::printf("bound\n");
    std::fflush(stdout);
    pollfd p{ks, POLLIN, 0};
    if (::poll(&p, 1, timeoutSeconds * 1000) != 1) {
        std::printf("FAIL: no message within %d s\n", timeoutSeconds);
        return 1;
    }
    uint32_t length = 0;
    kbus_message_t* msg = nullptr;
    if (kbus_ksock_next_msg(ks, &length) != 1 || kbus_ksock_read_msg(ks, &msg, length) != 0 ||
        msg == nullptr) {
        std::printf("FAIL: could not read the message (length %u)\n", length);
        return 1;
    }
    const uint32_t want = dataLengthFor(name);
    const auto expected = pattern(want);
    const auto* data = static_cast<const uint8_t*>(kbus_msg_data_ptr(msg));
    const bool same =
        msg->data_len == want && data != nullptr && std::memcmp(data, expected.data(), want) == 0;
    std::printf("%s: %u data bytes, %u in all%s\n", same ? "PASS" : "FAIL", msg->data_len, length,
                same ? ", every byte checked" : ", not what was sent");
    kbus_msg_delete(&msg);
    kbus_ksock_close(ks);
    return same ? 0 : 1;
}

int send(const std::string& name) {
    const kbus_ksock_t ks = kbus_ksock_open(0, O_RDWR);
    if (ks < 0) {
        std::printf("FAIL: cannot open a ksock (%d)\n", ks);
        return 1;
    }
    const uint32_t size = dataLengthFor(name);
    const auto data = pattern(size + 4);
    const auto nameLen = static_cast<uint32_t>(name.size());
    kbus_message_t* tooBig = nullptr;
    int over = -1;
    if (kbus_msg_create(&tooBig, name.c_str(), nameLen, data.data(), size + 4, 0) == 0) {
        kbus_msg_id_t id{};
        over = kbus_ksock_send_msg(ks, tooBig, &id);
        kbus_msg_delete(&tooBig);
    }
    kbus_message_t* msg = nullptr;
    kbus_msg_id_t id{};
    if (kbus_msg_create(&msg, name.c_str(), nameLen, data.data(), size, 0) != 0) {
        std::printf("FAIL: kbus_msg_create\n");
        return 1;
    }
    const int sent = kbus_ksock_send_msg(ks, msg, &id);
    kbus_msg_delete(&msg);
    kbus_ksock_close(ks);
    if (sent != 0) {
        std::printf("FAIL: send of %u data bytes returned %d\n", size, sent);
        return 1;
    }
    if (over != -EMSGSIZE) {
        std::printf("FAIL: %u data bytes (over 409600 in all) gave %d, not -EMSGSIZE\n", size + 4,
                    over);
        return 1;
    }
    std::printf("PASS: sent %u data bytes (%u in all); 4 more refused with EMSGSIZE\n", size,
                static_cast<uint32_t>(KBUS_ENTIRE_MSG_LEN(nameLen, size)));
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    if (argc >= 3 && std::strcmp(argv[1], "listen") == 0) {
        const int timeout = argc >= 4 ? std::atoi(argv[3]) : 120;
        return listen(argv[2], timeout > 0 && timeout < 3600 ? timeout : 120);
    }
    if (argc == 3 && std::strcmp(argv[1], "send") == 0) {
        return send(argv[2]);
    }
    std::fprintf(stderr, "usage: xkbus-xen-bigmsg listen NAME [TIMEOUT_S] | send NAME\n");
    return 2;
}
