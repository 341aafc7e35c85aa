// The libkbus Ksock functions: each finds the Ksock by fd, locks it, and turns
// the channel's Result into libkbus's return convention (0 or -errno unless
// the function's comment says otherwise).
#include "channel_factory_internal.hpp"
#include "kbus_internal.hpp"
#include "ksock_registry.hpp"

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <poll.h>
#include <string_view>
#include <unordered_map>
#include <xkbus/kbus.h>

namespace xkbus::frontend {

namespace {

using Control = protocol::Control;

int negative(Errc e) noexcept {
    return -toErrno(e);
}

// libkbus returned -errno and left errno as the failing ioctl set it, and
// KBUS programs print strerror(errno): a failure sets errno to match the
// result; a success leaves the caller's errno as it was.
template <class Call>
auto withErrno(Call&& call) -> decltype(call()) {
    const int saved = errno;
    const auto rv = call();
    errno = rv < 0 ? static_cast<int>(-rv) : saved;
    return rv;
}

int outcome(const Result<void>& r) noexcept {
    return r ? 0 : negative(r.error());
}

// Runs `call` on the locked Ksock `fd`, or gives -EBADF if it is not one.
template <class Call>
auto withKsock(kbus_ksock_t fd, Call&& call) -> decltype(call(std::declval<OpenKsock&>())) {
    auto ksock = KsockRegistry::instance().find(fd);
    if (!ksock || ksock->inherited) {
        return -EBADF; // not a Ksock, or the parent's (OpenKsock::inherited)
    }
    std::lock_guard lock(ksock->mutex);
    return call(*ksock);
}

// A query or setting whose answer goes to *out; returns 0 or -errno.
int controlInto(kbus_ksock_t fd, Control what, uint32_t* out, bool outIsInput) {
    if (out == nullptr) {
        return -EFAULT;
    }
    return withKsock(fd, [&](OpenKsock& k) {
        auto answer = k.channel->control(what, outIsInput ? *out : 0);
        if (!answer) {
            return negative(answer.error());
        }
        *out = static_cast<uint32_t>(*answer);
        return 0;
    });
}

// The 0 / 1 / 0xFFFFFFFF switches: the previous state, or -errno.
int switchSetting(kbus_ksock_t fd, Control what, uint32_t request) {
    if (request != 0 && request != 1 && request != 0xFFFFFFFF) {
        return -EINVAL;
    }
    return withKsock(fd, [&](OpenKsock& k) {
        auto previous = k.channel->control(what, request);
        return previous ? static_cast<int>(*previous != 0) : negative(previous.error());
    });
}

// The blocked ALL_OR_WAIT send is over once the Ksock's fd is writable again
// (the channel keeps it so: KsockChannel::fd()).
bool stillBlocked(OpenKsock& k) {
    if (!k.sendBlocked) {
        return false;
    }
    pollfd p{k.channel->fd(), POLLOUT, 0};
    if (::poll(&p, 1, 0) == 1 && (p.revents & POLLOUT) != 0) {
        k.sendBlocked = false;
    }
    return k.sendBlocked;
}

// The last MAXMSGSIZE this process heard of for each bus. A write is refused
// only once the bus has confirmed the limit, so a stale value can at worst
// let a message through to SEND, where the bus refuses it itself.
class SizeLimits {
public:
    static SizeLimits& instance() {
        static auto* limits = new SizeLimits; // Ksocks may be used from atexit
        return *limits;
    }
    uint32_t get(uint32_t bus) const {
        std::lock_guard lock(m_mutex);
        auto it = m_limits.find(bus);
        return it == m_limits.end() ? DEFAULT_MAX_MESSAGE_SIZE : it->second;
    }
    void set(uint32_t bus, uint32_t limit) {
        std::lock_guard lock(m_mutex);
        m_limits[bus] = limit;
    }

private:
    mutable std::mutex m_mutex;
    std::unordered_map<uint32_t, uint32_t> m_limits;
};

void refreshSizeLimit(OpenKsock& k) {
    if (auto current = k.channel->control(Control::MAX_MESSAGE_SIZE, 0)) {
        SizeLimits::instance().set(k.bus, static_cast<uint32_t>(*current));
    }
}

// KBUS refused a message over MAXMSGSIZE when its header was written.
bool fitsOnBus(OpenKsock& k, uint64_t entireLength) {
    if (entireLength <= SizeLimits::instance().get(k.bus)) {
        return true;
    }
    refreshSizeLimit(k);
    return entireLength <= SizeLimits::instance().get(k.bus);
}

kbus_msg_id_t toC(MsgId id) noexcept {
    return kbus_msg_id_t{id.networkId, id.serialNum};
}

Result<MsgId> lastSent(OpenKsock& k) {
    return k.channel->control(Control::LAST_SENT, 0).map(protocol::unpackMsgId);
}

// A caller's message, entire or pointy, copied and checked as write() and
// SEND would (a positive errno if it is not a well-formed message).
tl::expected<Message, int> copyMessage(const kbus_message_t* msg) {
    if (msg == nullptr) {
        return tl::unexpected(EFAULT);
    }
    MessageWriter writer;
    const auto* bytes = reinterpret_cast<const std::byte*>(msg);
    // The header on its own first, so that its lengths are checked before
    // anything past it is read (as kbus_ksock_write_msg does).
    auto ok = writer.write(std::span(bytes, sizeof *msg));
    if (ok && kbus_msg_is_entire(msg)) {
        const size_t length = KBUS_ENTIRE_MSG_LEN(size_t{msg->name_len}, size_t{msg->data_len});
        ok = writer.write(std::span(bytes, length).subspan(sizeof *msg));
    }
    if (!ok) {
        return tl::unexpected(toErrno(ok.error()));
    }
    return writer.message();
}

int send(OpenKsock& k, kbus_msg_id_t* msgId) {
    if (k.sendBlocked) {
        // KBUS retried the blocked message on a second SEND; here the bus
        // retries by itself, so SEND reports how that is going.
        if (stillBlocked(k)) {
            *msgId = toC(k.blockedId);
            return -EAGAIN;
        }
        if (k.writer.empty()) {
            *msgId = toC(k.blockedId);
            return 0;
        }
    }
    auto msg = k.writer.message();
    if (!msg) {
        k.writer.reset();
        return -msg.error();
    }
    auto sent = k.channel->send(*msg);
    k.writer.reset(); // on EAGAIN the bus keeps the message, not us
    if (sent) {
        *msgId = toC(*sent);
        return 0;
    }
    if (sent.error() == Errc::MESSAGE_TOO_BIG) {
        refreshSizeLimit(k);
    }
    if (sent.error() == Errc::TRY_AGAIN) {
        k.sendBlocked = true;
        k.blockedId = lastSent(k).value_or(MsgId{});
        *msgId = toC(k.blockedId);
    }
    return negative(sent.error());
}

} // namespace

} // namespace xkbus::frontend

namespace xkbus::frontend {

int bindByName(int ksock, std::string_view name, bool replier) {
    return withErrno([&]() -> int {
        return withKsock(ksock,
                         [&](OpenKsock& k) { return outcome(k.channel->bind(name, replier)); });
    });
}

int unbindByName(int ksock, std::string_view name, bool replier) {
    return withErrno([&]() -> int {
        return withKsock(ksock,
                         [&](OpenKsock& k) { return outcome(k.channel->unbind(name, replier)); });
    });
}

int findReplierByName(int ksock, std::string_view name, uint32_t* replier) {
    return withErrno([&]() -> int {
        if (replier == nullptr) {
            return -EFAULT;
        }
        return withKsock(ksock, [&](OpenKsock& k) {
            auto found = k.channel->findReplier(name);
            if (!found) {
                return negative(found.error());
            }
            *replier = *found;
            return 0;
        });
    });
}

bool kbusDevicePath(const char* path, uint32_t& bus, const char* dir) {
    std::error_code ec;
    std::filesystem::path p(path);
    if (p.is_relative()) {
        p = (dir != nullptr ? std::filesystem::path(dir) : std::filesystem::current_path(ec)) / p;
        if (ec) {
            return false;
        }
    }
    p = p.lexically_normal();
    const std::string base = p.filename().string();
    if (p.parent_path() != "/dev" || !base.starts_with("kbus") || base.size() == 4 ||
        base.find_first_not_of("0123456789", 4) != std::string::npos) {
        return false;
    }
    auto [end, err] = std::from_chars(base.data() + 4, base.data() + base.size(), bus);
    return err == std::errc() && end == base.data() + base.size();
}

} // namespace xkbus::frontend

using namespace xkbus;
using namespace xkbus::frontend;

extern "C" {

kbus_ksock_t kbus_ksock_open(uint32_t device_number, int flags) {
    return withErrno([&]() -> kbus_ksock_t {
        const int mode = flags & O_ACCMODE;
        const bool canWrite = mode == O_WRONLY || mode == O_RDWR;
        const bool canRead = mode == O_RDONLY || mode == O_RDWR;
        auto channel = openChannel(device_number, canWrite);
        if (!channel) {
            return negative(channel.error());
        }
        auto fd =
            KsockRegistry::instance().add(std::move(*channel), device_number, canRead, canWrite);
        if (!fd) {
            return negative(fd.error());
        }
        withKsock(*fd, [](OpenKsock& k) {
            refreshSizeLimit(k);
            return 0;
        });
        return *fd;
    });
}

kbus_ksock_t kbus_ksock_open_by_name(const char* device_name, int flags) {
    return withErrno([&]() -> kbus_ksock_t {
        uint32_t bus = 0;
        if (device_name == nullptr) {
            return -EFAULT;
        }
        if (!kbusDevicePath(device_name, bus)) {
            return -ENOENT;
        }
        return kbus_ksock_open(bus, flags);
    });
}

int kbus_ksock_close(kbus_ksock_t ksock) {
    return withErrno([&]() -> int {
        auto k = KsockRegistry::instance().remove(ksock);
        if (!k) {
            return -EBADF;
        }
        if (k->inherited) {
            // The parent's: closing it here would close it for the parent,
            // through the parent's connection. Let go of it instead.
            static auto* letGo = new std::vector<std::unique_ptr<KsockChannel>>;
            letGo->push_back(std::move(k->channel));
            return 0;
        }
        std::lock_guard lock(k->mutex); // let a call in progress finish first
        k->channel.reset();
        return 0;
    });
}

int kbus_ksock_bind(kbus_ksock_t ksock, const char* name, uint32_t is_replier) {
    if (name == nullptr) {
        errno = EFAULT;
        return -EFAULT;
    }
    return bindByName(ksock, name, is_replier != 0);
}

int kbus_ksock_unbind(kbus_ksock_t ksock, const char* name, uint32_t is_replier) {
    if (name == nullptr) {
        errno = EFAULT;
        return -EFAULT;
    }
    return unbindByName(ksock, name, is_replier != 0);
}

int kbus_ksock_id(kbus_ksock_t ksock, uint32_t* ksock_id) {
    return withErrno([&]() -> int {
        if (ksock_id == nullptr) {
            return -EFAULT;
        }
        return withKsock(ksock, [&](OpenKsock& k) {
            *ksock_id = k.channel->id();
            return 0;
        });
    });
}

int kbus_ksock_next_msg(kbus_ksock_t ksock, uint32_t* message_length) {
    return withErrno([&]() -> int {
        if (message_length == nullptr) {
            return -EFAULT;
        }
        return withKsock(ksock, [&](OpenKsock& k) {
            k.reader.clear(); // NEXTMSG drops a part-read message
            auto next = k.channel->nextMessage();
            if (!next) {
                return negative(next.error());
            }
            *message_length = *next ? k.reader.start(**next) : 0;
            return *next ? 1 : 0;
        });
    });
}

int kbus_ksock_len_left(kbus_ksock_t ksock, uint32_t* len_left) {
    return withErrno([&]() -> int {
        if (len_left == nullptr) {
            return -EFAULT;
        }
        return withKsock(ksock, [&](OpenKsock& k) {
            *len_left = k.reader.left();
            return 0;
        });
    });
}

int kbus_ksock_last_msg_id(kbus_ksock_t ksock, kbus_msg_id_t* msg_id) {
    return withErrno([&]() -> int {
        if (msg_id == nullptr) {
            return -EFAULT;
        }
        return withKsock(ksock, [&](OpenKsock& k) {
            auto id = lastSent(k);
            if (!id) {
                return negative(id.error());
            }
            *msg_id = toC(*id);
            return 0;
        });
    });
}

int kbus_ksock_find_replier(kbus_ksock_t ksock, const char* name, uint32_t* replier_ksock_id) {
    if (name == nullptr) {
        errno = EFAULT;
        return -EFAULT;
    }
    return findReplierByName(ksock, name, replier_ksock_id);
}

int kbus_ksock_max_messages(kbus_ksock_t ksock, uint32_t* max_messages) {
    return withErrno(
        [&]() -> int { return controlInto(ksock, Control::MAX_MESSAGES, max_messages, true); });
}

int kbus_ksock_num_messages(kbus_ksock_t ksock, uint32_t* num_messages) {
    return withErrno(
        [&]() -> int { return controlInto(ksock, Control::NUM_MESSAGES, num_messages, false); });
}

int kbus_ksock_num_unreplied_to(kbus_ksock_t ksock, uint32_t* num_messages) {
    return withErrno([&]() -> int {
        return controlInto(ksock, Control::NUM_UNREPLIED_TO, num_messages, false);
    });
}

int kbus_ksock_send(kbus_ksock_t ksock, kbus_msg_id_t* msg_id) {
    return withErrno([&]() -> int {
        if (msg_id == nullptr) {
            return -EFAULT;
        }
        return withKsock(ksock, [&](OpenKsock& k) { return send(k, msg_id); });
    });
}

int kbus_ksock_discard(kbus_ksock_t ksock) {
    return withErrno([&]() -> int {
        return withKsock(ksock, [&](OpenKsock& k) {
            k.writer.reset();
            k.sendBlocked = false;
            return outcome(k.channel->discard());
        });
    });
}

int kbus_ksock_only_once(kbus_ksock_t ksock, uint32_t request) {
    return withErrno([&]() -> int { return switchSetting(ksock, Control::ONLY_ONCE, request); });
}

int kbus_ksock_report_replier_binds(kbus_ksock_t ksock, uint32_t request) {
    return withErrno(
        [&]() -> int { return switchSetting(ksock, Control::REPORT_REPLIER_BINDS, request); });
}

int kbus_ksock_kernel_module_verbose(kbus_ksock_t ksock, uint32_t request) {
    return withErrno([&]() -> int { return switchSetting(ksock, Control::VERBOSE, request); });
}

int kbus_ksock_max_message_size(kbus_ksock_t ksock, uint32_t* max_bytes) {
    return withErrno([&]() -> int {
        const bool absolute = max_bytes != nullptr && *max_bytes == 1;
        const int rv = controlInto(ksock, Control::MAX_MESSAGE_SIZE, max_bytes, true);
        if (rv == 0 && !absolute) { // the bus's current limit: remember it
            withKsock(ksock, [&](OpenKsock& k) {
                SizeLimits::instance().set(k.bus, *max_bytes);
                return 0;
            });
        }
        return rv;
    });
}

int kbus_ksock_new_device(kbus_ksock_t ksock, uint32_t* device_number) {
    return withErrno([&]() -> int {
        if (device_number == nullptr) {
            return -EFAULT;
        }
        return withKsock(ksock, [&](OpenKsock& k) {
            auto bus = k.channel->newBus();
            if (!bus) {
                return negative(bus.error());
            }
            *device_number = *bus;
            return 0;
        });
    });
}

int kbus_wait_for_message(kbus_ksock_t ksock, int wait_for) {
    return withErrno([&]() -> int {
        pollfd p{ksock, 0, 0};
        p.events = static_cast<short>(((wait_for & KBUS_KSOCK_READABLE) != 0 ? POLLIN : 0) |
                                      ((wait_for & KBUS_KSOCK_WRITABLE) != 0 ? POLLOUT : 0));
        if (::poll(&p, 1, -1) < 0) {
            return -errno;
        }
        return ((p.revents & POLLIN) != 0 ? KBUS_KSOCK_READABLE : 0) |
               ((p.revents & POLLOUT) != 0 ? KBUS_KSOCK_WRITABLE : 0);
    });
}

ssize_t kbus_ksock_write(kbus_ksock_t ksock, const void* buf, size_t len) {
    return withErrno([&]() -> ssize_t {
        if (buf == nullptr && len != 0) {
            return -EFAULT;
        }
        return withKsock(ksock, [&](OpenKsock& k) -> ssize_t {
            if (!k.canWrite) {
                return -EBADF;
            }
            if (stillBlocked(k)) {
                return -EALREADY; // the blocked message stays with the bus
            }
            auto written = k.writer.write({static_cast<const std::byte*>(buf), len},
                                          [&k](uint64_t length) { return fitsOnBus(k, length); });
            return written ? static_cast<ssize_t>(len) : negative(written.error());
        });
    });
}

ssize_t kbus_ksock_read(kbus_ksock_t ksock, void* buf, size_t len) {
    return withErrno([&]() -> ssize_t {
        if (buf == nullptr && len != 0) {
            return -EFAULT;
        }
        return withKsock(ksock, [&](OpenKsock& k) -> ssize_t {
            if (!k.canRead) {
                return -EBADF;
            }
            return static_cast<ssize_t>(k.reader.read({static_cast<std::byte*>(buf), len}));
        });
    });
}

int kbus_ksock_read_msg(kbus_ksock_t ksock, kbus_message_t** msg, size_t msg_len) {
    return withErrno([&]() -> int {
        auto* buf = static_cast<unsigned char*>(std::malloc(msg_len > 0 ? msg_len : 1));
        if (buf == nullptr) {
            return -ENOMEM;
        }
        size_t got = 0;
        while (got < msg_len) {
            const ssize_t n = kbus_ksock_read(ksock, buf + got, msg_len - got);
            if (n <= 0) {
                std::free(buf);
                *msg = nullptr;
                return n == 0 ? -EBADMSG : static_cast<int>(n);
            }
            got += static_cast<size_t>(n);
        }
        *msg = reinterpret_cast<kbus_message_t*>(buf);
        return 0;
    });
}

int kbus_ksock_read_next_msg(kbus_ksock_t ksock, kbus_message_t** msg) {
    return withErrno([&]() -> int {
        uint32_t length = 0;
        const int rv = kbus_ksock_next_msg(ksock, &length);
        if (rv < 0 || length == 0) {
            *msg = nullptr;
            return rv;
        }
        return kbus_ksock_read_msg(ksock, msg, length);
    });
}

int kbus_ksock_write_msg(kbus_ksock_t ksock, const kbus_message_t* msg) {
    return withErrno([&]() -> int {
        if (msg == nullptr) {
            return -EFAULT;
        }
        // The header goes first on its own, so a bad length in it is refused
        // before anything is read past the header.
        ssize_t rv = kbus_ksock_write(ksock, msg, sizeof *msg);
        if (rv < 0 || !kbus_msg_is_entire(msg)) {
            return rv < 0 ? static_cast<int>(rv) : 0;
        }
        const size_t rest =
            KBUS_ENTIRE_MSG_LEN(size_t{msg->name_len}, size_t{msg->data_len}) - sizeof *msg;
        rv = kbus_ksock_write(ksock, reinterpret_cast<const unsigned char*>(msg) + sizeof *msg,
                              rest);
        return rv < 0 ? static_cast<int>(rv) : 0;
    });
}

int kbus_ksock_write_data(kbus_ksock_t ksock, uint8_t* data, size_t data_len) {
    return withErrno([&]() -> int {
        const ssize_t rv = kbus_ksock_write(ksock, data, data_len);
        return rv < 0 ? static_cast<int>(rv) : 0;
    });
}

int kbus_ksock_send_msgs(kbus_ksock_t ksock, const kbus_message_t* const* msgs, size_t count,
                         kbus_msg_id_t* ids, int* errors) {
    return withErrno([&]() -> int {
        if (msgs == nullptr || ids == nullptr || errors == nullptr) {
            return -EFAULT;
        }
        if (count == 0 || count > xkbus::protocol::MAX_BATCH) {
            return -EINVAL;
        }
        std::vector<xkbus::frontend::Message> batch;
        batch.reserve(count);
        for (size_t i = 0; i < count; ++i) {
            auto m = copyMessage(msgs[i]);
            errors[i] = m ? 0 : -m.error();
            if (!m) {
                return -EINVAL;
            }
            batch.push_back(std::move(*m));
        }
        return withKsock(ksock, [&](OpenKsock& k) {
            auto sent = k.channel->sendBatch(batch);
            if (!sent) {
                return negative(sent.error());
            }
            for (size_t i = 0; i < count; ++i) {
                const auto& one = (*sent)[i];
                ids[i] = one ? toC(*one) : kbus_msg_id_t{};
                errors[i] = one ? 0 : negative(one.error());
            }
            return 0;
        });
    });
}

int kbus_ksock_send_msg(kbus_ksock_t ksock, const kbus_message_t* msg, kbus_msg_id_t* msg_id) {
    return withErrno([&]() -> int {
        const int rv = kbus_ksock_write_msg(ksock, msg);
        return rv != 0 ? rv : kbus_ksock_send(ksock, msg_id);
    });
}

} // extern "C"
