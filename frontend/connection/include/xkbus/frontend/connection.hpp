// A client process's one connection to xkbusd. Every Ksock of the process is
// multiplexed over it (docs/architecture.md, decision 2). It keeps a mirror of
// each Ksock's queue from the daemon's PUSHED and REMOVED records, so popping
// is local: the pop is written to the ring (a POP record) before the message
// is handed over, and the daemon reads it when it next looks, not at once.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>
#include <xkbus/frontend/ksock_channel.hpp>
#include <xkbus/protocol/record_link.hpp>

namespace xkbus::frontend {

// How a Ksock's pollable fd is kept in step with its queue when the daemon
// cannot keep it (a Xen guest's). The C API's poll signal implements it;
// nullptr-returning factories give Ksocks without fds.
class ReadinessSignal {
public:
    virtual ~ReadinessSignal() = default;
    virtual int fd() const noexcept = 0;
    virtual void messageQueued() = 0;          // one more message in the queue
    virtual void messageTaken() = 0;           // one fewer
    virtual void setSending(bool blocked) = 0; // unwritable while a send is blocked
};
using SignalFactory = std::function<std::unique_ptr<ReadinessSignal>()>;

// The most data a record from the daemon may carry (the absolute message size).
inline constexpr uint32_t ABSOLUTE_MAX_DATA = DEFAULT_MAX_MESSAGE_SIZE;

class Connection : public std::enable_shared_from_this<Connection> {
public:
    // Says HELLO over `link` and returns the connection. With `signals`, a
    // Ksock whose fd the daemon does not keep (a Xen guest's) gets a signal
    // from the factory, and a watcher thread applies the daemon's records as
    // they arrive, so that fd turns readable without the application calling
    // in first.
    static Result<std::shared_ptr<Connection>> start(std::unique_ptr<protocol::RecordLink> link,
                                                     uint32_t pid, SignalFactory signals = {});
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    Result<std::unique_ptr<KsockChannel>> openKsock(uint32_t bus, bool writable);
    // Bus `bus`'s bindings or stats, as the daemon's JSON text.
    Result<std::string> introspect(uint32_t bus, protocol::Introspect what);

private:
    friend class ConnectedKsock;
    struct Mirrored {
        uint64_t copyId = 0;
        Message msg;
    };
    struct KsockState {
        std::deque<Mirrored> mirror;
        bool sending = false;
        std::unique_ptr<ReadinessSignal> signal;
        int daemonFd = -1;       // the fd a local daemon keeps, if it gave one
        bool fdReadable = false; // daemonFd may be readable: settle it when the mirror empties
        uint16_t pushesSeen = 0; // PUSHED records applied: the count in its readiness notes
        bool reportPops = false; // the daemon asked for prompt pop reports
    };

    Connection(std::unique_ptr<protocol::RecordLink> link, SignalFactory signals);
    // Sends a call and waits for its RESULT, applying every other record met.
    // With `alsoWakeOn` >= 0 the wait also ends when that fd turns readable:
    // a request whose reply (on that Ksock's fd) is what the caller waits for.
    Result<protocol::Record> call(protocol::Record r, int alsoWakeOn = -1);
    Result<protocol::Record> callLocked(protocol::Record r, int alsoWakeOn = -1);
    Result<void> pumpLocked();
    void apply(protocol::Record&& r);
    Result<void> sendLocked(const protocol::Record& r, bool lazy = false);
    Result<std::optional<Message>> nextMessage(uint32_t handle);
    // True if `handle` may have a message: the daemon has written records
    // not applied yet (or is gone), or its mirror holds one.
    bool messageMayBeWaiting(uint32_t handle);
    Result<std::optional<Message>> nextMessageLocked(uint32_t handle);
    Result<std::optional<Message>> popMirroredLocked(uint32_t handle, KsockState& k);
    void settleFdLocked(uint32_t handle);
    void markSending(uint32_t handle, bool blocked);
    uint32_t takeHandleLocked();
    void forget(uint32_t handle);
    // Watcher mode: leaves the link armed with nothing unapplied, so the next
    // record wakes the watcher. Called before every release of m_mutex that
    // follows link traffic.
    void settleLocked();
    void startWatcher();
    void watch();
    void nudgeWatcher();

    std::mutex m_mutex;
    std::unique_ptr<protocol::RecordLink> m_link;
    SignalFactory m_signals;
    std::unordered_map<uint32_t, KsockState> m_ksocks;
    // Handles are reused lowest first: a local daemon's readiness notes have
    // one byte per handle, in a page of fixed size.
    std::set<uint32_t> m_freeHandles;
    uint32_t m_nextHandle = 1;
    uint32_t m_nextCall = 1;
    std::vector<uint32_t> m_toSettle;         // Ksocks an unbind emptied during a call
    std::optional<protocol::Record> m_result; // the RESULT the current call waits for
    uint32_t m_awaitedCall = 0;
    bool m_broken = false;
    bool m_signalledBroken = false;
    std::thread m_watcher;
    int m_nudge = -1;        // eventfd: wakes the watcher (to settle, or to stop)
    bool m_stopping = false; // under m_mutex
};

} // namespace xkbus::frontend
