#!/bin/sh
# The harness's scenarios, run in dom0 by dom0-init.sh after the Xen services
# are up. Prints one line per test case on the console (Xen's serial port):
#   XKBUS-TEST <name> PASS [(detail)]     or     XKBUS-TEST <name> FAIL: <why>
# and XKBUS-BENCH {json} lines for the vchan comparison. The host
# (tests/xen/run.sh) parses them.
# Kernel command line: xkbus.scenarios=ring (boot, ring, bench) or all (also
# the xkbusd --xen scenarios; the default); xkbus.only=NAME,... runs only the
# groups named: boot ring bench daemon destroy.
# Everything read back from the guest (xenstore values) is untrusted: only
# compared against patterns, and printed cut to printable bytes.
# shellcheck shell=sh
set -u
export PATH=/bin:/sbin:/usr/bin:/usr/sbin:/usr/lib/xen-4.17/bin:/xkbus/bin
export XKBUS_SOCKET=/run/xkbus/xkbusd.sock

SCENARIOS=all
ONLY=""
read -r cmdline </proc/cmdline
for a in $cmdline; do
    case "$a" in
    xkbus.scenarios=*) SCENARIOS="${a#xkbus.scenarios=}" ;;
    xkbus.only=*) ONLY="$(echo "${a#xkbus.only=}" | tr ',' ' ')" ;;
    esac
done
FAILED=0
SEQ=0
D=""
GD=""

up() { cut -d' ' -f1 /proc/uptime; }
say() { echo "XKBUS-HARNESS[$(up)] $*"; }
pass() { echo "XKBUS-TEST $1 PASS${2:+ ($2)}"; }
fail() {
    echo "XKBUS-TEST $1 FAIL: $2"
    FAILED=$((FAILED + 1))
}
# clean [N]: one printable line of at most N bytes (guest text is untrusted)
clean() { tr '\n' ' ' | tr -cd ' -~' | cut -c1-"${1:-300}"; }
wanted() {
    [ -z "$ONLY" ] && return 0
    for g in $ONLY; do [ "$g" = "$1" ] && return 0; done
    return 1
}

# wait_for SECONDS COMMAND...: until COMMAND succeeds (by the clock: under
# TCG a poll round costs far more than its sleep).
wait_for() {
    deadline=$(($(cut -d. -f1 /proc/uptime) + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [ "$(cut -d. -f1 /proc/uptime)" -ge "$deadline" ] && return 1
        sleep 0.2
    done
}

# gcmd STEP ARGS...: run a guest step (guest-steps.sh), once the agent took it.
gcmd() {
    SEQ=$((SEQ + 1))
    xenstore-rm "$GD/ack" 2>/dev/null
    xenstore-write "$GD/cmd" "$SEQ $*"
    if ! wait_for 60 sh -c "[ \"\$(xenstore-read $GD/ack)\" = $SEQ ]"; then
        say "the guest agent did not take step $SEQ ($1)"
        return 1
    fi
}

# gresult KEY SECONDS: prints the guest's verdict for KEY (or TIMEOUT).
gresult() {
    if wait_for "$2" xenstore-read "$GD/result/$1"; then
        xenstore-read "$GD/result/$1" | clean
    else
        echo "TIMEOUT after $2 s"
    fi
}

# expect_guest TEST KEY SECONDS: the guest's verdict KEY becomes test TEST.
expect_guest() {
    r="$(gresult "$2" "$3")"
    case "$r" in
    PASS*) pass "$1" "guest: ${r#PASS }" ;;
    *) fail "$1" "guest: $r" ;;
    esac
}

guest_log() {
    echo "----- domU console (last $1 lines)"
    # prefixed, so nothing the guest prints can pass for a verdict line
    tail -n "$1" /var/log/xen/console/guest-*.log 2>/dev/null | tr -cd ' -~\n' | cut -c1-300 |
        sed 's/^/domU| /'
    echo "----- end of domU console"
}

start_guest() {
    t0=$(up)
    if ! xl create /etc/xen/xkbus-guest.cfg >/tmp/xl-create.log 2>&1; then
        fail domu-boot "xl create failed: $(tail -3 /tmp/xl-create.log | clean)"
        return 1
    fi
    D="$(xl domid xkbus-guest 2>/dev/null)"
    GD="/local/domain/$D/data/xkbus-test"
    if ! wait_for 240 xenstore-read "$GD/ready"; then
        fail domu-boot "domain $D did not start its agent within 240 s"
        guest_log 30
        return 1
    fi
    pass domu-boot "domid $D, agent up $(echo "$(up) $t0" | awk '{ printf "%.1f", $1 - $2 }') s after xl create"
}

# --- boot -------------------------------------------------------------------
if xenstore-read domid >/dev/null 2>&1 && xl list >/dev/null 2>&1 &&
    grep -q control_d /proc/xen/capabilities; then
    pass boot "Xen $(xl info xen_version 2>/dev/null | clean 40), dom0 kernel $(uname -r)"
else
    fail boot "Xen services did not come up"
fi

if ! start_guest; then
    say "no guest: nothing else can run"
    exit 1
fi

# --- ring: the Xen transport itself, no daemon -------------------------------
if wanted ring; then
    say "=== ring-level tests (one-page ring, probe programs)"
    gcmd ring-front
    xkbus-xen-probe back --domid "$D" --dir "$GD/ring" --timeout 120 >/tmp/probe.log 2>&1
    rc=$?
    grep -v '^XKBUS-TEST' /tmp/probe.log | sed 's/^/  /'
    grep '^XKBUS-TEST' /tmp/probe.log
    FAILED=$((FAILED + $(grep -c '^XKBUS-TEST .* FAIL' /tmp/probe.log)))
    for t in ring-connect ring-echo ring-large-409600 ring-sigkill-unmap-notify; do
        grep -q "^XKBUS-TEST $t " /tmp/probe.log || fail "$t" "the dom0 probe exited ($rc) before this case"
    done
    r="$(gresult ring-front 30)"
    case "$r" in PASS*) ;; *) say "guest ring-front: $r" ;; esac
fi

# --- bench: xkbus ring against libxenvchan ----------------------------------
if wanted bench; then
    say "=== ring benchmark: xkbus vs libxenvchan, domU -> dom0"
    # Interleaved repetitions, so a burst of load on the host hits all transports alike.
    reps="${BENCH_REPS:-7}"
    bfail=""
    rep=1
    while [ "$rep" -le "$reps" ]; do
        for tr in xkbus vchan xkbus-nospin; do
            dir="$GD/bench-$tr-$rep"
            xenstore-rm "$GD/result/bench-$tr" 2>/dev/null
            gcmd bench "$tr" "$dir" "${BENCH_ROUNDS:-1000}" "${BENCH_RECORDS:-16384}" "${BENCH_BYTES:-4096}"
            timeout 600 xkbus-xen-bench dom0 --transport "$tr" --domid "$D" --dir "$dir" \
                --rounds "${BENCH_ROUNDS:-1000}" --records "${BENCH_RECORDS:-16384}" \
                --bytes "${BENCH_BYTES:-4096}" >/tmp/bench.log 2>&1
            rc=$?
            grep '^XKBUS-BENCH' /tmp/bench.log | sed "s/^XKBUS-BENCH {/XKBUS-BENCH {\"rep\":$rep,/"
            if ! grep -q "^XKBUS-TEST bench-$tr PASS" /tmp/bench.log; then
                bfail="$bfail $tr"
                echo "  bench-$tr rep $rep: exit $rc: $(clean 200 </tmp/bench.log)"
            fi
            r="$(gresult "bench-$tr" 60)"
            case "$r" in PASS*) ;; *) say "guest bench-$tr rep $rep: $r" ;; esac
        done
        rep=$((rep + 1))
    done
    for tr in xkbus vchan xkbus-nospin; do
        case " $bfail " in
        *" $tr "*) fail "bench-$tr" "a repetition failed (see above)" ;;
        *) pass "bench-$tr" "$reps repetitions" ;;
        esac
    done
fi

# --- daemon: xkbusd --xen and guests on the bus ------------------------------
daemon_up() { [ -n "${XKBUSD:-}" ] && kill -0 "$XKBUSD" 2>/dev/null; }
# bound NAME: the name has a binding on bus 0 (polls xkbus bindings)
bound() { xkbus bindings --json 2>/dev/null | grep -qF "\"name\":\"$1\""; }
# dcase NAME: false (and FAIL) when the daemon is not there to test
dcase() {
    daemon_up && return 0
    fail "$1" "xkbusd --xen is not running"
    return 1
}
# queued: some Ksock on bus 0 has a message waiting in its queue
queued() { xkbus stats --json 2>/dev/null | grep -qE '"queued":[1-9]'; }
# synthetic FILE NAME: FILE holds the reply NAME ($.KBUS.Replier.X) from xkbus call --json
synthetic() { grep -qF "\"name\":\"$2\"" "$1"; }

if [ "$SCENARIOS" = all ] && { wanted daemon || wanted destroy; }; then
    say "=== xkbusd --xen scenarios"
    # The guest's policy (docs/security.md): its slot's bus only, repliers
    # only under the names the cases use. Its Limpet (limpet-guest-bus-to-dom0)
    # asks for replier bind reports and forwards with its network id, which
    # guests may not do by default. Matched by domid and by name, so both
    # matchers meet a real xenstore.
    POLICY=/tmp/xkbus-policy.conf
    cat >"$POLICY" <<EOF
[tenant harness-guest]
match = domid:$D domain:xkbus-guest
buses = slot
reply = \$.Xen.* \$.Smoke
bus_settings = yes
network_ids = yes
EOF
    xkbusd --xen --socket "$XKBUS_SOCKET" --buses 2 --policy "$POLICY" >/tmp/xkbusd.log 2>&1 &
    XKBUSD=$!
    if wait_for 60 test -S "$XKBUS_SOCKET" && daemon_up; then
        pass daemon-start "xkbusd --xen pid $XKBUSD, socket $XKBUS_SOCKET"
    else
        fail daemon-start "xkbusd --xen did not start: $(tail -5 /tmp/xkbusd.log | clean)"
        XKBUSD=""
    fi

    if dcase daemon-provision; then
        if out="$(xkbus xen-provision "$D" --slots 4 2>&1)" &&
            [ "$(xenstore-read "/local/domain/0/backend/xkbus/$D/0/state" 2>/dev/null)" = 2 ] &&
            xenstore-read "/local/domain/$D/device/xkbus/3/backend-id" >/dev/null 2>&1; then
            pass daemon-provision "4 slots for domain $D: $(echo "$out" | clean 80)"
        else
            fail daemon-provision "xkbus xen-provision $D --slots 4: $(echo "$out" | clean 200)"
        fi
    fi
fi

if [ "$SCENARIOS" = all ] && wanted daemon; then
    # dom0 requests, the guest replies
    if dcase dom0-calls-guest-replier; then
        gcmd reply guest-echo '$.Xen.Guest.Echo' guest-pong 1
        if wait_for 120 bound '$.Xen.Guest.Echo'; then
            out="$(xkbus call '$.Xen.Guest.Echo' from-dom0 --timeout 90 --json 2>&1)"
            case "$out" in
            *'"data":"guest-pong"'*) pass dom0-calls-guest-replier "$(echo "$out" | clean 160)" ;;
            *) fail dom0-calls-guest-replier "reply: $(echo "$out" | clean)" ;;
            esac
        else
            fail dom0-calls-guest-replier "the guest replier never bound: $(gresult guest-echo 1)"
        fi
    fi

    # the guest requests, dom0 replies (this replier stays for the reconnect case)
    if dcase guest-calls-dom0-replier; then
        xkbus reply '$.Xen.Dom0.Echo' --data dom0-pong >/tmp/dom0-replier.log 2>&1 &
        DOM0_REPLIER=$!
        wait_for 30 bound '$.Xen.Dom0.Echo'
        gcmd call guest-call '$.Xen.Dom0.Echo' dom0-pong
        expect_guest guest-calls-dom0-replier guest-call 120
    fi

    # the guest listens with a wildcard; dom0 announces
    if dcase guest-wildcard-listen; then
        gcmd listen guest-listen '$.Xen.Announce.*' 2
        if wait_for 120 bound '$.Xen.Announce.*'; then
            xkbus send '$.Xen.Announce.Kitchen' one >/dev/null 2>&1
            xkbus send '$.Xen.Other' not-for-the-guest >/dev/null 2>&1
            xkbus send '$.Xen.Announce.Hall.Lamp' two >/dev/null 2>&1
            r="$(gresult guest-listen 120)"
            case "$r" in
            "PASS \$.Xen.Announce.Kitchen \$.Xen.Announce.Hall.Lamp"*) pass guest-wildcard-listen "guest got: ${r#PASS }" ;;
            *) fail guest-wildcard-listen "guest: $r" ;;
            esac
        else
            fail guest-wildcard-listen "the guest listener never bound: $(gresult guest-listen 1)"
        fi
    fi

    # a guest replier killed with SIGKILL: one request read (Ignored), one queued (GoneAway)
    if dcase guest-replier-sigkill-read-ignored; then
        gcmd stuck-replier stuck '$.Xen.Guest.Stuck'
        if wait_for 120 bound '$.Xen.Guest.Stuck'; then
            xkbus call '$.Xen.Guest.Stuck' first --timeout 240 --json >/tmp/stuck1.out 2>&1 &
            c1=$!
            gresult stuck-read 120 >/tmp/stuck-read
            xkbus call '$.Xen.Guest.Stuck' second --timeout 240 --json >/tmp/stuck2.out 2>&1 &
            c2=$!
            # the second request must sit in the replier's queue before the kill
            wait_for 60 queued || say "the second request is not queued yet"
            t0=$(up)
            gcmd kill stuck
            wait "$c1"
            wait "$c2"
            took="$(echo "$(up) $t0" | awk '{ printf "%.1f", $1 - $2 }')"
            if synthetic /tmp/stuck1.out '$.KBUS.Replier.Ignored'; then
                pass guest-replier-sigkill-read-ignored "read request answered Ignored ${took} s after the kill request"
            else
                fail guest-replier-sigkill-read-ignored "read: $(clean </tmp/stuck-read); reply: $(clean </tmp/stuck1.out)"
            fi
            if synthetic /tmp/stuck2.out '$.KBUS.Replier.GoneAway'; then
                pass guest-replier-sigkill-queued-goneaway "queued request answered GoneAway"
            else
                fail guest-replier-sigkill-queued-goneaway "reply: $(clean </tmp/stuck2.out)"
            fi
        else
            fail guest-replier-sigkill-read-ignored "the stuck replier never bound: $(gresult stuck 1)"
            fail guest-replier-sigkill-queued-goneaway "the stuck replier never bound"
        fi
    else
        fail guest-replier-sigkill-queued-goneaway "xkbusd --xen is not running"
    fi

    # slots come back: 6 processes in turn on 4 slots, after the killed one
    if dcase guest-reconnect-freed-slot; then
        say "slot states: $(for s in 0 1 2 3; do printf '%s ' "$(xenstore-read "/local/domain/0/backend/xkbus/$D/$s/state" 2>&1 | clean 20)"; done)"
        gcmd reconnect reconnect '$.Xen.Dom0.Echo' dom0-pong 6
        expect_guest guest-reconnect-freed-slot reconnect 300
    fi

    # the largest message the bus takes (409600 bytes in all), both ways through xkbusd
    if dcase daemon-large-message-guest-to-dom0; then
        xkbus-xen-bigmsg listen '$.Xen.Big.Up' 300 >/tmp/big-up.log 2>&1 &
        big=$!
        wait_for 60 grep -q bound /tmp/big-up.log
        gcmd bigmsg-send big-up '$.Xen.Big.Up'
        r="$(gresult big-up 240)"
        wait "$big"
        rc=$?
        if [ "$rc" -eq 0 ]; then
            pass daemon-large-message-guest-to-dom0 "dom0 $(grep -m1 PASS /tmp/big-up.log | clean 120); guest ${r#PASS}"
        else
            fail daemon-large-message-guest-to-dom0 "dom0 listener exit $rc: $(clean 200 </tmp/big-up.log); guest: $r"
        fi
    fi
    if dcase daemon-large-message-dom0-to-guest; then
        gcmd bigmsg-listen big-down '$.Xen.Big.Down'
        if wait_for 120 bound '$.Xen.Big.Down'; then
            out="$(xkbus-xen-bigmsg send '$.Xen.Big.Down' 2>&1)"
            r="$(gresult big-down 240)"
            case "$r" in
            PASS*) pass daemon-large-message-dom0-to-guest "dom0 $(echo "$out" | clean 120); guest ${r#PASS}" ;;
            *) fail daemon-large-message-dom0-to-guest "dom0: $(echo "$out" | clean 160); guest: $r" ;;
            esac
        else
            fail daemon-large-message-dom0-to-guest "the guest listener never bound: $(gresult big-down 1)"
        fi
    fi

    # the libkbus C API program, unchanged
    if dcase c-smoke-in-guest; then
        gcmd c-smoke
        expect_guest c-smoke-in-guest c-smoke 180
    fi

    # a guest's own local bus joined to dom0's by a Limpet in the guest: the
    # Limpet reaches dom0 through the guest's Xen frontend (xenstore device,
    # grants), and the guest's xkbusd through its trusted socket
    if dcase limpet-guest-bus-to-dom0; then
        gcmd limpet limpet-guest '$.Xen.GuestBus.Echo' guest-bus-pong
        if wait_for 180 bound '$.Xen.GuestBus.Echo'; then
            out="$(xkbus call '$.Xen.GuestBus.Echo' from-dom0 --timeout 90 --json 2>&1)"
            case "$out" in
            *'"data":"guest-bus-pong"'*) pass limpet-guest-bus-to-dom0 "$(echo "$out" | clean 160)" ;;
            *) fail limpet-guest-bus-to-dom0 "reply: $(echo "$out" | clean); guest: $(gresult limpet-guest 30)" ;;
            esac
        else
            fail limpet-guest-bus-to-dom0 "the proxy binding never appeared on dom0's bus: $(gresult limpet-guest 1)"
        fi
    fi

    # the policy: the guest is refused a bus outside its slot and a replier
    # name outside its rule (EPERM, one log line each, naming the rule),
    # while dom0 still uses both
    if dcase guest-policy-refusals; then
        gcmd policy-refused guest-policy '$.Forbidden.Echo'
        r="$(gresult guest-policy 120)"
        refused="refused dom$D (xkbus-guest)"
        if ! grep -qF "$refused: open bus on bus 1 (rule: $POLICY:3 [tenant harness-guest] buses)" /tmp/xkbusd.log; then
            fail guest-policy-refusals "no log line for bus 1; guest: $r; log: $(grep refused /tmp/xkbusd.log | tail -3 | clean)"
        elif ! grep -qF "$refused: bind as replier on bus 0 \$.Forbidden.Echo (rule: $POLICY:4 [tenant harness-guest] reply)" /tmp/xkbusd.log; then
            fail guest-policy-refusals "no log line for the replier; guest: $r; log: $(grep refused /tmp/xkbusd.log | tail -3 | clean)"
        else
            case "$r" in
            PASS*) pass guest-policy-refusals "guest: ${r#PASS }" ;;
            *) fail guest-policy-refusals "guest: $r" ;;
            esac
        fi
    fi

    # dom0 is not bound by the guest's rule: bus 1 and that name serve it
    if dcase dom0-unaffected-by-guest-policy; then
        xkbus --bus 1 reply '$.Forbidden.Echo' --data dom0-only --count 1 >/tmp/dom0-forbidden.log 2>&1 &
        forbidden=$!
        if wait_for 30 sh -c "xkbus --bus 1 bindings --json | grep -qF '\"name\":\"\$.Forbidden.Echo\"'"; then
            out="$(xkbus --bus 1 call '$.Forbidden.Echo' from-dom0 --timeout 60 --json 2>&1)"
            case "$out" in
            *'"data":"dom0-only"'*) pass dom0-unaffected-by-guest-policy "$(echo "$out" | clean 160)" ;;
            *) fail dom0-unaffected-by-guest-policy "reply: $(echo "$out" | clean)" ;;
            esac
        else
            fail dom0-unaffected-by-guest-policy "dom0's replier on bus 1 never bound: $(clean </tmp/dom0-forbidden.log)"
        fi
        kill "$forbidden" 2>/dev/null
        wait "$forbidden" 2>/dev/null
    fi
fi

# --- destroy: the whole domU goes, xkbusd cleans up ---------------------------
if [ "$SCENARIOS" = all ] && wanted destroy; then
    if dcase domain-destroy-synthetic-replies; then
        gcmd stuck-replier doomed '$.Xen.Doomed'
        if wait_for 120 bound '$.Xen.Doomed'; then
            xkbus call '$.Xen.Doomed' first --timeout 240 --json >/tmp/doomed1.out 2>&1 &
            c1=$!
            gresult doomed-read 120 >/dev/null
            xkbus call '$.Xen.Doomed' second --timeout 240 --json >/tmp/doomed2.out 2>&1 &
            c2=$!
            wait_for 60 queued || say "the second request is not queued yet"
            t0=$(up)
            xl destroy "$D"
            wait "$c1"
            wait "$c2"
            took="$(echo "$(up) $t0" | awk '{ printf "%.1f", $1 - $2 }')"
            if grep -qF '$.KBUS.Replier.' /tmp/doomed1.out && grep -qF '$.KBUS.Replier.' /tmp/doomed2.out; then
                pass domain-destroy-synthetic-replies "$(sed -n 's/.*"name":"\([^"]*\)".*/\1/p' /tmp/doomed1.out /tmp/doomed2.out | tr '\n' ' ')within ${took} s of xl destroy"
            else
                fail domain-destroy-synthetic-replies "replies: $(clean </tmp/doomed1.out) / $(clean </tmp/doomed2.out)"
            fi
        else
            fail domain-destroy-synthetic-replies "the doomed replier never bound: $(gresult doomed 1)"
            xl destroy "$D"
        fi
        if wait_for 60 sh -c "! xenstore-read /local/domain/0/backend/xkbus/$D/0/state" &&
            wait_for 60 sh -c "! xl domid xkbus-guest"; then
            pass domain-destroy-release-cleanup "backend nodes of domain $D removed, domain reaped"
        else
            fail domain-destroy-release-cleanup "after 60 s: backend nodes $(xenstore-ls "/local/domain/0/backend/xkbus/$D" 2>&1 | wc -l) lines; xl list: $(xl list | tail -n +2 | clean 200)"
        fi
        if daemon_up; then
            pass daemon-survives "xkbusd still serving after all of the above"
        else
            fail daemon-survives "xkbusd died: $(tail -5 /tmp/xkbusd.log | clean)"
        fi
    fi
fi

if [ -n "${DOM0_REPLIER:-}" ]; then kill "$DOM0_REPLIER" 2>/dev/null; fi
if [ "$FAILED" -gt 0 ]; then
    guest_log 60
    if [ -s /tmp/xkbusd.log ]; then
        echo "----- xkbusd log (last 40 lines)"
        tail -n 40 /tmp/xkbusd.log | tr -cd ' -~\n' | cut -c1-300 | sed 's/^/xkbusd| /'
        echo "----- end of xkbusd log"
    fi
fi
if [ -n "${XKBUSD:-}" ]; then kill "$XKBUSD" 2>/dev/null; fi
xl destroy xkbus-guest >/dev/null 2>&1
say "done: $FAILED failed"
[ "$FAILED" -eq 0 ]
