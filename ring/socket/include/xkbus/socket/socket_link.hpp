// A RecordLink over a Unix stream socket: each record is a little-endian u32
// length and the bytes. It can carry a file descriptor with a record
// (SCM_RIGHTS). Non-blocking: send() buffers what the socket will not take,
// up to a bound; the owner flushes when the socket turns writable.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>
#include <xkbus/common/unique_fd.hpp>
#include <xkbus/protocol/record_link.hpp>

namespace xkbus::socket {

using xkbus::UniqueFd;

struct SocketLinkLimits {
    uint32_t maxRecord = 512 * 1024;          // a record larger than this is a violation
    size_t maxBufferedOut = 64 * 1024 * 1024; // past this the peer is not reading: give up on it
    bool blockingSend = false; // a client waits for its records to leave; the daemon never does
    // Bytes one receive() reads at most, so a peer that never stops writing
    // cannot hold the daemon's loop; the rest waits for the next wakeup.
    size_t maxReadPerReceive = 1024 * 1024;
};

class SocketLink final : public protocol::RecordLink {
public:
    explicit SocketLink(UniqueFd fd, SocketLinkLimits limits = {});
    static Result<std::unique_ptr<SocketLink>> connectTo(const std::string& path,
                                                         SocketLinkLimits limits = {});

    Result<void> send(std::span<const std::byte> record) override;
    // Sends `record` with `fd` attached (the receiver gets a duplicate).
    Result<void> sendWithFd(std::span<const std::byte> record, int fd);
    Result<size_t> receive(const std::function<void(std::span<const std::byte>)>& deliver) override;
    Result<void> wait(int timeoutMs) override;

    // The oldest descriptor received and not yet taken. Descriptors come in
    // the order they were sent; the protocol says which records carry one.
    int takeReceivedFd() override;
    // Writes buffered output; true when nothing is left.
    Result<bool> flush();
    bool hasPendingOutput() const noexcept { return !m_out.empty(); }
    int fd() const noexcept { return m_fd.get(); }
    // Waits until all buffered output is written (a client's blocking send).
    Result<void> flushBlocking();

private:
    struct Chunk {
        std::vector<std::byte> bytes;
        size_t written = 0;
        int fd = -1; // sent with the chunk's first byte, then closed here
    };
    Result<void> readAvailable();

    UniqueFd m_fd;
    SocketLinkLimits m_limits;
    std::deque<Chunk> m_out;
    size_t m_outBytes = 0;
    std::vector<std::byte> m_in;
    std::deque<UniqueFd> m_inFds; // descriptors received, in order
    bool m_eof = false;
};

// Listens on a Unix socket path (removing a stale socket file first).
Result<UniqueFd> listenOn(const std::string& path);
// Connects to a listening Unix socket (non-blocking, close-on-exec);
// NO_SUCH_DEVICE if nothing listens there.
Result<UniqueFd> connectUnix(const std::string& path);
// Accepts one connection, non-blocking, close-on-exec; also reports the
// peer's pid from SO_PEERCRED.
Result<UniqueFd> acceptFrom(int listener, uint32_t& peerPid);

} // namespace xkbus::socket
