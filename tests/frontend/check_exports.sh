#!/usr/bin/env bash
# check_exports.sh LIBKBUS HEADER CLIENTLIB: libkbus.so.1 exports exactly the
# functions <libkbus/kbus.h> declares, under the SONAME libkbus.so.1, and the
# C++ client library nothing but xkbus::Ksock, the KsockChannel interface and
# the message vocabulary (xkbus::Message's body and makers).
set -euo pipefail
libkbus="$1" header="$2" client="$3"
status=0

declared="$(grep -oE '^extern [^(]*\bkbus_[a-z_0-9]+\(' "$header" | grep -oE 'kbus_[a-z_0-9]+\($' | tr -d '(' | sort -u)"
exported="$(nm -D --defined-only "$libkbus" | awk '{print $3}' | sort -u)"
if [ "$declared" != "$exported" ]; then
    echo "libkbus exports differ from the header (< header, > library):"
    diff <(echo "$declared") <(echo "$exported") || true
    status=1
fi
[ "$(echo "$declared" | wc -l)" -ge 40 ] || { echo "too few functions found in $header"; status=1; }
readelf -d "$libkbus" | grep -q 'SONAME.*\[libkbus\.so\.1\]' || { echo "libkbus SONAME is not libkbus.so.1"; status=1; }

stray="$(nm -DC --defined-only "$client" | cut -d' ' -f3- |
    grep -vE '^(xkbus::Ksock::|xkbus::frontend::KsockChannel::|(typeinfo|typeinfo name|vtable) for xkbus::frontend::KsockChannel$|xkbus::MessageBody::|xkbus::(makeMessage|encodeBindEventData|decodeBindEventData)\()' || true)"
if [ -n "$stray" ]; then
    echo "the client library exports internals:"
    echo "$stray"
    status=1
fi
for api in 'xkbus::Ksock::open' 'xkbus::makeMessage(' 'xkbus::MessageBody::copyOf'; do
    nm -DC --defined-only "$client" | grep -qF "$api" || { echo "$api is not exported"; status=1; }
done
readelf -d "$client" | grep -q 'SONAME.*\[libxkbus-client\.so\.[0-9]' || { echo "the client library has no versioned SONAME"; status=1; }
exit $status
