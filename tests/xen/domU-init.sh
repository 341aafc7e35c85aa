#!/bin/sh
# /init of the harness's domU (busybox sh). Brings up the Xen devices, then
# runs the test agent: dom0 writes "<seq> <step> [args]" into
# data/xkbus-test/cmd; the agent acknowledges (data/xkbus-test/ack) and runs
# guest-steps.sh <step> in the background, which writes its verdict under
# data/xkbus-test/result/<step>. Relative xenstore paths are under
# /local/domain/<this domid>/.
# shellcheck shell=sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin:/xkbus/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /tmp /run
for m in xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs; do
    insmod "/lib/modules/$m.ko" 2>/dev/null
done
mount -t xenfs xenfs /proc/xen
echo "domU: up at $(cut -d' ' -f1 /proc/uptime) s, caps '$(cat /proc/xen/capabilities)', /dev/xen: $(echo /dev/xen/*)"

xenstore-write data/xkbus-test/ready 1
set -f # step arguments hold KBUS names with * and %: never globs
last=""
while :; do
    cmd="$(xenstore-read data/xkbus-test/cmd 2>/dev/null)" || cmd=""
    if [ -n "$cmd" ] && [ "$cmd" != "$last" ]; then
        last="$cmd"
        seq="${cmd%% *}"
        echo "domU: step '$cmd' at $(cut -d' ' -f1 /proc/uptime) s"
        # shellcheck disable=SC2086 # the step name and its arguments, split on purpose
        sh /xkbus/guest-steps.sh ${cmd#* } </dev/null >/dev/console 2>&1 &
        xenstore-write data/xkbus-test/ack "$seq"
    fi
    sleep 0.2
done
