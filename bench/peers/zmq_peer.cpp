// ZeroMQ (libzmq) as the peer of the comparison, over ipc:// (unix sockets),
// each pattern through a broker process running zmq_proxy:
//   rr:  REQ -> ROUTER | proxy | DEALER -> REP (the replier echoes)
//   ann: PUB -> XSUB | proxy | XPUB -> SUB (K listeners)
// A ZeroMQ context is not fork-safe, so every process makes its own after fork().
#include "peer_common.hpp"

#include <zmq.h>

namespace {

using namespace xkbus::bench::peers;

[[noreturn]] void dieZmq(std::string_view what) {
    die(std::string(what) + ": " + zmq_strerror(zmq_errno()));
}

void setInt(void* socket, int option, int value) {
    if (zmq_setsockopt(socket, option, &value, sizeof value) != 0) {
        dieZmq("zmq_setsockopt");
    }
}

// One context and the sockets made from it, closed without lingering.
class ZmqProcess {
public:
    ZmqProcess() : m_context(zmq_ctx_new()) {
        if (m_context == nullptr) {
            dieZmq("zmq_ctx_new");
        }
    }
    ZmqProcess(const ZmqProcess&) = delete;
    ZmqProcess& operator=(const ZmqProcess&) = delete;
    ~ZmqProcess() {
        for (void* s : m_sockets) {
            zmq_close(s);
        }
        zmq_ctx_term(m_context);
    }

    // A socket with no high-water mark: the credit window, not ZeroMQ's
    // dropping (PUB) or blocking, bounds what is in flight.
    void* socket(int type) {
        void* s = zmq_socket(m_context, type);
        if (s == nullptr) {
            dieZmq("zmq_socket");
        }
        setInt(s, ZMQ_LINGER, 0);
        setInt(s, ZMQ_SNDHWM, 0);
        setInt(s, ZMQ_RCVHWM, 0);
        m_sockets.push_back(s);
        return s;
    }
    void* bound(int type, const std::string& endpoint) {
        void* s = socket(type);
        if (zmq_bind(s, endpoint.c_str()) != 0) {
            dieZmq("zmq_bind " + endpoint);
        }
        return s;
    }
    void* connected(int type, const std::string& endpoint) {
        void* s = socket(type);
        if (zmq_connect(s, endpoint.c_str()) != 0) {
            dieZmq("zmq_connect " + endpoint);
        }
        return s;
    }

private:
    void* m_context;
    std::vector<void*> m_sockets;
};

// The broker: binds both ends, then says so, then forwards for ever.
int runProxy(int frontType, const std::string& front, int backType, const std::string& back,
             const AckPipe& ready) {
    ZmqProcess zmq;
    void* frontend = zmq.bound(frontType, front);
    void* backend = zmq.bound(backType, back);
    Acker(ready, 0, Options{}).ready();
    zmq_proxy(frontend, backend, nullptr);
    dieZmq("zmq_proxy returned");
}

pid_t startProxy(int frontType, const std::string& front, int backType, const std::string& back) {
    AckPipe ready;
    const pid_t pid =
        spawnChild("proxy", [&] { return runProxy(frontType, front, backType, back, ready); });
    CreditWindow(ready, 1, 1).waitReady();
    return pid;
}

// A whole message into `buffer` (one byte larger than any payload, so a
// larger message shows); its length.
std::size_t receive(void* socket, std::vector<std::byte>& buffer) {
    const int n = zmq_recv(socket, buffer.data(), buffer.size(), 0);
    if (n < 0) {
        dieZmq("zmq_recv");
    }
    return std::min(static_cast<std::size_t>(n), buffer.size());
}

void send(void* socket, std::span<const std::byte> payload) {
    if (zmq_send(socket, payload.data(), payload.size(), 0) < 0) {
        dieZmq("zmq_send");
    }
}

// ---------------------------------------------------------------- rr

int echoReplies(const std::string& backend) {
    ZmqProcess zmq;
    void* rep = zmq.connected(ZMQ_REP, backend);
    zmq_msg_t message;
    zmq_msg_init(&message);
    for (;;) {
        if (zmq_msg_recv(&message, rep, 0) < 0 || zmq_msg_send(&message, rep, 0) < 0) {
            dieZmq("replier");
        }
    }
}

Measured runRoundTrips(const Options& o, const TempDir& dir) {
    const std::string front = "ipc://" + dir.file("front");
    const std::string back = "ipc://" + dir.file("back");
    const pid_t proxy = startProxy(ZMQ_ROUTER, front, ZMQ_DEALER, back);
    const pid_t replier = spawnChild("replier", [&] { return echoReplies(back); });
    Measured m;
    {
        ZmqProcess zmq;
        void* req = zmq.connected(ZMQ_REQ, front);
        setInt(req, ZMQ_RCVTIMEO, 10000); // a dead broker fails the run, not hangs it
        std::vector<std::byte> request = makePayload(o.size);
        std::vector<std::byte> reply(o.size + 1);
        m = measureRoundTrips(o, [&](uint64_t seq) {
            stampSequence(request, seq);
            send(req, request);
            const std::size_t n = receive(req, reply);
            checkPayload(std::span(reply).first(n), o.size, seq);
        });
    }
    stopChild(replier);
    stopChild(proxy);
    return m;
}

// ---------------------------------------------------------------- ann

// Until the sender knows every subscription has reached it, PUB drops what it
// sends; so it first sends empty probes, and a listener that receives one is
// ready. Probes after that are skipped.
int listenForAnnouncements(const std::string& endpoint, const AckPipe& acks, uint32_t index,
                           const Options& o) {
    ZmqProcess zmq;
    void* sub = zmq.connected(ZMQ_SUB, endpoint);
    if (zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0) != 0) {
        dieZmq("subscribe");
    }
    Acker acker(acks, index, o);
    std::vector<std::byte> buffer(o.size + 1);
    bool ready = false;
    for (uint64_t seq = 0; seq < o.count;) {
        const std::size_t n = receive(sub, buffer);
        if (n == 0) {
            if (!ready) {
                acker.ready();
                ready = true;
            }
            continue;
        }
        checkPayload(std::span(buffer).first(n), o.size, seq);
        acker.received(++seq);
    }
    return 0;
}

Measured runAnnouncements(const Options& o, const TempDir& dir) {
    const std::string in = "ipc://" + dir.file("publish");
    const std::string out = "ipc://" + dir.file("subscribe");
    const pid_t proxy = startProxy(ZMQ_XSUB, in, ZMQ_XPUB, out);
    AckPipe acks;
    std::vector<pid_t> listeners;
    for (uint32_t i = 0; i < o.listeners; ++i) {
        listeners.push_back(
            spawnChild("listener", [&, i] { return listenForAnnouncements(out, acks, i, o); }));
    }
    CreditWindow credit(acks, o.listeners, o.window);
    credit.watch(listeners, o.count);
    Measured m;
    {
        ZmqProcess zmq;
        void* pub = zmq.connected(ZMQ_PUB, in);
        while (!credit.waitReady(std::chrono::milliseconds(2))) {
            send(pub, {});
        }
        std::vector<std::byte> payload = makePayload(o.size);
        m = measureAnnouncements(
            o, credit,
            [&](uint64_t seq) {
                stampSequence(payload, seq);
                send(pub, payload);
            },
            [] {});
    }
    const bool allOk = waitListeners(listeners);
    stopChild(proxy);
    if (!allOk) {
        die("a listener failed");
    }
    return m;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app("ZeroMQ through zmq_proxy brokers (ROUTER/DEALER, XPUB/XSUB)", "bench_peer_zmq");
    Options o;
    if (const int rc = parseOptions(app, o, argc, argv); rc >= 0) {
        return rc;
    }
    armTimeout(o.timeoutSeconds);
    const TempDir dir;
    const Measured m = o.isRoundTrip() ? runRoundTrips(o, dir) : runAnnouncements(o, dir);
    printResult("zmq", o, m);
    return 0;
}
