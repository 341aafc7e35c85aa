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
echo "install check: pkg-config and CMake consumers built and ran"
