// KsockRegistry: fd -> OpenKsock under one mutex, held only for the lookup.
#include "ksock_registry.hpp"

#include <pthread.h>

namespace xkbus::frontend {

KsockRegistry& KsockRegistry::instance() {
    // Never destroyed: Ksocks may still be used from atexit handlers.
    static auto* registry = new KsockRegistry;
    return *registry;
}

KsockRegistry::KsockRegistry() {
    ::pthread_atfork(lockForFork, unlockInParent, unlockInChild);
}

// The table is locked across fork(), so the child's copy is consistent.
void KsockRegistry::lockForFork() {
    instance().m_mutex.lock();
}

void KsockRegistry::unlockInParent() {
    instance().m_mutex.unlock();
}

void KsockRegistry::unlockInChild() {
    KsockRegistry& r = instance();
    for (auto& [fd, ksock] : r.m_ksocks) {
        ksock->inherited = true; // no other thread exists here to race with
    }
    r.m_mutex.unlock();
}

Result<int> KsockRegistry::add(std::unique_ptr<KsockChannel> channel, uint32_t bus, bool canRead,
                               bool canWrite) {
    const int fd = channel->fd();
    if (fd < 0) {
        return fail(Errc::NOT_SUPPORTED); // a channel without a pollable fd
    }
    auto ksock = std::make_shared<OpenKsock>();
    ksock->channel = std::move(channel);
    ksock->bus = bus;
    ksock->canRead = canRead;
    ksock->canWrite = canWrite;
    std::lock_guard lock(m_mutex);
    if (!m_ksocks.emplace(fd, std::move(ksock)).second) {
        return fail(Errc::INVALID); // two channels claim one fd: a channel bug
    }
    return fd;
}

std::shared_ptr<OpenKsock> KsockRegistry::find(int fd) const {
    std::lock_guard lock(m_mutex);
    auto it = m_ksocks.find(fd);
    return it == m_ksocks.end() ? nullptr : it->second;
}

std::shared_ptr<OpenKsock> KsockRegistry::remove(int fd) {
    std::lock_guard lock(m_mutex);
    auto it = m_ksocks.find(fd);
    if (it == m_ksocks.end()) {
        return nullptr;
    }
    auto ksock = std::move(it->second);
    m_ksocks.erase(it);
    return ksock;
}

} // namespace xkbus::frontend
