// KsockChannel's out-of-line members: the default batch, one send at a time.
#include <xkbus/frontend/ksock_channel.hpp>

namespace xkbus::frontend {

KsockChannel::~KsockChannel() = default;

Result<std::vector<Result<MsgId>>> KsockChannel::sendBatch(std::span<const Message> msgs) {
    if (auto ok = checkBatch(msgs); !ok) {
        return fail(ok.error());
    }
    std::vector<Result<MsgId>> outcomes;
    for (const Message& m : msgs) {
        outcomes.push_back(send(m));
    }
    return outcomes;
}

} // namespace xkbus::frontend
