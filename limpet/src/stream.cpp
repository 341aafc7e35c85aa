// Plain and TLS streams, and the socket set-up for a Limpet link.
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <xkbus/limpet/stream.hpp>

namespace xkbus::limpet {
namespace {

// Room for strangers while the Limpet takes them in; it moves each to its
// own pending place as soon as it can.
constexpr int LISTEN_BACKLOG = 64;

class PlainStream final : public Stream {
public:
    explicit PlainStream(UniqueFd fd) : m_fd(std::move(fd)) {}
    int fd() const noexcept override { return m_fd.get(); }
    Result<bool> handshake() override { return true; }
    Result<size_t> read(std::span<std::byte> into) override {
        const ssize_t n = ::recv(m_fd.get(), into.data(), into.size(), 0);
        if (n > 0) {
            return static_cast<size_t>(n);
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            return size_t{0};
        }
        return fail(Errc::DISCONNECTED);
    }
    Result<size_t> write(std::span<const std::byte> bytes) override {
        const ssize_t n = ::send(m_fd.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n >= 0) {
            return static_cast<size_t>(n);
        }
        if (errno == EAGAIN || errno == EINTR) {
            return size_t{0};
        }
        return fail(Errc::DISCONNECTED);
    }
    bool wantsWrite() const noexcept override { return false; }

private:
    UniqueFd m_fd;
};

class TlsStream final : public Stream {
public:
    TlsStream(UniqueFd fd, SSL* ssl) : m_fd(std::move(fd)), m_ssl(ssl) {}
    ~TlsStream() override { SSL_free(m_ssl); }
    TlsStream(const TlsStream&) = delete;
    TlsStream& operator=(const TlsStream&) = delete;
    int fd() const noexcept override { return m_fd.get(); }

    Result<bool> handshake() override {
        ERR_clear_error();
        const int rc = SSL_do_handshake(m_ssl);
        if (rc == 1) {
            m_wantWrite = false;
            return true;
        }
        return wouldBlock(rc) ? Result<bool>(false) : fail(Errc::PERMISSION_DENIED);
    }
    Result<size_t> read(std::span<std::byte> into) override {
        ERR_clear_error();
        size_t n = 0;
        const int rc = SSL_read_ex(m_ssl, into.data(), into.size(), &n);
        if (rc == 1) {
            m_wantWrite = false;
            return n;
        }
        return wouldBlock(rc) ? Result<size_t>(0) : fail(Errc::DISCONNECTED);
    }
    Result<size_t> write(std::span<const std::byte> bytes) override {
        ERR_clear_error();
        size_t n = 0;
        const int rc = SSL_write_ex(m_ssl, bytes.data(), bytes.size(), &n);
        if (rc == 1) {
            m_wantWrite = false;
            return n;
        }
        return wouldBlock(rc) ? Result<size_t>(0) : fail(Errc::DISCONNECTED);
    }
    bool wantsWrite() const noexcept override { return m_wantWrite; }

private:
    bool wouldBlock(int rc) {
        const int err = SSL_get_error(m_ssl, rc);
        m_wantWrite = err == SSL_ERROR_WANT_WRITE;
        return err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE;
    }

    UniqueFd m_fd;
    SSL* m_ssl;
    bool m_wantWrite = false;
};

std::string sslErrors() {
    std::string out;
    while (const unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        out += out.empty() ? "" : "; ";
        out += buf;
    }
    return out.empty() ? "unknown TLS error" : out;
}

Result<void> nonBlocking(int fd) {
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        return fail(Errc::INVALID);
    }
    return {};
}

struct Address {
    bool unix = false;
    std::string path; // unix
    std::string host; // tcp
    std::string port;
};

Result<Address> parse(const std::string& address) {
    Address a;
    if (address.starts_with("unix:")) {
        a.unix = true;
        a.path = address.substr(5);
        return a.path.empty() || a.path.size() >= sizeof(sockaddr_un{}.sun_path)
                   ? Result<Address>(fail(Errc::INVALID))
                   : Result<Address>(a);
    }
    const auto colon = address.rfind(':');
    if (!address.starts_with("tcp:") || colon == std::string::npos || colon < 4) {
        return fail(Errc::INVALID);
    }
    a.host = address.substr(4, colon - 4);
    a.port = address.substr(colon + 1);
    return a;
}

sockaddr_un unixAddress(const std::string& path) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, path.data(), path.size());
    return sa;
}

Result<UniqueFd> listenUnix(const std::string& path) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    const sockaddr_un sa = unixAddress(path);
    ::unlink(path.c_str());
    if (!fd || ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0 ||
        ::listen(fd.get(), LISTEN_BACKLOG) != 0) {
        return fail(Errc::INVALID);
    }
    return fd;
}

Result<UniqueFd> listenTcp(const Address& a) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    addrinfo* res = nullptr;
    if (::getaddrinfo(a.host.empty() ? nullptr : a.host.c_str(), a.port.c_str(), &hints, &res) !=
        0) {
        return fail(Errc::INVALID);
    }
    Result<UniqueFd> out = fail(Errc::DISCONNECTED);
    for (addrinfo* ai = res; ai != nullptr && !out; ai = ai->ai_next) {
        UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
        const int one = 1;
        if (!fd) {
            continue;
        }
        ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) == 0 &&
            ::listen(fd.get(), LISTEN_BACKLOG) == 0) {
            // Accepted sockets inherit it.
            ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            out = std::move(fd);
        }
    }
    ::freeaddrinfo(res);
    if (out && !nonBlocking(out->get())) {
        return fail(Errc::INVALID);
    }
    return out;
}

} // namespace

std::unique_ptr<Stream> plainStream(UniqueFd fd) {
    return std::make_unique<PlainStream>(std::move(fd));
}

Result<std::shared_ptr<TlsContext>> TlsContext::make(const TlsFiles& files, bool server,
                                                     std::string& error) {
    std::shared_ptr<TlsContext> c(new TlsContext());
    c->m_server = server;
    c->m_peerName = files.peerName;
    c->m_ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (c->m_ctx == nullptr || SSL_CTX_set_min_proto_version(c->m_ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_use_certificate_chain_file(c->m_ctx, files.cert.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(c->m_ctx, files.key.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(c->m_ctx) != 1 ||
        SSL_CTX_load_verify_locations(c->m_ctx, files.ca.c_str(), nullptr) != 1) {
        error = "TLS set-up failed: " + sslErrors();
        return fail(Errc::INVALID);
    }
    SSL_CTX_set_verify(c->m_ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    SSL_CTX_set_mode(c->m_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return c;
}

TlsContext::~TlsContext() {
    SSL_CTX_free(m_ctx);
}

Result<std::unique_ptr<Stream>> TlsContext::wrap(UniqueFd fd, std::string& error) const {
    SSL* ssl = SSL_new(m_ctx);
    if (ssl == nullptr || SSL_set_fd(ssl, fd.get()) != 1 ||
        (!m_peerName.empty() && SSL_set1_host(ssl, m_peerName.c_str()) != 1)) {
        error = "TLS session failed: " + sslErrors();
        SSL_free(ssl);
        return fail(Errc::INVALID);
    }
    if (m_server) {
        SSL_set_accept_state(ssl);
    } else {
        SSL_set_connect_state(ssl);
    }
    return std::unique_ptr<Stream>(std::make_unique<TlsStream>(std::move(fd), ssl));
}

Result<UniqueFd> listenOn(const std::string& address) {
    auto a = parse(address);
    if (!a) {
        return fail(a.error());
    }
    return a->unix ? listenUnix(a->path) : listenTcp(*a);
}

Result<UniqueFd> acceptFrom(int listener) {
    UniqueFd fd(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!fd) {
        return fail(Errc::TRY_AGAIN);
    }
    return fd;
}

Result<std::unique_ptr<Connector>> Connector::start(const std::string& address) {
    auto a = parse(address);
    if (!a) {
        return fail(a.error());
    }
    std::unique_ptr<Connector> c(new Connector());
    if (a->unix) {
        const sockaddr_un sa = unixAddress(a->path);
        const auto* bytes = reinterpret_cast<const std::byte*>(&sa);
        c->m_targets.push_back({AF_UNIX, {bytes, bytes + sizeof sa}});
    } else {
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* res = nullptr;
        if (::getaddrinfo(a->host.c_str(), a->port.c_str(), &hints, &res) != 0) {
            return fail(Errc::INVALID);
        }
        for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
            const auto* bytes = reinterpret_cast<const std::byte*>(ai->ai_addr);
            c->m_targets.push_back({ai->ai_family, {bytes, bytes + ai->ai_addrlen}});
        }
        ::freeaddrinfo(res);
    }
    c->next();
    if (!c->m_fd) {
        return fail(Errc::DISCONNECTED);
    }
    return c;
}

// Starts on the next address that takes a connect at all.
void Connector::next() {
    m_fd.reset();
    m_connected = false;
    while (!m_fd && m_next < m_targets.size()) {
        const Target& t = m_targets[m_next++];
        UniqueFd fd(::socket(t.family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
        if (!fd) {
            continue;
        }
        const auto* sa = reinterpret_cast<const sockaddr*>(t.address.data());
        const auto len = static_cast<socklen_t>(t.address.size());
        if (::connect(fd.get(), sa, len) == 0) {
            m_connected = true;
        } else if (errno != EINPROGRESS) {
            continue; // refused at once (or a full Unix backlog): the next one
        }
        m_fd = std::move(fd);
    }
}

Result<UniqueFd> Connector::finish() {
    while (m_fd) {
        if (!m_connected) {
            pollfd p{m_fd.get(), POLLOUT, 0};
            if (::poll(&p, 1, 0) != 1) {
                return fail(Errc::TRY_AGAIN);
            }
            int error = 0;
            socklen_t len = sizeof error;
            if (::getsockopt(m_fd.get(), SOL_SOCKET, SO_ERROR, &error, &len) != 0 || error != 0) {
                next();
                continue;
            }
        }
        const int one = 1;
        ::setsockopt(m_fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); // fails on Unix
        return std::move(m_fd);
    }
    return fail(Errc::DISCONNECTED);
}

} // namespace xkbus::limpet
