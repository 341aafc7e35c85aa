// The process's open Ksocks, by the fd the C API handed out. Each Ksock has
// its own lock, so calls on different Ksocks do not wait for one another.
#pragma once

#include "message_reader.hpp"
#include "message_writer.hpp"

#include <memory>
#include <mutex>
#include <unordered_map>
#include <xkbus/common/result.hpp>
#include <xkbus/frontend/ksock_channel.hpp>

namespace xkbus::frontend {

struct OpenKsock {
    std::mutex mutex; // held for every call on this Ksock
    std::unique_ptr<KsockChannel> channel;
    uint32_t bus = 0;
    bool canRead = true;
    bool canWrite = true;
    MessageWriter writer;
    MessageReader reader;
    // An ALL_OR_WAIT send returned EAGAIN and its fd has not been seen
    // writable since: writes get EALREADY (the bus still holds the message).
    bool sendBlocked = false;
    MsgId blockedId;
    // Opened before this process was forked: the Ksock is the parent's, and
    // so is the connection it travels on. Using it from the child would take
    // the parent's records off their shared ring, so the child may only
    // close it (which lets go without closing it for the parent).
    bool inherited = false;
};

class KsockRegistry {
public:
    static KsockRegistry& instance();

    // Registers the channel under its fd; TOO_MANY-like errors as errno.
    Result<int> add(std::unique_ptr<KsockChannel> channel, uint32_t bus, bool canRead,
                    bool canWrite);
    std::shared_ptr<OpenKsock> find(int fd) const;
    // Unregisters; the channel closes when the last call using it returns.
    std::shared_ptr<OpenKsock> remove(int fd);

private:
    KsockRegistry();
    static void lockForFork();
    static void unlockInParent();
    static void unlockInChild();

    mutable std::mutex m_mutex;
    std::unordered_map<int, std::shared_ptr<OpenKsock>> m_ksocks;
};

} // namespace xkbus::frontend
