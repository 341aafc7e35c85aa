// libFuzzer target: arbitrary bytes as a record from a hostile peer. decode()
// must refuse or accept without touching memory it should not, and whatever
// it accepts must encode back to the same bytes (but for a client's name over
// the limit, which comes back cut to one byte over it); so must a
// SEND_BATCH's messages, one by one.
#include "../fuzz/fuzz_target.hpp"

#include <cstdlib>
#include <xkbus/protocol/records.hpp>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace xkbus::protocol;
    const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
    auto rec = decode(in, Limits{.maxName = 1000, .maxData = 4096});
    if (!rec) {
        return 0;
    }
    if (rec->body.name().size() > 1000) {
        if (rec->body.name().size() != 1001 || !isClientRecord(rec->type)) {
            std::abort(); // only a client's over-long name is kept, and cut
        }
        return 0;
    }
    std::vector<std::byte> again;
    encode(*rec, again);
    if (again.size() != size || !std::equal(again.begin(), again.end(), in.begin())) {
        std::abort(); // the encoding is canonical: accepted bytes round-trip exactly
    }
    if (rec->type == RecordType::SEND_BATCH) {
        auto sends =
            decodeBatch(rec->body.data(), rec->value, Limits{.maxName = 1000, .maxData = 4096});
        if (sends) {
            std::vector<std::byte> entries;
            bool cut = false;
            for (const Record& s : *sends) {
                appendBatchEntry(s, entries);
                cut = cut || s.body.name().size() > 1000;
            }
            if (!cut && !std::equal(entries.begin(), entries.end(), rec->body.data().begin(),
                                    rec->body.data().end())) {
                std::abort();
            }
        }
    }
    return 0;
}
