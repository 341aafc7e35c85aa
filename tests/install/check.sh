#!/usr/bin/env bash
# Builds tests/install/consumer.cpp against the xkbus installed under $1, once
# through pkg-config and once through the CMake package, and runs both.
set -euo pipefail
prefix="$1"
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
# shellcheck disable=SC2046
g++ -std=c++20 -Wall -Werror "$here/consumer.cpp" -o "$work/consumer-pc" $(pkg-config --cflags --libs xkbus)
"$work/consumer-pc"

cmake -S "$here" -B "$work/cmake" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/cmake" >/dev/null
"$work/cmake/consumer"
# A libkbus-style C program, built as C against the installed package, run
# against an xkbusd from the same prefix started by hand.
gcc -std=c99 -Wall -Wextra -Werror "$here/kbus_main.c" -o "$work/kbus-consumer" \
    $(pkg-config --cflags --libs xkbus)
export XKBUS_SOCKET="$work/xkbusd.sock"
"$prefix/sbin/xkbusd" --socket "$XKBUS_SOCKET" --log-level warn &
daemon=$!
for _ in $(seq 100); do [ -S "$XKBUS_SOCKET" ] && break; sleep 0.05; done
status=0
"$work/kbus-consumer" || status=$?
kill "$daemon"
wait "$daemon" || true
[ "$status" -eq 0 ] || { echo "install check: the C consumer failed"; exit 1; }
echo "install check: pkg-config, CMake and C (libkbus API) consumers built and ran"
