// The byte stream under a Limpet link: a plain socket (tests, Unix sockets)
// or TLS 1.3 with both ends authenticated by certificates (OpenSSL).
// Non-blocking throughout: the driver polls fd().
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>
#include <xkbus/common/result.hpp>
#include <xkbus/common/unique_fd.hpp>

struct ssl_ctx_st;

namespace xkbus::limpet {

class Stream {
public:
    virtual ~Stream() = default;
    virtual int fd() const noexcept = 0;
    // Moves the handshake on; true once it is done. An error ends the stream.
    virtual Result<bool> handshake() = 0;
    // Bytes read, 0 if none are ready; DISCONNECTED at end of stream.
    virtual Result<size_t> read(std::span<std::byte> into) = 0;
    // Bytes taken, 0 if the stream cannot take any now.
    virtual Result<size_t> write(std::span<const std::byte> bytes) = 0;
    // The stream needs the fd writable to make progress (TLS).
    virtual bool wantsWrite() const noexcept = 0;
};

std::unique_ptr<Stream> plainStream(UniqueFd fd);

struct TlsFiles {
    std::string cert;     // this Limpet's certificate (PEM)
    std::string key;      // its private key (PEM)
    std::string ca;       // the CA that must have signed the peer's certificate (PEM)
    std::string peerName; // if set, the peer's certificate must name it
};

// An OpenSSL context: our certificate and key, the CA the peer's
// certificate must chain to, TLS 1.3 only, the peer's certificate required.
class TlsContext {
public:
    static Result<std::shared_ptr<TlsContext>> make(const TlsFiles& files, bool server,
                                                    std::string& error);
    ~TlsContext();
    TlsContext(const TlsContext&) = delete;
    TlsContext& operator=(const TlsContext&) = delete;
    Result<std::unique_ptr<Stream>> wrap(UniqueFd fd, std::string& error) const;

private:
    TlsContext() = default;
    ssl_ctx_st* m_ctx = nullptr;
    bool m_server = false;
    std::string m_peerName;
};

// "unix:/path" or "tcp:host:port". Non-blocking fds.
Result<UniqueFd> listenOn(const std::string& address);
Result<UniqueFd> acceptFrom(int listener);

// A connection being made without blocking, so that a peer host that does
// not answer never keeps the Limpet from its bus: each address the name
// resolves to is tried in turn. (The name lookup itself may block: give an
// IP address to avoid it.)
class Connector {
public:
    static Result<std::unique_ptr<Connector>> start(const std::string& address);
    int fd() const noexcept { return m_fd.get(); }
    // Poll fd() for POLLOUT. The connected socket once it is made, TRY_AGAIN
    // while an attempt is under way, DISCONNECTED once every address failed.
    Result<UniqueFd> finish();

private:
    struct Target {
        int family = 0;
        std::vector<std::byte> address; // a sockaddr of that family
    };
    Connector() = default;
    void next();

    std::vector<Target> m_targets;
    size_t m_next = 0;
    UniqueFd m_fd;
    bool m_connected = false;
};

} // namespace xkbus::limpet
