// Reading device nodes, shared by the backend and frontend sides. Values are
// peer input: readState() parses strictly and reports a missing or bad value
// as a Rejection, never as a store error.
#pragma once

#include <optional>
#include <string>
#include <xkbus/xenstore/device_protocol.hpp>
#include <xkbus/xenstore/store.hpp>
#include <xkbus/xenstore/values.hpp>

namespace xkbus::xenstore::detail {

// A node's value, or nullopt if it does not exist.
inline Result<std::optional<std::string>> readOptional(Store& store, TransactionId txn,
                                                       std::string_view path) {
    auto value = store.read(txn, path);
    if (value) {
        return std::optional<std::string>(std::move(*value));
    }
    if (value.error() == NOT_FOUND) {
        return std::optional<std::string>();
    }
    return fail(value.error());
}

// The XenbusState in `dir`/state.
inline Result<Parsed<XenbusState>> readState(Store& store, TransactionId txn,
                                             std::string_view dir) {
    auto value = readOptional(store, txn, nodePath(dir, key::STATE));
    if (!value) {
        return fail(value.error());
    }
    if (!*value) {
        return Parsed<XenbusState>(tl::unexpected(Rejection{"missing"}));
    }
    return parseState(**value);
}

} // namespace xkbus::xenstore::detail
