#!/usr/bin/env bash
# Builds programs against the xkbus installed under $1 with every link line
# the documentation gives (README.md, docs/c-api.md: pkg-config xkbus, libkbus
# and xkbus-client; CMake find_package(xkbus) with xkbus::core, xkbus::kbus
# and xkbus::client) and runs them, the client ones against an xkbusd from
# the same prefix.
set -euo pipefail
prefix="$1"
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
daemon=""
cleanup() {
    [ -n "$daemon" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "install check: $*" >&2
    exit 1
}

libdir="$prefix/lib"
export PKG_CONFIG_PATH="$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
# A local-only program sees only this prefix's .pc files: the shared client
# libraries must not need libxen-dev's (Xen is their private dependency).
prefix_only() { PKG_CONFIG_LIBDIR="$libdir/pkgconfig" PKG_CONFIG_PATH= "$@"; }

# README: the bus core, statically, through pkg-config xkbus.
# shellcheck disable=SC2046
g++ -std=c++20 -Wall -Werror "$here/consumer.cpp" -o "$work/consumer-pc" $(pkg-config --cflags --libs xkbus)
"$work/consumer-pc"

# docs/c-api.md: a libkbus C program, `pkg-config --cflags --libs libkbus`.
# shellcheck disable=SC2046
gcc -std=c99 -Wall -Wextra -Werror "$here/kbus_main.c" -o "$work/kbus-consumer" \
    $(prefix_only pkg-config --cflags --libs libkbus)
# kmsg, a KBUS-style utility, as KBUS's own were built.
# shellcheck disable=SC2046
gcc -Wall -Wextra -Werror "$here/kmsg.c" -o "$work/kmsg" $(prefix_only pkg-config --cflags --libs libkbus)
# README: the C++ client API, `pkg-config --cflags --libs xkbus-client`.
# shellcheck disable=SC2046
g++ -std=c++20 -Wall -Werror "$here/client_consumer.cpp" -o "$work/client-consumer" \
    $(prefix_only pkg-config --cflags --libs xkbus-client)
for lib in "$libdir/libkbus.so.1" "$libdir/libxkbus-client.so.0.1"; do
    [ -e "$lib" ] || fail "$lib is not installed under its SONAME"
done
readelf -d "$work/kbus-consumer" | grep -q 'NEEDED.*\[libkbus\.so\.1\]' ||
    fail "the C consumer does not link libkbus.so.1"

# CMake: find_package(xkbus) and the documented targets.
cmake -S "$here" -B "$work/cmake" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/cmake" >/dev/null
"$work/cmake/consumer"

export XKBUS_SOCKET="$work/xkbusd.sock"
"$prefix/sbin/xkbusd" --socket "$XKBUS_SOCKET" --log-level warn &
daemon=$!
for _ in $(seq 100); do [ -S "$XKBUS_SOCKET" ] && break; sleep 0.05; done

# docs/python.md: `import kbus` from the prefix with Debian's python3; the
# package finds its libkbus.so.1 by itself (no LD_LIBRARY_PATH).
pydir="$(echo "$prefix"/lib/python3*/dist-packages)"
[ -f "$pydir/kbus/__init__.py" ] || fail "the kbus Python package is not installed"
env -u LD_LIBRARY_PATH -u XKBUS_LIBKBUS PYTHONPATH="$pydir" /usr/bin/python3 - <<'EOF' ||
import kbus, xkbus
with kbus.Ksock(0) as k:
    k.bind('$.Installed.Python')
    sent = k.send_msg(kbus.Announcement('$.Installed.Python', data='yes'))
    got = k.read_next_msg()
    assert got.id == sent and got.data == b'yes', got
print('python consumer: ok')
EOF
    fail "the installed kbus Python package failed"

# docs/c-api.md: `xkbus run` finds the installed libkbus-device.so, and a
# program that opens /dev/kbus0 and reads /proc/kbus runs under it.
preloaded="$(env -u XKBUS_DEVICE_LIBRARY "$prefix/bin/xkbus" run -- sh -c 'echo "$LD_PRELOAD"')"
[ "$preloaded" = "$libdir/xkbus/libkbus-device.so" ] ||
    fail "xkbus run preloaded '$preloaded', not the installed libkbus-device.so"
env -u XKBUS_DEVICE_LIBRARY "$prefix/bin/xkbus" run -- sh -c \
    'exec 3<>/dev/kbus0 && grep -q "^    ksock [0-9]* last msg 0:0 queue 0 of 100$" /proc/kbus/stats' ||
    fail "a program using /dev/kbus0 did not run under xkbus run"

export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
"$work/kbus-consumer" || fail "the pkg-config libkbus consumer failed"
"$work/client-consumer" || fail "the pkg-config xkbus-client consumer failed"
"$work/cmake/kbus_consumer" || fail "the CMake xkbus::kbus consumer failed"
"$work/cmake/client_consumer" || fail "the CMake xkbus::client consumer failed"
"$work/kmsg" -n 1 reply '$.Installed.Kmsg' pong >"$work/replier.out" &
replier=$!
for _ in $(seq 200); do grep -q serving "$work/replier.out" && break; sleep 0.05; done
"$work/kmsg" call '$.Installed.Kmsg' ping | grep -q "data=pong" || fail "kmsg call got no reply"
wait "$replier" || fail "kmsg reply failed"
[ "$("$work/kmsg" call '$.Installed.Nobody' 2>&1)" = "kmsg: send: Cannot assign requested address" ] ||
    fail "kmsg did not report a request with no replier with strerror(errno)"
echo "install check: every documented link line built and ran"
