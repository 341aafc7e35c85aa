// What the KBUS kernel module did for each file operation on /dev/kbusN,
// done through the libkbus C API. Each returns what the system call returns
// (-1 with errno on failure).
#pragma once

#include <cstddef>
#include <cstdint>
#include <sys/types.h>

namespace xkbus::device {

struct Device;

// open("/dev/kbus<bus>", flags): the application's descriptor for a new Ksock.
int openDevice(uint32_t bus, int flags);
// open("/proc/kbus/<which>"): a read-only snapshot of the text, as a memfd.
int openProcFile(const char* which, int flags);

ssize_t deviceRead(const Device& d, void* buf, size_t count);
ssize_t deviceWrite(const Device& d, const void* buf, size_t count);
int deviceIoctl(const Device& d, unsigned long request, void* arg);

} // namespace xkbus::device
