// Local implementations of the transport seam (memfd pages, an eventfd and
// the handshake socket for kicks, socket-EOF liveness) and the SCM_RIGHTS
// handshake that hands them over. Everything received from the peer is
// checked before use: descriptors must be what they claim, memfds sealed
// against shrinking (else a truncate would SIGBUS us mid-copy).
#include <cerrno>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <string>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <vector>
#include <xkbus/common/unique_fd.hpp>
#include <xkbus/ring/local/local_transport.hpp>

namespace xkbus::ring::local {
namespace {

using xkbus::UniqueFd;

constexpr uint32_t HANDSHAKE_MAGIC = 0x4c424b58; // "XKBL"
constexpr uint16_t HANDSHAKE_VERSION = 2;
constexpr size_t EVENT_FDS = 1; // the eventfd the backend waits on
constexpr size_t MAX_FDS = EVENT_FDS + 2;
// What the backend writes on the socket: a kick, or a descriptor (one per byte).
constexpr char KICK_TOKEN = 'K';
constexpr char DESCRIPTOR_TOKEN = 'D';
// Descriptors one recvmsg may bring (each comes with its own DESCRIPTOR_TOKEN).
constexpr size_t MAX_FDS_PER_READ = 16;
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
                       bool& truncated, bool block = false) {
    iovec io{buffer, length};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * MAX_FDS_PER_READ)] = {};
    msghdr msg{};
    msg.msg_iov = &io;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = 0;
    do {
        n = ::recvmsg(socketFd, &msg, (block ? 0 : MSG_DONTWAIT) | MSG_CMSG_CLOEXEC);
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

Result<void> sendToken(int socketFd, char token) {
    ssize_t sent = 0;
    do {
        sent = ::send(socketFd, &token, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    if (sent == 1 || (sent < 0 && errno == EAGAIN)) {
        return {}; // EAGAIN: kicks are queued unread, so the peer will look anyway
    }
    return sent < 0 ? failErrno() : fail(Errc::DISCONNECTED);
}

// The frontend's end of the handshake socket, after the handshake: the
// backend writes kicks and hands descriptors over on it, and its EOF is the
// backend's death. One stream for all three, so that one blocking read is a
// whole wait (no poll, no separate drain).
class FrontendSocket {
public:
    explicit FrontendSocket(UniqueFd socket) : m_socket(std::move(socket)) {}

    int fd() const noexcept { return m_socket.get(); }
    bool dead() const noexcept { return m_dead; }

    // Reads what the backend wrote: blocking until something comes, or not.
    // A byte that is neither token, or a token without its descriptor, means
    // the peer no longer speaks the protocol: it counts as dead.
    void read(bool block) {
        while (!m_dead) {
            char bytes[64];
            std::vector<UniqueFd> fds;
            bool truncated = false;
            const ssize_t n =
                receiveWithFds(m_socket.get(), bytes, sizeof bytes, fds, truncated, block);
            if (n < 0 && errno == EAGAIN) {
                return;
            }
            if (n <= 0 || truncated || !take(std::span(bytes, static_cast<size_t>(n)), fds)) {
                m_dead = true;
                return;
            }
            if (block) {
                return; // woken; the caller looks at the ring now
            }
        }
    }

    int takeDescriptor() {
        read(false);
        if (m_descriptors.empty()) {
            return -1;
        }
        const int fd = m_descriptors.front().release();
        m_descriptors.pop_front();
        return fd;
    }

private:
    bool take(std::span<const char> bytes, std::vector<UniqueFd>& fds) {
        size_t next = 0;
        for (char b : bytes) {
            if (b == DESCRIPTOR_TOKEN && next < fds.size()) {
                m_descriptors.push_back(std::move(fds[next++]));
            } else if (b != KICK_TOKEN) {
                return false;
            }
        }
        return next == fds.size();
    }

    UniqueFd m_socket;
    bool m_dead = false;
    std::deque<UniqueFd> m_descriptors;
};

// Frontend: kicks the backend's eventfd; waits on the socket.
class FrontendChannel final : public EventChannel {
public:
    FrontendChannel(std::shared_ptr<FrontendSocket> socket, UniqueFd kickBackend)
        : m_socket(std::move(socket)), m_kickBackend(std::move(kickBackend)) {}

    EventPort localPort() const noexcept override { return 0; }
    Result<void> notify() override { return kick(m_kickBackend.get()); }
    int pollFd() const noexcept override { return m_socket->fd(); }

    Result<bool> wait(std::chrono::milliseconds timeout, int extraFd) override {
        if (timeout.count() < 0 && extraFd < 0) {
            m_socket->read(true); // the common wait: one system call
            return false;
        }
        pollfd fds[2] = {{m_socket->fd(), POLLIN, 0}, {extraFd, POLLIN, 0}};
        const int count = ::poll(fds, extraFd >= 0 ? 2 : 1, static_cast<int>(timeout.count()));
        if (count < 0 && errno != EINTR) {
            return failErrno();
        }
        if (count > 0 && fds[0].revents != 0) {
            m_socket->read(false);
        }
        return count > 0 && extraFd >= 0 && fds[1].revents != 0;
    }

    Result<void> acknowledge() override {
        m_socket->read(false);
        return {};
    }

private:
    std::shared_ptr<FrontendSocket> m_socket;
    UniqueFd m_kickBackend;
};

class FrontendLiveness final : public Liveness {
public:
    explicit FrontendLiveness(std::shared_ptr<FrontendSocket> socket)
        : m_socket(std::move(socket)) {}
    int pollFd() const noexcept override { return m_socket->fd(); }
    // The channel reads the socket as it waits; this only looks.
    Result<bool> peerDied() override { return m_socket->dead(); }
    int takeDescriptor() override { return m_socket->takeDescriptor(); }

private:
    std::shared_ptr<FrontendSocket> m_socket;
};

// Backend: the frontend kicks an eventfd, which the backend's event loop
// watches edge-triggered and never reads (a read per wakeup was a system
// call per wakeup); the backend kicks by a byte on the socket.
class BackendChannel final : public EventChannel {
public:
    BackendChannel(UniqueFd waitOn, UniqueFd socket)
        : m_waitOn(std::move(waitOn)), m_socket(std::move(socket)) {}

    EventPort localPort() const noexcept override { return 0; }
    Result<void> notify() override { return sendToken(m_socket.get(), KICK_TOKEN); }
    int pollFd() const noexcept override { return m_waitOn.get(); }
    bool edgeTriggered() const noexcept override { return true; }

    // For a backend that blocks (tests; the daemon uses its event loop):
    // the socket's EOF, which the connection then reads as death, ends it too.
    Result<bool> wait(std::chrono::milliseconds timeout, int extraFd) override {
        pollfd fds[3] = {
            {m_waitOn.get(), POLLIN, 0}, {m_socket.get(), POLLIN, 0}, {extraFd, POLLIN, 0}};
        const int count = ::poll(fds, extraFd >= 0 ? 3 : 2, static_cast<int>(timeout.count()));
        if (count < 0 && errno != EINTR) {
            return failErrno();
        }
        return acknowledge().map([&] { return count > 0 && extraFd >= 0 && fds[2].revents != 0; });
    }

    // Only wait() needs the counter reset; the event loop never reads it.
    Result<void> acknowledge() override {
        uint64_t value = 0;
        if (::read(m_waitOn.get(), &value, sizeof value) < 0 && errno != EAGAIN) {
            return failErrno();
        }
        return {};
    }

private:
    UniqueFd m_waitOn;
    UniqueFd m_socket;
};

// The socket stays open as long as the frontend process lives (or a child it
// forked still holds it, as gntalloc also waits for the last mapping). The
// frontend never writes on it: any byte, like EOF, is its death.
class BackendLiveness final : public Liveness {
public:
    explicit BackendLiveness(UniqueFd socket) : m_socket(std::move(socket)) {}

    int pollFd() const noexcept override { return m_socket.get(); }

    Result<bool> peerDied() override {
        if (!m_dead) {
            char byte = 0;
            ssize_t n = 0;
            do {
                n = ::recv(m_socket.get(), &byte, 1, MSG_DONTWAIT);
            } while (n < 0 && errno == EINTR);
            m_dead = !(n < 0 && errno == EAGAIN);
        }
        return m_dead;
    }

private:
    UniqueFd m_socket;
    bool m_dead = false;
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

// A semaphore-mode eventfd gives one wakeup per read instead of all of
// them: whoever reads it (a blocking backend's wait) would spin through its
// counter. Kernels before 6.6 do not say; there nothing reads it in the daemon.
bool isSemaphoreEventfd(int fd) {
    const std::string path = "/proc/self/fdinfo/" + std::to_string(fd);
    UniqueFd info(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    char text[512] = {};
    const ssize_t n = info ? ::read(info.get(), text, sizeof text - 1) : -1;
    if (n <= 0) {
        return false;
    }
    const std::string_view view(text, static_cast<size_t>(n));
    return view.find("eventfd-semaphore:\t1") != std::string_view::npos ||
           view.find("eventfd-semaphore: 1") != std::string_view::npos;
}

// Only shmem (tmpfs) pages: reading a hole punched in them gives zeroes,
// where a hugetlbfs memfd with a punched hole SIGBUSes whoever touches it.
bool isShmem(int fd) {
    struct statfs fs {};
    return ::fstatfs(fd, &fs) == 0 && static_cast<unsigned long>(fs.f_type) == TMPFS_MAGIC;
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
    if (hello.fdCount != fds.size() || fds.size() < EVENT_FDS + 1 || fds.size() > MAX_FDS) {
        return refuse(why, "handshake descriptor count is wrong");
    }
    return hello;
}

} // namespace

Result<Connection> connectFrontend(int socketFd, const FrontendOptions& options) {
    UniqueFd backendWaits(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    UniqueFd socket = duplicate(socketFd);
    if (!backendWaits.valid() || !socket.valid()) {
        return failErrno();
    }
    // A wait is one blocking read of the socket; every other read says
    // MSG_DONTWAIT itself.
    const int flags = ::fcntl(socket.get(), F_GETFL);
    if (flags < 0 || ::fcntl(socket.get(), F_SETFL, flags & ~O_NONBLOCK) != 0) {
        return failErrno();
    }
    auto shared = std::make_shared<FrontendSocket>(std::move(socket));
    Transport transport;
    transport.events = std::make_unique<FrontendChannel>(shared, duplicate(backendWaits.get()));
    transport.liveness = std::make_unique<FrontendLiveness>(shared);
    MemfdSharer sharer;
    auto connection = openFrontend(sharer, std::move(transport), options);
    if (!connection) {
        return fail(connection.error());
    }
    std::vector<int> fds{backendWaits.get()};
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
    // The daemon never reads it, so its blocking mode cannot stall the loop.
    if (!isEventfd(fds[0].get())) {
        return refuse(why, "handshake descriptor is not an eventfd");
    }
    if (isSemaphoreEventfd(fds[0].get())) {
        return refuse(why, "handshake eventfd is in semaphore mode");
    }
    std::vector<UniqueFd> memfds;
    for (size_t i = EVENT_FDS; i < fds.size(); ++i) {
        if (!isSealedMemfd(fds[i].get())) {
            return refuse(why, "ring memory is not a sealed, page-sized memfd");
        }
        if (!isShmem(fds[i].get())) {
            return refuse(why, "ring memory is not a tmpfs/shmem memfd (hugetlbfs refused)");
        }
        memfds.push_back(std::move(fds[i]));
    }
    UniqueFd kickSocket = duplicate(socketFd);
    UniqueFd liveSocket = duplicate(socketFd);
    if (!kickSocket.valid() || !liveSocket.valid()) {
        return failErrno();
    }
    Transport transport;
    transport.events = std::make_unique<BackendChannel>(std::move(fds[0]), std::move(kickSocket));
    transport.liveness = std::make_unique<BackendLiveness>(std::move(liveSocket));
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
