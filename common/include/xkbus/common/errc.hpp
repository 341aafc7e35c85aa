// Error codes used across every xkbus module boundary. Each value is the Linux
// errno that KBUS gives for the same condition, so the C API can return -errno
// without a translation table. The names say what went wrong in bus terms.
#pragma once

#include <cerrno>
#include <string_view>

// <netdb.h> defines TRY_AGAIN (an h_errno value nothing here uses) as a macro,
// which would turn Errc::TRY_AGAIN into a number.
#ifdef TRY_AGAIN
#undef TRY_AGAIN
#endif

namespace xkbus {

enum class Errc : int {
    INVALID = EINVAL,                  // malformed request or message
    BAD_NAME = EBADMSG,                // bad message name, or a wildcard used to send
    NAME_TOO_LONG = ENAMETOOLONG,      // name longer than 1000 bytes
    REPLIER_EXISTS = EADDRINUSE,       // a replier is already bound to that exact name
    NO_RECIPIENT = EADDRNOTAVAIL,      // request with no replier, or reply to a gone sender
    REPLY_NOT_EXPECTED = ECONNREFUSED, // nobody is waiting for a reply with that id
    WRONG_REPLIER = EPIPE,             // stateful request: the replier has changed
    QUEUE_FULL = EBUSY,                // a recipient that must get the message has no room
    TRY_AGAIN = EAGAIN,                // ALL_OR_WAIT: still sending; or bind event undeliverable
    STILL_SENDING = EALREADY,          // a previous ALL_OR_WAIT send has not finished
    NO_REPLY_SLOT = ENOLCK,            // sender has no room left for the reply to a request
    NOTHING_TO_SEND = ENOMSG,          // SEND with no message written
    MESSAGE_TOO_BIG = EMSGSIZE,        // over the bus's maximum message size
    NO_SUCH_DEVICE = ENOENT,           // no such bus
    NOT_OPEN_FOR_WRITE = EBADF,        // a read-only Ksock tried to send
    NO_MEMORY = ENOMEM,                // a quota or an allocation ran out
    TOO_MANY = EMFILE,                 // too many Ksocks, bindings or buses
    PROTOCOL_VIOLATION = EPROTO,       // a peer broke the wire protocol
    NOT_SUPPORTED = EOPNOTSUPP,        // not available in this build or mode
    TIMED_OUT = ETIMEDOUT,             // a wait ran out of time
    DISCONNECTED = ECONNRESET,         // the other end went away
    PERMISSION_DENIED = EPERM,         // the caller may not do that
    // Reaching the daemon (an xkbus addition: KBUS opened a device file).
    NO_DAEMON = EHOSTDOWN,   // nothing listens at the daemon's socket path
    ACCESS_DENIED = EACCES,  // the socket, or a folder on its path, is not ours to open
    NOT_A_SOCKET = ENOTSOCK, // the socket path names a file of another kind
};

constexpr int toErrno(Errc e) noexcept {
    return static_cast<int>(e);
}

// A short, stable description for logs and CLI output.
inline std::string_view describe(Errc e) noexcept {
    switch (e) {
    case Errc::INVALID:
        return "invalid argument";
    case Errc::BAD_NAME:
        return "bad message name";
    case Errc::NAME_TOO_LONG:
        return "name too long (a message name, or the daemon's socket path)";
    case Errc::REPLIER_EXISTS:
        return "a replier is already bound to that name";
    case Errc::NO_RECIPIENT:
        return "no replier, or the request's sender is gone";
    case Errc::REPLY_NOT_EXPECTED:
        return "no reply with that id is expected";
    case Errc::WRONG_REPLIER:
        return "that Ksock is no longer the replier";
    case Errc::QUEUE_FULL:
        return "a recipient's queue is full";
    case Errc::TRY_AGAIN:
        return "try again: a recipient's queue is full";
    case Errc::STILL_SENDING:
        return "a previous send has not finished";
    case Errc::NO_REPLY_SLOT:
        return "no room left in the sender's queue for the reply";
    case Errc::NOTHING_TO_SEND:
        return "no message to send";
    case Errc::MESSAGE_TOO_BIG:
        return "message too big";
    case Errc::NO_SUCH_DEVICE:
        return "no such bus";
    case Errc::NOT_OPEN_FOR_WRITE:
        return "Ksock is not open for writing";
    case Errc::NO_MEMORY:
        return "out of memory or over quota";
    case Errc::TOO_MANY:
        return "too many";
    case Errc::PROTOCOL_VIOLATION:
        return "protocol violation";
    case Errc::NOT_SUPPORTED:
        return "not supported";
    case Errc::TIMED_OUT:
        return "timed out";
    case Errc::DISCONNECTED:
        return "disconnected";
    case Errc::PERMISSION_DENIED:
        return "permission denied";
    case Errc::NO_DAEMON:
        return "no xkbusd is listening at the socket path";
    case Errc::ACCESS_DENIED:
        return "permission denied on the daemon's socket";
    case Errc::NOT_A_SOCKET:
        return "the daemon's socket path is not a socket";
    }
    return "unknown error";
}

} // namespace xkbus
