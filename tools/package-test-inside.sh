#!/usr/bin/env bash
# Runs inside the package test's private root (tools/package-test.sh).
set -euo pipefail
step() { printf '[package-test] %s\n' "$*"; }
fail() { printf '[package-test] FAILED: %s\n' "$*" >&2; exit 1; }
daemon=""
cleanup() { [ -z "$daemon" ] || kill "$daemon" 2>/dev/null || true; }
trap cleanup EXIT

step "dpkg -i $(cd /tmp/debs && echo ./*.deb)"
dpkg -i /tmp/debs/*.deb >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log; fail "dpkg -i"; }
for pkg in xkbusd xkbus-tools libxkbus-dev libkbus1 libxkbus-client0.1 python3-xkbus; do
    dpkg-query -W -f='${Status}\n' "$pkg" | grep -q "install ok installed" || fail "$pkg not installed"
done
getent group xkbus >/dev/null || fail "postinst made no group xkbus"

unit=/lib/systemd/system/xkbusd.service
[ -f "$unit" ] || fail "no $unit"
value() { sed -n "s/^$1=//p" "$unit" | head -1; }
exec_start="$(value ExecStart)"
case "$exec_start" in /usr/sbin/xkbusd\ *) ;; *) fail "ExecStart is '$exec_start'" ;; esac
for doc in $(value Documentation); do
    page="${doc#man:}"
    name="${page%(*}"
    section="${page#*(}"
    section="${section%)}"
    [ -f "/usr/share/man/man$section/$name.$section.gz" ] || fail "Documentation=$doc is not installed"
done
man -w xkbus-limpet >/dev/null || fail "no man page for xkbus-limpet"
[ -f /etc/xkbus/xkbusd.conf ] || fail "no /etc/xkbus/xkbusd.conf"
for bin in xkbusd xkbus xkbus-limpet; do
    "$bin" --version | grep -q "^$bin " || fail "$bin --version"
done

step "starting the daemon as the unit would: $exec_start (Group=$(value Group), UMask=$(value UMask))"
mkdir -p "/run/$(value RuntimeDirectory)"
chgrp "$(value Group)" "/run/$(value RuntimeDirectory)"
chmod "$(value RuntimeDirectoryMode)" "/run/$(value RuntimeDirectory)"
# shellcheck disable=SC2086
(umask "$(value UMask)" && exec setpriv --regid "$(value Group)" --clear-groups $exec_start) &
daemon=$!
xkbus wait --timeout 10 || fail "the daemon did not start"

xkbus reply '$.Package.Time' --exec date >/tmp/replier.log 2>&1 &
replier=$!
xkbus wait --replier '$.Package.Time' --timeout 10 || fail "the replier did not bind"
date_re='^[A-Z][a-z]{2} [A-Z][a-z]{2} +[0-9]+ [0-9:]{8} [A-Z]+ [0-9]{4}$'
answer="$(xkbus call '$.Package.Time' --raw)"
grep -Eq "$date_re" <<<"$answer" || fail "root's call got '$answer'"
step "root: $answer"

useradd --no-create-home --groups xkbus xkbus-member
useradd --no-create-home xkbus-stranger
as() { local who="$1"; shift; setpriv --reuid "$who" --regid "$who" --init-groups "$@"; }
member="$(as xkbus-member xkbus call '$.Package.Time' --raw)" || fail "a member of xkbus was refused"
grep -Eq "$date_re" <<<"$member" || fail "the member's call got '$member'"
step "a member of the group xkbus: $member"
stranger=0
as xkbus-stranger xkbus call '$.Package.Time' 2>/tmp/stranger.err || stranger=$?
[ "$stranger" -eq 69 ] || fail "a stranger got exit $stranger"
grep -q "permission denied on /run/xkbus" /tmp/stranger.err || fail "stranger: $(cat /tmp/stranger.err)"
step "a stranger: $(cat /tmp/stranger.err)"

step "a C++ program built against libxkbus-dev (pkg-config xkbus): README's example"
sed -n '/^```cpp$/,/^```$/p' /tmp/README.md | sed '1d;$d' | sed 's/\$\.Time\.Now/$.Package.Time/g' >/tmp/app.cpp
# shellcheck disable=SC2046
g++ -std=c++20 /tmp/app.cpp -o /tmp/app $(pkg-config --cflags --libs xkbus)
program="$(/tmp/app)" || fail "the C++ program failed"
grep -Eq "$date_re" <<<"$program" || fail "the C++ program printed '$program'"
step "C++: $program"

step "KBUS programs: Python's kbus package, a libkbus C program (pkg-config libkbus), xkbus run"
/usr/bin/python3 - <<'EOF' || fail "the kbus Python package"
import kbus
with kbus.Ksock(0) as k:
    answer = k.send_msg(kbus.Request('$.Package.Time'))
    reply = k.wait_for_msg(timeout=10)
    assert reply is not None and reply.in_reply_to == answer, reply
EOF
cat >/tmp/kbus.c <<'EOF'
#include <libkbus/kbus.h>
int main(void) {
    kbus_ksock_t k = kbus_ksock_open(0, O_RDWR);
    uint32_t replier = 0;
    if (k < 0 || kbus_ksock_find_replier(k, "$.Package.Time", &replier) < 0 || replier == 0) {
        printf("kbus: %s\n", strerror(errno));
        return 1;
    }
    return kbus_ksock_close(k);
}
EOF
# shellcheck disable=SC2046
gcc /tmp/kbus.c -o /tmp/kbus $(pkg-config --cflags --libs libkbus) && /tmp/kbus || fail "a libkbus program"
xkbus run -- grep -q 'R  \$\.Package\.Time$' /proc/kbus/bindings || fail "xkbus run"

kill "$replier"
kill -TERM "$daemon"
code=0
wait "$daemon" || code=$?
daemon=""
[ "$code" -eq 0 ] || fail "xkbusd exited $code on SIGTERM"

step "dpkg --purge"
dpkg --purge xkbus-tools xkbusd libxkbus-dev python3-xkbus libkbus1 libxkbus-client0.1 >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log; fail "purge"; }
[ ! -e /usr/sbin/xkbusd ] || fail "xkbusd left behind"
step "passed"
