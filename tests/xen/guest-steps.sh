#!/bin/sh
# One guest-side step of the harness, run by the domU's agent (domU-init.sh):
#   guest-steps.sh STEP [ARGS...]
# Each step writes its verdict to data/xkbus-test/result/<key> in xenstore
# ("PASS ..." or "FAIL: ..."); dom0 (dom0-scenarios.sh) waits for it. The
# xkbus programs pick the Xen transport by themselves in a guest;
# XKBUS_TRANSPORT=xen makes sure.
# shellcheck shell=sh
set -u
export PATH=/bin:/sbin:/usr/bin:/usr/sbin:/xkbus/bin
export XKBUS_TRANSPORT=xen
T=data/xkbus-test

result() { xenstore-write "$T/result/$1" "$2"; }
say() { echo "domU[$(cut -d' ' -f1 /proc/uptime)] $*"; }

now() { cut -d. -f1 /proc/uptime; }
# wait_node PATH SECONDS: until the node exists (by the clock).
wait_node() {
    deadline=$(($(now) + $2))
    while ! xenstore-read "$1" >/dev/null 2>&1; do
        [ "$(now)" -ge "$deadline" ] && return 1
        sleep 0.1
    done
}

step="$1"
shift
case "$step" in
ring-front)
    xkbus-xen-probe front --dir "$T/ring" &
    pid=$!
    if wait_node "$T/ring/kill-now" 600; then
        kill -9 "$pid"
        say "ring probe (pid $pid) killed with SIGKILL"
        result ring-front "PASS killed"
    else
        kill -9 "$pid" 2>/dev/null
        result ring-front "FAIL: dom0 never asked for the kill"
    fi
    wait "$pid" 2>/dev/null
    ;;
bench)
    # bench TRANSPORT DIR ROUNDS RECORDS BYTES
    if xkbus-xen-bench guest --transport "$1" --dir "$2" --rounds "$3" --records "$4" --bytes "$5"; then
        result "bench-$1" PASS
    else
        result "bench-$1" "FAIL: guest side exited $?"
    fi
    ;;
limpet)
    # limpet KEY NAME DATA: a guest-local xkbusd with one replier for NAME,
    # joined to dom0's bus by xkbus-limpet (the guest bus through its trusted
    # socket, dom0's through this guest's Xen frontend, "xen:")
    key="$1"
    XKBUS_TRANSPORT=local xkbusd --socket /tmp/guest.sock --trusted-socket /tmp/guest-limpet.sock \
        --log-level warn >/tmp/guest-xkbusd.log 2>&1 &
    daemon=$!
    wait_socket() { i=0; while [ ! -S "$1" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done; }
    wait_socket /tmp/guest-limpet.sock
    XKBUS_TRANSPORT=local XKBUS_SOCKET=/tmp/guest.sock \
        xkbus reply "$2" --data "$3" --count 1 --json >/tmp/guest-bus-reply.log 2>&1 &
    replier=$!
    xkbus-limpet local --x-socket /tmp/guest-limpet.sock --x-id 21 --y-socket xen: --y-id 22 \
        >/tmp/guest-limpet.log 2>&1 &
    limpet=$!
    if wait "$replier"; then
        result "$key" "PASS served on the guest's bus: $(tr -d '\n' </tmp/guest-bus-reply.log | cut -c1-160)"
    else
        result "$key" "FAIL: the guest-bus replier: $(tr -d '\n' </tmp/guest-bus-reply.log | cut -c1-120); limpet: $(tr -d '\n' </tmp/guest-limpet.log | cut -c1-120)"
    fi
    kill "$limpet" "$daemon" 2>/dev/null # frees the Xen slot for later cases
    ;;
reply)
    # reply KEY NAME DATA COUNT: serve COUNT requests as NAME's replier
    key="$1"
    if out="$(xkbus reply "$2" --data "$3" --count "$4" --json 2>&1)"; then
        result "$key" "PASS served: $(echo "$out" | tr -d '\n' | cut -c1-200)"
    else
        result "$key" "FAIL: xkbus reply exited $?: $(echo "$out" | tr -d '\n' | cut -c1-200)"
    fi
    ;;
call)
    # call KEY NAME EXPECTED: one request; the reply's data must be EXPECTED
    key="$1"
    out="$(xkbus call "$2" "from-guest" --timeout 90 --json 2>&1)"
    rc=$?
    case "$rc:$out" in
    0:*"\"data\":\"$3\""*) result "$key" "PASS $(echo "$out" | tr -d '\n' | cut -c1-200)" ;;
    *) result "$key" "FAIL: xkbus call exited $rc: $(echo "$out" | tr -d '\n' | cut -c1-200)" ;;
    esac
    ;;
listen)
    # listen KEY PATTERN COUNT: the names of the messages received
    key="$1"
    out="$(xkbus listen "$2" --count "$3" --timeout 120 --json 2>&1)"
    rc=$?
    names="$(echo "$out" | sed -n 's/.*"name":"\([^"]*\)".*/\1/p' | tr '\n' ' ')"
    if [ "$rc" -eq 0 ]; then
        result "$key" "PASS $names"
    else
        result "$key" "FAIL: xkbus listen exited $rc: $(echo "$out" | tr -d '\n' | cut -c1-200)"
    fi
    ;;
stuck-replier)
    # stuck-replier KEY NAME: a replier that reads one request and never answers
    # (its --exec sleeps); KEY-read appears once it has read one.
    key="$1"
    setsid xkbus reply "$2" --exec "sleep 900" --json >"/tmp/$key.log" 2>&1 &
    echo $! >"/tmp/$key.pid"
    result "$key" "PASS started pid $!"
    deadline=$(($(now) + 600))
    while [ "$(now)" -lt "$deadline" ]; do
        if grep -q '"name"' "/tmp/$key.log" 2>/dev/null; then
            result "$key-read" "PASS $(head -1 "/tmp/$key.log" | cut -c1-200)"
            break
        fi
        if ! kill -0 "$(cat "/tmp/$key.pid")" 2>/dev/null; then
            result "$key-read" "FAIL: the replier exited: $(tr -d '\n' <"/tmp/$key.log" | cut -c1-200)"
            break
        fi
        sleep 0.1
    done
    ;;
kill)
    # kill KEY: SIGKILL the stuck replier KEY (its process group: it and its --exec child)
    key="$1"
    pid="$(cat "/tmp/$key.pid" 2>/dev/null)"
    if [ -n "$pid" ] && kill -9 -- "-$pid" 2>/dev/null; then
        say "replier $key (pid $pid) killed with SIGKILL"
        result "$key-killed" "PASS pid $pid"
    else
        result "$key-killed" "FAIL: no such replier ($pid)"
    fi
    ;;
reconnect)
    # reconnect KEY NAME EXPECTED N: N processes one after another, each on a
    # slot the previous one freed, each doing one request.
    key="$1"
    n=0
    while [ "$n" -lt "$4" ]; do
        out="$(xkbus call "$2" "again-$n" --timeout 60 --json 2>&1)"
        rc=$?
        case "$rc:$out" in
        0:*"\"data\":\"$3\""*) ;;
        *)
            result "$key" "FAIL: process $((n + 1)) of $4: exit $rc: $(echo "$out" | tr -d '\n' | cut -c1-160)"
            exit 0
            ;;
        esac
        n=$((n + 1))
    done
    result "$key" "PASS $4 processes in turn"
    ;;
bigmsg-listen)
    # bigmsg-listen KEY NAME: KEY-bound once bound, then KEY with the verdict
    key="$1"
    xkbus-xen-bigmsg listen "$2" 240 >"/tmp/$key.log" 2>&1 &
    pid=$!
    wait_node_file() { grep -q bound "/tmp/$key.log" 2>/dev/null; }
    deadline=$(($(now) + 120))
    until wait_node_file || [ "$(now)" -ge "$deadline" ]; do sleep 0.1; done
    result "$key-bound" "PASS"
    wait "$pid"
    rc=$?
    r="$(grep -E '^(PASS|FAIL)' "/tmp/$key.log" | head -1 | cut -c1-200)"
    if [ "$rc" -eq 0 ]; then
        result "$key" "$r"
    else
        result "$key" "FAIL: exit $rc: ${r:-$(tr -d '\n' <"/tmp/$key.log" | cut -c1-200)}"
    fi
    ;;
bigmsg-send)
    # bigmsg-send KEY NAME
    out="$(xkbus-xen-bigmsg send "$2" 2>&1)"
    rc=$?
    case "$rc:$out" in
    0:PASS*) result "$1" "$(echo "$out" | head -1 | cut -c1-200)" ;;
    *) result "$1" "FAIL: exit $rc: $(echo "$out" | tr -d '\n' | cut -c1-200)" ;;
    esac
    ;;
policy-refused)
    # policy-refused KEY NAME: dom0's policy gives this guest its slot's bus
    # only, and no replier outside $.Xen.*: opening bus 1 and serving NAME
    # must both fail with EPERM, at once (no timeout reached)
    key="$1"
    out="$(xkbus --bus 1 listen '$.Xen.Policy.*' --count 1 --timeout 60 --json 2>&1)"
    rc=$?
    case "$rc:$out" in
    1:*"permission denied (errno 1)"*) ;;
    *)
        result "$key" "FAIL: bus 1: exit $rc: $(echo "$out" | tr -d '\n' | cut -c1-160)"
        exit 0
        ;;
    esac
    out2="$(xkbus reply "$2" --data never --count 1 --json 2>&1)"
    rc2=$?
    case "$rc2:$out2" in
    1:*"serve $2: permission denied"*)
        result "$key" "PASS bus 1: $(echo "$out" | tr -d '\n' | cut -c1-80); $2: $(echo "$out2" | tr -d '\n' | cut -c1-80)"
        ;;
    *) result "$key" "FAIL: serve $2: exit $rc2: $(echo "$out2" | tr -d '\n' | cut -c1-160)" ;;
    esac
    ;;
c-smoke)
    if out="$(xkbus-xen-c-smoke 2>&1)"; then
        result c-smoke "PASS $(echo "$out" | tr -d '\n' | cut -c1-100)"
    else
        result c-smoke "FAIL: exit $?: $(echo "$out" | tr -d '\n' | cut -c1-200)"
    fi
    ;;
*)
    result "$step" "FAIL: unknown guest step"
    ;;
esac
