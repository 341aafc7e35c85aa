// Ring-level test of the Xen transport on real Xen, one program for both ends.
//
//   xkbus-xen-probe front --dir data/xkbus-test/ring      (in the domU)
//   xkbus-xen-probe back --domid D --dir /local/domain/D/data/xkbus-test/ring   (in dom0)
//
// The guest's frontend shares a one-page ring (1 KiB each way) and publishes
// its grant reference and event port in xenstore; dom0's backend maps it,
// then drives: echo records of several sizes, a 409600-byte record each way,
// then "HOLD" and a request (kill-now) for the guest to SIGKILL the frontend,
// after which the backend must see the peer gone through the unmap notify.
// The backend prints one `XKBUS-TEST <name> PASS|FAIL: why` line per case.
// Everything it reads from xenstore or the ring came from the guest: values
// are parsed strictly and records are length-checked before use.
#include "xs_values.hpp"

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>
#include <xkbus/ring/xen/xen_transport.hpp>

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using xkbus::Errc;
using xkbus::ring::Connection;

constexpr uint32_t LARGE = 409600;
constexpr std::string_view HOLD = "HOLD";
constexpr std::string_view HELD = "HELD";
constexpr std::string_view BYE = "BYE";

std::span<const std::byte> bytesOf(std::string_view s) {
    return std::as_bytes(std::span(s.data(), s.size()));
}

bool equals(std::span<const std::byte> record, std::string_view s) {
    return record.size() == s.size() &&
           std::equal(record.begin(), record.end(), bytesOf(s).begin());
}

std::vector<std::byte> pattern(uint32_t size) {
    std::vector<std::byte> out(size);
    for (uint32_t i = 0; i < size; ++i) {
        out[i] = static_cast<std::byte>((i * 131u + size * 7u + (i >> 8)) & 0xffu);
    }
    return out;
}

double msSince(Clock::time_point t) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

std::string errText(Errc e) {
    return std::string(xkbus::describe(e)) + " (errno " + std::to_string(xkbus::toErrno(e)) + ")";
}

void report(const std::string& name, bool pass, const std::string& detail) {
    std::string line = "XKBUS-TEST " + name + (pass ? " PASS" : " FAIL: " + detail);
    if (pass && !detail.empty()) {
        line += " (" + detail + ")";
    }
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
}

// --- guest ---------------------------------------------------------------

int runFront(const std::string& dir, uint8_t order) {
    xkbus::xentest::Xenstore xs;
    if (!xs.ok()) {
        std::fprintf(stderr, "probe front: cannot open xenstore\n");
        return 1;
    }
    std::string_view why;
    xkbus::ring::FrontendOptions options;
    options.toBackendOrder = order;
    options.toFrontendOrder = order;
    auto conn = xkbus::ring::xen::connectFrontend(0, options, &why);
    if (!conn) {
        std::fprintf(stderr, "probe front: connectFrontend: %s %.*s\n",
                     errText(conn.error()).c_str(), static_cast<int>(why.size()), why.data());
        return 1;
    }
    if (!xs.write(dir + "/port", std::to_string(conn->localPort())) ||
        !xs.write(dir + "/ref", std::to_string(conn->controlRef()))) {
        std::fprintf(stderr, "probe front: cannot publish ref/port under %s\n", dir.c_str());
        return 1;
    }
    std::printf("probe front: shared ref %u, port %u, orders %u/%u\n", conn->controlRef(),
                conn->localPort(), order, order);
    std::fflush(stdout);
    std::vector<std::byte> copy;
    for (;;) {
        auto record = conn->receive(-1ms);
        if (!record) {
            std::fprintf(stderr, "probe front: receive: %s\n", errText(record.error()).c_str());
            return 1;
        }
        if (equals(*record, BYE)) {
            return 0;
        }
        const bool hold = equals(*record, HOLD);
        copy.assign(record->begin(), record->end());
        auto sent = conn->send(hold ? bytesOf(HELD) : std::span<const std::byte>(copy), 60000ms);
        if (!sent) {
            std::fprintf(stderr, "probe front: send: %s\n", errText(sent.error()).c_str());
            return 1;
        }
        if (hold) {
            std::printf("probe front: holding, waiting to be killed\n");
            std::fflush(stdout);
            (void)conn->receive(-1ms);
            return 1; // never reached when the test works: SIGKILL comes first
        }
    }
}

// --- dom0 ----------------------------------------------------------------

// Sends `record`, expects it back unchanged.
std::string echoOnce(Connection& conn, const std::vector<std::byte>& record) {
    if (auto sent = conn.send(record, 120000ms); !sent) {
        return "send " + std::to_string(record.size()) + " bytes: " + errText(sent.error());
    }
    auto back = conn.receive(120000ms);
    if (!back) {
        return "receive " + std::to_string(record.size()) + " bytes: " + errText(back.error());
    }
    if (back->size() != record.size()) {
        return "echo of " + std::to_string(record.size()) + " bytes came back with " +
               std::to_string(back->size());
    }
    if (!std::equal(back->begin(), back->end(), record.begin())) {
        return "echo of " + std::to_string(record.size()) + " bytes came back altered";
    }
    return {};
}

int runBack(uint32_t domid, const std::string& dir, int timeoutSeconds) {
    int failures = 0;
    auto check = [&](const std::string& name, const std::string& error, const std::string& detail) {
        report(name, error.empty(), error.empty() ? detail : error);
        failures += error.empty() ? 0 : 1;
        return error.empty();
    };
    xkbus::xentest::Xenstore xs;
    if (!xs.ok()) {
        check("ring-connect", "cannot open xenstore in dom0", "");
        return 1;
    }
    const auto timeout = std::chrono::seconds(timeoutSeconds);
    const auto refText = xs.waitFor(dir + "/ref", timeout, 16);
    const auto portText = xs.waitFor(dir + "/port", 5s, 16);
    const auto ref =
        refText ? xkbus::xentest::parseDecimal(*refText, 1, (1u << 20) - 1) : std::nullopt;
    const auto port = portText ? xkbus::xentest::parseDecimal(*portText, 1, 131071) : std::nullopt;
    if (!ref || !port) {
        check("ring-connect",
              "the guest published no valid ref/port under " + dir + " within " +
                  std::to_string(timeoutSeconds) + " s",
              "");
        return 1;
    }
    const auto t0 = Clock::now();
    std::string_view why;
    auto conn = xkbus::ring::xen::acceptBackend(domid, *ref, *port, {}, &why);
    if (!conn) {
        check("ring-connect",
              "acceptBackend(dom " + std::to_string(domid) + ", ref " + std::to_string(*ref) +
                  ", port " + std::to_string(*port) + "): " + errText(conn.error()) + " " +
                  std::string(why),
              "");
        return 1;
    }
    check("ring-connect", "",
          "mapped dom" + std::to_string(domid) + " ref " + std::to_string(*ref) + ", port " +
              std::to_string(*port) + " in " + std::to_string(static_cast<int>(msSince(t0))) +
              " ms");

    // Echo: both directions, sizes below, at, and over the 1 KiB ring.
    {
        const auto start = Clock::now();
        std::string error;
        int rounds = 0;
        for (uint32_t size : {1u, 7u, 64u, 255u, 1000u, 1020u, 1024u, 4096u, 65536u}) {
            for (int i = 0; i < 4 && error.empty(); ++i, ++rounds) {
                error = echoOnce(*conn, pattern(size + static_cast<uint32_t>(i)));
            }
        }
        check("ring-echo", error,
              std::to_string(rounds) + " records of 1..65539 bytes each way in " +
                  std::to_string(static_cast<int>(msSince(start))) + " ms");
    }

    // 409600 bytes each way through 1 KiB rings, and one byte more is refused.
    {
        const auto start = Clock::now();
        std::string error = echoOnce(*conn, pattern(LARGE));
        const double ms = msSince(start);
        if (error.empty()) {
            auto tooBig = conn->send(pattern(LARGE + 1), 1000ms);
            if (tooBig || tooBig.error() != Errc::MESSAGE_TOO_BIG) {
                error = "a 409601-byte record was not refused with MESSAGE_TOO_BIG";
            }
        }
        if (error.empty()) {
            error = echoOnce(*conn, pattern(100)); // still usable afterwards
        }
        char detail[160];
        std::snprintf(detail, sizeof detail,
                      "409600 bytes dom0->domU->dom0 through a one-page ring (1 KiB each way) in "
                      "%.0f ms, %.2f MiB/s; 409601 refused",
                      ms, 2.0 * LARGE / (1 << 20) / (ms / 1000.0));
        check("ring-large-409600", error, detail);
    }

    // SIGKILL of the guest process: seen through gntalloc's unmap notify.
    {
        std::string error;
        if (auto sent = conn->send(bytesOf(HOLD), 60000ms); !sent) {
            error = "send HOLD: " + errText(sent.error());
        } else if (auto held = conn->receive(60000ms); !held || !equals(*held, HELD)) {
            error = "the guest did not answer HOLD";
        }
        double ms = 0;
        if (error.empty()) {
            const auto killAsked = Clock::now();
            if (!xs.write(dir + "/kill-now", "1")) {
                error = "cannot write kill-now";
            } else {
                auto after = conn->receive(std::chrono::milliseconds(timeoutSeconds * 1000));
                ms = msSince(killAsked);
                if (after) {
                    error = "got a record after the kill";
                } else if (after.error() != Errc::DISCONNECTED) {
                    error = "expected DISCONNECTED, got " + errText(after.error());
                } else if (conn->peerAlive()) {
                    error = "DISCONNECTED but the frontend status byte is still live";
                }
            }
        }
        check("ring-sigkill-unmap-notify", error,
              "frontend status byte cleared and event seen " +
                  std::to_string(static_cast<int>(ms)) +
                  " ms after dom0 asked the guest to kill -9 it");
    }
    return failures == 0 ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"xkbus Xen ring probe (harness program; see tests/xen/)"};
    app.require_subcommand(1);
    std::string dir;
    uint32_t domid = 0;
    int order = 10;
    int timeout = 120;
    auto* front = app.add_subcommand("front", "guest side: share a ring, echo what comes");
    front->add_option("--dir", dir, "xenstore directory for ref/port")->required();
    front->add_option("--order", order, "ring order each way (10: one page in all)")
        ->check(CLI::Range(8, 20));
    auto* back = app.add_subcommand("back", "dom0 side: map the guest's ring and test it");
    back->add_option("--domid", domid, "the guest domain")->required()->check(CLI::Range(1, 32751));
    back->add_option("--dir", dir, "xenstore directory the guest writes")->required();
    back->add_option("--timeout", timeout, "seconds to wait for each step")
        ->check(CLI::Range(1, 3600));
    CLI11_PARSE(app, argc, argv);
    if (*front) {
        return runFront(dir, static_cast<uint8_t>(order));
    }
    return runBack(domid, dir, timeout);
}
