// xkbus's shared ring against libxenvchan on the same (emulated) Xen: ping-pong
// one-way latency and domU->dom0 streaming throughput. Both transports use
// 64 KiB rings each way; both are used as shipped (xkbus spins briefly before
// sleeping, vchan sleeps on its event channel at once). "xkbus-nospin" is the
// xkbus ring with spinning off on both sides, so it waits as vchan does.
//
//   xkbus-xen-bench guest --transport xkbus|xkbus-nospin|vchan --dir PATH   (in the domU)
//   xkbus-xen-bench dom0 --transport ... --domid D --dir PATH               (in dom0)
//
// Script both sides follow: dom0 sends `rounds` pings of 64 bytes, the guest
// echoes each; then the guest streams `records` records of `bytes` each and
// dom0 answers with one 64-byte "done". dom0 measures and prints one
// `XKBUS-BENCH {json}` line and an `XKBUS-TEST bench-<transport>` line.
// What dom0 reads from xenstore came from the guest and is parsed strictly.
#include "xs_values.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <sys/resource.h>
#include <vector>
#include <xkbus/ring/xen/xen_transport.hpp>

extern "C" {
#include <libxenvchan.h>
}

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr size_t PING_BYTES = 64;
constexpr uint8_t RING_ORDER = 16; // 64 KiB each way, for both transports
constexpr size_t RING_BYTES = size_t{1} << RING_ORDER;

struct Plan {
    int rounds = 1000;
    int records = 2048;
    size_t bytes = 4096;
};

// One transport, blocking, whole messages of a size both sides know. receive()
// returns a view valid until the next receive: each transport copies the bytes
// out of the shared ring exactly once (xkbus into its private record buffer,
// vchan into ours), as a careful consumer of guest memory must.
class Pipe {
public:
    virtual ~Pipe() = default;
    virtual bool send(const std::byte* data, size_t size) = 0;
    virtual std::optional<std::span<const std::byte>> receive(size_t size) = 0;
};

class XkbusPipe final : public Pipe {
public:
    explicit XkbusPipe(xkbus::ring::Connection conn) : m_conn(std::move(conn)) {}
    bool send(const std::byte* data, size_t size) override {
        return m_conn.send(std::span(data, size), 60000ms).has_value();
    }
    std::optional<std::span<const std::byte>> receive(size_t size) override {
        auto record = m_conn.receive(60000ms);
        if (!record || record->size() != size) {
            return std::nullopt;
        }
        return *record;
    }

private:
    xkbus::ring::Connection m_conn;
};

class VchanPipe final : public Pipe {
public:
    explicit VchanPipe(libxenvchan* ctrl) : m_ctrl(ctrl) {
        m_ctrl->blocking = -1; // a signed one-bit field: -1 is its only non-zero value
    }
    ~VchanPipe() override { libxenvchan_close(m_ctrl); }
    VchanPipe(const VchanPipe&) = delete;
    VchanPipe& operator=(const VchanPipe&) = delete;
    bool send(const std::byte* data, size_t size) override {
        for (size_t done = 0; done < size;) {
            const int n = libxenvchan_write(m_ctrl, data + done, size - done);
            if (n < 0) {
                return false;
            }
            done += static_cast<size_t>(n);
        }
        return true;
    }
    std::optional<std::span<const std::byte>> receive(size_t size) override {
        m_buffer.resize(size);
        for (size_t done = 0; done < size;) {
            const int n = libxenvchan_read(m_ctrl, m_buffer.data() + done, size - done);
            if (n < 0 || static_cast<size_t>(n) > size - done) {
                return std::nullopt;
            }
            done += static_cast<size_t>(n);
        }
        return std::span<const std::byte>(m_buffer);
    }

private:
    libxenvchan* m_ctrl;
    std::vector<std::byte> m_buffer;
};

// What the receiving process spent: its sleeps (voluntary context switches,
// one per wait for a kick) and its CPU time. Counts, unlike times, mean
// something under TCG.
struct Spent {
    long sleeps = 0;
    double cpuUs = 0;
};

Spent spentSoFar() {
    rusage r{};
    ::getrusage(RUSAGE_SELF, &r);
    const auto us = [](const timeval& t) {
        return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_usec);
    };
    return Spent{r.ru_nvcsw, us(r.ru_utime) + us(r.ru_stime)};
}

int fail(const std::string& transport, const std::string& why) {
    std::printf("XKBUS-TEST bench-%s FAIL: %s\n", transport.c_str(), why.c_str());
    std::fflush(stdout);
    return 1;
}

int runGuest(const std::string& transport, const std::string& dir, const Plan& plan) {
    std::unique_ptr<Pipe> pipe;
    if (transport != "vchan") {
        xkbus::xentest::Xenstore xs;
        xkbus::ring::FrontendOptions options;
        options.toBackendOrder = RING_ORDER;
        options.toFrontendOrder = RING_ORDER;
        if (transport == "xkbus-nospin") {
            options.spin.maxSpin = std::chrono::nanoseconds(0);
        }
        auto conn = xkbus::ring::xen::connectFrontend(0, options);
        if (!xs.ok() || !conn || !xs.write(dir + "/port", std::to_string(conn->localPort())) ||
            !xs.write(dir + "/ref", std::to_string(conn->controlRef()))) {
            std::fprintf(stderr, "bench guest: xkbus frontend setup failed\n");
            return 1;
        }
        pipe = std::make_unique<XkbusPipe>(std::move(*conn));
    } else {
        // The guest is vchan's server: it grants the pages, as xkbus's frontend does.
        libxenvchan* ctrl =
            libxenvchan_server_init(nullptr, 0, dir.c_str(), RING_BYTES, RING_BYTES);
        if (ctrl == nullptr) {
            std::fprintf(stderr, "bench guest: libxenvchan_server_init failed\n");
            return 1;
        }
        pipe = std::make_unique<VchanPipe>(ctrl);
    }
    std::vector<std::byte> buffer(std::max(plan.bytes, PING_BYTES), std::byte{0x5a});
    for (int i = 0; i < plan.rounds; ++i) {
        auto ping = pipe->receive(PING_BYTES);
        if (!ping || !pipe->send(ping->data(), PING_BYTES)) {
            std::fprintf(stderr, "bench guest: ping-pong round %d failed\n", i);
            return 1;
        }
    }
    for (int i = 0; i < plan.records; ++i) {
        buffer[0] = static_cast<std::byte>(i);
        if (!pipe->send(buffer.data(), plan.bytes)) {
            std::fprintf(stderr, "bench guest: stream record %d failed\n", i);
            return 1;
        }
    }
    if (!pipe->receive(PING_BYTES)) {
        std::fprintf(stderr, "bench guest: no done\n");
        return 1;
    }
    return 0;
}

int runDom0(const std::string& transport, uint32_t domid, const std::string& dir, const Plan& plan,
            int timeoutSeconds) {
    xkbus::xentest::Xenstore xs;
    if (!xs.ok()) {
        return fail(transport, "cannot open xenstore");
    }
    const auto timeout = std::chrono::seconds(timeoutSeconds);
    std::unique_ptr<Pipe> pipe;
    if (transport != "vchan") {
        const auto refText = xs.waitFor(dir + "/ref", timeout, 16);
        const auto portText = xs.waitFor(dir + "/port", 5s, 16);
        const auto ref =
            refText ? xkbus::xentest::parseDecimal(*refText, 1, (1u << 20) - 1) : std::nullopt;
        const auto port =
            portText ? xkbus::xentest::parseDecimal(*portText, 1, 131071) : std::nullopt;
        if (!ref || !port) {
            return fail(transport, "no valid ref/port from the guest");
        }
        xkbus::ring::BackendOptions options;
        options.maxRingOrder = RING_ORDER;
        if (transport == "xkbus-nospin") {
            options.spin.maxSpin = std::chrono::nanoseconds(0);
        }
        auto conn = xkbus::ring::xen::acceptBackend(domid, *ref, *port, options);
        if (!conn) {
            return fail(transport, "acceptBackend failed");
        }
        pipe = std::make_unique<XkbusPipe>(std::move(*conn));
    } else {
        // libxenvchan reads ring-ref and event-channel itself; wait until both are there.
        if (!xs.waitFor(dir + "/event-channel", timeout, 16) ||
            !xs.waitFor(dir + "/ring-ref", 5s, 16)) {
            return fail(transport, "the guest's vchan server did not appear in xenstore");
        }
        libxenvchan* ctrl = libxenvchan_client_init(nullptr, static_cast<int>(domid), dir.c_str());
        if (ctrl == nullptr) {
            return fail(transport, "libxenvchan_client_init failed");
        }
        pipe = std::make_unique<VchanPipe>(ctrl);
    }

    std::vector<std::byte> ping(PING_BYTES, std::byte{0x11});
    std::vector<double> rttNs;
    rttNs.reserve(static_cast<size_t>(plan.rounds));
    for (int i = 0; i < plan.rounds; ++i) {
        ping[0] = static_cast<std::byte>(i);
        const auto t = Clock::now();
        if (!pipe->send(ping.data(), PING_BYTES)) {
            return fail(transport, "ping-pong round " + std::to_string(i) + " failed");
        }
        auto pong = pipe->receive(PING_BYTES);
        if (!pong) {
            return fail(transport, "ping-pong round " + std::to_string(i) + " failed");
        }
        rttNs.push_back(std::chrono::duration<double, std::nano>(Clock::now() - t).count());
        if (!std::equal(pong->begin(), pong->end(), ping.begin())) {
            return fail(transport, "ping-pong round " + std::to_string(i) + " came back altered");
        }
    }
    std::sort(rttNs.begin(), rttNs.end());
    const auto oneWayUs = [&](double q) {
        return rttNs[static_cast<size_t>(q * static_cast<double>(rttNs.size() - 1))] / 2000.0;
    };

    Clock::time_point first;
    Spent before;
    for (int i = 0; i < plan.records; ++i) {
        auto record = pipe->receive(plan.bytes);
        if (!record || (*record)[0] != static_cast<std::byte>(i)) {
            return fail(transport, "stream record " + std::to_string(i) + " lost or out of order");
        }
        if (i == 0) {
            first = Clock::now();
            before = spentSoFar();
        }
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - first).count();
    const Spent after = spentSoFar();
    const double mib = static_cast<double>(plan.bytes) * (plan.records - 1) / (1 << 20);
    const double mibPerS = mib / std::max(seconds, 1e-9);
    const double sleepsPerMib =
        static_cast<double>(after.sleeps - before.sleeps) / std::max(mib, 1e-9);
    const double cpuUsPerMib = (after.cpuUs - before.cpuUs) / std::max(mib, 1e-9);
    if (!pipe->send(ping.data(), PING_BYTES)) {
        return fail(transport, "could not send done");
    }
    std::printf("XKBUS-BENCH {\"transport\":\"%s\",\"ring_bytes_each_way\":%zu,"
                "\"ping_bytes\":%zu,\"ping_pong_rounds\":%d,\"one_way_p50_us\":%.2f,"
                "\"one_way_p99_us\":%.2f,\"stream_record_bytes\":%zu,\"stream_records\":%d,"
                "\"stream_MiB_per_s\":%.3f,\"stream_receiver_sleeps_per_MiB\":%.2f,"
                "\"stream_receiver_cpu_us_per_MiB\":%.1f}\n",
                transport.c_str(), RING_BYTES, PING_BYTES, plan.rounds, oneWayUs(0.5),
                oneWayUs(0.99), plan.bytes, plan.records, mibPerS, sleepsPerMib, cpuUsPerMib);
    std::printf("XKBUS-TEST bench-%s PASS (one-way p50 %.1f us, stream %.1f MiB/s)\n",
                transport.c_str(), oneWayUs(0.5), mibPerS);
    std::fflush(stdout);
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"xkbus ring vs libxenvchan on Xen (harness program; see bench/xen/)"};
    app.require_subcommand(1);
    std::string transport = "xkbus";
    std::string dir;
    uint32_t domid = 0;
    int timeout = 120;
    Plan plan;
    for (auto* sub : {app.add_subcommand("guest", "domU side: grants the ring, sends the stream"),
                      app.add_subcommand("dom0", "dom0 side: maps the ring, measures")}) {
        sub->add_option("--transport", transport)
            ->check(CLI::IsMember({"xkbus", "xkbus-nospin", "vchan"}))
            ->required();
        sub->add_option("--dir", dir, "xenstore directory (absolute)")->required();
        sub->add_option("--rounds", plan.rounds)->check(CLI::Range(1, 1000000));
        sub->add_option("--records", plan.records)->check(CLI::Range(2, 10000000));
        sub->add_option("--bytes", plan.bytes)->check(CLI::Range(size_t{64}, size_t{65536}));
        sub->add_option("--domid", domid)->check(CLI::Range(1, 32751));
        sub->add_option("--timeout", timeout)->check(CLI::Range(1, 3600));
    }
    CLI11_PARSE(app, argc, argv);
    if (app.got_subcommand("guest")) {
        return runGuest(transport, dir, plan);
    }
    if (domid == 0) {
        std::fprintf(stderr, "dom0 needs --domid\n");
        return 2;
    }
    return runDom0(transport, domid, dir, plan, timeout);
}
