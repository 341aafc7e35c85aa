// Which of the process's descriptors are open /dev/kbusN devices, and the
// Ksock behind each. The application holds its own descriptor (a duplicate
// of the Ksock's pollable one), so poll, select and epoll work on it as they
// are; dup, dup2 and fcntl add descriptors for the same Ksock, which closes
// when the last of them does.
#pragma once

#include <csignal>
#include <memory>
#include <mutex>
#include <sys/types.h>
#include <unordered_map>
#include <vector>

namespace xkbus::device {

struct Device {
    int ksock = -1; // the C API's Ksock (the library's own descriptor)
    uint32_t bus = 0;
    int users = 0; // the application's descriptors for it
};

class DeviceTable {
public:
    static DeviceTable& instance();

    // False when fd is surely not a device: no lock is taken, so read() and
    // write() stay safe to call from a signal handler on other descriptors.
    bool maybeDevice(int fd) const noexcept;
    // The device fd is, if it still is that device (a descriptor closed
    // behind this library's back, by fclose for one, is forgotten).
    std::shared_ptr<Device> find(int fd);
    // fd is now one of the application's descriptors for `device`.
    void add(int fd, const std::shared_ptr<Device>& device);
    // fd is no longer one; returns the device if it was its last.
    std::shared_ptr<Device> remove(int fd);
    // The application's device descriptors, for closing ranges of them.
    std::vector<int> descriptors();
    // Around fork() (pthread_atfork): the table is locked across it, so the
    // child gets it in a consistent state.
    void lockForFork();
    void unlockAfterFork();

private:
    struct Entry {
        std::shared_ptr<Device> device;
        dev_t dev = 0; // which file the descriptor was, to notice reuse
        ino_t ino = 0;
    };
    std::shared_ptr<Device> removeLocked(int fd);
    void setFlag(int fd, bool on) noexcept;

    static constexpr int FLAGGED_FDS = 65536; // above: always the locked path
    std::mutex m_mutex;
    std::unordered_map<int, Entry> m_entries;
    // Written under m_mutex, read without it (see maybeDevice): a signal
    // handler's write() must never wait for a lock its own thread holds.
    volatile sig_atomic_t m_flags[FLAGGED_FDS] = {};
};

} // namespace xkbus::device
