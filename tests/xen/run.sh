#!/usr/bin/env bash
# The QEMU/Xen harness (`./run test-xen`): builds the project's Xen programs
# into build-xen/, packs them over cached Debian-built images, boots Xen 4.17
# with a Linux dom0 under QEMU TCG (no KVM needed), lets dom0 start a PV domU
# and run the scenarios, and reads each test case's verdict from the serial
# console. Exit status 0 only if every expected case printed PASS before the
# timeout.
#
# Environment:
#   XEN_SCENARIOS   ring (boot, ring transport, vchan benchmark) or all (also the
#                   xkbusd --xen scenarios; default)
#   XEN_ONLY        comma-separated groups to run: ring,bench,daemon,destroy
#   XEN_TIMEOUT     seconds for the whole boot (default 1800)
#   XEN_SHELL=1     leave a shell in dom0 at the end (interactive debugging;
#                   use with XEN_SERIAL=stdio)
#   XEN_SERIAL      stdio to put the serial console on the terminal
#   BENCH_ROUNDS, BENCH_RECORDS, BENCH_BYTES, BENCH_REPS   the vchan comparison's
#                   sizes and repetitions (defaults 1000, 16384, 4096, 7: 64 MiB
#                   streams, since shorter ones spread by 3x from run to run)
#   JOBS            build parallelism (default 2)
#   XEN_BUILD_DIR   build tree to use (default build-xen/, configured with
#                   -DXKBUS_WITH_XEN=ON; an existing tree such as build/ saves a build)
# Images are cached under ${XDG_CACHE_HOME:-~/.cache}/xkbus-xen/ (images.sh).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=tests/xen/lib.sh
source "$HERE/lib.sh"

SCENARIOS="${XEN_SCENARIOS:-all}"
case "$SCENARIOS" in ring | all) ;; *) xdie "XEN_SCENARIOS must be ring or all" ;; esac
ONLY="${XEN_ONLY:-}"
TIMEOUT="${XEN_TIMEOUT:-1800}"
BUILD="$(realpath -m "${XEN_BUILD_DIR:-$ROOT/build-xen}")"
JOBS="${JOBS:-2}"
start=$(date +%s)

# --- images (cached) ---------------------------------------------------------
images="$("$HERE/images.sh")"
xlog "images: $images ($(($(date +%s) - start)) s)"

# --- the project's programs --------------------------------------------------
if [ ! -f "$BUILD/build.ninja" ]; then
    cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DXKBUS_WITH_XEN=ON
fi
cmake --build "$BUILD" -j "$JOBS" --target xkbus-xen-probe xkbus-xen-bench
DAEMON_BUILT=1
if [ "$SCENARIOS" = all ]; then
    if ! cmake --build "$BUILD" -j "$JOBS" --target xkbusd xkbus xkbus-limpet xkbus-xen-c-smoke \
        xkbus-xen-bigmsg; then
        xlog "xkbusd/xkbus/c-smoke did not build: their scenarios will fail"
        DAEMON_BUILT=0
    fi
fi
xlog "programs built ($(($(date +%s) - start)) s)"

# --- the overlay: programs, scripts, guest config (rebuilt every run) -------
work="$BUILD/xen-harness"
rm -rf "$work"
mkdir -p "$work"
bin_if() { [ -x "$1" ] && copy_elf "$2" "$1" "/xkbus/bin/$(basename "$1")"; }

guest="$work/domU-root"
mkdir -p "$guest/xkbus/bin"
install -m 0755 "$HERE/domU-init.sh" "$guest/init"
install -m 0644 "$HERE/guest-steps.sh" "$guest/xkbus/guest-steps.sh"
bin_if "$BUILD/tests/xen/xkbus-xen-probe" "$guest"
bin_if "$BUILD/bench/xen/xkbus-xen-bench" "$guest"
if [ "$DAEMON_BUILT" = 1 ] && [ "$SCENARIOS" = all ]; then
    bin_if "$BUILD/frontend/cli/xkbus" "$guest"
    bin_if "$BUILD/backend/daemon/xkbusd" "$guest"
    bin_if "$BUILD/limpet/xkbus-limpet" "$guest"
    bin_if "$BUILD/tests/xen/xkbus-xen-c-smoke" "$guest"
    bin_if "$BUILD/tests/xen/xkbus-xen-bigmsg" "$guest"
fi
pack_cpio "$guest" "$work/domU-overlay.cpio" plain

host="$work/dom0-root"
mkdir -p "$host/xkbus/bin" "$host/boot" "$host/etc/xen"
install -m 0755 "$HERE/dom0-init.sh" "$host/init"
install -m 0644 "$HERE/dom0-scenarios.sh" "$host/xkbus/dom0-scenarios.sh"
bin_if "$BUILD/tests/xen/xkbus-xen-probe" "$host"
bin_if "$BUILD/bench/xen/xkbus-xen-bench" "$host"
if [ "$DAEMON_BUILT" = 1 ] && [ "$SCENARIOS" = all ]; then
    bin_if "$BUILD/backend/daemon/xkbusd" "$host"
    bin_if "$BUILD/frontend/cli/xkbus" "$host"
    bin_if "$BUILD/tests/xen/xkbus-xen-bigmsg" "$host"
fi
# Linux unpacks concatenated archives in order: the overlay lands over the base.
# One gzip stream for both: libxc unpacks a PV ramdisk and reads one gzip member.
cat "$images/domU-base.cpio" "$work/domU-overlay.cpio" | gzip -1 >"$host/boot/domU.cpio.gz"
cat >"$host/etc/xen/xkbus-guest.cfg" <<'CFG'
name = "xkbus-guest"
type = "pv"
memory = 256
vcpus = 1
kernel = "/boot/domU-vmlinux.gz"
ramdisk = "/boot/domU.cpio.gz"
extra = "console=hvc0 rdinit=/init loglevel=4"
on_poweroff = "destroy"
on_reboot = "destroy"
on_crash = "destroy"
CFG
pack_cpio "$host" "$work/dom0-overlay.cpio.gz"
cat "$images/dom0-base.cpio.gz" "$work/dom0-overlay.cpio.gz" >"$work/dom0.cpio.gz"

# --- boot --------------------------------------------------------------------
log="$BUILD/xen-serial.log"
rm -f "$log"
dom0_args="console=hvc0 earlyprintk=xen rdinit=/init loglevel=4 xkbus.scenarios=$SCENARIOS"
[ -n "$ONLY" ] && dom0_args+=" xkbus.only=$ONLY"
[ "${XEN_SHELL:-0}" = 1 ] && dom0_args+=" xkbus.shell=1"
for v in BENCH_ROUNDS BENCH_RECORDS BENCH_BYTES BENCH_REPS; do
    # passed to dom0's /init as environment (unknown key=value words become env vars)
    if [ -n "${!v:-}" ]; then
        [[ "${!v}" =~ ^[0-9]+$ ]] || xdie "$v must be a number"
        dom0_args+=" $v=${!v}"
    fi
done
xen_args="console=com1 com1=115200,8n1 loglvl=warning guest_loglvl=warning dom0_mem=512M,max:512M"
xen_args+=" dom0_max_vcpus=2 noreboot=0"
serial="file:$log"
[ "${XEN_SERIAL:-}" = stdio ] && serial="mon:stdio"

xlog "booting Xen + dom0 under QEMU TCG (timeout ${TIMEOUT} s, scenarios: $SCENARIOS${ONLY:+, only $ONLY}); serial log: $log"
boot_start=$(date +%s)
touch "$log"
# Progress on the terminal while it runs: the verdict lines as they appear.
tail -n +1 -F --pid=$$ "$log" 2>/dev/null | grep --line-buffered -aE '^(XKBUS-TEST|XKBUS-HARNESS|XKBUS-BENCH)' &
tailer=$!
trap 'kill "$tailer" 2>/dev/null || true' EXIT
qemu_rc=0
# Module command lines are comma-separated for QEMU's multiboot loader: no ',' in them.
timeout --foreground -k 10 "$TIMEOUT" qemu-system-x86_64 \
    -accel tcg,thread=multi -machine pc -cpu qemu64,+rdrand -smp 2 -m 1536 \
    -display none -monitor none -serial "$serial" -no-reboot \
    -kernel "$images/xen" -append "$xen_args" \
    -initrd "$images/vmlinuz $dom0_args,$work/dom0.cpio.gz" </dev/null || qemu_rc=$?
boot_seconds=$(($(date +%s) - boot_start))
sleep 0.5
kill "$tailer" 2>/dev/null || true

# --- verdicts -----------------------------------------------------------------
verdicts="$(tr -d '\r' <"$log" | grep -aE '^XKBUS-TEST [A-Za-z0-9._-]+ (PASS|FAIL)' || true)"
expected=(boot domu-boot)
group() { [ -z "$ONLY" ] || [[ ",$ONLY," == *",$1,"* ]]; }
group ring && expected+=(ring-connect ring-echo ring-large-409600 ring-sigkill-unmap-notify)
group bench && expected+=(bench-xkbus bench-vchan bench-xkbus-nospin)
if [ "$SCENARIOS" = all ]; then
    if group daemon || group destroy; then expected+=(daemon-start daemon-provision); fi
    group daemon && expected+=(dom0-calls-guest-replier guest-calls-dom0-replier
        guest-wildcard-listen guest-replier-sigkill-read-ignored
        guest-replier-sigkill-queued-goneaway guest-reconnect-freed-slot
        daemon-large-message-guest-to-dom0 daemon-large-message-dom0-to-guest c-smoke-in-guest
        limpet-guest-bus-to-dom0 guest-policy-refusals dom0-unaffected-by-guest-policy)
    group destroy && expected+=(domain-destroy-synthetic-replies domain-destroy-release-cleanup
        daemon-survives)
fi

passed=0
failed=0
echo
echo "===== Xen harness summary (scenarios: $SCENARIOS${ONLY:+, only $ONLY})"
for t in "${expected[@]}"; do
    line="$(grep -m1 -E "^XKBUS-TEST $t (PASS|FAIL)" <<<"$verdicts" || true)"
    if [ -z "$line" ]; then
        echo "FAIL  $t: no verdict on the serial console"
        failed=$((failed + 1))
    elif [[ "$line" == "XKBUS-TEST $t PASS"* ]]; then
        echo "PASS  $t${line#"XKBUS-TEST $t PASS"}"
        passed=$((passed + 1))
    else
        echo "FAIL  $t: ${line#"XKBUS-TEST $t FAIL: "}"
        failed=$((failed + 1))
    fi
done
done_line="$(tr -d '\r' <"$log" | grep -a -m1 '^XKBUS-HARNESS-DONE' || true)"
if [ -z "$done_line" ]; then
    echo "FAIL  harness: no XKBUS-HARNESS-DONE (QEMU exit $qemu_rc after $boot_seconds s; 124 = timeout of $TIMEOUT s)"
    echo "----- last 30 lines of $log"
    tr -d '\r' <"$log" | tail -n 30
    failed=$((failed + 1))
fi

# --- the vchan comparison ----------------------------------------------------
bench_lines="$(tr -d '\r' <"$log" | sed -n 's/^XKBUS-BENCH //p')"
if [ -n "$bench_lines" ] && command -v jq >/dev/null; then
    mkdir -p "$ROOT/bench/results"
    if jq -s --arg cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')" \
        --arg cores "$(nproc)" '
        def median: sort | if length == 0 then null else .[(length - 1) / 2 | floor] end;
        (group_by(.transport) | map({(.[0].transport): {
            repetitions: length, ring_bytes_each_way: .[0].ring_bytes_each_way,
            ping_bytes: .[0].ping_bytes, ping_pong_rounds: .[0].ping_pong_rounds,
            stream_record_bytes: .[0].stream_record_bytes, stream_records: .[0].stream_records,
            one_way_p50_us: (map(.one_way_p50_us) | median),
            one_way_p99_us: (map(.one_way_p99_us) | median),
            stream_MiB_per_s: (map(.stream_MiB_per_s) | median),
            stream_receiver_sleeps_per_MiB: (map(.stream_receiver_sleeps_per_MiB) | median),
            stream_receiver_cpu_us_per_MiB: (map(.stream_receiver_cpu_us_per_MiB) | median),
            each_repetition: map(del(.transport, .ring_bytes_each_way, .ping_bytes,
                .ping_pong_rounds, .stream_record_bytes, .stream_records))}}) | add) as $r
        | {machine: {host_cpu_model: $cpu, host_cores: ($cores | tonumber),
                     emulation: "QEMU TCG, Xen 4.17, PV dom0 (2 vCPUs) and PV domU (1 vCPU)"},
           note: "domU -> dom0 streaming; ping-pong one-way = half the round trip, dom0 initiates; both transports with 64 KiB rings each way, as shipped (xkbus-nospin: xkbus with spinning off). Figures are medians over interleaved repetitions. Under TCG only the ratios mean anything.",
           xkbus: $r.xkbus, vchan: $r.vchan, "xkbus-nospin": $r["xkbus-nospin"]}
        + (if ($r.xkbus and $r.vchan) then
            {ratio_xkbus_over_vchan: {
                stream_throughput: ($r.xkbus.stream_MiB_per_s / $r.vchan.stream_MiB_per_s),
                one_way_p50_latency: ($r.xkbus.one_way_p50_us / $r.vchan.one_way_p50_us),
                one_way_p99_latency: ($r.xkbus.one_way_p99_us / $r.vchan.one_way_p99_us)}}
           else {} end)
        + (if ($r["xkbus-nospin"] and $r.vchan) then
            {ratio_xkbus_nospin_over_vchan: {
                stream_throughput: ($r["xkbus-nospin"].stream_MiB_per_s / $r.vchan.stream_MiB_per_s),
                one_way_p50_latency: ($r["xkbus-nospin"].one_way_p50_us / $r.vchan.one_way_p50_us),
                one_way_p99_latency: ($r["xkbus-nospin"].one_way_p99_us / $r.vchan.one_way_p99_us)}}
           else {} end)' <<<"$bench_lines" >"$ROOT/bench/results/xen.json.tmp"; then
        mv "$ROOT/bench/results/xen.json.tmp" "$ROOT/bench/results/xen.json"
        echo "----- xkbus ring vs libxenvchan (bench/results/xen.json)"
        jq -r 'def row($name; $t): [$name, $t.stream_MiB_per_s, $t.one_way_p50_us, $t.one_way_p99_us,
                   $t.stream_receiver_sleeps_per_MiB, $t.stream_receiver_cpu_us_per_MiB];
               def ratio($name; $r): [$name, $r.stream_throughput, $r.one_way_p50_latency,
                   $r.one_way_p99_latency, "", ""];
               (["", "stream MiB/s", "one-way p50 us", "one-way p99 us", "dom0 sleeps/MiB",
                 "dom0 CPU us/MiB"] | @tsv),
               (row("xkbus"; .xkbus) | @tsv),
               (row("vchan"; .vchan) | @tsv),
               (if .["xkbus-nospin"] then (row("xkbus-nospin"; .["xkbus-nospin"]) | @tsv) else empty end),
               (if .ratio_xkbus_over_vchan then (ratio("xkbus/vchan"; .ratio_xkbus_over_vchan) | @tsv) else empty end),
               (if .ratio_xkbus_nospin_over_vchan then
                 (ratio("xkbus-nospin/vchan"; .ratio_xkbus_nospin_over_vchan) | @tsv) else empty end)' \
            "$ROOT/bench/results/xen.json" | column -t -s $'\t'
    else
        rm -f "$ROOT/bench/results/xen.json.tmp"
        echo "(could not parse the XKBUS-BENCH lines)"
    fi
fi

echo "===== $passed passed, $failed failed; boot ${boot_seconds} s, total $(($(date +%s) - start)) s; serial log: $log"
[ "$failed" -eq 0 ]
