// DeviceTable: fd -> Device under one mutex, with a lock-free "certainly
// not" for the hot path of every read and write in the process.
#include "device_table.hpp"

#include <sys/stat.h>

namespace xkbus::device {

DeviceTable& DeviceTable::instance() {
    // Never destroyed: descriptors are still closed from atexit handlers.
    static auto* table = new DeviceTable;
    return *table;
}

bool DeviceTable::maybeDevice(int fd) const noexcept {
    if (fd < 0) {
        return false;
    }
    return fd >= FLAGGED_FDS || m_flags[fd] != 0;
}

void DeviceTable::setFlag(int fd, bool on) noexcept {
    if (fd >= 0 && fd < FLAGGED_FDS) {
        m_flags[fd] = on ? 1 : 0;
    }
}

std::shared_ptr<Device> DeviceTable::find(int fd) {
    std::lock_guard lock(m_mutex);
    auto it = m_entries.find(fd);
    if (it == m_entries.end()) {
        return nullptr;
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || st.st_dev != it->second.dev || st.st_ino != it->second.ino) {
        (void)removeLocked(fd); // closed without us: the Ksock stays with its other users
        return nullptr;
    }
    return it->second.device;
}

void DeviceTable::add(int fd, const std::shared_ptr<Device>& device) {
    struct stat st {};
    (void)::fstat(fd, &st);
    std::lock_guard lock(m_mutex);
    (void)removeLocked(fd);
    ++device->users;
    m_entries[fd] = Entry{device, st.st_dev, st.st_ino};
    setFlag(fd, true);
}

std::shared_ptr<Device> DeviceTable::remove(int fd) {
    std::lock_guard lock(m_mutex);
    return removeLocked(fd);
}

std::vector<int> DeviceTable::descriptors() {
    std::lock_guard lock(m_mutex);
    std::vector<int> fds;
    for (const auto& [fd, entry] : m_entries) {
        fds.push_back(fd);
    }
    return fds;
}

std::shared_ptr<Device> DeviceTable::removeLocked(int fd) {
    auto it = m_entries.find(fd);
    if (it == m_entries.end()) {
        return nullptr;
    }
    auto device = std::move(it->second.device);
    m_entries.erase(it);
    setFlag(fd, false);
    return --device->users == 0 ? device : nullptr;
}

void DeviceTable::lockForFork() {
    m_mutex.lock();
}

void DeviceTable::unlockAfterFork() {
    m_mutex.unlock();
}

} // namespace xkbus::device
