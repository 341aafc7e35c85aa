// The client side of a connection: calls, mirrors and pops. See connection.hpp.
#include <poll.h>
#include <sys/eventfd.h>
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

bool isReadable(int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0;
}

Result<void> errnoResult(const Record& result) {
    if (result.arg != 0) {
        return fail(static_cast<Errc>(result.arg));
    }
    return {};
}

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
        r.name.assign(name);
        auto result = m_connection->call(std::move(r));
        if (!result) {
            return fail(result.error());
        }
        if (auto ok = errnoResult(*result); !ok) {
            return fail(ok.error());
        }
        return static_cast<KsockId>(result->value);
    }

    Result<MsgId> send(const Message& msg) override {
        Record r = makeRecord(RecordType::SEND, m_handle);
        r.header = msg.header;
        r.name = msg.name;
        r.data = msg.data;
        auto result = m_connection->call(std::move(r));
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

    Result<std::vector<Result<MsgId>>> sendBatch(std::span<const Message> msgs) override {
        if (auto ok = checkBatch(msgs); !ok) {
            return fail(ok.error());
        }
        Record batch = makeRecord(RecordType::SEND_BATCH, m_handle);
        batch.value = msgs.size();
        Record one = makeRecord(RecordType::SEND, m_handle);
        for (const Message& m : msgs) {
            one.header = m.header;
            one.name = m.name;
            one.data = m.data;
            protocol::appendBatchEntry(one, batch.data);
        }
        auto result = m_connection->call(std::move(batch));
        if (!result) {
            return fail(result.error());
        }
        if (auto ok = errnoResult(*result); !ok) {
            return fail(ok.error());
        }
        auto outcomes = protocol::decodeBatchOutcomes(result->data, msgs.size());
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

    Result<uint64_t> control(Control what, uint64_t arg) override {
        auto result = m_connection->call(
            makeRecord(RecordType::CONTROL, m_handle, static_cast<uint32_t>(what), arg));
        if (!result) {
            return fail(result.error());
        }
        if (auto ok = errnoResult(*result); !ok) {
            return fail(ok.error());
        }
        return result->value;
    }

    Result<uint32_t> newBus() override {
        auto result = m_connection->call(makeRecord(RecordType::NEW_BUS, m_handle));
        if (!result) {
            return fail(result.error());
        }
        if (auto ok = errnoResult(*result); !ok) {
            return fail(ok.error());
        }
        return static_cast<uint32_t>(result->value);
    }

private:
    Result<void> nameCall(RecordType type, std::string_view name, bool replier) {
        Record r = makeRecord(type, m_handle, replier ? 1 : 0);
        r.name.assign(name);
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
};

Connection::Connection(std::unique_ptr<protocol::RecordLink> link, SignalFactory signals)
    : m_link(std::move(link)), m_signals(std::move(signals)) {}

Result<std::shared_ptr<Connection>> Connection::start(std::unique_ptr<protocol::RecordLink> link,
                                                      uint32_t pid, SignalFactory signals) {
    const bool watched = static_cast<bool>(signals);
    std::shared_ptr<Connection> c(new Connection(std::move(link), std::move(signals)));
    auto hello = c->call(makeRecord(RecordType::HELLO, 0, protocol::PROTOCOL_VERSION, pid));
    if (!hello) {
        return fail(hello.error());
    }
    if (auto ok = errnoResult(*hello); !ok) {
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

Result<std::unique_ptr<KsockChannel>> Connection::openKsock(uint32_t bus, bool writable) {
    uint32_t handle = 0;
    Result<Record> result;
    int daemonFd = -1;
    {
        // The fd is taken under the same lock as the call: another thread's
        // OPEN must not take the descriptor that came with ours.
        std::lock_guard lock(m_mutex);
        handle = m_nextHandle++;
        m_ksocks[handle];
        result = callLocked(
            makeRecord(RecordType::OPEN, handle, bus, writable ? protocol::OPEN_WRITABLE : 0));
        if (result && result->arg == 0) {
            daemonFd = m_link->takeReceivedFd();
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
        std::lock_guard lock(m_mutex);
        m_ksocks[handle].daemonFd = daemonFd;
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
    if (!result) {
        return fail(result.error());
    }
    if (auto ok = errnoResult(*result); !ok) {
        return fail(ok.error());
    }
    return std::string(reinterpret_cast<const char*>(result->data.data()), result->data.size());
}

Result<Record> Connection::call(Record r) {
    std::lock_guard lock(m_mutex);
    auto result = callLocked(std::move(r));
    settleLocked();
    return result;
}

Result<Record> Connection::callLocked(Record r) {
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
        if (!m_result) {
            if (auto waited = m_link->wait(-1); !waited) {
                m_broken = true;
                return fail(waited.error());
            }
        }
    }
    m_awaitedCall = 0;
    return *std::exchange(m_result, std::nullopt);
}

Result<void> Connection::sendLocked(const Record& r) {
    m_scratch.clear();
    protocol::encode(r, m_scratch);
    auto sent = m_link->send(m_scratch);
    if (!sent) {
        m_broken = true;
    }
    return sent;
}

Result<void> Connection::pumpLocked() {
    bool violated = false;
    auto received = m_link->receive([&](std::span<const std::byte> bytes) {
        // The daemon is trusted more than a client is, but its bytes are
        // still checked: a broken daemon must not corrupt the client.
        auto r = protocol::decode(bytes, protocol::Limits{MAX_NAME_LEN, ABSOLUTE_MAX_DATA});
        if (!r || protocol::isClientRecord(r->type)) {
            violated = true;
            return;
        }
        apply(*r);
    });
    if (!received || violated) {
        m_broken = true;
        return fail(received ? Errc::PROTOCOL_VIOLATION : received.error());
    }
    return {};
}

void Connection::apply(const Record& r) {
    if (r.type == RecordType::RESULT) {
        if (r.callId == m_awaitedCall) {
            m_result = r;
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
        Mirrored m{r.value, Message{r.header, r.name, r.data}};
        if (r.arg == 1) {
            k.mirror.push_front(std::move(m));
        } else {
            k.mirror.push_back(std::move(m));
        }
        if (k.signal) {
            k.signal->messageQueued();
        }
        break;
    }
    case RecordType::REMOVED:
        if (std::erase_if(k.mirror, [&](const Mirrored& m) { return m.copyId == r.value; }) > 0 &&
            k.signal) {
            k.signal->messageTaken();
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

Result<std::optional<Message>> Connection::nextMessageLocked(uint32_t handle) {
    if (auto pumped = pumpLocked(); !pumped) {
        return fail(pumped.error());
    }
    auto it = m_ksocks.find(handle);
    if (it == m_ksocks.end()) {
        return fail(Errc::INVALID);
    }
    KsockState& k = it->second;
    if (!k.mirror.empty()) {
        Mirrored m = std::move(k.mirror.front());
        k.mirror.pop_front();
        // Reported before the application sees it: if this process dies now,
        // the daemon still learns the request was popped (Ignored, not
        // GoneAway). One-way, even for the last copy: waiting for the daemon
        // to clear the fd cost a round trip per message. The fd may then read
        // readable until the next call reaches the daemon; a NEXT made for
        // that spurious wakeup is ordered after this pop, so it answers
        // "none" and the fd is exact again.
        auto reported = sendLocked(makeRecord(RecordType::POP, handle, 0, m.copyId));
        if (!reported) {
            return fail(reported.error());
        }
        if (k.signal) {
            k.signal->messageTaken();
        }
        return std::optional<Message>(std::move(m.msg));
    }
    // An fd the daemon keeps exact that is not readable means an empty queue.
    if (k.daemonFd >= 0 && !isReadable(k.daemonFd)) {
        return std::optional<Message>();
    }
    // The mirror may lag the daemon (copies not shipped yet): ask it.
    auto result = callLocked(makeRecord(RecordType::NEXT, handle));
    if (!result) {
        return fail(result.error());
    }
    if (auto ok = errnoResult(*result); !ok) {
        return fail(ok.error());
    }
    if (result->value == 0) {
        return std::optional<Message>();
    }
    auto& mirror = m_ksocks[handle].mirror;
    auto copy = std::find_if(mirror.begin(), mirror.end(),
                             [&](const Mirrored& m) { return m.copyId == result->value; });
    if (copy == mirror.end()) {
        m_broken = true; // the daemon named a copy it never shipped
        return fail(Errc::PROTOCOL_VIOLATION);
    }
    Message msg = std::move(copy->msg);
    mirror.erase(copy);
    if (m_ksocks[handle].signal) {
        m_ksocks[handle].signal->messageTaken();
    }
    return std::optional<Message>(std::move(msg));
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
    m_ksocks.erase(handle);
}

} // namespace xkbus::frontend
