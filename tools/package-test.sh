#!/usr/bin/env bash
# The package test: installs the .debs given with dpkg -i into a throwaway
# copy of this machine's root (an overlay in a private mount namespace, so
# the machine itself is untouched and every dependency is already there),
# then, inside it, starts xkbusd from the installed unit's ExecStart (with
# the unit's Group= and UMask=, as systemd would) and runs clients against
# it: the CLI as root, as a member of the group xkbus and as a stranger, and
# a C++ program built against libxkbus-dev with pkg-config.
#   tools/package-test.sh build-pkg/packages/*.deb
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

if [ "${1:-}" != "--in-namespace" ]; then
    [ "$#" -gt 0 ] || { echo "usage: $0 PACKAGE.deb..." >&2; exit 64; }
    exec unshare --mount --propagation private --fork -- "$0" --in-namespace "$@"
fi
shift

scratch="$(mktemp -d /tmp/xkbus-package-test-XXXXXX)"
mount -t tmpfs tmpfs "$scratch"
mkdir "$scratch/upper" "$scratch/work" "$scratch/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$scratch/upper,workdir=$scratch/work" \
    "$scratch/root"
root="$scratch/root"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount -t tmpfs tmpfs "$root/run"
mount -t tmpfs tmpfs "$root/tmp"
mkdir "$root/tmp/debs"
cp "$@" "$root/tmp/debs/"
cp "$here/package-test-inside.sh" "$here/../README.md" "$root/tmp/"
status=0
chroot "$root" /bin/bash /tmp/package-test-inside.sh || status=$?
umount -R "$root" 2>/dev/null || true
umount "$scratch" && rmdir "$scratch"
exit "$status"
