// The client side of a connection: calls, mirrors, pops and the readiness of
// the Ksock fds a local daemon keeps. See connection.hpp, and
// docs/architecture.md for why each step is where it is.
#include "client_spin.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <xkbus/frontend/connection.hpp>

namespace xkbus::frontend {

using protocol::Record;
using protocol::RecordType;

namespace {

Record makeRecord(RecordType type, uint32_t handle = 0, uint32_t arg = 0, uint64_t value = 0) {
    Record r;
    r.type = type;
    r.handle = handle;
    r.arg = arg;
    r.value = value;
    return r;
}

Record sendRecord(uint32_t handle, const Message& msg) {
    Record r = makeRecord(RecordType::SEND, handle);
    r.header = msg.header;
    r.body = msg.body;
    return r;
}

Result<void> errnoResult(const Record& result) {
    if (result.arg != 0) {
        return fail(static_cast<Errc>(result.arg));
    }
    return {};
}

template <class T>
Result<T> valueOf(const Result<Record>& result) {
    if (!result) {
        return fail(result.error());
    }
    if (auto ok = errnoResult(*result); !ok) {
        return fail(ok.error());
    }
    return static_cast<T>(result->value);
}

// Takes the one readiness packet the daemon left on a Ksock's fd, if any.
void takeReadinessPacket(int fd) {
    char token = 0;
    while (::recv(fd, &token, 1, MSG_DONTWAIT) < 0 && errno == EINTR) {
    }
}

const protocol::Limits DAEMON_LIMITS{MAX_NAME_LEN, ABSOLUTE_MAX_DATA};

} // namespace

// A Ksock reached through a Connection.
class ConnectedKsock final : public KsockChannel {
public:
    // ownsFd: the fd came from the daemon and is this Ksock's to close.
    ConnectedKsock(std::shared_ptr<Connection> connection, uint32_t handle, KsockId id, int fd,
                   bool ownsFd)
        : m_connection(std::move(connection)), m_handle(handle), m_id(id), m_fd(fd),
          m_ownsFd(ownsFd) {}

    ~ConnectedKsock() override {
        (void)m_connection->call(makeRecord(RecordType::CLOSE, m_handle));
        m_connection->forget(m_handle);
        if (m_ownsFd) {
            ::close(m_fd);
        }
    }
    ConnectedKsock(const ConnectedKsock&) = delete;
    ConnectedKsock& operator=(const ConnectedKsock&) = delete;

    int fd() const noexcept override { return m_fd; }
    KsockId id() const noexcept override { return m_id; }

    Result<void> bind(std::string_view name, bool replier) override {
        return nameCall(RecordType::BIND, name, replier);
    }
    Result<void> unbind(std::string_view name, bool replier) override {
        return nameCall(RecordType::UNBIND, name, replier);
    }

    Result<KsockId> findReplier(std::string_view name) override {
        Record r = makeRecord(RecordType::FIND_REPLIER, m_handle);
        r.body = MessageBody::copyOf(name, {});
        return valueOf<KsockId>(m_connection->call(std::move(r)));
    }

    Result<MsgId> send(const Message& msg) override {
        return finishSend(m_connection->call(sendRecord(m_handle, msg)));
    }

    Result<MsgId> sendRequest(const Message& msg) override {
        if (!m_ownsFd) {
            return send(msg); // no daemon-kept fd to wake us for the reply
        }
        Record r = sendRecord(m_handle, msg);
        r.arg = protocol::SEND_QUIET_SUCCESS;
        return finishSend(m_connection->call(std::move(r), m_fd));
    }

    Result<std::vector<Result<MsgId>>> sendBatch(std::span<const Message> msgs) override {
        if (auto ok = checkBatch(msgs); !ok) {
            return fail(ok.error());
        }
        std::vector<std::byte> entries;
        for (const Message& m : msgs) {
            protocol::appendBatchEntry(sendRecord(m_handle, m), entries);
        }
        Record batch = makeRecord(RecordType::SEND_BATCH, m_handle, 0, msgs.size());
        batch.body = MessageBody::copyOf({}, entries);
        auto result = m_connection->call(std::move(batch));
        if (auto ok = valueOf<uint64_t>(result); !ok) {
            return fail(ok.error());
        }
        auto outcomes = protocol::decodeBatchOutcomes(result->body.data(), msgs.size());
        if (!outcomes) {
            return fail(outcomes.error());
        }
        std::vector<Result<MsgId>> sent;
        for (const auto& o : *outcomes) {
            if (o.error == EAGAIN) {
                m_connection->markSending(m_handle, true);
            }
            sent.push_back(o.error == 0 ? Result<MsgId>(protocol::unpackMsgId(o.id))
                                        : fail(static_cast<Errc>(o.error)));
        }
        return sent;
    }

    Result<void> discard() override {
        auto result = m_connection->call(makeRecord(RecordType::DISCARD, m_handle));
        if (!result) {
            return fail(result.error());
        }
        m_connection->markSending(m_handle, false);
        return errnoResult(*result);
    }

    Result<std::optional<Message>> nextMessage() override {
        return m_connection->nextMessage(m_handle);
    }

    // Spinning here, not only for a call's RESULT, is what lets a reader that
    // keeps up with its sender skip the sleep and the wakeup per message.
    bool awaitMessageBriefly() override {
        return m_receiveSpin.until([this] { return m_connection->messageMayBeWaiting(m_handle); });
    }

    Result<uint64_t> control(Control what, uint64_t arg) override {
        return valueOf<uint64_t>(m_connection->call(
            makeRecord(RecordType::CONTROL, m_handle, static_cast<uint32_t>(what), arg)));
    }

    Result<uint32_t> newBus() override {
        return valueOf<uint32_t>(m_connection->call(makeRecord(RecordType::NEW_BUS, m_handle)));
    }

private:
    Result<MsgId> finishSend(const Result<Record>& result) {
        if (!result) {
            return fail(result.error());
        }
        if (static_cast<Errc>(result->arg) == Errc::TRY_AGAIN) {
            m_connection->markSending(m_handle, true);
        }
        if (auto ok = errnoResult(*result); !ok) {
            return fail(ok.error());
        }
        return protocol::unpackMsgId(result->value);
    }

    Result<void> nameCall(RecordType type, std::string_view name, bool replier) {
        Record r = makeRecord(type, m_handle, replier ? 1 : 0);
        r.body = MessageBody::copyOf(name, {});
        auto result = m_connection->call(std::move(r));
        if (!result) {
            return fail(result.error());
        }
        return errnoResult(*result);
    }

    std::shared_ptr<Connection> m_connection;
    uint32_t m_handle;
    KsockId m_id;
    int m_fd;
    bool m_ownsFd;
    ring::AdaptiveSpin m_receiveSpin{clientSpin()};
};

Connection::Connection(std::unique_ptr<protocol::RecordLink> link, SignalFactory signals)
    : m_link(std::move(link)), m_signals(std::move(signals)) {}

Result<std::shared_ptr<Connection>> Connection::start(std::unique_ptr<protocol::RecordLink> link,
                                                      uint32_t pid, SignalFactory signals) {
    const bool watched = static_cast<bool>(signals);
    std::shared_ptr<Connection> c(new Connection(std::move(link), std::move(signals)));
    auto hello = c->call(makeRecord(RecordType::HELLO, watched ? protocol::HELLO_RING_WOKEN : 0,
                                    protocol::PROTOCOL_VERSION, pid));
    if (auto ok = valueOf<uint64_t>(hello); !ok) {
        return fail(ok.error());
    }
    if (watched) {
        c->startWatcher();
    }
    return c;
}

Connection::~Connection() {
    if (m_watcher.joinable()) {
        {
            std::lock_guard lock(m_mutex);
            m_stopping = true;
        }
        nudgeWatcher();
        m_watcher.join();
    }
    if (m_nudge >= 0) {
        ::close(m_nudge);
    }
}

void Connection::startWatcher() {
    m_nudge = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (m_nudge >= 0) {
        m_watcher = std::thread([this] { watch(); });
    }
}

void Connection::nudgeWatcher() {
    const uint64_t one = 1;
    (void)!::write(m_nudge, &one, sizeof one);
}

// Sleeps on the link's wakeup descriptors while no caller holds the lock,
// then applies what arrived: the Ksocks' signals follow their mirrors.
void Connection::watch() {
    std::vector<pollfd> fds;
    for (int fd : m_link->wakeFds()) { // fixed for the link's lifetime
        fds.push_back(pollfd{fd, POLLIN, 0});
    }
    fds.push_back(pollfd{m_nudge, POLLIN, 0});
    for (;;) {
        if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) {
            return;
        }
        uint64_t drained = 0;
        (void)!::read(m_nudge, &drained, sizeof drained);
        std::lock_guard lock(m_mutex);
        if (m_stopping) {
            return;
        }
        if (!m_broken && (!m_link->acknowledgeWakeup() || !pumpLocked())) {
            m_broken = true;
        }
        settleLocked();
        if (m_broken) {
            return; // every fd has been made readable; callers now see the error
        }
    }
}

void Connection::settleLocked() {
    if (!m_watcher.joinable()) {
        return;
    }
    for (int round = 0; round < 64 && !m_broken; ++round) {
        auto armed = m_link->armWakeup();
        if (!armed || (*armed && !pumpLocked())) {
            m_broken = true;
        } else if (!*armed) {
            return;
        }
    }
    if (!m_broken) {
        nudgeWatcher(); // still busy: let the watcher carry on
        return;
    }
    if (!std::exchange(m_signalledBroken, true)) {
        // Wake anyone polling a Ksock, so they call in and hear DISCONNECTED.
        for (auto& [handle, k] : m_ksocks) {
            if (k.signal) {
                k.signal->messageQueued();
            }
        }
    }
}

uint32_t Connection::takeHandleLocked() {
    if (!m_freeHandles.empty()) {
        const uint32_t handle = *m_freeHandles.begin();
        m_freeHandles.erase(m_freeHandles.begin());
        return handle;
    }
    return m_nextHandle++;
}

Result<std::unique_ptr<KsockChannel>> Connection::openKsock(uint32_t bus, bool writable) {
    uint32_t handle = 0;
    Result<Record> result;
    int daemonFd = -1;
    {
        // The fd is taken under the same lock as the call: another thread's
        // OPEN must not take the descriptor that came with ours.
        std::lock_guard lock(m_mutex);
        handle = takeHandleLocked();
        m_ksocks[handle];
        // The fd starts empty: the daemon's first copy for it makes it readable.
        m_link->noteEmptied(handle, 0);
        result = callLocked(
            makeRecord(RecordType::OPEN, handle, bus, writable ? protocol::OPEN_WRITABLE : 0));
        if (result && result->arg == 0) {
            // Before anything else is applied: a copy may follow at once.
            daemonFd = m_link->takeReceivedFd();
            m_ksocks[handle].daemonFd = daemonFd;
        }
        settleLocked();
    }
    if (!result || result->arg != 0) {
        forget(handle);
        return fail(result ? static_cast<Errc>(result->arg) : result.error());
    }
    const auto id = static_cast<KsockId>(result->value);
    // A local daemon sends the Ksock's pollable fd with the answer and keeps
    // it in step itself; otherwise this library keeps a signal of its own.
    if (daemonFd >= 0) {
        return std::unique_ptr<KsockChannel>(
            std::make_unique<ConnectedKsock>(shared_from_this(), handle, id, daemonFd, true));
    }
    std::unique_ptr<ReadinessSignal> signal = m_signals ? m_signals() : nullptr;
    const int fd = signal ? signal->fd() : -1;
    {
        std::lock_guard lock(m_mutex);
        m_ksocks[handle].signal = std::move(signal);
    }
    return std::unique_ptr<KsockChannel>(
        std::make_unique<ConnectedKsock>(shared_from_this(), handle, id, fd, false));
}

Result<std::string> Connection::introspect(uint32_t bus, protocol::Introspect what) {
    auto result = call(makeRecord(RecordType::INTROSPECT, 0, static_cast<uint32_t>(what), bus));
    if (auto ok = valueOf<uint64_t>(result); !ok) {
        return fail(ok.error());
    }
    const auto data = result->body.data();
    return std::string(reinterpret_cast<const char*>(data.data()), data.size());
}

Result<Record> Connection::call(Record r, int alsoWakeOn) {
    std::lock_guard lock(m_mutex);
    auto result = callLocked(std::move(r), alsoWakeOn);
    for (uint32_t handle : std::exchange(m_toSettle, {})) {
        if (m_ksocks.contains(handle) && m_ksocks[handle].mirror.empty()) {
            settleFdLocked(handle);
        }
    }
    settleLocked();
    return result;
}

Result<Record> Connection::callLocked(Record r, int alsoWakeOn) {
    if (m_broken) {
        return fail(Errc::DISCONNECTED);
    }
    r.callId = m_nextCall++;
    if (m_nextCall == 0) {
        m_nextCall = 1;
    }
    if (auto sent = sendLocked(r); !sent) {
        return fail(sent.error());
    }
    m_awaitedCall = r.callId;
    m_result.reset();
    while (!m_result) {
        if (auto pumped = pumpLocked(); !pumped) {
            return fail(pumped.error());
        }
        if (m_result) {
            break;
        }
        auto waited = m_link->wait(-1, alsoWakeOn);
        if (!waited) {
            m_broken = true;
            return fail(waited.error());
        }
        if (*waited) {
            // The fd woke us; if the RESULT is not in yet, it waits in the
            // daemon's backlog, and the daemon kicks when it writes it.
            alsoWakeOn = -1;
        }
    }
    m_awaitedCall = 0;
    return *std::exchange(m_result, std::nullopt);
}

Result<void> Connection::sendLocked(const Record& r, bool lazy) {
    auto sent = m_link->send(r, lazy);
    if (!sent) {
        m_broken = true;
    }
    return sent;
}

Result<void> Connection::pumpLocked() {
    bool violated = false;
    auto received = m_link->receive(
        [&](Record&& r) {
            // The daemon is trusted more than a client is, but its bytes are
            // still checked: a broken daemon must not corrupt the client.
            if (protocol::isClientRecord(r.type)) {
                violated = true;
                return;
            }
            apply(std::move(r));
        },
        DAEMON_LIMITS);
    if (!received || violated) {
        m_broken = true;
        return fail(received ? Errc::PROTOCOL_VIOLATION : received.error());
    }
    return {};
}

void Connection::apply(Record&& r) {
    if (r.type == RecordType::RESULT) {
        if (r.callId == m_awaitedCall) {
            m_result = std::move(r);
        }
        return;
    }
    auto it = m_ksocks.find(r.handle);
    if (it == m_ksocks.end()) {
        return; // a Ksock this process has just closed
    }
    KsockState& k = it->second;
    switch (r.type) {
    case RecordType::PUSHED: {
        Mirrored m{r.value, protocol::messageOf(r)};
        if ((r.arg & protocol::PUSHED_AT_HEAD) != 0) {
            k.mirror.push_front(std::move(m));
        } else {
            k.mirror.push_back(std::move(m));
        }
        k.reportPops = (r.arg & protocol::PUSHED_REPORT_POPS) != 0;
        ++k.pushesSeen;
        k.fdReadable = k.daemonFd >= 0; // the daemon made it so before it wrote this
        if (k.signal) {
            k.signal->messageQueued();
        }
        break;
    }
    case RecordType::REMOVED:
        if (std::erase_if(k.mirror, [&](const Mirrored& m) { return m.copyId == r.value; }) > 0) {
            if (k.signal) {
                k.signal->messageTaken();
            }
            if (k.mirror.empty() && k.fdReadable) {
                m_toSettle.push_back(r.handle); // once the call that caused it is over
            }
        }
        break;
    case RecordType::SEND_FINISHED:
        k.sending = false;
        if (k.signal) {
            k.signal->setSending(false);
        }
        break;
    default:
        break;
    }
}

Result<std::optional<Message>> Connection::nextMessage(uint32_t handle) {
    std::lock_guard lock(m_mutex);
    auto next = nextMessageLocked(handle);
    settleLocked();
    return next;
}

bool Connection::messageMayBeWaiting(uint32_t handle) {
    std::lock_guard lock(m_mutex);
    if (m_broken || m_link->recordsWaiting()) {
        return true;
    }
    // Another thread's call may have applied our copy already.
    auto it = m_ksocks.find(handle);
    return it != m_ksocks.end() && !it->second.mirror.empty();
}

Result<std::optional<Message>> Connection::nextMessageLocked(uint32_t handle) {
    // Looked at before the ring: once the daemon says it holds nothing back,
    // everything it had for us is already in the ring.
    const bool backlogged = m_link->backlogged();
    if (auto pumped = pumpLocked(); !pumped) {
        return fail(pumped.error());
    }
    auto it = m_ksocks.find(handle);
    if (it == m_ksocks.end()) {
        return fail(Errc::INVALID);
    }
    if (!it->second.mirror.empty()) {
        return popMirroredLocked(handle, it->second);
    }
    if (m_broken) {
        // The daemon is gone: what it sent has been read, and nothing more
        // will come. "Nothing yet" would keep a reader waiting for ever.
        return fail(Errc::DISCONNECTED);
    }
    if (!backlogged) {
        // Nothing mirrored, nothing in the ring, nothing held back: the queue
        // is empty as of now, and the fd says so too (settleFdLocked).
        return std::optional<Message>();
    }
    // The daemon holds records back (our ring was full): ask it to pop for
    // us; its answer comes after the copy's PUSHED record.
    auto result = callLocked(makeRecord(RecordType::NEXT, handle));
    if (auto ok = valueOf<uint64_t>(result); !ok) {
        return fail(ok.error());
    }
    KsockState& k = m_ksocks[handle];
    if (result->value == 0) {
        k.fdReadable = k.daemonFd >= 0; // it may be, for a copy since popped
        settleFdLocked(handle);
        return std::optional<Message>();
    }
    auto copy = std::find_if(k.mirror.begin(), k.mirror.end(),
                             [&](const Mirrored& m) { return m.copyId == result->value; });
    if (copy == k.mirror.end()) {
        m_broken = true; // the daemon named a copy it never shipped
        return fail(Errc::PROTOCOL_VIOLATION);
    }
    Message msg = std::move(copy->msg);
    k.mirror.erase(copy);
    if (k.signal) {
        k.signal->messageTaken();
    }
    if (k.mirror.empty()) {
        settleFdLocked(handle);
    }
    return std::optional<Message>(std::move(msg));
}

Result<std::optional<Message>> Connection::popMirroredLocked(uint32_t handle, KsockState& k) {
    Mirrored m = std::move(k.mirror.front());
    k.mirror.pop_front();
    // Written to the ring before the application sees the message: if this
    // process dies now, the daemon still reads that the request was popped
    // (Ignored, not GoneAway). The daemon reads it when it next looks at
    // the ring, unless it asked for pops promptly (the queue is filling).
    auto reported = sendLocked(makeRecord(RecordType::POP, handle, 0, m.copyId), !k.reportPops);
    if (!reported) {
        return fail(reported.error());
    }
    if (k.signal) {
        k.signal->messageTaken();
    }
    if (k.mirror.empty()) {
        settleFdLocked(handle);
    }
    return std::optional<Message>(std::move(m.msg));
}

// The mirror of `handle` is empty: make its daemon-kept fd unreadable, unless
// a copy for it is already on its way. The daemon only ever makes the fd
// readable; we empty it, and leave a readiness note (how many copies we had
// seen) so that the daemon's next copy makes it readable again, and a copy we
// have already taken does not. Note first, look at the ring second; the
// daemon writes the copy first and takes the note second. Whichever comes
// last sees the other, so a copy is never left behind an unreadable fd.
// The note we replace says whether the fd holds a packet: our last note, if
// the daemon never took it, left none (tests/ring/readiness_note_model_test
// checks every interleaving).
void Connection::settleFdLocked(uint32_t handle) {
    auto it = m_ksocks.find(handle);
    if (it == m_ksocks.end() || !it->second.fdReadable) {
        return;
    }
    const uint16_t seen = it->second.pushesSeen;
    const bool holdsPacket = m_link->noteEmptied(handle, seen);
    if (m_link->recordsWaiting() && pumpLocked() && !m_ksocks[handle].mirror.empty()) {
        // A copy arrived: the fd must stay readable. With no packet on it,
        // the daemon takes our note for the copy (if it has not already).
        // Else, if the daemon has not taken our note, take it back; if it
        // has, it adds a packet for the copy, and one of the two goes.
        if (!holdsPacket || m_link->retractNote(handle, seen)) {
            m_ksocks[handle].fdReadable = true;
            return;
        }
    }
    KsockState& k = m_ksocks[handle];
    if (holdsPacket) {
        takeReadinessPacket(k.daemonFd);
    }
    k.fdReadable = !k.mirror.empty();
}

void Connection::markSending(uint32_t handle, bool blocked) {
    std::lock_guard lock(m_mutex);
    auto it = m_ksocks.find(handle);
    if (it != m_ksocks.end() && it->second.sending != blocked) {
        it->second.sending = blocked;
        if (it->second.signal) {
            it->second.signal->setSending(blocked);
        }
    }
}

void Connection::forget(uint32_t handle) {
    std::lock_guard lock(m_mutex);
    if (m_ksocks.erase(handle) > 0) {
        m_freeHandles.insert(handle);
    }
}

} // namespace xkbus::frontend
