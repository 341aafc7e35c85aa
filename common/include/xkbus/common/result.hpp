// Result<T>: a value or an Errc, returned across every module boundary.
// tl::expected (Debian libexpected-dev) has the std::expected API of C++23.
#pragma once

#include <tl/expected.hpp>
#include <xkbus/common/errc.hpp>

namespace xkbus {

template <class T>
using Result = tl::expected<T, Errc>;

inline tl::unexpected<Errc> fail(Errc e) noexcept {
    return tl::unexpected<Errc>(e);
}

} // namespace xkbus
