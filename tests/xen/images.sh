#!/usr/bin/env bash
# Builds (or finds in the cache) the images the Xen harness boots, from Debian
# packages only:
#   xen               the Xen 4.17 hypervisor (gunzipped: QEMU's multiboot loader takes it)
#   vmlinuz           Debian's kernel, for dom0 (QEMU's -initrd module)
#   dom0-base.cpio.gz busybox, xenstored, xenconsoled, xl, the xenstore CLIs, the Xen
#                     libraries, the xen-* kernel modules, the domU kernel
#   domU-base.cpio    busybox, the xen-* kernel modules, the xenstore CLIs; not
#                     compressed: libxc gunzips a PV ramdisk itself and keeps only
#                     the first gzip member, so the run gzips base + overlay as one
# The project's binaries and the init scripts are NOT in here: overlay.sh packs
# them each run. The cache directory is keyed by the package versions and by this
# script, so an upgrade or an edit here rebuilds; anything else reuses it.
#   tests/xen/images.sh        prints the image directory on stdout
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/xen/lib.sh
source "$HERE/lib.sh"

kernel_package() {
    apt-cache depends linux-image-amd64 2>/dev/null |
        awk '/Depends: linux-image-[0-9]/ { print $2; exit }'
}
KERNEL_PKG="$(kernel_package)"
if [ -z "$KERNEL_PKG" ]; then
    # A fresh machine may not have read the package lists yet.
    if [ "$(id -u)" -eq 0 ]; then apt-get update -q >&2; else sudo apt-get update -q >&2; fi
    KERNEL_PKG="$(kernel_package)"
fi
[ -n "$KERNEL_PKG" ] || xdie "cannot resolve linux-image-amd64 (apt-get update?)"
candidate() { apt-cache policy "$1" | awk '/Candidate:/ { print $2; exit }'; }
installed() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo none; }

key_text="$(
    echo "kernel $KERNEL_PKG $(candidate "$KERNEL_PKG")"
    echo "xen-hypervisor $(candidate xen-hypervisor-4.17-amd64)"
    for p in xen-utils-4.17 libxen-dev xenstore-utils busybox-static libc6; do
        echo "$p $(installed "$p")"
    done
    sha256sum "$HERE/images.sh" "$HERE/lib.sh" | cut -d' ' -f1
)"
KEY="$(printf '%s\n' "$key_text" | sha256sum | cut -c1-16)"
OUT="$XEN_CACHE/images-$KEY"
if [ -f "$OUT/complete" ]; then
    echo "$OUT"
    exit 0
fi

xlog "building Xen/kernel images into $OUT (cache miss)"
mkdir -p "$XEN_CACHE"
work="$(mktemp -d "$XEN_CACHE/build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
printf '%s\n' "$key_text" >"$work/versions.txt"

# --- the .debs: downloaded and unpacked, never installed on the host --------
mkdir -p "$work/debs" "$work/sys"
(cd "$work/debs" && apt-get download -q "$KERNEL_PKG" xen-hypervisor-4.17-amd64 >&2) 2>&1 |
    grep -v 'unsandboxed' >&2 || true
ls "$work/debs/"linux-image-*.deb "$work/debs/"xen-hypervisor-*.deb >/dev/null ||
    xdie "apt-get download failed"
dpkg-deb -x "$work"/debs/xen-hypervisor-*.deb "$work/sys"
dpkg-deb --fsys-tarfile "$work"/debs/linux-image-*.deb |
    tar -x -C "$work/sys" --wildcards './boot/vmlinuz-*' './lib/modules/*/kernel/drivers/xen/*'
kver="$(basename "$(ls -d "$work"/sys/lib/modules/*)")"
kmods="$work/sys/lib/modules/$kver/kernel/drivers/xen"

zcat "$work"/sys/boot/xen-4.17-amd64.gz >"$work/xen"
file -b "$work/xen" | grep -q '^ELF 32-bit' || xdie "the hypervisor is not a 32-bit ELF"
cp -L "$work/sys/boot/vmlinuz-$kver" "$work/vmlinuz"

# The domU kernel: libxc would have to unpack Debian's XZ bzImage itself (slow
# under TCG); the ELF inside, gzipped, boots much faster.
offset="$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$work/vmlinuz" | head -1 | cut -d: -f1 || true)"
[ -n "$offset" ] || xdie "no XZ payload in the kernel image"
tail -c +$((offset + 1)) "$work/vmlinuz" | xz -dc --single-stream 2>/dev/null >"$work/vmlinux" || true
file -b "$work/vmlinux" | grep -q '^ELF 64-bit' || xdie "could not extract vmlinux"
gzip -1 -c "$work/vmlinux" >"$work/domU-vmlinux.gz"

# --- the root file systems ---------------------------------------------------
base_root() {
    local root="$1" applet m
    mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,run,tmp,root,lib/modules,usr/bin,usr/sbin,var/lib,var/log}
    ln -sf ../run "$root/var/run"
    cp /bin/busybox "$root/bin/busybox"
    for applet in $("$root/bin/busybox" --list); do
        [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
    done
    for m in xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs/xenfs; do
        cp "$kmods/$m.ko" "$root/lib/modules/"
    done
    for m in xenstore-read xenstore-write xenstore-ls xenstore-list xenstore-rm \
        xenstore-exists xenstore-chmod xenstore-watch; do
        copy_elf "$root" "/usr/bin/$m"
    done
    # glibc dlopen()s libgcc_s for pthread_cancel: libxenstore's xs_close and xl need it.
    mkdir -p "$root/lib/x86_64-linux-gnu"
    cp -L /lib/x86_64-linux-gnu/libgcc_s.so.1 "$root/lib/x86_64-linux-gnu/"
    printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
    printf 'root:x:0:\n' >"$root/etc/group"
}

base_root "$work/domU-root"
pack_cpio "$work/domU-root" "$work/domU-base.cpio" plain

base_root "$work/dom0-root"
for b in xenstored xenconsoled xenconsole xl xen-init-dom0 libxl-save-helper; do
    copy_elf "$work/dom0-root" "$XENLIB_DIR/bin/$b"
done
mkdir -p "$work/dom0-root"/{etc/xen,var/lib/xen,var/log/xen/console,var/lib/xenstored,boot}
touch "$work/dom0-root/etc/xen/xl.conf"
cp "$work/domU-vmlinux.gz" "$work/dom0-root/boot/domU-vmlinux.gz"
pack_cpio "$work/dom0-root" "$work/dom0-base.cpio.gz"

rm -rf "$OUT"
mkdir -p "$OUT"
mv "$work/xen" "$work/vmlinuz" "$work/dom0-base.cpio.gz" "$work/domU-base.cpio" \
    "$work/versions.txt" "$OUT/"
touch "$OUT/complete"
# Older keys are stale: keep the cache at one set of images.
for old in "$XEN_CACHE"/images-*; do
    [ "$old" = "$OUT" ] || rm -rf "$old"
done
xlog "images ready: $(du -sh "$OUT" | cut -f1)"
echo "$OUT"
