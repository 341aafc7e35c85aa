#!/bin/sh
# /init of the harness's dom0 (busybox sh; the overlay puts it over the base
# image's). Brings up the Xen userspace, runs /xkbus/dom0-scenarios.sh, prints
# XKBUS-HARNESS-DONE and powers off (QEMU runs with -no-reboot, so that ends it).
# Kernel command line: xkbus.scenarios=ring|all, xkbus.only=NAME[,NAME...],
# xkbus.shell=1 (a shell at the end instead of powering off).
# shellcheck shell=sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin:/usr/lib/xen-4.17/bin:/xkbus/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mkdir -p /run/xen /run/xenstored /run/xkbus /var/log/xen/console
echo "XKBUS-HARNESS dom0 up: kernel $(uname -r), uptime $(cut -d' ' -f1 /proc/uptime) s"

for m in xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs; do
    insmod "/lib/modules/$m.ko" || echo "XKBUS-HARNESS insmod $m failed"
done
mount -t xenfs xenfs /proc/xen

export XENSTORED_ROOTDIR=/run/xenstored
xenstored --pid-file /run/xenstore.pid
i=0
while [ ! -S /run/xenstored/socket ] && [ $i -lt 300 ]; do
    sleep 0.1
    i=$((i + 1))
done
xen-init-dom0 >/dev/null || echo "XKBUS-HARNESS xen-init-dom0 failed"
xenconsoled --pid-file=/run/xenconsoled.pid --log=guest --log-dir=/var/log/xen/console
echo "XKBUS-HARNESS xen services up at $(cut -d' ' -f1 /proc/uptime) s"

(cd /xkbus && sh ./dom0-scenarios.sh)
rc=$?
echo "XKBUS-HARNESS-DONE rc=$rc"
if grep -q 'xkbus.shell=1' /proc/cmdline; then
    exec setsid cttyhack sh
fi
sync
reboot -f
