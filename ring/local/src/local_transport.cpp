// Local implementations of the transport seam (memfd pages, eventfd kicks,
// socket-EOF liveness) and the SCM_RIGHTS handshake that hands them over.
// Everything received from the peer is checked before use: descriptors must
// be what they claim, memfds sealed against shrinking (else a truncate would
// SIGBUS us mid-copy), eventfds non-blocking (else a kick could block us).
#include <cerrno>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <poll.h>
#include <string>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>
#include <xkbus/common/unique_fd.hpp>
#include <xkbus/ring/local/local_transport.hpp>

namespace xkbus::ring::local {
namespace {

using xkbus::UniqueFd;

constexpr uint32_t HANDSHAKE_MAGIC = 0x4c424b58; // "XKBL"
constexpr uint16_t HANDSHAKE_VERSION = 1;
constexpr size_t EVENT_FDS = 2; // [backend waits on, frontend waits on]
constexpr size_t MAX_FDS = EVENT_FDS + 2;
constexpr char DESCRIPTOR_TOKEN = 'D';
constexpr size_t MAX_MEMFD_PAGES = 1 + 2 * ((1u << abi::MAX_RING_ORDER) / abi::PAGE_SIZE);

struct Handshake {
    uint32_t magic;
    uint16_t version;
    uint16_t fdCount;
    GrantRef controlRef;
    uint32_t reserved;
};

// Local grant refs name (memfd index, page index) pairs.
constexpr GrantRef makeRef(uint32_t file, uint32_t page) noexcept {
    return file << 16 | page;
}

Errc errnoToErrc(int e) noexcept {
    switch (e) {
    case ENOMEM:
    case EMFILE:
    case ENFILE:
        return Errc::NO_MEMORY;
    case EPIPE:
    case ECONNRESET:
        return Errc::DISCONNECTED;
    case EAGAIN:
        return Errc::TRY_AGAIN;
    default:
        return Errc::INVALID;
    }
}

tl::unexpected<Errc> failErrno() noexcept {
    return fail(errnoToErrc(errno));
}

tl::unexpected<Errc> refuse(std::string_view* why, std::string_view reason,
                            Errc code = Errc::PROTOCOL_VIOLATION) noexcept {
    if (why != nullptr) {
        *why = reason;
    }
    return fail(code);
}

UniqueFd duplicate(int fd) noexcept {
    return UniqueFd(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
}

// One recvmsg (without waiting): the bytes into `buffer`, every descriptor
// that came with them into `fds`, owned. Returns what recvmsg returned.
ssize_t receiveWithFds(int socketFd, void* buffer, size_t length, std::vector<UniqueFd>& fds,
                       bool& truncated) {
    iovec io{buffer, length};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * MAX_FDS)] = {};
    msghdr msg{};
    msg.msg_iov = &io;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = 0;
    do {
        n = ::recvmsg(socketFd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); n >= 0 && c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
            continue;
        }
        for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); ++i) {
            int fd = -1;
            std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            fds.emplace_back(fd);
        }
    }
    truncated = n >= 0 && (msg.msg_flags & MSG_CTRUNC) != 0;
    return n;
}

class MemfdMapping final : public Mapping {
public:
    MemfdMapping(void* address, size_t length) noexcept : m_address(address), m_length(length) {}
    ~MemfdMapping() override { ::munmap(m_address, m_length); }
    MemfdMapping(const MemfdMapping&) = delete;
    MemfdMapping& operator=(const MemfdMapping&) = delete;
    std::span<std::byte> bytes() noexcept override {
        return {static_cast<std::byte*>(m_address), m_length};
    }

private:
    void* m_address;
    size_t m_length;
};

Result<std::unique_ptr<Mapping>> mapShared(int fd, size_t firstPage, size_t pages) {
    const size_t length = pages * abi::PAGE_SIZE;
    void* address = ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                           static_cast<off_t>(firstPage * abi::PAGE_SIZE));
    if (address == MAP_FAILED) {
        return failErrno();
    }
    return std::make_unique<MemfdMapping>(address, length);
}

// Shares by creating a sealed memfd per call; the handshake sends them all.
class MemfdSharer final : public PageSharer {
public:
    Result<SharedPages> share(uint32_t pageCount, const UnmapNotify*) override {
        // No kernel applies the notify here: the survivor's Liveness does.
        UniqueFd fd(::memfd_create("xkbus-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING));
        if (!fd.valid() ||
            ::ftruncate(fd.get(), static_cast<off_t>(pageCount * abi::PAGE_SIZE)) != 0 ||
            ::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
            return failErrno();
        }
        auto mapping = mapShared(fd.get(), 0, pageCount);
        if (!mapping) {
            return fail(mapping.error());
        }
        SharedPages shared{std::move(*mapping), {}};
        const auto file = static_cast<uint32_t>(m_memfds.size());
        for (uint32_t page = 0; page < pageCount; ++page) {
            shared.refs.push_back(makeRef(file, page));
        }
        m_memfds.push_back(std::move(fd));
        return shared;
    }
    const std::vector<UniqueFd>& memfds() const noexcept { return m_memfds; }

private:
    std::vector<UniqueFd> m_memfds;
};

// Maps pages of the memfds the peer sent, named by (memfd, page) refs.
class MemfdMapper final : public PageMapper {
public:
    explicit MemfdMapper(std::vector<UniqueFd> memfds) : m_memfds(std::move(memfds)) {}

    Result<std::unique_ptr<Mapping>> map(std::span<const GrantRef> refs,
                                         const UnmapNotify*) override {
        if (refs.empty()) {
            return fail(Errc::INVALID);
        }
        const uint32_t file = refs[0] >> 16;
        const uint32_t first = refs[0] & 0xffff;
        if (file >= m_memfds.size()) {
            return fail(Errc::PROTOCOL_VIOLATION);
        }
        for (size_t i = 0; i < refs.size(); ++i) {
            if (refs[i] != makeRef(file, first + static_cast<uint32_t>(i))) {
                return fail(Errc::PROTOCOL_VIOLATION); // must be consecutive pages of one memfd
            }
        }
        struct stat st {};
        if (::fstat(m_memfds[file].get(), &st) != 0) {
            return failErrno();
        }
        if (static_cast<size_t>(st.st_size) < (size_t{first} + refs.size()) * abi::PAGE_SIZE) {
            return fail(Errc::PROTOCOL_VIOLATION);
        }
        return mapShared(m_memfds[file].get(), first, refs.size());
    }

private:
    std::vector<UniqueFd> m_memfds;
};

Result<void> kick(int eventFd) {
    const uint64_t one = 1;
    if (::write(eventFd, &one, sizeof one) == sizeof one) {
        return {};
    }
    // EAGAIN: the counter is saturated, so a wakeup is pending anyway.
    return errno == EAGAIN ? Result<void>() : failErrno();
}

class EventfdChannel final : public EventChannel {
public:
    EventfdChannel(UniqueFd waitOn, UniqueFd kickPeer)
        : m_waitOn(std::move(waitOn)), m_kickPeer(std::move(kickPeer)) {}

    EventPort localPort() const noexcept override { return 0; }
    Result<void> notify() override { return kick(m_kickPeer.get()); }
    int pollFd() const noexcept override { return m_waitOn.get(); }

    Result<bool> wait(std::chrono::milliseconds timeout, int extraFd) override {
        pollfd fds[2] = {{m_waitOn.get(), POLLIN, 0}, {extraFd, POLLIN, 0}};
        const int count = ::poll(fds, extraFd >= 0 ? 2 : 1, static_cast<int>(timeout.count()));
        if (count < 0 && errno != EINTR) {
            return failErrno();
        }
        return acknowledge().map([&] { return count > 0 && fds[1].revents != 0; });
    }

    Result<void> acknowledge() override {
        uint64_t value = 0;
        if (::read(m_waitOn.get(), &value, sizeof value) < 0 && errno != EAGAIN) {
            return failErrno();
        }
        return {};
    }

private:
    UniqueFd m_waitOn;
    UniqueFd m_kickPeer;
};

// The socket stays open as long as the peer process lives (or a child it
// forked still holds it, as gntalloc also waits for the last mapping). On the
// frontend it also brings the descriptors the backend hands over (see
// sendDescriptor); the backend accepts nothing on it.
class SocketLiveness final : public Liveness {
public:
    SocketLiveness(UniqueFd socket, UniqueFd ownEvent, bool acceptDescriptors)
        : m_socket(std::move(socket)), m_ownEvent(std::move(ownEvent)),
          m_acceptDescriptors(acceptDescriptors) {}

    int pollFd() const noexcept override { return m_socket.get(); }

    Result<bool> peerDied() override {
        while (!m_dead) {
            UniqueFd received;
            const ssize_t n = receiveOne(received);
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                return false;
            }
            if (n == 1 && m_acceptDescriptors && received.valid()) {
                m_descriptors.push_back(std::move(received));
                continue;
            }
            // EOF, an error, or bytes the protocol never sends: the peer is
            // gone or no longer speaking it. Fire our own event as gntalloc would.
            m_dead = true;
            (void)kick(m_ownEvent.get());
        }
        return true;
    }

    int takeDescriptor() override {
        (void)peerDied(); // collects what has arrived
        if (m_descriptors.empty()) {
            return -1;
        }
        const int fd = m_descriptors.front().release();
        m_descriptors.pop_front();
        return fd;
    }

private:
    // One DESCRIPTOR_TOKEN byte with exactly one descriptor, or anything else.
    ssize_t receiveOne(UniqueFd& received) {
        char byte = 0;
        std::vector<UniqueFd> fds; // extra ones close when it goes
        bool truncated = false;
        const ssize_t n = receiveWithFds(m_socket.get(), &byte, 1, fds, truncated);
        const size_t count = fds.size();
        if (count > 0) {
            received = std::move(fds.front());
        }
        const bool wellFormed = n == 1 && byte == DESCRIPTOR_TOKEN && count == 1 && !truncated;
        if (n == 1 && !wellFormed) {
            received.reset();
            return 0; // counts as a broken peer
        }
        return n;
    }

    UniqueFd m_socket;
    UniqueFd m_ownEvent;
    bool m_acceptDescriptors;
    bool m_dead = false;
    std::deque<UniqueFd> m_descriptors;
};

Result<void> sendHandshake(int socketFd, GrantRef controlRef, const std::vector<int>& fds) {
    Handshake hello{HANDSHAKE_MAGIC, HANDSHAKE_VERSION, static_cast<uint16_t>(fds.size()),
                    controlRef, 0};
    iovec io{&hello, sizeof hello};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * MAX_FDS)] = {};
    msghdr msg{};
    msg.msg_iov = &io;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(cmsg), fds.data(), sizeof(int) * fds.size());
    ssize_t sent = 0;
    do {
        sent = ::sendmsg(socketFd, &msg, MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    if (sent != static_cast<ssize_t>(sizeof hello)) {
        return sent < 0 ? failErrno() : fail(Errc::DISCONNECTED);
    }
    return {};
}

bool isEventfd(int fd) {
    char target[64] = {};
    const std::string link = "/proc/self/fd/" + std::to_string(fd);
    const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
    return n > 0 && std::string_view(target, static_cast<size_t>(n)) == "anon_inode:[eventfd]";
}

bool isSealedMemfd(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        st.st_size % static_cast<off_t>(abi::PAGE_SIZE) != 0 ||
        static_cast<size_t>(st.st_size) > MAX_MEMFD_PAGES * abi::PAGE_SIZE) {
        return false;
    }
    const int seals = ::fcntl(fd, F_GET_SEALS);
    return seals >= 0 && (seals & F_SEAL_SHRINK) != 0;
}

// Reads the handshake and its descriptors; every received fd ends up owned.
Result<Handshake> receiveHandshake(int socketFd, std::vector<UniqueFd>& fds,
                                   std::string_view* why) {
    Handshake hello{};
    bool truncated = false;
    const ssize_t n = receiveWithFds(socketFd, &hello, sizeof hello, fds, truncated);
    if (n < 0) {
        return errno == EAGAIN ? fail(Errc::TRY_AGAIN) : failErrno();
    }
    if (n == 0) {
        return refuse(why, "frontend closed the socket before the handshake", Errc::DISCONNECTED);
    }
    if (truncated) {
        return refuse(why, "handshake carried too many descriptors");
    }
    if (n != sizeof hello || hello.magic != HANDSHAKE_MAGIC || hello.reserved != 0) {
        return refuse(why, "not an xkbus ring handshake");
    }
    if (hello.version != HANDSHAKE_VERSION) {
        return refuse(why, "unsupported local handshake version");
    }
    if (hello.fdCount != fds.size() || fds.size() < EVENT_FDS + 1) {
        return refuse(why, "handshake descriptor count is wrong");
    }
    return hello;
}

} // namespace

Result<Connection> connectFrontend(int socketFd, const FrontendOptions& options) {
    UniqueFd backendWaits(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    UniqueFd frontendWaits(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    UniqueFd socket = duplicate(socketFd);
    if (!backendWaits.valid() || !frontendWaits.valid() || !socket.valid()) {
        return failErrno();
    }
    Transport transport;
    transport.events = std::make_unique<EventfdChannel>(duplicate(frontendWaits.get()),
                                                        duplicate(backendWaits.get()));
    transport.liveness =
        std::make_unique<SocketLiveness>(std::move(socket), duplicate(frontendWaits.get()), true);
    MemfdSharer sharer;
    auto connection = openFrontend(sharer, std::move(transport), options);
    if (!connection) {
        return fail(connection.error());
    }
    std::vector<int> fds{backendWaits.get(), frontendWaits.get()};
    for (const auto& memfd : sharer.memfds()) {
        fds.push_back(memfd.get());
    }
    if (auto sent = sendHandshake(socketFd, connection->controlRef(), fds); !sent) {
        return fail(sent.error());
    }
    return connection;
}

Result<Connection> acceptBackend(int socketFd, const BackendOptions& options,
                                 std::string_view* why) {
    std::vector<UniqueFd> fds;
    auto hello = receiveHandshake(socketFd, fds, why);
    if (!hello) {
        return fail(hello.error());
    }
    for (size_t i = 0; i < EVENT_FDS; ++i) {
        // Non-blocking even if the peer made them blocking: a kick must never stall us.
        if (!isEventfd(fds[i].get()) || ::fcntl(fds[i].get(), F_SETFL, O_NONBLOCK) != 0) {
            return refuse(why, "handshake descriptor is not an eventfd");
        }
    }
    std::vector<UniqueFd> memfds;
    for (size_t i = EVENT_FDS; i < fds.size(); ++i) {
        if (!isSealedMemfd(fds[i].get())) {
            return refuse(why, "ring memory is not a sealed, page-sized memfd");
        }
        memfds.push_back(std::move(fds[i]));
    }
    UniqueFd socket = duplicate(socketFd);
    UniqueFd ownEvent = duplicate(fds[0].get());
    if (!socket.valid() || !ownEvent.valid()) {
        return failErrno();
    }
    Transport transport;
    transport.events = std::make_unique<EventfdChannel>(std::move(fds[0]), std::move(fds[1]));
    transport.liveness =
        std::make_unique<SocketLiveness>(std::move(socket), std::move(ownEvent), false);
    MemfdMapper mapper(std::move(memfds));
    return openBackend(mapper, std::move(transport), hello->controlRef, options, why);
}

Result<void> sendDescriptor(int socketFd, int fd) {
    const char token = DESCRIPTOR_TOKEN;
    iovec io{const_cast<char*>(&token), 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &io;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cmsg), &fd, sizeof fd);
    ssize_t sent = 0;
    do {
        sent = ::sendmsg(socketFd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (sent < 0 && errno == EINTR);
    if (sent != 1) {
        return sent < 0 ? failErrno() : fail(Errc::DISCONNECTED);
    }
    return {};
}

} // namespace xkbus::ring::local
