#!/usr/bin/env bash
# run_c_examples.sh DOC XKBUSD INCLUDE_DIR LIBDIR [CFLAGS...]: compiles every
# ```c block of DOC as a whole C99 program against <libkbus/kbus.h> and
# libkbus.so.1, and runs each against a fresh xkbusd of its own. Fails on the
# first example that does not build or does not exit 0.
set -euo pipefail
doc="$1" xkbusd="$2" include="$3" libdir="$4"
shift 4
work="$(mktemp -d)"
daemon=""
cleanup() {
    [ -n "$daemon" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

awk -v dir="$work" '
    /^```c$/ { n++; file = sprintf("%s/example%d.c", dir, n); inside = 1; next }
    /^```$/ && inside { inside = 0; close(file); next }
    inside { print > file }
' "$doc"
examples=("$work"/example*.c)
[ -e "${examples[0]}" ] || { echo "no C examples in $doc"; exit 1; }

for example in "${examples[@]}"; do
    name="$(basename "$example" .c)"
    cc -std=c99 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror "$@" -I"$include/xkbus/compat" \
        -I"$include" "$example" -o "$work/$name" -L"$libdir" -lkbus -Wl,-rpath,"$libdir"
    export XKBUS_SOCKET="$work/$name.sock"
    "$xkbusd" --socket "$XKBUS_SOCKET" --log-level warn &
    daemon=$!
    for _ in $(seq 200); do [ -S "$XKBUS_SOCKET" ] && break; sleep 0.05; done
    if ! "$work/$name"; then
        echo "$doc: example ${name#example} failed:"
        cat -n "$example"
        exit 1
    fi
    kill "$daemon"
    wait "$daemon" || true
    daemon=""
done
echo "${#examples[@]} C examples of $doc built and ran"
